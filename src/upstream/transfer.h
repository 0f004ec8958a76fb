/*
 * transfer.h — one upstream download as a state machine, over one or more attempts.
 *
 * Contract: upstream thread only (upstream_on_thread()). A transfer is one of the states below;
 * transfer_step() runs the step function of each state that has work to do until the transfer
 * waits for an event (its file, a probe's answer, curl, a timer) or is over; every event
 * function checks the transfer is in the state that waits for it. One function moves it, and
 * asserts every move is one of the table below (transfer_may_move); the moves a fill's news
 * makes (fill.h: another version, the store refusing a piece) are drawn too, and
 * transfer_stop ends a transfer from any state but DONE (FAILED). The states:
 *
 *   OPENING  the persistence thread makes its file and row      -> SOURCE, FAILED
 *   SOURCE   the first of its sources (source.h) that is asked: -> PROBING, ATTEMPT, FAILED
 *            its parent, its mirrors, the origin
 *   PROBING  a mirror's or the origin's probe is out            -> ATTEMPT, FAILED
 *   ATTEMPT  one more request: a resume's Range, or from byte 0 -> ASKING, OPENING, SOURCE,
 *                                                                 FAILED
 *   ASKING   in the multi handle: headers decide, bytes append  -> ENDED; a fill's news:
 *                                                                 ATTEMPT, OPENING, SOURCE,
 *                                                                 FAILED
 *   ENDED    the attempt ended: finish, start over, back off,   -> DONE, ATTEMPT, OPENING,
 *            move on (the table of endings, transfer_course.c)     BACKOFF, FILLING, SOURCE,
 *                                                                 FAILED
 *   FILLING  its own range is in, its fill's others come (fill.h) -> DONE, ATTEMPT, OPENING,
 *                                                                 SOURCE, FAILED
 *   BACKOFF  a retry's timer (the loop's timer heap), then a     -> ATTEMPT; a fill's news:
 *            slot on its host: it holds none meanwhile            OPENING, SOURCE, FAILED
 *
 * The moves back to SOURCE are one event, moving on to the next source (source_move_on): the
 * source failed the download by its own fault (a parent: no answer, its own failure, a cut, a
 * lie, a digest that does not match; its host held down at ATTEMPT; the object changed under a
 * fill), and the next source's turn comes (or OPENING, a new version's file first); or its
 * kind's judge_end asks the same source again from its choice (a registry whose token was
 * refused: its authorisation is asked again first, PROBING).
 *   DONE     finished, renewed (304) or set aside: released and freed
 *   FAILED   store_fail() has told its clients: released and freed
 *
 * Everything it asks of the object goes through a struct transfer_store (transfer_store_real
 * points at store.h's functions; units record the calls). stats.downloads_active counts a
 * transfer from its start until its last attempt ends (backoffs included): in every state but
 * ENDED, DONE and FAILED. A transfer links itself into loop->active and unlinks itself when it
 * is freed. Its requests obey what every upstream request does (easy.h: the host hold, the
 * uplink cap, the report of its end), and it reads its terms (rules/terms.h: fill settings,
 * sources), never the configuration's globals for them.
 */
#ifndef ARCA_TRANSFER_H
#define ARCA_TRANSFER_H

#include "upstream/download.h"
#include "upstream/easy.h"
#include "upstream/fill.h"
#include "upstream/source.h"
#include "upstream/timer.h"
#include "upstream/upstream_response.h"
#include "store/store.h"
#include "rules/terms.h"

#include <assert.h>
#include <curl/curl.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdint.h>

#define TRANSFER_MAGIC 0x5452414eu
#define CHECK_TRANSFER(t) assert((t) != NULL && (t)->magic == TRANSFER_MAGIC)

/* The attempt under way (ATTEMPT, ASKING, ENDED): its request, its answer, how it ended.
 * transfer_prepare_attempt (transfer_answer.c) begins it afresh. */
