/*
 * parent.h — a download asked of a parent arca first (docs/CLUSTER.md, "Sites and tiers").
 *
 * A site's arca (the child) asks its central arca (the parent: --parent, or a rule's `parent`)
 * for a missing object through the parent's fetch API, with the client's URL whole (a
 * registry's manifest or blob through its /v2/, named by its URL in ?ns=: registries.h); the parent
 * answers as arca does (docs/API.md): one validator for the object's life, its Age and
 * Cache-Status (with `ttl=`), its Repr-Digest in a header or, while it still downloads, a
 * trailer. The child believes the parent for nothing it cannot check: the sha256 of what came
 * must be the parent's Repr-Digest, a resume or a fill's piece must prove the same version as
 * from any upstream, and a parent that fails in any way (no answer, its own 5xx, 507 or 508, a
 * refusal of its own, a redirect, a cut, a lie) is passed over: the download starts over from
 * the origin (or the mirrors) at once, unless --parent-only. The object is never failed for the
 * parent's fault.
 *
 * A URL with credentials (a signature, userinfo, a token) goes to the parent only when the
 * parent is reached over https:// (curl verifies its certificate, as every upstream's) or
 * --parent-trusted-http says the plain path is trusted; otherwise the download goes to the
 * origin directly (or fails, with --parent-only).
 *
 * A parent that requires a client certificate is shown the one the rules in force give it
 * (--parent-cert, a rule's parent-cert: rules.h), and no other source ever is. Its refusals
 * are said as its own ("parent refused: 403 Forbidden", "parent refused the TLS handshake"),
 * never as the origin's, with the one-line reason it gave (its Arca-Error header: printable,
 * bounded, secrets hidden).
 *
 * Each parent is tracked (at most PARENT_MAX): what it gave (requests, bytes, hits) and its
 * fallbacks by reason. Its state is the hold table's (hosts.h, which holds it as HOST_PARENT):
 * this file judges its asks, telling hosts_judged of its own faults (what no client can bring
 * about with a URL: source_parent_own_fault) and of bytes that check out; after
 * HOSTS_PARENT_FAULTS in a row it is "down" and passed over (its attempt refused by the one
 * question, easy_go: the download goes on from the origin). Under --parent-only it is the
 * download's origin: asked as one (held for refused connections, one probe at a time finds it
 * back), its own faults still counted and shown.
 *
 * Contract: parent_plan, parent_header, parent_digest_line, parent_judge, parent_fault,
 * parent_failed_attempt and parent_certificate_file run on the upstream thread;
 * parent_show_certificate on any thread, for a handle its caller owns (it reads the rules in
 * force under a reference); parent_report on any thread (one mutex guards the table of counters,
 * never held while the hold table's is taken). A struct parent_ask belongs to one download, freed
 * with parent_forget.
 */
#ifndef ARCA_PARENT_H
#define ARCA_PARENT_H

#include "rules/terms.h"
#include "upstream/hosts.h"
#include "upstream/source_req.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PARENT_MAX 16
#define PARENT_FAILURES HOSTS_PARENT_FAULTS
/* A parent is a known host near by: one that does not connect within PARENT_CONNECT_MS, or
 * sends less than PARENT_LOW_SPEED bytes a second for PARENT_STALL_S, is passed over (not
 * --connect-timeout, --stall-timeout: an origin's patience). */
#define PARENT_CONNECT_MS 3000
#define PARENT_STALL_S 15
#define PARENT_LOW_SPEED 1024 /* bytes a second, over PARENT_STALL_S */

