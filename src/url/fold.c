/* fold_url (fold.h). */
#include "url/fold.h"
#include "url/url.h"
#include "base/parse.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int hex(int c)
{
    return isdigit(c) ? c - '0' : isxdigit(c) ? tolower(c) - 'a' + 10 : -1;
}

/* What a %-escape at p (3 bytes available) folds to: an unreserved character (RFC 3986 2.3), or
 * '/' for %2F and %5C (origins that decode them take them for a path's separator: S3's keys,
 * Python's and IIS's file servers); 0: it stays. */
static char unescaped(const char *p)
{
    int hi = hex(p[1]), lo = hi >= 0 ? hex(p[2]) : -1, c = hi * 16 + lo;
    if (lo < 0)
        return 0;
    if (c == '/' || c == '\\')
        return '/';
    return isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' ? (char)c : 0;
}

/* Whether a segment's parameters start at p: a ';', or a %3B, which a server that decodes the
 * path before it reads the parameters takes for one (/private%3Bx=1/a is /private/a there). */
static bool parameters_at(const char *p, const char *end)
{
    return *p == ';' ||
           (end - p >= 3 && p[0] == '%' && p[1] == '3' && (p[2] == 'B' || p[2] == 'b'));
}

/* The path [p, end) into out (after its first '/'): escapes folded, one '/' for each run, and
 * each segment's parameters (from a ';' or a %3B to the segment's end) dropped: Tomcat, Jetty
 * and Spring serve /private/a for /private;x=1/a and /pub/..;/private/a, so the dot segments
 * are resolved after the parameters go. */
static char *fold_path(const char *p, const char *end, char *out)
{
    while (p < end) {
        char c = *p == '%' && end - p >= 3 ? unescaped(p) : 0;
        size_t took = c ? 3 : 1;
        if (parameters_at(p, end)) {
            p += strcspn(p, "/?");
            continue;
        }
        if (!c)
            c = *p;
        if (!(c == '/' && out[-1] == '/'))
            *out++ = c;
        p += took;
    }
    return out;
}

/* The host [h, h + len) as an IP address literal in its one spelling: IPv4 in any form an
 * origin's resolver takes (127.1, 0x7f.0.0.1, 2130706433, 127.000.000.001) as a dotted quad;
 * IPv6 without its zone (%25lo: the address is the same), as inet_ntop writes it, in brackets,
 * or as the IPv4 address it reaches (::ffff:127.0.0.1, NAT64, 6to4: as the upstream policy
 * judges them, addr_embedded_v4). 0 when it is no IP literal. */
static size_t canonical_ip(const char *h, size_t len, char *out, size_t size)
{
    char text[256], addr[INET6_ADDRSTRLEN];
    struct in6_addr a6;
    struct in_addr a4;
    bool v6 = len > 2 && h[0] == '[' && h[len - 1] == ']';
    if (len >= sizeof(text) || (!v6 && strspn(h, "0123456789abcdefxABCDEFX.") < len))
        return 0;
    snprintf(text, sizeof(text), "%.*s", (int)(v6 ? len - 2 : len), v6 ? h + 1 : h);
    if (v6)
        text[strcspn(text, "%")] = '\0'; /* the zone */
    if (v6 ? inet_pton(AF_INET6, text, &a6) != 1 : inet_aton(text, &a4) == 0)
        return 0;
    if (v6) {
        addr_embedded_v4(a6.s6_addr);
        v6 = !addr_is_v4_mapped(a6.s6_addr);
        memcpy(&a4, a6.s6_addr + 12, 4);
    }
    if (!inet_ntop(v6 ? AF_INET6 : AF_INET, v6 ? (void *)&a6 : (void *)&a4, addr, sizeof(addr)))
        return 0;
    int n = snprintf(out, size, v6 ? "[%s]" : "%s", addr);
    return n > 0 && (size_t)n < size ? (size_t)n : 0;
}

/* The URL's authority into out: its userinfo as it is, its host folded (an IP literal in its
 * one spelling, a name without its final dots), its port as it is. */
