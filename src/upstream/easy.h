/*
 * easy.h — what every curl handle of the upstream thread shares, below the loop (upstream.c),
 * the downloads (transfer_course.c), mirrors (mirror.c) and probes (probe.c).
 *
 * Contract: struct upstream_loop is the loop's state those files are handed (never a name of
 * upstream.c): the config, the multi handle, the timer heap and the running downloads, all
 * touched on the upstream thread only (upstream_on_thread(), claimed by the thread at its start
 * with upstream_claim_thread()); `stopping` alone is read and set from any thread. Every handle
 * carries a struct handle first (CURLOPT_PRIVATE), so the loop can tell its kind, and gets the
 * same protocols, redirects, address policy, outgoing address, timeouts and TLS (easy_setup),
 * the same host hold
 * (easy_go), the same uplink cap (easy_take) and the same report of its end (easy_ended).
 */
#ifndef ARCA_EASY_H
#define ARCA_EASY_H

#include "config/config.h"
#include "upstream/hosts.h"
#include "upstream/rate.h"
#include "upstream/timer.h"

#include <curl/curl.h>
#include <stdatomic.h>
#include <stdbool.h>

struct bucket_auth;
struct fill;
struct registry;
struct transfer;

/* The loop's state the lower files are handed. */
struct upstream_loop {
    const struct config *cfg;
    CURLM *multi;
    struct timer_heap timers; /* backoffs, probes' retries, housekeeping */
    atomic_bool stopping;
    struct transfer *active; /* started, running or between attempts */
    int n_active;
    struct rate_gate gate; /* --upstream-rate (rate.h) */
    struct fill *retired;  /* parallel fills to free after the pass (fill_sweep) */
    /* Called on the persistence thread once a download's file is made: wakes the loop. */
    void (*wake)(void *arg);
    int64_t (*now_ms)(void); /* the monotonic clock (clock.h); a unit's own in tests */
    /* Asks `url`'s host at its root, from `from`, whether it answers at all, and tells
     * hosts_checked (probe.c: probe_check_host); -1 when it cannot be asked. NULL: never asked
     * (a unit's loop). */
    int (*check_host)(struct upstream_loop *loop, const char *url,
                      const struct outgoing_address *from);
};

/* What every curl handle of this thread carries first (CURLOPT_PRIVATE, the socket callback),
 * whatever its kind (a download, a probe or a document, a fill's range: fill.h): the policies
 * every upstream request obeys live here, so that a kind of handle cannot skip one. Its
 * attempts start with easy_go (the host hold, hosts.h: none goes to a host held down but its
 * probe), its body bytes ask easy_take (the uplink cap, rate.h) and its ends go through
 * easy_ended (what the attempt says of its host, counted as every other's). */
enum handle_kind { HANDLE_TRANSFER, HANDLE_PROBE, HANDLE_SEGMENT };
struct handle {
    enum handle_kind kind;
    char refused[160]; /* why the address policy refused a connection ("": it did not) */
    struct upstream_loop *loop;
    CURL *easy;
    const char *url;          /* what it asks (a source, a mirror, a page): whose host holds it */
    enum host_kind host_kind; /* what its host is asked as: whose policy holds it (hosts.h) */
    bool host_probe;          /* this attempt asks whether its host, held down, is back */
    /* a check of its host's root (probe_check_host): goes though the route is held, as what
     * decides it (one at a time: hosts.h's `checking`) */
    bool root_check;
    struct rate_wait wait; /* its place under the uplink cap, in its owner's flow */
    /* where redirects took it, one URL a line as terms_hop_shown shows it (NULL: not recorded) */
    char *hops;
    size_t hops_size;
    /* the address its connections leave from (outgoing.h): its download's terms' (NULL: the
     * rule's of `url`, else --outgoing-address's) */
    const struct outgoing_address *outgoing;
    /* the registry whose token realm it asks (reg_login.c), NULL none: it obeys that registry's
     * hold, and its 429 holds the registry (easy_ended) */
    const struct registry *realm_of;
};

void upstream_claim_thread(void);
bool upstream_on_thread(void);

/* A redirect's target no URL is spelt as: what a list of hops says of one it could not hold. */
#define EASY_HOP_UNKNOWN "(a redirect arca could not record)"
/* `url` (where a redirect went) added to `hops` (one URL a line, `size` bytes), as
 * terms_hop_shown shows it: no secret, no query but one carrying a URL. One that does not fit is
 * added as EASY_HOP_UNKNOWN. */
