/*
 * keys.h — the cache key of a fetch URL: the URL without the query parameters that only sign it,
 * so that every presigned URL of one file finds the same object.
 *
 * Built-in rules, for any host, recognise a scheme by its signature parameter and drop that
 * scheme's signing parameters (docs/CACHING.md, "Signed URLs"):
 * - S3 SigV4 (X-Amz-Signature): X-Amz-Algorithm, -Credential, -Date, -Expires, -SignedHeaders,
 *   -Signature, -Security-Token;
 * - S3 V2 (Signature + AWSAccessKeyId): AWSAccessKeyId, Signature, Expires, x-amz-security-token;
 * - GCS V4 (X-Goog-Signature): the X-Goog- counterparts; GCS V2 (Signature + GoogleAccessId):
 *   GoogleAccessId, Signature, Expires;
 * - Azure SAS (sig + sv): sv, ss, srt, sp, se, st, spr, sig, sr, si, sip, sdd and the
 *   user-delegation key fields (skoid, sktid, skt, ske, sks, skv, saoid, suoid, scid); the rsc*
 *   response overrides stay, since they change the answer;
 * - CloudFront (Signature + Key-Pair-Id): Expires, Signature, Key-Pair-Id, Policy.
 * --key-rules adds HOSTGLOB=PARAM,... rules; --exact-keys turns every rule off for the key (not
 * for keys_unsigned_url: what a mirror may see). Parameter names compare without case. The URL
 * fetched from the origin is always the client's, whole.
 *
 * Contract: pure functions of their arguments, any thread.
 */
#ifndef ARCA_KEYS_H
#define ARCA_KEYS_H

#include "config/config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct signature {
    bool is_signed;  /* parameters were dropped: a hit must be confirmed (unless trusted) */
    int64_t expires; /* Unix time the signature ends, as the URL says; 0 when it does not say */
};

/* The key URL of the normal-form `url` into out[size] (never longer than url; out may be url),
 * and what was dropped. */
void keys_cache_url(const struct config *cfg, const char *url, char *out, size_t size,
                    struct signature *sig);

/* The same into a copy the caller frees; NULL when out of memory. */
char *keys_cache_url_dup(const struct config *cfg, const char *url, struct signature *sig);

/* The URL without its signing parameters, by the same rules, whatever --exact-keys says: what
 * may be shown to another host (a mirror) without handing it the client's capability; `sig`
 * says whether the URL was signed. keys_unsigned_url_dup: into a copy the caller frees (NULL
 * when out of memory). */
void keys_unsigned_url(const struct config *cfg, const char *url, char *out, size_t size,
                       struct signature *sig);
char *keys_unsigned_url_dup(const struct config *cfg, const char *url, struct signature *sig);

/* Until when a signed URL that upstream has just accepted is trusted: its signature's expiry,
 * at most `now` + --confirm-ttl. */
int64_t keys_grant_until(const struct config *cfg, const struct signature *sig, int64_t now);

/* "20261122T140000Z" (AWS, GCS) or "2026-11-22T14:00:00Z" / "2026-11-22" (Azure) as Unix time. */
int parse_signature_time(const char *s, size_t len, int64_t *t);

#endif
