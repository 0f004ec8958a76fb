/* Units for bucket listings (s3_list.h), driven without sockets: this suite is linked with
 * -Wl,--wrap=upstream_get (meson.build), so a ListObjectsV2 request is only recorded, and the
 * test answers it, from a thread of its own as the upstream thread would. Everyone waiting on a
 * page is woken once with it; a waiter that left first is not woken and gets nothing; a failed
 * answer reaches those waiting but is asked again by the next caller; a cached page is handed
 * out at once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/buckets.h"
#include "s3/s3_list.h"
#include "stats/stats.h"
#include "upstream/upstream.h"

/* --- the upstream thread, as far as listings see it ---------------------------------------- */

typedef void (*answer_fn)(const struct probe_result *res, const char *body, size_t len, void *arg);

static struct {
    int asked;      /* upstream_get calls */
    bool refuse;    /* the next one returns -1 (stopping) */
    char url[1200]; /* the last one's */
    answer_fn done;
    void *arg;
} up;

int __wrap_upstream_get(const char *url, const struct bucket_auth *auth, answer_fn done, void *arg)
{
    (void)auth;
    if (up.refuse) {
        up.refuse = false;
        return -1;
    }
    up.asked++;
    snprintf(up.url, sizeof(up.url), "%s", url);
    up.done = done;
    up.arg = arg;
    return 0;
}

#define PAGE                                                                                       \
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"                                                   \
    "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"                         \
    "<Name>lab</Name><Prefix>builds/</Prefix><KeyCount>1</KeyCount><MaxKeys>1000</MaxKeys>"        \
    "<Delimiter>/</Delimiter><IsTruncated>false</IsTruncated>"                                     \
    "<Contents><Key>builds/Image</Key><Size>7</Size></Contents></ListBucketResult>"

struct answer {
    int status;
    const char *body;
};

static void *answer_main(void *arg)
{
    const struct answer *a = arg;
    struct probe_result res = {.status = a->status};
    if (!a->status)
        snprintf(res.error, sizeof(res.error), "connection refused");
    up.done(&res, a->body, strlen(a->body), up.arg);
    return NULL;
}

/* Upstream answers the last request, on a thread of its own. */
static void answer(int status, const char *body)
{
    struct answer a = {status, body};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, answer_main, &a), 0);
    pthread_join(th, NULL);
}

/* --- requests waiting for pages ------------------------------------------------------------ */

struct request {
    struct s3_wait w;
    atomic_int wakes;
};

static void on_sleep(struct park *p)
{
    (void)p;
}

static void on_wake(struct park *p)
{
    struct s3_wait *w = PARK_OWNER(p, struct s3_wait, park);
    atomic_fetch_add(&PARK_OWNER(w, struct request, w)->wakes, 1);
}

static void request_init(struct request *r)
{
    memset(r, 0, sizeof(*r));
    park_init(&r->w.park, on_sleep, on_wake, NULL);
}

static struct bucket lab = {.name = "lab", .listing_ttl = 60};
static struct bucket_auth auth = {.bucket = &lab, .url = "http://s3.test/lab", .anonymous = true};

/* Ask for `prefix`'s first page: 1 with *page set (cached), or 0 (r waits). */
static int ask(struct request *r, const char *prefix, struct s3_page **page)
{
    *page = NULL;
    return s3_list_get(&auth, prefix, NULL, page, &r->w);
}

