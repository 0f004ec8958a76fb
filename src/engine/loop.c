/* The workers' loops (engine.h): one epoll loop per thread over the shared listening socket,
 * each new connection handed to the worker with the fewest, going on with its connections as
 * their sockets, their turns, their wake-ups and their idle clocks say (what a worker keeps is
 * worker.c's). */
#include "engine/engine_internal.h"
#include "log/log.h"

#include <assert.h>
#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/clock.h"

#define MAX_WORKERS 256
#define EVENTS_PER_WAIT 256
#define ACCEPTS_PER_TURN 64
/* Between two ready connections, epoll is asked again once this long has gone by (run_ready). */
#define LOOK_EVERY_US 200
/* epoll data that is not a connection (a connection's address is far above these; a tunnel's
 * upstream socket is tagged with an odd one, tunnel.c): the wake-up, and listening socket i's
 * TAG_LISTEN(i) */
#define TAG_WAKE ((uint64_t)2)
#define TAG_LISTEN(i) ((uint64_t)16 + 16 * (uint64_t)(i))
#define LISTENER_OF(tag) ((int)(((tag)-16) / 16))
#define IS_LISTEN_TAG(tag)                                                                         \
    ((tag) >= 16 && (tag) < TAG_LISTEN(ENGINE_MAX_LISTENERS) && !((tag) % 16))

static struct worker workers[MAX_WORKERS];
static int n_workers;
static struct engine_listener listeners[ENGINE_MAX_LISTENERS];
static int n_listeners;
static atomic_bool stopping, unlisten;
static atomic_int unlistened; /* workers that took the listening socket out */
/* Workers a new connection may be handed to: all of them once every one is started (a worker
 * still being made has no eventfd yet), none from the stop on. */
static atomic_int handing_to;
/* Connections handed over and not opened yet. Each holds a descriptor and no place under the
 * hard cap (worker_admit: taken as it is opened, where a client over its limits is dropped, so
 * that a flood from one address queued for the others takes no real client's place); beyond
 * HANDED_MAX, a worker opens what it accepts itself. engine_stop_listening waits for them. */
#define HANDED_MAX 64
static atomic_int handed_out;

/* A connection accepted by one worker for another to own (accept_some). */
struct handed {
    struct handed *next;
    int fd;
    bool tls;
    socklen_t len;
    struct sockaddr_storage peer;
};

/* The worker a new connection goes to: the one with the fewest if it has at least two fewer
 * than `w` (the one that accepted it), else `w`, for no wake-up and warm caches (clients that
 * open a connection a request, a few at once, are then seldom handed over). The listening
 * socket wakes one worker, which took a whole burst: a CI job's 64 connections at once all went
 * to the first, and every request on them was served on one core while the others idled. */
static struct worker *fewest(struct worker *w)
{
    struct worker *best = w;
    int least = atomic_load_explicit(&w->conns, memory_order_relaxed) - 1;
    for (int i = 0, n = atomic_load(&handing_to); i < n; i++) {
        int has = atomic_load_explicit(&workers[i].conns, memory_order_relaxed);
        if (has < least) {
            least = has;
            best = &workers[i];
        }
    }
    return best;
}

/* On w's thread, a connection counted in w->conns: admitted under the hard cap (worker_admit),
 * opened and gone on with (its head is usually there already: read now, not a turn later), or
 * closed (beyond the cap: without a word; dropped, or no memory). */
static void open_here(struct worker *w, int fd, const struct sockaddr *peer, socklen_t len,
                      bool tls)
{
    bool admitted = worker_admit();
    struct conn *c = admitted ? conn_open(w, fd, peer, len, tls) : NULL;
    if (c) {
        conn_go_on(c);
        return;
    }
    if (admitted)
        worker_conn_gone();
    atomic_fetch_sub(&w->conns, 1);
    close(fd);
}

