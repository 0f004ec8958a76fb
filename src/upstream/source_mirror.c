/* The mirror kind of source (source.h; mirror.h says how one is picked): the mirrors of the
 * download's terms, asked with a probe each (PROBING), the origin's word first for a URL with
 * credentials. A mirror adds nothing to a request but its URL, is never signed for a bucket,
 * and its answer says nothing of a signed URL; the bytes it sends keep the validators the
 * origin said. When the pick settles on the origin, the origin's kind takes over. */
#include "upstream/source_mirror.h"
#include "upstream/transfer_answer.h"
#include "log/log.h"

#include <stddef.h>
#include <stdlib.h>

/* Its record (source_mirror.h), while it is the source asked. */
static struct mirror_source *own(const struct transfer *t)
{
    assert(t->src.kind == &source_mirror);
    return source_own(&t->src);
}

static void picked(struct mirror_pick *m);

/* A download whose terms name mirrors for its URL asks them (the origin's word first for a URL
 * with credentials). */
static int join(struct transfer *t, void **rec)
{
    struct mirror_source *ms = calloc(1, sizeof(*ms));
    if (!ms)
        return -1;
    ms->t = t;
    ms->pick = (struct mirror_pick){.loop = t->loop,
                                    .url = t->url,
                                    .asked = t->asked,
                                    .grant_until = t->grant_until,
                                    .picked = picked};
    mirror_find(&ms->pick, &t->terms);
    if (ms->pick.n_mirrors == 0) {
        mirror_free(&ms->pick);
        free(ms);
        return 0;
    }
    *rec = ms;
    return 1;
}

static void release(void *rec)
{
    struct mirror_source *ms = rec;
    mirror_free(&ms->pick);
    free(ms);
}

static void renamed(void *rec, const char *url)
{
    ((struct mirror_source *)rec)->pick.url = url;
}

/* The pick is made (m->source), or the origin refused the URL. */
static enum transfer_state chosen(struct transfer *t)
{
    enum transfer_state next;
    if (own(t)->pick.refused) {
        transfer_fail(t, own(t)->pick.refused, own(t)->pick.reason);
        return TS_FAILED;
    }
    if (own(t)->pick.source == t->asked) { /* no mirror answered: the origin's turn */
        source_next(&t->src);
        t->src.kind->choose(t, &next);
        return next;
    }
    t->source = own(t)->pick.source;
    easy_set_url(&t->h, t->source);
    t->auth = NULL; /* a mirror is fetched unsigned */
    log_debug("fetch %s: download started", t->url);
    return TS_ATTEMPT;
}

/* SOURCE: a probe is out (PROBING), or the choice is made now. */
static bool choose(struct transfer *t, enum transfer_state *next)
{
    *next = mirror_pick(&own(t)->pick) ? TS_PROBING : chosen(t);
    return true;
}

/* The validators the origin said when asked first (a signed URL's hits are confirmed with the
 * origin, which knows nothing of a mirror's ETag). */
static void describe(const struct transfer *t, struct upstream_headers *h)
{
    if (!own(t)->pick.origin_said)
        return;
    h->last_modified = own(t)->pick.origin_date;
    h->etag = own(t)->pick.origin_etag;
}

/* Only bytes that are not the digest their URL names move the download on from a mirror: they
 * go, and the next source (the origin) is asked for the whole body. A mirror held down or
 * changing under a fill is retried as the origin would be. */
static bool may_move_on(const struct transfer *t, enum source_end end)
{
    return end == SOURCE_DIGEST && !t->failed && !atomic_load(&t->loop->stopping);
}

static enum transfer_state move_on(struct transfer *t, enum source_end end, const char *why)
{
    (void)end;
    log_info("fetch %s: mirror %s: %s; the origin is asked", t->url, t->source, why);
    transfer_leave_source(t);
    return transfer_afresh_state(t, "its mirror's bytes are not the digest their URL names");
}

/* The mirrors' probe chose: PROBING is over (the course's event). */
static void picked(struct mirror_pick *m)
{
    struct transfer *t =
        ((struct mirror_source *)((char *)m - offsetof(struct mirror_source, pick)))->t;
    CHECK_TRANSFER(t);
    t->src.chosen(t);
}

const struct source_kind source_mirror = {
    .name = "upstream",
    .from = "mirror",
    .join = join,
    .release = release,
    .renamed = renamed,
    .choose = choose,
    .chosen = chosen,
    .timeouts = source_default_timeouts,
    .describe = describe,
    .may_move_on = may_move_on,
    .move_on = move_on,
};
