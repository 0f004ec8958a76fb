/* The client side of the store (store.h): lookups, hits, reads and waits, from any thread. The
 * top of store/: it asks object.c for every change of an object's state. */
#include "base/clock.h"
#include "log/log.h"
#include "store/object.h"
#include "store/store_negative.h"
#include "store/store_room.h"
#include "store/store_twins.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

void store_attach_prepared(const struct object_meta *meta, struct prepared *p)
{
    struct object *obj, *old;
    store_lock();
    /* the generation tells a re-downloaded object under the same key from the one `meta`
     * describes (`created`, in seconds, could not: two versions within one second) */
    obj = object_find_gen(meta->tag, meta->gen);
    if (obj && obj->state == OBJ_COMPLETE && !live_of(obj)->prepared &&
        object_give_live(obj) == 0) {
        if ((old = st.prepared_ring[st.prepared_next]) != NULL)
            detach_prepared(old);
        st.prepared_ring[st.prepared_next] = obj;
        object_live(obj)->prepared_slot = st.prepared_next;
        st.prepared_next = (st.prepared_next + 1) % STORE_PREPARED_MAX;
        atomic_fetch_add(&p->refs, 1);
        object_live(obj)->prepared = p;
    }
    store_unlock();
}

/* Never `created + ttl`: an index written before TTLs were clamped may hold any ttl. */

/* --- client side -------------------------------------------------------------------------- */

/* Whether a request with `auth` may act on `obj`: shorten its life, find it expired and replace
 * it. An unconfirmed URL may not: a forged signature with &ttl=1s would otherwise throw away a
 * private object (its refused download dropping the stored version). It gets the object as a
 * hit, which its caller confirms before serving, then looks up again as confirmed. */
static bool may_act(const struct object *obj, enum lookup_auth auth)
{
    return auth == AUTH_CONFIRMED || (auth == AUTH_UNSIGNED && !obj->signed_key);
}

static void note_use(struct object *obj, int64_t ttl, bool act, int64_t now)
{
    assert(store_locked());
    if (act && ttl > 0 && ttl < obj->ttl)
        obj->ttl = wall32(ttl);
    object_add_uses(obj, 1);
    obj->last_use = wall32(now);
    /* in the order of first use since its last flush: a bounded flush (store_room.c) reaches
     * every object in turn, however often the busy ones are used */
    ring_add(&st.dirty, &obj->dirty); /* out of memory, it waits for its next use */
    if (obj->state == OBJ_COMPLETE)
        dlist_append(object_lru(obj), &obj->lru);
}

/* Lock held. Copy what a reader needs: the object may be freed once the lock drops. */
static void copy_meta(const struct object *obj, struct object_meta *meta)
{
    assert(store_locked());
    memcpy(meta->tag, obj->tag, sizeof(meta->tag));
    meta->state = object_view(obj);
    meta->headers_ready = obj->headers_ready;
    meta->hit = obj->hit;
    meta->hot = false; /* a hit's lookup says (lookup_locked) */
    meta->length = obj->length;
    meta->created = obj->created;
    meta->ttl = obj->ttl;
    meta->gen = obj->gen;
    meta->revalidation = obj->revalidation;
    meta->renewed = obj->renewed;
    meta->signed_key = obj->signed_key;
    meta->transient = obj->transient;
    meta->stale = (obj->state == OBJ_FETCHING && !obj->headers_ready) || obj->state == OBJ_FAILED
                      ? live_of(obj)->offer_stale
                  : object_extra_of(obj)->refresh_failed && object_expired(obj, now_s())
                      ? STALE_ERROR
                      : STALE_NONE;
    meta->fwd_status = object_extra_of(obj)->fwd_status;
    struct upstream_headers h;
    headers_unpack(obj->headers, &h);
    copy_string(meta->content_type, sizeof(meta->content_type), h.content_type);
    copy_string(meta->content_encoding, sizeof(meta->content_encoding), h.content_encoding);
    copy_string(meta->filename, sizeof(meta->filename), h.filename);
    copy_string(meta->last_modified, sizeof(meta->last_modified), h.last_modified);
    copy_string(meta->etag, sizeof(meta->etag), h.etag);
    copy_string(meta->redirects, sizeof(meta->redirects), h.redirects);
    memcpy(meta->digest, obj->digest, sizeof(meta->digest));
    meta->error_status = live_of(obj)->error_status;
    meta->retry_after = live_of(obj)->retry_after;
    meta->too_large = obj->too_large;
    copy_string(meta->error, sizeof(meta->error), live_of(obj)->error);
    copy_string(meta->parent_status, sizeof(meta->parent_status),
                object_extra_of(obj)->parent_status);
    meta->came_from = live_of(obj)->came_from;
}

