/* Units for the persistence threads' queues: jobs run in the order they were submitted, on the
 * persistence thread while it runs and at once on the submitter otherwise, and persist_flush
 * returns only after everything submitted before it has run. A sync job fsyncs on the sync
 * queue's thread and then runs on the ordered one; a slow fsync holds up no ordered job; and a
 * download that fails while its file syncs leaves neither file nor row, and does not touch the
 * next download's part file. The removals' unlinks pause for the disk's pace (pace.h) only
 * while nobody waits for the ordered queue. This suite is linked with -Wl,--wrap=fsync and
 * --wrap=unlink (meson.build): the wrappers below hold a sync-thread fsync until the test lets
 * it go, and make an ordered-thread unlink take a millisecond when the test asks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/sha.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "persist/pace.h"
#include "persist/persist.h"
#include "store/store.h"
#include "store_fixture.h"
#include "unit_tmp.h"

/* --- a gate on the sync thread's fsync ------------------------------------------------------ */

int __real_fsync(int fd);

static struct {
    pthread_mutex_t lock;
    pthread_cond_t change;
    bool armed, inside;
} gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, false};

int __wrap_fsync(int fd)
{
    pthread_mutex_lock(&gate.lock);
    if (gate.armed && persist_on_sync_thread()) {
        gate.inside = true;
        pthread_cond_broadcast(&gate.change);
        while (gate.armed)
            pthread_cond_wait(&gate.change, &gate.lock);
        gate.inside = false;
    }
    pthread_mutex_unlock(&gate.lock);
    return __real_fsync(fd);
}

/* A flag shared with a persistence thread: set, and waited for, under its lock. */
static void flag_set(pthread_mutex_t *lock, pthread_cond_t *change, bool *flag, bool value)
{
    pthread_mutex_lock(lock);
    *flag = value;
    pthread_cond_broadcast(change);
    pthread_mutex_unlock(lock);
}

static void flag_wait(pthread_mutex_t *lock, pthread_cond_t *change, const bool *flag, bool value)
{
    pthread_mutex_lock(lock);
    while (*flag != value)
        pthread_cond_wait(change, lock);
    pthread_mutex_unlock(lock);
}

static void gate_arm(void)
{
    flag_set(&gate.lock, &gate.change, &gate.armed, true);
}

/* Until a sync-thread fsync waits at the gate. */
static void gate_wait_inside(void)
{
    flag_wait(&gate.lock, &gate.change, &gate.inside, true);
}

static void gate_open(void)
{
    flag_set(&gate.lock, &gate.change, &gate.armed, false);
}

/* Until the ordered queue has run everything (the sync queue may still hold its job), 10 s at
 * most. Waited for by polling, never persist_flush: a caller there is someone waiting, for whom
 * the removals take no pause (pace.h). */
static void wait_ordered_idle(void)
{
    for (int i = 0; i < 10000 && persist_depth(PERSIST_ORDERED) > 0; i++)
        usleep(1000);
    assert_int_equal(persist_depth(PERSIST_ORDERED), 0);
}

#define JOBS 1000

struct numbered {
    struct persist_job job;
    int n;
};

static int order[JOBS], ran;
static bool on_thread[JOBS];

static void record(struct persist_job *job)
{
    struct numbered *j = (struct numbered *)job;
    if (j->n == 0)
        usleep(20000); /* a slow first job: what follows must still wait its turn */
    on_thread[ran] = persist_on_thread();
    order[ran++] = j->n;
    free(j);
}

static void submit(int n)
{
    struct numbered *j = malloc(sizeof(*j));
    assert_non_null(j);
    j->job.run = record;
    j->n = n;
    persist_submit(&j->job);
}

static void jobs_run_in_order_on_the_thread(void **state)
{
    char err[128];
    (void)state;
    ran = 0;
    assert_int_equal(persist_start(err, sizeof(err)), 0);
    for (int i = 0; i < JOBS; i++)
        submit(i);
    persist_flush();
    assert_int_equal(ran, JOBS); /* flush waited for all of them, the slow one included */
    for (int i = 0; i < JOBS; i++) {
        assert_int_equal(order[i], i);
        assert_true(on_thread[i]);
    }
    persist_stop();
}

static void stop_runs_what_is_queued(void **state)
{
    char err[128];
    (void)state;
    ran = 0;
    assert_int_equal(persist_start(err, sizeof(err)), 0);
    for (int i = 0; i < 10; i++)
        submit(i);
    persist_stop();
    assert_int_equal(ran, 10);
    assert_true(persist_stopping());
}

