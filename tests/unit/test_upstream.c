/* Units for the upstream decisions (upstream_response.h): what a response's header lines give,
 * what is retried, when a resume continues the bytes kept, and what clients are told. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "upstream_response.h"

static struct upstream_response response(const char *const *lines)
{
    struct upstream_response r;
    response_reset(&r);
    for (; *lines; lines++)
        assert_null(response_header(&r, *lines));
    return r;
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
    assert_false(error_retryable(CURLE_TOO_MANY_REDIRECTS, false, false, false));
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
}

static void resumes(void **state)
{
    (void)state;
    struct upstream_response r =
        response((const char *const[]){"Content-Range: bytes 100-999/1000", "ETag: \"v1\"", NULL});
    char validator[256];
    assert_true(continues_body(&r, 206, 100, 1000, "\"v1\""));
    assert_true(continues_body(&r, 206, 100, -1, "\"v1\""));    /* length unknown so far */
    assert_false(continues_body(&r, 206, 50, 1000, "\"v1\""));  /* starts elsewhere */
    assert_false(continues_body(&r, 206, 100, 2000, "\"v1\"")); /* another total */
    assert_false(continues_body(&r, 206, 100, 1000, "\"v2\"")); /* another version */
    assert_false(continues_body(&r, 200, 100, 1000, "\"v1\""));
    resume_validator(&r, validator, sizeof(validator));
    assert_string_equal(validator, "\"v1\"");
    r = response((const char *const[]){"ETag: W/\"weak\"",
                                       "Last-Modified: Tue, 01 Sep 2026 10:00:00 GMT", NULL});
    resume_validator(&r, validator, sizeof(validator)); /* a weak ETag may not be used */
    assert_string_equal(validator, "Tue, 01 Sep 2026 10:00:00 GMT");
}

static void verdicts(void **state)
{
    (void)state;
    struct upstream_response plain = response((const char *const[]){NULL});
    struct upstream_response moved = response((const char *const[]){"Location: /x", NULL});
    struct upstream_response part =
        response((const char *const[]){"Content-Range: bytes 100-999/1000", NULL});
    assert_int_equal(response_verdict(&plain, 100, 0, -1, "").kind, VERDICT_SKIP);
    assert_int_equal(response_verdict(&moved, 302, 0, -1, "").kind, VERDICT_SKIP);
    struct verdict v = response_verdict(&plain, 302, 0, -1, ""); /* a redirect to nowhere */
    assert_int_equal(v.kind, VERDICT_FAIL);
    assert_int_equal(v.status, 502);
    v = response_verdict(&plain, 404, 0, -1, "");
    assert_int_equal(v.kind, VERDICT_FAIL);
    assert_int_equal(v.status, 404);
    assert_string_equal(v.reason, "upstream answered 404");
    v = response_verdict(&plain, 503, 0, -1, "");
    assert_int_equal(v.kind, VERDICT_RETRY);
    assert_int_equal(v.status, 503);
    assert_int_equal(response_verdict(&part, 206, 0, -1, "").kind, VERDICT_FAIL);
    assert_int_equal(response_verdict(&plain, 200, 0, -1, "").kind, VERDICT_BODY);
    assert_int_equal(response_verdict(&part, 206, 100, 1000, "x").kind, VERDICT_CONTINUE);
    assert_int_equal(response_verdict(&part, 206, 200, 1000, "x").kind, VERDICT_FAIL);
    assert_int_equal(response_verdict(&plain, 200, 100, 1000, "x").kind, VERDICT_RESTART);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(header_lines_are_read),
        cmocka_unit_test(odd_values_are_unknown_or_dropped),
        cmocka_unit_test(retries),
        cmocka_unit_test(what_clients_are_told),
        cmocka_unit_test(resumes),
        cmocka_unit_test(verdicts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
