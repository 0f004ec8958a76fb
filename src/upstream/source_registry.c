/* The registry kind of source (source.h): a URL under the /v2/ of a container registry arca
 * mirrors (registries.h), asked instead of a plain origin. Its requests carry the registry's
 * Authorization (reg_auth.h: the same line its probes carry) and, for a manifest, an Accept
 * naming the manifest and index types; its bytes must hash to the digest the URL names, or to
 * the Docker-Content-Digest its answer said, before they are kept (a mismatch is failed while
 * the last byte is still held back: no client gets the body whole); a manifest over
 * REGISTRY_MANIFEST_MAX is refused; an expired copy is revalidated with a HEAD (Docker Hub
 * counts a GET of a manifest as a pull, a HEAD not): a tag's unchanged digest renews the kept
 * manifest as a 304 would, a changed one has the next attempt GET it; a digest's bytes cannot
 * change, so any 2xx renews them (no body, no CDN). Its refusals and 429s are counted for
 * the registry, each once, and a revalidation when its HEAD was answered; a 401 drops the token
 * it was sent with (asked again once); a 401 or 403 to its basic-auth login is the login's
 * refusal, never asked again with the same login, answered as a realm's (DENIED, naming the
 * password file: reg_auth_refusal) and said once in the log. Its failures name the registry
 * ("registry NAME: failed after …"). */
#include "upstream/source_registry.h"
#include "upstream/transfer_answer.h"
#include "registry/reg_auth.h"
#include "registry/reg_name.h"
#include "base/clock.h"
#include "log/log.h"
#include "stats/stats.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MANIFEST_ACCEPT                                                                            \
    "Accept: application/vnd.docker.distribution.manifest.v2+json, "                               \
    "application/vnd.docker.distribution.manifest.list.v2+json, "                                  \
    "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json"

bool source_registry_renews(const struct registry_ask *a, const char *said, const char *kept)
{
    return a->path.by_digest || source_registry_unchanged(kept, said);
}

bool source_registry_unchanged(const char *kept, const char *said)
{
    size_t n = strlen(said);
    /* kept as ETag "\"sha256:…\"" (describe) or, from a registry that said one, its own */
    return n > 0 && kept &&
           (strcmp(kept, said) == 0 ||
            (kept[0] == '"' && strncmp(kept + 1, said, n) == 0 && strcmp(kept + 1 + n, "\"") == 0));
}

const char *source_registry_vouch(const struct registry_ask *a, const char *said,
                                  const uint8_t digest[32])
{
    uint8_t d[32];
    /* a digest the URL names is the object's check (the core's, whatever source): here only
     * what a tag's answer said of its own body */
    if (a->path.what == REG_MANIFEST && !a->path.by_digest && said[0] &&
        (reg_digest_parse(said, strlen(said), d) != REG_OK || memcmp(d, digest, 32)))
        return "its bytes are not the Docker-Content-Digest it said";
    return NULL;
}

/* What it asks: the terms'. */
static const struct registry_ask *ask_of(const struct transfer *t)
{
    return &t->terms.registry;
}

/* What its answers said: its record, while it is the source asked. */
static struct registry_pull *own(const struct transfer *t)
{
    assert(t->src.kind == &source_registry);
    return source_own(&t->src);
}

/* A URL of a registry's pull API (the terms say which) is the registry's to answer, instead of
 * a plain origin's. */
static int join(struct transfer *t, void **rec)
{
    struct registry_pull *p;
    if (!ask_of(t)->r)
        return 0;
    if (!(p = calloc(1, sizeof(*p))))
        return -1;
    p->t = t;
    *rec = p;
    return 1;
}

static void release(void *rec)
{
    struct registry_pull *p = rec;
    if (p->waiting)
        reg_auth_abandon(p);
    free(p);
}

static bool is_manifest(const struct transfer *t)
{
    return ask_of(t)->path.what == REG_MANIFEST;
}

/* --- the hooks ------------------------------------------------------------------------------ */

/* Its authorisation is known (0) or failed (`status`, `why`): PROBING is over. */
static void authorised(int status, const char *why, void *arg)
{
    struct registry_pull *p = arg;
    struct transfer *t = p->t;
    CHECK_TRANSFER(t);
    p->waiting = false;
    p->auth_status = status;
    snprintf(p->auth_why, sizeof(p->auth_why), "%s", why);
    if (!p->in_choose)
        t->src.chosen(t);
}

