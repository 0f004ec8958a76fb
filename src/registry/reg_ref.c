/* An image reference read (reg_ref.h): docker's grammar for which registry its first component
 * names, then the distribution grammar (reg_name.h) for the rest. */
#include "registry/reg_ref.h"

#include <stdio.h>
#include <string.h>

/* "sha256:" and 64 hex digits: the longest reference after a name */
#define REF_TAIL_MAX REG_REF_MAX

/* The registry `ref`'s first component names, *rest past it; the default when it names none
 * (no '/', or a component with no '.' or ':' that is not localhost and no configured name);
 * NULL with *named when it is a registry's name that none configured answers to. */
static const struct registry *registry_of(const char *ref, const char **rest, bool *named)
{
    size_t first = strcspn(ref, "/");
    const struct registry *r = ref[first] == '/' ? registries_for_ns(ref, first) : NULL;
    *named = ref[first] == '/' && (r || memchr(ref, '.', first) || memchr(ref, ':', first) ||
                                   (first == 9 && !strncmp(ref, "localhost", 9)));
    *rest = *named ? ref + first + 1 : ref;
    return *named ? r : registries_default();
}

/* `name[:tag][@digest]` as the /v2/ path of its manifest, "library/" before a one-component
 * name of Docker Hub's, into path[size]: false when it is too long for a reference. */
static bool manifest_path(const struct registry *r, const char *ref, char *path, size_t size)
{
    const char *at = strchr(ref, '@');
    size_t name_len = at ? (size_t)(at - ref) : strlen(ref);
    const char *colon = memchr(ref, ':', name_len), *slash = memrchr(ref, '/', name_len);
    if (colon && slash && colon < slash) /* a port: no such thing past the first component */
        colon = NULL;
    size_t repo_len = colon ? (size_t)(colon - ref) : name_len;
    const char *tail = at ? at + 1 : colon ? colon + 1 : "latest";
    bool library = r->docker_hub && !memchr(ref, '/', repo_len);
    if (repo_len >= REG_REPO_MAX || strlen(tail) >= REF_TAIL_MAX)
        return false;
    int n = snprintf(path, size, "%s%.*s/manifests/%s", library ? "library/" : "", (int)repo_len,
                     ref, tail);
    return n > 0 && (size_t)n < size;
}

enum reg_error reg_ref_parse(const char *ref, struct registry_ask *out, char *why, size_t why_size)
{
    char path[REG_REPO_MAX + REF_TAIL_MAX + 32], err[200];
    const char *rest;
    bool named;
    memset(out, 0, sizeof(*out));
    const struct registry *r = registry_of(ref, &rest, &named);
    if (!r) {
        size_t first = strcspn(ref, "/");
        if (named)
            snprintf(why, why_size, "registry '%.*s' is not one arca mirrors",
                     (int)(first < 100 ? first : 100), ref);
        else
            snprintf(why, why_size, "no registry set up");
        return REG_NAME_UNKNOWN;
    }
    if (!manifest_path(r, rest, path, sizeof(path))) {
        snprintf(why, why_size, "image reference too long");
        return REG_NAME_INVALID;
    }
    enum reg_error e = reg_path_parse(path, &out->path, err, sizeof(err));
    if (e != REG_OK) {
        snprintf(why, why_size, "not an image reference: %s", err);
        return e == REG_NAME_UNKNOWN ? REG_NAME_INVALID : e;
    }
    out->r = r;
    return REG_OK;
}

bool reg_ref_url(const struct registry_ask *a, char *out, size_t size)
{
    int n = snprintf(out, size, "%s/v2/%s/manifests/%s", a->r->url, a->path.repo, a->path.ref);
    return n > 0 && (size_t)n < size;
}
