/* What a remote's URL is, by kind (remote_kind.h); the path check. */
#include "remote/remote_kind.h"
#include "base/parse.h"

#include <stdio.h>
#include <string.h>

const char *remote_class_name(enum remote_class c)
{
    static const char *const names[] = {"any", "metadata", "immutable", "pass", "page"};
    return (size_t)c < sizeof(names) / sizeof(names[0]) ? names[c] : "any";
}

/* The last segment of `path` (len bytes): its start, its length in *n. */
static const char *last_segment(const char *path, size_t len, size_t *n)
{
    size_t i = len;
    while (i > 0 && path[i - 1] != '/')
        i--;
    *n = len - i;
    return path + i;
}

static bool starts(const char *s, size_t n, const char *word)
{
    size_t w = strlen(word);
    return n >= w && !memcmp(s, word, w);
}

/* Whether `path` has the segment `seg` ("/seg/" inside, or "/seg" at its end). */
static bool has_segment(const char *path, size_t len, const char *seg)
{
    size_t n = strlen(seg);
    for (size_t i = 0; i + n + 1 <= len; i++)
        if (path[i] == '/' && !memcmp(path + i + 1, seg, n) &&
            (i + 1 + n == len || path[i + 1 + n] == '/'))
            return true;
    return false;
}

/* apt: Release files and indexes are metadata (anything under dists/ but by-hash/, where
 * installer images and i18n files move with the suite too); by-hash/ and pool/ never change. */
static enum remote_class apt_class(const char *path, size_t len)
{
    static const char *const indexes[] = {"Packages",   "Sources",  "Translation", "Contents",
                                          "Components", "Commands", "icons-"};
    size_t n;
    const char *last = last_segment(path, len, &n);
    if (has_segment(path, len, "by-hash"))
        return REMOTE_IMMUTABLE;
    if ((n == 9 && !memcmp(last, "InRelease", 9)) || (n == 7 && !memcmp(last, "Release", 7)) ||
        (n == 11 && !memcmp(last, "Release.gpg", 11)) || has_segment(path, len, "dists"))
        return REMOTE_META;
    for (size_t i = 0; i < sizeof(indexes) / sizeof(indexes[0]); i++)
        if (starts(last, n, indexes[i]))
            return REMOTE_META;
    return REMOTE_IMMUTABLE;
}

/* pypi: a page under a `simple` segment (a folder, index.html, or a name without an extension)
 * and the JSON API are metadata; files (with their extension) never change. */
static enum remote_class pypi_class(const char *path, size_t len)
{
    size_t n;
    const char *last = last_segment(path, len, &n);
    if (has_segment(path, len, "json") && len >= 5 && !memcmp(path + len - 5, "/json", 5))
        return REMOTE_META;
    if (!has_segment(path, len, "simple") && !(len >= 7 && !memcmp(path, "/simple", 7)))
        return REMOTE_IMMUTABLE;
    if (n == 0 || (n == 10 && !memcmp(last, "index.html", 10)) || !memchr(last, '.', n))
        return REMOTE_PAGE;
    return REMOTE_IMMUTABLE;
}

static bool ends(const char *s, size_t n, const char *word)
{
    size_t w = strlen(word);
    return n >= w && !memcmp(s + n - w, word, w);
}

/* go: a module's list and @latest move; a version's .info, .mod and .zip never do; the checksum
 * database passes through (the go command checks its signed tree itself). */
static enum remote_class go_class(const char *path, size_t len)
{
    if (starts(path, len, "/sumdb/"))
        return REMOTE_PASS;
    if (ends(path, len, "/@v/list") || ends(path, len, "/@latest"))
        return REMOTE_META;
    if (has_segment(path, len, "@v") &&
        (ends(path, len, ".info") || ends(path, len, ".mod") || ends(path, len, ".zip")))
        return REMOTE_IMMUTABLE;
    return REMOTE_ANY;
}

enum remote_class remote_classify(enum remote_kind kind, const char *path, size_t len)
{
    switch (kind) {
    case REMOTE_APT:
        return apt_class(path, len);
    case REMOTE_PYPI:
        return pypi_class(path, len);
    case REMOTE_GO:
        return go_class(path, len);
    case REMOTE_FILES:
    default:
        return REMOTE_ANY;
    }
}

bool remote_named_digest(enum remote_kind kind, const char *path, size_t len, uint8_t out[32])
{
    static const char mark[] = "/by-hash/SHA256/";
    char hex[65];
    size_t n, m = sizeof(mark) - 1;
    const char *last = last_segment(path, len, &n);
    if (kind != REMOTE_APT || n != 64 || (size_t)(last - path) < m || memcmp(last - m, mark, m))
        return false;
    memcpy(hex, last, 64);
    hex[64] = '\0';
    return parse_sha256_hex(hex, out) == 0;
}

