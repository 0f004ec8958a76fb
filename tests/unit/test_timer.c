/* Units for the timer heap (timer.h): what fires, in which order, and what a cancel takes away. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>

#include "upstream/timer.h"

/* What fired, in order: each timer's arg is its number. */
static int fired[4096];
static int n_fired;

static void record(void *arg)
{
    fired[n_fired++] = (int)(intptr_t)arg;
}

static int setup(void **state)
{
    (void)state;
    n_fired = 0;
    return 0;
}

static void timers_fire_in_order_of_due_time(void **state)
{
    (void)state;
    struct timer_heap h = {0};
    struct timer t[5];
    int64_t due[5] = {500, 100, 300, 200, 400};
    for (int i = 0; i < 5; i++) {
        timer_init(&t[i]);
        assert_int_equal(timer_arm(&h, &t[i], due[i], record, (void *)(intptr_t)i), 0);
    }
    assert_int_equal(timer_wait_ms(&h, 0, 1000), 100);
    assert_int_equal(timer_run(&h, 99), 0);
    assert_int_equal(timer_run(&h, 300), 3);
    assert_int_equal(n_fired, 3);
    assert_int_equal(fired[0], 1);
    assert_int_equal(fired[1], 3);
    assert_int_equal(fired[2], 2);
    assert_int_equal(timer_wait_ms(&h, 300, 1000), 100);
    assert_int_equal(timer_run(&h, 1000), 2);
    assert_int_equal(fired[3], 4);
    assert_int_equal(fired[4], 0);
    assert_int_equal(timer_wait_ms(&h, 1000, 1000), 1000); /* none armed: the idle wait */
    timer_heap_free(&h);
}

static void equal_due_times_fire_in_arming_order(void **state)
{
    (void)state;
    struct timer_heap h = {0};
    struct timer t[8];
    for (int i = 0; i < 8; i++) {
        timer_init(&t[i]);
        assert_int_equal(timer_arm(&h, &t[i], 50, record, (void *)(intptr_t)i), 0);
    }
    assert_int_equal(timer_run(&h, 50), 8);
    for (int i = 0; i < 8; i++)
        assert_int_equal(fired[i], i);
    timer_heap_free(&h);
}

static void a_cancelled_timer_never_fires(void **state)
{
    (void)state;
    struct timer_heap h = {0};
    struct timer t[4];
    for (int i = 0; i < 4; i++) {
        timer_init(&t[i]);
        assert_int_equal(timer_arm(&h, &t[i], 10 * (i + 1), record, (void *)(intptr_t)i), 0);
    }
    timer_cancel(&h, &t[0]); /* the nearest: the next wait is the second's */
    timer_cancel(&h, &t[2]);
    timer_cancel(&h, &t[2]); /* not armed any more: nothing */
    assert_int_equal(t[0].slot, TIMER_IDLE);
    assert_int_equal(timer_wait_ms(&h, 0, 1000), 20);
    assert_int_equal(timer_run(&h, 100), 2);
    assert_int_equal(fired[0], 1);
    assert_int_equal(fired[1], 3);
    timer_heap_free(&h);
}

static void arming_an_armed_timer_moves_it(void **state)
{
    (void)state;
    struct timer_heap h = {0};
    struct timer a, b;
    timer_init(&a);
    timer_init(&b);
    assert_int_equal(timer_arm(&h, &a, 10, record, (void *)1), 0);
    assert_int_equal(timer_arm(&h, &b, 20, record, (void *)2), 0);
    assert_int_equal(timer_arm(&h, &a, 30, record, (void *)1), 0);
    assert_int_equal(timer_wait_ms(&h, 0, 1000), 20);
    assert_int_equal(timer_run(&h, 30), 2);
    assert_int_equal(n_fired, 2);
    assert_int_equal(fired[0], 2);
    assert_int_equal(fired[1], 1);
    timer_heap_free(&h);
}

/* A timer may arm itself again from its own callback (a once-a-second chore). */
static struct timer_heap *again_heap;
static struct timer again;
static void rearm(void *arg)
{
    record(arg);
    if (n_fired < 3)
        timer_arm(again_heap, &again, again.due_ms + 1000, rearm, arg);
}

static void a_callback_may_arm_its_own_timer(void **state)
{
    (void)state;
    struct timer_heap h = {0};
    again_heap = &h;
    timer_init(&again);
    assert_int_equal(timer_arm(&h, &again, 1000, rearm, (void *)7), 0);
    assert_int_equal(timer_run(&h, 1500), 1); /* the re-armed one is due at 2000: not yet */
    assert_int_equal(timer_wait_ms(&h, 1500, 5000), 500);
    assert_int_equal(timer_run(&h, 5000), 2);
    assert_int_equal(n_fired, 3);
    assert_int_equal(h.n, 0);
    timer_heap_free(&h);
}

/* Many timers armed in a scrambled order, a third cancelled: the rest fire sorted, none twice. */
static void many_timers_fire_sorted(void **state)
{
    (void)state;
    enum { N = 3000 };
    struct timer_heap h = {0};
    struct timer *t = calloc(N, sizeof(*t));
    assert_non_null(t);
    for (int i = 0; i < N; i++) {
        timer_init(&t[i]);
        int64_t due = (int64_t)((i * 7919) % N); /* a permutation of 0..N-1 */
        assert_int_equal(timer_arm(&h, &t[i], due, record, (void *)(intptr_t)due), 0);
    }
    for (int i = 0; i < N; i += 3)
        timer_cancel(&h, &t[i]);
    assert_int_equal(timer_run(&h, N), N - (N + 2) / 3);
    for (int i = 1; i < n_fired; i++)
        assert_true(fired[i - 1] < fired[i]);
    assert_int_equal(h.n, 0);
    timer_heap_free(&h);
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(timers_fire_in_order_of_due_time, setup),
        cmocka_unit_test_setup(equal_due_times_fire_in_arming_order, setup),
        cmocka_unit_test_setup(a_cancelled_timer_never_fires, setup),
        cmocka_unit_test_setup(arming_an_armed_timer_moves_it, setup),
        cmocka_unit_test_setup(a_callback_may_arm_its_own_timer, setup),
        cmocka_unit_test_setup(many_timers_fire_sorted, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
