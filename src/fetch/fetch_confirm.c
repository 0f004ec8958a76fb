/* Signed URLs confirmed with upstream before a stored object is handed out (docs/CACHING.md,
 * "Signed URLs"; fetch_req.h): the probe is started on the request's thread, its answer comes
 * on the upstream thread and only wakes the request, which reads it on its next call. */
#include "fetch/fetch_req.h"
#include "rules/grants.h"
#include "rules/keys.h"
#include "stats/stats.h"
#include "store/store.h"
#include "upstream/parent.h"
#include "upstream/upstream.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Whether this request's URL must be confirmed with upstream before the object it names under
 * its key is handed out: a signature is a capability, and a hit must not leak the object to a
 * URL upstream would refuse. That holds for a signed URL, and for any URL (unsigned too) of an
 * object that was downloaded through a signed one. */
bool fetch_needs_confirm(const struct fetch_req *r, const struct object_meta *meta)
{
    return (r->sig.is_signed || meta->signed_key) && r->trust != TRUST_CONFIRMED &&
           !http_cfg->trust_signed && !grants_check(r->url, (int64_t)time(NULL));
}

/* Upstream thread: the probe's answer; the request picks it up once woken. */
static void on_probe(const struct probe_result *res, void *arg)
{
    struct fetch_req *r = arg;
    assert(r->magic == FETCH_MAGIC && !atomic_load(&r->confirm_done) && !http_on_pool());
    *r->confirm_res = *res;
    atomic_store(&r->confirm_done, true);
    park_wake(&r->park);
    park_put(&r->park);
}

/* What the confirmation asks: the URL itself, of the origin (as without a parent: the parent's
 * word on a signature is the origin's anyway); with --parent-only, where this arca may not
 * reach the origin, the parent's fetch API for it, which confirms it with the origin as any
 * arca does. NULL (*why set) when it cannot be asked: out of memory, or credentials that may
 * not go to a plain-http parent. *to_free: the caller's. */
static const char *confirm_target(const struct fetch_req *r, char **to_free, const char **why)
{
    const struct source_plan *s = &r->terms.sources;
    *to_free = NULL;
    if (!s->parent_only)
        return r->url;
    if (!terms_parent_may_see(http_cfg, &r->terms, r->url)) {
        *why = "the URL carries credentials and the parent is reached over plain http "
               "(--parent-trusted-http); --parent-only forbids the origin";
        return NULL;
    }
    *why = "out of memory";
    return *to_free = parent_fetch_url(s->parent, r->url);
}

/* Suspend the request and ask upstream about its exact URL. */
bool fetch_start_confirm(struct fetch_req *r, enum conn_result *ret)
{
    const char *why = NULL, *target;
    char *to_free;
    int rc;
    assert(r->magic == FETCH_MAGIC && http_handling(r->conn, r->req));
    if (!(target = confirm_target(r, &to_free, &why))) {
        *ret = fetch_refuse(r->conn, HTTP_BAD_GATEWAY, why);
        return false;
    }
    if (!r->confirm_res && !(r->confirm_res = malloc(sizeof(*r->confirm_res)))) {
        *ret = fetch_refuse(r->conn, HTTP_INTERNAL_SERVER_ERROR, "out of memory");
        return false;
    }
    atomic_store(&r->confirm_done, false);
    atomic_fetch_add(&stats.confirmations, 1);
    conn_suspend(r->conn);
    park_hold(&r->park); /* the probe's */
    /* a target made (to_free) is the parent's fetch API: it is shown the parent's certificate */
    rc = upstream_probe(target, to_free ? r->terms.sources.parent : NULL, &r->terms.registry,
                        on_probe, r);
    free(to_free);
    if (rc < 0) {
        park_put(&r->park);
        conn_resume(r->conn);
        *ret = fetch_refuse(r->conn, HTTP_SERVICE_UNAVAILABLE,
                            "cannot ask upstream to confirm the URL now");
        return false;
    }
    return true;
}

/* Whether upstream's answer names the version `meta` describes: its ETag when it had one, else
 * its Last-Modified; with neither, nothing shows it is the same, and it is not taken as such. */
bool fetch_same_version(const struct probe_result *res, const struct object_meta *meta)
{
    if (res->total >= 0 && meta->length >= 0 && res->total != meta->length)
        return false;
    if (meta->etag[0])
        return strcmp(res->etag, meta->etag) == 0;
    return meta->last_modified[0] && strcmp(res->last_modified, meta->last_modified) == 0;
}

/* Whether upstream refused the exact URL (its status goes to the client, *ret queued). When it
 * accepted it, the URL is remembered as accepted. */
bool fetch_confirm_refused(struct fetch_req *r, const struct probe_result *res,
                           enum conn_result *ret)
{
    if (res->status >= 200 && res->status < 300) {
        grants_add(r->url, keys_grant_until(http_cfg, &r->sig, (int64_t)time(NULL)));
        r->trust = TRUST_CONFIRMED;
        return false;
    }
    atomic_fetch_add(&stats.confirm_refused, 1);
    bool held = res->status == 0 && res->retry_after > 0;
    if (held) {
        atomic_fetch_add(&stats.held_down, 1); /* counted and logged as a miss's would be */
        r->refusal = "HELD_DOWN";
    } else {
        fetch_count_error();
    }
    /* Worded as a download's refusal of an uncached URL would be, whatever was cached (a hit, a
     * download joined, a digest's twin): the answer tells nothing of the cache. */
    unsigned int status = res->status >= 400 ? (unsigned int)res->status : 502;
    struct answer *resp;
    char words[sizeof(res->failure)];
    if (res->status == 0) {
        status = res->failure_status ? (unsigned int)res->failure_status : 502;
        resp = http_error_response("%s", fetch_failure_words(r, res->failure, status,
                                                             held ? res->retry_after : 0, words,
                                                             sizeof(words)));
    } else
        resp = http_error_response(
            "%s %d", res->status >= 400 ? "upstream answered" : "unexpected upstream status",
            res->status);
    if (resp) { /* as a failed download's, or a held host's: see add_cache_status */
        char member[sizeof(http_cfg->cache_name) + 32];
        snprintf(member, sizeof(member), "%s; %s", http_cfg->cache_name,
                 held ? "detail=held-down" : "fwd=uri-miss");
        answer_header(resp, "Cache-Status", member);
    }
    if (resp && held) { /* its host held down, as a miss's */
        char seconds[16];
        snprintf(seconds, sizeof(seconds), "%d", res->retry_after);
        answer_header(resp, "Retry-After", seconds);
    }
    *ret = http_queue(r->conn, status, resp);
    return true;
}
