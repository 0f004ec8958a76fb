/* Units for every parser that sees outside input: TTL, size, CIDR, Range, URL, sha256. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "base/parse.h"

static void ttl_accepts_units(void **state)
{
    int64_t s;
    (void)state;
    assert_int_equal(parse_ttl("10d", &s), 0);
    assert_int_equal(s, 864000);
    assert_int_equal(parse_ttl("3h", &s), 0);
    assert_int_equal(s, 10800);
    assert_int_equal(parse_ttl("5m", &s), 0);
    assert_int_equal(s, 300);
    assert_int_equal(parse_ttl("1s", &s), 0);
    assert_int_equal(s, 1);
}

static void ttl_rejects_bad(void **state)
{
    int64_t s;
    const char *bad[] = {"",
                         "0s",
                         "-1d",
                         "10",
                         "d",
                         "1x",
                         "1dd",
                         " 1d",
                         "1d ",
                         "+1d",
                         "99999999999999999999d", /* not a 64-bit number */
                         NULL};
    (void)state;
    for (int i = 0; bad[i]; i++)
        assert_int_equal(parse_ttl(bad[i], &s), -1);
    assert_int_equal(parse_ttl(NULL, &s), -1);
}

/* Longer than TTL_MAX is taken as TTL_MAX: creation time plus ttl must never overflow. */
static void ttl_clamps_long(void **state)
{
    int64_t s;
    (void)state;
    assert_int_equal(parse_ttl("9223372036854775807d", &s), 0);
    assert_int_equal(s, TTL_MAX);
    assert_int_equal(parse_ttl("9223372036854775807s", &s), 0);
    assert_int_equal(s, TTL_MAX);
    assert_int_equal(parse_ttl("36500d", &s), 0);
    assert_int_equal(s, TTL_MAX);
    assert_int_equal(parse_ttl("36499d", &s), 0);
    assert_int_equal(s, 36499LL * 86400);
}

static void size_accepts_suffixes(void **state)
{
    int64_t b;
    (void)state;
    assert_int_equal(parse_size("5G", &b), 0);
    assert_int_equal(b, 5LL << 30);
    assert_int_equal(parse_size("1k", &b), 0);
    assert_int_equal(b, 1024);
    assert_int_equal(parse_size("3M", &b), 0);
    assert_int_equal(b, 3LL << 20);
    assert_int_equal(parse_size("2T", &b), 0);
    assert_int_equal(b, 2LL << 40);
    assert_int_equal(parse_size("123", &b), 0);
    assert_int_equal(b, 123);
}

static void size_rejects_bad(void **state)
{
    int64_t b;
    const char *bad[] = {"", "0", "0G", "-5G", "5X", "5GB", "G", "1.5G", "9999999999T", NULL};
    (void)state;
    for (int i = 0; bad[i]; i++)
        assert_int_equal(parse_size(bad[i], &b), -1);
}

static void v4(const char *text, uint8_t out[16])
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    inet_pton(AF_INET, text, &sa.sin_addr);
    addr_to_v6((struct sockaddr *)&sa, out);
}

static void v6(const char *text, uint8_t out[16])
{
    struct sockaddr_in6 sa = {.sin6_family = AF_INET6};
    inet_pton(AF_INET6, text, &sa.sin6_addr);
    addr_to_v6((struct sockaddr *)&sa, out);
}

static void cidr_matches_v4_and_v6(void **state)
{
    struct cidr n;
    uint8_t a[16];
    (void)state;
    assert_int_equal(parse_cidr("10.0.0.0/8", &n), 0);
    v4("10.1.2.3", a);
    assert_true(cidr_contains(&n, a));
    v4("11.0.0.1", a);
    assert_false(cidr_contains(&n, a));
    /* an IPv4-mapped IPv6 address is the same host as its IPv4 form */
    v6("::ffff:10.9.9.9", a);
    assert_true(cidr_contains(&n, a));
    assert_int_equal(parse_cidr("fe80::/10", &n), 0);
    v6("fe80::1", a);
    assert_true(cidr_contains(&n, a));
    v6("fec0::1", a);
    assert_false(cidr_contains(&n, a));
    assert_int_equal(parse_cidr("192.168.1.7", &n), 0);
    assert_int_equal(n.prefix, 128);
    v4("192.168.1.7", a);
    assert_true(cidr_contains(&n, a));
    v4("192.168.1.8", a);
    assert_false(cidr_contains(&n, a));
    assert_int_equal(parse_cidr("0.0.0.0/0", &n), 0);
    v4("1.2.3.4", a);
    assert_true(cidr_contains(&n, a));
    assert_int_equal(parse_cidr("10.0.0.0/13", &n), 0);
    v4("10.7.255.255", a);
    assert_true(cidr_contains(&n, a));
    v4("10.8.0.0", a);
    assert_false(cidr_contains(&n, a));
}

