/* A connection's course (engine.h): read a head, read its body, call the handler until it
 * answers, send the answer, then the next request or the close. The request itself is
 * exchange.c's. */
#include "engine/engine_internal.h"
#include "tls/tls.h"

#include <assert.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

/* What a step of the course tells the driver. */
enum step {
    STEP_GO,   /* the state changed: go on */
    STEP_WAIT, /* wait for the socket, a wake-up or the next turn */
    STEP_GONE, /* the connection is closed: never touch it again */
};

struct conn *conn_open(struct worker *w, int fd, const struct sockaddr *peer, socklen_t len,
                       bool tls)
{
    struct conn *c = calloc(1, sizeof(*c));
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET};
    int one = 1;
    if (!c)
        return NULL;
    c->fd = fd;
    c->w = w;
    c->state = tls ? CONN_HANDSHAKE : CONN_HEAD;
    c->can_write = true; /* a new socket has room; EPOLLOUT says so again after EAGAIN */
    c->can_read = true;  /* a client sends its head as it connects: tried at once (open_here) */
    if (len <= sizeof(c->peer)) {
        memcpy(&c->peer, peer, len);
        relay_claim(c); /* a tunnel to arca itself: its client's, from here on */
    }
    /* The head and a small body leave in one writev: nothing is gained by Nagle's wait. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (!engine_ops_->opened(fd, len <= sizeof(c->peer) ? &c->peer.sa : NULL, &c->ctx)) {
        free(c);
        return NULL;
    }
    ev.data.ptr = c;
    if ((tls && !io_tls_begin(c)) || epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        io_end(c);
        engine_ops_->closed(c->ctx);
        free(c);
        return NULL;
    }
    worker_touch(w, c);
    return c;
}

/* A connection's course (engine_internal.h's conn_state): every move is one of these, made
 * here. A TLS connection's handshake leads to its first head (HEAD). A head read starts a request
 * (BODY) or is refused (SEND); a body read calls the handler (CALL) or is refused (SEND); a handler
 * answers (SEND); an answer sent leads to the next head (HEAD), the end (LINGER) or a CONNECT's
 * relay (TUNNEL). LINGER and TUNNEL end in the close. */
static const unsigned moves_from[] = {
    [CONN_HANDSHAKE] = 1u << CONN_HEAD,
    [CONN_HEAD] = 1u << CONN_BODY | 1u << CONN_SEND,
    [CONN_BODY] = 1u << CONN_CALL | 1u << CONN_SEND,
    [CONN_CALL] = 1u << CONN_SEND,
    [CONN_SEND] = 1u << CONN_HEAD | 1u << CONN_LINGER | 1u << CONN_TUNNEL,
    [CONN_LINGER] = 0,
    [CONN_TUNNEL] = 0,
};

void conn_enter(struct conn *c, enum conn_state to)
{
    assert(!c->closing && (moves_from[c->state] & 1u << to));
    c->state = to;
}

/* Take `n` bytes off the front of the read buffer; an empty one goes back to the pool. */
static void consume(struct conn *c, size_t n)
{
    struct inbuf *b = c->in;
    assert(b && n <= b->len);
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    if (b->len == 0) {
        worker_give_buffer(c->w, b);
        c->in = NULL;
    }
}

/* An answer cut short whose end is the close (HTTP/1.0, length unknown): the close must not look
 * like its end, so it is a reset. Framed answers show the cut anyway. */
static bool cut_unframed(const struct exchange *x)
{
    return x && x->ans && x->out_sent > 0 && !x->body_done && !x->chunked_out && !x->head_only &&
           x->body_len == ANSWER_SIZE_UNKNOWN;
}

