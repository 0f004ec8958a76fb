/* The prefix of a purge (url.h, url_purge_prefix): a URL in normal form, folded, without
 * userinfo, or a scheme alone when the admin says it means every URL of that scheme; and which
 * URLs are under it (url_under_prefix): their spelling as it is, or folded (fold.h). */
#include "url/url.h"
#include "url/fold.h"
#include "base/parse.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Whether `in` ends in an escape cut short ("%" or "%4"): such a prefix is read as a '%' of its
 * own (%25), so it would match none of the URLs the admin meant. */
static bool cut_escape(const char *in, size_t len)
{
    return (len >= 1 && in[len - 1] == '%') ||
           (len >= 2 && in[len - 2] == '%' && isxdigit((unsigned char)in[len - 1]));
}

/* Whether the fold cut `spelt`'s last segment into `folded`'s ("/pkg;v=2" into "/pkg"): then
 * only what goes on past it with a new segment, a parameter or a query is under it, never
 * "/pkgs" (url_under_prefix would take that as a prefix of the text). */
static bool fold_cut_last(const char *spelt, const char *folded)
{
    const char *a = strrchr(spelt, '/'), *b = strrchr(folded, '/');
    return a && b && strcmp(a, b) != 0;
}

static bool web_scheme(const struct url_parts *u)
{
    return url_scheme_is(u, "http") || url_scheme_is(u, "https");
}

/* out[size], a normal form, folded in place and without its userinfo. */
static int fold_normal(char *out, size_t size, bool *bounded, const char **why)
{
    struct url_parts u;
    int failed;
    char *folded = fold_url(out, &failed);
    if (bounded)
        *bounded = folded && fold_cut_last(out, folded);
    size_t n = folded ? strlen(folded) : 0;
    if (folded && n < size)
        memcpy(out, folded, n + 1);
    free(folded);
    if (failed || n >= size) {
        *why = failed ? "out of memory" : "prefix too long";
        return -1;
    }
    parse_url(out, strlen(out), &u); /* a login names no other objects: URLs are matched without */
    if (u.userinfo)
        memmove(out + (u.userinfo - out), u.host, strlen(u.host) + 1);
    return 0;
}

/* The normal form of `in` (a URL with a host) into out[size], folded, without its userinfo. */
static int normal_prefix(const char *in, size_t len, char *out, size_t size, bool *bounded,
                         const char **why)
{
    int status;
    if (url_normalize(in, len, out, size, &status, why) < 0)
        return -1;
    return fold_normal(out, size, bounded, why);
}

char *url_spelling(const char *url, int *failed)
{
    size_t len = strcspn(url, "#"), size = URL_BUF_SIZE(len + FOLD_ROOM);
    struct url_parts u;
    const char *why;
    char *out = malloc(size);
    *failed = !out;
    if (!out)
        return NULL;
    memcpy(out, url, len);
    out[len] = '\0';
    if (parse_url(out, len, &u) != URL_OK || !web_scheme(&u)) {
        free(out); /* none: only its own key names it */
        return NULL;
    }
    if (fold_normal(out, size, NULL, &why) < 0) { /* out of memory: the room is the fold's */
        *failed = 1;
        free(out);
        return NULL;
    }
    return out;
}

int url_purge_prefix(const char *in, bool all, char *out, size_t size, bool *bounded,
                     const char **why)
{
    if (bounded)
        *bounded = false;
    size_t len = strlen(in);
    struct url_parts u;
    parse_url(in, len, &u); /* its verdict aside: url_normalize judges the host */
    if (!web_scheme(&u)) {
        *why = "prefix must be an http:// or https:// URL";
        return -1;
    }
    /* nothing after the scheme but slashes: no host, so every URL of the scheme */
    if (u.authority[strspn(u.authority, "/")] == '\0') {
        if (!all) {
            *why = "prefix names no host: it matches every URL (all=1, or arca purge --all, to "
                   "purge them all)";
            return -1;
        }
        snprintf(out, size, "%s", url_scheme_is(&u, "https") ? "https://" : "http://");
        return 0;
    }
    if (cut_escape(in, len)) {
        *why = "prefix ends in a cut escape ('%' then fewer than two hex digits): it would match "
               "nothing; end it before the '%' or give the whole %XX";
        return -1;
    }
    if (size < URL_BUF_SIZE(len)) {
        *why = "prefix too long";
        return -1;
    }
    return normal_prefix(in, len, out, size, bounded, why);
}

