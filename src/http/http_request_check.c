#include "http_request_check.h"
#include "h1.h"
#include "log.h"

#include <assert.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

/* Whether libmicrohttpd is one whose header parse request_check reads line by line. */
static bool layout_known;

/* This thread's requests whose request line is in and whose first call has not come: among
 * them is the one libmicrohttpd is parsing when it logs a bad Content-Length. */
static _Thread_local struct request *reading;

void request_check_init(void)
{
    const char *v = MHD_get_version();
    unsigned int major, minor, patch;
    layout_known = v && sscanf(v, "%u.%u.%u", &major, &minor, &patch) == 3 && major == 0 &&
                   minor == 9 && patch >= 75 && patch <= 77;
    if (!layout_known)
        log_info("libmicrohttpd %s: the check for folded header lines and NULs in them is off "
                 "(written for 0.9.75 to 0.9.77)",
                 v ? v : "?");
}

static bool refuse(struct request_lines *s, unsigned int status, const char *reason)
{
    s->status = status;
    s->reason = reason;
    return false;
}

static bool all_nul(uintptr_t from, uintptr_t to)
{
    for (const char *p = (const char *)from; (uintptr_t)p < to; p++)
        if (*p)
            return false;
    return true;
}

/* Between `from`, where a line ends, and `to`: the NULs libmicrohttpd left of `lines` line
 * ends, each CRLF or LF as the request's first (a client ends all its lines one way). */
static bool line_ends(struct request_lines *s, uintptr_t from, uintptr_t to, uintptr_t lines)
{
    uintptr_t gap = to - from;
    if (to <= from || gap > 2 * lines || !all_nul(from, to))
        return false;
    if (!s->eol && (gap == lines || gap == 2 * lines))
        s->eol = gap / lines;
    return gap == s->eol * lines;
}

/* libmicrohttpd 0.9.75 to 0.9.77 parse the header in place: each line stays where it arrived,
 * its colon and its line end (CRLF or LF) overwritten with NULs, and the header's size is known.
 * So a line's name begins right after the previous line's end (the first, after the request
 * line's), its value after the colon and spaces or tabs, and the blank line ends the header. A
 * line elsewhere was changed by the parse: a folded line's name is moved out of the header (the
 * next line glued to it), and a NUL in a value ends it early, leaving the rest of the line
 * between it and the next. */
static bool check_place(struct request_lines *s, const char *key, size_t ks, const char *value,
                        size_t vs)
{
    uintptr_t k = (uintptr_t)key, v = (uintptr_t)value;
    if (k <= s->lo || k + ks >= s->hi)
        return refuse(s, MHD_HTTP_BAD_REQUEST, "folded header line (obs-fold) not accepted");
    if (s->end ? !line_ends(s, s->end, k, 1) : key[-1] != '\0')
        return refuse(s, MHD_HTTP_BAD_REQUEST, "NUL in a header line, or mixed line ends");
    if (v <= k + ks || v + vs > s->hi)
        return refuse(s, MHD_HTTP_BAD_REQUEST, "malformed header line");
    for (const char *p = key + ks + 1; p < value; p++)
        if (*p != ' ' && *p != '\t')
            return refuse(s, MHD_HTTP_BAD_REQUEST, "NUL in a header line");
    s->end = v + vs;
    return true;
}

void request_lines_begin(struct request_lines *s, const char *block, size_t size,
                         const char *version)
{
    uintptr_t v = (uintptr_t)version;
    memset(s, 0, sizeof(*s));
    s->version = version;
    if (!block)
        return;
    s->lo = (uintptr_t)block;
    s->hi = s->lo + size;
    /* The version ends the request line: the first line begins 1 or 2 NULs after it. */
    if (v > s->lo && v < s->hi)
        s->end = v + strnlen(version, s->hi - v);
}

bool request_lines_add(struct request_lines *s, const char *key, size_t ks, const char *value,
                       size_t vs)
{
    if (s->status)
        return false;
    if (!h1_is_token(key, ks))
        return refuse(s, MHD_HTTP_BAD_REQUEST,
                      "invalid header name (a token, and no whitespace before the colon)");
    if (memchr(value, '\r', vs))
        return refuse(s, MHD_HTTP_BAD_REQUEST, "CR in a header line without LF");
    if (s->lo && !check_place(s, key, ks, value, vs))
        return false;
    if (!strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH))
        s->content_lengths++;
    if (!strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING)) {
        s->transfer_encodings++;
        s->coding = value;
    }
    return true;
}

/* The last line (or the request line) is followed by its line end and the blank line's, and
 * nothing else. libmicrohttpd takes any line that begins with a NUL for the blank line, so what
 * follows such a line is caught here too. */
static bool header_ends_clean(struct request_lines *s)
{
    return !s->lo || !s->end || line_ends(s, s->end, s->hi, 2);
}

/* RFC 9112 6.1 and 6.3: one way to know where the body ends, and only one. libmicrohttpd takes
 * the first Content-Length, prefers Transfer-Encoding to it, and decodes only "chunked" (any
 * other coding it reads until the connection closes). */
