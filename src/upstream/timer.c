#include "upstream/timer.h"

#include <assert.h>
#include <stdbool.h>
#include <stdlib.h>

/* Whether `a` fires before `b`: earlier due time, then earlier arming. */
static bool before(const struct timer *a, const struct timer *b)
{
    return a->due_ms < b->due_ms || (a->due_ms == b->due_ms && a->seq < b->seq);
}

static void place(struct timer_heap *h, size_t i, struct timer *t)
{
    h->items[i] = t;
    t->slot = i;
}

static void sift_up(struct timer_heap *h, size_t i)
{
    struct timer *t = h->items[i];
    while (i > 0 && before(t, h->items[(i - 1) / 2])) {
        place(h, i, h->items[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    place(h, i, t);
}

static void sift_down(struct timer_heap *h, size_t i)
{
    struct timer *t = h->items[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && before(h->items[c + 1], h->items[c]))
            c++;
        if (!before(h->items[c], t))
            break;
        place(h, i, h->items[c]);
        i = c;
    }
    place(h, i, t);
}

void timer_init(struct timer *t)
{
    *t = (struct timer){.slot = TIMER_IDLE};
}

/* Take `t` out of the heap: the last item fills its slot and moves whichever way it must. */
static void take_out(struct timer_heap *h, struct timer *t)
{
    size_t i = t->slot;
    assert(i < h->n && h->items[i] == t);
    struct timer *last = h->items[--h->n];
    t->slot = TIMER_IDLE;
    if (last == t)
        return;
    place(h, i, last);
    sift_down(h, i);
    sift_up(h, last->slot);
}

int timer_arm(struct timer_heap *h, struct timer *t, int64_t due_ms, void (*fire)(void *arg),
              void *arg)
{
    if (t->slot != TIMER_IDLE)
        take_out(h, t);
    if (h->n == h->cap) {
        size_t cap = h->cap ? 2 * h->cap : 16;
        struct timer **items = realloc(h->items, cap * sizeof(*items));
        if (!items)
            return -1;
        h->items = items;
        h->cap = cap;
    }
    assert(h->n < h->cap);
    t->due_ms = due_ms;
    t->seq = h->next_seq++;
    t->fire = fire;
    t->arg = arg;
    place(h, h->n++, t);
    sift_up(h, t->slot);
    return 0;
}

void timer_cancel(struct timer_heap *h, struct timer *t)
{
    if (t->slot != TIMER_IDLE)
        take_out(h, t);
}

int64_t timer_wait_ms(const struct timer_heap *h, int64_t now_ms, int64_t idle_ms)
{
    if (h->n == 0)
        return idle_ms;
    int64_t wait = h->items[0]->due_ms - now_ms;
    return wait < 0 ? 0 : wait < idle_ms ? wait : idle_ms;
}

int timer_run(struct timer_heap *h, int64_t now_ms)
{
    int fired = 0;
    while (h->n > 0 && h->items[0]->due_ms <= now_ms) {
        struct timer *t = h->items[0];
        assert(t->slot == 0);
        take_out(h, t);
        fired++;
        t->fire(t->arg);
    }
    return fired;
}

void timer_heap_free(struct timer_heap *h)
{
    for (size_t i = 0; i < h->n; i++)
        h->items[i]->slot = TIMER_IDLE;
    free(h->items);
    *h = (struct timer_heap){0};
}
