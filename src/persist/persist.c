/* The persistence threads: two FIFOs of jobs, each with the thread that runs it (see persist.h).
 * The ordered queue runs every change of names and rows; the sync queue only fsyncs file data,
 * then hands the job on to the ordered queue for what follows. */
#include "persist/persist.h"
#include "base/clock.h"

#include <assert.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>

struct queue {
    pthread_cond_t work;
    struct persist_job *head, **tail;
    pthread_t thread;
    bool running, stopping;
    unsigned long submitted, done; /* jobs ever submitted and run: persist_flush waits on them */
};

/* Its lock is a leaf, taken last: nothing is taken while it is held. It is taken after the
 * store's mutex (a job submitted under it) and after stats.c's hours lock (stats_load holds it
 * while the index asks persist_owns_index), never before either. */
static struct {
    pthread_mutex_t lock; /* guards both queues and `stopping` */
    pthread_cond_t idle;  /* a job was done, on either queue */
    struct queue q[2];    /* indexed by enum persist_queue */
    bool stopping;        /* persist_stop was called */
    int64_t stopped_at;   /* when (monotonic_us), while `stopping` */
    /* persist_others_wait: jobs on the ordered queue that are not background ones, and callers
     * waiting in persist_flush or persist_settle */
    size_t foreground_queued, waiters;
} pq = {.lock = PTHREAD_MUTEX_INITIALIZER,
        .idle = PTHREAD_COND_INITIALIZER,
        .q = {{.work = PTHREAD_COND_INITIALIZER}, {.work = PTHREAD_COND_INITIALIZER}}};

/* Lock held. */
static bool on_queue_thread(enum persist_queue which)
{
    return pq.q[which].running && pthread_equal(pthread_self(), pq.q[which].thread);
}

/* Lock held: the next job, or NULL once stopping with nothing left. */
static struct persist_job *take(struct queue *q)
{
    while (!q->head && !q->stopping)
        pthread_cond_wait(&q->work, &pq.lock);
    struct persist_job *job = q->head;
    if (job && !(q->head = job->next))
        q->tail = &q->head;
    if (job && q == &pq.q[PERSIST_ORDERED] && !job->background)
        pq.foreground_queued--;
    assert(!job || q->submitted > q->done);
    return job;
}

static void submit_ordered(struct persist_job *job, const struct persist_group *group,
                           bool background);

/* The sync queue's step: the data's fsync, then what follows it, in order with every other
 * change of names and rows, waited for as the sync was (job->background, set by enqueue). The
 * follow-up is queued before this job counts as done, so that persist_flush waiting on this
 * queue then sees it on the ordered one. */
static void run_sync_step(struct persist_job *job)
{
    job->sync(job);
    submit_ordered(job, NULL, job->background);
}

/* Lock held, a job of the ordered queue just run: its group (`*open`, begun before it) goes on
 * while the next job queued is of it, up to PERSIST_GROUP_MAX jobs (*grouped), else it ends
 * here and its jobs count as done. Returns how many jobs are done now. */
static unsigned long group_step(struct queue *q, const struct persist_group **open,
                                unsigned long *grouped)
{
    if (!*open)
        return 1;
    if (++*grouped < PERSIST_GROUP_MAX && q->head && q->head->group == *open)
        return 0;
    unsigned long done = *grouped;
    pthread_mutex_unlock(&pq.lock);
    (*open)->end();
    pthread_mutex_lock(&pq.lock);
    *open = NULL;
    *grouped = 0;
    return done;
}

static void *queue_main(void *arg)
{
    enum persist_queue which = (enum persist_queue)(long)arg;
    struct queue *q = &pq.q[which];
    const struct persist_group *open = NULL; /* the group begun, ended before the queue waits */
    unsigned long grouped = 0;
    pthread_setname_np(pthread_self(), which == PERSIST_SYNC ? "arca-sync" : "arca-index");
    pthread_mutex_lock(&pq.lock);
    for (;;) {
        struct persist_job *job = take(q);
        if (!job) {
            /* stopping, and nothing left: from now on a job runs on its submitter */
            q->running = false;
            break;
        }
        pthread_mutex_unlock(&pq.lock);
        if (which == PERSIST_SYNC) {
            run_sync_step(job);
        } else {
            if (!open && job->group)
                (open = job->group)->begin();
            job->run(job);
        }
        pthread_mutex_lock(&pq.lock);
        q->done += group_step(q, &open, &grouped);
        pthread_cond_broadcast(&pq.idle);
    }
    pthread_mutex_unlock(&pq.lock);
    return NULL;
}

