/*
 * remote_kind.h — what a remote's URL is, by its kind (config.h's enum remote_kind): metadata,
 * fresh for --remote-meta-ttl then revalidated with a conditional request; immutable, kept for its
 * ttl and never asked again meanwhile; a path that passes through (never kept); or, for `files`,
 * whatever the rules say. Also the path check every remote request passes first.
 *
 * Contract: pure functions of their arguments (no globals, no allocation): any thread; fuzzed
 * (remote_path_check) and unit-tested (tests/unit/test_remote_kind.c).
 */
#ifndef ARCA_REMOTE_KIND_H
#define ARCA_REMOTE_KIND_H

#include "config/config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum remote_class {
    REMOTE_ANY,       /* `files`, or a path the kind does not know: the rules decide */
    REMOTE_META,      /* apt's Release files and indexes, go's lists: --remote-meta-ttl */
    REMOTE_IMMUTABLE, /* apt's pool/ and by-hash/, pypi's files, go's .info/.mod/.zip */
    REMOTE_PASS,      /* go's checksum database: asked upstream each time, never kept */
    REMOTE_PAGE,      /* pypi's simple pages: metadata whose file links arca rewrites */
};

/* The word for a class, as the rules test says it: "any", "metadata", "immutable", "pass",
 * "page". */
const char *remote_class_name(enum remote_class c);

/* The class of `path` (len bytes: an upstream URL's path below its remote's base, "" or
 * "/...", without its query) under `kind`. */
enum remote_class remote_classify(enum remote_kind kind, const char *path, size_t len);

/* Whether `path` names the sha256 of its bytes (apt's by-hash/SHA256/HEX): into out. */
bool remote_named_digest(enum remote_kind kind, const char *path, size_t len, uint8_t out[32]);

/* apt: the path of the InRelease that lists the index at `path` (its suite's, dists/SUITE/, or a
 * flat repository's in its own folder) into out[size]; false when `path` is no index (a Release
 * file itself, a pool file) or it does not fit. */
bool remote_apt_release_of(const char *path, size_t len, char *out, size_t size);

/* The longest segment of a remote's path, decoded: longer than any file's name. */
#define REMOTE_SEGMENT_MAX 4096

/* Whether `path` (len bytes, as the client sent it, after the remote's NAME: "" or "/...", no
 * query) stays below the remote's base: decoded, no segment is "." or ".." (nor one a ';'
 * parameter or an encoded '/' or '\\' hides), nor becomes one decoded again, up to three more
 * times ("%252e%252e": an upstream or its front proxy that decodes twice); no escape is broken,
 * no byte is a control, no UTF-8 sequence is overlong ("%c0%ae"), no segment is longer than
 * REMOTE_SEGMENT_MAX. False with a one-line reason. */
bool remote_path_check(const char *path, size_t len, const char **why);

#endif
