/*
 * probe.h — one-byte questions (upstream_probe) and small documents (upstream_get) on the
 * upstream thread's multi handle: a probe's life, its retries and its answer.
 *
 * Contract: probe_ask() and probe_get() may be called from any thread: they queue the probe (under
 * this module's own lock) and wake the loop; -1 when out of memory or once probe_close() has run
 * (`done` never runs then). Everything else runs on the upstream thread only. A probe's states:
 * QUEUED (asked, not started) -> ASKING (in the multi handle) -> BACKOFF (a retry's timer) ->
 * ASKING ... -> its `done` runs once, and the probe is freed. A probe that retries is asked as a
 * download would be (the same backoff, up to --download-retries); every probe asks a name that
 * did not resolve once more after RESOLVE_RETRY_MS. probe_close() ends every probe, queued or
 * not, with status 0 ("arca is shutting down"). A probe asks its source as a download would
 * (source_req.h: a parent shown its certificate, its answer told in its words; a registry's pull
 * API with its Authorization, and HEAD instead of a one-byte GET): this file names no kind.
 */
#ifndef ARCA_PROBE_H
#define ARCA_PROBE_H

#include "upstream/easy.h"
#include "upstream/source_req.h"
#include "upstream/upstream_response.h"

#include <stdbool.h>
#include <stdint.h>

/* What a probe learnt (upstream.h tells what each caller gets). */
struct probe_result {
    int status; /* upstream's final status; 0 when none came, `error` says why */
    char etag[HEADER_ETAG_MAX];
    char last_modified[HEADER_DATE_MAX];
    /* what the answer says the bytes are: a digest hit answers with the URL's own word */
    char content_type[HEADER_TYPE_MAX];
    char content_encoding[HEADER_ENCODING_MAX];
    char filename[HEADER_FILENAME_MAX];
    int64_t total; /* the object's length as the answer says; -1 when it does not */
    char error[CURL_ERROR_SIZE + 64];
    /* status 0: the words a download of the URL failing this way after these attempts would
     * give clients (failure_summary), so a refused confirmation reads as a download's failure */
    char failure[CURL_ERROR_SIZE + 400];
    int failure_status;  /* and the status it would have (502, 504; 503 its host held down) */
    int retry_after;     /* its host held down (hosts.h): seconds until it is tried again */
    char challenge[512]; /* its WWW-Authenticate (a registry's 401: reg_auth.h), "" none */
};

#define UPSTREAM_DOC_MAX (16 * 1024 * 1024)

typedef void probe_done_fn(const struct probe_result *res, void *arg);
typedef void doc_done_fn(const struct probe_result *res, const char *body, size_t len, void *arg);

/* A one-byte question (a HEAD, for a source that says so); `retries`: asked as a download is
 * (see above); `src`: the source `url` asks (NULL: a plain URL's), its record the probe's from
 * here, whatever this returns; `kind`: what its host is asked as (a mirror's question holds it
 * as a mirror). */
int probe_ask(struct upstream_loop *loop, const char *url, const struct source_req *src,
              enum host_kind kind, probe_done_fn *done, void *arg, bool retries);
/* The check hosts_result asked for: `url`'s host asked at its root, once, from `from` (the
 * address of the route whose silence asked for it), no redirect followed, for --stall-timeout
 * at most (HOSTS_CHECK_MAX_MS); any HTTP answer, a 404 too, says it is up, a close without a
 * word that a live process will not answer there, nothing at all that it is hung. Its end goes
 * to hosts_checked. -1 when it cannot be asked (the caller tells hosts_checked). Upstream thread
 * (loop->check_host). */
int probe_check_host(struct upstream_loop *loop, const char *url,
                     const struct outgoing_address *from);
/* A document, its body kept up to UPSTREAM_DOC_MAX bytes, signed for `auth` (NULL: unsigned). */
int probe_get(struct upstream_loop *loop, const char *url, const struct bucket_auth *auth,
              doc_done_fn *done, void *arg);
/* How a document is asked, beside its URL. */
struct doc_ask {
    const char *url;
    const struct bucket_auth *auth; /* signed for a bucket's keys (NULL: not) */
    /* "user:password" for HTTP basic auth (a registry's token realm: reg_login.c), NULL none:
     * copied, handed to libcurl alone (sent to `url`'s host only, never after a redirect to
     * another), wiped when the probe ends, never logged */
    const char *userpwd;
    /* the registry whose token realm `url` is (reg_login.c), NULL none: asked nothing while
     * that registry is held at its asking, and its 429 holds it (easy.h's realm_of) */
    const struct registry *realm_of;
    /* who its failure names (failure_summary's WHO: "registry lab:", "registry lab's token
     * realm:"; copied), NULL "upstream" */
    const char *who;
};
/* probe_get with what `ask` says. */
int probe_get_as(struct upstream_loop *loop, const struct doc_ask *ask, doc_done_fn *done,
                 void *arg);
/* fn(arg) on the upstream thread at its next pass, in turn with the probes asked (nothing is
 * asked upstream): how a caller on another thread has its work done there. -1 as probe_ask. */
int probe_call(struct upstream_loop *loop, void (*fn)(void *arg), void *arg);
/* Probes asked for since the last pass go into the multi handle. */
void probe_start_asked(struct upstream_loop *loop);
/* The loop reaped a probe's handle (already out of the multi handle), ended with `rc`. */
void probe_attempt_ended(struct handle *h, CURLcode rc);
/* No probe may be asked any more; every one still known ends (done runs, status 0). */
void probe_close(struct upstream_loop *loop);

#endif