/* Lock held. */
static bool start_queue(enum persist_queue which)
{
    struct queue *q = &pq.q[which];
    q->head = NULL;
    q->tail = &q->head;
    q->stopping = false;
    q->running = pthread_create(&q->thread, NULL, queue_main, (void *)(long)which) == 0;
    return q->running;
}

/* Run what is queued on `which`, then end its thread. */
static void stop_queue(enum persist_queue which)
{
    struct queue *q = &pq.q[which];
    pthread_mutex_lock(&pq.lock);
    if (!q->running) {
        pthread_mutex_unlock(&pq.lock);
        return;
    }
    q->stopping = true;
    pthread_cond_signal(&q->work);
    pthread_t thread = q->thread;
    pthread_mutex_unlock(&pq.lock);
    pthread_join(thread, NULL);
}

/* The ordered queue's condition times its pauses (persist_pause) on the monotonic clock, where a
 * static initializer's would use the wall clock. Once, before any thread waits on it. */
static void monotonic_work(void)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&pq.q[PERSIST_ORDERED].work, &attr);
    pthread_condattr_destroy(&attr);
}

int persist_start(char *err, size_t errlen)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, monotonic_work);
    pthread_mutex_lock(&pq.lock);
    pq.stopping = false;
    bool ok = start_queue(PERSIST_ORDERED);
    pthread_mutex_unlock(&pq.lock);
    if (ok) {
        pthread_mutex_lock(&pq.lock);
        ok = start_queue(PERSIST_SYNC);
        pthread_mutex_unlock(&pq.lock);
        if (!ok)
            stop_queue(PERSIST_ORDERED);
    }
    if (!ok)
        snprintf(err, errlen, "cannot start the persistence threads: out of resources");
    return ok ? 0 : -1;
}

/* Queue `job` on `which`: 0, or -1 when that queue's thread does not run. */
static int enqueue(enum persist_queue which, struct persist_job *job, bool background)
{
    struct queue *q = &pq.q[which];
    job->next = NULL;
    job->background = background;
    pthread_mutex_lock(&pq.lock);
    if (!q->running) {
        pthread_mutex_unlock(&pq.lock);
        return -1;
    }
    *q->tail = job;
    q->tail = &job->next;
    q->submitted++;
    if (which == PERSIST_ORDERED && !background)
        pq.foreground_queued++;
    pthread_cond_signal(&q->work);
    pthread_mutex_unlock(&pq.lock);
    return 0;
}

/* `job` on the ordered queue, or run at once on the caller when its thread does not run. */
static void submit_ordered(struct persist_job *job, const struct persist_group *group,
                           bool background)
{
    job->group = group;
    if (enqueue(PERSIST_ORDERED, job, background) < 0)
        job->run(job); /* on its own, as before the threads start */
}

void persist_submit_grouped(struct persist_job *job, const struct persist_group *group)
{
    submit_ordered(job, group, group && group->background);
}

void persist_submit_background(struct persist_job *job)
{
    submit_ordered(job, NULL, true);
}

void persist_submit(struct persist_job *job)
{
    persist_submit_grouped(job, NULL);
}

static void submit_sync(struct persist_job *job, bool background)
{
    assert(job->sync && job->run);
    job->group = NULL;
    if (enqueue(PERSIST_SYNC, job, background) < 0)
        run_sync_step(job);
}

void persist_submit_sync(struct persist_job *job)
{
    submit_sync(job, false);
}

void persist_submit_sync_background(struct persist_job *job)
{
    submit_sync(job, true);
}

/* Lock held: wait until `which` has run `target` jobs (or stopped). */
static void wait_done(enum persist_queue which, unsigned long target)
{
    pq.waiters++;
    pthread_cond_signal(&pq.q[PERSIST_ORDERED].work); /* a pause (persist_pause) ends */
    while (pq.q[which].running && pq.q[which].done < target)
        pthread_cond_wait(&pq.idle, &pq.lock);
    pq.waiters--;
}

