#include "http/http.h"
#include "log/access_log.h"
#include "stats/latency.h"
#include "base/clock.h"
#include "base/parse.h"
#include "http/http_internal.h"
#include "http/http_limits.h"
#include "http/proxy_target.h"
#include "engine/engine.h"
#include "log/log.h"
#include "rules/policy.h"
#include "rules/rules.h"
#include "stats/stats.h"
#include "upstream/upstream.h"

#include <assert.h>
#include <jansson.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* The engine closes connections beyond --max-connections and this many more at once without a
 * word; below that, those over our limits are accepted so that they can be told why. */
#define HARD_CAP_MARGIN 64

const struct config *http_cfg;

/* This thread is one of the engine's workers: it has begun a request. A connection stays on its
 * thread, so its body readers and completion run where this is set. */
static _Thread_local bool pool_thread;
static const struct route *routes; /* http_start's: what is served */
/* "Via: ...\r\n", every answer of a proxied request's (http_start writes it, before any worker
 * runs). */
static char via_lines[320];

/* A shared response is never changed: other threads may be sending it. A plain hit that took
 * one just before draining began keeps its connection open; draining's grace period covers it
 * (requests that begin while draining never take a shared answer: see fetch.c). */
/* The engine keeps the status and adds what every answer of a request carries (Via for a
 * proxied one, Connection: close while draining, the lines its route's dress_shared gives): a
 * shared answer is never changed. */
enum conn_result http_queue_shared(struct conn *c, unsigned int status, struct answer *a)
{
    struct request *req = engine_request(c);
    if (req && req->dress_shared)
        engine_set_lines(c, req->dress_shared(req, a));
    return engine_queue(c, status, a) ? CONN_GO_ON : CONN_CLOSE;
}

/* `a` queued as built, our reference dropped. */
static enum conn_result queue_built(struct conn *c, unsigned int status, struct answer *a)
{
    enum conn_result ret;
    if (!a)
        return CONN_CLOSE;
    ret = engine_queue(c, status, a) ? CONN_GO_ON : CONN_CLOSE;
    answer_put(a);
    return ret;
}

enum conn_result http_queue(struct conn *c, unsigned int status, struct answer *a)
{
    struct request *req = a ? engine_request(c) : NULL;
    if (req && req->dress)
        a = req->dress(req, status, a);
    return queue_built(c, status, a);
}

bool http_on_pool(void)
{
    return pool_thread;
}

bool http_handling(struct conn *c, const struct request *req)
{
    return engine_on_thread(c) && engine_request(c) == req;
}

bool http_is_head(const struct request *req)
{
    return !strcmp(req->method, "HEAD");
}

struct answer *http_owned_response(const char *type, char *body, size_t len)
{
    struct answer *a = body ? answer_owned(body, len) : NULL;
    if (!a) {
        free(body);
        return NULL;
    }
    answer_header(a, "Content-Type", type);
    return a;
}