static char *fold_authority(const struct url_parts *u, char *out)
{
    const char *host = u->host, *hend = host + u->host_len, *path = u->path;
    memcpy(out, u->authority, (size_t)(host - u->authority));
    out += host - u->authority;
    /* the final dots go first: "127.1." is 127.0.0.1 */
    size_t ip = canonical_ip(host, u->name_len, out, INET6_ADDRSTRLEN + 3);
    if (ip) {
        out += ip;
    } else {
        memcpy(out, host, u->name_len);
        out += u->name_len;
    }
    memcpy(out, hend, (size_t)(path - hend));
    return out + (path - hend);
}

/* Whether [h, end) is an IPv4 address in its one spelling: four decimal parts of 0 to 255,
 * no leading zero. */
static bool dotted_quad(const char *h, const char *end)
{
    int parts = 0;
    while (h < end && parts < 4) {
        size_t n = 0;
        while (h + n < end && h[n] >= '0' && h[n] <= '9')
            n++;
        int v = 0;
        for (size_t i = 0; i < n && i < 3; i++)
            v = v * 10 + (h[i] - '0');
        if (n == 0 || n > 3 || (n > 1 && h[0] == '0') || v > 255)
            return false;
        h += n;
        parts++;
        if (h < end && *h++ != '.')
            return false;
    }
    return parts == 4 && h == end && end[-1] != '.';
}

bool fold_keeps_host(const struct url_parts *u)
{
    const char *host = u->host, *hend = host + u->host_len;
    if (host[0] == '[' || u->name_len < u->host_len)
        return false;
    for (const char *p = host; p < hend; p++) /* only what an address written otherwise may hold */
        if (!isxdigit((unsigned char)*p) && *p != '.' && *p != 'x' && *p != 'X')
            return true;
    return dotted_quad(host, hend);
}

/* Whether anything in the URL may fold, asked first so that the common URL costs one pass and
 * no copy: an escape, a ';' or a "//" in the path, a userinfo, a host fold_keeps_host does not
 * keep. */
static bool may_fold(const struct url_parts *u)
{
    for (const char *p = u->path; p < u->path + u->path_len; p++)
        if (*p == '%' || *p == ';' || (*p == '/' && p[1] == '/'))
            return true;
    return u->userinfo || !fold_keeps_host(u);
}

/* Room for the URL and an IP literal written longer than it was (::1 as 0:0::1 is not). */
_Static_assert(FOLD_ROOM >= INET6_ADDRSTRLEN + 4, "FOLD_ROOM holds an IP literal");

/* The parsed `url` (a normal form that may fold) folded into raw[strlen(url) + FOLD_ROOM], then
 * its normal form into out[URL_BUF_SIZE(strlen(url) + FOLD_ROOM)]: whether that differs. */
static bool fold_into(const char *url, const struct url_parts *u, char *raw, char *out)
{
    const char *why, *end = u->path + u->path_len;
    int status;
    char *w = fold_authority(u, raw + (u->authority - url));
    memcpy(raw, url, (size_t)(u->authority - url));
    *w++ = '/';
    w = fold_path(u->path + 1, end, w);
    strcpy(w, end);
    size_t size = URL_BUF_SIZE(strlen(url) + FOLD_ROOM);
    /* nothing folded, or a form arca refuses: the URL as it is decides */
    return url_normalize(raw, strlen(raw), out, size, &status, &why) == 0 && strcmp(out, url);
}

/* Whether `url` may fold (parsed into *u): a normal form with something to fold. A URL arca
 * refuses is decided as it is. */
static bool foldable(const char *url, struct url_parts *u)
{
    return parse_url(url, strlen(url), u) == URL_OK && u->path_len > 0 && may_fold(u);
}

/* Whether the escape at p stays as it is in a fold and a normal form: two hex digits in upper
 * case (as a normal form writes them), neither an unreserved character nor a separator
 * (unescaped) nor a parameter's start (%3B): %2B, %20, %25 stay (a wheel's '+', a space). */
static bool escape_stays(const char *p)
{
    return isxdigit((unsigned char)p[1]) && isxdigit((unsigned char)p[2]) &&
           !islower((unsigned char)p[1]) && !islower((unsigned char)p[2]) && !unescaped(p) &&
           !parameters_at(p, p + 3);
}

/* What fold_keeps_url asks of each byte, by a table (a load asks it of every row): where the
 * authority ends, what it may not hold, what an address written otherwise may hold, where the
 * path ends, what a path that folds holds. */
