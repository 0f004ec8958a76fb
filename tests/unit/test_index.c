/* Units for the SQLite index: complete rows load (from both halves) with every field; rows of
 * downloads that never finished are handed over for their files to go, then forgotten; a file
 * that is not a sound database is reported corrupt, never loaded. A real index in a temporary
 * directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/parse.h"
#include "persist/index.h"
#include "persist/index_image.h"
#include "persist/index_rows.h"
#include "persist/usage_log.h"

#include <sqlite3.h>
#include "unit_tmp.h"

static char dir[UNIT_TMP_MAX] = "/tmp/arca-unit-index-XXXXXX";
static char path[128];

/* Rows come from two threads at once, one per part (index.h): each part counts its own. */
struct seen {
    int parts[2], discarded;
    char url[64], type[64], last_modified[64], etag[64];
    int64_t length, usage, created;
    uint8_t digest[32];
    bool pinned;
    int64_t keep_if_error;
    /* the partial row taken up (take_partial) */
    int taken;
    struct index_row partial;
};

static void on_row(const struct index_row *row, int part, void *arg)
{
    struct seen *s = arg;
    char hex[65];
    s->parts[part]++;
    if (row->key_bytes) /* an image's row (index_image.h) */
        format_sha256_hex(row->key_bytes, hex);
    else
        snprintf(hex, sizeof(hex), "%s", row->key);
    if (!strcmp(hex, "0000000000000000000000000000000000000000000000000000000000000006")) {
        snprintf(s->url, sizeof(s->url), "%s", row->url);
        snprintf(s->type, sizeof(s->type), "%s", row->headers.content_type);
        snprintf(s->last_modified, sizeof(s->last_modified), "%s", row->headers.last_modified);
        snprintf(s->etag, sizeof(s->etag), "%s", row->headers.etag);
        s->length = row->length;
        s->usage = row->usage;
        s->created = row->created;
        s->pinned = row->pinned;
        s->keep_if_error = row->keep_if_error;
        memcpy(s->digest, row->digest, 32);
    }
}

/* Read once both loading threads are joined (index_open has returned). */
static int rows(const struct seen *s)
{
    return s->parts[0] + s->parts[1];
}

static bool no_partial(const struct index_row *row, void *arg)
{
    (void)row, (void)arg;
    return false;
}

static void on_discard(const char *key, void *arg)
{
    (void)key;
    ((struct seen *)arg)->discarded++;
}

/* The usage journal laid over key ...06's row, as the store's loader does (usage_log_cursor). */
static void lay_journal(struct seen *s)
{
    static const uint8_t key[32] = {[31] = 0x06};
    struct usage_cursor *c = usage_log_cursor();
    struct index_row row = {.created = s->created, .digest = s->digest, .max_size = -1};
    if (c && s->url[0] && usage_cursor_apply(c, key, &row)) {
        s->usage = row.usage;
        s->pinned = row.pinned;
        s->keep_if_error = row.keep_if_error;
    }
    usage_cursor_close(c);
}

/* What a start does: the index opened (its unfinished rows), then its complete rows loaded
 * (the store's loader thread, while arca serves) and the usage journal laid over them, unless
 * they came from a clean stop's image (INDEX_IMAGED: its figures are whole). */
static int open_with(struct seen *s)
{
    char err[256];
    struct index_loader load = {no_partial, on_discard, s};
    atomic_bool stop = false;
    memset(s, 0, sizeof(*s));
    int rc = index_open(path, &load, err, sizeof(err));
    if (rc == 0 && (rc = index_load_rows(on_row, s, &stop, err, sizeof(err))) == 0)
        lay_journal(s);
    return rc;
}

/* The usage flush's word on key ...06 (index_touch), naming the version the rows here are (made
 * at 1000, digest 0xab...). */
static int touch(int64_t last_use, int64_t usage, bool pinned, int64_t keep_if_error)
{
    static uint8_t digest[32];
    memset(digest, 0xab, sizeof(digest));
    struct index_row row = {.key =
                                "0000000000000000000000000000000000000000000000000000000000000006",
                            .digest = digest,
                            .created = 1000,
                            .last_use = last_use,
                            .usage = usage,
                            .ttl = 3600,
                            .pinned = pinned,
                            .keep_if_error = keep_if_error,
                            .keep_while = -1};
    return index_touch(&row);
}

