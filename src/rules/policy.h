/*
 * policy.h — who may fetch, and which upstream addresses arca may connect to.
 *
 * Contract: policy_init() runs once before any thread starts; the checks are then callable from
 * any thread. The client networks may be replaced while running (SIGHUP): policy keeps its own
 * copy under a read-write lock. The upstream check is applied to the address a socket is about to
 * connect to (curl's open-socket hook), for every connection and every redirect hop, so a name
 * that resolves to a forbidden address (DNS rebinding) is refused too. The host's own addresses
 * are refused on every port, as loopback is: the kernel is asked for each connection whether it
 * delivers to that address locally (so an address the host gets later, or a prefix routed to
 * loopback, is known at once).
 */
#ifndef ARCA_POLICY_H
#define ARCA_POLICY_H

#include "config/config.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

void policy_init(const struct config *cfg);

/* True when the client is inside one of the --allow-network networks, or, when none was given,
 * inside loopback or a private network (the default list). */
bool policy_client_allowed(const struct sockaddr *client);

/* True when the client may see the pages and JSON that list cached URLs: it may fetch, or it is
 * inside one of the --ui-network networks. */
bool policy_ui_allowed(const struct sockaddr *client);

/* Whether `peer` is a --trusted-proxy. */
bool policy_trusted_proxy(const struct sockaddr *peer);

/* Most X-Forwarded-For entries read for one request. */
#define POLICY_XFF_MAX_HOPS 64

/* The client of a request from `peer` whose X-Forwarded-For lines, in order, are `xff` (n of
 * them). `peer` itself unless it is a trusted proxy, or when there is no line at all; else the
 * entries are read right to left (the proxy appends its own line last) and the client is the
 * first that is not a trusted proxy: the address the last trusted proxy saw. When every entry
 * is a trusted proxy, the leftmost (a request made on a proxy's host). NULL when the client is
 * unknown: the entry read is not an address (empty, a name, garbage), or POLICY_XFF_MAX_HOPS
 * entries were all trusted proxies. Neither the proxy nor an entry further left (which anyone
 * can write) ever stands in for an unknown client. The client's address goes into `out`. */
const struct sockaddr *policy_forwarded_client(const struct sockaddr *peer, const char *const *xff,
                                               int n, struct sockaddr_storage *out);

/* Replace the client networks (n == 0: the default, loopback and the private networks). */
void policy_set_clients(const struct cidr *nets, int n);
/* Copy the networks that may fetch (at most CONFIG_MAX_NETS); returns how many. `by_default`
 * says they are the default list (no --allow-network). */
int policy_clients(struct cidr *out, bool *by_default);
/* Whether these networks hold every IPv4 and every IPv6 address (--allow-network all). */
bool policy_clients_all(const struct cidr *nets, int n);
/* Who may fetch, as one line of text for the logs and `arca status`. */
void policy_describe_clients(char *out, size_t size);
/* The one-line reason of the 403 a client outside them gets: it names --allow-network. */
const char *policy_client_refusal(void);
/* The networks refused upstream by default, as text; NULL after the last. */
const char *policy_refused_default(int i);

/* 0 when the kernel can be asked which addresses are this host's own (rtnetlink; a service
 * manager may forbid it); -1 with a one-line reason otherwise: arca does not start. */
int policy_check_kernel(char *err, size_t errlen);
/* The host's own addresses are these (at most 16), not the kernel's (units: no interface is
 * touched). */
void policy_set_host_addrs(const struct sockaddr *const *addrs, int n);

/* 0 when arca may connect to `addr`; -1 with a one-line reason otherwise. */
int policy_upstream_check(const struct sockaddr *addr, char *why, size_t whylen);

#endif
