/* The request head parser (src/engine/h1.c): the input is the bytes of a connection, its first
 * byte the split point. The answer must be the same whether the bytes come at once, in two
 * pieces, or one at a time (a parse resumes where it stopped); a complete head lies within the
 * bytes and the limit, every field's name is a token ending at a colon and its value holds no
 * CR, LF or NUL; a refusal has a status and a one-line reason. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "engine/h1.h"

#define MAX_HEAD 2048

static bool same(const struct h1_request *a, const struct h1_request *b, enum h1_result r)
{
    if (r == H1_ERROR)
        return a->status == b->status && !strcmp(a->reason, b->reason);
    if (r == H1_MORE)
        return true;
    return a->head_len == b->head_len && a->n_fields == b->n_fields &&
           a->content_length == b->content_length && a->chunked == b->chunked &&
           a->keep_alive == b->keep_alive &&
           !memcmp(a->fields, b->fields, (size_t)a->n_fields * sizeof(a->fields[0]));
}

static void check_done(const struct h1_request *req, const char *buf, size_t len)
{
    if (req->head_len > len || req->head_len > MAX_HEAD || req->method.len == 0 ||
        req->target.len == 0 || (req->minor != 0 && req->minor != 1))
        abort();
    for (int i = 0; i < req->n_fields; i++) {
        const struct h1_field *f = &req->fields[i];
        if (f->name.len == 0 || f->name.at + f->name.len >= req->head_len ||
            buf[f->name.at + f->name.len] != ':' || f->value.at + f->value.len > req->head_len)
            abort();
        for (uint32_t k = 0; k < f->value.len; k++) {
            char c = buf[f->value.at + k];
            if (c == '\r' || c == '\n' || c == '\0')
                abort();
        }
    }
    if (req->chunked && req->content_length >= 0)
        abort(); /* both framings: the smuggling this parser exists to refuse */
}

struct sink {
    uint8_t digest; /* a cheap sum of what came out, in order */
    size_t n;
};

static void to_sink(void *arg, const char *data, size_t n)
{
    struct sink *s = arg;
    for (size_t i = 0; i < n; i++)
        s->digest = (uint8_t)(s->digest * 31 + (uint8_t)data[i]);
    s->n += n;
}

/* A chunked body after the head: at once and a byte at a time, the same data, end and answer;
 * never more data than the body's bytes. */
static void check_chunked(const char *body, size_t len, int eol)
{
    struct h1_chunked a, b;
    struct sink sa = {0}, sb = {0};
    enum h1_result ra, rb = H1_MORE;
    h1_chunked_init(&a, eol, 256);
    size_t ta = h1_chunked_feed(&a, body, len, to_sink, &sa, &ra);
    h1_chunked_init(&b, eol, 256);
    size_t tb = 0;
    while (tb < len && rb == H1_MORE)
        tb += h1_chunked_feed(&b, body + tb, 1, to_sink, &sb, &rb);
    if (ra != rb || ta != tb || sa.n != sb.n || sa.digest != sb.digest || sa.n > len || ta > len ||
        (ra == H1_ERROR && (a.status != b.status || !a.reason)))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t split = data[0];
    const char *buf = (const char *)data + 1;
    size_t len = size - 1;
    split = split < len ? split : len;

    struct h1_request whole, two, bytewise;
    h1_init(&whole);
    enum h1_result r = h1_parse(&whole, buf, len, MAX_HEAD);

    h1_init(&two);
    enum h1_result r2 = h1_parse(&two, buf, split, MAX_HEAD);
    if (r2 == H1_MORE)
        r2 = h1_parse(&two, buf, len, MAX_HEAD);

    h1_init(&bytewise);
    enum h1_result r3 = H1_MORE;
    for (size_t n = 1; n <= len && r3 == H1_MORE; n++)
        r3 = h1_parse(&bytewise, buf, n, MAX_HEAD);

    if (r != r2 || r != r3 || !same(&whole, &two, r) || !same(&whole, &bytewise, r))
        abort();
    if (r == H1_DONE)
        check_done(&whole, buf, len);
    if (r == H1_DONE && whole.chunked)
        check_chunked(buf + whole.head_len, len - whole.head_len, whole.eol);
    if (r == H1_ERROR && (whole.status < 400 || whole.status > 505 || !whole.reason ||
                          strchr(whole.reason, '\n') || whole.keep_alive))
        abort();
    return 0;
}
