/*
 * timer.h — timed work as a binary min-heap of {due_ms, callback, arg}.
 *
 * Contract: a heap belongs to one thread (the upstream thread for upstream's), which arms,
 * cancels and runs its timers; nothing here locks. A timer is a struct the caller owns and
 * embeds (a transfer's backoff, a probe's): arming an armed timer moves it, cancelling one that
 * is not armed does nothing, so the owner may free it once it is cancelled. timer_run() calls
 * every timer due by `now_ms` once, in order of due time, and timers due at the same time in the
 * order they were armed; a callback may arm or cancel any timer, itself included. Finding the
 * next due time is O(1), arming and cancelling O(log n): nothing scans every timer.
 */
#ifndef ARCA_TIMER_H
#define ARCA_TIMER_H

#include <stddef.h>
#include <stdint.h>

struct timer {
    int64_t due_ms;
    uint64_t seq;            /* arming order: of equal due times, the first armed fires first */
    void (*fire)(void *arg); /* called once, the timer already unarmed */
    void *arg;
    size_t slot; /* its place in the heap; TIMER_IDLE when not armed */
};
#define TIMER_IDLE ((size_t)-1)

struct timer_heap {
    struct timer **items;
    size_t n, cap;
    uint64_t next_seq;
};

void timer_init(struct timer *t); /* not armed */
/* Arm (or move) `t` to fire at `due_ms`; -1 when out of memory (t is then not armed). */
int timer_arm(struct timer_heap *h, struct timer *t, int64_t due_ms, void (*fire)(void *arg),
              void *arg);
void timer_cancel(struct timer_heap *h, struct timer *t);
/* Milliseconds from `now_ms` until the nearest timer (0 when one is due), or `idle_ms` when none
 * is armed or the nearest is further. */
int64_t timer_wait_ms(const struct timer_heap *h, int64_t now_ms, int64_t idle_ms);
/* Fire every timer due by `now_ms`; returns how many fired. */
int timer_run(struct timer_heap *h, int64_t now_ms);
/* The heap's memory; its timers are left unarmed. */
void timer_heap_free(struct timer_heap *h);

#endif
