/*
 * images.h — the images the store keeps (docs/API.md, "Images"), read from the store itself:
 * every complete object whose URL is a configured registry's manifest (registries_ask_of) is
 * a manifest kept, its bytes read from its file (reg_manifest.h: an image's config and layers,
 * an index's manifests); every one whose URL is a registry's blob is a blob kept, by its
 * digest, whichever repository's URL brought it (a listing's bytes count a digest kept under
 * any /v2/.../blobs/ URL: those bytes are in the store; a purge takes registries' blobs only). An
 * image is a repository of a registry: its tags (each the digest of the manifest its tag's object
 * holds), the digests kept without a tag (an index's children, a pull by digest), the bytes of its
 * manifests and of the blobs they list that are kept, when it was last pulled (its manifests'
 * latest use).
 *
 * A purge of a reference (a tag, or a digest) drops that tag's object and the repository's
 * objects of its digest (by digest, and every tag of it when the reference is the digest), the
 * children of an index no tag nor other index kept in the repository names, and the blobs
 * those manifests list that no other manifest kept (any repository) lists: a base layer
 * another image shares stays. Every object of a blob's digest goes, whichever repository's URL
 * keys it. Not a snapshot: a manifest fetched during the purge that lists a blob it drops
 * fetches that blob again.
 *
 * Contract: any thread but a worker (both walk the whole table and read manifests' files):
 * http_images.c's and http_purge.c's offload threads. What a client sees is what it may fetch
 * (resources_listed, as the resources' listing); a purge is the admin's and sees everything.
 */
#ifndef ARCA_IMAGES_H
#define ARCA_IMAGES_H

#include "registry/registries.h"
#include "store/store.h"

#include <jansson.h>
#include <stdint.h>
#include <sys/socket.h>

/* Images a page of the listing holds. */
#define IMAGES_PER_PAGE 50
/* Manifests a listing reads at most (each a file): past them the listing says "truncated". */
#define IMAGES_MANIFESTS_LISTED 20000

/* Page `page` (from 1) of the images `client` may see, most recently pulled first, as the
 * listing's JSON; NULL with *status (404: no such page, 500) and *why. */
json_t *images_listing(const struct sockaddr *client, int64_t page, unsigned int *status,
                       const char **why);

/* What a purge of an image came to: the manifest objects and the blob digests it dropped, the
 * blob digests it kept for another manifest, and the store's own count (objects, bytes,
 * downloads not kept, left). */
struct image_purge {
    char digest[72]; /* the manifest digest the reference named ("sha256:...") */
    int64_t manifests, blobs, shared;
    struct purge_result store;
};
/* Purge the image `ref` names (reg_ref.h's: a manifest, by tag or digest): 0; -1 when no
 * manifest of it is kept (nothing done); -2 out of memory (nothing done). */
int images_purge(const struct registry_ask *ref, struct image_purge *out);

#endif
