#include "base/park.h"

#include <assert.h>
#include <pthread.h>
#include <stddef.h>

/* Makes a wake-up and park_leave() exclusive. Never taken while another lock is held; held while
 * a wake-up runs, which takes only its worker's wake lock (conn_resume: engine_internal.h), a
 * leaf: taken before that one, never after. */
static pthread_mutex_t wake_lock = PTHREAD_MUTEX_INITIALIZER;
/* Parks a producer deferred on this thread, woken by its next park_flush(). */
static _Thread_local struct park *deferred;

#define CHECK_PARK(p) assert((p) && (p)->magic == PARK_MAGIC && atomic_load(&(p)->refs) > 0)

void park_init(struct park *p, void (*sleep)(struct park *), void (*wake)(struct park *),
               void (*release)(struct park *))
{
    *p = (struct park){.magic = PARK_MAGIC, .sleep = sleep, .wake = wake, .release = release};
    atomic_init(&p->refs, 1);
}

void park_hold(struct park *p)
{
    CHECK_PARK(p);
    atomic_fetch_add(&p->refs, 1);
}

void park_put(struct park *p)
{
    CHECK_PARK(p);
    if (atomic_fetch_sub(&p->refs, 1) == 1) {
        assert(!p->queued);
        p->magic = 0;
        if (p->release)
            p->release(p);
    }
}

void park_leave(struct park *p)
{
    CHECK_PARK(p);
    pthread_mutex_lock(&wake_lock);
    p->gone = true;
    pthread_mutex_unlock(&wake_lock);
    park_put(p);
}

void park_enqueue(struct park_queue *q, struct park *p)
{
    CHECK_PARK(p);
    assert(!p->queued && !p->gone);
    p->sleep(p);
    park_hold(p);
    p->queued = true;
    p->next = q->head;
    q->head = p;
}

void park_remove(struct park_queue *q, struct park *p)
{
    CHECK_PARK(p);
    if (!p->queued)
        return;
    for (struct park **at = &q->head; *at; at = &(*at)->next)
        if (*at == p) {
            *at = p->next;
            break;
        }
    p->queued = false;
    p->next = NULL;
    park_put(p); /* the queue's: never the last, the caller holds its own */
}

/* The queue's reference passes to the deferred list. */
static void defer_one(struct park *p)
{
    CHECK_PARK(p);
    p->queued = false;
    p->next = deferred;
    deferred = p;
}

void park_defer(struct park_queue *q)
{
    struct park *p = q->head, *next;
    q->head = NULL;
    for (; p; p = next) {
        next = p->next;
        defer_one(p);
    }
}

void park_defer_reached(struct park_queue *q, int64_t progress)
{
    struct park **at = &q->head, *p;
    while ((p = *at)) {
        if (p->until <= progress) {
            *at = p->next;
            defer_one(p);
        } else {
            at = &p->next;
        }
    }
}

bool park_queue_empty(const struct park_queue *q)
{
    return q->head == NULL;
}

void park_wake(struct park *p)
{
    CHECK_PARK(p);
    assert(!p->queued);
    pthread_mutex_lock(&wake_lock);
    if (!p->gone)
        p->wake(p);
    pthread_mutex_unlock(&wake_lock);
}

void park_flush(void)
{
    struct park *p = deferred, *next;
    deferred = NULL;
    for (; p; p = next) {
        /* Read before waking: a woken request may queue its park again at once. */
        next = p->next;
        p->next = NULL;
        park_wake(p);
        park_put(p);
    }
}
