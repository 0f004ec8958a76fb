/* Units for what a remote's URL is by its kind, and the path check every remote request passes
 * (remote/remote_kind.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "remote/remote_kind.h"

static enum remote_class cls(enum remote_kind k, const char *path)
{
    return remote_classify(k, path, strlen(path));
}

static void apt_metadata_and_immutable(void **state)
{
    (void)state;
    assert_int_equal(cls(REMOTE_APT, "/dists/bookworm/InRelease"), REMOTE_META);
    assert_int_equal(cls(REMOTE_APT, "/dists/bookworm/Release"), REMOTE_META);
    assert_int_equal(cls(REMOTE_APT, "/dists/bookworm/Release.gpg"), REMOTE_META);
    assert_int_equal(cls(REMOTE_APT, "/dists/bookworm/main/binary-amd64/Packages.xz"), REMOTE_META);
    assert_int_equal(cls(REMOTE_APT, "/dists/bookworm/main/i18n/Translation-en.bz2"), REMOTE_META);
    assert_int_equal(cls(REMOTE_APT, "/dists/bookworm/main/Contents-amd64.gz"), REMOTE_META);
    assert_int_equal(cls(REMOTE_APT, "/dists/bookworm/main/source/Sources.gz"), REMOTE_META);
    assert_int_equal(cls(REMOTE_APT,
                         "/dists/bookworm/main/binary-amd64/by-hash/SHA256/"
                         "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
                     REMOTE_IMMUTABLE);
    assert_int_equal(cls(REMOTE_APT, "/pool/main/h/hello/hello_2.10-3_amd64.deb"),
                     REMOTE_IMMUTABLE);
    /* a flat repository: its indexes beside the packages */
    assert_int_equal(cls(REMOTE_APT, "/Packages.gz"), REMOTE_META);
    assert_int_equal(cls(REMOTE_APT, "/InRelease"), REMOTE_META);
    assert_int_equal(cls(REMOTE_APT, "/hello_1.0_all.deb"), REMOTE_IMMUTABLE);
    /* a package named like an index is a package: only the last segment counts */
    assert_int_equal(cls(REMOTE_APT, "/pool/main/p/packages/x.deb"), REMOTE_IMMUTABLE);
}

static void apt_by_hash_names_its_digest(void **state)
{
    static const char path[] = "/dists/b/main/binary-amd64/by-hash/SHA256/"
                               "0123456789abcdef0123456789abcdef0123456789abcdef0123456789ABCDEF";
    uint8_t d[32];
    (void)state;
    assert_true(remote_named_digest(REMOTE_APT, path, strlen(path), d));
    assert_int_equal(d[0], 0x01);
    assert_int_equal(d[31], 0xef);
    assert_false(remote_named_digest(REMOTE_FILES, path, strlen(path), d));
    assert_false(remote_named_digest(REMOTE_APT, "/by-hash/MD5Sum/0123", 20, d));
    assert_false(remote_named_digest(REMOTE_APT, path, strlen(path) - 1, d));
}

static void apt_release_of_an_index(void **state)
{
    char out[256];
    (void)state;
#define REL(p) remote_apt_release_of(p, strlen(p), out, sizeof(out))
    assert_true(REL("/dists/bookworm/main/binary-amd64/Packages.xz"));
    assert_string_equal(out, "/dists/bookworm/InRelease");
    assert_true(REL("/debian/dists/stable-updates/main/i18n/Translation-en"));
    assert_string_equal(out, "/debian/dists/stable-updates/InRelease");
    assert_true(REL("/flat/Packages.gz"));
    assert_string_equal(out, "/flat/InRelease");
    assert_false(REL("/dists/bookworm/InRelease"));
    assert_false(REL("/dists/bookworm/Release.gpg"));
    assert_false(REL("/pool/main/h/hello/hello_2.10-3_amd64.deb"));
    assert_false(REL("/dists/b/main/binary-amd64/by-hash/SHA256/00"));
    assert_false(remote_apt_release_of("/dists/bookworm/main/Packages", 29, out, 8));
#undef REL
}

static void pypi_pages_and_files(void **state)
{
    (void)state;
    assert_int_equal(cls(REMOTE_PYPI, "/simple/"), REMOTE_PAGE);
    assert_int_equal(cls(REMOTE_PYPI, "/simple/requests/"), REMOTE_PAGE);
    assert_int_equal(cls(REMOTE_PYPI, "/simple/zope.interface/"), REMOTE_PAGE);
    assert_int_equal(cls(REMOTE_PYPI, "/simple/proj/index.html"), REMOTE_PAGE);
    assert_int_equal(cls(REMOTE_PYPI, "/simple"), REMOTE_PAGE);
    assert_int_equal(cls(REMOTE_PYPI, "/simple/proj/proj-1.0.tar.gz"), REMOTE_IMMUTABLE);
    assert_int_equal(cls(REMOTE_PYPI, "/packages/ab/cd/proj-1.0-py3-none-any.whl"),
                     REMOTE_IMMUTABLE);
    assert_int_equal(cls(REMOTE_PYPI, "/pypi/requests/json"), REMOTE_META);
    /* a remote whose URL is the simple index itself: its project pages */
    assert_int_equal(cls(REMOTE_PYPI, ""), REMOTE_IMMUTABLE);
}

