/* Units for the object's life (object.c): the table of moves allows exactly the moves the store
 * makes, and each move does its whole action: lists and quota, the hooks of the files above
 * (twins, failures), removal, the wake-up. The store is a real one, in a temporary data dir; the
 * hooks are the test's own, so that each action is seen. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config/config.h"
#include "store/object.h"
#include "store/store_room.h"
#include "persist/persist.h"
#include "stats/stats.h"
#include "store_fixture.h"
#include "unit_tmp.h"

static char dir[UNIT_TMP_MAX] = "/tmp/arca-unit-object-XXXXXX";

static int joined, left, failed;
static void on_joined(struct object *obj)
{
    (void)obj;
    joined++;
}
static void on_left(struct object *obj)
{
    (void)obj;
    left++;
}
static int failed_status; /* what the failures ring would have kept */
static void on_failed(const struct object *obj)
{
    failed_status = live_of(obj)->error_status;
    failed++;
}

struct reader {
    struct park w;
    int wakes;
};

static void on_sleep(struct park *p)
{
    (void)p;
}

static void on_wake(struct park *p)
{
    PARK_OWNER(p, struct reader, w)->wakes++;
}

static void set_hooks(void)
{
    st.hooks = (struct object_hooks){on_joined, on_left, on_failed, NULL, NULL};
}

static int open_store(void **state)
{
    (void)state;
    return fixture_store_open(dir, set_hooks);
}

static int close_store(void **state)
{
    (void)state;
    return fixture_store_close(dir);
}

static int reset_counts(void **state)
{
    (void)state;
    joined = left = failed = 0;
    return 0;
}

/* A download begun as a lookup begins it, with `have` bytes written against `reserved`. */
static struct object *begun(const char *url, int64_t have, int64_t reserved)
{
    char key[65];
    url_key(url, key);
    store_lock();
    struct object *obj = object_begin(url, key, 3600, (int64_t)time(NULL));
    assert_non_null(obj);
    object_live(obj)->have = have;
    object_set_reserved(obj, reserved);
    st.usage += reserved;
    store_unlock();
    return obj;
}

static void waits(struct object *obj, struct reader *r)
{
    struct object_meta meta_out;
    memset(r, 0, sizeof(*r));
    park_init(&r->w, on_sleep, on_wake, NULL);
    assert_false(store_wait(obj, true, &r->w, &meta_out));
}

static void the_table_allows_only_the_stores_moves(void **state)
{
    (void)state;
    assert_true(object_may_move(OBJ_NEW, OBJ_FETCHING));
    assert_true(object_may_move(OBJ_NEW, OBJ_COMPLETE));
    assert_true(object_may_move(OBJ_FETCHING, OBJ_COMPLETE));
    assert_true(object_may_move(OBJ_FETCHING, OBJ_FAILED));
    assert_true(object_may_move(OBJ_COMPLETE, OBJ_REMOVED));
    /* a finished download not stored (store = no): whole for its readers, never in the table */
    assert_true(object_may_move(OBJ_FETCHING, OBJ_REMOVED));
    /* an expired version a failed refresh let go of comes back (store_keep_stale) */
    assert_true(object_may_move(OBJ_REMOVED, OBJ_COMPLETE));
    /* a failed download is over; a complete object never downloads again, nor fails */
    for (int to = OBJ_NEW; to <= OBJ_REMOVED; to++) {
        assert_false(object_may_move(OBJ_FAILED, (enum object_state)to));
        if (to != OBJ_COMPLETE)
            assert_false(object_may_move(OBJ_REMOVED, (enum object_state)to));
    }
    assert_false(object_may_move(OBJ_COMPLETE, OBJ_FETCHING));
    assert_false(object_may_move(OBJ_COMPLETE, OBJ_FAILED));
    assert_false(object_may_move(OBJ_NEW, OBJ_FAILED));
    assert_false(object_may_move(OBJ_NEW, OBJ_REMOVED));
}

static void a_begun_download_is_in_the_table_and_its_list(void **state)
{
    struct store_totals t;
    (void)state;
    struct object *obj = begun("http://h/begin", 0, 0);
    assert_int_equal(obj->state, OBJ_FETCHING);
    store_lock();
    assert_ptr_equal(object_find(OBJECT_KEY(obj)), obj);
    store_unlock();
    store_totals(&t);
    assert_int_equal(t.scheduled, 1); /* no file yet */
    store_fail(obj, 503, "test over");
    store_release(obj);
    store_release(obj);
}

