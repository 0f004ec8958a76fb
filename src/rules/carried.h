/*
 * carried.h — the URLs a URL carries in its query, for who may fetch: a cache in front of
 * another (arca's own fetch API, a KissCache) fetches the URL named in its query for whoever
 * asks it, with the asker's address as its client. Whoever may have a URL that carries another
 * must be allowed that other one too, or a rule that narrows is walked around through a cache
 * whose rules grant the asker's address more (docs/SECURITY.md, "The parent as a relay").
 *
 * Contract: a pure function of its arguments, any thread; it allocates while it walks and
 * frees before it returns.
 */
#ifndef ARCA_CARRIED_H
#define ARCA_CARRIED_H

#include <stdbool.h>
#include <stddef.h>

/* How deep URLs carried in carried URLs are followed; one deeper is refused. */
#define CARRIED_DEPTH 4
/* How many carried URLs one URL may hold, all cuts of all levels counted; more are refused. */
#define CARRIED_BUDGET 64

/* Call `each` with the normal form (url.h) of every absolute http:// or https:// URL `url` (a
 * normal form) carries: each query parameter's value (or a parameter without '=', whole), cut
 * where any reader may cut it (at ';', '&' or the query's end), percent-decoded up to
 * CARRIED_DEPTH times until it reads as one (every parameter: any cache may take any name), and
 * the URLs those carry in turn. Returns 0 when `each` returned 0 for every one, the first other
 * value `each` returned, or -1 when a value that reads as such a URL is not one arca can read,
 * URLs nest deeper than CARRIED_DEPTH, there are more than CARRIED_BUDGET, or out of memory:
 * closed, never open. */
int carried_urls(const char *url, int (*each)(const char *normal, void *ctx), void *ctx);
/* Whether one parameter's value (`len` bytes at v) reads, percent-decoded up to CARRIED_DEPTH
 * times, as an absolute http:// or https:// URL: a URL carried_urls would walk to. */
bool carried_value_is_url(const char *v, size_t len);

#endif
