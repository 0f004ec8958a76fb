/* Bucket folders, page by page, from S3's ListObjectsV2, and the cache of pages (see s3_list.h). */
#include "s3/s3_list.h"
#include "s3/s3_cache.h"
#include "config/buckets.h"
#include "base/buf.h"
#include "log/log.h"
#include "stats/stats.h"
#include "upstream/upstream.h"

#include <assert.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- the cache ----------------------------------------------------------------------------- */

static struct {
    pthread_mutex_t lock; /* guards the cache, every slot's waiters and every page's refs */
    struct s3_cache pages;
} cache = {.lock = PTHREAD_MUTEX_INITIALIZER, .pages = {.limit = S3_LIST_CACHE_BYTES}};

static const struct bucket_auth *bucket_of(const struct s3_slot *s)
{
    return s->bucket;
}

static bool fresh(const struct s3_slot *s)
{
    return s->page && time(NULL) - s->page->fetched < bucket_of(s)->bucket->listing_ttl;
}

/* The answer is in: cache it (a success), hand it to everyone waiting and wake them. */
static void complete(struct s3_slot *s, struct s3_page *p)
{
    pthread_mutex_lock(&cache.lock);
    assert(s->fetching); /* one answer per request, and a request only for a fetching slot */
    p->refs = 1;         /* this function's own, until its end */
    for (struct park *k = s->waiters.head; k; k = k->next) {
        struct s3_wait *w = PARK_OWNER(k, struct s3_wait, park);
        assert(w->slot == s && !w->page);
        p->refs++;
        w->page = p;
        w->slot = NULL;
    }
    park_defer(&s->waiters);
    if (p->status == 200) {
        p->refs++;
        s3_cache_set_page(&cache.pages, s, p); /* may evict s */
    } else {
        s3_cache_drop(&cache.pages, s); /* nothing to keep: a failure is asked again next time */
    }
    s3_cache_unref(p);
    pthread_mutex_unlock(&cache.lock);
    park_flush(); /* never a wake-up under the cache lock */
}

static struct s3_page *failed_page(int status, const char *fmt, const char *a, const char *b)
{
    struct s3_page *p = calloc(1, sizeof(*p));
    if (p) {
        p->status = status;
        snprintf(p->error, sizeof(p->error), fmt, a, b);
        p->fetched = time(NULL);
    }
    return p;
}

/* Upstream thread: S3's answer to one ListObjectsV2. */
static void on_answer(const struct probe_result *res, const char *body, size_t len, void *arg)
{
    struct s3_slot *s = arg;
    const char *name = bucket_of(s)->bucket->name;
    struct s3_page *p = calloc(1, sizeof(*p));
    if (p && res->status == 0) {
        /* its host held down (hosts.h): refused as a download of it would be */
        p->status = res->retry_after > 0 ? 503 : 502;
        snprintf(p->error, sizeof(p->error), "bucket %s: S3 unreachable: %s", name, res->error);
    } else if (p && s3_xml_parse(body, len, res->status, s->prefix, name, p) < 0) {
        s3_page_free(p);
        p = NULL;
    }
    if (p && p->status != 200)
        log_error("listing %s/%s: %s", name, s->prefix, p->error);
    if (!p) /* out of memory: those waiting still need an answer */
        p = failed_page(503, "bucket %s: out of memory listing '%s'", name, s->prefix);
    if (!p) {
        log_error("listing %s: out of memory", name);
        return;
    }
    p->fetched = time(NULL);
    complete(s, p);
}

/* ?continuation-token=&delimiter=/&list-type=2&max-keys=1000&prefix=: in the order and encoding
 * of SigV4's canonical query, because libcurl 7.88 signs the query as it is written. */
static char *list_url(const struct s3_slot *s)
{
    struct buf b = {0};
    buf_addf(&b, "%s?", bucket_of(s)->url);
    if (s->token[0]) {
        buf_add(&b, "continuation-token=");
        buf_query(&b, s->token);
        buf_add(&b, "&");
    }
    buf_addf(&b, "delimiter=%%2F&list-type=2&max-keys=%d&prefix=", S3_LIST_PAGE_KEYS);
    buf_query(&b, s->prefix);
    return buf_take(&b, NULL);
}

static void start(struct s3_slot *s)
{
    const struct bucket_auth *a = bucket_of(s);
    char *url = list_url(s);
    atomic_fetch_add(&stats.bucket_list_requests, 1);
    if (!url || upstream_get(url, a, on_answer, s) < 0) {
        struct s3_page *p =
            failed_page(503, "bucket %s: cannot ask S3 for '%s' now", a->bucket->name, s->prefix);
        if (p)
            complete(s, p);
        else
            log_error("listing %s: out of memory", a->bucket->name);
    }
    free(url);
}

int s3_list_get(const struct bucket_auth *a, const char *prefix, const char *token,
                struct s3_page **page, struct s3_wait *w)
{
    bool ask;
    pthread_mutex_lock(&cache.lock);
    struct s3_slot *s = s3_cache_find(&cache.pages, a, prefix, token ? token : "");
    if (s && fresh(s)) {
        assert(s->page->status == 200 && s->page->refs > 0); /* a failure is never kept */
        s3_cache_touch(&cache.pages, s);
        s->page->refs++;
        *page = s->page;
        atomic_fetch_add(&stats.bucket_list_cached, 1);
        pthread_mutex_unlock(&cache.lock);
        return 1;
    }
    ask = !s || !s->fetching; /* else it is being asked already: wait for that answer */
    if (!s && !(s = s3_cache_add(&cache.pages, a, prefix, token ? token : ""))) {
        pthread_mutex_unlock(&cache.lock);
        return -1;
    }
    s->fetching = true;
    w->page = NULL;
    w->slot = s;
    park_enqueue(&s->waiters, &w->park);
    pthread_mutex_unlock(&cache.lock);
    if (ask)
        start(s);
    return 0;
}

struct s3_page *s3_list_take(struct s3_wait *w)
{
    pthread_mutex_lock(&cache.lock);
    struct s3_page *p = w->page;
    w->page = NULL;
    pthread_mutex_unlock(&cache.lock);
    return p;
}

void s3_list_unwait(struct s3_wait *w)
{
    pthread_mutex_lock(&cache.lock);
    assert(!w->slot || w->slot->fetching);
    if (w->slot) /* still waiting: its slot is there (a fetching slot is never evicted) */
        park_remove(&w->slot->waiters, &w->park);
    w->slot = NULL;
    s3_cache_unref(w->page);
    w->page = NULL;
    pthread_mutex_unlock(&cache.lock);
}

void s3_list_put(struct s3_page *p)
{
    pthread_mutex_lock(&cache.lock);
    s3_cache_unref(p);
    pthread_mutex_unlock(&cache.lock);
}
