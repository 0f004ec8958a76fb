#include "http/http_limits.h"
#include "rules/policy.h"
#include "base/clock.h"
#include "log/log.h"
#include "base/parse.h"
#include "stats/stats.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define WATCH_INTERVAL_MS 250
#define IDLE_CLAIMED (-1)
/* A connection over a limit gets this long (not --header-timeout) to send the request it will
 * be told why on: silent ones from an address over its limit cannot hold the server's sockets */
#define REFUSED_HEAD_MS 1000
/* More connections over its limit than this from one client are closed at once, unanswered:
 * they would hold the server's own cap (a little above --max-connections) against everyone. */
#define REFUSED_PER_CLIENT 8
/* A connection whose last answer is done and which closes may linger this long for its client
 * to close first (so that no reset destroys the answer), as nginx's lingering_timeout. */
#define CLOSING_MS 2000

/* The request path touches a connection's entry without the mutex: `deadline_ms` is atomic and
 * the over_* flags never change after the entry is published. The mutex guards the list. */
struct conn_track {
    int fd;
    uint8_t addr[16];
    _Atomic int64_t deadline_ms; /* a head (or a body) due by then; 0 while a request is served */
    /* When it became an idle keep-alive connection (its last response done, no next head
     * yet), as a ticket of lim.idle_tickets (the oldest has the lowest); 0 while new or busy;
     * IDLE_CLAIMED once a cut claimed it. */
    _Atomic int64_t idle_since;
    bool over_ip, over_total;
    bool refused; /* over a limit when it opened: answered once, never counted in the total */
    bool leaving; /* under `lock`: its last answer done and closing, or cut: not counted */
    bool closing; /* under `lock`: its last answer done and closing (its deadline: CLOSING_MS) */
    /* From a --trusted-proxy: the connection carries many clients' requests in turn, so it
     * counts for the client of the request it serves (X-Forwarded-For), and only meanwhile. */
    bool proxied, serving;
    struct conn_track *prev, *next;
};