static unsigned int check_framing(const struct request_lines *s, const char **reason)
{
    *reason = NULL;
    if (s->transfer_encodings > 1)
        *reason = "more than one Transfer-Encoding";
    else if (s->transfer_encodings && s->content_lengths)
        *reason = "both Content-Length and Transfer-Encoding";
    else if (s->content_lengths > 1)
        *reason = "more than one Content-Length";
    else if (s->transfer_encodings && !strcmp(s->version, MHD_HTTP_VERSION_1_0))
        *reason = "Transfer-Encoding in HTTP/1.0";
    else if (s->transfer_encodings && strcasecmp(s->coding, "chunked")) {
        *reason = "Transfer-Encoding other than chunked";
        return MHD_HTTP_NOT_IMPLEMENTED;
    }
    return *reason ? MHD_HTTP_BAD_REQUEST : 0;
}

unsigned int request_lines_end(struct request_lines *s, const char **reason)
{
    if (!s->status && !header_ends_clean(s))
        refuse(s, MHD_HTTP_BAD_REQUEST, "NUL in a header line, or mixed line ends");
    if (s->status) {
        *reason = s->reason;
        return s->status;
    }
    return check_framing(s, reason);
}

static enum MHD_Result add_line(void *cls, enum MHD_ValueKind kind, const char *key, size_t ks,
                                const char *value, size_t vs)
{
    (void)kind;
    return request_lines_add(cls, key, ks, value, vs) ? MHD_YES : MHD_NO;
}

unsigned int request_check(struct MHD_Connection *c, const char *method, const char *version,
                           const char **reason)
{
    struct request_lines s;
    const union MHD_ConnectionInfo *size =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
    request_lines_begin(&s, layout_known && size ? method : NULL, size ? size->header_size : 0,
                        version);
    MHD_get_connection_values_n(c, MHD_HEADER_KIND, add_line, &s);
    return request_lines_end(&s, reason);
}

void request_check_begin(struct MHD_Connection *c, struct request *req)
{
    assert(!req->conn && req != reading); /* in this thread's list once */
    req->conn = (struct conn *)c;         /* conn.h's handle is libmicrohttpd's */
    req->reading_prev = NULL;
    req->reading_next = reading;
    if (reading)
        reading->reading_prev = req;
    reading = req;
}

void request_check_end(struct request *req)
{
    if (!req->conn)
        return; /* not in the list (any more) */
    if (req->reading_prev)
        req->reading_prev->reading_next = req->reading_next;
    else
        reading = req->reading_next;
    if (req->reading_next)
        req->reading_next->reading_prev = req->reading_prev;
    req->conn = NULL;
}

/* The connection libmicrohttpd is parsing now: its header is in (its size is known) and it has
 * no answer. Any other request of this thread whose header is in got its first call, or an
 * answer from libmicrohttpd, in the same pass: so there is at most one. */
static struct request *parsing_now(void)
{
    for (struct request *r = reading; r; r = r->reading_next) {
        struct MHD_Connection *c = (struct MHD_Connection *)r->conn;
        if (MHD_get_connection_info(c, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE) &&
            !MHD_get_connection_info(c, MHD_CONNECTION_INFO_HTTP_STATUS))
            return r;
    }
    return NULL;
}

/* Answer the request being parsed with `status` and `reason` on its socket, and shut the socket
 * for writing: libmicrohttpd's own answer then fails to send, and it closes the connection. A
 * socket whose buffer is full takes what fits: a cut answer, and the close. */
static void answer_instead(unsigned int status, const char *reason)
{
    struct request *req = parsing_now();
    const union MHD_ConnectionInfo *fd;
    char text[512], date[64];
    struct tm tm;
    time_t now = time(NULL);
    size_t body = strlen(reason) + 1;
    int n;

    if (!req || !(fd = MHD_get_connection_info((struct MHD_Connection *)req->conn,
                                               MHD_CONNECTION_INFO_CONNECTION_FD)))
        return; /* libmicrohttpd's answer goes out */
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", gmtime_r(&now, &tm));
    n = snprintf(text, sizeof(text),
                 "HTTP/1.1 %u %s\r\nDate: %s\r\nConnection: close\r\n"
                 "Content-Type: text/plain; charset=utf-8\r\nContent-Length: %zu\r\n\r\n%s\n",
                 status, MHD_get_reason_phrase_for(status), date, body, reason);
    if (n > 0 && (size_t)n < sizeof(text))
        (void)send(fd->connect_fd, text, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
    shutdown(fd->connect_fd, SHUT_WR);
    req->status = status; /* for the access log */
    req->bytes = (int64_t)body;
    request_check_end(req);
}

/* What libmicrohttpd 0.9.75 to 0.9.77 log just before answering a bad Content-Length. */
static const struct {
    const char *message;
    unsigned int status;
    const char *reason;
} own_answers[] = {
    {"Failed to parse `Content-Length' header. Closing connection.\n", MHD_HTTP_BAD_REQUEST,
     "Content-Length is not a number"},
    {"Too large value of 'Content-Length' header. Closing connection.\n",
     MHD_HTTP_CONTENT_TOO_LARGE, "Content-Length too large"},
};

void request_check_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls, (void)ap;
    for (size_t i = 0; i < sizeof(own_answers) / sizeof(own_answers[0]); i++)
        if (!strcmp(fmt, own_answers[i].message))
            answer_instead(own_answers[i].status, own_answers[i].reason);
    /* Anything else is dropped, as it was before arca set this callback. */
}
