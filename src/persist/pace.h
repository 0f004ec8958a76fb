/*
 * pace.h — the pace of the removals on the ordered persistence thread (persist.h): the object
 * files that an eviction, an expiry or a purge unlinks.
 *
 * Contract:
 * - pace_unlink(path) is unlink(2). On the ordered queue's thread, once the unlinks since its
 *   last pause have taken PACE_BURST_US of wall time, it sleeps so that they take at most
 *   PACE_SHARE_PCT percent of the thread's time (pace_owed says how long).
 * - It never sleeps while anyone waits for the ordered queue (persist_others_wait: a job that is
 *   not a background one is queued, such as a new download's file, or a caller waits in
 *   persist_flush or persist_settle), while arca stops, or off the ordered thread (start-up, a
 *   unit test); one that begins to wait ends the pause at once (persist_pause). Nothing then
 *   waits for the removals' pace but the removals and a purge's walk that keeps pace with them.
 * - Its callers (object.c's removals, store_purge.c's) hold no lock while they unlink: a pause
 *   holds nobody up but the queue.
 *
 * Why: on a disk that frees blocks at unlink (ext4 mounted with `discard`, as here), another
 * process's unlinks at full pace raised the p99 of hits two to three times, whether arca or
 * nginx served them; at 40 % of the time, hardly (docs/ARCHITECTURE.md, "One owner per
 * resource", has the figures).
 */
#ifndef ARCA_PACE_H
#define ARCA_PACE_H

#include <stdint.h>

/* Wall time of unlinks between two pauses, and their share of the thread's time. */
#define PACE_BURST_US 2000
#define PACE_SHARE_PCT 40

struct pace {
    int64_t busy_us; /* unlinks' wall time since the last pause owed */
};

/* An unlink took `took_us`: the pause owed now in µs (then the count starts again), or 0. */
int64_t pace_owed(struct pace *p, int64_t took_us);

int pace_unlink(const char *path);

/* Microseconds the removals slept for their pace since the start (/metrics). */
int64_t pace_paused_us(void);

#endif
