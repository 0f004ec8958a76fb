/* A queue whose items keep their place (ring.h). An item's place is its slot + 1. */
#include "base/ring.h"

#include <assert.h>
#include <stdlib.h>

#define RING_FIRST_CAP 1024

/* `cap` new slots holding the items in order, holes closed up, each item told its new place.
 * False when out of memory: the ring is left as it was. */
static bool regrow(struct ring *r, uint32_t cap)
{
    uint32_t **slot = malloc((size_t)cap * sizeof(*slot));
    uint32_t n = 0;
    if (!slot)
        return false;
    for (uint32_t pos = r->head; pos != r->tail; pos++) {
        uint32_t *place = r->slot[pos & (r->cap - 1)];
        if (place) {
            slot[n] = place;
            *place = ++n;
        }
    }
    assert(n == r->count);
    free(r->slot);
    *r = (struct ring){slot, cap, 0, n, n};
    return true;
}

bool ring_add(struct ring *r, uint32_t *place)
{
    if (*place)
        return true;
    if (r->tail - r->head == r->cap) {
        /* full: twice the room when it is at least half items, else the holes closed up */
        uint32_t cap = !r->cap ? RING_FIRST_CAP : r->count * 2 >= r->cap ? r->cap * 2 : r->cap;
        if (cap < r->cap || !regrow(r, cap)) /* past 2^31 places, or out of memory */
            return false;
    }
    uint32_t at = r->tail++ & (r->cap - 1);
    r->slot[at] = place;
    *place = at + 1;
    r->count++;
    return true;
}

void ring_forget(struct ring *r, uint32_t *place)
{
    if (!*place)
        return;
    assert(*place <= r->cap && r->slot[*place - 1] == place);
    r->slot[*place - 1] = NULL;
    *place = 0;
    if (--r->count == 0)
        r->head = r->tail = 0; /* only holes were left */
}

uint32_t *ring_take(struct ring *r)
{
    while (r->head != r->tail) {
        uint32_t *place = r->slot[r->head++ & (r->cap - 1)];
        if (place) {
            *place = 0;
            r->count--;
            return place;
        }
    }
    return NULL;
}

void ring_free(struct ring *r)
{
    while (ring_take(r))
        ;
    free(r->slot);
    *r = (struct ring){0};
}
