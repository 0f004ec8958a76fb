/*
 * filename.h — the file name a download suggests to its client (Content-Disposition): the last
 * segment of its URL, or the name upstream's own Content-Disposition gives, made safe to write.
 *
 * Contract: pure functions, any thread; they write into buffers their callers give, always
 * NUL-terminated (size > 0), never longer than size - 1, and never a name that climbs or holds
 * a separator: no '/', '\', "..", control bytes or quotes.
 */
#ifndef ARCA_FILENAME_H
#define ARCA_FILENAME_H

#include <stddef.h>

/* The last segment of a normal-form URL's path, percent-decoded and cleaned as by
 * filename_clean(); "" when there is none. */
void url_filename(const char *url, char *out, size_t size);

/* A file name safe to suggest: no '/', '\', "..", control bytes or quotes. */
void filename_clean(const char *in, size_t len, char *out, size_t size);

/* The file name a Content-Disposition value names (RFC 6266: filename*=UTF-8''... preferred,
 * else filename="..." or filename=token), cleaned; "" when it names none. */
void disposition_filename(const char *value, char *out, size_t size);

#endif
