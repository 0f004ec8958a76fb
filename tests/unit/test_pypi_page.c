/* Units for a package index's page with its file links rewritten (remote/pypi_page.h): pypi.org's
 * HTML and JSON forms, relative links, quotes and entities, <base href>, links left as they are,
 * truncated and random pages (run under ASan: a page is read as bytes, never past its end). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "remote/pypi_page.h"

#define HEX1 "813202ace4d9301a3c00740c700e012fb9f3f8c73ddcfe02ab558a8df6f175fd"
#define HEX2 "58cd2187c01e70e6e26505bca751777aa9f2ee0b7f4300988b709f44e013003f"
#define HEX2_UPPER "58CD2187C01E70E6E26505BCA751777AA9F2EE0B7F4300988B709F44E013003F"
#define FILES "https://files.pythonhosted.org/"
#define REMOTE "https://127.0.0.1:8443/pypi/"
#define PAGE_URL REMOTE "simple/requests/"
#define PATH1 "packages/ba/bb/dfa0141a32d773c4/requests-0.2.0.tar.gz"
#define PATH2 "packages/70/8e/0e2d847013cb52cd/requests-2.31.0-py3-none-any.whl"

/* What the callback was given, and whether it rewrites. */
struct calls {
    int n;
    char abs[8][512];
    char sha256[8][65];
    bool keep; /* answer false: the link made absolute */
};

/* The lead's rule in small: a link under the remote's URL becomes /pypi/PATH, one to
 * files.pythonhosted.org /pypi/+f/https/HOST/PATH?sha256=HEX, any other is kept (absolute). */
static bool to_arca(const char *abs, const char *sha256, char *out, size_t size, void *arg)
{
    struct calls *c = arg;
    if (c->n < 8) {
        snprintf(c->abs[c->n], sizeof(c->abs[0]), "%s", abs);
        snprintf(c->sha256[c->n], sizeof(c->sha256[0]), "%s", sha256 ? sha256 : "-");
    }
    c->n++;
    if (c->keep)
        return false;
    if (!strncmp(abs, REMOTE, strlen(REMOTE)))
        return (size_t)snprintf(out, size, "/pypi/%s", abs + strlen(REMOTE)) < size;
    if (strncmp(abs, FILES, strlen(FILES)))
        return false;
    return (size_t)snprintf(out, size, "/pypi/+f/https/files.pythonhosted.org/%s%s%s",
                            abs + strlen(FILES), sha256 ? "?sha256=" : "",
                            sha256 ? sha256 : "") < size;
}

static char *html(const char *page, const char *url, struct calls *c)
{
    size_t len = 12345;
    char *body = pypi_rewrite_html(page, strlen(page), url, to_arca, c, &len);
    assert_non_null(body);
    assert_int_equal(len, strlen(body));
    return body;
}

static void assert_html(const char *page, const char *url, const char *want)
{
    struct calls c = {0};
    char *body = html(page, url, &c);
    assert_string_equal(body, want);
    free(body);
}

#define PYPI_PAGE(LINK1, LINK2)                                                                    \
    "<!DOCTYPE html>\n<html>\n  <head>\n"                                                          \
    "    <meta name=\"pypi:repository-version\" content=\"1.1\">\n"                                \
    "    <title>Links for requests</title>\n  </head>\n  <body>\n"                                 \
    "    <h1>Links for requests</h1>\n"                                                            \
    "    <a href=\"" LINK1 "#sha256=" HEX1 "\" >requests-0.2.0.tar.gz</a><br />\n"                 \
    "    <a href=\"" LINK2 "#sha256=" HEX2 "\" data-requires-python=\"&gt;=3.7\" "                 \
    "data-dist-info-metadata=\"sha256=" HEX1 "\" data-core-metadata=\"sha256=" HEX1 "\" "          \
    "data-yanked=\"\">requests-2.31.0-py3-none-any.whl</a><br />\n"                                \
    "  </body>\n</html>\n<!--SERIAL 20517391-->\n"

