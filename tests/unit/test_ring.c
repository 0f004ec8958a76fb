/* Units for the queue whose items keep their place (base/ring.h), the usage flush's dirty
 * queue: items come out oldest first through holes, doublings and halvings, none of which
 * writes to an item; each is told when it is out; positions wrap past 2^32. */
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

/* Issue 70: a ring grows and shrinks by copying its pointers, never by writing to its items
 * (at a million objects that was a cache miss each, under the store's lock): every place stays
 * what it was given, and what is left comes out in the order it went in. */
static void items_keep_their_places_and_order_through_growth_and_holes(void **state)
{
    static struct item items[FIRST + MORE];
    static uint32_t given[FIRST + MORE];
    struct ring r = {0};
    size_t expect = 0;
    (void)state;
    for (int i = 0; i < FIRST + MORE; i++) {
        items[i] = (struct item){i, 0};
        assert_true(ring_add(&r, &items[i].place));
        given[i] = items[i].place;
        if (i % 3 == 0) /* holes */
            ring_forget(&r, &items[i].place);
    }
    assert_true(ring_add(&r, &items[1].place)); /* in already: keeps its place */
    assert_int_equal(items[1].place, given[1]);
    assert_true(r.cap >= FIRST + MORE); /* doubled, more than once */
    size_t left = r.count;
    for (int i = 0; i < FIRST + MORE; i++) {
        if (i % 3 == 0) {
            assert_int_equal(items[i].place, 0);
            continue;
        }
        assert_int_equal(items[i].place, given[i]); /* never rewritten */
        uint32_t *place = ring_take(&r);
        assert_non_null(place);
        assert_int_equal(RING_ENTRY(place, struct item, place)->id, i);
        assert_int_equal(items[i].place, 0);
        expect++;
        if (i == FIRST + MORE - 100)
            assert_int_equal(r.cap, FIRST); /* halved as it emptied, down to the first size */
    }
    assert_int_equal(left, expect);
    assert_null(ring_take(&r));
    assert_int_equal(r.count, 0);
    assert_null(r.slot); /* empty: its array freed */
    ring_free(&r);
}

/* Positions wrap past 2^32: the one whose place would read as none is never given, and the
 * order holds across the wrap. */
static void positions_wrap_past_two_to_the_32(void **state)
{
    struct item items[8];
    struct ring r = {.head = UINT32_MAX - 3, .tail = UINT32_MAX - 3};
    (void)state;
    for (int i = 0; i < 8; i++) {
        items[i] = (struct item){i, 0};
        assert_true(ring_add(&r, &items[i].place));
        assert_int_not_equal(items[i].place, 0);
    }
    ring_forget(&r, &items[4].place);
    for (int i = 0; i < 8; i++) {
        if (i == 4)
            continue;
        uint32_t *place = ring_take(&r);
        assert_non_null(place);
        assert_int_equal(RING_ENTRY(place, struct item, place)->id, i);
    }
    assert_null(ring_take(&r));
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
        cmocka_unit_test(items_keep_their_places_and_order_through_growth_and_holes),
        cmocka_unit_test(positions_wrap_past_two_to_the_32),
        cmocka_unit_test(items_go_back_in_at_the_tail_and_a_freed_ring_lets_all_go),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
