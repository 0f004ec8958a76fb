/*
 * fill.h — a parallel fill: one download's body over several connections at once, each asking a
 * range (docs/CACHING.md, "Parallel fills").
 *
 * Contract: upstream thread only. A download whose answer begins the body (a 200 with
 * Accept-Ranges: bytes, or a resume's 206) with a strong validator (resume_validator) and at
 * least --fill-min-size bytes still to come has them fetched in pieces over `ranges`
 * connections (transfer_answer.c decides): its own connection brings the first piece, the head
 * (what readers take, in order), and is cut there; every other connection asks for the next
 * piece not yet handed out, with Range and If-Range, then the next, in order, so the head grows
 * about as fast as all of them bring bytes (pieces of an eighth of a connection's share, between
 * FILL_PIECE_MIN and FILL_PIECE_MAX). Bytes ahead of the head are written in place
 * (store_write_at) but readable only once every byte before them is in (store_advance): readers
 * take the object in order from its first byte, as before. The digest runs in the same order,
 * reading back from the file what came ahead of the head. A range's
 * answer must prove it continues the same version (resume_mismatch, the range's own end, the
 * origin, scheme, host and port, the download's answer came from): one that does not stops the
 * fill, and never adds a byte to the file. Upstream serving another version (a 200 or 206 under
 * another validator) has the download start over (FILL_CHANGED: never a file of two versions); any
 * other answer that does not prove itself (a 200 under the same validator, another Content-Range or
 * length, a retryable status or a refusal to ranges only, another origin) has the download go on
 * over its own connection alone (FILL_ALONE). Until one range has proved itself, the download's own
 * connection is never cut at its range's end: it holds there (fill_head_waits) and is let go as
 * the first range proves itself (FILL_PROVED: it is cut then) or the fill stops (FILL_ALONE: it
 * goes on to the end), so that an origin refusing every range after the first GET (one
 * connection at a time, or no ranges at all) is fetched over that GET: a download never ends
 * because its pieces were refused. A piece cut (a broken connection, a timeout) is asked
 * again for what it lacks, after the download's backoff, up to --download-retries times for
 * that piece; then the download goes on alone too (its own connection's retries and failure
 * say what clients get). Only the store failing a write fails the download (FILL_FAILED). What
 * the fill tells its download (`tell`) comes from the loop, never from inside a curl callback.
 * A fill is retired (fill_retire) from anywhere, its requests cut as curl allows, and freed by
 * fill_sweep outside curl's callbacks.
 */
#ifndef ARCA_FILL_H
#define ARCA_FILL_H

#include "upstream/download.h"
#include "upstream/easy.h"
#include "upstream/source_req.h"
#include "upstream/upstream_response.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* A connection's share shorter than this is not worth a connection; pieces are between these. */
#define FILL_RANGE_MIN (256LL << 10)
#define FILL_PIECE_MIN FILL_RANGE_MIN
#define FILL_PIECE_MAX (64LL << 20)

struct fill;

enum fill_news {
    FILL_WHOLE,   /* every range is in: the head reached the object's length */
    FILL_CHANGED, /* upstream serves another version now: the download starts over */
    FILL_ALONE,   /* upstream's ranges cannot be trusted: the download's connection goes alone */
    FILL_FAILED,  /* the store refused a piece's bytes: the object's error says why */
    FILL_PROVED,  /* the first range proved itself: the head's connection, held at its range's
                     end (fill_head_waits), may be cut there now; the fill goes on */
};

struct fill_settings {
    struct upstream_loop *loop;
    const struct transfer_store *st;
    struct object *obj;
    EVP_MD_CTX *sha;                /* the download's digest, fed in order */
    const char *source;             /* what every range fetches */
    const char *host;               /* its own answer's origin (asked_origin) */
    const struct bucket_auth *auth; /* signed as the download is (NULL: not) */
    const char *via;                /* the client's Via (NULL: none) */
    /* the address its ranges leave from: the download's terms' (outgoing.h) */
    const struct outgoing_address *outgoing;
    const struct validators *kept; /* the version's: If-Range, and each answer's proof */
    struct rate_flow *flow;        /* the download's turn under the uplink cap */
    int64_t head, length;          /* the head's next byte; the object's length */
    int ranges;                    /* how many, the head's included: 2 or more */
    int64_t deadline_ms;           /* the download's, --download-timeout */
    void (*tell)(void *owner, enum fill_news news);
    void *owner;
    /* The source its download asks (source_req.h; ops NULL: a plain URL's): what each range
     * carries beside the download's lines (a parent's digest asked, a registry's
     * Authorization, a certificate shown) and what reads its answers (a parent's digest, in a
     * header or the trailer of a range that ends at the object's end). */
    struct source_req req;
};

/* Split [head, length) into `ranges` and ask each but the head's; NULL when out of memory (the
 * download goes on alone). */
struct fill *fill_start(const struct fill_settings *settings);
/* The end of the head's range (exclusive): where the download's own connection stops. */
int64_t fill_head_end(const struct fill *f);
/* The head's bytes (the download's own connection): how many are taken, fewer once its range is
 * in (curl then ends that attempt), or -1 when the store refused them (its error is set). */
ssize_t fill_head_bytes(struct fill *f, const char *data, size_t len);
/* Whether the head's connection is to hold its next `len` bytes (CURL_WRITEFUNC_PAUSE, asked
 * before the uplink cap): they reach past its range's end while no other range has proved
 * itself yet. FILL_PROVED or FILL_ALONE says when to let it go (curl_easy_pause). */
bool fill_head_waits(const struct fill *f, size_t len);
/* Whether the head's range is all in; whether every range is. */
bool fill_head_done(const struct fill *f);
bool fill_whole(const struct fill *f);
/* Connections its other ranges use now (asking, or waiting out a backoff to ask again). */
int fill_open_connections(const struct fill *f);
/* Bytes its other ranges took from upstream so far. */
int64_t fill_received(const struct fill *f);
/* Why it stopped, for FILL_CHANGED, FILL_ALONE and FILL_FAILED (for the log). */
const char *fill_reason(const struct fill *f);
/* curl ended one of its ranges' requests (upstream.c's dispatch of a HANDLE_SEGMENT). */
void fill_segment_ended(struct handle *h, CURLcode rc);
/* Its download is done with it, whatever the reason: it tells nothing more, writes nothing
 * more, its timers are cancelled. Anywhere, inside a curl callback too. */
void fill_retire(struct fill *f);
/* Free what was retired since the last sweep: outside curl's callbacks (the loop, after a
 * pass; a unit's teardown). */
void fill_sweep(struct upstream_loop *loop);

/* For units: connection `i` (0..ranges-1, 0 once the head's piece is in) as curl's callbacks
 * see it. */
size_t fill_range_header(struct fill *f, int i, const char *data, size_t len);
size_t fill_range_body(struct fill *f, int i, const char *data, size_t len);
CURL *fill_range_easy(struct fill *f, int i);

#endif
