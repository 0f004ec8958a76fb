/*
 * row_column.h — for the unit suites that read back what the index holds: one integer column
 * of a key's row, on a read-only connection of the suite's own (the store's is the persistence
 * thread's).
 */
#ifndef ARCA_ROW_COLUMN_H
#define ARCA_ROW_COLUMN_H

#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>

/* `column` of `key`'s row in the index at `path`, as SQLite holds it; -1: no row. */
static inline int64_t row_column(const char *path, const char *column, const char *key)
{
    char sql[128];
    sqlite3 *db;
    sqlite3_stmt *stmt;
    int64_t value = -1;
    snprintf(sql, sizeof(sql), "SELECT %s FROM objects WHERE key=?", column);
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), SQLITE_OK);
    sqlite3_bind_text(stmt, 1, key, -1, SQLITE_STATIC);
    if (sqlite3_step(stmt) == SQLITE_ROW)
        value = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return value;
}

#endif
