#include "http.h"
#include "access_log.h"
#include "clock.h"
#include "http_internal.h"
#include "http_limits.h"
#include "http_request_check.h"
#include "log.h"
#include "policy.h"
#include "stats.h"

#include <assert.h>
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

/* libmicrohttpd's own caps sit this far above ours, so that connections over our limits can
 * still be told why; beyond them it closes new connections without a word. */
#define HARD_CAP_MARGIN 64
/* Connection memory beyond --max-header-size: response headers and libmicrohttpd's own needs. */
#define POOL_SPARE 8192

const struct config *http_cfg;
atomic_bool http_draining;

/* The request being handled on this thread, so that http_queue can note its status. */
static _Thread_local struct request *current;
/* This thread is one of libmicrohttpd's pool: it has had a request line (on_uri). A connection
 * stays on its thread, so its content readers and completion run where this is set. */
static _Thread_local bool pool_thread;
static struct MHD_Daemon *daemon_;
static const struct route *routes; /* http_start's: what is served */
static int listen_fd = -1;

/* conn.h on libmicrohttpd: a connection and an answer are libmicrohttpd's own, under arca's
 * names (handlers never see libmicrohttpd's), so a handle converts without a lookup. */
static struct MHD_Connection *mhd(struct conn *c)
{
    return (struct MHD_Connection *)c;
}

static struct conn *conn_of(struct MHD_Connection *c)
{
    return (struct conn *)c;
}

static struct MHD_Response *response(struct answer *a)
{
    return (struct MHD_Response *)a;
}

static struct answer *answer_of(struct MHD_Response *r)
{
    return (struct answer *)r;
}

const char *conn_header(struct conn *c, const char *name)
{
    return MHD_lookup_connection_value(mhd(c), MHD_HEADER_KIND, name);
}

struct each_header {
    const char *name;
    void (*fn)(void *cls, const char *value);
    void *cls;
};

static enum MHD_Result each_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    struct each_header *e = cls;
    (void)kind;
    if (value && !strcasecmp(key, e->name))
        e->fn(e->cls, value);
    return MHD_YES;
}

void conn_each_header(struct conn *c, const char *name, void (*fn)(void *cls, const char *value),
                      void *cls)
{
    struct each_header e = {name, fn, cls};
    MHD_get_connection_values(mhd(c), MHD_HEADER_KIND, each_header, &e);
}

const char *conn_query(struct conn *c, const char *name)
{
    return MHD_lookup_connection_value(mhd(c), MHD_GET_ARGUMENT_KIND, name);
}

const struct sockaddr *conn_peer(struct conn *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(mhd(c), MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    return ci ? ci->client_addr : NULL;
}

void conn_suspend(struct conn *c)
{
    MHD_suspend_connection(mhd(c));
}

void conn_resume(struct conn *c)
{
    MHD_resume_connection(mhd(c));
}

struct answer *answer_copy(const void *data, size_t len)
{
    return answer_of(MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY));
}

struct answer *answer_owned(void *data, size_t len)
{
    return answer_of(MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE));
}

struct answer *answer_static(const void *data, size_t len)
{
    return answer_of(MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_PERSISTENT));
}

struct answer *answer_borrowed(const void *data, size_t len, void (*release)(void *), void *cls)
{
    return answer_of(
        MHD_create_response_from_buffer_with_free_callback_cls(len, (void *)data, release, cls));
}

struct answer *answer_file(int fd, int64_t off, uint64_t len)
{
    return answer_of(MHD_create_response_from_fd_at_offset64(len, fd, (uint64_t)off));
}

/* The reader's results are libmicrohttpd's own values (checked below). */
_Static_assert(ANSWER_END == MHD_CONTENT_READER_END_OF_STREAM, "reader's end");
_Static_assert(ANSWER_CUT == MHD_CONTENT_READER_END_WITH_ERROR, "reader's cut");
_Static_assert(ANSWER_SIZE_UNKNOWN == MHD_SIZE_UNKNOWN, "unknown size");

struct answer *answer_read(uint64_t size, size_t block, answer_reader reader, void *cls)
{
    return answer_of(MHD_create_response_from_callback(size, block, reader, cls, NULL));
}

/* libmicrohttpd has no way to send a span of a file mid-body: it is copied into its buffer. */
struct spans {
    answer_spanner spanner;
    void *cls;
};

