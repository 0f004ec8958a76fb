/*
 * store_twins.h — identical objects (docs/CACHING.md, "Same file, other URL"): complete objects
 * indexed by digest, twins sharing one file counted once against the quota. Internal to store/;
 * every call with the store lock held. object.c reaches twins_join and twins_leave only through its
 * hooks (struct object_hooks, set by store_open).
 */
#ifndef ARCA_STORE_TWINS_H
#define ARCA_STORE_TWINS_H

#include "store/object.h"

/* Room in the digest index for `at_least` objects: 0, or -1 out of memory. */
int digests_reserve(size_t at_least);
/* A complete object in the table: into the digest index beside its twins; a twin's file
 * becomes its file too (linked on the persistence thread) and counts once. */
void twins_join(struct object *obj);
/* Leaving the table: out of the index (its quota share passes to a twin). */
void twins_leave(struct object *obj);
/* A complete object in the table with digest `want` that may answer a URL other than its own
 * for this client: never a private one (signed, a credential in its URL, or under a bucket arca
 * signs for), and only one whose own URL `allowed` accepts (store.h's twin_allowed_fn): the
 * first such on the digest's chain, asking `allowed` of TWINS_ASKED objects at most; NULL when
 * none. An expired one will do: its ttl is about what its own URL serves now, while its bytes
 * are vouched for by the digest. */
#define TWINS_ASKED 32
struct object *twins_shareable(const uint8_t want[32], twin_allowed_fn *allowed, const void *arg);
/* The same for the expired copies downloads are refreshing (out of the table and the index while
 * their refresh runs, their file still open): the download in the table whose kept copy has
 * digest `want`, is not purged, and may answer as twins_shareable's would; NULL when none. Its
 * copy's bytes are the digest's whatever the refresh brings (a tag moved upstream, an origin
 * down): a registry's manifest by digest answers from a tag's copy through an outage. Walks
 * the downloads in flight, REFRESHING_WALKED at most. */
#define REFRESHING_WALKED 4096
struct object *twins_refreshing(const uint8_t want[32], twin_allowed_fn *allowed, const void *arg);

#endif
