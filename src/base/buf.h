/*
 * buf.h — a growing byte buffer for building pages and JSON, with HTML and URL escaping.
 *
 * Contract: appends never fail loudly; after an allocation failure the buffer is marked failed,
 * further appends do nothing, and the caller checks `failed` once, at the end. Every string that
 * came from outside (URLs, headers, reasons) goes into HTML through buf_html() or buf_query().
 */
#ifndef ARCA_BUF_H
#define ARCA_BUF_H

#include <stdbool.h>
#include <stddef.h>

struct buf {
    char *data; /* NUL-terminated while not failed */
    size_t len, cap;
    bool failed;
};

void buf_add(struct buf *b, const char *s);
void buf_addn(struct buf *b, const char *s, size_t n);
void buf_addf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* `s` with & < > " ' replaced by entities: safe in element text and quoted attributes. */
void buf_html(struct buf *b, const char *s);
/* `s` percent-encoded for a query parameter value (RFC 3986 unreserved bytes kept). */
void buf_query(struct buf *b, const char *s);
/* `s` percent-encoded for a URL path: the same, '/' kept. */
void buf_path(struct buf *b, const char *s);
/* `s` as a JSON string, quotes included (UTF-8 kept as it is, control bytes as \u00XX). */
void buf_json(struct buf *b, const char *s);
/* `s` as a Prometheus label value, quotes included: \ " and a newline escaped as the text format
 * wants (\\ \" \n), so a value can never end its label or its line. */
void buf_label(struct buf *b, const char *s);
/* Take the bytes (the caller frees them); the buffer is empty afterwards. NULL if failed. */
char *buf_take(struct buf *b, size_t *len);
void buf_free(struct buf *b);

#endif
