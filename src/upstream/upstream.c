/* The upstream thread's loop: the queue of downloads, the multi handle, the timer heap and the
 * dispatch of each finished handle by its kind (see upstream.h; the transfer machine is
 * transfer_course.c, probes and documents probe.c, mirrors mirror.c). */
#include "upstream/upstream.h"
#include "base/clock.h"
#include "base/parse.h"
#include "log/log.h"
#include "upstream/fill.h"
#include "upstream/hosts.h"
#include "upstream/joins.h"
#include "upstream/parent.h"
#include "persist/persist.h"
#include "upstream/probe.h"
#include "upstream/source_probe.h"
#include "registry/reg_auth.h"
#include "registry/registries.h"
#include "remote/remotes.h"
#include "stats/stats.h"
#include "upstream/transfer.h"
#include "url/url.h"
#include "rules/rules.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* How often counters and expiry are handed over. */
#define HOUSEKEEPING_MS 1000
/* How often objects' usage is: every object used meanwhile is one UPDATE, and random hits over
 * 100,000 objects at 10,000 a second made the persistence thread spend 0.2-0.6 s of each second
 * on 10,000-20,000 of them, on a core the workers need (the big-index tail at that rate). In
 * ten seconds most objects are used more than once: one UPDATE each. A crash loses at most this
 * much of usage and last-use times (an order for eviction, nothing served); a stop loses none. */
#define USAGE_FLUSH_MS 10000
/* How soon the expiry sweep looks again after a step the disk's backlog skipped. */
#define EXPIRY_BEHIND_MS 100

/* A download that its host's hold refuses starts without a slot, and its attempt (hosts_admit)
 * comes once the persistence thread has made its file: one whose host's probe falls due within
 * this is not started so, lest the attempt meet the probe due and run as it, past the limits.
 * Only a file that takes longer to make than this leaves that window open. */
#define HELD_MARGIN_MS 1000
/* Starts remembered for taking turns: clients beyond it that wait are all "not served lately". */
#define RECENT 64
/* Clients remembered as joining one waiting download besides the one that asked first: more
 * than --max-downloads' clients can hold a slot each only when the slots are that many, so past
 * it a client that holds none is almost surely among them already. */
#define JOINERS_MAX 64

struct pending {
    struct object *obj;
    char *source;
    int64_t grant_until;
    const struct bucket_auth *auth;
    char *via;                /* the client's request's Via, or NULL */
    struct fetch_terms terms; /* the request's (a copy): what the download reads */
    bool waited;       /* it waited for a slot: readers of a refresh took the stale version */
    const char *why;   /* the limit it waits for now (its listing's waiting_for), or NULL */
    bool join;         /* not a download: `client` joined obj's, if it waits (upstream_join) */
    uint32_t gen;      /* join: its object's generation (object_gen), obj's address aside */
    bool unslotted;    /* it starts without a slot: its host's hold refuses it at once */
    bool awaits_probe; /* it waits for a slot to be its held host's probe (hosts_await_probe) */
    struct who client; /* who asked first */
    /* Clients that joined it while it waits (upstream_join), each once: it is theirs too. */
    struct who *joined;
    int n_joined;
    struct pending *next;
};

/* A download slot given: the running download and the client it counts against, the one whose
 * request started it, for its whole life (clients joining it take no slot of their own). A
 * transfer is transfer_course.c's alone, so the queue keeps this record beside it. */
struct slot {
    const struct transfer *t;
    struct who client;
};

static struct {
    struct upstream_loop loop;
    pthread_t thread;
    pthread_mutex_t lock; /* guards queue and closed */
    struct pending *queue;
    bool closed; /* the thread has taken its last look at the queue */
    /* Upstream thread only: */
    struct pending *backlog, **backlog_tail; /* waiting for a download slot, in arrival order */
    struct early_joins early;                /* joins that came before their download (joins.h) */
    struct slot *slots; /* one per download in loop.active (forget_ended drops the others) */
    int n_slots, slots_size;
    /* The clients of the last RECENT downloads started, the n-th at recent[n % RECENT]: whose
     * turn it is among clients holding as many slots (last_turn). */
    struct who recent[RECENT];
    int64_t n_started;
    struct timer housekeeping;
    int64_t usage_due;        /* monotonic ms of the next usage flush */
    struct timer expiry;      /* the expiry sweep's next step (expiry_step) */
    int64_t expiry_forced_ms; /* monotonic ms of its last step that did not wait for the disk */
} fx = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* The persistence thread has made a download's file (or failed to): look again. */
static void wake_fetch(void *arg)
{
    (void)arg;
    curl_multi_wakeup(fx.loop.multi);
}

