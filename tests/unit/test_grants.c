/* Units for the confirmed signed URLs (grants.h): a grant holds for the exact URL until its end
 * and not after; another signature of the same path is not granted; a grant pushed out of its
 * slot by another costs a confirmation, never a wrong answer; threads adding and checking at
 * once see only whole grants. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/sha.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "rules/grants.h"

#define SLOTS 16384 /* grants.c's table */

static void a_grant_holds_until_its_end(void **state)
{
    const char *url = "https://s3/b/k?X-Amz-Signature=aaaa";
    (void)state;
    assert_false(grants_check(url, 1000));
    grants_add(url, 2000);
    assert_true(grants_check(url, 1000));
    assert_true(grants_check(url, 1999));
    assert_false(grants_check(url, 2000)); /* ended */
    assert_false(grants_check("https://s3/b/k?X-Amz-Signature=aaab", 1000));
    assert_false(grants_check("https://s3/b/k", 1000));
}

static void an_added_grant_replaces_the_urls_older_one(void **state)
{
    const char *url = "https://s3/b/renewed?sig=1";
    (void)state;
    grants_add(url, 5000);
    grants_add(url, 3000); /* a shorter --confirm-ttl since: the latest answer wins */
    assert_false(grants_check(url, 4000));
    assert_true(grants_check(url, 2000));
}

static uint32_t slot_of(const char *url)
{
    uint8_t h[32];
    uint32_t i;
    SHA256((const unsigned char *)url, strlen(url), h);
    memcpy(&i, h, sizeof(i));
    return i % SLOTS;
}

static void a_pushed_out_grant_is_asked_again_never_mistaken(void **state)
{
    char first[64] = "https://s3/b/first?sig=0", other[64];
    (void)state;
    uint32_t want = slot_of(first);
    for (int i = 0;; i++) { /* another URL for the same slot (about SLOTS tries) */
        snprintf(other, sizeof(other), "https://s3/b/other?sig=%d", i);
        if (slot_of(other) == want)
            break;
    }
    grants_add(first, 9000);
    grants_add(other, 9000);
    assert_false(grants_check(first, 1)); /* one more confirmation */
    assert_true(grants_check(other, 1));
}

static void *adder(void *arg)
{
    char url[64];
    for (int i = 0; i < 20000; i++) {
        snprintf(url, sizeof(url), "https://s3/t%ld?sig=%d", (long)arg, i);
        grants_add(url, 100 + i);
        if (!grants_check(url, 99 + i)) /* pushed out by another thread's: it may be */
            continue;
        if (grants_check(url, 100 + i)) /* but never past its own end */
            return (void *)1;
    }
    return NULL;
}

static void threads_see_only_whole_grants(void **state)
{
    pthread_t th[4];
    void *bad;
    int wrong = 0;
    (void)state;
    for (long t = 0; t < 4; t++)
        assert_int_equal(pthread_create(&th[t], NULL, adder, (void *)t), 0);
    for (int t = 0; t < 4; t++) {
        pthread_join(th[t], &bad);
        wrong += bad != NULL;
    }
    assert_int_equal(wrong, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_grant_holds_until_its_end),
        cmocka_unit_test(an_added_grant_replaces_the_urls_older_one),
        cmocka_unit_test(a_pushed_out_grant_is_asked_again_never_mistaken),
        cmocka_unit_test(threads_see_only_whole_grants),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