static void completing_settles_quota_joins_and_wakes(void **state)
{
    struct reader r;
    uint8_t digest[32] = {7};
    (void)state;
    int64_t usage = st.usage;
    struct object *obj = begun("http://h/complete", 5, 16);
    waits(obj, &r);
    store_lock();
    assert_true(object_complete(obj, digest));
    assert_int_equal(st.usage, usage + 5); /* the reservation shrinks to the bytes kept */
    assert_ptr_equal(st.lru.tail, &obj->lru);
    store_unlock();
    assert_int_equal(r.wakes, 1);
    assert_int_equal(joined, 1);
    assert_int_equal(obj->state, OBJ_COMPLETE);
    assert_int_equal(obj->length, 5);
    assert_memory_equal(obj->digest, digest, 32);
    /* a second completion, or a failure, is no move of a complete object: refused */
    store_lock();
    assert_false(object_complete(obj, digest));
    assert_false(object_fail(obj, 500, "too late"));
    store_unlock();
    assert_int_equal(obj->state, OBJ_COMPLETE);
    store_release(obj);
    store_release(obj);
}

static void failing_keeps_the_first_reason_and_leaves(void **state)
{
    struct reader r;
    (void)state;
    int64_t usage = st.usage, count = atomic_load(&stats.downloads_failed);
    struct object *obj = begun("http://h/fail", 3, 16);
    waits(obj, &r);
    store_lock();
    object_set_error(obj, 413, "object grew larger than --max-object-size");
    assert_true(object_fail(obj, 502, "a consequence"));
    assert_null(object_find(OBJECT_KEY(obj)));
    assert_int_equal(st.usage, usage); /* its reservation given back */
    assert_false(object_fail(obj, 500, "again"));
    assert_false(object_complete(obj, obj->digest));
    store_unlock();
    assert_int_equal(r.wakes, 1);
    assert_int_equal(object_error_status(obj), 413);
    assert_string_equal(object_error(obj), "object grew larger than --max-object-size");
    assert_int_equal(failed, 1);
    assert_int_equal(failed_status, 413);
    assert_int_equal(atomic_load(&stats.downloads_failed), count + 1);
    assert_int_equal(obj->state, OBJ_FAILED);
    store_release(obj);
    store_release(obj);
}

/* arca stops: the download ends for its clients like a failure, through the same first-reason
 * path, but it is no failure of the download: not counted, not listed. */
static void setting_aside_is_a_failure_not_counted(void **state)
{
    (void)state;
    int64_t count = atomic_load(&stats.downloads_failed);
    struct object *obj = begun("http://h/aside", 0, 0);
    store_set_aside(obj, "arca is shutting down");
    assert_int_equal(obj->state, OBJ_FAILED);
    assert_int_equal(object_error_status(obj), 503);
    assert_string_equal(object_error(obj), "arca is shutting down");
    assert_int_equal(failed, 0);
    assert_int_equal(atomic_load(&stats.downloads_failed), count);
    store_lock();
    assert_null(object_find(OBJECT_KEY(obj)));
    store_unlock();
    store_release(obj);
    store_release(obj);
}

static void removing_a_complete_object_leaves_the_table(void **state)
{
    uint8_t digest[32] = {9};
    (void)state;
    int64_t usage = st.usage;
    struct object *obj = begun("http://h/remove", 4, 4);
    store_lock();
    assert_true(object_complete(obj, digest));
    obj->refs--; /* the fetch is done; the test keeps one reference, like a streaming reader */
    object_remove(obj, "evicted for room");
    assert_null(object_find(OBJECT_KEY(obj)));
    assert_int_equal(st.usage, usage);
    store_unlock();
    assert_int_equal(left, 1);
    /* out of the table, and still whole for the reader streaming it */
    assert_int_equal(obj->state, OBJ_REMOVED);
    assert_false(object_in_table(obj));
    assert_true(object_whole(obj));
    assert_int_equal(object_view(obj), OBJ_COMPLETE);
    store_release(obj); /* the last reference: freed */
    persist_flush();
}

/* What few objects have is in a part of its own, made only for a value other than its default:
 * a million objects that had no stale window, parent or failed refresh hold none of it. */
