/* How long fetch requests took, by outcome (latency.h). */
#include "stats/latency.h"

#include <assert.h>
#include <math.h>
#include <stdatomic.h>
#include <string.h>

/* 100 µs to 5 min: a hit from the page cache takes tens of µs, a cold GiB minutes */
const int64_t latency_bounds_us[LATENCY_BUCKETS] = {
    100,    250,    500,    1000,    2500,    5000,    10000,    25000,    50000,
    100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000, 60000000, 300000000,
};

#define LATENCY_THREADS 64

/* One thread's histograms: its own cache lines, so that worker threads never write the same
 * line on the hot path. */
struct cells {
    _Alignas(64) _Atomic uint64_t bucket[LAT_OUTCOMES][LAT_PHASES][LATENCY_BUCKETS + 1];
    _Atomic uint64_t sum_us[LAT_OUTCOMES][LAT_PHASES];
};

static struct cells cells[LATENCY_THREADS];
static _Atomic int threads_seen;
static _Thread_local struct cells *mine;

static const char *const names[LAT_OUTCOMES] = {
    [LAT_HIT] = "hit",
    [LAT_MISS] = "miss",
    [LAT_COALESCED] = "coalesced",
    [LAT_REVALIDATED] = "revalidated",
    [LAT_STALE] = "stale",
    [LAT_CUT] = "cut",
    [LAT_ERROR] = "error",
    [LAT_REFUSED] = "refused",
    [LAT_HELD_DOWN] = "held_down",
};

/* The access log's words (access_log.h) for each outcome. */
static const char *const columns[LAT_OUTCOMES] = {
    [LAT_HIT] = "HIT",
    [LAT_MISS] = "MISS",
    [LAT_COALESCED] = "COALESCED",
    [LAT_REVALIDATED] = "REVALIDATED",
    [LAT_STALE] = "STALE",
    [LAT_CUT] = "CUT",
    [LAT_ERROR] = "ERROR",
    [LAT_REFUSED] = "REFUSED",
    [LAT_HELD_DOWN] = "HELD_DOWN",
};

int latency_outcome_of(const char *cache)
{
    size_t n = strcspn(cache, ":"); /* "MISS:parent": a miss, wherever its bytes came from */
    for (int o = 0; o < LAT_OUTCOMES; o++)
        if (strlen(columns[o]) == n && !strncmp(cache, columns[o], n))
            return o;
    return -1;
}

const char *latency_outcome_name(enum latency_outcome o)
{
    assert(o >= 0 && o < LAT_OUTCOMES);
    return names[o];
}

static int bucket_of(int64_t us)
{
    int i = 0;
    while (i < LATENCY_BUCKETS && us > latency_bounds_us[i])
        i++;
    return i;
}

static struct cells *own_cells(void)
{
    if (!mine) {
        int n = atomic_fetch_add_explicit(&threads_seen, 1, memory_order_relaxed);
        mine = &cells[n < LATENCY_THREADS ? n : LATENCY_THREADS - 1];
    }
    return mine;
}

void latency_record(enum latency_outcome o, int64_t first_byte_us, int64_t total_us)
{
    assert(o >= 0 && o < LAT_OUTCOMES);
    struct cells *c = own_cells();
    int64_t us[LAT_PHASES] = {first_byte_us < 0 ? 0 : first_byte_us, total_us < 0 ? 0 : total_us};
    for (int p = 0; p < LAT_PHASES; p++) {
        atomic_fetch_add_explicit(&c->bucket[o][p][bucket_of(us[p])], 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&c->sum_us[o][p], (uint64_t)us[p], memory_order_relaxed);
    }
}

void latency_read(enum latency_outcome o, enum latency_phase p, struct latency_hist *out)
{
    assert(o >= 0 && o < LAT_OUTCOMES && p >= 0 && p < LAT_PHASES);
    int n = atomic_load_explicit(&threads_seen, memory_order_relaxed);
    memset(out, 0, sizeof(*out));
    for (int t = 0; t < n && t < LATENCY_THREADS; t++) {
        for (int i = 0; i <= LATENCY_BUCKETS; i++) {
            uint64_t k = atomic_load_explicit(&cells[t].bucket[o][p][i], memory_order_relaxed);
            out->bucket[i] += k;
            out->count += k;
        }
        out->sum_us += atomic_load_explicit(&cells[t].sum_us[o][p], memory_order_relaxed);
    }
}

double latency_quantile(const struct latency_hist *h, double q)
{
    assert(q > 0 && q < 1);
    if (h->count == 0)
        return NAN;
    uint64_t want = (uint64_t)ceil(q * (double)h->count), seen = 0;
    for (int i = 0; i < LATENCY_BUCKETS; i++)
        if ((seen += h->bucket[i]) >= want)
            return (double)latency_bounds_us[i] / 1e6;
    return (double)latency_bounds_us[LATENCY_BUCKETS - 1] / 1e6;
}

static const char *const phases[LAT_PHASES] = {"first_byte", "total"};

static void histogram_lines(struct buf *b, enum latency_outcome o, enum latency_phase p)
{
    struct latency_hist h;
    uint64_t cumulative = 0;
    latency_read(o, p, &h);
    if (h.count == 0)
        return;
    for (int i = 0; i < LATENCY_BUCKETS; i++) {
        cumulative += h.bucket[i];
        buf_addf(b,
                 "arca_request_duration_seconds_bucket{outcome=\"%s\",phase=\"%s\",le=\"%g\"} "
                 "%llu\n",
                 names[o], phases[p], (double)latency_bounds_us[i] / 1e6,
                 (unsigned long long)cumulative);
    }
    buf_addf(b,
             "arca_request_duration_seconds_bucket{outcome=\"%s\",phase=\"%s\",le=\"+Inf\"} "
             "%llu\n"
             "arca_request_duration_seconds_sum{outcome=\"%s\",phase=\"%s\"} %.6f\n"
             "arca_request_duration_seconds_count{outcome=\"%s\",phase=\"%s\"} %llu\n",
             names[o], phases[p], (unsigned long long)h.count, names[o], phases[p],
             (double)h.sum_us / 1e6, names[o], phases[p], (unsigned long long)h.count);
}

void latency_metrics(struct buf *b)
{
    buf_add(b, "# HELP arca_request_duration_seconds Fetch requests' time from their head to their "
               "answer's head (phase first_byte) and to its end (phase total), by outcome.\n"
               "# TYPE arca_request_duration_seconds histogram\n");
    for (int o = 0; o < LAT_OUTCOMES; o++)
        for (int p = 0; p < LAT_PHASES; p++)
            histogram_lines(b, (enum latency_outcome)o, (enum latency_phase)p);
}
