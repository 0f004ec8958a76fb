#include "stats/stats.h"
#include "persist/index.h"
#include "persist/persist.h"

#include <assert.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct stats stats;

/* Name and address of each persistent counter, in the index's counters table. */
static const struct {
    const char *name;
    _Atomic int64_t *value;
} persistent[] = {
    {"requests", &stats.requests},
    {"successes", &stats.successes},
    {"failures", &stats.failures},
    {"bytes_downloaded", &stats.bytes_downloaded},
    {"bytes_served", &stats.bytes_served},
    {"hits", &stats.hits},
    {"misses", &stats.misses},
    {"coalesced", &stats.coalesced},
    {"errors", &stats.errors},
    {"revalidated", &stats.revalidated},
    {"refused", &stats.refused},
    {"held_down", &stats.held_down},
    {"downloads_failed", &stats.downloads_failed},
    {"download_retries", &stats.download_retries},
    {"download_resumes", &stats.download_resumes},
    {"download_restarts", &stats.download_restarts},
    {"limited", &stats.limited},
    {"signed_hits", &stats.signed_hits},
    {"confirmations", &stats.confirmations},
    {"confirm_refused", &stats.confirm_refused},
    {"confirm_changed", &stats.confirm_changed},
    {"revalidated_unchanged", &stats.revalidated_unchanged},
    {"revalidated_changed", &stats.revalidated_changed},
    {"restart_resumes", &stats.restart_resumes},
    {"mirror_downloads", &stats.mirror_downloads},
    {"fills", &stats.fills},
    {"fill_ranges", &stats.fill_ranges},
    {"fill_stops", &stats.fill_stops},
    {"digest_hits", &stats.digest_hits},
    {"stale_error", &stats.stale_error},
    {"stale_slow", &stats.stale_slow},
    {"stale_revalidate", &stats.stale_revalidate},
    {"refreshes_failed_stale", &stats.refreshes_failed_stale},
    {"held_down_failures", &stats.held_down_failures},
    {"bucket_listings", &stats.bucket_listings},
    {"bucket_list_requests", &stats.bucket_list_requests},
    {"bucket_list_cached", &stats.bucket_list_cached},
};

/* The hourly traffic: a ring indexed by hour % STATS_HOURS; a slot whose hour is not the one
 * asked for is an hour without traffic. `seen` holds the counters as of the last save, so each
 * save adds only what happened since to the current hour. Its lock nests one: stats_load holds
 * it while the index is read, which asks persist_owns_index (persist.c's lock, a leaf). */
static struct {
    pthread_mutex_t lock;
    struct stats_hour ring[STATS_HOURS];
    struct stats_hour seen;
} hours = {.lock = PTHREAD_MUTEX_INITIALIZER};

static int64_t current_hour(void)
{
    return (int64_t)time(NULL) / 3600;
}

static void load_hour(const struct index_hour *h, void *arg)
{
    (void)arg;
    hours.ring[h->hour % STATS_HOURS] =
        (struct stats_hour){h->hour, h->served, h->downloaded, h->requests, h->hits};
}

int64_t stats_ratio_requests(void)
{
    /* a sum of counters that only grow (stats.requests less the refused would shrink for a
     * moment: a request is counted when it comes, its refusal later) */
    return atomic_load(&stats.hits) + atomic_load(&stats.misses) + atomic_load(&stats.coalesced) +
           atomic_load(&stats.revalidated) + atomic_load(&stats.stale_error) +
           atomic_load(&stats.stale_slow) + atomic_load(&stats.stale_revalidate) +
           atomic_load(&stats.errors);
}

int64_t stats_disk_answers(void)
{
    return atomic_load(&stats.hits) + atomic_load(&stats.revalidated) +
           atomic_load(&stats.stale_error) + atomic_load(&stats.stale_slow) +
           atomic_load(&stats.stale_revalidate);
}

static struct stats_hour counters_now(void)
{
    return (struct stats_hour){0, atomic_load(&stats.bytes_served),
                               atomic_load(&stats.bytes_downloaded), stats_ratio_requests(),
                               stats_disk_answers()};
}

void stats_load(void)
{
    assert(persist_owns_index()); /* main, before the persistence threads start */
    for (size_t i = 0; i < sizeof(persistent) / sizeof(persistent[0]); i++) {
        int64_t v;
        if (index_counter_get(persistent[i].name, &v) == 0)
            atomic_store(persistent[i].value, v);
    }
    pthread_mutex_lock(&hours.lock);
    memset(hours.ring, 0, sizeof(hours.ring));
    index_hours_load(current_hour() - STATS_HOURS + 1, load_hour, NULL);
    hours.seen = counters_now();
    pthread_mutex_unlock(&hours.lock);
}

/* Lock held. Add to `h` what the counters did between the last save and `now`. */
static void add_since_save(struct stats_hour *h, const struct stats_hour *now)
{
    /* the four counters only grow: a save never takes traffic away from an hour */
    assert(now->served >= hours.seen.served && now->downloaded >= hours.seen.downloaded &&
           now->requests >= hours.seen.requests && now->hits >= hours.seen.hits);
    h->served += now->served - hours.seen.served;
    h->downloaded += now->downloaded - hours.seen.downloaded;
    h->requests += now->requests - hours.seen.requests;
    h->hits += now->hits - hours.seen.hits;
}

