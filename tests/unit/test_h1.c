/* Units for the request head parser (h1.h): well-formed heads in their forms, the same answer
 * whether the bytes come at once or one at a time, and every refusal the contract lists with its
 * status and reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "engine/h1.h"

#define MAX_HEAD 8192

static enum h1_result parse(struct h1_request *req, const char *head)
{
    h1_init(req);
    return h1_parse(req, head, strlen(head), MAX_HEAD);
}

/* The same head given a byte at a time: the same outcome. */
static enum h1_result parse_bytewise(struct h1_request *req, const char *head, size_t len)
{
    enum h1_result r = H1_MORE;
    h1_init(req);
    for (size_t n = 1; n <= len && r == H1_MORE; n++)
        r = h1_parse(req, head, n, MAX_HEAD);
    return r;
}

static void refused_with(const char *head, unsigned int status, const char *reason)
{
    struct h1_request req;
    if (parse(&req, head) != H1_ERROR || req.status != status || strcmp(req.reason, reason)) {
        fprintf(stderr, "head: %s\n", head);
        fail_msg("got %u %s, wanted %u %s", req.status, req.reason ? req.reason : "-", status,
                 reason);
    }
    assert_false(req.keep_alive);
}

static void a_plain_get_is_read_whole(void **state)
{
    const char *head = "GET /api/v1/fetch/?url=x HTTP/1.1\r\nHost: arca\r\n"
                       "X-Note:  spaced\t value \r\nX-Empty:\r\n\r\nGET / HTTP/1.1\r\n";
    struct h1_request req;
    size_t len;
    (void)state;
    assert_int_equal(parse(&req, head), H1_DONE);
    assert_true(h1_span_is(head, req.method, "GET"));
    assert_int_equal(req.target.len, strlen("/api/v1/fetch/?url=x"));
    assert_memory_equal(head + req.target.at, "/api/v1/fetch/?url=x", req.target.len);
    assert_int_equal(req.minor, 1);
    assert_int_equal(req.n_fields, 3);
    assert_int_equal(req.head_len, strstr(head, "\r\n\r\n") + 4 - head);
    const char *v = h1_field(&req, head, "x-note", &len);
    assert_non_null(v);
    assert_int_equal(len, strlen("spaced\t value"));
    assert_memory_equal(v, "spaced\t value", len);
    assert_non_null(h1_field(&req, head, "X-EMPTY", &len));
    assert_int_equal(len, 0);
    assert_null(h1_field(&req, head, "x-missing", &len));
    assert_true(req.keep_alive);
    assert_int_equal(req.content_length, -1);
    assert_false(req.chunked || req.expect_continue);
}

static void bare_lf_lines_and_leading_empty_lines_are_read(void **state)
{
    const char *head = "\r\n\r\nPOST /p HTTP/1.0\nHost: a\nContent-Length: 12\n"
                       "Connection: Keep-Alive\n\n";
    struct h1_request req;
    (void)state;
    assert_int_equal(parse(&req, head), H1_DONE);
    assert_true(h1_span_is(head, req.method, "POST"));
    assert_int_equal(req.minor, 0);
    assert_int_equal(req.content_length, 12);
    assert_true(req.keep_alive);
    assert_int_equal(req.head_len, strlen(head));
}

static void the_connection_goes_on_as_version_and_connection_say(void **state)
{
    struct h1_request req;
    (void)state;
    assert_int_equal(parse(&req, "GET / HTTP/1.0\r\n\r\n"), H1_DONE);
    assert_false(req.keep_alive);
    assert_int_equal(parse(&req, "GET / HTTP/1.1\r\nHost: a\r\nConnection: x, CLOSE\r\n\r\n"),
                     H1_DONE);
    assert_false(req.keep_alive);
    assert_int_equal(parse(&req, "GET / HTTP/1.1\r\nHost: a\r\nconnection: keep-alive\r\n\r\n"),
                     H1_DONE);
    assert_true(req.keep_alive);
}

static void chunked_and_expect_are_seen(void **state)
{
    struct h1_request req;
    (void)state;
    assert_int_equal(parse(&req, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n"
                                 "Expect: 100-Continue\r\n\r\n"),
                     H1_DONE);
    assert_true(req.chunked && req.expect_continue);
    /* 100-continue is HTTP/1.1's */
    assert_int_equal(parse(&req, "POST / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n"), H1_DONE);
    assert_false(req.expect_continue);
}

