/*
 * arca-loadgen — the HTTP client of bench/run. One process, epoll, no library, so that every
 * contender is measured with the same, cheap client (curl processes would take a core of their own
 * at these rates).
 *
 *   arca-loadgen get URL [--clients N] [--spread SECONDS] [--threads T] [--also URL]...
 *                    [--sha256]
 *       N clients GET the URL (HTTP/1.1, Connection: close), client i starting i*SPREAD/N seconds
 *       in. Prints JSON: per client its start, time to first response byte and completion
 *       (seconds since the run began), body bytes and status. Each --also adds a URL: client i
 *       asks the (i mod URLs)th, so one process drives the clients of several servers (the tier
 *       scenario's three child arcas) as it drives one's. --sha256 adds each client's body's
 *       sha256 (hex; "" unless the body came whole): bytes alone would not show wrong ones.
 *   arca-loadgen idle URL --clients N
 *       Opens N keep-alive connections, sends one GET on each and reads its answer (it must carry a
 *       Content-Length), then holds them all open. Prints {"open":..,"failed":..} once they are
 *       all answered, and exits when stdin closes.
 *   arca-loadgen rate URL --rate R --seconds S [--connections C] [--random N]
 *       Open loop: request i is due at i/R seconds, whatever the answers before it did, and goes
 *       out on the first of C keep-alive connections that is free (default 64). Its latency runs
 *       from when it was due, so a server that stalls is charged for the requests that queued
 *       meanwhile (no coordinated omission). --random N appends a random number below N to the
 *       URL of each request. Answers must carry a Content-Length. Prints JSON: requests due,
 *       answered, errors (non-200, cut), the rate achieved and latency percentiles in ms.
 *   arca-loadgen probe URL [--gap-ms G] [--seconds S]
 *       One request at a time, each on a new connection (as a lab's curl asks), G ms apart
 *       (default 2), for S seconds (default 2) or until stdin closes, whichever comes first.
 *       Each is timed from connect to its last byte. Prints JSON: per request the moment it
 *       started (CLOCK_MONOTONIC seconds, as Python's time.monotonic()), its ms, whether it
 *       was a 200 of the announced length, and the ms of it the probe itself spent runnable
 *       but waiting for a core (/proc/self/schedstat; -1 when unknown): on cores the server and
 *       the other clients share, that wait is the client's, not the server's.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#define HEAD_MAX 8192
#define RECV_BUF (256 * 1024)
/* Reads of one socket per epoll pass. Reading until EAGAIN let a socket that a fast sender keeps
 * full hold its thread while the thread's other clients waited: their first bytes and their
 * ends were charged to the server. epoll is level-triggered, so what is left is reported on the
 * next pass. */
#define RECVS_PER_PASS 4
#define CONNECTING_MAX 256 /* idle mode: connections opened but not yet answered */
#define URLS_MAX 8         /* get mode: URL and its --also */

/* Where a URL's clients connect, and the request they send. */
struct url_target {
    struct sockaddr_in addr;
    char request[1024];
    size_t len;
};

enum phase { P_WAITING, P_SENDING, P_HEAD, P_BODY, P_DONE, P_FAILED };

struct client {
    int fd, ep;
    enum phase phase;
    double start, ttfb, done;
    int status;
    int64_t body, length; /* length -1: until close (or chunked) */
    bool chunked;
    int64_t chunk_left; /* chunked: data left in this chunk; -1 size line, -2 CRLF after data */
    char line[32];
    size_t line_len, sent, head_len;
    char head[HEAD_MAX];
    const char *error;
    int error_errno; /* errno of a failed system call, else 0 */
    const struct url_target *to;
    EVP_MD_CTX *sha; /* --sha256: the body's, as it comes */
    char sha_hex[65];
};

/* urls[0] is the URL rate and probe modes ask; get mode's clients share them all. */
static struct url_target urls[URLS_MAX];
static int url_count;
static char url_path[512], url_host[80]; /* rate mode builds each request from them */
static bool idle_mode;
static double spread;
static struct timespec t0;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) / 1e9;
}

