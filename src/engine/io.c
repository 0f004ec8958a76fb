/* A connection's bytes (engine_internal.h's io_*): the socket's own calls for a plain
 * connection; for a TLS listener's, its handshake and OpenSSL's reads and writes.
 *
 * Writing through TLS: each SSL_write puts out one record (SSL_MODE_ENABLE_PARTIAL_WRITE), and a
 * record that found no room in the socket is kept by OpenSSL, sealed, to be written first by the
 * next SSL_write, which must offer at least as many bytes, starting with the same ones. So
 * nothing offered is counted as sent until SSL_write says it went, and every caller offers again
 * from where it stopped: a memory body from its address, a file's bytes read again from the same
 * offset, held bytes (the cork) first. Small answers go out in one record with their head: the
 * head is held (io_sendv's `more`) and goes with the body's first bytes, as MSG_MORE does for a
 * plain socket. */
#include "engine/engine_internal.h"
#include "tls/tls.h"
#include "base/parse.h"
#include "log/log.h"

#include <errno.h>
#include <openssl/err.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* The most plaintext one TLS record carries. */
#define TLS_RECORD 16384

/* OpenSSL's reads of the socket: whether the last one came back short (the socket is empty,
 * its next bytes bring an edge) or found nothing. */
static long watch_reads(BIO *b, int oper, const char *argp, size_t len, int argi, long argl,
                        int ret, size_t *processed)
{
    (void)argp, (void)argi, (void)argl;
    if (oper == (BIO_CB_READ | BIO_CB_RETURN)) {
        struct conn *c = (struct conn *)BIO_get_callback_arg(b);
        c->tls_drained = ret <= 0 || (processed && *processed < len);
    }
    return ret;
}

bool io_tls_begin(struct conn *c)
{
    c->tls_judged = tls_generation(); /* before the session: never newer than its terms */
    if (!(c->ssl = tls_session(c->fd)))
        return false;
    BIO *b = SSL_get_rbio(c->ssl);
    BIO_set_callback_ex(b, watch_reads);
    BIO_set_callback_arg(b, (char *)c);
    return true;
}

void io_end(struct conn *c)
{
    SSL_free(c->ssl);
    c->ssl = NULL;
    free(c->cork);
    c->cork = NULL;
    c->cork_len = 0;
    free(c->peer_subject);
    c->peer_subject = NULL;
}

/* SSL_get_error reads the thread's error queue: it must be empty before an I/O call. Every
 * failure here empties it after, so it is nearly always empty: looked at, not cleared (clearing
 * it twice a hit was 4 % of a TLS hit's instructions, the bench helper's callgrind). */
static void clear_errors(void)
{
    if (ERR_peek_error())
        ERR_clear_error();
}

/* An OpenSSL call's failure as errno: EAGAIN when it waits for the socket, else EPIPE (the
 * session is broken: garbage, a reset, a close without close_notify). The error queue is left
 * empty: it is the thread's, and the next call on it must not read this one's. */
static ssize_t tls_failed(struct conn *c, int r)
{
    int e = SSL_get_error(c->ssl, r);
    ERR_clear_error();
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        if (e == SSL_ERROR_WANT_WRITE)
            c->can_write = false;
        errno = EAGAIN;
        return -1;
    }
    if (e == SSL_ERROR_ZERO_RETURN)
        return 0; /* close_notify: the end of the stream */
    errno = EPIPE;
    return -1;
}

ssize_t io_recv(struct conn *c, void *buf, size_t n, bool *drained)
{
    ssize_t r;
    size_t got;
    if (!c->ssl) {
        do
            r = recv(c->fd, buf, n, 0);
        while (r < 0 && errno == EINTR);
        if (drained)
            *drained = r >= 0 && (size_t)r < n;
        return r;
    }
    clear_errors();
    /* only a read of the socket made by this call may say it is empty: one served from
     * OpenSSL's read-ahead says nothing of the socket (found by the outside review: a stale
     * "empty" lost the edge of a pipelined burst) */
    c->tls_drained = false;
    if (SSL_read_ex(c->ssl, buf, n, &got) == 1) {
        /* OpenSSL reads all the socket has (read-ahead): what it holds is read without an edge */
        if (drained)
            *drained = c->tls_drained && !SSL_has_pending(c->ssl);
        return (ssize_t)got;
    }
    if (drained)
        *drained = false;
    return tls_failed(c, 0);
}