/* pypi.org's page: absolute links to files.pythonhosted.org with their digests; everything but
 * the hrefs byte for byte, the fragment kept after the new link. */
static void pypi_org_page(void **state)
{
    struct calls c = {0};
    const char *page = PYPI_PAGE(FILES PATH1, FILES PATH2);
    char *body;
    (void)state;
    body = html(page, "https://pypi.org/simple/requests/", &c);
    assert_string_equal(body,
                        PYPI_PAGE("/pypi/+f/https/files.pythonhosted.org/" PATH1 "?sha256=" HEX1,
                                  "/pypi/+f/https/files.pythonhosted.org/" PATH2 "?sha256=" HEX2));
    assert_int_equal(c.n, 2);
    assert_string_equal(c.abs[0], FILES PATH1);
    assert_string_equal(c.sha256[0], HEX1);
    assert_string_equal(c.abs[1], FILES PATH2);
    assert_string_equal(c.sha256[1], HEX2);
    free(body);
    /* a callback that keeps every link: the page itself, its links being absolute already */
    c = (struct calls){.keep = true};
    body = html(page, "https://pypi.org/simple/requests/", &c);
    assert_string_equal(body, page);
    assert_int_equal(c.n, 2);
    free(body);
}

/* A mirror's relative links (devpi's, a static index's): resolved against the page's URL, the
 * digest given in lower case, the fragment kept as written. */
static void relative_links(void **state)
{
    struct calls c = {0};
    char *body;
    (void)state;
    body = html("<a href=\"../../packages/x.whl#sha256=" HEX2_UPPER "\">x</a>\n"
                "<a href=\"y-1.0.tar.gz\">y</a><a href=\"/other/z.zip#md5=abc\">z</a>",
                PAGE_URL, &c);
    assert_string_equal(body, "<a href=\"/pypi/packages/x.whl#sha256=" HEX2_UPPER "\">x</a>\n"
                              "<a href=\"/pypi/simple/requests/y-1.0.tar.gz\">y</a>"
                              "<a href=\"https://127.0.0.1:8443/other/z.zip#md5=abc\">z</a>");
    assert_int_equal(c.n, 3);
    assert_string_equal(c.abs[0], REMOTE "packages/x.whl");
    assert_string_equal(c.sha256[0], HEX2);
    assert_string_equal(c.abs[1], PAGE_URL "y-1.0.tar.gz");
    assert_string_equal(c.sha256[1], "-");
    assert_string_equal(c.abs[2], "https://127.0.0.1:8443/other/z.zip");
    assert_string_equal(c.sha256[2], "-"); /* md5= names none */
    free(body);
}

/* Tags and attribute names in any case, an href quoted with '\'' or unquoted (written back in
 * '"'), blanks around '=' and inside the value's ends. */
static void quotes_and_case(void **state)
{
    (void)state;
    assert_html("<A HREF='a.whl#md5=1'>a</A><a data-x=1 href=b.whl>b</a>"
                "<a\nhReF = \" c.whl \"\n>c</a><a href=d.whl>d</a>",
                PAGE_URL,
                "<A HREF='/pypi/simple/requests/a.whl#md5=1'>a</A>"
                "<a data-x=1 href=\"/pypi/simple/requests/b.whl\">b</a>"
                "<a\nhReF = \"/pypi/simple/requests/c.whl\"\n>c</a>"
                "<a href=\"/pypi/simple/requests/d.whl\">d</a>");
    /* an attribute given twice: a browser reads the first, pip the last; both rewritten, one
     * between them kept as it is */
    assert_html("<a href=\"e.whl\" href=\"f.whl\">", PAGE_URL,
                "<a href=\"/pypi/simple/requests/e.whl\" href=\"/pypi/simple/requests/f.whl\">");
    assert_html("<a href=e.whl href=x.whl href='f.whl'>", PAGE_URL,
                "<a href=\"/pypi/simple/requests/e.whl\" href=x.whl "
                "href='/pypi/simple/requests/f.whl'>");
    /* a '>' inside a quoted value does not end the tag */
    assert_html("<a data-requires-python=\">=3.7\" href=\"g.whl\">", PAGE_URL,
                "<a data-requires-python=\">=3.7\" href=\"/pypi/simple/requests/g.whl\">");
}

