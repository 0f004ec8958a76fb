/* Units for the distribution API's grammar (registry/reg_name.h): names, tags, digests, paths. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "registry/reg_name.h"

#define DIGEST "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static bool name_ok(const char *s)
{
    return reg_name_valid(s, strlen(s));
}

static void names(void **state)
{
    (void)state;
    assert_true(name_ok("debian"));
    assert_true(name_ok("library/debian"));
    assert_true(name_ok("a/b.c/d_e/f__g/h---i"));
    assert_true(name_ok("0/9"));
    assert_false(name_ok(""));
    assert_false(name_ok("Debian"));
    assert_false(name_ok("a//b"));
    assert_false(name_ok("/a"));
    assert_false(name_ok("a/"));
    assert_false(name_ok(".."));
    assert_false(name_ok("a/../b"));
    assert_false(name_ok("a/%2e%2e/b"));
    assert_false(name_ok("a..b"));
    assert_false(name_ok("a___b"));
    assert_false(name_ok("a-"));
    assert_false(name_ok("-a"));
    assert_false(name_ok("a.-b"));
    assert_false(name_ok("a b"));
    char long_name[300];
    memset(long_name, 'a', sizeof(long_name));
    assert_true(reg_name_valid(long_name, 255));
    assert_false(reg_name_valid(long_name, 256));
}

static void tags(void **state)
{
    (void)state;
    assert_true(reg_tag_valid("latest", 6));
    assert_true(reg_tag_valid("_x.Y-1", 6));
    assert_false(reg_tag_valid("", 0));
    assert_false(reg_tag_valid(".x", 2));
    assert_false(reg_tag_valid("-x", 2));
    assert_false(reg_tag_valid("a/b", 3));
    char t[200];
    memset(t, 'a', sizeof(t));
    assert_true(reg_tag_valid(t, 128));
    assert_false(reg_tag_valid(t, 129));
}

static void digests(void **state)
{
    uint8_t d[32];
    (void)state;
    assert_int_equal(reg_digest_parse(DIGEST, strlen(DIGEST), d), REG_OK);
    assert_int_equal(d[0], 0x01);
    assert_int_equal(d[31], 0xef);
    const char *upper = "sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef";
    assert_int_equal(reg_digest_parse(upper, strlen(upper), d), REG_DIGEST_INVALID);
    assert_int_equal(reg_digest_parse("sha256:abc", 10, d), REG_DIGEST_INVALID);
    assert_int_equal(reg_digest_parse("sha512:abcd", 11, d), REG_UNSUPPORTED);
    assert_int_equal(reg_digest_parse("md5", 3, d), REG_DIGEST_INVALID);
    assert_int_equal(reg_digest_parse(":abc", 4, d), REG_DIGEST_INVALID);
    assert_int_equal(reg_digest_parse("sha512:", 7, d), REG_DIGEST_INVALID);
    assert_int_equal(reg_digest_parse("sha512:a/b", 10, d), REG_DIGEST_INVALID);
}

static void paths(void **state)
{
    struct reg_path p;
    char why[200];
    (void)state;
    assert_int_equal(reg_path_parse("", &p, why, sizeof(why)), REG_OK);
    assert_int_equal(p.what, REG_BASE);
    assert_int_equal(reg_path_parse("library/debian/manifests/12", &p, why, sizeof(why)), REG_OK);
    assert_int_equal(p.what, REG_MANIFEST);
    assert_string_equal(p.repo, "library/debian");
    assert_string_equal(p.ref, "12");
    assert_false(p.by_digest);
    assert_int_equal(reg_path_parse("a/manifests/manifests/" DIGEST, &p, why, sizeof(why)), REG_OK);
    assert_string_equal(p.repo, "a/manifests");
    assert_true(p.by_digest);
    assert_int_equal(p.digest[1], 0x23);
    assert_int_equal(reg_path_parse("x/blobs/" DIGEST, &p, why, sizeof(why)), REG_OK);
    assert_int_equal(p.what, REG_BLOB);
    assert_int_equal(reg_path_parse("x/y/tags/list", &p, why, sizeof(why)), REG_OK);
    assert_int_equal(p.what, REG_TAGS);
    assert_string_equal(p.repo, "x/y");
    assert_int_equal(reg_path_parse("x/blobs/latest", &p, why, sizeof(why)), REG_DIGEST_INVALID);
    assert_true(why[0]);
    assert_int_equal(reg_path_parse("x/manifests/.bad", &p, why, sizeof(why)), REG_TAG_INVALID);
    assert_int_equal(reg_path_parse("x/manifests/sha1:ab", &p, why, sizeof(why)),
                     REG_DIGEST_INVALID);
    assert_non_null(strstr(why, "not supported"));
    assert_int_equal(reg_path_parse("X/manifests/1", &p, why, sizeof(why)), REG_NAME_INVALID);
    assert_int_equal(reg_path_parse("../manifests/1", &p, why, sizeof(why)), REG_NAME_INVALID);
    assert_int_equal(reg_path_parse("manifests/1", &p, why, sizeof(why)), REG_NAME_INVALID);
    assert_int_equal(reg_path_parse("x/other/1", &p, why, sizeof(why)), REG_NAME_INVALID);
    assert_int_equal(reg_path_parse("x/manifests/", &p, why, sizeof(why)), REG_NAME_INVALID);
    assert_int_equal(reg_path_parse("/tags/list", &p, why, sizeof(why)), REG_NAME_INVALID);
    assert_int_equal(reg_path_parse("x", &p, why, sizeof(why)), REG_NAME_INVALID);
    assert_string_equal(reg_error_code(REG_DIGEST_INVALID), "DIGEST_INVALID");
    assert_string_equal(reg_error_code(REG_NAME_UNKNOWN), "NAME_UNKNOWN");
}

/* An index (OCI's, Docker's list) names images; any other manifest type is one image. */
static void index_types(void **state)
{
    (void)state;
    assert_true(reg_media_is_index("application/vnd.oci.image.index.v1+json"));
    assert_true(reg_media_is_index("application/vnd.docker.distribution.manifest.list.v2+json"));
    assert_true(reg_media_is_index("Application/VND.OCI.Image.Index.v1+json; charset=utf-8"));
    assert_false(reg_media_is_index("application/vnd.oci.image.manifest.v1+json"));
    assert_false(reg_media_is_index("application/vnd.docker.distribution.manifest.v2+json"));
    assert_false(reg_media_is_index("application/vnd.oci.image.index.v1+jsonx"));
    assert_false(reg_media_is_index("application/json"));
    assert_false(reg_media_is_index(""));
    assert_false(reg_media_is_index(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(names), cmocka_unit_test(tags),        cmocka_unit_test(digests),
        cmocka_unit_test(paths), cmocka_unit_test(index_types),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
