/* Units for the registry kind of source (source.h, source_registry.c), judged without a
 * transfer running: when a HEAD's digest renews the kept manifest, and when a tag's bytes are
 * vouched for (what a URL asks: test_registries.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "upstream/source_registry.h"
#include "upstream/transfer.h"
#include "registry/registries.h"

#define HEX "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static struct registry_counters counters;
static struct registry lab = {.name = "lab", .url = "http://127.0.0.1:5000", .counters = &counters};

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
    struct registry_ask blob = {&lab, {.what = REG_BLOB, .repo = "x", .by_digest = true}};
    struct registry_ask tag = {&lab, {.what = REG_MANIFEST, .repo = "x", .ref = "v1"}};
    (void)state;
    assert_true(source_registry_renews(&blob, "", "\"whatever-the-cdn-said\""));
    assert_false(source_registry_renews(&tag, "", "\"sha256:" HEX "\""));
    assert_true(source_registry_renews(&tag, "sha256:" HEX, "\"sha256:" HEX "\""));
    assert_false(source_registry_renews(&tag, "sha256:" HEX "0", "\"sha256:" HEX "\""));
}

/* A tag's bytes are vouched for by the Docker-Content-Digest its answer said, when it said one;
 * a digest the URL names is the core's check (a blob's or a manifest's by digest: nothing
 * here). */
static void bytes_are_vouched_by_the_digest_a_tag_said(void **state)
{
    struct registry_ask blob = {&lab, {.what = REG_BLOB, .repo = "x", .by_digest = true}};
    struct registry_ask tag = {&lab, {.what = REG_MANIFEST, .repo = "x", .ref = "latest"}};
    uint8_t right[32], wrong[32];
    (void)state;
    for (int i = 0; i < 32; i++)
        right[i] = (uint8_t)(((i * 2) % 16) << 4 | ((i * 2 + 1) % 16)); /* HEX's bytes */
    memcpy(wrong, right, 32);
    wrong[5] ^= 1;
    assert_null(source_registry_vouch(&tag, "", wrong));
    assert_null(source_registry_vouch(&tag, "sha256:" HEX, right));
    assert_string_equal(source_registry_vouch(&tag, "sha256:" HEX, wrong),
                        "its bytes are not the Docker-Content-Digest it said");
    /* a blob's answer says nothing a tag's does */
    assert_null(source_registry_vouch(&blob, "sha256:" HEX, wrong));
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
        cmocka_unit_test(a_head_renews_only_the_same_digest),
        cmocka_unit_test(a_head_renews_a_digest_always_a_tag_if_unchanged),
        cmocka_unit_test(bytes_are_vouched_by_the_digest_a_tag_said),
        cmocka_unit_test(the_kind_brings_its_hooks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
