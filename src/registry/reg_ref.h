/*
 * reg_ref.h — an image reference as people write it (`docker.io/library/debian:12`, `debian`,
 * `lab/team/tool@sha256:…`, `registry.lab.example:5000/team/tool:2`): the configured registry
 * it names (its first component: a NAME, an alias or the host[:port] of a registry's URL,
 * registries_for_ns; none: the default registry), the repository as that registry names it
 * (Docker Hub's `library/` added to a one-component name), the tag or digest (`latest` when
 * none; `name:tag@digest` is the digest), and its manifest's upstream URL: what `arca rules
 * test`, an image's purge and the images listing read a reference as.
 *
 * Contract: any thread once registries_init ran (the table is read-only then); no allocation.
 */
#ifndef ARCA_REG_REF_H
#define ARCA_REG_REF_H

#include "registry/reg_name.h"
#include "registry/registries.h"

#include <stdbool.h>
#include <stddef.h>

/* `ref` read into *out (its path: REG_MANIFEST, the repository as the registry names it):
 * REG_OK; REG_NAME_UNKNOWN when its first component names a registry (docker's grammar: a
 * '.', a ':' or localhost) that arca does not mirror, or no registry is set up; another code
 * when it is no reference (too long, outside the grammar). `why` says it in one line. */
enum reg_error reg_ref_parse(const char *ref, struct registry_ask *out, char *why, size_t why_size);
/* The upstream URL of a manifest `a` names, into out[size]: false when it has no room. */
bool reg_ref_url(const struct registry_ask *a, char *out, size_t size);

#endif
