/*
 * object.h — the bottom of store/: the object, the store's state and lock, and every change of an
 * object's state. Internal to store/: other modules hold a struct object only by reference and
 * use store.h.
 *
 * Contract:
 * - One mutex (store_lock/store_unlock) guards the table, the lists, the quota counters and every
 *   object's fields below `fd`, but for what its download's own threads read without it:
 *   `state` in their asserts, and the flags headers_ready, resumed and resumable (bytes of their
 *   own, never bit-fields, so that a write of a neighbour under the lock is no race); and `gen`,
 *   which every thread's CHECK_OBJ reads, written once before the object is shared.
 * store_locked() says whether the calling thread holds it: every function documented "lock held"
 * asserts it, or that main is alone (before store_start, after store_close: no other thread can
 * reach the store). store_unlock drops the lock, then runs the wake-ups deferred under it (park.h):
 * a waiter is never woken under the lock.
 * - An object's life is one state (enum object_state, store.h) and a table of moves (object.c,
 *   object_may_move): NEW -> FETCHING (a download begins), NEW -> COMPLETE (loaded at start),
 *   FETCHING -> COMPLETE (finished or renewed), FETCHING -> FAILED (failed, set aside, or
 *   replaced by a new version), FETCHING -> REMOVED (finished but not stored: its terms said
 *   store = no), COMPLETE -> REMOVED (evicted, purged, expired, its file gone),
 *   REMOVED -> COMPLETE (an expired version restored when its refresh failed upstream).
 *   Only object.c writes obj->state; each move does its whole action there (lists, quota, twins,
 *   failures ring, removal, wake-up). An illegal move asserts. What follows from the state is
 *   asked, not stored: object_in_table, object_whole.
 * - A REMOVED object is out of the table; the readers still streaming it see it whole, and it is
 *   freed when its last reference goes.
 * - Every store function that takes an object checks it on entry (CHECK_OBJ: its generation),
 *   in builds with asserts.
 * - Files above this one (twins, failures) take part in moves through the hooks store_open
 *   gives (struct object_hooks): this file never names them.
 */
#ifndef ARCA_OBJECT_H
#define ARCA_OBJECT_H

#include "base/parse.h"
#include "base/ring.h"
#include "store/store.h"
#include "store/table.h"

#include <assert.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>

/* Every object pointer handed to a store function is checked on entry (no-op with NDEBUG): its
 * generation, never 0, set once before the object is shared, so read without the lock (its state
 * changes under it). A magic number of its own cost 4 bytes an object; a freed object's use is
 * the sanitizers' runs' to catch. */
#define CHECK_OBJ(o) assert((o) != NULL && (o)->gen != 0)

/* What an object holds only while something happens to it: its download (NEW, FETCHING, and
 * FAILED after it), readers waiting on it, a prepared answer, an expired version it refreshes.
 * A complete object at rest (nobody holds it, none of these) has none (object_shed_live): a
 * million objects at rest are a million without these bytes (docs/ARCHITECTURE.md, "Memory
 * per object"). */
struct object_live {
    int64_t have;       /* bytes written to its file (object_have: `length` at rest) */
    int64_t hold_since; /* monotonic ms a reader was first held below its span (store_span); 0 */
    int64_t flush_mark; /* bytes before it waited a hold out: readers take them at any size */
    int64_t rate;       /* FETCHING: bytes a second its download took over the last second */
    int64_t max_size;   /* its terms' max-object-size: a longer body is refused (413) */
    int64_t reserved;   /* the quota a download claims (object_reserved), 0 once it holds its
                           file's length (holds_file) */
    char *error;        /* one-line reason (object_set_error); NULL when none (or out of memory):
                           see object_error() */
    struct object_extra *extra; /* the object's extra part while it has this one (parts) */
    struct park_queue waiters;
    struct prepared *prepared;
    /* FETCHING, not started yet: the limit its download waits for (store_set_waiting), or NULL */
    const char *waiting_for;
    struct object *stale; /* FETCHING: the expired version this download revalidates (out of
                             the table, a reference held, its file kept until the answer) */
    /* the kind of source its body comes from (store_came_from): for its miss's log line */
    const char *came_from;
    /* A download taken up again after a restart (store_resume.c): */
    char *source;         /* the URL it fetches, until store_take_resumed hands it over */
    EVP_MD_CTX *prefix;   /* digest of the bytes kept, until the upstream thread takes it */
    int prepared_slot;    /* in the store's ring of attachments, -1 when none */
    int retry_after;      /* FAILED, its host held down: seconds until it is tried again */
    int32_t negative_ttl; /* its terms': seconds a 404 or 410 it fails with is kept, 0 never */
    int16_t error_status; /* HTTP status for clients when FAILED (a failure has a live part) */
    uint8_t offer_stale;  /* FETCHING: enum stale_cause its readers take `stale` for */
    uint8_t connections;  /* FETCHING: connections its download uses now (store_set_rate) */
    uint32_t bodies;      /* FETCHING: times its file was emptied for a body from zero
                             (store_restart, _afresh): a sync queued before covers none of
                             the new one */
};

