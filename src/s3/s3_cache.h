/*
 * s3_cache.h — the cache of bucket listing pages (s3_list.c's): one slot per page asked for,
 * keyed by bucket, folder and continuation token, found in O(1) (a hash table), kept in order of
 * use (a list), bounded in the bytes its slots really take.
 *
 * Contract:
 * - Not thread-safe: the caller holds one lock around every call, and around every change of a
 *   page's refs (s3_cache_unref).
 * - A slot owns its key strings and one reference to its page. What it costs is every
 *   allocation it owns, as the allocator sized it (malloc_usable_size, plus the allocator's
 *   word in front): the slot, its strings, and its page (the struct, its entries array, each
 *   name, the next token). The table's own array counts too. `bytes` is their sum, always.
 * - A slot is made to be fetched: it starts `fetching`, and a fetching slot is never evicted
 *   (someone waits on it). Whenever bytes exceed `limit`, slots that are not fetching go, least
 *   recently used first, until they do not.
 * - A failure is never kept: the caller drops its slot (s3_cache_drop).
 */
#ifndef ARCA_S3_CACHE_H
#define ARCA_S3_CACHE_H

#include "base/park.h"
#include "base/dlist.h"
#include "s3/s3_xml.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct s3_wait;

struct s3_slot {
    const void *bucket;   /* the bucket's identity (its struct bucket_auth) */
    char *prefix, *token; /* token "" for a folder's first page */
    struct s3_page *page; /* the cache's reference; NULL until the first answer */
    bool fetching;
    struct park_queue waiters; /* s3_list.c's: struct s3_wait's parks */
    size_t bytes;              /* what this slot costs now */
    uint64_t hash;
    struct s3_slot *chain; /* the next slot in its table bucket */
    struct dnode lru;      /* in use order: the list's head is the least recently used */
};

struct s3_cache {
    size_t limit; /* set before the first call; the rest starts zeroed */
    size_t bytes;
    struct s3_slot **table;
    size_t nbuckets, count; /* nbuckets: a power of two, or 0 before the first slot */
    uint64_t seed;
    struct dlist lru;
};

/* The slot of that page, or NULL. Does not count as a use. */
struct s3_slot *s3_cache_find(struct s3_cache *c, const void *bucket, const char *prefix,
                              const char *token);
/* A new slot, fetching, the most recently used; NULL when out of memory. */
struct s3_slot *s3_cache_add(struct s3_cache *c, const void *bucket, const char *prefix,
                             const char *token);
/* A use: the slot becomes the most recently used. */
void s3_cache_touch(struct s3_cache *c, struct s3_slot *s);
/* A 200 came: `p` (the caller's reference, now the cache's) replaces the slot's page, the slot is
 * no longer fetching and is the most recently used; then the cache is brought within its limit
 * (which may drop this very slot, when nothing else can go: `s` is then freed). */
void s3_cache_set_page(struct s3_cache *c, struct s3_slot *s, struct s3_page *p);
/* Remove the slot and free it, with the cache's reference to its page. */
void s3_cache_drop(struct s3_cache *c, struct s3_slot *s);
/* Drop every slot and the table (a test's, or a shutdown's, end). */
void s3_cache_clear(struct s3_cache *c);
/* One reference less to `p`, freed at none (NULL: nothing). */
void s3_cache_unref(struct s3_page *p);

#endif
