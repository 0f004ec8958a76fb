/*
 * engine.h — arca's own HTTP/1.1 server: worker threads, each with an epoll loop, serving the
 * connections of one listening socket; requests read with h1.c and answered as handler.h says.
 *
 * Contract: engine_start() takes bound, listening sockets (plain or TLS) and starts `threads`
 * workers. A TLS socket's connections do their handshake first (within the header deadline the
 * `opened` callback's owner enforces by shutting the socket); plain HTTP sent to it gets one
 * 400 answer, and its bytes are the same HTTP/1.1 as a plain socket's from there on. Every
 * callback of `engine_ops` runs on the worker thread that owns the connection: the worker with
 * the fewest connections when it was accepted (another than the one that accepted it, it is
 * handed over unopened), and a connection never changes thread once opened. For each request, in
 * order: `begin` once its head is in (it may queue an answer, a refusal, at once); `upload` with
 * its body's bytes as they come (when no answer is queued yet); `call` once the body is in, and
 * again after every conn_resume while no answer is queued; `done` once, when the answer went out
 * whole (completed) or the connection ended first. `opened` and `closed` bracket a connection;
 * `closed` runs before its descriptor is closed. A connection `opened` drops is closed at once,
 * before its worker turns to anything else, and `closed` is not called for it. Requests of one
 * connection are answered in order (pipelining); an idle keep-alive connection holds no buffer.
 * engine_stop_listening() takes the listening socket out of every loop and closes it (new clients
 * are refused), and returns once every connection accepted is opened; engine_stop() closes every
 * connection (their requests done, not completed) and joins the workers.
 */
#ifndef ARCA_ENGINE_H
#define ARCA_ENGINE_H

#include "engine/handler.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct conn; /* opaque to the engine's users (handler.h) */

struct engine_ops {
    /* A connection from `peer`: false to drop it (closed without a word); else its context in
     * `*ctx`, handed back to `closed` and by engine_conn_ctx. */
    bool (*opened)(int fd, const struct sockaddr *peer, void **ctx);
    void (*closed)(void *conn_ctx);
    /* A request's head is in: the request's context (NULL: out of memory, the connection is
     * closed). With `refusal` (a status; its one-line `reason`), the head was refused: `begin`
     * queues that answer, after which the connection closes. `begin` may queue an answer to any
     * head (a limit, a body its route cannot take): its body is then never read (no
     * 100 Continue), and a connection whose body is left unread closes after the answer. */
    void *(*begin)(struct conn *c, unsigned int refusal, const char *reason);
    /* Queue a refusal of the request after its head: a malformed body, or no answer at all from
     * its handler. The connection closes after it. */
    void (*refuse)(struct conn *c, void *req, unsigned int status, const char *reason);
    void (*upload)(struct conn *c, void *req, const char *data, size_t n);
    enum conn_result (*call)(struct conn *c, void *req);
    void (*done)(struct conn *c, void *req, bool completed);
};

struct engine_limits {
    int threads;
    size_t max_head;         /* request line and headers, bytes (431, 414 beyond) */
    int64_t idle_timeout_ms; /* a connection with no byte moving either way is closed */
    int max_connections;     /* beyond, new connections are closed without a word */
};

/* A bound, listening, non-blocking socket; `tls`: its connections speak TLS, each with the
 * context in force when it comes (tls/tls.h's tls_session). */
struct engine_listener {
    int fd;
    bool tls;
};
#define ENGINE_MAX_LISTENERS 9 /* --listen, and up to 8 --tls-listen */

int engine_start(const struct engine_listener *ls, int n, const struct engine_limits *lim,
                 const struct engine_ops *ops, char *err, size_t errlen);
void engine_stop_listening(void);
void engine_stop(void);
/* The worker threads, and worker i's open connections (any thread; 0 workers before the start
 * and after the stop). A new connection goes to the worker with the fewest. */
int engine_workers(void);
int engine_worker_connections(int i);

/* The connection's context (from `opened`). */
void *engine_conn_ctx(struct conn *c);
/* The request being handled on `c`, as its head said: method, target as sent, path
 * percent-decoded without the query (of an absolute-form target, "http://host/path" as a client
 * sends it to a proxy, the path after the authority), version ("HTTP/1.1"). */
const char *engine_method(struct conn *c);
const char *engine_target(struct conn *c);
const char *engine_path(struct conn *c);
/* An absolute-form target's authority as sent ("host:port", maybe ""); NULL for any other. */
const char *engine_authority(struct conn *c);
const char *engine_version(struct conn *c);
/* The request's body as its head declares it: its Content-Length, 0 for none, -1 chunked. */
int64_t engine_body_size(struct conn *c);
/* Bytes of the answer's body handed to the socket so far (framing aside): in `done`, what a
 * client that left early was sent. */
uint64_t engine_body_sent(struct conn *c);
/* Whether the connection stays open for another request once this answer is out (false when
 * either side said close, or the answer's framing needs the close). */
bool engine_keeps_alive(struct conn *c);
/* The subject of the certificate `c`'s client showed (RFC 2253), NULL when none. */
const char *engine_tls_peer(struct conn *c);
/* Refuse the request with 413 once more than `max` bytes of its chunked body came (its head
 * says no size; its framing counts too, so endless chunk extensions are bounded as well); called
 * from `begin`. */
void engine_limit_body(struct conn *c, uint64_t max);
/* Bytes a tunnel (conn_tunnel) carried from the client upstream (engine_body_sent: the other
 * way). */
uint64_t engine_tunnel_up(struct conn *c);
/* Queue the answer for the request being handled (a reference of its own is taken). false: one is
 * queued already. */
bool engine_queue(struct conn *c, unsigned int status, struct answer *a);

/* The request's record, kept by the engine from `begin` to `done`: what `begin` returned (NULL
 * between requests), the status queued (0: none yet), and the body bytes the queued answer
 * declares (0: none queued, a status without a body, or a body of unknown size). */
void *engine_request(struct conn *c);
unsigned int engine_status(struct conn *c);
uint64_t engine_answer_size(struct conn *c);
/* When (monotonic µs) the request's answer was queued: its head is the next bytes out, its
 * first byte's time as the latency histograms count it; 0 while none is. */
int64_t engine_answer_queued_us(struct conn *c);
/* Head lines every answer to the request being handled carries after its own, whoever built it:
 * "Name: value\r\n" each, in a string that outlives the request (NULL: none); set before its
 * answer is queued. What a proxy's answers all say (Via), or what a shared answer (one queued
 * for many requests, never changed) says for this request only. */
void engine_set_lines(struct conn *c, const char *lines);
/* A reload installed other TLS terms (tls_install): every worker judges its open TLS connections
 * again, on its own thread, at its next turn (tls_admits: the client certificate, or its absence,
 * against the client CAs now in force). One the new terms refuse is closed: at once when it is
 * between requests or relaying a tunnel, else once its current answer is out. Callable from any
 * thread. */
void engine_judge_tls(void);
/* Whether the calling thread is `c`'s worker: a connection's handlers, body readers and done run
 * there and nowhere else. */
bool engine_on_thread(struct conn *c);
/* From now on every answer closes its connection ("Connection: close", tunnels aside): the
 * server is stopping. Callable from any thread; engine_draining() (handler.h) says so. */
void engine_drain(void);

#endif