/* One SSL_write of `buf`: the bytes that went (one record, or kernel TLS's share), or -1. A
 * write that found no room leaves its record sealed in OpenSSL: the next must offer as many
 * bytes at least (tls_owed). */
static ssize_t tls_write(struct conn *c, const void *buf, size_t n)
{
    size_t put;
    clear_errors();
    if (SSL_write_ex(c->ssl, buf, n, &put) == 1) {
        c->tls_owed = 0;
        return (ssize_t)put;
    }
    c->tls_owed = n;
    return tls_failed(c, 0);
}

/* The worker's record buffer with the held bytes first: its room after them in `*room`. NULL:
 * out of memory. */
static char *record_start(struct conn *c, size_t *room)
{
    struct worker *w = c->w;
    if (!w->tls_buf && !(w->tls_buf = malloc(TLS_RECORD)))
        return NULL;
    if (c->cork_len)
        memcpy(w->tls_buf, c->cork, c->cork_len);
    *room = TLS_RECORD - c->cork_len;
    return w->tls_buf;
}

/* Write the held bytes and then `n` of the caller's (put at buf + cork_len already, or at
 * `own` when nothing is held): the caller's bytes that went, or -1. Held bytes count first. */
static ssize_t write_after_cork(struct conn *c, const char *buf, const char *own, size_t n)
{
    ssize_t r;
    if (c->cork_len == 0)
        return tls_write(c, own, n);
    if ((r = tls_write(c, buf, c->cork_len + n)) < 0)
        return -1;
    if ((size_t)r < c->cork_len) { /* kernel TLS took part of the held bytes only */
        memmove(c->cork, c->cork + r, c->cork_len - (size_t)r);
        c->cork_len -= (size_t)r;
        return 0;
    }
    r -= (ssize_t)c->cork_len;
    free(c->cork);
    c->cork = NULL;
    c->cork_len = 0;
    return r;
}

/* Held for the next record: false when they would not fit in one (they are written now). */
static bool hold(struct conn *c, const struct iovec *iov, int n, size_t total)
{
    char *grown;
    if (c->cork_len + total > TLS_RECORD / 2)
        return false; /* a body's bytes: no use holding them */
    if (!(grown = realloc(c->cork, c->cork_len + total)))
        return false;
    c->cork = grown;
    for (int i = 0; i < n; i++) {
        memcpy(c->cork + c->cork_len, iov[i].iov_base, iov[i].iov_len);
        c->cork_len += iov[i].iov_len;
    }
    return true;
}

/* A body of many records: they leave in full segments, not a segment (and a wake-up of the
 * reader) for each 16 KiB record, until the turn ends (io_turn_end). With TCP_NODELAY alone, 4
 * GiB of hits went out in 335k segments against nginx's 259k, and rounds swung with the
 * wake-ups (bench/README.md, tls-large). */
static void cork(struct conn *c)
{
    int one = 1;
    if (!c->tls_corked && setsockopt(c->fd, IPPROTO_TCP, TCP_CORK, &one, sizeof(one)) == 0)
        c->tls_corked = true;
}

void io_turn_end(struct conn *c)
{
    int zero = 0;
    if (c->tls_corked && setsockopt(c->fd, IPPROTO_TCP, TCP_CORK, &zero, sizeof(zero)) == 0)
        c->tls_corked = false;
}