static void waiters_are_woken_once_with_the_page(void **state)
{
    struct request a, b, c;
    struct s3_page *page;
    (void)state;
    request_init(&a);
    request_init(&b);
    request_init(&c);
    up.asked = 0;
    assert_int_equal(ask(&a, "builds/", &page), 0);
    assert_int_equal(ask(&b, "builds/", &page), 0);
    assert_int_equal(up.asked, 1); /* one request for both */
    assert_non_null(strstr(up.url, "list-type=2"));
    assert_non_null(strstr(up.url, "prefix=builds%2F"));
    assert_null(s3_list_take(&a.w)); /* not come yet */
    answer(200, PAGE);
    assert_int_equal(atomic_load(&a.wakes), 1);
    assert_int_equal(atomic_load(&b.wakes), 1);
    struct s3_page *pa = s3_list_take(&a.w), *pb = s3_list_take(&b.w);
    assert_non_null(pa);
    assert_ptr_equal(pa, pb);
    assert_int_equal(pa->status, 200);
    assert_int_equal(pa->n, 1);
    assert_string_equal(pa->entries[0].name, "Image");
    int64_t cached = atomic_load(&stats.bucket_list_cached);
    assert_int_equal(ask(&c, "builds/", &page), 1); /* from the cache, at once */
    assert_ptr_equal(page, pa);
    assert_int_equal(up.asked, 1);
    assert_int_equal(atomic_load(&stats.bucket_list_cached), cached + 1);
    s3_list_put(pa);
    s3_list_put(pb);
    s3_list_put(page);
    park_leave(&a.w.park);
    park_leave(&b.w.park);
    park_leave(&c.w.park);
}

static void a_waiter_gone_before_the_page_is_not_woken(void **state)
{
    struct request a, b;
    struct s3_page *page;
    (void)state;
    request_init(&a);
    request_init(&b);
    assert_int_equal(ask(&a, "gone/", &page), 0);
    assert_int_equal(ask(&b, "gone/", &page), 0);
    s3_list_unwait(&a.w); /* its connection closed */
    answer(200, PAGE);
    assert_int_equal(atomic_load(&a.wakes), 0);
    assert_null(s3_list_take(&a.w));
    assert_int_equal(atomic_load(&b.wakes), 1);
    page = s3_list_take(&b.w);
    assert_non_null(page);
    s3_list_put(page);
    park_leave(&a.w.park);
    park_leave(&b.w.park);
}

static void a_failed_page_reaches_the_waiters_and_is_not_cached(void **state)
{
    struct request a, b;
    struct s3_page *page;
    (void)state;
    request_init(&a);
    request_init(&b);
    up.asked = 0;
    assert_int_equal(ask(&a, "down/", &page), 0);
    answer(0, ""); /* S3 unreachable */
    assert_int_equal(atomic_load(&a.wakes), 1);
    page = s3_list_take(&a.w);
    assert_non_null(page);
    assert_int_equal(page->status, 502);
    assert_non_null(strstr(page->error, "connection refused"));
    s3_list_put(page);
    assert_int_equal(ask(&b, "down/", &page), 0); /* asked again */
    assert_int_equal(up.asked, 2);
    answer(200, PAGE);
    page = s3_list_take(&b.w);
    assert_int_equal(page->status, 200);
    s3_list_put(page);
    park_leave(&a.w.park);
    park_leave(&b.w.park);
}

/* upstream_get refuses (arca stops): the waiter has its answer, a 503, before s3_list_get
 * returns, and nothing is cached. */
static void a_refused_request_answers_at_once(void **state)
{
    struct request a, b;
    struct s3_page *page;
    (void)state;
    request_init(&a);
    request_init(&b);
    up.asked = 0;
    up.refuse = true;
    assert_int_equal(ask(&a, "stopping/", &page), 0);
    assert_int_equal(atomic_load(&a.wakes), 1);
    page = s3_list_take(&a.w);
    assert_non_null(page);
    assert_int_equal(page->status, 503);
    s3_list_put(page);
    assert_int_equal(ask(&b, "stopping/", &page), 0);
    assert_int_equal(up.asked, 1);
    answer(200, PAGE);
    s3_list_put(s3_list_take(&b.w));
    park_leave(&a.w.park);
    park_leave(&b.w.park);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(waiters_are_woken_once_with_the_page),
        cmocka_unit_test(a_waiter_gone_before_the_page_is_not_woken),
        cmocka_unit_test(a_failed_page_reaches_the_waiters_and_is_not_cached),
        cmocka_unit_test(a_refused_request_answers_at_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