/* A network written with host bits is the network it means, and is shown so (not as written:
 * 10.1.2.3/8 read as "only 10.1.2.3" to whoever reads the start-up line). */
static void cidr_host_bits_are_cleared(void **state)
{
    struct cidr n;
    char text[64];
    (void)state;
    const char *cases[][2] = {{"10.1.2.3/8", "10.0.0.0/8"},
                              {"192.168.7.200/21", "192.168.0.0/21"},
                              {"10.1.2.3", "10.1.2.3/32"},
                              {"1.2.3.4/0", "0.0.0.0/0"},
                              {"fe80::1:2/10", "fe80::/10"},
                              {"2001:db8::ff/127", "2001:db8::fe/127"},
                              {"::1", "::1/128"},
                              {NULL, NULL}};
    for (int i = 0; cases[i][0]; i++) {
        assert_int_equal(parse_cidr(cases[i][0], &n), 0);
        format_cidr(&n, text, sizeof(text));
        assert_string_equal(text, cases[i][1]);
    }
}

static void cidr_rejects_bad(void **state)
{
    struct cidr n;
    const char *bad[] = {"",          "10.0.0.0/33", "::/129",       "10.0.0/8",
                         "10.0.0.0/", "10.0.0.0/-1", "host.example", "1.2.3.4/8x",
                         "::1/ 8",    NULL};
    (void)state;
    for (int i = 0; bad[i]; i++)
        assert_int_equal(parse_cidr(bad[i], &n), -1);
}

static void range_forms(void **state)
{
    struct byte_range r;
    (void)state;
    assert_int_equal(parse_range("bytes=0-99", 1000, &r), RANGE_OK);
    assert_int_equal(r.first, 0);
    assert_int_equal(r.last, 99);
    assert_int_equal(parse_range("bytes=900-", 1000, &r), RANGE_OK);
    assert_int_equal(r.first, 900);
    assert_int_equal(r.last, 999);
    assert_int_equal(parse_range("bytes=-100", 1000, &r), RANGE_OK);
    assert_int_equal(r.first, 900);
    assert_int_equal(r.last, 999);
    assert_int_equal(parse_range("bytes=-5000", 1000, &r), RANGE_OK);
    assert_int_equal(r.first, 0);
    assert_int_equal(parse_range("bytes=10-99999", 1000, &r), RANGE_OK);
    assert_int_equal(r.last, 999);
    assert_int_equal(parse_range("bytes=1000-", 1000, &r), RANGE_UNSATISFIABLE);
    assert_int_equal(parse_range("bytes=-0", 1000, &r), RANGE_UNSATISFIABLE);
    assert_int_equal(parse_range("bytes=0-", 0, &r), RANGE_UNSATISFIABLE);
    /* forms we ignore: the full body is served */
    assert_int_equal(parse_range("bytes=5-1", 1000, &r), RANGE_NONE);
    assert_int_equal(parse_range("bytes=0-1,5-6", 1000, &r), RANGE_NONE);
    assert_int_equal(parse_range("items=0-1", 1000, &r), RANGE_NONE);
    assert_int_equal(parse_range("bytes=abc", 1000, &r), RANGE_NONE);
    assert_int_equal(parse_range("bytes=1-2x", 1000, &r), RANGE_NONE);
    assert_int_equal(parse_range(NULL, 1000, &r), RANGE_NONE);
}

