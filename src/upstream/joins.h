/*
 * joins.h — who a waiting download is for: a client's key (struct who), and the joins that
 * came before their download.
 *
 * Contract: a client's request may find a download's object (store_lookup's LOOKUP_COALESCED)
 * and post its join (upstream_join) before the request that made the object has posted the
 * download itself: two workers, the first descheduled between its lookup and its post. On a
 * loaded CI machine that lost the join, and the lab's download waited behind another client's
 * share. The upstream thread keeps such a join here (joins_keep) by its object's address and
 * generation (object_gen: by the time the join is read the address may be another object's),
 * and the download takes it when it arrives (joins_take). A join whose download never arrives
 * (it had started and ended already) is never taken: it stays until JOINS_EARLY later ones have
 * replaced it, so a flood of them costs nothing but the oldest of them. Upstream thread only;
 * nothing here locks or allocates.
 */
#ifndef ARCA_JOINS_H
#define ARCA_JOINS_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* Who a download counts against under --max-downloads-per-client: a client's address key
 * (upstream.c's client_key), or arca's own downloads (`own`: resumes, prefetches), which no
 * address has. */
struct who {
    uint8_t addr[16];
    uint8_t own;
};

static inline bool same_client(const struct who *a, const struct who *b)
{
    return !memcmp(a->addr, b->addr, sizeof(a->addr)) && a->own == b->own;
}

/* Joins kept at once: a join waits here only while its download's request is between its
 * lookup and its post (microseconds, a descheduled worker's milliseconds). */
#define JOINS_EARLY 64

struct early_join {
    const void *obj; /* NULL: a free slot */
    uint32_t gen;
    struct who client;
};

/* Zeroed: empty. */
struct early_joins {
    struct early_join slot[JOINS_EARLY];
    unsigned next; /* the slot the next join takes, the oldest's once all are taken */
    int held;      /* slots taken: 0 makes joins_take free */
};

/* `client` joined the download of the object at `obj` of generation `gen`, which has not
 * arrived: kept, in place of the oldest kept when all JOINS_EARLY are. */
void joins_keep(struct early_joins *e, const void *obj, uint32_t gen, const struct who *client);
/* The download of `obj` (`gen`) arrived: the clients kept for it, in the order they joined,
 * into out (at most `max`; beyond, they are dropped), and their slots freed. Returns how many. */
int joins_take(struct early_joins *e, const void *obj, uint32_t gen, struct who *out, int max);

#endif
