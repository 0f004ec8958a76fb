#include "persist/index.h"
#include "persist/index_image.h"
#include "persist/index_rows.h"
#include "persist/persist.h"
#include "persist/usage_log.h"
#include "log/log.h"

#include <assert.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static sqlite3 *db;
/* The counter that names the index to its usage journal. */
#define JOURNAL_COUNTER "usage journal"

static char index_path[1200]; /* for the clean mark at close */
/* A write to it failed since it opened: the store's objects may not be its rows, so a clean
 * close leaves no image of them (index_image.h) */
static bool write_failed;

static const char *schema =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=NORMAL;"
    "CREATE TABLE IF NOT EXISTS objects ("
    " key TEXT PRIMARY KEY, url TEXT NOT NULL, state TEXT NOT NULL,"
    " length INTEGER NOT NULL DEFAULT 0, content_type TEXT NOT NULL DEFAULT '',"
    " content_encoding TEXT NOT NULL DEFAULT '', filename TEXT NOT NULL DEFAULT '',"
    " last_modified TEXT NOT NULL DEFAULT '', etag TEXT NOT NULL DEFAULT '',"
    " sha256 BLOB, created INTEGER NOT NULL DEFAULT 0, ttl INTEGER NOT NULL DEFAULT 0,"
    " last_use INTEGER NOT NULL DEFAULT 0, usage INTEGER NOT NULL DEFAULT 0,"
    " source TEXT NOT NULL DEFAULT '', synced INTEGER NOT NULL DEFAULT 0,"
    " signed INTEGER NOT NULL DEFAULT 0, stale_if_error INTEGER NOT NULL DEFAULT -1,"
    " stale_while INTEGER NOT NULL DEFAULT -1, pinned INTEGER NOT NULL DEFAULT 0,"
    " keep_if_error INTEGER NOT NULL DEFAULT -1, keep_while INTEGER NOT NULL DEFAULT -1,"
    " max_size INTEGER NOT NULL DEFAULT -1, not_stored INTEGER NOT NULL DEFAULT 0,"
    " redirects TEXT NOT NULL DEFAULT '');"
    /* the unfinished rows at open, without a scan of the complete ones (index_open) */
    "CREATE INDEX IF NOT EXISTS objects_unfinished ON objects(state) WHERE state<>'complete';"
    "CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS hours (hour INTEGER PRIMARY KEY, served INTEGER NOT NULL,"
    " downloaded INTEGER NOT NULL, requests INTEGER NOT NULL, hits INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS failures (id INTEGER PRIMARY KEY, key TEXT NOT NULL,"
    " url TEXT NOT NULL, status INTEGER NOT NULL, reason TEXT NOT NULL, length INTEGER NOT NULL,"
    " have INTEGER NOT NULL, created INTEGER NOT NULL, failed INTEGER NOT NULL,"
    " usage INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS links (registry TEXT NOT NULL, repo TEXT NOT NULL,"
    " digest BLOB NOT NULL, PRIMARY KEY (registry, repo, digest)) WITHOUT ROWID;";

/* Columns added after indexes were first written: an older index gains them, empty. */
static const struct {
    const char *name, *decl;
} added_columns[] = {
    {"content_encoding", "TEXT NOT NULL DEFAULT ''"},
    {"filename", "TEXT NOT NULL DEFAULT ''"},
    {"last_modified", "TEXT NOT NULL DEFAULT ''"},
    {"etag", "TEXT NOT NULL DEFAULT ''"},
    {"source", "TEXT NOT NULL DEFAULT ''"},
    {"synced", "INTEGER NOT NULL DEFAULT 0"},
    {"signed", "INTEGER NOT NULL DEFAULT 0"},
    {"stale_if_error", "INTEGER NOT NULL DEFAULT -1"},
    {"stale_while", "INTEGER NOT NULL DEFAULT -1"},
    {"pinned", "INTEGER NOT NULL DEFAULT 0"},
    {"keep_if_error", "INTEGER NOT NULL DEFAULT -1"},
    {"keep_while", "INTEGER NOT NULL DEFAULT -1"},
    {"max_size", "INTEGER NOT NULL DEFAULT -1"},
    {"not_stored", "INTEGER NOT NULL DEFAULT 0"},
    {"redirects", "TEXT NOT NULL DEFAULT ''"},
};

