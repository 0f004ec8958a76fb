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

#include "base/parse.h"
#include "store/table.h"

#include <stdbool.h>

#define N 100000

/* An entry as the digest index's and the spellings' are: its node, its whole key beside it. */
struct entry {
    struct table_node node;
    uint8_t key[32];
};
#define KEYED32 TABLE_KEYED(offsetof(struct entry, key), 32)

static struct entry *objects;
static char (*hex)[65]; /* objects[i]'s key as the store names it: 64 hex digits */

static int make_objects(void **state)
{
    (void)state;
    objects = calloc(N, sizeof(*objects));
    hex = calloc(N, sizeof(*hex));
    if (!objects || !hex)
        return -1;
    for (int i = 0; i < N; i++) { /* keys spread like sha256 hex, deterministic */
        snprintf(hex[i], sizeof(hex[i]), "%016llx%048d",
                 (unsigned long long)i * 0x9e3779b97f4a7c15ULL, i);
        if (!table_key_of_hex(hex[i], objects[i].key))
            return -1;
    }
    return 0;
}

static int free_objects(void **state)
{
    (void)state;
    free(objects);
    free(hex);
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
    struct table t = KEYED32;
    bool grew_in_steps = false;
    (void)state;
    for (int i = 0; i < N; i++) {
        assert_int_equal(table_add(&t, &objects[i].node), 0);
        grew_in_steps |= t.nold > 0;
        if (i % 997 == 0 || t.nold) /* often, and always while two tables are in use */
            for (int j = i; j >= 0 && j > i - 50; j--)
                assert_ptr_equal(table_get(&t, hex[j]), &objects[j].node);
        if (i % 4999 == 0)
            assert_int_equal(count_slots(&t), (size_t)i + 1);
    }
    assert_true(grew_in_steps); /* the old buckets did move over several inserts */
    for (int i = 0; i < N; i++)
        assert_ptr_equal(table_get(&t, hex[i]), &objects[i].node);
    assert_int_equal(t.count, N);
    assert_int_equal(count_slots(&t), N);
    table_free(&t);
}

static void removal_works_in_both_halves(void **state)
{
    struct table t = KEYED32;
    (void)state;
    int i = 0;
    for (; i < N && !(t.nold && t.moved > 0 && t.moved < t.nold / 2); i++)
        assert_int_equal(table_add(&t, &objects[i].node), 0);
    assert_true(t.nold > 0); /* stopped in the middle of a growth */
    for (int j = 0; j < i; j += 2)
        table_del(&t, &objects[j].node);
    for (int j = 0; j < i; j++)
        assert_ptr_equal(table_get(&t, hex[j]), j % 2 ? &objects[j].node : NULL);
    assert_int_equal(count_slots(&t), (size_t)i / 2);
    table_free(&t);
}

static void reserving_holds_everything_without_growing(void **state)
{
    struct table t = KEYED32;
    (void)state;
    assert_int_equal(table_reserve(&t, N + 1), 0);
    size_t buckets = t.ncur;
    for (int i = 0; i < N; i++)
        assert_int_equal(table_add(&t, &objects[i].node), 0);
    assert_int_equal(t.ncur, buckets);
    assert_int_equal(t.nold, 0);
    table_free(&t);
}

/* Bucket arrays of 2 MiB and more are mapped apart (huge pages asked): a table of a million
 * buckets, and its growth from one mapped array to another, find every entry and free both. */
static void mapped_bucket_arrays_find_everything_through_growth(void **state)
{
    struct table t = KEYED32;
    (void)state;
    assert_int_equal(table_reserve(&t, 1 << 18), 0); /* 2 MiB of buckets: mapped */
    assert_int_equal(t.ncur, 1 << 18);
    for (int i = 0; i < N; i++)
        assert_int_equal(table_add(&t, &objects[i].node), 0);
    assert_int_equal(table_reserve(&t, 1 << 20), 0); /* to 8 MiB, the old array unmapped */
    assert_int_equal(t.ncur, 1 << 20);
    assert_int_equal(t.nold, 0);
    for (int i = 0; i < N; i++)
        assert_ptr_equal(table_find(&t, objects[i].key), &objects[i].node);
    assert_int_equal(count_slots(&t), N);
    table_free(&t);
    assert_null(t.cur);
}

/* A key is kept as its 32 bytes: its hex comes back the same, and what is not 64 lowercase hex
 * digits is no key (found nowhere, never a neighbour's bytes). */
