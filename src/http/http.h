/*
 * http.h — the server: arca's engine (src/engine/) serving connections, limits, the access log,
 * the route table's matching and the helpers handlers answer with (http_internal.h).
 *
 * Contract: http_start() binds the listening socket itself (so "port in use" comes back as a
 * clear error) and starts the engine's workers (one epoll loop each, --threads). What is served
 * is the route table given to it (src/web/routes.c assembles it): http.c names no
 * handler and no page. Handlers run on the workers' threads; a handler waiting for bytes parks its
 * connection (park.h) and is resumed by the producing thread — no polling. http_drain() stops
 * accepting, makes health answer 503 and waits (bounded) for open connections to finish.
 */
#ifndef ARCA_HTTP_H
#define ARCA_HTTP_H

#include "config/config.h"

#include "engine/handler.h"
#include <stdbool.h>
#include <stddef.h>

struct request;

/* How a route's path is compared with the request's (path and query apart). */
enum route_match {
    ROUTE_EXACT,   /* the path itself, nothing more */
    ROUTE_SLASH,   /* the path, with or without one trailing '/' */
    ROUTE_PREFIX,  /* anything that begins with the path (which ends in '/', or is "") */
    ROUTE_TREE,    /* the path itself, or the path, '/' and anything */
    ROUTE_PROXY,   /* no path: every proxied request (an absolute-form target, proxy.h) */
    ROUTE_CONNECT, /* no path: every CONNECT (http_connect.h) */
};

/* One entry of the route table: data, matched in table order by http_route_match(). */
struct route {
    const char *path; /* NULL ends the table */
    enum route_match match;
    const char *methods; /* the methods taken, as a 405's Allow lists them; NULL: any */
    /* Called on every call of the request after its header (the first after a resumed
     * connection too); `rest` is the URL after `path`. The request's `state` is the handler's. */
    enum conn_result (*handler)(struct conn *c, struct request *req, const char *rest);
    /* A request body's bytes, as they come. NULL: the route takes no body; one of at most
     * HTTP_DROP_BODY_MAX bytes is read and dropped, a larger one refused (413) at its head, or
     * once that much of it came when chunked. */
    void (*upload)(struct request *req, const char *data, size_t size);
    /* The request ended (its state is let go here): the access log's cache column, or NULL for
     * "-". Called for every request that matched the route, state or not. NULL: nothing held. */
    const char *(*done)(struct request *req, bool completed);
    /* A load balancer polls it: its 200s and 503s to GET and HEAD are left out of the access
     * log unless --log-health-checks. */
    bool polled;
    /* With an upload: the largest body it takes. A Content-Length beyond is refused with 413 at
     * the head, before any byte of the body is read (and no 100 Continue is sent); a chunked
     * body once it grows beyond. */
    size_t body_max;
    /* With an upload: called at the head of a request with a body, before any of it is read;
     * false when it queued a refusal (a prefetch without the admin token), so that a client
     * nobody authorised cannot make arca hold its body. NULL: every client may send one. */
    bool (*admit)(struct conn *c);
    /* Every answer of a request on this route, its refusals at the head too, passes through it
     * before it is queued (request.h's `dress`): a route whose clients read answers in a
     * protocol of their own (registry.h). NULL: answers go out as built. */
    struct answer *(*dress)(struct request *req, unsigned int status, struct answer *a);
    /* The dress of a 200 shared with other requests (a prepared hit, never changed): the head
     * lines this request's copy carries besides ("Name: value\r\n" each, valid until the
     * request's done; NULL: none). A route with a dress but none never takes a shared answer. */
    const char *(*dress_shared)(struct request *req, const struct answer *a);
};

/* A body sent to a route that takes none is read and dropped up to this size (a client library
 * may send a small one with any request); beyond, it is refused. */
#define HTTP_DROP_BODY_MAX (64 * 1024)

/* The first route of `routes` whose path matches `url` (NULL: none does). */
const struct route *http_route_match(const struct route *routes, const char *url);
/* Whether `method` is one of the route's. */
bool http_route_allows(const struct route *route, const char *method);

/* `routes` stays valid until http_stop(). */
int http_start(const struct config *cfg, const struct route *routes, char *err, size_t errlen);
void http_drain(int64_t grace_seconds);
void http_stop(void);
/* Read the admin token from cfg->admin_token_file ("" disables the admin API); at start and on
 * SIGHUP. -1 with err filled when the file is unreadable or the token too short. */
int http_load_admin_token(const struct config *cfg, char *err, size_t errlen);

#endif
