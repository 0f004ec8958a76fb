/* A request's work on a thread of its own (http_offload.h). */
#include "http/http_offload.h"

#include "base/parse.h"

#include <assert.h>
#include <pthread.h>
#include <string.h>

/* Who runs how many: a slot per client with jobs running (at most OFFLOAD_MAX of those), and
 * the admin's purges apart. */
static struct {
    pthread_mutex_t lock;
    int running;
    int admin; /* offload_start_admin's, running */
    struct share {
        uint8_t client[16];
        int n; /* 0: a free slot */
    } shares[OFFLOAD_MAX];
} jobs = {.lock = PTHREAD_MUTEX_INITIALIZER};

_Static_assert(OFFLOAD_PER_CLIENT == 8, "OFFLOAD_CLIENT_BUSY_WHY names the share");

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
    atomic_init(&o->left, false);
    park_init(&o->park, suspend_conn, resume_conn, release);
}

/* An IPv4 client by its address, an IPv6 one by its /64; unknown ones share "::". */
static void client_key(const struct sockaddr *sa, uint8_t key[16])
{
    if (!sa || addr_to_v6(sa, key) != 0)
        memset(key, 0, 16);
    else if (!addr_is_v4_mapped(key))
        memset(key + 8, 0, 8);
}

/* Lock held: the client's slot, or a free one (there is one: a job is in at most one). */
static struct share *share_of(const uint8_t client[16])
{
    struct share *free_slot = NULL;
    for (int i = 0; i < OFFLOAD_MAX; i++) {
        struct share *s = &jobs.shares[i];
        if (s->n > 0 && memcmp(s->client, client, 16) == 0)
            return s;
        if (s->n == 0 && !free_slot)
            free_slot = s;
    }
    assert(free_slot);
    return free_slot;
}

/* Count the job in, or say whose limit it is over. */
static enum offload_start take_share(const uint8_t client[16])
{
    enum offload_start result = OFFLOAD_BUSY;
    pthread_mutex_lock(&jobs.lock);
    if (jobs.running < OFFLOAD_MAX) {
        struct share *s = share_of(client);
        result = OFFLOAD_CLIENT_BUSY;
        if (s->n < OFFLOAD_PER_CLIENT) {
            memcpy(s->client, client, 16);
            s->n++;
            jobs.running++;
            result = OFFLOAD_STARTED;
        }
    }
    pthread_mutex_unlock(&jobs.lock);
    return result;
}

/* The admin's: a share of their own, none of the clients'. */
static enum offload_start take_admin(void)
{
    pthread_mutex_lock(&jobs.lock);
    bool room = jobs.admin < OFFLOAD_ADMIN_MAX;
    jobs.admin += room;
    pthread_mutex_unlock(&jobs.lock);
    return room ? OFFLOAD_STARTED : OFFLOAD_BUSY;
}

static void give_share(const struct offload *o)
{
    const uint8_t *client = o->client;
    pthread_mutex_lock(&jobs.lock);
    if (o->admin) {
        assert(jobs.admin > 0);
        jobs.admin--;
        pthread_mutex_unlock(&jobs.lock);
        return;
    }
    struct share *s = share_of(client);
    assert(s->n > 0 && jobs.running > 0);
    s->n--;
    jobs.running--;
    pthread_mutex_unlock(&jobs.lock);
}

int offload_running(void)
{
    pthread_mutex_lock(&jobs.lock);
    int n = jobs.running;
    pthread_mutex_unlock(&jobs.lock);
    return n;
}

static void *offload_main(void *arg)
{
    struct offload *o = arg;
    pthread_setname_np(pthread_self(), "arca-lookup");
    o->run(o);
    give_share(o);
    atomic_store(&o->done, true);
    park_wake(&o->park); /* nothing once the request has left */
    park_put(&o->park);
    return NULL;
}

/* The thread, its share taken: started, or OFFLOAD_BUSY with the share given back. */
static enum offload_start start_thread(struct offload *o)
{
    pthread_attr_t attr;
    pthread_t t;
    int rc;
    conn_suspend(o->conn);
    park_hold(&o->park); /* the thread's */
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    rc = pthread_create(&t, &attr, offload_main, o);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        give_share(o);
        park_put(&o->park);
        conn_resume(o->conn);
        return OFFLOAD_BUSY;
    }
    return OFFLOAD_STARTED;
}

enum offload_start offload_start(struct offload *o, const struct sockaddr *client)
{
    enum offload_start taken;
    client_key(client, o->client);
    if ((taken = take_share(o->client)) != OFFLOAD_STARTED)
        return taken;
    return start_thread(o);
}

enum offload_start offload_start_admin(struct offload *o)
{
    o->admin = true;
    return take_admin() == OFFLOAD_STARTED ? start_thread(o) : OFFLOAD_BUSY;
}

bool offload_done(struct offload *o)
{
    return atomic_load(&o->done);
}

bool offload_abandoned(struct offload *o)
{
    return atomic_load(&o->left);
}

void offload_leave(struct offload *o)
{
    atomic_store(&o->left, true);
    park_leave(&o->park);
}
