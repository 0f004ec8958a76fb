/* Units for the bucket listings' page cache (s3_cache.h): its bound in real bytes, its lookup,
 * its eviction order, and failures never kept. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3/s3_cache.h"

/* Under a sanitizer the allocator is not glibc's, whose figures mallinfo2 gives. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define MEASURED_BY_GLIBC 0
#else
#define MEASURED_BY_GLIBC 1
#endif

static const char bucket_a[] = "a", bucket_b[] = "b"; /* identities only */

/* A page as s3_xml_parse makes one: `n` entries named `name`, a next token when `token`. */
static struct s3_page *page_of(int n, const char *name, const char *token)
{
    struct s3_page *p = calloc(1, sizeof(*p));
    assert_non_null(p);
    p->status = 200;
    p->entries = calloc((size_t)(n ? n : 1), sizeof(*p->entries));
    assert_non_null(p->entries);
    for (p->n = 0; p->n < n; p->n++)
        assert_non_null(p->entries[p->n].name = strdup(name));
    if (token)
        assert_non_null(p->next_token = strdup(token));
    p->refs = 1; /* the caller's, handed to the cache */
    return p;
}

/* A slot that got its page: what s3_list.c does on a 200. */
static struct s3_slot *cached(struct s3_cache *c, const void *bucket, const char *prefix,
                              const char *token, struct s3_page *p)
{
    struct s3_slot *s = s3_cache_add(c, bucket, prefix, token);
    assert_non_null(s);
    s3_cache_set_page(c, s, p);
    return s;
}

static size_t heap_in_use(void)
{
    return mallinfo2().uordblks;
}

/* Thousands of one-entry pages of folders with long names and long tokens: what the cache
 * counts is what the heap holds for it, and both stay under the limit. */
