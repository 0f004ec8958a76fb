/* Downloads cut by a restart (or kill -9) continue from the bytes already on disk (docs/CACHING.md,
 * "Resume after a restart"). While a download runs, its index row records what a resume needs (the
 * URL fetched, length, headers with the validator) and, every SYNC_STEP bytes, how much of the
 * partial file is known to be on disk (only for a body with a validator a resume proves itself by).
 * At start, a partial row whose file holds at least that much is taken up again: a FETCHING object
 * whose file is cut back to the synced length, digested again, and continued with Range + If-Range
 * by the upstream thread, once upstream's 206 has proved it is the same file (upstream_response.h);
 * otherwise the download starts over from byte 0. A partial row not taken up is said at info,
 * with its reason (bounded: NAMED_DROPS lines, then a count). */
#include "log/log.h"
#include "persist/persist.h"
#include "stats/stats.h"
#include "store/store_resume.h"
#include "store/store_room.h"

#include <assert.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Bytes between syncs of a growing file: a restart refetches at most this much. The writeback
 * started every 8 MiB (store_write.c) leaves each fdatasync little to write. */
#define SYNC_STEP (16LL << 20)

/* Objects taken up at open (index_open's unfinished rows, on main). */
static struct {
    struct object **v;
    size_t n, cap;
} resumed;

/* What a resume sends as If-Range: a strong ETag, else Last-Modified (upstream_response.h; a
 * row is synced only when its Last-Modified was a strong validator). */
static bool has_validator(const struct upstream_headers *h)
{
    return (h->etag[0] && strncmp(h->etag, "W/", 2) != 0) || h->last_modified[0];
}

/* Partials not taken up at this start: the first NAMED_DROPS are
 * named in the log with their reason, the others counted in one line (adopt_resumed), so that a
 * restart with thousands of them writes a bounded log. */
#define NAMED_DROPS 20
static int64_t not_taken;

/* Why partial row `row` cannot be continued (NULL: it can); `path` is its partial file. The
 * checks resume_partial makes, each with the words the log gives it. */
static const char *why_not_resumed(const struct index_row *row, const char *path)
{
    struct stat sb;
    /* one its terms said not to store (store = no, said while it downloaded) is never kept */
    if (row->not_stored)
        return "its rule said store = no";
    if (!row->source[0])
        return "arca stopped before upstream's answer was on record";
    if (!has_validator(&row->headers))
        return "upstream sent no validator (a strong ETag or a Last-Modified) a resume could "
               "prove itself by";
    if (row->synced <= 0)
        return row->headers.etag[0] && strncmp(row->headers.etag, "W/", 2) != 0
                   ? "less than one sync step (16 MiB) of it was on disk"
                   : "less than one sync step (16 MiB) of it was on disk, or its Last-Modified "
                     "was within a second of its Date (not a validator a resume can prove "
                     "itself by)";
    if (row->length >= 0 && row->synced > row->length)
        return "its record says more bytes synced than its length";
    if (!url_key_is(row->url, row->key))
        return "its key is not its URL's sha256 (a damaged index)";
    if (stat(path, &sb) < 0 || sb.st_size < row->synced)
        return "its partial file is gone or shorter than the bytes on record";
    return NULL;
}

/* Says that the download of `row` starts over (at most NAMED_DROPS lines); returns false. */
static bool not_resumed(const struct index_row *row, const char *why)
{
    if (__atomic_fetch_add(&not_taken, 1, __ATOMIC_RELAXED) < NAMED_DROPS)
        log_info("fetch %s: not resumed after the restart: %s; it starts over at its next "
                 "request",
                 row->url, why); /* log lines are redacted: no signature shows */
    return false;
}