static void bytes_one_at_a_time_give_the_same_answer(void **state)
{
    const char *heads[] = {
        "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\r\n",
        "\nGET / HTTP/1.0\nX-A: b\n\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\nX-B: c\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\n\x00X: b\r\n\r\n",
    };
    (void)state;
    for (size_t i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
        /* the one with a NUL: strlen stops at it, so its length is given */
        size_t len = i == 4 ? 34 : strlen(heads[i]);
        struct h1_request whole, bytewise;
        h1_init(&whole);
        enum h1_result a = h1_parse(&whole, heads[i], len, MAX_HEAD);
        enum h1_result b = parse_bytewise(&bytewise, heads[i], len);
        assert_int_equal(a, b);
        assert_int_equal(whole.status, bytewise.status);
        assert_int_equal(whole.head_len, bytewise.head_len);
        assert_int_equal(whole.n_fields, bytewise.n_fields);
    }
}

static void an_incomplete_head_asks_for_more(void **state)
{
    struct h1_request req;
    (void)state;
    assert_int_equal(parse(&req, "GET / HTTP/1.1\r\nHost: a\r\n"), H1_MORE);
    assert_int_equal(parse(&req, "GET / HT"), H1_MORE);
    assert_int_equal(parse(&req, ""), H1_MORE);
}

static void smuggling_framing_is_refused(void **state)
{
    (void)state;
    refused_with("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked"
                 "\r\n\r\n",
                 400, "Content-Length and Transfer-Encoding");
    refused_with("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", 400,
                 "more than one Content-Length");
    refused_with("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                 "Transfer-Encoding: chunked\r\n\r\n",
                 400, "more than one Transfer-Encoding");
    refused_with("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400,
                 "Transfer-Encoding in HTTP/1.0");
    const char *codings[] = {"gzip, chunked", "chunked, chunked", "identity",
                             "chunked ",      "x-chunked",        "gzip"};
    for (size_t i = 0; i < sizeof(codings) / sizeof(codings[0]); i++) {
        char head[256];
        snprintf(head, sizeof(head), "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: %s\r\n\r\n",
                 codings[i]);
        refused_with(head, 501, "Transfer-Encoding other than chunked");
    }
    const char *lengths[] = {"-1", "1x", "", "5, 5", "+5", "0x10"};
    for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++) {
        char head[256];
        snprintf(head, sizeof(head), "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: %s\r\n\r\n",
                 lengths[i]);
        refused_with(head, 400, "Content-Length is not a number");
    }
    refused_with("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 9223372036854775808\r\n\r\n", 413,
                 "Content-Length too large");
    struct h1_request req;
    assert_int_equal(parse(&req, "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: "
                                 "9223372036854775807\r\n\r\n"),
                     H1_DONE);
    assert_int_equal(req.content_length, INT64_MAX);
}

