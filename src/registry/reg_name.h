/*
 * reg_name.h — the distribution API's grammar, pure: a repository name, a reference (a tag or
 * a digest), a digest, and a /v2/ path taken apart into what it asks. Names follow the
 * distribution spec (path components of [a-z0-9] separated by '.', '_', '__' or '-'+, joined
 * by '/', 255 characters at most, no empty component, no "..", nothing percent-encoded); tags
 * [A-Za-z0-9_][A-Za-z0-9._-]{0,127}; digests "sha256:" and 64 lower-case hex digits (another
 * algorithm is refused as unsupported).
 *
 * Contract: pure functions of their arguments, any thread, fuzzed (fuzz/fuzz_reg_name.c).
 */
#ifndef ARCA_REG_NAME_H
#define ARCA_REG_NAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REG_REPO_MAX 256
#define REG_REF_MAX 136

enum reg_what {
    REG_BASE,     /* /v2/ itself */
    REG_MANIFEST, /* /v2/<name>/manifests/<reference> */
    REG_BLOB,     /* /v2/<name>/blobs/<digest> */
    REG_TAGS,     /* /v2/<name>/tags/list */
};

/* What a /v2/ path asks, once taken apart. */
struct reg_path {
    enum reg_what what;
    char repo[REG_REPO_MAX]; /* the repository as the registry names it */
    char ref[REG_REF_MAX];   /* a tag or a digest ("" for REG_BASE, REG_TAGS) */
    bool by_digest;          /* ref is a digest */
    uint8_t digest[32];      /* by_digest: its sha256 */
};

/* The error codes of the distribution spec a refusal names. */
enum reg_error {
    REG_OK,
    REG_NAME_INVALID,
    REG_TAG_INVALID,
    REG_DIGEST_INVALID,
    REG_UNSUPPORTED,
    REG_NAME_UNKNOWN, /* a registry namespace not configured */
};

/* Whether `name` (`len` bytes) is a repository name of the grammar. */
bool reg_name_valid(const char *name, size_t len);
/* Whether `tag` is a tag of the grammar. */
bool reg_tag_valid(const char *tag, size_t len);
/* A digest "sha256:<64 hex>" into out[32]: REG_OK; another algorithm REG_UNSUPPORTED; a
 * malformed one REG_DIGEST_INVALID. */
enum reg_error reg_digest_parse(const char *s, size_t len, uint8_t out[32]);
/* `path` (after "/v2/", no query) into *out, with a one-line why on refusal; a digest of another
 * algorithm in it is REG_DIGEST_INVALID (the spec's code), its why saying unsupported. */
enum reg_error reg_path_parse(const char *path, struct reg_path *out, char *why, size_t size);
/* The distribution spec's word for `e` ("NAME_INVALID", ...). */
const char *reg_error_code(enum reg_error e);
/* Whether a manifest's Content-Type `type` ("" or NULL: unknown) is an image index's (OCI's
 * index, Docker's manifest list), in any case, its parameters aside: a list of images, not one. */
bool reg_media_is_index(const char *type);

#endif