static ssize_t tls_sendv(struct conn *c, const struct iovec *iov, int n, bool more)
{
    size_t total = 0, room, k = 0;
    char *buf;
    for (int i = 0; i < n; i++)
        total += iov[i].iov_len;
    if (more && hold(c, iov, n, total))
        return (ssize_t)total;
    if (n == 1 && c->cork_len == 0) { /* a body from its own memory: no copy */
        if (total > TLS_RECORD)
            cork(c);
        return total ? tls_write(c, iov[0].iov_base, total) : 0;
    }
    if (!(buf = record_start(c, &room))) {
        errno = ENOMEM;
        return -1;
    }
    for (int i = 0; i < n && k < room; i++) {
        size_t take = iov[i].iov_len < room - k ? iov[i].iov_len : room - k;
        memcpy(buf + c->cork_len + k, iov[i].iov_base, take);
        k += take;
    }
    return write_after_cork(c, buf, buf + c->cork_len, k);
}

ssize_t io_sendv(struct conn *c, const struct iovec *iov, int n, bool more)
{
    struct msghdr m = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)n};
    ssize_t r;
    if (c->ssl)
        return tls_sendv(c, iov, n, more);
    do
        r = sendmsg(c->fd, &m, MSG_NOSIGNAL | (more ? MSG_MORE : 0));
    while (r < 0 && errno == EINTR);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        c->can_write = false;
    return r;
}

bool io_flush(struct conn *c)
{
    /* nothing held, or a record with more than the held bytes waits for room already */
    if (!c->ssl || c->cork_len == 0 || c->tls_owed > c->cork_len)
        return true;
    return write_after_cork(c, c->cork, NULL, 0) >= 0 || errno == EAGAIN;
}

/* A file's bytes through OpenSSL: kernel TLS sends them from the page cache; else one record's
 * worth is read (after the held bytes) and written. */
static ssize_t tls_sendfile(struct conn *c, int fd, off_t *off, size_t len)
{
    size_t room;
    ssize_t n, r;
    char *buf;
    if (BIO_get_ktls_send(SSL_get_wbio(c->ssl)) && c->cork_len == 0) {
        ERR_clear_error();
        r = SSL_sendfile(c->ssl, fd, *off, len, 0);
        if (r > 0)
            *off += r;
        return r > 0 ? r : tls_failed(c, (int)r);
    }
    if (!(buf = record_start(c, &room))) {
        errno = ENOMEM;
        return -1;
    }
    if (len > room)
        cork(c);
    do
        n = pread(fd, buf + c->cork_len, len < room ? len : room, *off);
    while (n < 0 && errno == EINTR);
    if (n <= 0)
        return n < 0 ? -1 : 0; /* the file ended early: the caller cuts the answer */
    if ((r = write_after_cork(c, buf, buf + c->cork_len, (size_t)n)) > 0)
        *off += r;
    return r;
}

bool io_copies_files(struct conn *c)
{
    return c->ssl && !BIO_get_ktls_send(SSL_get_wbio(c->ssl));
}

ssize_t io_sendfile(struct conn *c, int fd, off_t *off, size_t len)
{
    ssize_t r;
    if (c->ssl)
        return tls_sendfile(c, fd, off, len);
    do
        r = sendfile(c->fd, fd, off, len);
    while (r < 0 && errno == EINTR);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        c->can_write = false;
    return r;
}

void io_shut_write(struct conn *c)
{
    if (c->ssl && io_flush(c)) {
        ERR_clear_error();
        if (SSL_shutdown(c->ssl) < 0) /* close_notify, if the socket has room for it */
            ERR_clear_error();
    }
    shutdown(c->fd, SHUT_WR);
}

/* The handshake is done: what the status counts, and the client certificate's subject. */
static void handshake_done(struct conn *c)
{
    X509 *peer = SSL_get0_peer_certificate(c->ssl);
    tls_count(TLS_HANDSHAKE);
    if (SSL_session_reused(c->ssl))
        tls_count(TLS_RESUMED);
    if (BIO_get_ktls_send(SSL_get_wbio(c->ssl)))
        tls_count(TLS_KTLS);
    if (peer && (c->peer_subject = malloc(TLS_SUBJECT_MAX)))
        tls_subject(peer, c->peer_subject, TLS_SUBJECT_MAX);
}