static void an_extra_part_is_made_for_a_value_and_kept_for_the_object(void **state)
{
    (void)state;
    struct object *obj = begun("http://h/extra", 0, 0);
    store_lock();
    object_set_stale_windows(obj, -1, -1);
    object_set_keep_windows(obj, -1, -1);
    object_set_fwd_status(obj, 0);
    assert_null(extra_part(obj));
    assert_int_equal(object_extra_of(obj)->stale_if_error, -1);
    assert_int_equal(object_extra_of(obj)->keep_while, -1);
    object_set_stale_windows(obj, 0, -1); /* the origin: never stale */
    object_set_keep_windows(obj, 60, -1); /* a rule: keep 60 s */
    assert_non_null(extra_part(obj));
    assert_int_equal(object_extra_of(obj)->stale_if_error, 0);
    assert_int_equal(object_extra_of(obj)->keep_if_error, 60);
    assert_int_equal(object_extra_of(obj)->keep_while, -1);
    object_set_fwd_status(obj, 503);
    assert_int_equal(object_extra_of(obj)->fwd_status, 503);
    assert_int_equal(object_extra_of(obj)->stale_if_error, 0); /* the others kept */
    store_unlock();
    store_from_parent(obj, 0, 60, "parent; hit");
    store_lock();
    assert_string_equal(object_extra_of(obj)->parent_status, "parent; hit");
    store_unlock();
    store_fail(obj, 503, "test over");
    store_release(obj); /* the extra part goes with the object: the sanitizers' runs see a leak */
    store_release(obj);
}

/* A parent's answer is as old as the parent's copy whether or not its Cache-Status members were
 * kept (none sent, or no memory for them): a tier never keeps its 404 longer than the parent.
 * The download's own answer again (NULL) is not. */
static void a_parents_answer_is_aged_without_its_status(void **state)
{
    (void)state;
    struct object *obj = begun("http://h/aged", 0, 0);
    store_from_parent(obj, 30, 60, "");
    store_lock();
    assert_true(obj->from_parent);
    assert_null(object_extra_of(obj)->parent_status);
    store_unlock();
    store_from_parent(obj, 0, 60, NULL);
    store_lock();
    assert_false(obj->from_parent);
    store_unlock();
    store_fail(obj, 503, "test over");
    store_release(obj);
    store_release(obj);
}

/* Windows that found no memory fail closed: the object reads windows of 0 (never stale: the
 * origin may have said so), and keeps them when an extra part is made later for another field,
 * instead of the options' day of stale answers. */
static void windows_without_memory_never_answer_stale(void **state)
{
    (void)state;
    struct object *obj = begun("http://h/never", 0, 0);
    store_lock();
    obj->never_stale = true; /* what a window's setter does when object_extra finds no memory */
    assert_null(extra_part(obj));
    assert_int_equal(object_extra_of(obj)->stale_if_error, 0);
    assert_int_equal(object_stale_if_error(obj), 0); /* not --stale-if-error's 86400 */
    object_set_fwd_status(obj, 504);
    assert_non_null(extra_part(obj));
    assert_int_equal(object_extra_of(obj)->stale_if_error, 0);
    assert_int_equal(object_extra_of(obj)->stale_while_revalidate, 0);
    assert_int_equal(object_stale_if_error(obj), 0);
    /* what its row and a new version copy: the terms' windows too, never -1 (the options') */
    assert_int_equal(object_extra_of(obj)->keep_if_error, 0);
    object_set_staleness(obj, -1, -1); /* the origin said nothing: its terms' 0 still hold */
    assert_int_equal(object_stale_if_error(obj), 0);
    store_unlock();
    store_fail(obj, 503, "test over");
    store_release(obj);
    store_release(obj);
}

/* A use count saturates at 2^32 - 1 instead of wrapping to 0, and the store's total follows
 * what the object counts. */
static void a_use_count_saturates_and_the_total_follows(void **state)
{
    (void)state;
    struct object *obj = begun("http://h/uses", 0, 0);
    store_lock();
    int64_t before = st.uses;
    object_add_uses(obj, (int64_t)UINT32_MAX); /* begun with its one use */
    assert_int_equal(obj->usage, UINT32_MAX);
    assert_int_equal(st.uses - before, (int64_t)UINT32_MAX - 1);
    object_add_uses(obj, 1);
    assert_int_equal(obj->usage, UINT32_MAX);
    assert_int_equal(st.uses - before, (int64_t)UINT32_MAX - 1);
    object_add_uses(obj, -(int64_t)UINT32_MAX + 1);
    assert_int_equal(obj->usage, 1);
    assert_int_equal(st.uses, before);
    store_unlock();
    store_fail(obj, 503, "test over");
    store_release(obj);
    store_release(obj);
}

/* The headers `h` as an object keeps them (packed) and as a reader gets them back. */
static void round_trip(const struct upstream_headers *h, struct upstream_headers *back,
                       char **packed)
{
    assert_int_equal(headers_pack(h, packed), 0);
    headers_unpack(*packed, back);
}