bool resume_partial(const struct index_row *row, void *arg)
{
    char path[1200];
    const char *why;
    struct object *o;
    (void)arg;
    part_path(row->key, path, sizeof(path));
    if ((why = why_not_resumed(row, path)))
        return not_resumed(row, why);
    if (resumed.n == resumed.cap) {
        size_t cap = resumed.cap ? resumed.cap * 2 : 16;
        struct object **v = realloc(resumed.v, cap * sizeof(*v));
        if (!v)
            return not_resumed(row, "out of memory");
        resumed.v = v;
        resumed.cap = cap;
    }
    if (!(o = object_new(row->url, row->key)) || headers_pack(&row->headers, &o->headers) < 0 ||
        !(object_live(o)->source = strdup(row->source))) {
        if (o)
            object_free(o);
        return not_resumed(row, "out of memory");
    }
    /* clients wait until upstream has said the kept bytes are still its object (a 206 that
     * continues them): a changed file then starts over before anyone read the old bytes */
    o->headers_ready = false;
    o->length = row->length;
    object_live(o)->have = row->synced;
    object_set_reserved(o, row->length >= 0 ? row->length : row->synced);
    object_set_times(o, row->created, row->ttl > 0 ? row->ttl : TTL_MAX);
    o->last_use = o->created;
    o->resumed = o->on_disk = o->resumable = true;
    o->signed_key = row->signed_key;
    object_take_row_keep(o, row); /* nobody may ask before it completes: its pin holds already */
    o->refs = 1;                  /* the fetch's, handed over by store_take_resumed */
    resumed.v[resumed.n++] = o;
    return true;
}

/* What stays in resumed[] is what store_take_resumed hands over: an object that cannot go into
 * the table leaves the array as it is freed. */
void adopt_resumed(void)
{
    int64_t dropped = __atomic_exchange_n(&not_taken, 0, __ATOMIC_RELAXED);
    if (dropped > NAMED_DROPS)
        log_info("%lld more partial downloads not resumed after the restart (the first %d are "
                 "named above); each starts over at its next request",
                 (long long)(dropped - NAMED_DROPS), NAMED_DROPS);
    size_t kept = 0;
    for (size_t i = 0; i < resumed.n; i++) {
        struct object *o = resumed.v[i];
        if (object_enter(o, OBJ_FETCHING) < 0) { /* out of memory: its file and row go */
            log_error("fetch %s: out of memory; not resumed", o->url);
            submit_remove(o, NULL, false);
            o->refs = 0;
            object_free(o);
            continue;
        }
        resumed.v[kept++] = o;
    }
    resumed.n = kept;
}

void drop_resumed(void)
{
    for (size_t i = 0; i < resumed.n; i++) {
        resumed.v[i]->refs = 0;
        object_free(resumed.v[i]);
    }
    free(resumed.v);
    memset(&resumed, 0, sizeof(resumed));
}

void store_take_resumed(void (*each)(struct object *obj, const char *source, void *arg), void *arg)
{
    for (size_t i = 0; i < resumed.n; i++) {
        struct object *o = resumed.v[i];
        char *source = live_of(o)->source;
        /* taken before: once handed over, the download may end and the object go at once */
        object_live(o)->source = NULL;
        log_info("fetch %s: resuming after the restart from byte %lld", o->url,
                 (long long)object_have(o));
        each(o, source, arg);
        free(source);
    }
    size_t n = resumed.n;
    free(resumed.v);
    memset(&resumed, 0, sizeof(resumed));
    atomic_fetch_add(&stats.restart_resumes, (int64_t)n);
}

/* Feed bytes [0, have) of the file to a new digest. */
static EVP_MD_CTX *digest_prefix(int fd, int64_t have)
{
    static char buf[1 << 20]; /* the persistence thread's alone */
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int64_t off = 0;
    if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
        goto fail;
    while (off < have) {
        size_t want = have - off < (int64_t)sizeof(buf) ? (size_t)(have - off) : sizeof(buf);
        ssize_t n = pread(fd, buf, want, off);
        if (n <= 0 || EVP_DigestUpdate(ctx, buf, (size_t)n) != 1)
            goto fail;
        off += n;
    }
    return ctx;
fail:
    EVP_MD_CTX_free(ctx);
    return NULL;
}

