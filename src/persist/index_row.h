/*
 * index_row.h — an object's row in the index, as the index writes it (index.h) and reads it back
 * (index_rows.h), and the codes their calls return. Only types: any thread, no state.
 */
#ifndef ARCA_INDEX_ROW_H
#define ARCA_INDEX_ROW_H

#include <stdbool.h>
#include <stdint.h>

#include "persist/headers.h"

struct index_row {
    const char *key, *url;
    struct upstream_headers headers;
    int64_t length, created, ttl, last_use, usage;
    const uint8_t *digest; /* 32 bytes */
    bool signed_key;       /* downloaded through a signed URL */
    /* Rows of unfinished downloads: */
    const char *source; /* the URL fetched (the client's, whole); "" before it was recorded */
    int64_t synced;     /* bytes of the partial file known to be on disk (fdatasync'd) */
    /* its origin's Cache-Control on answering stale: seconds, -1 not said, 0 never */
    int64_t stale_if_error, stale_while_revalidate;
    bool pinned; /* a rule's pin = yes: evicted for room last (store_room.h), until a later
                    request's terms unpin it */
    /* Its terms' other decisions (store_take_keep), so that a restart applies them again
     * whatever state it finds the object in: the stale windows (seconds, -1 the store-wide
     * options); while it downloads, its max-object-size (-1: the option's) and store = no. */
    int64_t keep_if_error, keep_while, max_size;
    bool not_stored;
    /* its key's 32 bytes, where the reader has them so (index_image.h): `key` is NULL then */
    const uint8_t *key_bytes;
};

/* index_open's result for a file that is not a sound SQLite database: the caller moves it
 * aside and starts a new one, rather than trust any of it. */
#define INDEX_CORRUPT (-2)
/* A write's result when the disk (or the file system holding the index) is full. */
#define INDEX_FULL (-3)
/* index_load_rows' result when the rows came from a clean stop's image (index_image.h). */
#define INDEX_IMAGED 1

#endif