/* Issue 70: a content type is kept once and named in an object's headers by a byte (2 bytes
 * packed, where "application/octet-stream" took 25): each value comes back as it went in, for
 * the first 255 types and for the types past them (kept in the pack as they are); a type that
 * starts with the byte that marks a number is dropped, never read as another type. */
static void content_types_are_kept_once_and_come_back_whole(void **state)
{
    struct upstream_headers back,
        h = {.content_type = "application/octet-stream", .etag = "\"abc\"", .redirects = ""};
    char *packed, type[64];
    (void)state;
    round_trip(&h, &back, &packed);
    assert_string_equal(back.content_type, "application/octet-stream");
    assert_string_equal(back.etag, "\"abc\"");
    assert_string_equal(back.content_encoding, "");
    /* which values (the type by number, the ETag), the type's number, the ETag: no byte for
     * the values not said */
    assert_int_equal((uint8_t)packed[0], 0x40 | 1 | 1 << 4);
    assert_int_not_equal(packed[1], 0);
    assert_memory_equal(packed + 2, "\"abc\"", 6);
    free(packed);
    for (int i = 0; i < 300; i++) { /* more types than numbers */
        snprintf(type, sizeof(type), "application/x-unit-%d", i);
        h = (struct upstream_headers){.content_type = type, .filename = "f.bin"};
        round_trip(&h, &back, &packed);
        assert_string_equal(back.content_type, type);
        assert_string_equal(back.filename, "f.bin");
        assert_string_equal(back.etag, "");
        free(packed);
    }
    h = (struct upstream_headers){.content_type = "\x01\x05", .etag = "\"e\""};
    round_trip(&h, &back, &packed);
    assert_string_equal(back.content_type, "");
    assert_string_equal(back.etag, "\"e\"");
    free(packed);
    h = (struct upstream_headers){0}; /* nothing said: nothing kept */
    assert_int_equal(headers_pack(&h, &packed), 0);
    assert_null(packed);
}

/* Issue 70: a pack holds the values said and nothing for the others; every combination of the
 * six, said or not, comes back as it went in, with the type by number or by name. */
static void every_combination_of_values_comes_back(void **state)
{
    const char *values[HEADERS_PACKED] = {
        NULL, "gzip", "fw.bin", "Tue, 01 Jan 2030 00:00:00 GMT", "\"e1\"", "http://a/ http://b/"};
    const char *types[] = {"application/octet-stream", "application/x-unit-not-numbered-0"};
    (void)state;
    for (int t = 0; t < 2; t++) {
        for (unsigned mask = 0; mask < 64; mask++) {
            const char *v[HEADERS_PACKED];
            struct upstream_headers back;
            char *packed;
            for (int i = 0; i < HEADERS_PACKED; i++)
                v[i] = mask & (1u << i) ? (i == 0 ? types[t] : values[i]) : (i % 2 ? "" : NULL);
            struct upstream_headers h = {v[0], v[1], v[2], v[3], v[4], v[5]};
            round_trip(&h, &back, &packed);
            const char *got[HEADERS_PACKED] = {back.content_type, back.content_encoding,
                                               back.filename,     back.last_modified,
                                               back.etag,         back.redirects};
            for (int i = 0; i < HEADERS_PACKED; i++)
                assert_string_equal(got[i], v[i] ? v[i] : "");
            assert_true(mask ? packed != NULL : packed == NULL);
            free(packed);
        }
    }
}

int main(void)
{
    unit_tmp(dir, sizeof(dir));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_table_allows_only_the_stores_moves),
        cmocka_unit_test_setup(a_begun_download_is_in_the_table_and_its_list, reset_counts),
        cmocka_unit_test_setup(completing_settles_quota_joins_and_wakes, reset_counts),
        cmocka_unit_test_setup(failing_keeps_the_first_reason_and_leaves, reset_counts),
        cmocka_unit_test_setup(setting_aside_is_a_failure_not_counted, reset_counts),
        cmocka_unit_test_setup(removing_a_complete_object_leaves_the_table, reset_counts),
        cmocka_unit_test(content_types_are_kept_once_and_come_back_whole),
        cmocka_unit_test(every_combination_of_values_comes_back),
        cmocka_unit_test_setup(an_extra_part_is_made_for_a_value_and_kept_for_the_object,
                               reset_counts),
        cmocka_unit_test_setup(a_parents_answer_is_aged_without_its_status, reset_counts),
        cmocka_unit_test_setup(windows_without_memory_never_answer_stale, reset_counts),
        cmocka_unit_test_setup(a_use_count_saturates_and_the_total_follows, reset_counts),
    };
    return cmocka_run_group_tests(tests, open_store, close_store);
}
