/*
 * spellings.h — the objects a purge of one URL takes besides the one its key names: those whose
 * URL is not the spelling a purge names it by (url_purge_prefix's: a login in it, a "URL#..."
 * form, a spelling the fold takes together, fold.h), indexed by the sha256 of that spelling.
 * A purge of one URL finds each of them there instead of walking the table (a million objects:
 * about 10 s, with its pauses between slices).
 *
 * Contract:
 * - spelling_plain and spelling_of: pure functions of the URL, any thread.
 * - Every object in the store's table whose URL is not plain (its `spelt` bit, set as it is
 *   made) is in the index while it is in the table: object.c adds it as it enters the table
 *   (an object the index has no memory for does not enter) and takes it out as it leaves.
 *   A plain URL is only ever named by its own key: a purge of URL U takes the object of
 *   key(spelling_of(U)) and spellings_named(spelling_of(U)), and no other object is a spelling
 *   of it (url_is_spelling). Unit: tests/unit/test_spellings.c.
 * - The index is used with the store lock held (or main alone), as the table is; it holds
 *   objects by pointer and reads nothing of them (object.c hands it their URL and key).
 */
#ifndef ARCA_SPELLINGS_H
#define ARCA_SPELLINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* 1 when `url` (a normal form) is the spelling a purge names it by (or it has none: not an
 * http:// or https:// URL), 0 when it is not, -1 out of memory. */
int spelling_plain(const char *url);

/* The spelling a purge names `url` by, in a new string (url_purge_prefix's form); NULL when
 * it has none (*failed 0) or out of memory (*failed 1). */
char *spelling_of(const char *url, int *failed);

/* Lock held. Index `obj`, whose URL `url` is not plain and whose key is `key`, under its URL's
 * spelling: 0, or -1 out of memory (it is not indexed). */
int spellings_add(void *obj, const char *url, const uint8_t key[32]);
/* Lock held. `obj` (of key `key`, indexed) out of the index. */
void spellings_del(const void *obj, const uint8_t key[32]);
/* Lock held. The indexed objects whose spelling is `spelling` (a purge's: url_purge_prefix),
 * in a new array of *n; NULL with *n 0 when there is none, NULL with *n SIZE_MAX out of
 * memory. The array is the caller's: the objects stay the table's. */
void **spellings_named(const char *spelling, size_t *n);
/* Objects indexed now (the status, the units). */
size_t spellings_count(void);
/* Main alone (store_close): every entry freed, not its object. */
void spellings_free(void);

#endif
