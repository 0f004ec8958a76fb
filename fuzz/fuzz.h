/* Shared by the libFuzzer targets: the input as a NUL-terminated string (parsers take C
 * strings; an embedded NUL just ends the string early, as it would on the wire). */
#ifndef ARCA_FUZZ_H
#define ARCA_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static inline char *fuzz_string(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s) {
        memcpy(s, data, size);
        s[size] = '\0';
    }
    return s;
}

#endif