/* Add what happened since the last save to the current hour; returns a copy of that hour. */
static struct stats_hour account_hour(int64_t hour)
{
    struct stats_hour now, *slot = &hours.ring[hour % STATS_HOURS], copy;
    pthread_mutex_lock(&hours.lock);
    /* read under the lock: two saves at once (the upstream thread's last, main's) would else
     * each take the counters, and the later `seen` could go back past the other's */
    now = counters_now();
    if (slot->hour != hour)
        *slot = (struct stats_hour){.hour = hour};
    add_since_save(slot, &now);
    hours.seen = now;
    copy = *slot;
    pthread_mutex_unlock(&hours.lock);
    return copy;
}

#define N_PERSISTENT (sizeof(persistent) / sizeof(persistent[0]))

/* The counters as of one save, written by the persistence thread in one transaction. */
struct save_job {
    struct persist_job job;
    int64_t values[N_PERSISTENT];
    struct index_hour hour;
    struct index_hour earlier; /* the hour before `hour`'s last figures, if it turned while the
                                  job waited (hour 0: none) */
    int64_t forget_before;     /* 0: no hour to forget */
};

/* The save queued and not yet run, which a later save brings up to date rather than queue one
 * more: behind a stalled disk (a held unlink, removals slower than a second) the saves would
 * otherwise pile up one a second, each writing what the next overwrites. */
static struct {
    pthread_mutex_t lock;
    struct save_job *queued;
} saves = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void run_save(struct persist_job *job)
{
    struct save_job *sv = (struct save_job *)job;
    assert(persist_owns_index());
    pthread_mutex_lock(&saves.lock); /* from here on, a save queues a job of its own */
    if (saves.queued == sv)
        saves.queued = NULL;
    pthread_mutex_unlock(&saves.lock);
    index_begin();
    for (size_t i = 0; i < N_PERSISTENT; i++)
        index_counter_set(persistent[i].name, sv->values[i]);
    if (sv->earlier.hour)
        index_hour_set(&sv->earlier);
    index_hour_set(&sv->hour);
    if (sv->forget_before)
        index_hours_forget(sv->forget_before);
    index_commit();
    free(sv);
}

/* Lock held: the queued save, if any, given `values` and the figures of `row`'s hour. False:
 * none is queued, or it holds two hours already (the disk stalled for an hour). */
static bool update_queued(const int64_t *values, const struct index_hour *row,
                          int64_t forget_before)
{
    struct save_job *sv = saves.queued;
    if (!sv)
        return false;
    if (sv->hour.hour != row->hour) {
        if (sv->earlier.hour)
            return false;
        sv->earlier = sv->hour; /* that hour's last figures are written too */
        sv->forget_before = forget_before;
    }
    memcpy(sv->values, values, sizeof(sv->values));
    sv->hour = *row;
    return true;
}

void stats_save(void)
{
    static int64_t last_hour;
    int64_t hour = current_hour(), values[N_PERSISTENT];
    struct stats_hour h = account_hour(hour);
    struct index_hour row = {h.hour, h.served, h.downloaded, h.requests, h.hits};
    int64_t forget_before = hour != last_hour ? hour - STATS_HOURS + 1 : 0;
    struct save_job *sv = NULL;

    for (size_t i = 0; i < N_PERSISTENT; i++)
        values[i] = atomic_load(persistent[i].value);
    pthread_mutex_lock(&saves.lock);
    bool updated = update_queued(values, &row, forget_before);
    if (!updated && !(sv = malloc(sizeof(*sv)))) {
        pthread_mutex_unlock(&saves.lock);
        return; /* the next save writes the same counters, and the hour has them */
    }
    last_hour = hour; /* the hours before the ring's forgotten by this save */
    if (!updated) {
        *sv = (struct save_job){.job.run = run_save, .hour = row, .forget_before = forget_before};
        memcpy(sv->values, values, sizeof(sv->values));
        saves.queued = sv; /* before the submit, which runs it at once before persist_start */
    }
    pthread_mutex_unlock(&saves.lock);
    if (updated)
        return;
    /* nobody waits for it: queued once a second behind removals slower than that, a job
     * someone waited for would keep them from ever pausing for the hits (pace.h) */
    persist_submit_background(&sv->job);
}

void stats_hours(struct stats_hour *out, int n)
{
    int64_t hour = current_hour();
    struct stats_hour now, *last = &out[n - 1];
    assert(n > 0 && n <= STATS_HOURS);
    pthread_mutex_lock(&hours.lock);
    now = counters_now(); /* after `seen`, under the same lock: no negative share */
    for (int i = 0; i < n; i++) {
        int64_t want = hour - (n - 1) + i;
        const struct stats_hour *slot = &hours.ring[want % STATS_HOURS];
        out[i] = slot->hour == want ? *slot : (struct stats_hour){.hour = want};
    }
    add_since_save(last, &now); /* the current hour as of now, not as of the last save */
    pthread_mutex_unlock(&hours.lock);
}

