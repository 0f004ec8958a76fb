/*
 * store_internal.h — the object and the table and lock shared by store.c (lookups, reads: any
 * thread), store_write.c (files, quota, completion, eviction), store_list.c (listings) and
 * store_open.c (start and end). Not for other modules: they hold a struct object only by
 * reference and use store.h.
 */
#ifndef ARCA_STORE_INTERNAL_H
#define ARCA_STORE_INTERNAL_H

#include "index.h"
#include "store.h"
#include "table.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>

struct object {
    char key[65]; /* hex sha256 of the url; also the file name */
    uint64_t gen; /* unique to this object in this process: a new version of a URL gets another */
    char *url;
    enum object_state state;
    bool headers_ready; /* upstream answered 2xx: length and type known */
    int64_t length;     /* Content-Length, or -1 while unknown */
    int64_t have;       /* bytes written to the file */
    int64_t reserved;   /* quota held for this object beyond `have` */
    char *headers;      /* struct upstream_headers packed: five NUL-terminated strings one after the
                           other (one allocation per object); NULL until upstream's headers are in;
                           changed under the lock only */
    uint8_t digest[32]; /* sha256 of the body, valid when COMPLETE */
    bool verified;      /* its file is known to hold `length` bytes (see load_row) */
    bool hit;           /* answered a hit already: the next one earns a prepared answer */
    bool committed;     /* a reader has answered with this length and type */
    bool delivered;     /* a reader has been handed bytes: they may never change */
    bool on_disk;       /* store_begin_file wrote its row (and file): store_fail removes them */
    bool unannounced;   /* bytes appended since its waiters were last woken */
    int error_status;   /* HTTP status for clients when FAILED */
    char *error;        /* one-line reason, set by the upstream thread before the object fails; NULL
                           when none (or out of memory): see object_error() */
    int64_t created, ttl, last_use, usage;
    struct dnode dirty; /* in the store's dirty list: usage/last_use not yet in the index */
    struct dnode lru;   /* in the store's LRU list when complete, its fetching list while
                           downloading (in the table only) */
    int fd;             /* open while fetching or while streaming readers hold it */
    int refs;           /* streaming readers + the fetch */
    bool in_table;
    struct park_queue waiters;
    struct object *next; /* hash chain */
    struct prepared *prepared;
    int prepared_slot;    /* in the store's ring of attachments, -1 when none */
    struct object *stale; /* FETCHING: the expired version this download revalidates (out of
                             the table, a reference held, its file kept until the answer) */
    /* A download taken up again after a restart (store_resume.c): */
    bool resumed;       /* its partial file and row exist: reopened, not created */
    bool resumable;     /* its body has a validator a resume proves itself by: synced for one */
    char *source;       /* the URL it fetches, until store_take_resumed hands it over */
    EVP_MD_CTX *prefix; /* digest of the bytes kept, until the upstream thread takes it */
    bool sync_pending;  /* a sync job is queued (one at a time) */
    /* Identical objects (store_twins.c): */
    struct object *dnext; /* digest index chain */
    bool in_digests;
    struct object *twin_next, *twin_prev; /* ring of complete objects sharing the file */
    bool signed_key;            /* downloaded through a signed URL (store_lookup_as's signed_url) */
    bool revalidation, renewed; /* see struct object_meta */
};

struct store_state {
    pthread_mutex_t lock;
    struct table table;
    int64_t usage; /* bytes on disk or claimed by downloads */
    int64_t quota;
    int64_t max_object_size;
    int64_t keep_expired; /* seconds a revalidable object stays on disk past its ttl */
    char objdir[1100];
    struct dlist lru;      /* complete objects in the table, least recently used first */
    struct dlist fetching; /* objects downloading in the table (same node as lru), oldest
                              first: listings and counts never walk the table for them */
    int64_t uses;          /* sum of `usage` over the table (resources_usage) */
    struct dlist dirty;    /* objects whose usage the index has not seen yet */
    size_t expire_cursor;  /* the bucket store_expire() looks at next */
    struct object *prepared_ring[STORE_PREPARED_MAX]; /* objects holding a prepared answer */
    int prepared_next;
    struct failure *failures[STORE_FAILURES_KEPT]; /* ring, oldest overwritten */
    int failures_next;
    struct object **digests; /* complete objects by digest (store_twins.c) */
    size_t n_digests, digest_count;
};

