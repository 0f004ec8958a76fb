/*
 * usage_log.h — what hits change of a complete object, kept in a journal beside the index rather
 * than in its row: its last use, its use count, its ttl (a request may shorten it), its pin and
 * its stale windows. An UPDATE of a random row cost 35-40 µs (pages of the index read, then
 * written through the WAL): a usage flush of 16,384 rows took 0.6 s of a core every 10 s, and
 * the hits' p99 rose from 0.2 ms to 3-11 ms in the seconds it ran. A record here is 72 bytes
 * appended.
 *
 * The file (the index's path + "-usage"): a header, a run of records sorted by key (one a key,
 * written by a compaction), then records in the order the index was written. A key's last
 * record says what its row's figures are: a use (the record's stand over the row's), or a reset
 * (the row was written whole or deleted since: the row's stand). A use names the version it
 * counted (its row's creation time and the first 8 bytes of its SHA-256) and is laid over that
 * version's row alone. Records of keys without a complete row are never applied; a compaction
 * drops the keys whose last record is a reset.
 *
 * Contract:
 * - The writer's calls (usage_log_use, usage_log_reset, usage_log_flush, usage_log_compact_due)
 *   are the index's: one thread at a time (index.h), between usage_log_open and usage_log_close.
 * - A reset is written before its row's statement commits: a crash between the two leaves the
 *   row as it was, with the figures it was last written with (uses since are lost, as uses not
 *   yet flushed are). Records are buffered until usage_log_flush (index_commit, before its
 *   COMMIT; a statement outside a transaction, at once).
 * - usage_log_apply reads the file as it was at open, from any thread, until usage_log_loaded
 *   (the load has ended: no row is read after it); the writer never changes what it reads (a
 *   compaction writes a new file and renames it over the old one).
 * - A damaged file (not ours, a run that overlaps its end) is said in the log and started
 *   afresh: the rows' own figures stand. A torn last record (a crash in a write) is cut off.
 *   A write that fails removes the file (the rows' figures stand: no use is read without the
 *   reset that followed it), and another is started a minute on. Only the reset before a
 *   complete row is written whole is fsynced (usage_log_sync), and the file at a close: a power
 *   cut may lose figures, never lay an older version's over a row.
 */
#ifndef ARCA_USAGE_LOG_H
#define ARCA_USAGE_LOG_H

#include "persist/index_row.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Opens the journal of the index at `index_path`, whose id is `index_id` (a number the index
 * keeps: another index's journal, a new index's or a moved-aside one's, is started afresh).
 * 0, or -1 with err filled. */
int usage_log_open(const char *index_path, uint64_t index_id, char *err, size_t errlen);
/* Writes what is buffered and closes (the load's copy too). */
void usage_log_close(void);

/* A complete object's figures (row.key, digest, created, last_use, usage, ttl, pinned,
 * keep_if_error and keep_while), buffered. */
void usage_log_use(const struct index_row *row);
/* The row of `key` (64 hex digits) is about to be written whole, or deleted: buffered, to be
 * flushed before that statement commits (index.c: at once for a statement on its own). */
void usage_log_reset(const char *key);
/* What is buffered, to the file. */
void usage_log_flush(void);
/* The same, then fdatasync: before a complete row is written whole (index.c's reset_usage). */
void usage_log_sync(void);
/* The records appended since the last compaction outnumber half the sorted run (or 65,536):
 * rewrite the file as one sorted run. Cost: the file read and written once, sequentially. */
void usage_log_compact_due(void);

/* A complete row as the index read it (row.key, created and digest): its figures replaced by
 * its key's last use record, if the journal had one at open naming its version. Any thread,
 * until usage_log_loaded: a lookup ahead of the load (index_find_row). */
void usage_log_apply(struct index_row *row);
/* The load's way: its objects in key order, merged in one pass with the journal as it was at
 * open (its run, and its appended records sorted), instead of a lookup each (a lookup in a
 * million records cost the load 0.45 s). NULL when the journal holds nothing, or out of memory
 * (said in the log; the rows' figures stand). One thread, until usage_log_loaded. */
struct usage_cursor;
struct usage_cursor *usage_log_cursor(void);
/* Whether a record's key begins with `prefix`'s first `bits` bits (of a key's first 8 bytes,
 * big-endian: 1 to 64): if not, the object with it has none, and need not be read. Prefixes
 * come in increasing order. */
bool usage_cursor_near(struct usage_cursor *cursor, uint64_t prefix, int bits);
/* As usage_log_apply, for the object of `key` (row.created and row.digest its version); keys
 * come in increasing order. Whether the figures were laid over `row`. */
bool usage_cursor_apply(struct usage_cursor *cursor, const uint8_t key[32], struct index_row *row);
void usage_cursor_close(struct usage_cursor *cursor);
/* The load has ended: the copy of the journal usage_log_apply read is dropped. */
void usage_log_loaded(void);

/* For tests: records in the sorted run, and appended after it (buffered ones too). */
void usage_log_counts(size_t *sorted, size_t *appended);

/* The journal of the index at `index_path` read as a start reads it (a test's, or a tool's
 * beside an arca whose writes are flushed: persist_flush); NULL when there is none or it cannot
 * be read. usage_view_apply replaces a complete row's figures as the load does. */
struct usage_view;
struct usage_view *usage_view_open(const char *index_path);
void usage_view_apply(const struct usage_view *view, struct index_row *row);
void usage_view_close(struct usage_view *view);

#endif
