/*
 * fold.h — the spellings of one URL that arca keys apart but an origin may serve as one file,
 * folded together, for who may fetch: a rule that narrows allow-network must not be walked
 * around by writing `%66` for `f`, `//` for `/`, `;x=1` after a segment, or a dot at the end
 * of the host name (docs/SECURITY.md, "Rules (issue 52)").
 *
 * Contract: a pure function of its arguments, any thread. Only who may fetch reads the folded
 * form (terms.c): keys, the other terms and what is fetched keep the normal form.
 */
#ifndef ARCA_FOLD_H
#define ARCA_FOLD_H

#include <stddef.h>

/* The folded form of `url` (a normal form, url.h) into a new string: the host without its final
 * dots; in the path, runs of '/' as one, %-escapes of unreserved characters (RFC 3986 2.3)
 * decoded, each segment's parameters (";..." or "%3B..." to the segment's end) dropped, and the dot
 * segments that makes removed. NULL when it is `url` itself (the common case: nothing
 * allocated) or out of memory (*failed set then). */
char *fold_url(const char *url, int *failed);

#endif