/* Why a download went to the origin instead of (or after) its parent. */
enum parent_fault {
    PARENT_REFUSED,     /* no answer: refused, reset before the answer, timed out, no name */
    PARENT_STATUS,      /* a failure status: a 5xx, 507, a 4xx, a redirect, a 416 */
    PARENT_LOOP,        /* 508: its way upstream came back here (Via) */
    PARENT_CUT,         /* the body broke off */
    PARENT_DIGEST,      /* the bytes' sha256 is not its Repr-Digest, or it gave none, or two
                           that differ, or fewer bytes than its length */
    PARENT_LIE,         /* another version mid-download, a Content-Range or Content-Length
                           that does not fit, more bytes than its length, a 304 unasked */
    PARENT_DOWN,        /* passed over: held down after its faults */
    PARENT_CREDENTIALS, /* a URL with credentials, and the parent is plain http:// */
    PARENT_FAULTS
};

/* One download's parent. */
struct parent_ask {
    int slot;                     /* its parent in the table (-1: none asked) */
    char base[CONFIG_PARENT_MAX]; /* the parent's base URL (its terms') */
    char *fetch_url;              /* PARENT/api/v1/fetch/?url=...: what is asked */
    bool active;                  /* the download asks the parent now */
    /* What its answer said: */
    bool has_digest;
    bool digest_conflict; /* two of its answers said two digests: none is believed */
    uint8_t digest[32];   /* its Repr-Digest (a header, or the trailer) */
    int64_t age;          /* its Age, seconds (0: none) */
    int64_t left;         /* freshness left (its Cache-Status member's ttl) */
    bool has_left;
    bool hit;        /* its member said hit */
    bool not_stored; /* its member said stored=?0: it kept no copy, vouches for no freshness */
    char reason[48]; /* its status line's reason phrase ("Forbidden") */
    char said[160];  /* its Arca-Error: the one-line reason of its refusal (printable, no secret) */
    /* its member said detail=too-large: the object is more than it takes (its 413 or 507),
     * the URL's doing, never its own fault */
    bool too_large;
    char cache_status[192];
};

/* Whether the download of `asked` (the client's URL, whole) under `terms` asks a parent first:
 * the ask made (p->active; a parent held down is met by the attempt's question, easy_go). When
 * it does not, `*why` says for which fault it goes to the origin (PARENT_CREDENTIALS; counted),
 * or PARENT_FAULTS when it has no parent.
 * With --parent-only and a parent that cannot be asked (`*refuse` set): the download fails with
 * that one-line reason. */
void parent_plan(const struct config *cfg, struct parent_ask *p, const struct fetch_terms *terms,
                 const char *asked, enum parent_fault *why, char *refuse, size_t size);
/* A header line (NUL-terminated, no CRLF) of the parent's answer: its digest, Age and
 * Cache-Status. */
void parent_header(struct parent_ask *p, const char *line);
/* A trailer line, or a header line of a fill's piece: its digest only (what the download's
 * freshness is was said by the answer it began with). */
void parent_digest_line(struct parent_ask *p, const char *line);
/* A response from the parent begins: forget what an earlier one said (its digest stays: a
 * trailer may have come on any of them). */
void parent_response_reset(struct parent_ask *p);
/* The same, for the status line `line` (NUL-terminated, no CRLF) that begins it. */
void parent_status_line(struct parent_ask *p, const char *line);
/* What the parent's answer `status` says, as the log's fallback line and a 502 say it: its own
 * refusal ("parent refused: 403 Forbidden"), its origin's failure relayed, an object too large
 * for it, or its own failure ("parent answered 503 ..."): never as the origin's. Its one-line
 * reason (p->said), when it gave one, follows: "parent refused: 403 Forbidden: client address
 * not allowed ...". */
void parent_status_words(const struct parent_ask *p, long status, char *out, size_t size);
/* Whether an attempt that ended in `rc` with curl's `errbuf` was the parent refusing the TLS
 * handshake (an alert it sent: no certificate, or one its --tls-client-ca did not sign): then
 * `out` says so, with what the site may do: show it one, or (`cert`: the file it was shown,
 * NULL or "" for none) that its client CA does not accept that one. A refusal of this site,
 * never of a URL. */
bool parent_tls_refused(CURLcode rc, const char *errbuf, const char *cert, char *out, size_t size);
/* The certificate file the rules in force show `parent` (a base URL) into out[size] ("" for
 * none), for what a refusal says. Upstream thread. */
