/*
 * arca-tlsload — the HTTPS client of bench/run's tls-* scenarios: OpenSSL over blocking sockets,
 * a thread per client, so that arca and nginx are driven by the same code. The server's
 * certificate is verified against --ca and the URL's address (as curl --cacert would); TLS 1.3
 * unless --tls12 (then TLS 1.2 only, with the server's TLS 1.2 cipher list).
 *
 *   arca-tlsload conn URL --ca FILE [--threads T] [--seconds S] [--resume] [--tls12]
 *       Each of T threads (default 8) loops for S seconds (default 5): connect, handshake, GET
 *       with Connection: close, the answer read to the server's close, close. With --resume, a
 *       connection offers the session its thread's previous connection ended with
 *       (SSL_get1_session after the answer: a TLS 1.3 ticket comes after the handshake). Prints
 *       JSON: connections done (a 200 of the announced length), errors and the first one, how
 *       many resumed (SSL_session_reused), connections a second over the wall time, the median
 *       and p99 of connect-to-close in ms, and the protocol and cipher of the last one.
 *   arca-tlsload get URL --ca FILE [--clients N]
 *       N clients at once (a thread each) GET the URL whole (Connection: close). Prints JSON as
 *       arca-loadgen get does: per client its start, first answer byte and end (seconds since
 *       the run began), body bytes and status.
 *   arca-tlsload idle URL --ca FILE [--clients N]
 *       Opens N keep-alive connections one after the other, sends one GET on each and reads its
 *       answer (by its Content-Length), then holds them all. Prints {"open":..,"failed":..,
 *       "first_error":..} once done, and exits when stdin closes.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HEAD_MAX 8192
#define READ_BUF (64 * 1024)
#define THREADS_MAX 256

static struct sockaddr_in target;
static char host[64];
static char request[1024];
static size_t request_len;
static SSL_CTX *ctx;
static struct timespec t0;
static pthread_mutex_t first_lock = PTHREAD_MUTEX_INITIALIZER;
static char first_error[256];

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) / 1e9;
}

/* The first failure of the run, for the JSON: the reason and OpenSSL's own words if any. */
static void note_error(const char *why)
{
    char ssl_why[160] = "";
    unsigned long e = ERR_peek_last_error();
    if (e)
        ERR_error_string_n(e, ssl_why, sizeof(ssl_why));
    ERR_clear_error();
    pthread_mutex_lock(&first_lock);
    if (!first_error[0])
        snprintf(first_error, sizeof(first_error), "%s%s%s", why, ssl_why[0] ? ": " : "", ssl_why);
    pthread_mutex_unlock(&first_lock);
}

/* A connection and its handshake, offering `sess` when not NULL. NULL on failure (noted). */
static SSL *open_tls(int *fdp, SSL_SESSION *sess)
{
    int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);
    SSL *s;
    *fdp = fd;
    if (fd < 0) {
        note_error(strerror(errno));
        return NULL;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&target, sizeof(target)) < 0) {
        note_error(strerror(errno));
        close(fd);
        return NULL;
    }
    if (!(s = SSL_new(ctx)) || SSL_set_fd(s, fd) != 1 || (sess && SSL_set_session(s, sess) != 1)) {
        note_error("SSL_new");
        SSL_free(s);
        close(fd);
        return NULL;
    }
    if (SSL_connect(s) != 1) {
        note_error("handshake");
        SSL_free(s);
        close(fd);
        return NULL;
    }
    return s;
}

struct answer {
    int status;
    int64_t length; /* Content-Length, -1 when none */
    int64_t body;
    double ttfb;
};

/* The head's status and Content-Length. */
static bool parse_head(char *head, struct answer *a)
{
    char *p;
    if (sscanf(head, "HTTP/1.%*d %d", &a->status) != 1)
        return false;
    a->length = -1;
    for (p = strstr(head, "\r\n"); p && p[2] != '\r'; p = strstr(p + 2, "\r\n"))
        if (!strncasecmp(p + 2, "content-length:", 15))
            a->length = strtoll(p + 17, NULL, 10);
    for (p = strstr(head, "\r\n"); p && p[2] != '\r'; p = strstr(p + 2, "\r\n"))
        if (!strncasecmp(p + 2, "transfer-encoding:", 18))
            return false; /* no chunked answers here: hits carry their length */
    return true;
}

