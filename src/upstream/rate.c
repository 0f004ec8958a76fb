/* The uplink cap (rate.h): a token bucket, and round-robin between downloads' flows. */
#include "upstream/rate.h"

#include <assert.h>

void rate_init(struct rate_gate *g, struct timer_heap *timers, int64_t (*now_ms)(void))
{
    g->timers = timers;
    g->now_ms = now_ms;
    tokens_init(&g->bucket, now_ms());
    g->flows = (struct dlist){0};
    timer_init(&g->tick);
    atomic_store(&g->changed, false);
    g->ready = true;
}

bool rate_set(struct rate_gate *g, int64_t bytes_per_s)
{
    assert(g->ready);
    if (!tokens_set(&g->bucket, bytes_per_s, g->now_ms()))
        return false;
    atomic_store(&g->changed, true);
    return true;
}

int64_t rate_get(struct rate_gate *g)
{
    return tokens_rate(&g->bucket);
}

struct token_bucket *rate_bucket(struct rate_gate *g)
{
    return g->ready ? &g->bucket : NULL;
}

static void tick(void *arg);

/* The tick comes when the bucket holds anything again, when a tunnel may go too (at once
 * without a cap). Out of memory, no tick: the next admit finds the queue and arms again. */
static void arm(struct rate_gate *g, int64_t rate, int64_t tokens)
{
    int64_t wait = rate > 0 ? tokens_wait_ms(tokens, rate) : 0;
    timer_arm(g->timers, &g->tick, g->now_ms() + wait, tick, g);
}

void rate_poll(struct rate_gate *g)
{
    if (g->ready && atomic_exchange(&g->changed, false) && g->flows.head)
        timer_arm(g->timers, &g->tick, g->now_ms(), tick, g);
}

/* `w` pauses: last in its flow, and its flow in the queue (at its tail, when it was not). */
static void enqueue(struct rate_gate *g, struct rate_wait *w, size_t len)
{
    struct rate_flow *f = w->flow;
    w->pending = len;
    w->queued = true;
    dlist_append(&f->waiting, &w->node);
    if (!g->flows.head) /* the downloads' next turn waits from now (a tunnel's tie, tokens.h) */
        tokens_downloads_wait(&g->bucket, g->now_ms());
    if (!dlist_linked(&g->flows, &f->node))
        dlist_append(&g->flows, &f->node);
}

bool rate_admit(struct rate_gate *g, struct rate_wait *w, size_t len)
{
    int64_t rate = tokens_rate(&g->bucket);
    assert(!w->queued);
    if (w->credit >= (int64_t)len) { /* paid for as it was let go */
        w->credit -= (int64_t)len;
        return true;
    }
    if (!g->ready || (rate == 0 && !g->flows.head))
        return true;
    /* Every chunk takes its turn, even when the bucket has room: a chunk taken at once would go
     * to whichever handle curl reads first, and a fill's four would take four turns to a single
     * connection's one (the new-user review measured 12.3 against 8.6 MB/s). */
    enqueue(g, w, len);
    if (g->tick.slot == TIMER_IDLE) /* for when the bucket holds a byte */
        arm(g, rate, tokens_held(&g->bucket, g->now_ms()));
    return false;
}

/* What a turn lets a handle take: its paused chunk at least, and RATE_TURN_MS of the rate, so
 * that a fast cap is not held to one chunk per handle per pass of the loop (the second outside
 * review measured 0.6 of a 100M cap that way); TOKENS_TURN_MIN at least, as a tunnel's turn, so
 * that a download of small chunks gets a tunnel's share, not a chunk per tunnel's 16 KiB. */
static int64_t turn_bytes(const struct rate_wait *w, int64_t rate)
{
    int64_t bytes = rate * RATE_TURN_MS / 1000;
    if (bytes < TOKENS_TURN_MIN)
        bytes = TOKENS_TURN_MIN;
    return bytes > (int64_t)w->pending ? bytes : (int64_t)w->pending;
}

/* One flow's turn: its oldest paused handle goes on with a turn's bytes paid for; the flow goes
 * to the back of the queue while it has others. */
static void let_go(struct rate_gate *g, int64_t rate)
{
    struct rate_flow *f = DLIST_ENTRY(g->flows.head, struct rate_flow, node);
    struct rate_wait *w = DLIST_ENTRY(f->waiting.head, struct rate_wait, node);
    dlist_remove(&f->waiting, &w->node);
    dlist_remove(&g->flows, &f->node);
    if (f->waiting.head)
        dlist_append(&g->flows, &f->node);
    w->queued = false;
    if (rate > 0) {
        int64_t turn = turn_bytes(w, rate);
        tokens_spend(&g->bucket, turn, g->now_ms());
        w->credit += turn;
    } else {
        w->credit += (int64_t)w->pending;
    }
    /* curl hands the chunk back to the callback now or at its next pass: paid for either way.
     * A callback that refuses it here (its download failed, its piece is in) only makes
     * curl_easy_pause fail, and the transfer goes on: so every owner refuses its next chunk
     * before it asks the gate (transfer_body, fill_range_body), where a refusal ends it. */
    curl_easy_pause(w->easy, CURLPAUSE_CONT);
}

static void tick(void *arg)
{
    struct rate_gate *g = arg;
    int64_t rate = tokens_rate(&g->bucket), tokens = 0;
    bool went = false;
    for (; g->flows.head &&
           (rate == 0 || (tokens = tokens_for_downloads(&g->bucket, g->now_ms())) > 0);
         went = true)
        let_go(g, rate);
    if (went) /* the next turn waits from now, behind the tunnels already waiting */
        tokens_downloads_wait(&g->bucket, g->flows.head ? g->now_ms() : TOKENS_NOT_WAITING);
    if (g->flows.head)
        arm(g, rate, tokens);
}

void rate_forget(struct rate_gate *g, struct rate_wait *w)
{
    struct rate_flow *f = w->flow;
    w->credit = 0;
    if (!w->queued)
        return;
    dlist_remove(&f->waiting, &w->node);
    w->queued = false;
    if (!f->waiting.head)
        dlist_remove(&g->flows, &f->node);
    if (!g->flows.head)
        tokens_downloads_wait(&g->bucket, TOKENS_NOT_WAITING);
}

void rate_stop(struct rate_gate *g)
{
    if (g->ready)
        timer_cancel(g->timers, &g->tick);
}
