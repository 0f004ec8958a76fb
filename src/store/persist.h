/*
 * persist.h — the persistence thread: the one owner of the SQLite index (index.h), of fsync and
 * of unlink while arca serves.
 *
 * Contract:
 * - Between persist_start and persist_stop, index.h is called from this thread only, and so are
 *   fsync() and unlink() of object files. Others hand it jobs and never wait on the disk, except
 *   persist_flush, which waits for the jobs queued before it.
 * - Jobs run one at a time, in the order they were submitted (a job submitted under the store
 *   lock is therefore ordered with every change of the table: a file removed for an object that
 *   left the table is removed before a new download of the same URL creates its own).
 * - Before persist_start and after persist_stop, a job runs at once on the thread submitting it
 *   (start-up and shutdown are single-threaded then, so the index still has one user at a time).
 * - A job owns its memory: run() frees it.
 */
#ifndef ARCA_PERSIST_H
#define ARCA_PERSIST_H

#include <stdbool.h>
#include <stddef.h>

struct persist_job {
    void (*run)(struct persist_job *job);
    struct persist_job *next;
};

int persist_start(char *err, size_t errlen);
/* Any thread. Never blocks on the disk. */
void persist_submit(struct persist_job *job);
/* Wait until every job submitted before this call has run. */
void persist_flush(void);
/* Run what is queued, then end the thread. */
void persist_stop(void);
/* Whether persist_stop has been called: long chains of jobs (the orphan sweep) end early. */
bool persist_stopping(void);
/* Whether the caller is the persistence thread (for asserts). */
bool persist_on_thread(void);
/* Whether the caller may use the index now: the persistence thread while it runs, anyone
 * (main, a unit test) while it does not. index.c asserts it on every call. */
bool persist_owns_index(void);

#endif