static ssize_t read_span(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct spans *s = cls;
    int fd = -1;
    int64_t off = 0;
    ssize_t n = s->spanner(s->cls, pos, max, &fd, &off);
    if (n <= 0)
        return n;
    n = pread(fd, buf, (size_t)n, off);
    return n > 0 ? n : ANSWER_CUT;
}

struct answer *answer_spans(uint64_t size, size_t block, answer_spanner spanner, void *cls)
{
    struct spans *s = malloc(sizeof(*s));
    struct MHD_Response *r;
    if (!s)
        return NULL;
    s->spanner = spanner;
    s->cls = cls;
    if (!(r = MHD_create_response_from_callback(size, block, read_span, s, free)))
        free(s);
    return answer_of(r);
}

bool answer_header(struct answer *a, const char *name, const char *value)
{
    return MHD_add_response_header(response(a), name, value) == MHD_YES;
}

const char *answer_header_value(struct answer *a, const char *name, char *out, size_t size)
{
    const char *v = MHD_get_response_header(response(a), name);
    if (!v || size == 0)
        return NULL;
    snprintf(out, size, "%s", v);
    return out;
}

void answer_put(struct answer *a)
{
    MHD_destroy_response(response(a));
}

/* The connection's entry in http_limits.c (its socket context; NULL when out of memory). */
static struct conn_track *track_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* A shared response is never changed: other threads may be sending it. A plain hit that took
 * one just before draining began keeps its connection open; draining's grace period covers it
 * (requests that begin while draining never take a shared answer: see http_fetch.c). */
enum conn_result http_queue_shared(struct conn *c, unsigned int status, struct answer *a)
{
    if (current)
        current->status = status;
    return MHD_queue_response(mhd(c), status, response(a)) == MHD_YES ? CONN_GO_ON : CONN_CLOSE;
}

enum conn_result http_queue(struct conn *c, unsigned int status, struct answer *a)
{
    enum conn_result ret;
    if (!a)
        return CONN_CLOSE;
    /* While draining, keep-alive connections are closed after their response. */
    if (atomic_load(&http_draining))
        answer_header(a, "Connection", "close");
    ret = http_queue_shared(c, status, a);
    answer_put(a);
    return ret;
}

void http_note_body(size_t len)
{
    if (current)
        current->bytes = (int64_t)len;
}

bool http_on_pool(void)
{
    return pool_thread;
}

bool http_handling(const struct request *req)
{
    return current == req;
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
    http_note_body(len);
    return a;
}

enum conn_result http_send_owned(struct conn *c, unsigned int status, const char *type, char *body,
                                 size_t len)
{
    if (!body)
        return http_send_error(c, HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    return http_queue(c, status, http_owned_response(type, body, len));
}

enum conn_result http_send_text(struct conn *c, unsigned int status, const char *type,
                                const char *body)
{
    struct answer *a = answer_copy(body, strlen(body));
    if (a)
        answer_header(a, "Content-Type", type);
    http_note_body(strlen(body));
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
    }
    http_note_body((size_t)n + 1);
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
    const struct sockaddr *client = http_client(c, &buf);
    if (!client)
        return "client address unknown: the trusted proxy's X-Forwarded-For names no readable "
               "address";
    return policy_client_allowed(client) ? NULL : "client address not allowed to fetch";
}

bool http_may_list(struct conn *c, enum conn_result *ret)
{
    struct sockaddr_storage buf;
    const struct sockaddr *client = http_client(c, &buf);
    if (client && policy_ui_allowed(client))
        return true;
    *ret = http_send_error(c, HTTP_FORBIDDEN,
                           "client address not allowed to see cached URLs (--allow-network, "
                           "--ui-network)");
    return false;
}

static enum MHD_Result add_header_size(void *cls, enum MHD_ValueKind kind, const char *key,
                                       const char *value)
{
    size_t *total = cls;
    (void)kind;
    *total += strlen(key) + (value ? strlen(value) : 0) + 4; /* ": " and CRLF */
    return MHD_YES;
}

