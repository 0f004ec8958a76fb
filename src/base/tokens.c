/* The uplink cap's token bucket (tokens.h). */
#include "base/tokens.h"

static int64_t clamp_rate(int64_t rate)
{
    return rate <= 0 ? 0 : rate > TOKENS_RATE_MAX ? TOKENS_RATE_MAX : rate;
}

/* What the bucket holds at most at `rate`, in thousandths of a byte. */
static int64_t burst_of(int64_t rate)
{
    int64_t burst = rate * TOKENS_BURST_MS;
    return burst < (int64_t)TOKENS_BURST_MIN * 1000 ? (int64_t)TOKENS_BURST_MIN * 1000 : burst;
}

/* The tokens the time since the last refill adds, up to the burst. The time counts only up to
 * what fills the bucket from empty: the rate times a long idle (the clock does not move the
 * refill while nothing is capped) would overflow. Under the lock. */
static void refill(struct token_bucket *b, int64_t rate, int64_t now_ms)
{
    int64_t burst = burst_of(rate), elapsed = now_ms - b->refilled_ms;
    if (elapsed > burst / rate + 1)
        elapsed = burst / rate + 1;
    if (elapsed > 0)
        b->tokens += rate * elapsed; /* bytes/s * ms = thousandths of bytes */
    if (now_ms > b->refilled_ms)
        b->refilled_ms = now_ms;
    if (b->tokens > burst)
        b->tokens = burst;
}

void tokens_init(struct token_bucket *b, int64_t now_ms)
{
    pthread_mutex_init(&b->lock, NULL);
    atomic_store(&b->rate, 0);
    atomic_store(&b->epoch, 0);
    b->tokens = 0;
    b->refilled_ms = now_ms;
    b->downloads_since = TOKENS_NOT_WAITING;
    b->tunnels_since = TOKENS_NOT_WAITING;
}

bool tokens_set(struct token_bucket *b, int64_t bytes_per_s, int64_t now_ms)
{
    int64_t rate = clamp_rate(bytes_per_s);
    bool changed;
    pthread_mutex_lock(&b->lock);
    if ((changed = atomic_load(&b->rate) != rate)) {
        b->tokens = 0;
        b->refilled_ms = now_ms;
        atomic_store(&b->rate, rate);
        atomic_fetch_add(&b->epoch, 1);
    }
    pthread_mutex_unlock(&b->lock);
    return changed;
}

int64_t tokens_rate(struct token_bucket *b)
{
    return atomic_load(&b->rate);
}

uint64_t tokens_epoch(struct token_bucket *b)
{
    return atomic_load(&b->epoch);
}

int64_t tokens_held(struct token_bucket *b, int64_t now_ms)
{
    int64_t tokens = 0;
    pthread_mutex_lock(&b->lock);
    int64_t rate = atomic_load(&b->rate);
    if (rate > 0) {
        refill(b, rate, now_ms);
        tokens = b->tokens;
    }
    pthread_mutex_unlock(&b->lock);
    return tokens;
}

void tokens_spend(struct token_bucket *b, int64_t bytes, int64_t now_ms)
{
    tokens_spend_in(b, bytes, now_ms, tokens_epoch(b));
}

bool tokens_spend_in(struct token_bucket *b, int64_t bytes, int64_t now_ms, uint64_t epoch)
{
    pthread_mutex_lock(&b->lock);
    int64_t rate = atomic_load(&b->rate);
    bool same = atomic_load(&b->epoch) == epoch;
    if (same && rate > 0) {
        refill(b, rate, now_ms);
        b->tokens -= bytes * 1000;
    }
    pthread_mutex_unlock(&b->lock);
    return same;
}

/* A taker's turn when the bucket holds `held` bytes (its thousandths may make it 0): what it
 * holds, or a download's least turn into debt, as a download's tick takes it (tokens.h). */
static size_t turn_of(int64_t held, size_t want)
{
    size_t least = want < TOKENS_TURN_MIN ? want : TOKENS_TURN_MIN;
    if (held >= (int64_t)want)
        return want;
    return held > (int64_t)least ? (size_t)held : least;
}

void tokens_downloads_wait(struct token_bucket *b, int64_t since_ms)
{
    pthread_mutex_lock(&b->lock);
    b->downloads_since = since_ms;
    pthread_mutex_unlock(&b->lock);
}

/* Whether a taker waiting since `since` yields a bucket holding something to one waiting since
 * `other`: it waited longer, and the bucket began to hold something less than TOKENS_YIELD_MS
 * ago (a wake-up later than that is not coming soon: the taker goes). Under the lock. */
static bool yields(const struct token_bucket *b, int64_t rate, int64_t since, int64_t other)
{
    return other < since && b->tokens > 0 && b->tokens < rate * TOKENS_YIELD_MS;
}

int64_t tokens_for_downloads(struct token_bucket *b, int64_t now_ms)
{
    int64_t tokens = 0;
    pthread_mutex_lock(&b->lock);
    int64_t rate = atomic_load(&b->rate);
    if (rate > 0) {
        refill(b, rate, now_ms);
        if (!yields(b, rate, b->downloads_since, b->tunnels_since))
            tokens = b->tokens;
    }
    pthread_mutex_unlock(&b->lock);
    return tokens;
}

/* A tunnel waiting since `since` took its turn or went away: it is no longer the oldest (the
 * others waiting set theirs again as they are refused). Under the lock. */
static void leave(struct token_bucket *b, int64_t since)
{
    if (since <= b->tunnels_since)
        b->tunnels_since = TOKENS_NOT_WAITING;
}

void tokens_leave(struct token_bucket *b, int64_t since_ms)
{
    pthread_mutex_lock(&b->lock);
    leave(b, since_ms);
    pthread_mutex_unlock(&b->lock);
}

size_t tokens_take(struct token_bucket *b, size_t want, int64_t now_ms, int64_t *since_ms,
                   int64_t *wait_ms)
{
    size_t got = want;
    pthread_mutex_lock(&b->lock);
    int64_t rate = atomic_load(&b->rate);
    if (rate > 0) {
        refill(b, rate, now_ms);
        bool yield = yields(b, rate, *since_ms, b->downloads_since);
        got = b->tokens > 0 && !yield ? turn_of(b->tokens / 1000, want) : 0;
        b->tokens -= (int64_t)got * 1000;
        if (got == 0) {
            *wait_ms = yield ? 1 : tokens_wait_ms(b->tokens, rate);
            if (*since_ms == TOKENS_NOT_WAITING)
                *since_ms = now_ms;
            if (*since_ms < b->tunnels_since)
                b->tunnels_since = *since_ms;
        }
    }
    if (got > 0) {
        leave(b, *since_ms);
        *since_ms = TOKENS_NOT_WAITING;
    }
    pthread_mutex_unlock(&b->lock);
    return got;
}

int64_t tokens_wait_ms(int64_t tokens, int64_t rate)
{
    return tokens <= 0 ? -tokens / rate + 1 : 0;
}