static void sha256_hex(void **state)
{
    uint8_t d[32];
    (void)state;
    assert_int_equal(
        parse_sha256_hex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", d), 0);
    assert_int_equal(d[0], 0xe3);
    assert_int_equal(d[31], 0x55);
    assert_int_equal(
        parse_sha256_hex("E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855", d), 0);
    assert_int_equal(parse_sha256_hex("e3b0", d), -1);
    assert_int_equal(
        parse_sha256_hex("g3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", d),
        -1);
    /* every byte's two digits, lower case, and back */
    for (int first = 0; first < 256; first += 32) {
        char hex[65], want[65];
        uint8_t back[32];
        for (int i = 0; i < 32; i++) {
            d[i] = (uint8_t)(first + i);
            snprintf(want + 2 * i, 3, "%02x", d[i]);
        }
        format_sha256_hex(d, hex);
        assert_string_equal(hex, want);
        assert_int_equal(parse_sha256_hex(hex, back), 0);
        assert_memory_equal(back, d, sizeof(d));
    }
}

static void format_int_writes_every_int64(void **state)
{
    static const struct {
        int64_t v;
        const char *text;
    } cases[] = {{0, "0"},
                 {7, "7"},
                 {-1, "-1"},
                 {10, "10"},
                 {65535, "65535"},
                 {-3600, "-3600"},
                 {INT64_MAX, "9223372036854775807"},
                 {INT64_MIN, "-9223372036854775808"}};
    char out[FORMAT_INT_MAX];
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memset(out, 'x', sizeof(out));
        assert_int_equal(format_int(cases[i].v, out), strlen(cases[i].text));
        assert_string_equal(out, cases[i].text);
    }
    assert_int_equal(format_uint(UINT64_MAX, out), 20);
    assert_string_equal(out, "18446744073709551615");
    assert_int_equal(format_uint(0, out), 1);
    assert_string_equal(out, "0");
}

static void duration_ms_units(void **state)
{
    int64_t ms;
    (void)state;
    assert_int_equal(parse_duration_ms("250ms", &ms), 0);
    assert_int_equal(ms, 250);
    assert_int_equal(parse_duration_ms("2s", &ms), 0);
    assert_int_equal(ms, 2000);
    assert_int_equal(parse_duration_ms("1h", &ms), 0);
    assert_int_equal(ms, 3600000);
    const char *bad[] = {"", "0ms", "5", "5 s", "5sm", "ms", "-1s", "99999999999999999d", NULL};
    for (int i = 0; bad[i]; i++)
        assert_int_equal(parse_duration_ms(bad[i], &ms), -1);
}

static void content_length_strict(void **state)
{
    int64_t n;
    (void)state;
    assert_int_equal(parse_content_length("1234", &n), 0);
    assert_int_equal(n, 1234);
    assert_int_equal(parse_content_length(" 0 ", &n), 0);
    assert_int_equal(n, 0);
    const char *bad[] = {"", " ", "-1", "+5", "12a", "1,2", "0x10", "99999999999999999999", NULL};
    for (int i = 0; bad[i]; i++)
        assert_int_equal(parse_content_length(bad[i], &n), -1);
}

static void content_range_forms(void **state)
{
    int64_t a, b, t;
    (void)state;
    assert_int_equal(parse_content_range("bytes 100-199/200", &a, &b, &t), 0);
    assert_true(a == 100 && b == 199 && t == 200);
    assert_int_equal(parse_content_range("bytes 0-9/*", &a, &b, &t), 0);
    assert_true(a == 0 && b == 9 && t == -1);
    const char *bad[] = {"",           "bytes */200",  "bytes 5-4/10",  "bytes 0-10/10",
                         "bytes 0-9/", "items 0-9/10", "bytes 0-9/10x", "bytes -1-9/10",
                         NULL};
    for (int i = 0; bad[i]; i++)
        assert_int_equal(parse_content_range(bad[i], &a, &b, &t), -1);
}

/* Want-Repr-Digest (RFC 9530, a Structured Field Dictionary): the preference given to sha-256,
 * whatever else the field holds; a field that is no Dictionary is ignored whole. */