/* Beside the snapshot that reads it back: a pointer set under the lock, never freed. */
void store_came_from(struct object *obj, const char *from)
{
    CHECK_OBJ(obj);
    assert(store_on_upstream());
    store_lock();
    object_live(obj)->came_from = from; /* a download's: it has its live part */
    store_unlock();
}

/* Lock not held; `obj` pinned (a reference: eviction and expiry pass it by). Open the hit's
 * file, named by `key` (the object's, as the lookup made it; NULL: made again from its URL).
 * Returns 0; -1 when the file is gone or has another length (the object is dropped and fetched
 * again); -2 when it cannot be opened for now (EMFILE, ENOMEM: a good object is not thrown away for
 * that), with the reason in meta->error. `verified` and `length` are read unlocked: a complete
 * object's length never changes, and `verified` only says whether to stat. */
static int open_hit_file(struct object *obj, const char *key, bool verified, int *fd,
                         struct object_meta *meta)
{
    struct stat sb;
    *fd = key_open(key ? key : OBJECT_KEY(obj));
    if (*fd < 0 && errno != ENOENT) {
        snprintf(meta->error, sizeof(meta->error), "cannot open the cached object: %s",
                 strerror(errno));
        return -2;
    }
    if (*fd < 0)
        return -1;
    if (!verified && (fstat(*fd, &sb) < 0 || sb.st_size != obj->length)) {
        log_error("store: %s: file missing or wrong length, fetching it again", obj->url);
        close(*fd);
        *fd = -1;
        return -1;
    }
    return 0;
}

#define LOOKUP_RETRY (-1)

/* Lock held; an expired complete object. Whether a refresh of it failed upstream a moment ago,
 * and it answers stale meanwhile instead of trying again at once. */
static bool refresh_held(const struct object *obj, int64_t now)
{
    uint32_t failed = object_extra_of(obj)->refresh_failed;
    return failed && now - failed < STORE_STALE_RETRY_S && object_may_stale(obj, now);
}

/* Lock held; an expired complete object leaving the table for a download that refreshes it:
 * kept (a reference taken) when a 304 may renew it or it may answer stale meanwhile; then its
 * file is held open, so that no later rename can put another version under its readers. */
static struct object *keep_as_stale(struct object *obj, int64_t now)
{
    bool may_answer =
        object_may_answer(obj, STALE_ERROR, now) || object_may_answer(obj, STALE_REVALIDATE, now);
    if (!revalidable(obj) && !may_answer)
        return NULL;
    if (may_answer && obj->fd < 0) {
        char path[1200];
        object_path(obj, path, sizeof(path));
        obj->fd = object_open_file(path); /* -1: it cannot answer, it may renew */
    }
    obj->refs++;
    return obj;
}

/* Lock held; a download. Whether its readers take the expired version it refreshes. */
static bool offers_stale(const struct object *obj)
{
    return live_of(obj)->offer_stale && object_stale(obj) && object_stale(obj)->fd >= 0 &&
           !obj->headers_ready &&
           object_may_answer(object_stale(obj), (enum stale_cause)live_of(obj)->offer_stale,
                             now_s());
}

/* Lock held. A hit on the expired version a download refreshes, from the descriptor it holds. */
static int take_stale(struct object *obj, int *fd, struct object_meta *meta)
{
    assert(store_locked() && offers_stale(obj));
    if ((*fd = dup(object_stale(obj)->fd)) < 0) {
        snprintf(meta->error, sizeof(meta->error), "cannot open the cached object: %s",
                 strerror(errno));
        return LOOKUP_UNAVAILABLE;
    }
    copy_meta(object_stale(obj), meta);
    meta->stale = (enum stale_cause)live_of(obj)->offer_stale;
    meta->fwd_status = object_extra_of(obj)->fwd_status;
    return LOOKUP_HIT;
}

