/*
 * persist_gate.h — for the unit suites that need the ordered persistence queue held: a job that
 * holds it until the test opens its gate, a disk as slow as the scenario needs. Submitted as a
 * background job (persist_submit_background) it stands for removals, which nobody waits for;
 * SYNC_GATE_JOB holds the sync queue the same way, a large file's fdatasync.
 */
#ifndef ARCA_PERSIST_GATE_H
#define ARCA_PERSIST_GATE_H

#include "persist/persist.h"

#include <pthread.h>
#include <stdbool.h>

struct gate_job {
    struct persist_job job;
    pthread_mutex_t lock;
    pthread_cond_t opened;
    bool open;
};

static inline void run_gate(struct persist_job *job)
{
    struct gate_job *g = (struct gate_job *)job;
    pthread_mutex_lock(&g->lock);
    while (!g->open)
        pthread_cond_wait(&g->opened, &g->lock);
    pthread_mutex_unlock(&g->lock);
}

static inline void gate_passed(struct persist_job *job)
{
    (void)job;
}

/* A gate ready to submit: closed until open_gate. */
#define GATE_JOB                                                                                   \
    {                                                                                              \
        .job.run = run_gate, .lock = PTHREAD_MUTEX_INITIALIZER, .opened = PTHREAD_COND_INITIALIZER \
    }

/* The same for the sync queue (persist_submit_sync): its follow-up on the ordered queue does
 * nothing. */
#define SYNC_GATE_JOB                                                                              \
    {                                                                                              \
        .job.sync = run_gate, .job.run = gate_passed, .lock = PTHREAD_MUTEX_INITIALIZER,           \
        .opened = PTHREAD_COND_INITIALIZER                                                         \
    }

static inline void open_gate(struct gate_job *g)
{
    pthread_mutex_lock(&g->lock);
    g->open = true;
    pthread_cond_signal(&g->opened);
    pthread_mutex_unlock(&g->lock);
}

#endif
