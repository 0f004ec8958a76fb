/* A request head, line by line: see h1.h for what is refused and why. */
#include "engine/h1.h"

#include <string.h>
#include <strings.h>

/* RFC 9110 5.6.2: tchar (DIGIT, ALPHA and "!#$%&'*+-.^_`|~"), a bit for each of the 128 ASCII
 * codes: every byte of a method and a header name is looked up, so a strchr each is dear. */
static bool is_tchar(unsigned char c)
{
    static const uint64_t tchar[2] = {0x03ff6cfa00000000ULL, 0x57ffffffc7fffffeULL};
    return c < 128 && ((tchar[c >> 6] >> (c & 63)) & 1);
}

bool h1_is_token(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!is_tchar((unsigned char)s[i]))
            return false;
    return n > 0;
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static enum h1_result refuse(struct h1_request *req, unsigned int status, const char *reason)
{
    req->status = status;
    req->reason = reason;
    req->keep_alive = false;
    return H1_ERROR;
}

void h1_init(struct h1_request *req)
{
    /* Not the fields: a line sets its own, and clearing 1,000 of them at every request cost a
     * warm hit 16 KB of memset (and as much of the cache). */
    memset(req, 0, offsetof(struct h1_request, fields));
    req->content_length = -1;
}

static struct h1_span span(size_t at, size_t end)
{
    return (struct h1_span){(uint32_t)at, (uint32_t)(end - at)};
}

bool h1_span_is(const char *buf, struct h1_span a, const char *s)
{
    return strlen(s) == a.len && strncasecmp(buf + a.at, s, a.len) == 0;
}

/* method SP request-target SP HTTP-version, in [at, end) (its line end excluded). */
static enum h1_result request_line(struct h1_request *req, const char *buf, size_t at, size_t end)
{
    size_t p = at;
    while (p < end && is_tchar((unsigned char)buf[p]))
        p++;
    if (p == at || p >= end || buf[p] != ' ')
        return refuse(req, 400, "malformed request line");
    req->method = span(at, p);
    size_t t = ++p;
    while (p < end && (unsigned char)buf[p] > ' ' && buf[p] != 0x7f)
        p++;
    if (p == t || p >= end || buf[p] != ' ')
        return refuse(req, 400, "malformed request line");
    req->target = span(t, p);
    p++;
    if (end - p != 8 || memcmp(buf + p, "HTTP/", 5) || buf[p + 6] != '.' || buf[p + 5] < '0' ||
        buf[p + 5] > '9' || buf[p + 7] < '0' || buf[p + 7] > '9')
        return refuse(req, 400, "malformed request line");
    if (buf[p + 5] != '1' || (buf[p + 7] != '0' && buf[p + 7] != '1'))
        return refuse(req, 505, "HTTP version not supported");
    req->minor = buf[p + 7] - '0';
    req->have_line = true;
    return H1_MORE;
}

/* Connection's options, a comma-separated list. */
static void connection_options(struct h1_request *req, const char *v, size_t len)
{
    size_t i = 0;
    while (i < len) {
        while (i < len && (is_ows(v[i]) || v[i] == ','))
            i++;
        size_t start = i;
        while (i < len && v[i] != ',' && !is_ows(v[i]))
            i++;
        if (i - start == 5 && !strncasecmp(v + start, "close", 5))
            req->close = true;
        else if (i - start == 10 && !strncasecmp(v + start, "keep-alive", 10))
            req->keep = true;
    }
}

/* Content-Length: 1*DIGIT; -2 when not digits, -3 beyond INT64_MAX. */
static int64_t content_length(const char *v, size_t len)
{
    int64_t n = 0;
    if (len == 0)
        return -2;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -2;
        if (n > (INT64_MAX - (v[i] - '0')) / 10)
            return -3;
        n = n * 10 + (v[i] - '0');
    }
    return n;
}

/* What the fields that frame the body and the connection say; `raw_end` is the value's end
 * before trailing whitespace (Transfer-Encoding must be exactly "chunked"). */
static enum h1_result known_field(struct h1_request *req, const char *buf, const struct h1_field *f,
                                  size_t raw_end)
{
    const char *v = buf + f->value.at;
    if (h1_span_is(buf, f->name, "content-length")) {
        req->lengths++;
        req->content_length = content_length(v, f->value.len);
    } else if (h1_span_is(buf, f->name, "transfer-encoding")) {
        req->encodings++;
        req->chunked = raw_end - f->value.at == 7 && !strncasecmp(v, "chunked", 7);
    } else if (h1_span_is(buf, f->name, "host")) {
        req->hosts++;
    } else if (h1_span_is(buf, f->name, "connection")) {
        connection_options(req, v, f->value.len);
    } else if (h1_span_is(buf, f->name, "expect")) {
        req->expect_continue = h1_span_is(buf, f->value, "100-continue");
    }
    return H1_MORE;
}