static void fail(struct client *c, const char *why)
{
    c->phase = P_FAILED;
    c->error = why;
    c->done = now();
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

/* A failed system call: keep errno, so the reason printed says what the kernel said. */
static void fail_sys(struct client *c, const char *why)
{
    int e = errno;
    fail(c, why);
    c->error_errno = e;
}

static void finish(struct client *c)
{
    c->phase = P_DONE;
    c->done = now();
    if (c->sha) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int len = 0;
        EVP_DigestFinal_ex(c->sha, md, &len);
        for (unsigned int i = 0; i < len && i < 32; i++)
            snprintf(c->sha_hex + 2 * i, 3, "%02x", md[i]);
    }
    if (idle_mode) {
        epoll_ctl(c->ep, EPOLL_CTL_DEL, c->fd, NULL); /* held open, never read again */
    } else {
        close(c->fd);
        c->fd = -1;
    }
}

static int start_client(struct client *c, int ep)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    c->start = now();
    c->ep = ep;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        fail_sys(c, "socket");
        return -1;
    }
    if (connect(c->fd, (const struct sockaddr *)&c->to->addr, sizeof(c->to->addr)) < 0 &&
        errno != EINPROGRESS) {
        fail_sys(c, "connect");
        return -1;
    }
    c->phase = P_SENDING;
    return epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
}

static void parse_head(struct client *c)
{
    char *p = c->head, *end = strstr(c->head, "\r\n\r\n");
    c->length = -1;
    if (sscanf(p, "HTTP/%*d.%*d %d", &c->status) != 1) {
        fail(c, "bad status line");
        return;
    }
    for (*end = '\0'; (p = strstr(p, "\r\n")) != NULL; p += 2) {
        if (!strncasecmp(p + 2, "content-length:", 15))
            c->length = strtoll(p + 17, NULL, 10);
        else if (!strncasecmp(p + 2, "transfer-encoding:", 18) && strcasestr(p + 20, "chunked"))
            c->chunked = true, c->chunk_left = -1;
    }
    if (c->chunked)
        c->length = -1;
    if (idle_mode && c->length < 0)
        fail(c, "idle mode needs a Content-Length");
}

/* Body bytes: counted, and hashed with --sha256. */
static void take_body(struct client *c, const char *p, size_t n)
{
    c->body += (int64_t)n;
    if (c->sha)
        EVP_DigestUpdate(c->sha, p, n);
}

/* Count the payload of a chunked body; returns -1 on a framing error, 1 at the last chunk. */
static int eat_chunked(struct client *c, const char *p, size_t n)
{
    while (n > 0) {
        if (c->chunk_left > 0) {
            size_t take = (size_t)c->chunk_left < n ? (size_t)c->chunk_left : n;
            take_body(c, p, take);
            c->chunk_left -= (int64_t)take, p += take, n -= take;
            if (c->chunk_left == 0)
                c->chunk_left = -2;
            continue;
        }
        if (c->line_len + 1 >= sizeof(c->line))
            return -1;
        c->line[c->line_len++] = *p++, n--;
        if (c->line[c->line_len - 1] != '\n')
            continue;
        c->line[c->line_len] = '\0';
        c->line_len = 0;
        if (c->chunk_left == -2) { /* the CRLF after a chunk's data */
            c->chunk_left = -1;
            continue;
        }
        c->chunk_left = strtoll(c->line, NULL, 16);
        if (c->chunk_left == 0)
            return 1; /* trailers are not waited for: the body is complete */
    }
    return 0;
}

