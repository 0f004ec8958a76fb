/* The prefix of a purge (url.h, url_purge_prefix): a URL in normal form without userinfo, or a
 * scheme alone when the admin says it means every URL of that scheme; and which URLs are under
 * it (url_under_prefix). */
#include "url/url.h"
#include "base/parse.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

int url_purge_prefix(const char *in, bool all, char *out, size_t size, const char **why)
{
    size_t len = strlen(in);
    struct url_parts u;
    int status;
    parse_url(in, len, &u); /* its verdict aside: url_normalize judges the host */
    if (!url_scheme_is(&u, "http") && !url_scheme_is(&u, "https")) {
        *why = "prefix must be an http:// or https:// URL";
        return -1;
    }
    /* nothing after the scheme but slashes: no host, so every URL of the scheme */
    if (u.authority[strspn(u.authority, "/")] == '\0') {
        if (!all) {
            *why = "prefix names no host: it matches every URL (all=1, or arca purge --all, to "
                   "purge them all)";
            return -1;
        }
        snprintf(out, size, "%s", url_scheme_is(&u, "https") ? "https://" : "http://");
        return 0;
    }
    if (size < URL_BUF_SIZE(len)) {
        *why = "prefix too long";
        return -1;
    }
    if (url_normalize(in, len, out, size, &status, why) < 0)
        return -1;
    parse_url(out, strlen(out), &u); /* a login names no other objects: URLs are matched without */
    if (u.userinfo)
        memmove(out + (u.userinfo - out), u.host, strlen(u.host) + 1);
    return 0;
}

/* Compared without the userinfo of `url`: the prefix has none (url_purge_prefix). */
bool url_under_prefix(const char *url, const char *prefix, size_t len)
{
    struct url_parts u;
    size_t head;
    parse_url(url, strlen(url), &u); /* its verdict aside: a normal form's parts */
    head = u.scheme ? (size_t)(u.authority - url) : 0;
    if (!u.userinfo || len <= head)
        return strncmp(url, prefix, len) == 0;
    return strncmp(url, prefix, head) == 0 && strncmp(u.host, prefix + head, len - head) == 0;
}
