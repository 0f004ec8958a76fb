/*
 * store_list.h — the failures the listings show (a ring of the last STORE_FAILURES_KEPT failed
 * downloads, kept in the index across restarts). Internal to store/; store_list.c also serves
 * store.h's listings and outcomes.
 */
#ifndef ARCA_STORE_LIST_H
#define ARCA_STORE_LIST_H

#include "store/object.h"

/* Lock held: remember a failed download (object.c calls it through its `failed` hook). */
void note_failure(const struct object *obj);
/* Main at start: the failures the index remembers. */
void load_failures(void);
/* Main at the end. */
void free_failures(void);

#endif