/* What few objects have: one allocation of its own, made by the first field set to other than
 * its default (object_extra), freed with the object. Every object with none reads
 * object_no_extra. */
struct object_extra {
    char *parent_status;     /* its bytes came from a parent arca: the parent's Cache-Status members
                                (store_from_parent), shown before this arca's own; NULL: none */
    uint32_t refresh_failed; /* COMPLETE, expired: when (wall s) a refresh last failed upstream */
    int32_t fwd_status;      /* upstream's answer to the failed refresh (refresh_failed); 0 */
    /* Its origin's word on answering stale (store_staleness): seconds, -1 not said, 0 never */
    int32_t stale_if_error, stale_while_revalidate;
    /* Its terms' windows, for when its origin said none: seconds, -1 the store-wide options */
    int32_t keep_if_error, keep_while;
    /* Its URL is not the spelling a purge names it by: its entry in the spellings' index
     * (spellings.h), made with the object, in the index while the object is in the table */
    struct spelling *spelling;
};
extern const struct object_extra object_no_extra;

/* Fields by size (pointers and counters, then ints, then flags), but for the tag and the use
 * count, two ints that fill the word after the link: a million objects are a million of these,
 * and the holes between mixed fields were 48 of their 400 bytes. What only a download or a
 * reader needs is in `live`, absent at rest. */
struct object {
    struct table_node node; /* the table's link (first: see object_of) */
    /* Its key's first 4 bytes: the table's hash. The key, the sha256 of its URL (the cache key
     * URL: every object's row and file are named by it, OBJECT_KEY), is not kept: its URL is.
     * Beside the link: a find compares the tag of each entry on its chain, one cache line each. */
    uint8_t tag[4];
    uint32_t usage; /* its uses (saturates: listings' count) */
    /* Its live part and its extra part in one word: NULL (neither), the extra part, or the live
     * part with its lowest bit set (both are malloc'd: aligned to 16), whose `extra` is then
     * the extra part. Read through live_part() and extra_part() (live_of(), object_live(),
     * object_extra_of(), object_extra()), written by object.c alone. What few objects have, in
     * the extra part: a parent's Cache-Status, a failed refresh, stale and keep windows. */
    uintptr_t parts;
    int64_t length;     /* Content-Length, or -1 while unknown */
    char *headers;      /* struct upstream_headers packed: six NUL-terminated strings one after the
                           other (one allocation, or after its URL: headers_inline); NULL
                           until upstream's headers are in; changed under the lock only */
    uint8_t digest[32]; /* sha256 of the body, valid when COMPLETE: the digest index's key */
    struct table_node dnode; /* the digest index's link (store_twins.c) */
    struct dnode lru;        /* in the store's LRU list when complete, its fetching list while
                                downloading (in the table only) */
    /* Wall seconds (until 2106: wall32), and its ttl (at most TTL_MAX: 100 years) */
    uint32_t created, ttl, last_use;

    int fd;   /* open while fetching or while streaming readers hold it */
    int refs; /* streaming readers + the fetch */
    /* unique to this object in this process (wraps after 4 billion objects made, loaded rows
     * too, never 0: CHECK_OBJ): a new version of a URL gets another */
    uint32_t gen;
    uint32_t dirty; /* its place in st.dirty (ring.h): usage and last use not yet in the index;
                       0 when not there */
    uint8_t state;  /* enum object_state; written by object.c only */

