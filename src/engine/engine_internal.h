/*
 * engine_internal.h — what the engine's files share: a worker (loop.c), a connection and its
 * request in progress (conn.c), and the sending of an answer (send.c).
 *
 * Contract: a worker's connections, its lists and its buffer pool are touched only on its own
 * thread, with one exception: `wakes`, the connections resumed from other threads, which its
 * mutex guards together with each connection's `in_wakes`.
 */
#ifndef ARCA_ENGINE_INTERNAL_H
#define ARCA_ENGINE_INTERNAL_H

#include "engine/answer.h"
#include "base/dlist.h"
#include "engine/engine.h"
#include "engine/h1.h"

#include <netinet/in.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>

/* At most this many bytes go to one connection per turn of its loop: a client that keeps up
 * would otherwise fill a multi-MB loopback socket buffer at every turn and starve the others
 * (the prototype's fan-out lost 1.57x against 1.19x direct until this cap, with a ready list). */
#define SEND_TURN_MAX (256 * 1024)
/* A connection sending from memory (a finished object's mapping) may send more per turn: each
 * sendmsg pays for a push through the whole network path. 1 MiB copies in about a quarter of a
 * millisecond, which is as long as a hit that arrives meanwhile waits for it (loop.c's run_ready
 * looks between turns); 4 MiB turns cost about the same CPU a byte for 8 or 16 fast readers (within
 * the rounds' spread), and made a hit beside them wait about 4 times longer. Files keep
 * SEND_TURN_MAX: bigger sendfile turns cost less CPU, but gave fast clients of finished files many
 * times a fan-out client's share and made small hits beside them slower (figures: bench/README.md,
 * "Why the hot path is shaped so"). */
#define SEND_TURN_MAX_MEM (1024 * 1024)
/* The last chunk of a chunked body: "0\r\n", its trailer lines (answer_trailer), "\r\n". */
#define SEND_LAST_CHUNK_MAX (5 + ANSWER_TRAILER_MAX)

/* A read buffer, taken from its worker's pool while a connection has bytes of a request, and its
 * head's parse. */
struct inbuf {
    struct inbuf *next_free;
    struct h1_request h1;
    size_t len; /* bytes in data */
    char data[];
};

struct worker {
    int epfd, evfd;
    pthread_t thread;
    pthread_mutex_t lock;  /* guards wakes, handed and each connection's in_wakes; a leaf, taken
                              after park.c's wake lock (a park's wake: conn_resume), never before */
    struct conn *wakes;    /* resumed from any thread, for this loop to go on with */
    struct handed *handed; /* accepted by another worker for this one to open (loop.c) */
    /* Its connections, from the accept that chose it (a handed one's too) to their close: read
     * by any worker choosing where a new one goes. */
    atomic_int conns;
    struct dlist idle;       /* its connections, the longest quiet first */
    struct dlist parked;     /* its suspended connections: no idle clock */
    struct conn *ready;      /* with bytes to send and room for them: go on next turn, in order */
    struct conn *ready_last; /* the ready list's tail */
    int n_ready;             /* and its length */
    struct conn *dead;       /* closed this turn: freed once the turn's events are handled */
    struct inbuf *pool;      /* free read buffers */
    int pooled;
    bool listening; /* the listening socket is in its epoll set */
    char date[64];  /* the Date line's value, for `date_at` */
    time_t date_at;
    char *tls_buf; /* io.c's: one TLS record's plaintext being put together (NULL: none yet) */
    unsigned tls_judged; /* the tls_generation its connections were last judged under */
    /* odd while it sends an answer's bytes and, the answer out, calls its done (engine_settle) */
    atomic_uint sending;
};

