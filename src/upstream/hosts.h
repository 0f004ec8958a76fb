/*
 * hosts.h — upstream hosts held down (docs/CACHING.md, "When the origin is down"). A host is a
 * scheme, name and port (as written: no lookup). After --origin-failures consecutive attempts
 * at it whose connection was refused or timed out before the request went (HOST_DOWN), it is
 * held down: attempts at it do not go, but for one probe at a time, due HOSTS_PROBE_FIRST_MS
 * after it went down and then after a wait that doubles up to HOSTS_PROBE_MAX_MS. The first
 * attempt whose request went (HOST_UP: any answer, a redirect too) clears it. What one URL does
 * after its request went (a reset, a stall, a 5xx) says nothing against the host: any client
 * can ask for such a URL. Other hosts are never slowed.
 *
 * Contract: hosts_configure runs on main before the upstream thread starts; hosts_admit and
 * hosts_result on the upstream thread; hosts_held and hosts_down_* on any thread. One mutex guards
 * the registry, held for a few comparisons at a time (a pass over HOSTS_MAX entries at most once
 * a HOSTS_SWEEP_MS). Times in ms are monotonic_ms()'s. At most HOSTS_MAX hosts with failures are
 * tracked: a host neither failing nor asked for HOSTS_IDLE_MS leaves the table, and a new
 * failing host takes the place of the least useful one when it is full (one not held before one
 * held, the one asked for longest ago first), so that a burst of dead hosts never keeps a later
 * outage from being held.
 */
#ifndef ARCA_HOSTS_H
#define ARCA_HOSTS_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HOSTS_MAX 256
#define HOSTS_ORIGIN_MAX 300
#define HOSTS_PROBE_FIRST_MS 1000
#define HOSTS_PROBE_MAX_MS 60000
#define HOSTS_IDLE_MS (5 * HOSTS_PROBE_MAX_MS)
#define HOSTS_SWEEP_MS 1000

/* What the end of an attempt says of its host. */
enum host_word {
    HOST_SAID_NOTHING, /* arca refused the address, the name did not resolve, the attempt was
                          cut or never went, or arca stops */
    HOST_UP,           /* the request went: an answer came (a redirect too), or none after it */
    HOST_DOWN,         /* the connection was refused, or timed out before the request went */
};

/* A host held down, as the status page and `arca status` show it. */
struct host_down {
    char origin[HOSTS_ORIGIN_MAX]; /* scheme://name:port */
    int64_t since;                 /* wall-clock second it went down */
    int failures;                  /* consecutive failed attempts */
    int64_t probe_in_ms;           /* until its next probe may go (0: due, or one is out) */
};

/* --origin-failures (0: never hold a host down). */
void hosts_configure(int origin_failures);

/* "scheme://name:port" of `url` (the scheme's port when it names none), lower case; "" when it
 * cannot be read. */
void hosts_origin_of(const char *url, char *out, size_t size);

/* Whether an attempt at `url` may go now: true when its host is up, or when this attempt is its
 * probe (*probe set: its hosts_result says so; only when `may_probe`: a download started
 * without a slot must not be the probe, which runs within the download limits). False when the
 * host is held down: `why` (one line naming the host, since when and how many failures) and
 * *retry_after (seconds until its next probe, at least 1). */
bool hosts_admit(const char *url, int64_t now_ms, bool may_probe, bool *probe, char *why,
                 size_t size, int *retry_after);
/* What curl's end of an attempt (`rc`, on `easy`) says of its host; `refused`: arca's address
 * policy refused an address it was to connect to. */
enum host_word hosts_word(CURL *easy, CURLcode rc, bool refused);
/* An attempt at `url` ended (or was cut), saying `word` of its host. Any request that went, a
 * 5xx's too, clears the host: one URL answering 502, or resetting, to any client who asks for it
 * must not hold the host down for everyone (docs/SECURITY.md, "Stale answers"). A `probe`'s
 * mark goes however it ended: HOST_SAID_NOTHING leaves the host held, its next probe due after
 * the same wait. */
void hosts_result(const char *url, enum host_word word, bool probe, int64_t now_ms);
/* Whether an attempt at `url` would be refused (hosts_admit false) from now to `until_ms`: its
 * host held down, and its probe out or not due by then. Takes no mark: an attempt that may be
 * the probe gets it from hosts_admit as it starts. */
bool hosts_refuses(const char *url, int64_t now_ms, int64_t until_ms);
/* A download of held `url` that has no slot waits for one to be its host's probe, the probe
 * being due by `until_ms`: true when it is the one (no probe out, none waiting), marked until a
 * download of the host that may probe reaches hosts_admit (it, or one that found a slot first);
 * meanwhile hosts_refuses is true for the host's other downloads, which fail at once. False:
 * another waits or probes, or the host is not held. */
bool hosts_await_probe(const char *url, int64_t until_ms);
/* Whether any host is held down now: one atomic load, for loops that would ask of many. */
bool hosts_any_down(void);
/* Whether `url`'s host is held down now (a mirror is passed over then). */
bool hosts_held(const char *url);
/* How many hosts are held down now. */
size_t hosts_down_count(void);
/* The hosts held down now, copied in one hold of the registry's lock (malloc'd, the caller
 * frees it), their number in *n; NULL when there are none (or out of memory: *n is 0 then). */
struct host_down *hosts_down_list(size_t *n, int64_t now_ms);

#endif
