/*
 * resolve.h — a URL reference resolved against the URL it was found at (RFC 3986 5.2): what a
 * link on a fetched page (a package index's file link, its <base href>) names.
 *
 * Contract: a pure function, any thread, no allocation. The base and the reference are split by
 * parse_url() (base/parse.h), the one reader of a URL; the resolution is syntactic: the target's
 * host is not judged here, nor are its path's bytes escaped, so its reader checks it (parse_url,
 * url_normalize) before it fetches or compares it.
 */
#ifndef ARCA_RESOLVE_H
#define ARCA_RESOLVE_H

#include <stddef.h>

/* `ref` (NUL-terminated) resolved against the absolute http or https URL `base` into out[size],
 * NUL-terminated: an absolute reference ("g:h", "https://h/p") as it is but for its dot segments
 * (a "://" one's path), a network-path one ("//h/p") under the base's scheme, an absolute-path
 * one ("/p") under its authority, a relative-path one ("../p") merged with the base's path, an
 * empty path taking the base's path (and its query unless it gives one); dot segments removed
 * (5.2.4), the reference's fragment kept, the base's dropped. Returns 0, or -1 when the base is
 * not an absolute http(s) URL that parse_url reads as one or the result does not fit. */
int url_resolve(const char *base, const char *ref, char *out, size_t size);

#endif