/* Sends the request and reads the answer: to the server's close (`to_close`), else to its
 * Content-Length. True for a 200 of the announced length. */
static bool exchange(SSL *s, const char *req, size_t req_len, bool to_close, struct answer *a,
                     char *buf)
{
    size_t put, got, head_len = 0;
    char head[HEAD_MAX];
    bool in_head = true;
    *a = (struct answer){.length = -1, .ttfb = -1};
    if (SSL_write_ex(s, req, req_len, &put) != 1) {
        note_error("write");
        return false;
    }
    for (;;) {
        if (!to_close && !in_head && a->body >= a->length)
            break;
        if (SSL_read_ex(s, buf, READ_BUF, &got) != 1) {
            int e = SSL_get_error(s, 0);
            if (e == SSL_ERROR_ZERO_RETURN && !in_head)
                break; /* the server closed (close_notify, or an EOF: IGNORE_UNEXPECTED_EOF) */
            note_error(e == SSL_ERROR_ZERO_RETURN ? "closed before the answer's head" : "read");
            return false;
        }
        if (a->ttfb < 0)
            a->ttfb = now();
        if (!in_head) {
            a->body += (int64_t)got;
            continue;
        }
        size_t take = got < HEAD_MAX - 1 - head_len ? got : HEAD_MAX - 1 - head_len;
        memcpy(head + head_len, buf, take);
        head_len += take;
        head[head_len] = 0;
        char *end = strstr(head, "\r\n\r\n");
        if (!end) {
            if (head_len == HEAD_MAX - 1) {
                note_error("answer head too long");
                return false;
            }
            continue;
        }
        size_t used = (size_t)(end + 4 - head) - (head_len - take);
        end[2] = 0;
        if (!parse_head(head, a)) {
            note_error("bad answer head");
            return false;
        }
        in_head = false;
        a->body = (int64_t)(got - used);
        if (!to_close && a->length < 0) {
            note_error("keep-alive answer without Content-Length");
            return false;
        }
    }
    if (a->status != 200 || (a->length >= 0 && a->body != a->length)) {
        char why[96];
        snprintf(why, sizeof(why), "status %d, %lld body bytes of %lld", a->status,
                 (long long)a->body, (long long)a->length);
        note_error(why);
        return false;
    }
    return true;
}

/* --- conn mode ------------------------------------------------------------------------------ */

static double conn_seconds = 5;
static bool resume;

struct conn_thread {
    pthread_t tid;
    long done, errors, resumed;
    double *ms;
    size_t n_ms, cap_ms;
    char protocol[32], cipher[64];
};

