/*
 * http_offload.h — work a request waits for that must not run on a worker: a name to resolve,
 * a connection to make (a slow resolver or a silent host would hold every connection of the
 * worker), a purge by prefix (a walk of the whole table). It runs on a thread of its own while the
 * request is parked (park.h), and wakes it.
 *
 * Contract: an offload is embedded in the request's state, which owns it. offload_start()
 * suspends the request's connection and starts `run` on a new detached thread, or refuses
 * (the connection is not suspended; nothing ran): OFFLOAD_BUSY when OFFLOAD_MAX run already or
 * no thread could start (the caller answers 503), OFFLOAD_CLIENT_BUSY when this client runs
 * OFFLOAD_PER_CLIENT already (429), so one client cannot take every thread from the others.
 * Once `run` returned, offload_done() is true and the connection is resumed; what `run` wrote
 * is then the request's to read. offload_leave() is the request's last word (in its route's
 * done): from then offload_abandoned() is true, which `run` checks to stop waiting early (a
 * request whose connection is closed, by a reset or arca's shutdown, gives its share back
 * within OFFLOAD_POLL_MS, not at the end of a 30 s connect; a half-closed client is still
 * answered, so a FIN ends nothing), and `release` runs when both the request and a thread
 * still running have let go, so a client that leaves first never frees what the thread
 * writes.
 */
#ifndef ARCA_HTTP_OFFLOAD_H
#define ARCA_HTTP_OFFLOAD_H

#include "engine/handler.h"
#include "base/park.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

/* The request state an offload is embedded in. */
#define OFFLOAD_OWNER(o, type, member) PARK_OWNER(o, type, member)

/* Offloads running at once, all kinds together: beyond, offload_start() refuses. */
#define OFFLOAD_MAX 64
/* The same for one client: an IPv4 address, or an IPv6 /64 (one host may use many of those). */
#define OFFLOAD_PER_CLIENT 8
/* The admin's purges (their token checked), counted apart: no client's tunnels starve them,
 * and a script purging files in parallel is not held to one client's share. */
#define OFFLOAD_ADMIN_MAX 256
#define OFFLOAD_ADMIN_BUSY_WHY "too many purges under way; retry"
/* How often a waiting `run` looks whether its request left. */
#define OFFLOAD_POLL_MS 200

enum offload_start { OFFLOAD_STARTED, OFFLOAD_BUSY, OFFLOAD_CLIENT_BUSY };
/* The reasons a refused client reads (503, 429). */
#define OFFLOAD_BUSY_WHY "too many tunnels and lookups under way; retry"
#define OFFLOAD_CLIENT_BUSY_WHY                                                                    \
    "too many tunnels and lookups under way for your address (8 at once); retry"

struct offload {
    struct park park;
    struct conn *conn;
    void (*run)(struct offload *o);
    void (*release)(struct offload *o); /* the last reference went: free the state */
    uint8_t client[16];                 /* whose share it counts in (offload.c's table) */
    bool admin;                         /* offload_start_admin's: the admin's share */
    atomic_bool done;
    atomic_bool left; /* offload_leave() ran */
};

void offload_init(struct offload *o, struct conn *c, void (*run)(struct offload *),
                  void (*release)(struct offload *));
/* `client`: the request's client (NULL: unknown, one share for all of those). */
enum offload_start offload_start(struct offload *o, const struct sockaddr *client);
/* The same for an admin's request (its token checked): OFFLOAD_ADMIN_MAX at once, OFFLOAD_BUSY
 * beyond (503, OFFLOAD_ADMIN_BUSY_WHY). */
enum offload_start offload_start_admin(struct offload *o);
bool offload_done(struct offload *o);
bool offload_abandoned(struct offload *o);
/* Jobs running now (for /metrics). */
int offload_running(void);
void offload_leave(struct offload *o);

#endif
