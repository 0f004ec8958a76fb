/*
 * http_limits.h — limits on client connections that libmicrohttpd does not answer with a status:
 * connections in total (503) and per client address (429), and the time a client may take to
 * send a request's headers (slowloris).
 *
 * Contract: the conn_* and limits_refusal functions are called from libmicrohttpd's pool threads
 * (its connection and request notifications); one mutex guards the list of open connections.
 * Behind a --trusted-proxy, "connections per address" are the requests being served for that
 * client address (X-Forwarded-For) on the proxy's connections.
 * A connection over a count limit is still accepted, so that its first request can be told why
 * (status, one-line reason, Connection: close); libmicrohttpd's own caps, set a little above
 * ours, close connections beyond that silently. A watchdog thread shuts down the socket of a
 * connection whose headers are late; it does so under the same mutex that the close
 * notification takes, and libmicrohttpd closes a socket only after that notification, so the
 * watchdog can never touch a descriptor that was reused.
 */
#ifndef ARCA_HTTP_LIMITS_H
#define ARCA_HTTP_LIMITS_H

#include "config.h"

#include <microhttpd.h>

int limits_start(const struct config *cfg, char *err, size_t errlen);
void limits_stop(void);

void limits_conn_open(struct MHD_Connection *c, void **socket_ctx);
void limits_conn_close(void *socket_ctx);
/* A request's headers are in: no deadline while it is served. `client` is the request's client
 * (http_client): on a connection from a --trusted-proxy, the per-address limit counts the
 * requests being served for that client, since the proxy's connections carry anyone's; clients
 * it cannot name (NULL) are counted together. */
void limits_request_begins(struct MHD_Connection *c, const struct sockaddr *client);
/* A response is done: the next request's headers are due within the idle timeout. */
void limits_request_ends(struct MHD_Connection *c);

/* 0, or the status (429, 503) and reason a new request on this connection gets. */
unsigned int limits_refusal(struct MHD_Connection *c, const char **reason);

#endif
