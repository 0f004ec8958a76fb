/* The room objects take on disk: the quota, eviction (expired copies first, then the least
 * recently used), expiry, and the usage the index is told of (store_room.h). Every change of an
 * object's state is asked of object.c; SQLite and unlink are the persistence thread's (persist.h).
 */
#include "store/store_room.h"
#include "base/clock.h"
#include "base/parse.h"
#include "persist/index.h"
#include "persist/persist.h"
#include "store/object.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Expiry looks at STORE_EXPIRE_CHUNK buckets per step, one hold of the lock; the upstream thread
 * takes a step every few milliseconds (STORE_EXPIRE_STEP_MS): a table of a million objects is swept
 * in about 16 s (longer while the disk is behind with removals: store_evict_ahead). Its objects are
 * cold there: 4096 buckets held the lock 0.7 ms on average (2.3 ms at most, its thread
 * preempted), 512 hold it about 0.1 ms. A second's 128 chunks taken back to back, as the sweep
 * was until 2026-11-29, gave the lock to the workers hardly ever between them (a mutex is not a
 * queue): every second all hits waited 6-20 ms, and the p99 of random hits at 10,000 a second
 * over a million objects was 0.9-2.6 ms (nginx on the same files: 0.25). */

/* --- which object goes when room is needed ------------------------------------------------
 *
 * Expired objects kept for a revalidation or a stale answer (--keep-expired, stale-if-error) go
 * before fresh ones, each class least recently used first (docs/CACHING.md, "Quota"). The LRU
 * list holds both classes in use order; the expired ones are found by the expiry sweep, which
 * visits every object anyway, and kept in a heap by last use: eviction then costs a heap pop,
 * not a walk of the list (a scan of a big table here stalled every hit for tens of ms).
 *
 * An entry names its object by key, never by pointer (the object may be freed meanwhile), and
 * is checked when taken: still in the table, complete, expired, and used last when the entry
 * says (an object used since goes back in under its new time). Each sweep round builds the next
 * heap while eviction takes from the one the last round built; at most EXPIRED_KNOWN entries a
 * round (beyond them, expired objects go in the fresh objects' order). */
#define EXPIRED_KNOWN 65536

/* An expired object as the heap keeps it: found again by its tag and generation (object_find_gen:
 * a new version of its URL is another object), for it may be gone when the heap is read. */
struct expired_entry {
    int64_t last_use;
    uint8_t tag[4];
    uint32_t gen;
};

struct expired_heap {
    struct expired_entry *v;
    size_t n, cap;
};

/* Lock held: eviction takes from the ready heap; the sweep round in course builds the next. */
static struct expired_heap ready_heap, next_heap;

static void heap_swap(struct expired_heap *h, size_t a, size_t b)
{
    struct expired_entry t = h->v[a];
    h->v[a] = h->v[b];
    h->v[b] = t;
}

/* Lock held. In by its last use; false when the heap is full or out of memory. */
static bool heap_push(struct expired_heap *h, const struct object *o)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        struct expired_entry *v = cap <= EXPIRED_KNOWN ? realloc(h->v, cap * sizeof(*v)) : NULL;
        if (!v)
            return false;
        h->v = v;
        h->cap = cap;
    }
    size_t i = h->n++;
    h->v[i].last_use = o->last_use;
    memcpy(h->v[i].tag, o->tag, sizeof(h->v[i].tag));
    h->v[i].gen = o->gen;
    for (; i > 0 && h->v[(i - 1) / 2].last_use > h->v[i].last_use; i = (i - 1) / 2)
        heap_swap(h, i, (i - 1) / 2);
    return true;
}

/* Lock held. The least recently used entry out into *out; false when empty. */
static bool heap_pop(struct expired_heap *h, struct expired_entry *out)
{
    if (h->n == 0)
        return false;
    *out = h->v[0];
    h->v[0] = h->v[--h->n];
    for (size_t i = 0, least;; i = least) {
        size_t l = 2 * i + 1, r = l + 1;
        least = i;
        if (l < h->n && h->v[l].last_use < h->v[least].last_use)
            least = l;
        if (r < h->n && h->v[r].last_use < h->v[least].last_use)
            least = r;
        if (least == i)
            break;
        heap_swap(h, i, least);
    }
    return true;
}