static void many_small_entries_with_long_keys_stay_within_the_bound(void **state)
{
    enum { LIMIT = 2 * 1024 * 1024, SLOTS = 20000 };
    struct s3_cache c = {.limit = LIMIT};
    char prefix[400], token[300], name[200];
    size_t before = heap_in_use(), peak = 0;
    (void)state;
    memset(token, 't', sizeof(token) - 1);
    token[sizeof(token) - 1] = '\0';
    memset(name, 'n', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    for (int i = 0; i < SLOTS; i++) {
        snprintf(prefix, sizeof(prefix), "%0390d/", i);
        cached(&c, bucket_a, prefix, token, page_of(1, name, token));
        assert_true(c.bytes <= LIMIT);
        size_t used = heap_in_use() - before;
        peak = used > peak ? used : peak;
        if (MEASURED_BY_GLIBC) /* the allocator's figure; a freed chunk may linger in a cache */
            assert_true(used <= c.bytes + 64 * 1024);
    }
    assert_true(c.count > 100 && c.count < SLOTS); /* it evicted, and it kept many */
    if (MEASURED_BY_GLIBC)
        assert_true(peak <= LIMIT + 64 * 1024);
    s3_cache_clear(&c);
    assert_int_equal(c.bytes, 0);
    assert_int_equal(c.count, 0);
}

/* Every page is found by its bucket, folder and token, among many. */
static void lookup_finds_each_page(void **state)
{
    struct s3_cache c = {.limit = 64 * 1024 * 1024};
    char prefix[32];
    (void)state;
    for (int i = 0; i < 5000; i++) {
        snprintf(prefix, sizeof(prefix), "d%d/", i);
        cached(&c, bucket_a, prefix, "", page_of(1, "x", NULL));
        cached(&c, bucket_a, prefix, "tok", page_of(2, "y", NULL));
        cached(&c, bucket_b, prefix, "", page_of(3, "z", NULL));
    }
    for (int i = 0; i < 5000; i++) {
        snprintf(prefix, sizeof(prefix), "d%d/", i);
        struct s3_slot *first = s3_cache_find(&c, bucket_a, prefix, "");
        struct s3_slot *next = s3_cache_find(&c, bucket_a, prefix, "tok");
        struct s3_slot *other = s3_cache_find(&c, bucket_b, prefix, "");
        assert_non_null(first);
        assert_non_null(next);
        assert_non_null(other);
        assert_int_equal(first->page->n, 1);
        assert_int_equal(next->page->n, 2);
        assert_int_equal(other->page->n, 3);
        assert_string_equal(first->prefix, prefix);
    }
    assert_null(s3_cache_find(&c, bucket_a, "d1/", "other"));
    assert_null(s3_cache_find(&c, bucket_a, "d5000/", ""));
    assert_null(s3_cache_find(&c, bucket_b, "d1/", "tok"));
    assert_int_equal(c.count, 15000);
    s3_cache_clear(&c);
}

/* The least recently used goes first; a use (touch) or a new answer saves a page; a page being
 * fetched is never evicted. */
static void eviction_takes_the_least_recently_used(void **state)
{
    struct s3_cache c = {.limit = 64 * 1024 * 1024};
    char name[4000];
    (void)state;
    memset(name, 'n', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    struct s3_slot *a = cached(&c, bucket_a, "a/", "", page_of(10, name, NULL));
    struct s3_slot *b = cached(&c, bucket_a, "b/", "", page_of(10, name, NULL));
    struct s3_slot *f = cached(&c, bucket_a, "f/", "", page_of(10, name, NULL));
    cached(&c, bucket_a, "d/", "", page_of(10, name, NULL));
    size_t one = a->bytes;
    assert_true(one > 10 * sizeof(name));
    s3_cache_touch(&c, a); /* order of use now: b f d a */
    f->fetching = true;    /* f is being asked again: it stays */
    c.limit = 3 * one + one / 2;
    cached(&c, bucket_a, "e/", "", page_of(10, name, NULL)); /* 5 pages: b goes, then d */
    assert_null(s3_cache_find(&c, bucket_a, "b/", ""));
    assert_null(s3_cache_find(&c, bucket_a, "d/", ""));
    assert_ptr_equal(s3_cache_find(&c, bucket_a, "f/", ""), f);
    assert_ptr_equal(s3_cache_find(&c, bucket_a, "a/", ""), a);
    assert_non_null(s3_cache_find(&c, bucket_a, "e/", ""));
    assert_true(c.bytes <= c.limit);
    (void)b;
    s3_cache_set_page(&c, f, page_of(10, name, NULL)); /* f's new page: f is the newest */
    c.limit = 2 * one + one / 2;
    cached(&c, bucket_a, "g/", "", page_of(10, name, NULL)); /* a goes, then e */
    assert_null(s3_cache_find(&c, bucket_a, "a/", ""));
    assert_null(s3_cache_find(&c, bucket_a, "e/", ""));
    assert_ptr_equal(s3_cache_find(&c, bucket_a, "f/", ""), f);
    assert_true(c.bytes <= c.limit);
    s3_cache_clear(&c);
}

/* A failure is handed out, never kept: its slot goes, and its bytes with it; a page a reader
 * still holds outlives its slot. */
static void failures_are_never_cached(void **state)
{
    struct s3_cache c = {.limit = 64 * 1024 * 1024};
    (void)state;
    struct s3_slot *s = s3_cache_add(&c, bucket_a, "x/", "");
    assert_non_null(s);
    assert_true(s->fetching);
    size_t one_slot = c.bytes;
    s3_cache_drop(&c, s); /* S3 answered 503: nothing kept */
    size_t table_only = c.bytes;
    assert_true(one_slot > table_only + sizeof(*s)); /* the slot and its strings counted */
    assert_null(s3_cache_find(&c, bucket_a, "x/", ""));
    assert_int_equal(c.count, 0);

    struct s3_page *p = page_of(2, "kept", "next");
    s = cached(&c, bucket_a, "y/", "", p);
    p->refs++; /* a reader's */
    s3_cache_drop(&c, s);
    assert_int_equal(p->refs, 1);
    assert_string_equal(p->entries[1].name, "kept");
    s3_cache_unref(p);
    assert_int_equal(c.bytes, table_only);
    s3_cache_clear(&c);
    assert_int_equal(c.bytes, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(many_small_entries_with_long_keys_stay_within_the_bound),
        cmocka_unit_test(lookup_finds_each_page),
        cmocka_unit_test(eviction_takes_the_least_recently_used),
        cmocka_unit_test(failures_are_never_cached),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