void conn_close(struct conn *c)
{
    struct exchange *x = c->x;
    if (c->closing)
        return;
    c->closing = true;
    if (cut_unframed(x)) { /* whoever closes it: a cut download, the idle clock, shutdown */
        struct linger reset = {.l_onoff = 1, .l_linger = 0};
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
    }
    if (x && x->req) /* the request's headers are still there for its done (the access log) */
        engine_ops_->done(c, x->req, false);
    c->x = NULL;
    exchange_free(x);
    worker_unlink(c->w, c);
    worker_forget_wake(c->w, c);
    worker_unready(c->w, c);
    engine_ops_->closed(c->ctx); /* before the descriptor goes: see http_limits.h */
    io_end(c);
    close(c->fd);
    if (c->in)
        worker_give_buffer(c->w, c->in);
    c->in = NULL;
    worker_conn_gone();
    atomic_fetch_sub(&c->w->conns, 1);
    c->dead_next = c->w->dead; /* freed at the end of the turn: see worker_bury */
    c->w->dead = c;
}

/* Read what the socket has into the buffer (taken from the pool if need be): >0 bytes read, 0
 * none now (can_read cleared), -1 the client closed its side or the socket failed. */
static ssize_t fill(struct conn *c)
{
    size_t room;
    ssize_t n;
    if (!c->can_read)
        return 0;
    if (!c->in && !(c->in = worker_take_buffer(c->w)))
        return -1;
    assert(c->in->len <= engine_lim.max_head + 1);
    room = engine_lim.max_head + 1 - c->in->len;
    if (room == 0)
        return 0; /* full: the parse decides */
    bool drained;
    n = io_recv(c, c->in->data + c->in->len, room, &drained);
    if (n > 0) {
        assert((size_t)n <= room);
        c->in->len += (size_t)n;
        /* A short read emptied the socket: its next bytes bring a new edge (EPOLLET), so the
         * recv that would only say EAGAIN is saved (one of three syscalls of a keep-alive hit).
         * Not once the client closed its side: that end of stream comes with no further edge. */
        if (drained && !c->peer_shut)
            c->can_read = false;
        worker_touch(c->w, c);
        return n;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        c->can_read = false;
        if (c->in->len == 0) { /* nothing pending: an idle connection holds no buffer */
            worker_give_buffer(c->w, c->in);
            c->in = NULL;
        }
        return 0;
    }
    return -1;
}

/* A refused head: the request gets its answer (begin queues it) and the connection closes. */
static enum step refuse_head(struct conn *c, const struct h1_request *h)
{
    struct exchange *x = exchange_new(h, c->in->data, false);
    if (!x) {
        conn_close(c);
        return STEP_GONE;
    }
    c->x = x;
    conn_enter(c, CONN_SEND);
    c->can_read = false; /* nothing more is read from this connection */
    if (!(x->req = engine_ops_->begin(c, h->status, h->reason)) || !x->ans || !send_prepare(c)) {
        conn_close(c);
        return STEP_GONE;
    }
    x->keep_alive = false;
    return STEP_GO;
}

static enum step begin_request(struct conn *c)
{
    struct h1_request *h = &c->in->h1;
    struct exchange *x = exchange_new(h, c->in->data, true);
    if (!x) {
        conn_close(c);
        return STEP_GONE;
    }
    c->x = x;
    x->body_size = x->body_left = h->chunked ? -1 : h->content_length > 0 ? h->content_length : 0;
    x->body_max = UINT64_MAX;
    if (h->chunked)
        h1_chunked_init(&x->chunked, h->eol, engine_lim.max_head);
    x->keep_alive = h->keep_alive;
    x->http10 = h->minor == 0;
    x->head_only = !strcmp(x->method, "HEAD");
    x->continue_sent = !h->expect_continue;
    consume(c, h->head_len);
    if (c->in)
        h1_init(&c->in->h1);
    conn_enter(c, CONN_BODY);
    if (!(x->req = engine_ops_->begin(c, 0, NULL))) {
        conn_close(c);
        return STEP_GONE;
    }
    return STEP_GO;
}

/* Plain HTTP sent to a TLS port gets one plain answer saying so (nginx says it too), never a
 * hang or a handshake error the client cannot read. */
