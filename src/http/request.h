/*
 * request.h — one client request as the server (http.c) keeps it, from its head to its
 * completion: what the access log needs, the route it matched and the one state pointer its
 * handler owns. A plain record, touched only on the request's own worker thread: http.c fills
 * it, handlers read it and set `state`.
 */
#ifndef ARCA_REQUEST_H
#define ARCA_REQUEST_H

#include "engine/handler.h"
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

struct route; /* http.h */

/* One request, from its head (on_begin) to its completion (on_done): the engine's context for it.
 */
struct request {
    int64_t start_us;               /* monotonic */
    time_t when;                    /* wall clock, for the access log */
    unsigned int status;            /* the engine's (engine_status), taken for the done */
    int64_t bytes;                  /* body bytes for the log: the answer's declared size,
                                       taken for the done, or what a streamed one handed on */
    int64_t wrote;                  /* of them, written to the socket: set before the done */
    int64_t tunnel_up;              /* a tunnel's bytes from the client: set before the done */
    const struct route *route;      /* the route matched; NULL until the request is routed */
    void *state;                    /* the route's handler's own, let go by its done */
    struct sockaddr_storage client; /* room for http_client()'s answer */
    bool body_due;                  /* its body is timed (limits_body_due) until it is in */
    bool proxied;  /* an absolute-form target not naming arca: a fetch of it (proxy.h) */
    bool ask_self; /* ... on arca's port: a lookup decides whether it names arca after all */
    /* Its route's dress (http.h), once routed or refused at its head: every answer queued for
     * the request passes through it (http_queue), which returns what goes out, the reference
     * taken over. NULL: none. */
    struct answer *(*dress)(struct request *req, unsigned int status, struct answer *a);
    /* ... and its dress of a shared answer (http.h): a dressed request without one never takes
     * a shared answer. */
    const char *(*dress_shared)(struct request *req, const struct answer *a);
    char method[16];
    char version[16];
    char uri[]; /* as sent: path and query (of a proxied request, the URL; of an absolute-form
                 * one naming arca, its path and query) */
};

#endif