int reopen_partial(struct object *obj, char *err, size_t errlen)
{
    char path[1200];
    EVP_MD_CTX *ctx = NULL;
    int fd;
    CHECK_OBJ(obj);
    assert(persist_owns_index()); /* the persistence thread while it runs */
    part_path(OBJECT_KEY(obj), path, sizeof(path));
    /* `have` was set at load and nothing appends before this job is done */
    if ((fd = open(path, O_RDWR | O_CLOEXEC)) < 0 || ftruncate(fd, object_have(obj)) < 0 ||
        !(ctx = digest_prefix(fd, object_have(obj)))) {
        snprintf(err, errlen, "cannot reopen the partial file to resume it");
        if (fd >= 0)
            close(fd);
        return 500;
    }
    store_lock();
    object_live(obj)->prefix = ctx;
    obj->fd = fd;
    wake_all(obj); /* readers that joined before the file was open */
    store_unlock();
    return 0;
}

void store_continue_body(struct object *obj)
{
    CHECK_OBJ(obj);
    assert(store_on_upstream());
    store_lock();
    if (!obj->headers_ready) {
        obj->headers_ready = true;
        wake_all(obj);
    }
    store_unlock();
}

int store_take_prefix(struct object *obj, EVP_MD_CTX *into)
{
    CHECK_OBJ(obj);
    assert(store_on_upstream());
    store_lock();
    EVP_MD_CTX *ctx = live_of(obj)->prefix;
    object_live(obj)->prefix = NULL;
    store_unlock();
    if (!ctx)
        return 0;
    int rc = EVP_MD_CTX_copy_ex(into, ctx) == 1 ? 1 : -1;
    EVP_MD_CTX_free(ctx);
    return rc;
}

/* --- what a resume needs, recorded while the download runs --------------------------------- */

struct started_job {
    struct persist_job job;
    char key[65];
    char *headers; /* packed (headers_pack), a copy */
    int64_t length, created, ttl;
    bool signed_key;
    struct index_row keep; /* what the store keeps of it, in a row (object_row_keep) */
};

static void run_started(struct persist_job *job)
{
    struct started_job *s = (struct started_job *)job;
    struct index_row row = s->keep;
    row.key = s->key;
    row.length = s->length;
    row.created = s->created;
    row.ttl = s->ttl;
    row.signed_key = s->signed_key;
    headers_unpack(s->headers, &row.headers);
    index_mark_started(&row); /* without it the download starts over after a restart */
    free(s->headers);
    free(s);
}

void submit_started(struct object *obj)
{
    struct started_job *s = calloc(1, sizeof(*s));
    struct upstream_headers h;
    if (!s)
        return;
    s->job.run = run_started;
    store_lock();
    object_key(obj, s->key);
    s->length = obj->length;
    s->created = obj->created;
    s->ttl = obj->ttl;
    s->signed_key = obj->signed_key;
    object_row_keep(obj, &s->keep);
    headers_unpack(obj->headers, &h);
    /* submitted under the lock: a later lookup's new terms (store_take_keep) queue after */
    if (headers_pack(&h, &s->headers) < 0)
        free(s);
    else
        persist_submit(&s->job);
    store_unlock();
}

struct sync_job {
    struct persist_job job;
    struct object *obj; /* a reference of its own */
    int64_t upto;
    uint32_t body; /* its object's `bodies` when queued: the body `upto` counts the bytes of */
    bool last;     /* arca stops: the download was set aside, not failed */
    bool tried;    /* sync_partial ran (on the sync queue, or in run_sync for a last one) */
    bool synced;   /* and the data below `upto` is on disk */
};

/* The sync queue's thread: the partial file's data on disk, nothing else (the row is the ordered
 * queue's, in run_sync). */
