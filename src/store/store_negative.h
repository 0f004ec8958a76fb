/*
 * store_negative.h — negative answers kept briefly (docs/CACHING.md, "Negative answers"): a 404
 * or 410 upstream gave a download, answered for its key for the negative ttl its terms gave it,
 * without asking upstream again. For lookup.c, store_open.c and store_purge.c.
 *
 * Contract: lock held (object.h), or main alone at the end (negative_free). A bounded table in
 * memory, never in the index: lost at a restart, when a slot is taken by another key, when a
 * download of the key begins, and by a purge. A cached answer under the same terms as any other:
 * none kept from a download its terms do not store or that a purge came upon, none given past
 * its ttl, nor past the asking request's own (a rule shortened since, its Cache-Control's
 * max-age), nor to a request that takes no kept answer (store = no, no-store) or whose negative
 * ttl is 0 (its rule's, the option's, its own bound, and always for a URL with credentials:
 * rules/terms.c). One that came from a parent arca counts from when the parent got it.
 */
#ifndef ARCA_STORE_NEGATIVE_H
#define ARCA_STORE_NEGATIVE_H

#include "store/object.h"
#include "url/url.h"

#include <stdbool.h>
#include <stdint.h>

/* The store's hook for a failed download (struct object_hooks.failed): remembered for the
 * failures listing, and kept as a negative answer when its status and terms say so. */
void store_failed(const struct object *obj);
/* The negative answer kept for `key`, for a request whose terms are `keep`, at `now`: true with
 * *meta describing it (FAILED, its status and reason; created and ttl: when upstream said so,
 * and for how long it answers this request). None for a request whose terms take no kept
 * answer: store = no, no-store, older than its max-age (no-cache: 0), past its negative ttl. */
bool negative_find(const char *key, const struct object_keep *keep, int64_t now,
                   struct object_meta *meta);
/* Drop the entry of `key`: true when there was one. */
bool negative_forget(const char *key);
/* Drop the entries `aim` takes: how many. */
int64_t negative_forget_aimed(const struct purge_aim *aim);
void negative_free(void);

#endif