/* Lock held; a complete, unexpired object. A hit: its prepared answer, or its file, opened with
 * the lock dropped (open() and the first hit's fstat() held up every other hit before). The
 * object is pinned meanwhile; if it left the table all the same (purged, or a lookup found it
 * expired), a new download may be replacing its file, so the descriptor is not trusted:
 * LOOKUP_RETRY. Otherwise LOOKUP_HIT, LOOKUP_UNAVAILABLE, or LOOKUP_MISS after dropping an
 * object whose file is gone. */
static int take_hit(struct object *obj, const char *key, int *fd, struct prepared **prep,
                    struct object_meta *meta)
{
    CHECK_OBJ(obj);
    assert(store_locked());
    struct prepared *p = live_of(obj)->prepared;
    if (prep && p) {
        atomic_fetch_add(&p->refs, 1);
        *prep = p;
        copy_meta(obj, meta);
        return LOOKUP_HIT;
    }
    bool verified = obj->verified;
    obj->refs++;
    store_unlock();
    int opened = open_hit_file(obj, key, verified, fd, meta);
    store_lock();
    obj->refs--;
    bool gone = !object_in_table(obj);
    maybe_free(obj); /* frees it when gone; else closes a descriptor the last reader left */
    if (gone) {
        if (*fd >= 0)
            close(*fd);
        *fd = -1;
        return LOOKUP_RETRY;
    }
    if (opened == -2)
        return LOOKUP_UNAVAILABLE;
    if (opened == -1) {
        /* Out of the table; its file and row go when the new download replaces them. */
        object_remove(obj, NULL);
        return LOOKUP_MISS;
    }
    obj->verified = true;
    copy_meta(obj, meta);
    obj->hit = true;
    return LOOKUP_HIT;
}

/* One store_lookup_as across its passes under the lock. */
struct lookup {
    const char *url, *key;
    const struct object_keep *keep;
    enum lookup_auth auth;
    bool signed_url;
    int64_t now;
    /* the object whose use the pass before counted (open_after's, in the table under this
     * hold): not counted twice */
    const struct object *noted;
    /* a hit may leave its file's open to the caller, once the lock is dropped (take_quick) */
    bool quick;
    uint64_t renames; /* key_renames_quiet's mark of that hit */
};

#define LOOKUP_OPEN_AFTER (-2)

/* Lock held; a complete, unexpired object whose file was checked (verified), no prepared answer
 * for the caller, no rename of a key's file under way. A hit whose file store_lookup_as opens
 * once the lock is dropped (open_after): one hold of the lock a hit, where take_hit pins the
 * object and takes the lock again after the open (the store's lock is the two workers' most
 * contended). An object not checked yet (a restart's) takes take_hit's road: every hit checks
 * it until one has. */
static int take_quick(struct object *obj, struct object_meta *meta)
{
    CHECK_OBJ(obj);
    assert(store_locked() && obj->state == OBJ_COMPLETE && obj->verified);
    copy_meta(obj, meta);
    obj->hit = true;
    return LOOKUP_OPEN_AFTER;
}

/* Lock held. The object for `key` after a lookup's use of it: a hit (*fd or *prep set), a
 * download to join, or a new one. Its terms act on the object from here on, for a request that
 * may act (store_take_keep); a complete object they say not to store goes at once, with its
 * file and row: never a hit, nor a copy kept to revalidate or answer stale. */
