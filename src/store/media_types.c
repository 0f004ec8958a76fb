/* Content types by number (media_types.h): an open-addressed table of numbers by the type's
 * hash, and the types by number. Lookups read both without the lock: a type is published before
 * its number is (release), so whoever sees a number sees its type (acquire). */
#include "store/media_types.h"
#include "base/hash.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

/* Twice the numbers: a probe ends at an empty slot within a few. */
#define SLOTS 512

static _Atomic(const char *) types[MEDIA_TYPES_MAX + 1]; /* [0] unused */
static _Atomic uint8_t numbers[SLOTS];                   /* by hash; 0: empty */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int given;        /* numbers given so far: under the lock */
static atomic_bool full; /* every number given: a type without one takes no lock */
static uint32_t seed;    /* the hash's, random: an origin cannot pick types that collide */
static pthread_once_t seeded = PTHREAD_ONCE_INIT;

static void seed_once(void)
{
    if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != sizeof(seed))
        seed = (uint32_t)(uintptr_t)&seed; /* no entropy yet: the address's, at least */
}

static uint32_t hash_of(const char *s)
{
    uint32_t h = fnv1a(s, FNV1A_START ^ seed); /* seeded */
    return h ^ (h >> 15);
}

/* Its number, or 0 with *slot the empty slot where it would go (SLOTS: none is left). */
static uint8_t find(const char *type, uint32_t h, size_t *slot)
{
    for (size_t i = 0; i < SLOTS; i++) {
        size_t at = (h + i) & (SLOTS - 1);
        uint8_t n = atomic_load_explicit(&numbers[at], memory_order_acquire);
        if (n == 0) {
            *slot = at;
            return 0;
        }
        if (strcmp(atomic_load_explicit(&types[n], memory_order_relaxed), type) == 0)
            return n;
    }
    *slot = SLOTS;
    return 0;
}

uint8_t media_type_code(const char *type)
{
    size_t len = strnlen(type, MEDIA_TYPE_KEPT_LEN + 1), slot;
    if (len == 0 || len > MEDIA_TYPE_KEPT_LEN || (uint8_t)type[0] < 0x20)
        return 0;
    pthread_once(&seeded, seed_once);
    uint32_t h = hash_of(type);
    uint8_t n = find(type, h, &slot);
    if (n || atomic_load_explicit(&full, memory_order_relaxed))
        return n;
    pthread_mutex_lock(&lock);
    n = find(type, h, &slot); /* another thread may have given it one meanwhile */
    char *copy;
    if (!n && slot < SLOTS && given < MEDIA_TYPES_MAX && (copy = strdup(type))) {
        n = (uint8_t)++given;
        atomic_store_explicit(&types[n], copy, memory_order_relaxed);
        atomic_store_explicit(&numbers[slot], n, memory_order_release);
    }
    if (given == MEDIA_TYPES_MAX)
        atomic_store_explicit(&full, true, memory_order_relaxed);
    pthread_mutex_unlock(&lock);
    return n;
}

const char *media_type_of(uint8_t code)
{
    const char *type = code ? atomic_load_explicit(&types[code], memory_order_acquire) : NULL;
    return type ? type : "";
}
