/*
 * fetch_req.h — what the fetch endpoint's files share: the request's state and the
 * pieces one file offers the others. Layered: fetch.c (the request's course, a table of
 * steps: lookup, joins, confirmations' outcome) calls fetch_confirm.c, fetch_stream.c and
 * fetch_answer.c; stream and confirm call answer; answer calls none of them.
 *
 * Contract: everything here runs on the server's threads, in a handler (or a content
 * reader) of the request that owns the fetch_req. Only the park's wake and release (park.h:
 * whichever thread wakes it or lets go last) and on_probe (fetch_confirm.c: the upstream
 * thread, which only stores the answer and wakes the request) run elsewhere. A fetch_req's
 * magic is FETCH_MAGIC from req_new to its release, checked on entry.
 */
#ifndef ARCA_FETCH_REQ_H
#define ARCA_FETCH_REQ_H

#include "http/http_internal.h"
#include "base/park.h"
#include "store/store.h"
#include "upstream/upstream.h"
#include "rules/keys.h"
#include "rules/terms.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define FETCH_MAGIC 0x5f3e7c21u

/* Where a fetch stands: its course is a table of steps (fetch.c, `steps` and `moves`), run
 * until it waits for an event or has answered. Only fetch.c moves it. */
enum fetch_step {
    FETCH_BEGIN,      /* its query being read, its key made */
    FETCH_TWIN,       /* &sha256= for a URL not cached: another URL's identical object? */
    FETCH_LOOKUP,     /* the store asked: a hit answered, a download joined or started */
    FETCH_CONFIRM,    /* upstream to be asked whether it accepts the URL (a probe) */
    FETCH_CONFIRMING, /* waits for the probe's answer (confirm_done) */
    FETCH_CONFIRMED,  /* the answer is in: refused, or the object of that version served */
    FETCH_STREAM,     /* a download's headers or bytes to stream, once this request may see them */
    FETCH_WAITING,    /* waits for them (the store wakes it) */
    FETCH_LOOK_AGAIN, /* lets go of a download it joined, to look up anew (once) */
    FETCH_ANSWERED,   /* an answer is queued (or the connection closes): ret */
};

/* How far the request's URL is trusted with the object its key names. */
enum fetch_trust {
    TRUST_NONE,       /* not yet known: its ttl may not act on a signed URL's object */
    TRUST_AUTHORISED, /* needs no confirmation (accepted before, or unsigned): its ttl acts */
    TRUST_CONFIRMED,  /* upstream accepted it now (a probe), or it is the URL being fetched */
};