/* Whether the registry is held at its asking now (hosts.h: a 429 of its own or of its realm,
 * its dance refused meanwhile, nothing asked): its attempt, meeting the hold (easy_go), tells
 * its clients so with the wait left. */
static bool limited(const struct transfer *t)
{
    return easy_limited(&t->h, NULL, 0, NULL);
}

/* Whether `why` is the refusal of `r`'s login the log said once (registries_login_refused). */
static bool login_refusal(const struct registry *r, const char *why)
{
    char kept[REGISTRY_LOGIN_WHY];
    return registries_login_error(r, kept, sizeof(kept)) && strcmp(kept, why) == 0;
}

/* PROBING is over: ATTEMPT with what was learnt, or FAILED in the dance's words. A registry
 * or realm down, or limiting, is an outage by the one rule (status_outage): a tag's kept
 * manifest this download refreshes answers stale, as when the manifest's own request fails so;
 * else, the registry held at its asking, the attempt meets the hold. A 429 (its hold begun) and
 * a login refused were said once in the log: each download meeting them again says so at debug
 * level. */
static enum transfer_state chosen(struct transfer *t)
{
    struct registry_pull *p = own(t);
    int s = p->auth_status;
    if (s != 0) {
        bool said = s == 429 || login_refusal(ask_of(t)->r, p->auth_why);
        /* a 429 is the registry's own word; a 502 here may be arca's for no answer at all */
        if (status_outage(s) &&
            t->st->keep_stale(t->obj, s, s == 429 ? s : 0, p->auth_why, said) == 0) {
            t->failed = true; /* its clients take the expired manifest (or are told) */
            atomic_fetch_add(&stats.refreshes_failed_stale, 1);
        } else if (limited(t)) {
            return TS_ATTEMPT;
        } else if (said) {
            transfer_fail_said(t, s, p->auth_why);
        } else {
            transfer_fail(t, s, p->auth_why);
        }
        return TS_FAILED;
    }
    log_debug("fetch %s: download started, from registry %s", t->url, ask_of(t)->r->name);
    return TS_ATTEMPT;
}

/* SOURCE: the registry's URL, once a request of its scope can be authorised (PROBING while
 * the challenge or a token is asked: reg_auth_ensure). */
static bool choose(struct transfer *t, enum transfer_state *next)
{
    struct registry_pull *p = own(t);
    struct reg_challenge c;
    char scope[REG_SCOPE_MAX];
    if (t->source != t->asked) {
        t->source = t->asked;
        easy_set_url(&t->h, t->source);
    }
    p->auth_status = 0;
    if (!registry_ask_scope(ask_of(t), scope, sizeof(scope)) ||
        reg_auth_need(ask_of(t)->r, scope, monotonic_ms(), &c) == REG_NEED_NOTHING) {
        *next = chosen(t);
        return true;
    }
    p->waiting = p->in_choose = true;
    if (reg_auth_ensure(t->loop, ask_of(t)->r, scope, authorised, p) < 0) {
        p->waiting = false;
        p->auth_status = 500;
        snprintf(p->auth_why, sizeof(p->auth_why), "out of memory");
    }
    p->in_choose = false;
    *next = p->waiting ? TS_PROBING : chosen(t);
    return true;
}

/* A 401 to a token kept (revoked, or expired early): dropped, and asked again once. */
static bool judge_end(struct transfer *t, enum transfer_state *next)
{
    if (!own(t)->again || t->failed || atomic_load(&t->loop->stopping))
        return false;
    own(t)->again = false;
    *next = TS_SOURCE;
    return true;
}

/* Its Authorization (a kept token, or the login for basic auth), and a manifest's Accept. */
static int headers(const struct transfer *t, struct curl_slist **headers)
{
    char line[REG_TOKEN_MAX + 64];
    struct curl_slist *l = *headers;
    bool ok = true;
    if (reg_auth_header(ask_of(t), line, sizeof(line)))
        ok = (l = curl_slist_append(l, line)) != NULL;
    OPENSSL_cleanse(line, sizeof(line));
    if (ok && is_manifest(t))
        ok = (l = curl_slist_append(l, MANIFEST_ACCEPT)) != NULL;
    if (l)
        *headers = l;
    return ok ? 0 : -1;
}

/* The origin's patience; a revalidation of a manifest or a digest asks HEAD (set once the
 * conditions are known), unless its HEAD said the tag moved: then the new manifest is asked. */