static enum step refuse_plain(struct conn *c, struct h1_request *h)
{
    h->status = 400;
    h->reason = "this port speaks HTTPS: ask for https:// URLs here";
    return refuse_head(c, h);
}

static enum step read_head(struct conn *c)
{
    for (;;) {
        if (c->in && c->in->len > 0) {
            enum h1_result r = h1_parse(&c->in->h1, c->in->data, c->in->len, engine_lim.max_head);
            if (r == H1_DONE && c->plain_on_tls)
                return refuse_plain(c, &c->in->h1);
            if (r == H1_DONE)
                return begin_request(c);
            if (r == H1_ERROR)
                return refuse_head(c, &c->in->h1);
        }
        ssize_t n = fill(c);
        if (n == 0)
            return STEP_WAIT;
        if (n < 0) { /* the client is gone, between requests or in the middle of a head */
            conn_close(c);
            return STEP_GONE;
        }
    }
}

static void upload(void *arg, const char *data, size_t n)
{
    struct conn *c = arg;
    if (!c->x->ans)
        engine_ops_->upload(c, c->x->req, data, n);
}

/* The body's bytes in the buffer go to the handler (chunked or counted). false: refused (the
 * chunked decoder's status and reason, or 413 beyond engine_limit_body's). */
static bool take_body(struct conn *c)
{
    struct exchange *x = c->x;
    size_t n;
    if (x->body_left < 0) {
        enum h1_result r;
        n = h1_chunked_feed(&x->chunked, c->in->data, c->in->len, upload, c, &r);
        x->body_got +=
            n; /* framing too: a chunk extension without end is bytes read all the same */
        if (r != H1_ERROR && x->body_got > x->body_max) {
            x->chunked.status = 413;
            x->chunked.reason = "request body larger than its endpoint takes";
            r = H1_ERROR;
        }
        if (r == H1_ERROR)
            return false;
        if (r == H1_DONE)
            x->body_left = 0;
    } else {
        n = c->in->len < (uint64_t)x->body_left ? c->in->len : (size_t)x->body_left;
        upload(c, c->in->data, n);
        x->body_left -= (int64_t)n;
    }
    consume(c, n);
    return true;
}

static enum step read_body(struct conn *c)
{
    struct exchange *x = c->x;
    if (x->ans) { /* refused at its head (limits): its body is never read, so no keep-alive */
        x->keep_alive = x->keep_alive && x->body_left == 0;
        conn_enter(c, CONN_SEND);
        return send_prepare(c) ? STEP_GO : (conn_close(c), STEP_GONE);
    }
    if (!x->continue_sent && x->body_left != 0) {
        x->continue_sent = true;
        if (!send_continue(c)) {
            conn_close(c);
            return STEP_GONE;
        }
    }
    for (;;) {
        if (x->body_left == 0) {
            conn_enter(c, CONN_CALL);
            return STEP_GO;
        }
        if (c->in && c->in->len > 0) {
            if (!take_body(c)) {
                x->keep_alive = false;
                engine_ops_->refuse(c, x->req, x->chunked.status, x->chunked.reason);
                conn_enter(c, CONN_SEND);
                return x->ans && send_prepare(c) ? STEP_GO : (conn_close(c), STEP_GONE);
            }
            continue;
        }
        ssize_t n = fill(c);
        if (n == 0)
            return STEP_WAIT;
        if (n < 0) {
            conn_close(c);
            return STEP_GONE;
        }
    }
}

static enum step call_handler(struct conn *c)
{
    struct exchange *x = c->x;
    enum conn_result r;
    c->suspended = false;
    r = engine_ops_->call(c, x->req);
    if (r == CONN_CLOSE) {
        conn_close(c);
        return STEP_GONE;
    }
    if (x->ans) {
        c->suspended = false;
        conn_enter(c, CONN_SEND);
        return send_prepare(c) ? STEP_GO : (conn_close(c), STEP_GONE);
    }
    if (c->suspended) {
        worker_park(c->w, c);
        return STEP_WAIT;
    }
    /* a handler answers or suspends; one that did neither gets a 500 rather than a hang */
    engine_ops_->refuse(c, x->req, 500, "internal error: the request got no answer");
    x->keep_alive = false;
    conn_enter(c, CONN_SEND);
    return x->ans && send_prepare(c) ? STEP_GO : (conn_close(c), STEP_GONE);
}