void easy_add_hop(char *hops, size_t size, const char *url);

/* Whether `h`'s attempt ended as arca's refusal (rc): the address policy refused a connection,
 * a redirect's target is under another allow-network, or a request not for a URL at a parent's
 * place reached a parent (before_request, rules_names_parent); `refused` says why. */
bool easy_refused(const struct handle *h, CURLcode rc);

/* Protocols, redirects, the address policy, timeouts, TLS: the same for every request. `h`
 * takes `e`, the loop, `url` (kept by the caller for the handle's life) and `flow` (its turn
 * under the uplink cap: the owner's, shared by all its handles). */
void easy_setup(struct handle *h, struct upstream_loop *loop, CURL *e, const char *url,
                struct rate_flow *flow, char *errbuf);
/* The URL the next attempts ask (a download settling on a mirror), kept by the caller, its host
 * asked as an origin. */
void easy_set_url(struct handle *h, const char *url);
/* The same, its host asked as `kind` (a parent; a parent under --parent-only is the download's
 * origin). */
void easy_set_source(struct handle *h, const char *url, enum host_kind kind);

/* What easy_go did with an attempt. */
enum easy_start {
    EASY_ASKING, /* in the multi handle: easy_ended comes */
    EASY_HELD,   /* its host is held down (why, *retry_after): no attempt went */
    EASY_FAILED, /* curl did not take it (out of memory) */
};
/* One attempt of `h`, its request set up: asked of its route's hold (hosts_admit, as
 * h->host_kind, from the address it leaves from; `may_probe`:
 * it may be the attempt that asks whether a held host is back), and a realm's of its
 * registry's hold at its asking (hosts_limited), then into the multi handle. */
enum easy_start easy_go(struct handle *h, bool may_probe, char *why, size_t size, int *retry_after);
/* Whether `h`'s route (a realm's: its registry's) is held at its upstream's asking now
 * (hosts_limited: why, *retry_after unless `why` is NULL). */
bool easy_limited(const struct handle *h, char *why, size_t size, int *retry_after);
/* What the clients of `h`'s attempt that easy_go held are told: 429 when easy_limited, 503
 * when its host is held down. */
int easy_held_status(const struct handle *h);
/* Whether `h`'s chunk of `len` body bytes may be taken now (rate_admit); false: return
 * CURL_WRITEFUNC_PAUSE, the cap lets it go in its turn. */
bool easy_take(struct handle *h, size_t len);
/* The attempt under way ended (`rc`) or is cut: out of the cap's queue and of the multi
 * handle, and what it says of its host told (hosts_word, hosts_result; nothing when arca
 * stops), its probe mark gone however it ended; a silence after its request has the host
 * checked (loop->check_host). A registry's 429, or its 503 with a Retry-After, to a request of
 * its pull API, its /v2/ or its realm (h->realm_of) holds the registry first (hosts_limit). */
void easy_ended(struct handle *h, CURLcode rc);

/* A bucket's request (NULL: none) is SigV4-signed by libcurl with its credentials. */
/* The Via line of arca's upstream requests (upstream_via(), upstream.h): set by upstream_init. */
void easy_via_init(const struct config *cfg);
/* The header lines every request of a handle starts with: what signing for `auth` needs (none
 * when NULL or anonymous), then the Via: `received` (the Via values the client's request came
 * with, NULL: none) followed by arca's. NULL when out of memory. */
struct curl_slist *easy_base_headers(const struct bucket_auth *auth, const char *received);
void easy_sign_for(CURL *e, const struct bucket_auth *auth);
/* The headers a bucket's signature needs and libcurl does not add; NULL when out of memory. */
struct curl_slist *easy_signing_headers(const struct bucket_auth *auth);

/* The host name of `url`, without its port, into `out`. */
void host_name(const char *url, char *out, size_t size);
/* The host name of the URL curl asked last: the source's (origin or mirror), or the target of a
 * redirect it followed. */
void asked_host(CURL *easy, const char *source, char *out, size_t size);
/* The origin of the URL curl asked last, "scheme://host:port" as hosts.c keys hosts (empty when
 * it cannot be read): what a validator speaks for. Two ports of one host are two origins. */
void asked_origin(CURL *easy, const char *source, char *out, size_t size);
/* One header line from curl (not NUL-terminated) into line[size], bounded, its CRLF cut:
 * whether it fitted whole. */
bool copy_header_line(const char *data, size_t len, char *line, size_t size);

#endif
