/*
 * store_load.h — the index's complete rows go into the table while arca serves, so that a big
 * cache answers from its first millisecond (docs/ARCHITECTURE.md, "Start-up and crash recovery").
 * Internal to store/.
 *
 * Contract:
 * - store_open leaves the complete rows in the index and sets st.loading when there may be any;
 *   store_start's loader thread reads them (index_load_rows: two halves at once, off the lock),
 *   sorts them by last use, and puts them in the table a slice per hold of the lock, the most
 *   recent slice first, each ahead of its LRU list's head: the lists end in last-use order,
 *   before whatever hits and downloads linked meanwhile.
 * - Meanwhile object_find's miss reads the key's row (store_load_missing): a request for an
 *   object on disk is a hit, however far the loader has come.
 * - A key that entered or left the table meanwhile other than by the loader (a row a lookup
 *   read, a download, a purge, an eviction) is the table's for good: the loader drops its own
 *   copy of that key, and a lookup never reads its row back (a row outlives its object until
 *   the persistence thread deletes it: read then, a purged object would come back).
 * - Walks that must see every object (a purge's, the sweep of files no row names) wait for the
 *   end (store_wait_loaded); the sweep is queued by the loader itself, only after a whole load.
 * - store_load_stop (store_close) stops the loader and frees what it had not put in the table.
 * - The rows come from the image a clean stop left (persist/index_image.h) when the index has not
 *   changed since; store_load_leave_image writes the next one at store_close, only when every
 *   row of the index went into the table (a load cut short, out of memory, or a file the check
 *   found damaged leaves none: the image would lack rows the index has).
 */
#ifndef ARCA_STORE_LOAD_H
#define ARCA_STORE_LOAD_H

#include "persist/index_rows.h"
#include "store/object.h"

/* Main, in store_start: the loader thread (when none can be made, the rows load here, before
 * arca listens); with nothing to load, the sweep at once. */
void store_load_start(void);
/* Main, at store_close: the loader stopped and joined. */
void store_load_stop(void);
/* Main, at store_close, lock held, the loader and the persistence thread stopped: the complete
 * objects handed to the image index_close seals (index_image.h), when the load was whole. */
void store_load_leave_image(void);
/* Lock held (object_find's hooks). */
struct object *store_load_missing(const char *key);
void store_load_touched(const struct object *obj);

#endif
