/*
 * latency.h — how long fetch requests took, by outcome: the time to the answer's head (its
 * first byte) and to its end, as histograms (/metrics: arca_request_duration_seconds) and the
 * percentiles the statistics page draws.
 *
 * Contract: latency_record() is called once per fetch request (the server's done, any worker
 * thread); it writes only the calling thread's own cells (LATENCY_THREADS of them, a thread
 * beyond shares the last: every write is an atomic add, so sharing is correct, only slower).
 * Readers (latency_read) sum every thread's cells and may run on any thread at any time: a
 * reading may miss a request being recorded, never see half of one's bucket count. Nothing
 * here allocates or locks.
 */
#ifndef ARCA_LATENCY_H
#define ARCA_LATENCY_H

#include "base/buf.h"

#include <stdint.h>

/* A fetch request's outcome, as the access log's cache column says it. */
enum latency_outcome {
    LAT_HIT,
    LAT_MISS,
    LAT_COALESCED,
    LAT_REVALIDATED,
    LAT_STALE,
    LAT_CUT,
    LAT_ERROR,
    LAT_REFUSED,
    LAT_HELD_DOWN,
    LAT_OUTCOMES,
};
enum latency_phase { LAT_FIRST_BYTE, LAT_TOTAL, LAT_PHASES };

/* Upper bounds of the buckets, in microseconds (Prometheus `le`, a last +Inf beyond them). */
#define LATENCY_BUCKETS 18
extern const int64_t latency_bounds_us[LATENCY_BUCKETS];

/* The outcome a cache column names (access_log.h; "MISS:origin" is a miss), or -1 for none of a
 * fetch's (a TUNNEL, "-"). */
int latency_outcome_of(const char *cache);
/* The outcome's name as /metrics labels it ("hit", "held_down"). */
const char *latency_outcome_name(enum latency_outcome o);

/* One request of outcome `o`: its head queued `first_byte_us` and its end `total_us` after its
 * head came in. */
void latency_record(enum latency_outcome o, int64_t first_byte_us, int64_t total_us);

/* One histogram, summed over threads: counts per bucket (not cumulative; the last is +Inf),
 * their number and the sum of their durations. */
struct latency_hist {
    uint64_t bucket[LATENCY_BUCKETS + 1];
    uint64_t count;
    uint64_t sum_us;
};
void latency_read(enum latency_outcome o, enum latency_phase p, struct latency_hist *out);
/* The `q` quantile (0 < q < 1) of `h` in seconds: the upper bound of the bucket it falls in
 * (the last finite bound for +Inf); NAN when `h` is empty. */
double latency_quantile(const struct latency_hist *h, double q);

/* The family arca_request_duration_seconds{outcome,phase} (phase "first_byte" or "total"), in
 * Prometheus' text format, appended to `b`; an outcome no request had is left out. */
void latency_metrics(struct buf *b);

#endif
