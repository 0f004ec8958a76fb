/* The distribution API's grammar (reg_name.h): names, tags, digests and /v2/ paths, checked
 * byte by byte with explicit bounds, nothing allocated. */
#include "registry/reg_name.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static bool alnum_lower(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* How many separator bytes start at s[i] ('.', '_', '__' or '-'+): 0 when none does. */
static size_t separator_len(const char *s, size_t i, size_t len)
{
    if (s[i] == '.')
        return 1;
    if (s[i] == '_')
        return i + 1 < len && s[i + 1] == '_' ? 2 : 1;
    size_t n = 0;
    while (i + n < len && s[i + n] == '-')
        n++;
    return n;
}

/* One path component: [a-z0-9]+ ((separator)[a-z0-9]+)*. */
static bool component_valid(const char *s, size_t len)
{
    size_t i = 0;
    if (len == 0 || !alnum_lower(s[0]))
        return false;
    while (i < len) {
        while (i < len && alnum_lower(s[i]))
            i++;
        if (i == len)
            return true;
        size_t sep = separator_len(s, i, len);
        if (sep == 0 || i + sep >= len || !alnum_lower(s[i + sep]))
            return false;
        i += sep;
    }
    return true;
}

bool reg_name_valid(const char *name, size_t len)
{
    if (len == 0 || len >= REG_REPO_MAX)
        return false;
    for (size_t start = 0; start <= len;) {
        const char *slash = memchr(name + start, '/', len - start);
        size_t end = slash ? (size_t)(slash - name) : len;
        if (!component_valid(name + start, end - start))
            return false;
        start = end + 1;
    }
    return true;
}

static bool tag_char(char c, bool first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           (!first && (c == '.' || c == '-'));
}

bool reg_tag_valid(const char *tag, size_t len)
{
    if (len == 0 || len > 128)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!tag_char(tag[i], i == 0))
            return false;
    return true;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1; /* upper case too: the spec's sha256 encoding is lower case */
}

/* The spec's algorithm ([a-z0-9]+ joined by '+', '.', '_' or '-') and encoded part
 * ([a-zA-Z0-9=_-]+): a digest of another algorithm, well formed, is unsupported, not invalid. */
