/*
 * transfer_answer.h — the transfer itself, under its course (transfer.c: steps and events):
 * its struct, an attempt's answer (what its headers decide, its bytes hashed and appended) and
 * how a download fails. transfer.c calls down into this; nothing here calls transfer.c.
 * Upstream thread only, as transfer.h says.
 */
#ifndef ARCA_TRANSFER_ANSWER_H
#define ARCA_TRANSFER_ANSWER_H

#include "upstream/download.h"
#include "upstream/easy.h"
#include "upstream/fill.h"
#include "upstream/mirror.h"
#include "upstream/parent.h"
#include "upstream/timer.h"
#include "upstream/upstream_response.h"
#include "rules/terms.h"

#include <assert.h>
#include <curl/curl.h>
#include <openssl/evp.h>

#define TRANSFER_MAGIC 0x5452414eu
#define CHECK_TRANSFER(t) assert((t) != NULL && (t)->magic == TRANSFER_MAGIC)

/* One upstream download, over one or more attempts. Lives on the upstream thread only. Its
 * state is written by transfer.c's move() alone (the table of moves, transfer_may_move); the
 * bools below say something the state does not: facts of the attempt under way or of the
 * download, each as its comment says. */
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
    const char *source;  /* what is fetched: `asked`, or a mirror's URL (pick.mirrors) */
    int64_t grant_until; /* > 0: a signed URL, remembered as accepted once the origin says 2xx */
    const struct bucket_auth *auth; /* a bucket's object: SigV4-signed by libcurl */
    /* The request's terms (rules/terms.h), the download's copy: its fill settings and sources
     * are read here, never from the configuration's globals. */
    struct fetch_terms terms;
    EVP_MD_CTX *sha;
    struct curl_slist *req_headers; /* Range + If-Range of a resuming attempt, or the
                                       conditions of a revalidating one */
    int attempts;                   /* started so far */
    int64_t offset;                 /* bytes kept from earlier attempts */
    int64_t started_ms;             /* when the download began (monotonic) */
    int64_t deadline_ms;            /* the whole download, --download-timeout */
    struct timer backoff;           /* BACKOFF: the next attempt */
    struct timer patience;          /* when a refresh's readers may take the expired version */
    bool resolved_again;            /* a name that did not resolve was asked once more (once) */
    struct validators kept;         /* of the response the bytes kept came with */
    char body_host[256];            /* the origin the body comes from (its last answer's, after
                                       redirects): a fill's pieces and a fallback check it */
    char host[256];                 /* of the URL asked for, for the per-host limit */
    struct mirror_pick pick;        /* where the bytes come from */
    struct parent_ask parent;       /* its parent arca, asked before the pick (parent.h) */
    bool parent_planned;            /* parent_plan ran (once, at its first SOURCE) */
    /* Facts about the attempt under way: */
    /* where redirects took this attempt (upstream_headers.redirects): those curl followed
     * (easy.c records them), or those its parent's answer names (Arca-Redirect) */
    char hops[HEADER_REDIRECTS_MAX];
    struct upstream_response resp; /* the response being received */
    long status;                   /* its status line's */
    bool body_started;             /* its body is being written */
    bool conditional;              /* it revalidates an expired version (If-None-Match...) */
    bool start_over;               /* its response is dropped: the next attempt asks from byte 0 */
    bool new_file;                 /* and goes on as a new version, once its file is made */
    bool renewed;     /* upstream answered 304: the expired version is the object again */
    bool no_probe;    /* started without a slot: never its host's probe (transfer_set_no_probe) */
    int retry_status; /* > 0: it ended on a retryable upstream status */
    /* < PARENT_FAULTS: the parent failed this attempt so (parent_why says how); the download
     * goes on from the origin (transfer.c, fall_back) */
    enum parent_fault parent_failed;
    /* After its parent broke off: the origin's whole body is asked (alone), and the first
     * `offset` bytes it sends (skipped) must hash to `prefix` (what the parent's bytes kept
     * hash to) before a byte more is taken (NULL: no such check). `prefix_wrong`: they did not. */
    EVP_MD_CTX *prefix_check;
    uint8_t prefix[32];
    bool prefix_wrong;
    bool parent_relayed; /* its answer's 5xx carried a Cache-Status: its upstream failed it */
    char parent_why[160];
    CURLcode rc; /* how curl ended it */
    char errbuf[CURL_ERROR_SIZE];
    bool bounded; /* it asks for its fill's head range only (Range: a-b) */
    bool own_cut; /* it ended itself: its fill's head range was in */
    int64_t skip; /* a whole body's first bytes to drop: the download has them */
    /* Facts about the download: */
    bool failed;       /* its end told (store_fail() called, or the expired version kept): set
                          while it still asks or backs off, before it moves to FAILED or DONE */
    bool alone;        /* its fill stopped on a lie: one connection from here on (fill.h) */
    int fill_restarts; /* starts over because upstream changed the object mid-fill */
    struct fill *fill; /* its other ranges while a parallel fill runs (fill.h) */
    void (*fill_told)(void *t, enum fill_news news); /* the course's (transfer.c): fill.h's tell */
    struct rate_flow flow;  /* its turn under --upstream-rate (rate.h), all its handles' */
    int64_t received;       /* bytes its own connection took (a fill's are the fill's) */
    int64_t measured_bytes; /* received, fills' included, at the last transfer_measure */
    int64_t measured_ms;    /* ... and when */
    struct transfer *next, **prev;
};

/* transfer_answer.c */
/* The connections it holds to its host now (--max-downloads-per-host): its own but while it
 * backs off (a download waiting out a backoff holds no slot), and its fill's (fill.h). */
int transfer_holds(const struct transfer *t);
/* The connections all downloads hold to its host now (transfer_holds). */
int transfer_host_connections(const struct transfer *t);
/* The download fails with `status` and `reason`, told to its clients (once). */
void transfer_fail(struct transfer *t, int status, const char *reason);
/* The object's own failure (the store refused a step): its clients know already. */
void transfer_fail_as_object(struct transfer *t);
/* Its fill is over: retired (fill.h), its bytes counted as the download's. */
void transfer_drop_fill(struct transfer *t);
/* The attempt's answer comes to transfer_header and transfer_body (curl's callbacks). */
void transfer_hear_answer(struct transfer *t);
/* The bytes kept are dropped: the next attempt asks from byte 0. Returns 0 (the same object,
 * emptied), 1 (a new version, waiting for its file) or -1 (the download failed). */
int transfer_start_over(struct transfer *t, int64_t length, const struct upstream_headers *h,
                        const char *why);
/* The bytes and headers a parent gave go (only it vouched for them): nothing given, the same
 * object (0); else a new version (1, waiting for its file; its readers cut, the old one not a
 * failed download: store_new_version); -1 the download failed. */
int transfer_start_afresh(struct transfer *t, const char *why);

#endif