static void on_bytes(struct client *c, const char *p, size_t n)
{
    if (c->phase == P_HEAD) {
        size_t take = n < HEAD_MAX - 1 - c->head_len ? n : HEAD_MAX - 1 - c->head_len;
        char *end;
        if (c->ttfb == 0)
            c->ttfb = now();
        memcpy(c->head + c->head_len, p, take);
        c->head_len += take;
        c->head[c->head_len] = '\0';
        if (!(end = strstr(c->head, "\r\n\r\n"))) {
            if (c->head_len == HEAD_MAX - 1)
                fail(c, "response head too large");
            return;
        }
        size_t head_bytes = (size_t)(end + 4 - c->head);
        size_t rest = head_bytes - (c->head_len - take); /* of this read, bytes that were head */
        parse_head(c);
        if (c->phase == P_FAILED)
            return;
        c->phase = P_BODY;
        p += rest, n -= rest;
    }
    if (c->chunked) {
        int r = eat_chunked(c, p, n);
        if (r < 0)
            fail(c, "bad chunk");
        else if (r > 0)
            finish(c);
        return;
    }
    take_body(c, p, n);
    if (c->length >= 0 && c->body >= c->length)
        finish(c);
}

static void on_event(struct client *c, uint32_t events, char *buf)
{
    if (c->phase == P_SENDING && (events & EPOLLOUT)) {
        ssize_t n = send(c->fd, c->to->request + c->sent, c->to->len - c->sent, MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN) {
            fail_sys(c, "send");
            return;
        }
        if (n > 0 && (c->sent += (size_t)n) == c->to->len) {
            struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
            c->phase = P_HEAD;
            epoll_ctl(c->ep, EPOLL_CTL_MOD, c->fd, &ev);
        }
    }
    for (int reads = 0; reads < RECVS_PER_PASS && (c->phase == P_HEAD || c->phase == P_BODY);
         reads++) {
        ssize_t n = recv(c->fd, buf, RECV_BUF, 0);
        if (n > 0) {
            on_bytes(c, buf, (size_t)n);
            continue;
        }
        if (n == 0) {
            if (c->phase == P_BODY && c->length < 0 && !c->chunked)
                finish(c);
            else
                fail(c, c->phase == P_HEAD ? "closed before a response" : "short body");
        } else if (errno != EAGAIN) {
            fail_sys(c, "recv");
        }
        break;
    }
}

struct worker {
    struct client *clients;
    int count, first, total; /* clients [first, first+count) of `total` */
};

static int pending(const struct worker *w)
{
    int n = 0;
    for (int i = 0; i < w->count; i++)
        n += w->clients[i].phase == P_SENDING || w->clients[i].phase == P_HEAD ||
             w->clients[i].phase == P_BODY;
    return n;
}

static void *run_worker(void *arg)
{
    struct worker *w = arg;
    struct epoll_event evs[256];
    char *buf = malloc(RECV_BUF);
    int ep = epoll_create1(EPOLL_CLOEXEC), next = 0, finished = 0;

    while (buf && ep >= 0 && finished < w->count) {
        double t = now(), wait_s = 1.0;
        while (next < w->count) {
            double at = w->total > 1 ? spread * (w->first + next) / (w->total - 1) : 0;
            if (at > t || (idle_mode && pending(w) >= CONNECTING_MAX)) {
                wait_s = at > t ? at - t : 0.01;
                break;
            }
            start_client(&w->clients[next++], ep);
        }
        int n = epoll_wait(ep, evs, 256, (int)(wait_s * 1000) + 1);
        for (int i = 0; i < n; i++)
            on_event(evs[i].data.ptr, evs[i].events, buf);
        finished = 0;
        for (int i = 0; i < next; i++)
            finished += w->clients[i].phase == P_DONE || w->clients[i].phase == P_FAILED;
    }
    free(buf);
    if (ep >= 0)
        close(ep);
    return NULL;
}

static int rate_main(int argc, char **argv);
static int probe_main(int argc, char **argv);