/* One request, from its head to its done. */
struct exchange {
    void *req; /* engine_ops.begin's */
    /* the head, NUL-terminated strings in `text` */
    const char *method, *target, *path, *version;
    const char *authority; /* an absolute-form target's host[:port]; NULL: not one */
    int n_fields, n_args;
    const char **names, **values, **arg_names, **arg_values;
    /* the body being read */
    int64_t body_size; /* as the head declares it: Content-Length, 0 none, -1 chunked */
    int64_t body_left; /* Content-Length bytes still to come; -1: chunked */
    uint64_t body_got; /* bytes of a chunked body read so far, its framing included */
    uint64_t body_max; /* engine_limit_body's: beyond, 413 (UINT64_MAX: none) */
    struct h1_chunked chunked;
    bool continue_sent;
    bool keep_alive, head_only, http10;
    /* the answer */
    unsigned int status;
    struct answer *ans;
    int64_t queued_us; /* monotonic, when `ans` was queued (engine_answer_queued_us) */
    char *out;         /* the status line and headers */
    size_t out_len, out_sent;
    uint64_t body_len;  /* bytes of body to send, or ANSWER_SIZE_UNKNOWN */
    uint64_t body_sent; /* of the body, framing aside */
    bool chunked_out;
    bool body_done; /* the last body byte (and final chunk) is written */
    char *block;    /* ANSWER_READ: one block, framed */
    size_t block_len, block_sent;
    int span_fd; /* ANSWER_SPAN: the span being sent */
    int64_t span_off;
    uint64_t span_left;
    /* ANSWER_SPAN: chunk framing still to send (before span_left's bytes): a chunk-size line, or
     * the last chunk with its trailer section (SEND_LAST_CHUNK_MAX), after a chunk's CRLF */
    char frame[2 + SEND_LAST_CHUNK_MAX];
    size_t frame_len, frame_sent;
    /* conn_tunnel's cap: what the tunnel reads from upstream is taken from it (NULL: none) */
    struct token_bucket *tunnel_cap;
    bool final_chunk;      /* the frame is the last chunk */
    bool crlf_due;         /* the last chunk's CRLF: it goes with the next frame, in one send */
    const char *lines;     /* engine_set_lines's: head lines after the answer's (NULL: none) */
    int tunnel_fd;         /* engine_tunnel's upstream socket until the answer is out; -1: none */
    struct tunnel *tunnel; /* CONN_TUNNEL: the relay (tunnel.c) */
    const char *slots[];   /* names, values, arg_names, arg_values; then the strings themselves */
};

enum conn_state {
    CONN_HANDSHAKE, /* a TLS listener's connection: its handshake (io.c), before its first head */
    CONN_HEAD,      /* reading a request's head (or idle between requests) */
    CONN_BODY,      /* reading its body */
    CONN_CALL,      /* its handler is called, or suspended until resumed */
    CONN_SEND,      /* its answer is going out */
    CONN_LINGER,    /* answered and shut for writing: what the client still sends is dropped */
    CONN_TUNNEL,    /* a CONNECT answered 2xx: bytes relayed both ways (tunnel.c) until both end */
};

struct conn {
    int fd;
    struct worker *w;
    void *ctx; /* engine_ops.opened's */
    union {
        struct sockaddr sa;
        struct sockaddr_in in4;
        struct sockaddr_in6 in6;
    } peer;
    enum conn_state state;
    bool can_read, can_write; /* the socket had bytes or room when last tried */
    bool peer_shut;           /* the client shut its side (or the socket failed) */
    bool suspended, in_ready, in_wakes;
    bool closing;           /* closed: its memory waits for the end of the turn (worker_bury) */
    struct dnode idle_node; /* in its worker's idle list, or its parked list when `parked` */
    bool parked;
    int64_t quiet_since_ms;
    struct conn *ready_next, *wake_next, *dead_next;
    struct inbuf *in;
    struct exchange *x;
    /* A TLS listener's connection (io.c): its session (NULL: plain), whether the socket was empty
     * at OpenSSL's last read, bytes handed with `more` and not yet written (they go first, in
     * the next record), the client certificate's subject (NULL: none shown), and whether it sent
     * plain HTTP instead (its one request is refused). */
    SSL *ssl;
    size_t tls_owed; /* the bytes the last SSL_write offered that found no room (io.c) */
    bool tls_drained;
    bool tls_corked; /* TCP_CORK set for this turn's records (io_turn_end lifts it) */
    bool plain_on_tls;
    char *cork;
    size_t cork_len;
    char *peer_subject;
    unsigned tls_judged; /* the tls_generation its client was last judged under (io_tls_trusted) */
};