/* Connections to `host` now: each download's own, and its fill's (fill.h). */
static int downloads_from(const char *host)
{
    int n = 0;
    for (struct transfer *t = fx.loop.active; t; t = transfer_next(t))
        n += strcasecmp(transfer_host(t), host) == 0 ? transfer_connections(t) : 0;
    return n;
}

/* One client for --max-downloads-per-client, as --max-connections-per-ip counts one: an IPv4
 * address whole (IPv4-mapped), an IPv6 address by its /64 (one host's privacy addresses are as
 * many as it likes). NULL is arca's own downloads: marked `own`, a key no address has (::1 is
 * in ::/64, whose key is all zero). A client it cannot name: all zero, not own. */
static struct who client_key(const struct sockaddr *client)
{
    struct who w = {.own = !client};
    if (!client || addr_to_v6(client, w.addr) != 0)
        memset(w.addr, 0, sizeof(w.addr));
    else if (!addr_is_v4_mapped(w.addr))
        memset(w.addr + 8, 0, 8);
    return w;
}

/* --max-downloads-per-client; 0 is all of --max-downloads but a quarter, at least one left for
 * the others (32: 24, 4: 3, 2: 1; 1: 1): a lab's lone client (a dispatcher, a prefetch batch, a
 * proxy not trusted to name its clients) gets most slots, and one client's slow URLs still
 * leave another its share. */
static int per_client_limit(void)
{
    const struct config *cfg = fx.loop.cfg;
    int all = cfg->max_downloads, spare = all / 4 > 1 ? all / 4 : 1;
    if (cfg->max_downloads_per_client > 0)
        return cfg->max_downloads_per_client;
    return all - spare > 1 ? all - spare : 1;
}

/* Slots whose download has ended are forgotten: O(slots x downloads), both within
 * --max-downloads (and the held hosts' downloads, which end at once). */
static void forget_ended(void)
{
    for (int i = 0; i < fx.n_slots;) {
        const struct transfer *t = fx.loop.active;
        while (t && t != fx.slots[i].t)
            t = transfer_next(t);
        if (t)
            i++;
        else
            fx.slots[i] = fx.slots[--fx.n_slots];
    }
}

/* The slot of `t`, just started for `client`. A record still naming its address is an ended
 * download's, whose memory `t` took over. Out of memory, `t` runs uncounted. */
static void record_slot(const struct transfer *t, const struct who *client)
{
    int i = 0;
    while (i < fx.n_slots && fx.slots[i].t != t)
        i++;
    if (i == fx.n_slots && fx.n_slots == fx.slots_size) {
        int size = fx.slots_size ? fx.slots_size * 2 : 64;
        struct slot *grown = realloc(fx.slots, (size_t)size * sizeof(*grown));
        if (!grown) {
            log_error("upstream: cannot count a download against its client (out of memory)");
            return;
        }
        fx.slots = grown;
        fx.slots_size = size;
    }
    fx.n_slots += i == fx.n_slots;
    fx.slots[i].t = t;
    fx.slots[i].client = *client;
}

/* The slots `client` holds now. */
static int slots_of(const struct who *client)
{
    int n = 0;
    for (int i = 0; i < fx.n_slots; i++)
        n += same_client(&fx.slots[i].client, client);
    return n;
}

static void free_pending(struct pending *p)
{
    free(p->source);
    free(p->via);
    free(p->joined);
    free(p);
}

/* `client` wants `p` too: each client once, up to JOINERS_MAX, the one that asked first aside. */
static void add_joiner(struct pending *p, const struct who *client)
{
    if (same_client(&p->client, client))
        return;
    for (int i = 0; i < p->n_joined; i++)
        if (same_client(&p->joined[i], client))
            return;
    if (p->n_joined == JOINERS_MAX ||
        (!p->joined && !(p->joined = malloc(JOINERS_MAX * sizeof(*p->joined)))))
        return; /* out of memory: it waits for the clients it has */
    p->joined[p->n_joined++] = *client;
}