/* Lock held. The least recently used expired object nobody streams and nobody pinned, or NULL.
 * An object streamed (or pinned) now is left out until the next round finds it again. */
static struct object *expired_victim(int64_t now)
{
    struct expired_entry e;
    while (heap_pop(&ready_heap, &e)) {
        struct object *o = object_find_gen(e.tag, e.gen);
        if (!o || o->state != OBJ_COMPLETE || !object_expired(o, now) || o->refs > 0 || o->pinned)
            continue;                    /* gone, refreshed, renewed, busy or pinned */
        if (o->last_use != e.last_use) { /* used since: its place is further on */
            heap_push(&ready_heap, o);
            continue;
        }
        return o;
    }
    return NULL;
}

/* Lock held. The first object of `list` nobody streams, or NULL. The LRU lists are kept in use
 * order by every hit (a move to its tail), so this is the least recently used one. */
static struct object *first_idle(const struct dlist *list)
{
    for (struct dnode *d = list->head; d; d = d->next) {
        struct object *o = DLIST_ENTRY(d, struct object, lru);
        if (o->refs == 0)
            return o;
    }
    return NULL;
}

/* Least recently used complete object that nobody streams, or NULL: an expired unpinned copy,
 * else a fresh unpinned object, else (*pinned set) a pinned one: pinned objects are on a list
 * of their own, walked only once no other object can go. */
static struct object *lru_victim(bool *pinned)
{
    assert(store_locked());
    struct object *victim = expired_victim((int64_t)time(NULL));
    if (!victim)
        victim = first_idle(&st.lru);
    *pinned = !victim;
    return victim ? victim : first_idle(&st.pinned);
}

/* Lock held. Out of the table; its file and row go on the persistence thread, so hits never
 * wait on unlink or SQLite; the log says `why`. */
static void evict(struct object *obj, const char *why)
{
    assert(store_locked());
    object_remove(obj, why);
}

/* Lock held. At most `most` evictions until `bytes` more fit under `ceiling`: 0 done, 1 more to
 * evict, -1 no object left that may go. */
static int evict_some(int64_t bytes, size_t most, int64_t ceiling)
{
    bool pinned;
    for (size_t n = 0; st.usage + bytes > ceiling; n++) {
        if (n == most)
            return 1;
        struct object *victim = lru_victim(&pinned);
        if (!victim)
            return -1;
        evict(victim, pinned ? "evicted for room: pinned, but no unpinned object was left"
                             : "evicted for room");
    }
    return 0;
}

/* Over the quota (it shrank: store_evict_over_quota takes the store down to it a slice at a time),
 * a download's room is what it adds beyond the usage now: in one hold, evicting the whole excess
 * held every hit up as long as the eviction took. */
int room_make(int64_t bytes)
{
    assert(store_locked());
    int64_t ceiling = st.usage > st.quota ? st.usage : st.quota;
    return evict_some(bytes, SIZE_MAX, ceiling) < 0 ? -1 : 0;
}

/* Evictions per hold of the lock when the quota shrank (SIGHUP): a tenth of a million objects
 * evicted in one hold held every hit up for about 100 ms; this many hold it 1-5 ms at a million
 * objects. Holds of 250 µs instead made that eviction twice as long and the hits' p99 beside it
 * no better (3f5e05f). */
#define EVICT_PER_HOLD 1024
/* Holds a tick (store_evict_over_quota, once a second) of that eviction: 32,768 objects a second at
 * most, and none more once EVICT_TICK_US have gone by in the tick (holds and pauses: the last hold
 * and its pause may end past it), so that the upstream thread drives its downloads most of each
 * second, and the persistence thread's unlinks and row deletes come at a pace the disk serves
 * hits beside. */
int store_evict_holds = 32;
#define EVICT_TICK_US 100000
/* Removals owed (submitted, their files not unlinked yet: object_removals_owed) that the expiry
 * sweep's next step and a shrunk quota's eviction may not take past (about as many as either
 * makes at most): they wait instead. Only removals count, so other work queued (a stream of
 * misses, a download's room) never holds them up, and those owed always drain. The sweep's step
 * once a second goes anyway (its round finds what eviction takes): at most 512 a second beyond
 * it. A tick's first hold of the eviction went anyway too, beside every job queued: where the
 * thread made fewer than 1,024 removals a second (ASan beside a CPU-heavy job) the queue grew
 * to 14,349 jobs in test_big_evict. Without the bound, 100,000 of a million objects were
 * evicted in 3-4 s while their rows and files took the persistence thread 13 s (each a row's
 * delete and an unlink, 90 µs of the thread here): that many jobs in memory, a stop's drain as
 * long, and a usage that said freed what the disk still held. 8192 is about a second of the
 * thread's removals. */
