/* Units for the store's hash table: every object stays findable while the table grows a few
 * buckets at a time, removals work in either half, and the slots cover every object once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/table.h"

#include <stdbool.h>

#define N 100000

static struct table_node *objects;

static int make_objects(void **state)
{
    (void)state;
    objects = calloc(N, sizeof(*objects));
    if (!objects)
        return -1;
    for (int i = 0; i < N; i++) /* keys spread like sha256 hex, deterministic */
        snprintf(objects[i].key, sizeof(objects[i].key), "%016llx%048d",
                 (unsigned long long)i * 0x9e3779b97f4a7c15ULL, i);
    return 0;
}

static int free_objects(void **state)
{
    (void)state;
    free(objects);
    return 0;
}

static size_t count_slots(const struct table *t)
{
    size_t n = 0;
    for (size_t i = 0; i < table_slots(t); i++)
        for (struct table_node *o = table_slot(t, i); o; o = o->next)
            n++;
    return n;
}

static void every_object_is_found_while_the_table_grows(void **state)
{
    struct table t = {0};
    bool grew_in_steps = false;
    (void)state;
    for (int i = 0; i < N; i++) {
        assert_int_equal(table_add(&t, &objects[i]), 0);
        grew_in_steps |= t.nold > 0;
        if (i % 997 == 0 || t.nold) /* often, and always while two tables are in use */
            for (int j = i; j >= 0 && j > i - 50; j--)
                assert_ptr_equal(table_get(&t, objects[j].key), &objects[j]);
        if (i % 4999 == 0)
            assert_int_equal(count_slots(&t), (size_t)i + 1);
    }
    assert_true(grew_in_steps); /* the old buckets did move over several inserts */
    for (int i = 0; i < N; i++)
        assert_ptr_equal(table_get(&t, objects[i].key), &objects[i]);
    assert_int_equal(t.count, N);
    assert_int_equal(count_slots(&t), N);
    table_free(&t);
}

static void removal_works_in_both_halves(void **state)
{
    struct table t = {0};
    (void)state;
    int i = 0;
    for (; i < N && !(t.nold && t.moved > 0 && t.moved < t.nold / 2); i++)
        assert_int_equal(table_add(&t, &objects[i]), 0);
    assert_true(t.nold > 0); /* stopped in the middle of a growth */
    for (int j = 0; j < i; j += 2)
        table_del(&t, &objects[j]);
    for (int j = 0; j < i; j++)
        assert_ptr_equal(table_get(&t, objects[j].key), j % 2 ? &objects[j] : NULL);
    assert_int_equal(count_slots(&t), (size_t)i / 2);
    table_free(&t);
}

static void reserving_holds_everything_without_growing(void **state)
{
    struct table t = {0};
    (void)state;
    assert_int_equal(table_reserve(&t, N + 1), 0);
    size_t buckets = t.ncur;
    for (int i = 0; i < N; i++)
        assert_int_equal(table_add(&t, &objects[i]), 0);
    assert_int_equal(t.ncur, buckets);
    assert_int_equal(t.nold, 0);
    table_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_object_is_found_while_the_table_grows),
        cmocka_unit_test(removal_works_in_both_halves),
        cmocka_unit_test(reserving_holds_everything_without_growing),
    };
    return cmocka_run_group_tests(tests, make_objects, free_objects);
}
