/*
 * upstream.h — the upstream thread: every upstream transfer runs on one curl multi handle.
 *
 * Contract: upstream_fetch() may be called from any thread; it queues the object and wakes the
 * upstream thread. The upstream thread drives every download (through store.h's upstream-thread
 * functions): it asks the persistence thread for the file, appends, decides on retries and
 * resumes with upstream_response.h, and hands a finished object over to be made durable. Every
 * second it also hands over usage figures and counters and evicts expired objects; it never
 * touches SQLite, fsync or unlink itself. upstream_stop() fails downloads still running (their
 * clients see a cut stream, nothing is kept) and hands everything over before returning.
 */
#ifndef ARCA_UPSTREAM_H
#define ARCA_UPSTREAM_H

#include "config.h"
#include "store.h"

int upstream_init(const struct config *cfg, char *err, size_t errlen);
void upstream_fetch(struct object *obj);
void upstream_stop(void);

#endif