/* Whether `obj` (one a waiting or running download holds) is the object `join` names: its
 * address and its generation, the address being maybe another's by now. */
static bool joined_object(const struct object *obj, const struct pending *join)
{
    return obj == join->obj && object_gen(obj) == join->gen;
}

/* `join` (upstream_join): its client joined the download of its object. One still waiting is
 * that client's too; one started is left as it is; one not arrived yet (its request between
 * its lookup and its post, on another worker) is given the join when it arrives (joins.h). */
static void apply_join(const struct pending *join)
{
    struct pending *p = fx.backlog;
    while (p && !joined_object(p->obj, join))
        p = p->next;
    if (p) {
        add_joiner(p, &join->client);
        return;
    }
    for (const struct transfer *t = fx.loop.active; t; t = transfer_next(t))
        if (joined_object(t->obj, join))
            return;
    joins_keep(&fx.early, join->obj, join->gen, &join->client);
}

/* A download arrived: the clients that joined it before it did are its too. */
static void take_early_joins(struct pending *p)
{
    struct who early[JOINERS_MAX];
    if (!fx.early.held)
        return;
    int n = joins_take(&fx.early, p->obj, object_gen(p->obj), early, JOINERS_MAX);
    for (int i = 0; i < n; i++)
        add_joiner(p, &early[i]);
}

/* New requests join the backlog's tail, in arrival order (the queue is LIFO); joins are applied
 * in that order too, so a join finds the download asked for before it. */
static void take_queue(void)
{
    struct pending *q, *rev = NULL;
    pthread_mutex_lock(&fx.lock);
    q = fx.queue;
    fx.queue = NULL;
    pthread_mutex_unlock(&fx.lock);
    while (q) {
        struct pending *next = q->next;
        q->next = rev;
        rev = q;
        q = next;
    }
    while (rev) {
        struct pending *next = rev->next;
        if (rev->join) {
            apply_join(rev);
            free_pending(rev);
        } else {
            rev->next = NULL;
            take_early_joins(rev);
            *fx.backlog_tail = rev;
            fx.backlog_tail = &rev->next;
        }
        rev = next;
    }
}

/* The limits a download may wait for, as its listing names them (waiting_for). */
static const char WAIT_ALL[] = "max-downloads", WAIT_HOST[] = "max-downloads-per-host",
                  WAIT_CLIENT[] = "max-downloads-per-client";

/* A download that must wait for a slot, for `limit`: its listing says which (the store's lock
 * taken only when that changes). A refresh's readers take the expired version it refreshes
 * meanwhile (store_offer_stale), as they would once upstream is slow. Once. */
static void waits(struct pending *item, const char *limit)
{
    if (!item->waited)
        store_offer_stale(item->obj, STALE_SLOW, 0);
    item->waited = true;
    if (item->why != limit)
        store_set_waiting(item->obj, limit);
    item->why = limit;
}

/* When `client` last had a download started: its number, or -1 (not among the last RECENT). */
static int64_t last_turn(const struct who *client)
{
    for (int64_t n = fx.n_started - 1; n >= 0 && n >= fx.n_started - RECENT; n--)
        if (same_client(&fx.recent[n % RECENT], client))
            return n;
    return -1;
}

/* A waiting download's place in line, lowest first: how many slots its client holds, then how
 * lately its client had a turn; among equals, the oldest (the backlog's order). */
struct rank {
    int held;
    int64_t turn;
};

static bool ranks_before(struct rank a, struct rank b)
{
    return a.held < b.held || (a.held == b.held && a.turn < b.turn);
}

/* Of the clients that want `item` (the one that asked first, those that joined it), the one it
 * is charged to: the first ranked, so it may start while any of them is under its share. */
static const struct who *charged_to(const struct pending *item, struct rank *r)
{
    const struct who *best = &item->client;
    *r = (struct rank){slots_of(best), last_turn(best)};
    for (int i = 0; i < item->n_joined; i++) {
        struct rank o = {slots_of(&item->joined[i]), last_turn(&item->joined[i])};
        if (ranks_before(o, *r)) {
            *r = o;
            best = &item->joined[i];
        }
    }
    return best;
}

/* A download its host's hold refuses: it starts at once without a slot (ranked first), never
 * as the host's probe (transfer_set_no_probe), and its attempt tells its clients so. */
