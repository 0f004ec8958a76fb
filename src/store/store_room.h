/*
 * store_room.h — the room objects take on disk, for the files of store/ that claim it: the
 * quota is st.quota (the one quota: SIGHUP sets it, store_set_quota), and room is made by
 * evicting the least recently used complete objects nobody streams. The public side (quota,
 * expiry, the usage flush, totals) is store.h's.
 *
 * Contract: lock held; never blocks on the disk (removals go to the persistence thread).
 */
#ifndef ARCA_STORE_ROOM_H
#define ARCA_STORE_ROOM_H

#include <stdint.h>

/* Evict until `bytes` more fit under the quota: 0, or -1 when the objects left are all being
 * streamed (or there are none). */
int room_make(int64_t bytes);

#endif