static void sync_partial(struct persist_job *job)
{
    struct sync_job *s = (struct sync_job *)job;
    store_lock();
    bool live = s->obj->state == OBJ_FETCHING || s->last;
    int fd = s->obj->fd; /* ours while the reference is held: closed only at the last one */
    store_unlock();
    s->tried = true;
    /* bytes below `upto` were written before this was queued: the sync covers them */
    s->synced = live && fdatasync(fd) == 0;
}

static void queue_sync(struct object *obj, int64_t before, int64_t after, const uint32_t *body);

/* Ordered queue's thread, after sync_partial (store_set_aside queues a last one here directly:
 * arca stops, and the sync runs here). */
static void run_sync(struct persist_job *job)
{
    struct sync_job *s = (struct sync_job *)job;
    assert(persist_on_thread() || persist_owns_index());
    if (!s->tried)
        sync_partial(job);
    store_lock();
    /* Failed while its data synced: its row went, and a new download of the URL may have made
     * its own since; the synced length is not that one's. Restarted from zero meanwhile
     * (store_restart): the bytes synced were the old body's, and a longer length on record than
     * the new body synced would be continued after a crash from bytes never on disk. */
    bool ours =
        s->last || (s->obj->state == OBJ_FETCHING && object_live(s->obj)->bodies == s->body);
    s->obj->sync_pending = false;
    int64_t have = object_have(s->obj); /* s->body's, when `live` */
    bool live = ours && !s->last;
    store_unlock();
    if (ours && s->synced)
        index_set_synced(OBJECT_KEY(s->obj), s->upto);
    /* a step crossed while this one synced (a busy disk) was passed over by maybe_sync: sync it
     * now, so that a restart refetches about one step, not several */
    if (live)
        queue_sync(s->obj, s->upto, have, &s->body);
    store_release(s->obj);
    free(s);
}

/* The sync of `obj`'s file up to `after` bytes of its body number *body (object_live.bodies;
 * NULL: the current one), if a step was crossed and none is pending, and the body is still that
 * one: a follow-up's `after`, read before a restart from zero, is the old body's. A body without
 * a validator a resume can prove itself by is never continued after a restart: its row keeps
 * synced = 0 (index_mark_started), and resume_partial drops it. */
static void queue_sync(struct object *obj, int64_t before, int64_t after, const uint32_t *body)
{
    struct sync_job *s;
    if (!obj->resumable || before / SYNC_STEP == after / SYNC_STEP || !(s = malloc(sizeof(*s))))
        return;
    store_lock();
    uint32_t now = object_live(obj)->bodies;
    if (obj->sync_pending || (body && *body != now)) {
        store_unlock();
        free(s);
        return;
    }
    obj->sync_pending = true;
    obj->refs++;
    store_unlock();
    *s = (struct sync_job){
        .job = {.run = run_sync, .sync = sync_partial}, .obj = obj, .upto = after, .body = now};
    /* nobody waits for it: every 16 MiB of a download beside an eviction, one someone waited
     * for would keep the removals from pausing for the hits for as long as it runs (pace.h) */
    persist_submit_sync_background(&s->job);
}

void maybe_sync(struct object *obj, int64_t before, int64_t after)
{
    queue_sync(obj, before, after, NULL); /* the upstream thread's body: it alone starts one */
}

void store_set_aside(struct object *obj, const char *reason)
{
    struct sync_job *s = malloc(sizeof(*s));
    CHECK_OBJ(obj);
    store_lock();
    if (!object_set_aside(obj, 503, reason)) {
        store_unlock();
        free(s);
        return;
    }
    /* what was written goes on record as synced, for the next start to continue from */
    bool sync = s && obj->on_disk && obj->fd >= 0 && obj->headers_ready && obj->resumable &&
                object_have(obj) > 0;
    if (sync) {
        obj->refs++;
        *s = (struct sync_job){
            .job.run = run_sync, .obj = obj, .upto = object_have(obj), .last = true};
    }
    store_unlock();
    if (sync)
        persist_submit(&s->job);
    else
        free(s);
}
