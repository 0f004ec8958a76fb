/*
 * tokens.h — the uplink cap's token bucket (--upstream-rate): the bytes a second arca takes from
 * upstream, shared by every thread that reads from upstream (the upstream thread's downloads,
 * rate.h; the workers' CONNECT tunnels, tunnel.c).
 *
 * Contract: any thread; every call takes the bucket's own lock, held for a few additions only
 * and never while another lock is taken. Tokens are thousandths of a byte (exact at any rate);
 * the bucket holds at most TOKENS_BURST_MS of the rate (TOKENS_BURST_MIN bytes at least), and a
 * taker may leave it in debt (a turn is paid for whole): the next tokens pay the debt first.
 * Downloads and tunnels follow one rule, so that they share the cap: either goes as soon as the
 * bucket holds anything (more than 0) and takes a turn into debt (TOKENS_TURN_MIN bytes at least),
 * and both wait the same tokens_wait_ms for that; when both are due at once, the one waiting
 * longer goes first (a tunnel yields to downloads waiting since before it, downloads to the
 * oldest tunnel waiting, each for TOKENS_YIELD_MS at most: the other's wake-up is due), so that
 * neither wins every tie by its timer's lateness. The time since
 * the last refill counts up to what fills the bucket, whatever the idle time, and a new cap starts
 * from an empty bucket: no product overflows, at any rate an option may give (rates above
 * TOKENS_RATE_MAX count as it).
 */
#ifndef ARCA_TOKENS_H
#define ARCA_TOKENS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What the bucket holds at most: a burst after a quiet moment stays within 10 s's 1 %. */
#define TOKENS_BURST_MS 100
/* Below this, a burst is one chunk of curl's (or a tunnel's read) at least. */
#define TOKENS_BURST_MIN (64 << 10)
/* A turn's bytes at least: a chunk of curl's, what a download's turn takes at least. */
#define TOKENS_TURN_MIN (16 << 10)
/* How long a turn is yielded to a taker that waited longer: its wake-up is due now. */
#define TOKENS_YIELD_MS 5
/* A taker's waiting stamp when it waits for nothing. */
#define TOKENS_NOT_WAITING INT64_MAX
/* 1 PiB a second: past any uplink, and every product of the bucket's stays within int64. */
#define TOKENS_RATE_MAX (1LL << 50)

struct token_bucket {
    pthread_mutex_t lock;
    _Atomic int64_t rate;   /* bytes a second, 0: no cap (read without the lock) */
    _Atomic uint64_t epoch; /* counts the cap's changes (read without the lock) */
    int64_t tokens;         /* thousandths of a byte; below 0: a debt */
    int64_t refilled_ms;
    int64_t downloads_since; /* when the downloads' next turn began to wait (TOKENS_NOT_WAITING) */
    int64_t tunnels_since;   /* the oldest waiting tunnel's stamp (TOKENS_NOT_WAITING) */
};

void tokens_init(struct token_bucket *b, int64_t now_ms);
/* A new cap (0: none); the bucket starts empty from `now_ms` when it changes. true: it changed
 * (its waiters are to be woken: they wait for a time set at the old rate). */
bool tokens_set(struct token_bucket *b, int64_t bytes_per_s, int64_t now_ms);
int64_t tokens_rate(struct token_bucket *b);
/* Which cap the bucket counts for: a new number at each change (tokens_set). */
uint64_t tokens_epoch(struct token_bucket *b);
/* Refilled to `now_ms`: the tokens it holds (thousandths of a byte; below 0, a debt). */
int64_t tokens_held(struct token_bucket *b, int64_t now_ms);
/* `bytes` taken, into debt if need be (a download's turn, paid whole); negative: given back
 * (taken and not used). */
void tokens_spend(struct token_bucket *b, int64_t bytes, int64_t now_ms);
/* tokens_spend, if the cap is still the one of `epoch`: false (nothing spent or given back) once
 * it changed, so that bytes counted at one cap never land in another's bucket. */
bool tokens_spend_in(struct token_bucket *b, int64_t bytes, int64_t now_ms, uint64_t epoch);
/* The downloads wait for their next turn since `since_ms` (TOKENS_NOT_WAITING: none waits). */
void tokens_downloads_wait(struct token_bucket *b, int64_t since_ms);
/* Refilled to `now_ms`: what the bucket holds for the downloads' turn, as tokens_held, but 0 when
 * they yield it to a tunnel waiting longer (tokens_wait_ms of 0: ask again in 1 ms). */
int64_t tokens_for_downloads(struct token_bucket *b, int64_t now_ms);
/* A tunnel's turn of up to `want` bytes (all of them without a cap): what the bucket holds, or
 * when it holds less, min(want, TOKENS_TURN_MIN) into debt. 0 when it holds nothing (or a debt)
 * or the downloads waited since before *since_ms (the taker's own stamp, TOKENS_NOT_WAITING
 * before its first refusal, set at it and reset by a turn), with *wait_ms set to when to ask
 * again (tokens_wait_ms, or 1 ms when it yields). */
size_t tokens_take(struct token_bucket *b, size_t want, int64_t now_ms, int64_t *since_ms,
                   int64_t *wait_ms);
/* A tunnel waiting since `since_ms` goes away (closed): downloads no longer yield to it. */
void tokens_leave(struct token_bucket *b, int64_t since_ms);
/* How long until a bucket holding `tokens` holds more than 0 again at `rate` (> 0): when a
 * download's turn or a tunnel's may go. */
int64_t tokens_wait_ms(int64_t tokens, int64_t rate);

#endif
