/*
 * upstream_response.h — what arca makes of an upstream response: its header lines, and the
 * decisions taken on it (retry, resume, which status clients get). Pure functions of their
 * arguments, no I/O and no shared state, so that each decision has units (test_upstream.c);
 * upstream.c, the upstream thread, applies them to its transfers.
 */
#ifndef ARCA_UPSTREAM_RESPONSE_H
#define ARCA_UPSTREAM_RESPONSE_H

#include "store.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <stdint.h>

/* The headers of one response, as far as arca uses them. */
struct upstream_response {
    int64_t content_length; /* -1 if none (or not a plain number) */
    int64_t range_first, range_total;
    bool has_range; /* a Content-Range arca could read */
    char content_type[HEADER_TYPE_MAX];
    char content_encoding[HEADER_ENCODING_MAX];
    char filename[HEADER_FILENAME_MAX];
    char etag[256];
    char last_modified[HEADER_DATE_MAX];
    bool location; /* carries Location */
};

/* A new response begins (its status line): forget the previous one's headers. */
void response_reset(struct upstream_response *r);
/* One header line, NUL-terminated, without its CRLF. A value arca replays goes whole or not at
 * all: one longer than its field is dropped, and its header's name returned (for the log);
 * NULL otherwise. */
const char *response_header(struct upstream_response *r, const char *line);

/* The statuses KissCache retries: busy or broken for now, the same request may succeed later. */
bool status_retryable(long status);
/* The connection broke or closed early: a later attempt may get through (and resume). */
bool connection_broke(CURLcode rc);
/* Whether an attempt that ended in `rc` may be tried again: after a retryable status, a broken
 * connection, a resolve or connect failure the address policy did not cause, or a timeout
 * before the download's deadline. */
bool error_retryable(CURLcode rc, bool retryable_status, bool refused, bool past_deadline);

/* The status and reason clients get for a failed attempt. */
struct upstream_error {
    int status;
    const char *what;
};
struct upstream_error error_for_clients(CURLcode rc, bool headers_ready, bool past_deadline);

/* What to do with a response whose headers are all in. */
enum verdict_kind {
    VERDICT_SKIP,     /* informational, or a redirect curl follows */
    VERDICT_RETRY,    /* a retryable status: try again later */
    VERDICT_FAIL,     /* final: clients get `status` and `reason` */
    VERDICT_BODY,     /* the whole body begins */
    VERDICT_CONTINUE, /* a 206 that continues the bytes we keep */
    VERDICT_RESTART,  /* a 200 answered our resume: start over, if no client has bytes yet */
};
struct verdict {
    enum verdict_kind kind;
    int status;
    char reason[96];
};
/* `offset`: bytes kept from earlier attempts (a Range was sent when > 0); `length`: the
 * Content-Length known from them, -1 when unknown; `validator`: what the resume sent. */
struct verdict response_verdict(const struct upstream_response *r, long status, int64_t offset,
                                int64_t length, const char *validator);

/* Whether a 206 answering our `Range: bytes=offset-` continues the bytes we keep: it starts at
 * `offset`, has the total we know (length, -1 when unknown) and, when it names a strong ETag,
 * the validator we resumed with. */
bool continues_body(const struct upstream_response *r, long status, int64_t offset, int64_t length,
                    const char *validator);
/* What makes a resume safe: a strong ETag, else Last-Modified (weak ETags may not be used in
 * If-Range, RFC 9110 13.1.5); "" when neither. */
void resume_validator(const struct upstream_response *r, char *out, size_t size);

#endif