/* An href is unescaped before it is resolved and escaped again when written back. */
static void entities_in_hrefs(void **state)
{
    struct calls c = {.keep = true};
    char *body;
    (void)state;
    body = html("<a href=\"x.whl?a=1&amp;b=2&#38;c=3&#x26;d=&quot;&lt;&gt;&#233;&#X41&bogus;&\">",
                "http://h/s/", &c);
    assert_string_equal(c.abs[0], "http://h/s/x.whl?a=1&b=2&c=3&d=\"<>\xc3\xa9"
                                  "A&bogus;&");
    assert_string_equal(body, "<a href=\"http://h/s/x.whl?a=1&amp;b=2&amp;c=3&amp;d=&quot;&lt;"
                              "&gt;\xc3\xa9"
                              "A&amp;bogus;&amp;\">");
    free(body);
    /* a reference HTML reads as U+FFFD, and a number too big for any code point */
    c = (struct calls){.keep = true};
    free(html("<a href='&#0;&#xD800;&#99999999999999999999999;'>", "http://h/", &c));
    assert_string_equal(c.abs[0], "http://h/\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
}

/* A callback that answers false: the link made absolute, its fragment kept. */
static void kept_links_made_absolute(void **state)
{
    struct calls c = {.keep = true};
    char *body;
    (void)state;
    body = html("<a href=\"../../p/x.whl#sha256=" HEX1 "\">", PAGE_URL, &c);
    assert_string_equal(body, "<a href=\"" REMOTE "p/x.whl#sha256=" HEX1 "\">");
    assert_string_equal(c.sha256[0], HEX1);
    free(body);
    /* the sample rule keeps a link to another host: absolute too */
    assert_html("<a href=\"//other.example/x.whl\">", PAGE_URL,
                "<a href=\"https://other.example/x.whl\">");
}

/* What is no file link stays as it is: other schemes, links too long, an href without a value,
 * other tags, comments, end tags, a sha256 fragment that is not 64 hex digits. */
static void left_as_is(void **state)
{
    static const char *const pages[] = {
        "<a href=\"mailto:x@example.org\">m</a><a href='javascript:alert(1)'>j</a>",
        "<a href=\"ftp://h/x.whl\">f</a><a href>n</a><a name=x>a</a>",
        "<abbr href=\"x.whl\"></abbr><link href=\"x.css\"></a href=\"x.whl\">",
        "<!-- <a href=\"x.whl\"> --><!--><a<!---->",
        "<!DOCTYPE html><?xml version=\"1.0\"?>< a href=x> a < b",
        "<a href=\"http://h:0/x\">bad port</a><a href=\"http://a b/x\">bad host</a>",
    };
    struct calls c = {0};
    (void)state;
    for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++) {
        char *body = html(pages[i], PAGE_URL, &c);
        assert_string_equal(body, pages[i]);
        free(body);
    }
    assert_int_equal(c.n, 0);
    /* a digest named wrong is no digest, and the fragment is kept */
    c = (struct calls){.keep = true};
    free(html("<a href=\"a#sha256=" HEX1 "0\"><a href=\"b#sha256=12\"><a href=\"c#SHA256=" HEX1
              "\">",
              PAGE_URL, &c));
    assert_int_equal(c.n, 3);
    assert_string_equal(c.sha256[0], "-");
    assert_string_equal(c.sha256[1], "-");
    assert_string_equal(c.sha256[2], "-");
}

/* A link of PYPI_LINK_MAX bytes is rewritten, one byte more is not. */
static void long_links(void **state)
{
    static char page[PYPI_LINK_MAX + 32];
    char *body;
    struct calls c = {0};
    (void)state;
    for (int over = 0; over <= 1; over++) {
        size_t link = PYPI_LINK_MAX + (size_t)over;
        memcpy(page, "<a href=\"", 9);
        memset(page + 9, 'x', link);
        strcpy(page + 9 + link, "\">");
        c = (struct calls){0};
        body = html(page, PAGE_URL, &c);
        assert_int_equal(c.n, over ? 0 : 1);
        if (over)
            assert_string_equal(body, page);
        else
            assert_int_equal(strlen(body), strlen(page) + strlen("/pypi/simple/requests/"));
        free(body);
    }
}