/* The next of urls[]; the first sets url_path and url_host too (rate mode's). */
static int parse_url(const char *url)
{
    char host[64];
    int port = 80, off = 0;
    if (url_count == URLS_MAX)
        return -1;
    struct url_target *u = &urls[url_count];
    if (sscanf(url, "http://%63[0-9.]:%d%n", host, &port, &off) < 2 &&
        sscanf(url, "http://%63[0-9.]%n", host, &off) < 1)
        return -1;
    u->addr.sin_family = AF_INET;
    u->addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &u->addr.sin_addr) != 1)
        return -1;
    if (url_count == 0) {
        snprintf(url_path, sizeof(url_path), "%s", url[off] ? url + off : "/");
        snprintf(url_host, sizeof(url_host), "%s:%d", host, port);
    }
    u->len = (size_t)snprintf(
        u->request, sizeof(u->request),
        "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: arca-loadgen\r\n%s\r\n",
        url[off] ? url + off : "/", host, port, idle_mode ? "" : "Connection: close\r\n");
    if (u->len >= sizeof(u->request))
        return -1;
    url_count++;
    return 0;
}

static void print_results(const struct client *cl, int n)
{
    int open = 0, failed = 0;
    if (idle_mode) {
        const struct client *first = NULL;
        for (int i = 0; i < n; i++) {
            cl[i].phase == P_DONE ? open++ : failed++;
            if (cl[i].phase != P_DONE && !first)
                first = &cl[i];
        }
        /* why connections failed, so a bench run that stops here says what went wrong */
        printf("{\"open\": %d, \"failed\": %d, \"first_error\": \"%s%s%s\"}\n", open, failed,
               first && first->error ? first->error : "", first && first->error_errno ? ": " : "",
               first && first->error_errno ? strerror(first->error_errno) : "");
        fflush(stdout);
        return;
    }
    /* where the run began on CLOCK_MONOTONIC: a caller lines clients up with a probe's times */
    printf("{\"t0\": %.6f, \"clients\": [\n", (double)t0.tv_sec + (double)t0.tv_nsec / 1e9);
    for (int i = 0; i < n; i++) {
        const struct client *c = &cl[i];
        printf(
            "  {\"start\": %.6f, \"ttfb\": %.6f, \"done\": %.6f, \"bytes\": %lld, \"status\": %d, "
            "\"url\": %d, \"error\": \"%s\"%s%s%s}%s\n",
            c->start, c->ttfb, c->done, (long long)c->body, c->status, (int)(c->to - urls),
            c->error ? c->error : "", c->sha ? ", \"sha256\": \"" : "", c->sha ? c->sha_hex : "",
            c->sha ? "\"" : "", i + 1 < n ? "," : "");
    }
    printf("]}\n");
}

int main(int argc, char **argv)
{
    int clients = 1, threads = 1;
    struct rlimit rl;
    pthread_t tid[16];
    struct worker w[16];
    struct client *cl;
    char drain[64];

    if (argc >= 3 && !strcmp(argv[1], "rate"))
        return rate_main(argc, argv);
    if (argc >= 3 && !strcmp(argv[1], "probe"))
        return probe_main(argc, argv);
    if (argc < 3 || (strcmp(argv[1], "get") && strcmp(argv[1], "idle"))) {
        fprintf(stderr, "usage: arca-loadgen get|idle URL [--clients N] [--spread S] [--threads T] "
                        "[--also URL]... [--sha256]\n"
                        "       arca-loadgen rate URL --rate R --seconds S [--connections C] "
                        "[--random N]\n"
                        "       arca-loadgen probe URL [--gap-ms G] [--seconds S]\n");
        return 2;
    }
    idle_mode = !strcmp(argv[1], "idle");
    bool bad = parse_url(argv[2]) < 0, sha = false;
    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "--sha256"))
            sha = true;
        else if (i + 1 == argc)
            bad = true;
        else if (!strcmp(argv[i], "--clients"))
            clients = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--spread"))
            spread = atof(argv[++i]);
        else if (!strcmp(argv[i], "--threads"))
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--also"))
            bad |= parse_url(argv[++i]) < 0;
        else
            bad = true;
    }
    if (bad || clients < 1 || threads < 1 || threads > 16 || spread < 0) {
        fprintf(stderr,
                "arca-loadgen: bad arguments (URLs must be http://IPv4[:port]/path, at "
                "most %d)\n",
                URLS_MAX);
        return 2;
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (!(cl = calloc((size_t)clients, sizeof(*cl))))
        return 1;
    for (int i = 0; i < clients; i++) {
        cl[i].to = &urls[i % url_count];
        if (sha &&
            (!(cl[i].sha = EVP_MD_CTX_new()) || !EVP_DigestInit_ex(cl[i].sha, EVP_sha256(), NULL)))
            return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int t = 0; t < threads; t++) {
        int first = clients * t / threads, last = clients * (t + 1) / threads;
        w[t] = (struct worker){cl + first, last - first, first, clients};
        pthread_create(&tid[t], NULL, run_worker, &w[t]);
    }
    for (int t = 0; t < threads; t++)
        pthread_join(tid[t], NULL);
    print_results(cl, clients);
    if (idle_mode)
        while (read(0, drain, sizeof(drain)) > 0)
            ;
    for (int i = 0; i < clients; i++)
        EVP_MD_CTX_free(cl[i].sha);
    free(cl);
    return 0;
}