void persist_flush(void)
{
    pthread_mutex_lock(&pq.lock);
    /* one of the threads waiting on itself would never return */
    if (!on_queue_thread(PERSIST_ORDERED) && !on_queue_thread(PERSIST_SYNC)) {
        wait_done(PERSIST_SYNC, pq.q[PERSIST_SYNC].submitted);
        wait_done(PERSIST_ORDERED, pq.q[PERSIST_ORDERED].submitted);
    }
    pthread_mutex_unlock(&pq.lock);
}

void persist_settle(void)
{
    pthread_mutex_lock(&pq.lock);
    if (!on_queue_thread(PERSIST_ORDERED) && !on_queue_thread(PERSIST_SYNC))
        wait_done(PERSIST_ORDERED, pq.q[PERSIST_ORDERED].submitted);
    pthread_mutex_unlock(&pq.lock);
}

void persist_stop(void)
{
    pthread_mutex_lock(&pq.lock);
    pq.stopping = true;
    pq.stopped_at = monotonic_us();
    pthread_cond_signal(&pq.q[PERSIST_ORDERED].work); /* a pause (persist_pause) ends */
    pthread_mutex_unlock(&pq.lock);
    /* the sync queue first: its jobs end on the ordered queue */
    stop_queue(PERSIST_SYNC);
    stop_queue(PERSIST_ORDERED);
}

/* Lock held. */
static bool others_wait(void)
{
    return pq.foreground_queued > 0 || pq.waiters > 0;
}

bool persist_others_wait(void)
{
    pthread_mutex_lock(&pq.lock);
    bool others = others_wait();
    pthread_mutex_unlock(&pq.lock);
    return others;
}

int64_t persist_pause(int64_t us)
{
    int64_t began = monotonic_us(), end = began + us, slept = 0;
    struct timespec until = {.tv_sec = end / 1000000, .tv_nsec = end % 1000000 * 1000};
    assert(us >= 0);
    pthread_mutex_lock(&pq.lock);
    assert(on_queue_thread(PERSIST_ORDERED));
    if (!others_wait() && !pq.stopping) {
        /* the queue's own condition, on the monotonic clock (monotonic_work): an enqueue, a
         * waiter or a stop signals it; the deadline looked at each time, whatever woke it */
        while (!others_wait() && !pq.stopping && monotonic_us() < end)
            pthread_cond_timedwait(&pq.q[PERSIST_ORDERED].work, &pq.lock, &until);
        slept = monotonic_us() - began;
    }
    pthread_mutex_unlock(&pq.lock);
    return slept < us ? slept : us;
}

int64_t persist_stopping_for(void)
{
    pthread_mutex_lock(&pq.lock);
    int64_t since = pq.stopping ? pq.stopped_at : -1;
    pthread_mutex_unlock(&pq.lock);
    return since < 0 ? -1 : monotonic_us() - since;
}

bool persist_stopping(void)
{
    pthread_mutex_lock(&pq.lock);
    bool stopping = pq.stopping;
    pthread_mutex_unlock(&pq.lock);
    return stopping;
}

size_t persist_depth(enum persist_queue which)
{
    pthread_mutex_lock(&pq.lock);
    size_t depth = (size_t)(pq.q[which].submitted - pq.q[which].done);
    pthread_mutex_unlock(&pq.lock);
    return depth;
}

bool persist_on_thread(void)
{
    pthread_mutex_lock(&pq.lock);
    bool on = on_queue_thread(PERSIST_ORDERED);
    pthread_mutex_unlock(&pq.lock);
    return on;
}

bool persist_on_sync_thread(void)
{
    pthread_mutex_lock(&pq.lock);
    bool on = on_queue_thread(PERSIST_SYNC);
    pthread_mutex_unlock(&pq.lock);
    return on;
}

bool persist_owns_index(void)
{
    pthread_mutex_lock(&pq.lock);
    bool owns = !pq.q[PERSIST_ORDERED].running ||
                pthread_equal(pthread_self(), pq.q[PERSIST_ORDERED].thread);
    pthread_mutex_unlock(&pq.lock);
    return owns;
}