static void malformed_lines_are_refused(void **state)
{
    const struct {
        const char *line, *reason;
    } cases[] = {
        {"X-Note: a\r\n folded", "folded header line"},
        {"X-Note: a\r\n\tfolded", "folded header line"},
        {"Transfer-Encoding: \r\n chunked", "folded header line"},
        {"X-Note: a\rb", "CR in a header line"},
        {"X-Note\r: a", "invalid header name"},
        {"Transfer-Encoding : chunked", "invalid header name"},
        {"X Note: a", "invalid header name"},
        {"no colon", "invalid header name"},
        {": empty name", "invalid header name"},
        {"X-Note: a\nX-Other: b", "mixed line ends"},
        {"X-Note: a\x01", "control character in a header line"},
        {"X-Note: a\x1f", "control character in a header line"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char head[256];
        snprintf(head, sizeof(head), "GET / HTTP/1.1\r\nHost: a\r\n%s\r\nAccept: */*\r\n\r\n",
                 cases[i].line);
        refused_with(head, 400, cases[i].reason);
        snprintf(head, sizeof(head), "GET / HTTP/1.1\r\nHost: a\r\n%s\r\n\r\n", cases[i].line);
        refused_with(head, 400, cases[i].reason);
    }
    /* DEL frames nothing: taken, as the value it is */
    struct h1_request req;
    const char *del = "GET / HTTP/1.1\r\nHost: a\r\nUser-Agent: a\x7f"
                      "b\r\n\r\n";
    size_t len;
    assert_int_equal(parse(&req, del), H1_DONE);
    assert_memory_equal(h1_field(&req, del, "user-agent", &len),
                        "a\x7f"
                        "b",
                        3);
    assert_int_equal(len, 3);
}

static void a_nul_anywhere_is_refused(void **state)
{
    const char heads[][48] = {"GET / HTTP/1.1\r\nHost: a\r\n\0X-Note: a\r\n\r\n",
                              "GET / HTTP/1.1\r\n\0\r\n\r\n", "GET / HTTP/1.1\r\nX: a\0b\r\n\r\n",
                              "GET /\0 HTTP/1.1\r\nHost: a\r\n\r\n"};
    const size_t lens[] = {39, 21, 26, 28};
    (void)state;
    for (size_t i = 0; i < 4; i++) {
        struct h1_request req;
        h1_init(&req);
        assert_int_equal(h1_parse(&req, heads[i], lens[i], MAX_HEAD), H1_ERROR);
        assert_int_equal(req.status, 400);
        assert_non_null(strstr(req.reason, "NUL in"));
    }
}

static void request_lines_are_strict(void **state)
{
    (void)state;
    refused_with("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "malformed request line");
    refused_with("GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400, "malformed request line");
    refused_with("GET /\tx HTTP/1.1\r\nHost: a\r\n\r\n", 400, "malformed request line");
    refused_with("G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "malformed request line");
    refused_with("GET / HTTP/1.1\rX\r\nHost: a\r\n\r\n", 400, "CR in the request line");
    refused_with("GET / http/1.1\r\nHost: a\r\n\r\n", 400, "malformed request line");
    refused_with("GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505, "HTTP version not supported");
    refused_with("GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505, "HTTP version not supported");
    refused_with("GET / HTTP/1.1\r\n\r\n", 400, "no Host header");
    refused_with("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "more than one Host");
}

static void limits_give_414_and_431(void **state)
{
    char head[MAX_HEAD + 64];
    struct h1_request req;
    (void)state;
    memset(head, 'a', sizeof(head));
    memcpy(head, "GET /", 5);
    h1_init(&req);
    assert_int_equal(h1_parse(&req, head, MAX_HEAD, MAX_HEAD), H1_ERROR);
    assert_int_equal(req.status, 414);
    /* a header past the limit */
    int n = snprintf(head, sizeof(head), "GET / HTTP/1.1\r\nHost: a\r\nX: ");
    memset(head + n, 'b', sizeof(head) - (size_t)n);
    h1_init(&req);
    assert_int_equal(h1_parse(&req, head, MAX_HEAD - 1, MAX_HEAD), H1_MORE);
    assert_int_equal(h1_parse(&req, head, sizeof(head), MAX_HEAD), H1_ERROR);
    assert_int_equal(req.status, 431);
    /* one line too many */
    n = snprintf(head, sizeof(head), "GET / HTTP/1.1\r\nHost: a\r\n");
    for (int i = 1; i < H1_MAX_FIELDS; i++)
        n += snprintf(head + n, sizeof(head) - (size_t)n, "X:\r\n");
    snprintf(head + n, sizeof(head) - (size_t)n, "\r\n");
    assert_int_equal(parse(&req, head), H1_DONE);
    assert_int_equal(req.n_fields, H1_MAX_FIELDS);
    snprintf(head + n, sizeof(head) - (size_t)n, "Y: z\r\n\r\n");
    refused_with(head, 431, "too many header lines");
}

/* --- chunked bodies --- */

struct sink {
    char data[256];
    size_t n;
};

static void to_sink(void *arg, const char *data, size_t n)
{
    struct sink *s = arg;
    assert_true(s->n + n <= sizeof(s->data));
    memcpy(s->data + s->n, data, n);
    s->n += n;
}

/* Feed `body` in pieces of `step` bytes: the outcome and the bytes taken in all. */
static enum h1_result unchunk(const char *body, size_t len, int eol, size_t step, struct sink *s,
                              size_t *taken, struct h1_chunked *c)
{
    enum h1_result r = H1_MORE;
    h1_chunked_init(c, eol, 64);
    s->n = 0;
    *taken = 0;
    while (*taken < len && r == H1_MORE) {
        size_t n = len - *taken < step ? len - *taken : step;
        *taken += h1_chunked_feed(c, body + *taken, n, to_sink, s, &r);
    }
    return r;
}

static void a_chunked_body_is_decoded_however_it_arrives(void **state)
{
    const char *body = "5\r\nhello\r\nA;ext=1\r\n, world!!!\r\n0\r\nX-Sum: 1\r\n\r\nGET /";
    size_t end = strlen(body) - strlen("GET /");
    (void)state;
    for (size_t step = 1; step <= strlen(body); step++) {
        struct sink s;
        struct h1_chunked c;
        size_t taken;
        assert_int_equal(unchunk(body, strlen(body), 2, step, &s, &taken, &c), H1_DONE);
        assert_int_equal(taken, end); /* the next request's bytes are left */
        assert_int_equal(s.n, 15);
        assert_memory_equal(s.data, "hello, world!!!", 15);
    }
    struct sink s;
    struct h1_chunked c;
    size_t taken;
    const char *lf = "3\nabc\n0\n\n";
    assert_int_equal(unchunk(lf, strlen(lf), 1, 1, &s, &taken, &c), H1_DONE);
    assert_int_equal(s.n, 3);
    assert_int_equal(unchunk("3\r\nab", 5, 2, 1, &s, &taken, &c), H1_MORE);
}

static void malformed_chunked_bodies_are_refused(void **state)
{
    const struct {
        const char *body;
        int eol;
        unsigned int status;
    } cases[] = {
        {"x\r\n", 2, 400},                   /* not hex */
        {"\r\n", 2, 400},                    /* no size */
        {"5\nhello\n0\n\n", 2, 400},         /* LF lines in a CRLF request */
        {"5\r\nhello\r\n0\r\n\r\n", 1, 400}, /* and the other way */
        {"5\r\nhelloX\r\n", 2, 400},         /* data longer than its size */
        {"5 \r\nhello\r\n", 2, 400},         /* whitespace after the size */
        {"5\rX", 2, 400},                    /* bare CR */
        {"0\r\nX Y: z\r\n\r\n", 2, 400},     /* trailer name not a token */
        {"0\r\nnocolon\r\n\r\n", 2, 400},    /* trailer line without a colon */
        {"0\r\nX: a\x01\r\n\r\n", 2, 400},   /* control character in a trailer */
        {"10000000000000000\r\n", 2, 413},   /* beyond 2^63-1 */
        {"0\r\nX: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n", 2,
         431},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sink s;
        struct h1_chunked c;
        size_t taken;
        enum h1_result r =
            unchunk(cases[i].body, strlen(cases[i].body), cases[i].eol, 1, &s, &taken, &c);
        if (r != H1_ERROR || c.status != cases[i].status)
            fail_msg("case %zu: result %d status %u", i, r, c.status);
        assert_non_null(c.reason);
    }
}

/* RFC 9110's tchar, byte by byte, against h1_is_token's table. */
static void tokens_are_rfc_9110_tchars(void **state)
{
    (void)state;
    for (int c = 0; c < 256; c++) {
        char ch = (char)c;
        bool want = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    (c && strchr("!#$%&'*+-.^_`|~", c));
        if (h1_is_token(&ch, 1) != want)
            fail_msg("byte %d: %d", c, !want);
    }
    assert_false(h1_is_token("", 0));
    assert_true(h1_is_token("X-Board_Token.v2", 16));
    assert_false(h1_is_token("a b", 3));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tokens_are_rfc_9110_tchars),
        cmocka_unit_test(a_plain_get_is_read_whole),
        cmocka_unit_test(bare_lf_lines_and_leading_empty_lines_are_read),
        cmocka_unit_test(the_connection_goes_on_as_version_and_connection_say),
        cmocka_unit_test(chunked_and_expect_are_seen),
        cmocka_unit_test(bytes_one_at_a_time_give_the_same_answer),
        cmocka_unit_test(an_incomplete_head_asks_for_more),
        cmocka_unit_test(smuggling_framing_is_refused),
        cmocka_unit_test(malformed_lines_are_refused),
        cmocka_unit_test(a_nul_anywhere_is_refused),
        cmocka_unit_test(request_lines_are_strict),
        cmocka_unit_test(limits_give_414_and_431),
        cmocka_unit_test(a_chunked_body_is_decoded_however_it_arrives),
        cmocka_unit_test(malformed_chunked_bodies_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