extern const struct engine_ops *engine_ops_;
extern struct engine_limits engine_lim;

/* io.c: a connection's bytes, plain or through TLS, with the socket calls' answers: >= 0 bytes
 * (io_recv: 0 is the end of the stream), or -1 with errno (EAGAIN: wait for the socket). */
/* Read up to `n` bytes; `*drained` (may be NULL) says whether the socket is empty now, so that
 * no read is tried before its next edge. */
ssize_t io_recv(struct conn *c, void *buf, size_t n, bool *drained);
/* Write the bytes of iov[0..n). With `more`, more bytes follow at once: plain, MSG_MORE; TLS,
 * they are held (up to one record) and go out in one record with the next call's. */
ssize_t io_sendv(struct conn *c, const struct iovec *iov, int n, bool more);
/* Up to `len` bytes of file `fd` from `*off`, which moves past those written: sendfile, kernel
 * TLS's SSL_sendfile, or a record read from the file and written by OpenSSL. */
ssize_t io_sendfile(struct conn *c, int fd, off_t *off, size_t len);
/* Whether io_sendfile reads a file's bytes into a buffer for this connection (TLS encrypted by
 * OpenSSL): a mapping of the same bytes, where an answer has one, costs it less. */
bool io_copies_files(struct conn *c);
/* A turn of sending is over: the records it wrote leave now (TLS: the TCP_CORK a body's records
 * were written under is lifted). */
void io_turn_end(struct conn *c);
/* Bytes held by io_sendv's `more` go now (an answer waits for its reader). false: the
 * connection failed; true also when the socket had no room (they go with the next write). */
bool io_flush(struct conn *c);
/* No more bytes will be written (a TLS close_notify first). */
void io_shut_write(struct conn *c);
enum io_handshake {
    IO_HS_DONE,   /* a TLS session is up: requests follow */
    IO_HS_WAIT,   /* wait for the socket */
    IO_HS_PLAIN,  /* the client spoke plain HTTP: its one request is read plain and refused */
    IO_HS_FAILED, /* close */
};
/* A TLS listener's connection takes its session (false: out of memory): conn_open. */
bool io_tls_begin(struct conn *c);
enum io_handshake io_handshake(struct conn *c);
/* Whether the client-CA terms in force still admit `c`'s client (handshake done): judged again
 * only when a reload installed others since it was last judged (tls_admits); a refusal is
 * counted and said. A plain connection: true. */
bool io_tls_trusted(struct conn *c);
/* Let go of what io.c holds for `c` (its session, held bytes): conn_close. */
void io_end(struct conn *c);

/* worker.c */
/* This thread runs `w` (engine_on_thread). */
void worker_bind(struct worker *w);
/* Whether this thread runs `w`. */
bool worker_is_self(const struct worker *w);
/* The worker thread asks the kernel for a short slice (sched_setattr's sched_runtime on its fair
 * policy, kept with its nice; Linux 6.12 and later, ignored before): on a core shared with a
 * busy thread (a purge's unlinks, a download's hashing, a compile beside arca), a worker woken
 * by a request then runs at once, where it waited for that thread's slice to end (EEVDF's run to
 * parity: 1.4 ms here with two cores). A hit takes about 20 µs of CPU, so 0.1 ms (the kernel's
 * least) costs a worker's own run nothing; its share of the CPU is unchanged (wrk's hits at a
 * million objects: 60.3k req/s, 55.1k before). Beside a process spinning on one of two cores,
 * 10,000 hits a second: a worker waited 7-8 µs to run each time it was woken, 10-13 before, and
 * the hits' p99 was 0.34-0.94 ms, 0.31-2.43 before (bench/results/2026-11-30-i70-slice-summary.md;
 * big-index's p99_ms_hog measures it on a million, where this machine's noise hid it). */
#define WORKER_SLICE_NS 100000
void worker_ask_short_slice(void);
/* A new start: not draining (engine_drain). */
void worker_undrain(void);
struct inbuf *worker_take_buffer(struct worker *w);
void worker_give_buffer(struct worker *w, struct inbuf *b);
/* Go on with `c` at the loop's next turn (its bytes to send had no room left this turn), after
 * those ready before it. */
