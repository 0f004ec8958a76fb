/* Units for identical objects (store_twins.c), driven through the store as arca drives it: two
 * URLs whose bodies have one digest share one file and count once against the quota; the quota
 * share passes to a twin when one leaves; a digest answers another URL's request only from a
 * public object, never from a private one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "persist/persist.h"
#include "store/store.h"
#include "store_fixture.h"

static char dir[] = "/tmp/arca-unit-twins-XXXXXX";

static int open_store(void **state)
{
    (void)state;
    return fixture_store_open(dir, NULL);
}

static int close_store(void **state)
{
    (void)state;
    return fixture_store_close(dir);
}

static void file_ready(void *arg)
{
    (void)arg;
}

/* A complete object for `url` holding `body`, downloaded through a signed URL or not. */
static void complete_object(const char *url, const char *body, bool signed_url)
{
    struct object *obj;
    struct object_meta meta;
    struct prepared *prep;
    uint8_t digest[32];
    int fd;
    struct upstream_headers h = {"", "", "", "", "", ""};
    assert_int_equal(
        store_lookup_as(
            url, &(struct object_terms){.ttl = 3600, .max_object_size = INT64_MAX, .store = true},
            AUTH_CONFIRMED, signed_url, &obj, &fd, &prep, &meta),
        LOOKUP_MISS);
    assert_int_equal(store_begin_file(obj, "http://h/", file_ready, NULL), 0);
    persist_flush();
    assert_int_equal(store_begin_body(obj, (int64_t)strlen(body), &h, true), 0);
    assert_int_equal(store_append(obj, body, strlen(body)), 0);
    SHA256((const unsigned char *)body, strlen(body), digest);
    assert_int_equal(store_finish(obj, digest), 0);
    persist_flush();
    store_release(obj);
    store_release(obj);
}

static ino_t inode_of(const char *url)
{
    struct object *obj;
    struct object_meta meta;
    struct stat sb;
    int fd;
    assert_int_equal(store_lookup(url, 3600, &obj, &fd, NULL, &meta), LOOKUP_HIT);
    assert_int_equal(fstat(fd, &sb), 0);
    close(fd);
    return sb.st_ino;
}

static int64_t disk_usage(void)
{
    struct store_totals t;
    store_totals(&t);
    return t.disk_usage;
}

static void identical_digests_share_one_file_counted_once(void **state)
{
    (void)state;
    int64_t before = disk_usage();
    complete_object("http://h/one", "same bytes", false);
    complete_object("http://mirror/one", "same bytes", false);
    persist_flush(); /* the link is the persistence thread's */
    assert_int_equal(disk_usage(), before + 10);
    assert_true(inode_of("http://h/one") == inode_of("http://mirror/one"));
}

static void leaving_passes_the_quota_share_to_a_twin(void **state)
{
    int64_t length;
    (void)state;
    int64_t before = disk_usage();
    complete_object("http://h/two", "twin body", false);
    complete_object("http://mirror/two", "twin body", false);
    assert_int_equal(disk_usage(), before + 9);
    /* whichever of the two held the share, the file stays counted while one name holds it */
    assert_int_equal(store_purge("http://h/two", &length), 1);
    assert_int_equal(disk_usage(), before + 9);
    assert_int_equal(store_purge("http://mirror/two", &length), 1);
    assert_int_equal(disk_usage(), before);
}

static void a_digest_answers_another_url_only_from_a_public_object(void **state)
{
    struct object_meta meta;
    uint8_t open_digest[32], private_digest[32];
    int fd;
    (void)state;
    complete_object("http://h/public", "public bytes", false);
    complete_object("http://h/private?X-Amz-Signature=abc", "private bytes", true);
    SHA256((const unsigned char *)"public bytes", 12, open_digest);
    SHA256((const unsigned char *)"private bytes", 13, private_digest);
    assert_int_equal(store_open_twin("http://other/public", open_digest, &fd, &meta),
                     LOOKUP_DIGEST);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(meta.length, 12);
    assert_int_equal(store_open_twin("http://other/private", private_digest, &fd, &meta),
                     LOOKUP_MISS);
    assert_int_equal(fd, -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(identical_digests_share_one_file_counted_once),
        cmocka_unit_test(leaving_passes_the_quota_share_to_a_twin),
        cmocka_unit_test(a_digest_answers_another_url_only_from_a_public_object),
    };
    return cmocka_run_group_tests(tests, open_store, close_store);
}
