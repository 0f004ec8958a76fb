/* Units for the upstream decisions (upstream_response.h): what a response's header lines give,
 * what is retried, when a resume continues the bytes kept, and what clients are told. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "upstream/upstream_response.h"

static struct upstream_response response(const char *const *lines)
{
    struct upstream_response r;
    response_reset(&r);
    for (; *lines; lines++)
        assert_null(response_header(&r, *lines));
    return r;
}

/* Issue 23's review: an ETag is echoed to clients (and into If-None-Match): one that is not an
 * RFC 9110 entity-tag (control bytes, no quotes, a quote inside) is dropped, never passed on. */
static void only_a_valid_entity_tag_is_kept(void **state)
{
    (void)state;
    const char *bad[] = {"ETag: \"a\x7f"
                         "b\x01\"",
                         "ETag: v1",
                         "ETag: \"a\"b\"",
                         "ETag: \"a",
                         "ETag: W/v1",
                         "ETag: \"a b\"",
                         "ETag: \"caf\xc3\xa9\"",
                         "ETag: w/\"a\"",
                         NULL};
    for (int i = 0; bad[i]; i++) {
        struct upstream_response r = response((const char *const[]){bad[i], NULL});
        assert_string_equal(r.etag, "");
    }
    const char *good[] = {"\"v1\"", "W/\"weak\"", "\"\"", "\"!#~x-1.2\"", NULL};
    for (int i = 0; good[i]; i++) {
        char line[64];
        snprintf(line, sizeof(line), "ETag: %s", good[i]);
        struct upstream_response r = response((const char *const[]){line, NULL});
        assert_string_equal(r.etag, good[i]);
    }
}

/* The status a transfer decides on is read from the status line, as curl reports it. */
static void a_status_line_gives_its_status(void **state)
{
    (void)state;
    assert_int_equal(response_status_line("HTTP/1.1 206 Partial Content"), 206);
    assert_int_equal(response_status_line("HTTP/2 200"), 200);
    assert_int_equal(response_status_line("HTTP/2 304 "), 304);
    assert_int_equal(response_status_line("HTTP/1.0 503 Service Unavailable"), 503);
    /* what curl takes too: an origin it served must not fail through arca */
    assert_int_equal(response_status_line("HTTP/1.1 200OK"), 200);
    assert_int_equal(response_status_line("HTTP/1.1 200\tOK"), 200);
    assert_int_equal(response_status_line("HTTP/1.1  200 OK"), 200);
    assert_int_equal(response_status_line("http/1.1 200 OK"), 200);
    assert_int_equal(response_status_line("HTTP/1.1 099 x"), 0);
    assert_int_equal(response_status_line("HTTP/1.1 20"), 0);
    assert_int_equal(response_status_line("HTTP/1.1 2000 OK"), 0);
    assert_int_equal(response_status_line("HTTP/1.1 abc"), 0);
    assert_int_equal(response_status_line("HTTP/1.1"), 0);
    assert_int_equal(response_status_line("Content-Length: 200"), 0);
}

static void header_lines_are_read(void **state)
{
    (void)state;
    struct upstream_response r = response((const char *const[]){
        "Content-Length: 1234", "content-type:  application/octet-stream \t",
        "Content-Encoding: gzip", "ETag: \"v1\"", "Last-Modified: Tue, 01 Sep 2026 10:00:00 GMT",
        "Content-Disposition: attachment; filename=\"../Image\"",
        "Content-Range: bytes 10-1233/1234", "X-Other: ignored", NULL});
    assert_int_equal(r.content_length, 1234);
    assert_string_equal(r.content_type, "application/octet-stream");
    assert_string_equal(r.content_encoding, "gzip");
    assert_string_equal(r.etag, "\"v1\"");
    assert_string_equal(r.last_modified, "Tue, 01 Sep 2026 10:00:00 GMT");
    assert_string_equal(r.filename, "Image"); /* never a path */
    assert_true(r.has_range);
    assert_int_equal(r.range_first, 10);
    assert_int_equal(r.range_total, 1234);
    assert_false(r.location);
    response_reset(&r); /* the next response of a redirect chain starts clean */
    assert_int_equal(r.content_length, -1);
    assert_string_equal(r.content_type, "");
    assert_false(r.has_range);
}