/* <base href>: the first one that resolves is the base of the links after it; every one is
 * written back empty. */
static void base_href(void **state)
{
    struct calls c = {.keep = true};
    char *body;
    (void)state;
    body = html("<a href=\"a.whl\"><BASE HREF=\"../../other/\"><a href=\"b.whl\">"
                "<base href=https://ignored.example/><a href=\"c.whl\">",
                PAGE_URL, &c);
    assert_string_equal(body, "<a href=\"" PAGE_URL "a.whl\"><BASE HREF=\"\">"
                              "<a href=\"" REMOTE "other/b.whl\"><base href=\"\">"
                              "<a href=\"" REMOTE "other/c.whl\">");
    free(body);
    /* a first base that is no http(s) URL: the page's URL stays the base */
    c = (struct calls){.keep = true};
    body =
        html("<base href=\"mailto:x\"><base href=\"https://h/\"><a href=\"d.whl\">", PAGE_URL, &c);
    assert_string_equal(body, "<base href=\"\"><base href=\"\"><a href=\"" PAGE_URL "d.whl\">");
    free(body);
}

/* `n` copies of `item` after `head` and before `tail`, in a new string of *len bytes. */
static char *repeated(const char *head, const char *item, size_t n, const char *tail, size_t *len)
{
    size_t h = strlen(head), i = strlen(item), t = strlen(tail);
    char *p = malloc(h + n * i + t + 1);
    assert_non_null(p);
    memcpy(p, head, h);
    for (size_t k = 0; k < n; k++)
        memcpy(p + h + k * i, item, i);
    memcpy(p + h + n * i, tail, t + 1);
    *len = h + n * i + t;
    return p;
}

/* A hostile index's pages: one-byte links under an 8 KB <base> would grow a thousandfold, a
 * JSON page of "{}" would be parsed into a tree 78 times its size: NULL (502); a page of real
 * links of the same size is rewritten. */
static void pages_that_would_blow_up(void **state)
{
    struct calls c = {.keep = true};
    char base[8200], *page, *body;
    size_t len, out_len;
    (void)state;
    memset(base, 'a', sizeof(base));
    memcpy(base, "<base href=\"" REMOTE, strlen("<base href=\"" REMOTE));
    memcpy(base + sizeof(base) - 4, "/\">", 4);
    base[sizeof(base) - 1] = '\0';
    page = repeated(base, "<a href=&>", 20000, "", &len);
    assert_null(pypi_rewrite_html(page, len, PAGE_URL, to_arca, &c, &out_len));
    free(page);
    c = (struct calls){0};
    page = repeated("", "<a href=\"" FILES PATH1 "#sha256=" HEX1 "\">x</a>\n", 20000, "", &len);
    body = pypi_rewrite_html(page, len, PAGE_URL, to_arca, &c, &out_len);
    assert_non_null(body);
    assert_true(out_len > len && out_len < 2 * len);
    free(body);
    free(page);
    page = repeated("{\"files\":[", "{},", 1000000, "{}]}", &len);
    assert_null(pypi_rewrite_json(page, len, PAGE_URL, to_arca, &c, &out_len));
    free(page);
    /* ten times numpy's files: 100,000 took 1.1 s here, and the suite ran past its bound under
     * TSan beside a CI run */
    page = repeated("{\"files\":[", "{\"url\":\"../x.whl\",\"hashes\":{\"sha256\":\"" HEX1 "\"}},",
                    20000, "{}]}", &len);
    body = pypi_rewrite_json(page, len, PAGE_URL, to_arca, &c, &out_len);
    assert_non_null(body);
    free(body);
    free(page);
}

/* A page cut in a tag, a comment, a quoted value: what came before rewritten, the rest as it
 * is; an empty page is an empty body. */