static void *conn_loop(void *arg)
{
    struct conn_thread *t = arg;
    SSL_SESSION *sess = NULL;
    char *buf = malloc(READ_BUF);
    struct answer a;
    int fd;
    while (buf && now() < conn_seconds) {
        double start = now();
        SSL *s = open_tls(&fd, resume ? sess : NULL);
        if (!s) {
            t->errors++;
            continue;
        }
        bool ok = exchange(s, request, request_len, true, &a, buf);
        if (ok) {
            t->done++;
            t->resumed += SSL_session_reused(s);
            snprintf(t->protocol, sizeof(t->protocol), "%s", SSL_get_version(s));
            snprintf(t->cipher, sizeof(t->cipher), "%s", SSL_get_cipher_name(s));
            if (t->n_ms == t->cap_ms) {
                double *grown = realloc(t->ms, (t->cap_ms = t->cap_ms * 2 + 1024) * sizeof(double));
                if (!grown)
                    break;
                t->ms = grown;
            }
            t->ms[t->n_ms++] = (now() - start) * 1e3;
        } else {
            t->errors++;
        }
        if (resume && ok) {
            SSL_SESSION_free(sess);
            sess = SSL_get1_session(s);
        }
        /* the server has closed: nothing is sent back (quiet), and a connection not shut down
         * would have its session marked not resumable by SSL_free */
        SSL_shutdown(s);
        SSL_free(s);
        close(fd);
        ERR_clear_error();
    }
    SSL_SESSION_free(sess);
    free(buf);
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int conn_main(int threads)
{
    struct conn_thread *t = calloc((size_t)threads, sizeof(*t));
    long done = 0, errors = 0, resumed = 0;
    size_t n = 0;
    double *all, wall;
    const char *protocol = "", *cipher = "";
    if (!t)
        return 1;
    for (int i = 0; i < threads; i++)
        pthread_create(&t[i].tid, NULL, conn_loop, &t[i]);
    for (int i = 0; i < threads; i++)
        pthread_join(t[i].tid, NULL);
    wall = now();
    for (int i = 0; i < threads; i++) {
        done += t[i].done, errors += t[i].errors, resumed += t[i].resumed, n += t[i].n_ms;
        if (t[i].protocol[0])
            protocol = t[i].protocol, cipher = t[i].cipher;
    }
    if (!(all = malloc((n + 1) * sizeof(double))))
        return 1;
    n = 0;
    for (int i = 0; i < threads; i++) {
        memcpy(all + n, t[i].ms, t[i].n_ms * sizeof(double));
        n += t[i].n_ms;
    }
    qsort(all, n, sizeof(double), cmp_double);
    printf("{\"connections\": %ld, \"errors\": %ld, \"resumed\": %ld, \"seconds\": %.3f, "
           "\"per_s\": %.1f, \"p50_ms\": %.3f, \"p99_ms\": %.3f, \"protocol\": \"%s\", "
           "\"cipher\": \"%s\", \"first_error\": \"%s\"}\n",
           done, errors, resumed, wall, (double)done / wall, n ? all[(size_t)(0.5 * (n - 1))] : 0,
           n ? all[(size_t)(0.99 * (n - 1) + 0.5)] : 0, protocol, cipher, first_error);
    for (int i = 0; i < threads; i++)
        free(t[i].ms);
    free(all);
    free(t);
    return 0;
}

/* --- get mode ------------------------------------------------------------------------------- */

struct get_client {
    pthread_t tid;
    double start, done;
    struct answer a;
    bool ok;
};

static void *get_one(void *arg)
{
    struct get_client *c = arg;
    char *buf = malloc(READ_BUF);
    int fd;
    SSL *s;
    c->start = now();
    if (buf && (s = open_tls(&fd, NULL))) {
        c->ok = exchange(s, request, request_len, true, &c->a, buf);
        SSL_free(s);
        close(fd);
    }
    c->done = now();
    free(buf);
    return NULL;
}

static int get_main(int clients)
{
    struct get_client *c = calloc((size_t)clients, sizeof(*c));
    if (!c)
        return 1;
    for (int i = 0; i < clients; i++)
        pthread_create(&c[i].tid, NULL, get_one, &c[i]);
    for (int i = 0; i < clients; i++)
        pthread_join(c[i].tid, NULL);
    printf("{\"first_error\": \"%s\", \"clients\": [\n", first_error);
    for (int i = 0; i < clients; i++)
        printf("  {\"start\": %.6f, \"ttfb\": %.6f, \"done\": %.6f, \"bytes\": %lld, "
               "\"status\": %d}%s\n",
               c[i].start, c[i].a.ttfb, c[i].done, (long long)c[i].a.body,
               c[i].ok ? c[i].a.status : 0, i + 1 < clients ? "," : "");
    printf("]}\n");
    free(c);
    return 0;
}

/* --- idle mode ------------------------------------------------------------------------------ */

static int idle_main(int clients)
{
    SSL **held = calloc((size_t)clients, sizeof(*held));
    int *fds = calloc((size_t)clients, sizeof(*fds)), open = 0, failed = 0;
    char *buf = malloc(READ_BUF), drain[64];
    struct answer a;
    if (!held || !fds || !buf)
        return 1;
    for (int i = 0; i < clients; i++) {
        SSL *s = open_tls(&fds[open], NULL);
        if (s && exchange(s, request, request_len, false, &a, buf)) {
            held[open++] = s;
            continue;
        }
        failed++;
        if (s) {
            SSL_free(s);
            close(fds[open]);
        }
    }
    printf("{\"open\": %d, \"failed\": %d, \"first_error\": \"%s\"}\n", open, failed, first_error);
    fflush(stdout);
    while (read(0, drain, sizeof(drain)) > 0)
        ;
    for (int i = 0; i < open; i++) {
        SSL_free(held[i]);
        close(fds[i]);
    }
    free(held);
    free(fds);
    free(buf);
    return 0;
}

/* --- setup ---------------------------------------------------------------------------------- */

static int parse_url(const char *url, bool keep_alive)
{
    int port = 443, off = 0;
    if (sscanf(url, "https://%63[0-9.]:%d%n", host, &port, &off) < 2 &&
        sscanf(url, "https://%63[0-9.]%n", host, &off) < 1)
        return -1;
    target.sin_family = AF_INET;
    target.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &target.sin_addr) != 1)
        return -1;
    request_len = (size_t)snprintf(
        request, sizeof(request),
        "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: arca-tlsload\r\n%s\r\n",
        url[off] ? url + off : "/", host, port, keep_alive ? "" : "Connection: close\r\n");
    return request_len < sizeof(request) ? 0 : -1;
}