static bool take_partial(const struct index_row *row, void *arg)
{
    struct seen *s = arg;
    s->taken++;
    s->partial = *row; /* its strings are not kept: only the numbers are read */
    return true;
}

static int make_dir(void **state)
{
    (void)state;
    if (!mkdtemp(dir))
        return -1;
    snprintf(path, sizeof(path), "%s/index.sqlite", dir);
    return 0;
}

static int remove_dir(void **state)
{
    char cmd[160];
    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd);
}

static void rows_load_and_partials_are_forgotten(void **state)
{
    struct seen s;
    uint8_t digest[32];
    char key[65], url[64];
    (void)state;
    memset(digest, 0xab, sizeof(digest));
    assert_int_equal(open_with(&s), 0);
    assert_int_equal(rows(&s), 0);
    for (int i = 0; i < 20; i++) {
        snprintf(key, sizeof(key), "%064d", i); /* keys are 64 hex digits */
        snprintf(url, sizeof(url), "http://h/%d", i);
        assert_int_equal(index_mark_fetching(key, url, url), 0);
        if (i % 4 == 3)
            continue; /* a download that never finished */
        struct index_row row = {
            key,     url,  {"text/plain", "", "", "Tue, 01 Sep 2026 10:00:00 GMT", "\"v1\"", ""},
            100 + i, 1000, 3600,
            2000,    i,    digest,
            false,   "",   0,
            -1,      -1,   i % 2 == 0, /* 6 pinned */
            -1,      -1,   -1,
            false,   NULL};
        assert_int_equal(index_mark_complete(&row), 0);
    }
    index_close();
    assert_int_equal(open_with(&s), 0);
    assert_int_equal(rows(&s), 15);
    assert_true(s.parts[0] > 0 && s.parts[1] > 0); /* both halves loaded */
    assert_int_equal(s.discarded, 5);
    assert_string_equal(s.url, "http://h/6");
    assert_string_equal(s.type, "text/plain");
    assert_string_equal(s.last_modified, "Tue, 01 Sep 2026 10:00:00 GMT");
    assert_string_equal(s.etag, "\"v1\""); /* upstream's, for revalidation and confirmation */
    assert_int_equal(s.length, 106);
    assert_int_equal(s.usage, 6);
    assert_true(s.pinned);
    assert_memory_equal(s.digest, digest, 32);
    /* a later lookup's terms unpin it: the usage flush writes the pin with the use */
    assert_int_equal(touch(3000, 7, false, 30), 0);
    index_close();
    assert_int_equal(open_with(&s), 0);
    assert_false(s.pinned);
    assert_int_equal(s.usage, 7);
    assert_int_equal(s.keep_if_error, 30); /* and its terms' stale window with it */
    index_close();
    assert_int_equal(open_with(&s), 0);
    assert_int_equal(s.discarded, 0); /* forgotten once handed over */
    assert_int_equal(rows(&s), 15);
    assert_int_equal(
        index_delete("0000000000000000000000000000000000000000000000000000000000000000"), 0);
    index_close();
    assert_int_equal(open_with(&s), 0);
    assert_int_equal(rows(&s), 14);
    index_close();
}

/* An index written before the columns of this version (upstream ETag, the resume's source and
 * synced length, the signed flag, the stale windows, the pin, the terms' windows, size and
 * store) gains them: its rows load, and the
 * new columns can be used. */