    /* Flags a thread reads without the lock (the upstream thread's asserts and syncs, the
     * persistence thread's file creation): bytes of their own, never a bit-field's neighbours,
     * whose writes under the lock would race with those reads. */
    bool headers_ready; /* upstream answered 2xx: length and type known */
    bool resumed;       /* store_resume.c: its partial file and row exist: reopened, not created */
    bool resumable;     /* its body has a validator a resume proves itself by: synced for one */
    /* The quota it holds is its length (object_reserved): a complete one's, unless a twin holds
     * its file (store_twins.c); a download's claim is in `live` */
    bool holds_file : 1;
    /* The other flags, read and written under the lock only: one bit each (a million objects
     * at rest are a million of these; as bools they took 16 bytes more an object). */
    bool headers_inline : 1; /* `headers` are after its URL, in its own allocation (a loaded
                                row's): never freed alone, never handed to another object */
    bool verified : 1;       /* its file is known to hold `length` bytes (see load_row) */
    bool hit : 1;            /* answered a hit already (meta->hit) */
    bool committed : 1;      /* a reader has answered with this length and type */
    bool delivered : 1;      /* a reader has been handed bytes: they may never change */
    bool on_disk : 1;        /* store_begin_file wrote its row (and file): a failure removes them */
    bool unannounced : 1;    /* bytes appended since its waiters were last woken */
    bool sync_pending : 1;   /* a sync job is queued (one at a time) */
    bool in_digests : 1;     /* store_twins.c: in the digest index */
    bool signed_key : 1;     /* downloaded through a signed URL (store_lookup_as's signed_url) */
    bool revalidation : 1, renewed : 1; /* see struct object_meta */
    bool too_large : 1;                 /* FAILED for its size (413, 507): see struct object_meta */
    /* Its terms (store_take_keep, store_room.c): */
    bool pinned : 1;    /* on st.pinned, not st.lru, once complete: evicted for room last */
    bool transient : 1; /* store = no: streamed to its readers, then dropped (object_drop) */
    /* Purged while FETCHING (transient whatever later terms say, no negative answer kept), or
     * as the expired copy a download refreshes (REMOVED: it never answers nor comes back). */
    bool purged : 1;
    bool never_stale : 1; /* windows it was given found no memory: object_set_stale_windows */
    /* its answer came from a parent arca (store_from_parent): a negative one is as old as the
     * parent's (store_negative.c), whether or not its Cache-Status members could be kept */
    bool from_parent : 1;
    char url[]; /* its URL, NUL-terminated, in the object's own allocation */
};

/* Its key (the sha256 of its URL, made again: about 0.2 µs) into `key`. */
void object_key_bytes(const struct object *obj, uint8_t key[32]);
/* Its key as 64 hex digits and a NUL, into `hex`, returned. */
char *object_key(const struct object *obj, char hex[65]);
/* The same in a buffer of the enclosing block's (a compound literal): for an expression. */
#define OBJECT_KEY(obj) object_key((obj), (char[65]){0})
/* Lock held (or main alone). Its row in the index as a complete one, with this length and digest
 * (a download's, before they are its own): its key's hex into `key`, its strings the object's
 * (store_write.c). */
struct index_row;
void object_complete_row(const struct object *obj, int64_t length, const uint8_t digest[32],
                         char key[65], struct index_row *row);

/* Wall seconds (or a ttl) as an object keeps them: 0 before 1970, the largest after 2106. */
static inline uint32_t wall32(int64_t s)
{
    return s < 0 ? 0 : s > (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)s;
}

/* Its created time and ttl from 64-bit ones: when created clamps (before 1970: an Age larger
 * than the clock), the ttl keeps the moment it expires, never moves it later. */
static inline void object_set_times(struct object *obj, int64_t created, int64_t ttl)
{
    int64_t expires = created + ttl;
    obj->created = wall32(created);
    obj->ttl = wall32(expires - (int64_t)obj->created);
}

/* Its live part, or NULL (at rest). */
static inline struct object_live *live_part(const struct object *obj)
{
    return obj->parts & 1 ? (struct object_live *)(obj->parts & ~(uintptr_t)1) : NULL;
}
/* Its extra part, or NULL (none of it set). */
static inline struct object_extra *extra_part(const struct object *obj)
{
    struct object_live *l = live_part(obj);
    if (l)
        return l->extra;
    return obj->parts ? (struct object_extra *)obj->parts : NULL; /* (GCC 12's array-bounds) */
}
/* What an object without a live part reads: nobody waits, nothing prepared, no download. */
extern const struct object_live object_at_rest;
/* The object's live part for reading: object_at_rest's defaults when it has none. */
static inline const struct object_live *live_of(const struct object *obj)
{
    struct object_live *l = live_part(obj);
    return l ? l : &object_at_rest;
}
/* Its live part for writing: a download has one (NEW, FETCHING, FAILED after it, and COMPLETE
 * until object_shed_live), and so has a complete object given one for a prepared answer
 * (object_give_live). A complete object loaded at start has none, held by readers or not. */