/* Closing a socket that still holds unread bytes sends a reset, and a reset can destroy the
 * answer before the client has read it (a refused head with its body unread, a pipelined
 * request behind a "Connection: close"). So the connection is shut for writing (the client sees
 * the end of the answer) and what it still sends is read and dropped until it closes too, or
 * until its idle clock runs out: bytes dropped do not restart the clock. */
static enum step linger(struct conn *c)
{
    if (c->in) {
        worker_give_buffer(c->w, c->in);
        c->in = NULL;
    }
    io_shut_write(c);
    conn_enter(c, CONN_LINGER);
    c->can_read = true; /* read until EAGAIN: the client may have closed already */
    return STEP_GO;
}

static enum step drain(struct conn *c)
{
    char sink[4096];
    size_t budget = SEND_TURN_MAX; /* a client sending without end must not hold the worker */
    for (;;) {
        ssize_t n = recv(c->fd, sink, sizeof(sink), 0);
        if (n > 0 && (size_t)n >= budget) {
            worker_ready(c->w, c);
            return STEP_WAIT;
        }
        if (n > 0) {
            budget -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            c->can_read = false;
            return STEP_WAIT;
        }
        conn_close(c);
        return STEP_GONE;
    }
}

/* The answer went out whole: the request is done; the connection goes on with the next (the
 * buffer may hold it already: pipelining; then at the loop's next turn) or closes. */
static enum step finish(struct conn *c)
{
    struct exchange *x = c->x;
    bool keep = x->keep_alive; /* half-closed, the requests it sent before are still answered */
    if (x->tunnel_fd >= 0 && x->status >= 200 && x->status < 300) { /* done when it ends */
        if (!tunnel_start(c)) {
            conn_close(c);
            return STEP_GONE;
        }
        conn_enter(c, CONN_TUNNEL);
        return STEP_GO;
    }
    if (x->req)
        engine_ops_->done(c, x->req, true);
    c->x = NULL;
    exchange_free(x);
    if (!keep)
        return linger(c);
    conn_enter(c, CONN_HEAD);
    /* A next request may be here already (pipelined): it waits for the loop's next turn, as an
     * answer with more to send does, so that a client pipelining hits and reading them fast
     * cannot hold the worker for its whole pipeline. Otherwise (the usual keep-alive) the head
     * is read at once: nothing waits and no turn is spent. */
    if (c->can_read || (c->in && c->in->len > 0)) {
        worker_ready(c->w, c);
        return STEP_WAIT;
    }
    return STEP_GO;
}

static enum step send_step(struct conn *c)
{
    enum send_result r = send_some(c);
    io_turn_end(c);
    switch (r) {
    case SEND_DONE:
        return finish(c);
    case SEND_AGAIN:
        return STEP_WAIT;
    case SEND_TURN:
        worker_ready(c->w, c);
        return STEP_WAIT;
    case SEND_WAIT:
        worker_park(c->w, c);
        return STEP_WAIT;
    case SEND_CUT:
        break;
    }
    conn_close(c); /* cut: see cut_unframed */
    return STEP_GONE;
}

/* A send and, the answer out, its done, bracketed for engine_settle: the client may hold the last
 * byte before the done has counted the request. */
static enum step send_answer(struct conn *c)
{
    struct worker *w = c->w; /* `c` may be gone after the step */
    atomic_fetch_add(&w->sending, 1);
    enum step s = send_step(c);
    atomic_fetch_add(&w->sending, 1);
    return s;
}

/* Both ends of a tunnel came and went through, or a socket failed: the request is done (its
 * bytes are the tunnel's), and the connection closes (what follows a tunnel is not HTTP). */
