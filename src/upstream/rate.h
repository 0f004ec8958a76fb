/*
 * rate.h — the uplink cap (--upstream-rate): the bytes a second all downloads together take from
 * upstream, shared fairly between downloads.
 *
 * Contract: upstream thread only, but for rate_set, rate_get and rate_bucket (any thread: SIGHUP,
 * the status page, a CONNECT tunnel). A changed cap wakes every paused handle at once: rate_set
 * marks it and its caller wakes the upstream loop, whose every pass calls rate_poll, which brings
 * the tick forward to now (the handles waited for a time set at the old rate). The bucket is
 * base/tokens.h's, shared with the workers' tunnels, which take their bytes from it too (tunnel.c):
 * the cap covers every byte arca takes from upstream. Every body callback of a download's handles
 * asks rate_admit before it takes a chunk. Under a cap, every chunk waits for its turn: the handle
 * is paused (the callback returns CURL_WRITEFUNC_PAUSE: curl keeps the chunk and stops reading its
 * socket, so the origin's TCP window closes and it stops sending) and queued under its download's
 * flow. As the cap refills (the bucket holds at most TOKENS_BURST_MS of the rate), flows take turns
 * round-robin, in rounds (the tick comes when a tunnel may go too, tokens.h): each flow queued
 * takes one turn a round, an equal share of what the bucket holds, spread over as many of its
 * paused handles as get RATE_TURN_MS of the rate each (one chunk and TOKENS_TURN_MIN at least, a
 * tunnel's turn); never two rounds in one pass of the upstream loop, and a millisecond between
 * them while flows wait. A download over four connections (fill.h) gets what a download over one
 * gets, even when the loop comes late. A handle's waiter is forgotten (rate_forget) before the
 * handle leaves the multi handle or is freed: what its turns paid and it never took goes back to
 * the bucket, if its cap is still the one. A changed cap voids what was paid at the old one
 * (tokens_epoch: a lowered cap holds from its rate_set, a round under way ends there).
 * Without a cap (0), every chunk is admitted and what waits is let go at once. Nothing else is
 * slowed: hits and clients following a download read from disk.
 */
#ifndef ARCA_RATE_H
#define ARCA_RATE_H

#include "base/tokens.h"
#include "base/dlist.h"
#include "upstream/timer.h"

#include <curl/curl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A connection's least turn: this much of the rate (its paused chunk at least). */
#define RATE_TURN_MS 2

struct rate_wait;

/* One download's place in the queue: its paused handles, in the order they paused. */
struct rate_flow {
    struct dlist waiting; /* of rate_wait.node */
    struct dnode node;    /* in the gate's queue while it has a paused handle */
};

/* One handle's: embedded beside its CURL *. */
struct rate_wait {
    CURL *easy;
    struct rate_flow *flow;
    struct dnode node; /* in its flow's queue while paused */
    size_t pending;    /* the chunk it paused on */
    bool queued;       /* paused, in its flow's queue */
    int64_t credit;    /* bytes its turns paid for and it has not taken yet */
    uint64_t epoch;    /* the cap they were paid at (tokens_epoch): void once it changed */
};

struct rate_gate {
    struct token_bucket bucket; /* the cap and its tokens, shared with the tunnels */
    struct dlist flows;         /* of rate_flow.node: flows with a paused handle, round-robin */
    struct timer tick;
    struct timer_heap *timers;
    int64_t (*now_ms)(void);
    bool ready;           /* rate_init ran (a unit's loop may never call it) */
    _Atomic bool changed; /* rate_set changed the cap: rate_poll wakes the waiters */
};

void rate_init(struct rate_gate *g, struct timer_heap *timers, int64_t (*now_ms)(void));
/* The cap, in bytes a second (0: none); from any thread, once rate_init ran. A new cap starts
 * from an empty bucket. true: it changed, and the caller wakes the upstream loop (rate_poll). */
bool rate_set(struct rate_gate *g, int64_t bytes_per_s);
/* Upstream thread, every pass of its loop: after a changed cap, the paused handles' tick comes
 * now, at the new rate (the new bucket's first thousandth, or at once without a cap). */
void rate_poll(struct rate_gate *g);
int64_t rate_get(struct rate_gate *g);
/* The bucket other threads take their upstream bytes from (NULL before rate_init). */
struct token_bucket *rate_bucket(struct rate_gate *g);
/* Whether `w`'s handle may take its chunk of `len` bytes now; false: return
 * CURL_WRITEFUNC_PAUSE, the gate unpauses it in its turn. */
bool rate_admit(struct rate_gate *g, struct rate_wait *w, size_t len);
/* `w`'s handle leaves the multi handle (or is freed): out of the queue. */
void rate_forget(struct rate_gate *g, struct rate_wait *w);
/* arca stops: the tick is cancelled (the handles are gone already). */
void rate_stop(struct rate_gate *g);

#endif
