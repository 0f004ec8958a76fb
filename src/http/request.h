/*
 * request.h — one client request as the server (http.c) keeps it, from its request line to its
 * completion: what the access log needs, the route it matched and the one state pointer its
 * handler owns. A plain record, touched only on the request's own pool thread: http.c and its
 * request checks (http_request_check.c) fill it, handlers read it and set `state`.
 */
#ifndef ARCA_REQUEST_H
#define ARCA_REQUEST_H

#include "conn.h"
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

struct route; /* http.h */

/* One request, from its request line (on_uri) to its completion; its req_cls. */
struct request {
    int64_t start_us;               /* monotonic */
    time_t when;                    /* wall clock, for the access log */
    unsigned int status;            /* of the response queued; 0 while none */
    int64_t bytes;                  /* body bytes handed to the connection */
    bool seen;                      /* the first call (headers in) is done */
    const struct route *route;      /* the route matched; NULL until the request is routed */
    void *state;                    /* the route's handler's own, let go by its done */
    struct sockaddr_storage client; /* room for http_client()'s answer */
    char method[16];
    char version[16];
    char *referer, *agent; /* only while the access log is on */
    /* While its header is read (on_uri to the first call): its connection, and its place in the
     * thread's list of such requests (http_request_check.c); conn is NULL otherwise. */
    struct conn *conn;
    struct request *reading_prev, *reading_next;
    char uri[]; /* as sent: path and query */
};

#endif