enum {
    K_AUTH_END = 1,  /* '/', '?', '#', NUL */
    K_AUTH_BAD = 2,  /* '@' (a userinfo), '[' (an IP literal): the whole answer's to give */
    K_ADDRESS = 4,   /* hex digits, '.', 'x', 'X' */
    K_PATH_END = 8,  /* '?', NUL */
    K_PATH_BAD = 16, /* '%' (an escape escape_stays does not keep), ';', '#' */
};
static const unsigned char byte_class[256] = {
    ['\0'] = K_AUTH_END | K_PATH_END,
    ['/'] = K_AUTH_END,
    ['?'] = K_AUTH_END | K_PATH_END,
    ['#'] = K_AUTH_END | K_PATH_BAD,
    ['@'] = K_AUTH_BAD,
    ['['] = K_AUTH_BAD,
    ['%'] = K_PATH_BAD,
    [';'] = K_PATH_BAD,
    ['.'] = K_ADDRESS,
    ['x'] = K_ADDRESS,
    ['X'] = K_ADDRESS,
    ['0'] = K_ADDRESS,
    ['1'] = K_ADDRESS,
    ['2'] = K_ADDRESS,
    ['3'] = K_ADDRESS,
    ['4'] = K_ADDRESS,
    ['5'] = K_ADDRESS,
    ['6'] = K_ADDRESS,
    ['7'] = K_ADDRESS,
    ['8'] = K_ADDRESS,
    ['9'] = K_ADDRESS,
    ['a'] = K_ADDRESS,
    ['b'] = K_ADDRESS,
    ['c'] = K_ADDRESS,
    ['d'] = K_ADDRESS,
    ['e'] = K_ADDRESS,
    ['f'] = K_ADDRESS,
    ['A'] = K_ADDRESS,
    ['B'] = K_ADDRESS,
    ['C'] = K_ADDRESS,
    ['D'] = K_ADDRESS,
    ['E'] = K_ADDRESS,
    ['F'] = K_ADDRESS,
};

bool fold_keeps_url(const char *url)
{
    /* what may_fold asks, without parse_url's whole parse: the authority up to its path, its
     * host before the port (one that holds only what an address may: dotted_quad judges it),
     * the path up to the query; a '#' anywhere is not kept (no normal form has one) */
    const unsigned char *p = (const unsigned char *)strchr(url, ':'), *host, *hend = NULL;
    unsigned char all = K_ADDRESS;
    if (!p || p[1] != '/' || p[2] != '/')
        return false;
    for (p = host = p + 3; !(byte_class[*p] & K_AUTH_END); p++) {
        if (byte_class[*p] & K_AUTH_BAD)
            return false;
        if (*p == ':' && !hend)
            hend = p;
        else if (!hend)
            all &= byte_class[*p];
    }
    if (!hend)
        hend = p;
    if (hend == host || hend[-1] == '.' ||
        (all && !dotted_quad((const char *)host, (const char *)hend)))
        return false;
    for (; !(byte_class[*p] & K_PATH_END); p++) { /* the path */
        if (*p == '%' && escape_stays((const char *)p))
            p += 2;
        else if ((byte_class[*p] & K_PATH_BAD) || (*p == '/' && p[1] == '/'))
            return false;
    }
    return !strchr((const char *)p, '#');
}

char *fold_url(const char *url, int *failed)
{
    struct url_parts u;
    size_t len = strlen(url) + FOLD_ROOM;
    char *raw, *out;
    *failed = 0;
    if (!foldable(url, &u))
        return NULL;
    raw = malloc(len);
    out = raw ? malloc(URL_BUF_SIZE(len)) : NULL;
    if (!out)
        *failed = 1;
    else if (!fold_into(url, &u, raw, out)) {
        free(out);
        out = NULL;
    }
    free(raw);
    return out;
}

const char *fold_url_in(const char *url, char *buf, size_t size)
{
    struct url_parts u;
    size_t len = strlen(url) + FOLD_ROOM;
    if (size < FOLD_BUF_SIZE(strlen(url)) || !foldable(url, &u))
        return NULL;
    return fold_into(url, &u, buf + URL_BUF_SIZE(len), buf) ? buf : NULL;
}
