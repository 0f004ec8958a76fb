/*
 * http_offload.h — work a request waits for that must not run on a worker: a name to resolve,
 * a connection to make (a slow resolver or a silent host would hold every connection of the
 * worker). It runs on a thread of its own while the request is parked (park.h), and wakes it.
 *
 * Contract: an offload is embedded in the request's state, which owns it. offload_start()
 * suspends the request's connection and starts `run` on a new detached thread; false: no
 * thread could start (the connection is not suspended; nothing ran), or OFFLOAD_MAX run already
 * (the caller answers 503). Once `run` returned, offload_done() is true and the connection is
 * resumed; what `run` wrote is then the request's to read. offload_leave() is the request's
 * last word (in its route's done): `release` runs when both the request and a thread still
 * running have let go, so a client that leaves first never frees what the thread writes.
 */
#ifndef ARCA_HTTP_OFFLOAD_H
#define ARCA_HTTP_OFFLOAD_H

#include "conn.h"
#include "park.h"

#include <stdatomic.h>
#include <stdbool.h>

/* The request state an offload is embedded in. */
#define OFFLOAD_OWNER(o, type, member) PARK_OWNER(o, type, member)

/* Offloads running at once, all kinds together: beyond, offload_start() refuses. */
#define OFFLOAD_MAX 64

struct offload {
    struct park park;
    struct conn *conn;
    void (*run)(struct offload *o);
    void (*release)(struct offload *o); /* the last reference went: free the state */
    atomic_bool done;
};

void offload_init(struct offload *o, struct conn *c, void (*run)(struct offload *),
                  void (*release)(struct offload *));
bool offload_start(struct offload *o);
bool offload_done(struct offload *o);
void offload_leave(struct offload *o);

#endif