static int lookup_locked(struct lookup *l, struct object **out, int *fd, struct prepared **prep,
                         struct object_meta *meta)
{
    assert(store_locked());
    const char *url = l->url, *key = l->key;
    const struct object_keep *keep = l->keep;
    int64_t now = l->now;
    enum lookup_auth auth = l->auth;
    struct object *obj = object_find_url(url, key), *stale = NULL;
    int res = LOOKUP_MISS;
    *out = NULL;
    if (!obj && negative_find(key, keep, now, meta))
        return LOOKUP_NEGATIVE;
    bool act = obj && may_act(obj, auth);
    /* read before this use is noted: a hit's answer is shared only when hits keep coming */
    bool hot = obj && obj->last_use == wall32(now);
    if (obj && obj != l->noted)
        note_use(obj, keep->ttl, act, now);
    l->noted = NULL; /* this pass's only: take_hit may drop the lock before the next */
    if (act && obj->state == OBJ_COMPLETE && !keep->store) {
        object_remove(obj, STORE_NOT_STORED);
        obj = NULL;
    } else if (act) {
        store_take_keep(obj, keep);
    }
    bool too_old = obj && keep->has_max_age && now - obj->created >= keep->max_age;
    if (obj && obj->state == OBJ_COMPLETE && act && (object_expired(obj, now) || too_old) &&
        !refresh_held(obj, now)) {
        /* Out of the table; its file and row go when the new download replaces them. One with
         * a validator is kept meanwhile (a 304 renews it: revalidation), and so is one that may
         * answer stale while upstream fails or is slow. This request is the new download's
         * use (object_begin counts it), not the expired copy's: a 304 adds the copy's uses to
         * the renewed object, which would count it twice. */
        object_add_uses(obj, -1);
        stale = keep_as_stale(obj, now);
        object_remove(obj, NULL);
        obj = NULL;
    } else if (obj && obj->state == OBJ_FETCHING && offers_stale(obj)) {
        return take_stale(obj, fd, meta);
    } else if (obj && obj->state == OBJ_COMPLETE) {
        const struct prepared *p = live_of(obj)->prepared;
        if (p && p->until && now >= p->until)
            detach_prepared(obj); /* outdated: the hit builds a new one */
        res = l->quick && obj->verified && !(prep && live_of(obj)->prepared) &&
                      key_renames_quiet(&l->renames)
                  ? take_quick(obj, meta)
                  : take_hit(obj, key, fd, prep, meta);
        meta->hot = hot;
        if (res != LOOKUP_MISS)
            return res;
        obj = NULL;
    }
    if (obj) {
        obj->refs++;
        *out = obj;
        copy_meta(obj, meta);
        return LOOKUP_COALESCED;
    }
    negative_forget(key); /* a download of the key begins: its outcome is the word now */
    *out = object_begin(url, key, keep->ttl, now);
    if (*out) {
        struct object_keep own = *keep;
        own.store = keep->store && !(keep->asked_no_store && !stale);
        store_take_keep(*out, &own);
        object_live(*out)->stale = stale;
        (*out)->revalidation = stale && revalidable(stale);
        /* a copy refreshed for a request's max-age is too old for it: never its answer */
        if (stale && stale->fd >= 0 && !too_old && object_may_answer(stale, STALE_REVALIDATE, now))
            object_live(*out)->offer_stale = STALE_REVALIDATE; /* this request too: at once */
        /* marked before the lock drops: no lookup may find a signed URL's download unmarked
         * (an unsigned request would act on it, a digest would take it for public) */
        (*out)->signed_key = l->signed_url || (stale && stale->signed_key);
    } else if (stale) {
        stale->refs--;
        maybe_free(stale);
    }
    return LOOKUP_MISS;
}

struct object_keep store_default_keep(int64_t ttl)
{
    struct object_keep t = {.ttl = ttl,
                            .stale_if_error = -1, /* the store's, as SIGHUP sets them */
                            .stale_while_revalidate = -1,
                            .max_object_size = st.max_object_size,
                            .store = true,
                            .pin = false};
    return t;
}

enum lookup_result store_lookup(const char *url, int64_t ttl, struct object **out, int *fd,
                                struct prepared **prep, struct object_meta *meta)
{
    struct object_keep keep = store_default_keep(ttl);
    return store_lookup_as(url, &keep, AUTH_CONFIRMED, false, out, fd, prep, meta);
}