static enum step tunnel_end(struct conn *c)
{
    struct exchange *x = c->x;
    if (x->req)
        engine_ops_->done(c, x->req, true);
    x->req = NULL;
    conn_close(c);
    return STEP_GONE;
}

/* A TLS connection's handshake; its first head follows (or plain HTTP's, to be refused). */
static enum step handshake(struct conn *c)
{
    switch (io_handshake(c)) {
    case IO_HS_WAIT:
        return STEP_WAIT;
    case IO_HS_FAILED:
        conn_close(c);
        return STEP_GONE;
    case IO_HS_DONE:
        if (io_tls_trusted(c))
            break; /* a reload may have come while the old terms judged it */
        conn_close(c);
        return STEP_GONE;
    case IO_HS_PLAIN:
        break;
    }
    c->can_read = true; /* the head may be in already, in OpenSSL's buffer or the socket */
    conn_enter(c, CONN_HEAD);
    return STEP_GO;
}

/* Each of `l`'s connections judged again (the next node is taken first: a refused one leaves
 * the list as it closes). A connection mid-handshake is judged as its handshake ends; a request
 * already read still gets its answer. */
static void judge_list(struct dlist *l)
{
    struct dnode *n, *next;
    for (n = l->head; n; n = next) {
        struct conn *c = DLIST_ENTRY(n, struct conn, idle_node);
        next = n->next;
        if (c->state == CONN_HANDSHAKE || io_tls_trusted(c))
            continue;
        if (c->state == CONN_HEAD || c->state == CONN_TUNNEL)
            conn_close(c);
        else if (c->x)
            c->x->keep_alive = false;
    }
}

void conn_judge_all(struct worker *w)
{
    unsigned now = tls_generation();
    if (w->tls_judged == now)
        return;
    w->tls_judged = now;
    judge_list(&w->idle);
    judge_list(&w->parked);
}

void conn_go_on(struct conn *c)
{
    enum step s = c->closing ? STEP_GONE : STEP_GO;
    while (s == STEP_GO) {
        switch (c->state) {
        case CONN_HANDSHAKE:
            s = handshake(c);
            break;
        case CONN_HEAD:
            s = read_head(c);
            break;
        case CONN_BODY:
            s = read_body(c);
            break;
        case CONN_CALL:
            s = c->suspended ? STEP_WAIT : call_handler(c);
            break;
        case CONN_SEND:
            s = c->suspended ? STEP_WAIT : send_answer(c);
            break;
        case CONN_LINGER:
            s = c->can_read ? drain(c) : STEP_WAIT;
            break;
        case CONN_TUNNEL:
            s = tunnel_step(c) ? (io_turn_end(c), STEP_WAIT) : tunnel_end(c);
            break;
        }
    }
}

void conn_event(struct conn *c, uint32_t events)
{
    if (c->closing)
        return; /* closed earlier in this batch (a wake-up went first) */
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        c->can_read = true;
    if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        c->peer_shut = true;
    if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
        c->can_write = true;
    if ((events & (EPOLLHUP | EPOLLERR)) && c->state != CONN_HEAD && c->state != CONN_BODY &&
        c->state != CONN_TUNNEL) { /* a tunnel reads the end, and passes it on */
        conn_close(c);             /* the client is gone while its answer was prepared or sent */
        return;
    }
    /* A body under way goes on in the ready pass (loop.c's run_ready), after the batch's other
     * events: a new request in the same batch does not wait for its turn. */
    if (c->state == CONN_SEND && c->x->out_sent > 0 && !c->suspended) {
        worker_ready(c->w, c);
        return;
    }
    conn_go_on(c);
}

/* A wake-up from conn_resume: only a suspended connection goes on. */
void conn_woken(struct conn *c)
{
    if (!c->suspended || c->closing)
        return;
    c->suspended = false;
    worker_touch(c->w, c);
    conn_go_on(c);
}
