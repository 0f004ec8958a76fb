/* The index's object rows read (index_rows.h): the complete ones while arca serves, in two halves
 * of the rowid range at once, and one by key for a lookup the load has not reached. */
#include "persist/index_rows.h"
#include "base/clock.h"
#include "base/halves.h"
#include "log/log.h"
#include "persist/index_image.h"
#include "persist/usage_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct {
    char path[1200];
    bool check_later; /* index_open trusted the file unchecked: the check runs after the rows */
    /* complete rows the load did not take (index_row_usable: no key, no digest): never served,
     * the store has them deleted (index_forget_unusable) */
    int64_t skipped;
    sqlite3 *find; /* index_find_row's connection (the caller serializes its use) */
    sqlite3_stmt *find_stmt;
} rows;

bool index_row_read(sqlite3_stmt *stmt, struct index_row *row)
{
    *row = (struct index_row){
        .key = (const char *)sqlite3_column_text(stmt, 0),
        .url = (const char *)sqlite3_column_text(stmt, 1),
        .length = sqlite3_column_int64(stmt, 2),
        .headers = {(const char *)sqlite3_column_text(stmt, 3),
                    (const char *)sqlite3_column_text(stmt, 10),
                    (const char *)sqlite3_column_text(stmt, 11),
                    (const char *)sqlite3_column_text(stmt, 12),
                    (const char *)sqlite3_column_text(stmt, 13),
                    (const char *)sqlite3_column_text(stmt, 24)},
        .digest = sqlite3_column_bytes(stmt, 4) == 32 ? sqlite3_column_blob(stmt, 4) : NULL,
        .created = sqlite3_column_int64(stmt, 5),
        .ttl = sqlite3_column_int64(stmt, 6),
        .last_use = sqlite3_column_int64(stmt, 7),
        .usage = sqlite3_column_int64(stmt, 8),
        .source = (const char *)sqlite3_column_text(stmt, 14),
        .synced = sqlite3_column_int64(stmt, 15),
        .signed_key = sqlite3_column_int(stmt, 16) != 0,
        .stale_if_error = sqlite3_column_int64(stmt, 17),
        .stale_while_revalidate = sqlite3_column_int64(stmt, 18),
        .pinned = sqlite3_column_int(stmt, 19) != 0,
        .keep_if_error = sqlite3_column_int64(stmt, 20),
        .keep_while = sqlite3_column_int64(stmt, 21),
        .max_size = sqlite3_column_int64(stmt, 22),
        .not_stored = sqlite3_column_int(stmt, 23) != 0,
    };
    return sqlite3_column_int(stmt, 9) != 0;
}

bool index_row_usable(const struct index_row *row, bool complete)
{
    /* 64 lowercase hex digits: the store keeps a key as its 32 bytes (store/table.h) */
    return row->key && strlen(row->key) == 64 && strspn(row->key, "0123456789abcdef") == 64 &&
           row->url && (!complete || row->digest);
}

/* A side connection waits on locks like the main one: on a new database, a reader may find the
 * WAL index briefly busy ("database is locked" under ASan). */
int index_open_side(const char *path, sqlite3 **conn)
{
    int rc = sqlite3_open_v2(path, conn, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc == SQLITE_OK)
        sqlite3_busy_timeout(*conn, 5000);
    return rc;
}

/* The deferred check's pace: its progress handler (every 1,000 steps of SQLite's) sleeps
 * 1 ms every CHECK_STEPS_AWAKE calls, so that it takes about a tenth of a core beside hits
 * (run flat out beside them it put the first seconds' p99 at 200 ms; at idle priority a busy
 * machine starved it, and a stop waited for it). */
#define CHECK_STEPS_AWAKE 10

struct pace {
    const atomic_bool *stop;
    unsigned calls;
};

/* SQLite's progress handler: non-zero interrupts the statement. */
static int paced_until_stop(void *arg)
{
    struct pace *p = arg;
    if (atomic_load(p->stop))
        return 1;
    if (++p->calls % CHECK_STEPS_AWAKE == 0)
        nanosleep(&(struct timespec){.tv_nsec = 1000 * 1000}, NULL);
    return 0;
}

/* PRAGMA quick_check reads every page: 0.4-0.5 s of CPU for a million rows. With `stop` (the
 * deferred check) it is paced, and `stop` interrupts it: SQLITE_INTERRUPT. */
