/* remote_path_check: every path a client sends after a remote's NAME. What it accepts never
 * leaves the base: decoded once, and again up to three times (an upstream that decodes twice),
 * with every '\\' read as a '/' and every ';' parameter cut, no segment is "." or "..". The
 * kinds' readers take any path without reading past it. */
#include "fuzz.h"
#include "remote/remote_kind.h"

#include <string.h>

/* s decoded once into d (n bytes): its length. */
static size_t decode(const char *s, size_t len, char *d)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned v;
        if (s[i] == '%' && i + 2 < len && sscanf(s + i + 1, "%2x", &v) == 1) {
            d[n++] = (char)v;
            i += 2;
        } else {
            d[n++] = s[i];
        }
    }
    return n;
}

/* Whether s (n bytes, '\\' read as '/') has a "." or ".." segment. */
static bool has_dots(char *s, size_t n)
{
    char *d = strndup(s, n), *seg, *p = d;
    bool up = false;
    if (!d)
        return false;
    for (size_t i = 0; d[i]; i++)
        if (d[i] == '\\')
            d[i] = '/';
    while ((seg = strsep(&p, "/"))) {
        seg[strcspn(seg, ";")] = '\0';
        up |= !strcmp(seg, "..") || !strcmp(seg, ".");
    }
    free(d);
    return up;
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
