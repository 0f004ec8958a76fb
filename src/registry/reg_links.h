/*
 * reg_links.h — which blobs and manifests a registry's repository is known to hold, so that a
 * layer kept for one repository answers another that holds it from the store, the upstream not
 * asked (docs/REGISTRY.md, "Digests"). A link (the registry's URL, a repository, a digest) is
 * made when a manifest of that repository has come whole and checked, from whatever source
 * brought it (each digest it lists: its config and layers, an index's manifests), and when the
 * registry itself said yes to that digest for that repository (the HEAD a digest hit asks). A
 * link is the upstream's word once given: it stays, across restarts (the index's `links`),
 * whatever the upstream does after (down, 429, a realm refusing), as distribution's proxy
 * keeps its repositories' links to blobs.
 *
 * Contract: reg_links_load runs on main while it owns the index, before any other thread asks;
 * after it any thread may ask and add (one mutex, held for a probe of the set, never across a
 * call out). The set holds 16 bytes of a sha256 over a link's three parts per link (a collision
 * would take 2^64 tries); the index's rows hold the strings. A new link's row is handed to the
 * persistence thread; a link is asked only with its registry's URL and a repository of the
 * grammar (registries_ask_of's), so no other URL gets one.
 */
#ifndef ARCA_REG_LINKS_H
#define ARCA_REG_LINKS_H

#include "registry/registries.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Whether `a`'s repository is known to hold `digest`. */
bool reg_links_has(const struct registry_ask *a, const uint8_t digest[32]);
/* The registry said `a`'s repository has the digest `a` asks by (a blob's, or a manifest's). */
void reg_links_confirmed(const struct registry_ask *a);
/* A manifest of `a`'s repository, whole and checked (`body`, `len` bytes): a link for every
 * digest it lists. The number of digests it listed, or -1 when it is no manifest or index
 * (not JSON, no digest where one belongs): nothing linked then. */
int reg_links_note_manifest(const struct registry_ask *a, const char *body, size_t len);
/* Main, once the index is open and before the persistence threads start: the links kept. */
void reg_links_load(void);
/* Links held, for the status and the tests of the module. */
size_t reg_links_count(void);

#endif