/* Whether what follows a match, `next`, ends it as `end` asks: anything (a prefix), nothing (a
 * whole URL), or a new segment, a parameter or a query (a prefix whose last segment the fold
 * cut). A '#' is in no URL's normal form: what follows it names another object of the same URL
 * (a pypi page's JSON form, terms.h's REMOTE_JSON_KEY), which goes with it. */
static bool ends_as(char next, enum aim_end end)
{
    return end == AIM_PREFIX || next == '\0' || next == '#' ||
           (end == AIM_SEGMENT && (next == '/' || next == ';' || next == '?'));
}

/* `url` (parsed into *u) under `prefix` (its first len bytes), compared without the userinfo of
 * `url`: the prefix has none (url_purge_prefix); what follows it as `end` says. */
static bool spelt_under(const char *url, const struct url_parts *u, const char *prefix, size_t len,
                        enum aim_end end)
{
    size_t head = u->scheme ? (size_t)(u->authority - url) : 0;
    if (!u->userinfo || len <= head)
        return strncmp(url, prefix, len) == 0 && ends_as(url[len], end);
    return strncmp(url, prefix, head) == 0 && strncmp(u->host, prefix + head, len - head) == 0 &&
           ends_as(u->host[len - head], end);
}

/* Whether the fold of `url` (parsed into *u) may be under `prefix`, asked before it is folded:
 * a fold keeps the scheme, and the host and port when fold_keeps_host says so. */
static bool may_fold_under(const char *url, const struct url_parts *u, const char *prefix,
                           size_t len)
{
    size_t head = u->scheme ? (size_t)(u->authority - url) : 0;
    size_t host = (size_t)(u->path - u->host); /* and port */
    if (!u->scheme || strncmp(url, prefix, head) != 0)
        return false;
    return !fold_keeps_host(u) || len < head + host || strncmp(u->host, prefix + head, host) == 0;
}

/* A URL's fold goes in this on the stack: a purge asks of every object, under the store's
 * lock, and allocates only for one longer than about 3,000 bytes. */
#define FOLD_ON_STACK 16384

/* url_under_prefix, url_is_spelling or purge_aims_at, as `end` says. */
static bool matches(const char *url, const char *prefix, size_t len, enum aim_end end)
{
    char stack[FOLD_ON_STACK], *buf = stack;
    size_t need = FOLD_BUF_SIZE(strlen(url));
    struct url_parts u, f;
    const char *folded;
    bool under;
    /* the common URL, its own fold without a login: compared as it is, neither parsed nor folded
     * (a purge's walk asks of every object under the lock: 0.25 µs an object parsed and folded,
     * a third of the walk's time at a million objects; 0.1 µs compared as it is). Not one with
     * a '%': a key an older arca stored unnormalised ("/a/../b%20") is its own fold by
     * fold_keeps_url, yet the fold normalises it, and a purge of its normal form takes it. */
    if (!strchr(url, '%') && fold_keeps_url(url))
        return strncmp(url, prefix, len) == 0 && ends_as(url[len], end);
    parse_url(url, strlen(url), &u); /* its verdict aside: a normal form's parts */
    if (spelt_under(url, &u, prefix, len, end))
        return true;
    if (!may_fold_under(url, &u, prefix, len))
        return false;
    if (need > sizeof(stack) && !(buf = malloc(need)))
        return false;
    folded = fold_url_in(url, buf, need);
    under = folded && parse_url(folded, strlen(folded), &f) == URL_OK &&
            spelt_under(folded, &f, prefix, len, end);
    if (buf != stack)
        free(buf);
    return under;
}

bool url_under_prefix(const char *url, const char *prefix, size_t len)
{
    return matches(url, prefix, len, AIM_PREFIX);
}

bool url_is_spelling(const char *url, const char *folded, size_t len)
{
    return matches(url, folded, len, AIM_WHOLE);
}

bool purge_aims_at(const char *url, const struct purge_aim *aim)
{
    return matches(url, aim->text, aim->len, aim->end);
}
