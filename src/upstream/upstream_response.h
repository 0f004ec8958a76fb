/*
 * upstream_response.h — what arca makes of an upstream response: its header lines, and the
 * decisions taken on it (retry, resume, which status clients get). Pure functions of their
 * arguments, no I/O and no shared state, so that each decision has units (test_upstream.c);
 * transfer_course.c and probe.c, on the upstream thread, apply them to downloads and probes.
 */
#ifndef ARCA_UPSTREAM_RESPONSE_H
#define ARCA_UPSTREAM_RESPONSE_H

#include "store/store.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <stdint.h>

/* The headers of one response, as far as arca uses them. */
struct upstream_response {
    int64_t content_length; /* -1 if none (or not a plain number) */
    int64_t range_first, range_last, range_total;
    bool has_range;     /* a Content-Range arca could read */
    bool accept_ranges; /* Accept-Ranges: bytes (RFC 9110 14.3): ranges may be asked for */
    char content_type[HEADER_TYPE_MAX];
    char content_encoding[HEADER_ENCODING_MAX];
    char filename[HEADER_FILENAME_MAX];
    char etag[256];
    char last_modified[HEADER_DATE_MAX];
    char date[HEADER_DATE_MAX]; /* Date: whether Last-Modified is a strong validator */
    bool location;              /* carries Location */
    /* Its Cache-Control (RFC 5861, RFC 9111 5.2.2): seconds it may answer stale past its
     * expiry when upstream fails, or while revalidated; -1 not said (the options apply), 0
     * never (must-revalidate, proxy-revalidate, no-cache, no-store). A malformed value is
     * ignored. */
    int64_t stale_if_error, stale_while_revalidate;
};

/* One Cache-Control header's value into r's stale_if_error and stale_while_revalidate. */
void response_cache_control(struct upstream_response *r, const char *value);
/* A new response begins (its status line): forget the previous one's headers. */
void response_reset(struct upstream_response *r);
/* Whether a header line is a response's status line (curl hands those over too). */
bool response_is_status_line(const char *line);
/* The status of a status line ("HTTP/1.1 206 Partial Content", "HTTP/2 200", and what curl
 * also takes: "http/1.1 200", "HTTP/1.1  200", "HTTP/1.1 200OK"): what curl's
 * CURLINFO_RESPONSE_CODE gives once that response's headers are in; 0 when unreadable. */
long response_status_line(const char *line);
/* One header line, NUL-terminated, without its CRLF. A value arca replays goes whole or not at
 * all: one longer than its field is dropped, and its header's name returned (for the log);
 * NULL otherwise. */
const char *response_header(struct upstream_response *r, const char *line);

/* The statuses KissCache retries: busy or broken for now, the same request may succeed later. */
bool status_retryable(long status);
/* Whether an upstream failure of `status` (0: no answer at all: refused, reset, timed out, a name
 * that does not resolve) is an outage, not upstream's word on the object: a status arca retries
 * (429 "slow down", 408, the 5xx that say the server is failing). A refresh failing so keeps
 * the expired copy, which answers within its stale-if-error (RFC 5861 4); only a verdict on the
 * object (a 404, a 403, a new version) replaces or deletes it. The one rule, whatever failed: a
 * download's attempts, a registry's token dance. */
bool status_outage(long status);
/* The connection broke or closed early: a later attempt may get through (and resume). */
bool connection_broke(CURLcode rc);
/* Whether an attempt that ended in `rc` may be tried again: after a retryable status, a broken
 * connection, a connect failure the address policy did not cause, or a timeout before the
 * download's deadline. A name that does not resolve is final: retrying only makes the client
 * wait (a resolver that is down for a moment fails this download; the next request asks again).
 * TLS verification failures, redirect loops and refused schemes are final too. */
bool error_retryable(CURLcode rc, bool retryable_status, bool refused, bool past_deadline);
/* A name that did not resolve is asked once more, RESOLVE_RETRY_MS later, whatever
 * --download-retries says: curl reports a resolver's temporary failure (SERVFAIL, a timeout) as
 * it reports a name that does not exist, and a blip must not fail a lab's job. A name under
 * ".invalid" is never asked (host_never_resolves). */
#define RESOLVE_RETRY_MS 1000
bool resolve_retryable(CURLcode rc, bool asked_again, bool past_deadline);