static int quick_check_until(const char *path, const atomic_bool *stop)
{
    sqlite3 *conn = NULL;
    sqlite3_stmt *stmt = NULL;
    struct pace pace = {stop, 0};
    if (stop && atomic_load(stop))
        return SQLITE_INTERRUPT;
    int code = index_open_side(path, &conn);
    /* asked every 1,000 steps: 50,000 times in a million rows' check, a stop waits ~1 ms */
    if (code == SQLITE_OK && stop)
        sqlite3_progress_handler(conn, 1000, paced_until_stop, &pace);
    if (code == SQLITE_OK)
        code = sqlite3_prepare_v2(conn, "PRAGMA quick_check", -1, &stmt, NULL);
    if (code == SQLITE_OK) {
        code = sqlite3_step(stmt);
        if (code == SQLITE_ROW)
            code = strcmp((const char *)sqlite3_column_text(stmt, 0), "ok") ? SQLITE_CORRUPT
                                                                            : SQLITE_OK;
    }
    sqlite3_finalize(stmt);
    sqlite3_close(conn);
    return code;
}

int index_quick_check(const char *path)
{
    return quick_check_until(path, NULL);
}

int index_rows_open(const char *path, bool check_later)
{
    snprintf(rows.path, sizeof(rows.path), "%s", path);
    rows.check_later = check_later;
    int rc = index_open_side(path, &rows.find);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(rows.find,
                                "SELECT " INDEX_ROW_COLUMNS " FROM objects WHERE key=?"
                                " AND state='complete'",
                                -1, &rows.find_stmt, NULL);
    if (rc != SQLITE_OK) {
        index_rows_close();
        return -1;
    }
    return 0;
}

void index_rows_close(void)
{
    sqlite3_finalize(rows.find_stmt);
    sqlite3_close(rows.find);
    rows.find_stmt = NULL;
    rows.find = NULL;
}

