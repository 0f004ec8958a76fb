/* Units for the counters (stats.h): what stats_save wrote, stats_load finds after a restart (and
 * a family of counters named at run time, what stats_family_load finds); the
 * hourly traffic shows the current hour as of now (saved or not), earlier hours without traffic
 * zeroed, and nothing counted twice across saves. The index is a real one, in a temporary dir;
 * no persistence thread runs, so each save's job runs at once (persist.h), but in the scenario
 * of the saves beside removals, which starts it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "persist/index.h"
#include "persist/persist.h"
#include "persist_gate.h"
#include "stats/stats.h"
#include "unit_tmp.h"

static char dir[UNIT_TMP_MAX] = "/tmp/arca-unit-stats-XXXXXX";

/* The clock the counters' hours are read by (linked with --wrap=time): half an hour into an
 * hour at each test's start (setup), so that no hour turns in the middle of one, unless the test
 * moves it on. */
static time_t time_ahead;
time_t __real_time(time_t *t);
time_t __wrap_time(time_t *t);
time_t __wrap_time(time_t *t)
{
    time_t now = __real_time(NULL) + time_ahead;
    if (t)
        *t = now;
    return now;
}

static bool no_partial(const struct index_row *row, void *arg)
{
    (void)row, (void)arg;
    return false;
}

static void on_discard(const char *key, void *arg)
{
    (void)key, (void)arg;
}

static void open_index(void)
{
    char path[128], err[256];
    struct index_loader load = {no_partial, on_discard, NULL};
    snprintf(path, sizeof(path), "%s/index.sqlite", dir);
    assert_int_equal(index_open(path, &load, err, sizeof(err)), 0);
}

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(dir))
        return -1;
    time_ahead = 1800 - __real_time(NULL) % 3600;
    memset(&stats, 0, sizeof(stats));
    open_index();
    stats_load();
    return 0;
}

static int teardown(void **state)
{
    char cmd[128];
    (void)state;
    index_close();
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    int rc = system(cmd);
    memcpy(dir + strlen(dir) - 6, "XXXXXX", 6); /* the next test's mkdtemp */
    return rc;
}

/* A restart: the process's counters start from zero, the index's are loaded into them. */
static void restart(void)
{
    index_close();
    memset(&stats, 0, sizeof(stats));
    open_index();
    stats_load();
}

/* `requests` fetch requests answered, `hits` of them from disk, the others downloaded. */
static void serve(int64_t requests, int64_t hits, int64_t bytes)
{
    atomic_fetch_add(&stats.requests, requests);
    atomic_fetch_add(&stats.hits, hits);
    atomic_fetch_add(&stats.misses, requests - hits);
    atomic_fetch_add(&stats.bytes_served, bytes);
}

static void saved_counters_survive_a_restart(void **state)
{
    (void)state;
    serve(10, 7, 4096);
    atomic_fetch_add(&stats.bucket_list_cached, 3);
    atomic_fetch_add(&stats.connections, 5); /* live: not kept */
    stats_save();
    restart();
    assert_int_equal(atomic_load(&stats.requests), 10);
    assert_int_equal(atomic_load(&stats.hits), 7);
    assert_int_equal(atomic_load(&stats.bytes_served), 4096);
    assert_int_equal(atomic_load(&stats.bucket_list_cached), 3);
    assert_int_equal(atomic_load(&stats.connections), 0);
}

static void unsaved_counters_are_lost_by_a_crash_only(void **state)
{
    (void)state;
    serve(1, 1, 1);
    stats_save();
    serve(2, 2, 2); /* never saved: a kill -9 now */
    restart();
    assert_int_equal(atomic_load(&stats.requests), 1);
}

static void the_current_hour_counts_what_happened_since_start(void **state)
{
    struct stats_hour h[3];
    int64_t hour = (int64_t)time(NULL) / 3600;
    (void)state;
    serve(4, 3, 100);
    stats_save();
    serve(2, 1, 50); /* not saved yet: still shown */
    stats_hours(h, 3);
    assert_int_equal(h[2].hour, hour);
    assert_int_equal(h[2].requests, 6);
    assert_int_equal(h[2].hits, 4);
    assert_int_equal(h[2].served, 150);
    for (int i = 0; i < 2; i++) { /* no traffic: zeroed, but named */
        assert_int_equal(h[i].hour, hour - 2 + i);
        assert_int_equal(h[i].requests + h[i].hits + h[i].served + h[i].downloaded, 0);
    }
}