/* Queued for `to`, which is woken: false when out of memory. */
static bool hand_over(struct worker *to, int fd, const struct sockaddr_storage *peer, socklen_t len,
                      bool tls)
{
    struct handed *h = malloc(sizeof(*h));
    uint64_t one = 1;
    if (!h)
        return false;
    *h = (struct handed){.fd = fd, .tls = tls, .len = len, .peer = *peer};
    pthread_mutex_lock(&to->lock);
    h->next = to->handed;
    to->handed = h;
    pthread_mutex_unlock(&to->lock);
    (void)!write(to->evfd, &one, sizeof(one));
    return true;
}

/* What other workers accepted for `w`, oldest first: opened here (`open`), or closed (the loop
 * has ended). */
static void take_handed(struct worker *w, bool open)
{
    struct handed *h, *oldest = NULL;
    pthread_mutex_lock(&w->lock);
    h = w->handed;
    w->handed = NULL;
    pthread_mutex_unlock(&w->lock);
    while (h) { /* newest first as queued: turned around */
        struct handed *next = h->next;
        h->next = oldest;
        oldest = h;
        h = next;
    }
    for (h = oldest; h; h = oldest) {
        oldest = h->next;
        if (open) {
            open_here(w, h->fd, (const struct sockaddr *)&h->peer, h->len, h->tls);
        } else { /* the loop has ended */
            atomic_fetch_sub(&w->conns, 1);
            close(h->fd);
        }
        atomic_fetch_sub(&handed_out, 1);
        free(h);
    }
}

/* Handed over to the worker with the fewest: false when that is `w`, or too many are handed
 * over already, or out of memory (then `w` opens it). */
static bool hand_to_fewest(struct worker *w, int fd, const struct sockaddr_storage *peer,
                           socklen_t len, bool tls)
{
    struct worker *to = fewest(w);
    if (to == w)
        return false;
    if (atomic_fetch_add(&handed_out, 1) < HANDED_MAX) {
        atomic_fetch_add(&to->conns, 1);
        if (hand_over(to, fd, peer, len, tls))
            return true;
        atomic_fetch_sub(&to->conns, 1);
    }
    atomic_fetch_sub(&handed_out, 1);
    return false;
}

/* Connections other workers accepted for it first, then those resumed, one at a time off the
 * list, under the lock: a connection resumed again while the loop goes on with another is simply
 * queued again. */
static void take_wakes(struct worker *w)
{
    uint64_t n;
    /* read first: a hand-over or wake-up queued after it writes the eventfd again */
    (void)!read(w->evfd, &n, sizeof(n));
    take_handed(w, true);
    for (;;) {
        struct conn *c;
        pthread_mutex_lock(&w->lock);
        if ((c = w->wakes)) {
            w->wakes = c->wake_next;
            c->wake_next = NULL;
            c->in_wakes = false;
        }
        pthread_mutex_unlock(&w->lock);
        if (!c)
            return;
        conn_woken(c);
    }
}

static void accept_some(struct worker *w, const struct engine_listener *l)
{
    for (int i = 0; i < ACCEPTS_PER_TURN && !atomic_load(&unlisten); i++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        int fd = accept4(l->fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE)
                log_error("cannot accept a connection: %s", strerror(errno));
            return; /* EAGAIN, or the listening socket is going */
        }
        if (hand_to_fewest(w, fd, &ss, len, l->tls))
            continue;
        atomic_fetch_add(&w->conns, 1);
        open_here(w, fd, (const struct sockaddr *)&ss, len, l->tls);
    }
}

/* Connections quiet for the idle timeout are closed; the list is in quiet order, so the scan
 * stops at the first that is not due. A suspended connection waits on another thread's work, not
 * on its client: it is in `parked` instead until resumed. */
static void close_quiet(struct worker *w)
{
    int64_t due = monotonic_ms() - engine_lim.idle_timeout_ms;
    while (w->idle.head) {
        struct conn *c = DLIST_ENTRY(w->idle.head, struct conn, idle_node);
        if (c->quiet_since_ms > due)
            break;
        conn_close(c);
    }
}

