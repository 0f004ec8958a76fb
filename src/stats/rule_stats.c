/* What each rule's URLs did (rule_stats.h). */
#include "stats/rule_stats.h"
#include "base/hash.h"

#include <pthread.h>
#include <stdio.h>
#include <stdatomic.h>
#include <string.h>

#define THREADS 64
#define NAME_MAX_LEN 64
#define INDEX_SIZE (2 * RULE_STATS_MAX) /* open addressing, at most half full */

enum { REQUESTS, HITS, BYTES, COUNTS };

/* One thread's counters, as latency.c's cells: no line two workers write. */
struct cells {
    _Alignas(64) _Atomic int64_t n[RULE_STATS_MAX][COUNTS];
};
static struct cells cells[THREADS];
static _Atomic int threads_seen;
static _Thread_local struct cells *mine;

/* The names seen, in order; a slot is written once, under `lock`, before the index names it. */
static char names[RULE_STATS_MAX][NAME_MAX_LEN];
static _Atomic int n_names;
static _Atomic int slot_of[INDEX_SIZE]; /* 0: empty; else 1 + the name's slot */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/* The slot of `name` in the index from `h` on: found (>= 0), or -1 with *empty the first empty
 * place met. */
static int find(const char *name, unsigned h, unsigned *empty)
{
    for (unsigned i = 0; i < INDEX_SIZE; i++) {
        unsigned at = (h + i) % INDEX_SIZE;
        int s = atomic_load_explicit(&slot_of[at], memory_order_acquire);
        if (s == 0) {
            *empty = at;
            return -1;
        }
        if (!strcmp(names[s - 1], name))
            return s - 1;
    }
    *empty = INDEX_SIZE;
    return -1;
}

/* The name's slot, made the first time (the last slot, "(other)", once the table is full). */
static int slot(const char *name)
{
    unsigned h = fnv1a(name, FNV1A_START), empty = INDEX_SIZE;
    int s = find(name, h, &empty);
    if (s >= 0)
        return s;
    pthread_mutex_lock(&lock);
    if ((s = find(name, h, &empty)) < 0) {
        int n = atomic_load_explicit(&n_names, memory_order_relaxed);
        if (n < RULE_STATS_MAX - 1 && empty < INDEX_SIZE) {
            snprintf(names[n], NAME_MAX_LEN, "%s", name);
            atomic_store_explicit(&slot_of[empty], n + 1, memory_order_release);
            atomic_store_explicit(&n_names, n + 1, memory_order_release);
            s = n;
        } else {
            s = RULE_STATS_MAX - 1; /* "(other)" */
        }
    }
    pthread_mutex_unlock(&lock);
    return s;
}

void rule_stats_count(const char *rule, bool hit, int64_t bytes)
{
    if (!rule[0])
        return;
    if (!mine) {
        int t = atomic_fetch_add_explicit(&threads_seen, 1, memory_order_relaxed);
        mine = &cells[t < THREADS ? t : THREADS - 1];
    }
    _Atomic int64_t *n = mine->n[slot(rule)];
    atomic_fetch_add_explicit(&n[REQUESTS], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&n[HITS], hit ? 1 : 0, memory_order_relaxed);
    atomic_fetch_add_explicit(&n[BYTES], bytes > 0 ? bytes : 0, memory_order_relaxed);
}

static int64_t sum(int s, int what)
{
    int64_t total = 0;
    int threads = atomic_load_explicit(&threads_seen, memory_order_relaxed);
    for (int t = 0; t < threads && t < THREADS; t++)
        total += atomic_load_explicit(&cells[t].n[s][what], memory_order_relaxed);
    return total;
}

static void family(struct buf *b, const char *name, const char *help, int what)
{
    int n = atomic_load_explicit(&n_names, memory_order_acquire);
    buf_addf(b, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
    for (int s = 0; s < n; s++)
        buf_addf(b, "%s{rule=\"%s\"} %lld\n", name, names[s], (long long)sum(s, what));
    if (sum(RULE_STATS_MAX - 1, REQUESTS) > 0)
        buf_addf(b, "%s{rule=\"(other)\"} %lld\n", name, (long long)sum(RULE_STATS_MAX - 1, what));
}

void rule_stats_metrics(struct buf *b)
{
    family(b, "arca_rule_requests_total", "Fetch requests by the rule that applied.", REQUESTS);
    family(b, "arca_rule_hits_total", "Of them, hits (a fresh copy from disk).", HITS);
    family(b, "arca_rule_served_bytes_total", "Body bytes they were sent.", BYTES);
}
