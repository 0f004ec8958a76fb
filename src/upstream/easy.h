/*
 * easy.h — what every curl handle of the upstream thread shares, below the loop (upstream.c),
 * the downloads (transfer.c), mirrors (mirror.c) and probes (probe.c).
 *
 * Contract: struct upstream_loop is the loop's state those files are handed (never a name of
 * upstream.c): the config, the multi handle, the timer heap and the running downloads, all
 * touched on the upstream thread only (upstream_on_thread(), claimed by the thread at its start
 * with upstream_claim_thread()); `stopping` alone is read and set from any thread. Every handle
 * carries a struct handle first (CURLOPT_PRIVATE), so the loop can tell its kind, and gets the
 * same protocols, redirects, address policy, timeouts and TLS (easy_setup).
 */
#ifndef ARCA_EASY_H
#define ARCA_EASY_H

#include "config/config.h"
#include "upstream/rate.h"
#include "upstream/timer.h"

#include <curl/curl.h>
#include <stdatomic.h>
#include <stdbool.h>

struct bucket_auth;
struct fill;
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
};

/* What every curl handle of this thread carries first (CURLOPT_PRIVATE, the socket callback):
 * which kind of work it is (a download, a probe, a fill's range: fill.h), and why the address
 * policy refused a connection. */
enum handle_kind { HANDLE_TRANSFER, HANDLE_PROBE, HANDLE_SEGMENT };
struct handle {
    enum handle_kind kind;
    char refused[160];
};

void upstream_claim_thread(void);
bool upstream_on_thread(void);

/* Protocols, redirects, the address policy, timeouts, TLS: the same for every request. */
void easy_setup(CURL *e, const struct config *cfg, const char *url, struct handle *h, char *errbuf);
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
