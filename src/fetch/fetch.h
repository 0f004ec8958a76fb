/*
 * fetch.h — objects served through the cache: GET|HEAD /api/v1/fetch/[FILENAME]?url=URL
 * [&ttl=TTL][&sha256=HEX] (the route's handler and done), and the same for a known object URL
 * another handler names (web/browse.c: a bucket's file).
 *
 * Contract: one struct fetch_req per request, from its first call to its completion; it is the
 * request's state (or held in the state of the handler that started it). Every function here
 * runs on the server's threads, in a handler for that request; the signed-URL
 * confirmation's answer comes on the upstream thread and only wakes the request (park.h).
 * fetch_finish() is the last use of the fetch_req: a confirmation still running keeps it until
 * its answer.
 */
#ifndef ARCA_FETCH_H
#define ARCA_FETCH_H

#include "http/http_internal.h"

struct bucket_auth;
struct fetch_req;

/* The route (struct route): the request's state is its fetch_req. */
enum conn_result fetch_route(struct conn *c, struct request *req, const char *rest);
const char *fetch_done(struct request *req, bool completed);
/* GET|HEAD of a proxied request's URL (proxy.h), fetched as /api/v1/fetch/?url= would
 * fetch it (same key, policies and answers, each with arca's Via); its done is
 * fetch_done. */
enum conn_result fetch_proxied(struct conn *c, struct request *req);

/* What to answer when S3 has no object at the URL (its 404): the caller's, with its `arg`. */
typedef enum conn_result (*fetch_missing_fn)(void *arg);

/* Serve the object at `url` (taken over; its normal form), fetched signed for `auth`, with the
 * request's ?ttl= and ?sha256=; *out is the fetch_req from then on (NULL: out of memory). */
enum conn_result fetch_object(struct conn *c, struct request *req, char *url,
                              const struct bucket_auth *auth, fetch_missing_fn missing, void *arg,
                              struct fetch_req **out);
/* A body `len` bytes long of Content-Type `type` made into another: a new body (the caller
 * frees it), its length in *out_len; NULL when it cannot be (answered 502). A worker's thread,
 * with the object complete. */
typedef char *fetch_rewrite_fn(void *arg, const char *body, size_t len, const char *type,
                               size_t *out_len);

/* What a route naming an object by its digest adds (registry.c): the sha256 its bytes must
 * have (NULL: none; a twin of another URL then answers once upstream confirms this one), and
 * the largest body taken (a registry's manifest is small). */
struct fetch_bounds {
    const uint8_t *expect;
    int64_t max_size;
    /* with `expect`, a small object (a manifest): nothing goes out until it is complete and its
     * digest checked (a cut one could be the right bytes, one too many upstream), and it is
     * fetched under its own URL, never answered as another URL's twin (whose confirmation would
     * ask upstream again on every request, where one download keeps it) but in `twin_scope` */
    bool small;
    /* with `small`: the length of the URL's prefix under which another URL's object with that
     * digest answers at once, unconfirmed (0: none), if its URL has no '/' after it (a
     * deeper one is another repository's). A registry's manifests of one repository:
     * the registry gave those very bytes for that repository, under a tag */
    size_t twin_scope;
    /* appended to the URL for its cache key: another object of the same URL (a pypi page's
     * JSON form, REMOTE_JSON_KEY; NULL: the URL is the key) */
    const char *variant;
    /* the complete object's body rewritten before it is answered, whole, with a 200 (NULL:
     * as it is): a pypi page's links (fetch_rewrite_fn) */
    fetch_rewrite_fn *rewrite;
    void *rewrite_arg;
    /* with `has_max_age`: a copy older than this many seconds is refreshed first (revalidated),
     * whatever the client or a rule's client-ttl says: an apt index older than the Release file
     * that lists it (remote.c), whose hashes it must match */
    bool has_max_age;
    int64_t max_age;
    /* the request's Cache-Control bounds nothing (its max-age, no-store, no-cache): a remote's
     * kind decides its URLs' freshness, where apt and pip send max-age=0 for every index, meant
     * for a proxy that knows nothing of them (remote.c) */
    bool own_freshness;
};
/* Why a request whose Via names this arca is refused 508: a loop of arcas, each fetching for
 * the other (a registry's /v2/ checks it before the token dance, the fetch course again). */
#define FETCH_LOOP_REASON                                                                          \
    "loop: this request came from this arca (its Via), which would fetch it again"
/* fetch_object for an unsigned URL (taken over; its normal form) outside the fetch endpoint's
 * query: its client checked against --allow-network and the rules as a fetch's is. Its client
 * checks lengths and digests (a registry client): an answer by digest keeps Content-Length. */
enum conn_result fetch_object_by(struct conn *c, struct request *req, char *url,
                                 const struct fetch_bounds *b, struct fetch_req **out);
/* A later call of the request (its connection resumed). */
enum conn_result fetch_resume(struct fetch_req *r);
/* The request ended: `r` (may be NULL) is let go; returns the access log's cache column: HIT,
 * MISS, COALESCED, CUT when arca cut the body (failed download, sha256 mismatch), ERROR for
 * an error answer; req->bytes is set to the body bytes sent. */
const char *fetch_finish(struct fetch_req *r, struct request *req, bool completed);
/* The Content-Type of the object `r` answered with (2xx or 304; its first 127 bytes), "" when
 * none (yet) or `r` is NULL: a registry counts an image manifest's GET as a pull, an index's not
 * (registries.h). Before fetch_finish. */
const char *fetch_answer_type(const struct fetch_req *r);

#endif
