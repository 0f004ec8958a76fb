/*
 * persist.h — the persistence threads: the one owner of the SQLite index (index.h), of the
 * object files' names (create, rename, unlink) and of their fsync while arca serves.
 *
 * Contract:
 * - Two queues, each with its thread. The ordered queue runs every job that changes a name or a
 *   row: between persist_start and persist_stop, index.h is called from its thread only, and so
 *   are the creation, rename and unlink of object files. The sync queue only fsyncs file data
 *   (job->sync, no name or row changes) and then puts the same job on the ordered queue, whose
 *   job->run does what follows (rename, the directory's sync, the row): a large object's fsync
 *   never holds up the file creation of a new download.
 * - Jobs of one queue run one at a time, in the order they were submitted (a job submitted under
 *   the store lock is therefore ordered with every change of the table: a file removed for an
 *   object that left the table is removed before a new download of the same URL creates its
 *   own). A sync job's follow-up runs after whatever the ordered queue took meanwhile: it must
 *   check, under the store lock, that its object is still what it synced (see store_write.c).
 * - Who else touches the disk: the upstream thread pwrite()s downloads' bytes into files these
 *   threads created, and the access log (access_log.h) has its own thread. No client thread
 *   waits on the disk for a job: they hand jobs over and return, except persist_flush, which
 *   waits for the jobs queued before it (tests, and the upstream thread's stop), and
 *   persist_settle, the same for the ordered queue (a purge's thread of its own).
 * - Before persist_start and after persist_stop, a job runs at once on the thread submitting it
 *   (start-up and shutdown are single-threaded then, so the index still has one user at a time).
 * - A job owns its memory: run() frees it (sync() must not).
 */
#ifndef ARCA_PERSIST_H
#define ARCA_PERSIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Jobs of one kind that may share a transaction of the index with their neighbours in the
 * ordered queue (removals: a hundred thousand objects evicted at once were as many commits,
 * each writing its pages to the WAL). The queue calls begin() before the first job of a run of
 * them and end() after its last: when the next job is of another group or none, when the queue
 * is empty, or after PERSIST_GROUP_MAX of them. A grouped job counts as done only once its
 * group has ended, so persist_flush and persist_settle return with its writes committed. */
struct persist_group {
    void (*begin)(void);
    void (*end)(void);
    bool background; /* nobody waits for its jobs (removals): persist_others_wait */
};
#define PERSIST_GROUP_MAX 1024

struct persist_job {
    void (*run)(struct persist_job *job);  /* on the ordered queue's thread */
    void (*sync)(struct persist_job *job); /* persist_submit_sync only: first, on the sync
                                              queue's thread */
    const struct persist_group *group;     /* set by the submit functions */
    bool background;                       /* set by the submit functions: nobody waits
                                              for it (persist_others_wait) */
    struct persist_job *next;
};

enum persist_queue { PERSIST_ORDERED, PERSIST_SYNC };

int persist_start(char *err, size_t errlen);
/* Any thread: job->run on the ordered queue. Never blocks on the disk. */
void persist_submit(struct persist_job *job);
/* The same, the job one of `group`'s (see struct persist_group). */
void persist_submit_grouped(struct persist_job *job, const struct persist_group *group);
/* The same, a job that nobody waits for (a purge's files, a usage flush, the counters' and
 * failures' saves, the start's sweep of orphan files): see persist_others_wait. */
void persist_submit_background(struct persist_job *job);
/* Any thread: job->sync on the sync queue, then job->run on the ordered queue. */
void persist_submit_sync(struct persist_job *job);
/* The same, a job that nobody waits for (a download's sync every 16 MiB): job->run queued as a
 * background one, see persist_others_wait. */
void persist_submit_sync_background(struct persist_job *job);
/* Wait until every job submitted before this call has run (a sync job's follow-up included). */
void persist_flush(void);
/* Wait until every job submitted to the ordered queue before this call has run, not the sync
 * queue's (a large download's fsync): a change of names and rows is then on disk, for an
 * answer that promises it (a purge). Not from a persistence thread, nor a worker. */
void persist_settle(void);
/* Run what is queued (the sync queue first, then the ordered one), then end the threads. */
void persist_stop(void);
/* Whether anyone waits for the ordered queue: a job queued on it that is not a background one
 * (a new download's file, a completion's rename and row), or a caller in persist_flush or
 * persist_settle. Background removals go at the disk's pace for the hits' sake (pace.h) only
 * while nothing does. */
bool persist_others_wait(void);
/* The ordered queue's thread, between two steps of a background job: sleep `us` µs, less once
 * someone waits for the queue (persist_others_wait) or arca stops, then at once. Returns the µs
 * slept. */
int64_t persist_pause(int64_t us);
/* Whether persist_stop has been called: long chains of jobs (the orphan sweep) end early. */
bool persist_stopping(void);
/* Microseconds (monotonic_us) since persist_stop was called, or -1 while the queues run. */
int64_t persist_stopping_for(void);
/* Jobs submitted to `which` and not yet done (the one running included), for /metrics. */
size_t persist_depth(enum persist_queue which);
/* Whether the caller is the ordered queue's thread (for asserts). */
bool persist_on_thread(void);
/* Whether the caller is the sync queue's thread (for asserts). */
bool persist_on_sync_thread(void);
/* Whether the caller may use the index now: the ordered queue's thread while it runs, anyone
 * (main, a unit test) while it does not. index.c asserts it on every call. */
bool persist_owns_index(void);

#endif
