/*
 * store_text.h — the strings of an object, for the files of store/: the key a URL is stored
 * under, the five header values packed into one allocation (unpacked by store.h's
 * headers_unpack), and the truncating copy a reader's metadata is made with. Any thread; the
 * last key computed is kept per thread.
 */
#ifndef ARCA_STORE_TEXT_H
#define ARCA_STORE_TEXT_H

#include "persist/headers.h"

#include <stddef.h>

/* The key (hex sha256) of a URL: its file's name and its place in the table. */
void url_key(const char *url, char key[65]);
#define HEADERS_PACKED 6
/* Pack `h` into one allocation (*out NULL when every value is ""): 0, or -1 out of memory. */
int headers_pack(const struct upstream_headers *h, char **out);
/* Copy `src` (NULL: "") into dst, truncated to size - 1 bytes. */
void copy_string(char *dst, size_t size, const char *src);

#endif
