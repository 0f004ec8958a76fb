/* Units for the queue whose items keep their place (base/ring.h), the usage flush's dirty
 * queue: items come out oldest first through holes, closings-up and doublings, and each is
 * told when it is out. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdlib.h>

#include "base/ring.h"

struct item {
    int id;
    uint32_t place;
};

enum { FIRST = 1024, MORE = 6000 };

/* Issue 70: a full ring whose holes are most of it closes them up (no larger), one mostly full
 * doubles, and what is left comes out in the order it went in. */
static void items_come_out_in_order_through_holes_and_growth(void **state)
{
    static struct item items[FIRST + MORE];
    struct ring r = {0};
    size_t expect = 0;
    (void)state;
    for (int i = 0; i < FIRST + MORE; i++)
        items[i] = (struct item){i, 0};
    for (int i = 0; i < FIRST; i++)
        assert_true(ring_add(&r, &items[i].place));
    assert_true(ring_add(&r, &items[0].place)); /* in already: keeps its place */
    assert_int_equal(r.count, FIRST);
    for (int i = 0; i < FIRST; i++)
        if (i % 5 != 0) /* 4 in 5 out */
            ring_forget(&r, &items[i].place);
    for (int i = FIRST; i < FIRST + MORE; i++) {
        assert_true(ring_add(&r, &items[i].place));
        if (i == FIRST)
            assert_int_equal(r.cap, FIRST); /* closed up, not doubled */
        if (i % 3 == 0)
            ring_forget(&r, &items[i].place);
    }
    assert_true(r.cap > FIRST); /* then doubled */
    size_t left = r.count;
    for (int i = 0; i < FIRST + MORE; i++) {
        bool in = i < FIRST ? i % 5 == 0 : i % 3 != 0;
        if (!in) {
            assert_int_equal(items[i].place, 0);
            continue;
        }
        uint32_t *place = ring_take(&r);
        assert_non_null(place);
        assert_int_equal(RING_ENTRY(place, struct item, place)->id, i);
        assert_int_equal(items[i].place, 0);
        expect++;
    }
    assert_int_equal(left, expect);
    assert_null(ring_take(&r));
    assert_int_equal(r.count, 0);
    ring_free(&r);
}

/* An item taken out can go back in (at the tail), a forgotten one is not taken, and freeing a
 * ring tells the items still in it that they are out. */
static void items_go_back_in_at_the_tail_and_a_freed_ring_lets_all_go(void **state)
{
    struct item a = {1, 0}, b = {2, 0}, c = {3, 0};
    struct ring r = {0};
    (void)state;
    assert_true(ring_add(&r, &a.place));
    assert_true(ring_add(&r, &b.place));
    assert_true(ring_add(&r, &c.place));
    assert_ptr_equal(ring_take(&r), &a.place);
    assert_true(ring_add(&r, &a.place)); /* back in, behind c */
    ring_forget(&r, &b.place);
    ring_forget(&r, &b.place); /* not in: nothing */
    assert_ptr_equal(ring_take(&r), &c.place);
    assert_ptr_equal(ring_take(&r), &a.place);
    assert_null(ring_take(&r));
    assert_true(ring_add(&r, &b.place));
    assert_true(ring_add(&r, &c.place));
    ring_free(&r);
    assert_int_equal(b.place, 0);
    assert_int_equal(c.place, 0);
    assert_null(r.slot);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(items_come_out_in_order_through_holes_and_growth),
        cmocka_unit_test(items_go_back_in_at_the_tail_and_a_freed_ring_lets_all_go),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
