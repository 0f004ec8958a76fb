/* Bucket folders, page by page, from S3's ListObjectsV2, and the cache of pages (see s3_list.h). */
#include "s3_list.h"
#include "buckets.h"
#include "buf.h"
#include "log.h"
#include "stats.h"
#include "upstream.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- the cache ----------------------------------------------------------------------------- */

/* One page of one folder, as asked for: cached, or being fetched (page NULL or stale). */
struct slot {
    const struct bucket_auth *a;
    char *prefix, *token; /* token "" for a folder's first page */
    struct s3_page *page; /* the cache's reference; NULL until the first answer */
    bool fetching;
    struct s3_wait *waiters;
    struct slot *prev, *next; /* most recently used first */
};

static struct {
    pthread_mutex_t lock; /* guards everything here, and every page's refs */
    struct slot *head, *tail;
    size_t bytes;
} cache = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void unlink_slot(struct slot *s)
{
    *(s->prev ? &s->prev->next : &cache.head) = s->next;
    *(s->next ? &s->next->prev : &cache.tail) = s->prev;
    s->prev = s->next = NULL;
}

static void push_front(struct slot *s)
{
    s->next = cache.head;
    s->prev = NULL;
    *(cache.head ? &cache.head->prev : &cache.tail) = s;
    cache.head = s;
}

static void put_locked(struct s3_page *p)
{
    if (p && --p->refs == 0)
        s3_page_free(p);
}

static void drop_page(struct slot *s)
{
    if (s->page)
        cache.bytes -= s->page->bytes;
    put_locked(s->page);
    s->page = NULL;
}

static void free_slot(struct slot *s)
{
    unlink_slot(s);
    drop_page(s);
    free(s->prefix);
    free(s->token);
    free(s);
}

/* Least recently used first; a slot being fetched stays (its waiters hold on to it). */
static void evict(void)
{
    struct slot *s = cache.tail;
    while (cache.bytes > S3_LIST_CACHE_BYTES && s) {
        struct slot *prev = s->prev;
        if (!s->fetching)
            free_slot(s);
        s = prev;
    }
}

static struct slot *find(const struct bucket_auth *a, const char *prefix, const char *token)
{
    for (struct slot *s = cache.head; s; s = s->next)
        if (s->a == a && !strcmp(s->prefix, prefix) && !strcmp(s->token, token))
            return s;
    return NULL;
}

static bool fresh(const struct slot *s)
{
    return s->page && time(NULL) - s->page->fetched < s->a->bucket->listing_ttl;
}

static size_t page_bytes(const struct s3_page *p)
{
    size_t n = sizeof(*p) + (size_t)p->n * sizeof(*p->entries);
    for (int i = 0; i < p->n; i++)
        n += strlen(p->entries[i].name) + 1;
    return n;
}

/* The answer is in: cache it (a success), hand it to everyone waiting and wake them. */
static void complete(struct slot *s, struct s3_page *p)
{
    pthread_mutex_lock(&cache.lock);
    s->fetching = false;
    p->refs = 0;
    if (p->status == 200) {
        drop_page(s);
        p->bytes = page_bytes(p);
        p->refs = 1;
        s->page = p;
        cache.bytes += p->bytes;
    }
    for (struct s3_wait *w = s->waiters, *next; w; w = next) {
        next = w->next;
        p->refs++;
        w->page = p;
        w->next = NULL;
        w->wake(w->arg);
    }
    s->waiters = NULL;
    if (p->refs == 0)
        s3_page_free(p);
    if (!s->page)
        free_slot(s); /* nothing to keep: a failure is asked again next time */
    else
        evict();
    pthread_mutex_unlock(&cache.lock);
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
    struct slot *s = arg;
    const char *name = s->a->bucket->name;
    struct s3_page *p = calloc(1, sizeof(*p));
    if (p && res->status == 0) {
        p->status = 502;
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
static char *list_url(const struct slot *s)
{
    struct buf b = {0};
    buf_addf(&b, "%s?", s->a->url);
    if (s->token[0]) {
        buf_add(&b, "continuation-token=");
        buf_query(&b, s->token);
        buf_add(&b, "&");
    }
    buf_addf(&b, "delimiter=%%2F&list-type=2&max-keys=%d&prefix=", S3_LIST_PAGE_KEYS);
    buf_query(&b, s->prefix);
    return buf_take(&b, NULL);
}

static struct slot *new_slot(const struct bucket_auth *a, const char *prefix, const char *token)
{
    struct slot *s = calloc(1, sizeof(*s));
    if (!s || !(s->prefix = strdup(prefix)) || !(s->token = strdup(token))) {
        if (s)
            free(s->prefix);
        free(s);
        return NULL;
    }
    s->a = a;
    push_front(s);
    return s;
}

static void start(struct slot *s)
{
    char *url = list_url(s);
    atomic_fetch_add(&stats.bucket_list_requests, 1);
    if (!url || upstream_get(url, s->a, on_answer, s) < 0) {
        struct s3_page *p = failed_page(503, "bucket %s: cannot ask S3 for '%s' now",
                                        s->a->bucket->name, s->prefix);
        if (p)
            complete(s, p);
        else
            log_error("listing %s: out of memory", s->a->bucket->name);
    }
    free(url);
}

int s3_list_get(const struct bucket_auth *a, const char *prefix, const char *token,
                struct s3_page **page, struct s3_wait *w)
{
    bool ask = false;
    pthread_mutex_lock(&cache.lock);
    struct slot *s = find(a, prefix, token ? token : "");
    if (s && fresh(s)) {
        unlink_slot(s);
        push_front(s);
        s->page->refs++;
        *page = s->page;
        atomic_fetch_add(&stats.bucket_list_cached, 1);
        pthread_mutex_unlock(&cache.lock);
        return 1;
    }
    if (!s && !(s = new_slot(a, prefix, token ? token : ""))) {
        pthread_mutex_unlock(&cache.lock);
        return -1;
    }
    ask = !s->fetching;
    s->fetching = true;
    w->page = NULL;
    w->next = s->waiters;
    s->waiters = w;
    w->sleep(w->arg);
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
    for (struct slot *s = cache.head; s; s = s->next)
        for (struct s3_wait **q = &s->waiters; *q; q = &(*q)->next)
            if (*q == w) {
                *q = w->next;
                goto found;
            }
found:
    put_locked(w->page);
    w->page = NULL;
    pthread_mutex_unlock(&cache.lock);
}

void s3_list_put(struct s3_page *p)
{
    pthread_mutex_lock(&cache.lock);
    put_locked(p);
    pthread_mutex_unlock(&cache.lock);
}