static void odd_values_are_unknown_or_dropped(void **state)
{
    struct upstream_response r;
    char line[HEADER_TYPE_MAX + 32];
    (void)state;
    response_reset(&r);
    assert_null(response_header(&r, "Content-Length: 12abc"));
    assert_int_equal(r.content_length, -1);
    assert_null(response_header(&r, "Content-Length: -5"));
    assert_int_equal(r.content_length, -1);
    assert_null(response_header(&r, "Content-Range: bytes */1234"));
    assert_false(r.has_range);
    memset(line, 'a', sizeof(line) - 1);
    line[sizeof(line) - 1] = '\0';
    memcpy(line, "Content-Type: ", 14);
    assert_string_equal(response_header(&r, line), "Content-Type"); /* dropped whole, named */
    assert_string_equal(r.content_type, "");
    assert_null(response_header(&r, "Location: /elsewhere"));
    assert_true(r.location);
}

/* Cache-Control on answering stale (RFC 5861; must-revalidate and the like mean never): a
 * malformed value is ignored, the options then apply (-1). */
static void cache_control_says_how_long_it_may_answer_stale(void **state)
{
    static const struct {
        const char *lines[3];
        int64_t if_error, while_revalidate;
    } cases[] = {
        {{"Cache-Control: max-age=60, stale-if-error=300"}, 300, -1},
        {{"cache-control: STALE-WHILE-REVALIDATE=30,stale-if-error=7"}, 7, 30},
        {{"Cache-Control: stale-if-error=300, must-revalidate"}, 0, 0},
        {{"Cache-Control: no-store"}, 0, 0},
        {{"Cache-Control: no-cache"}, 0, 0},
        {{"Cache-Control: proxy-revalidate", "Cache-Control: stale-if-error=9"}, 0, 0},
        {{"Cache-Control: no-cache=\"Set-Cookie\", stale-if-error=5"}, 5, -1},
        {{"Cache-Control: stale-if-error=abc, stale-while-revalidate=-1"}, -1, -1},
        {{"Cache-Control: stale-if-error=, stale-if-error"}, -1, -1},
        {{"Cache-Control: stale-if-error=1 2"}, -1, -1},
        {{"Cache-Control: stale-if-error=99999999999999999999999"}, TTL_MAX, -1},
        {{"Cache-Control: max-age=0", "Cache-Control: stale-if-error=60"}, 60, -1},
        {{""}, -1, -1},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct upstream_response r;
        response_reset(&r);
        for (int k = 0; k < 3 && cases[i].lines[k]; k++)
            response_header(&r, cases[i].lines[k]);
        assert_int_equal(r.stale_if_error, cases[i].if_error);
        assert_int_equal(r.stale_while_revalidate, cases[i].while_revalidate);
    }
}

static void retries(void **state)
{
    (void)state;
    assert_true(status_retryable(503));
    assert_true(status_retryable(429));
    assert_false(status_retryable(404));
    assert_false(status_retryable(501));
    assert_true(error_retryable(CURLE_RECV_ERROR, false, false, false));
    assert_true(error_retryable(CURLE_OK, true, false, false)); /* a retryable status */
    assert_true(error_retryable(CURLE_COULDNT_CONNECT, false, false, false));
    assert_false(error_retryable(CURLE_COULDNT_CONNECT, false, true, false)); /* policy */
    assert_true(error_retryable(CURLE_OPERATION_TIMEDOUT, false, false, false));
    assert_false(error_retryable(CURLE_OPERATION_TIMEDOUT, false, false, true)); /* deadline */
    assert_false(error_retryable(CURLE_PEER_FAILED_VERIFICATION, false, false, false));
    /* a name that did not resolve: asked once more (a resolver's blip looks the same), no more */
    assert_true(resolve_retryable(CURLE_COULDNT_RESOLVE_HOST, false, false));
    assert_false(resolve_retryable(CURLE_COULDNT_RESOLVE_HOST, true, false));
    assert_false(resolve_retryable(CURLE_COULDNT_RESOLVE_HOST, false, true)); /* deadline */
    assert_false(resolve_retryable(CURLE_COULDNT_CONNECT, false, false));
    assert_false(error_retryable(CURLE_TOO_MANY_REDIRECTS, false, false, false));
    /* a name that does not resolve does not resolve a second later either */
    assert_false(error_retryable(CURLE_COULDNT_RESOLVE_HOST, false, false, false));
}

static void names_that_never_resolve(void **state)
{
    (void)state;
    const char *never[] = {"invalid", "x.invalid", "no-such-host.INVALID", "a.b.invalid."};
    const char *others[] = {"", "invalid.example", "xinvalid", "example.org", "127.0.0.1"};
    for (size_t i = 0; i < sizeof(never) / sizeof(never[0]); i++)
        assert_true(host_never_resolves(never[i], strlen(never[i])));
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++)
        assert_false(host_never_resolves(others[i], strlen(others[i])));
}

