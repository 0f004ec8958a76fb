/* Units for the usage journal beside the index (usage_log.h), through the index's own calls as
 * the store makes them: uses come back at a start though no row was written, a row written again
 * or deleted drops the uses before it, a compaction keeps each key's last word, and a torn
 * record or another index's journal is never read as this one's. A real index in a temporary
 * directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "persist/index.h"
#include "persist/index_rows.h"
#include "persist/usage_log.h"
#include "row_column.h"
#include "unit_tmp.h"

/* The journal's fdatasyncs (the index's go through SQLite's own VFS calls, not this symbol). */
static int journal_syncs;
int __real_fdatasync(int fd);
int __wrap_fdatasync(int fd)
{
    journal_syncs++;
    return __real_fdatasync(fd);
}

static char dir[UNIT_TMP_MAX] = "/tmp/arca-unit-usage-XXXXXX";
static char path[128], journal[160];

static const char *const A = "a000000000000000000000000000000000000000000000000000000000000001";
static const char *const B = "b000000000000000000000000000000000000000000000000000000000000002";

/* What a start reads of one key's complete row: its usage and pin (-1: no row). */
struct seen {
    const char *key;
    int64_t usage, last_use, created;
    bool pinned;
    uint8_t digest[32];
};

static void on_row(const struct index_row *row, int part, void *arg)
{
    struct seen *s = arg;
    (void)part;
    if (!strcmp(row->key, s->key)) {
        s->usage = row->usage;
        s->last_use = row->last_use;
        s->created = row->created;
        s->pinned = row->pinned;
        memcpy(s->digest, row->digest, 32);
    }
}

/* The journal laid over the row loaded, as the store's loader does (usage_log_cursor). */
static void lay_journal(struct seen *s)
{
    uint8_t key[32];
    struct usage_cursor *c = usage_log_cursor();
    struct index_row row = {.created = s->created, .digest = s->digest};
    for (int i = 0; i < 32; i++)
        sscanf(s->key + 2 * i, "%2hhx", &key[i]);
    if (c && s->usage >= 0 && usage_cursor_apply(c, key, &row)) {
        s->usage = row.usage;
        s->last_use = row.last_use;
        s->pinned = row.pinned;
    }
    usage_cursor_close(c);
}

static bool no_partial(const struct index_row *row, void *arg)
{
    (void)row, (void)arg;
    return false;
}

static void on_discard(const char *key, void *arg)
{
    (void)key, (void)arg;
}

static void open_index(void)
{
    char err[256];
    struct index_loader load = {no_partial, on_discard, NULL};
    assert_int_equal(index_open(path, &load, err, sizeof(err)), 0);
}

/* A start: the index opened and its rows loaded; `key`'s figures as they load. */
static struct seen start(const char *key)
{
    char err[256];
    atomic_bool stop = false;
    struct seen s = {.key = key, .usage = -1, .last_use = -1};
    open_index();
    assert_int_equal(index_load_rows(on_row, &s, &stop, err, sizeof(err)), 0);
    lay_journal(&s);
    return s;
}

static const uint8_t digest[32] = {7};

static void complete(const char *key, int64_t usage)
{
    struct index_row row = {.key = key,
                            .url = "http://h/x",
                            .headers = {"", "", "", "", "", ""},
                            .length = 1,
                            .digest = digest,
                            .created = 50,
                            .ttl = 3600,
                            .usage = usage,
                            .last_use = 100,
                            .keep_if_error = -1,
                            .keep_while = -1};
    assert_int_equal(index_mark_complete(&row), 0);
}

/* The usage flush's word for `key`, in a transaction as the store writes it. */
static void touch(const char *key, int64_t usage, bool pinned)
{
    struct index_row row = {.key = key,
                            .digest = digest,
                            .created = 50,
                            .last_use = 1000 + usage,
                            .usage = usage,
                            .ttl = 3600,
                            .pinned = pinned,
                            .keep_if_error = -1,
                            .keep_while = -1};
    assert_int_equal(index_begin(), 0);
    assert_int_equal(index_touch(&row), 0);
    assert_int_equal(index_commit(), 0);
}

static void afresh(void)
{
    unlink(path);
    unlink(journal);
}

static int make_dir(void **state)
{
    (void)state;
    if (!mkdtemp(dir))
        return -1;
    snprintf(path, sizeof(path), "%s/index.sqlite", dir);
    snprintf(journal, sizeof(journal), "%s-usage", path);
    return 0;
}

