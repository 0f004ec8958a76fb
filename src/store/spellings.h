/*
 * spellings.h — the objects a purge of one URL takes besides the one its key names: those whose
 * URL is not the spelling a purge names it by (url_purge_prefix's: a login in it, a "URL#..."
 * form, a spelling the fold takes together, fold.h), indexed by the sha256 of that spelling.
 * A purge of one URL finds each of them there instead of walking the table (a million objects:
 * about 2 s, with its pauses between slices).
 *
 * Contract:
 * - spelling_entry and spelling_entry_free: pure functions of the URL, any thread (an entry
 *   is made as its object is: a load's rows outside the lock, for the spelling and its sha256
 *   are the costly part).
 * - Every object in the store's table whose URL is not plain has an entry (its extra part's
 *   `spelling`, object.h), and the entry is in the index while the object is in the table:
 *   object.c adds it as the object enters the table (an object the index has no room for does
 *   not enter) and takes it out as it leaves. A plain URL is only ever named by its own key: a
 *   purge of URL U (its spelling F: url_purge_prefix) takes the object of key(F) and
 *   spellings_named(F), and no other object is a spelling of it (url_is_spelling). An object's
 *   spelling is url_spelling's. Units: tests/unit/test_spellings.c, test_store.c.
 * - The index is used with the store lock held (or main alone), as the table is; it holds
 *   objects by pointer and reads nothing of them. An entry is its object's: freed with it.
 */
#ifndef ARCA_SPELLINGS_H
#define ARCA_SPELLINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* An object's entry: the sha256 of its URL's spelling, its link in the index. */
struct spelling;

/* The entry of an object whose URL is `url`, into *out: 1 and NULL when the URL is plain (no
 * entry), 0 and a new entry (not in the index), -1 out of memory. */
int spelling_entry(const char *url, struct spelling **out);
/* An entry not in the index (NULL: nothing). */
void spelling_entry_free(struct spelling *s);

/* Lock held. `s` into the index for `obj` (its object): 0, or -1 out of memory. */
int spellings_add(struct spelling *s, void *obj);
/* Lock held. `s` out of the index. */
void spellings_del(struct spelling *s);
/* Lock held. The objects indexed under `spelling` (a purge's: url_purge_prefix), at most
 * `max` of them, in a new array of *n; NULL with *n 0 when there is none, NULL with *n
 * SIZE_MAX out of memory or when there are more than `max`. The array is the caller's: the
 * objects stay the table's. */
void **spellings_named(const char *spelling, size_t max, size_t *n);
/* Entries indexed now (the units). */
size_t spellings_count(void);
/* Main alone (store_close): the index's own memory; the entries are their objects'. */
void spellings_free(void);

#endif
