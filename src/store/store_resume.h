/*
 * store_resume.h — downloads cut by a restart continue from the bytes already on disk
 * (docs/CACHING.md, "Resume after a restart"). Internal to store/.
 */
#ifndef ARCA_STORE_RESUME_H
#define ARCA_STORE_RESUME_H

#include "persist/index.h"
#include "store/object.h"

/* Loader callback (index.h): take up a partial row whose file still holds what it says. */
bool resume_partial(const struct index_row *row, void *arg);
/* Main at start: the partials taken up go into the table as FETCHING (or are dropped). */
void adopt_resumed(void);
void drop_resumed(void);
/* Persistence thread: reopen a resumed download's file, cut it to the bytes known synced and
 * digest them. Returns 0, or the status with the reason in err. */
int reopen_partial(struct object *obj, char *err, size_t errlen);
/* Upstream thread, lock not held: have the row record what a restart needs to resume, and the
 * file synced every SYNC_STEP bytes. */
void submit_started(struct object *obj);
/* The download went from `before` to `after` bytes: past a SYNC_STEP, have its file synced (one
 * sync at a time; the persistence thread queues one again for a step crossed meanwhile, unless
 * the body started over from zero since). Upstream thread: `after` counts the current body's
 * bytes, written. */
void maybe_sync(struct object *obj, int64_t before, int64_t after);

#endif