static void saves_never_count_traffic_twice(void **state)
{
    struct stats_hour h[1];
    (void)state;
    serve(5, 0, 0);
    stats_save();
    stats_save(); /* nothing since the last one */
    serve(1, 0, 0);
    stats_save();
    stats_hours(h, 1);
    assert_int_equal(h[0].requests, 6);
    restart(); /* the hour's row says the same */
    stats_hours(h, 1);
    assert_int_equal(h[0].requests, 6);
}

/* A refused client and a host held down are requests arca did not try: the hour's hit ratio
 * leaves them out (issue 51). */
static void refused_requests_stay_out_of_the_hit_ratio(void **state)
{
    struct stats_hour h[1];
    (void)state;
    serve(4, 2, 0);
    atomic_fetch_add(&stats.requests, 5);
    atomic_fetch_add(&stats.refused, 3);
    atomic_fetch_add(&stats.held_down, 2);
    stats_save();
    stats_hours(h, 1);
    assert_int_equal(h[0].requests, 4);
    assert_int_equal(h[0].hits, 2);
    assert_int_equal(stats_ratio_requests(), 4);
    restart(); /* counted apart across a restart too */
    assert_int_equal(atomic_load(&stats.refused), 3);
    assert_int_equal(atomic_load(&stats.held_down), 2);
}

/* "Answered from disk" is every answer upstream did not send the body of: fresh hits, stale
 * answers, 304 renewals; not a request joined to a download (it counted fresh hits only). */
static void the_hours_count_every_answer_from_disk(void **state)
{
    struct stats_hour h[1];
    (void)state;
    serve(2, 1, 0); /* a miss, a hit */
    atomic_fetch_add(&stats.requests, 5);
    atomic_fetch_add(&stats.revalidated, 1);
    atomic_fetch_add(&stats.stale_error, 1);
    atomic_fetch_add(&stats.stale_slow, 1);
    atomic_fetch_add(&stats.stale_revalidate, 1);
    atomic_fetch_add(&stats.coalesced, 1);
    stats_save();
    stats_hours(h, 1);
    assert_int_equal(h[0].requests, 7);
    assert_int_equal(h[0].hits, 5);
    assert_int_equal(stats_disk_answers(), 5);
}

/* A family of counters named at run time (a parent's, a registry's): each key's values come
 * back after a restart; a key saved no longer keeps its rows; a row of a value the family does
 * not name is left out; a key's name is split from its value's at the last blank. */
static const char *fruit(int k)
{
    static const char *const what[] = {"apples", "pears"};
    return what[k];
}

static const struct stats_family basket = {"basket ", fruit, 2};

static int64_t found[2][2]; /* "left", "http://x/y": their apples and pears */

static void take(const char *key, size_t len, int k, int64_t value, void *arg)
{
    (void)arg;
    assert_true(k >= 0 && k < 2);
    if (len == 4 && !strncmp(key, "left", 4))
        found[0][k] = value;
    else if (len == 10 && !strncmp(key, "http://x/y", 10))
        found[1][k] = value;
    else
        fail_msg("unexpected key %.*s", (int)len, key);
}

static void a_family_of_counters_survives_a_restart(void **state)
{
    const char *keys[] = {"left", "http://x/y"};
    int64_t v[2][2] = {{1, 2}, {3, 4}}, saved[2][2] = {{0}};
    (void)state;
    stats_family_save(&basket, keys, 2, &v[0][0], &saved[0][0]);
    assert_memory_equal(saved, v, sizeof(v));
    index_counter_set("basket left plums", 9); /* a value it has no name for */
    v[0][0] = 5;
    stats_family_save(&basket, keys, 1, &v[0][0], &saved[0][0]); /* "http://x/y" gone */
    restart();
    memset(found, 0, sizeof(found));
    stats_family_load(&basket, take, NULL);
    assert_int_equal(found[0][0], 5);
    assert_int_equal(found[0][1], 2);
    assert_int_equal(found[1][0], 3); /* kept for when it comes back */
    assert_int_equal(found[1][1], 4);
}

/* The counters are saved once a second, and an eviction's or a purge's removals may take longer
 * than that to get through the queue: were the saves jobs someone waits for, one would always be
 * queued, and the removals would never pause for the hits (pace.h; test_big_evict saw no pause
 * in a whole eviction of 40,000 beside a loaded CI run). */