static inline struct object_live *object_live(struct object *obj)
{
    struct object_live *l = live_part(obj);
    assert(l != NULL);
    return l;
}
/* A use count as an object keeps it: 32 bits, saturated. */
static inline uint32_t uses32(int64_t n)
{
    return n < 0 ? 0 : n > (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}
/* Lock held. Its uses and the store's total, by n (a saturated count stays put). */
void object_add_uses(struct object *obj, int64_t n);

/* What an object whose windows could not be kept reads (never_stale): no stale answer. */
extern const struct object_extra object_never_stale;
/* Its extra part for reading: object_no_extra's defaults when it has none (object_never_stale's
 * when windows it was given could not be kept). */
static inline const struct object_extra *object_extra_of(const struct object *obj)
{
    const struct object_extra *x = extra_part(obj);
    return x ? x : obj->never_stale ? &object_never_stale : &object_no_extra;
}
/* Lock held (or NEW). Its extra part for writing, made with what object_extra_of read when it
 * has none; NULL out of memory. */
struct object_extra *object_extra(struct object *obj);
/* Lock held (or NEW). Its windows, seconds, -1 not said, the other pair kept: the origin's
 * (stale-if-error, stale-while-revalidate), or its terms' (keep). No extra part is made to hold
 * four -1s. Out of memory it fails closed: the object never answers stale (never_stale), and its
 * row says so (windows of 0), for it may have been told never to. */
void object_set_stale_windows(struct object *obj, int32_t if_error, int32_t while_revalidate);
void object_set_keep_windows(struct object *obj, int32_t if_error, int32_t while_revalidate);
/* Lock held. Upstream's answer to its failed refresh, 0 none (no extra part made for a 0; out of
 * memory, none is said). */
void object_set_fwd_status(struct object *obj, int status);

/* Bytes written to its file: a download's count, its length once it is complete and at rest
 * (object_give_live copies it into a live part given later). */
static inline int64_t object_have(const struct object *obj)
{
    return live_part(obj) ? live_part(obj)->have : obj->length;
}

/* The quota it holds: its length when it holds its file, else a download's claim (0 at rest:
 * a twin whose file another holds, or none at all). */
static inline int64_t object_reserved(const struct object *obj)
{
    return obj->holds_file ? obj->length : live_part(obj) ? live_part(obj)->reserved : 0;
}
/* Lock held, or a NEW object's maker. Its quota becomes `bytes` (the store's usage is the
 * caller's: object_reserve): a complete or removed one holds its length or nothing, in a bit;
 * anything else is a download's claim, in its live part. */
void object_set_reserved(struct object *obj, int64_t bytes);

/* The expired version it refreshes, or NULL: read on many paths. */
static inline struct object *object_stale(const struct object *obj)
{
    return live_part(obj) ? live_part(obj)->stale : NULL;
}

/* What the files above this one do when an object moves (set by store_open). NULL: nothing. */
struct object_hooks {
    /* A complete object entered the digest index (it may share a twin's file). */
    void (*joined)(struct object *obj);
    /* It leaves the table: out of the digest index, its quota share passed to a twin. */
    void (*left)(struct object *obj);
    /* A download failed: remembered for the failures listing. */
    void (*failed)(const struct object *obj);
    /* While st.loading: an object entered or left the table (store_load.c: unless its own
     * loader put it there, its key is the table's from now on, its row never read back). */
    void (*touched)(const struct object *obj);
    /* While st.loading: object_find did not find `key` in the table; its complete row, into the
     * table, or NULL when it has none (store_load.c). */
    struct object *(*missing)(const char *key);
};

struct failure;
struct store_state {
    /* Taken first: never while another lock is held. While it is held only leaves are taken:
     * the persistence queues' (persist.c: a job submitted), the rules' and the clients' read
     * locks (rules.c, policy.c: store_open_twin's `allowed`, fetch.c deciding a URL's terms);
     * no wake-up runs under it (park.h). */
    pthread_mutex_t lock;
    struct table objects; /* by key: object_find, object_slot */
    int64_t usage;        /* bytes on disk or claimed by downloads */
    int64_t quota;
    int64_t max_object_size;
    int64_t keep_expired; /* seconds a revalidable object stays on disk past its ttl */
    int64_t stale_if_error, stale_while_revalidate; /* --stale-if-error, -while-revalidate */
    /* objdir held open (O_PATH) for key_open, from each store_open on; -1 once closed. Read by
     * every hit, so apart from the fields a hit writes (lru). A directory put in its place
     * while arca runs is not seen: hits then miss, as they would on its files gone. */
    int objdir_fd;
    char objdir[1100];
    struct dlist lru;    /* complete objects in the table, least recently used first */
    struct dlist pinned; /* the same for pinned objects: eviction walks it only once no
                            object of `lru` can go (store_room.c) */
    int64_t pinned_objects, pinned_bytes; /* complete pinned objects in the table, and their
                                             lengths: kept as they come and go, never counted */
    struct dlist fetching; /* objects downloading in the table (same node as lru), oldest
                              first: listings and counts never walk the table for them */
    int64_t uses;          /* sum of `usage` over the table (resources_usage) */
    /* Objects whose usage the index has not seen yet, in order of first use since their last
     * flush (store_room.c), each keeping its place (obj->dirty) */
    struct ring dirty;
    size_t expire_cursor; /* the bucket store_expire_step looks at next */
    struct object *prepared_ring[STORE_PREPARED_MAX]; /* objects holding a prepared answer */
    int prepared_next;
    struct failure *failures[STORE_FAILURES_KEPT]; /* ring, oldest overwritten (store_list.c) */
    int failures_next;
    /* downloads refused at once, their host held down: never tried, so neither listed nor
     * counted as failures; kept apart for store_outcome alone, so a flood of them pushes no
     * tried failure out of the ring above */
    struct failure *held[STORE_HELD_KEPT];
    int held_next;
    /* The index's complete rows are still going into the table (store_load.c): a key the
     * table lacks may be on disk yet, and object_find asks hooks.missing for it. */
    bool loading;
    struct table digests; /* complete objects by digest (store_twins.c): their dnode */
    struct object_hooks hooks;
    /* arca stopping: the expired copies of refreshes set aside, a reference held (their rows
     * stay the index's complete ones: the image a clean stop leaves holds them too), released
     * at store_close (object_aside_release) */
    struct object **aside;
    size_t naside, aside_cap;
    /* arca stopping: a download was set aside (its partial file kept for the next start, out of
     * the table), until store_close (object_aside_release) */
    bool set_aside;
    /* Renames of a file under a key's name (key_rename), begun and done: a hit that opens its
     * file with the lock dropped trusts the descriptor only when none was under way or began
     * meanwhile (key_renames_quiet). Apart from the fields every hit writes. */
    _Alignas(64) _Atomic uint64_t renames_begun;
    _Atomic uint64_t renames_done;
};

extern struct store_state st;

/* The LRU list a complete object is on (object.lru's): its own for a pinned one. */
static inline struct dlist *object_lru(const struct object *obj)
{
    return obj->pinned ? &st.pinned : &st.lru;
}
/* Lock held. A complete object enters (+1) or leaves (-1) the table's pinned totals (nothing
 * when it is not pinned). */
static inline void object_count_pin(const struct object *obj, int sign)
{
    if (obj->pinned) {
        st.pinned_objects += sign;
        st.pinned_bytes += sign * obj->length;
    }
}

/* --- the lock and the threads -------------------------------------------------------------- */
void store_lock(void);
/* Drop the lock, then run the wake-ups deferred under it: never a wake-up under the lock. */
void store_unlock(void);
/* A walk over many objects (a purge's, the eviction after the quota shrank) takes the lock a
 * slice at a time with these: store_lock_slice takes it and returns when (monotonic µs);
 * store_unlock_slice drops it, then, when `more` slices follow, pauses as long as the slice held
 * it, STORE_SLICE_PAUSE_MIN_US at least (after the last: no pause). Each such walk holds the lock
 * half its time at most, and the hits its slice kept waiting run in the pause. A mutex is not
 * fair: relocked at once, or after 100 µs, the hits woken by the unlock found it taken again and
 * waited slice after slice (hits at 5,000 a second on 200,000 objects, p99 5-7 ms alone: beside
 * a purge of 20,000 more 18-52 ms, 13-14 with these; on 500,000, beside a purge of 50,000:
 * 208 ms, 11.6 with these, alone 6). The price: a walk takes about twice as long. Walks that
 * still relock at once: the load (pauses would double it), the usage flush's chunks, the listings'
 * and the images' walks (store_list.c). */
#define STORE_SLICE_PAUSE_MIN_US 1000
int64_t store_lock_slice(void);
void store_unlock_slice(int64_t since, bool more);
/* store_unlock_slice's halves, for a walk that lets go of something between them (a purge's
 * turn, store_purge.c): the lock dropped, the slice's hold (µs) returned; then the pause. */
int64_t store_unlock_held(int64_t since);
void store_slice_pause(int64_t held, bool more);
/* Whether the calling thread holds the lock (for asserts). */
bool store_locked(void);
/* The same, or main alone with the store (before store_start, after store_close): what "lock
 * held (or main, alone)" functions assert. */
bool store_locked_or_alone(void);
/* Whether the caller is the upstream thread: the first thread to ask claims the role until
 * store_close (store/ knows nothing of upstream/; only it calls the functions that ask). */
bool store_on_upstream(void);
void store_forget_upstream(void);
/* store_close's first step: purges by prefix running end at their next slice (store_purge.c),
 * and this returns once none runs; none begins after it, until store_open's purges_allow. */
void purges_stop(void);
void purges_allow(void);

/* --- the object's life --------------------------------------------------------------------- */
/* Whether the transition table allows the move. */
bool object_may_move(enum object_state from, enum object_state to);
/* Whether the object is in the table (FETCHING or COMPLETE): lookups may find it. */
static inline bool object_in_table(const struct object *obj)
{
    return obj->state == OBJ_FETCHING || obj->state == OBJ_COMPLETE;
}
/* Whether its body is whole (COMPLETE, or REMOVED while readers stream it). */
static inline bool object_whole(const struct object *obj)
{
    return obj->state == OBJ_COMPLETE || obj->state == OBJ_REMOVED;
}
/* Whether its ttl has run out at `now` (wall s): kept on disk past it only for a revalidation
 * or a stale answer (store_room.c), never a fresh hit. */
static inline bool object_expired(const struct object *obj, int64_t now)
{
    return now - obj->created >= obj->ttl;
}
/* What a reader's copy says of it (struct object_meta): FETCHING, COMPLETE or FAILED. */
enum object_state object_view(const struct object *obj);

/* A NEW object for `url` (key: its hash), not in the table, with its live part (a download's);
 * NULL when out of memory. */
struct object *object_new(const char *url, const char *key);
/* The same for a complete row read at start (its key's 32 bytes), with its headers packed after
 * its URL in its own allocation (a million rows load at start: one allocation each, not two);
 * no live part. NULL when out of memory. */
struct object *object_new_at_rest(const char *url, const uint8_t key[32],
                                  const struct upstream_headers *h);
/* Lock held. Gives a complete object at rest a live part (for a prepared answer): 0, or -1 out
 * of memory (nothing changed). */
int object_give_live(struct object *obj);
/* Lock held. A complete object nobody holds, with nothing live left (no waiter, prepared answer,
 * expired version or resumed download's state), lets its live part go. Otherwise nothing. */
void object_shed_live(struct object *obj);
/* Lock held. NEW -> FETCHING in the table: a download of `url` begins (refs 2: the caller's and
 * the fetch's); NULL when out of memory. */
struct object *object_begin(const char *url, const char *key, int64_t ttl, int64_t now);
/* Lock held. NEW -> `to` (FETCHING or COMPLETE): an object made by object_new into the table
 * (its list: fetching or LRU, with its quota); -1 when out of memory (still NEW). */
int object_enter(struct object *obj, enum object_state to);
/* Main, alone, at store_close: out of the table without a move's actions (COMPLETE -> REMOVED,
 * FETCHING -> FAILED): the store is being let go of whole. */
void object_forget(struct object *obj);
/* Lock held. FETCHING -> COMPLETE with `digest`: length and quota settled, onto the LRU list,
 * into the digest index, the stale version dropped, waiters woken. An object already out of
 * FETCHING (failed meanwhile) is left as it is: returns false. */
bool object_complete(struct object *obj, const uint8_t digest[32]);
/* Lock held. FETCHING -> COMPLETE as the expired version it revalidated (a 304), whose file is
 * open in `fd`; false (nothing done) when it is no longer FETCHING. */
bool object_renew(struct object *obj, int fd);
/* Lock held. FETCHING -> FAILED as object_fail, but the expired version it refreshed keeps its
 * file and row (its own part file goes): false when it had left FETCHING already. */
bool object_fail_keeping_copy(struct object *obj, int status, const char *reason);
/* Lock held. FETCHING -> FAILED (502, `reason`) for its readers, a version given up for a new
 * one from another source (store_new_version's `failure` false): out of the table, waiters
 * woken, its file removed (the expired version it refreshed keeps its own when `keep_copy`),
 * but neither counted as a failed download nor listed among the failures. */
bool object_replace(struct object *obj, bool keep_copy, const char *reason);
/* Lock held. REMOVED -> COMPLETE: the expired version a failed refresh let go of, back in the
 * table as it was, noted as refreshed in vain now (`fwd_status`: upstream's answer, 0 none).
 * Its key must be free in the table; false (nothing done) when out of memory. */
bool object_restore(struct object *obj, int fwd_status);
/* Why a download its terms say not to store goes once its clients have it: logged at debug
 * level (an index page asked all day would fill the log), not at info as other removals. */
#define OBJECT_STREAMED_ONLY "streamed to its clients, not kept: its rule says store = no"
/* Why a download (or a refresh) a purge took while under way goes once its clients have it:
 * logged at info level, as the purge is. */
#define OBJECT_PURGED_UNDER_WAY "purged while under way: streamed to its clients, not kept"

/* Lock held. FETCHING -> REMOVED, a finished download its terms say not to store (transient):
 * whole for the readers that joined it (its length and `digest` set, waiters woken), out of the
 * table at once, never in the digest index nor counted as stored, its file and row (if made)
 * removed, logged with `why` (a constant). Freed here when nobody holds it. False (nothing done)
 * when it had left FETCHING already. */
bool object_drop(struct object *obj, const uint8_t digest[32], const char *why);
/* Lock held. FETCHING -> FAILED, a failed download: the first reason wins, out of the table,
 * waiters woken, counted, remembered for the failures listing, its file and row (if made)
 * removed. False (nothing done) when it had left FETCHING already. */
bool object_fail(struct object *obj, int status, const char *reason);
/* Lock held. FETCHING -> FAILED, set aside because arca stops: out of the table and waiters
 * woken as a failure is, but not counted nor listed, and its file and row kept for the next
 * start to continue. False (nothing done) when it had left FETCHING already. */
bool object_set_aside(struct object *obj, int status, const char *reason);
/* Lock held. COMPLETE -> REMOVED: out of the table; with `why` (a constant: "expired",
 * "evicted for room", "purged"), its file and row go on the persistence thread, which logs
 * "store: removed URL (why)"; NULL: they stay, for the caller to remove or replace. Freed here
 * when nobody holds it. */
void object_remove(struct object *obj, const char *why);
/* An object's file opened for reading (O_CLOEXEC) without touching its access time: with
 * relatime, each file's first read since it was written, and each day after, wrote its inode
 * through the file system's journal (touch_atime: 7.7% of arca's CPU under random hits over a
 * million objects). A file arca does not own (O_NOATIME's EPERM) opens without it. */
int object_open_file(const char *path);
/* The same for key_path(key)'s file, opened from the objects directory held open (objdir_fd),
 * or by its whole path while the store is closed or the key is not 64 characters. */
int key_open(const char *key);
/* rename(from, path), `path` a key's file (key_path): the one way a file comes under a key's
 * name while arca runs (a download made durable, a twin's link), counted for the hits below. */
int key_rename(const char *from, const char *path);
/* Lock held. Whether no key_rename is under way: then *mark says how many had begun. A file
 * opened by key once the lock is dropped is the one of a complete object seen under this hold
 * when no rename has begun since (key_renamed_since(*mark) false): each key's file is put in
 * place before its object becomes complete, and replaced by other bytes only once the object
 * left the table (a twin's link puts the same bytes in its place). */
bool key_renames_quiet(uint64_t *mark);
bool key_renamed_since(uint64_t mark);
/* `length` bytes from the start of `fd` (its `path`'s file opened when fd is -1) into a buffer
 * of their own (the caller's to free); NULL when they cannot all be read. `fd` is closed. No
 * lock held: it reads the disk. */
char *object_read_file(int fd, const char *path, int64_t length);
/* Lock held. The quota an object in the table holds becomes `bytes`, and the store's usage with
 * it: with the moves (object.c), the only writer of both once an object is in the table (its
 * maker sets the quota of a NEW one, object_set_reserved, counted when it enters). */
void object_reserve(struct object *obj, int64_t bytes);
/* Lock held. A leaving object's quota passes to `to`, which keeps its file (store_twins.c). */
void object_pass_reserve(struct object *obj, struct object *to);
/* Lock held. The first reason wins: what follows it is a consequence. */
void object_set_error(struct object *obj, int status, const char *reason);
/* The same for a body more than this cache takes (its max-object-size, its quota, or the room
 * the quota has beside what is held): the URL's doing, not a failing disk's, which its answer
 * says (too_large) so that a child arca does not hold this one down for it. */
void object_refuse_size(struct object *obj, int status, const char *reason);

/* Lock held (or main, alone, at start and end). */
void object_free(struct object *obj);
/* Lock held: a reference went away; frees an object out of the table that nobody holds. */
void maybe_free(struct object *obj);
/* Lock held: let go of the expired version a download was revalidating. */
void drop_stale(struct object *obj);
/* Lock held: its waiters are woken once the lock is dropped (store_unlock). */
void wake_all(struct object *obj);
/* Lock held. An object leaving the table (or giving up its ring slot) answers no more hits. */
void detach_prepared(struct object *obj);
/* Lock held. The object for `key` in the table, or NULL. While the index loads (st.loading),
 * a key not in the table yet is looked up in the index, and its row (complete) put in the table:
 * every caller sees the table as if loaded whole. */
struct object *object_find(const char *key);
/* The same for `url`'s key (url_key): the candidates confirmed by their URL, not by hashing it
 * again. NULL `url`: object_find. */
struct object *object_find_url(const char *url, const char *key);
/* Lock held. The object in the table with `obj`'s URL (obj itself, or another), or NULL; no
 * row is read ahead of the load. */
struct object *object_find_same(const struct object *obj);
/* Lock held. The object in the table with this tag (its key's first 4 bytes) and generation (no
 * other object of this process has it: object.gen), or NULL. */
struct object *object_find_gen(const uint8_t tag[4], uint32_t gen);
/* Lock held (or main alone at store_close). The copies set aside are let go. */
void object_aside_release(void);
/* Lock held. Whether a download was set aside (arca stops): the table then no longer names
 * every key whose files must stay (store_purge.c's unlinks). */
bool object_set_aside_begun(void);
/* Lock held. Sweeps visit the table a slot at a time (table.h): object_slot(i) is the first
 * object of slot i, object_next the next one in that slot. */
size_t object_slots(void);
struct object *object_slot(size_t i);
struct object *object_next(const struct object *obj);
/* Lock held (or main, alone): room for `at_least` objects, all at once (the loader, once it
 * has counted the index's rows: 0, or -1 out of memory); all gone at end (main, alone). */
int objects_reserve(size_t at_least);
void objects_free(void);
/* Lock held. Whether an expired object can be asked for again conditionally: upstream gave it
 * an ETag or a Last-Modified. Such objects outlive their ttl by --keep-expired. */
bool revalidable(const struct object *obj);

/* --- shared helpers ------------------------------------------------------------------------ */
void key_path(const char *key, char *buf, size_t size);
/* Where a download writes until it is complete (then renamed to key_path): the previous
 * version's file stays whole meanwhile, for a revalidation that ends in 304. */
void part_path(const char *key, char *buf, size_t size);
/* fsync the directory that holds `path`, so that its entry is durable: -1 when it cannot be. */
int sync_dir_of(const char *path);
/* Make the key directory (DATA_DIR/objects/XX) of the file `path` if it is missing, with its
 * name synced in objects/: -1 when it cannot be made so. */
int make_key_dir(const char *path);
/* Have the persistence thread remove the file and row of `obj`'s key, made there from a copy of
 * its URL (a sha256 a removal: not under the lock). Lock held: ordered before a later download
 * of the same URL. `why`: logged as "store: removed URL (why)", copied, cut to
 * REMOVE_WHY_SIZE - 1; NULL: not logged. With `part_only`, only the key's part file (a
 * refresh's), its file and row kept. */
#define REMOVE_WHY_SIZE 200
void submit_remove(const struct object *obj, const char *why, bool part_only);
/* Removals submitted whose files are not unlinked yet: how far the disk is behind the
 * evictions and the expiry (store_room.c's store_evict_ahead). Any thread. */
size_t object_removals_owed(void);

/* --- an object's strings: any thread, no state but a thread's last key --------------------- */
/* The key (hex sha256) of a URL: its file's name and its place in the table. */
void url_key(const char *url, char key[65]);
/* Whether `key` (64 hex digits) is url_key(url), as every key the store makes is: an object keeps
 * its key's first 4 bytes and makes the rest again from its URL, so a row of the index whose key
 * is not its URL's (a damaged or hand-made index) is never taken (store_load.c, store_resume.c). */
bool url_key_is(const char *url, const char *key);
/* The same for a key given as its 32 bytes (a clean stop's image's rows). */
bool url_key_bytes_is(const char *url, const uint8_t key[32]);
/* Its five header values packed into one allocation (unpacked by store.h's headers_unpack). */
#define HEADERS_PACKED 6
/* Pack `h` into one allocation (*out NULL when every value is ""): 0, or -1 out of memory. */
int headers_pack(const struct upstream_headers *h, char **out);
/* Copy `src` (NULL: "") into dst, truncated to size - 1 bytes: a reader's metadata. */
void copy_string(char *dst, size_t size, const char *src);

#endif