static void keys_are_their_bytes_and_only_hex_is_a_key(void **state)
{
    struct table t = KEYED32;
    uint8_t key[32];
    char back[65], bad[80];
    (void)state;
    assert_true(table_key_of_hex(hex[7], key));
    format_sha256_hex(key, back);
    assert_string_equal(back, hex[7]);
    assert_int_equal(table_add(&t, &objects[7].node), 0);
    assert_ptr_equal(table_get(&t, hex[7]), &objects[7].node);
    snprintf(bad, sizeof(bad), "%s", hex[7]);
    bad[0] = (char)(bad[0] >= 'a' ? bad[0] - 'a' + 'A' : 'X'); /* upper case, or no digit */
    assert_false(table_key_of_hex(bad, key));
    assert_null(table_get(&t, bad));
    snprintf(bad, sizeof(bad), "%.63s", hex[7]); /* one digit short */
    assert_null(table_get(&t, bad));
    snprintf(bad, sizeof(bad), "%s0", hex[7]); /* one too many */
    assert_null(table_get(&t, bad));
    /* the tag alone: the key's first 4 bytes, from its first 8 lowercase digits only */
    uint8_t tag[4];
    assert_true(table_tag_of_hex(hex[7], tag));
    assert_memory_equal(tag, key, sizeof(tag));
    assert_true(table_tag_of_hex("0123abcd", tag) && tag[0] == 0x01 && tag[3] == 0xcd);
    assert_false(table_tag_of_hex("0123abcD", tag)); /* upper case: another name */
    assert_false(table_tag_of_hex("0123abc", tag));  /* seven digits */
    assert_false(table_tag_of_hex("0123abcg", tag));
    table_free(&t);
}

/* Twins share a digest: every entry with a key is found, once each, however the table grew
 * between their inserts (an old bucket moves whole). */
static void entries_sharing_a_key_are_all_found_while_the_table_grows(void **state)
{
    struct table t = KEYED32;
    static struct entry twins[3];
    (void)state;
    for (int i = 0; i < N; i++) {
        if (i % (N / 3) == 0 && i / (N / 3) < 3) { /* before, during and after growths */
            memcpy(twins[i / (N / 3)].key, objects[5].key, 32);
            assert_int_equal(table_add(&t, &twins[i / (N / 3)].node), 0);
        }
        if (i != 5)
            assert_int_equal(table_add(&t, &objects[i].node), 0);
    }
    int seen[3] = {0}, found = 0;
    for (struct table_node *n = table_find(&t, objects[5].key); n; n = table_find_next(&t, n)) {
        const struct entry *e = (const struct entry *)n;
        assert_true(e >= twins && e < twins + 3);
        seen[e - twins]++;
        found++;
    }
    assert_int_equal(found, 3);
    assert_true(seen[0] == 1 && seen[1] == 1 && seen[2] == 1);
    table_del(&t, &twins[1].node);
    found = 0;
    for (struct table_node *n = table_find(&t, objects[5].key); n; n = table_find_next(&t, n))
        found += n != &twins[1].node;
    assert_int_equal(found, 2);
    table_free(&t);
}

/* Issue 70: the objects' table compares 4 bytes of a key (an object keeps its key's first 4
 * bytes, object.h): every entry whose key begins with them is found, whatever follows, and only
 * those; emptied, the table stays keyed so. */
static void a_table_keyed_on_4_bytes_finds_every_entry_beginning_with_them(void **state)
{
    struct table t = TABLE_KEYED(offsetof(struct entry, key), 4);
    static struct entry same[4];
    int found = 0;
    (void)state;
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < N; i++)
            assert_int_equal(table_add(&t, &objects[i].node), 0);
        for (int i = 0; i < 4; i++) { /* objects[9]'s first 4 bytes, another end each */
            memcpy(same[i].key, objects[9].key, 32);
            same[i].key[4 + i] ^= 0xff;
            assert_int_equal(table_add(&t, &same[i].node), 0);
        }
        found = 0;
        for (struct table_node *n = table_find(&t, objects[9].key); n; n = table_find_next(&t, n)) {
            const struct entry *e = (const struct entry *)n;
            assert_memory_equal(e->key, objects[9].key, 4);
            found++;
        }
        assert_int_equal(found, 5);
        assert_ptr_equal(table_get(&t, hex[10]), &objects[10].node);
        table_free(&t);
        assert_int_equal(t.key_len, 4);
        assert_int_equal(t.count, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_object_is_found_while_the_table_grows),
        cmocka_unit_test(removal_works_in_both_halves),
        cmocka_unit_test(reserving_holds_everything_without_growing),
        cmocka_unit_test(mapped_bucket_arrays_find_everything_through_growth),
        cmocka_unit_test(keys_are_their_bytes_and_only_hex_is_a_key),
        cmocka_unit_test(entries_sharing_a_key_are_all_found_while_the_table_grows),
        cmocka_unit_test(a_table_keyed_on_4_bytes_finds_every_entry_beginning_with_them),
    };
    return cmocka_run_group_tests(tests, make_objects, free_objects);
}