static void want_digest_preferences(void **state)
{
    static const struct {
        const char *value;
        int64_t pref;
    } ok[] = {
        {"sha-256=10", 10},
        {"sha-512=3, sha-256=1", 1},
        {"  sha-256=5  ,sha-512=10", 5},
        {"sha-256=0", 0},            /* not acceptable */
        {"sha-256", 0},              /* Boolean true: no preference */
        {"sha-256=?1", 0},           /* a Boolean either */
        {"sha-256=2.5", 0},          /* a Decimal either */
        {"sha-256=-3", 0},           /* not a preference */
        {"sha-256=3, sha-256=0", 0}, /* a key given twice: the last */
        {"sha-256=0, sha-256=7", 7},
        {"sha-256=4;q=1;x", 4},             /* parameters */
        {"md5=(1 2);a=b, sha-256=6", 6},    /* an Inner List beside it */
        {"x=\"a, b\\\" c\", sha-256=8", 8}, /* a String with a comma and escapes */
        {"x=:YWJj:, y=tok/en:1, sha-256=9", 9},
        {"sha-512=10", -1}, /* not named */
        {"unixsum=1, sha-2560=3", -1},
        {"", -1},
    };
    static const char *const bad[] = {
        "sha-256=10,",
        "SHA-256=10",
        "sha-256=",
        "sha-256=10 sha-512=1",
        ",sha-256=10",
        "sha-256=1x",
        "sha-256==1",
        "x=\"open, sha-256=10",
        "x=(1 2",
        "x=:YWJj",
        "sha-256=1234567890123456",
        "x=?2, sha-256=1",
        "sha-256=10;",
        "x=\"\x01\"",
        "sha-256=10, ,sha-512=1",
    };
    int64_t pref;
    (void)state;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        if (parse_want_digest(ok[i].value, "sha-256", &pref) != 0 || pref != ok[i].pref)
            fail_msg("'%s': got %lld, wanted %lld", ok[i].value, (long long)pref,
                     (long long)ok[i].pref);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        pref = 5;
        if (parse_want_digest(bad[i], "sha-256", &pref) != -1 || pref != -1)
            fail_msg("'%s' was taken (%lld)", bad[i], (long long)pref);
    }
}

static void pages_and_listing_paths(void **state)
{
    int64_t page;
    char st[16], pg[8];
    (void)state;
    assert_int_equal(parse_page("3", &page), 0);
    assert_int_equal(page, 3);
    const char *bad[] = {"", "0", "-1", "+1", " 1", "1 ", "1x", "99999999999999999999", NULL};
    for (int i = 0; bad[i]; i++)
        assert_int_equal(parse_page(bad[i], &page), -1);
    assert_int_equal(parse_page(NULL, &page), -1);
    const char *good[][3] = {{"successes", "successes", ""},
                             {"failures/", "failures", ""},
                             {"downloading/12", "downloading", "12"},
                             {"scheduled/7/", "scheduled", "7"}};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(parse_listing_path(good[i][0], st, sizeof(st), pg, sizeof(pg)), 0);
        assert_string_equal(st, good[i][1]);
        assert_string_equal(pg, good[i][2]);
    }
    const char *refused[] = {"",
                             "/",
                             "Successes",
                             "successes//",
                             "successes/x",
                             "successes/1/2",
                             "successes/123456789",
                             "averyveryverylongstate",
                             NULL};
    for (int i = 0; refused[i]; i++)
        assert_int_equal(parse_listing_path(refused[i], st, sizeof(st), pg, sizeof(pg)), -1);
}

/* parse_url_path finds the path where parse_url does, whatever the authority holds (a bad
 * one too: parse_url still splits it) and whatever follows; with no scheme or a bad one,
 * neither splits. */