static struct {
    const struct config *cfg;
    pthread_mutex_t lock;
    struct conn_track *head;
    int count;
    int leaving; /* of them, those leaving (conn_track.leaving): not counted in the total */
    int refused; /* of them, those over a limit when they opened (conn_track.refused) */
    _Atomic int64_t idle_tickets; /* the last idle_since given: a clock that never ties */
    pthread_t watchdog;
    pthread_cond_t stop; /* signalled under `lock` by limits_stop: a stop waits for no tick */
    bool stopping;       /* under `lock` */
    bool started;
} lim = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* One client for --max-connections-per-ip: the same IPv4 address, or the same IPv6 /64 (one
 * host's share of a network: its privacy addresses are as many as it likes). An IPv4 address
 * (mapped: ::ffff:a.b.c.d) is compared whole, so that no IPv6 address in ::/64 is its twin. */
static bool same_client(const uint8_t a[16], const uint8_t b[16])
{
    return !memcmp(a, b, addr_is_v4_mapped(a) || addr_is_v4_mapped(b) ? 16 : 8);
}

/* Lock held. O(connections): once per new connection, bounded by --max-connections. */
static int same_address(const uint8_t addr[16])
{
    int n = 0;
    for (struct conn_track *t = lim.head; t; t = t->next)
        n += (!t->proxied || t->serving) && same_client(t->addr, addr);
    return n;
}

/* Lock held: the connections of this client that are over a limit and still listed. */
static int refused_from(const uint8_t addr[16])
{
    int n = 0;
    for (struct conn_track *t = lim.head; t; t = t->next)
        n += t->refused && !t->proxied && same_client(t->addr, addr);
    return n;
}

/* Lock held: t's place is free from now on (it is listed until the server closes it). */
static void leaves(struct conn_track *t)
{
    if (!t->refused && !t->leaving) {
        t->leaving = true;
        lim.leaving++;
    }
}

/* Lock held: claim an idle keep-alive connection and shut its socket down (not close: the server
 * owns the descriptor, and closes it its usual way once it sees the end of the stream). False
 * when the connection began a request meanwhile: a busy connection is never cut. */
static bool cut_idle(struct conn_track *t)
{
    int64_t since = atomic_load(&t->idle_since);
    if (since <= 0 || t->fd < 0 ||
        !atomic_compare_exchange_strong(&t->idle_since, &since, IDLE_CLAIMED))
        return false;
    shutdown(t->fd, SHUT_RDWR);
    leaves(t);
    return true;
}

/* Lock held: at --max-connections, the keep-alive connection idle longest makes room for a new
 * one (as nginx reuses its "reusable" connections); whether one did. */
static bool make_room(void)
{
    for (;;) {
        struct conn_track *oldest = NULL;
        for (struct conn_track *t = lim.head; t; t = t->next) {
            int64_t since = atomic_load(&t->idle_since);
            if (since > 0 && (!oldest || since < atomic_load(&oldest->idle_since)))
                oldest = t;
        }
        if (!oldest)
            return false;
        if (cut_idle(oldest)) {
            atomic_fetch_add(&stats.idle_closed, 1);
            return true;
        } /* it began a request meanwhile: the next oldest */
    }
}

bool limits_conn_open(int fd, const struct sockaddr *peer, struct conn_track **out)
{
    struct conn_track *t = calloc(1, sizeof(*t));
    *out = t;
    if (!t)
        return true;
    t->fd = fd;
    if (peer)
        addr_to_v6(peer, t->addr);
    t->proxied = peer && policy_trusted_proxy(peer);
    atomic_init(&t->deadline_ms, monotonic_ms() + lim.cfg->header_timeout * 1000);
    pthread_mutex_lock(&lim.lock);
    assert(lim.count >= 0 && (lim.head == NULL) == (lim.count == 0));
    t->over_ip = !t->proxied && same_address(t->addr) >= lim.cfg->max_connections_per_ip;
    if (t->over_ip && refused_from(t->addr) >= REFUSED_PER_CLIENT) {
        /* dropped before the client can see it closed: it never held the engine's cap */
        pthread_mutex_unlock(&lim.lock);
        atomic_fetch_add(&stats.limited, 1);
        free(t);
        *out = NULL;
        return false;
    }
    /* Counted in the total: neither the connections leaving (cut, or closing after their last
     * answer: listed until the server closes them) nor those only told they are over a limit,
     * so that one address over its own limit fills no one else's places; and no idle
     * connection is cut for one that is refused anyway. */
    t->over_total = !t->over_ip &&
                    lim.count - lim.leaving - lim.refused >= lim.cfg->max_connections &&
                    !make_room();
    if ((t->refused = t->over_ip || t->over_total)) {
        lim.refused++; /* its one answer is due at once: it holds the server's own cap briefly */
        atomic_store(&t->deadline_ms, monotonic_ms() + REFUSED_HEAD_MS);
    }
    t->next = lim.head;
    if (lim.head)
        lim.head->prev = t;
    lim.head = t;
    lim.count++;
    pthread_mutex_unlock(&lim.lock);
    return true;
}

void limits_conn_close(struct conn_track *t)
{
    if (!t)
        return;
    pthread_mutex_lock(&lim.lock);
    assert(lim.count > 0 && (t->prev ? t->prev->next == t : lim.head == t));
    if (t->prev)
        t->prev->next = t->next;
    else
        lim.head = t->next;
    if (t->next)
        t->next->prev = t->prev;
    lim.count--;
    lim.leaving -= t->leaving;
    lim.refused -= t->refused;
    assert(lim.leaving >= 0 && lim.refused >= 0 && lim.leaving + lim.refused <= lim.count);
    pthread_mutex_unlock(&lim.lock);
    free(t);
}

static void set_deadline(struct conn_track *t, int64_t deadline_ms)
{
    if (t)
        atomic_store(&t->deadline_ms, deadline_ms);
}

void limits_request_begins(struct conn_track *t, const struct sockaddr *client)
{
    int64_t since;
    set_deadline(t, 0);
    /* busy from now on, unless a cut claimed it first (its socket is shut down: the request
     * fails as on any keep-alive connection closed by its server at the moment of reuse) */
    if (t && (since = atomic_load(&t->idle_since)) > 0)
        atomic_compare_exchange_strong(&t->idle_since, &since, 0);
    if (!t || !t->proxied)
        return;
    pthread_mutex_lock(&lim.lock);
    t->serving = false;
    if (!client)
        memset(t->addr, 0, sizeof(t->addr)); /* unknown clients share one count, as "::" */
    if (!client || addr_to_v6(client, t->addr) == 0) {
        t->over_ip = same_address(t->addr) >= lim.cfg->max_connections_per_ip;
        t->serving = true;
    }
    pthread_mutex_unlock(&lim.lock);
}

void limits_body_due(struct conn_track *t)
{
    set_deadline(t, monotonic_ms() + lim.cfg->header_timeout * 1000);
}

void limits_body_in(struct conn_track *t)
{
    set_deadline(t, 0);
}

void limits_request_ends(struct conn_track *t, bool keep_alive)
{
    /* A quiet connection is the engine's to close at the idle timeout (not a limit's refusal);
     * this later deadline cuts one that trickles its next head, which restarts the idle clock. */
    int64_t busy = 0;
    if (!t)
        return;
    if (keep_alive) { /* idle until its next head, unless a cut claimed it meanwhile */
        set_deadline(t, monotonic_ms() + (lim.cfg->idle_timeout + lim.cfg->header_timeout) * 1000);
        atomic_compare_exchange_strong(&t->idle_since, &busy,
                                       atomic_fetch_add(&lim.idle_tickets, 1) + 1);
    }
    if (keep_alive && !t->proxied)
        return; /* the usual keep-alive hit: nothing listed changes, the lock is not taken */
    pthread_mutex_lock(&lim.lock);
    t->serving = false;
    if (!keep_alive) { /* it closes: its place is free, and it lingers briefly */
        leaves(t);
        t->closing = true;
        set_deadline(t, monotonic_ms() + CLOSING_MS);
    }
    pthread_mutex_unlock(&lim.lock);
}

unsigned int limits_refusal(const struct conn_track *t, const char **reason)
{
    if (t && t->over_total) {
        *reason = "too many client connections (--max-connections); try again later";
        return 503 /* Service Unavailable */;
    }
    if (t && t->over_ip) {
        *reason = "too many connections from your address (--max-connections-per-ip)";
        return 429 /* Too Many Requests */;
    }
    return 0;
}

int limits_drain_idle(void)
{
    int cut = 0;
    bool all_idle = true;
    pthread_mutex_lock(&lim.lock);
    for (struct conn_track *t = lim.head; t && all_idle; t = t->next)
        all_idle = atomic_load(&t->idle_since) != 0;
    for (struct conn_track *t = lim.head; t && all_idle; t = t->next)
        cut += cut_idle(t);
    pthread_mutex_unlock(&lim.lock);
    return cut;
}

/* Lock held: wait one tick, or less if the server stops. */
static void wait_tick(void)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_nsec += WATCH_INTERVAL_MS * 1000000L;
    until.tv_sec += until.tv_nsec / 1000000000L;
    until.tv_nsec %= 1000000000L;
    while (!lim.stopping && pthread_cond_timedwait(&lim.stop, &lim.lock, &until) == 0)
        ;
}

