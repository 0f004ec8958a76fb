/* The remotes' paths (remote.h): a request checked at the edge, its upstream URL made, then the
 * fetch course; a pypi page's links rewritten on the way out. */
#include "fetch/remote.h"
#include "fetch/fetch.h"
#include "remote/pypi_page.h"
#include "remote/remote_kind.h"
#include "remote/remotes.h"
#include "rules/terms.h"
#include "store/store.h"
#include "base/parse.h"
#include "url/url.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define REMOTE_MAGIC 0x7e6d0169u
/* The longest path after NAME taken: longer than any repository's file names. */
#define PATH_MAX_LEN 4096

/* One request of a remote's path, from its first call to its done. */
struct remote_req {
    unsigned magic;
    struct conn *conn;
    struct request *req;
    const struct remote *remote;
    struct fetch_req *fetch;
    char *page_url; /* a pypi page's upstream URL: its links are resolved against it */
};

/* No route of its own, and no remote of that NAME: 404, and a hint at the one most callers
 * want. A proxy-form target of another scheme (ftp://) is a 400. */
static enum conn_result not_found(struct conn *c, struct request *req)
{
    struct url_parts u;
    parse_url(req->uri, strlen(req->uri), &u);
    if (u.scheme)
        return http_send_error(c, HTTP_BAD_REQUEST, "arca fetches only http:// and https:// URLs");
    return http_send_error(c, HTTP_NOT_FOUND, "no such endpoint (try /api/v1/fetch/?url=URL)");
}

/* --- a pypi page's links ------------------------------------------------------------------- */

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

/* Whether links to u's host reach it through the remote (/NAME/+f/): the remote's own host, a
 * file-hosts entry, and for pypi.org its files' host, which every page of it links to. */
static bool file_host(const struct remote *r, const struct url_parts *u)
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

/* pypi_link_fn: a link below the remote's URL as /NAME/PATH, one to a file host as
 * /NAME/+f/SCHEME/HOST[:PORT]/PATH, each after /+sha256/HEX when the page gave the file's digest,
 * for arca to check; one with a query (upstream's, where a remote's query is arca's) or to any
 * other host is left pointing there. */
static bool map_link(const char *abs, const char *sha256, char *out, size_t size, void *arg)
{
    struct remote_req *s = arg;
    const struct remote *r = s->remote;
    struct url_parts u;
    char digest[80] = "";
    int n;
    if (strchr(abs, '?') || parse_url(abs, strlen(abs), &u) != URL_OK || !u.host_len)
        return false;
    if (sha256)
        snprintf(digest, sizeof(digest), "/+sha256/%s", sha256);
    if (!strncmp(abs, r->url, r->url_len) && (!abs[r->url_len] || abs[r->url_len] == '/'))
        n = snprintf(out, size, "/%s%s%s", r->name, digest, abs + r->url_len);
    else if (file_host(r, &u) && !u.userinfo)
        n = snprintf(out, size, "/%s%s/+f/%.*s/%.*s%.*s", r->name, digest, (int)u.scheme_len,
                     u.scheme, (int)u.authority_len, u.authority, (int)u.path_len, u.path);
    else
        return false;
    return n > 0 && (size_t)n < size;
}

/* fetch_rewrite_fn: the page as its Content-Type says it is written. */
static char *rewrite_page(void *arg, const char *body, size_t len, const char *type,
                          size_t *out_len)
{
    struct remote_req *s = arg;
    assert(s->magic == REMOTE_MAGIC && s->page_url);
    if (strstr(type, "json"))
        return pypi_rewrite_json(body, len, s->page_url, map_link, s, out_len);
    return pypi_rewrite_html(body, len, s->page_url, map_link, s, out_len);
}

/* A media range's q (RFC 9110 12.4.2) in an Accept line: 1 unless it says less. */
static double q_of(const char *params, size_t len)
{
    for (const char *p = params; p && p < params + len; p = memchr(p, ';', params + len - p)) {
        p++;
        p += strspn(p, " \t");
        if (!strncasecmp(p, "q=", 2))
            return atof(p + 2);
    }
    return 1.0;
}

struct forms {
    double json, html;
};

/* Accept's media ranges: how much the client wants PEP 691's JSON and the HTML forms. */
static void accept_line(void *cls, const char *value)
{
    struct forms *f = cls;
    for (const char *p = value; *p;) {
        p += strspn(p, " \t,");
        size_t len = strcspn(p, ","), type = strcspn(p, ";,");
        double q = q_of(p + type, len - type);
        while (type > 0 && (p[type - 1] == ' ' || p[type - 1] == '\t'))
            type--;
        if ((type == 35 && !strncasecmp(p, "application/vnd.pypi.simple.v1+json", 35)) ||
            (type == 39 && !strncasecmp(p, "application/vnd.pypi.simple.latest+json", 39)))
            f->json = q > f->json ? q : f->json;
        else if ((type == 35 && !strncasecmp(p, "application/vnd.pypi.simple.v1+html", 35)) ||
                 (type == 9 && !strncasecmp(p, "text/html", 9)))
            f->html = q > f->html ? q : f->html;
        p += len;
    }
}