/* --- rate mode ------------------------------------------------------------------------------ */

struct rconn {
    int fd;
    bool busy;
    double due;          /* when its request was due */
    char head[HEAD_MAX]; /* the answer's head so far */
    size_t head_len;
    int64_t body_left; /* -1 while the head is incomplete */
    int status;
};

static struct {
    double rate, seconds;
    int connections;
    long random;
    double *latency;                        /* ms, per answered request */
    long answered, errors, due_total, next; /* next: the first request not yet sent */
} rt = {.connections = 64};

static int rate_connect(struct rconn *c, int ep)
{
    int one = 1;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0 ||
        connect(c->fd, (const struct sockaddr *)&urls[0].addr, sizeof(urls[0].addr)) < 0)
        return -1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    fcntl(c->fd, F_SETFL, O_NONBLOCK);
    c->busy = false;
    return epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
}

static int rate_send(struct rconn *c, double due)
{
    char req[1024];
    char suffix[24] = "";
    if (rt.random > 0)
        snprintf(suffix, sizeof(suffix), "%ld", random() % rt.random);
    int n = snprintf(req, sizeof(req),
                     "GET %s%s HTTP/1.1\r\nHost: %s\r\nUser-Agent: arca-loadgen\r\n\r\n", url_path,
                     suffix, url_host);
    if (n <= 0 || (size_t)n >= sizeof(req) || send(c->fd, req, (size_t)n, MSG_NOSIGNAL) != n)
        return -1;
    c->busy = true;
    c->due = due;
    c->head_len = 0;
    c->body_left = -1;
    return 0;
}

/* The answer is complete: record it (and, with ARCA_LOADGEN_SLOW_MS set, say when a slow one
 * was due: outliers that come back at a period point at what causes them). */
static void rate_done(struct rconn *c)
{
    static double slow_ms = -1;
    if (slow_ms < 0)
        slow_ms = getenv("ARCA_LOADGEN_SLOW_MS") ? atof(getenv("ARCA_LOADGEN_SLOW_MS")) : 1e12;
    double ms = 1e3 * (now() - c->due);
    if (ms >= slow_ms)
        fprintf(stderr, "slow: due at %.4f s, %.3f ms\n", c->due, ms);
    rt.latency[rt.answered++] = ms;
    rt.errors += c->status != 200;
    c->busy = false;
}

/* A connection that broke: its request counts as an error; a new connection takes its place. */
static void rate_broken(struct rconn *c, int ep)
{
    if (c->busy)
        rt.errors++;
    close(c->fd);
    if (rate_connect(c, ep) < 0)
        c->fd = -1;
}

