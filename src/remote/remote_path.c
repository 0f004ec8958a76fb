/* What a remote's path names (remote_path.h). */
#include "remote/remote_path.h"
#include "remote/remote_kind.h"
#include "url/url.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Whether `host` (host_len bytes) and `port` (the URL's, the scheme's default `dflt` when none)
 * is `entry` ("host" or "host:port", as file-hosts and a URL write them). */
static bool same_host(const char *entry, const char *host, size_t host_len, int port, int dflt)
{
    char both[CONFIG_REGISTRY_NAME_MAX + 8];
    if (strlen(entry) == host_len && !strncasecmp(entry, host, host_len))
        return port == dflt;
    snprintf(both, sizeof(both), "%.*s:%d", (int)host_len, host, port);
    return !strcasecmp(entry, both);
}

bool remote_file_host(const struct remote *r, const struct url_parts *u)
{
    struct url_parts base;
    int port = url_port(u), dflt = url_scheme_is(u, "https") ? 443 : 80;
    parse_url(r->url, r->url_len, &base);
    if (base.host_len == u->host_len && !strncasecmp(base.host, u->host, u->host_len) &&
        url_port(&base) == port)
        return true;
    for (int i = 0; i < r->n_file_hosts; i++)
        if (same_host(r->file_hosts[i], u->host, u->host_len, port, dflt))
            return true;
    return base.host_len == 8 && !strncasecmp(base.host, "pypi.org", 8) &&
           same_host("files.pythonhosted.org", u->host, u->host_len, port, 443);
}

/* The next segment of *p (at its '/'), decoded into out[size] (pip sends a link's "+f" as "%2Bf",
 * its ':' as "%3A"); *p moves past it. False when there is none, or it does not fit. */
static bool take_segment(const char **p, char *out, size_t size)
{
    const char *seg = *p + 1;
    size_t n = strcspn(seg, "/");
    if (**p != '/' || n >= size)
        return false;
    memcpy(out, seg, n);
    out[n] = '\0';
    url_unescape(out);
    *p = seg + n;
    return true;
}

/* Whether the segment at *p is `word`, decoded: then *p moves past it. */
static bool take_word(const char **p, const char *word)
{
    const char *q = *p;
    char seg[16];
    if (!take_segment(&q, seg, sizeof(seg)) || strcmp(seg, word) != 0)
        return false;
    *p = q;
    return true;
}

/* The origin of "/+f/SCHEME/HOST[:PORT]" at *p (a page's link to a file host) into out[size],
 * *p moved past it: 1; 0 when the path does not begin so; -1 when it names a scheme or host it
 * may not (file_host). */
static int file_origin(const struct remote *r, const char **p, char *out, size_t size)
{
    char scheme[8], host[CONFIG_REGISTRY_NAME_MAX];
    struct url_parts u;
    int n;
    if (!take_word(p, "+f"))
        return 0;
    if (!take_segment(p, scheme, sizeof(scheme)) || !take_segment(p, host, sizeof(host)) ||
        (strcmp(scheme, "http") && strcmp(scheme, "https")))
        return -1;
    n = snprintf(out, size, "%s://%s", scheme, host);
    if (n <= 0 || (size_t)n >= size || parse_url(out, (size_t)n, &u) != URL_OK || !u.host_len ||
        u.userinfo || u.path_len || u.query || u.fragment)
        return -1;
    return remote_file_host(r, &u) ? 1 : -1;
}

/* The upstream URL of `path` (after NAME and arca's own segments) below `origin` (a file
 * host's, or "" for the remote's URL), normal form, into a new string *url: 0; else -1 with
 * *status and *why. */
static int upstream_url(const struct remote *r, const char *origin, const char *path, char **url,
                        int *status, const char **why)
{
    char raw[CONFIG_PARENT_MAX + REMOTE_PATH_MAX + 16], *normal;
    size_t n = (size_t)snprintf(raw, sizeof(raw), "%s%s", origin[0] ? origin : r->url, path);
    *status = 500;
    *why = "out of memory";
    if (n >= sizeof(raw) || !(normal = malloc(URL_BUF_SIZE(n))))
        return -1;
    if (url_normalize(raw, n, normal, URL_BUF_SIZE(n), status, why) < 0 ||
        (!origin[0] && (strncmp(normal, r->url, r->url_len) ||
                        (normal[r->url_len] && normal[r->url_len] != '/')))) {
        free(normal);
        *status = 400;
        *why = "bad path for the remote";
        return -1;
    }
    *url = normal;
    return 0;
}

int remote_target_of(const struct remote *r, const char *path, size_t len, struct remote_target *t,
                     int *status, const char **why)
{
    char copy[REMOTE_PATH_MAX + 1], hex[72], origin[CONFIG_REGISTRY_NAME_MAX + 16] = "";
    const char *p = copy;
    memset(t, 0, sizeof(*t));
    *status = 400;
    if (len > REMOTE_PATH_MAX) {
        *status = 414;
        *why = "path too long for a remote";
        return -1;
    }
    memcpy(copy, path, len);
    copy[len] = '\0';
    if (!remote_path_check(copy, len, why))
        return -1;
    if (r->kind != REMOTE_PYPI) /* arca's own segments are for its pages' links alone: another
                                 * kind's path is its upstream's, "+f" no way out of the base */
        return upstream_url(r, origin, p, &t->url, status, why);
    if (take_word(&p, "+sha256")) {
        if (!take_segment(&p, hex, sizeof(hex)) || parse_sha256_hex(hex, t->digest) < 0) {
            *why = "bad sha256: expected 64 hex digits";
            return -1;
        }
        t->has_digest = true;
    }
    int f = file_origin(r, &p, origin, sizeof(origin));
    t->file_host = f > 0;
    if (f < 0) {
        *status = 404;
        *why = "no such file host of the remote (its url's host, file-hosts)";
        return -1;
    }
    return upstream_url(r, origin, p, &t->url, status, why);
}

int remote_path_url(const char *url, char **out, char *err, size_t size)
{
    struct url_parts u;
    struct remote_target t;
    char normal[2048];
    const char *why;
    int status;
    if (parse_url(url, strlen(url), &u) != URL_OK || !u.path_len)
        return 0;
    const char *path = u.path + 1; /* past its '/' */
    size_t len = strcspn(path, "/?#");
    const struct remote *r = remotes_find(path, len);
    if (!r || (url_normalize(url, strlen(url), normal, sizeof(normal), &status, &why) == 0 &&
               remotes_of_url(normal)))
        return 0; /* no remote's NAME, or an upstream URL of a remote: itself */
    if (remote_target_of(r, path + len, strcspn(path + len, "?#"), &t, &status, &why) < 0) {
        snprintf(err, size, "remote %s: %d: %s", r->name, status, why);
        return -1;
    }
    *out = t.url;
    return 1;
}