static void stop_listening_here(struct worker *w)
{
    if (!w->listening)
        return;
    for (int i = 0; i < n_listeners; i++)
        epoll_ctl(w->epfd, EPOLL_CTL_DEL, listeners[i].fd, NULL);
    w->listening = false;
    atomic_fetch_add(&unlistened, 1);
}

/* A tunnel's upstream socket (its tag is its connection's address, tunnel.c): go on with the
 * connection. */
static void tunnel_said(uint64_t tag, uint32_t events)
{
    struct conn *c = (struct conn *)(uintptr_t)(tag & ~(uint64_t)1);
    if (tunnel_event(c, events))
        conn_go_on(c);
}

/* What epoll said, for each of its events. */
static void handle_events(struct worker *w, const struct epoll_event *ev, int n)
{
    for (int i = 0; i < n; i++) {
        if (IS_LISTEN_TAG(ev[i].data.u64))
            accept_some(w, &listeners[LISTENER_OF(ev[i].data.u64)]);
        else if (ev[i].data.u64 == TAG_WAKE)
            take_wakes(w);
        else if (tunnel_tagged(ev[i].data.u64))
            tunnel_said(ev[i].data.u64, ev[i].events);
        else
            conn_event(ev[i].data.ptr, ev[i].events);
    }
}

/* The connections ready when the pass begins each go on once, in order; one that is ready again
 * waits for the next pass. A turn of a big body takes up to a millisecond, and a pass of several
 * of them many: so between two connections, once LOOK_EVERY_US have gone by since epoll was last
 * asked, it is asked again (without waiting) and what came is handled first. A new request's
 * head is read and a small answer sent whole there, so a hit waits for one connection's turn
 * instead of a pass over all of them (bench/README.md, small-beside-large). */
static void run_ready(struct worker *w, struct epoll_event *ev, int64_t looked_us)
{
    for (int n = w->n_ready; n > 0 && w->ready; n--) {
        conn_go_on(worker_next_ready(w));
        if (w->ready && monotonic_us() - looked_us >= LOOK_EVERY_US) {
            handle_events(w, ev, epoll_wait(w->epfd, ev, EVENTS_PER_WAIT, 0));
            looked_us = monotonic_us();
        }
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct epoll_event ev[EVENTS_PER_WAIT];
    char name[16];
    worker_bind(w);
    snprintf(name, sizeof(name), "arca-http%d", (int)(w - workers));
    pthread_setname_np(pthread_self(), name);
    worker_ask_short_slice();
    while (!atomic_load(&stopping)) {
        int n = epoll_wait(w->epfd, ev, EVENTS_PER_WAIT, w->ready ? 0 : 250);
        int64_t looked_us = monotonic_us();
        if (atomic_load(&unlisten))
            stop_listening_here(w);
        handle_events(w, ev, n);
        run_ready(w, ev, looked_us);
        conn_judge_all(w);
        close_quiet(w);
        worker_bury(w);
    }
    while (w->idle.head)
        conn_close(DLIST_ENTRY(w->idle.head, struct conn, idle_node));
    while (w->parked.head)
        conn_close(DLIST_ENTRY(w->parked.head, struct conn, idle_node));
    worker_bury(w);
    return NULL;
}

static int worker_init(struct worker *w, char *err, size_t errlen)
{
    struct epoll_event wev = {.events = EPOLLIN, .data.u64 = TAG_WAKE};
    memset(w, 0, sizeof(*w));
    pthread_mutex_init(&w->lock, NULL);
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    w->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->epfd < 0 || w->evfd < 0 || epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->evfd, &wev) < 0)
        goto failed;
    for (int i = 0; i < n_listeners; i++) {
        struct epoll_event lev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.u64 = TAG_LISTEN(i)};
        if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, listeners[i].fd, &lev) < 0)
            goto failed;
    }
    w->listening = true;
    return 0;
failed:
    snprintf(err, errlen, "cannot start the HTTP server: %s", strerror(errno));
    return -1;
}

