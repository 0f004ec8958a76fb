/* Units for identical objects (store_twins.c), driven through the store as arca drives it: two
 * URLs whose bodies have one digest share one file and count once against the quota; the quota
 * share passes to a twin when one leaves; a digest answers another URL's request only from a
 * public object, never from a private one (signed, or under a bucket arca signs for), and only
 * from one whose own URL the caller says its client may fetch. */
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

#include "config/buckets.h"
#include "config/config.h"
#include "persist/persist.h"
#include "store/store.h"
#include "store/object.h"
#include "store/store_twins.h"
#include "store_fixture.h"
#include "unit_tmp.h"

static char dir[UNIT_TMP_MAX] = "/tmp/arca-unit-twins-XXXXXX";

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

/* A digest's client that may fetch every URL, and one refused every URL holding `arg`. */
static bool any_url(const char *url, const void *arg)
{
    (void)url;
    (void)arg;
    return true;
}

static bool not_under(const char *url, const void *arg)
{
    return !strstr(url, (const char *)arg);
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
            url, &(struct object_keep){.ttl = 3600, .max_object_size = INT64_MAX, .store = true},
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
    assert_int_equal(store_open_twin("http://other/public", open_digest, any_url, NULL, &fd, &meta),
                     LOOKUP_DIGEST);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(meta.length, 12);
    assert_int_equal(
        store_open_twin("http://other/private", private_digest, any_url, NULL, &fd, &meta),
        LOOKUP_MISS);
    assert_int_equal(fd, -1);
}

/* The same bytes under a URL the client may not fetch and under one it may: the one it may
 * answers, whichever the chain meets first; none when it may fetch neither. */
static void a_digest_answers_only_from_a_url_the_client_may_fetch(void **state)
{
    struct object_meta meta;
    uint8_t digest[32];
    char key[65];
    int fd;
    (void)state;
    complete_object("http://h/pub/fw.bin", "firmware bytes", false);
    complete_object("http://h/private/fw.bin", "firmware bytes", false); /* first on the chain */
    SHA256((const unsigned char *)"firmware bytes", 14, digest);
    assert_int_equal(
        store_open_twin("http://other/fw.bin", digest, not_under, "/private/", &fd, &meta),
        LOOKUP_DIGEST);
    close(fd);
    url_key("http://h/pub/fw.bin", key); /* the twin that answered: its key's first 4 bytes */
    uint8_t bytes[32];
    assert_int_equal(parse_sha256_hex(key, bytes), 0);
    assert_memory_equal(meta.tag, bytes, 4);
    assert_int_equal(
        store_open_twin("http://other/fw.bin", digest, not_under, "http://h/", &fd, &meta),
        LOOKUP_MISS);
    assert_int_equal(fd, -1);
}

/* More twins the client may not fetch than are asked about: the URL is downloaded as itself,
 * as without a twin, rather than the whole chain walked under the store lock. */
static void the_twins_asked_about_are_bounded(void **state)
{
    struct object_meta meta;
    uint8_t digest[32];
    char url[64];
    int fd;
    (void)state;
    complete_object("http://h/open/many.bin", "many twins", false);
    for (int i = 0; i < TWINS_ASKED; i++) {
        snprintf(url, sizeof(url), "http://h/closed/%d.bin", i);
        complete_object(url, "many twins", false); /* each before the open one on the chain */
    }
    SHA256((const unsigned char *)"many twins", 10, digest);
    assert_int_equal(
        store_open_twin("http://other/many.bin", digest, not_under, "/closed/", &fd, &meta),
        LOOKUP_MISS);
    assert_int_equal(fd, -1);
}

/* An object under a bucket arca signs for was downloaded with its credentials, in headers: it
 * answers no other URL, whoever asks; a bucket without credentials, or a URL merely starting
 * with the bucket's name, is nobody's credentials. */
static void a_digest_never_answers_from_a_bucket_arca_signs_for(void **state)
{
    static struct config cfg;
    struct object_meta meta;
    uint8_t signed_digest[32], open_digest[32], near_digest[32];
    char creds[UNIT_TMP_MAX] = "/tmp/arca-unit-twins-creds-XXXXXX", err[256];
    int fd = mkstemp(unit_tmp(creds, sizeof(creds)));
    (void)state;
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "AKID\nSECRET\n", 12), 12);
    close(fd);
    cfg.n_buckets = 2;
    snprintf(cfg.buckets[0].name, sizeof(cfg.buckets[0].name), "lab");
    snprintf(cfg.buckets[0].url, sizeof(cfg.buckets[0].url), "http://s3.lab:9000/lab");
    snprintf(cfg.buckets[0].credentials, sizeof(cfg.buckets[0].credentials), "%s", creds);
    snprintf(cfg.buckets[1].name, sizeof(cfg.buckets[1].name), "pub");
    snprintf(cfg.buckets[1].url, sizeof(cfg.buckets[1].url), "http://s3.lab:9000/pub");
    assert_int_equal(buckets_init(&cfg, err, sizeof(err)), 0);
    unlink(creds);
    complete_object("http://s3.lab:9000/lab/fw/secret.bin", "bucket secret", false);
    complete_object("http://s3.lab:9000/pub/fw/open.bin", "bucket open", false);
    complete_object("http://s3.lab:9000/lab-2/near.bin", "near the bucket", false);
    SHA256((const unsigned char *)"bucket secret", 13, signed_digest);
    SHA256((const unsigned char *)"bucket open", 11, open_digest);
    SHA256((const unsigned char *)"near the bucket", 15, near_digest);
    assert_int_equal(
        store_open_twin("http://other/secret.bin", signed_digest, any_url, NULL, &fd, &meta),
        LOOKUP_MISS);
    assert_int_equal(fd, -1);
    assert_int_equal(
        store_open_twin("http://other/open.bin", open_digest, any_url, NULL, &fd, &meta),
        LOOKUP_DIGEST);
    close(fd);
    assert_int_equal(
        store_open_twin("http://other/near.bin", near_digest, any_url, NULL, &fd, &meta),
        LOOKUP_DIGEST);
    close(fd);
    cfg.n_buckets = 0;
    assert_int_equal(buckets_init(&cfg, err, sizeof(err)), 0);
}

int main(void)
{
    unit_tmp(dir, sizeof(dir));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(identical_digests_share_one_file_counted_once),
        cmocka_unit_test(leaving_passes_the_quota_share_to_a_twin),
        cmocka_unit_test(a_digest_answers_another_url_only_from_a_public_object),
        cmocka_unit_test(a_digest_answers_only_from_a_url_the_client_may_fetch),
        cmocka_unit_test(the_twins_asked_about_are_bounded),
        cmocka_unit_test(a_digest_never_answers_from_a_bucket_arca_signs_for),
    };
    return cmocka_run_group_tests(tests, open_store, close_store);
}
