/*
 * park.h — the one way a connection waits for what another thread produces: an object's bytes
 * (store.h), a listing page (s3_list.h), a signed URL's confirmation (fetch_confirm.c with
 * upstream_probe).
 *
 * A park is embedded in the waiting request's own state and reference counted: the request holds
 * one reference for its life (park_init), a queue holds one while the park is in it, a wake-up
 * holds one until it has run; `release` runs when the last goes, and may free the request's state.
 *
 * Lock order, the only one: a producer's lock (the store mutex, the listing cache lock) is held
 * while a park is queued, taken off its queue or deferred for waking (park_defer), and never while
 * a wake-up runs. Wake-ups run in park_flush(), with no producer lock held, under park.c's own
 * lock, which is never taken while another is held; a wake-up takes under it only its worker's
 * wake lock (conn_resume), a leaf. That lock makes a wake-up and the request's park_leave()
 * exclusive: once park_leave() has returned, `wake` never runs again for that park (the
 * request's connection may be gone).
 *
 * `sleep` runs under the producer's lock, before the park is queued, so a wake-up cannot be lost
 * between a producer's check and the sleep.
 */
#ifndef ARCA_PARK_H
#define ARCA_PARK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The state a park is embedded in. */
#define PARK_OWNER(p, type, member) ((type *)((char *)(p)-offsetof(type, member)))

struct park {
    unsigned magic;
    atomic_int refs;
    void (*sleep)(struct park *p);   /* producer's lock held: suspend the connection */
    void (*wake)(struct park *p);    /* park.c's lock held only: resume it */
    void (*release)(struct park *p); /* the last reference went; NULL: nothing to do */
    int64_t until;     /* with park_defer_reached: the producer's progress it waits for (0: any) */
    struct park *next; /* in a queue or a thread's deferred list */
    bool queued;       /* in a queue (under that producer's lock) */
    bool gone;         /* park_leave() ran: no more wake-ups (park.c's lock) */
};

/* Producers keep their waiting parks in one; guarded by the producer's lock. */
struct park_queue {
    struct park *head;
};

#define PARK_MAGIC 0x9a7c3b1du

/* The request's own reference. */
void park_init(struct park *p, void (*sleep)(struct park *), void (*wake)(struct park *),
               void (*release)(struct park *));
void park_hold(struct park *p);
void park_put(struct park *p);
/* The request lets go: no wake-up runs for it after this returns; then its reference is put. */
void park_leave(struct park *p);

/* Producer's lock held. */
void park_enqueue(struct park_queue *q, struct park *p);
/* Take `p` out of `q` if it is there (its wake-up then never runs). */
void park_remove(struct park_queue *q, struct park *p);
/* Every park of `q` is woken at this thread's next park_flush(). */
void park_defer(struct park_queue *q);
/* The same for the parks of `q` whose `until` is at most `progress`; the others stay queued. */
void park_defer_reached(struct park_queue *q, int64_t progress);
bool park_queue_empty(const struct park_queue *q);

/* No producer lock held: run the wake-ups this thread deferred. */
void park_flush(void);
/* Wake one park now (no producer lock held); it must not be queued. */
void park_wake(struct park *p);

#endif