void parent_certificate_file(const char *parent, char *out, size_t size);
/* What a parent's answer `status` says, once its headers (parent_header) are in: 0 a body to
 * take (2xx, 304; a 1xx comes before its final answer), 1 the origin's own verdict (a 4xx the
 * parent relays: it carries a Cache-Status), or -1 the parent's fault (*fault set). */
int parent_judge(const struct parent_ask *p, long status, enum parent_fault *fault);
/* The certificate `easy` shows in its handshake: the one the rules in force give `parent` (a
 * base URL: --parent-cert, a rule's parent-cert, rules_parent_identity) when it asks that
 * parent, else none (NULL: the origin, a mirror, which are never shown it). Any thread, for a
 * handle not in the multi handle yet. */
void parent_show_certificate(CURL *easy, const char *parent);
/* The parent's `bytes` are all in and check out: a request counted, a hit when it said so, its
 * faults in a row forgotten. */
void parent_served(struct parent_ask *p, int64_t bytes);
/* Whether `digest` (what came) is the parent's Repr-Digest. */
bool parent_digest_ok(const struct parent_ask *p, const uint8_t digest[32]);
/* The parent failed this download for `fault` (`detail`: the log's words): counted, logged; a
 * fault `its_own` counts toward holding it down (one its upstream's failure relayed does not:
 * any client can ask for a URL that fails); p->active goes false (the origin's turn). */
void parent_fault(struct parent_ask *p, const char *url, enum parent_fault fault, bool its_own,
                  const char *detail);
/* --parent-only: the parent failed an attempt, which is retried of it: counted toward its hold
 * (shown in the status), nothing else. */
void parent_failed_attempt(struct parent_ask *p, enum parent_fault fault, bool its_own);
void parent_forget(struct parent_ask *p);

/* The parent's side of a fill's piece of a download asking `p` (the download's record: it outlives
 * the fill): its certificate shown, its digest asked and read (source_req.h). */
struct source_req parent_piece_req(struct parent_ask *p);
/* The parent's side of a probe of its fetch API (`parent`: its base URL): a record of the probe's
 * own (its release frees it), its certificate shown, its answer read and told in its words as a
 * download's is. 0, or -1 out of memory. */
int parent_probe_req(const char *parent, struct source_req *out);

/* What a parent at `parent` (a base URL) is asked for `url` (the client's, whole): for a
 * configured registry's manifest, blob or tag list its /v2/ as a registry client asks it
 * (registries_parent_target), else its fetch API's URL, every byte but the unreserved ones
 * percent-encoded. A new string (NULL: out of memory). Any thread. */
char *parent_fetch_url(const char *parent, const char *url);

/* The fault's word in the status, the metrics and the log ("refused", "digest", ...). */
const char *parent_fault_name(enum parent_fault f);

/* What the status shows of one parent. */
struct parent_report {
    char url[CONFIG_PARENT_MAX];
    char from[80]; /* "--parent" or "rule NAME" (the first that named it) */
    bool down;
    int64_t down_since; /* wall-clock s (0: up) */
    int failures;       /* faults in a row */
    int64_t requests, bytes, hits;
    int64_t fallbacks[PARENT_FAULTS];
};
/* The parents known so far (--parent from the start; a rule's once a download used it), at most
 * `max`: how many were written. Any thread. */
int parent_report(struct parent_report *out, int max);
/* --parent, registered at start (upstream_init), so the status shows it before any download. */
void parent_init(const struct config *cfg);
/* What each parent had given at the last stop (its requests, bytes, hits and fallbacks, kept in
 * the index's counters as "parent URL WHAT"): a parent's counters start from them when it is
 * registered, so they persist as the other counters do. Main, once the index is open and
 * before the persistence threads start (beside stats_load). */
void parent_load_counters(void);
/* Upstream thread, with stats_save (each second, and at a stop): the counters that changed
 * since the last save, handed to the persistence thread. */
void parent_save_counters(void);

#endif