static void failures_say_attempts_and_time(void **state)
{
    (void)state;
    char out[200];
    failure_summary(out, sizeof(out), "upstream", 3, 14249, "upstream answered 503");
    assert_string_equal(out, "upstream failed after 3 attempts in 14.2 s: upstream answered 503");
    failure_summary(out, sizeof(out), "upstream", 1, 7, "cannot resolve host x.invalid");
    assert_string_equal(out,
                        "upstream failed after 1 attempt in 0.0 s: cannot resolve host x.invalid");
}

static void what_clients_are_told(void **state)
{
    (void)state;
    struct upstream_error e = error_for_clients(CURLE_PARTIAL_FILE, true, false);
    assert_int_equal(e.status, 504);
    assert_string_equal(e.what, "upstream body truncated");
    e = error_for_clients(CURLE_RECV_ERROR, false, false);
    assert_int_equal(e.status, 502);
    e = error_for_clients(CURLE_OPERATION_TIMEDOUT, false, true);
    assert_int_equal(e.status, 504);
    assert_string_equal(e.what, "download took longer than --download-timeout");
    e = error_for_clients(CURLE_PEER_FAILED_VERIFICATION, false, false);
    assert_string_equal(e.what, "upstream TLS verification failed");
    e = error_for_clients(CURLE_COULDNT_RESOLVE_HOST, false, false);
    assert_int_equal(e.status, 502);
    assert_string_equal(e.what, "cannot resolve host");
}

#define LM1 "Tue, 01 Sep 2026 10:00:00 GMT"
#define LM2 "Tue, 01 Sep 2026 10:00:01 GMT"

/* What a resume stands on: the kept body's validators, as validators_of() would keep them. */
static struct validators kept(const char *etag, const char *last_modified)
{
    struct validators v = {0}; /* identity */
    snprintf(v.etag, sizeof(v.etag), "%s", etag);
    snprintf(v.last_modified, sizeof(v.last_modified), "%s", last_modified);
    return v;
}

/* The decision on a 206 answering Range: bytes=offset- of a body of `length` bytes. */
static const char *mismatch(const struct validators *k, int64_t offset, int64_t length, long status,
                            const char *const *lines)
{
    struct upstream_response r = response(lines);
    struct resume_ask sent = {offset, length, k, false};
    return resume_mismatch(&sent, status, &r);
}

static void validators_kept_from_a_response(void **state)
{
    (void)state;
    struct validators v;
    struct upstream_response r = response((const char *const[]){
        "ETag: W/\"weak\"", "Last-Modified: " LM1, "Date: Tue, 01 Sep 2026 10:00:01 GMT", NULL});
    validators_of(&r, &v);
    assert_string_equal(v.etag, "W/\"weak\"");      /* kept as given: a 206 must repeat it */
    assert_string_equal(v.last_modified, LM1);      /* a second before the answer: strong */
    assert_string_equal(resume_validator(&v), LM1); /* a weak ETag never goes into If-Range */
    /* RFC 9110 8.8.2.2: a date in the second of the answer's Date is weak; none, or a date
     * that does not parse, proves nothing */
    const char *dates[] = {"Date: " LM1, "Date: Tue, 01 Sep 2026 09:59:59 GMT", "Date: soon", NULL};
    for (int i = 0; i < 4; i++) {
        r = response((const char *const[]){"Last-Modified: " LM1, dates[i], NULL});
        validators_of(&r, &v);
        assert_string_equal(v.last_modified, "");
        assert_null(resume_validator(&v));
    }
    r = response((const char *const[]){"ETag: \"v1\"", "Last-Modified: " LM1, "Date: " LM1, NULL});
    validators_of(&r, &v);
    assert_string_equal(resume_validator(&v), "\"v1\""); /* a strong ETag needs no date */
}

