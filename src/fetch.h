/*
 * fetch.h — the fetch thread: every upstream transfer runs on one curl multi handle.
 *
 * Contract: fetch_start() may be called from any thread; it queues the object and wakes the
 * fetch thread. The fetch thread owns every FETCHING object's state (through store_write.c) and
 * is the only thread that writes the index while running: it also flushes usage figures and
 * counters every second and removes expired objects. fetch_stop() fails downloads still running
 * (their clients see a cut stream, nothing is kept) and saves everything before returning.
 */
#ifndef ARCA_FETCH_H
#define ARCA_FETCH_H

#include "config.h"
#include "store.h"

int fetch_init(const struct config *cfg, char *err, size_t errlen);
void fetch_start(struct object *obj);
void fetch_stop(void);

#endif