extern struct store_state st;

/* A new object for `url` (key: its hash), not in the table; NULL when out of memory. */
struct object *object_new(const char *url, const char *key);
/* All with st.lock held (or main, alone, at start and end). */
int table_insert(struct object *obj);
void detach_prepared(struct object *obj);
void table_remove(struct object *obj);
/* Lock held: its waiters are woken once the lock is dropped (store_unlock). */
void wake_all(struct object *obj);
/* Drop st.lock, then run the wake-ups deferred under it: never a wake-up under the lock. */
void store_unlock(void);
void object_free(struct object *obj);
struct object *table_find(const char *key);
void key_path(const char *key, char *buf, size_t size);
/* Where a download writes until it is complete (then renamed to key_path): the previous
 * version's file stays whole meanwhile, for a revalidation that ends in 304. */
void part_path(const char *key, char *buf, size_t size);
/* Lock held. Whether an expired object can be asked for again conditionally: upstream gave it
 * an ETag or a Last-Modified. Such objects outlive their ttl by --keep-expired. */
bool revalidable(const struct object *obj);
/* Lock held: let go of the expired version a download was revalidating. */
void drop_stale(struct object *obj);
void maybe_free(struct object *obj);
#define HEADERS_PACKED 5
/* Pack `h` into one allocation (*out NULL when every value is ""): 0, or -1 out of memory. */
int headers_pack(const struct upstream_headers *h, char **out);
/* Copy `src` (NULL: "") into dst, truncated to size - 1 bytes. */
void copy_string(char *dst, size_t size, const char *src);
/* Have the persistence thread remove the file and row of `key` (url: logged as removed). */
void submit_remove(const char *key, const char *url);
/* The key (hex sha256) of a URL: its file's name and its place in the table. */
void url_key(const char *url, char key[65]);
/* Lock held. Copy what a reader needs; a new FETCHING object for `url` in the table (refs 2: the
 * caller's and the fetch's), NULL when out of memory. */
void copy_meta(const struct object *obj, struct object_meta *meta);
struct object *create_fetching(const char *url, const char *key, int64_t ttl, int64_t now);
/* Lock held (dropped and taken again meanwhile); a complete object. Its prepared answer (prep not
 * NULL) or its file opened into *fd, its metadata copied: LOOKUP_HIT; LOOKUP_UNAVAILABLE (cannot
 * open for now); LOOKUP_MISS (its file was gone: the object left the table); LOOKUP_RETRY (it
 * left the table meanwhile: look again). */
#define LOOKUP_RETRY (-1)
int take_hit(struct object *obj, int *fd, struct prepared **prep, struct object_meta *meta);

/* --- identical objects (store_twins.c), lock held --- */
int digests_reserve(size_t at_least);
/* A complete object in the table: into the digest index and its twins' ring; returns a twin
 * whose file it should share (twins_share_file), or NULL. */
struct object *twins_join(struct object *obj);
/* Leaving the table: out of the index and the ring (its quota share passes to a twin). */
void twins_leave(struct object *obj);
void twins_share_file(const struct object *obj, const struct object *twin);

/* --- resuming downloads after a restart (store_resume.c) --- */
/* Loader callback (index.h): take up a partial row whose file still holds what it says. */
bool resume_partial(const struct index_row *row, int part, void *arg);
/* Main at start: the partials taken up go into the table as FETCHING (or are dropped). */
void adopt_resumed(void);
void drop_resumed(void);
/* Persistence thread: reopen a resumed download's file, cut it to the bytes known synced and
 * digest them. Returns 0, or the status with the reason in err. */
int reopen_partial(struct object *obj, char *err, size_t errlen);
/* Upstream thread, lock not held: have the row record what a restart needs to resume, and the
 * file synced every SYNC_STEP bytes. */
void submit_started(struct object *obj);
/* The download went from `before` to `after` bytes: past a SYNC_STEP, have its file synced (one
 * sync at a time; the persistence thread calls it again for a step crossed meanwhile). */
void maybe_sync(struct object *obj, int64_t before, int64_t after);

/* Remember a failed download for the failures listing. */
void note_failure(const struct object *obj);
/* Main at start: the failures the index remembers. Then: have the new ones written. */
void load_failures(void);
void save_failures(void);
void free_failures(void);

#endif
