/* Units for a URL reference resolved against its page's URL (url/resolve.h): RFC 3986 5.4's
 * examples, https and ports, and the bounds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "url/resolve.h"

#define RFC_BASE "http://a/b/c/d;p?q"

static char out[512];

/* The target, or "-1" when url_resolve refuses. */
static const char *resolved(const char *base, const char *ref)
{
    if (url_resolve(base, ref, out, sizeof(out)) < 0)
        return "-1";
    return out;
}

/* RFC 3986 5.4.1, every one of them. */
static void rfc_normal_examples(void **state)
{
    static const char *const cases[][2] = {
        {"g:h", "g:h"},
        {"g", "http://a/b/c/g"},
        {"./g", "http://a/b/c/g"},
        {"g/", "http://a/b/c/g/"},
        {"/g", "http://a/g"},
        {"//g", "http://g"},
        {"?y", "http://a/b/c/d;p?y"},
        {"g?y", "http://a/b/c/g?y"},
        {"#s", "http://a/b/c/d;p?q#s"},
        {"g#s", "http://a/b/c/g#s"},
        {"g?y#s", "http://a/b/c/g?y#s"},
        {";x", "http://a/b/c/;x"},
        {"g;x", "http://a/b/c/g;x"},
        {"g;x?y#s", "http://a/b/c/g;x?y#s"},
        {"", "http://a/b/c/d;p?q"},
        {".", "http://a/b/c/"},
        {"./", "http://a/b/c/"},
        {"..", "http://a/b/"},
        {"../", "http://a/b/"},
        {"../g", "http://a/b/g"},
        {"../..", "http://a/"},
        {"../../", "http://a/"},
        {"../../g", "http://a/g"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_string_equal(resolved(RFC_BASE, cases[i][0]), cases[i][1]);
}

/* RFC 3986 5.4.2 (the strict reading of "http:g"). */
static void rfc_abnormal_examples(void **state)
{
    static const char *const cases[][2] = {
        {"../../../g", "http://a/g"},
        {"../../../../g", "http://a/g"},
        {"/./g", "http://a/g"},
        {"/../g", "http://a/g"},
        {"g.", "http://a/b/c/g."},
        {".g", "http://a/b/c/.g"},
        {"g..", "http://a/b/c/g.."},
        {"..g", "http://a/b/c/..g"},
        {"./../g", "http://a/b/g"},
        {"./g/.", "http://a/b/c/g/"},
        {"g/./h", "http://a/b/c/g/h"},
        {"g/../h", "http://a/b/c/h"},
        {"g;x=1/./y", "http://a/b/c/g;x=1/y"},
        {"g;x=1/../y", "http://a/b/c/y"},
        {"g?y/./x", "http://a/b/c/g?y/./x"},
        {"g?y/../x", "http://a/b/c/g?y/../x"},
        {"g#s/./x", "http://a/b/c/g#s/./x"},
        {"g#s/../x", "http://a/b/c/g#s/../x"},
        {"http:g", "http:g"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_string_equal(resolved(RFC_BASE, cases[i][0]), cases[i][1]);
}

/* A package index's links: https, a port kept with its authority, a userinfo too, absolute
 * references to another host with their own dot segments, a base with a fragment. */
static void https_and_ports(void **state)
{
    const char *page = "https://127.0.0.1:8443/pypi/simple/requests/";
    (void)state;
    assert_string_equal(resolved(page, "../../packages/x.whl#sha256=ab"),
                        "https://127.0.0.1:8443/pypi/packages/x.whl#sha256=ab");
    assert_string_equal(resolved(page, "/packages/x.whl"), "https://127.0.0.1:8443/packages/x.whl");
    assert_string_equal(resolved(page, "//files.example:9000/p/x.whl"),
                        "https://files.example:9000/p/x.whl");
    assert_string_equal(resolved(page, "HTTP://Other:80/a/./b/../c?q#f"),
                        "HTTP://Other:80/a/c?q#f");
    assert_string_equal(resolved(page, "x.tar.gz"),
                        "https://127.0.0.1:8443/pypi/simple/requests/x.tar.gz");
    assert_string_equal(resolved("https://u:p@[::1]:8443/s/a#frag", "b"),
                        "https://u:p@[::1]:8443/s/b");
    assert_string_equal(resolved("https://[::1]:8443/s/a?q#frag", "#g"),
                        "https://[::1]:8443/s/a?q#g");
    assert_string_equal(resolved("http://h:8080", "g"), "http://h:8080/g");
    assert_string_equal(resolved("http://h:8080", "?y"), "http://h:8080?y");
    assert_string_equal(resolved("http://h:8080", ""), "http://h:8080");
    assert_string_equal(resolved("http://h/a", "mailto:a@b"), "mailto:a@b");
    assert_string_equal(resolved("http://h/a", "javascript:x()"), "javascript:x()");
}

/* The base must be an absolute http(s) URL; the result must fit, NUL and all. */
static void refused(void **state)
{
    char small[16];
    (void)state;
    assert_string_equal(resolved("ftp://h/a", "b"), "-1");
    assert_string_equal(resolved("/a/b", "c"), "-1");
    assert_string_equal(resolved("http://", "c"), "-1");
    assert_string_equal(resolved("http://h:0/", "c"), "-1");
    assert_string_equal(resolved("", ""), "-1");
    assert_int_equal(url_resolve("http://h/", "abcdef", small, sizeof(small)), 0); /* 15 bytes */
    assert_string_equal(small, "http://h/abcdef");
    assert_int_equal(url_resolve("http://h/", "abcdefg", small, sizeof(small)), -1);
    assert_int_equal(url_resolve("http://h/", "//a", small, 0), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rfc_normal_examples),
        cmocka_unit_test(rfc_abnormal_examples),
        cmocka_unit_test(https_and_ports),
        cmocka_unit_test(refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
