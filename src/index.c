#include "index.h"
#include "log.h"

#include <sqlite3.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static sqlite3 *db;

static const char *schema =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=NORMAL;"
    "CREATE TABLE IF NOT EXISTS objects ("
    " key TEXT PRIMARY KEY, url TEXT NOT NULL, state TEXT NOT NULL,"
    " length INTEGER NOT NULL DEFAULT 0, content_type TEXT NOT NULL DEFAULT '',"
    " sha256 BLOB, created INTEGER NOT NULL DEFAULT 0, ttl INTEGER NOT NULL DEFAULT 0,"
    " last_use INTEGER NOT NULL DEFAULT 0, usage INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);";

/* quick_check reads every page: O(index size), a few ms for 100k rows, once per start. */
static bool index_sound(void)
{
    sqlite3_stmt *st;
    bool ok = false;
    if (sqlite3_prepare_v2(db, "PRAGMA quick_check", -1, &st, NULL) != SQLITE_OK)
        return false;
    if (sqlite3_step(st) == SQLITE_ROW)
        ok = !strcmp((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
    return ok;
}

int index_open(const char *path, char *err, size_t errlen)
{
    char *msg = NULL;
    int rc = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK)
        goto fail;
    sqlite3_busy_timeout(db, 5000);
    if (sqlite3_exec(db, schema, NULL, NULL, &msg) != SQLITE_OK) {
        int code = sqlite3_errcode(db);
        rc = (code == SQLITE_CORRUPT || code == SQLITE_NOTADB) ? INDEX_CORRUPT : -1;
        goto fail;
    }
    if (!index_sound()) {
        rc = INDEX_CORRUPT;
        goto fail;
    }
    return 0;
fail:
    snprintf(err, errlen, "index %s: %s", path,
             msg                   ? msg
             : rc == INDEX_CORRUPT ? "integrity check failed"
                                   : sqlite3_errmsg(db));
    sqlite3_free(msg);
    sqlite3_close(db);
    db = NULL;
    return rc;
}

const char *index_error(void)
{
    return db ? sqlite3_errmsg(db) : "not open";
}

void index_close(void)
{
    sqlite3_close(db);
    db = NULL;
}

/* Prepare, bind, step once, finalize: every write here is a single statement. */
static int exec_bound(const char *sql, const char *fmt, ...)
{
    sqlite3_stmt *st;
    va_list ap;
    int rc;

    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        log_error("index: %s", sqlite3_errmsg(db));
        return -1;
    }
    va_start(ap, fmt);
    for (int i = 0; fmt[i]; i++) {
        if (fmt[i] == 's')
            sqlite3_bind_text(st, i + 1, va_arg(ap, const char *), -1, SQLITE_TRANSIENT);
        else if (fmt[i] == 'i')
            sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t));
        else if (fmt[i] == 'b')
            sqlite3_bind_blob(st, i + 1, va_arg(ap, const void *), 32, SQLITE_TRANSIENT);
    }
    va_end(ap);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        log_error("index: %s", sqlite3_errmsg(db));
        return sqlite3_errcode(db) == SQLITE_FULL ? INDEX_FULL : -1;
    }
    return 0;
}

static void load_complete(void (*fn)(const struct index_row *, void *), void *arg)
{
    sqlite3_stmt *st;
    const char *sql = "SELECT key, url, length, content_type, sha256, created, ttl, last_use,"
                      " usage FROM objects WHERE state='complete'";
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return;
    while (sqlite3_step(st) == SQLITE_ROW) {
        struct index_row row = {
            .key = (const char *)sqlite3_column_text(st, 0),
            .url = (const char *)sqlite3_column_text(st, 1),
            .length = sqlite3_column_int64(st, 2),
            .content_type = (const char *)sqlite3_column_text(st, 3),
            .digest = sqlite3_column_bytes(st, 4) == 32 ? sqlite3_column_blob(st, 4) : NULL,
            .created = sqlite3_column_int64(st, 5),
            .ttl = sqlite3_column_int64(st, 6),
            .last_use = sqlite3_column_int64(st, 7),
            .usage = sqlite3_column_int64(st, 8),
        };
        if (row.key && row.url && row.digest && strlen(row.key) == 64)
            fn(&row, arg);
    }
    sqlite3_finalize(st);
}

int index_load(void (*fn)(const struct index_row *row, void *arg),
               void (*discard)(const char *key, void *arg), void *arg)
{
    sqlite3_stmt *st;
    load_complete(fn, arg);
    if (sqlite3_prepare_v2(db, "SELECT key FROM objects WHERE state<>'complete'", -1, &st, NULL) !=
        SQLITE_OK)
        return -1;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *key = (const char *)sqlite3_column_text(st, 0);
        if (key && strlen(key) == 64)
            discard(key, arg);
    }
    sqlite3_finalize(st);
    return exec_bound("DELETE FROM objects WHERE state<>'complete'", "");
}

int index_mark_fetching(const char *key, const char *url)
{
    return exec_bound("INSERT OR REPLACE INTO objects (key, url, state) VALUES (?, ?, 'fetching')",
                      "ss", key, url);
}

int index_mark_complete(const struct index_row *r)
{
    return exec_bound("INSERT OR REPLACE INTO objects (key, url, state, length, content_type,"
                      " sha256, created, ttl, last_use, usage)"
                      " VALUES (?, ?, 'complete', ?, ?, ?, ?, ?, ?, ?)",
                      "ssisbiiii", r->key, r->url, r->length, r->content_type, r->digest,
                      r->created, r->ttl, r->last_use, r->usage);
}

int index_delete(const char *key)
{
    return exec_bound("DELETE FROM objects WHERE key=?", "s", key);
}

int index_begin(void)
{
    return exec_bound("BEGIN", "");
}

int index_commit(void)
{
    return exec_bound("COMMIT", "");
}

int index_touch(const char *key, int64_t last_use, int64_t usage, int64_t ttl)
{
    return exec_bound("UPDATE objects SET last_use=?, usage=?, ttl=? WHERE key=?", "iiis", last_use,
                      usage, ttl, key);
}

int index_counter_get(const char *name, int64_t *value)
{
    sqlite3_stmt *st;
    int rc = -1;
    if (sqlite3_prepare_v2(db, "SELECT value FROM counters WHERE name=?", -1, &st, NULL) !=
        SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        *value = sqlite3_column_int64(st, 0);
        rc = 0;
    }
    sqlite3_finalize(st);
    return rc;
}

int index_counter_set(const char *name, int64_t value)
{
    return exec_bound("INSERT OR REPLACE INTO counters (name, value) VALUES (?, ?)", "si", name,
                      value);
}
