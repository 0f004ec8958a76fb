/*
 * handler.h — what a route handler (http/, web/) sees of the server: the request it is handling
 * (headers, query arguments, the peer), how it waits (suspend, resume), and the answer it builds.
 * The engine declares it and implements it (conn.c, answer.c, worker.c, loop.c): handlers name
 * nothing else of the engine, and the engine names no handler (it calls them through engine.h's
 * table).
 *
 * Contract: a `struct conn` is valid from the handler's call for a request until that request
 * completes (its route's done); conn_header and conn_query answer only in a call for the request,
 * on its thread, and their strings live until the request completes. conn_resume may be called
 * from any thread, once per conn_suspend. An answer is built on any thread, queued once with
 * http_queue (http_internal.h), which takes the builder's reference; a shared answer
 * (http_queue_shared) is never changed once queued, and is let go with answer_put.
 */
#ifndef ARCA_CONN_H
#define ARCA_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

struct conn;   /* the client's connection, as the server keeps it */
struct answer; /* a response: status line aside, its headers and body */

/* What a handler tells the server: go on (an answer is queued, or the connection suspended), or
 * close the connection without an answer (out of memory while answering). */
enum conn_result { CONN_CLOSE = 0, CONN_GO_ON = 1 };

/* The statuses arca answers with (RFC 9110 names). */
enum http_code {
    HTTP_OK = 200,
    HTTP_ACCEPTED = 202,
    HTTP_PARTIAL_CONTENT = 206,
    HTTP_FOUND = 302,
    HTTP_NOT_MODIFIED = 304,
    HTTP_BAD_REQUEST = 400,
    HTTP_UNAUTHORIZED = 401,
    HTTP_FORBIDDEN = 403,
    HTTP_NOT_FOUND = 404,
    HTTP_METHOD_NOT_ALLOWED = 405,
    HTTP_CONFLICT = 409,
    HTTP_CONTENT_TOO_LARGE = 413,
    HTTP_URI_TOO_LONG = 414,
    HTTP_RANGE_NOT_SATISFIABLE = 416,
    HTTP_TOO_MANY_REQUESTS = 429,
    HTTP_REQUEST_HEADER_FIELDS_TOO_LARGE = 431,
    HTTP_INTERNAL_SERVER_ERROR = 500,
    HTTP_NOT_IMPLEMENTED = 501,
    HTTP_BAD_GATEWAY = 502,
    HTTP_SERVICE_UNAVAILABLE = 503,
    HTTP_LOOP_DETECTED = 508,
};

/* The request's header `name` (case-insensitive; the first line of that name), or NULL. */
const char *conn_header(struct conn *c, const char *name);
/* fn(cls, value) for every header line named `name` (case-insensitive), in the request's order. */
void conn_each_header(struct conn *c, const char *name, void (*fn)(void *cls, const char *value),
                      void *cls);
/* The request's query argument `name`, percent-decoded (the first of that name); NULL when it is
 * absent or has no '='. */
const char *conn_query(struct conn *c, const char *name);
/* The connection's peer (NULL: unknown). */
const struct sockaddr *conn_peer(struct conn *c);
/* Whether the request came over TLS (a --tls-listen address): the URLs arca writes for its
 * client start "https://". */
bool conn_tls(struct conn *c);

/* Stop calling the handler until conn_resume; the handler is then called again. */
void conn_suspend(struct conn *c);
void conn_resume(struct conn *c);

/* A body's length when it is not known in advance: the answer goes out chunked (HTTP/1.1) or
 * ends with the connection (HTTP/1.0). */
#define ANSWER_SIZE_UNKNOWN UINT64_MAX
/* What a body reader returns beside a byte count (0: none yet; the handler's park suspends the
 * connection and resumes it when bytes land). */
#define ANSWER_END ((ssize_t)-1) /* the body is whole */
#define ANSWER_CUT ((ssize_t)-2) /* the body is cut: the connection closes with no final chunk */

/* Body bytes from `pos` into `buf` (at most `max`). */
typedef ssize_t (*answer_reader)(void *cls, uint64_t pos, char *buf, size_t max);

/* Body bytes from `pos` as a span of a file: up to `max` of them, at *off of *fd, which stay
 * unchanged while the answer lives. Returns their count, or as a reader does (0, END, CUT). */
typedef ssize_t (*answer_spanner)(void *cls, uint64_t pos, size_t max, int *fd, int64_t *off);

/* The answers' bodies. Each returns NULL when out of memory; what it was to own (a buffer, a
 * descriptor) is then still the caller's. */
/* `len` bytes copied now. */
struct answer *answer_copy(const void *data, size_t len);
/* Room for `len` bytes in the answer's own allocation, at *room, for the caller to fill before
 * the answer is queued (a small object's file read straight into it); a NUL follows them. */