static void a_strong_etag_proves_a_resume(void **state)
{
    (void)state;
    struct validators k = kept("\"v1\"", "");
    const char *const same[] = {"Content-Range: bytes 100-999/1000", "ETag: \"v1\"", NULL};
    assert_null(mismatch(&k, 100, 1000, 206, same));
    assert_null(mismatch(&k, 100, -1, 206, same)); /* length unknown so far (chunked) */
    /* the strong ETag is the proof: a changed date beside it does not matter */
    assert_null(mismatch(&k, 100, 1000, 206,
                         (const char *const[]){"Content-Range: bytes 100-999/1000", "ETag: \"v1\"",
                                               "Last-Modified: " LM2, NULL}));
    assert_non_null(mismatch(&k, 50, 1000, 206, same));  /* starts elsewhere */
    assert_non_null(mismatch(&k, 100, 2000, 206, same)); /* another total */
    assert_non_null(mismatch(&k, 100, 1000, 200, same)); /* the whole body again */
    assert_string_equal(
        mismatch(&k, 100, 1000, 206,
                 (const char *const[]){"Content-Range: bytes 100-999/1000", "ETag: \"v2\"", NULL}),
        "upstream's ETag changed");
    assert_non_null(mismatch(&k, 100, 1000, 206, /* no ETag: nothing proves it */
                             (const char *const[]){"Content-Range: bytes 100-999/1000", NULL}));
    assert_non_null(mismatch(&k, 100, 1000, 206, /* no Content-Range */
                             (const char *const[]){"ETag: \"v1\"", NULL}));
    /* the kept body is identity: a gzip range is another representation under the same ETag */
    assert_string_equal(
        mismatch(&k, 100, 1000, 206,
                 (const char *const[]){"Content-Range: bytes 100-999/1000", "ETag: \"v1\"",
                                       "Content-Encoding: gzip", NULL}),
        "upstream answered in another encoding");
    assert_null(mismatch(&k, 100, 1000, 206,
                         (const char *const[]){"Content-Range: bytes 100-999/1000", "ETag: \"v1\"",
                                               "Content-Encoding: identity", NULL}));
}

/* Origins that ignore If-Range answer a changed file with 206 all the same: only the date and
 * the (weak or missing) ETag of the answer itself tell. */
static void a_date_proves_a_resume_only_with_the_same_etag(void **state)
{
    (void)state;
    struct validators date_only = kept("", LM1), weak = kept("W/\"1\"", LM1);
    assert_null(mismatch(
        &date_only, 100, 1000, 206,
        (const char *const[]){"Content-Range: bytes 100-999/1000", "Last-Modified: " LM1, NULL}));
    assert_string_equal(mismatch(&date_only, 100, 1000, 206,
                                 (const char *const[]){"Content-Range: bytes 100-999/1000",
                                                       "Last-Modified: " LM2, NULL}),
                        "upstream's Last-Modified changed");
    assert_non_null(mismatch(&date_only, 100, 1000, 206, /* no date: nothing proves it */
                             (const char *const[]){"Content-Range: bytes 100-999/1000", NULL}));
    assert_non_null(mismatch(&date_only, 100, 1000, 206, /* an ETag appeared: another answer */
                             (const char *const[]){"Content-Range: bytes 100-999/1000",
                                                   "ETag: \"x\"", "Last-Modified: " LM1, NULL}));
    assert_null(mismatch(&weak, 100, 1000, 206,
                         (const char *const[]){"Content-Range: bytes 100-999/1000", "ETag: W/\"1\"",
                                               "Last-Modified: " LM1, NULL}));
    assert_string_equal(
        mismatch(&weak, 100, 1000, 206,
                 (const char *const[]){"Content-Range: bytes 100-999/1000", "ETag: W/\"2\"",
                                       "Last-Modified: " LM1, NULL}),
        "upstream's ETag changed");
    assert_non_null(mismatch(&weak, 100, 1000, 206,
                             (const char *const[]){"Content-Range: bytes 100-999/1000",
                                                   "ETag: W/\"1\"", "Last-Modified: " LM2, NULL}));
    /* a weak ETag and no strong date: nothing to resume on, whatever the answer says */
    struct validators nothing = kept("W/\"1\"", "");
    assert_null(resume_validator(&nothing));
    assert_non_null(mismatch(
        &nothing, 100, 1000, 206,
        (const char *const[]){"Content-Range: bytes 100-999/1000", "ETag: W/\"1\"", NULL}));
}

/* A parent arca gives an object whose origin had no strong ETag its "<sha256>" once its copy is
 * complete: resumed of it on a date, that ETag is no change; the date and the length still
 * decide (its digest vouches for the whole at the end). */
static void a_parents_sha256_tag_does_not_fail_a_resume_on_a_date(void **state)
{
    (void)state;
    struct validators date_only = kept("", LM1), strong = kept("\"v1\"", "");
    const char *const tagged[] = {"Content-Range: bytes 100-999/1000", "ETag: \"abc\"",
                                  "Last-Modified: " LM1, NULL};
    struct upstream_response r = response(tagged);
    struct resume_ask sent = {100, 1000, &date_only, true};
    assert_null(resume_mismatch(&sent, 206, &r));
    sent.parent_tag = false; /* from an origin: an ETag appeared, another answer */
    assert_string_equal(resume_mismatch(&sent, 206, &r), "upstream's ETag changed");
    sent.parent_tag = true;
    r = response((const char *const[]){"Content-Range: bytes 100-999/1000", "ETag: \"abc\"",
                                       "Last-Modified: " LM2, NULL});
    assert_string_equal(resume_mismatch(&sent, 206, &r), "upstream's Last-Modified changed");
    r = response(tagged);
    sent.length = 2000;
    assert_non_null(resume_mismatch(&sent, 206, &r));     /* another length */
    sent = (struct resume_ask){100, 1000, &strong, true}; /* a strong ETag kept decides */
    assert_string_equal(resume_mismatch(&sent, 206, &r), "upstream's ETag changed");
}