/* Lock held: shut down (not close: the server owns the descriptor) the connections whose
 * headers are late, and say how many; the server then sees the end of the stream and closes them
 * its usual way. */
static int cut_overdue(void)
{
    int64_t now = monotonic_ms();
    int cut = 0;
    for (struct conn_track *t = lim.head; t; t = t->next) {
        int64_t due = atomic_load(&t->deadline_ms);
        /* The exchange fails if the request's headers arrived meanwhile. */
        if (due && now > due && t->fd >= 0 &&
            atomic_compare_exchange_strong(&t->deadline_ms, &due, 0)) {
            if (!t->closing)                         /* a lingering close is no refusal */
                atomic_fetch_add(&stats.limited, 1); /* before the client can see the close */
            shutdown(t->fd, SHUT_RDWR);
            cut += !t->closing;
        }
    }
    return cut;
}

static void *watch(void *arg)
{
    bool stopping;
    (void)arg;
    pthread_setname_np(pthread_self(), "arca-watchdog");
    do {
        pthread_mutex_lock(&lim.lock);
        int cut = cut_overdue();
        pthread_mutex_unlock(&lim.lock);
        if (cut)
            log_info("closed %d connection%s that sent no complete request in time", cut,
                     cut == 1 ? "" : "s");
        pthread_mutex_lock(&lim.lock);
        wait_tick();
        stopping = lim.stopping;
        pthread_mutex_unlock(&lim.lock);
    } while (!stopping);
    return NULL;
}

int limits_start(const struct config *cfg, char *err, size_t errlen)
{
    pthread_condattr_t attr;
    lim.cfg = cfg;
    lim.stopping = false;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&lim.stop, &attr);
    pthread_condattr_destroy(&attr);
    if (pthread_create(&lim.watchdog, NULL, watch, NULL) != 0) {
        pthread_cond_destroy(&lim.stop);
        snprintf(err, errlen, "cannot start the connection watchdog");
        return -1;
    }
    lim.started = true;
    return 0;
}

void limits_stop(void)
{
    if (!lim.started)
        return;
    pthread_mutex_lock(&lim.lock);
    lim.stopping = true;
    pthread_cond_signal(&lim.stop);
    pthread_mutex_unlock(&lim.lock);
    pthread_join(lim.watchdog, NULL);
    pthread_cond_destroy(&lim.stop);
    lim.started = false;
}