static void rate_read(struct rconn *c, int ep, char *buf)
{
    for (;;) {
        ssize_t n = recv(c->fd, buf, RECV_BUF, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN)) {
            rate_broken(c, ep);
            return;
        }
        if (n < 0)
            return;
        char *p = buf;
        size_t left = (size_t)n;
        if (c->body_left < 0) {
            size_t take = left < HEAD_MAX - 1 - c->head_len ? left : HEAD_MAX - 1 - c->head_len;
            memcpy(c->head + c->head_len, p, take);
            c->head[c->head_len + take] = '\0';
            char *end = strstr(c->head, "\r\n\r\n");
            if (!end) {
                c->head_len += take;
                if (c->head_len == HEAD_MAX - 1)
                    rate_broken(c, ep);
                continue;
            }
            size_t head_bytes = (size_t)(end + 4 - c->head) - c->head_len;
            char *cl = strcasestr(c->head, "\r\ncontent-length:");
            c->status = 0;
            sscanf(c->head, "HTTP/%*d.%*d %d", &c->status);
            if (!cl) {
                rate_broken(c, ep);
                return;
            }
            c->body_left = strtoll(cl + 17, NULL, 10);
            p += head_bytes;
            left -= head_bytes;
        }
        c->body_left -= (int64_t)left;
        if (c->body_left <= 0 && c->busy)
            rate_done(c);
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double percentile(double p)
{
    if (rt.answered == 0)
        return 0;
    long i = (long)(p * (double)(rt.answered - 1) + 0.5);
    return rt.latency[i];
}

static int rate_main(int argc, char **argv)
{
    struct rconn *conns;
    struct epoll_event evs[256];
    char *buf = malloc(RECV_BUF);
    int ep = epoll_create1(EPOLL_CLOEXEC);

    for (int i = 3; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--rate"))
            rt.rate = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--seconds"))
            rt.seconds = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--connections"))
            rt.connections = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--random"))
            rt.random = atol(argv[i + 1]);
    }
    rt.due_total = (long)(rt.rate * rt.seconds);
    if (parse_url(argv[2]) < 0 || rt.rate <= 0 || rt.due_total < 1 || rt.connections < 1 || !buf ||
        ep < 0) {
        fprintf(stderr, "arca-loadgen rate: bad arguments (URL --rate R --seconds S)\n");
        return 2;
    }
    conns = calloc((size_t)rt.connections, sizeof(*conns));
    rt.latency = malloc((size_t)rt.due_total * sizeof(double));
    if (!conns || !rt.latency)
        return 1;
    for (int i = 0; i < rt.connections; i++)
        if (rate_connect(&conns[i], ep) < 0) {
            fprintf(stderr, "arca-loadgen rate: cannot connect: %s\n", strerror(errno));
            return 1;
        }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    double drain_until = rt.seconds + 10; /* answers still out when the last request is due */
    int free_hint = 0;
    while (now() < drain_until && rt.answered + rt.errors < rt.due_total) {
        double t = now();
        /* every due request goes out on a free connection; the rest wait, their clock running */
        while (rt.next < rt.due_total && (double)rt.next / rt.rate <= t) {
            struct rconn *c = NULL;
            for (int k = 0; k < rt.connections && !c; k++) {
                struct rconn *x = &conns[(free_hint + k) % rt.connections];
                if (!x->busy && x->fd >= 0)
                    c = x, free_hint = (free_hint + k + 1) % rt.connections;
            }
            if (!c)
                break;
            if (rate_send(c, (double)rt.next / rt.rate) < 0)
                rate_broken(c, ep);
            else
                rt.next++;
        }
        double wait = rt.next < rt.due_total ? (double)rt.next / rt.rate - now() : 0.01;
        if (wait < 0)
            wait = 0;
        struct timespec ts = {(time_t)wait, (long)((wait - (double)(time_t)wait) * 1e9)};
        int n = epoll_pwait2(ep, evs, 256, &ts, NULL);
        for (int i = 0; i < n; i++)
            rate_read(evs[i].data.ptr, ep, buf);
    }
    qsort(rt.latency, (size_t)rt.answered, sizeof(double), cmp_double);
    printf("{\"due\": %ld, \"answered\": %ld, \"errors\": %ld, \"rate\": %.1f, \"p50_ms\": %.3f, "
           "\"p90_ms\": %.3f, \"p99_ms\": %.3f, \"p999_ms\": %.3f, \"max_ms\": %.3f}\n",
           rt.due_total, rt.answered, rt.errors + (rt.due_total - rt.answered - rt.errors),
           (double)rt.answered / rt.seconds, percentile(0.5), percentile(0.9), percentile(0.99),
           percentile(0.999), rt.answered ? rt.latency[rt.answered - 1] : 0);
    return 0;
}

/* --- probe mode ----------------------------------------------------------------------------- */

static double mono_abs(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* One GET on a new blocking connection, read to the close: true for a 200 whose body has the
 * length its head announced. */
static bool probe_one(char *buf, size_t cap)
{
    struct timeval tv = {10, 0};
    int one = 1, status = 0;
    size_t got = 0;
    ssize_t n;
    bool ok = false;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (const struct sockaddr *)&urls[0].addr, sizeof(urls[0].addr)) == 0 &&
        send(fd, urls[0].request, urls[0].len, MSG_NOSIGNAL) == (ssize_t)urls[0].len) {
        while (got + 1 < cap && (n = recv(fd, buf + got, cap - 1 - got, 0)) > 0)
            got += (size_t)n;
        buf[got] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        char *cl = strcasestr(buf, "\r\ncontent-length:");
        sscanf(buf, "HTTP/%*d.%*d %d", &status);
        ok = status == 200 && end && cl && cl < end &&
             strtoll(cl + 17, NULL, 10) == (long long)(got - (size_t)(end + 4 - buf));
    }
    close(fd);
    return ok;
}