/* The request line and headers, counted as sent (near enough: folding and blanks aside). */
static bool request_too_big(struct conn *c, const char *url, const char *method)
{
    size_t total = strlen(method) + strlen(url) + 12;
    MHD_get_connection_values(mhd(c), MHD_GET_ARGUMENT_KIND, add_header_size, &total);
    MHD_get_connection_values(mhd(c), MHD_HEADER_KIND, add_header_size, &total);
    return total > (size_t)http_cfg->max_header_size;
}

/* Refuse on a request's first call; the connection closes after the answer. */
static enum conn_result refuse_early(struct conn *c, unsigned int status, const char *reason)
{
    struct answer *r = http_error_response("%s", reason);
    if (r)
        answer_header(r, "Connection", "close");
    return http_queue(c, status, r);
}

/* libmicrohttpd calls this as soon as it has the request line, before the headers: the request
 * is timed from here, and its record is the request's req_cls until completion. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
    size_t len = strlen(uri); /* bounded by the connection's memory (--max-header-size) */
    struct request *req = calloc(1, sizeof(*req) + len + 1);
    (void)cls;
    pool_thread = true;
    if (!req)
        return NULL;
    req->start_us = monotonic_us();
    req->when = time(NULL);
    memcpy(req->uri, uri, len);
    request_check_begin(c, req);
    return req;
}

/* What the access log needs of the request, kept before libmicrohttpd reuses its memory. */
static void note_request(struct conn *c, struct request *req, const char *method,
                         const char *version)
{
    snprintf(req->method, sizeof(req->method), "%s", method);
    snprintf(req->version, sizeof(req->version), "%s", version);
    if (access_log_enabled()) { /* no header lookups on the hit path when nobody logs */
        const char *referer = conn_header(c, "Referer");
        const char *agent = conn_header(c, "User-Agent");
        req->referer = referer ? strndup(referer, 512) : NULL;
        req->agent = agent ? strndup(agent, 512) : NULL;
    }
}

static bool path_is(const char *url, const char *path)
{
    size_t n = strlen(path);
    return !strncmp(url, path, n) && (url[n] == '\0' || (url[n] == '/' && url[n + 1] == '\0'));
}

static bool route_matches(const struct route *rt, const char *url)
{
    size_t n = strlen(rt->path);
    switch (rt->match) {
    case ROUTE_EXACT:
        return !strcmp(url, rt->path);
    case ROUTE_SLASH:
        return path_is(url, rt->path);
    case ROUTE_PREFIX:
        return !strncmp(url, rt->path, n);
    case ROUTE_TREE:
        return !strncmp(url, rt->path, n) && (url[n] == '\0' || url[n] == '/');
    }
    return false;
}