static void verdicts(void **state)
{
    (void)state;
    struct validators none = kept("", ""), date = kept("", LM1);
    struct resume_ask whole = {0, -1, &none, false}, resume = {100, 1000, &date, false},
                      elsewhere = {200, 1000, &date, false};
    struct upstream_response plain = response((const char *const[]){NULL});
    struct upstream_response moved = response((const char *const[]){"Location: /x", NULL});
    struct upstream_response part = response(
        (const char *const[]){"Content-Range: bytes 100-999/1000", "Last-Modified: " LM1, NULL});
    struct upstream_response changed = response(
        (const char *const[]){"Content-Range: bytes 100-999/1000", "Last-Modified: " LM2, NULL});
    assert_int_equal(response_verdict(&plain, 100, &whole).kind, VERDICT_SKIP);
    assert_int_equal(response_verdict(&moved, 302, &whole).kind, VERDICT_SKIP);
    struct verdict v = response_verdict(&plain, 302, &whole); /* a redirect to nowhere */
    assert_int_equal(v.kind, VERDICT_FAIL);
    assert_int_equal(v.status, 502);
    v = response_verdict(&plain, 404, &whole);
    assert_int_equal(v.kind, VERDICT_FAIL);
    assert_int_equal(v.status, 404);
    assert_string_equal(v.reason, "upstream answered 404");
    v = response_verdict(&plain, 503, &resume);
    assert_int_equal(v.kind, VERDICT_RETRY);
    assert_int_equal(v.status, 503);
    assert_int_equal(response_verdict(&part, 206, &whole).kind, VERDICT_FAIL);
    assert_int_equal(response_verdict(&plain, 200, &whole).kind, VERDICT_BODY);
    assert_int_equal(response_verdict(&part, 206, &resume).kind, VERDICT_CONTINUE);
    /* anything else answering a resume starts over: a 206 is asked for again from byte 0, a
     * whole body is the new version's */
    v = response_verdict(&changed, 206, &resume);
    assert_int_equal(v.kind, VERDICT_REFETCH);
    assert_string_equal(v.reason, "upstream's Last-Modified changed");
    assert_int_equal(response_verdict(&part, 206, &elsewhere).kind, VERDICT_REFETCH);
    assert_int_equal(response_verdict(&plain, 200, &resume).kind, VERDICT_RESTART);
}

/* Downloads and confirmations wait the same between attempts: --retry-delay, doubled after each
 * failed attempt, at most MAX_BACKOFF_MS. */
static void backoff_doubles_up_to_its_cap(void **state)
{
    (void)state;
    assert_int_equal(retry_backoff_ms(10, 1), 10);
    assert_int_equal(retry_backoff_ms(10, 2), 20);
    assert_int_equal(retry_backoff_ms(10, 4), 80);
    assert_int_equal(retry_backoff_ms(1000, 6), MAX_BACKOFF_MS);
    assert_int_equal(retry_backoff_ms(30000, 100), MAX_BACKOFF_MS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_status_line_gives_its_status),
        cmocka_unit_test(header_lines_are_read),
        cmocka_unit_test(only_a_valid_entity_tag_is_kept),
        cmocka_unit_test(odd_values_are_unknown_or_dropped),
        cmocka_unit_test(cache_control_says_how_long_it_may_answer_stale),
        cmocka_unit_test(retries),
        cmocka_unit_test(names_that_never_resolve),
        cmocka_unit_test(failures_say_attempts_and_time),
        cmocka_unit_test(what_clients_are_told),
        cmocka_unit_test(validators_kept_from_a_response),
        cmocka_unit_test(a_strong_etag_proves_a_resume),
        cmocka_unit_test(a_date_proves_a_resume_only_with_the_same_etag),
        cmocka_unit_test(a_parents_sha256_tag_does_not_fail_a_resume_on_a_date),
        cmocka_unit_test(verdicts),
        cmocka_unit_test(backoff_doubles_up_to_its_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
