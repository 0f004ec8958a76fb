/* The remotes' paths (remote.h): a request checked at the edge, its upstream URL made, then the
 * fetch course; a pypi page's links rewritten on the way out. */
#include "fetch/remote.h"
#include "fetch/fetch.h"
#include "remote/pypi_page.h"
#include "remote/remote_kind.h"
#include "remote/remote_path.h"
#include "remote/remotes.h"
#include "rules/terms.h"
#include "stats/stats.h"
#include "store/store.h"
#include "base/parse.h"
#include "url/url.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define REMOTE_MAGIC 0x7e6d0169u

/* One request of a remote's path, from its first call to its done. */
struct remote_req {
    unsigned magic;
    struct conn *conn;
    struct request *req;
    const struct remote *remote;
    struct fetch_req *fetch;
    char *page_url; /* a pypi page's upstream URL: its links are resolved against it */
    bool refused;   /* its client refused before its path was read */
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

/* pypi_link_fn: a link below the remote's URL (the one the client asked by) as /NAME/PATH, one to
 * a file host as /NAME/+f/SCHEME/HOST[:PORT]/PATH (a pypi remote's), each after /+sha256/HEX
 * when the page gave the file's digest, for arca to check; one with a query (upstream's, where a
 * remote's query is arca's) or to any other host is left pointing there. */
static bool map_link(const char *abs, const char *sha256, char *out, size_t size, void *arg)
{
    struct remote_req *s = arg;
    const struct remote *r = s->remote;
    struct url_parts u;
    char digest[80] = "";
    int n;
    if (strchr(abs, '?') || parse_url(abs, strlen(abs), &u) != URL_OK || !u.host_len)
        return false;
    if (sha256 && r->kind == REMOTE_PYPI) /* arca's own segments are a pypi remote's */
        snprintf(digest, sizeof(digest), "/+sha256/%s", sha256);
    if (!strncmp(abs, r->url, r->url_len) && (!abs[r->url_len] || abs[r->url_len] == '/'))
        n = snprintf(out, size, "/%s%s%s", r->name, digest, abs + r->url_len);
    else if (r->kind == REMOTE_PYPI && remote_file_host(r, &u) && !u.userinfo) /* its /+f/ */
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
 * revalidated since is younger; an older one, or one of the same second, is revalidated first
 * (a 304 when it did not change). */
static void bound_by_release(const struct remote *r, const char *url, struct fetch_bounds *b)
{
    const char *path = url + r->url_len;
    char rel[REMOTE_PATH_MAX + 16], release[CONFIG_PARENT_MAX + REMOTE_PATH_MAX + 32];
    int64_t age;
    if (r->kind != REMOTE_APT || !remote_apt_release_of(path, strcspn(path, "?"), rel, sizeof(rel)))
        return;
    snprintf(release, sizeof(release), "%s%s", r->url, rel);
    if ((age = store_age(release)) < 0) {
        snprintf(release + strlen(release) - 9, sizeof(release) - strlen(release) + 9, "Release");
        age = store_age(release);
    }
    /* one made in the same second counts as older (`created` is in seconds): it may have come
     * just before the Release did. Its refresh makes it younger, unless that too is within the
     * same second: a few conditional requests in that second, never a stale index */
    b->has_max_age = age >= 0;
    b->max_age = age;
}

/* A pypi remote's page (remote_kind.h's REMOTE_PAGE; `r` the remote the URL lies under): answered
 * rewritten, in the form the client's Accept prefers. 0, or -1 out of memory. */
static int page_of(struct remote_req *s, const struct remote *r, const char *url,
                   struct fetch_bounds *b)
{
    const char *below = url + r->url_len;
    if (r->kind != REMOTE_PYPI ||
        remote_classify(REMOTE_PYPI, below, strcspn(below, "?")) != REMOTE_PAGE)
        return 0;
    if (!(s->page_url = strdup(url)))
        return -1;
    b->variant = wants_json(s->conn) ? REMOTE_JSON_KEY : NULL;
    b->rewrite = rewrite_page;
    b->rewrite_arg = s;
    return 0;
}

/* A client --allow-network refuses, where no rule could let it in, is refused before its path
 * is read, as on the fetch API: it learns nothing of the remote's file hosts nor of how arca
 * reads a path. */
static bool refused_before_path(struct remote_req *s, enum conn_result *ret)
{
    struct sockaddr_storage buf;
    const char *refusal = http_refused_outright(http_client(s->conn, &buf), NULL);
    if (!refusal)
        return false;
    atomic_fetch_add(&stats.refused, 1);
    s->refused = true;
    *ret = http_send_error(s->conn, HTTP_FORBIDDEN, "%s", refusal);
    return true;
}

static enum conn_result begin(struct remote_req *s, const char *rest)
{
    enum conn_result ret = CONN_CLOSE;
    size_t len = strcspn(rest, "?");
    const char *why, *query = rest[len] == '?' ? rest + len + 1 : NULL;
    struct remote_target t;
    int status;
    if (refused_before_path(s, &ret))
        return ret;
    if (remote_target_of(s->remote, rest, len, &t, &status, &why) < 0)
        return http_send_error(s->conn, (unsigned int)status, "%s", why);
    if (read_query(s, query, t.digest, &t.has_digest, &ret) < 0) {
        free(t.url);
        return ret;
    }
    struct fetch_bounds b = {
        .expect = t.has_digest ? t.digest : NULL, .max_size = INT64_MAX, .own_freshness = true};
    /* one URL, one kind: a remote whose URL lies under this one's (its longest) says what the
     * URL is, as it does for its terms (terms.c), whichever remote's path asked it */
    const struct remote *u = t.file_host ? NULL : remotes_of_url(t.url);
    if (u && page_of(s, u, t.url, &b) < 0) {
        free(t.url);
        return http_send_error(s->conn, HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    }
    if (u)
        bound_by_release(u, t.url, &b);
    return fetch_object_by(s->conn, s->req, t.url, &b, &s->fetch);
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
    const char *cache = s->refused ? "REFUSED" : fetch_finish(s->fetch, req, completed);
    req->state = NULL;
    assert(s->magic == REMOTE_MAGIC);
    count(s->remote, req, cache);
    s->magic = 0;
    free(s->page_url);
    free(s);
    return cache;
}
