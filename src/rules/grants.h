/*
 * grants.h — signed URLs that upstream has accepted, remembered for a while, so that a hit through
 * a signed URL is confirmed with upstream once, not on every request (docs/CACHING.md, "Signed
 * URLs").
 *
 * Contract: any thread (one mutex). A grant is kept under the sha256 of the exact URL, until
 * min(its signature's expiry, now + --confirm-ttl). The table has a fixed size: a grant may be
 * pushed out by another, which costs one more confirmation, never a wrong answer.
 */
#ifndef ARCA_GRANTS_H
#define ARCA_GRANTS_H

#include <stdbool.h>
#include <stdint.h>

/* Remember that upstream served `url` (whole, signature included) until `until` (Unix time). */
void grants_add(const char *url, int64_t until);
/* Whether `url` was accepted and its grant has not ended by `now`. */
bool grants_check(const char *url, int64_t now);

#endif
