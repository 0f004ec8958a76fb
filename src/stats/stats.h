/*
 * stats.h — the counters behind /api/v1/status/ and /metrics.
 *
 * Contract: lock-free (C11 atomics), bumped from any thread on the hot path. The persistent ones
 * (KissCache's statistics_*) are loaded from the index at start and, every second and at
 * shutdown, copied by the upstream thread and written by the persistence thread (persist.h), so
 * they survive restarts. So do the families of counters named at run time (a parent's, a
 * registry's: struct stats_family), and the traffic of each hour of the last STATS_HOURS (table
 * `hours` of the index), kept in memory for the statistics page.
 */
#ifndef ARCA_STATS_H
#define ARCA_STATS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct stats {
    /* persistent */
    _Atomic int64_t requests;  /* fetch requests answered */
    _Atomic int64_t successes; /* fetch requests answered 2xx */
    _Atomic int64_t failures;  /* fetch requests answered with an error (not refused, held down) */
    _Atomic int64_t bytes_downloaded; /* body bytes received from upstream */
    _Atomic int64_t bytes_served;     /* body bytes sent to clients */
    /* Fetch requests by result, each counted once: from disk (hits), downloaded (misses),
     * joined (coalesced), renewed by a 304 (revalidated), an error; an expired version's answer
     * counts under its cause below (stale_*), a refused client (403) under `refused`, a host
     * held down (503), or its registry held at its own asking (429), under `held_down`. The last
     * two are left out of the hit ratio. */
    _Atomic int64_t hits, misses, coalesced, revalidated, errors;
    _Atomic int64_t refused;   /* clients not allowed to fetch (--allow-network, a rule's
                                  allow-network) refused: fetches and CONNECTs */
    _Atomic int64_t held_down; /* fetch requests answered 503 (their host held down) or 429 (a
                                  registry's hold), upstream not asked */
    _Atomic int64_t downloads_failed;  /* upstream downloads that failed (not held down) */
    _Atomic int64_t download_retries;  /* attempts started after a fault */
    _Atomic int64_t download_resumes;  /* attempts that continued with a 206 */
    _Atomic int64_t download_restarts; /* attempts that started over from zero */
    _Atomic int64_t limited;           /* requests refused by a limit */
    _Atomic int64_t signed_hits;       /* hits served through a signed URL (keys.h) */
    _Atomic int64_t confirmations;     /* signed URLs asked of upstream before a hit */
    _Atomic int64_t confirm_refused;   /* ... that upstream refused (the client got its status) */
    _Atomic int64_t confirm_changed;   /* ... that showed another version: fetched again */
    _Atomic int64_t revalidated_unchanged; /* expired objects upstream answered 304: renewed */
    _Atomic int64_t revalidated_changed;   /* ... answered with a new body */
    _Atomic int64_t restart_resumes;       /* downloads taken up again after a restart */
    _Atomic int64_t mirror_downloads;      /* downloads served by a --mirror */
    _Atomic int64_t fills;                 /* downloads split into ranges (upstream/fill.h) */
    _Atomic int64_t fill_ranges;           /* ... requests for their ranges */
    _Atomic int64_t fill_stops;            /* ... fills stopped: another version, or a lie */
    /* Answers from an expired version, by why (store.h, enum stale_cause): */
    _Atomic int64_t stale_error, stale_slow, stale_revalidate;
    _Atomic int64_t refreshes_failed_stale; /* refreshes that failed upstream: expired kept */
    _Atomic int64_t held_down_failures;     /* downloads failed at once: their host held down */
    _Atomic int64_t digest_hits;          /* requests served from another URL's identical object */
    _Atomic int64_t bucket_listings;      /* bucket folders answered (HTML pages, JSON documents) */
    _Atomic int64_t bucket_list_requests; /* ListObjectsV2 requests sent to S3 */
    _Atomic int64_t bucket_list_cached;   /* listing pages answered from the cache */
    _Atomic int64_t proxy_requests;       /* absolute-form requests fetched (arca as a proxy) */
    _Atomic int64_t tunnels;              /* CONNECT tunnels opened */
    _Atomic int64_t tunnels_refused;      /* CONNECT requests refused */
    _Atomic int64_t tunnels_active;       /* CONNECT tunnels open now */
    _Atomic int64_t tunnel_bytes_up;      /* bytes tunnels carried from clients upstream */
    _Atomic int64_t tunnel_bytes_down;    /* ... and from upstream to clients */
    _Atomic int64_t idle_closed;          /* idle keep-alive connections closed for new ones */
    /* live */
    _Atomic int64_t connections;
    _Atomic int64_t downloads_active;
};

extern struct stats stats;

#define STATS_HOURS 720 /* 30 days */

struct stats_hour {
    int64_t hour; /* Unix time / 3600 */
    /* requests: those the hit ratio counts (stats_ratio_requests), hits: answered from disk
     * (stats_disk_answers) */
    int64_t served, downloaded, requests, hits;
};

/* The hit ratio's denominator: fetch requests answered, but for the refused and held down ones
 * (arca did not get to try them). Grows only, as the hours need. */
int64_t stats_ratio_requests(void);

/* The hit ratio's numerator: fetch requests answered from disk, which upstream did not send the
 * body of: fresh hits, expired versions answered stale, and versions renewed by a 304. Coalesced
 * requests are not: their bytes came from upstream, once for all of them. */
int64_t stats_disk_answers(void);

/* Main thread, after the index is open. */
void stats_load(void);
/* Upstream thread: persist the counters and this hour's traffic, a job nobody waits for
 * (persist_submit_background; so is stats_family_save's). One such job at most is queued: while
 * it waits, a later save brings it up to date instead (the hour's figures, and the last
 * figures of the hour before when the hour turned; a disk stalled past a second turn queues
 * one more). */
void stats_save(void);
/* A family of counters whose keys are known only at run time, kept in the index's counters
 * table beside the ones above as "PREFIX KEY WHAT" (a parent's: "parent URL requests"; a
 * registry's: "registry NAME pulls"). The owner holds the values and reads them back at start;
 * a key no longer in use keeps its rows, so its counts come back with it. KEY holds no blank. */
struct stats_family {
    const char *prefix;         /* "parent ", with its blank */
    const char *(*what)(int k); /* the name of a key's k-th value */
    int n;                      /* how many values a key has */
};
#define STATS_KEY_MAX 512
/* Main, with stats_load: each row of `f` to `each`: its key (`key_len` bytes, no NUL), which
 * value (k) and the value. Rows `f` has no name for are left out. */
void stats_family_load(const struct stats_family *f,
                       void (*each)(const char *key, size_t key_len, int k, int64_t value,
                                    void *arg),
                       void *arg);
/* Upstream thread, with stats_save: of `n` keys' values (keys[i]'s k-th at v[i * f->n + k]),
 * those that differ from `saved` (the same shape: what the last save wrote, updated here),
 * written by the persistence thread in one transaction. While the family's last save waits in
 * the queue, the rows go into it instead, unless it lacks room for them (keys added since). */
void stats_family_save(const struct stats_family *f, const char *const keys[], int n,
                       const int64_t *v, int64_t *saved);

/* Any thread: the last `n` hours (n <= STATS_HOURS), oldest first, the current one last; hours
 * without traffic come back zeroed. */
void stats_hours(struct stats_hour *out, int n);

#endif