size_t store_evict_ahead = 8192;

struct touch {
    size_t url;         /* its URL in the job's `urls`: its key made here, not under the lock */
    uint8_t digest[32]; /* with `created`, the version the journal's record names */
    int64_t created, last_use, usage, ttl;
    /* a later lookup's terms may have pinned or unpinned it, or changed its windows */
    int32_t keep_if_error, keep_while;
    bool pinned;
};

struct touch_job {
    struct persist_job job;
    struct touch *batch;
    size_t n;
    char *urls; /* the batch's URLs, each with its NUL, one after the other */
    size_t urls_len, urls_size;
};

/* Lock held. `url` copied to the job's URLs, its place into *at: false when out of memory. */
static bool keep_url(struct touch_job *t, const char *url, size_t *at)
{
    size_t len = strlen(url) + 1;
    if (t->urls_len + len > t->urls_size) {
        size_t size = 2 * (t->urls_size + len);
        char *more = realloc(t->urls, size);
        if (!more)
            return false;
        t->urls = more;
        t->urls_size = size;
    }
    memcpy(t->urls + t->urls_len, url, len);
    *at = t->urls_len;
    t->urls_len += len;
    return true;
}

static void touch_job_free(struct touch_job *t)
{
    free(t->urls);
    free(t->batch);
    free(t);
}

/* One transaction for the whole batch. */
static void run_touch(struct persist_job *job)
{
    struct touch_job *t = (struct touch_job *)job;
    char key[65];
    index_begin();
    for (size_t i = 0; i < t->n; i++) {
        const struct touch *e = &t->batch[i];
        const char *url = t->urls + e->url;
        url_key(url, key); /* the key (object_key), off the lock */
        struct index_row row = {.key = key,
                                .digest = e->digest,
                                .created = e->created,
                                .last_use = e->last_use,
                                .usage = e->usage,
                                .ttl = e->ttl,
                                .pinned = e->pinned,
                                .keep_if_error = e->keep_if_error,
                                .keep_while = e->keep_while};
        index_touch(&row);
    }
    index_commit();
    touch_job_free(t);
}

/* Objects a flush takes off the dirty queue per hold of the lock: 20,000 in one hold stalled
 * every hit for 5-8 ms, and each object is a few cache misses (its key, its links); at a
 * million objects 1024 held it 1.1 ms on average (12 ms at most, its thread preempted). */
#define TOUCH_CHUNK 256

/* At most this many chunks a flush (16,384 objects every USAGE_FLUSH_MS). Each is a record of
 * the usage journal (persist/usage_log.h), 72 bytes appended: when each was an UPDATE of its
 * row, 16,384 of them cost the persistence thread 0.6 s of a core every 10 s and the hits' p99
 * went from 0.2 to 3-11 ms meanwhile. The bound keeps a flush's holds of the lock and its
 * journal's growth what a busy small store's are; the dirty queue is in order of first use
 * since an object's last flush (lookup.c), so an object waits at most its place in the queue
 * divided by 16,384 flushes (a million objects dirty: 10 minutes), less as quiet seconds
 * take more (store_flush_usage_quiet). A stop writes the whole queue; a crash loses what
 * waited. */
int store_flush_chunks = 64;

/* Lock held. The usage of objects used since the last flush, the first TOUCH_CHUNK complete ones
 * of the dirty queue (*seen: how many), taken out of it (a big table costs nothing here), or
 * NULL when there is none or no memory (they stay dirty). A download met on the way goes to
 * the queue's tail: its row is written whole when it completes. */
