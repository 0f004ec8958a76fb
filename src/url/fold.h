/*
 * fold.h — the spellings of one URL that arca keys apart but an origin may serve as one file,
 * folded together: for who may fetch, a rule that narrows allow-network must not be walked
 * around by writing `%66` for `f`, `//` for `/`, `;x=1` after a segment, or a dot at the end
 * of the host name (docs/SECURITY.md, "Rules (issue 52)"); for a purge by prefix, every
 * spelling of the path goes with the one the admin names (url_under_prefix, url.h).
 *
 * Contract: pure functions of their arguments, any thread. Only who may fetch and the purge read
 * the folded form: keys, the other terms and what is fetched keep the normal form.
 */
#ifndef ARCA_FOLD_H
#define ARCA_FOLD_H

#include "url/url.h"

#include <stddef.h>

/* The folded form of `url` (a normal form, url.h) into a new string: the host without its final
 * dots, an IP literal in its one spelling (127.1, [::ffff:127.0.0.1] and 2130706433 are
 * 127.0.0.1); in the path, runs of '/' as one, %-escapes of unreserved characters (RFC 3986 2.3)
 * decoded, each segment's parameters (";..." or "%3B..." to the segment's end) dropped, and the
 * dot segments that makes removed. NULL when it is `url` itself (the common case: nothing
 * allocated) or out of memory (*failed set then). */
char *fold_url(const char *url, int *failed);

/* Whether `url` (a normal form) is its own fold and has no userinfo and no '#': nothing in it
 * may fold (one pass, no copy). False does not say that its fold differs (fold_url does). */
bool fold_keeps_url(const char *url);

/* Whether the fold leaves the host of a URL parsed into *u (parse.h) as it is: a name without
 * a final dot, or an IPv4 address in its one spelling (not an IPv6 literal, folded to be sure). */
struct url_parts;
bool fold_keeps_host(const struct url_parts *u);

/* Room past a URL's length for its fold (an IP literal may be written longer). */
#define FOLD_ROOM 50
/* What fold_url_in needs for a URL of n bytes. */
#define FOLD_BUF_SIZE(n) ((n) + FOLD_ROOM + URL_BUF_SIZE((n) + FOLD_ROOM))
/* The same into buf[size], allocating nothing: buf, holding the folded form; NULL when it is
 * `url` itself, or when size is under FOLD_BUF_SIZE(strlen(url)) (the caller then has none). */
const char *fold_url_in(const char *url, char *buf, size_t size);

#endif