struct answer *answer_room(size_t len, char **room);
/* `len` bytes the answer owns (malloc'd), freed with it. */
struct answer *answer_owned(void *data, size_t len);
/* `len` bytes that outlive every answer (a string literal). */
struct answer *answer_static(const void *data, size_t len);
/* `len` bytes released by `release(cls)` once the answer is let go (an mmap). */
struct answer *answer_borrowed(const void *data, size_t len, void (*release)(void *), void *cls);
/* `len` bytes of the file `fd` from `off`; the answer owns `fd`, closed with it. */
struct answer *answer_file(int fd, int64_t off, uint64_t len);
/* The same, with the same bytes also at `view` (a mapping of the file, let go by
 * `release(cls)` with the answer): each connection takes the road that costs it less, the file
 * by sendfile where the kernel moves its pages (plain HTTP, kernel TLS), the mapping where they
 * would be read into a buffer first (TLS encrypted by OpenSSL). */
struct answer *answer_file_mapped(int fd, int64_t off, uint64_t len, const void *view,
                                  void (*release)(void *), void *cls);
/* `size` bytes (or ANSWER_SIZE_UNKNOWN) read by `reader` in blocks of at most `block`. */
struct answer *answer_read(uint64_t size, size_t block, answer_reader reader, void *cls);

/* `size` bytes (or ANSWER_SIZE_UNKNOWN) in spans of files, sent with sendfile. */
struct answer *answer_spans(uint64_t size, answer_spanner spanner, void *cls);

/* A trailer section (RFC 9112 7.1.2) for an answer whose body goes out chunked (its length
 * unknown, to an HTTP/1.1 client): once its reader or spanner said ANSWER_END, `fn(cls, buf,
 * size)` is asked, on the connection's thread, for the lines to send after the last chunk, and
 * writes "Name: value\r\n" lines into buf (at most `size` bytes, ANSWER_TRAILER_MAX), returning
 * their length (0: none). What is not such lines is dropped, never sent: nothing it writes can
 * end the message early. A body with a Content-Length, cut, or ended by the connection's close
 * (HTTP/1.0) has none, and fn is not asked. The handler says the names in the head (Trailer:
 * RFC 9110 6.6.2). */
#define ANSWER_TRAILER_MAX 256
typedef size_t (*answer_trailer_fn)(void *cls, char *buf, size_t size);
void answer_trailer(struct answer *a, answer_trailer_fn fn, void *cls);

/* Add a header line (the answer may not yet be queued). false: out of memory, or a name or value
 * the server refuses (a CR or LF). */
bool answer_header(struct answer *a, const char *name, const char *value);
/* The value of the answer's first header line `name` (any case), copied into out[size] and
 * returned; NULL when it has none. */
const char *answer_header_value(const struct answer *a, const char *name, char *out, size_t size);
/* Whether the server is stopping (engine_drain): every answer closes its connection from now
 * on. Any thread. */
bool engine_draining(void);
/* Wait until every answer whose last byte a client may already hold has had its done: what a
 * route's done counts (a statistic, a histogram) is then counted when a client that saw its answer
 * end asks for the counters next (each worker's sending is bracketed; a worker in one is waited
 * for, at most ENGINE_SETTLE_MAX_US, never the caller's own). Callable from any thread. */
#define ENGINE_SETTLE_MAX_US 50000
void engine_settle(void);

/* Let go of a reference (one taken at building, by http_queue_shared's callers). */
void answer_put(struct answer *a);

/* A CONNECT's tunnel: once the answer queued for it went out, if its status is 2xx, the
 * connection relays bytes both ways between its client and `fd` (a connected socket, taken
 * over: the server closes it) until both have ended their side or either fails; the request
 * completes then, and the connection closes. Any other status: `fd` is closed after the answer.
 * What the tunnel reads from `fd` is taken from `cap` (the uplink cap's bucket, base/tokens.h;
 * NULL: no cap): it stops reading `fd` while the bucket is empty. A 2xx answer of a tunnel
 * carries no Content-Length (RFC 9110 9.3.6). false: not a CONNECT, or a tunnel is set already
 * (`fd` stays the caller's). */
struct token_bucket;
bool conn_tunnel(struct conn *c, int fd, struct token_bucket *cap);

/* A connection arca makes to one of its own listeners for a client (a CONNECT to arca itself,
 * http_connect.c) is that client's: registered by the local address it is made `from` (bound
 * before it connects), the listener that accepts it gives it `client` as its peer, for every
 * check (who may fetch, the limits, the access log), never arca's own address. false: too many
 * being opened at once. engine_relay_accepted says whether the listener took it yet (its bytes
 * are the client's from the first); engine_forget_relay drops the registration, accepted or not.
 * Callable from any thread. */
bool engine_expect_relay(const struct sockaddr *from, const struct sockaddr *client);
bool engine_relay_accepted(const struct sockaddr *from);
void engine_forget_relay(const struct sockaddr *from);

#endif