/* --- families of counters named at run time ------------------------------------------------ */

struct family_load {
    const struct stats_family *f;
    void (*each)(const char *key, size_t key_len, int k, int64_t value, void *arg);
    void *arg;
};

/* One row "PREFIX KEY WHAT": KEY and WHAT split at the last blank (a key holds none). */
static void take_row(const char *name, int64_t value, void *arg)
{
    const struct family_load *l = arg;
    const char *key = name + strlen(l->f->prefix), *blank = strrchr(key, ' ');
    int k;
    if (!blank || blank == key || (size_t)(blank - key) >= STATS_KEY_MAX)
        return;
    for (k = 0; k < l->f->n && strcmp(blank + 1, l->f->what(k)) != 0; k++)
        ;
    if (k < l->f->n)
        l->each(key, (size_t)(blank - key), k, value, l->arg);
}

void stats_family_load(const struct stats_family *f,
                       void (*each)(const char *key, size_t key_len, int k, int64_t value,
                                    void *arg),
                       void *arg)
{
    struct family_load l = {f, each, arg};
    assert(persist_owns_index()); /* main, before the persistence threads start */
    index_counters_each(f->prefix, take_row, &l);
}

/* The rows of one family's save, written by the persistence thread in one transaction. */
struct family_job {
    struct persist_job job;
    const struct stats_family *f;
    int n, cap; /* rows held, and room for */
    struct {
        char name[STATS_KEY_MAX + 64];
        int64_t value;
    } row[];
};

/* Each family's save queued and not yet run (under saves.lock), which a later save of the family
 * merges its rows into, as stats_save's. */
#define FAMILIES_MAX 8
static struct family_job *families_queued[FAMILIES_MAX];

static void run_family_job(struct persist_job *job)
{
    struct family_job *c = (struct family_job *)job;
    assert(persist_owns_index());
    pthread_mutex_lock(&saves.lock); /* from here on, a save of the family queues its own */
    for (int i = 0; i < FAMILIES_MAX; i++)
        if (families_queued[i] == c)
            families_queued[i] = NULL;
    pthread_mutex_unlock(&saves.lock);
    index_begin();
    for (int i = 0; i < c->n; i++)
        index_counter_set(c->row[i].name, c->row[i].value);
    index_commit();
    free(c);
}

/* The row of `into` named `name`, or -1. */
static int row_named(const struct family_job *into, const char *name)
{
    for (int i = 0; i < into->n; i++)
        if (strcmp(into->row[i].name, name) == 0)
            return i;
    return -1;
}

/* Lock held: `c`'s rows into the queued save of its family, their values updated or the rows
 * added. False, nothing changed: none queued, or no room for the rows it lacks (keys added). */
static bool merge_queued(const struct family_job *c)
{
    struct family_job *into = NULL;
    int lacking = 0;
    for (int i = 0; i < FAMILIES_MAX && !into; i++)
        if (families_queued[i] && families_queued[i]->f == c->f)
            into = families_queued[i];
    if (!into)
        return false;
    for (int i = 0; i < c->n; i++)
        lacking += row_named(into, c->row[i].name) < 0;
    if (into->n + lacking > into->cap)
        return false;
    for (int i = 0; i < c->n; i++) {
        int at = row_named(into, c->row[i].name);
        if (at < 0)
            into->row[at = into->n++] = c->row[i];
        into->row[at].value = c->row[i].value;
    }
    return true;
}

/* Lock held: `c` as its family's queued save, if a slot is free (more families than slots:
 * each save of the others is a job of its own). */
static void note_queued(struct family_job *c)
{
    for (int i = 0; i < FAMILIES_MAX; i++) {
        if (!families_queued[i] || families_queued[i]->f == c->f) {
            families_queued[i] = c;
            return;
        }
    }
}

void stats_family_save(const struct stats_family *f, const char *const keys[], int n,
                       const int64_t *v, int64_t *saved)
{
    struct family_job *c;
    int rows = 0;
    if (n == 0 || !(c = malloc(sizeof(*c) + (size_t)(n * f->n) * sizeof(c->row[0]))))
        return; /* the next save writes them */
    for (int i = 0; i < n * f->n; i++) {
        if (v[i] == saved[i])
            continue;
        snprintf(c->row[rows].name, sizeof(c->row[0].name), "%s%.*s %.40s", f->prefix,
                 STATS_KEY_MAX - 1, keys[i / f->n], f->what(i % f->n));
        c->row[rows++].value = saved[i] = v[i];
    }
    if (rows == 0) {
        free(c);
        return;
    }
    c->job.run = run_family_job;
    c->f = f;
    c->n = rows;
    c->cap = n * f->n;
    pthread_mutex_lock(&saves.lock);
    bool merged = merge_queued(c);
    if (!merged)
        note_queued(c);
    pthread_mutex_unlock(&saves.lock);
    if (merged)
        free(c);
    else
        persist_submit_background(&c->job); /* nobody waits for it (stats_save) */
}