/* One fetch request, from its first call to its completion callback. */
struct fetch_req {
    unsigned magic;
    struct conn *conn;
    struct request *req;
    enum fetch_step step;
    enum conn_result ret; /* FETCH_ANSWERED: the handler's result */
    enum fetch_trust trust;
    struct object *obj; /* reference held while streaming; NULL when served from a file */
    struct park park;   /* waits for bytes (store_span) and for a confirmation; owns this */
    enum lookup_result kind;
    int64_t start, end; /* deliver bytes [start, end); end < 0: up to the end of the object */
    int64_t fd_bytes;   /* file responses: body bytes, counted once completed */
    int64_t sent;       /* streamed responses: body bytes handed over so far */
    bool head;
    bool http10; /* no chunked framing: a cut body could look complete */
    bool plain;  /* no Range, no filename, not draining: a prepared answer may serve it */
    bool cut;    /* the body was cut: the download failed or its sha256 was not `expect` */
    bool has_expect;
    uint8_t expect[32]; /* this request's &sha256=: it decides this answer only */
    /* its client checks a body's length (a registry's, fetch_object_by): an answer with
     * `expect` keeps its Content-Length while the object downloads, a mismatch cut short of it
     * (the store holds the last byte back until the digest is checked) */
    bool keep_length;
    /* an answer with `expect` waits for the object complete and checked: HTTP/1.0 (no chunks
     * to cut), --digest-framing hold, a small object (fetch.h's fetch_bounds) */
    bool hold;
    /* a small object (fetch.h's fetch_bounds), with or without `expect`: answered once COMPLETE,
     * so that a client's next request finds it a twin (a registry's manifest by digest) */
    bool whole;
    /* its body reaches the object's end and carries the digest as a trailer: it ends once the
     * object is complete (an empty body has no last byte held back until then) */
    bool trailer_at_end;
    char *url;                      /* the target's normal form, whole: what is fetched */
    char *via;                      /* the Via the request came with (NULL: none): sent on */
    const struct bucket_auth *auth; /* a --bucket's object: signed for it upstream */
    char *key; /* the cache key: url without the parameters that only sign it (url
                  itself when there are none) */
    struct signature sig;
    struct fetch_terms terms; /* decided once the key is made (fetch.c's decide): read, never
                                 the options they come from */
    bool looked_again;        /* let go of a download it joined and looked up anew (once) */
    struct object_meta *twin; /* a digest hit: another URL's identical object, its file open in
                                 twin_fd, waiting for upstream to confirm url (NULL: none) */
    int twin_fd;
    size_t twin_scope; /* fetch_bounds': a twin under url's prefix this long needs no confirming */
    /* A signed URL being confirmed with upstream (docs/CACHING.md, "Signed URLs"): the probe
     * holds a reference to the park until its answer is in confirm_res and the request woken;
     * confirm_done, the one field two threads write, says that it is. */
    atomic_bool confirm_done;
    struct probe_result *confirm_res;
    int probe_status;       /* upstream's answer to the confirmation a hit waited for (0: none) */
    bool twin_answer;       /* the answer is a digest hit's: another URL's bytes */
    enum stale_cause stale; /* the answer is an expired version's, for this reason */
    bool revalidated;       /* the answer is a version upstream confirmed with a 304 */
    /* refused before any try, the access log's word for it: REFUSED (a client outside
     * --allow-network), HELD_DOWN (its host held down); NULL: tried */
    const char *refusal;
    /* S3 has no such object: the caller's answer (NULL: the error); fetch_missing_fn */
    enum conn_result (*missing)(void *arg);
    void *missing_arg;
    /* fetch_bounds' rewrite (fetch.h's fetch_rewrite_fn): the body answered rewritten (NULL: as
     * it is) */
    char *(*rewrite)(void *arg, const char *body, size_t len, const char *type, size_t *out_len);
    void *rewrite_arg;
    char filename[256];
    char answer_type[128]; /* the Content-Type of the object answered (fetch_count_success) */
};

/* fetch.c: the course's pieces an admin's prefetch shares (prefetch.c). */
/* The cache key of `url` (its normal form): `url` itself when no parameter only signs it, else
 * a new string (NULL: out of memory); *sig says what was dropped. */
const char *fetch_key(const char *url, struct signature *sig);
/* Hand a LOOKUP_MISS's object to upstream: `url` fetched whole under `terms`, for `client`
 * (NULL: arca's own). */
void fetch_start_download(struct object *obj, const char *url, const struct signature *sig,
                          const struct bucket_auth *auth, const char *via,
                          const struct sockaddr *client, const struct fetch_terms *terms);

/* fetch_answer.c */
void fetch_count_error(void);
/* Count a 2xx by how it was served (and, from an expired version, why: r->stale; renewed by a
 * 304: r->revalidated). */
void fetch_count_success(struct fetch_req *r, const struct object_meta *meta);
/* arca's refusal of the request (not about an object): an error line, counted. */
enum conn_result fetch_refuse(struct conn *c, unsigned int status, const char *reason);
/* 403 to a client outside --allow-network: counted as refused, not as an error. */
enum conn_result fetch_refuse_client(struct fetch_req *r, const char *reason);
/* An error answer about the object or its download, with its Cache-Status. */
enum conn_result fetch_refuse_object(struct fetch_req *r, const struct object_meta *meta,
                                     unsigned int status, const char *reason);
