/*
 * ring.h — a queue of items that each keep their place in it: added at the tail, taken from the
 * head, taken out from anywhere, each in O(1). An item holds a uint32_t place (0: not in the
 * ring), 4 bytes where a list node's two links take 16; the ring holds pointers to the places,
 * and RING_ENTRY turns one back into its item.
 *
 * Contract: an item is in at most one ring, at most once (ring_add of an item in it leaves it
 * where it is). The caller provides the locking, and takes an item out before freeing it. A
 * place is the item's position in the ring's sequence, which growing or shrinking never changes:
 * neither writes to an item, they copy pointers (one array of them, the size of the span from
 * the oldest item to the newest, holes included; it doubles when full and halves when a quarter
 * of it is used).
 */
#ifndef ARCA_RING_H
#define ARCA_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ring {
    uint32_t **slot;     /* cap of them, by position mod cap; NULL: a hole (ring_forget) */
    uint32_t cap;        /* a power of two, or 0 while the ring has no array */
    uint32_t head, tail; /* positions: the oldest, and one past the newest (mod 2^32) */
    size_t count;        /* items in it, holes not counted */
};

#define RING_ENTRY(place, type, member) ((type *)((char *)(place)-offsetof(type, member)))

/* At the tail, unless already in. False when out of memory: it is not in the ring. */
bool ring_add(struct ring *r, uint32_t *place);
/* Out of the ring, wherever it is (nothing when it is not in). */
void ring_forget(struct ring *r, uint32_t *place);
/* The oldest, out of the ring (its place 0); NULL when the ring is empty. */
uint32_t *ring_take(struct ring *r);
/* Every item out of it, its memory freed: an empty ring. */
void ring_free(struct ring *r);

#endif