static int remove_dir(void **state)
{
    char cmd[160];
    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd);
}

/* A hit's figures reach a restart though the row is never rewritten (an UPDATE of a random row
 * was what stalled hits on a big store): the row keeps 0, the start reads 5 and the pin, and a
 * lookup ahead of the load (index_find_row) reads the same. */
static void uses_come_back_through_the_journal_not_the_row(void **state)
{
    (void)state;
    afresh();
    open_index();
    complete(A, 0);
    touch(A, 5, true);
    index_close();
    assert_int_equal(row_column(path, "usage", A), 0);
    struct seen s = start(A);
    assert_int_equal(s.usage, 5);
    assert_int_equal(s.last_use, 1005);
    assert_true(s.pinned);
    index_close();
}

static void found_usage(const struct index_row *row, void *arg)
{
    *(int64_t *)arg = row->usage;
}

static void a_lookup_ahead_of_the_load_reads_the_journal_too(void **state)
{
    int64_t usage = -1;
    (void)state;
    afresh();
    open_index();
    complete(A, 0);
    touch(A, 9, false);
    index_close();
    open_index();
    assert_int_equal(index_find_row(A, found_usage, &usage), 1);
    assert_int_equal(usage, 9);
    index_close();
}

/* A row written whole (a renewal, a new download) or deleted (a purge, an eviction) says its
 * figures itself: the uses before it are not laid over the next row of the same key. */
static void a_row_written_again_or_deleted_drops_the_uses_before_it(void **state)
{
    (void)state;
    afresh();
    open_index();
    complete(A, 0);
    touch(A, 40, true);
    complete(A, 1); /* renewed: its row says usage 1, no pin */
    complete(B, 0);
    touch(B, 50, true);
    assert_int_equal(index_delete(B), 0);
    complete(B, 2); /* downloaded again after a purge */
    index_close();
    struct seen a = start(A);
    index_close();
    struct seen b = start(B);
    index_close();
    assert_int_equal(a.usage, 1);
    assert_false(a.pinned);
    assert_int_equal(b.usage, 2);
    assert_false(b.pinned);
}

/* 64 hex digits spread over the key space, as SHA-256 keys are. */
static void spread_key(unsigned i, char key[65])
{
    unsigned long long x = (i + 1) * 0x9E3779B97F4A7C15ull;
    snprintf(key, 65, "%016llx%016llx%016llx%016llx", x, x ^ 0x5555, x ^ 0xaaaa,
             (unsigned long long)i);
}

/* Enough appended records compact the journal into one sorted run, each key's last use kept and
 * the deleted keys dropped; a start then reads each key from the run (interpolation search) and
 * the uses appended after it from the table. */
static void a_compaction_keeps_the_last_use_of_each_key(void **state)
{
    enum { KEYS = 40000 };
    char key[65];
    size_t sorted, appended;
    (void)state;
    afresh();
    open_index();
    complete(A, 0);
    complete(B, 0);
    touch(B, 3, false);
    assert_int_equal(index_delete(B), 0);
    assert_int_equal(index_begin(), 0);
    for (int round = 1; round <= 2; round++) { /* 80,000 records: a compaction at the commit */
        for (unsigned i = 0; i < KEYS; i++) {
            spread_key(i, key);
            struct index_row row = {
                .key = key, .digest = digest, .created = 50, .usage = round * 1000 + i};
            index_touch(&row);
        }
    }
    assert_int_equal(index_commit(), 0);
    usage_log_counts(&sorted, &appended);
    assert_int_equal(sorted, KEYS); /* B's reset and A's nothing: neither kept */
    assert_int_equal(appended, 0);
    touch(A, 77, true); /* after the run */
    index_close();

    struct usage_view *view = usage_view_open(path);
    assert_non_null(view);
    for (unsigned i = 0; i < KEYS; i++) {
        spread_key(i, key);
        struct index_row row = {.key = key, .digest = digest, .created = 50, .usage = -1};
        usage_view_apply(view, &row);
        assert_int_equal(row.usage, 2000 + i);
    }
    struct index_row other = {
        .key = "c000000000000000000000000000000000000000000000000000000000000003", .usage = -5};
    usage_view_apply(view, &other);
    assert_int_equal(other.usage, -5); /* no record: the row's figures */
    usage_view_close(view);
    struct seen a = start(A);
    index_close();
    assert_int_equal(a.usage, 77);
    assert_true(a.pinned);
}