static bool has_column(const char *name)
{
    sqlite3_stmt *stmt;
    bool found = false;
    if (sqlite3_prepare_v2(db, "SELECT 1 FROM pragma_table_info('objects') WHERE name=?", -1, &stmt,
                           NULL) == SQLITE_OK) {
        sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
        found = sqlite3_step(stmt) == SQLITE_ROW;
        sqlite3_finalize(stmt);
    }
    return found;
}

static int add_columns(void)
{
    char sql[128];
    for (size_t i = 0; i < sizeof(added_columns) / sizeof(added_columns[0]); i++) {
        if (has_column(added_columns[i].name))
            continue;
        snprintf(sql, sizeof(sql), "ALTER TABLE objects ADD COLUMN %s %s", added_columns[i].name,
                 added_columns[i].decl);
        if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
            return -1;
    }
    return 0;
}

/* exec_bound's statements, prepared once each: a usage flush of many rows would otherwise
 * prepare its UPDATE once a row, most of the flush's CPU. Found by the SQL text's address, then
 * checked by the text. */
#define STATEMENTS 16
static struct {
    const char *sql;
    sqlite3_stmt *stmt;
} statements[STATEMENTS];

/* *kept: whether the statement stays prepared here (reset after use), or is the caller's to
 * finalize (no slot was free). */
static sqlite3_stmt *statement(const char *sql, bool *kept)
{
    int free_slot = -1;
    sqlite3_stmt *stmt;
    *kept = true;
    for (int i = 0; i < STATEMENTS; i++) {
        if (statements[i].sql == sql && !strcmp(sqlite3_sql(statements[i].stmt), sql))
            return statements[i].stmt; /* the same text (a caller's buffer could change) */
        if (!statements[i].sql && free_slot < 0)
            free_slot = i;
    }
    if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) != SQLITE_OK)
        return NULL;
    *kept = free_slot >= 0; /* else used once and finalized by the caller, as before */
    if (*kept) {
        statements[free_slot].sql = sql;
        statements[free_slot].stmt = stmt;
    }
    return stmt;
}

/* Before the connection closes: a prepared statement would keep it open. */
static void forget_statements(void)
{
    for (int i = 0; i < STATEMENTS; i++) {
        sqlite3_finalize(statements[i].stmt);
        statements[i].sql = NULL;
        statements[i].stmt = NULL;
    }
}

/* Bind, step once, reset: every write here is a single statement. */
static int exec_bound(const char *sql, const char *fmt, ...)
{
    assert(persist_owns_index());
    sqlite3_stmt *stmt;
    va_list ap;
    int rc;
    bool kept;

    if (!(stmt = statement(sql, &kept))) {
        log_error("index: %s", sqlite3_errmsg(db));
        write_failed = true;
        return -1;
    }
    va_start(ap, fmt);
    for (int i = 0; fmt[i]; i++) {
        if (fmt[i] == 's')
            sqlite3_bind_text(stmt, i + 1, va_arg(ap, const char *), -1, SQLITE_TRANSIENT);
        else if (fmt[i] == 'i')
            sqlite3_bind_int64(stmt, i + 1, va_arg(ap, int64_t));
        else if (fmt[i] == 'b')
            sqlite3_bind_blob(stmt, i + 1, va_arg(ap, const void *), 32, SQLITE_TRANSIENT);
    }
    va_end(ap);
    rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE) { /* read before the reset */
        log_error("index: %s", sqlite3_errmsg(db));
        write_failed = true;
        rc = sqlite3_errcode(db) == SQLITE_FULL ? INDEX_FULL : -1;
    } else {
        rc = 0;
    }
    if (kept) {
        sqlite3_reset(stmt);
        sqlite3_clear_bindings(stmt);
    } else {
        sqlite3_finalize(stmt);
    }
    return rc;
}

/* Keys of rows whose download never finished: a few (those running at a crash), kept until the
 * check has said the index may be changed. */
struct partials {
    char (*keys)[65];
    size_t n, cap;
    bool any; /* rows to delete, keys or not */
};

static int remember_partial(struct partials *p, const char *key)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 16;
        char(*keys)[65] = realloc(p->keys, cap * sizeof(*keys));
        if (!keys)
            return -1;
        p->keys = keys;
        p->cap = cap;
    }
    memcpy(p->keys[p->n++], key, 65);
    return 0;
}