/* The client context: the CA to verify against, the address the certificate must name, the
 * protocol version. Sessions are kept by hand (conn --resume), not in a cache. */
static bool make_ctx(const char *ca, bool tls12)
{
    int v = tls12 ? TLS1_2_VERSION : TLS1_3_VERSION;
    if (!(ctx = SSL_CTX_new(TLS_client_method())))
        return false;
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_quiet_shutdown(ctx, 1);
    /* as cheap a reader as can be (two cores shared with the server): all the socket has in one
     * read, rather than each record's header and body in two */
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_default_read_buffer_len(ctx, READ_BUF);
    return SSL_CTX_load_verify_locations(ctx, ca, NULL) == 1 &&
           SSL_CTX_set_min_proto_version(ctx, v) == 1 &&
           SSL_CTX_set_max_proto_version(ctx, v) == 1 &&
           X509_VERIFY_PARAM_set1_ip_asc(SSL_CTX_get0_param(ctx), host) == 1;
}

int main(int argc, char **argv)
{
    int clients = 1, threads = 8;
    const char *ca = NULL;
    bool tls12 = false;
    struct rlimit rl;

    if (argc < 3 ||
        (strcmp(argv[1], "conn") && strcmp(argv[1], "get") && strcmp(argv[1], "idle"))) {
        fprintf(stderr, "usage: arca-tlsload conn URL --ca FILE [--threads T] [--seconds S] "
                        "[--resume] [--tls12]\n"
                        "       arca-tlsload get|idle URL --ca FILE [--clients N] [--tls12]\n");
        return 2;
    }
    for (int i = 3; i < argc; i++) {
        bool has_value = i + 1 < argc;
        if (!strcmp(argv[i], "--resume"))
            resume = true;
        else if (!strcmp(argv[i], "--tls12"))
            tls12 = true;
        else if (has_value && !strcmp(argv[i], "--ca"))
            ca = argv[++i];
        else if (has_value && !strcmp(argv[i], "--clients"))
            clients = atoi(argv[++i]);
        else if (has_value && !strcmp(argv[i], "--threads"))
            threads = atoi(argv[++i]);
        else if (has_value && !strcmp(argv[i], "--seconds"))
            conn_seconds = atof(argv[++i]);
        else {
            fprintf(stderr, "arca-tlsload: unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    if (!ca || parse_url(argv[2], !strcmp(argv[1], "idle")) < 0 || clients < 1 ||
        clients > (strcmp(argv[1], "get") ? 100000 : THREADS_MAX) || threads < 1 ||
        threads > THREADS_MAX || conn_seconds <= 0) {
        fprintf(stderr, "arca-tlsload: bad arguments (--ca FILE; URL must be "
                        "https://IPv4[:port]/path)\n");
        return 2;
    }
    if (!make_ctx(ca, tls12)) {
        fprintf(stderr, "arca-tlsload: %s: cannot be used as the CA\n", ca);
        return 2;
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (!strcmp(argv[1], "conn"))
        return conn_main(threads);
    if (!strcmp(argv[1], "get"))
        return get_main(clients);
    return idle_main(clients);
}
