/* Units for the persistence thread's queue: jobs run in the order they were submitted, on the
 * persistence thread while it runs and at once on the submitter otherwise, and persist_flush
 * returns only after everything submitted before it has run. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "persist.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(jobs_run_in_order_on_the_thread),
        cmocka_unit_test(stop_runs_what_is_queued),
        cmocka_unit_test(without_the_thread_a_job_runs_at_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