static struct touch_job *collect_touches(size_t *seen)
{
    assert(store_locked());
    struct touch_job *t = calloc(1, sizeof(*t));
    size_t queued = st.dirty.count; /* the downloads put back are not met again */
    uint32_t *place;
    *seen = 0;
    size_t room = queued < TOUCH_CHUNK ? queued : TOUCH_CHUNK;
    if (!t || !room || !(t->batch = malloc(room * sizeof(*t->batch)))) {
        free(t);
        return NULL;
    }
    t->job.run = run_touch;
    for (; queued > 0 && *seen < TOUCH_CHUNK && (place = ring_take(&st.dirty)); queued--) {
        struct object *o = RING_ENTRY(place, struct object, dirty);
        if (o->state != OBJ_COMPLETE) {
            /* back at the tail (out of memory it is not: its row is written whole when it
             * completes, uses and all) */
            ring_add(&st.dirty, place);
            continue;
        }
        struct touch *e = &t->batch[t->n];
        if (!keep_url(t, o->url, &e->url)) {
            ring_add(&st.dirty, place); /* out of memory: it stays dirty */
            break;
        }
        (*seen)++;
        t->n++;
        memcpy(e->digest, o->digest, sizeof(e->digest));
        e->created = o->created;
        e->last_use = o->last_use;
        e->usage = o->usage;
        e->ttl = o->ttl;
        e->pinned = o->pinned;
        e->keep_if_error = object_extra_of(o)->keep_if_error;
        e->keep_while = object_extra_of(o)->keep_while;
    }
    if (t->n == 0) {
        touch_job_free(t);
        return NULL;
    }
    return t;
}

/* Submitted under the lock, like removals: a row is never touched after it was removed. A chunk
 * per hold of the lock, until a chunk finds the list's end (or store_flush_chunks of them: true,
 * more is left). */
bool store_flush_usage(void)
{
    size_t seen = TOUCH_CHUNK;
    assert(store_on_upstream());
    for (int chunk = 0; chunk < store_flush_chunks && seen == TOUCH_CHUNK; chunk++) {
        store_lock();
        struct touch_job *t = collect_touches(&seen);
        if (t)
            persist_submit_background(&t->job); /* nobody waits for it (persist.h) */
        store_unlock();
    }
    return seen == TOUCH_CHUNK;
}

void store_flush_usage_quiet(void)
{
    static int64_t last_uses = -1; /* the upstream thread's alone */
    assert(store_on_upstream());
    store_lock();
    int64_t uses = st.uses;
    bool waiting = st.dirty.count > 0;
    store_unlock();
    bool quiet = uses == last_uses;
    last_uses = uses;
    if (quiet && waiting)
        store_flush_usage();
}

void store_set_quota(int64_t quota)
{
    store_lock();
    st.quota = quota;
    store_unlock();
}

void store_set_stale(int64_t stale_if_error, int64_t stale_while_revalidate)
{
    store_lock();
    st.stale_if_error = stale_if_error;
    st.stale_while_revalidate = stale_while_revalidate;
    store_unlock();
}

/* --- how long an expired object stays, and answers stale ------------------------------- */

static int32_t seconds32(int64_t s)
{
    return (int32_t)(s > INT32_MAX ? INT32_MAX : s);
}

/* A terms' window as an object keeps it: seconds, or -1 (any negative: the options'). */
static int32_t keep32(int64_t s)
{
    return s < 0 ? -1 : seconds32(s);
}

void object_set_staleness(struct object *obj, int64_t if_error, int64_t while_revalidate)
{
    CHECK_OBJ(obj);
    assert(obj->state == OBJ_NEW || store_locked());
    object_set_stale_windows(obj, seconds32(if_error), seconds32(while_revalidate));
}

int64_t object_stale_if_error(const struct object *obj)
{
    assert(store_locked_or_alone());
    const struct object_extra *x = object_extra_of(obj);
    if (x->stale_if_error >= 0)
        return x->stale_if_error;
    return x->keep_if_error >= 0 ? x->keep_if_error : st.stale_if_error;
}

/* Lock held. Its origin's stale-while-revalidate, else its terms', else
 * --stale-while-revalidate. */
static int64_t object_stale_while(const struct object *obj)
{
    assert(store_locked_or_alone());
    const struct object_extra *x = object_extra_of(obj);
    if (x->stale_while_revalidate >= 0)
        return x->stale_while_revalidate;
    return x->keep_while >= 0 ? x->keep_while : st.stale_while_revalidate;
}

bool object_may_stale(const struct object *obj, int64_t now)
{
    int64_t window = object_stale_if_error(obj);
    return !obj->purged && window > 0 && now - obj->created - obj->ttl < window;
}