/* Whether the client's Accept prefers PEP 691's JSON to the HTML forms (a tie is HTML's, which
 * every client reads). */
static bool wants_json(struct conn *c)
{
    struct forms f = {0, 0};
    conn_each_header(c, "Accept", accept_line, &f);
    return f.json > 0 && f.json > f.html;
}

/* --- the request ----------------------------------------------------------------------------- */

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
    return file_host(r, &u) ? 1 : -1;
}

/* The upstream URL of `path` (the request's, after NAME and arca's own segments, without its
 * query) below `origin` (a file host's, or "" for the remote's URL), normal form, into *url: 0;
 * else a refusal queued into *ret: -1. */
static int upstream_url(struct remote_req *s, const char *origin, const char *path, char **url,
                        enum conn_result *ret)
{
    const struct remote *r = s->remote;
    char raw[CONFIG_PARENT_MAX + PATH_MAX_LEN + 16], *normal;
    const char *why;
    int status;
    size_t n = (size_t)snprintf(raw, sizeof(raw), "%s%s", origin[0] ? origin : r->url, path);
    if (n >= sizeof(raw) || !(normal = malloc(URL_BUF_SIZE(n)))) {
        *ret = http_send_error(s->conn, HTTP_INTERNAL_SERVER_ERROR, "out of memory");
        return -1;
    }
    if (url_normalize(raw, n, normal, URL_BUF_SIZE(n), &status, &why) < 0 ||
        (!origin[0] && (strncmp(normal, r->url, r->url_len) ||
                        (normal[r->url_len] && normal[r->url_len] != '/')))) {
        free(normal);
        *ret = http_send_error(s->conn, HTTP_BAD_REQUEST, "bad path for remote %s", r->name);
        return -1;
    }
    *url = normal;
    return 0;
}

/* arca's own segments before a path: "/+sha256/HEX" (the sha256 a page gave for the file: in the
 * path, where pip, which reads the first "sha256=" anywhere in a link, does not see it), then
 * "/+f/SCHEME/HOST[:PORT]" (file_origin). *path moves past them: 0; else a refusal queued into
 * *ret: -1. */
static int read_prefix(struct remote_req *s, const char **path, uint8_t expect[32], bool *has,
                       char *origin, size_t size, enum conn_result *ret)
{
    char hex[72];
    int f;
    origin[0] = '\0';
    if (take_word(path, "+sha256")) {
        if (!take_segment(path, hex, sizeof(hex)) || parse_sha256_hex(hex, expect) < 0) {
            *ret = http_send_error(s->conn, HTTP_BAD_REQUEST, "bad sha256: expected 64 hex digits");
            return -1;
        }
        *has = true;
    }
    if ((f = file_origin(s->remote, path, origin, size)) < 0) {
        *ret = http_send_error(s->conn, HTTP_NOT_FOUND,
                               "no such file host of remote %s (its url's host, file-hosts)",
                               s->remote->name);
        return -1;
    }
    return 0;
}

/* The query, arca's own: sha256= alone (the fetch API's: the bytes answered must have it). */
static int read_query(struct remote_req *s, const char *query, uint8_t expect[32], bool *has,
                      enum conn_result *ret)
{
    const char *sha = conn_query(s->conn, "sha256");
    if (!query || !*query)
        return 0;
    if (!sha || strchr(query, '&') || strncmp(query, "sha256=", 7)) {
        *ret = http_send_error(s->conn, HTTP_BAD_REQUEST,
                               "a remote's query is arca's: sha256=HEX alone (not sent upstream)");
        return -1;
    }
    if (parse_sha256_hex(sha, expect) < 0) {
        *ret = http_send_error(s->conn, HTTP_BAD_REQUEST, "bad sha256: expected 64 hex digits");
        return -1;
    }
    *has = true;
    return 0;
}

/* apt: an index is no older than the Release file of its suite kept now (its InRelease, else
 * its Release): a client that just read a new InRelease must not get the index it replaced,
 * whose hashes differ ("Hash Sum mismatch"). The bound is that file's age: an index fetched or
 * revalidated since (or in the same second) is younger; an older one is revalidated first (a
 * 304 when it did not change). */