void worker_ready(struct worker *w, struct conn *c);
/* The first of the ready list, taken off it (NULL: none). */
struct conn *worker_next_ready(struct worker *w);
/* Off the ready list, wherever it is in it (closing). */
void worker_unready(struct worker *w, struct conn *c);
/* Bytes moved: the idle clock starts again. */
void worker_touch(struct worker *w, struct conn *c);
/* Suspended: no idle clock until touched again. */
void worker_park(struct worker *w, struct conn *c);
/* Closing: out of both lists, out of the wake-ups, counted out. */
void worker_unlink(struct worker *w, struct conn *c);
void worker_forget_wake(struct worker *w, struct conn *c);
/* A new connection counts against the hard cap (engine_limits.max_connections): false when over
 * it; worker_conn_gone counts one out. */
bool worker_admit(void);
void worker_conn_gone(void);
/* Free the connections closed this turn: one epoll batch may hold a closed connection's event
 * after the wake-up that closed it, so none is freed before the batch is done. */
void worker_bury(struct worker *w);
const char *worker_date(struct worker *w);

/* exchange.c */
/* The request whose head `h` parsed in `buf`: its strings copied (`whole`: the target split
 * into path, query arguments and authority too; a refused head needs only what the log shows).
 * NULL: out of memory. */
struct exchange *exchange_new(const struct h1_request *h, const char *buf, bool whole);
/* With its answer, its head's buffer, a block, a tunnel not started (NULL: nothing). */
void exchange_free(struct exchange *x);

/* conn.c */
/* A new connection from `peer`; `tls`: a TLS listener's, its handshake first. */
struct conn *conn_open(struct worker *w, int fd, const struct sockaddr *peer, socklen_t len,
                       bool tls);
/* The socket said something (EPOLLIN, EPOLLOUT, hang-up): go on. */
void conn_event(struct conn *c, uint32_t events);
/* Ready (its turn came again): go on. */
void conn_go_on(struct conn *c);
/* Resumed (conn_resume): go on if it was suspended. */
void conn_woken(struct conn *c);
/* Close now: the request in progress is done, not completed. */
void conn_close(struct conn *c);
/* Move `c` to `to`: asserts that the move is one of its course's (conn.c's moves_from). */
void conn_enter(struct conn *c, enum conn_state to);
/* When a reload installed other TLS terms since `w` last looked (engine_judge_tls): each of its
 * TLS connections is judged again (io_tls_trusted); one refused closes now if it is between
 * requests or relaying a tunnel, else once its current answer is out. */
void conn_judge_all(struct worker *w);

/* relay.c */
/* A new connection that is a relay arca made for a client (engine_expect_relay): its peer becomes
 * that client's address (conn_open, before `opened`). */
void relay_claim(struct conn *c);

/* tunnel.c */
struct tunnel;
/* The answer to a CONNECT went out: relay from now on (the caller moves `c` to CONN_TUNNEL).
 * false: out of memory (close). */
bool tunnel_start(struct conn *c);
/* Relay what can be relayed. false: the tunnel is over, the connection is to close. */
bool tunnel_step(struct conn *c);
/* The upstream socket of a tunnel said something (its epoll tag: tunnel_tagged): true when the
 * connection is to go on (conn_go_on), false when it is closed already. */
bool tunnel_event(struct conn *c, uint32_t events);
bool tunnel_tagged(uint64_t tag);
void tunnel_free(struct tunnel *t);

/* send.c */
enum send_result {
    SEND_DONE,  /* the answer went out whole */
    SEND_AGAIN, /* no room in the socket: wait for EPOLLOUT */
    SEND_TURN,  /* this turn's share is sent: go on next turn */
    SEND_WAIT,  /* the body's reader has nothing yet: wait for conn_resume */
    SEND_CUT,   /* the body was cut, or the client is gone: close */
};
/* Build the status line and headers of the queued answer. false: out of memory. */
bool send_prepare(struct conn *c);
enum send_result send_some(struct conn *c);
/* Write an interim 100 Continue (best effort: a full socket drops it). false: only part of it
 * went, and the connection's framing is lost. */
bool send_continue(struct conn *c);

#endif