static bool unslotted(struct pending *item, const struct who **last, struct rank *r)
{
    item->unslotted = true;
    *r = (struct rank){-1, -1};
    *last = NULL; /* `*r` is no client's rank now */
    return true;
}

/* Whether `item` may take a slot now; if so, its rank. A download its host's hold refuses
 * (hosts.h: held down, its probe out, awaited or not due within HELD_MARGIN_MS) takes no slot
 * (unslotted). Once the probe is due, the probe is a download like any other, within every
 * limit: the first of the host's downloads that may take a slot is it; when none may, one waits
 * for a slot to be it (hosts_await_probe) and the host's others are refused at once. The host's
 * probe mark is taken only as the probe starts (hosts_admit). `*r` holds the rank of the client
 * `*last` (NULL: none), reused for that client's items next in line: a client that asked for
 * thousands at once is ranked once a scan, not once per item (an item that clients joined is
 * ranked by all of them, charged_to). */
static bool may_start(struct pending *item, char *host, size_t size, bool any_down,
                      const struct who **last, struct rank *r)
{
    const struct config *cfg = fx.loop.cfg;
    bool full = fx.loop.n_active >= cfg->max_downloads;
    size_t hlen;
    if (full && item->why == WAIT_ALL && !any_down) /* the common wait: nothing to look at */
        return false;
    const char *h = url_host(object_url(item->obj), &hlen);
    snprintf(host, size, "%.*s", (int)hlen, h);
    int64_t now = fx.loop.now_ms();
    if (any_down && !item->awaits_probe &&
        hosts_refuses(item->source, &item->terms.outgoing, now, now + HELD_MARGIN_MS))
        return unslotted(item, last, r);
    const char *limit = full                                                  ? WAIT_ALL
                        : downloads_from(host) >= cfg->max_downloads_per_host ? WAIT_HOST
                                                                              : NULL;
    if (!limit) {
        if (item->n_joined) {
            charged_to(item, r);
            *last = NULL;
        } else if (!*last || !same_client(*last, &item->client)) {
            *r = (struct rank){slots_of(&item->client), last_turn(&item->client)};
            *last = &item->client;
        }
        if (r->held >= per_client_limit())
            limit = WAIT_CLIENT;
    }
    if (!limit)
        return true;
    /* its host held and not refusing it (above): its probe is due, none out or awaited, so this
     * download waits for a slot to be the probe (a host back up is tried within the limits,
     * however busy the lab); from now on the host's others are refused at once (hosts_refuses),
     * as before the probe was due, not kept waiting */
    if (any_down && !item->awaits_probe &&
        hosts_await_probe(item->source, &item->terms.outgoing, now + HELD_MARGIN_MS))
        item->awaits_probe = true;
    waits(item, limit);
    return false;
}

/* The waiting download to start next: of those the limits allow, the one ranked first (struct
 * rank); so clients take turns, however many each asked for, and one client's slow URLs leave
 * the others their share. NULL: none may start. */
static struct pending **next_to_start(char *host, size_t size)
{
    struct pending **best = NULL;
    struct rank best_rank = {0, 0}, r = {0, 0};
    const struct who *last = NULL;
    bool any_down = hosts_any_down();
    char candidate[256];
    for (struct pending **p = &fx.backlog; *p; p = &(*p)->next) {
        if (!may_start(*p, candidate, sizeof(candidate), any_down, &last, &r) ||
            (best && !ranks_before(r, best_rank)))
            continue;
        best = p;
        best_rank = r;
        snprintf(host, size, "%s", candidate);
        if (r.held <= 0 && r.turn < 0)
            break; /* none comes before it */
    }
    return best;
}

/* Move new requests to the backlog, then start what the limits allow, in turn across the
 * clients waiting (next_to_start); a host or a client at its limit does not hold up the
 * others. */
static void start_queued(void)
{
    struct pending **p;
    char host[256];
    assert(upstream_on_thread());
    take_queue();
    forget_ended();
    while ((p = next_to_start(host, sizeof(host)))) {
        struct pending *item = *p;
        struct rank r;
        const struct who *who = charged_to(item, &r);
        *p = item->next;
        if (fx.backlog_tail == &item->next)
            fx.backlog_tail = p;
        if (item->why)
            store_set_waiting(item->obj, NULL);
        struct transfer *t = transfer_new(&fx.loop, &transfer_store_real, item->obj, item->source,
                                          item->grant_until, item->auth, host, &item->terms);
        fx.recent[fx.n_started++ % RECENT] = *who;
        if (t)
            record_slot(t, who);
        if (t && item->unslotted)
            transfer_set_no_probe(t);
        if (t && item->via) {
            transfer_set_via(t, item->via);
            item->via = NULL;
        }
        item->source = NULL; /* transfer_new's */
        free_pending(item);
    }
}