int64_t store_age(const char *url)
{
    char key[65];
    int64_t age = -1, now = now_s();
    struct object *obj;
    url_key(url, key);
    store_lock();
    if ((obj = object_find_url(url, key)) && obj->state == OBJ_FETCHING && object_stale(obj))
        obj = object_stale(obj); /* being refreshed: its copy's age until the new one is in */
    if (obj && obj->state == OBJ_COMPLETE)
        age = now - obj->created;
    store_unlock();
    return age < 0 ? (obj && obj->state == OBJ_COMPLETE ? 0 : -1) : age;
}

/* Lock not held: take_quick's hit. Its key's file opened: LOOKUP_HIT when that file is the
 * object's, no rename under a key having begun since the hit was taken (the kernel orders the
 * rename's path change after key_rename's count, and this open's walk before the load that
 * reads it). Otherwise (a rename meanwhile, the file gone or not to be opened for now) the
 * lock is taken again and the lookup goes on as take_hit would, which says what the file is;
 * an answer from the same object keeps what the first pass said of it (hit, hot), before its
 * own use. */
static int open_after(struct lookup *l, struct object **out, int *fd, struct object_meta *meta)
{
    *fd = key_open(l->key);
    if (*fd >= 0 && !key_renamed_since(l->renames))
        return LOOKUP_HIT;
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
    uint8_t tag[4];
    uint32_t gen = meta->gen;
    bool hit = meta->hit, hot = meta->hot;
    memcpy(tag, meta->tag, sizeof(tag));
    store_lock();
    l->noted = object_find_gen(tag, gen);
    l->quick = false;
    int res;
    while ((res = lookup_locked(l, out, fd, NULL, meta)) == LOOKUP_RETRY)
        ;
    store_unlock();
    if (res == LOOKUP_HIT && meta->gen == gen && !memcmp(meta->tag, tag, sizeof(tag))) {
        meta->hit = hit;
        meta->hot = hot;
    }
    return res;
}

enum lookup_result store_lookup_as(const char *url, const struct object_keep *keep,
                                   enum lookup_auth auth, bool signed_url, struct object **out,
                                   int *fd, struct prepared **prep, struct object_meta *meta)
{
    char key[65];
    struct lookup l = {.url = url,
                       .key = key,
                       .keep = keep,
                       .auth = auth,
                       .signed_url = signed_url,
                       .now = now_s(),
                       .quick = true};
    int res;

    *fd = -1;
    if (prep)
        *prep = NULL;
    url_key(url, key);
    store_lock();
    while ((res = lookup_locked(&l, out, fd, prep, meta)) == LOOKUP_RETRY)
        ; /* the object left the table while its file was opened: look again */
    store_unlock();
    if (res == LOOKUP_OPEN_AFTER)
        res = open_after(&l, out, fd, meta);
    return (enum lookup_result)res;
}

int store_purge(const char *url, int64_t *length)
{
    char key[65];
    struct object *obj;
    int rc = 0;

    url_key(url, key);
    store_lock();
    obj = object_find_url(url, key);
    if (!obj && negative_forget(key)) { /* a negative answer: purged as an object would be */
        *length = 0;
        rc = 1;
    } else if (obj && obj->state != OBJ_COMPLETE) {
        rc = -1;
    } else if (obj) {
        *length = obj->length;
        object_remove(obj, "purged"); /* clients streaming it finish from their open file */
        rc = 1;
    }
    store_unlock();
    return rc;
}

/* Lock held. The kept copy of `key` whose bytes hash to `digest`, at most `max` bytes long: the
 * complete object, or the expired copy its download refreshes (not purged: it is kept until
 * the answer). Its length and its file's path; for a refreshed copy whose file is held open, a
 * duplicate of that descriptor in *fd (no later rename puts another version under it), else
 * -1. -1 when no such copy is kept. */
static int64_t kept_copy(const char *url, const char *key, const uint8_t digest[32], size_t max,
                         int *fd, char *path, size_t size)
{
    assert(store_locked());
    struct object *obj = object_find_url(url, key);
    *fd = -1;
    if (obj && obj->state == OBJ_FETCHING && object_stale(obj) && !object_stale(obj)->purged)
        obj = object_stale(obj);
    else if (!obj || obj->state != OBJ_COMPLETE)
        return -1;
    if (memcmp(obj->digest, digest, 32) || obj->length < 0 || (uint64_t)obj->length > max)
        return -1;
    if (obj->state != OBJ_COMPLETE && obj->fd >= 0)
        *fd = dup(obj->fd); /* -1: its path, as a complete object's */
    object_path(obj, path, size);
    return obj->length;
}