static bool other_digest(const char *s, size_t len)
{
    const char *colon = memchr(s, ':', len);
    if (!colon || colon == s || (size_t)(colon - s) + 1 >= len)
        return false;
    for (const char *p = s; p < colon; p++)
        if (!alnum_lower(*p) &&
            (!strchr("+._-", *p) || p == s || p + 1 == colon || !alnum_lower(p[1])))
            return false;
    for (const char *p = colon + 1; p < s + len; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '=' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

enum reg_error reg_digest_parse(const char *s, size_t len, uint8_t out[32])
{
    if (len == 7 + 64 && !memcmp(s, "sha256:", 7)) {
        for (size_t i = 0; i < 32; i++) {
            int hi = hex_value(s[7 + 2 * i]), lo = hex_value(s[8 + 2 * i]);
            if (hi < 0 || lo < 0)
                return REG_DIGEST_INVALID;
            out[i] = (uint8_t)(hi << 4 | lo);
        }
        return REG_OK;
    }
    if (len > 7 && !memcmp(s, "sha256:", 7))
        return REG_DIGEST_INVALID; /* the right algorithm, a wrong encoding */
    return other_digest(s, len) ? REG_UNSUPPORTED : REG_DIGEST_INVALID;
}

static enum reg_error refuse(enum reg_error e, char *why, size_t size, const char *text)
{
    snprintf(why, size, "%s", text);
    return e;
}

/* The repository part (before the last two components) into out->repo. */
static enum reg_error take_repo(const char *path, size_t len, struct reg_path *out, char *why,
                                size_t size)
{
    if (!reg_name_valid(path, len))
        return refuse(REG_NAME_INVALID, why, size,
                      "repository name outside the distribution grammar (lower-case components "
                      "of [a-z0-9] joined by '.', '_', '__' or '-', 255 bytes at most)");
    memcpy(out->repo, path, len);
    out->repo[len] = '\0';
    return REG_OK;
}

/* A manifest's reference: a digest (it holds ':') or a tag. */
static enum reg_error take_reference(const char *ref, size_t len, bool blob, struct reg_path *out,
                                     char *why, size_t size)
{
    if (blob || memchr(ref, ':', len)) {
        enum reg_error e = reg_digest_parse(ref, len, out->digest);
        if (e == REG_UNSUPPORTED) /* the spec's word for it: a digest arca cannot check */
            return refuse(REG_DIGEST_INVALID, why, size,
                          "digest algorithm not supported (sha256 only)");
        if (e != REG_OK)
            return refuse(e, why, size, "malformed digest: expected sha256:<64 lower-case hex>");
        out->by_digest = true;
    } else if (!reg_tag_valid(ref, len))
        return refuse(REG_TAG_INVALID, why, size,
                      "tag outside the grammar [A-Za-z0-9_][A-Za-z0-9._-]{0,127}");
    memcpy(out->ref, ref, len);
    out->ref[len] = '\0';
    return REG_OK;
}

/* What a path outside the pull API is told: the three paths it has. */
#define NOT_A_PATH                                                                                 \
    "not a registry path: /v2/<name>/manifests/<reference>, /v2/<name>/blobs/<digest> or "         \
    "/v2/<name>/tags/list"

enum reg_error reg_path_parse(const char *path, struct reg_path *out, char *why, size_t size)
{
    static const char tags[] = "/tags/list";
    size_t len = strlen(path), tags_len = sizeof(tags) - 1;
    memset(out, 0, sizeof(*out));
    if (why && size)
        why[0] = '\0';
    if (len == 0) {
        out->what = REG_BASE;
        return REG_OK;
    }
    if (len > tags_len && !strcmp(path + len - tags_len, tags)) {
        out->what = REG_TAGS;
        return take_repo(path, len - tags_len, out, why, size);
    }
    /* <repo>/<manifests|blobs>/<reference>: a reference holds no '/' */
    const char *ref = strrchr(path, '/');
    if (!ref || ref == path)
        return refuse(REG_NAME_INVALID, why, size, NOT_A_PATH);
    size_t ref_len = len - (size_t)(ref + 1 - path);
    const char *kind = ref;
    while (kind > path && kind[-1] != '/')
        kind--;
    size_t kind_len = (size_t)(ref - kind);
    if (kind == path || ref_len == 0 || ref_len >= REG_REF_MAX)
        return refuse(ref_len >= REG_REF_MAX ? REG_TAG_INVALID : REG_NAME_INVALID, why, size,
                      ref_len >= REG_REF_MAX ? "reference too long" : NOT_A_PATH);
    if (kind_len == 9 && !memcmp(kind, "manifests", 9))
        out->what = REG_MANIFEST;
    else if (kind_len == 5 && !memcmp(kind, "blobs", 5))
        out->what = REG_BLOB;
    else
        return refuse(REG_NAME_INVALID, why, size, NOT_A_PATH);
    enum reg_error e = take_repo(path, (size_t)(kind - 1 - path), out, why, size);
    if (e != REG_OK)
        return e;
    return take_reference(ref + 1, ref_len, out->what == REG_BLOB, out, why, size);
}

const char *reg_error_code(enum reg_error e)
{
    switch (e) {
    case REG_OK:
        return "";
    case REG_NAME_INVALID:
        return "NAME_INVALID";
    case REG_TAG_INVALID:
        return "TAG_INVALID";
    case REG_DIGEST_INVALID:
        return "DIGEST_INVALID";
    case REG_UNSUPPORTED:
        return "UNSUPPORTED";
    case REG_NAME_UNKNOWN:
        return "NAME_UNKNOWN";
    }
    return "UNKNOWN";
}

bool reg_media_is_index(const char *type)
{
    static const char *const lists[] = {
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json"};
    size_t len = type ? strcspn(type, "; \t") : 0;
    for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
        if (len == strlen(lists[i]) && !strncasecmp(type, lists[i], len))
            return true;
    return false;
}