static void without_the_thread_a_job_runs_at_once(void **state)
{
    (void)state;
    ran = 0;
    submit(7);
    assert_int_equal(ran, 1); /* no flush needed */
    assert_int_equal(order[0], 7);
    assert_false(on_thread[0]);
    persist_flush(); /* returns at once */
}

/* --- groups: neighbours sharing one transaction -------------------------------------------- */

static char events[4 * JOBS]; /* 'B' begin, 'E' end, 'g' a grouped job, 'p' a plain one */
static int nevents, group_runs;

static void group_begin(void)
{
    events[nevents++] = 'B';
}

static void group_end(void)
{
    events[nevents++] = 'E';
}

static const struct persist_group a_group = {.begin = group_begin, .end = group_end};

static void noted(struct persist_job *job)
{
    struct numbered *j = (struct numbered *)job;
    if (j->n < 0)
        usleep(50000); /* a slow first job: the others are queued behind it meanwhile */
    events[nevents++] = j->n > 0 ? 'g' : 'p';
    group_runs++;
    free(j);
}

/* n < 0: plain and slow; 0: plain; > 0: of a_group. */
static void submit_noted(int n)
{
    struct numbered *j = malloc(sizeof(*j));
    assert_non_null(j);
    j->job.run = noted;
    j->n = n;
    if (n > 0)
        persist_submit_grouped(&j->job, &a_group);
    else
        persist_submit(&j->job);
}

static void neighbours_of_a_group_share_one_begin_and_end(void **state)
{
    char err[128];
    (void)state;
    nevents = group_runs = 0;
    assert_int_equal(persist_start(err, sizeof(err)), 0);
    submit_noted(-1);
    for (int i = 1; i <= 3; i++)
        submit_noted(i);
    submit_noted(0);
    submit_noted(1);
    submit_noted(2);
    persist_flush();
    /* the group ended before flush returned: its jobs count as done only then */
    events[nevents] = '\0';
    assert_string_equal(events, "pBgggEpBggE");
    persist_stop();
}

static void a_long_run_of_a_group_ends_every_group_max_jobs(void **state)
{
    char err[128];
    (void)state;
    nevents = group_runs = 0;
    assert_int_equal(persist_start(err, sizeof(err)), 0);
    submit_noted(-1);
    for (int i = 1; i <= PERSIST_GROUP_MAX + 5; i++)
        submit_noted(i);
    persist_flush();
    assert_int_equal(group_runs, PERSIST_GROUP_MAX + 6);
    int begins = 0, ends = 0, inside = 0, most = 0;
    for (int i = 0; i < nevents; i++) {
        begins += events[i] == 'B';
        ends += events[i] == 'E';
        inside = events[i] == 'B' ? 0 : inside + (events[i] == 'g');
        most = inside > most ? inside : most;
    }
    assert_int_equal(begins, 2);
    assert_int_equal(ends, 2);
    assert_int_equal(most, PERSIST_GROUP_MAX);
    assert_int_equal(events[nevents - 1], 'E');
    persist_stop();
}

static void without_the_thread_a_grouped_job_runs_alone(void **state)
{
    (void)state;
    nevents = group_runs = 0;
    submit_noted(1);
    assert_int_equal(nevents, 1); /* run at once, no transaction begun for it */
    assert_int_equal(events[0], 'g');
}

/* --- the two queues ------------------------------------------------------------------------ */

struct two_step {
    struct persist_job job;
    int fd;
    bool synced_on_sync_thread, ran_on_ordered_thread;
    bool *done;
};

static void two_step_sync(struct persist_job *job)
{
    struct two_step *t = (struct two_step *)job;
    t->synced_on_sync_thread = persist_on_sync_thread() && fsync(t->fd) == 0;
}

static void two_step_run(struct persist_job *job)
{
    struct two_step *t = (struct two_step *)job;
    t->ran_on_ordered_thread = persist_on_thread();
    *t->done = true;
}

/* A sync job held in its fsync: ordered jobs submitted after it run meanwhile; both depths say
 * where the work is; flush waits for the follow-up on the ordered queue. */