/* name ":" OWS value OWS, in [at, end). */
static enum h1_result field_line(struct h1_request *req, const char *buf, size_t at, size_t end)
{
    size_t p = at;
    if (is_ows(buf[at]))
        return refuse(req, 400, "folded header line");
    while (p < end && is_tchar((unsigned char)buf[p]))
        p++;
    if (p == at || p >= end || buf[p] != ':')
        return refuse(req, 400, "invalid header name");
    if (req->n_fields == H1_MAX_FIELDS)
        return refuse(req, 431, "too many header lines");
    struct h1_field *f = &req->fields[req->n_fields++];
    f->name = span(at, p);
    p++;
    while (p < end && is_ows(buf[p]))
        p++;
    size_t v = p, last = p;
    for (; p < end; p++) {
        unsigned char c = (unsigned char)buf[p];
        if (c == '\r')
            return refuse(req, 400, "CR in a header line");
        /* DEL is let through: it ends no line and frames nothing, and clients have sent it in
         * a User-Agent (the access log escapes it) */
        if (c < ' ' && c != '\t')
            return refuse(req, 400, "control character in a header line");
        if (!is_ows((char)c))
            last = p + 1;
    }
    f->value = span(v, last);
    return known_field(req, buf, f, end);
}

/* The head is complete: what frames the body, and whether the connection goes on. */
static enum h1_result framing(struct h1_request *req)
{
    if (req->lengths > 1)
        return refuse(req, 400, "more than one Content-Length");
    if (req->encodings > 1)
        return refuse(req, 400, "more than one Transfer-Encoding");
    if (req->lengths && req->encodings)
        return refuse(req, 400, "Content-Length and Transfer-Encoding");
    if (req->encodings && req->minor == 0)
        return refuse(req, 400, "Transfer-Encoding in HTTP/1.0");
    if (req->encodings && !req->chunked)
        return refuse(req, 501, "Transfer-Encoding other than chunked");
    if (req->content_length == -2)
        return refuse(req, 400, "Content-Length is not a number");
    if (req->content_length == -3)
        return refuse(req, 413, "Content-Length too large");
    if (req->minor == 1 && req->hosts != 1)
        return refuse(req, 400, req->hosts ? "more than one Host" : "no Host header");
    req->expect_continue = req->expect_continue && req->minor == 1;
    req->keep_alive = !req->close && (req->minor == 1 || req->keep);
    return H1_DONE;
}

/* One whole line, [at, lf) with lf its LF. */
static enum h1_result one_line(struct h1_request *req, const char *buf, size_t at, size_t lf)
{
    int eol = lf > at && buf[lf - 1] == '\r' ? 2 : 1;
    size_t end = lf + 1 - (size_t)eol;
    if (memchr(buf + at, '\0', lf - at))
        return refuse(req, 400,
                      req->have_line ? "NUL in a header line" : "NUL in the request line");
    if (!req->have_line) {
        if (end == at) /* an empty line before the request line: skipped */
            return H1_MORE;
        if (memchr(buf + at, '\r', end - at))
            return refuse(req, 400, "CR in the request line");
        req->eol = eol;
        return request_line(req, buf, at, end);
    }
    if (eol != req->eol)
        return refuse(req, 400, "mixed line ends");
    if (end == at) {
        req->head_len = lf + 1;
        return framing(req);
    }
    return field_line(req, buf, at, end);
}

enum h1_result h1_parse(struct h1_request *req, const char *buf, size_t len, size_t max_head)
{
    size_t limit = len < max_head ? len : max_head;
    while (req->pos < limit) {
        const char *lf = memchr(buf + req->pos, '\n', limit - req->pos);
        if (!lf)
            break;
        size_t at = req->pos;
        req->pos = (size_t)(lf - buf) + 1;
        enum h1_result r = one_line(req, buf, at, (size_t)(lf - buf));
        if (r != H1_MORE)
            return r;
    }
    if (len >= max_head)
        return req->have_line ? refuse(req, 431, "request header too large")
                              : refuse(req, 414, "request line too long");
    return H1_MORE;
}

const char *h1_field(const struct h1_request *req, const char *buf, const char *name, size_t *len)
{
    for (int i = 0; i < req->n_fields; i++)
        if (h1_span_is(buf, req->fields[i].name, name)) {
            *len = req->fields[i].value.len;
            return buf + req->fields[i].value.at;
        }
    return NULL;
}

/* --- chunked bodies ------------------------------------------------------------------------ */

enum {
    CH_SIZE,       /* hex digits of a chunk's size */
    CH_EXT,        /* after the size: ";ext" up to the line's end */
    CH_SIZE_LF,    /* the size line's CR was read */
    CH_DATA,       /* `left` bytes of data */
    CH_DATA_END,   /* the CR(LF) or LF after the data */
    CH_DATA_LF,    /* its CR was read */
    CH_TRAILER,    /* a trailer line, or the blank line that ends the body */
    CH_TRAILER_LF, /* a trailer line's CR was read */
    CH_DONE,
    CH_ERROR,
};

void h1_chunked_init(struct h1_chunked *c, int eol, size_t max_trailer)
{
    memset(c, 0, sizeof(*c));
    c->eol = eol;
    c->max_trailer = max_trailer;
    c->state = CH_SIZE;
}

