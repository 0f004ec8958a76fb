/*
 * index_image.h — the index's complete rows as a clean stop left them, in one file beside it
 * (INDEX.image): what the next start reads instead of asking SQLite for every row. A million
 * rows take SQLite about 1.5 s of CPU to hand over; this file, a tenth of that.
 *
 * Contract:
 * - Written at a clean stop only: the store hands over its complete objects as rows
 *   (index_image_begin, index_image_half, index_image_row: main, after the persistence thread
 *   stopped), and index_close seals the file with the identity its clean mark gives the index,
 *   only when those rows are the index's: the store had loaded every row, no write to the index
 *   failed since it opened, and there are as many as the index has complete rows. Otherwise no
 *   image is left (index_image_abandon).
 * - Taken at open (index_image_take) only when the clean mark holds and names the identity the
 *   image was sealed with, and kept only when the index still has the complete rows and highest
 *   rowid it had then (index_image_fits, asked by index_open before it writes anything): the
 *   index has not changed since, as far as its file and its counts tell. The file is removed when
 * taken, read or not, so that no later start reads it for another state of the index (a crash's).
 * - An image is checked whole (its size and header when taken, every record's bounds and
 *   strings by the load, before it hands on a row): a damaged one is dropped, and the rows come
 *   from SQLite as without one.
 * - index_image_load hands each row to the loader's callback from two threads at once, as
 *   index_load_rows does, its strings valid during the call only; the file is unmapped after.
 */
#ifndef ARCA_INDEX_IMAGE_H
#define ARCA_INDEX_IMAGE_H

#include "persist/index_row.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* --- writing: a clean stop ------------------------------------------------------------------ */

/* A new image of the index opened last begun, for about `rows` rows (a file of its own, not yet
 * the image): 0, or -1 (no image will be left; said in the log), also when the disk has not
 * twice the room they may take and a margin. */
int index_image_begin(size_t rows);
/* The rows from here on are the second half (the start reads the halves on two threads). */
void index_image_half(void);
/* One complete row; `key` its 32 bytes (row->key is not read). A row the format cannot hold (a
 * URL over 64 KiB) or a failed write makes the whole image fail: none is left. */
void index_image_row(const uint8_t key[32], const struct index_row *row);
/* Whether an image is being written, and how many rows it has. */
bool index_image_writing(void);
uint64_t index_image_rows(void);
/* index_close's: the image made the index's, under the identity its clean mark gives the file,
 * with the index's complete rows and its highest rowid (written, synced, then renamed into
 * place). 0, or -1 (said in the log, none left). */
int index_image_seal(const char *identity, int64_t complete, int64_t max_rowid);
/* An image begun and not sealed: removed. */
void index_image_abandon(void);

/* --- reading: the next start ---------------------------------------------------------------- */

/* index_open's, before anything is written: the image beside the index at `index_path` taken
 * when `identity` (the clean mark's; NULL: none held) is the one it was sealed with and it is
 * whole; removed in any case. Whether one was taken. */
bool index_image_take(const char *index_path, const char *identity);
/* Whether a taken image waits for index_image_load. */
bool index_image_ready(void);
/* Whether the index's complete rows and highest rowid now are those the image was sealed with
 * (and its rows are as many): index_open asks before it writes anything. */
bool index_image_fits(int64_t complete, int64_t max_rowid);
/* Its records checked, then its rows to `row` as index_load_rows hands them (row->key NULL,
 * row->key_bytes set), then the image let go: `stop` is polled between rows. 1; 0, and no row
 * handed on, when a record is damaged (the rows are SQLite's to read); -1 when a record checked
 * could not be read again (the file changed under its mapping: the load is not whole). */
int index_image_load(void (*row)(const struct index_row *row, int part, void *arg), void *arg,
                     const atomic_bool *stop);
/* A taken image not loaded (the index closed first): let go. */
void index_image_drop(void);

#endif
