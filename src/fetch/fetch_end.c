/* A fetch request's end (fetch.h: fetch_finish, fetch_done): what it lets go of (the object,
 * the twin's file, its strings, its park), the access log's word for how it was served and the
 * bytes it sent, and the counters of the rule it was under (and of the registry whose pull it
 * was). The last use of a fetch_req. */
#include "fetch/fetch.h"
#include "fetch/fetch_req.h"
#include "registry/registries.h"
#include "stats/rule_stats.h"
#include "stats/stats.h"
#include "store/store.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A miss as the access log says it: where its bytes came from (Squid's hierarchy codes), the
 * parent, a mirror or the origin; "MISS" alone when no source answered with a body. */
static const char *miss_word(struct object *obj)
{
    static const char *const words[][2] = {
        {"parent", "MISS:parent"}, {"mirror", "MISS:mirror"}, {"origin", "MISS:origin"}};
    struct object_meta meta;
    if (!obj)
        return "MISS";
    store_snapshot(obj, &meta);
    for (size_t i = 0; meta.came_from && i < sizeof(words) / sizeof(words[0]); i++)
        if (!strcmp(meta.came_from, words[i][0]))
            return words[i][1];
    return "MISS";
}

/* What the request's answer was, for the access log; *sent the body bytes it handed over. A
 * file answer's bytes count whole once completed; a client that left early was sent what the
 * engine wrote (`wrote`) of them. A streamed answer counts its bytes as they go (r->sent). */
static const char *let_go(struct fetch_req *r, bool completed, int64_t wrote, int64_t *sent)
{
    const char *cache = r->cut                   ? "CUT"
                        : r->stale               ? "STALE"
                        : r->revalidated         ? "REVALIDATED"
                        : r->kind == LOOKUP_HIT  ? "HIT"
                        : r->kind == LOOKUP_MISS ? miss_word(r->obj)
                                                 : "COALESCED";
    *sent = r->sent;
    if (r->twin_fd >= 0)
        close(r->twin_fd);
    free(r->twin);
    if (r->obj) {
        store_unwait(r->obj, &r->park);
        store_release(r->obj);
    } else {
        *sent = completed || wrote > r->fd_bytes ? r->fd_bytes : wrote;
        atomic_fetch_add(&stats.bytes_served, *sent);
    }
    if (r->key != r->url)
        free(r->key);
    free(r->url);
    free(r->via);
    park_leave(&r->park); /* a confirmation still running holds r until its answer */
    return cache;
}

/* An error line (a status of 400 or more, or none queued) is ERROR whatever the object was, but
 * for a request refused before any try (REFUSED, HELD_DOWN: the metrics' words); an answer from
 * the object says how it was served, and its bytes are the body's. */
const char *fetch_finish(struct fetch_req *r, struct request *req, bool completed)
{
    const char *cache = req->status >= 400 || req->status == 0 ? "ERROR" : NULL;
    if (cache && r && r->refusal)
        cache = r->refusal;
    int64_t sent;
    if (r) {
        const char *kind;
        char rule[sizeof(r->terms.rule)];
        assert(r->magic == FETCH_MAGIC && r->req == req);
        memcpy(rule, r->terms.rule, sizeof(rule)); /* let_go lets go of r */
        kind = let_go(r, completed, req->wrote, &sent);
        if (!cache) {
            cache = kind;
            req->bytes = sent;
        }
        rule_stats_count(rule, !strcmp(cache, "HIT"), req->bytes);
    }
    return cache ? cache : "ERROR";
}

const char *fetch_answer_type(const struct fetch_req *r)
{
    return r ? r->answer_type : "";
}

/* A URL of a registry's pull API asked through the fetch API (a site's arca asking its central
 * one) is that registry's request as a /v2/ one is: the /v2/ route counts its own
 * (registry_done), never through here, so each request counts once. */
const char *fetch_done(struct request *req, bool completed)
{
    struct fetch_req *r = req->state;
    /* what the URL is, as its terms decided it */
    const struct registry *reg = r ? r->terms.registry.r : NULL;
    struct registry_answered a = {.what = reg ? r->terms.registry.path.what : REG_BASE,
                                  .get = !strcmp(req->method, "GET")};
    char type[sizeof(r->answer_type)];
    bool counted = reg && a.what != REG_BASE;
    if (counted) { /* fetch_finish frees r; only a registry's answer is counted */
        memcpy(type, r->answer_type, sizeof(type));
        type[sizeof(type) - 1] = '\0';
    }
    a.cache = fetch_finish(r, req, completed);
    req->state = NULL;
    if (counted) {
        a.status = (int)req->status;
        a.type = type;
        a.bytes = req->bytes;
        registries_count_answer(reg, &a);
    }
    return a.cache;
}
