/*
 * http_connect.h — CONNECT tunnels for HTTPS_PROXY clients (docs/PROXY.md).
 *
 * Contract: a CONNECT host:port from a client allowed to fetch (--allow-network), to a port of
 * --connect-port (default 443), is answered 200 once arca has connected to an address of that
 * host which the upstream address policy allows (checked on each address before it is
 * connected to, as for downloads); then the connection relays bytes both ways until both sides
 * ended (conn_tunnel). Refused: 403 (client, port, address policy), 400 (not host:port), 502
 * (no address resolves or takes the connection within cfg->connect_timeout), 508 (the request
 * came from this arca), 503 (draining). A CONNECT to one of arca's own listeners (its address
 * and port, or a name of this machine on that port: proxy_target.h) is arca serving itself, on
 * any port: no upstream policy or tunnel rule, the connection made from arca's own address and
 * taken by the listener as the client's (engine_expect_relay), so the requests in it get that
 * listener's rules, limits and who-may-fetch as the client's own, never as arca's. Resolving
 * and connecting run on a thread of their own per tunnel, never on a worker; the request waits
 * parked (park.h). Nothing is cached.
 */
#ifndef ARCA_HTTP_CONNECT_H
#define ARCA_HTTP_CONNECT_H

#include "http/http_internal.h"

/* The route (struct route, ROUTE_CONNECT); the request's state is the tunnel's. */
enum conn_result http_connect(struct conn *c, struct request *req, const char *rest);
/* Counts the tunnel's bytes (req->wrote down, req->tunnel_up up) and lets it go; "TUNNEL" for
 * the access log once a tunnel was opened. */
const char *http_connect_done(struct request *req, bool completed);

#endif