static void an_older_index_gains_the_new_columns(void **state)
{
    struct seen s;
    sqlite3 *db;
    (void)state;
    unlink(path);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db,
                     "CREATE TABLE objects (key TEXT PRIMARY KEY, url TEXT NOT NULL, state TEXT "
                     "NOT NULL, length INTEGER NOT NULL DEFAULT 0, content_type TEXT NOT NULL "
                     "DEFAULT '', sha256 BLOB, created INTEGER NOT NULL DEFAULT 0, ttl INTEGER "
                     "NOT NULL DEFAULT 0, last_use INTEGER NOT NULL DEFAULT 0, usage INTEGER NOT "
                     "NULL DEFAULT 0);"
                     "INSERT INTO objects VALUES ('0000000000000000000000000000000000000000000000"
                     "000000000000000006', 'http://h/6', 'complete', 106, 'text/plain', "
                     "zeroblob(32), 1000, 3600, 2000, 6);",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(open_with(&s), 0);
    assert_int_equal(rows(&s), 1);
    assert_string_equal(s.url, "http://h/6");
    assert_string_equal(s.etag, "");
    assert_false(s.pinned);                /* the pin column, added empty: nothing pinned */
    assert_int_equal(s.keep_if_error, -1); /* no terms' window: the store-wide one */
    assert_int_equal(touch(3000, 7, true, -1), 0);
    assert_int_equal(
        index_mark_fetching("1111111111111111111111111111111111111111111111111111111111111111",
                            "http://h/7", "http://h/7?sig=x"),
        0);
    assert_int_equal(
        index_set_synced("1111111111111111111111111111111111111111111111111111111111111111", 5), 0);
    index_close();
    unlink(path);
}

/* What the terms decided for a download is on its row from its start (index_mark_started) and
 * follows their changes (index_set_keep): a restart reads them back with the partial row. */
static void a_downloads_row_keeps_its_terms(void **state)
{
    const char *key = "2222222222222222222222222222222222222222222222222222222222222222";
    struct index_row row = {.key = key,
                            .headers = {"", "", "", "", "\"e\"", ""},
                            .length = 1000,
                            .created = 1000,
                            .ttl = 3600,
                            .pinned = true,
                            .keep_if_error = 60,
                            .keep_while = 5,
                            .max_size = 30 << 20,
                            .not_stored = false};
    struct index_loader load = {take_partial, on_discard, NULL};
    struct seen s;
    char err[256];
    (void)state;
    unlink(path);
    memset(&s, 0, sizeof(s));
    load.arg = &s;
    assert_int_equal(index_open(path, &load, err, sizeof(err)), 0);
    assert_int_equal(index_mark_fetching(key, "http://h/rel", "http://h/rel"), 0);
    assert_int_equal(index_mark_started(&row), 0);
    assert_int_equal(index_set_synced(key, 500), 0);
    index_close();
    memset(&s, 0, sizeof(s));
    assert_int_equal(index_open(path, &load, err, sizeof(err)), 0);
    assert_int_equal(s.taken, 1);
    assert_true(s.partial.pinned);
    assert_int_equal(s.partial.keep_if_error, 60);
    assert_int_equal(s.partial.keep_while, 5);
    assert_int_equal(s.partial.max_size, 30 << 20);
    assert_false(s.partial.not_stored);
    row.pinned = false; /* a later request's terms: store = no, unpinned */
    row.not_stored = true;
    assert_int_equal(index_set_keep(&row), 0);
    index_close();
    memset(&s, 0, sizeof(s));
    assert_int_equal(index_open(path, &load, err, sizeof(err)), 0);
    assert_int_equal(s.taken, 1);
    assert_false(s.partial.pinned);
    assert_true(s.partial.not_stored);
    index_close();
    unlink(path);
}

static void a_corrupt_file_is_reported_not_loaded(void **state)
{
    struct seen s;
    char junk[8192];
    (void)state;
    unlink(path);
    memset(junk, 'x', sizeof(junk));
    memcpy(junk, "SQLite format 3", 16); /* looks like one, is not */
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(junk, 1, sizeof(junk), f), sizeof(junk));
    fclose(f);
    assert_int_equal(open_with(&s), INDEX_CORRUPT);
    assert_int_equal(rows(&s), 0);
    unlink(path);
}

/* The loader's lookups ahead of it (index_find_row): a complete row by its key, never an
 * unfinished one, nothing for a key the index does not hold. */
static void found(const struct index_row *row, void *arg)
{
    snprintf(arg, 64, "%s", row->url);
}

