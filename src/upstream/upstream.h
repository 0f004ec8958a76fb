/*
 * upstream.h — the upstream thread: every upstream transfer runs on one curl multi handle.
 *
 * Contract: upstream_fetch(), upstream_probe() and upstream_get() may be called from any thread;
 * they queue the work and wake the upstream thread; upstream_init() and upstream_stop() run on the
 * main thread. Everything else in src/upstream/ runs on the upstream thread only, and asserts it
 * (upstream_on_thread(), easy.h), but for the persistence thread's wake-up once a download's file
 * is made (struct upstream_loop's `wake`). The thread drives every download as a state machine
 * (transfer.h), through store.h's upstream-thread functions: it asks the persistence thread for the
 * file, appends, decides on retries and resumes with upstream_response.h, and hands a finished
 * object over to be made durable. Retry backoffs, the once-a-second housekeeping (usage figures
 * and counters handed over, a shrunk quota's eviction) and the expiry sweep's steps run from its
 * timer heap (timer.h); it never
 * touches SQLite, fsync or unlink itself. A mirror (--mirror) is asked for the URL without its
 * signature and fetched unsigned; for a signed URL, only once the origin has accepted it
 * (mirror.h). upstream_stop() ends downloads still running: their clients see a cut stream, a
 * download that has its file is set aside (kept for the next start to continue, store_set_aside),
 * one still waiting for its file or in the queue fails; probes end with status 0; everything is
 * handed over before it returns. A download that fails upstream tells its clients the attempts made
 * and the time spent (failure_summary); a host under ".invalid" fails at its first attempt without
 * a resolver, and any other name that does not resolve is asked once more after RESOLVE_RETRY_MS
 * (upstream_response.h) before the download fails with `cannot resolve host NAME`, NAME being the
 * host curl asked last (a redirect's target, when one was followed).
 * Downloads beyond --max-downloads, --max-downloads-per-host or --max-downloads-per-client
 * wait, and start in turn across clients: the one holding the fewest slots, then the one whose
 * last start is oldest, then the oldest request. A waiting download is every waiting client's
 * (fetch_source's, then upstream_join's): it may start while any of them is under its share,
 * and counts, for its whole life, against the one holding the fewest slots as it starts.
 */
#ifndef ARCA_UPSTREAM_H
#define ARCA_UPSTREAM_H

#include "config/config.h"
#include "upstream/probe.h"
#include "store/store.h"
#include "rules/terms.h"

#include <curl/curl.h>
#include <sys/socket.h>

int upstream_init(const struct config *cfg, char *err, size_t errlen);

/* What arca says of itself in Via (RFC 9110 7.6.3), upstream on every request it sends and to
 * clients on answers to proxy-form requests: "1.1 HOST:PORT (arca)", HOST this machine's name,
 * PORT the one arca listens on. A request that carries it came from this arca (a loop). Set by
 * upstream_init; constant after. */
const char *upstream_via(void);

/* Where a download comes from: the client's URL, whole (signature included), which may differ
 * from the object's (its key, keys.h). A signed source that upstream answers with 2xx is
 * remembered as accepted until `grant_until` (grants.h); 0: not signed. */
struct bucket_auth;
struct fetch_source {
    const char *url;
    int64_t grant_until;
    const struct bucket_auth *auth; /* an object of a --bucket: signed for it (buckets.h) */
    const char *via; /* the Via values the client's request came with, joined; NULL: none */
    /* The client whose request asks for it (http_client: behind a --trusted-proxy, the
     * forwarded address); the download counts against it under --max-downloads-per-client.
     * NULL: arca's own (a resume, an admin's prefetch), all counted as one client. */
    const struct sockaddr *client;
    /* The request's terms (rules/terms.h): the download copies what it reads of them (fill
     * settings, sources). NULL: decided for `url` with no client (a resume). */
    const struct fetch_terms *terms;
};
void upstream_fetch(struct object *obj, const struct fetch_source *src);

/* A client joined `obj`'s download (store_lookup's LOOKUP_COALESCED; `client` as fetch_source's,
 * NULL arca's own): while that download waits for a slot it is this client's too, so another
 * client that asked for it first cannot make it wait behind its own share (a resume queued at
 * start is joined the same way). Any thread, holding a reference on `obj` (its generation is
 * read); the upstream thread compares it, never follows it: a download already started, or
 * gone, is left as it is, one not queued yet takes the join when it is (joins.h). */
void upstream_join(const struct object *obj, const struct sockaddr *client);

/* A one-byte question to upstream (GET with Range: bytes=0-0, the body dropped at its first
 * byte): what answers `url` now, and with which validators; `parent` (NULL none): the parent
 * arca `url` is the fetch API of (--parent-only), shown its certificate; else `reg` (NULL none):
 * the registry whose pull API `url` is (its request's terms'), asked with its Authorization and
 * a HEAD (source_req.h). It is asked as a download
 * is: a retryable failure is tried again with the download's backoff up to --download-retries, a
 * name that does not resolve once more after RESOLVE_RETRY_MS; a retryable status to the end comes
 * back as status 0 with `failure` (and `failure_status` that status). `done` runs on the upstream
 * thread, once, also when arca stops (status 0). Returns -1 when out of memory or stopping (done
 * never runs then). upstream_get() asks a name that does not resolve once more too. What the
 * result holds: struct probe_result (probe.h). */
struct registry_ask;
int upstream_probe(const char *url, const char *parent, const struct registry_ask *reg,
                   void (*done)(const struct probe_result *res, void *arg), void *arg);

/* A small document (an S3 listing page): GET `url`, signed for `auth` like a bucket's objects
 * (NULL: unsigned), its body kept up to UPSTREAM_DOC_MAX bytes (a longer one is an error). It is
 * asked as a download is (easy.h): its host held down, no request goes and it comes back as a
 * download would fail (status 0, failure_status 503, retry_after); its bytes wait their turn
 * under --upstream-rate and count in bytes_downloaded.
 * `done` runs on the upstream thread, once, also when arca stops (status 0); `body` is valid
 * during the call only. Returns -1 when out of memory or stopping (done never runs then). */
int upstream_get(const char *url, const struct bucket_auth *auth,
                 void (*done)(const struct probe_result *res, const char *body, size_t len,
                              void *arg),
                 void *arg);

/* --upstream-rate, from any thread: the cap on bytes a second arca takes from upstream (0: none),
 * set at start and by SIGHUP; what it is now. */
void upstream_set_rate(int64_t bytes_per_s);
int64_t upstream_rate_cap(void);
/* The cap's bucket, for what other threads take from upstream (a CONNECT tunnel's bytes):
 * base/tokens.h, any thread; NULL before upstream_init. */
struct token_bucket;
struct token_bucket *upstream_rate_tokens(void);

void upstream_stop(void);

#endif