/* Whether r's client may read upstream's own words: curl's text, a parent's or an origin's
 * host, address and port, a parent's reason. Those who may see URLs (http_sees_urls: inside
 * --allow-network or --ui-network), who read the parents' names in the status already; not a
 * stranger a rule's allow-network lets fetch (docs/SECURITY.md, "Who may fetch"). */
bool fetch_sees_upstream(const struct fetch_req *r);
/* A failed download's or confirmation's `reason` as r's client reads it: whole when it may
 * (fetch_sees_upstream); else the source's bare status and arca's own words only, anything else
 * one generic line ("the parent could not be reached"), written into `buf`. `status` is the
 * answer's, `retry_after` > 0 for a host held (down, or at its own asking: a 429). arca's log
 * keeps the whole reason. */
const char *fetch_failure_words(const struct fetch_req *r, const char *reason, unsigned int status,
                                int retry_after, char *buf, size_t size);
/* fetch_refuse_object for a failed download (or a kept 404): its meta->error, worded for r's
 * client by fetch_failure_words. */
enum conn_result fetch_refuse_download(struct fetch_req *r, const struct object_meta *meta,
                                       unsigned int status);
/* Upstream's headers that say what the bytes are, then arca's (Cache-Status among them). */
void fetch_add_headers(struct answer *resp, const struct object_meta *meta,
                       const struct fetch_req *r);
void fetch_add_content_range(struct answer *resp, const struct fetch_req *r, int64_t total);
/* A body's Repr-Digest value (RFC 9530), "sha-256=:<base64>:", as answers and trailers say it. */
#define FETCH_REPR_DIGEST_MAX 64
void fetch_repr_digest(const uint8_t digest[32], char out[FETCH_REPR_DIGEST_MAX]);
/* A 304 was queued into *ret (If-None-Match, If-Modified-Since). */
bool fetch_not_modified(struct fetch_req *r, const struct object_meta *meta, enum conn_result *ret);
/* r->start/end and *status (200, 206) set: 0; a 416 queued into *ret: -1. */
int fetch_apply_range(struct fetch_req *r, const struct object_meta *meta, unsigned int *status,
                      enum conn_result *ret);
/* Whether a complete object answers this request's sha256 (true when it gave none). */
bool fetch_digest_ok(const struct fetch_req *r, const struct object_meta *meta);
/* A complete object's body rewritten (r->rewrite), from `fd` (taken over; -1: the object's own
 * file, r->obj's): a whole 200 in memory. */
enum conn_result fetch_respond_rewritten(struct fetch_req *r, const struct object_meta *meta,
                                         int fd);
/* A finished object from its prepared answer (`prep`) or its file (`fd`, taken over). */
enum conn_result fetch_respond_file(struct fetch_req *r, const struct object_meta *meta, int fd,
                                    struct prepared *prep);

/* fetch_stream.c */
/* The object's answer, streamed from its growing file (the request may see it). */
enum conn_result fetch_stream(struct fetch_req *r, const struct object_meta *meta);

/* fetch_confirm.c */
/* Whether upstream must accept this request's URL before the object is handed out. */
bool fetch_needs_confirm(const struct fetch_req *r, const struct object_meta *meta);
/* Suspend the request and ask upstream about its exact URL: true, r->confirm_done once
 * answered; false when it cannot be asked (the refusal queued into *ret). */
bool fetch_start_confirm(struct fetch_req *r, enum conn_result *ret);
/* Whether upstream's answer names the version `meta` describes. */
bool fetch_same_version(const struct probe_result *res, const struct object_meta *meta);
/* Whether upstream refused the URL (its status queued into *ret); accepted, it is granted. */
bool fetch_confirm_refused(struct fetch_req *r, const struct probe_result *res,
                           enum conn_result *ret);

#endif
