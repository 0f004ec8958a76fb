/*
 * s3_list.h — one folder of a bucket (buckets.h), a page at a time, as S3's ListObjectsV2 gives
 * it (delimiter '/', at most 1000 entries a page, continuation tokens), with a cache of pages.
 *
 * Contract: any thread may call s3_list_get(). A page that is not cached, or is older than its
 * bucket's listing-ttl, is asked of S3 on the upstream thread (upstream_get); everyone asking for
 * the same page meanwhile parks (park.h) on that one request, and is woken once, with the page
 * set, on the upstream thread once the cache lock is dropped; one that called s3_list_unwait
 * before is never woken. When the request cannot be sent (arca stops), the 503 page is handed
 * to the waiters on the caller's thread, before s3_list_get returns 0. One lock (s3_list.c's)
 * guards the cache, the waiters and the pages' refs. A page handed out is immutable and is the
 * caller's reference until s3_list_put(). The cache (s3_cache.h) finds a page in O(1) and takes
 * at most S3_LIST_CACHE_BYTES, counted in what the heap holds for it (pages, folder names,
 * tokens, bookkeeping); the least recently used go first, and pages being asked for stay. A
 * failed answer (S3 down, refused) is handed to those waiting and never cached.
 */
#ifndef ARCA_S3_LIST_H
#define ARCA_S3_LIST_H

#include "base/park.h"
#include "s3/s3_xml.h"

#define S3_LIST_CACHE_BYTES (64 * 1024 * 1024)

struct bucket_auth;
struct s3_slot;

/* Someone waiting for a page (park.h): the park is queued on the page's slot and woken once the
 * page is there (on the upstream thread), after `page` is set to it (a reference). */
struct s3_wait {
    struct park park;
    struct s3_page *page;
    struct s3_slot *slot; /* s3_list.c's: the page waited for, until it comes */
};

/* The page of folder `prefix` (S3's prefix: "" or ending in '/') of bucket `a` that starts at
 * `token` (NULL: the first). 1: *page is set (a reference). 0: `w` waits for it. -1: out of
 * memory or stopping; nothing waits. */
int s3_list_get(const struct bucket_auth *a, const char *prefix, const char *token,
                struct s3_page **page, struct s3_wait *w);
/* After a wake: the page waited for (the caller's reference), or NULL when it has not come. */
struct s3_page *s3_list_take(struct s3_wait *w);
/* Stop waiting (the request went away); its page, if one came meanwhile, is released. */
void s3_list_unwait(struct s3_wait *w);
void s3_list_put(struct s3_page *p);

#endif
