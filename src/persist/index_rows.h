/*
 * index_rows.h — the index's object rows read on connections of their own, beside the one
 * index.h writes with: the complete rows while arca serves (the store's loader), a row by key
 * (a lookup the load has not reached), the check a clean close's file gets after its rows; and,
 * for index.c alone, the columns a row is read from, the side connections and the check.
 *
 * Contract: between index_open and index_close (index_rows_open and index_rows_close bracket
 * it); no state but this file's own (the index's path, the lookup connection and whether a check
 * is owed); each connection is used by one thread at a time.
 */
#ifndef ARCA_INDEX_ROWS_H
#define ARCA_INDEX_ROWS_H

#include "persist/index_row.h"

#include <stdatomic.h>
#include <stddef.h>

#include <sqlite3.h>
#include <stdbool.h>

/* Every complete row to `row` (its own use figures: the loader merges the usage journal's,
 * usage_log_cursor), from two threads at once (the halves of the rowid range, each on
 * a connection of its own): the store's loader, while arca serves; `stop` is polled between
 * rows. Or from the image a clean stop left (index_image.h): INDEX_IMAGED, the rows' figures
 * whole (the usage journal has nothing newer). 0; INDEX_CORRUPT (the caller keeps what it took, and
 * index_distrust has the next start move the index aside); -1 another failure. err filled on
 * failure. */
int index_load_rows(void (*row)(const struct index_row *row, int part, void *arg), void *arg,
                    const atomic_bool *stop, char *err, size_t errlen);
/* The load has ended (the caller serializes it with index_find_row: the store's lock): no row
 * is read from here on, and the copy of the usage journal the rows were read through
 * (usage_log.h) is dropped. */
void index_rows_loaded(void);
/* The check of a file index_open trusted unchecked (the loader, once the rows are in): 0 (or
 * nothing to check, or `stop` cut it short: still owed), INDEX_CORRUPT, or -1; err filled on
 * failure. */
int index_check_deferred(const atomic_bool *stop, char *err, size_t errlen);
/* Whether that check is still owed: index_close then leaves the file unmarked, so that the next
 * start checks it before serving. */
bool index_check_owed(void);
/* The complete row of `key` to `each` (its strings valid during the call; its use figures the
 * usage journal's): 1 found, 0 none, -1
 * the index could not say. Any thread, one at a time (the caller serializes: the store's lock),
 * between index_open and index_close. */
int index_find_row(const char *key, void (*each)(const struct index_row *row, void *arg),
                   void *arg);

/* --- for index.c ---------------------------------------------------------------------------- */

/* The index's complete rows (counted from its b-trees: 40 ms at a million) and its highest rowid
 * (INSERT OR REPLACE gives each new row a higher one), on `conn`: 0, or -1. */
int index_count_rows(sqlite3 *conn, int64_t *complete, int64_t *max_rowid);
/* The complete rows the last load did not take for being unusable (no key, no digest): never
 * served (their files are swept), deleted by index_forget_unusable. */
int64_t index_rows_skipped(void);

/* The columns index_row_read reads, in its order. */
#define INDEX_ROW_COLUMNS                                                                          \
    "key, url, length, content_type, sha256, created, ttl, last_use, usage, state='complete',"     \
    " content_encoding, filename, last_modified, etag, source, synced, signed, stale_if_error,"    \
    " stale_while, pinned, keep_if_error, keep_while, max_size, not_stored, redirects"

/* The row `stmt` stands on (selected as INDEX_ROW_COLUMNS) into *row, its strings the
 * statement's until its next step; returns whether the row says 'complete'. */
bool index_row_read(sqlite3_stmt *stmt, struct index_row *row);
/* Whether *row can stand for an object: a key of 64 lowercase hex digits, a URL, and
 * (complete) a digest. */
bool index_row_usable(const struct index_row *row, bool complete);
/* A connection of its own to the index at `path`, waiting on locks as the main one does. */
int index_open_side(const char *path, sqlite3 **conn);
/* PRAGMA quick_check on a connection of its own: SQLITE_OK, SQLITE_CORRUPT, or why it could not
 * run. */
int index_quick_check(const char *path);

/* index_open hands the path over once the file is sound (the loads' connections and the lookup
 * connection open it), with whether it was trusted unchecked (a clean close left it as it is:
 * index_load_rows checks it after the rows); index_close takes it back, closing the lookup
 * connection first. */
int index_rows_open(const char *path, bool check_later);
void index_rows_close(void);

#endif