static void a_row_is_found_by_its_key(void **state)
{
    struct seen s;
    uint8_t digest[32] = {1};
    char url[64] = "";
    const char *done = "3333333333333333333333333333333333333333333333333333333333333333",
               *running = "4444444444444444444444444444444444444444444444444444444444444444";
    (void)state;
    unlink(path);
    assert_int_equal(open_with(&s), 0);
    struct index_row row = {.key = done,
                            .url = "http://h/done",
                            .headers = {"", "", "", "", "", ""},
                            .length = 1,
                            .digest = digest,
                            .ttl = 60};
    assert_int_equal(index_mark_complete(&row), 0);
    assert_int_equal(index_mark_fetching(running, "http://h/running", "http://h/running"), 0);
    assert_int_equal(index_find_row(done, found, url), 1);
    assert_string_equal(url, "http://h/done");
    url[0] = '\0';
    assert_int_equal(index_find_row(running, found, url), 0);
    assert_int_equal(
        index_find_row("5555555555555555555555555555555555555555555555555555555555555555", found,
                       url),
        0);
    assert_string_equal(url, "");
    index_close();
    unlink(path);
}

/* The root page of the key index: a page the rows' scan never reads, only the check. */
static void damage_key_index(bool keep_times)
{
    sqlite3 *db;
    sqlite3_stmt *stmt;
    struct stat before;
    assert_int_equal(stat(path, &before), 0);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_prepare_v2(db,
                           "SELECT rootpage, (SELECT page_size FROM pragma_page_size)"
                           " FROM sqlite_master WHERE name='sqlite_autoindex_objects_1'",
                           -1, &stmt, NULL),
        SQLITE_OK);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    long root = sqlite3_column_int(stmt, 0), size = sqlite3_column_int(stmt, 1);
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    char junk[65536];
    memset(junk, 0x5a, sizeof(junk));
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    assert_int_equal(fseek(f, (root - 1) * size, SEEK_SET), 0);
    assert_int_equal(fwrite(junk, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    if (keep_times) /* as bit rot leaves a file: nothing says it changed */
        assert_int_equal(
            utimensat(AT_FDCWD, path, (struct timespec[]){before.st_atim, before.st_mtim}, 0), 0);
}

/* What index_close writes for a clean close, written here for a file the test damaged: as the
 * close left it, unchecked. */
static void mark_clean_by_hand(void)
{
    char marker[160];
    struct stat st;
    snprintf(marker, sizeof(marker), "%s.clean", path);
    assert_int_equal(stat(path, &st), 0);
    FILE *f = fopen(marker, "w");
    assert_non_null(f);
    fprintf(f, "%llu %lld %lld.%09ld\n", (unsigned long long)st.st_ino, (long long)st.st_size,
            (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    fclose(f);
}

/* A file as a clean close left it is trusted at open and checked after its rows
 * (index_check_deferred): damage found then has the next open refuse it. A run stopped before
 * its check leaves the file unmarked: the next open checks it. Any other file (here one written
 * to since) is checked at open. */
static void a_clean_close_is_checked_after_the_rows(void **state)
{
    struct seen s;
    atomic_bool never = false, now = true;
    char err[256], marker[160];
    uint8_t digest[32] = {2};
    (void)state;
    unlink(path);
    snprintf(marker, sizeof(marker), "%s.clean", path);
    assert_int_equal(open_with(&s), 0);
    for (int i = 0; i < 200; i++) { /* enough keys for an index of more than one page */
        char key[65], url[64];
        snprintf(key, sizeof(key), "%064d", i);
        snprintf(url, sizeof(url), "http://h/%d", i);
        struct index_row row = {.key = key,
                                .url = url,
                                .headers = {"", "", "", "", "", ""},
                                .length = 1,
                                .digest = digest,
                                .ttl = 60};
        assert_int_equal(index_mark_complete(&row), 0);
    }
    index_close();
    assert_int_equal(access(marker, F_OK), 0);
    assert_int_equal(open_with(&s), 0);
    assert_int_equal(access(marker, F_OK), -1); /* taken at open: a crash leaves none */
    assert_int_equal(index_check_deferred(&never, err, sizeof(err)), 0);
    index_close();

    damage_key_index(true);
    assert_int_equal(open_with(&s), 0);                                /* trusted: its rows load */
    assert_int_equal(index_check_deferred(&now, err, sizeof(err)), 0); /* a stop cuts it short */
    index_close();
    assert_int_equal(access(marker, F_OK), -1);     /* still owed: not marked clean */
    assert_int_equal(open_with(&s), INDEX_CORRUPT); /* so the next start checks it first */

    damage_key_index(true);
    mark_clean_by_hand();
    assert_int_equal(open_with(&s), 0); /* trusted: its rows load */
    assert_int_equal(rows(&s), 200);
    assert_int_equal(index_check_deferred(&never, err, sizeof(err)), INDEX_CORRUPT);
    assert_non_null(strstr(err, "integrity check failed"));
    index_distrust();
    index_close();
    assert_int_equal(open_with(&s), INDEX_CORRUPT); /* the next start moves it aside */

    damage_key_index(false); /* written since: checked before anything loads */
    assert_int_equal(open_with(&s), INDEX_CORRUPT);
    unlink(path);
}

/* --- the image a clean stop leaves (index_image.h) ------------------------------------------ */

static char image[160];

/* A new index beside no other file. */
static void fresh_index(void)
{
    static const char *const sides[] = {"",       "-wal",   "-shm",      "-usage",
                                        ".clean", ".image", ".image.new"};
    char side[200];
    for (size_t i = 0; i < sizeof(sides) / sizeof(*sides); i++) {
        snprintf(side, sizeof(side), "%s%s", path, sides[i]);
        unlink(side);
    }
    snprintf(image, sizeof(image), "%s.image", path);
}

/* Row i of these tests: key i, URL http://h/i, 100 + i bytes, used i times, even ones pinned. */
static struct index_row row_of(int i, char key[65], uint8_t bytes[32], char url[64])
{
    static uint8_t digest[32];
    memset(digest, 0xab, sizeof(digest));
    snprintf(key, 65, "%064d", i);
    snprintf(url, 64, "http://h/%d", i);
    parse_sha256_hex(key, bytes);
    return (struct index_row){
        .key = key,
        .url = url,
        .headers = {"text/plain", "", "", "Tue, 01 Sep 2026 10:00:00 GMT", "\"v1\"", ""},
        .length = 100 + i,
        .created = 1000,
        .ttl = 3600,
        .last_use = 2000 + i,
        .usage = i,
        .digest = digest,
        .stale_if_error = -1,
        .stale_while_revalidate = -1,
        .pinned = i % 2 == 0,
        .keep_if_error = i == 6 ? 30 : -1,
        .keep_while = -1,
        .max_size = -1};
}

/* The first image_rows rows handed to an image, as the store does at a clean stop. */
static void leave_image(int image_rows)
{
    char key[65], url[64];
    uint8_t bytes[32];
    assert_int_equal(index_image_begin((size_t)image_rows), 0);
    for (int i = 0; i < image_rows; i++) {
        struct index_row row = row_of(i, key, bytes, url);
        if (i == image_rows / 2)
            index_image_half();
        index_image_row(bytes, &row);
    }
}

/* Rows 0 to n - 1 written complete. */
static void write_rows(int n)
{
    char key[65], url[64];
    uint8_t bytes[32];
    for (int i = 0; i < n; i++) {
        struct index_row row = row_of(i, key, bytes, url);
        assert_int_equal(index_mark_complete(&row), 0);
    }
}

/* A run of a fresh index: `rows` complete rows written, and (image_rows >= 0) the first
 * image_rows of them handed to an image, as the store does at a clean stop; then closed. */
static void run_writing(int rows_written, int image_rows)
{
    struct seen s;
    assert_int_equal(open_with(&s), 0);
    write_rows(rows_written);
    if (image_rows >= 0)
        leave_image(image_rows);
    index_close();
}

/* A start that finds the file as the clean stop left it, and its check done. */
static int start_clean(struct seen *s)
{
    char err[256];
    atomic_bool never = false;
    int rc = open_with(s);
    if (rc >= 0)
        assert_int_equal(index_check_deferred(&never, err, sizeof(err)), 0);
    return rc;
}

/* A clean stop's image is what the next start reads, every field of a row as SQLite has it, from
 * both halves; it is taken once (a crash after that start finds none), and a stop that wrote
 * none leaves none. */
static void a_clean_stop_leaves_an_image_the_next_start_reads(void **state)
{
    struct seen s;
    (void)state;
    fresh_index();
    run_writing(20, 20);
    assert_int_equal(access(image, F_OK), 0);
    assert_int_equal(start_clean(&s), INDEX_IMAGED);
    assert_int_equal(access(image, F_OK), -1); /* taken: removed */
    assert_int_equal(rows(&s), 20);
    assert_true(s.parts[0] == 10 && s.parts[1] == 10);
    assert_string_equal(s.url, "http://h/6");
    assert_string_equal(s.type, "text/plain");
    assert_string_equal(s.last_modified, "Tue, 01 Sep 2026 10:00:00 GMT");
    assert_string_equal(s.etag, "\"v1\"");
    assert_int_equal(s.length, 106);
    assert_int_equal(s.usage, 6);
    assert_int_equal(s.created, 1000);
    assert_true(s.pinned);
    assert_int_equal(s.keep_if_error, 30);
    uint8_t digest[32];
    memset(digest, 0xab, sizeof(digest));
    assert_memory_equal(s.digest, digest, 32);
    index_close(); /* no image written this run */
    assert_int_equal(access(image, F_OK), -1);
    assert_int_equal(start_clean(&s), 0); /* SQLite's rows */
    assert_int_equal(rows(&s), 20);
    index_close();
}

/* An image one row short of the index's complete rows is not left: it would hide that row. */
static void an_image_short_of_the_index_is_not_left(void **state)
{
    struct seen s;
    (void)state;
    fresh_index();
    run_writing(20, 19);
    assert_int_equal(access(image, F_OK), -1);
    char written[200];
    snprintf(written, sizeof(written), "%s.new", image);
    assert_int_equal(access(written, F_OK), -1); /* nor the file it was written to */
    assert_int_equal(start_clean(&s), 0);
    assert_int_equal(rows(&s), 20);
    index_close();
}

/* `sql` run on the index by hand, as an admin's sqlite3 would; with `same_time`, the file's
 * modification time put back after (a file system's coarse clock, a restore that keeps it). */
static void by_hand(const char *sql, bool same_time)
{
    sqlite3 *db;
    struct stat before;
    assert_int_equal(stat(path, &before), 0);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    if (same_time) {
        struct timespec t[2] = {before.st_atim, before.st_mtim};
        assert_int_equal(utimensat(AT_FDCWD, path, t, 0), 0);
    }
}

/* An index written to while arca was down (here a row deleted by hand) is read, not the image of
 * what it was: the image is removed unread. Also when the file's identity did not move (its
 * time put back: a deleted row keeps its size): the index's counts differ from the seal's. */
static void an_index_changed_while_down_is_read_not_its_image(void **state)
{
    struct seen s;
    (void)state;
    for (int same_time = 0; same_time < 2; same_time++) {
        fresh_index();
        run_writing(20, 20);
        by_hand("DELETE FROM objects WHERE url='http://h/6'", same_time);
        assert_int_equal(start_clean(&s), 0);
        assert_int_equal(access(image, F_OK), -1);
        assert_int_equal(rows(&s), 19);
        assert_string_equal(s.url, ""); /* the deleted row is not read from the image */
        index_close();
    }
    /* a row added by hand under the same time: not lost to the image */
    fresh_index();
    run_writing(20, 20);
    by_hand("INSERT INTO objects (key, url, state, length, sha256) VALUES ('"
            "1111111111111111111111111111111111111111111111111111111111111111', 'http://h/new',"
            " 'complete', 5, zeroblob(32))",
            true);
    assert_int_equal(start_clean(&s), 0);
    assert_int_equal(rows(&s), 21);
    index_close();
}

/* A complete row the load cannot take (no digest: never in memory, never in an image) is
 * counted, and deleted as the store has it deleted (index_forget_unusable): then an image is
 * left, and read. Left in place, it keeps any image from being left: the counts differ. */
static void an_unusable_row_is_deleted_not_a_bar_to_the_image(void **state)
{
    struct seen s;
    (void)state;
    fresh_index();
    run_writing(0, -1);
    by_hand("INSERT INTO objects (key, url, state, length) VALUES ('XYZ', 'http://h/x',"
            " 'complete', 5), ('"
            "3333333333333333333333333333333333333333333333333333333333333333', 'http://h/y',"
            " 'complete', 5)", /* a bad key; a good one without a digest */
            false);
    assert_int_equal(open_with(&s), 0); /* SQLite's rows: two skipped */
    assert_int_equal(index_rows_skipped(), 2);
    write_rows(20);
    leave_image(20);
    index_close();
    assert_int_equal(access(image, F_OK), -1); /* 22 complete rows, 20 in the image */

    assert_int_equal(start_clean(&s), 0);
    assert_int_equal(index_rows_skipped(), 2);
    assert_int_equal(index_forget_unusable(), 0);
    leave_image(20);
    index_close();
    assert_int_equal(access(image, F_OK), 0);
    assert_int_equal(start_clean(&s), INDEX_IMAGED);
    assert_int_equal(rows(&s), 20);
    index_close();
}

/* A download under way at the stop (the newest row, 'fetching') is forgotten by the next open
 * when it cannot resume: that lowers the highest rowid, after the image's counts were asked,
 * so the image is still read. */
static void a_download_forgotten_at_open_keeps_the_image(void **state)
{
    struct seen s;
    (void)state;
    fresh_index();
    assert_int_equal(open_with(&s), 0);
    write_rows(20);
    assert_int_equal(
        index_mark_fetching("2222222222222222222222222222222222222222222222222222222222222222",
                            "http://h/new", "http://h/new"),
        0);
    leave_image(20);
    index_close();
    assert_int_equal(start_clean(&s), INDEX_IMAGED);
    assert_int_equal(s.discarded, 1); /* forgotten at open */
    assert_int_equal(rows(&s), 20);
    index_close();
}

/* Bytes of the image at `offset` from its end (negative) or its start replaced by `with`. */
static void damage_image(long offset, const char *with)
{
    FILE *f = fopen(image, "r+");
    assert_non_null(f);
    assert_int_equal(fseek(f, offset, offset < 0 ? SEEK_END : SEEK_SET), 0);
    assert_int_equal(fwrite(with, 1, strlen(with), f), strlen(with));
    fclose(f);
}

/* A damaged image hands on no row: the rows are SQLite's, each once. Its last byte (the NUL
 * ending its last record's last string) is found by the load's check; a file cut short, by its
 * head, at open. */
static void a_damaged_image_is_dropped_for_the_rows(void **state)
{
    struct seen s;
    struct stat st;
    (void)state;
    fresh_index();
    run_writing(20, 20);
    /* the mark says the index's identity, not the image's: the image can be damaged alone */
    damage_image(-1, "x");
    assert_int_equal(start_clean(&s), 0);
    assert_int_equal(rows(&s), 20);
    assert_string_equal(s.url, "http://h/6");
    index_close();
    assert_int_equal(access(image, F_OK), -1); /* no image written this run */

    fresh_index();
    run_writing(20, 20);
    assert_int_equal(stat(image, &st), 0);
    assert_int_equal(truncate(image, st.st_size - 10), 0);
    assert_int_equal(start_clean(&s), 0);
    assert_int_equal(rows(&s), 20);
    assert_int_equal(access(image, F_OK), -1);
    index_close();

    fresh_index();
    run_writing(20, 20);
    damage_image(0, "not an image"); /* its head */
    assert_int_equal(start_clean(&s), 0);
    assert_int_equal(rows(&s), 20);
    index_close();
}

int main(void)
{
    unit_tmp(dir, sizeof(dir));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rows_load_and_partials_are_forgotten),
        cmocka_unit_test(an_older_index_gains_the_new_columns),
        cmocka_unit_test(a_downloads_row_keeps_its_terms),
        cmocka_unit_test(a_corrupt_file_is_reported_not_loaded),
        cmocka_unit_test(a_row_is_found_by_its_key),
        cmocka_unit_test(a_clean_close_is_checked_after_the_rows),
        cmocka_unit_test(a_clean_stop_leaves_an_image_the_next_start_reads),
        cmocka_unit_test(an_image_short_of_the_index_is_not_left),
        cmocka_unit_test(an_index_changed_while_down_is_read_not_its_image),
        cmocka_unit_test(a_damaged_image_is_dropped_for_the_rows),
        cmocka_unit_test(an_unusable_row_is_deleted_not_a_bar_to_the_image),
        cmocka_unit_test(a_download_forgotten_at_open_keeps_the_image),
    };
    return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