const struct route *http_route_match(const struct route *table, const char *url)
{
    for (const struct route *rt = table; rt->path; rt++)
        if (route_matches(rt, url))
            return rt;
    return NULL;
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

static enum conn_result not_allowed(struct conn *c, const char *method, const char *allowed)
{
    struct answer *r = http_error_response("method %s not allowed", method);
    if (r)
        answer_header(r, "Allow", allowed);
    return http_queue(c, HTTP_METHOD_NOT_ALLOWED, r);
}

/* Route one request: the table's first route whose path matches, if it takes the method. The
 * route is kept: later calls (after a resumed connection) and the completion use it. */
static enum conn_result route(struct conn *c, struct request *req, const char *url,
                              const char *method)
{
    if (!req->route && !(req->route = http_route_match(routes, url)))
        return http_send_error(c, HTTP_NOT_FOUND, "no such endpoint");
    if (!http_route_allows(req->route, method))
        return not_allowed(c, method, req->route->methods);
    assert(http_handling(req));
    return req->route->handler(c, req, url + strlen(req->route->path));
}

/* A request body goes to its route's upload, if it has one and takes the method; other bodies
 * are read and dropped. */
static void take_upload(struct request *req, const char *url, const char *method,
                        const char *upload, size_t size)
{
    const struct route *rt = req->route ? req->route : http_route_match(routes, url);
    if (!rt || !rt->upload || !http_route_allows(rt, method))
        return;
    req->route = rt; /* its done lets go of what the upload kept */
    rt->upload(req, upload, size);
}

/* A request's first call: its header is in, none of its body read. libmicrohttpd 0.9.75 closes
 * the connection (no keep-alive) when a response is queued on this call, before it counts the
 * request as received: so this call only refuses (and so closes, which a request whose framing
 * is refused needs), and routing happens on the second. */
static enum conn_result first_call(struct conn *c, struct request *req, const char *url,
                                   const char *method, const char *version)
{
    unsigned int status;
    const char *reason;
    req->seen = true;
    request_check_end(req);
    note_request(c, req, method, version);
    limits_request_begins(track_of(mhd(c)), http_client(c, &req->client));
    if ((status = request_check(mhd(c), method, version, &reason)) != 0)
        return refuse_early(c, status, reason);
    if ((status = limits_refusal(track_of(mhd(c)), &reason)) == 0 &&
        request_too_big(c, url, method)) {
        status = HTTP_REQUEST_HEADER_FIELDS_TOO_LARGE;
        reason = "request line and headers larger than --max-header-size";
    }
    if (status == 0)
        return CONN_GO_ON;
    atomic_fetch_add(&stats.limited, 1);
    return refuse_early(c, status, reason);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *mc, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **req_cls)
{
    struct request *req = *req_cls;
    struct conn *c = conn_of(mc);
    enum conn_result ret;
    (void)cls;

    if (!req)
        return MHD_NO; /* out of memory in on_uri */
    current = req;
    if (!req->seen) {
        ret = first_call(c, req, url, method, version);
    } else if (*upload_size != 0) {
        take_upload(req, url, method, upload, *upload_size);
        *upload_size = 0;
        ret = CONN_GO_ON;
    } else {
        ret = route(c, req, url, method);
    }
    current = NULL;
    return ret == CONN_GO_ON ? MHD_YES : MHD_NO;
}

/* A load balancer's poll: GET or HEAD of a polled route's path (the request line as sent, its
 * query included, so "?x" is no poll), answered 200 or 503. Anything else on that path (a POST,
 * a DELETE, a smuggling attempt arca refused) is logged like any request. */
static bool health_check(const struct request *req)
{
    const struct route *rt = http_route_match(routes, req->uri);
    return rt && rt->polled && (!strcmp(req->method, "GET") || !strcmp(req->method, "HEAD")) &&
           (req->status == HTTP_OK || req->status == HTTP_SERVICE_UNAVAILABLE);
}

static void log_request(struct conn *c, struct request *req, const char *cache)
{
    if (!http_cfg->log_health_checks && health_check(req))
        return; /* polled every second: --log-health-checks to see them */
    struct access_entry e = {.when = req->when,
                             .method = req->method[0] ? req->method : "-",
                             .uri = req->uri,
                             .version = req->version[0] ? req->version : "HTTP/1.1",
                             .status = req->status,
                             .bytes = http_is_head(req) ? 0 : req->bytes,
                             .referer = req->referer,
                             .agent = req->agent,
                             .cache = cache,
                             .seconds = (double)(monotonic_us() - req->start_us) / 1e6};
    e.client = http_client(c, &req->client);
    access_log_write(&e);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct request *req = *req_cls;
    const char *cache = NULL;
    (void)cls;
    limits_request_ends(track_of(c));
    if (!req)
        return;
    request_check_end(req);
    assert(http_on_pool());
    if (req->route && req->route->done)
        cache = req->route->done(req, toe == MHD_REQUEST_TERMINATED_COMPLETED_OK);
    assert(!req->state); /* the route's done let go of it */
    if (!cache)
        cache = "-";
    log_request(conn_of(c), req, cache);
    free(req->referer);
    free(req->agent);
    free(req);
    *req_cls = NULL;
}
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_ctx,
                          enum MHD_ConnectionNotificationCode code)
{
    (void)cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *fd =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        atomic_fetch_add(&stats.connections, 1);
        *socket_ctx = limits_conn_open(fd ? fd->connect_fd : -1, conn_peer(conn_of(c)));
    } else {
        limits_conn_close(*socket_ctx);
        *socket_ctx = NULL;
        atomic_fetch_add(&stats.connections, -1);
    }
}

static int bind_listener(const struct config *cfg, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *ai;
    char port[16];
    int one = 1, rc;

    snprintf(port, sizeof(port), "%d", cfg->listen_port);
    rc = getaddrinfo(cfg->listen_host, port, &hints, &ai);
    if (rc != 0) {
        snprintf(err, errlen, "--listen %s: %s", cfg->listen_host, gai_strerror(rc));
        return -1;
    }
    listen_fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listen_fd < 0 || setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(listen_fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(listen_fd, 1024) < 0) {
        snprintf(err, errlen, "cannot listen on %s:%d: %s", cfg->listen_host, cfg->listen_port,
                 strerror(errno));
        if (listen_fd >= 0)
            close(listen_fd);
        listen_fd = -1;
        freeaddrinfo(ai);
        return -1;
    }
    freeaddrinfo(ai);
    return 0;
}