static void counters_saved_behind_removals_leave_them_their_pace(void **state)
{
    struct gate_job gate = GATE_JOB;
    const char *keys[] = {"left"};
    int64_t v[1][2] = {{1, 2}}, saved[1][2] = {{0}};
    char err[128];
    (void)state;
    assert_int_equal(persist_start(err, sizeof(err)), 0);
    persist_submit_background(&gate.job); /* the removals' disk, stalled */
    serve(3, 2, 100);
    stats_save();
    stats_family_save(&basket, keys, 1, &v[0][0], &saved[0][0]);
    bool waited_for = persist_others_wait(); /* asserted once the thread is let go */
    open_gate(&gate);
    persist_stop(); /* runs what is queued: the saves are written all the same */
    assert_false(waited_for);
    restart();
    assert_int_equal(atomic_load(&stats.requests), 3);
    memset(found, 0, sizeof(found));
    stats_family_load(&basket, take, NULL);
    assert_int_equal(found[0][1], 2);
}

/* A disk stalled for seconds (a held unlink, removals slower than a second): the once-a-second
 * saves queue one job each, the counters' and a family's, which the later ones bring up to date,
 * never one more per second; what they write is the counters as of the last save, the hour's
 * figures included. A key added while one waits (a parent configured) has a job of its own. */
static void saves_behind_a_stalled_disk_queue_one_job(void **state)
{
    struct gate_job gate = GATE_JOB;
    struct stats_hour hour[1];
    const char *keys[] = {"left", "http://x/y"};
    int64_t v[2][2] = {{0}}, saved[2][2] = {{0}};
    char err[128];
    (void)state;
    assert_int_equal(persist_start(err, sizeof(err)), 0);
    persist_submit_background(&gate.job);
    for (int second = 0; second < 5; second++) {
        serve(2, 1, 10);
        stats_save();
        v[0][second % 2] += 1; /* one row changed, then the other */
        stats_family_save(&basket, keys, 1, &v[0][0], &saved[0][0]);
    }
    size_t queued = persist_depth(PERSIST_ORDERED); /* asserted once the thread is let go */
    v[1][1] = 7;
    stats_family_save(&basket, keys, 2, &v[0][0], &saved[0][0]); /* no room in the queued one */
    size_t grown = persist_depth(PERSIST_ORDERED);
    open_gate(&gate);
    persist_stop();
    assert_int_equal(queued, 3); /* the gate and one save of each */
    assert_int_equal(grown, 4);
    restart();
    assert_int_equal(atomic_load(&stats.requests), 10);
    stats_hours(hour, 1);
    assert_int_equal(hour[0].requests, 10);
    assert_int_equal(hour[0].served, 50);
    memset(found, 0, sizeof(found));
    stats_family_load(&basket, take, NULL);
    assert_int_equal(found[0][0], 3);
    assert_int_equal(found[0][1], 2);
    assert_int_equal(found[1][1], 7);
}

/* The same across an hour's turn: the one job queued writes the hour that ended as its last
 * save left it, and the new one. */
static void saves_across_an_hours_turn_behind_a_stalled_disk_queue_one_job(void **state)
{
    struct gate_job gate = GATE_JOB;
    struct stats_hour h[2];
    char err[128];
    (void)state;
    int64_t ended = time(NULL) / 3600;
    assert_int_equal(persist_start(err, sizeof(err)), 0);
    persist_submit_background(&gate.job);
    serve(2, 1, 10);
    stats_save();
    serve(1, 1, 5);
    stats_save();
    time_ahead += 3600;
    serve(3, 0, 20);
    stats_save();
    size_t queued = persist_depth(PERSIST_ORDERED);
    open_gate(&gate);
    persist_stop();
    restart();
    stats_hours(h, 2);
    assert_int_equal(queued, 2); /* the gate and one save */
    assert_int_equal(atomic_load(&stats.requests), 6);
    assert_int_equal(h[0].hour, ended);
    assert_int_equal(h[0].requests, 3);
    assert_int_equal(h[0].served, 15);
    assert_int_equal(h[1].hour, ended + 1);
    assert_int_equal(h[1].requests, 3);
    assert_int_equal(h[1].served, 20);
}

int main(void)
{
    unit_tmp(dir, sizeof(dir));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(saved_counters_survive_a_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(unsaved_counters_are_lost_by_a_crash_only, setup, teardown),
        cmocka_unit_test_setup_teardown(the_current_hour_counts_what_happened_since_start, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(refused_requests_stay_out_of_the_hit_ratio, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(saves_never_count_traffic_twice, setup, teardown),
        cmocka_unit_test_setup_teardown(the_hours_count_every_answer_from_disk, setup, teardown),
        cmocka_unit_test_setup_teardown(a_family_of_counters_survives_a_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(counters_saved_behind_removals_leave_them_their_pace, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(saves_behind_a_stalled_disk_queue_one_job, setup, teardown),
        cmocka_unit_test_setup_teardown(
            saves_across_an_hours_turn_behind_a_stalled_disk_queue_one_job, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
