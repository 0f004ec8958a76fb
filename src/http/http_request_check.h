/*
 * http_request_check.h — a request is read the way any other HTTP/1.1 parser reads it, or not
 * at all: a load balancer in front of arca must not see one request where arca sees two
 * (request smuggling), nor a header line arca reads differently.
 *
 * Contract: request_check() runs on libmicrohttpd's first call for a request, when its header is
 * in and none of its body has been read. A request it refuses is answered with that status and
 * a one-line reason, and its connection is closed, so no byte after its header is ever taken
 * for a request. Refused:
 *   - Content-Length together with Transfer-Encoding, two Content-Length lines, two
 *     Transfer-Encoding lines, Transfer-Encoding in HTTP/1.0 (400);
 *   - a Transfer-Encoding other than exactly "chunked", which libmicrohttpd would not decode
 *     (501);
 *   - a header name that is not a token (whitespace before the colon, a CR, ...) and a CR in a
 *     value (400);
 *   - with libmicrohttpd 0.9.75 to 0.9.77, whose in-place parse this module reads: a folded
 *     line (obs-fold: it glues the fold to the name), a NUL in a line (it cuts the value short,
 *     hiding the rest of the line; a line that begins with one ends the header) and lines not
 *     all ended the same way, CRLF or LF (400). The parse leaves the same bytes for a NUL right
 *     before an LF as for a CR there, so that one NUL stays unseen; it hides nothing but itself,
 *     and libmicrohttpd reads it as the CR. With another version these checks are off (logged
 *     at start).
 * libmicrohttpd answers a Content-Length that is not a number (400) or too large (413) itself,
 * before any call to arca, and 0.9.75 sends that answer's header twice. Its error log callback,
 * request_check_mhd_log, answers such a request honestly instead: the one request of this
 * thread whose header is in and unanswered gets the status and a one-line reason on its socket,
 * which is then shut for writing, so libmicrohttpd's answer is never sent.
 *
 * Threads: the server's threads; all calls for one connection come from its thread.
 */
#ifndef ARCA_HTTP_REQUEST_CHECK_H
#define ARCA_HTTP_REQUEST_CHECK_H

#include "request.h"

#include <microhttpd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

/* Once, before the daemon starts: whether the line-layout checks apply to this libmicrohttpd. */
void request_check_init(void);

/* 0 when `c`'s request may be read on; else the status to refuse it with, and the reason.
 * `method` and `version` are the pointers libmicrohttpd gave the access handler (the request
 * line's start, in its buffer). Nothing may have added a header to the request before. */
unsigned int request_check(struct MHD_Connection *c, const char *method, const char *version,
                           const char **reason);

/* The same checks without a connection (the fuzz target's way in). Begin with the header as
 * libmicrohttpd holds it, `size` bytes from the request line's first byte to the blank line's
 * end (`block` NULL: where lines lie is not checked), and the request's version (in `block`,
 * it ends the request line); add each header line in order, as libmicrohttpd gives it (false
 * once refused); end gives request_check's answer. */
struct request_lines {
    uintptr_t lo, hi; /* the header's bytes; 0: not checked */
    uintptr_t end;    /* where the previous line ends (before its NULs); 0: not known */
    uintptr_t eol;    /* NULs a line end left: 2 (CRLF) or 1 (LF); 0 until seen */
    const char *version;
    int content_lengths, transfer_encodings;
    const char *coding; /* the Transfer-Encoding */
    unsigned int status;
    const char *reason;
};
void request_lines_begin(struct request_lines *s, const char *block, size_t size,
                         const char *version);
bool request_lines_add(struct request_lines *s, const char *key, size_t key_size, const char *value,
                       size_t value_size);
unsigned int request_lines_end(struct request_lines *s, const char **reason);

/* The request line of `req` is in (on_uri): its header is being read on this thread. */
void request_check_begin(struct MHD_Connection *c, struct request *req);
/* `req` got its first call, or ended. */
void request_check_end(struct request *req);

/* libmicrohttpd's error log (MHD_OPTION_EXTERNAL_LOGGER with MHD_USE_ERROR_LOG). */
void request_check_mhd_log(void *cls, const char *fmt, va_list ap);

#endif
