/* remote_path_check: every path a client sends after a remote's NAME. What it accepts never
 * leaves the base: decoded once, and again up to three times (an upstream that decodes twice),
 * with every '\\' read as a '/' and every ';' parameter cut, no segment is "." or "..". The
 * kinds' readers take any path without reading past it. */
#include "fuzz.h"
#include "remote/remote_kind.h"

#include <string.h>

static int hex(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* s (len bytes) decoded once into d: its length. A broken escape stays as it is. */
static size_t decode(const char *s, size_t len, char *d)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '%' && i + 2 < len && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
            d[n++] = (char)(hex(s[i + 1]) * 16 + hex(s[i + 2]));
            i += 2;
        } else {
            d[n++] = s[i];
        }
    }
    return n;
}

/* Whether s (n bytes, '\\' read as '/', a ';' parameter cut) has a "." or ".." segment. */
static bool has_dots(const char *s, size_t n)
{
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && s[i] != '/' && s[i] != '\\')
            continue;
        const char *seg = s + start, *semi = memchr(seg, ';', i - start);
        size_t len = semi ? (size_t)(semi - seg) : i - start;
        if ((len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.'))
            return true;
        start = i + 1;
    }
    return false;
}

/* The path decoded once, then again up to three times: what an origin that decodes once, or
 * one behind a proxy that decodes too, could walk. */
static bool walks_up(const char *s, size_t len)
{
    char *a = malloc(len + 1), *b = malloc(len + 1), *t;
    size_t n = len;
    bool up = false;
    if (a && b) {
        memcpy(a, s, len);
        for (int round = 0; round < 4 && !up; round++) {
            n = decode(a, n, b);
            up = has_dots(b, n);
            t = a, a = b, b = t;
        }
    }
    free(a);
    free(b);
    return up;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_string(data, size), out[512];
    const char *why;
    uint8_t digest[32];
    if (!s)
        return 0;
    size_t len = strlen(s);
    if (remote_path_check(s, len, &why) && walks_up(s, len))
        abort();
    for (int k = REMOTE_FILES; k <= REMOTE_GO; k++) {
        (void)remote_classify((enum remote_kind)k, s, len);
        (void)remote_named_digest((enum remote_kind)k, s, len, digest);
    }
    (void)remote_apt_release_of(s, len, out, sizeof(out));
    free(s);
    return 0;
}