bool object_may_answer(const struct object *obj, enum stale_cause cause, int64_t now)
{
    if (obj->purged) /* a purge's promise: its bytes are not answered again */
        return false;
    if (cause == STALE_REVALIDATE)
        return now - obj->created - obj->ttl < object_stale_while(obj);
    return object_may_stale(obj, now);
}

/* Lock held. How long past its expiry an object stays: to be revalidated (--keep-expired) or to
 * answer while upstream fails (--stale-if-error), whichever is longer. */
static int64_t kept_for(const struct object *o)
{
    int64_t revalidate = revalidable(o) ? st.keep_expired : 0, stale = object_stale_if_error(o);
    return revalidate > stale ? revalidate : stale;
}

/* Lock held. Evicts the expired objects in buckets [from, to). */
static void expire_buckets(size_t from, size_t to, int64_t now)
{
    assert(store_locked());
    for (size_t i = from; i < to; i++) {
        for (struct object *o = object_slot(i), *next; o; o = next) {
            next = object_next(o);
            if (o->state != OBJ_COMPLETE || !object_expired(o, now))
                continue;
            if (o->refs == 0 && now - o->created >= o->ttl + kept_for(o))
                evict(o, "expired");
            else /* kept past its ttl: the first to go when room is needed */
                heap_push(&next_heap, o);
        }
    }
}

/* Whether `more` removals would put them further ahead of the disk than store_evict_ahead. */
static bool removals_ahead(size_t more)
{
    return object_removals_owed() + more > store_evict_ahead;
}

/* An expired object only holds disk (lookups revalidate or refuse it), so the sweep may take a
 * while over a big table. Each step resumes where the last one stopped. */
int store_expire_step(bool always)
{
    assert(store_on_upstream());
    if (!always && removals_ahead(STORE_EXPIRE_CHUNK))
        return -1; /* the disk is behind: its removals first, the round goes on later */
    int64_t now = (int64_t)time(NULL);
    store_lock();
    size_t from = st.expire_cursor, to = from + STORE_EXPIRE_CHUNK;
    bool wrapped = to >= object_slots();
    if (wrapped)
        to = object_slots();
    expire_buckets(from, to, now);
    st.expire_cursor = wrapped ? 0 : to;
    if (wrapped) { /* the round is over: what it found is what eviction takes from now */
        struct expired_heap done = ready_heap;
        ready_heap = next_heap;
        next_heap = (struct expired_heap){done.v, 0, done.cap};
    }
    store_unlock();
    return wrapped ? 0 : 1;
}

void store_evict_over_quota(void)
{
    assert(store_on_upstream());
    /* the quota may have shrunk (SIGHUP): a slice per hold with a purge's pauses
     * (store_unlock_slice), store_evict_holds holds and EVICT_TICK_US a tick at most, so that
     * the upstream thread's downloads wait about 100 ms a second at most. Relocked at once until
     * the quota was reached, the eviction of 100,000 of a million objects held them up 0.3 s at
     * once, and put the hits' p99 at 43-246 ms (alone 1.1-8) */
    int64_t start = monotonic_us();
    if (removals_ahead(EVICT_PER_HOLD))
        return; /* the disk is behind: its removals first, the next tick goes on */
    for (int holds = 1;; holds++) {
        int64_t since = store_lock_slice();
        bool again = evict_some(0, EVICT_PER_HOLD, st.quota) == 1 && holds < store_evict_holds &&
                     monotonic_us() - start < EVICT_TICK_US && !removals_ahead(EVICT_PER_HOLD);
        store_unlock_slice(since, again);
        if (!again)
            return;
    }
}

/* From kept totals and the fetching list (a handful): a scan of a million-object table held the
 * lock for 40 ms on every status request. A FETCHING object is scheduled until its file exists. */
void store_totals(struct store_totals *t)
{
    memset(t, 0, sizeof(*t));
    store_lock();
    t->disk_usage = st.usage;
    t->quota = st.quota;
    for (struct dnode *d = st.fetching.head; d; d = d->next) {
        if (DLIST_ENTRY(d, struct object, lru)->fd < 0)
            t->scheduled++;
        else
            t->downloading++;
    }
    t->complete = (int64_t)st.objects.count - t->scheduled - t->downloading;
    t->usage = st.uses;
    t->pinned_objects = st.pinned_objects;
    t->pinned_bytes = st.pinned_bytes;
    store_unlock();
}