static void bound_by_release(const struct remote *r, const char *url, struct fetch_bounds *b)
{
    const char *path = url + r->url_len;
    char rel[PATH_MAX_LEN + 16], release[CONFIG_PARENT_MAX + PATH_MAX_LEN + 32];
    int64_t age;
    if (r->kind != REMOTE_APT || !remote_apt_release_of(path, strcspn(path, "?"), rel, sizeof(rel)))
        return;
    snprintf(release, sizeof(release), "%s%s", r->url, rel);
    if ((age = store_age(release)) < 0) {
        snprintf(release + strlen(release) - 9, sizeof(release) - strlen(release) + 9, "Release");
        age = store_age(release);
    }
    /* one made within the same second counts as younger: `created` is in seconds, and a bound
     * of the age itself would refresh every index fetched with its Release, at every request */
    b->has_max_age = age >= 0;
    b->max_age = age + 1;
}

/* A pypi remote's page (remote_kind.h's REMOTE_PAGE): answered rewritten, in the form the
 * client's Accept prefers. 0, or -1 out of memory. */
static int page_of(struct remote_req *s, const char *url, struct fetch_bounds *b)
{
    const char *below = url + s->remote->url_len;
    if (s->remote->kind != REMOTE_PYPI ||
        remote_classify(REMOTE_PYPI, below, strcspn(below, "?")) != REMOTE_PAGE)
        return 0;
    if (!(s->page_url = strdup(url)))
        return -1;
    b->variant = wants_json(s->conn) ? REMOTE_JSON_KEY : NULL;
    b->rewrite = rewrite_page;
    b->rewrite_arg = s;
    return 0;
}

static enum conn_result begin(struct remote_req *s, const char *rest)
{
    enum conn_result ret = CONN_CLOSE;
    size_t len = strcspn(rest, "?");
    const char *why, *query = rest[len] == '?' ? rest + len + 1 : NULL, *p;
    char path[PATH_MAX_LEN + 1], origin[CONFIG_REGISTRY_NAME_MAX + 16], *url;
    uint8_t expect[32];
    bool has_expect = false;
    if (len > PATH_MAX_LEN)
        return http_send_error(s->conn, HTTP_URI_TOO_LONG, "path too long for a remote");
    memcpy(path, rest, len);
    path[len] = '\0';
    if (!remote_path_check(path, len, &why))
        return http_send_error(s->conn, HTTP_BAD_REQUEST, "%s", why);
    p = path;
    if (read_prefix(s, &p, expect, &has_expect, origin, sizeof(origin), &ret) < 0 ||
        read_query(s, query, expect, &has_expect, &ret) < 0 ||
        upstream_url(s, origin, p, &url, &ret) < 0)
        return ret;
    struct fetch_bounds b = {.expect = has_expect ? expect : NULL, .max_size = INT64_MAX};
    if (!origin[0] && page_of(s, url, &b) < 0) {
        free(url);
        return http_send_error(s->conn, HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    }
    bound_by_release(s->remote, url, &b);
    return fetch_object_by(s->conn, s->req, url, &b, &s->fetch);
}

enum conn_result remote_route(struct conn *c, struct request *req, const char *rest)
{
    struct remote_req *s = req->state;
    const char *name = req->uri + 1;
    size_t len = strcspn(name, "/?");
    const struct remote *r;
    (void)rest; /* decoded: the path is checked as sent */
    assert(http_handling(c, req));
    if (s) {
        assert(s->magic == REMOTE_MAGIC);
        return fetch_resume(s->fetch);
    }
    if (req->uri[0] != '/' || !(r = remotes_find(name, len)))
        return not_found(c, req);
    if (!(s = calloc(1, sizeof(*s))))
        return CONN_CLOSE;
    s->magic = REMOTE_MAGIC;
    s->conn = c;
    s->req = req;
    s->remote = r;
    req->state = s;
    atomic_fetch_add(&r->counters->requests, 1);
    return begin(s, name + len);
}

/* The remote's counters by how the answer was served: a 2xx's bytes, from the store, renewed by
 * a 304, from an expired copy. */
static void count(const struct remote *r, const struct request *req, const char *cache)
{
    struct remote_counters *n = r->counters;
    if (req->status < 200 || req->status >= 300 || !cache)
        return;
    atomic_fetch_add(&n->bytes, req->bytes);
    if (!strcmp(cache, "HIT"))
        atomic_fetch_add(&n->hits, 1);
    else if (!strcmp(cache, "REVALIDATED"))
        atomic_fetch_add(&n->revalidated, 1);
    else if (!strcmp(cache, "STALE"))
        atomic_fetch_add(&n->stale, 1);
}

const char *remote_done(struct request *req, bool completed)
{
    struct remote_req *s = req->state;
    if (!s) /* no remote of that NAME: no fetch either */
        return NULL;
    const char *cache = fetch_finish(s->fetch, req, completed);
    req->state = NULL;
    assert(s->magic == REMOTE_MAGIC);
    count(s->remote, req, cache);
    s->magic = 0;
    free(s->page_url);
    free(s);
    return cache;
}