/* The rows of downloads that never finished (objects_unfinished: no scan of the complete ones),
 * to `load->partial`; the keys of those it does not take up into `p`. */
static int load_unfinished(const struct index_loader *load, struct partials *p)
{
    sqlite3_stmt *stmt;
    struct index_row row;
    int rc;
    if (sqlite3_prepare_v2(db, "SELECT " INDEX_ROW_COLUMNS " FROM objects WHERE state<>'complete'",
                           -1, &stmt, NULL) != SQLITE_OK)
        return sqlite3_errcode(db);
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        bool usable = !index_row_read(stmt, &row) && index_row_usable(&row, false);
        if (usable && row.source && load->partial(&row, load->arg))
            continue; /* resumed: its row stays */
        p->any = true;
        if (usable && remember_partial(p, row.key) < 0) {
            rc = SQLITE_NOMEM;
            break;
        }
    }
    sqlite3_finalize(stmt);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static bool corrupt_code(int code)
{
    return code == SQLITE_CORRUPT || code == SQLITE_NOTADB;
}

/* Also takes the write lock once, even with nothing to delete: an index that another process
 * holds is a clear error at start rather than failed downloads later. On failure the caller's
 * sqlite3_close() rolls back. */
static int forget_partials(const struct index_loader *load, const struct partials *p)
{
    int rc = exec_bound("BEGIN IMMEDIATE", "");
    for (size_t i = 0; rc == 0 && i < p->n; i++)
        load->discard(p->keys[i], load->arg);
    for (size_t i = 0; rc == 0 && i < p->n; i++)
        rc = exec_bound("DELETE FROM objects WHERE key=?", "s", p->keys[i]);
    if (rc == 0 && p->any) /* rows without a usable key */
        rc = exec_bound("DELETE FROM objects WHERE state<>'complete' AND (length(key)<>64 OR"
                        " key GLOB '*[^0-9a-f]*')",
                        "");
    return rc == 0 ? index_commit() : rc;
}

/* What a clean close leaves beside the index: the file's identity then (inode, size,
 * modification time). A file found as it was left (and no WAL beside it) is trusted at once and
 * checked after its rows have loaded; any other one (a crash, a copy, a hand that wrote to it) is
 * checked before arca serves from it. Read and removed at open, before anything is written. */
#define CLEAN_SUFFIX ".clean"
/* Left when a check after start failed: the next start moves the index aside. */
#define DISTRUST_SUFFIX ".distrust"

static void file_identity(const char *path, char *out, size_t size)
{
    struct stat s;
    if (stat(path, &s) < 0)
        snprintf(out, size, "none");
    else
        snprintf(out, size, "%llu %lld %lld.%09ld", (unsigned long long)s.st_ino,
                 (long long)s.st_size, (long long)s.st_mtim.tv_sec, s.st_mtim.tv_nsec);
}

/* Whether the file is as a clean close left it; its identity then into `was` ("" when none). */
static bool left_clean(const char *path, char was[128])
{
    char marker[1300], wal[1300], now[128];
    struct stat s;
    snprintf(marker, sizeof(marker), "%s%s", path, CLEAN_SUFFIX);
    snprintf(wal, sizeof(wal), "%s-wal", path);
    FILE *f = fopen(marker, "re");
    was[0] = '\0';
    if (f) {
        if (!fgets(was, 128, f))
            was[0] = '\0';
        fclose(f);
        unlink(marker);
    }
    was[strcspn(was, "\n")] = '\0';
    file_identity(path, now, sizeof(now));
    return was[0] && !strcmp(was, now) && (stat(wal, &s) < 0 || s.st_size == 0);
}

/* The mark, and the identity it gives the file into `now`: false when it could not be written. */
static bool mark_clean(const char *path, char now[128])
{
    char marker[1300];
    snprintf(marker, sizeof(marker), "%s%s", path, CLEAN_SUFFIX);
    file_identity(path, now, 128);
    FILE *f = fopen(marker, "we");
    if (!f)
        return false;
    fprintf(f, "%s\n", now);
    return fclose(f) == 0;
}

static bool distrusted(const char *path)
{
    char marker[1300];
    snprintf(marker, sizeof(marker), "%s%s", path, DISTRUST_SUFFIX);
    return unlink(marker) == 0;
}

