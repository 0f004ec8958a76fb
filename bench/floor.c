/*
 * arca-floor — the least a server can do on this machine, so that bench/run can say how far any
 * design could go here, and how close arca is: per keep-alive request (warm-small-floor: not a
 * server, it answers every request head with the same 4 KiB body, parses nothing and looks
 * nothing up), and for fresh memory (big-index's load).
 *
 *   arca-floor PORT epoll   2 threads, each a level-triggered epoll loop on its own
 *                           SO_REUSEPORT listener: one recv and one send per request (arca's
 *                           system calls per request, without its work; arca's loop is
 *                           edge-triggered)
 *   arca-floor PORT uring   2 threads, each an io_uring: recv and send submitted in batches,
 *                           so a turn of many requests costs one system call
 *   arca-floor --modes      prints the modes this build has
 *   arca-floor --memory KIB 2 threads (arca's load reads its index on two), each given half of
 *                           KIB of fresh memory (mapped, then written a byte a page): prints
 *                           the seconds that took, the least a process loading that much
 *                           (big-index's restart at a million objects) spends here on those
 *                           pages alone. On most machines a fresh page costs well under a
 *                           microsecond; here, under a hypervisor that backs a guest's memory
 *                           only once touched, 10-20 µs (2026-12-01)
 *
 * Exits 2 with a one-line message when the mode is not built (io_uring needs liburing-dev), or
 * for a usage error (KIB: 1 up to the machine's memory); 1 when a thread or a mapping fails.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#ifdef HAVE_LIBURING
#include <liburing.h>
#endif

#define BODY 4096
#define THREADS 2

static char response[BODY + 256];
static size_t response_len;
static int port;

static void build_response(void)
{
    int n = snprintf(response, sizeof(response),
                     "HTTP/1.1 200 OK\r\nServer: arca-floor\r\nContent-Length: %d\r\n"
                     "Content-Type: application/octet-stream\r\n\r\n",
                     BODY);
    memset(response + n, 'x', BODY);
    response_len = (size_t)n + BODY;
}

static int listener(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
        bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 4096) < 0) {
        fprintf(stderr, "arca-floor: cannot listen on 127.0.0.1:%d: %s\n", port, strerror(errno));
        exit(1);
    }
    return fd;
}

static void no_delay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* wrk sends one whole head at a time and waits for its answer: a read that ends a head is one
 * request. */
static int ends_head(const char *buf, ssize_t n)
{
    return n >= 4 && memcmp(buf + n - 4, "\r\n\r\n", 4) == 0;
}

static void *run_epoll(void *arg)
{
    int lfd = listener(), ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd}, evs[256];
    char buf[16384];
    (void)arg;
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd, c;
            ssize_t r;
            if (fd == lfd) {
                while ((c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    struct epoll_event e = {.events = EPOLLIN, .data.fd = c};
                    no_delay(c);
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &e);
                }
                continue;
            }
            r = recv(fd, buf, sizeof(buf), 0);
            if (r == 0 || (r < 0 && errno != EAGAIN))
                close(fd);
            else if (ends_head(buf, r))
                send(fd, response, response_len, MSG_NOSIGNAL);
        }
    }
    return NULL;
}

#ifdef HAVE_LIBURING
struct uconn {
    int fd;
    char buf[16384];
};

enum { OP_ACCEPT, OP_RECV, OP_SEND };
/* a completion's connection and operation, in the low bits of the pointer (aligned by 4) */
#define TAG(c, op) ((uint64_t)(uintptr_t)(c) | (op))

static void arm_recv(struct io_uring *ring, struct uconn *c)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    io_uring_prep_recv(sqe, c->fd, c->buf, sizeof(c->buf), 0);
    io_uring_sqe_set_data64(sqe, TAG(c, OP_RECV));
}

static void on_completion(struct io_uring *ring, const struct io_uring_cqe *cqe)
{
    struct uconn *c = (struct uconn *)(uintptr_t)(cqe->user_data & ~(uint64_t)3);
    struct io_uring_sqe *sqe;
    switch (cqe->user_data & 3) {
    case OP_ACCEPT:
        if (cqe->res < 0 || !(c = malloc(sizeof(*c)))) {
            if (cqe->res >= 0)
                close(cqe->res);
            return;
        }
        c->fd = cqe->res;
        no_delay(c->fd);
        arm_recv(ring, c);
        return;
    case OP_RECV:
        if (cqe->res <= 0) {
            close(c->fd);
            free(c);
            return;
        }
        if (ends_head(c->buf, cqe->res)) {
            sqe = io_uring_get_sqe(ring);
            io_uring_prep_send(sqe, c->fd, response, response_len, MSG_NOSIGNAL);
            io_uring_sqe_set_data64(sqe, TAG(c, OP_SEND));
            sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
        }
        arm_recv(ring, c);
        return;
    default:
        return;
    }
}

