/* Sending an answer (engine_internal.h): its head and a memory body in one sendmsg, a file by
 * sendfile, a reader's blocks framed as chunks when the length is not known; at most
 * SEND_TURN_MAX bytes per connection per turn. */
#include "engine/engine_internal.h"
#include "base/parse.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

/* Room before a block's data for its chunk-size line ("ffffffffffffffff\r\n" at most). */
#define CHUNK_PREFIX 18

/* RFC 9110's reason phrases for the statuses arca sends. */
static const struct {
    unsigned int status;
    const char *phrase;
} phrases[] = {
    {100, "Continue"},
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {204, "No Content"},
    {206, "Partial Content"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {303, "See Other"},
    {304, "Not Modified"},
    {307, "Temporary Redirect"},
    {308, "Permanent Redirect"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {410, "Gone"},
    {411, "Length Required"},
    {412, "Precondition Failed"},
    {413, "Content Too Large"},
    {414, "URI Too Long"},
    {415, "Unsupported Media Type"},
    {416, "Range Not Satisfiable"},
    {417, "Expectation Failed"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
    {505, "HTTP Version Not Supported"},
    {508, "Loop Detected"},
};

static const char *reason_phrase(unsigned int status)
{
    for (size_t i = 0; i < sizeof(phrases) / sizeof(phrases[0]); i++)
        if (phrases[i].status == status)
            return phrases[i].phrase;
    return "Unknown";
}

/* Appending to the head without the printf machinery, which costs a warm hit more than the
 * rest of its head. The caller sized the buffer. */
static char *put(char *p, const char *s)
{
    size_t k = strlen(s);
    memcpy(p, s, k);
    return p + k;
}

static char *put_uint(char *p, uint64_t v)
{
    return p + format_uint(v, p);
}

/* The status line, Date, the answer's header lines, its framing and Connection line. */
static char *put_head(char *p, struct conn *c, const struct answer *a, bool length,
                      const char *connection)
{
    struct exchange *x = c->x;
    p = put(p, "HTTP/1.1 ");
    p = put_uint(p, x->status);
    *p++ = ' ';
    p = put(p, reason_phrase(x->status));
    p = put(p, "\r\nDate: ");
    p = put(p, worker_date(c->w));
    p = put(p, "\r\n");
    if (a->headers_len) /* an answer with no header line has no buffer for them */
        memcpy(p, a->headers, a->headers_len);
    p += a->headers_len;
    if (x->lines)
        p = put(p, x->lines);
    if (length) {
        p = put(p, "Content-Length: ");
        p = put_uint(p, x->body_len);
        p = put(p, "\r\n");
    } else if (x->chunked_out) {
        p = put(p, "Transfer-Encoding: chunked\r\n");
    }
    p = put(p, connection);
    return put(p, "\r\n");
}

bool send_prepare(struct conn *c)
{
    struct exchange *x = c->x;
    struct answer *a = x->ans;
    bool tunnel = x->tunnel_fd >= 0 && x->status >= 200 && x->status < 300;
    bool no_body = x->status < 200 || x->status == 204 || x->status == 304 || tunnel;
    bool length = !no_body && a->len != ANSWER_SIZE_UNKNOWN;
    const char *connection = "";

    x->body_len = no_body ? 0 : a->len;
    if (!no_body && !length && x->http10)
        x->keep_alive = false; /* HTTP/1.0: the close ends the body */
    x->chunked_out = !no_body && !length && !x->http10;
    if (a->close || engine_draining())
        x->keep_alive = false;
    if (tunnel)
        ; /* the connection is the tunnel's from the blank line on */
    else if (!x->keep_alive && !a->close)
        connection = "Connection: close\r\n";
    else if (x->keep_alive && x->http10)
        connection = "Connection: keep-alive\r\n";
    x->body_done = no_body || x->head_only || x->body_len == 0;

    /* the status line, Date and framing take at most 160 bytes (the longest phrase is 31) */
    size_t cap = 160 + strlen(connection) + a->headers_len + (x->lines ? strlen(x->lines) : 0);
    if (!(x->out = malloc(cap)))
        return false;
    x->out_len = (size_t)(put_head(x->out, c, a, length, connection) - x->out);
    assert(x->out_len <= cap);
    x->out_sent = 0;
    return true;
}

/* Bytes written, or -1 with the result to return (AGAIN with can_write cleared, or CUT). */
static ssize_t put_iov(struct conn *c, struct iovec *iov, int n, bool more, enum send_result *res)
{
    ssize_t r = io_sendv(c, iov, n, more);
    if (r >= 0) {
        worker_touch(c->w, c);
        return r;
    }
    *res = errno == EAGAIN || errno == EWOULDBLOCK ? SEND_AGAIN : SEND_CUT;
    return -1;
}

/* A file's bytes by io_sendfile: as put_iov; 0 bytes is a file that ended early (CUT). */
static ssize_t put_file(struct conn *c, int fd, off_t *off, size_t len, enum send_result *res)
{
    ssize_t r = io_sendfile(c, fd, off, len);
    if (r > 0) {
        worker_touch(c->w, c);
        return r;
    }
    *res = r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) ? SEND_AGAIN : SEND_CUT;
    return -1;
}

static size_t min_size(uint64_t a, size_t b)
{
    return a < b ? (size_t)a : b;
}

/* Whether this connection sends the body from memory: a memory body, or a file's mapping where
 * its file would be read into a buffer anyway (io_copies_files). */
static bool body_in_memory(struct conn *c, const struct answer *a)
{
    return a->kind == ANSWER_MEM || (a->kind == ANSWER_FILE && a->data && io_copies_files(c));
}

/* The head, with the first bytes of a memory body in the same call. */
static bool send_head(struct conn *c, size_t *budget, enum send_result *res)
{
    struct exchange *x = c->x;
    struct answer *a = x->ans;
    while (x->out_sent < x->out_len) {
        struct iovec iov[2] = {{x->out + x->out_sent, x->out_len - x->out_sent}};
        int n = 1;
        size_t head_part;
        ssize_t r;
        if (!x->body_done && body_in_memory(c, a)) {
            iov[1].iov_base = (void *)a->data;
            iov[1].iov_len = min_size(a->len, *budget);
            n = 2;
        }
        /* a file's or reader's first bytes follow at once: one packet, not two */
        if ((r = put_iov(c, iov, n, !x->body_done && n == 1, res)) < 0)
            return false;
        head_part = min_size((uint64_t)r, x->out_len - x->out_sent);
        x->out_sent += head_part;
        x->body_sent += (uint64_t)r - head_part;
        *budget -= (size_t)r < *budget ? (size_t)r : *budget;
    }
    return true;
}

/* A memory or file body, up to the budget. */
static ssize_t send_fixed(struct conn *c, size_t max, enum send_result *res)
{
    struct exchange *x = c->x;
    struct answer *a = x->ans;
    size_t len = min_size(a->len - x->body_sent, max);
    if (body_in_memory(c, a)) {
        struct iovec iov = {(void *)(a->data + x->body_sent), len};
        return put_iov(c, &iov, 1, false, res);
    }
    off_t off = (off_t)(a->off + (int64_t)x->body_sent);
    return put_file(c, a->fd, &off, len, res); /* CUT: the file ended early, or the client left */
}

/* A header field name's byte (RFC 9110 5.6.2, tchar). */
static bool tchar(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* Whether `len` bytes are trailer lines only, each "Name: value\r\n" with a token for a name and
 * no other CR, LF or NUL: what a trailer function wrote can neither end the message early nor
 * start another. */
static bool trailer_lines(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        size_t name = 0;
        while (i + name < len && tchar(s[i + name]))
            name++;
        if (name == 0 || i + name >= len || s[i + name] != ':')
            return false;
        for (i += name + 1; i < len && s[i] != '\r' && s[i] != '\n' && s[i] != '\0'; i++)
            ;
        if (i + 1 >= len || s[i] != '\r' || s[i + 1] != '\n')
            return false;
        i += 2;
    }
    return true;
}

/* The last chunk into out (SEND_LAST_CHUNK_MAX bytes), with the answer's trailer lines
 * (answer_trailer) when it has any worth sending; returns its length. */
static size_t put_last_chunk(struct answer *a, char *out)
{
    size_t n = 0;
    memcpy(out, "0\r\n", 3);
    if (a->trailer) {
        n = a->trailer(a->trailer_cls, out + 3, ANSWER_TRAILER_MAX);
        if (n > ANSWER_TRAILER_MAX || !trailer_lines(out + 3, n))
            n = 0; /* never a broken section: the body still ends well, without it */
    }
    memcpy(out + 3 + n, "\r\n", 2);
    return 5 + n;
}

/* A reader's next block into x->block, framed; false with *res when there is none now. */
static bool next_block(struct conn *c, enum send_result *res)
{
    struct exchange *x = c->x;
    struct answer *a = x->ans;
    size_t max = a->block;
    ssize_t n;
    if (x->body_len != ANSWER_SIZE_UNKNOWN && x->body_sent >= x->body_len) {
        x->body_done = true;
        *res = SEND_DONE;
        return false;
    }
    if (!x->block && !(x->block = malloc(CHUNK_PREFIX + a->block + 2 > SEND_LAST_CHUNK_MAX
                                             ? CHUNK_PREFIX + a->block + 2
                                             : SEND_LAST_CHUNK_MAX))) {
        *res = SEND_CUT;
        return false;
    }
    if (x->body_len != ANSWER_SIZE_UNKNOWN)
        max = min_size(x->body_len - x->body_sent, max);
    n = a->reader(a->reader_cls, x->body_sent, x->block + CHUNK_PREFIX, max);
    if (n == 0) {
        *res = c->suspended ? SEND_WAIT : SEND_TURN;
        return false;
    }
    if (n == ANSWER_END && x->body_len == ANSWER_SIZE_UNKNOWN && !x->chunked_out) {
        x->body_done = true; /* HTTP/1.0: the close ends the body */
        *res = SEND_DONE;
        return false;
    }
    if (n == ANSWER_END && x->chunked_out) {
        x->block_sent = 0;
        x->block_len = put_last_chunk(a, x->block);
        x->final_chunk = true;
        x->body_len = x->body_sent; /* nothing more after the final chunk */
        return true;
    }
    if (n < 0 || (size_t)n > max) {
        *res = SEND_CUT; /* cut, or ended before its announced length: never look whole */
        return false;
    }
    x->body_sent += (uint64_t)n;
    x->block_len = CHUNK_PREFIX + (size_t)n;
    x->block_sent = CHUNK_PREFIX;
    if (x->chunked_out) {
        char line[CHUNK_PREFIX + 1];
        int len = snprintf(line, sizeof(line), "%zx\r\n", (size_t)n);
        x->block_sent = CHUNK_PREFIX - (size_t)len;
        memcpy(x->block + x->block_sent, line, (size_t)len);
        memcpy(x->block + x->block_len, "\r\n", 2);
        x->block_len += 2;
    }
    return true;
}

/* A chunk's frame, after the CRLF that ends the chunk before it when one is due. */
static void set_frame(struct exchange *x, const char *line)
{
    int len = snprintf(x->frame, sizeof(x->frame), "%s%s", x->crlf_due ? "\r\n" : "", line);
    x->frame_len = len > 0 ? (size_t)len : 0;
    x->frame_sent = 0;
    x->crlf_due = false;
}

/* The spanner's next span (with its chunk-size line when chunked); false with *res when none. */
static bool next_span(struct conn *c, enum send_result *res)
{
    struct exchange *x = c->x;
    struct answer *a = x->ans;
    size_t max = SEND_TURN_MAX;
    ssize_t n;
    if (x->body_len != ANSWER_SIZE_UNKNOWN) {
        if (x->body_sent >= x->body_len) {
            x->body_done = true;
            *res = SEND_DONE;
            return false;
        }
        max = min_size(x->body_len - x->body_sent, max);
    }
    n = a->spanner(a->reader_cls, x->body_sent, max, &x->span_fd, &x->span_off);
    if (n == 0) {
        *res = c->suspended ? SEND_WAIT : SEND_TURN;
        return false;
    }
    if (n == ANSWER_END && x->body_len == ANSWER_SIZE_UNKNOWN) {
        if (!x->chunked_out) {
            x->body_done = true; /* HTTP/1.0: the close ends the body */
            *res = SEND_DONE;
            return false;
        }
        size_t crlf = x->crlf_due ? 2 : 0;
        memcpy(x->frame, "\r\n", crlf);
        x->frame_len = crlf + put_last_chunk(a, x->frame + crlf);
        x->frame_sent = 0;
        x->crlf_due = false;
        x->final_chunk = true;
        return true;
    }
    if (n < 0 || (size_t)n > max) {
        *res = SEND_CUT; /* cut, or ended before its announced length: never look whole */
        return false;
    }
    x->body_sent += (uint64_t)n;
    x->span_left = (uint64_t)n;
    if (x->chunked_out) {
        char line[CHUNK_PREFIX + 1];
        snprintf(line, sizeof(line), "%zx\r\n", (size_t)n);
        set_frame(x, line);
    }
    x->frame_sent = 0;
    return true;
}

/* Frame bytes, then the span's by sendfile. A chunk's CRLF waits for the next frame (the next
 * chunk's size line, or the last chunk) and goes in its send: two calls a chunk, not three. */
static ssize_t send_span(struct conn *c, size_t max, enum send_result *res)
{
    struct exchange *x = c->x;
    ssize_t r;
    if (x->frame_sent == x->frame_len && x->span_left == 0 && !next_span(c, res))
        return -1;
    if (x->frame_sent < x->frame_len) {
        struct iovec iov = {x->frame + x->frame_sent, x->frame_len - x->frame_sent};
        if ((r = put_iov(c, &iov, 1, !x->final_chunk, res)) < 0)
            return -1;
        x->frame_sent += (size_t)r;
        if (x->final_chunk && x->frame_sent == x->frame_len)
            x->body_done = true;
        return r;
    }
    off_t off = (off_t)x->span_off;
    if ((r = put_file(c, x->span_fd, &off, min_size(x->span_left, max), res)) < 0)
        return -1;
    x->span_off += r;
    x->span_left -= (uint64_t)r;
    if (x->span_left == 0 && x->chunked_out)
        x->crlf_due = true;
    return r;
}

static ssize_t send_read(struct conn *c, size_t max, enum send_result *res)
{
    struct exchange *x = c->x;
    struct iovec iov;
    ssize_t r;
    if (x->block_sent == x->block_len && !next_block(c, res))
        return -1;
    iov.iov_base = x->block + x->block_sent;
    iov.iov_len = min_size(x->block_len - x->block_sent, max);
    if ((r = put_iov(c, &iov, 1, false, res)) < 0)
        return -1;
    x->block_sent += (size_t)r;
    if (x->block_sent == x->block_len && x->body_len != ANSWER_SIZE_UNKNOWN &&
        x->body_sent >= x->body_len && (!x->chunked_out || x->final_chunk))
        x->body_done = true;
    return r;
}

/* An answer that waits (for its reader, or its next turn) lets the bytes held for TLS's next
 * record go: a client sees the head of an answer whose body is slow to come. */
static enum send_result pause_with(struct conn *c, enum send_result res)
{
    if ((res == SEND_WAIT || res == SEND_TURN) && !io_flush(c))
        return SEND_CUT;
    return res;
}

enum send_result send_some(struct conn *c)
{
    struct exchange *x = c->x;
    size_t budget = body_in_memory(c, x->ans) ? SEND_TURN_MAX_MEM : SEND_TURN_MAX;
    enum send_result res = SEND_DONE;
    if (!c->can_write)
        return SEND_AGAIN;
    if (!send_head(c, &budget, &res))
        return res;
    while (!x->body_done) {
        ssize_t r;
        if (budget == 0)
            return pause_with(c, SEND_TURN);
        if (x->ans->kind == ANSWER_READ) {
            r = send_read(c, budget, &res);
        } else if (x->ans->kind == ANSWER_SPAN) {
            r = send_span(c, budget, &res);
        } else if (x->body_sent >= x->ans->len) {
            x->body_done = true;
            break;
        } else {
            r = send_fixed(c, budget, &res);
            if (r > 0)
                x->body_sent += (uint64_t)r;
        }
        if (r < 0)
            return res == SEND_DONE && x->body_done ? SEND_DONE : pause_with(c, res);
        budget -= (size_t)r < budget ? (size_t)r : budget;
    }
    return SEND_DONE;
}

bool send_continue(struct conn *c)
{
    static const char line[] = "HTTP/1.1 100 Continue\r\n\r\n";
    struct iovec iov = {(void *)line, sizeof(line) - 1};
    if (c->ssl) /* held and flushed: a record with no room is written before the answer's */
        return io_sendv(c, &iov, 1, true) == (ssize_t)iov.iov_len && io_flush(c);
    ssize_t n = send(c->fd, line, sizeof(line) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    /* none sent (no room): the client sends its body after its own wait, as RFC 9110 lets it */
    return n < 0 || n == (ssize_t)sizeof(line) - 1;
}