/* How long to wait before the next attempt, once `attempts` have failed: `delay_ms`
 * (--retry-delay) doubled after each, at most MAX_BACKOFF_MS. */
#define MAX_BACKOFF_MS 30000
int64_t retry_backoff_ms(int64_t delay_ms, int attempts);

/* The status and reason clients get for a failed attempt. */
struct upstream_error {
    int status;
    const char *what;
};
struct upstream_error error_for_clients(CURLcode rc, bool headers_ready, bool past_deadline);

/* Whether `host` (len bytes, no port) is under the special-use domain "invalid." (RFC 6761 6.4):
 * such a name never resolves, so it is answered here, without asking a resolver. */
bool host_never_resolves(const char *host, size_t len);

/* What clients of a download that failed upstream are told: "WHO failed after N attempt(s) in
 * S.s s: WHY" (WHO "upstream", "parent" under --parent-only, a registry's "registry NAME:"), cut
 * to `size` bytes. */
#define FAILURE_WHO_MAX 160 /* room for a WHO */
void failure_summary(char *out, size_t size, const char *who, int attempts, int64_t elapsed_ms,
                     const char *why);

/* --- resuming a cut body -------------------------------------------------------------------
 * A cut body is continued with Range: bytes=N- and If-Range, but If-Range proves nothing on its
 * own: some origins honour Range and ignore If-Range, and answer 206 with the bytes of a file
 * that has changed meanwhile. So the answer itself must prove that it continues the same
 * representation (RFC 9110 13.1.5, 14.4), or the kept bytes are thrown away. */

/* The validators of the response a body came with, kept to resume it. */
struct validators {
    char etag[256];                      /* as upstream gave it, weak or strong; "" none */
    char last_modified[HEADER_DATE_MAX]; /* only when it is a strong validator; "" otherwise */
    char encoding[HEADER_ENCODING_MAX];  /* its Content-Encoding; "" identity */
};
/* The validators of `r`, whose body begins. Its Last-Modified is kept only when it is a strong
 * validator (RFC 9110 8.8.2.2): the response's Date at least a second later. A file changed
 * within the second of its date may change again within that second and keep the date. */
void validators_of(const struct upstream_response *r, struct validators *out);
/* What a resume sends as If-Range: the strong ETag, else the Last-Modified (a weak ETag may not
 * be used there); NULL when neither: the kept bytes cannot be resumed. */
const char *resume_validator(const struct validators *v);

/* What a resume asked for: the bytes after the `offset` kept, of a body of `length` bytes (-1
 * unknown), if upstream still serves the version `kept` describes. */
struct resume_ask {
    int64_t offset, length;
    const struct validators *kept;
    /* asked of a parent arca on a date: a strong ETag where the kept body had none (or a weak
     * one) is its sha256 tag, given once its copy is complete, not another version */
    bool parent_tag;
};
/* Whether the answer (`status`, its headers `r`) to the resume `sent` continues the kept bytes:
 * a 206 whose Content-Range starts at the offset and, when the length is known, has it as its
 * total, and which carries the strong ETag resumed with; or, resumed on a date (no ETag, or a
 * weak one), that very Last-Modified and the kept body's ETag, unchanged; in the kept body's
 * Content-Encoding (bytes of another encoding are another representation, whatever the
 * validator says: a lie before any of them is written). NULL when it does;
 * otherwise why not, for the log: the download must start over from byte 0. A pure function,
 * fuzzed (fuzz/fuzz_resume.c). */
const char *resume_mismatch(const struct resume_ask *sent, long status,
                            const struct upstream_response *r);

/* What to do with a response whose headers are all in. */
enum verdict_kind {
    VERDICT_SKIP,     /* informational, or a redirect curl follows */
    VERDICT_RETRY,    /* a retryable status: try again later */
    VERDICT_FAIL,     /* final: clients get `status` and `reason` */
    VERDICT_BODY,     /* the whole body begins */
    VERDICT_CONTINUE, /* a 206 that continues the bytes we keep */
    VERDICT_RESTART,  /* a 200 answered our resume: the whole body of what upstream serves now */
    VERDICT_REFETCH,  /* a 206 that does not continue them: start over with a request from 0 */
};
struct verdict {
    enum verdict_kind kind;
    int status;
    char reason[96];
};
/* `sent`: what the request asked for (offset 0: the whole body, no resume). */
struct verdict response_verdict(const struct upstream_response *r, long status,
                                const struct resume_ask *sent);

#endif