static int chunk_refuse(struct h1_chunked *c, unsigned int status, const char *reason)
{
    c->status = status;
    c->reason = reason;
    return CH_ERROR;
}

static int hex_value(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* A line's end where one must be: a CR (its LF next) in CRLF bodies, an LF in LF ones. */
static int line_end(struct h1_chunked *c, char ch, int after_cr, int next)
{
    if (ch == '\r' && c->eol == 2)
        return after_cr;
    if (ch == '\n' && c->eol == 1)
        return next;
    return chunk_refuse(c, 400, "malformed chunked body");
}

/* The size line is over: the data, or the trailers after the last chunk. */
static int size_line_read(struct h1_chunked *c)
{
    if (c->left > 0)
        return CH_DATA;
    c->line = 0;
    c->in_name = true;
    return CH_TRAILER;
}

static int size_step(struct h1_chunked *c, char ch)
{
    int v = hex_value(ch);
    if (v >= 0) {
        if (c->left > (uint64_t)INT64_MAX >> 4)
            return chunk_refuse(c, 413, "chunk too large");
        c->left = c->left << 4 | (uint64_t)v;
        c->digits++;
        return CH_SIZE;
    }
    if (c->digits == 0)
        return chunk_refuse(c, 400, "malformed chunked body");
    if (ch == ';')
        return CH_EXT;
    int next = line_end(c, ch, CH_SIZE_LF, CH_DATA);
    return next == CH_DATA ? size_line_read(c) : next;
}

static int ext_step(struct h1_chunked *c, char ch)
{
    if (ch == '\r' || ch == '\n') {
        int next = line_end(c, ch, CH_SIZE_LF, CH_DATA);
        return next == CH_DATA ? size_line_read(c) : next;
    }
    if ((unsigned char)ch < ' ' && ch != '\t')
        return chunk_refuse(c, 400, "malformed chunked body");
    return CH_EXT;
}

/* A trailer line's end: the body's end after a blank line, else the next line. */
static int trailer_line_read(struct h1_chunked *c)
{
    if (c->line == 0)
        return CH_DONE;
    c->line = 0;
    c->in_name = true;
    return CH_TRAILER;
}

/* A trailer line is checked as a header line is (a token, a colon, a value without NUL, bare
 * CR or other control characters), then dropped. */
static int trailer_step(struct h1_chunked *c, char ch)
{
    if (++c->trailer > c->max_trailer)
        return chunk_refuse(c, 431, "trailers too large");
    if (ch == '\r' || ch == '\n') {
        if (c->line > 0 && c->in_name)
            return chunk_refuse(c, 400, "malformed trailer line");
        int next = line_end(c, ch, CH_TRAILER_LF, CH_TRAILER);
        return next == CH_TRAILER ? trailer_line_read(c) : next;
    }
    c->line++;
    if (c->in_name && ch == ':' && c->line > 1)
        c->in_name = false;
    else if (c->in_name ? !is_tchar((unsigned char)ch) : ((unsigned char)ch < ' ' && ch != '\t'))
        return chunk_refuse(c, 400, "malformed trailer line");
    return CH_TRAILER;
}

/* One byte outside a chunk's data; the next state. */
static int chunk_step(struct h1_chunked *c, char ch)
{
    switch (c->state) {
    case CH_SIZE:
        return size_step(c, ch);
    case CH_EXT:
        return ext_step(c, ch);
    case CH_SIZE_LF:
        return ch == '\n' ? size_line_read(c) : chunk_refuse(c, 400, "malformed chunked body");
    case CH_DATA_END:
        return line_end(c, ch, CH_DATA_LF, CH_SIZE);
    case CH_DATA_LF:
        return ch == '\n' ? CH_SIZE : chunk_refuse(c, 400, "malformed chunked body");
    case CH_TRAILER:
        return trailer_step(c, ch);
    case CH_TRAILER_LF:
        return ch == '\n' ? trailer_line_read(c) : chunk_refuse(c, 400, "malformed trailer line");
    }
    return chunk_refuse(c, 400, "malformed chunked body");
}

size_t h1_chunked_feed(struct h1_chunked *c, const char *in, size_t len,
                       void (*out)(void *arg, const char *data, size_t n), void *arg,
                       enum h1_result *result)
{
    size_t i = 0;
    while (i < len && c->state != CH_DONE && c->state != CH_ERROR) {
        if (c->state == CH_DATA) {
            size_t n = len - i < c->left ? len - i : (size_t)c->left;
            out(arg, in + i, n);
            c->left -= n;
            i += n;
            if (c->left == 0)
                c->state = CH_DATA_END;
            continue;
        }
        int next = chunk_step(c, in[i++]);
        if (next == CH_SIZE && c->state != CH_SIZE)
            c->digits = 0; /* a new chunk's size line */
        c->state = next;
    }
    *result = c->state == CH_DONE ? H1_DONE : c->state == CH_ERROR ? H1_ERROR : H1_MORE;
    return i;
}
