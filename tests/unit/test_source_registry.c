/* Units for the registry kind of source (source.h, source_registry.c), judged without a
 * transfer running: what a registry's URL asks (a manifest or a blob, by tag or digest), when
 * a HEAD's digest renews the kept manifest, and when the bytes are vouched for. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "upstream/transfer.h"
#include "registry/registries.h"

#define HEX "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static struct registry_counters counters;
static struct registry lab = {.name = "lab", .url = "http://127.0.0.1:5000", .counters = &counters};

static void what_a_url_asks(void **state)
{
    struct registry_pull p;
    (void)state;
    assert_false(source_registry_parse(NULL, "http://127.0.0.1:5000/v2/x/blobs/y", &p));
    assert_null(p.r);
    assert_false(source_registry_parse(&lab, "http://127.0.0.1:5001/v2/x/manifests/1", &p));
    assert_false(source_registry_parse(&lab, "http://127.0.0.1:5000/v3/x/manifests/1", &p));
    assert_true(source_registry_parse(&lab, "http://127.0.0.1:5000/v2/x/manifests/1", &p));
    assert_ptr_equal(p.r, &lab);
    assert_true(p.manifest);
    assert_false(p.by_digest);
    assert_true(source_registry_parse(&lab, "http://127.0.0.1:5000/v2/x/blobs/sha256:" HEX, &p));
    assert_false(p.manifest);
    assert_true(p.by_digest);
    assert_int_equal(p.digest[0], 0x01);
    assert_int_equal(p.digest[31], 0xef);
    /* a repository named with the words of the API: the last one says what is asked */
    assert_true(source_registry_parse(
        &lab, "http://127.0.0.1:5000/v2/a/blobs/b/manifests/sha256:" HEX, &p));
    assert_true(p.manifest);
    assert_true(p.by_digest);
    /* a tag list asks nothing to check; another algorithm is no digest to check against */
    assert_true(source_registry_parse(&lab, "http://127.0.0.1:5000/v2/x/tags/list", &p));
    assert_false(p.manifest || p.by_digest);
    assert_true(source_registry_parse(&lab, "http://127.0.0.1:5000/v2/x/blobs/sha512:00", &p));
    assert_false(p.by_digest);
}

/* The kept ETag is the digest quoted (or as the registry said it). */
static void a_head_renews_only_the_same_digest(void **state)
{
    (void)state;
    assert_true(source_registry_unchanged("\"sha256:" HEX "\"", "sha256:" HEX));
    assert_true(source_registry_unchanged("sha256:" HEX, "sha256:" HEX));
    assert_false(source_registry_unchanged("\"sha256:" HEX "\"", ""));
    assert_false(source_registry_unchanged("\"sha256:" HEX "x\"", "sha256:" HEX));
    assert_false(source_registry_unchanged("\"sha256:" HEX, "sha256:" HEX));
    assert_false(source_registry_unchanged("W/\"sha256:" HEX "\"", "sha256:" HEX));
    assert_false(source_registry_unchanged(NULL, "sha256:" HEX));
}

/* A digest's copy is renewed by any 2xx to its HEAD; a tag's only by its digest unchanged. */
static void a_head_renews_a_digest_always_a_tag_if_unchanged(void **state)
{
    struct registry_pull p;
    (void)state;
    source_registry_parse(&lab, "http://127.0.0.1:5000/v2/x/blobs/sha256:" HEX, &p);
    assert_true(source_registry_renews(&p, "\"whatever-the-cdn-said\""));
    source_registry_parse(&lab, "http://127.0.0.1:5000/v2/x/manifests/v1", &p);
    assert_false(source_registry_renews(&p, "\"sha256:" HEX "\""));
    snprintf(p.said, sizeof(p.said), "sha256:%s", HEX);
    assert_true(source_registry_renews(&p, "\"sha256:" HEX "\""));
    snprintf(p.said, sizeof(p.said), "sha256:%064d", 0);
    assert_false(source_registry_renews(&p, "\"sha256:" HEX "\""));
}

static void bytes_are_vouched_by_the_digest_asked_and_said(void **state)
{
    struct registry_pull p;
    uint8_t right[32], wrong[32];
    (void)state;
    source_registry_parse(&lab, "http://127.0.0.1:5000/v2/x/blobs/sha256:" HEX, &p);
    memcpy(right, p.digest, 32);
    memcpy(wrong, right, 32);
    wrong[5] ^= 1;
    assert_null(source_registry_vouch(&p, right));
    assert_string_equal(source_registry_vouch(&p, wrong),
                        "its bytes are not the digest its URL names");
    /* a tag: its Docker-Content-Digest, when it said one */
    source_registry_parse(&lab, "http://127.0.0.1:5000/v2/x/manifests/latest", &p);
    assert_null(source_registry_vouch(&p, wrong));
    snprintf(p.said, sizeof(p.said), "sha256:%s", HEX);
    assert_null(source_registry_vouch(&p, right));
    assert_string_equal(source_registry_vouch(&p, wrong),
                        "its bytes are not the Docker-Content-Digest it said");
    /* a blob's answer says nothing a tag's does: only its URL's digest counts */
    source_registry_parse(&lab, "http://127.0.0.1:5000/v2/x/blobs/sha256:" HEX, &p);
    snprintf(p.said, sizeof(p.said), "sha256:%064d", 0);
    assert_null(source_registry_vouch(&p, right));
}

/* The kind adds its headers and judgements; it is never signed for a bucket nor confirms a
 * signed URL. */
static void the_kind_brings_its_hooks(void **state)
{
    (void)state;
    assert_string_equal(source_registry.name, "registry");
    assert_non_null(source_registry.headers);
    assert_non_null(source_registry.vouches);
    assert_non_null(source_registry.refusal);
    assert_false(source_registry.confirms_grants);
    assert_false(source_registry.tags_its_copy);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(what_a_url_asks),
        cmocka_unit_test(a_head_renews_only_the_same_digest),
        cmocka_unit_test(a_head_renews_a_digest_always_a_tag_if_unchanged),
        cmocka_unit_test(bytes_are_vouched_by_the_digest_asked_and_said),
        cmocka_unit_test(the_kind_brings_its_hooks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