void index_distrust(void)
{
    char marker[1300];
    snprintf(marker, sizeof(marker), "%s%s", index_path, DISTRUST_SUFFIX);
    FILE *f = fopen(marker, "we");
    if (f)
        fclose(f);
}

/* The file as SQLite sees it: its schema, then (unless a clean close left it) its check, said
 * in the log for a file that was there (a crash's, or one changed while arca was down). */
static int open_checked(const char *path, bool trusted, char **msg)
{
    struct stat before;
    struct timespec t0, t1;
    bool existed = stat(path, &before) == 0 && before.st_size > 0;
    int code;
    /* NOMUTEX: one thread at a time uses a connection (see index.h), so SQLite's own locking per
     * call is waste: 7% of loading a million rows. */
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK)
        return -1;
    sqlite3_busy_timeout(db, 5000);
    if (sqlite3_exec(db, schema, NULL, NULL, msg) != SQLITE_OK || add_columns() < 0)
        return corrupt_code(sqlite3_errcode(db)) ? INDEX_CORRUPT : -1;
    if (trusted || !existed) /* a new file has nothing to check (most test starts) */
        return 0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if ((code = index_quick_check(path)) == SQLITE_OK) {
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (existed)
            log_info("index %s: not as a clean stop left it: checked in %.2f s before serving",
                     path,
                     (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
        return 0;
    }
    if (corrupt_code(code))
        return INDEX_CORRUPT;
    *msg = sqlite3_mprintf("cannot check: %s", sqlite3_errstr(code));
    return -1;
}

/* The number the usage journal names its index by (usage_log.h): made once, at random, so that
 * a journal beside another index (a new one, one moved aside) is never read as this one's; a
 * copy of the index keeps the number. */
static int journal_id(uint64_t *id)
{
    int64_t kept;
    if (index_counter_get(JOURNAL_COUNTER, &kept) == 0) {
        *id = (uint64_t)kept;
        return 0;
    }
    if (getrandom(id, sizeof(*id), 0) != (ssize_t)sizeof(*id))
        return -1;
    return index_counter_set(JOURNAL_COUNTER, (int64_t)*id);
}

/* The image taken kept only when the index still has the complete rows and the highest rowid it
 * had when the image was sealed: the file's identity alone (inode, size, modification time)
 * misses a hand that deleted or added rows within the file system's time resolution, or put the
 * time back. Asked before anything is written (a partial row forgotten lowers the highest
 * rowid; a download begun raises it): 40 ms at a million rows. */
static void image_still_fits(void)
{
    int64_t complete = -1, max_rowid = -1;
    if (index_count_rows(db, &complete, &max_rowid) == 0 && index_image_fits(complete, max_rowid))
        return;
    log_warn("index image %s.image: the index has changed since the stop that left it: its rows "
             "are read instead",
             index_path);
    index_image_drop();
}

/* index_row_usable's test in SQL, NULLs and all (a NULL in a test would keep its row): a key of
 * 64 lowercase hex digits, a URL, a digest of 32 bytes (as sqlite3_column_bytes counts them). */
int index_forget_unusable(void)
{
    return exec_bound("DELETE FROM objects WHERE state='complete' AND NOT ("
                      " coalesce(length(key), 0) = 64 AND"
                      " coalesce(key NOT GLOB '*[^0-9a-f]*', 0) AND url IS NOT NULL AND"
                      " coalesce(length(CAST(sha256 AS BLOB)), 0) = 32)",
                      "");
}

int index_open(const char *path, const struct index_loader *load, char *err, size_t errlen)
{
    assert(persist_owns_index());
    struct partials p = {0};
    char *msg = NULL, identity[128];
    bool trusted = left_clean(path, identity);
    uint64_t id;
    int rc, code;

    snprintf(index_path, sizeof(index_path), "%s", path);
    write_failed = false;
    /* before anything is written: the image stands for the file as the mark found it */
    index_image_take(path, trusted ? identity : NULL);
    if (distrusted(path)) {
        rc = INDEX_CORRUPT;
        msg = sqlite3_mprintf("a check after the last start found it damaged");
    } else {
        rc = open_checked(path, trusted, &msg);
    }
    if (rc == 0 && index_image_ready())
        image_still_fits();
    if (rc == 0 && (code = load_unfinished(load, &p)) != SQLITE_OK) {
        rc = corrupt_code(code) ? INDEX_CORRUPT : -1;
        if (rc == -1)
            msg = sqlite3_mprintf("cannot load: %s", sqlite3_errstr(code));
    }
    if (rc == 0)
        rc = forget_partials(load, &p);
    if (rc == 0 && index_rows_open(path, trusted) < 0)
        msg = sqlite3_mprintf("cannot open a second connection"), rc = -1;
    bool said = false; /* err says it already */
    if (rc == 0 && journal_id(&id) < 0)
        msg = sqlite3_mprintf("cannot name its usage journal"), rc = -1;
    if (rc == 0 && usage_log_open(path, id, err, errlen) < 0) {
        index_rows_close();
        rc = -1, said = true;
    }
    if (rc < 0 && !said)
        snprintf(err, errlen, "index %s: %s", path,
                 msg                   ? msg
                 : rc == INDEX_CORRUPT ? "integrity check failed"
                 : db                  ? sqlite3_errmsg(db)
                                       : "cannot open");
    sqlite3_free(msg);
    free(p.keys);
    if (rc < 0) {
        index_image_drop();
        forget_statements();
        sqlite3_close(db);
        db = NULL;
    }
    return rc;
}

bool index_has_rows(void)
{
    sqlite3_stmt *stmt;
    bool any = true; /* when it cannot say: the load finds out */
    if (sqlite3_prepare_v2(db, "SELECT EXISTS (SELECT 1 FROM objects)", -1, &stmt, NULL) ==
        SQLITE_OK) {
        if (sqlite3_step(stmt) == SQLITE_ROW)
            any = sqlite3_column_int(stmt, 0) != 0;
        sqlite3_finalize(stmt);
    }
    return any;
}

/* Whether the image the store wrote (index_image.h) holds the index's complete rows, and its
 * counts for the seal into *complete and *max_rowid: none of the index's writes failed, and it
 * has as many complete rows as the image (unusable ones, never in memory, were deleted:
 * index_forget_unusable). What the count cannot see (a row's figures) comes from the objects
 * the rows were written from. Said in the log when it is not. */
static bool image_is_index(int64_t *complete, int64_t *max_rowid)
{
    const char *why = NULL;
    if (!index_image_writing())
        return false; /* none written: the store said why */
    if (write_failed)
        why = "a write to the index failed since it opened";
    else if (index_count_rows(db, complete, max_rowid) < 0)
        why = "the index's rows could not be counted";
    else if (*complete != (int64_t)index_image_rows())
        why = "the objects are not the index's complete rows";
    if (why)
        log_warn("index image: none left: %s; the next start reads the index's rows", why);
    return !why;
}

/* The last connection closed checkpoints the WAL into the file and removes it: what is left is
 * the whole index, marked clean as it stands, and the image of its rows sealed with it. */
void index_close(void)
{
    assert(persist_owns_index());
    char identity[128];
    int64_t complete = 0, max_rowid = 0;
    bool owed = index_check_owed(); /* a run stopped before its check: the next start checks */
    bool image = db && !owed && image_is_index(&complete, &max_rowid);
    usage_log_close();
    index_rows_close();
    forget_statements();
    index_image_drop();
    if (db && sqlite3_close(db) == SQLITE_OK && index_path[0] && !owed &&
        mark_clean(index_path, identity) && image)
        index_image_seal(identity, complete, max_rowid);
    index_image_abandon();
    db = NULL;
}

/* A reset record (usage_log.h) before a statement that writes `key`'s row whole or deletes it,
 * written before that statement commits: index_commit writes the buffer first, and a statement
 * outside a transaction commits at once, so its reset is written now. `durable`: a complete row
 * written whole, which the older uses must never be laid over, even after a power cut that
 * keeps the row (the kernel may write the WAL's pages before the journal's): the reset is
 * fsynced first. A deleted row needs no such care (a record finds no row; the key's next row
 * is written whole, so durably reset). */
static void reset_usage(const char *key, bool durable)
{
    usage_log_reset(key);
    if (durable)
        usage_log_sync();
    else if (sqlite3_get_autocommit(db))
        usage_log_flush();
}

int index_mark_fetching(const char *key, const char *url, const char *source)
{
    reset_usage(key, false); /* its row replaced: a complete object's figures go with it */
    return exec_bound("INSERT OR REPLACE INTO objects (key, url, state, source)"
                      " VALUES (?, ?, 'fetching', ?)",
                      "sss", key, url, source);
}

int index_mark_started(const struct index_row *r)
{
    return exec_bound("UPDATE objects SET length=?, content_type=?, content_encoding=?,"
                      " filename=?, last_modified=?, etag=?, redirects=?, created=?, ttl=?,"
                      " signed=?, synced=0,"
                      " pinned=?, keep_if_error=?, keep_while=?, max_size=?, not_stored=?"
                      " WHERE key=? AND state='fetching'",
                      "issssssiiiiiiiis", r->length, r->headers.content_type,
                      r->headers.content_encoding, r->headers.filename, r->headers.last_modified,
                      r->headers.etag, r->headers.redirects, r->created, r->ttl,
                      (int64_t)r->signed_key, (int64_t)r->pinned, r->keep_if_error, r->keep_while,
                      r->max_size, (int64_t)r->not_stored, r->key);
}

int index_set_keep(const struct index_row *r)
{
    return exec_bound("UPDATE objects SET pinned=?, keep_if_error=?, keep_while=?, max_size=?,"
                      " not_stored=? WHERE key=? AND state='fetching'",
                      "iiiiis", (int64_t)r->pinned, r->keep_if_error, r->keep_while, r->max_size,
                      (int64_t)r->not_stored, r->key);
}

int index_set_synced(const char *key, int64_t synced)
{
    return exec_bound("UPDATE objects SET synced=? WHERE key=? AND state='fetching'", "is", synced,
                      key);
}

int index_mark_complete(const struct index_row *r)
{
    reset_usage(r->key, true); /* the row says its figures whole */
    return exec_bound("INSERT OR REPLACE INTO objects (key, url, state, length, content_type,"
                      " sha256, created, ttl, last_use, usage, content_encoding, filename,"
                      " last_modified, etag, signed, stale_if_error, stale_while, pinned,"
                      " keep_if_error, keep_while, redirects) VALUES"
                      " (?, ?, 'complete', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      "ssisbiiiissssiiiiiis", r->key, r->url, r->length, r->headers.content_type,
                      r->digest, r->created, r->ttl, r->last_use, r->usage,
                      r->headers.content_encoding, r->headers.filename, r->headers.last_modified,
                      r->headers.etag, (int64_t)r->signed_key, r->stale_if_error,
                      r->stale_while_revalidate, (int64_t)r->pinned, r->keep_if_error,
                      r->keep_while, r->headers.redirects);
}

int index_delete(const char *key)
{
    reset_usage(key, false);
    return exec_bound("DELETE FROM objects WHERE key=?", "s", key);
}

int index_begin(void)
{
    assert(persist_owns_index());
    return exec_bound("BEGIN", "");
}

/* A COMMIT that fails (disk full, I/O error) may leave the transaction open: every later write
 * would then join it, and none would ever be committed. Roll it back: the rows keep their
 * earlier figures (usage, last use) until their objects are used again. */
int index_commit(void)
{
    assert(persist_owns_index());
    usage_log_flush(); /* the uses of this transaction: written whatever becomes of it */
    int rc = exec_bound("COMMIT", "");
    if (rc < 0 && !sqlite3_get_autocommit(db))
        exec_bound("ROLLBACK", "");
    usage_log_compact_due();
    return rc;
}

int index_touch(const struct index_row *r)
{
    assert(persist_owns_index());
    usage_log_use(r); /* not the row: usage_log.h says why */
    return 0;
}

int index_counter_get(const char *name, int64_t *value)
{
    assert(persist_owns_index());
    sqlite3_stmt *stmt;
    int rc = -1;
    if (sqlite3_prepare_v2(db, "SELECT value FROM counters WHERE name=?", -1, &stmt, NULL) !=
        SQLITE_OK)
        return -1;
    sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
    if (sqlite3_step(stmt) == SQLITE_ROW) {
        *value = sqlite3_column_int64(stmt, 0);
        rc = 0;
    }
    sqlite3_finalize(stmt);
    return rc;
}

void index_counters_each(const char *prefix,
                         void (*each)(const char *name, int64_t value, void *arg), void *arg)
{
    sqlite3_stmt *stmt;
    assert(persist_owns_index());
    if (sqlite3_prepare_v2(
            db, "SELECT name, value FROM counters WHERE substr(name, 1, length(?1)) = ?1", -1,
            &stmt, NULL) != SQLITE_OK)
        return;
    sqlite3_bind_text(stmt, 1, prefix, -1, SQLITE_STATIC);
    while (sqlite3_step(stmt) == SQLITE_ROW)
        each((const char *)sqlite3_column_text(stmt, 0), sqlite3_column_int64(stmt, 1), arg);
    sqlite3_finalize(stmt);
}

int index_counter_set(const char *name, int64_t value)
{
    return exec_bound("INSERT OR REPLACE INTO counters (name, value) VALUES (?, ?)", "si", name,
                      value);
}

int index_hour_set(const struct index_hour *h)
{
    return exec_bound("INSERT OR REPLACE INTO hours (hour, served, downloaded, requests, hits) "
                      "VALUES (?, ?, ?, ?, ?)",
                      "iiiii", h->hour, h->served, h->downloaded, h->requests, h->hits);
}

int index_hours_forget(int64_t before)
{
    return exec_bound("DELETE FROM hours WHERE hour < ?", "i", before);
}

int index_hours_load(int64_t since, void (*each)(const struct index_hour *h, void *arg), void *arg)
{
    assert(persist_owns_index());
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2(db,
                           "SELECT hour, served, downloaded, requests, hits FROM hours "
                           "WHERE hour >= ? ORDER BY hour",
                           -1, &stmt, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_int64(stmt, 1, since);
    while (sqlite3_step(stmt) == SQLITE_ROW) {
        struct index_hour h = {sqlite3_column_int64(stmt, 0), sqlite3_column_int64(stmt, 1),
                               sqlite3_column_int64(stmt, 2), sqlite3_column_int64(stmt, 3),
                               sqlite3_column_int64(stmt, 4)};
        each(&h, arg);
    }
    sqlite3_finalize(stmt);
    return 0;
}

int index_failure_add(const struct index_failure *f, int keep)
{
    int rc = exec_bound("INSERT INTO failures (key, url, status, reason, length, have, created,"
                        " failed, usage) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        "ssisiiiii", f->key, f->url, (int64_t)f->status, f->reason, f->length,
                        f->have, f->created, f->failed, f->usage);
    if (rc == 0)
        rc = exec_bound("DELETE FROM failures WHERE id <= (SELECT max(id) FROM failures) - ?", "i",
                        (int64_t)keep);
    return rc;
}

int index_failures_load(int keep, void (*each)(const struct index_failure *f, void *arg), void *arg)
{
    assert(persist_owns_index());
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2(db,
                           "SELECT key, url, status, reason, length, have, created, failed, usage"
                           " FROM (SELECT * FROM failures ORDER BY id DESC LIMIT ?) ORDER BY id",
                           -1, &stmt, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_int(stmt, 1, keep);
    while (sqlite3_step(stmt) == SQLITE_ROW) {
        struct index_failure f = {(const char *)sqlite3_column_text(stmt, 0),
                                  (const char *)sqlite3_column_text(stmt, 1),
                                  sqlite3_column_int(stmt, 2),
                                  (const char *)sqlite3_column_text(stmt, 3),
                                  sqlite3_column_int64(stmt, 4),
                                  sqlite3_column_int64(stmt, 5),
                                  sqlite3_column_int64(stmt, 6),
                                  sqlite3_column_int64(stmt, 7),
                                  sqlite3_column_int64(stmt, 8)};
        each(&f, arg);
    }
    sqlite3_finalize(stmt);
    return 0;
}

int index_link_add(const char *registry, const char *repo, const uint8_t digest[32])
{
    return exec_bound("INSERT OR IGNORE INTO links (registry, repo, digest) VALUES (?, ?, ?)",
                      "ssb", registry, repo, digest);
}

int index_links_each(void (*each)(const char *registry, const char *repo, const uint8_t digest[32],
                                  void *arg),
                     void *arg)
{
    assert(persist_owns_index());
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2(db, "SELECT registry, repo, digest FROM links", -1, &stmt, NULL) !=
        SQLITE_OK)
        return -1;
    while (sqlite3_step(stmt) == SQLITE_ROW) {
        if (sqlite3_column_bytes(stmt, 2) == 32)
            each((const char *)sqlite3_column_text(stmt, 0),
                 (const char *)sqlite3_column_text(stmt, 1), sqlite3_column_blob(stmt, 2), arg);
    }
    sqlite3_finalize(stmt);
    return 0;
}
