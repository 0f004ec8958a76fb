/* The prefix of a purge (url.h, url_purge_prefix): a URL in normal form, or a scheme alone when
 * the admin says it means every URL of that scheme. */
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
    return url_normalize(in, len, out, size, &status, why);
}
