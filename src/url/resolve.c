/* url_resolve (resolve.h). */
#include "url/resolve.h"
#include "base/parse.h"

#include <ctype.h>
#include <stdbool.h>
#include <string.h>

/* What is written: out[size], n bytes so far (NUL-terminated), `over` once something did not
 * fit (then nothing more is written). */
struct out {
    char *p;
    size_t size, n;
    bool over;
};

static void put(struct out *o, const char *s, size_t len)
{
    if (o->over || len >= o->size - o->n) {
        o->over = true;
        return;
    }
    memcpy(o->p + o->n, s, len);
    o->n += len;
    o->p[o->n] = '\0';
}

/* Whether `ref` opens with a scheme and its ':' (RFC 3986 3.1: a letter, then letters, digits,
 * '+', '-' or '.'): "g:h", "mailto:x", "HTTPS://h". parse_url reads only the "://" form, and a
 * relative reference may not hold a ':' in its first segment (4.2), so a reference with one is
 * absolute even without "//". */
static bool has_scheme(const char *ref)
{
    const char *p = ref;
    if (!isalpha((unsigned char)*p))
        return false;
    while (isalnum((unsigned char)*p) || *p == '+' || *p == '-' || *p == '.')
        p++;
    return *p == ':';
}

/* 1 for a "." segment, 2 for "..", 0 for any other. */
static int dot_segment(const char *s, size_t len)
{
    if (len == 1 && s[0] == '.')
        return 1;
    return len == 2 && s[0] == '.' && s[1] == '.' ? 2 : 0;
}

/* RFC 3986 5.2.4 on a path of `len` bytes that is empty or opens with '/', in place: a "."
 * segment goes, a ".." takes the segment before it along ("/.." is "/": nothing climbs above
 * the root), and one at the end leaves its folder's '/' ("/a/b/.." is "/a/"). Only the
 * literal dots: "%2E" is the normal form's business (url_normalize). Returns the new length. */
static size_t remove_dot_segments(char *path, size_t len)
{
    size_t in = 0, out = 0;
    while (in < len) {
        size_t seg = in + 1, end = seg;
        while (end < len && path[end] != '/')
            end++;
        int dots = dot_segment(path + seg, end - seg);
        if (dots == 2)
            while (out > 0 && path[--out] != '/') /* back to the '/' before the last segment */
                ;
        if (dots && end == len)
            path[out++] = '/';
        if (!dots) {
            memmove(path + out, path + in, end - in);
            out += end - in;
        }
        in = end;
    }
    return out;
}

/* The target written so far read by parse_url, and its path's dot segments removed in place.
 * A target without "://" ("g:h", "mailto:x") has an opaque path: kept as it is. */
static void drop_dot_segments(struct out *o)
{
    struct url_parts u;
    if (o->over)
        return;
    parse_url(o->p, o->n, &u); /* its verdict aside: the host is its reader's to judge */
    if (!u.scheme)
        return;
    char *path = o->p + (u.path - o->p);
    size_t kept = remove_dot_segments(path, u.path_len);
    size_t tail = o->n - (size_t)(u.path + u.path_len - o->p);
    memmove(path + kept, path + u.path_len, tail + 1); /* the NUL too */
    o->n -= u.path_len - kept;
}

/* A reference with neither scheme nor authority (5.2.2): behind the base's "scheme://authority",
 * an empty path takes the base's path (and its query unless the reference gives one), an
 * absolute path stands alone, a relative one follows the base's path up to its last '/'
 * (5.2.3). What the reference brings is then split by parse_url as part of the target. */
static void resolve_relative(struct out *o, const struct url_parts *b, const char *ref)
{
    const char *path_end = b->path + b->path_len;
    put(o, b->scheme, (size_t)(b->path - b->scheme));
    if (!*ref || *ref == '?' || *ref == '#') {
        const char *upto = *ref != '?' && b->query ? b->query + b->query_len : path_end;
        put(o, b->path, (size_t)(upto - b->path));
        put(o, ref, strlen(ref));
        return; /* T.path is the base's as it is */
    }
    if (*ref != '/') {
        const char *slash = memrchr(b->path, '/', b->path_len);
        if (slash)
            put(o, b->path, (size_t)(slash + 1 - b->path));
        else
            put(o, "/", 1); /* an authority with an empty path: "/" + the reference */
    }
    put(o, ref, strlen(ref));
    drop_dot_segments(o);
}

int url_resolve(const char *base, const char *ref, char *out, size_t size)
{
    struct url_parts b;
    struct out o = {out, size, 0, false};
    if (size == 0)
        return -1;
    out[0] = '\0';
    if (parse_url(base, strlen(base), &b) != URL_OK ||
        (!url_scheme_is(&b, "http") && !url_scheme_is(&b, "https")))
        return -1;
    if (has_scheme(ref)) {
        put(&o, ref, strlen(ref));
        drop_dot_segments(&o);
    } else if (ref[0] == '/' && ref[1] == '/') {
        put(&o, b.scheme, b.scheme_len + 1); /* "http:" */
        put(&o, ref, strlen(ref));
        drop_dot_segments(&o);
    } else {
        resolve_relative(&o, &b, ref);
    }
    return o.over ? -1 : 0;
}