static void url_path_as_parse_url_finds_it(void **state)
{
    static const char *const urls[] = {
        "http://h/dir/Image.gz?sig=1",
        "http://h",
        "http://h/",
        "http://h?x/y",
        "http://h#a/b",
        "http://h/a#b/c",
        "http://h/a?b/c#d/e",
        "https://u:p@h:8443/a/b",
        "http://a@b@h/p",
        "http://[::1]:80/x",
        "http://[::1/x",
        "http://h:x/p",
        "http://a b/c",
        "HTTP://H/P",
        "s3+x.y-z://bucket/key",
        "://h/p",
        "1http://h/p",
        "h/p",
        "",
        "http:/h/p",
        "http://",
        "http:///p",
        "http://h/a%2Fb/c%3Fd",
        "x://y://z/w",
    };
    (void)state;
    for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
        struct url_parts u;
        const char *path = NULL;
        size_t len = 99;
        parse_url(urls[i], strlen(urls[i]), &u);
        bool split = parse_url_path(urls[i], strlen(urls[i]), &path, &len);
        if (split != (u.scheme != NULL))
            fail_msg("%s: split %d, parse_url's scheme %p", urls[i], split, (void *)u.scheme);
        if (split && (path != u.path || len != u.path_len))
            fail_msg("%s: path at %td len %zu, parse_url's at %td len %zu", urls[i], path - urls[i],
                     len, u.path - urls[i], u.path_len);
        if (!split && (path != NULL || len != 99))
            fail_msg("%s: not split, yet its outputs were written", urls[i]);
    }
}

/* One table for every reader of an authority: what each odd form is, as a URL, a proxy's
 * target, a CONNECT target and --listen see it alike (their units check they use this one). */
static void authorities_odd_forms(void **state)
{
    static const struct {
        const char *in;
        enum authority_error want;
        const char *host;
        int port;
    } cases[] = {
        {"example.com", AUTHORITY_OK, "example.com", 0},
        {"example.com:443", AUTHORITY_OK, "example.com", 443},
        {"example.com:0443", AUTHORITY_OK, "example.com", 443},
        {"example.com:00000000000443", AUTHORITY_OK, "example.com", 443},
        {"example.com:", AUTHORITY_OK, "example.com", 0},
        {"example.com:1", AUTHORITY_OK, "example.com", 1},
        {"example.com:65535", AUTHORITY_OK, "example.com", 65535},
        {"10.0.0.1:8080", AUTHORITY_OK, "10.0.0.1", 8080},
        {"lab_host-1.example:80", AUTHORITY_OK, "lab_host-1.example", 80},
        {"[::1]", AUTHORITY_OK, "[::1]", 0},
        {"[::1]:8001", AUTHORITY_OK, "[::1]", 8001},
        {"[fe80::1%25eth0]:80", AUTHORITY_OK, "[fe80::1%25eth0]", 80},
        {"[::ffff:1.2.3.4]:80", AUTHORITY_OK, "[::ffff:1.2.3.4]", 80},
        {"example.com:+443", AUTHORITY_BAD_PORT, NULL, 0},
        {"example.com:443x", AUTHORITY_BAD_PORT, NULL, 0},
        {"example.com: 443", AUTHORITY_BAD_PORT, NULL, 0},
        {"example.com:-1", AUTHORITY_BAD_PORT, NULL, 0},
        {"example.com:0x1bb", AUTHORITY_BAD_PORT, NULL, 0},
        {"example.com:443:443", AUTHORITY_BAD_PORT, NULL, 0},
        {"example.com:65536", AUTHORITY_PORT_RANGE, NULL, 0},
        {"example.com:99999999999999999999", AUTHORITY_PORT_RANGE, NULL, 0},
        {"example.com:0", AUTHORITY_PORT_RANGE, NULL, 0},
        {"", AUTHORITY_NO_HOST, NULL, 0},
        {":443", AUTHORITY_NO_HOST, NULL, 0},
        {"[]:443", AUTHORITY_NO_HOST, NULL, 0},
        {"[::1", AUTHORITY_BAD_IPV6, NULL, 0},
        {"[::1]x", AUTHORITY_BAD_IPV6, NULL, 0},
        {"[::1]]:80", AUTHORITY_BAD_IPV6, NULL, 0},
        {"[1.2.3.4]:80", AUTHORITY_BAD_IPV6, NULL, 0},
        {"[fe80::1%eth0]:80", AUTHORITY_BAD_IPV6, NULL, 0},
        {"[zz::1]", AUTHORITY_BAD_IPV6, NULL, 0},
        {"::1:80", AUTHORITY_NO_HOST, NULL, 0},
        {"a:b:80", AUTHORITY_BAD_PORT, NULL, 0},
        {"evil.example#@arca", AUTHORITY_BAD_HOST, NULL, 0},
        {"user@host:80", AUTHORITY_BAD_HOST, NULL, 0},
        {"a b:80", AUTHORITY_BAD_HOST, NULL, 0},
        {"a/b:80", AUTHORITY_BAD_HOST, NULL, 0},
        {"%65xample.com", AUTHORITY_BAD_HOST, NULL, 0},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct authority a;
        enum authority_error e = parse_authority(cases[i].in, strlen(cases[i].in), &a);
        if (e != cases[i].want)
            fail_msg("'%s': %d, not %d", cases[i].in, (int)e, (int)cases[i].want);
        if (e != AUTHORITY_OK)
            continue;
        assert_int_equal(a.host_len, strlen(cases[i].host));
        assert_memory_equal(a.host, cases[i].host, a.host_len);
        assert_int_equal(a.port, cases[i].port);
    }
    /* a NUL is no host character (strchr finds the one ending its set): found by fuzz_authority */
    assert_int_equal(parse_authority("h\0st:80", 7, &(struct authority){0}), AUTHORITY_BAD_HOST);
    assert_int_equal(parse_authority("[fe80::1%25e\0]", 15, &(struct authority){0}),
                     AUTHORITY_BAD_IPV6);
    assert_int_equal(parse_authority("[::1\0\0]:80", 10, &(struct authority){0}),
                     AUTHORITY_BAD_IPV6);
    /* a port alone reads the same */
    assert_int_equal(parse_port("0443", 4), 443);
    assert_int_equal(parse_port("443x", 4), -1);
    assert_int_equal(parse_port("+443", 4), -1);
    assert_int_equal(parse_port("65536", 5), -1);
    assert_int_equal(parse_port("", 0), -1);
    assert_int_equal(parse_port("443", 2), 44); /* a length, not a NUL, ends it */
}

