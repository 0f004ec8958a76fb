/*
 * hosts.h — upstream hosts held down (docs/CACHING.md, "When the origin is down"). A host is a
 * scheme, name and port (as written: no lookup). After --origin-failures consecutive attempts
 * at it that got no answer (refused, reset, timed out), it is held
 * down: attempts at it do not go, but for one probe at a time, due HOSTS_PROBE_FIRST_MS after it
 * went down and then after a wait that doubles up to HOSTS_PROBE_MAX_MS. The first attempt it
 * answers (any status) clears it. Other hosts are never slowed.
 *
 * Contract: hosts_configure runs on main before the upstream thread starts; hosts_admit and
 * hosts_result on the upstream thread; hosts_held and hosts_down_* on any thread. One mutex guards
 * the registry, held for a few comparisons at a time. At most HOSTS_MAX hosts with failures are
 * tracked; past that a new host's failures are not counted (it is never held down) until one
 * recovers.
 */
#ifndef ARCA_HOSTS_H
#define ARCA_HOSTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HOSTS_MAX 256
#define HOSTS_ORIGIN_MAX 300
#define HOSTS_PROBE_FIRST_MS 1000
#define HOSTS_PROBE_MAX_MS 60000

/* A host held down, as the status page and `arca status` show it. */
struct host_down {
    char origin[HOSTS_ORIGIN_MAX]; /* scheme://name:port */
    int64_t since;                 /* wall-clock second it went down */
    int failures;                  /* consecutive failed attempts */
    int64_t probe_in_ms;           /* until its next probe may go (0: due, or one is out) */
};

/* --origin-failures (0: never hold a host down). */
void hosts_configure(int origin_failures);

/* A status that says the origin is failing, not what it holds (RFC 5861 4): 500, 502, 503,
 * 504. A 404 or 403 is upstream's verdict on the object. An expired object answers stale then. */
bool hosts_outage_status(long status);

/* "scheme://name:port" of `url` (the scheme's port when it names none), lower case; "" when it
 * cannot be read. */
void hosts_origin_of(const char *url, char *out, size_t size);

/* Whether an attempt at `url` may go now: true when its host is up, or when this attempt is its
 * probe (*probe set: its hosts_result says so). False when the host is held down: `why` (one
 * line naming the host, since when and how many failures) and *retry_after (seconds until its
 * next probe, at least 1). */
bool hosts_admit(const char *url, int64_t now_ms, bool *probe, char *why, size_t size,
                 int *retry_after);
/* An attempt at `url` ended: `outage` when it got no answer. Any answer, a 5xx too, clears the
 * host: a status is one URL's word, and one URL answering 502 to any client who asks for it
 * must not hold the host down for everyone (docs/SECURITY.md, "Stale answers"). */
void hosts_result(const char *url, bool outage, bool probe, int64_t now_ms);
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