/* A client certificate refused, at the handshake or after a reload: a line for the admin (who
 * is refused, and why), at most one a second (a flood is counted into the next line, not written
 * out). */
static void note_refused(struct conn *c, const char *what, const char *why)
{
    static _Atomic int64_t said_at, unsaid;
    int64_t now = (int64_t)time(NULL), then = atomic_load(&said_at), more;
    char addr[64] = "?", extra[48] = "";
    if (then == now || !atomic_compare_exchange_strong(&said_at, &then, now)) {
        atomic_fetch_add(&unsaid, 1);
        return;
    }
    if ((more = atomic_exchange(&unsaid, 0)) > 0)
        snprintf(extra, sizeof(extra), " (%lld more refused since)", (long long)more);
    format_sockaddr(&c->peer.sa, addr, sizeof(addr));
    log_info("%s from %s refused: %s%s", what, addr, why, extra);
}

/* The handshake failed: counted, and a refused client certificate said. */
static void handshake_failed(struct conn *c)
{
    long verdict = SSL_get_verify_result(c->ssl);
    bool none = ERR_GET_REASON(ERR_peek_last_error()) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE;
    char why[512];
    ERR_clear_error();
    tls_count(TLS_FAILED);
    if (!none && verdict == X509_V_OK)
        return; /* garbage, no common protocol, a client that left */
    tls_count(TLS_NO_CLIENT_CERT);
    if (none)
        snprintf(why, sizeof(why), "no client certificate (--tls-client-ca asks for one)");
    else
        snprintf(why, sizeof(why), "its certificate %s is not one --tls-client-ca accepts (%s)",
                 tls_refused_subject(c->ssl), X509_verify_cert_error_string(verdict));
    note_refused(c, "TLS handshake", why);
}

bool io_tls_trusted(struct conn *c)
{
    unsigned now = tls_generation();
    char why[512];
    if (!c->ssl || c->tls_judged == now)
        return true;
    c->tls_judged = now;
    if (tls_admits(c->ssl, why, sizeof(why)))
        return true;
    tls_count(TLS_REFUSED_LATER);
    note_refused(c, "TLS connection", why);
    return false;
}

/* A client that speaks plain HTTP to a TLS port starts with a method's letters, never a TLS
 * record (a ClientHello's starts with 0x16): one byte looked at (not taken) tells them apart. */
static enum io_handshake sniff(struct conn *c)
{
    unsigned char first;
    ssize_t r;
    do
        r = recv(c->fd, &first, 1, MSG_PEEK);
    while (r < 0 && errno == EINTR);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        c->can_read = false;
        return IO_HS_WAIT;
    }
    if (r <= 0)
        return IO_HS_FAILED;
    if (first >= 'A' && first <= 'Z') {
        tls_count(TLS_PLAIN_HTTP);
        SSL_free(c->ssl);
        c->ssl = NULL;
        c->plain_on_tls = true;
        return IO_HS_PLAIN;
    }
    return IO_HS_DONE; /* a TLS record, or garbage OpenSSL refuses */
}

enum io_handshake io_handshake(struct conn *c)
{
    enum io_handshake s;
    int r, e;
    if (!SSL_in_before(c->ssl) || (s = sniff(c)) == IO_HS_DONE) {
        ERR_clear_error();
        if ((r = SSL_do_handshake(c->ssl)) == 1) {
            handshake_done(c);
            return IO_HS_DONE;
        }
        e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            ERR_clear_error();
            return IO_HS_WAIT; /* every event of the socket tries again */
        }
        handshake_failed(c);
        return IO_HS_FAILED;
    }
    return s;
}

bool conn_tls(struct conn *c)
{
    return c->ssl != NULL;
}

const char *engine_tls_peer(struct conn *c)
{
    return c->peer_subject;
}
