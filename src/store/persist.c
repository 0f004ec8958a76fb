/* The persistence thread: a FIFO of jobs and the thread that runs them (see persist.h). */
#include "persist.h"

#include <pthread.h>
#include <stdio.h>

static struct {
    pthread_mutex_t lock; /* guards the queue, running and stopping */
    pthread_cond_t work, idle;
    struct persist_job *head, **tail;
    pthread_t thread;
    bool running, stopping;
    unsigned long submitted, done; /* jobs ever submitted and run: persist_flush waits on them */
} pq = {.lock = PTHREAD_MUTEX_INITIALIZER,
        .work = PTHREAD_COND_INITIALIZER,
        .idle = PTHREAD_COND_INITIALIZER};

static void *persist_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&pq.lock);
    for (;;) {
        while (!pq.head && !pq.stopping)
            pthread_cond_wait(&pq.work, &pq.lock);
        struct persist_job *job = pq.head;
        if (!job) {
            /* stopping, and nothing left: from now on a job runs on its submitter */
            pq.running = false;
            break;
        }
        pq.head = job->next;
        if (!pq.head)
            pq.tail = &pq.head;
        pthread_mutex_unlock(&pq.lock);
        job->run(job);
        pthread_mutex_lock(&pq.lock);
        pq.done++;
        pthread_cond_broadcast(&pq.idle);
    }
    pthread_mutex_unlock(&pq.lock);
    return NULL;
}

int persist_start(char *err, size_t errlen)
{
    pthread_mutex_lock(&pq.lock);
    pq.head = NULL;
    pq.tail = &pq.head;
    pq.stopping = false;
    pq.running = pthread_create(&pq.thread, NULL, persist_main, NULL) == 0;
    pthread_mutex_unlock(&pq.lock);
    if (!pq.running)
        snprintf(err, errlen, "cannot start the persistence thread: out of resources");
    return pq.running ? 0 : -1;
}

void persist_submit(struct persist_job *job)
{
    job->next = NULL;
    pthread_mutex_lock(&pq.lock);
    if (!pq.running) {
        pthread_mutex_unlock(&pq.lock);
        job->run(job);
        return;
    }
    *pq.tail = job;
    pq.tail = &job->next;
    pq.submitted++;
    pthread_cond_signal(&pq.work);
    pthread_mutex_unlock(&pq.lock);
}

void persist_flush(void)
{
    pthread_mutex_lock(&pq.lock);
    unsigned long target = pq.submitted;
    while (pq.running && pq.done < target && !pthread_equal(pthread_self(), pq.thread))
        pthread_cond_wait(&pq.idle, &pq.lock);
    pthread_mutex_unlock(&pq.lock);
}

void persist_stop(void)
{
    pthread_mutex_lock(&pq.lock);
    if (!pq.running) {
        pthread_mutex_unlock(&pq.lock);
        return;
    }
    pq.stopping = true;
    pthread_cond_signal(&pq.work);
    pthread_t thread = pq.thread;
    pthread_mutex_unlock(&pq.lock);
    pthread_join(thread, NULL);
}

bool persist_stopping(void)
{
    pthread_mutex_lock(&pq.lock);
    bool stopping = pq.stopping;
    pthread_mutex_unlock(&pq.lock);
    return stopping;
}

bool persist_on_thread(void)
{
    bool on;
    pthread_mutex_lock(&pq.lock);
    on = pq.running && pthread_equal(pthread_self(), pq.thread);
    pthread_mutex_unlock(&pq.lock);
    return on;
}

bool persist_owns_index(void)
{
    pthread_mutex_lock(&pq.lock);
    bool owns = !pq.running || pthread_equal(pthread_self(), pq.thread);
    pthread_mutex_unlock(&pq.lock);
    return owns;
}
