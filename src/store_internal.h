/*
 * store_internal.h — the table and lock shared by store.c (lookups, reads: any thread) and
 * store_write.c (files, quota, completion: fetch thread). Not for other modules.
 */
#ifndef ARCA_STORE_INTERNAL_H
#define ARCA_STORE_INTERNAL_H

#include "store.h"

#include <pthread.h>
#include <stdatomic.h>

/* A purged object's key: its file and row go on the fetch thread (see bury_purged). */
struct purged {
    char key[65];
    struct purged *next;
};

struct store_state {
    pthread_mutex_t lock;
    struct object **buckets;
    size_t nbuckets, count;
    int64_t usage; /* bytes on disk or claimed by downloads */
    int64_t quota;
    int64_t max_object_size;
    char objdir[1100];
    struct object *graveyard; /* evicted, waiting for bury() outside the lock */
    struct purged *purged;    /* purged, waiting for bury() */
    struct dlist lru;         /* complete objects in the table, least recently used first */
    struct dlist fetching;    /* objects downloading in the table (same node as lru), oldest
                                 first: listings and counts never walk the table for them */
    int64_t uses;             /* sum of `usage` over the table (resources_usage) */
    struct dlist dirty;       /* objects whose usage the index has not seen yet */
    size_t expire_cursor;     /* the bucket store_expire() looks at next */
    struct object *prepared_ring[STORE_PREPARED_MAX]; /* objects holding a prepared answer */
    int prepared_next;
    struct failure *failures[STORE_FAILURES_KEPT]; /* ring, oldest overwritten */
    int failures_next;
    pthread_t sweeper; /* removes orphan files after start */
    bool sweeping;
    atomic_bool sweep_stop;
};

extern struct store_state st;

/* All with st.lock held. */
void table_remove(struct object *obj);
void wake_all(struct object *obj);
void object_free(struct object *obj);
struct object *table_find(const char *key);
void key_path(const char *key, char *buf, size_t size);
void maybe_free(struct object *obj);
/* Pack `h` into one allocation (*out NULL when every value is ""): 0, or -1 out of memory. */
int headers_pack(const struct upstream_headers *h, char **out);
/* Copy `src` (NULL: "") into dst, truncated to size - 1 bytes. */
void copy_string(char *dst, size_t size, const char *src);
/* Remember a failed download for the failures listing. */
void note_failure(const struct object *obj);
/* Main at start: the failures the index remembers. Fetch thread: write the new ones. */
void load_failures(void);
void save_failures(void);
void free_failures(void);

#endif
