/*
 * reg_manifest.h — what a manifest's bytes list, read with jansson: an image manifest
 * (schemaVersion 2, Docker's `application/vnd.docker.distribution.manifest.v2+json` or OCI's
 * `application/vnd.oci.image.manifest.v1+json`: its config and layers, `config.digest` then
 * `layers[].digest`; a schemaVersion 1 manifest's `fsLayers[].blobSum`), or an index (OCI's
 * image index, Docker's manifest list: `manifests[].digest`, the manifests it names). Told
 * apart by what the document holds (`manifests`; `config` or `layers`; `fsLayers`), its
 * `mediaType` kept as said. Only sha256 digests are listed (arca keeps no other); anything
 * else, or bytes that are no JSON object, is REG_MANIFEST_UNKNOWN.
 *
 * Contract: pure, any thread; the digests are the caller's to free (reg_manifest_free).
 */
#ifndef ARCA_REG_MANIFEST_H
#define ARCA_REG_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

/* Entries listed at most: a manifest of the spec's 4 MiB bound holds fewer. */
#define REG_MANIFEST_ENTRIES 20000

enum reg_manifest_kind { REG_MANIFEST_UNKNOWN, REG_MANIFEST_IMAGE, REG_MANIFEST_INDEX };

struct reg_manifest {
    enum reg_manifest_kind kind;
    char media_type[128];   /* its mediaType as written, "" when it says none */
    uint8_t (*digests)[32]; /* an image's config and layers, an index's manifests (malloc'd) */
    size_t n;
};

/* `len` bytes of `data` into *out: 0; -1 (kind UNKNOWN, nothing listed) when they are no
 * manifest of these, or out of memory. */
int reg_manifest_read(const char *data, size_t len, struct reg_manifest *out);
void reg_manifest_free(struct reg_manifest *m);
/* The kind's word: "manifest", "index", "unknown". */
const char *reg_manifest_kind_name(enum reg_manifest_kind kind);

#endif