static void a_slow_sync_holds_up_no_ordered_job(void **state)
{
    char err[128], name[UNIT_TMP_MAX] = "/tmp/arca-unit-persist-XXXXXX";
    bool done = false;
    (void)state;
    int fd = mkstemp(unit_tmp(name, sizeof(name)));
    assert_true(fd >= 0);
    unlink(name);
    struct two_step t = {
        .job = {.run = two_step_run, .sync = two_step_sync}, .fd = fd, .done = &done};
    ran = 0;
    assert_int_equal(persist_start(err, sizeof(err)), 0);
    gate_arm();
    persist_submit_sync(&t.job);
    gate_wait_inside();
    for (int i = 1; i <= 5; i++)
        submit(i);
    wait_ordered_idle();
    assert_int_equal(ran, 5); /* not behind the fsync */
    assert_int_equal(persist_depth(PERSIST_SYNC), 1);
    assert_int_equal(persist_depth(PERSIST_ORDERED), 0);
    assert_false(done);
    gate_open();
    persist_flush();
    assert_true(done);
    assert_true(t.synced_on_sync_thread);
    assert_true(t.ran_on_ordered_thread);
    assert_int_equal(persist_depth(PERSIST_SYNC), 0);
    persist_stop();
    close(fd);
}

static void without_the_threads_a_sync_job_runs_at_once(void **state)
{
    bool done = false;
    struct two_step t = {
        .job = {.run = two_step_run, .sync = two_step_sync}, .fd = -1, .done = &done};
    (void)state;
    persist_submit_sync(&t.job);
    assert_true(done);
    assert_false(t.synced_on_sync_thread || t.ran_on_ordered_thread);
}

/* --- a download that fails while its file syncs ------------------------------------------- */

static char dir[UNIT_TMP_MAX] = "/tmp/arca-unit-persist-store-XXXXXX";

static int open_store(void **state)
{
    (void)state;
    return fixture_store_open(dir, NULL);
}

static int close_store(void **state)
{
    (void)state;
    return fixture_store_close(dir);
}

static void file_ready(void *arg)
{
    (void)arg;
}

/* A miss with its file begun and `body` appended, as the upstream thread makes it. */
static struct object *downloading(const char *url, const char *body)
{
    struct object *obj;
    struct object_meta meta;
    int fd;
    struct upstream_headers h = {"text/plain", "", "", "", "", ""};
    assert_int_equal(store_lookup(url, 3600, &obj, &fd, NULL, &meta), LOOKUP_MISS);
    assert_int_equal(store_begin_file(obj, "http://h/", file_ready, NULL), 0);
    wait_ordered_idle();
    assert_int_equal(store_file_ready(obj), 1);
    assert_int_equal(store_begin_body(obj, (int64_t)strlen(body), &h, true), 0);
    assert_int_equal(store_append(obj, body, strlen(body)), 0);
    return obj;
}

/* The download's end is queued and its fsync held at the gate. */
static void finish_held(struct object *obj, const char *body)
{
    uint8_t digest[32];
    SHA256((const unsigned char *)body, strlen(body), digest);
    gate_arm();
    assert_int_equal(store_finish(obj, digest), 0);
    gate_wait_inside();
}

static void paths(const char *url, char *file, char *part, size_t size)
{
    unsigned char md[32];
    char key[65];
    SHA256((const unsigned char *)url, strlen(url), md);
    for (int i = 0; i < 32; i++)
        sprintf(key + 2 * i, "%02x", md[i]);
    snprintf(file, size, "%s/objects/%.2s/%s", dir, key, key);
    snprintf(part, size, "%s.part", file);
}

/* The row's state for `url` ("" when there is none), read from the index file itself. */
static void row_state(const char *url, char *out, size_t size)
{
    char path[128];
    sqlite3 *db;
    sqlite3_stmt *q;
    snprintf(path, sizeof(path), "%s/index.sqlite", dir);
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(
        sqlite3_prepare_v2(db, "SELECT state FROM objects WHERE url = ?", -1, &q, NULL), SQLITE_OK);
    sqlite3_bind_text(q, 1, url, -1, SQLITE_STATIC);
    snprintf(out, size, "%s",
             sqlite3_step(q) == SQLITE_ROW ? (const char *)sqlite3_column_text(q, 0) : "");
    sqlite3_finalize(q);
    sqlite3_close(db);
}

static void failed_during_its_sync_leaves_no_file_and_no_row(void **state)
{
    const char *url = "http://h/slow-sync-fails";
    char file[256], part[256], row[32];
    (void)state;
    struct object *obj = downloading(url, "hello");
    finish_held(obj, "hello");
    store_fail(obj, 502, "gone while it synced"); /* its removal runs meanwhile */
    wait_ordered_idle();
    gate_open();
    persist_flush();
    paths(url, file, part, sizeof(part));
    assert_int_not_equal(access(file, F_OK), 0); /* not renamed into place */
    assert_int_not_equal(access(part, F_OK), 0);
    row_state(url, row, sizeof(row));
    assert_string_equal(row, "");
    store_release(obj);
    store_release(obj);
}