/* Nanoseconds this process has spent runnable but waiting for a core (the second field of
 * /proc/self/schedstat), or -1. The probe is one thread, so the process's is the thread's. */
static long long waited_ns(int fd)
{
    char buf[96];
    long long run, wait;
    ssize_t n = fd < 0 ? -1 : pread(fd, buf, sizeof(buf) - 1, 0);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    return sscanf(buf, "%lld %lld", &run, &wait) == 2 ? wait : -1;
}

static int probe_main(int argc, char **argv)
{
    double gap_ms = 2, seconds = 2, start;
    size_t cap = 1 << 20;
    char *buf = malloc(cap);
    struct pollfd in = {.fd = 0, .events = POLLIN};
    int n = 0;
    for (int i = 3; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--gap-ms"))
            gap_ms = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--seconds"))
            seconds = atof(argv[i + 1]);
    }
    if (parse_url(argv[2]) < 0 || gap_ms < 0 || seconds <= 0 || !buf) {
        fprintf(stderr, "arca-loadgen probe: bad arguments (URL [--gap-ms G] [--seconds S])\n");
        return 2;
    }
    int sched = open("/proc/self/schedstat", O_RDONLY | O_CLOEXEC);
    start = mono_abs();
    printf("{\"samples\": [");
    /* stdin readable means closed (or written to): the caller says the run is over */
    while (mono_abs() - start < seconds && poll(&in, 1, 0) == 0) {
        double t = mono_abs();
        long long w0 = waited_ns(sched); /* read inside the timed span: never more than it */
        bool ok = probe_one(buf, cap);
        long long w1 = waited_ns(sched);
        double ms = 1e3 * (mono_abs() - t);
        printf("%s\n [%.6f, %.4f, %s, %.4f]", n++ ? "," : "", t, ms, ok ? "true" : "false",
               w0 < 0 || w1 < 0 ? -1.0 : (double)(w1 - w0) / 1e6);
        long long gap_ns = (long long)(gap_ms * 1e6);
        struct timespec gap = {(time_t)(gap_ns / 1000000000), (long)(gap_ns % 1000000000)};
        nanosleep(&gap, NULL);
    }
    printf("\n]}\n");
    if (sched >= 0)
        close(sched);
    free(buf);
    return 0;
}
