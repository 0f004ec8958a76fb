/* A CONNECT tunnel (engine.h, engine_tunnel): once the 2xx answer is out, the connection relays
 * bytes both ways between its client and the upstream socket, on its own worker's loop, a turn's
 * share at a time (SEND_TURN_MAX, for the same fairness as answers). One side's end of stream is
 * passed on as a shutdown of the other's writing side; the tunnel ends when both ends came and
 * their bytes are out, or when either socket fails. It stays a connection all along: the idle
 * clock, the per-address limits and the drain's final close apply to it. */
#include "engine/engine_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define TUNNEL_BUF (32 * 1024)

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
    x->tunnel_fd = -1;
    x->tunnel = t;
    if (!take_pending(c, t) || epoll_ctl(c->w->epfd, EPOLL_CTL_ADD, t->fd, &ev) < 0)
        return false;
    c->can_read = true; /* what the client sent since is read by the tunnel */
    return true;
}

/* Move bytes of one direction until a socket has nothing or no room, or the turn's share is
 * spent. Returns the bytes written, or -1 when a socket failed. */
static ssize_t relay(struct half *h, int src, int dst, bool *can_read, bool *can_write,
                     size_t *budget)
{
    ssize_t moved = 0, n;
    for (;;) {
        if (h->off < h->len) {
            if (!*can_write)
                return moved;
            n = send(dst, h->buf + h->off, h->len - h->off, MSG_NOSIGNAL);
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
            if (!h->shut && shutdown(dst, SHUT_WR) == 0)
                h->shut = true;
            return h->shut ? moved : -1;
        }
        if (!*can_read || *budget == 0)
            return moved;
        n = recv(src, h->buf, h->size, 0);
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
        up = relay(&t->up, c->fd, t->fd, &c->can_read, &t->can_write, &budget);
        down = relay(&t->down, t->fd, c->fd, &t->can_read, &c->can_write, &budget);
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
