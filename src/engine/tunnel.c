/* A CONNECT tunnel (engine.h, engine_tunnel): once the 2xx answer is out, the connection relays
 * bytes both ways between its client and the upstream socket, on its own worker's loop, a turn's
 * share at a time (SEND_TURN_MAX, for the same fairness as answers). One side's end of stream is
 * passed on as a shutdown of the other's writing side; the tunnel ends when both ends came and
 * their bytes are out, or when either socket fails. It stays a connection all along: the idle
 * clock, the per-address limits and the drain's final close apply to it.
 *
 * What it reads from upstream is taken from the uplink cap's bucket (conn_tunnel's `cap`,
 * base/tokens.h), shared with the upstream thread's downloads. When the bucket is empty the
 * tunnel stops reading its upstream socket: EPOLLIN is dropped from it (the kernel's buffer
 * fills, the TCP window closes, upstream stops sending) and a timerfd, in the same epoll set
 * under the same tag, wakes the tunnel when the bucket holds anything again (a download's tick
 * waits for the same, tokens.h), or TUNNEL_WAIT_MAX_MS from now if that is sooner: a cap lifted or
 * raised by SIGHUP is seen within it, not after a wait set at the old rate. */
#include "engine/engine_internal.h"
#include "base/clock.h"
#include "base/tokens.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define TUNNEL_BUF (32 * 1024)
/* A throttled tunnel looks at the cap again at least this often (a wake-up costs a lock and a
 * few additions; at a cap of 1 byte a second a turn's debt is hours). */
#define TUNNEL_WAIT_MAX_MS 100

/* One direction: what was read from its source and is not yet written to its destination. */
struct half {
    char *buf;
    size_t size, len, off;
    bool eof;  /* its source ended */
    bool shut; /* ... and that end was passed on (shutdown of the destination's writing) */
    uint64_t bytes;
};

struct tunnel {
    int fd; /* upstream */
    bool can_read, can_write;
    struct half up, down; /* client to upstream, upstream to client */
    struct token_bucket *cap;
    int epfd;              /* its worker's */
    uint64_t tag;          /* of both its descriptors */
    int timer_fd;          /* the cap's wake-up, made at the first wait; -1: none yet */
    bool throttled;        /* waiting for the cap: EPOLLIN off the upstream socket */
    int64_t waiting_since; /* its first refusal by the cap since its last turn (tokens.h) */
};

/* The epoll tag of a tunnel's upstream socket: its connection's address with the low bit set
 * (a connection is at least 8-byte aligned; the loop's own tags are 1 and 2). */
static uint64_t tag_of(struct conn *c)
{
    return (uint64_t)(uintptr_t)c | 1u;
}

bool tunnel_tagged(uint64_t tag)
{
    return tag > 2 && (tag & 1u);
}

void tunnel_free(struct tunnel *t)
{
    if (!t)
        return;
    if (t->fd >= 0)
        close(t->fd); /* out of the epoll set with it */
    if (t->timer_fd >= 0)
        close(t->timer_fd);
    if (t->cap && t->waiting_since != TOKENS_NOT_WAITING)
        tokens_leave(t->cap, t->waiting_since); /* downloads yield to it no more */
    free(t->up.buf);
    free(t->down.buf);
    free(t);
}

/* The client's bytes already read behind the CONNECT head (a TLS hello sent at once) go first. */
static bool take_pending(struct conn *c, struct tunnel *t)
{
    size_t pending = c->in ? c->in->len : 0;
    t->up.size = pending > TUNNEL_BUF ? pending : TUNNEL_BUF;
    t->down.size = TUNNEL_BUF;
    if (!(t->up.buf = malloc(t->up.size)) || !(t->down.buf = malloc(t->down.size)))
        return false;
    if (pending) {
        memcpy(t->up.buf, c->in->data, pending);
        t->up.len = pending;
    }
    if (c->in) {
        worker_give_buffer(c->w, c->in);
        c->in = NULL;
    }
    return true;
}

bool tunnel_start(struct conn *c)
{
    struct exchange *x = c->x;
    struct tunnel *t = calloc(1, sizeof(*t));
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                             .data.u64 = tag_of(c)};
    if (!t)
        return false;
    t->fd = x->tunnel_fd;
    t->timer_fd = -1;
    t->waiting_since = TOKENS_NOT_WAITING;
    t->cap = x->tunnel_cap;
    t->epfd = c->w->epfd;
    t->tag = tag_of(c);
    x->tunnel_fd = -1;
    x->tunnel = t;
    if (!take_pending(c, t) || epoll_ctl(c->w->epfd, EPOLL_CTL_ADD, t->fd, &ev) < 0)
        return false;
    c->can_read = true; /* what the client sent since is read by the tunnel */
    return true;
}

/* The upstream socket's events: all of them, or, while the cap makes it wait, all but EPOLLIN. */
static int watch_upstream(struct tunnel *t, bool reading)
{
    struct epoll_event ev = {.events = (reading ? EPOLLIN : 0) | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                             .data.u64 = t->tag};
    return epoll_ctl(t->epfd, EPOLL_CTL_MOD, t->fd, &ev);
}

/* The bucket holds nothing: stop reading upstream until it holds something, `wait_ms` from now,
 * or until the next look at the cap (the timerfd's event comes as the upstream socket's do). -1:
 * no timer could be had. */
