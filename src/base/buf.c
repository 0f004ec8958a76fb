#include "base/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool reserve(struct buf *b, size_t more)
{
    size_t cap;
    char *p;
    if (b->failed)
        return false;
    if (b->len + more + 1 <= b->cap)
        return true;
    cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more + 1)
        cap *= 2;
    if (!(p = realloc(b->data, cap))) {
        b->failed = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

void buf_addn(struct buf *b, const char *s, size_t n)
{
    if (!reserve(b, n))
        return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void buf_add(struct buf *b, const char *s)
{
    buf_addn(b, s, strlen(s));
}

void buf_addf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void buf_html(struct buf *b, const char *s)
{
    for (const char *run = s;; s++) {
        const char *entity = NULL;
        switch (*s) {
        case '&':
            entity = "&amp;";
            break;
        case '<':
            entity = "&lt;";
            break;
        case '>':
            entity = "&gt;";
            break;
        case '"':
            entity = "&quot;";
            break;
        case '\'':
            entity = "&#39;";
            break;
        case '\0':
            buf_addn(b, run, (size_t)(s - run));
            return;
        default:
            continue;
        }
        buf_addn(b, run, (size_t)(s - run));
        buf_add(b, entity);
        run = s + 1;
    }
}

/* Percent-encode every byte but RFC 3986's unreserved ones and those in `keep`. */
static void percent(struct buf *b, const char *s, const char *keep)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
            strchr("-._~", ch) || (keep[0] && strchr(keep, ch))) {
            buf_addn(b, s, 1);
        } else {
            char esc[3] = {'%', hex[ch >> 4], hex[ch & 15]};
            buf_addn(b, esc, 3);
        }
    }
}

void buf_query(struct buf *b, const char *s)
{
    percent(b, s, "");
}

void buf_path(struct buf *b, const char *s)
{
    percent(b, s, "/");
}

void buf_json(struct buf *b, const char *s)
{
    buf_add(b, "\"");
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            buf_addf(b, "\\%c", ch);
        else if (ch < 0x20 || ch == 0x7f)
            buf_addf(b, "\\u%04x", ch);
        else
            buf_addn(b, s, 1);
    }
    buf_add(b, "\"");
}

void buf_label(struct buf *b, const char *s)
{
    buf_add(b, "\"");
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            buf_addf(b, "\\%c", *s);
        else if (*s == '\n')
            buf_add(b, "\\n");
        else
            buf_addn(b, s, 1);
    }
    buf_add(b, "\"");
}

char *buf_take(struct buf *b, size_t *len)
{
    char *data = b->failed ? NULL : b->data;
    if (!data)
        data = b->failed ? NULL : calloc(1, 1);
    if (b->failed)
        free(b->data);
    if (len)
        *len = data ? b->len : 0;
    *b = (struct buf){0};
    return data;
}

void buf_free(struct buf *b)
{
    free(b->data);
    *b = (struct buf){0};
}