/* --- what a request's terms make of an object ------------------------------------------- */

/* Lock held. A complete object changes LRU lists (and the pinned totals) with its pin; one not
 * complete only notes it: it joins its list as it completes. */
static void set_pinned(struct object *obj, bool pinned)
{
    assert(store_locked());
    if (obj->pinned == pinned)
        return;
    bool listed = obj->state == OBJ_COMPLETE;
    if (listed) {
        object_count_pin(obj, -1);
        dlist_remove(object_lru(obj), &obj->lru);
    }
    obj->pinned = pinned;
    if (listed) {
        dlist_append(object_lru(obj), &obj->lru);
        object_count_pin(obj, 1);
    }
}

void object_row_keep(const struct object *obj, struct index_row *row)
{
    assert(store_locked_or_alone());
    row->pinned = obj->pinned;
    row->keep_if_error = object_extra_of(obj)->keep_if_error;
    row->keep_while = object_extra_of(obj)->keep_while;
    row->max_size = live_of(obj)->max_size;
    row->not_stored = obj->transient;
}

void object_take_row_keep(struct object *obj, const struct index_row *row)
{
    CHECK_OBJ(obj);
    assert(obj->state == OBJ_NEW);
    obj->pinned = row->pinned;
    object_set_keep_windows(obj, keep32(row->keep_if_error), keep32(row->keep_while));
    if (row->max_size >= 0 && live_part(obj)) /* -1: none recorded (a complete row, an older
                                             index); a complete object at rest has no use for it */
        live_part(obj)->max_size = row->max_size;
}

struct policy_job {
    struct persist_job job;
    char key[65];
    struct index_row row;
};

static void run_keep(struct persist_job *job)
{
    struct policy_job *t = (struct policy_job *)job;
    index_set_keep(&t->row);
    free(t);
}

/* Lock held. A download's row follows its terms, for a restart to apply them again
 * (store_resume.c). Queued under the lock, as its started row is (submit_started), so the later
 * of the two is written last. Out of memory: the row keeps the terms it had. */
static void submit_keep(struct object *obj)
{
    struct policy_job *t = calloc(1, sizeof(*t));
    if (!t)
        return;
    t->job.run = run_keep;
    object_key(obj, t->key);
    object_row_keep(obj, &t->row);
    t->row.key = t->key;
    persist_submit(&t->job);
}

static bool same_keep(const struct index_row *a, const struct index_row *b)
{
    return a->pinned == b->pinned && a->keep_if_error == b->keep_if_error &&
           a->keep_while == b->keep_while && a->max_size == b->max_size &&
           a->not_stored == b->not_stored;
}

void store_take_keep(struct object *obj, const struct object_keep *keep)
{
    struct index_row before, after;
    CHECK_OBJ(obj);
    assert(store_locked() && object_in_table(obj));
    /* a download's row follows its terms; a hit's (every request's path) is written at its end,
     * and a refresh has no row of its own (its older version's stays as it is) */
    bool row = obj->state == OBJ_FETCHING && !object_stale(obj);
    if (row)
        object_row_keep(obj, &before);
    object_set_keep_windows(obj, keep32(keep->stale_if_error),
                            keep32(keep->stale_while_revalidate));
    if (live_part(
            obj)) { /* at rest, a complete object has no use for them: they are a download's */
        live_part(obj)->max_size = keep->max_object_size;
        live_part(obj)->negative_ttl = seconds32(keep->negative_ttl);
    }
    set_pinned(obj, keep->pin);
    if (obj->state == OBJ_FETCHING)
        obj->transient = !keep->store || obj->purged;
    if (!row)
        return;
    object_row_keep(obj, &after);
    if (!same_keep(&before, &after))
        submit_keep(obj);
}

void object_forsake(struct object *obj)
{
    CHECK_OBJ(obj);
    assert(store_locked() && obj->state == OBJ_FETCHING);
    obj->purged = true;
    if (obj->transient)
        return;
    obj->transient = true;
    if (!object_stale(obj)) /* a refresh has no row of its own (store_take_keep) */
        submit_keep(obj);
}
