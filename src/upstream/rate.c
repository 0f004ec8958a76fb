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
 * without a cap), and `least_ms` from now at the soonest. Out of memory, no tick: the next
 * admit finds the queue and arms again. */
static void arm(struct rate_gate *g, int64_t rate, int64_t tokens, int64_t least_ms)
{
    int64_t wait = rate > 0 ? tokens_wait_ms(tokens, rate) : 0;
    timer_arm(g->timers, &g->tick, g->now_ms() + (wait > least_ms ? wait : least_ms), tick, g);
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
    if (w->epoch != tokens_epoch(&g->bucket)) /* paid at a cap changed since: void */
        w->credit = 0;
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
        arm(g, rate, tokens_held(&g->bucket, g->now_ms()), 0);
    return false;
}

/* What a turn lets a handle take at least: RATE_TURN_MS of the rate, so that a fast cap is not
 * held to one chunk per handle per pass of the loop (the second outside review measured 0.6 of
 * a 100M cap that way); TOKENS_TURN_MIN at least, as a tunnel's turn, so that a download of
 * small chunks gets a tunnel's share, not a chunk per tunnel's 16 KiB. */
static int64_t turn_min(int64_t rate)
{
    int64_t bytes = rate * RATE_TURN_MS / 1000;
    return bytes < TOKENS_TURN_MIN ? TOKENS_TURN_MIN : bytes;
}

/* `f`'s oldest paused handle goes on with `bytes` paid for at the cap of `epoch` (its paused
 * chunk at least; what it paused on, without a cap). false: that cap changed meanwhile (SIGHUP,
 * on another thread), nothing paid and the handle still paused: rate_poll wakes the queue at the
 * new cap. */
static bool let_go(struct rate_gate *g, struct rate_flow *f, int64_t rate, int64_t bytes,
                   uint64_t epoch)
{
    struct rate_wait *w = DLIST_ENTRY(f->waiting.head, struct rate_wait, node);
    if ((int64_t)w->pending > bytes || rate == 0)
        bytes = (int64_t)w->pending;
    if (rate > 0 && !tokens_spend_in(&g->bucket, bytes, g->now_ms(), epoch))
        return false;
    dlist_remove(&f->waiting, &w->node);
    w->queued = false;
    if (w->epoch != epoch) /* what is left of a changed cap's turn: void */
        w->credit = 0;
    w->credit += bytes;
    w->epoch = epoch;
    /* curl hands the chunk back to the callback now or at its next pass: paid for either way.
     * A callback that refuses it here (its download failed, its piece is in) only makes
     * curl_easy_pause fail, and the transfer goes on: so every owner refuses its next chunk
     * before it asks the gate (transfer_body, fill_range_body), where a refusal ends it. */
    curl_easy_pause(w->easy, CURLPAUSE_CONT);
    return true;
}

static int count(const struct dlist *l)
{
    int n = 0;
    for (const struct dnode *d = l->head; d; d = d->next)
        n++;
    return n;
}

/* The flow at the head of the queue takes its turn of the round: `share` bytes, spread over as
 * many of its paused handles, oldest first, as get a least turn each (one at least), so that a
 * download over one connection and a fill over four take the same bytes a round. Without a cap,
 * every paused handle goes. A handle let go may pause again at once (curl hands the callback
 * more than it paid for), queueing its flow again: the flow stays queued while it has a handle
 * paused, and only then (the queue holds no flow with none). false: the cap changed under the
 * round, which ends (the flow keeps its place when it had nothing). */
static bool flow_turn(struct rate_gate *g, int64_t rate, int64_t share, uint64_t epoch)
{
    struct rate_flow *f = DLIST_ENTRY(g->flows.head, struct rate_flow, node);
    int64_t least = rate > 0 ? turn_min(rate) : 1, paused = count(&f->waiting);
    int64_t n = rate > 0 ? share / least : paused, given = 0;
    bool same = true;
    n = n < 1 ? 1 : n > paused ? paused : n;
    dlist_remove(&g->flows, &f->node);
    for (; f->waiting.head && (rate == 0 || given < n); given++)
        if (!(same = let_go(g, f, rate, share / n > least ? share / n : least, epoch)))
            break;
    if (!f->waiting.head)
        dlist_remove(&g->flows, &f->node);
    else if (!dlist_linked(&g->flows, &f->node) && given == 0)
        dlist_prepend(&g->flows, &f->node);
    else if (!dlist_linked(&g->flows, &f->node))
        dlist_append(&g->flows, &f->node);
    return same;
}

/* Under a cap, one round: each flow queued when the tick came takes one turn, an equal share of
 * what the bucket holds, while it holds anything. The next round waits for the loop's next pass,
 * a millisecond on (a tick due now would come again within this timer_run), once curl has read
 * every socket: a download over one connection, let go in this round, is back in the queue by
 * then. Rounds running on while it was out, a turn a handle, gave a fill's four connections up
 * to four turns to its one whenever ticks came late: under ASan beside a CPU-heavy job, a
 * fill's 8 MiB took 3.4-3.7 s and a single connection's 4.2-4.3 under a 4M cap, where both
 * should take 4. Without a cap, everything waiting goes at once. */
static void tick(void *arg)
{
    struct rate_gate *g = arg;
    uint64_t epoch = tokens_epoch(&g->bucket); /* before the rate: a change between fails it */
    int64_t rate = tokens_rate(&g->bucket), tokens = 0, share = 0;
    int round = count(&g->flows);
    bool went = false;
    if (rate > 0 && round > 0 && (tokens = tokens_for_downloads(&g->bucket, g->now_ms())) > 0)
        share = tokens / 1000 / round > 0 ? tokens / 1000 / round : 1;
    for (int i = 0; g->flows.head && (rate == 0 || (i < round && tokens > 0)); i++) {
        if (!flow_turn(g, rate, share, epoch))
            break;
        went = true;
        if (rate > 0)
            tokens = tokens_for_downloads(&g->bucket, g->now_ms());
    }
    if (went) /* the next turn waits from now, behind the tunnels already waiting */
        tokens_downloads_wait(&g->bucket, g->flows.head ? g->now_ms() : TOKENS_NOT_WAITING);
    if (g->flows.head)
        arm(g, rate, rate > 0 ? tokens_for_downloads(&g->bucket, g->now_ms()) : 0, 1);
}

void rate_forget(struct rate_gate *g, struct rate_wait *w)
{
    struct rate_flow *f = w->flow;
    /* paid for and never taken: back to the bucket (a round's share may be 100 ms of the cap),
     * if the cap it was paid at is still the one */
    if (w->credit > 0 && g->ready)
        tokens_spend_in(&g->bucket, -w->credit, g->now_ms(), w->epoch);
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
