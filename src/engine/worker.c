/* What a worker keeps (engine_internal.h): its read-buffer pool, its connections' lists (idle
 * clock, parked, ready), its Date line, and the wake-ups other threads queue for it. */
#include "engine/engine_internal.h"
#include "base/clock.h"

#include <assert.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Free read buffers a worker keeps for its next requests; beyond, they go back to malloc. */
#define POOL_KEEP 64

const struct engine_ops *engine_ops_;
struct engine_limits engine_lim;
static atomic_int open_conns; /* connections of every worker, for the hard cap */
static atomic_bool draining;  /* engine_drain's */
/* The worker this thread runs (NULL on any other thread): engine_on_thread's answer. */
static _Thread_local struct worker *self;

void worker_bind(struct worker *w)
{
    self = w;
}

/* struct sched_attr as sched_setattr(2) reads it, first version (48 bytes): <linux/sched/types.h>
 * also defines a struct sched_param that clashes with <sched.h>'s. */
struct slice_attr {
    uint32_t size, policy;
    uint64_t flags;
    int32_t nice;
    uint32_t priority;
    uint64_t runtime, deadline, period;
};
_Static_assert(sizeof(struct slice_attr) == 48, "sched_setattr's SCHED_ATTR_SIZE_VER0");

void worker_ask_short_slice(void)
{
    struct slice_attr a = {0};
    if (syscall(SYS_sched_getattr, 0, &a, sizeof(a), 0) != 0 ||
        (a.policy != SCHED_OTHER && a.policy != SCHED_BATCH))
        return; /* a real-time policy the admin gave (chrt) is theirs */
    a.size = sizeof(a);
    a.flags = 0;
    a.runtime = WORKER_SLICE_NS;
    /* a hint: a kernel before 6.12 (no custom slices) takes it and runs the worker as before */
    syscall(SYS_sched_setattr, 0, &a, 0);
}

bool worker_is_self(const struct worker *w)
{
    return self == w;
}

bool engine_on_thread(struct conn *c)
{
    return self && self == c->w;
}

void engine_drain(void)
{
    atomic_store(&draining, true);
}

bool engine_draining(void)
{
    return atomic_load(&draining);
}

void worker_undrain(void)
{
    atomic_store(&draining, false);
}

bool worker_admit(void)
{
    if (atomic_fetch_add(&open_conns, 1) < engine_lim.max_connections)
        return true;
    atomic_fetch_sub(&open_conns, 1);
    return false;
}

void worker_conn_gone(void)
{
    atomic_fetch_sub(&open_conns, 1);
}

void worker_bury(struct worker *w)
{
    while (w->dead) {
        struct conn *c = w->dead;
        w->dead = c->dead_next;
        /* out of every list: conn_close took it out (a node left linked would dangle) */
        assert(c->closing && !c->in_ready && !c->in_wakes && !c->idle_node.prev &&
               !c->idle_node.next);
        free(c);
    }
}

struct inbuf *worker_take_buffer(struct worker *w)
{
    struct inbuf *b = w->pool;
    if (b) {
        w->pool = b->next_free;
        w->pooled--;
    } else if (!(b = malloc(sizeof(*b) + engine_lim.max_head + 1))) {
        return NULL;
    }
    b->next_free = NULL;
    b->len = 0;
    h1_init(&b->h1);
    return b;
}

void worker_give_buffer(struct worker *w, struct inbuf *b)
{
    if (w->pooled >= POOL_KEEP) {
        free(b);
        return;
    }
    b->next_free = w->pool;
    w->pool = b;
    w->pooled++;
}

void worker_ready(struct worker *w, struct conn *c)
{
    assert(!c->closing);
    if (c->in_ready)
        return;
    c->in_ready = true;
    c->ready_next = NULL;
    if (w->ready_last)
        w->ready_last->ready_next = c;
    else
        w->ready = c;
    w->ready_last = c;
    w->n_ready++;
}

struct conn *worker_next_ready(struct worker *w)
{
    struct conn *c = w->ready;
    if (c)
        worker_unready(w, c);
    return c;
}

/* O(n) in the list, but a connection leaves it this way only when it closes. */
void worker_unready(struct worker *w, struct conn *c)
{
    struct conn **p = &w->ready, *before = NULL;
    if (!c->in_ready)
        return;
    while (*p != c) {
        before = *p;
        p = &(*p)->ready_next;
    }
    *p = c->ready_next;
    if (w->ready_last == c)
        w->ready_last = before;
    c->ready_next = NULL;
    c->in_ready = false;
    w->n_ready--;
}

/* The list the connection's node is in (a node does not know it: dlist.h). */
static struct dlist *list_of(struct worker *w, struct conn *c)
{
    return c->parked ? &w->parked : &w->idle;
}

/* A connection's node is in one list at a time, the one `parked` names: it leaves that one
 * before it joins the other (dlist.h can tell neither). */
void worker_touch(struct worker *w, struct conn *c)
{
    assert(!c->closing);
    c->quiet_since_ms = monotonic_ms();
    dlist_remove(list_of(w, c), &c->idle_node);
    c->parked = false;
    dlist_append(&w->idle, &c->idle_node);
}

void worker_park(struct worker *w, struct conn *c)
{
    assert(!c->closing);
    dlist_remove(list_of(w, c), &c->idle_node);
    c->parked = true;
    dlist_append(&w->parked, &c->idle_node);
}

void worker_unlink(struct worker *w, struct conn *c)
{
    dlist_remove(list_of(w, c), &c->idle_node);
}

const char *worker_date(struct worker *w)
{
    time_t now = time(NULL);
    if (now != w->date_at) {
        struct tm tm;
        strftime(w->date, sizeof(w->date), "%a, %d %b %Y %H:%M:%S GMT", gmtime_r(&now, &tm));
        w->date_at = now;
    }
    return w->date;
}

/* handler.h: from any thread. The connection is this worker's until it is closed, and it is not
 * closed while in `wakes` (conn_close waits for the loop to take it out). */
void conn_resume(struct conn *c)
{
    struct worker *w = c->w;
    uint64_t one = 1;
    bool first;
    pthread_mutex_lock(&w->lock);
    first = !c->in_wakes;
    if (first) {
        c->in_wakes = true;
        c->wake_next = w->wakes;
        w->wakes = c;
    }
    pthread_mutex_unlock(&w->lock);
    if (first)
        (void)!write(w->evfd, &one, sizeof(one));
}

void worker_forget_wake(struct worker *w, struct conn *c)
{
    pthread_mutex_lock(&w->lock);
    if (c->in_wakes) {
        struct conn **p = &w->wakes;
        while (*p != c)
            p = &(*p)->wake_next;
        *p = c->wake_next;
        c->wake_next = NULL;
        c->in_wakes = false;
    }
    pthread_mutex_unlock(&w->lock);
}
