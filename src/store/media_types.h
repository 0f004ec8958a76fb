/*
 * media_types.h — content types by number. A lab's objects have a handful of types
 * (application/octet-stream, application/gzip, ...): each is kept once here, and an object's
 * packed headers (object.c) name it by a byte where its ~20 bytes were, a million times over.
 *
 * Contract: any thread, without a lock of the caller's: a number, once given, names its type
 * for the life of the process (never freed). At most MEDIA_TYPES_MAX types get one; the others,
 * and types too long or starting with a control byte, stay in the pack as they are.
 */
#ifndef ARCA_MEDIA_TYPES_H
#define ARCA_MEDIA_TYPES_H

#include <stdint.h>

#define MEDIA_TYPES_MAX 255
/* Longer types are not kept: no real media type comes near it, and the table stays small. */
#define MEDIA_TYPE_KEPT_LEN 127

/* The number of `type`, given it on first sight: 1..MEDIA_TYPES_MAX, or 0 when it gets none. */
uint8_t media_type_code(const char *type);
/* The type a number names (one media_type_code gave). */
const char *media_type_of(uint8_t code);

#endif