static void failed_during_its_sync_leaves_the_next_download_alone(void **state)
{
    const char *url = "http://h/slow-sync-next";
    char file[256], part[256], row[32], body[16] = "";
    (void)state;
    struct object *old = downloading(url, "hello");
    finish_held(old, "hello");
    store_fail(old, 502, "gone while it synced");
    struct object *next = downloading(url, "NEXT!"); /* its own part file and row */
    assert_true(next != old);
    gate_open();
    persist_flush();
    paths(url, file, part, sizeof(part));
    assert_int_not_equal(access(file, F_OK), 0);
    FILE *f = fopen(part, "r");
    assert_non_null(f);
    assert_int_equal(fread(body, 1, sizeof(body) - 1, f), 5);
    fclose(f);
    assert_string_equal(body, "NEXT!");
    row_state(url, row, sizeof(row));
    assert_string_equal(row, "fetching");
    store_fail(next, 502, "test over");
    persist_flush();
    store_release(next);
    store_release(next);
    store_release(old);
    store_release(old);
}

/* --- the removals' pace (pace.h) ------------------------------------------------------------ */

int __real_unlink(const char *path);

static atomic_bool slow_unlinks; /* an ordered-thread unlink takes SLOW_UNLINK_US */
#define SLOW_UNLINK_US 1000
static atomic_int unlink_us = SLOW_UNLINK_US;
static atomic_int slow_unlinks_done;

int __wrap_unlink(const char *path)
{
    if (atomic_load(&slow_unlinks) && persist_on_thread()) {
        usleep((useconds_t)atomic_load(&unlink_us));
        atomic_fetch_add(&slow_unlinks_done, 1);
    }
    return __real_unlink(path);
}

static void pace_owes_a_pause_in_proportion_once_a_burst_has_run(void **state)
{
    struct pace p = {0}, q = {0};
    (void)state;
    assert_int_equal(pace_owed(&p, 1500), 0);
    assert_int_equal(pace_owed(&p, PACE_BURST_US - 1500 - 1), 0);
    /* a burst's unlinks at PACE_SHARE_PCT of the thread's time: the rest of it paused */
    assert_int_equal(pace_owed(&p, 1), PACE_BURST_US * (100 - PACE_SHARE_PCT) / PACE_SHARE_PCT);
    assert_int_equal(pace_owed(&p, 100), 0); /* counted from nothing again */
    /* one long unlink (a big file's blocks freed) owes as much in proportion */
    assert_int_equal(pace_owed(&q, 10 * PACE_BURST_US),
                     10 * PACE_BURST_US * (100 - PACE_SHARE_PCT) / PACE_SHARE_PCT);
}

/* A background job of `unlinks` slow unlinks, held until the test lets it go; `then_other`:
 * it queues a plain job behind itself first, which then waits for it. */
struct unlinker {
    struct persist_job job;
    int unlinks;
    bool then_other;
};

static struct {
    pthread_mutex_t lock;
    pthread_cond_t change;
    bool go, running;
} hold = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, false};

static void run_unlinker(struct persist_job *job)
{
    struct unlinker *u = (struct unlinker *)job;
    char path[4200];
    flag_set(&hold.lock, &hold.change, &hold.running, true);
    flag_wait(&hold.lock, &hold.change, &hold.go, true);
    if (u->then_other)
        submit(0);
    snprintf(path, sizeof(path), "%s/never-made", dir);
    for (int i = 0; i < u->unlinks; i++)
        pace_unlink(path);
    free(u);
}

static void submit_unlinker(int unlinks, bool then_other)
{
    struct unlinker *u = calloc(1, sizeof(*u));
    assert_non_null(u);
    u->job.run = run_unlinker;
    u->unlinks = unlinks;
    u->then_other = then_other;
    hold.go = hold.running = false;
    persist_submit_background(&u->job);
}

static void let_go(void)
{
    flag_set(&hold.lock, &hold.change, &hold.go, true);
}

static void until_running(void)
{
    flag_wait(&hold.lock, &hold.change, &hold.running, true);
}

/* Setup: the threads running, an ordered-thread unlink slow; pace_paused_us() noted. */
static int64_t paused_before;

static int slow_unlinks_on(void **state)
{
    char err[128];
    (void)state;
    ran = 0;
    assert_int_equal(persist_start(err, sizeof(err)), 0);
    atomic_store(&slow_unlinks, true);
    paused_before = pace_paused_us();
    return 0;
}

static int slow_unlinks_off(void **state)
{
    (void)state;
    let_go(); /* a test failed before it let its unlinker go: the stop would wait for it */
    atomic_store(&slow_unlinks, false);
    atomic_store(&unlink_us, SLOW_UNLINK_US);
    persist_stop();
    return 0;
}

