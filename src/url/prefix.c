/* The prefix of a purge (url.h, url_purge_prefix): a URL in normal form without userinfo, or a
 * scheme alone when the admin says it means every URL of that scheme; and which URLs are under
 * it (url_under_prefix). */
#include "url/url.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* "http://" or "https://" at the head of `in`: the scheme's length with "://", else 0. */
static size_t scheme_of(const char *in)
{
    if (!strncasecmp(in, "http://", 7))
        return 7;
    if (!strncasecmp(in, "https://", 8))
        return 8;
    return 0;
}

/* The '@' that ends the userinfo of the authority starting at `host`, NULL when it has none. */
static const char *userinfo_end(const char *host)
{
    size_t n = strcspn(host, "/?#");
    const char *at = NULL;
    for (const char *p = host; p < host + n; p++)
        if (*p == '@')
            at = p;
    return at;
}

int url_purge_prefix(const char *in, bool all, char *out, size_t size, const char **why)
{
    size_t len = strlen(in), scheme = scheme_of(in);
    int status;
    if (!scheme) {
        *why = "prefix must be an http:// or https:// URL";
        return -1;
    }
    /* nothing after the scheme but slashes: no host, so every URL of the scheme */
    if (in[scheme + strspn(in + scheme, "/")] == '\0') {
        if (!all) {
            *why = "prefix names no host: it matches every URL (all=1, or arca purge --all, to "
                   "purge them all)";
            return -1;
        }
        snprintf(out, size, "%s", scheme == 7 ? "http://" : "https://");
        return 0;
    }
    if (size < URL_BUF_SIZE(len)) {
        *why = "prefix too long";
        return -1;
    }
    if (url_normalize(in, len, out, size, &status, why) < 0)
        return -1;
    char *host = out + scheme; /* a login names no other objects: URLs are matched without */
    const char *at = userinfo_end(host);
    if (at)
        memmove(host, at + 1, strlen(at + 1) + 1);
    return 0;
}

bool url_under_prefix(const char *url, const char *prefix, size_t len)
{
    const char *sep = strstr(url, "://");
    size_t head = sep ? (size_t)(sep + 3 - url) : 0;
    const char *at = sep ? userinfo_end(url + head) : NULL;
    if (!at || len <= head)
        return strncmp(url, prefix, len) == 0;
    return strncmp(url, prefix, head) == 0 && strncmp(at + 1, prefix + head, len - head) == 0;
}