static void worker_free(struct worker *w)
{
    if (w->epfd >= 0)
        close(w->epfd);
    if (w->evfd >= 0)
        close(w->evfd);
    while (w->pool) {
        struct inbuf *b = w->pool;
        w->pool = b->next_free;
        free(b);
    }
    free(w->tls_buf);
    take_handed(w, false); /* handed over as the loops ended */
    pthread_mutex_destroy(&w->lock);
}

int engine_start(const struct engine_listener *ls, int n, const struct engine_limits *lim,
                 const struct engine_ops *ops, char *err, size_t errlen)
{
    int i;
    assert(n >= 1 && n <= ENGINE_MAX_LISTENERS);
    engine_ops_ = ops;
    engine_lim = *lim;
    memcpy(listeners, ls, sizeof(*ls) * (size_t)n);
    n_listeners = n;
    atomic_store(&stopping, false);
    atomic_store(&unlisten, false);
    worker_undrain();
    atomic_store(&unlistened, 0);
    n_workers = lim->threads < 1 ? 1 : lim->threads > MAX_WORKERS ? MAX_WORKERS : lim->threads;
    for (i = 0; i < n_workers; i++) {
        workers[i].epfd = workers[i].evfd = -1;
        if (worker_init(&workers[i], err, errlen) < 0 ||
            pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]) != 0) {
            if (!err[0])
                snprintf(err, errlen, "cannot start the HTTP server's threads");
            break;
        }
    }
    if (i == n_workers) {
        atomic_store(&handing_to, n_workers);
        return 0;
    }
    atomic_store(&stopping, true);
    for (int j = 0; j < i; j++)
        pthread_join(workers[j].thread, NULL);
    for (int j = 0; j <= i && j < n_workers; j++)
        worker_free(&workers[j]);
    n_workers = 0;
    return -1;
}

void engine_settle(void)
{
    unsigned seen[MAX_WORKERS];
    int64_t deadline = monotonic_us() + ENGINE_SETTLE_MAX_US;
    for (int i = 0; i < n_workers; i++)
        seen[i] = atomic_load(&workers[i].sending);
    for (int i = 0; i < n_workers; i++) {
        if (worker_is_self(&workers[i]))
            continue; /* between its sends: this call is a handler's, or not on a worker */
        /* a worker past that send (even now, or odd again for another) did that done */
        while ((seen[i] & 1) && atomic_load(&workers[i].sending) == seen[i] &&
               monotonic_us() < deadline)
            sched_yield();
    }
}

static void wake_all(void)
{
    uint64_t one = 1;
    for (int i = 0; i < n_workers; i++)
        (void)!write(workers[i].evfd, &one, sizeof(one));
}

void engine_judge_tls(void)
{
    wake_all(); /* each worker's next turn looks (conn_judge_all) */
}

/* Each worker takes the socket out of its own epoll set (no other thread touches that set); the
 * socket is closed once all have, so no worker can accept on a descriptor number reused since. */
void engine_stop_listening(void)
{
    struct timespec tick = {0, 5 * 1000 * 1000};
    if (n_listeners == 0 || atomic_exchange(&unlisten, true))
        return;
    wake_all();
    /* and what was handed over is opened: a drain counts open connections */
    while (atomic_load(&unlistened) < n_workers || atomic_load(&handed_out) > 0)
        nanosleep(&tick, NULL);
    for (int i = 0; i < n_listeners; i++)
        close(listeners[i].fd);
    n_listeners = 0;
}

int engine_workers(void)
{
    return n_workers;
}

int engine_worker_connections(int i)
{
    assert(i >= 0 && i < n_workers);
    return atomic_load_explicit(&workers[i].conns, memory_order_relaxed);
}

void engine_stop(void)
{
    engine_stop_listening();
    atomic_store(&handing_to, 0);
    atomic_store(&stopping, true);
    wake_all();
    for (int i = 0; i < n_workers; i++)
        pthread_join(workers[i].thread, NULL);
    for (int i = 0; i < n_workers; i++)
        worker_free(&workers[i]);
    n_workers = 0;
}