/* Downloads whose file the persistence thread has made begin (transfer_poll_file). */
static void start_opened(void)
{
    assert(upstream_on_thread());
    for (struct transfer *t = fx.loop.active, *n; t; t = n) {
        n = transfer_next(t);
        transfer_poll_file(t);
    }
}

/* Downloads whose backoff is over retry once their host has a slot (transfer_poll_retry): they
 * held none meanwhile. Before any new download takes it, and after the reaping that freed it. */
static void start_retries(void)
{
    assert(upstream_on_thread());
    for (struct transfer *t = fx.loop.active, *n; t; t = n) {
        n = transfer_next(t);
        transfer_poll_retry(t);
    }
}

/* Readers of every running download learn of this pass's bytes at once (see store_append).
 * Returns the earliest monotonic ms by which a held reader must be looked at again, or 0. */
static int64_t announce_appended(void)
{
    int64_t first = 0;
    for (struct transfer *t = fx.loop.active; t; t = transfer_next(t)) {
        int64_t due = transfer_announce(t);
        if (due && (!first || due < first))
            first = due;
    }
    return first;
}

/* store_set_hold_wake's: a reader held, the next pass must come though no byte may. Under the
 * lock, as upstream_fetch: no wake-up reaches a multi handle being freed. */
static void wake_for_hold(void)
{
    pthread_mutex_lock(&fx.lock);
    if (!fx.closed)
        curl_multi_wakeup(fx.loop.multi);
    pthread_mutex_unlock(&fx.lock);
}

/* How long the loop may sleep: until the next timer, or the next held reader's due time. */
static int poll_ms(int64_t hold_due)
{
    int64_t now = monotonic_ms(), ms = timer_wait_ms(&fx.loop.timers, now, HOUSEKEEPING_MS);
    if (hold_due && hold_due - now < ms)
        ms = hold_due > now ? hold_due - now : 0;
    return (int)ms;
}

/* Each handle curl is done with goes to its owner, by its kind. */
static void reap_finished(void)
{
    CURLMsg *msg;
    int left;
    assert(upstream_on_thread());
    while ((msg = curl_multi_info_read(fx.loop.multi, &left))) {
        struct handle *h;
        if (msg->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&h);
        if (h->kind == HANDLE_PROBE) {
            probe_attempt_ended(h, msg->data.result);
        } else if (h->kind == HANDLE_SEGMENT) {
            fill_segment_ended(h, msg->data.result);
        } else {
            transfer_attempt_ended(h, msg->data.result);
        }
    }
}

/* What the index has not seen yet (objects' usage, failures, counters) handed to the persistence
 * thread: once a second (usage every USAGE_FLUSH_MS, and in a second no object was used), and
 * all of it once more as the thread ends (`all`). */
static void hand_over(bool all)
{
    int64_t now = monotonic_ms();
    if (all || now >= fx.usage_due) {
        while (store_flush_usage() && all)
            ; /* at a stop, every object's usage, however many */
        fx.usage_due = now + USAGE_FLUSH_MS;
    } else {
        store_flush_usage_quiet();
    }
    store_flush_failures();
    stats_save();
    parent_save_counters();
    registries_save_counters();
    remotes_save_counters();
}

/* Once a second: usage figures and counters handed over, the store down to a shrunk quota. A
 * loop held up past a whole period runs it once, not once per period missed. */
static void housekeeping(void *arg)
{
    int64_t next = fx.housekeeping.due_ms + HOUSEKEEPING_MS, now = monotonic_ms();
    (void)arg;
    assert(upstream_on_thread());
    hand_over(false);
    store_evict_over_quota();
    for (struct transfer *t = fx.loop.active; t; t = transfer_next(t))
        transfer_measure(t);
    if (timer_arm(&fx.loop.timers, &fx.housekeeping, next > now ? next : now + HOUSEKEEPING_MS,
                  housekeeping, NULL) < 0)
        log_error("upstream: cannot schedule housekeeping (out of memory)");
}

