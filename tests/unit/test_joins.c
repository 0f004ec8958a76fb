/* Units for the joins that come before their download (joins.h): the download takes them, and
 * only its own; an address another object has since is not theirs; the ring forgets the oldest. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "upstream/joins.h"

static struct who client(uint8_t n)
{
    struct who w = {.addr = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, n}};
    return w;
}

static const char objects[JOINS_EARLY + 2];

/* The failure on record (a loaded CI run): the lab's join came before the download it joined,
 * which then waited behind another client's share. The download takes every join kept for it,
 * in order, and once. */
static void a_download_takes_the_joins_that_came_before_it(void **state)
{
    (void)state;
    struct early_joins e = {0};
    struct who lab = client(1), other = client(2), out[4];
    joins_keep(&e, &objects[0], 7, &lab);
    joins_keep(&e, &objects[1], 9, &other);
    joins_keep(&e, &objects[0], 7, &other);
    assert_int_equal(joins_take(&e, &objects[0], 7, out, 4), 2);
    assert_true(same_client(&out[0], &lab));
    assert_true(same_client(&out[1], &other));
    assert_int_equal(joins_take(&e, &objects[0], 7, out, 4), 0);
    assert_int_equal(e.held, 1);
    assert_int_equal(joins_take(&e, &objects[1], 9, out, 4), 1);
    assert_int_equal(e.held, 0);
}

/* A join whose object ended (its download had started and gone) names an address a new object
 * may have: that object's download, of another generation, takes nothing of it. */
static void another_object_at_the_same_address_takes_none(void **state)
{
    (void)state;
    struct early_joins e = {0};
    struct who lab = client(1), out[4];
    joins_keep(&e, &objects[0], 7, &lab);
    assert_int_equal(joins_take(&e, &objects[0], 8, out, 4), 0);
    assert_int_equal(joins_take(&e, &objects[0], 7, out, 4), 1);
}

/* Joins whose download never comes are replaced by later ones: the ring holds JOINS_EARLY, the
 * newest. */
static void the_ring_keeps_the_newest(void **state)
{
    (void)state;
    struct early_joins e = {0};
    struct who out[JOINS_EARLY];
    for (int i = 0; i < JOINS_EARLY + 2; i++) {
        struct who c = client((uint8_t)i);
        joins_keep(&e, &objects[i], 1, &c);
    }
    assert_int_equal(e.held, JOINS_EARLY);
    assert_int_equal(joins_take(&e, &objects[0], 1, out, 4), 0);
    assert_int_equal(joins_take(&e, &objects[1], 1, out, 4), 0);
    assert_int_equal(joins_take(&e, &objects[2], 1, out, 4), 1);
    assert_int_equal(joins_take(&e, &objects[JOINS_EARLY + 1], 1, out, 4), 1);
    assert_int_equal(e.held, JOINS_EARLY - 2);
}

/* A download takes the first `max` joins kept for it, oldest first; the rest are dropped (it
 * has room for JOINERS_MAX clients, more than can hold a slot each). */
static void a_download_takes_what_it_has_room_for(void **state)
{
    (void)state;
    struct early_joins e = {0};
    struct who out[2];
    for (int i = 0; i < 5; i++) {
        struct who c = client((uint8_t)(100 + i));
        joins_keep(&e, &objects[3], 1, &c);
    }
    assert_int_equal(joins_take(&e, &objects[3], 1, out, 2), 2);
    assert_int_equal(out[0].addr[15], 100);
    assert_int_equal(out[1].addr[15], 101);
    assert_int_equal(e.held, 0);
    assert_int_equal(joins_take(&e, &objects[3], 1, out, 2), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_download_takes_the_joins_that_came_before_it),
        cmocka_unit_test(another_object_at_the_same_address_takes_none),
        cmocka_unit_test(the_ring_keeps_the_newest),
        cmocka_unit_test(a_download_takes_what_it_has_room_for),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