static void truncated_and_empty_pages(void **state)
{
    size_t len = 99;
    char *body;
    (void)state;
    assert_html("<a href=\"x.whl\">x</a><a href=\"y.whl", PAGE_URL,
                "<a href=\"/pypi/simple/requests/x.whl\">x</a><a href=\"y.whl");
    assert_html("<a href=x.whl><a href=\"y.whl\"", PAGE_URL,
                "<a href=\"/pypi/simple/requests/x.whl\"><a href=\"y.whl\"");
    assert_html("<a href=x.whl><!-- <a href=y.whl>", PAGE_URL,
                "<a href=\"/pypi/simple/requests/x.whl\"><!-- <a href=y.whl>");
    assert_html("<a href=x.whl><a href=", PAGE_URL,
                "<a href=\"/pypi/simple/requests/x.whl\"><a href=");
    assert_html("<", PAGE_URL, "<");
    body = pypi_rewrite_html("", 0, PAGE_URL, to_arca, NULL, &len);
    assert_non_null(body);
    assert_int_equal(len, 0);
    assert_string_equal(body, "");
    free(body);
    /* the page's own URL must be an absolute http(s) one */
    assert_null(pypi_rewrite_html("x", 1, "/simple/x/", to_arca, NULL, &len));
    assert_null(pypi_rewrite_json("{\"files\":[]}", 12, "ftp://h/", to_arca, NULL, &len));
}

static json_t *json(const char *page, struct calls *c)
{
    size_t len = 0;
    char *body = pypi_rewrite_json(page, strlen(page), PAGE_URL, to_arca, c, &len);
    json_t *doc;
    assert_non_null(body);
    assert_int_equal(len, strlen(body));
    doc = json_loads(body, 0, NULL);
    free(body);
    assert_non_null(doc);
    return doc;
}

static const char *file_url(json_t *doc, size_t i)
{
    return json_string_value(
        json_object_get(json_array_get(json_object_get(doc, "files"), i), "url"));
}

/* PEP 691: each files[].url rewritten (absolute, relative, with a fragment), the digest from
 * hashes.sha256, everything else kept. */
static void json_page(void **state)
{
    struct calls c = {0};
    json_t *doc, *file;
    (void)state;
    doc =
        json("{\"meta\":{\"api-version\":\"1.1\",\"_last-serial\":20517391},\"name\":\"requests\","
             "\"files\":[{\"filename\":\"requests-0.2.0.tar.gz\",\"url\":\"" FILES PATH1 "\","
             "\"hashes\":{\"sha256\":\"" HEX1 "\"},\"requires-python\":null,\"yanked\":false,"
             "\"size\":12345,\"upload-time\":\"2011-02-14T20:51:41.000000Z\"},"
             "{\"filename\":\"x.whl\",\"url\":\"../../packages/x.whl#frag\","
             "\"hashes\":{\"sha256\":\"" HEX2_UPPER "\",\"md5\":\"00\"},\"core-metadata\":"
             "{\"sha256\":\"" HEX1 "\"}},"
             "{\"filename\":\"m\",\"url\":\"mailto:x@example.org\",\"hashes\":{}},"
             "{\"filename\":\"o\",\"url\":\"https://other.example/"
             "o.zip\",\"hashes\":{\"sha256\":\"12\"}},"
             "{\"filename\":\"n\",\"url\":7},\"no object\"],\"versions\":[\"0.2.0\"]}",
             &c);
    assert_string_equal(file_url(doc, 0),
                        "/pypi/+f/https/files.pythonhosted.org/" PATH1 "?sha256=" HEX1);
    assert_string_equal(file_url(doc, 1), "/pypi/packages/x.whl#frag");
    assert_string_equal(file_url(doc, 2), "mailto:x@example.org");
    assert_string_equal(file_url(doc, 3), "https://other.example/o.zip");
    assert_int_equal(c.n, 3);
    assert_string_equal(c.sha256[0], HEX1);
    assert_string_equal(c.abs[1], REMOTE "packages/x.whl");
    assert_string_equal(c.sha256[1], HEX2);
    assert_string_equal(c.sha256[2], "-");
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(doc, "meta"), "_last-serial")),
        20517391);
    file = json_array_get(json_object_get(doc, "files"), 1);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(file, "hashes"), "sha256")), HEX2_UPPER);
    assert_true(
        json_is_false(json_object_get(json_array_get(json_object_get(doc, "files"), 0), "yanked")));
    assert_string_equal(json_string_value(json_array_get(json_object_get(doc, "versions"), 0)),
                        "0.2.0");
    json_decref(doc);
}

