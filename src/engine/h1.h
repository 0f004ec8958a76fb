/*
 * h1.h — a strict HTTP/1.1 request head parser (RFC 9112), written for arca's own engine.
 *
 * Contract: h1_parse() reads the request line and header lines at the start of a buffer that
 * grows between calls (the bytes read so far of one connection's next request) and says: more
 * bytes are needed, the head is complete (its length, its fields as offsets into the buffer, and
 * what frames the body), or the request is refused (a status and a one-line reason). A refused
 * request's connection must be closed after the answer: nothing after its head may be read as a
 * request. A parse resumes where the previous call stopped, so a head that arrives a byte at a
 * time costs one pass, not one per byte. Nothing is allocated; the buffer is never written; a
 * buffer moved between calls is fine (offsets, not pointers).
 *
 * What is refused, so that a proxy in front never reads one request where arca reads two
 * (request smuggling), nor a header line arca reads differently:
 *   - a NUL anywhere in the head, a bare CR, a control character in a field value (400; HTAB
 *     and DEL are taken);
 *   - lines not all ended the same way, CRLF or a lone LF (400);
 *   - a folded line (obs-fold), whitespace before a colon, a name that is not a token (400);
 *   - two Content-Length lines, two Transfer-Encoding lines, both together, Transfer-Encoding
 *     in HTTP/1.0, a Content-Length that is not digits (400), or one beyond 2^63-1 (413);
 *   - a Transfer-Encoding other than exactly "chunked", in any case (501);
 *   - an HTTP/1.1 request without Host, or with two (400);
 *   - a version other than HTTP/1.0 and HTTP/1.1: 505 for HTTP/x.y, else 400;
 *   - a head beyond `max_head` bytes, or more than H1_MAX_FIELDS lines (431); a request line
 *     beyond it (414).
 * Empty lines before the request line are skipped (RFC 9112 2.2). Field values are trimmed of
 * the whitespace around them.
 *
 * Threads: none of its own; a parser is one connection's.
 */
#ifndef ARCA_H1_H
#define ARCA_H1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define H1_MAX_FIELDS 1000

enum h1_result {
    H1_MORE,  /* the head is not complete: call again with more bytes */
    H1_DONE,  /* the head is complete: the request's fields are set */
    H1_ERROR, /* refused: status and reason are set; answer and close */
};

/* A slice of the buffer given to h1_parse(). */
struct h1_span {
    uint32_t at, len;
};

struct h1_field {
    struct h1_span name, value;
};

struct h1_request {
    /* set once H1_DONE */
    struct h1_span method, target;
    int minor; /* HTTP/1.<minor>: 0 or 1 */
    int n_fields;
    int64_t content_length; /* -1: none */
    bool chunked;           /* Transfer-Encoding: chunked */
    bool keep_alive;        /* the connection may carry another request after this one */
    bool expect_continue;   /* Expect: 100-continue, in HTTP/1.1 */
    size_t head_len;        /* bytes of the head, its blank line (and skipped ones) included */
    /* set once H1_ERROR */
    unsigned int status;
    const char *reason; /* one line, static */
    /* the parse's own */
    size_t pos;     /* the next line begins here */
    int eol;        /* bytes of every line's end: 0 unknown yet, 1 (LF) or 2 (CRLF) */
    bool have_line; /* the request line is read */
    int hosts, lengths, encodings;
    bool close, keep; /* Connection: close / keep-alive seen */
    /* the first n_fields are set; last, so that h1_init leaves the rest (16 KB) alone */
    struct h1_field fields[H1_MAX_FIELDS];
};

/* Ready for a request's head (again, for the next request of a connection). */
void h1_init(struct h1_request *req);

/* Go on with `buf` (the request's bytes from its first, `len` of them so far). */
enum h1_result h1_parse(struct h1_request *req, const char *buf, size_t len, size_t max_head);

/* The value of the first field named `name` (any case), or NULL; *len its length. */
const char *h1_field(const struct h1_request *req, const char *buf, const char *name, size_t *len);

/* Whether s[0..n) is a token (RFC 9110 5.6.2): a header name, a method. */
bool h1_is_token(const char *s, size_t n);

/* Whether `a` (a span of buf) equals the NUL-terminated `s` in any case. */
bool h1_span_is(const char *buf, struct h1_span a, const char *s);

/* A chunked request body (RFC 9112 7.1), decoded as its bytes come: chunk sizes in hex, chunk
 * extensions skipped, the data handed on, trailer lines checked as header lines are and
 * dropped. Every line must end as the request head's lines did (`eol` of its h1_request).
 * Refused: a size that is not hex or beyond 2^63-1, a line that does not end where it must, a
 * NUL, a bare CR, a malformed trailer line (400), trailers beyond `max_trailer` bytes (431). */
struct h1_chunked {
    int state;
    int eol;        /* the head's: 1 (LF) or 2 (CRLF) */
    uint64_t left;  /* of the chunk being read, or its size being read */
    int digits;     /* of the size so far */
    size_t trailer; /* trailer bytes so far */
    size_t max_trailer;
    size_t line;  /* bytes of the trailer line being read */
    bool in_name; /* its name is being read */
    unsigned int status;
    const char *reason;
};

void h1_chunked_init(struct h1_chunked *c, int eol, size_t max_trailer);

/* Decode up to `len` bytes of `in`, handing each run of data to out(arg, data, n). Returns
 * the bytes taken: all of `len` but when the body ended (H1_DONE, the rest is the next
 * request's) or was refused (H1_ERROR). *result says which, or H1_MORE. */
size_t h1_chunked_feed(struct h1_chunked *c, const char *in, size_t len,
                       void (*out)(void *arg, const char *data, size_t n), void *arg,
                       enum h1_result *result);

#endif