enum conn_result http_send_owned(struct conn *c, unsigned int status, const char *type, char *body,
                                 size_t len)
{
    if (!body)
        return http_send_error(c, HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    return http_queue(c, status, http_owned_response(type, body, len));
}

enum conn_result http_send_private(struct conn *c, unsigned int status, const char *type,
                                   char *body, size_t len)
{
    struct answer *a;
    if (!body)
        return http_send_error(c, HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    if ((a = http_owned_response(type, body, len)))
        answer_header(a, "Cache-Control", "private");
    return http_queue(c, status, a);
}

enum conn_result http_send_text(struct conn *c, unsigned int status, const char *type,
                                const char *body)
{
    struct answer *a = answer_copy(body, strlen(body));
    if (a)
        answer_header(a, "Content-Type", type);
    return http_queue(c, status, a);
}

static struct answer *verror_response(const char *fmt, va_list ap)
{
    char line[512];
    struct answer *r;
    int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
    if (n < 0)
        n = 0;
    if (n > (int)sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    line[n] = '\n';
    r = answer_copy(line, (size_t)n + 1);
    if (r) { /* a reason may echo what a client or an origin sent: never to be sniffed as HTML */
        answer_header(r, "Content-Type", "text/plain; charset=utf-8");
        answer_header(r, "X-Content-Type-Options", "nosniff");
        /* the same line where a child arca reads it before any body (docs/API.md, "Errors"):
         * printable ASCII only, a header value holds nothing else */
        for (int i = 0; i < n; i++)
            if ((unsigned char)line[i] < 0x20 || (unsigned char)line[i] > 0x7e)
                line[i] = '?';
        line[n] = '\0';
        answer_header(r, "Arca-Error", line);
    }
    return r;
}

struct answer *http_error_response(const char *fmt, ...)
{
    struct answer *r;
    va_list ap;
    va_start(ap, fmt);
    r = verror_response(fmt, ap);
    va_end(ap);
    return r;
}

enum conn_result http_send_error(struct conn *c, unsigned int status, const char *fmt, ...)
{
    struct answer *r;
    va_list ap;
    va_start(ap, fmt);
    r = verror_response(fmt, ap);
    va_end(ap);
    return http_queue(c, status, r);
}

/* The last XFF_LINES X-Forwarded-For lines, in order. The proxy appends its line last and the
 * client is the rightmost entry that is not a trusted proxy, so the rightmost lines are the ones
 * read, however many a client sends before them. */
#define XFF_LINES 16
struct xff {
    const char *ring[XFF_LINES]; /* line i is ring[i % XFF_LINES] */
    unsigned int n;              /* lines seen */
};

static void collect_xff(void *cls, const char *value)
{
    struct xff *x = cls;
    x->ring[x->n++ % XFF_LINES] = value;
}

const struct sockaddr *http_client(struct conn *c, struct sockaddr_storage *buf)
{
    const struct sockaddr *peer = conn_peer(c);
    struct xff x = {.n = 0};
    const char *lines[XFF_LINES + 1];
    int n = 0;
    if (!peer)
        return NULL;
    if (!policy_trusted_proxy(peer))
        return peer; /* the common case: no header is looked at */
    conn_each_header(c, "X-Forwarded-For", collect_xff, &x);
    /* The lines left of those kept read as one empty entry: reached only when every kept line
     * is trusted proxies' own, it makes the client unknown rather than a proxy. */
    if (x.n > XFF_LINES)
        lines[n++] = "";
    for (unsigned int i = x.n > XFF_LINES ? x.n - XFF_LINES : 0; i < x.n; i++)
        lines[n++] = x.ring[i % XFF_LINES];
    return policy_forwarded_client(peer, lines, n, buf);
}

const char *http_fetch_refusal(struct conn *c)
{
    struct sockaddr_storage buf;
    return http_client_refusal(http_client(c, &buf));
}

const char *http_client_refusal(const struct sockaddr *client)
{
    if (!client)
        return "client address unknown: the trusted proxy's X-Forwarded-For names no readable "
               "address";
    return policy_client_allowed(client) ? NULL : policy_client_refusal();
}

const char *http_refused_outright(const struct sockaddr *client, bool *option_refuses)
{
    const char *refusal = http_client_refusal(client);
    if (option_refuses)
        *option_refuses = refusal != NULL;
    return refusal && (!client || !rules_widen_any()) ? refusal : NULL;
}

bool http_sees_urls(struct conn *c)
{
    struct sockaddr_storage buf;
    const struct sockaddr *client = http_client(c, &buf);
    return client && policy_ui_allowed(client);
}

bool http_may_list(struct conn *c, enum conn_result *ret)
{
    if (http_sees_urls(c))
        return true;
    *ret = http_send_error(c, HTTP_FORBIDDEN,
                           "client address not allowed to see cached URLs (--allow-network, "
                           "--ui-network)");
    return false;
}

static const struct route *route_for(const struct request *req);

/* Refuse on a request's first call; the connection closes after the answer. */
static enum conn_result refuse_early(struct conn *c, struct request *req, unsigned int status,
                                     const char *reason)
{
    struct answer *r = http_error_response("%s", reason);
    const struct route *rt = r && req && !req->proxied ? route_for(req) : NULL;
    if (r)
        answer_header(r, "Connection", "close");
    if (rt && rt->dress) /* its route's words, for a refusal at its head too */
        r = rt->dress(req, status, r);
    return queue_built(c, status, r);
}

static void copy_text(char *out, size_t size, const char *s)
{
    size_t n = strnlen(s, size - 1);
    memcpy(out, s, n);
    out[n] = '\0';
}

/* What the access log needs of the request, kept while it lives (copied without snprintf: two
 * of those were 4 % of a warm hit's instructions). */
static void note_request(struct request *req, const char *method, const char *version)
{
    copy_text(req->method, sizeof(req->method), method);
    copy_text(req->version, sizeof(req->version), version);
}

/* A route's path against a request's path of `len` bytes, as sent (never decoded: an encoded
 * character in a route's name is not that route, so a front proxy's rule on "/metrics" or
 * "/api/" sees what arca routes on). */
static bool route_matches(const struct route *rt, const char *url, size_t len)
{
    size_t n = strlen(rt->path);
    bool prefix = len >= n && !memcmp(url, rt->path, n);
    switch (rt->match) {
    case ROUTE_EXACT:
        return prefix && len == n;
    case ROUTE_SLASH:
        return prefix && (len == n || (len == n + 1 && url[n] == '/'));
    case ROUTE_PREFIX:
        return prefix;
    case ROUTE_TREE:
        return prefix && (len == n || url[n] == '/');
    case ROUTE_PROXY:
    case ROUTE_CONNECT:
        return false; /* only route_for's */
    }
    return false;
}

static const struct route *route_match_n(const struct route *table, const char *url, size_t len)
{
    for (const struct route *rt = table; rt->path; rt++)
        if (route_matches(rt, url, len))
            return rt;
    return NULL;
}

const struct route *http_route_match(const struct route *table, const char *url)
{
    return route_match_n(table, url, strlen(url));
}

/* An absolute-form target's path and query ("" when it has neither). */
static const char *origin_form(const char *target)
{
    struct url_parts u;
    parse_url(target, strlen(target), &u); /* its authority is proxy_target_of's */
    return u.scheme ? u.path : target + strlen(target);
}

/* The request's route: CONNECT's for a CONNECT, the proxy's for a proxied request, else the
 * first whose path matches the request's path as sent (req->uri up to its query). */
static const struct route *route_for(const struct request *req)
{
    enum route_match kind = !strcmp(req->method, "CONNECT") ? ROUTE_CONNECT : ROUTE_PROXY;
    if (kind == ROUTE_PROXY && !req->proxied)
        return route_match_n(routes, req->uri, strcspn(req->uri, "?"));
    for (const struct route *rt = routes; rt->path; rt++)
        if (rt->match == kind)
            return rt;
    return NULL;
}

/* Why an origin-form path (arca's own endpoints, or none) is refused, or NULL: an encoded '/'
 * would make a path that a front proxy's rules and arca's routes read as two different ones. */
static const char *own_path_refusal(const char *uri)
{
    size_t len = strcspn(uri, "?");
    for (const char *p = uri; (p = memchr(p, '%', len - (size_t)(p - uri))) != NULL; p++)
        if ((size_t)(p - uri) + 2 < len && p[1] == '2' && (p[2] == 'F' || p[2] == 'f'))
            return "an encoded / (%2F) in the request path";
    return NULL;
}

/* Why a request target is refused whatever it asks for, or NULL: an encoded NUL ends the string
 * it is decoded into, so that "/metrics%00.css" would be read as "/metrics". */
static const char *target_refusal(const char *target)
{
    return strstr(target, "%00")
               ? "an encoded NUL (%00), a control character, in the request target"
               : NULL;
}

/* `methods` is a list as Allow gives it: "GET, HEAD". */
bool http_route_allows(const struct route *rt, const char *method)
{
    size_t n = strlen(method);
    if (!rt->methods)
        return true;
    for (const char *m = rt->methods; *m; m += strspn(m, ", ")) {
        size_t len = strcspn(m, ", ");
        if (len == n && !strncmp(m, method, n))
            return true;
        m += len;
    }
    return false;
}

static enum conn_result not_allowed(struct conn *c, const char *method, const char *allowed,
                                    bool close)
{
    struct answer *r = http_error_response("method %s not allowed", method);
    if (r) {
        answer_header(r, "Allow", allowed);
        if (close)
            answer_header(r, "Connection", "close");
    }
    return http_queue(c, HTTP_METHOD_NOT_ALLOWED, r);
}

/* Route one request: the table's first route whose path matches, if it takes the method. The
 * route is kept: later calls (after a resumed connection) and the completion use it. */
static enum conn_result route(struct conn *c, struct request *req, const char *url,
                              const char *method)
{
    size_t n;
    if (!req->route && !(req->route = route_for(req)))
        return http_send_error(c, HTTP_NOT_FOUND, "no such endpoint");
    if (!http_route_allows(req->route, method))
        return not_allowed(c, method, req->route->methods, false);
    assert(http_handling(c, req));
    req->dress = req->route->dress;
    req->dress_shared = req->route->dress_shared;
    /* matched as sent, so the decoded path starts with the route's path too (it has no '%') */
    n = strlen(req->route->path);
    assert(!strncmp(url, req->route->path, n));
    return req->route->handler(c, req, url + n);
}

enum conn_result http_route_as_origin(struct conn *c, struct request *req)
{
    const char *rest = origin_form(req->uri), *why;
    size_t len = strlen(rest);
    assert(http_handling(c, req) && req->proxied && !req->state);
    /* in place: the path and query are shorter than the URL by its scheme and authority */
    memmove(req->uri + (rest[0] != '/'), rest, len + 1);
    req->uri[0] = '/';
    req->proxied = false;
    engine_set_lines(c, NULL); /* arca's own route answers, not a proxy */
    req->route = NULL;
    if ((why = own_path_refusal(req->uri)) != NULL)
        return http_send_error(c, HTTP_BAD_REQUEST, "%s", why);
    return route(c, req, engine_path(c), engine_method(c));
}

/* A request with a body its route cannot take is refused at its head (405, 413, or its route's
 * own refusal: 401, 403), so that no byte of it is read and no 100 Continue invites it; the
 * connection closes after the answer. A chunked body says no size: the engine refuses it (413) once
 * it outgrows the route's limit. Any other body is due within --header-timeout, as its head was. */
static void check_body(struct conn *c, struct request *req)
{
    int64_t size = engine_body_size(c);
    const char *method = engine_method(c);
    const struct route *rt;
    char reason[96];
    if (size == 0)
        return;
    rt = req->route = route_for(req);
    if (rt && rt->match == ROUTE_CONNECT) { /* what follows its head is the tunnel's, or nothing */
        refuse_early(c, req, HTTP_BAD_REQUEST, "CONNECT takes no request body");
        return;
    }
    if (rt && !http_route_allows(rt, method)) {
        not_allowed(c, method, rt->methods, true);
        return;
    }
    if (rt && rt->upload && rt->admit && !rt->admit(c))
        return; /* refused (the engine closes the connection, the body unread) */
    if (rt && rt->upload && size > 0 && (uint64_t)size > rt->body_max)
        snprintf(reason, sizeof(reason), "request body larger than %zu bytes", rt->body_max);
    else if ((!rt || !rt->upload) && size > HTTP_DROP_BODY_MAX)
        snprintf(reason, sizeof(reason), "this endpoint takes no request body");
    else {
        if (size < 0) /* chunked: the engine counts it as it comes */
            engine_limit_body(c, rt && rt->upload ? rt->body_max : HTTP_DROP_BODY_MAX);
        limits_body_due(engine_conn_ctx(c));
        req->body_due = true;
        return;
    }
    atomic_fetch_add(&stats.limited, 1);
    refuse_early(c, req, HTTP_CONTENT_TOO_LARGE, reason);
}

/* A request body goes to its route's upload, if it has one and takes the method; other bodies
 * are read and dropped. */
static void take_upload(struct request *req, const char *method, const char *upload, size_t size)
{
    const struct route *rt = req->route ? req->route : route_for(req);
    if (!rt || !rt->upload || !http_route_allows(rt, method))
        return;
    req->route = rt; /* its done lets go of what the upload kept */
    rt->upload(req, upload, size);
}

/* A load balancer's poll: GET or HEAD of a polled route's path (the request line as sent, its
 * query included, so "?x" is no poll), answered 200 or 503. Anything else on that path (a POST,
 * a DELETE, a smuggling attempt arca refused) is logged like any request. */
static bool health_check(const struct request *req)
{
    /* most requests are routed, and most routes are not polled; one refused at its head (a
     * 503 of --max-connections) has no route yet */
    const struct route *rt =
        !req->route || req->route->polled ? http_route_match(routes, req->uri) : NULL;
    return rt && rt->polled && (!strcmp(req->method, "GET") || !strcmp(req->method, "HEAD")) &&
           (req->status == HTTP_OK || req->status == HTTP_SERVICE_UNAVAILABLE);
}

/* A fetch's times, by its outcome (latency.h): to its answer's head and to its end. */
static void time_request(struct conn *c, const struct request *req, const char *cache,
                         int64_t now_us)
{
    int outcome = latency_outcome_of(cache);
    int64_t queued = engine_answer_queued_us(c);
    if (outcome < 0)
        return; /* not a fetch: a page, the API, a tunnel */
    latency_record((enum latency_outcome)outcome, (queued ? queued : now_us) - req->start_us,
                   now_us - req->start_us);
}

static void log_request(struct conn *c, struct request *req, const char *cache, int64_t now_us)
{
    if (!access_log_enabled() || (!http_cfg->log_health_checks && health_check(req)))
        return; /* polled every second: --log-health-checks to see them */
    struct access_entry e = {.when = req->when,
                             .method = req->method[0] ? req->method : "-",
                             .uri = req->uri,
                             .version = req->version[0] ? req->version : "HTTP/1.1",
                             .status = req->status,
                             .user = engine_tls_peer(c), /* a client certificate's subject */
                             .bytes = http_is_head(req) ? 0 : req->bytes,
                             /* the request's headers live until its done returns */
                             .referer = conn_header(c, "Referer"),
                             .agent = conn_header(c, "User-Agent"),
                             .cache = cache,
                             .seconds = (double)(now_us - req->start_us) / 1e6};
    e.client = http_client(c, &req->client);
    access_log_write(&e);
}

/* The engine's callbacks (engine.h). */

static bool on_opened(int fd, const struct sockaddr *peer, void **ctx)
{
    struct conn_track *t;
    if (!limits_conn_open(fd, peer, &t))
        return false;
    atomic_fetch_add(&stats.connections, 1);
    *ctx = t;
    return true;
}

static void on_closed(void *ctx)
{
    limits_conn_close(ctx);
    atomic_fetch_add(&stats.connections, -1);
}

/* A request's head is in: it is timed from here, and its record lives until on_done. A head the
 * engine refused, or a client over its limits, is answered at once (and the connection closes). */
static void *on_begin(struct conn *c, unsigned int refusal, const char *reason)
{
    const char *uri = engine_target(c), *authority = engine_authority(c);
    enum proxy_target target = PROXY_FETCH;
    bool proxied = false;
    if (authority && !refusal) {
        target = proxy_target_of(authority, !strncasecmp(uri, "https:", 6), http_cfg);
        proxied = target != PROXY_SELF;
        if (!proxied) /* arca's own URL: its path and query, as an origin-form request's */
            uri = origin_form(uri);
    }
    size_t len = strlen(uri); /* bounded by --max-header-size */
    struct request *req = calloc(1, sizeof(*req) + len + 2);
    pool_thread = true;
    if (!req)
        return NULL;
    req->start_us = monotonic_us();
    req->when = time(NULL);
    req->proxied = proxied;
    req->ask_self = target == PROXY_RESOLVE;
    if (authority && !proxied && uri[0] != '/') /* "http://arca:8001?x": path "/" */
        req->uri[0] = '/';
    memcpy(req->uri + strlen(req->uri), uri, len);
    if (proxied) /* arca answers as a proxy: every answer says so, refusals too */
        engine_set_lines(c, via_lines);
    note_request(req, engine_method(c), engine_version(c));
    limits_request_begins(engine_conn_ctx(c), http_client(c, &req->client));
    if (refusal == 413 || refusal == 414 || refusal == 431) /* too large: a limit's refusal */
        atomic_fetch_add(&stats.limited, 1);
    else if (!refusal && (refusal = limits_refusal(engine_conn_ctx(c), &reason)) != 0)
        atomic_fetch_add(&stats.limited, 1);
    else if (!refusal && ((reason = target_refusal(engine_target(c))) != NULL ||
                          (!proxied && (reason = own_path_refusal(req->uri)) != NULL)))
        refusal = HTTP_BAD_REQUEST;
    if (refusal)
        refuse_early(c, req, refusal, reason);
    else
        check_body(c, req);
    return req;
}

static void on_upload(struct conn *c, void *r, const char *data, size_t n)
{
    take_upload(r, engine_method(c), data, n);
}

static enum conn_result on_call(struct conn *c, void *r)
{
    struct request *req = r;
    if (req->body_due) { /* the body is in */
        limits_body_in(engine_conn_ctx(c));
        req->body_due = false;
    }
    return route(c, req, engine_path(c), engine_method(c));
}

static void on_refuse(struct conn *c, void *r, unsigned int status, const char *reason)
{
    if (status == HTTP_CONTENT_TOO_LARGE) /* a chunked body beyond its route's limit */
        atomic_fetch_add(&stats.limited, 1);
    refuse_early(c, r, status, reason);
}

static void on_done(struct conn *c, void *r, bool completed)
{
    struct request *req = r;
    const char *cache = NULL;
    /* idle from now on only if it stays open: one closing after a refusal makes no room */
    limits_request_ends(engine_conn_ctx(c), completed && engine_keeps_alive(c));
    assert(http_on_pool());
    req->status = engine_status(c);
    req->bytes = (int64_t)engine_answer_size(c); /* a streamed answer's done says how many */
    req->wrote = (int64_t)engine_body_sent(c);
    req->tunnel_up = (int64_t)engine_tunnel_up(c);
    if (req->route && req->route->done)
        cache = req->route->done(req, completed);
    assert(!req->state); /* the route's done let go of it */
    if (!cache)
        cache = "-";
    int64_t now_us = monotonic_us();
    time_request(c, req, cache, now_us);
    log_request(c, req, cache, now_us);
    free(req);
}

static const struct engine_ops ops = {
    .opened = on_opened,
    .closed = on_closed,
    .begin = on_begin,
    .upload = on_upload,
    .call = on_call,
    .refuse = on_refuse,
    .done = on_done,
};

/* A listening socket on host:port (`option` names it in errors): its descriptor, or -1. */
static int bind_listener(const char *option, const char *host, int port, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *ai;
    const char *ob = strchr(host, ':') ? "[" : "", *cb = *ob ? "]" : "";
    char service[16];
    int one = 1, rc, fd;

    snprintf(service, sizeof(service), "%d", port);
    rc = getaddrinfo(host, service, &hints, &ai);
    if (rc != 0) {
        snprintf(err, errlen, "--%s %s%s%s:%d: %s", option, ob, host, cb, port, gai_strerror(rc));
        return -1;
    }
    /* non-blocking: several workers may wake for one connection, and only one gets it */
    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 1024) < 0) {
        snprintf(err, errlen, "cannot listen on %s%s%s:%d: %s", ob, host, cb, port,
                 strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    return fd;
}

/* --listen's socket, then each --tls-listen's: their count, or -1 (none left open). */
static int bind_listeners(const struct config *cfg, struct engine_listener *ls, char *err,
                          size_t errlen)
{
    int n = 0;
    ls[n++] = (struct engine_listener){
        bind_listener("listen", cfg->listen_host, cfg->listen_port, err, errlen), false};
    for (int i = 0; i < cfg->n_tls_listen && ls[n - 1].fd >= 0; i++)
        ls[n++] = (struct engine_listener){bind_listener("tls-listen", cfg->tls_listen[i].host,
                                                         cfg->tls_listen[i].port, err, errlen),
                                           true};
    if (ls[n - 1].fd >= 0)
        return n;
    for (int i = 0; i < n - 1; i++)
        close(ls[i].fd);
    return -1;
}

static void log_listening(const char *host, int port, const char *what)
{
    char addr[96];
    format_host_port(host, port, addr, sizeof(addr)); /* [::]:8001, as --listen writes it */
    log_info("listening on %s%s", addr, what);
}

int http_start(const struct config *cfg, const struct route *table, char *err, size_t errlen)
{
    snprintf(via_lines, sizeof(via_lines), "Via: %s\r\n", upstream_via()); /* set up by now */
    struct engine_limits lim = {
        .threads = cfg->threads,
        .max_head = (size_t)cfg->max_header_size,
        .idle_timeout_ms = cfg->idle_timeout * 1000,
        .max_connections = cfg->max_connections + HARD_CAP_MARGIN,
    };
    struct engine_listener ls[ENGINE_MAX_LISTENERS];
    int n;
    http_cfg = cfg;
    routes = table;
    if ((n = bind_listeners(cfg, ls, err, errlen)) < 0)
        return -1;
    bool limits = limits_start(cfg, err, errlen) == 0;
    if (!limits || engine_start(ls, n, &lim, &ops, err, errlen) < 0) {
        for (int i = 0; i < n; i++)
            close(ls[i].fd);
        if (limits)
            limits_stop();
        return -1;
    }
    log_listening(cfg->listen_host, cfg->listen_port, "");
    for (int i = 0; i < cfg->n_tls_listen; i++)
        log_listening(cfg->tls_listen[i].host, cfg->tls_listen[i].port, " (HTTPS)");
    return 0;
}

void http_drain(int64_t grace_seconds)
{
    struct timespec tick = {0, 50 * 1000 * 1000};
    time_t deadline = time(NULL) + grace_seconds;
    engine_drain();
    engine_stop_listening(); /* new clients are refused from now on */
    /* a response done from now on says Connection: close; idle ones are cut once nothing else
     * holds the stop (until then, a load balancer's poll on one is told 503, draining) */
    while (limits_drain_idle(), atomic_load(&stats.connections) > 0 && time(NULL) < deadline)
        nanosleep(&tick, NULL);
    if (atomic_load(&stats.connections) > 0)
        log_info("grace period over: closing %lld connection%s",
                 (long long)atomic_load(&stats.connections),
                 atomic_load(&stats.connections) == 1 ? "" : "s");
}

void http_stop(void)
{
    engine_stop(); /* closes the listening sockets if draining did not */
    limits_stop();
}

void http_iso_time(int64_t t, char *out, size_t size)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

json_t *http_json_time(int64_t t)
{
    char stamp[32];
    if (t <= 0)
        return json_null();
    http_iso_time(t, stamp, sizeof(stamp));
    return json_string(stamp);
}
