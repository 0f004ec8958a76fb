/*
 * table.h — the store's hash table: key -> node, chained through node->next. A node is the first
 * member of each object (object.h); the table knows nothing else of objects.
 *
 * Contract:
 * - Used with the store lock held (object.h); the table never takes a lock itself.
 * - An entry's key is where the table was told (TABLE_KEYED: at a fixed distance from its node),
 *   and the table compares its first `key_len` bytes: a whole sha256 (32, the digest index and
 *   the spellings'), or the first 4 bytes of one (the objects: their key is the sha256 of their
 *   URL, which they keep; a find there is a candidate its caller confirms: object_find).
 * - Keys may repeat (the digest index: twins share a digest); entries with one key are always
 *   on one chain, old buckets moving whole.
 * - It grows incrementally: when it fills, a table twice the size is allocated and the old
 *   buckets move over a few at a time, with each later insert, so no single insert rehashes the
 *   whole table (a million objects took tens of milliseconds, and every hit waited meanwhile).
 *   Until they have all moved, lookups and removals look in both.
 * - Slots number the buckets of both tables (table_slots, table_slot), for sweeps that visit
 *   the whole table a slice at a time; an object is in exactly one slot. A sweep that spans
 *   moves (`moves` changed) may have missed an object or seen one twice.
 */
#ifndef ARCA_TABLE_H
#define ARCA_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What the table keeps in an entry: its chain link. Its key is beside it (struct table). */
struct table_node {
    struct table_node *next;
};

struct table {
    struct table_node **cur, **old;
    size_t ncur, nold; /* bucket counts, powers of two; nold 0 when not growing */
    size_t moved;      /* old buckets [0, moved) are empty: moved to cur */
    size_t count;      /* objects in the table */
    unsigned moves;    /* bumped whenever objects change slots (a sweep started before missed
                          or saw them twice) */
    ptrdiff_t key_at;  /* an entry's key: at node + key_at */
    size_t key_len;    /* the bytes of it compared: 4 to 32, its first 4 the hash */
};

/* A table whose entries have their key `at` bytes from their node, compared on `len` bytes. */
#define TABLE_KEYED(at, len)                                                                       \
    {                                                                                              \
        .key_at = (at), .key_len = (len)                                                           \
    }

/* Room for `at_least` objects without growing (0: a small start). 0, or -1 out of memory. */
int table_reserve(struct table *t, size_t at_least);
/* Its buckets freed; it stays keyed as it was, empty. */
void table_free(struct table *t);
/* `hex`: a key as 64 lowercase hex digits; NULL (nothing found) when it is not one. */
struct table_node *table_get(const struct table *t, const char *hex);
/* The first entry with this key (its first key_len bytes: `key` has at least those), or NULL.
 * Entries may share a key (the digest index's twins): they are always on one chain, and
 * table_find_next gives the one after `n` with its key. */
struct table_node *table_find(const struct table *t, const uint8_t *key);
struct table_node *table_find_next(const struct table *t, const struct table_node *n);
/* A hint for a loop over cold keys, a few entries ahead of their find or add: the bucket `key`
 * is on fetched into the cache; with `chain`, its first entry (the bucket read: fetch it the
 * first way earlier). Changes nothing. */
void table_prefetch(const struct table *t, const uint8_t *key, bool chain);
/* A key's 64 hex digits into its 32 bytes: false when it is not 64 lowercase hex digits. Its
 * hex again: base/parse.h's format_sha256_hex. */
bool table_key_of_hex(const char *hex, uint8_t key[32]);
/* Its first 4 bytes alone (the table's hash, all a lookup that confirms its candidates by their
 * URLs needs), from its first 8 digits: false when they are not lowercase hex. */
bool table_tag_of_hex(const char *hex, uint8_t tag[4]);
/* 0, or -1 when out of memory (the object is not added). */
int table_add(struct table *t, struct table_node *n);
void table_del(struct table *t, struct table_node *n);
size_t table_slots(const struct table *t);
struct table_node *table_slot(const struct table *t, size_t i);

#endif
