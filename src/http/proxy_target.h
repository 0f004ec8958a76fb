/*
 * proxy_target.h — arca as an HTTP proxy (HTTP_PROXY): which absolute-form requests
 * ("GET http://host/path HTTP/1.1", RFC 9112 3.2.2) name arca itself, which came from it, and
 * what their Cache-Control asks.
 *
 * Contract: an absolute-form target names arca itself when its port and host are those of one of
 * arca's listeners, --listen or a --tls-listen (its address, or with a wildcard address loopback
 * and every address of this machine's interfaces), by name or as an IP literal, whatever the
 * target's scheme (http://arca:8443/ names the TLS listener: arca, not a fetch of itself). Such
 * a request is routed by its path like an origin-form one, never fetched; any other is a fetch
 * of its URL. proxy_target_of() decides without a lookup (IP literals, "localhost") and says
 * when only a lookup can tell (any other name on arca's port); proxy_names_self() looks the name
 * up, and may block: it runs off the workers (proxy.c). A request whose Via names this arca
 * (upstream_via) came from it: a fetch it asks for would loop. Pure functions but for the
 * lookups; any thread.
 */
#ifndef ARCA_PROXY_TARGET_H
#define ARCA_PROXY_TARGET_H

#include "config/config.h"
#include "engine/handler.h"

#include <stdbool.h>
#include <stdint.h>

enum proxy_target {
    PROXY_FETCH,   /* another server: fetch the URL */
    PROXY_SELF,    /* arca itself: its own route */
    PROXY_RESOLVE, /* on arca's port, a name only a lookup can place (proxy_names_self) */
};
/* `cfg`'s listeners: listen_host:listen_port and tls_listen[n_tls_listen]. */
enum proxy_target proxy_target_of(const char *authority, bool https, const struct config *cfg);

/* Whether `a` is an address one of arca's listeners at `port` listens on (a wildcard listener:
 * loopback and this machine's interfaces' addresses). No lookup. */
bool proxy_addr_is_self(const struct sockaddr *a, int port, const struct config *cfg);

/* Whether an absolute-form target's authority ("host[:port]", userinfo allowed) of the scheme
 * given (its default port) names this arca, listening where `cfg` says. */
bool proxy_names_self(const char *authority, bool https, const struct config *cfg);

/* The request's Cache-Control max-age in seconds ("no-cache": 0; the smallest of several), or -1
 * when it says none: in proxy form, what the prefix's &ttl= says (apt asks max-age=0 for its
 * index files, so that a proxy revalidates them). */
int64_t proxy_max_age(struct conn *c);
/* The same for one Cache-Control value, given the age found so far (-1: none). */
int64_t proxy_max_age_of(const char *value, int64_t age);
/* A directive's delta-seconds value, `len` bytes at `v` (quoted or not; past 2^31: 2^31), or
 * -1 when it is none. */
int64_t proxy_delta_seconds(const char *v, size_t len);

/* Whether `value` (a Via header's) names this arca: "HOST:PORT (arca)" of upstream_via() as an
 * entry's received-by. */
bool proxy_via_names_self(const char *value);

/* The request's Via lines, read once: VIA_LOOP when one names this arca or when they pass
 * `max` bytes joined (a loop through other proxies: nobody chains that many), out of memory or
 * not; else VIA_OK with *joined their values joined with ", " (malloc'd; NULL when there is
 * none, or out of memory), sent on before arca's own. */
enum via_received { VIA_OK, VIA_LOOP };
enum via_received proxy_via_received(struct conn *c, size_t max, char **joined);

/* Whether a Via line of the request names this arca. */
bool proxy_came_from_self(struct conn *c);

#endif
