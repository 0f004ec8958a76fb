/*
 * hash.h — FNV-1a over a string, for the small open-addressed indexes of names (rules' names in
 * the config and the statistics, media types). Not for keys a client may choose to collide:
 * those take a seed (`start`: FNV1A_START mixed with one) or a keyed hash.
 */
#ifndef ARCA_HASH_H
#define ARCA_HASH_H

#include <stdint.h>

#define FNV1A_START 2166136261u

/* FNV-1a of the string `s`, from `start` (FNV1A_START, or that mixed with a seed). */
static inline uint32_t fnv1a(const char *s, uint32_t start)
{
    uint32_t h = start;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h;
}

#endif
