/*
 * store_room.h — the room objects take on disk, for the files of store/ that claim it: the
 * quota is st.quota (the one quota: SIGHUP sets it, store_set_quota), and room is made by
 * evicting complete objects nobody streams: expired copies kept past their ttl first, then fresh
 * ones, least recently used first within each (store_room.c). Pinned objects (a rule's pin =
 * yes) are on an LRU list of their own that eviction walks only once no unpinned object can go:
 * then they go too, least recently used first, rather than refuse every download for good. The
 * ttl still applies to them: expiry removes a pinned object as any other (pin is about room,
 * not freshness). The public side (quota,
 * expiry, the usage flush, totals) is store.h's. Expired objects stay past their ttl to be
 * revalidated (--keep-expired) or to answer while upstream fails (stale-if-error): how long each
 * may answer stale is asked here too.
 *
 * Contract: lock held (object_set_staleness: or a NEW object its maker alone holds); never
 * blocks on the disk (removals go to the persistence thread).
 */
#ifndef ARCA_STORE_ROOM_H
#define ARCA_STORE_ROOM_H

#include "persist/index.h"
#include "store/store.h"

#include <stdbool.h>
#include <stdint.h>

/* Evict until `bytes` more fit under the quota, or, over it (the quota shrank:
 * store_evict_over_quota evicts down to it a tick at a time), until they fit under the usage
 * now: 0, or -1 when the objects left are all being streamed (or there are none). */
int room_make(int64_t bytes);

/* The terms of a lookup that may act on `obj` (in the table), or of the download it creates:
 * from now on its stale windows when the origin says none, its maximum size, its pin (moving a
 * complete object between LRU lists), and for a download whether it is stored. A complete
 * object whose terms say store = no is the lookup's to remove (lookup.c), not this. */
void store_take_keep(struct object *obj, const struct object_keep *keep);
/* A download purged while under way (store_purge_prefix): its readers finish, it is not kept,
 * and no later request's terms make it kept; its row says so, for a restart. */
void object_forsake(struct object *obj);
/* What its terms decided for `obj`, in a row's fields (index.h: the pin, the stale windows, a
 * download's max-object-size and store = no), for the index to keep; a download's row follows
 * them as they change (store_take_keep queues it). */
void object_row_keep(const struct object *obj, struct index_row *row);
/* A row's terms on an object the index gives back at start (complete or resumed): NEW, its maker
 * alone holds it. */
void object_take_row_keep(struct object *obj, const struct index_row *row);
/* Why an object its terms say not to store leaves, as the removal's log line gives it. */
#define STORE_NOT_STORED "not stored: its rule says store = no"

/* An object's origin's word on answering stale (seconds, -1 not said, 0 never; capped at
 * INT32_MAX). */
void object_set_staleness(struct object *obj, int64_t if_error, int64_t while_revalidate);
/* Its origin's stale-if-error, else its terms' (store_take_keep), else --stale-if-error. */
int64_t object_stale_if_error(const struct object *obj);
/* Whether an expired object may still answer at `now` when its refresh fails: within its
 * stale-if-error of its expiry, and never once purged. */
bool object_may_stale(const struct object *obj, int64_t now);
/* Whether an expired object may answer at `now` for `cause`: within its
 * stale-while-revalidate for STALE_REVALIDATE, within its stale-if-error otherwise; never once
 * purged. */
bool object_may_answer(const struct object *obj, enum stale_cause cause, int64_t now);

#endif