int store_read_kept(const char *url, const uint8_t digest[32], size_t max, char **out, size_t *len)
{
    char key[65], path[1200];
    uint8_t got[32];
    int fd;
    url_key(url, key);
    store_lock();
    int64_t length = kept_copy(url, key, digest, max, &fd, path, sizeof(path));
    store_unlock();
    /* read unlocked: a file replaced meanwhile (a new version's rename) hashes to another
     * digest, and is not taken */
    *out = length >= 0 ? object_read_file(fd, path, length) : NULL;
    if (!*out || !EVP_Digest(*out, (size_t)length, got, NULL, EVP_sha256(), NULL) ||
        memcmp(got, digest, 32) != 0) {
        free(*out);
        *out = NULL;
        return -1;
    }
    *len = (size_t)length;
    return 0;
}

void store_unwait(struct object *obj, struct park *w)
{
    CHECK_OBJ(obj);
    store_lock();
    if (live_part(obj)) /* none: the waiter was woken and its queue let go of (object_shed_live) */
        park_remove(&live_part(obj)->waiters, w);
    store_unlock();
}

bool store_wait(struct object *obj, bool complete, struct park *w, struct object_meta *meta)
{
    CHECK_OBJ(obj);
    bool ready;
    store_lock();
    bool stale = obj->state == OBJ_FETCHING && offers_stale(obj); /* the caller takes that */
    ready = (obj->headers_ready && !complete) || obj->state != OBJ_FETCHING || stale;
    if (!ready)
        park_enqueue(&object_live(obj)->waiters, w);
    else if (obj->state == OBJ_FETCHING && !stale)
        obj->committed = true; /* the caller now answers with this length and type */
    if (ready) /* under the same hold: a later snapshot could see the offer gone, headers in */
        copy_meta(obj, meta);
    store_unlock();
    return ready;
}

/* Set once by the upstream loop (store_set_hold_wake); called from readers' threads. */
static void (*_Atomic hold_wake)(void);

void store_set_hold_wake(void (*wake)(void))
{
    atomic_store(&hold_wake, wake);
}

/* Lock held. Where this reader's bytes stop for now: the last byte written is held back while
 * FETCHING, and a reader with a digest to check also waits for completion before its own last
 * byte. */
static int64_t readable_end(const struct object *obj, const struct read_range *want)
{
    assert(store_locked());
    int64_t end = object_whole(obj) ? object_have(obj) : object_have(obj) - 1;
    if (want->expect && !object_whole(obj) && want->end >= 0 && end > want->end - 1)
        end = want->end - 1;
    return end;
}

/* Lock held; the object downloads. The `have` this reader's next span waits for: `min` bytes
 * past `off`, or all it wants when that is less (the byte before `have` is held back, so
 * `have` must pass the last byte wanted), or the whole body when the span reaches its end (no
 * byte comes after it to pass). off + 1: it takes any byte, because those there have waited a
 * hold out already, or the download has ended (end_hold), or it has no `min`. */
static int64_t span_until(const struct object *obj, int64_t off, const struct read_range *want)
{
    assert(store_locked() && obj->state == OBJ_FETCHING);
    int64_t until = off + (int64_t)want->min;
    if (!want->min || off < live_of(obj)->flush_mark - 1)
        return off + 1;
    if (want->end >= 0 && until > want->end)
        until = want->end;
    if (obj->length >= 0 && until >= obj->length)
        return obj->length;
    return until + 1;
}

/* Lock held. The reader sleeps until its span is there (store_announce). Returns true when it is
 * the first held while bytes are there: the caller wakes the upstream loop, which ends the hold
 * in time even if no byte comes. */