int index_find_row(const char *key, void (*each)(const struct index_row *row, void *arg), void *arg)
{
    struct index_row row;
    int rc;
    if (!rows.find_stmt)
        return -1;
    sqlite3_bind_text(rows.find_stmt, 1, key, -1, SQLITE_STATIC);
    rc = sqlite3_step(rows.find_stmt);
    if (rc == SQLITE_ROW && index_row_read(rows.find_stmt, &row) && index_row_usable(&row, true)) {
        if (strcmp(row.key, key) != 0) { /* the key index points at another row: damaged */
            rc = SQLITE_CORRUPT;
        } else {
            usage_log_apply(&row);
            each(&row, arg);
        }
    }
    sqlite3_reset(rows.find_stmt);
    sqlite3_clear_bindings(rows.find_stmt);
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

/* One half of the complete rows, on a connection of its own and (part 1) a thread. */
struct half {
    int part;
    int64_t first, last; /* rowid range */
    void (*row)(const struct index_row *row, int part, void *arg);
    void *arg;
    const atomic_bool *stop;
    int code;        /* SQLITE_OK or why the load stopped */
    int64_t skipped; /* complete rows not usable */
};

static int load_range(sqlite3 *conn, struct half *h)
{
    sqlite3_stmt *stmt;
    struct index_row row;
    int rc;
    const char *sql = "SELECT " INDEX_ROW_COLUMNS " FROM objects WHERE rowid BETWEEN ? AND ?"
                      " AND state='complete'";
    if (sqlite3_prepare_v2(conn, sql, -1, &stmt, NULL) != SQLITE_OK)
        return sqlite3_errcode(conn);
    sqlite3_bind_int64(stmt, 1, h->first);
    sqlite3_bind_int64(stmt, 2, h->last);
    while (!atomic_load(h->stop) && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        bool complete = index_row_read(stmt, &row);
        if (complete && index_row_usable(&row, true))
            h->row(&row, h->part, h->arg);
        else if (complete)
            h->skipped++;
    }
    if (atomic_load(h->stop))
        rc = SQLITE_DONE; /* arca stops: what was read is the caller's, no error */
    sqlite3_finalize(stmt);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static void *load_half(void *arg)
{
    struct half *h = arg;
    sqlite3 *conn = NULL;
    h->code = index_open_side(rows.path, &conn);
    if (h->code == SQLITE_OK)
        h->code = load_range(conn, h);
    sqlite3_close(conn);
    return NULL;
}

/* Splits the rowid range in two (two subqueries: SQLite answers a lone min() or max() from the
 * b-tree's ends, but scans the whole table for both in one SELECT); empty: two empty ranges. */
static int split_rows(struct half h[2])
{
    sqlite3 *conn = NULL;
    sqlite3_stmt *stmt = NULL;
    int64_t lo = 1, hi = 0;
    int rc = index_open_side(rows.path, &conn);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(
            conn, "SELECT (SELECT min(rowid) FROM objects), (SELECT max(rowid) FROM objects)", -1,
            &stmt, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        rc = SQLITE_OK;
        if (sqlite3_column_type(stmt, 0) != SQLITE_NULL) {
            lo = sqlite3_column_int64(stmt, 0);
            hi = sqlite3_column_int64(stmt, 1);
        }
    }
    sqlite3_finalize(stmt);
    sqlite3_close(conn);
    h[0].first = lo;
    h[0].last = lo + (hi - lo) / 2;
    h[1].first = h[0].last + 1;
    h[1].last = hi;
    return rc;
}

int index_count_rows(sqlite3 *conn, int64_t *complete, int64_t *max_rowid)
{
    sqlite3_stmt *stmt;
    int rc = sqlite3_prepare_v2(conn,
                                "SELECT (SELECT count(*) FROM objects) -"
                                " (SELECT count(*) FROM objects WHERE state<>'complete'),"
                                " (SELECT max(rowid) FROM objects)",
                                -1, &stmt, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        *complete = sqlite3_column_int64(stmt, 0);
        *max_rowid = sqlite3_column_int64(stmt, 1); /* NULL (no row): 0 */
        rc = SQLITE_OK;
    }
    sqlite3_finalize(stmt);
    return rc == SQLITE_OK ? 0 : -1;
}

static bool corrupt(int code)
{
    return code == SQLITE_CORRUPT || code == SQLITE_NOTADB;
}

/* 0, or the failure `code` says in err: INDEX_CORRUPT for a damaged file, else -1. */
static int failed(int code, char *err, size_t errlen)
{
    if (code == SQLITE_OK)
        return 0;
    snprintf(err, errlen, "index %s: %s", rows.path,
             corrupt(code) ? "integrity check failed" : sqlite3_errstr(code));
    return corrupt(code) ? INDEX_CORRUPT : -1;
}

int index_load_rows(void (*row)(const struct index_row *row, int part, void *arg), void *arg,
                    const atomic_bool *stop, char *err, size_t errlen)
{
    struct half h[2] = {{0, 0, 0, row, arg, stop, SQLITE_OK, 0},
                        {1, 0, 0, row, arg, stop, SQLITE_OK, 0}};
    /* a clean stop's image of these rows (index_image.h), unless it is damaged */
    int imaged = index_image_ready() ? index_image_load(row, arg, stop) : 0;
    if (imaged != 0) {
        rows.skipped = 0; /* an image is of usable rows, and the index had no other */
        if (imaged > 0)
            return INDEX_IMAGED;
        snprintf(err, errlen, "index image %s.image: changed while it was read", rows.path);
        return -1;
    }
    int code = split_rows(h);
    if (code == SQLITE_OK) {
        run_halves(load_half, &h[0], &h[1]);
        code = h[0].code != SQLITE_OK ? h[0].code : h[1].code;
    }
    rows.skipped = h[0].skipped + h[1].skipped;
    return failed(code, err, errlen);
}

int64_t index_rows_skipped(void)
{
    return rows.skipped;
}

int index_check_deferred(const atomic_bool *stop, char *err, size_t errlen)
{
    if (!rows.check_later)
        return 0;
    int64_t t0 = monotonic_us();
    int code = quick_check_until(rows.path, stop);
    if (code == SQLITE_INTERRUPT)
        return 0; /* arca stops: still owed, the file is not marked clean */
    rows.check_later = false;
    if (code == SQLITE_OK) /* what a clean stop's next start owes, paid: its stop may mark it */
        log_info("index %s: checked in %.1f s after its rows loaded", rows.path,
                 (double)(monotonic_us() - t0) / 1e6);
    return failed(code, err, errlen);
}

void index_rows_loaded(void)
{
    index_image_drop(); /* taken and never loaded: no row to load */
    usage_log_loaded();
}

bool index_check_owed(void)
{
    return rows.check_later;
}
