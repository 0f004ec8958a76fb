/* A request's work on a thread of its own (http_offload.h). */
#include "http_offload.h"

#include <pthread.h>

static atomic_int running;

static struct offload *offload_of(struct park *p)
{
    return PARK_OWNER(p, struct offload, park);
}

static void suspend_conn(struct park *p)
{
    conn_suspend(offload_of(p)->conn);
}

static void resume_conn(struct park *p)
{
    conn_resume(offload_of(p)->conn);
}

static void release(struct park *p)
{
    struct offload *o = offload_of(p);
    o->release(o);
}

void offload_init(struct offload *o, struct conn *c, void (*run)(struct offload *),
                  void (*rel)(struct offload *))
{
    o->conn = c;
    o->run = run;
    o->release = rel;
    atomic_init(&o->done, false);
    park_init(&o->park, suspend_conn, resume_conn, release);
}

static void *offload_main(void *arg)
{
    struct offload *o = arg;
    o->run(o);
    atomic_fetch_sub(&running, 1);
    atomic_store(&o->done, true);
    park_wake(&o->park); /* nothing once the request has left */
    park_put(&o->park);
    return NULL;
}

bool offload_start(struct offload *o)
{
    pthread_attr_t attr;
    pthread_t t;
    int rc;
    if (atomic_fetch_add(&running, 1) >= OFFLOAD_MAX) {
        atomic_fetch_sub(&running, 1);
        return false;
    }
    conn_suspend(o->conn);
    park_hold(&o->park); /* the thread's */
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    rc = pthread_create(&t, &attr, offload_main, o);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        atomic_fetch_sub(&running, 1);
        park_put(&o->park);
        conn_resume(o->conn);
        return false;
    }
    return true;
}

bool offload_done(struct offload *o)
{
    return atomic_load(&o->done);
}

void offload_leave(struct offload *o)
{
    park_leave(&o->park);
}