static bool park_reader(struct object *obj, int64_t off, int64_t readable,
                        const struct read_range *want, struct park *w)
{
    bool first = false;
    assert(store_locked());
    w->until = span_until(obj, off, want);
    if (off < readable && !live_of(obj)->hold_since) {
        object_live(obj)->hold_since = monotonic_ms();
        first = true;
    }
    park_enqueue(&object_live(obj)->waiters, w);
    return first;
}

ssize_t store_span(struct object *obj, int64_t off, size_t max, const struct read_range *want,
                   struct park *w, int *fd)
{
    int64_t readable;
    ssize_t n = 0;
    bool held = false;

    CHECK_OBJ(obj);
    store_lock();
    if (obj->state == OBJ_FAILED) {
        n = STORE_READ_FAILED;
    } else if (want->expect && object_whole(obj) && memcmp(obj->digest, want->expect, 32) != 0) {
        n = STORE_READ_MISMATCH;
    } else if (off >= (readable = readable_end(obj, want)) || max == 0 || obj->fd < 0 ||
               (obj->state == OBJ_FETCHING && object_have(obj) < span_until(obj, off, want))) {
        /* (no descriptor yet: a download resumed after a restart, its file not reopened) */
        if (object_whole(obj)) {
            n = STORE_READ_END;
        } else {
            held = park_reader(obj, off, readable, want, w);
        }
    } else {
        assert(readable <= object_have(obj) && off >= 0);
        if ((int64_t)max > readable - off)
            max = (size_t)(readable - off);
        /* Set before the lock drops: from now on a restart from zero would corrupt this reader. */
        obj->delivered = true;
        *fd = obj->fd;
        n = (ssize_t)max;
    }
    store_unlock();
    void (*wake)(void) = held ? atomic_load(&hold_wake) : NULL;
    if (wake)
        wake();
    return n;
}

ssize_t store_read(struct object *obj, int64_t off, char *buf, size_t max,
                   const struct read_range *want, struct park *w)
{
    int fd = -1;
    ssize_t n = store_span(obj, off, max, want, w, &fd);
    if (n <= 0)
        return n;
    /* Bytes below `have` never change, and our reference keeps obj->fd open. */
    n = pread(fd, buf, (size_t)n, off);
    return n > 0 ? n : STORE_READ_FAILED;
}

void store_snapshot(struct object *obj, struct object_meta *out)
{
    CHECK_OBJ(obj);
    store_lock();
    copy_meta(obj, out);
    store_unlock();
}

/* Lock held. A twin's bytes from the expired copy its download refreshes, from the descriptor
 * that copy holds: the digest's bytes, answered as a hit (not stale: a digest does not age). */
static int take_refreshing(struct object *obj, int *fd, struct object_meta *meta)
{
    assert(store_locked() && object_stale(obj) && object_stale(obj)->fd >= 0);
    if ((*fd = dup(object_stale(obj)->fd)) < 0)
        return LOOKUP_MISS; /* downloaded as itself */
    copy_meta(object_stale(obj), meta);
    meta->stale = STALE_NONE;
    return LOOKUP_HIT;
}

/* A digest hit answers only the request that gave the digest: the URL gets no object from it (its
 * own download makes one), so a client cannot plant bytes for the URL's other clients. */
enum lookup_result store_open_twin(const char *url, const uint8_t want[32],
                                   twin_allowed_fn *allowed, const void *arg, int *fd,
                                   struct object_meta *meta)
{
    char key[65];
    struct object *twin;
    int res = LOOKUP_MISS;
    *fd = -1;
    url_key(url, key);
    store_lock();
    /* A twin whose file is gone leaves the table (LOOKUP_MISS): the next one is tried. */
    while (!object_find_url(url, key) && (twin = twins_shareable(want, allowed, arg)) &&
           ((res = take_hit(twin, NULL, fd, NULL, meta)) == LOOKUP_RETRY || res == LOOKUP_MISS))
        res = LOOKUP_MISS;
    if (res != LOOKUP_HIT && !object_find_url(url, key) &&
        (twin = twins_refreshing(want, allowed, arg)))
        res = take_refreshing(twin, fd, meta);
    store_unlock();
    return res == LOOKUP_HIT ? LOOKUP_DIGEST : LOOKUP_MISS;
}