struct attempt {
    struct curl_slist *req_headers; /* Range + If-Range of a resuming attempt, or the
                                       conditions of a revalidating one */
    /* where redirects took it (upstream_headers.redirects): those curl followed (easy.c
     * records them), or those its source's answer names (source.h's `header`) */
    char hops[HEADER_REDIRECTS_MAX];
    struct upstream_response resp; /* the response being received */
    long status;                   /* its status line's */
    bool body_started;             /* its body is being written */
    bool conditional;              /* it revalidates an expired version (If-None-Match...) */
    bool start_over;               /* its response is dropped: the next attempt asks from byte 0 */
    bool new_file;                 /* and goes on as a new version, once its file is made */
    bool renewed;     /* upstream answered 304: the expired version is the object again */
    bool unrenewed;   /* a 304 came for a copy a purge took meanwhile: asked again whole */
    int retry_status; /* > 0: it ended on a retryable upstream status */
    CURLcode rc;      /* how curl ended it */
    char errbuf[CURL_ERROR_SIZE];
    bool bounded; /* it asks for its fill's head range only (Range: a-b) */
    bool own_cut; /* it ended itself: its fill's head range was in */
    int64_t skip; /* a whole body's first bytes to drop: the download has them */
    /* It resumes bytes kept with no strong ETag of a source that tags its complete copy
     * (source.h's `tags_its_copy`: the source's first answer came while its copy still
     * downloaded, from an origin that gave none): proved by their date and length, and by the
     * source's digest of the whole at the end. The "<sha256>" ETag it gives once its copy is
     * complete is no change, and a version that does not continue them is no lie (its origin's
     * change): the whole is asked again, nothing held against it. */
    bool on_date;
};

/* After a source broke off mid-body (its move_on, source.h): the next source's whole
 * body is asked (alone), and the first `offset` bytes it sends (skipped) must hash to `digest`
 * (what the bytes kept hash to) before a byte more is taken. */
struct kept_check {
    EVP_MD_CTX *ctx; /* NULL: no such check */
    uint8_t digest[32];
    bool wrong; /* they did not hash so */
};

/* One upstream download, over one or more attempts. Lives on the upstream thread only. Its
 * state is written by transfer_course.c's move() alone (the table of moves, transfer_may_move);
 * what one state needs lives in its record (the attempt's `a`, the sources' `src`, BACKOFF's
 * timer), the bools below are facts of the download, each as its comment says. */
struct transfer {
    struct handle h; /* its own connection's: the easy handle, its host's hold, its cap's turn */
    unsigned magic;
    enum transfer_state state;
    struct upstream_loop *loop;
    const struct transfer_store *st;
    struct object *obj;
    const char *url;     /* the object's (its key), fixed for its life: what logs show */
    char *asked;         /* the client's URL, whole: what the origin is asked for */
    char *via;           /* the Via the first client's request came with (NULL: none) */
    const char *source;  /* what is fetched: its source's URL (`asked`: the origin's) */
    int64_t grant_until; /* > 0: a signed URL, remembered as accepted once the origin says 2xx */
    const struct bucket_auth *auth; /* a bucket's object: SigV4-signed by libcurl */
    /* The request's terms (rules/terms.h), the download's copy: its fill settings and sources
     * are read here, never from the configuration's globals. */
    struct fetch_terms terms;
    EVP_MD_CTX *sha;
    int attempts;           /* started so far, of its source */
    int64_t offset;         /* bytes kept from earlier attempts */
    int64_t started_ms;     /* when the download began (monotonic) */
    int64_t deadline_ms;    /* the whole download, --download-timeout */
    struct timer backoff;   /* BACKOFF: the next attempt (idle once over: it waits for a slot) */
    struct timer patience;  /* when a refresh's readers may take the expired version */
    struct validators kept; /* of the response the bytes kept came with */
    char body_host[256];    /* the origin the body comes from (its last answer's, after
                               redirects): a fill's pieces and a fallback check it */
    char host[256];         /* of the URL asked for, for the per-host limit */
    struct sources src;     /* where the bytes come from (source.h) */
    struct attempt a;       /* the attempt under way */
    struct kept_check check;
    /* Facts about the download: */
    bool resolved_again; /* a name that did not resolve was asked once more (once) */
    bool no_probe; /* started without a slot: never its host's probe (transfer_set_no_probe) */
    bool failed;   /* its end told (store_fail() called, or the expired version kept): set
                      while it still asks or backs off, before it moves to FAILED or DONE */
    bool alone;    /* its fill stopped on a lie: one connection from here on (fill.h) */
    /* it began from bytes a start before this one kept (take_prefix): bytes of a source since
     * passed over, maybe (a mirror that lied), which no digest check ever covered whole */
    bool resumed_kept;
    int fill_restarts; /* starts over because upstream changed the object mid-fill */
    struct fill *fill; /* its other ranges while a parallel fill runs (fill.h) */
    void (*fill_told)(void *t, enum fill_news news); /* the course's: fill.h's tell */
    struct rate_flow flow;  /* its turn under --upstream-rate (rate.h), all its handles' */
    int64_t received;       /* bytes its own connection took (a fill's are the fill's) */
    int64_t measured_bytes; /* received, fills' included, at the last transfer_measure */
    int64_t measured_ms;    /* ... and when */
    struct transfer *next, **prev;
};