static int throttle(struct tunnel *t, int64_t wait_ms)
{
    if (wait_ms > TUNNEL_WAIT_MAX_MS)
        wait_ms = TUNNEL_WAIT_MAX_MS;
    struct itimerspec when = {
        .it_value = {.tv_sec = wait_ms / 1000, .tv_nsec = (wait_ms % 1000) * 1000000 + 1}};
    if (t->timer_fd < 0) {
        struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.u64 = t->tag};
        if ((t->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)) < 0 ||
            epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->timer_fd, &ev) < 0)
            return -1;
    }
    if (timerfd_settime(t->timer_fd, 0, &when, NULL) < 0)
        return -1;
    if (!t->throttled && watch_upstream(t, false) < 0)
        return -1;
    t->throttled = true;
    return 0;
}

/* How many bytes the tunnel may read from upstream now (at most `want`): 0 when it waits for
 * the cap (throttled), -1 when it cannot wait. */
static ssize_t upstream_allowance(struct tunnel *t, size_t want)
{
    int64_t wait_ms = 0;
    uint64_t expired;
    size_t got =
        t->cap ? tokens_take(t->cap, want, monotonic_ms(), &t->waiting_since, &wait_ms) : want;
    if (got == 0)
        return throttle(t, wait_ms) < 0 ? -1 : 0;
    if (t->throttled) {
        while (read(t->timer_fd, &expired, sizeof(expired)) > 0)
            ; /* drained: its next expiry is an edge again */
        if (watch_upstream(t, true) < 0)
            return -1;
        t->throttled = false;
    }
    return (ssize_t)got;
}

/* One end of the tunnel: the client's connection (`c`: through TLS when it speaks it), or the
 * upstream socket (`c` NULL). */
struct end {
    struct conn *c;
    int fd;
};

static ssize_t end_recv(struct end e, void *buf, size_t n)
{
    return e.c ? io_recv(e.c, buf, n, NULL) : recv(e.fd, buf, n, 0);
}

static ssize_t end_send(struct end e, const void *buf, size_t n)
{
    struct iovec iov = {(void *)buf, n};
    return e.c ? io_sendv(e.c, &iov, 1, false) : send(e.fd, buf, n, MSG_NOSIGNAL);
}

static int end_shut(struct end e)
{
    if (e.c) {
        io_shut_write(e.c);
        return 0;
    }
    return shutdown(e.fd, SHUT_WR);
}

/* Move bytes of one direction until a socket has nothing or no room, or the turn's share is
 * spent; what is read from upstream (`cap_of` set) is taken from the cap first. Returns the
 * bytes written, or -1 when a socket failed. */
static ssize_t relay(struct half *h, struct end src, struct end dst, bool *can_read,
                     bool *can_write, size_t *budget, struct tunnel *cap_of)
{
    ssize_t moved = 0, n;
    for (;;) {
        if (h->off < h->len) {
            if (!*can_write)
                return moved;
            n = end_send(dst, h->buf + h->off, h->len - h->off);
            if (n > 0) {
                h->off += (size_t)n;
                h->bytes += (uint64_t)n;
                moved += n;
                *budget = (size_t)n >= *budget ? 0 : *budget - (size_t)n;
                continue;
            }
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                *can_write = false;
                return moved;
            }
            return -1;
        }
        h->off = h->len = 0;
        if (h->eof) {
            if (!h->shut && end_shut(dst) == 0)
                h->shut = true;
            return h->shut ? moved : -1;
        }
        if (!*can_read || *budget == 0)
            return moved;
        ssize_t allowed = cap_of ? upstream_allowance(cap_of, h->size) : (ssize_t)h->size;
        if (allowed <= 0)
            return allowed < 0 ? -1 : moved;
        n = end_recv(src, h->buf, (size_t)allowed);
        if (cap_of && cap_of->cap && n < allowed) /* taken and not read: given back */
            tokens_spend(cap_of->cap, (n > 0 ? n : 0) - allowed, monotonic_ms());
        if (n > 0)
            h->len = (size_t)n;
        else if (n == 0)
            h->eof = true;
        else if (errno == EAGAIN || errno == EWOULDBLOCK)
            *can_read = false;
        else if (errno != EINTR)
            return -1;
    }
}

/* Both ways, until neither moves or the turn's share is spent. false: the tunnel is over (both
 * ends passed on, or a socket failed): the connection is to be closed. */
bool tunnel_step(struct conn *c)
{
    struct tunnel *t = c->x->tunnel;
    size_t budget = SEND_TURN_MAX;
    ssize_t up, down;
    do {
        struct end client = {c, c->fd}, upstream = {NULL, t->fd};
        up = relay(&t->up, client, upstream, &c->can_read, &t->can_write, &budget, NULL);
        down = relay(&t->down, upstream, client, &t->can_read, &c->can_write, &budget, t);
        c->x->body_sent = t->down.bytes; /* what went, also when a socket failed after */
        if (up < 0 || down < 0)
            return false;
        if (up > 0 || down > 0)
            worker_touch(c->w, c);
    } while ((up > 0 || down > 0) && budget > 0);
    if (t->up.shut && t->down.shut)
        return false;
    if (budget == 0)
        worker_ready(c->w, c);
    return true;
}

bool tunnel_event(struct conn *c, uint32_t events)
{
    struct tunnel *t;
    if (c->closing || !c->x || !(t = c->x->tunnel))
        return false; /* closed earlier in this batch */
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        t->can_read = true;
    if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
        t->can_write = true;
    return true;
}

uint64_t engine_tunnel_up(struct conn *c)
{
    return c->x && c->x->tunnel ? c->x->tunnel->up.bytes : 0;
}