bool remote_apt_release_of(const char *path, size_t len, char *out, size_t size)
{
    size_t n, dir;
    const char *last = last_segment(path, len, &n);
    if (apt_class(path, len) != REMOTE_META || ends(path, len, "/InRelease") ||
        ends(path, len, "/Release") || ends(path, len, "/Release.gpg"))
        return false;
    dir = (size_t)(last - path); /* a flat repository's: its own folder */
    for (size_t i = 0; i + 7 <= len; i++) {
        if (memcmp(path + i, "/dists/", 7))
            continue;
        const char *suite = path + i + 7, *end = memchr(suite, '/', len - i - 7);
        if (end && end < last)
            dir = (size_t)(end - path) + 1;
        break;
    }
    int k = snprintf(out, size, "%.*sInRelease", (int)dir, path);
    return k > 0 && (size_t)k < size;
}

/* The byte an escape at s (its '%') stands for, -1 when broken. */
static int unescape_at(const char *s, size_t left)
{
    int hi, lo;
    if (left < 3 || (hi = hex_digit(s[1])) < 0 || (lo = hex_digit(s[2])) < 0)
        return -1;
    return hi * 16 + lo;
}

/* Whether a decoded segment (n bytes) is "." or "..", with or without ';' parameters. */
static bool dot_segment(const char *seg, size_t n)
{
    const char *semi = memchr(seg, ';', n);
    if (semi)
        n = (size_t)(semi - seg);
    return (n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.');
}

/* Whether byte c after byte prev (decoded) begins or continues an overlong UTF-8 sequence
 * ("%c0%ae" is a '.' to a decoder that takes them): never valid UTF-8, in no file's name. */
static bool overlong(int prev, int c)
{
    return c == 0xC0 || c == 0xC1 || (prev == 0xE0 && c >= 0x80 && c < 0xA0) ||
           (prev == 0xF0 && c >= 0x80 && c < 0x90);
}

#define LEAVES "the path leaves the remote's base (a '.' or '..' segment)"
#define OVERLONG "an overlong UTF-8 sequence in the path"

/* A segment once decoded (n bytes) decoded again in place, `depth` times at most, each time
 * split at the '/' and '\\' decoding made: why an upstream (or a proxy in front of it) that
 * decodes twice would leave the base ("%252e%252e"), NULL when none would. Decoding only
 * shrinks a segment: each piece is decoded where it lies. */
static const char *decoded_again(char *seg, size_t n, int depth)
{
    size_t o = 0, piece = 0;
    int prev = 0, c;
    if (depth == 0 || !memchr(seg, '%', n))
        return NULL;
    for (size_t i = 0; i <= n; i++, prev = c) {
        c = i == n ? '/' : (unsigned char)seg[i];
        int e = c == '%' ? unescape_at(seg + i, n - i) : -1;
        if (e >= 0) {
            c = e;
            i += 2;
        }
        if (overlong(prev, c))
            return OVERLONG;
        if (c != '/' && c != '\\') {
            seg[o++] = (char)c;
            continue;
        }
        const char *why = dot_segment(seg + piece, o - piece)
                              ? LEAVES
                              : decoded_again(seg + piece, o - piece, depth - 1);
        if (why)
            return why;
        piece = o;
    }
    return NULL;
}

bool remote_path_check(const char *path, size_t len, const char **why)
{
    char seg[REMOTE_SEGMENT_MAX];
    size_t n = 0;
    int prev = 0, c;
    for (size_t i = 0; i <= len; i++, prev = c) {
        c = i == len ? '/' : (unsigned char)path[i];
        if (c == '%') {
            if ((c = unescape_at(path + i, len - i)) < 0) {
                *why = "a broken %-escape in the path";
                return false;
            }
            i += 2;
        }
        if (c < 0x20 || c == 0x7f) {
            *why = "a control byte in the path";
            return false;
        }
        if (overlong(prev, c)) {
            *why = OVERLONG;
            return false;
        }
        if (c != '/' && c != '\\') {
            if (n == sizeof(seg)) {
                *why = "a path segment too long for a remote";
                return false;
            }
            seg[n++] = (char)c;
            continue;
        }
        if ((*why = dot_segment(seg, n) ? LEAVES : decoded_again(seg, n, 3)))
            return false;
        n = 0;
    }
    return true;
}
