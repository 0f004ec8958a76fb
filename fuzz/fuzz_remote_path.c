/* remote_path_check: every path a client sends after a remote's NAME. What it accepts never
 * leaves the base: decoded once, with every '\\' read as a '/' and every ';' parameter cut, no
 * segment is "." or "..". The kinds' readers take any path without reading past it. */
#include "fuzz.h"
#include "remote/remote_kind.h"

#include <string.h>

/* The decoded path, '\\' as '/': what an origin that decodes once could walk. */
static bool walks_up(const char *s, size_t len)
{
    char *d = malloc(len + 2), *seg;
    size_t n = 0;
    bool up = false;
    if (!d)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned v;
        if (s[i] == '%' && i + 2 < len + 0 && sscanf(s + i + 1, "%2x", &v) == 1) {
            d[n++] = (char)v;
            i += 2;
        } else {
            d[n++] = s[i];
        }
    }
    d[n] = '\0';
    for (size_t i = 0; i < n; i++)
        if (d[i] == '\\')
            d[i] = '/';
    for (char *p = d; (seg = strsep(&p, "/"));) {
        seg[strcspn(seg, ";")] = '\0';
        up |= !strcmp(seg, "..") || !strcmp(seg, ".");
    }
    free(d);
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