static void *run_uring(void *arg)
{
    struct io_uring ring;
    struct io_uring_params p = {.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN};
    struct io_uring_sqe *sqe;
    int lfd = listener();
    (void)arg;
    if (io_uring_queue_init_params(4096, &ring, &p) < 0) {
        fprintf(stderr, "arca-floor: io_uring is not available here\n");
        exit(2);
    }
    sqe = io_uring_get_sqe(&ring);
    io_uring_prep_multishot_accept(sqe, lfd, NULL, NULL, SOCK_NONBLOCK);
    io_uring_sqe_set_data64(sqe, OP_ACCEPT);
    for (;;) {
        struct io_uring_cqe *cqe;
        unsigned head, seen = 0;
        io_uring_submit_and_wait(&ring, 1);
        io_uring_for_each_cqe(&ring, head, cqe)
        {
            on_completion(&ring, cqe);
            seen++;
        }
        io_uring_cq_advance(&ring, seen);
    }
    return NULL;
}
#endif

/* --- memory: fresh pages ------------------------------------------------------------------ */

static size_t memory_share; /* bytes each thread is given */

/* NULL, or the errno of its failed mapping */
static void *touch_share(void *arg)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    volatile char *m =
        mmap(NULL, memory_share, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    (void)arg;
    if (m == MAP_FAILED)
        return (void *)(intptr_t)errno;
    for (size_t at = 0; at < memory_share; at += page)
        m[at] = 1;
    return NULL; /* left mapped: the process exits */
}

static int memory_floor(const char *kib_arg)
{
    char *end = NULL;
    long long kib = strtoll(kib_arg, &end, 10);
    /* never more than the machine has: the writes would wake the OOM killer */
    long long most = (long long)sysconf(_SC_PHYS_PAGES) / 1024 * sysconf(_SC_PAGESIZE);
    pthread_t t[THREADS];
    struct timespec a, b;
    intptr_t failed = 0;
    if (kib <= 0 || kib > most || *end) {
        fprintf(stderr, "usage: arca-floor --memory KIB (1 to %lld, this machine's memory)\n",
                most);
        return 2;
    }
    memory_share = (size_t)kib * 1024 / THREADS;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < THREADS; i++)
        if (pthread_create(&t[i], NULL, touch_share, NULL) != 0) {
            fprintf(stderr, "arca-floor: cannot start a thread\n");
            return 1;
        }
    for (int i = 0; i < THREADS; i++) {
        void *r = NULL;
        pthread_join(t[i], &r);
        failed = failed ? failed : (intptr_t)r;
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    if (failed) {
        fprintf(stderr, "arca-floor: cannot map %zu KiB: %s\n", memory_share / 1024,
                strerror((int)failed));
        return 1;
    }
    printf("%.4f\n", (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9);
    return 0;
}

int main(int argc, char **argv)
{
    void *(*run)(void *) = NULL;
    char *end = NULL;
    long p = 0;
    pthread_t t[THREADS];
    if (argc == 2 && !strcmp(argv[1], "--modes")) {
#ifdef HAVE_LIBURING
        puts("epoll uring");
#else
        puts("epoll");
#endif
        return 0;
    }
    if (argc == 3 && !strcmp(argv[1], "--memory"))
        return memory_floor(argv[2]);
    if (argc == 3 && !strcmp(argv[2], "epoll"))
        run = run_epoll;
#ifdef HAVE_LIBURING
    else if (argc == 3 && !strcmp(argv[2], "uring"))
        run = run_uring;
#else
    else if (argc == 3 && !strcmp(argv[2], "uring")) {
        fprintf(stderr, "arca-floor: built without liburing-dev: no uring mode\n");
        return 2;
    }
#endif
    if (!run || (p = strtol(argv[1], &end, 10)) <= 0 || p > 65535 || *end) {
        fprintf(stderr, "usage: arca-floor PORT epoll|uring, or --memory KIB\n");
        return 2;
    }
    port = (int)p;
    build_response();
    for (int i = 0; i < THREADS; i++)
        if (pthread_create(&t[i], NULL, run, NULL) != 0) {
            fprintf(stderr, "arca-floor: cannot start a thread\n");
            return 1;
        }
    pthread_join(t[0], NULL);
    return 0;
}
