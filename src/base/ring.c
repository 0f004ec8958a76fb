/* A queue whose items keep their place (ring.h). An item's place is its position + 1: the
 * position whose place would be 0 (UINT32_MAX) is never given, a hole from the start. The
 * positions from head to tail are at most cap apart, so position mod cap is each one's slot in
 * any array of cap (a power of two dividing 2^32) or more. */
#include "base/ring.h"

#include <assert.h>
#include <stdlib.h>

#define RING_FIRST_CAP 1024

static uint32_t *slot_of(const struct ring *r, uint32_t pos)
{
    return r->slot[pos & (r->cap - 1)];
}

/* The span's pointers into an array of `cap` (at least the span), each at its position's slot
 * there. False when out of memory: the ring is left as it was. */
static bool resize(struct ring *r, uint32_t cap)
{
    uint32_t **slot = calloc(cap, sizeof(*slot));
    if (!slot)
        return false;
    assert(r->tail - r->head <= cap);
    for (uint32_t pos = r->head; pos != r->tail; pos++)
        slot[pos & (cap - 1)] = slot_of(r, pos);
    free(r->slot);
    r->slot = slot;
    r->cap = cap;
    return true;
}

/* Room for one more position at the tail. */
static bool room(struct ring *r)
{
    if (r->tail - r->head < r->cap)
        return true;
    uint32_t cap = r->cap ? r->cap * 2 : RING_FIRST_CAP;
    return cap > r->cap && resize(r, cap); /* past 2^31 positions: none */
}

bool ring_add(struct ring *r, uint32_t *place)
{
    if (*place)
        return true;
    if (r->tail == UINT32_MAX) { /* its place would read as none: a hole */
        if (!room(r))
            return false;
        r->slot[r->tail++ & (r->cap - 1)] = NULL;
    }
    if (!room(r))
        return false;
    r->slot[r->tail & (r->cap - 1)] = place;
    *place = ++r->tail; /* its position + 1 */
    r->count++;
    return true;
}

/* After an item left: empty (holes only), the array is freed; the span a quarter of it or
 * less, it halves (never below the first size; out of memory, it stays as it is). */
static void shrink(struct ring *r)
{
    if (r->count == 0) {
        free(r->slot);
        *r = (struct ring){0};
    } else if (r->cap > RING_FIRST_CAP && r->tail - r->head <= r->cap / 4) {
        resize(r, r->cap / 2);
    }
}

void ring_forget(struct ring *r, uint32_t *place)
{
    if (!*place)
        return;
    uint32_t pos = *place - 1;
    assert(r->cap && pos - r->head < r->tail - r->head && slot_of(r, pos) == place);
    r->slot[pos & (r->cap - 1)] = NULL;
    *place = 0;
    r->count--;
    shrink(r);
}

uint32_t *ring_take(struct ring *r)
{
    uint32_t *place = NULL;
    while (!place && r->head != r->tail)
        place = r->slot[r->head++ & (r->cap - 1)];
    if (place) {
        *place = 0;
        r->count--;
    }
    shrink(r);
    return place;
}

void ring_free(struct ring *r)
{
    while (ring_take(r))
        ;
    free(r->slot);
    *r = (struct ring){0};
}
