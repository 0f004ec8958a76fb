/*
 * http_limits.h — limits on client connections, answered with a status:
 * connections in total (503) and per client address (429), and the time a client may take to
 * send a request's headers, and its body if it has one (slowloris).
 *
 * Contract: the conn_* and limits_refusal functions are called from the server's threads
 * (its connection and request notifications); one mutex guards the list of open connections.
 * Behind a --trusted-proxy, "connections per address" are the requests being served for that
 * client address (X-Forwarded-For) on the proxy's connections.
 * A connection over a count limit is still accepted, so that its first request can be told why
 * (status, one-line reason, Connection: close), if it comes within a second; it takes no place
 * under --max-connections and makes no room, and beyond 8 of them from one client the next are
 * closed unanswered, by the engine as it opens them (so they never hold its own cap: one
 * accepted for another worker takes a place only as that worker opens it). A
 * connection closing after its answer takes no place either, and lingers 2 s at most; the
 * engine's own cap, set a little above ours, closes connections beyond that silently. A watchdog
 * thread shuts down the socket of a connection whose headers are late; it does so under the same
 * mutex that limits_conn_close takes, and the engine closes a socket only after that call
 * (engine_ops.closed), so the watchdog can never touch a descriptor that was reused. Idle
 * keep-alive connections (a response done, no next head yet) are cut the same way: the one idle
 * longest when a new connection would be over --max-connections (busy ones never), and all of them
 * when arca drains and they are all that is left.
 * --max-connections-per-ip counts an IPv6 client by its /64.
 */
#ifndef ARCA_HTTP_LIMITS_H
#define ARCA_HTTP_LIMITS_H

#include "config/config.h"

#include <stdbool.h>
#include <sys/socket.h>

/* One client connection's entry. */
struct conn_track;

int limits_start(const struct config *cfg, char *err, size_t errlen);
void limits_stop(void);

/* A connection accepted on `fd` from `peer` (NULL: unknown): false when it is to be closed at
 * once, unanswered (beyond 8 over a limit from its client); else its entry in `*t`, NULL when
 * out of memory (it is then not limited). */
bool limits_conn_open(int fd, const struct sockaddr *peer, struct conn_track **t);
/* Before its descriptor is closed (t may be NULL). */
void limits_conn_close(struct conn_track *t);
/* A request's headers are in: no deadline while it is served. `client` is the request's client
 * (http_client): on a connection from a --trusted-proxy, the per-address limit counts the
 * requests being served for that client, since the proxy's connections carry anyone's; clients
 * it cannot name (NULL) are counted together. */
void limits_request_begins(struct conn_track *t, const struct sockaddr *client);
/* The request has a body: it is due within --header-timeout, as a head is, so that a body
 * trickled a byte at a time cannot hold the connection; limits_body_in() once it is in. */
void limits_body_due(struct conn_track *t);
void limits_body_in(struct conn_track *t);
/* A response is done: the next request's headers are due within the idle timeout and the
 * header timeout (a connection quiet for the idle timeout is closed by the engine first); kept
 * alive, the connection is idle until then (limits_drain_idle, and room at --max-connections). */
void limits_request_ends(struct conn_track *t, bool keep_alive);

/* Draining: when every open connection is an idle keep-alive one (no request served, none new
 * on its way), shut them all down, so that a stop waits for no idle client; how many. While a
 * request is served, idle connections stay, and a load balancer's next poll on one is answered
 * (503, draining, Connection: close). */
int limits_drain_idle(void);

/* 0, or the status (429, 503) and reason a new request on this connection gets. */
unsigned int limits_refusal(const struct conn_track *t, const char **reason);

#endif
