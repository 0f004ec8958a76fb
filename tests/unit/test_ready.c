/* Units for a worker's ready list (engine_internal.h): connections go on in the order they became
 * ready, once each however often they are made ready, and one that closes leaves the list from
 * wherever it is, the list's tail and length kept (loop.c's run_ready counts its pass by it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "engine/engine_internal.h"

static struct worker w;
static struct conn c[4];

static int setup(void **state)
{
    (void)state;
    memset(&w, 0, sizeof(w));
    memset(c, 0, sizeof(c));
    return 0;
}

static void in_order_once_each(void **state)
{
    (void)state;
    worker_ready(&w, &c[2]);
    worker_ready(&w, &c[0]);
    worker_ready(&w, &c[2]); /* already there: keeps its place */
    worker_ready(&w, &c[1]);
    assert_int_equal(w.n_ready, 3);
    assert_ptr_equal(worker_next_ready(&w), &c[2]);
    assert_false(c[2].in_ready);
    worker_ready(&w, &c[2]); /* ready again: after those that were before it */
    assert_ptr_equal(worker_next_ready(&w), &c[0]);
    assert_ptr_equal(worker_next_ready(&w), &c[1]);
    assert_ptr_equal(worker_next_ready(&w), &c[2]);
    assert_null(worker_next_ready(&w));
    assert_int_equal(w.n_ready, 0);
    assert_null(w.ready_last);
}

static void leaves_from_anywhere(void **state)
{
    (void)state;
    for (int i = 0; i < 4; i++)
        worker_ready(&w, &c[i]);
    worker_unready(&w, &c[1]); /* the middle */
    worker_unready(&w, &c[3]); /* the tail: the next one joins after c[2] */
    worker_unready(&w, &c[3]); /* not in it: nothing */
    assert_int_equal(w.n_ready, 2);
    assert_false(c[1].in_ready);
    worker_ready(&w, &c[1]);
    assert_ptr_equal(w.ready_last, &c[1]);
    assert_ptr_equal(worker_next_ready(&w), &c[0]);
    assert_ptr_equal(worker_next_ready(&w), &c[2]);
    assert_ptr_equal(worker_next_ready(&w), &c[1]);
    assert_null(worker_next_ready(&w));
    worker_ready(&w, &c[0]); /* the only one, unready: the list is empty again */
    worker_unready(&w, &c[0]);
    assert_null(w.ready);
    assert_null(w.ready_last);
    assert_int_equal(w.n_ready, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(in_order_once_each, setup),
        cmocka_unit_test_setup(leaves_from_anywhere, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