int http_start(const struct config *cfg, const struct route *table, char *err, size_t errlen)
{
    http_cfg = cfg;
    routes = table;
    if (bind_listener(cfg, err, errlen) < 0 || limits_start(cfg, err, errlen) < 0)
        return -1;
    request_check_init();
    /* The connection's memory pool holds the request line and headers and the response
     * headers. Measured: headers close to the pool's size get no answer at all, so the pool has
     * room for an answer beyond --max-header-size; request_too_big() enforces the exact limit,
     * and requests far beyond it get libmicrohttpd's own 431 or 414. The pool is no bigger:
     * libmicrohttpd 0.9.75 zeroes all of it after every request (memset was 6% of a 4 KiB hit's
     * profile) and it stays resident on every idle keep-alive connection. */
    daemon_ = MHD_start_daemon(
        MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC | MHD_USE_ERROR_LOG,
        0, NULL, NULL, on_request, NULL, MHD_OPTION_EXTERNAL_LOGGER, request_check_mhd_log, NULL,
        MHD_OPTION_LISTEN_SOCKET, listen_fd, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned int)cfg->threads, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)cfg->idle_timeout,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)cfg->max_header_size + POOL_SPARE,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)(cfg->max_connections + HARD_CAP_MARGIN),
        MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned int)(cfg->max_connections_per_ip + HARD_CAP_MARGIN), MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, NULL, MHD_OPTION_NOTIFY_CONNECTION, on_connection, NULL,
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, NULL, MHD_OPTION_END);
    if (!daemon_) {
        snprintf(err, errlen, "cannot start the HTTP server on %s:%d", cfg->listen_host,
                 cfg->listen_port);
        close(listen_fd);
        listen_fd = -1;
        return -1;
    }
    log_info("listening on %s:%d", cfg->listen_host, cfg->listen_port);
    return 0;
}

/* New clients refused from now on: the listening socket is closed, and its descriptor number
 * becomes a connected Unix socket that never polls readable and whose accept() fails with EINVAL,
 * which libmicrohttpd takes for "shutting down" and passes over. Closing the socket takes it out
 * of every worker's epoll set in the kernel, with no epoll_ctl from this thread.
 * MHD_quiesce_daemon, which did this before, races with libmicrohttpd 0.9.75's own workers: both
 * remove the socket from a worker's epoll set, and the loser of the race aborts the process
 * ("Failed to remove listen FD from epoll set", about one drain in 450 under load). The number
 * stays taken, so no worker can reach a descriptor opened later under it; libmicrohttpd closes it
 * at MHD_stop_daemon, as it closes a listening socket it was given and never quiesced. */
static int placeholder_peer = -1;

static void stop_listening(void)
{
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) == 0) {
        bool placed = dup3(pair[0], listen_fd, O_CLOEXEC) >= 0;
        close(pair[0]);
        if (placed) {
            placeholder_peer = pair[1];
            return;
        }
        close(pair[1]);
    }
    /* out of descriptors: refused too, though its workers may spin on it until http_stop */
    shutdown(listen_fd, SHUT_RDWR);
}

void http_drain(int64_t grace_seconds)
{
    struct timespec tick = {0, 50 * 1000 * 1000};
    time_t deadline = time(NULL) + grace_seconds;
    atomic_store(&http_draining, true);
    stop_listening();
    while (atomic_load(&stats.connections) > 0 && time(NULL) < deadline)
        nanosleep(&tick, NULL);
    if (atomic_load(&stats.connections) > 0)
        log_info("grace period over: closing %lld connections",
                 (long long)atomic_load(&stats.connections));
}

void http_stop(void)
{
    MHD_stop_daemon(daemon_); /* closes listen_fd's number, whatever it holds by then */
    daemon_ = NULL;
    listen_fd = -1;
    if (placeholder_peer >= 0)
        close(placeholder_peer);
    placeholder_peer = -1;
    limits_stop();
}