static void timeouts(struct transfer *t)
{
    struct registry_pull *p = own(t);
    source_default_timeouts(t);
    p->head = t->a.conditional && (is_manifest(t) || ask_of(t)->path.by_digest) && !p->head_changed;
    p->head_changed = false;
    p->said[0] = p->etag[0] = '\0';
    if (p->head)
        curl_easy_setopt(t->h.easy, CURLOPT_NOBODY, 1L);
    else
        curl_easy_setopt(t->h.easy, CURLOPT_HTTPGET, 1L);
}

/* Docker-Content-Digest, kept (and as the manifest's ETag); the core reads the line too. */
static bool header(struct transfer *t, const char *line, bool whole)
{
    struct registry_pull *p = own(t);
    uint8_t d[32];
    const char *v;
    if (!whole || strncasecmp(line, "Docker-Content-Digest:", 22) != 0)
        return false;
    v = line + 22 + strspn(line + 22, " \t");
    if (reg_digest_parse(v, strcspn(v, " \t"), d) == REG_OK) {
        snprintf(p->said, sizeof(p->said), "%.71s", v);
        p->said[strcspn(p->said, " \t")] = '\0';
        snprintf(p->etag, sizeof(p->etag), "\"%s\"", p->said);
    }
    return false;
}

static void status_line(struct transfer *t, const char *line)
{
    (void)line;
    own(t)->said[0] = own(t)->etag[0] = '\0'; /* a redirect's said nothing of the body */
}

/* Counted for the registry: its refusals (a 404 is an answer), 429 above all. */
static void count(const struct registry *r, long status)
{
    if (status == 429)
        atomic_fetch_add(&r->counters->too_many, 1);
    if (status >= 500 || (status >= 400 && status != 404))
        atomic_fetch_add(&r->counters->refused, 1);
}

/* A HEAD's answer: a digest's 2xx, or a tag's unchanged digest, renews the kept copy (read as
 * a 304); a tag's other digest, or none, has the next attempt GET the manifest (this answer
 * dropped). */
static int head_answer(struct transfer *t)
{
    char etag[HEADER_ETAG_MAX], date[HEADER_DATE_MAX];
    struct registry_pull *p = own(t);
    if (t->a.status < 200 || t->a.status >= 300)
        return 0; /* a 304, a 404, a 429: the core reads them as a GET's */
    if (t->st->stale_validators(t->obj, etag, sizeof(etag), date, sizeof(date)) &&
        source_registry_renews(ask_of(t), p->said, etag)) {
        log_debug("fetch %s: registry %s: unchanged, renewed by a HEAD", t->url,
                  ask_of(t)->r->name);
        t->a.status = 304;
        return 0;
    }
    p->head_changed = true;
    t->a.start_over = true;
    log_debug("fetch %s: registry %s: the tag moved; its manifest is asked", t->url,
              ask_of(t)->r->name);
    return -1;
}

/* An answer came: counted (a HEAD's as a revalidation: one that met the registry's hold never
 * went); a 401 to a token, or to no authorisation, has it asked again once (a token revoked,
 * the registry asking for one now); one to the basic-auth login is the login's refusal (the
 * same login would be refused again: `refusal`). */
static int answer(struct transfer *t)
{
    struct registry_pull *p = own(t);
    const struct registry *r = ask_of(t)->r;
    char why[300];
    count(r, t->a.status);
    if (p->head)
        atomic_fetch_add(&r->counters->revalidated, 1);
    reg_auth_answered(ask_of(t), (int)t->a.status);
    if (t->a.status == 401 && !reg_auth_sends_login(r)) {
        reg_auth_forget(ask_of(t));
        if (!p->reauthed) {
            p->reauthed = p->again = true;
            log_info("fetch %s: registry %s refused its authorisation (401): asked again", t->url,
                     r->name);
            return -1;
        }
    }
    if (p->head)
        return head_answer(t);
    if (is_manifest(t) && t->a.status == 200 && t->a.resp.content_length > REGISTRY_MANIFEST_MAX) {
        snprintf(why, sizeof(why), "registry %s: a manifest of %lld bytes, over the %d allowed",
                 r->name, (long long)t->a.resp.content_length, REGISTRY_MANIFEST_MAX);
        transfer_fail(t, 413, why); /* as an object over --max-object-size is */
        return -1;
    }
    return 0;
}