/* A step of the expiry sweep every STORE_EXPIRE_STEP_MS, between the loop's other work: its
 * holds of the lock spread over the second, never taken back to back (store_room.c says what
 * that cost the hits). A round over, the next begins a second later, so that a small table is
 * not swept over and over. The first step of each second goes even while the disk is behind;
 * another waits EXPIRY_BEHIND_MS, not a step's few ms, when the disk's backlog skipped it. */
static void expiry_step(void *arg)
{
    int64_t now = monotonic_ms();
    bool always = now - fx.expiry_forced_ms >= HOUSEKEEPING_MS;
    (void)arg;
    assert(upstream_on_thread());
    if (always)
        fx.expiry_forced_ms = now;
    int step = store_expire_step(always);
    int64_t after = step > 0    ? STORE_EXPIRE_STEP_MS
                    : step == 0 ? HOUSEKEEPING_MS
                                : EXPIRY_BEHIND_MS;
    if (timer_arm(&fx.loop.timers, &fx.expiry, now + after, expiry_step, NULL) < 0)
        log_error("upstream: cannot schedule expiry (out of memory)");
}

/* Nothing may be left waiting once the thread ends: fail queued and running downloads alike. */
static void fail_everything(void)
{
    assert(upstream_on_thread() && atomic_load(&fx.loop.stopping));
    pthread_mutex_lock(&fx.lock);
    fx.closed = true;
    pthread_mutex_unlock(&fx.lock);
    take_queue();
    while (fx.backlog) {
        struct pending *p = fx.backlog;
        fx.backlog = p->next;
        store_fail(p->obj, 503, "arca is shutting down");
        store_release(p->obj);
        free_pending(p);
    }
    probe_close(&fx.loop);
    while (fx.loop.active)
        transfer_stop(fx.loop.active);
    fill_sweep(&fx.loop);
    rate_stop(&fx.loop.gate);
    timer_cancel(&fx.loop.timers, &fx.housekeeping);
    timer_cancel(&fx.loop.timers, &fx.expiry);
}

static void *upstream_main(void *arg)
{
    int running;
    int64_t hold_due;
    (void)arg;
    pthread_setname_np(pthread_self(), "arca-upstream");
    upstream_claim_thread();
    timer_init(&fx.housekeeping);
    timer_init(&fx.expiry);
    if (timer_arm(&fx.loop.timers, &fx.housekeeping, monotonic_ms(), housekeeping, NULL) < 0)
        log_error("upstream: cannot schedule housekeeping (out of memory)");
    fx.expiry_forced_ms = monotonic_ms() - HOUSEKEEPING_MS;
    expiry_step(NULL);
    while (!atomic_load(&fx.loop.stopping)) {
        start_retries();
        start_queued();
        start_opened();
        probe_start_asked(&fx.loop);
        rate_poll(&fx.loop.gate);                   /* a cap changed by SIGHUP */
        timer_run(&fx.loop.timers, monotonic_ms()); /* backoffs over, housekeeping */
        curl_multi_perform(fx.loop.multi, &running);
        hold_due = announce_appended();
        reap_finished();
        start_retries();
        fill_sweep(&fx.loop); /* fills retired in the pass: outside curl's callbacks now */
        /* After the reaping, which may have armed timers; handles it re-adds make curl's own
         * timeout zero, so the poll returns at once for them. */
        curl_multi_poll(fx.loop.multi, NULL, 0, poll_ms(hold_due), NULL);
    }
    fail_everything();
    hand_over(true);
    return NULL;
}

int upstream_init(const struct config *cfg, char *err, size_t errlen)
{
    fx.loop.cfg = cfg;
    fx.loop.wake = wake_fetch;
    fx.loop.now_ms = monotonic_ms;
    fx.loop.check_host = probe_check_host;
    reg_auth_use_loop(&fx.loop); /* a client thread's reg_auth_ensure names none */
    rate_init(&fx.loop.gate, &fx.loop.timers, monotonic_ms);
    rate_set(&fx.loop.gate, cfg->upstream_rate);
    easy_via_init(cfg);
    hosts_configure(cfg->origin_failures, &cfg->outgoing);
    parent_init(cfg);                       /* shown in the status before any download asks it */
    if (sources_init(cfg, err, errlen) < 0) /* the --mirror rules downloads' terms name */
        return -1;
    fx.backlog_tail = &fx.backlog;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(fx.loop.multi = curl_multi_init())) {
        snprintf(err, errlen, "cannot initialise libcurl");
        return -1;
    }
    store_set_hold_wake(wake_for_hold);
    if (pthread_create(&fx.thread, NULL, upstream_main, NULL) != 0) {
        snprintf(err, errlen, "cannot start the upstream thread");
        return -1;
    }
    return 0;
}

