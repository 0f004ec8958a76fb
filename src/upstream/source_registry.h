/*
 * source_registry.h — the registry kind of source's record and its pure judgements
 * (source_registry.c). What a registry URL asks is the download's terms' (terms.h's `registry`,
 * decided once); the record holds what its answers said, for one download.
 */
#ifndef ARCA_SOURCE_REGISTRY_H
#define ARCA_SOURCE_REGISTRY_H

#include "registry/registries.h"
#include "upstream/source_req.h"

#include <stdbool.h>
#include <stdint.h>

struct transfer;

/* What a registry's answers said, for one download. */
struct registry_pull {
    struct transfer *t; /* its download (an authorisation's callback finds it) */
    bool head;          /* this attempt asks HEAD: a revalidation */
    bool head_changed;  /* its HEAD said another digest: the next attempt GETs */
    char said[72];      /* the answer's Docker-Content-Digest, "sha256:<hex>" ("" none) */
    char etag[76];      /* `said` quoted: the ETag its manifest is kept under */
    /* PROBING: its authorisation is asked (reg_auth_ensure), and what came of it */
    bool waiting, in_choose;
    int auth_status;
    char auth_why[300];
    bool reauthed; /* a 401 had its token dropped and asked again (once a download) */
    bool again;    /* ... this attempt's: the next source step asks for a new one */
};

/* The registry's side of a probe of what `a` asks (source_req.h): a HEAD with its Authorization;
 * `a` copied into the probe's own record. 0, or -1 out of memory. */
int source_registry_probe_req(const struct registry_ask *a, struct source_req *out);

/* The registry's judgements, pure (their units: tests/unit/test_source_registry.c). */
/* Whether a HEAD's `said` Docker-Content-Digest is the manifest kept under ETag `kept`. */
bool source_registry_unchanged(const char *kept, const char *said);
/* Whether a 2xx to the HEAD revalidating the copy of what `a` asks (kept under ETag `kept`; the
 * HEAD said `said`) renews it: a digest's always (its bytes cannot change), a tag's when its
 * digest is unchanged. */
bool source_registry_renews(const struct registry_ask *a, const char *said, const char *kept);
/* Whether bytes of sha256 `digest` are what a tag's answer said of them (`said`, its
 * Docker-Content-Digest, "" none): NULL, or why not. The digest a URL names is checked by the
 * core, whatever source brought the bytes (transfer_course.c). */
const char *source_registry_vouch(const struct registry_ask *a, const char *said,
                                  const uint8_t digest[32]);

#endif