/* A download of `obj` (whose reference it takes) from `source` (which it takes over) under
 * `terms` (copied), its file asked of the persistence thread: OPENING. NULL when it could not
 * start (the object failed and was released). */
struct transfer *transfer_new(struct upstream_loop *loop, const struct transfer_store *st,
                              struct object *obj, char *source, int64_t grant_until,
                              const struct bucket_auth *auth, const char *host,
                              const struct fetch_terms *terms);
/* Whether the table above has a transfer move from `from` to `to`. */
bool transfer_may_move(enum transfer_state from, enum transfer_state to);
/* The Via the first client's request came with (taken over), sent before arca's own on every
 * attempt, so that a loop through other proxies comes back with arca's (508). Before the first
 * attempt starts. */
void transfer_set_via(struct transfer *t, char *via);
/* It started without a download slot (its host held down): it is never its host's probe, so an
 * attempt at a host whose probe is due is refused at once too (hosts_admit). Before the first
 * attempt starts. */
void transfer_set_no_probe(struct transfer *t);
/* The loop's look after a wake-up: an OPENING transfer whose file is made goes on. The
 * transfer may be freed on return. */
void transfer_poll_file(struct transfer *t);
/* The loop's look after a wake-up: a BACKOFF transfer whose timer is over and whose host has
 * a slot now (it held none while it backed off) makes its next attempt. It may be freed on
 * return. */
void transfer_poll_retry(struct transfer *t);
/* curl ended the attempt of the transfer whose handle this is; it may be freed on return. */
void transfer_attempt_ended(struct handle *h, CURLcode rc);
/* Readers learn of this pass's bytes at once (store_announce); returns the monotonic ms by
 * which to call it again (a reader is held), or 0. */
int64_t transfer_announce(struct transfer *t);
/* arca stops: the download fails (nothing kept yet) or is set aside for the next start; freed. */
void transfer_stop(struct transfer *t);

/* Once a second: the bytes a second it took from upstream since the last call, and over how
 * many connections, for its listing (store_set_rate). */
void transfer_measure(struct transfer *t);
/* Connections it holds to its host now: its own (none while it backs off), and its fill's
 * (fill.h). */
int transfer_connections(const struct transfer *t);

enum transfer_state transfer_state_of(const struct transfer *t);
const char *transfer_host(const struct transfer *t);
struct transfer *transfer_next(const struct transfer *t);
CURL *transfer_easy(const struct transfer *t);
/* The request headers of the attempt under way (a resume's Range, a revalidation's conditions). */
const struct curl_slist *transfer_request_headers(const struct transfer *t);

/* What curl's callbacks hand over, one header line or a run of body bytes: the return is what
 * curl is told (a length other than `len` ends the attempt). */
size_t transfer_header(struct transfer *t, const char *data, size_t len);
size_t transfer_body(struct transfer *t, const char *data, size_t len);

#endif