/* A manifest sent without a length stops at REGISTRY_MANIFEST_MAX too. */
static bool overran(struct transfer *t, size_t len)
{
    struct download_progress d;
    if (!is_manifest(t))
        return false;
    t->st->progress(t->obj, &d);
    if (d.have + (int64_t)len <= REGISTRY_MANIFEST_MAX)
        return false;
    transfer_fail(t, 413, "the registry's manifest runs over 4 MiB");
    return true;
}

/* The manifest's ETag is its digest: what a HEAD compares. */
static void describe(const struct transfer *t, struct upstream_headers *h)
{
    if (is_manifest(t) && own(t)->etag[0])
        h->etag = own(t)->etag;
}

/* A 401 or 403 in the registry's words (reg_auth_refusal): the login's refusal is its own
 * status, as a realm's, named with its password file and said once in the log (*said); another
 * 401 is arca's failure to authorise (502), a 403 the registry's denial. */
static int refusal(struct transfer *t, int status, char *reason, size_t size, bool *said)
{
    return reg_auth_refusal(ask_of(t), status, reason, size, said);
}

/* Its failures name the registry, as its other words do. */
static void who(const struct transfer *t, char *out, size_t size)
{
    snprintf(out, size, "registry %s:", ask_of(t)->r->name);
}

static const char *no_fill(const struct transfer *t)
{
    return is_manifest(t) ? "a registry's manifest" : NULL;
}

static const struct source_req_ops piece_ops;

/* A fill's ranges ask as the download does (its Authorization: req_request). */
static void fill_settings(struct transfer *t, struct fill_settings *settings)
{
    settings->req = (struct source_req){&piece_ops, &t->terms.registry};
}

/* Its bytes are all in: they are kept only when they are the digest asked, and said. */
static bool vouches(struct transfer *t, const uint8_t digest[32], enum transfer_state *next)
{
    char reason[300];
    const char *why = source_registry_vouch(ask_of(t), own(t)->said, digest);
    if (!why)
        return true;
    snprintf(reason, sizeof(reason), "registry %s: %s; not kept", ask_of(t)->r->name, why);
    transfer_fail(t, 502, reason);
    *next = TS_FAILED;
    return false;
}

/* --- a fill's piece and a probe of a registry's pull API (source_req.h) ----------------------- */

/* Each carries the registry's Authorization for what it asks (curl drops it at a redirect to
 * another host, a CDN's, as it does the download's). */
static bool req_request(void *rec, enum source_req_what what, CURL *easy,
                        struct curl_slist **headers)
{
    char line[REG_TOKEN_MAX + 64];
    struct curl_slist *l = *headers;
    bool ok = true;
    (void)what;
    (void)easy;
    if (reg_auth_header(rec, line, sizeof(line)))
        ok = (l = curl_slist_append(l, line)) != NULL;
    OPENSSL_cleanse(line, sizeof(line));
    if (ok)
        *headers = l;
    return ok;
}

/* A probe's failures name the registry, as the download's do. */
static void req_who(void *rec, char *out, size_t size)
{
    const struct registry_ask *a = rec;
    snprintf(out, size, "registry %s:", a->r->name);
}

static const struct source_req_ops piece_ops = {
    .name = "upstream",
    .request = req_request,
};

static const struct source_req_ops probe_ops = {
    .name = "upstream",
    .who = req_who,
    .probe_head = true, /* a registry answers HEAD as a GET, and counts a manifest's GET a pull */
    .request = req_request,
    .release = free,
};

int source_registry_probe_req(const struct registry_ask *a, struct source_req *out)
{
    struct registry_ask *copy = malloc(sizeof(*copy));
    if (!copy)
        return -1;
    *copy = *a;
    *out = (struct source_req){&probe_ops, copy};
    return 0;
}

const struct source_kind source_registry = {
    .name = "registry",
    .who = who,
    .from = "origin", /* the registry is the origin of its images */
    .join = join,
    .release = release,
    .choose = choose,
    .chosen = chosen,
    .headers = headers,
    .timeouts = timeouts,
    .status_line = status_line,
    .header = header,
    .answer = answer,
    .describe = describe,
    .refusal = refusal,
    .no_fill = no_fill,
    .fill_settings = fill_settings,
    .overran = overran,
    .judge_end = judge_end,
    .vouches = vouches,
};
