/* Answers (handler.h, answer.h): a body and header lines, counted references. */
#include "engine/answer.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* The record zeroed, the `extra` bytes after it not: their maker writes them. */
static struct answer *answer_new(enum answer_kind kind, size_t extra)
{
    if (extra > SIZE_MAX - sizeof(struct answer))
        return NULL;
    struct answer *a = malloc(sizeof(*a) + extra);
    if (!a)
        return NULL;
    memset(a, 0, sizeof(*a));
    atomic_init(&a->refs, 1);
    a->kind = kind;
    a->fd = -1;
    return a;
}

struct answer *answer_room(size_t len, char **room)
{
    struct answer *a = len < SIZE_MAX ? answer_new(ANSWER_MEM, len + 1) : NULL;
    if (!a)
        return NULL;
    *room = (char *)(a + 1); /* the bytes follow the record, in the same allocation */
    (*room)[len] = '\0';
    a->data = *room;
    a->len = len;
    return a;
}

struct answer *answer_copy(const void *data, size_t len)
{
    char *room;
    struct answer *a = answer_room(len, &room);
    if (a)
        memcpy(room, data, len);
    return a;
}

struct answer *answer_owned(void *data, size_t len)
{
    return answer_borrowed(data, len, free, data);
}

struct answer *answer_static(const void *data, size_t len)
{
    return answer_borrowed(data, len, NULL, NULL);
}

struct answer *answer_borrowed(const void *data, size_t len, void (*release)(void *), void *cls)
{
    struct answer *a = answer_new(ANSWER_MEM, 0);
    if (!a)
        return NULL;
    a->data = data;
    a->len = len;
    a->release = release;
    a->release_cls = cls;
    return a;
}

struct answer *answer_file(int fd, int64_t off, uint64_t len)
{
    struct answer *a = answer_new(ANSWER_FILE, 0);
    if (!a)
        return NULL;
    a->fd = fd;
    a->off = off;
    a->len = len;
    return a;
}

struct answer *answer_file_mapped(int fd, int64_t off, uint64_t len, const void *view,
                                  void (*release)(void *), void *cls)
{
    struct answer *a = answer_file(fd, off, len);
    if (!a)
        return NULL;
    a->data = view;
    a->release = release;
    a->release_cls = cls;
    return a;
}

struct answer *answer_read(uint64_t size, size_t block, answer_reader reader, void *cls)
{
    struct answer *a = answer_new(ANSWER_READ, 0);
    if (!a)
        return NULL;
    a->len = size;
    a->block = block ? block : 1;
    a->reader = reader;
    a->reader_cls = cls;
    return a;
}

struct answer *answer_spans(uint64_t size, answer_spanner spanner, void *cls)
{
    struct answer *a = answer_new(ANSWER_SPAN, 0);
    if (!a)
        return NULL;
    a->len = size;
    a->spanner = spanner;
    a->reader_cls = cls;
    return a;
}

void answer_trailer(struct answer *a, answer_trailer_fn fn, void *cls)
{
    a->trailer = fn;
    a->trailer_cls = cls;
}

/* The bytes a header's name may not hold (RFC 9110's separators, blanks and line ends): a
 * table, not strcspn(), which builds one of its own on each call (a hit's answer asks this of a
 * dozen short names). */
static const bool separator[256] = {
    ['('] = true,  [')'] = true,  ['<'] = true,  ['>'] = true, ['@'] = true, [','] = true,
    [';'] = true,  [':'] = true,  ['\\'] = true, ['"'] = true, ['/'] = true, ['['] = true,
    [']'] = true,  ['?'] = true,  ['='] = true,  ['{'] = true, ['}'] = true, [' '] = true,
    ['\t'] = true, ['\r'] = true, ['\n'] = true};

/* A name is a token, a value holds no CR, LF or NUL: nothing added can split the head. */
static bool safe_line(const char *name, size_t nl, const char *value, size_t vl)
{
    if (nl == 0)
        return false;
    for (size_t i = 0; i < nl; i++)
        if (separator[(unsigned char)name[i]])
            return false;
    return !memchr(value, '\r', vl) && !memchr(value, '\n', vl);
}

bool answer_header(struct answer *a, const char *name, const char *value)
{
    size_t nl = strlen(name), vl = strlen(value), need = nl + vl + 4;
    if (!safe_line(name, nl, value, vl))
        return false;
    if (a->headers_len + need > a->headers_cap) {
        /* a hit's headers are about 400 bytes: one allocation */
        size_t cap = a->headers_cap ? a->headers_cap * 2 : 512;
        char *h;
        while (cap < a->headers_len + need)
            cap *= 2;
        if (!(h = realloc(a->headers, cap)))
            return false;
        a->headers = h;
        a->headers_cap = cap;
    }
    memcpy(a->headers + a->headers_len, name, nl);
    memcpy(a->headers + a->headers_len + nl, ": ", 2);
    memcpy(a->headers + a->headers_len + nl + 2, value, vl);
    memcpy(a->headers + a->headers_len + nl + 2 + vl, "\r\n", 2);
    a->headers_len += need;
    if (nl == 10 && !strcasecmp(name, "Connection") && !strcasecmp(value, "close"))
        a->close = true;
    return true;
}

const char *answer_header_value(const struct answer *a, const char *name, char *out, size_t size)
{
    size_t n = strlen(name);
    for (const char *l = a->headers, *end = a->headers + a->headers_len; l && l < end;) {
        const char *eol = memchr(l, '\r', (size_t)(end - l));
        if (!eol)
            break;
        if ((size_t)(eol - l) > n + 1 && !strncasecmp(l, name, n) && l[n] == ':' && size > 0) {
            size_t len = (size_t)(eol - l) - n - 2;
            if (len >= size)
                len = size - 1;
            memcpy(out, l + n + 2, len);
            out[len] = '\0';
            return out;
        }
        l = eol + 2;
    }
    return NULL;
}

void answer_hold(struct answer *a)
{
    atomic_fetch_add(&a->refs, 1);
}

void answer_put(struct answer *a)
{
    if (!a || atomic_fetch_sub(&a->refs, 1) != 1)
        return;
    if (a->release)
        a->release(a->release_cls);
    if (a->fd >= 0)
        close(a->fd);
    free(a->headers);
    free(a);
}