static void go_lists_and_versions(void **state)
{
    (void)state;
    assert_int_equal(cls(REMOTE_GO, "/example.com/m/@v/list"), REMOTE_META);
    assert_int_equal(cls(REMOTE_GO, "/example.com/m/@latest"), REMOTE_META);
    assert_int_equal(cls(REMOTE_GO, "/example.com/m/@v/v1.2.3.info"), REMOTE_IMMUTABLE);
    assert_int_equal(cls(REMOTE_GO, "/example.com/m/@v/v1.2.3.mod"), REMOTE_IMMUTABLE);
    assert_int_equal(cls(REMOTE_GO, "/example.com/m/@v/v1.2.3.zip"), REMOTE_IMMUTABLE);
    assert_int_equal(cls(REMOTE_GO, "/sumdb/sum.golang.org/supported"), REMOTE_PASS);
    assert_int_equal(cls(REMOTE_GO, "/sumdb/sum.golang.org/lookup/x@v1"), REMOTE_PASS);
    assert_int_equal(cls(REMOTE_FILES, "/dists/x/InRelease"), REMOTE_ANY);
}

static bool ok(const char *path)
{
    const char *why;
    return remote_path_check(path, strlen(path), &why);
}

static void paths_that_leave_the_base(void **state)
{
    (void)state;
    assert_true(ok(""));
    assert_true(ok("/"));
    assert_true(ok("/dists/bookworm/InRelease"));
    assert_true(ok("/pool/main/g/gcc/gcc_12%3a12.2.0-14_amd64.deb"));
    assert_true(ok("/a..b/..c/c.."));
    assert_false(ok("/.."));
    assert_false(ok("/../x"));
    assert_false(ok("/a/../../x"));
    assert_false(ok("/%2e%2e/x"));
    assert_false(ok("/%2E%2e/x"));
    assert_false(ok("/.%2e/x"));
    assert_false(ok("/..%2Fx"));
    assert_false(ok("/x/..%2F..%2Fetc"));
    assert_false(ok("/..%5Cx"));
    assert_false(ok("/..\\x"));
    assert_false(ok("/..;/x"));
    assert_false(ok("/.;a/x"));
    assert_false(ok("/./x"));
    assert_false(ok("/x/%00"));
    assert_false(ok("/x/%zz"));
    assert_false(ok("/x/%2"));
    assert_false(ok("/x\x01y"));
    /* decoded again (an upstream or its front proxy that decodes twice), overlong UTF-8 */
    assert_true(ok("/100%25.txt"));
    assert_true(ok("/caf%c3%a9/%e2%82%ac"));
    assert_false(ok("/%252e%252e/x"));
    assert_false(ok("/%252E./x"));
    assert_false(ok("/..%252fx"));
    assert_false(ok("/x%255c..%255cy"));
    assert_false(ok("/%25252e%25252e/x"));
    assert_false(ok("/%c0%ae%c0%ae/x"));
    assert_false(ok("/%c0.%c0./x"));
    assert_false(ok("/%e0%80%ae/x"));
    assert_false(ok("/%f0%80%80%ae/x"));
    assert_false(ok("/%25c0%25ae/x"));
    assert_false(ok("/x/%`0"));
    assert_false(ok("/x/%@e"));
    /* past a long segment's first bytes, and a segment longer than any name */
    char path[REMOTE_SEGMENT_MAX + 64];
    memset(path, 'a', sizeof(path));
    path[0] = '/';
    strcpy(path + 300, "%252f..%252fx");
    assert_false(ok(path));
    strcpy(path + 300, "%252fb");
    assert_true(ok(path));
    memset(path + 1, 'a', sizeof(path) - 2);
    path[sizeof(path) - 1] = '\0';
    assert_false(ok(path));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(apt_metadata_and_immutable),
        cmocka_unit_test(apt_by_hash_names_its_digest),
        cmocka_unit_test(apt_release_of_an_index),
        cmocka_unit_test(pypi_pages_and_files),
        cmocka_unit_test(go_lists_and_versions),
        cmocka_unit_test(paths_that_leave_the_base),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