/* A JSON page that is not one: NULL (the caller answers 502). */
static void json_not_a_page(void **state)
{
    static const char *const pages[] = {"",
                                        "[]",
                                        "{\"files\":{}}",
                                        "{\"name\":\"x\"}",
                                        "{\"files\":[",
                                        "<html>",
                                        "{\"files\":[]}x"};
    size_t len;
    (void)state;
    for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++)
        assert_null(pypi_rewrite_json(pages[i], strlen(pages[i]), PAGE_URL, to_arca, NULL, &len));
}

static uint64_t rng = 0x9e3779b97f4a7c15u;

static uint64_t next_random(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* `page`, one time in two cut at a random length, with a few bytes changed to markup's, into a
 * buffer of exactly that length (ASan sees a read past it). */
static char *mutated(const char *page, size_t *len)
{
    static const char bytes[] = "<>\"'=&#/; !-aA\n\0xq";
    size_t full = strlen(page), n = next_random() % 2 ? full : next_random() % (full + 1);
    char *p = malloc(n ? n : 1);
    memcpy(p, page, n);
    for (int k = (int)(next_random() % 6); k > 0 && n; k--) {
        uint64_t r = next_random();
        p[r % n] = (r >> 32) % 4 ? bytes[(r >> 40) % (sizeof(bytes) - 1)] : (char)(r >> 48);
    }
    *len = n;
    return p;
}

/* Random cuts and bytes of real pages, and random bytes: never a crash, never a read past the
 * page (ASan), an HTML page always given back. */
static void random_pages(void **state)
{
    const char *html_page = PYPI_PAGE("../../" PATH1, FILES PATH2) "<base href=x/><a href=y "
                                                                   "<!-- <a href='z'> -->";
    const char *json_page = "{\"files\":[{\"url\":\"../x.whl\",\"hashes\":{\"sha256\":\"" HEX1
                            "\"}},{\"url\":\"" FILES PATH1 "#sha256=" HEX1 "\"}]}";
    struct calls c = {0};
    int links = 0, json_pages = 0;
    (void)state;
    for (int i = 0; i < 20000; i++) {
        size_t len, out_len;
        char *page = i % 3 == 2 ? mutated(json_page, &len) : mutated(html_page, &len), *body;
        if (i % 10 == 9)
            for (size_t k = 0; k < len; k++)
                page[k] = (char)next_random();
        c.n = 0;
        c.keep = i % 2;
        body = pypi_rewrite_html(page, len, PAGE_URL, to_arca, &c, &out_len);
        assert_non_null(body);
        free(body);
        links += c.n;
        body = pypi_rewrite_json(page, len, PAGE_URL, to_arca, &c, &out_len);
        json_pages += body != NULL;
        free(body);
        free(page);
    }
    /* the cuts leave enough whole links and pages that the rewriting itself is run */
    assert_true(links > 10000 && json_pages > 300);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pypi_org_page),
        cmocka_unit_test(relative_links),
        cmocka_unit_test(quotes_and_case),
        cmocka_unit_test(entities_in_hrefs),
        cmocka_unit_test(kept_links_made_absolute),
        cmocka_unit_test(left_as_is),
        cmocka_unit_test(long_links),
        cmocka_unit_test(base_href),
        cmocka_unit_test(truncated_and_empty_pages),
        cmocka_unit_test(pages_that_would_blow_up),
        cmocka_unit_test(json_page),
        cmocka_unit_test(json_not_a_page),
        cmocka_unit_test(random_pages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