/* Every byte: its value for 0-9, a-f and A-F, -1 for all else (the NUL and bytes past 127
 * included); and a key's 64 digits in either case parse to the same bytes. */
static void hex_digits_of_every_byte(void **state)
{
    static const char digits[] = "0123456789abcdef";
    (void)state;
    for (int c = 0; c < 256; c++) {
        const char *at = c ? strchr(digits, c >= 'A' && c <= 'F' ? c - 'A' + 'a' : c) : NULL;
        assert_int_equal(hex_digit((char)c), at ? (int)(at - digits) : -1);
    }
    uint8_t lower[32], upper[32];
    assert_int_equal(parse_sha256_hex("00ff10aa"
                                      "0123456789abcdef"
                                      "0123456789abcdef"
                                      "0123456789abcdef"
                                      "01234567",
                                      lower),
                     0);
    assert_int_equal(parse_sha256_hex("00FF10AA"
                                      "0123456789ABCDEF"
                                      "0123456789ABCDEF"
                                      "0123456789ABCDEF"
                                      "01234567",
                                      upper),
                     0);
    assert_memory_equal(lower, upper, 32);
    assert_int_equal(lower[1], 0xff);
    assert_int_equal(parse_sha256_hex("00ff10ag"
                                      "0123456789abcdef"
                                      "0123456789abcdef"
                                      "0123456789abcdef"
                                      "01234567",
                                      lower),
                     -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ttl_accepts_units),
        cmocka_unit_test(hex_digits_of_every_byte),
        cmocka_unit_test(duration_ms_units),
        cmocka_unit_test(content_length_strict),
        cmocka_unit_test(content_range_forms),
        cmocka_unit_test(want_digest_preferences),
        cmocka_unit_test(ttl_rejects_bad),
        cmocka_unit_test(ttl_clamps_long),
        cmocka_unit_test(size_accepts_suffixes),
        cmocka_unit_test(size_rejects_bad),
        cmocka_unit_test(cidr_matches_v4_and_v6),
        cmocka_unit_test(cidr_rejects_bad),
        cmocka_unit_test(cidr_host_bits_are_cleared),
        cmocka_unit_test(range_forms),

        cmocka_unit_test(sha256_hex),
        cmocka_unit_test(format_int_writes_every_int64),
        cmocka_unit_test(pages_and_listing_paths),
        cmocka_unit_test(authorities_odd_forms),
        cmocka_unit_test(url_path_as_parse_url_finds_it),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