/* A row of another version of the object than the uses name (a renewal or a new download whose
 * row reached the disk while the reset before it was lost to a power cut: the journal is not
 * fsynced) keeps its own figures: the uses name the version they counted. */
static void uses_of_another_version_are_not_laid_over_a_row(void **state)
{
    sqlite3 *db;
    (void)state;
    afresh();
    open_index();
    complete(A, 0);
    touch(A, 12, true);
    index_close();
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "UPDATE objects SET created=51, usage=2", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    struct seen s = start(A);
    index_close();
    assert_int_equal(s.usage, 2);
    assert_false(s.pinned);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK); /* the same version, another digest */
    assert_int_equal(
        sqlite3_exec(db, "UPDATE objects SET created=50, sha256=zeroblob(32)", NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    s = start(A);
    index_close();
    assert_int_equal(s.usage, 2);
}

/* Only a row written whole waits for its reset to be on disk (a power cut that kept the row and
 * lost the reset would lay the older uses over it); uses and deletes are written, not synced. */
static void the_reset_before_a_complete_row_is_synced_alone(void **state)
{
    (void)state;
    afresh();
    open_index();
    journal_syncs = 0;
    complete(A, 0);
    assert_int_equal(journal_syncs, 1);
    touch(A, 3, false);
    assert_int_equal(index_delete(A), 0);
    assert_int_equal(index_begin(), 0);
    assert_int_equal(index_delete(B), 0);
    assert_int_equal(index_commit(), 0);
    assert_int_equal(journal_syncs, 1);
    index_close();
    assert_int_equal(journal_syncs, 2); /* a close syncs what it wrote */
}

static void append_junk(size_t n)
{
    char junk[72];
    memset(junk, 0x55, sizeof(junk));
    int fd = open(journal, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, junk, n), (ssize_t)n);
    close(fd);
}

/* A crash in a write leaves part of a record: the start cuts it off, and the records written after
 * it are read whole. */
static void a_torn_record_is_cut_off(void **state)
{
    (void)state;
    afresh();
    open_index();
    complete(A, 0);
    touch(A, 6, false);
    index_close();
    append_junk(10);
    struct seen s = start(A);
    touch(A, 8, true);
    index_close();
    assert_int_equal(s.usage, 6);
    s = start(A);
    index_close();
    assert_int_equal(s.usage, 8);
    assert_true(s.pinned);
}

/* A journal beside another index (a copy restored by hand, a new one made by another tool) is
 * not laid over that index's rows: its pin and figures would be another object's. */
static void another_index_journal_is_not_read(void **state)
{
    sqlite3 *db;
    (void)state;
    afresh();
    open_index();
    complete(A, 0);
    touch(A, 30, true);
    index_close();
    unlink(path); /* the journal stays; an index with A's row, usage 3, made by hand */
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db,
                     "CREATE TABLE objects (key TEXT PRIMARY KEY, url TEXT NOT NULL, state TEXT "
                     "NOT NULL, length INTEGER NOT NULL DEFAULT 0, content_type TEXT NOT NULL "
                     "DEFAULT '', sha256 BLOB, created INTEGER NOT NULL DEFAULT 0, ttl INTEGER "
                     "NOT NULL DEFAULT 0, last_use INTEGER NOT NULL DEFAULT 0, usage INTEGER NOT "
                     "NULL DEFAULT 0);"
                     "INSERT INTO objects VALUES ('a0000000000000000000000000000000000000000000"
                     "00000000000000000001', 'http://h/a', 'complete', 1, '', "
                     "zeroblob(32), 1000, 3600, 2000, 3);",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    struct seen s = start(A);
    index_close();
    assert_int_equal(s.usage, 3);
    assert_false(s.pinned);
}

int main(void)
{
    unit_tmp(dir, sizeof(dir));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(uses_come_back_through_the_journal_not_the_row),
        cmocka_unit_test(a_lookup_ahead_of_the_load_reads_the_journal_too),
        cmocka_unit_test(a_row_written_again_or_deleted_drops_the_uses_before_it),
        cmocka_unit_test(a_compaction_keeps_the_last_use_of_each_key),
        cmocka_unit_test(uses_of_another_version_are_not_laid_over_a_row),
        cmocka_unit_test(the_reset_before_a_complete_row_is_synced_alone),
        cmocka_unit_test(a_torn_record_is_cut_off),
        cmocka_unit_test(another_index_journal_is_not_read),
    };
    return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