/* `p` to the upstream thread's queue; false when arca stops (`p` is the caller's still). */
static bool post(struct pending *p)
{
    pthread_mutex_lock(&fx.lock);
    bool open = !fx.closed;
    if (open) {
        p->next = fx.queue;
        fx.queue = p;
        /* Under the lock: once `closed` is set no wake-up can reach a multi handle being
         * freed. */
        curl_multi_wakeup(fx.loop.multi);
    }
    pthread_mutex_unlock(&fx.lock);
    return open;
}

void upstream_fetch(struct object *obj, const struct fetch_source *src)
{
    struct pending *p = calloc(1, sizeof(*p));
    if (!p || !(p->source = strdup(src->url))) {
        free(p);
        store_fail(obj, 500, "out of memory");
        store_release(obj);
        return;
    }
    p->obj = obj;
    if (src->terms) {
        p->terms = *src->terms;
    } else { /* arca's own (a resume): as a request without a client would have them */
        struct request_facts req = {.url = src->url, .key = object_url(obj)};
        terms_decide(fx.loop.cfg, &req, &p->terms);
    }
    p->grant_until = src->grant_until;
    p->auth = src->auth;
    p->via = src->via ? strdup(src->via) : NULL; /* lost when out of memory: arca's own stays */
    p->client = client_key(src->client);
    if (!post(p)) {
        /* A request that came in on a kept-alive connection while arca stops. */
        free_pending(p);
        store_fail(obj, 503, "arca is shutting down");
        store_release(obj);
    }
}

void upstream_join(const struct object *obj, const struct sockaddr *client)
{
    struct pending *p = calloc(1, sizeof(*p));
    if (!p)
        return;                    /* out of memory: the download waits for the clients it has */
    p->obj = (struct object *)obj; /* compared, never followed (nor released) */
    p->gen = object_gen(obj);      /* the caller's reference holds it still */
    p->join = true;
    p->client = client_key(client);
    if (!post(p))
        free(p);
}

int upstream_probe(const char *url, const char *parent, const struct registry_ask *reg,
                   void (*done)(const struct probe_result *res, void *arg), void *arg)
{
    struct source_req src;
    if (source_req_for_probe(parent, reg, &src) < 0)
        return -1;
    return probe_ask(&fx.loop, url, &src, HOST_ORIGIN, done, arg, true);
}

int upstream_get(const char *url, const struct bucket_auth *auth,
                 void (*done)(const struct probe_result *res, const char *body, size_t len,
                              void *arg),
                 void *arg)
{
    return probe_get(&fx.loop, url, auth, done, arg);
}

void upstream_set_rate(int64_t bytes_per_s)
{
    if (!rate_set(&fx.loop.gate, bytes_per_s))
        return;
    /* The paused handles wait for a tick set at the old rate: the loop's rate_poll brings it
     * forward. Under the lock, as upstream_fetch: no wake-up reaches a multi handle freed. */
    pthread_mutex_lock(&fx.lock);
    if (!fx.closed)
        curl_multi_wakeup(fx.loop.multi);
    pthread_mutex_unlock(&fx.lock);
}

int64_t upstream_rate_cap(void)
{
    return rate_get(&fx.loop.gate);
}

struct token_bucket *upstream_rate_tokens(void)
{
    return rate_bucket(&fx.loop.gate);
}

void upstream_stop(void)
{
    atomic_store(&fx.loop.stopping, true);
    curl_multi_wakeup(fx.loop.multi);
    pthread_join(fx.thread, NULL);
    persist_flush(); /* its jobs may still call wake_fetch() */
    timer_heap_free(&fx.loop.timers);
    curl_multi_cleanup(fx.loop.multi);
    curl_global_cleanup();
    free(fx.slots);
    sources_cleanup();
}