static void removals_pause_while_nobody_waits_for_the_queue(void **state)
{
    (void)state;
    /* two bursts' worth of unlinks (each takes SLOW_UNLINK_US at least) */
    submit_unlinker(2 * PACE_BURST_US / SLOW_UNLINK_US, false);
    until_running();
    assert_false(persist_others_wait()); /* a background job alone */
    let_go();
    wait_ordered_idle();
    int64_t paused = pace_paused_us() - paused_before;
    assert_true(paused >= 2 * PACE_BURST_US * (100 - PACE_SHARE_PCT) / PACE_SHARE_PCT);
}

static void removals_go_at_full_pace_while_a_plain_job_waits(void **state)
{
    (void)state;
    submit_unlinker(2 * PACE_BURST_US / SLOW_UNLINK_US, true);
    until_running();
    let_go();
    wait_ordered_idle();
    assert_int_equal(ran, 1); /* the plain job queued behind the unlinks ran */
    assert_int_equal(pace_paused_us() - paused_before, 0);
    assert_false(persist_others_wait());
}

static void *settle_thread(void *arg)
{
    (void)arg;
    persist_settle();
    return NULL;
}

static void removals_go_at_full_pace_while_a_caller_settles(void **state)
{
    pthread_t waiter;
    (void)state;
    submit_unlinker(2 * PACE_BURST_US / SLOW_UNLINK_US, false);
    until_running();
    assert_int_equal(pthread_create(&waiter, NULL, settle_thread, NULL), 0);
    for (int i = 0; i < 10000 && !persist_others_wait(); i++)
        usleep(1000); /* until the waiter is inside persist_settle */
    assert_true(persist_others_wait());
    let_go();
    assert_int_equal(pthread_join(waiter, NULL), 0);
    assert_int_equal(pace_paused_us() - paused_before, 0);
    assert_false(persist_others_wait());
}

/* One unlink of 400 ms owes a pause of 600: a caller that begins to settle meanwhile ends it at
 * once (the pause waits on the queue's condition, which a waiter signals), not 600 ms later. */
static void a_pause_under_way_ends_when_a_caller_begins_to_wait(void **state)
{
    enum { LONG_UNLINK_US = 400000 };
    (void)state;
    atomic_store(&unlink_us, LONG_UNLINK_US);
    atomic_store(&slow_unlinks_done, 0);
    submit_unlinker(1, false);
    until_running();
    let_go();
    for (int i = 0; i < 10000 && atomic_load(&slow_unlinks_done) == 0; i++)
        usleep(1000); /* until the unlink is over: its pause begins */
    assert_int_equal(atomic_load(&slow_unlinks_done), 1);
    persist_settle();
    int64_t paused = pace_paused_us() - paused_before;
    assert_true(paused < LONG_UNLINK_US * (100 - PACE_SHARE_PCT) / PACE_SHARE_PCT);
}

int main(void)
{
    unit_tmp(dir, sizeof(dir));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(jobs_run_in_order_on_the_thread),
        cmocka_unit_test(stop_runs_what_is_queued),
        cmocka_unit_test(without_the_thread_a_job_runs_at_once),
        cmocka_unit_test(neighbours_of_a_group_share_one_begin_and_end),
        cmocka_unit_test(a_long_run_of_a_group_ends_every_group_max_jobs),
        cmocka_unit_test(without_the_thread_a_grouped_job_runs_alone),
        cmocka_unit_test(a_slow_sync_holds_up_no_ordered_job),
        cmocka_unit_test(without_the_threads_a_sync_job_runs_at_once),
        cmocka_unit_test(pace_owes_a_pause_in_proportion_once_a_burst_has_run),
        cmocka_unit_test_setup_teardown(removals_pause_while_nobody_waits_for_the_queue,
                                        slow_unlinks_on, slow_unlinks_off),
        cmocka_unit_test_setup_teardown(removals_go_at_full_pace_while_a_plain_job_waits,
                                        slow_unlinks_on, slow_unlinks_off),
        cmocka_unit_test_setup_teardown(removals_go_at_full_pace_while_a_caller_settles,
                                        slow_unlinks_on, slow_unlinks_off),
        cmocka_unit_test_setup_teardown(a_pause_under_way_ends_when_a_caller_begins_to_wait,
                                        slow_unlinks_on, slow_unlinks_off),
        cmocka_unit_test_setup_teardown(failed_during_its_sync_leaves_no_file_and_no_row,
                                        open_store, close_store),
        cmocka_unit_test_setup_teardown(failed_during_its_sync_leaves_the_next_download_alone,
                                        open_store, close_store),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
