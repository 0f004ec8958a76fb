/* The access log (see access_log.h): lines formatted on the client threads, queued in a ring of
 * slots, written in batches by the log thread. */
#include "log/access_log.h"
#include "base/parse.h"
#include "url/url.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define LINE_MAX_BYTES 8192

/* Lines waiting for the log thread: a client thread takes a ticket (an atomic compare-and-swap,
 * no lock), copies its line into the ticket's slot and publishes it; the log thread writes the
 * published slots in ticket order. Beyond SLOTS lines writers wait (a line is never dropped).
 * 1024: enough lines for the few ms the log thread may be off the CPU at full warm-hit rate,
 * so that writers do not wait for it (fewer slots cost a sixth of the rate: bench/README.md,
 * "Why the hot path is shaped so"). */
#define SLOTS 1024

/* A slot holds a line of up to SLOT_LINE bytes in place (nearly every line: a request line, a
 * client, a user agent); a longer one is copied to the heap, and the log thread frees it once
 * written. With 8 KiB slots, as before, the ring was 8 MiB and each line touched a page of its
 * own, on its worker and again on the log thread; the ring is now 512 KiB. */
#define SLOT_LINE 488

/* Set in `head` once the log thread has ended: a ticket can no longer be taken, and a late line
 * is written by its caller (enqueue). */
#define CLOSED (1ULL << 63)

/* Once a line is queued, the log thread waits this long for more before it writes, unless half
 * the ring fills first: one wake-up and one writev for many requests. Waking it for every line
 * (a futex call, a context switch, a writev each) cost more than the write() it replaced. */
#define LINGER_NS (10 * 1000 * 1000)

/* A pipe (stderr under systemd or a test) takes a write whole only up to PIPE_BUF bytes: past
 * it another writer of the same pipe (log.c) could land inside one of our lines. */
#define PIPE_BATCH PIPE_BUF
/* A file's batch: as many whole lines as fit, in one write(). */
#define BATCH_BYTES (256 * 1024)

/* What the log thread does, for writers to know whether to wake it. */
enum log_state {
    AWAKE,    /* writing, or about to: nobody signals it */
    IDLE,     /* waiting for a line: the writer of the next one wakes it */
    LINGERING /* a line is queued, waiting for more: a writer wakes it at half full */
};

struct slot {
    _Atomic uint64_t seq; /* ticket + 1 once the line of that ticket is in */
    size_t len;
    char *heap; /* a line longer than SLOT_LINE (malloc'd), or NULL: it is in `line` */
    char line[SLOT_LINE];
};

static struct {
    pthread_mutex_t lock;     /* the fields below but head, tail, log_state, room_waiters (atomic)
                                 and the slots; and the log thread's and writers' waits */
    pthread_cond_t more;      /* the log thread waits: lines, a reopened file, or stop */
    pthread_cond_t room;      /* writers wait: the ring is full */
    struct slot *slots;       /* SLOTS of them; tickets [tail, head) % SLOTS are taken, owned by the
                                 log thread from their publication until tail passes them */
    _Atomic uint64_t head;    /* tickets ever taken (| CLOSED) */
    _Atomic uint64_t tail;    /* lines ever written (or given up on): the log thread's */
    _Atomic int room_waiters; /* writers waiting for room */
    _Atomic enum log_state state; /* the log thread's, for writers to know whether to wake it */
    int fd;                       /* -1: off. Written by the log thread only while it runs */
    int pending_fd;      /* a reopened file the log thread swaps in between batches, or -1 */
    uint64_t pending_at; /* lines queued before the reopen (below this) go to the old file */
    bool pipe_like;      /* fd is not a regular file: batches of at most PIPE_BATCH bytes */
    bool running;        /* the log thread was started and not yet joined */
    bool stopping;       /* access_log_close asked it to end once nothing is queued */
    pthread_t thread;
} al = {.lock = PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP, /* held for a memcpy: spin first */
        .more = PTHREAD_COND_INITIALIZER,
        .room = PTHREAD_COND_INITIALIZER,
        .fd = -1,
        .pending_fd = -1};

static char log_path[1024];
static bool enabled; /* read without the lock on every request: atomic */

static bool on_log_thread(void)
{
    return al.running && pthread_equal(pthread_self(), al.thread);
}

static bool is_pipe_like(int fd)
{
    struct stat st;
    return fstat(fd, &st) != 0 || !S_ISREG(st.st_mode);
}

static int open_file(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0)
        snprintf(err, errlen, "--access-log %s: %s", path, strerror(errno));
    return fd;
}

int access_log_check(const char *path, char *err, size_t errlen)
{
    char dir[1024];
    const char *slash = strrchr(path, '/'), *why = NULL;
    struct stat st;
    if (!path[0] || !strcmp(path, "-") || !strcmp(path, "off"))
        return 0;
    if (stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode) || access(path, W_OK) != 0) {
            snprintf(err, errlen, "--access-log %s: %s", path,
                     S_ISDIR(st.st_mode) ? "a directory" : strerror(errno));
            return -1;
        }
        return 0;
    }
    snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash == path ? 1 : slash - path) : 1,
             slash ? path : ".");
    if (stat(dir, &st) != 0)
        why = strerror(errno);
    else if (!S_ISDIR(st.st_mode))
        why = strerror(ENOTDIR);
    else if (access(dir, W_OK | X_OK) != 0)
        why = strerror(errno);
    if (why)
        snprintf(err, errlen, "--access-log %s: directory %s: %s", path, dir, why);
    return why ? -1 : 0;
}

/* The whole of `iov`, or as much as the file takes: a write error leaves nowhere to report it,
 * and the lines are given up on (as a failed write() of one line was before the ring). */
static void write_batch(int fd, struct iovec *iov, int n)
{
    while (n > 0) {
        ssize_t done = writev(fd, iov, n);
        if (done < 0 && errno == EINTR)
            continue;
        if (done <= 0)
            return;
        while (n > 0 && (size_t)done >= iov->iov_len) {
            done -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + done;
            iov->iov_len -= (size_t)done;
        }
    }
}

/* Log thread, lock not held: write lines [from, to) in batches of whole lines, each batch copied
 * into one buffer and written with one write(): one system call per batch of up to 256 KiB
 * (about 1,700 lines) where a writev took 64 lines. The copy is cheap beside a system call,
 * which is dear under a sandboxing kernel such as gVisor. */
static void write_lines(int fd, bool pipe_like, uint64_t from, uint64_t to)
{
    static char batch[BATCH_BYTES];
    size_t cap = pipe_like ? PIPE_BATCH : sizeof(batch), len = 0;
    assert(on_log_thread());
    for (; from < to; from++) {
        struct slot *s = &al.slots[from % SLOTS];
        char *text = s->heap ? s->heap : s->line;
        if (len > 0 && len + s->len > cap) {
            struct iovec iov = {.iov_base = batch, .iov_len = len};
            write_batch(fd, &iov, 1);
            len = 0;
        }
        if (s->len > cap) { /* a line longer than a batch: alone, as it is */
            struct iovec iov = {.iov_base = text, .iov_len = s->len};
            write_batch(fd, &iov, 1);
        } else {
            memcpy(batch + len, text, s->len);
            len += s->len;
        }
        free(s->heap);
        s->heap = NULL;
    }
    if (len > 0) {
        struct iovec iov = {.iov_base = batch, .iov_len = len};
        write_batch(fd, &iov, 1);
    }
}

/* Log thread, lock held: the file SIGUSR1/SIGHUP reopened replaces the old one once the lines
 * queued before the signal are written, between two batches, so that a line is never written to
 * a closed descriptor. */
static void swap_in_reopened(void)
{
    uint64_t tail = atomic_load(&al.tail);
    assert(on_log_thread() && (al.pending_fd < 0 || tail <= al.pending_at));
    if (al.pending_fd < 0 || tail != al.pending_at)
        return;
    if (al.fd > STDERR_FILENO)
        close(al.fd);
    al.fd = al.pending_fd;
    al.pending_fd = -1;
}

/* Tickets taken and not yet written. */
static uint64_t queued(void)
{
    return (atomic_load(&al.head) & ~CLOSED) - atomic_load(&al.tail);
}

/* Log thread, lock held: until a line (or a reopen, or the stop) is there. The state is set
 * before the head is read again, and writers read the state after they took their ticket
 * (sequentially consistent, both): either this sees the ticket, or its writer sees IDLE and
 * signals, which it can only do once this waits (it takes the lock). */
static void wait_for_a_line(void)
{
    assert(on_log_thread());
    while (al.pending_fd < 0 && !al.stopping) {
        atomic_store(&al.state, IDLE);
        if (queued() > 0)
            break;
        pthread_cond_wait(&al.more, &al.lock);
    }
    atomic_store(&al.state, AWAKE);
}

/* Log thread, lock held: a line is there; wait LINGER_NS for more, or until half the ring is
 * full (the writer that sees it wakes this, as in wait_for_a_line). */
static void linger(void)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_nsec += LINGER_NS;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    atomic_store(&al.state, LINGERING);
    while (!al.stopping && al.pending_fd < 0 && queued() < SLOTS / 2 &&
           atomic_load(&al.state) == LINGERING &&
           pthread_cond_timedwait(&al.more, &al.lock, &until) == 0)
        ;
    atomic_store(&al.state, AWAKE);
}

/* The first ticket from `from` whose line is not in yet (its writer is copying it), or `to`. */
static uint64_t published(uint64_t from, uint64_t to)
{
    while (from < to &&
           atomic_load_explicit(&al.slots[from % SLOTS].seq, memory_order_acquire) == from + 1)
        from++;
    return from;
}

/* Log thread, lock held: true when the thread may end: stopping, everything written, and no
 * ticket can be taken any more (a writer that comes later writes its line itself). */
static bool close_ring(void)
{
    uint64_t tail = atomic_load(&al.tail);
    if (!al.stopping)
        return false;
    return atomic_compare_exchange_strong(&al.head, &tail, tail | CLOSED);
}

/* Log thread, lock not held: the ring has room again; wake the writers waiting for it. The tail
 * is stored before room_waiters is read, a writer counts itself in before it reads the tail: one
 * of them sees the other. */
static void advance_tail(uint64_t to)
{
    atomic_store(&al.tail, to);
    if (atomic_load(&al.room_waiters) > 0) {
        pthread_mutex_lock(&al.lock);
        pthread_cond_broadcast(&al.room);
        pthread_mutex_unlock(&al.lock);
    }
}

/* The log thread: drain what is queued, write it, again, until stopped with nothing left. */
static void *log_main(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "arca-log");
    pthread_mutex_lock(&al.lock);
    for (;;) {
        wait_for_a_line();
        if (queued() > 0 && queued() < SLOTS / 2)
            linger();
        swap_in_reopened();
        if (close_ring())
            break;
        uint64_t from = atomic_load(&al.tail);
        uint64_t to = published(from, al.pending_fd >= 0 ? al.pending_at : atomic_load(&al.head));
        int fd = al.fd;
        bool pipe_like = al.pipe_like;
        assert(to - from <= SLOTS);
        pthread_mutex_unlock(&al.lock);
        if (to == from) /* a writer is still copying the first line (or was preempted) */
            sched_yield();
        write_lines(fd, pipe_like, from, to);
        advance_tail(to);
        pthread_mutex_lock(&al.lock);
    }
    pthread_mutex_unlock(&al.lock);
    return NULL;
}

static int start_thread(char *err, size_t errlen)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC); /* a clock set back never stalls it */
    pthread_cond_destroy(&al.more);
    pthread_cond_init(&al.more, &attr);
    pthread_condattr_destroy(&attr);
    atomic_store(&al.state, AWAKE);
    al.slots = calloc(SLOTS, sizeof(*al.slots)); /* seq 0: no ticket's line is in */
    atomic_store(&al.head, 0);
    atomic_store(&al.tail, 0);
    al.pending_at = 0;
    al.stopping = false;
    al.running = al.slots && pthread_create(&al.thread, NULL, log_main, NULL) == 0;
    if (!al.running) {
        free(al.slots);
        al.slots = NULL;
        snprintf(err, errlen, "cannot start the access log thread: out of resources");
        return -1;
    }
    return 0;
}

int access_log_open(const char *path, char *err, size_t errlen)
{
    int fd;
    snprintf(log_path, sizeof(log_path), "%s", path);
    if (access_log_check(path, err, errlen) < 0)
        return -1;
    if (!strcmp(path, "off"))
        return 0;
    if (!path[0] || !strcmp(path, "-"))
        fd = STDERR_FILENO;
    else if ((fd = open_file(path, err, errlen)) < 0)
        return -1;
    pthread_mutex_lock(&al.lock);
    assert(!al.running && al.fd < 0);
    al.pipe_like = is_pipe_like(fd);
    int rc = start_thread(err, errlen);
    if (rc == 0) {
        al.fd = fd;
        __atomic_store_n(&enabled, true, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&al.lock);
    if (rc < 0 && fd > STDERR_FILENO)
        close(fd);
    return rc;
}

int access_log_reopen(char *err, size_t errlen)
{
    int fd;
    pthread_mutex_lock(&al.lock);
    bool file = al.running && al.fd > STDERR_FILENO;
    pthread_mutex_unlock(&al.lock);
    if (!file)
        return 0;
    if ((fd = open_file(log_path, err, errlen)) < 0)
        return -1; /* keep writing to the old file */
    pthread_mutex_lock(&al.lock);
    if (al.pending_fd >= 0) /* two signals before the log thread took the first */
        close(al.pending_fd);
    al.pending_fd = fd;
    al.pending_at = atomic_load(&al.head) & ~CLOSED;
    al.pipe_like = is_pipe_like(fd);
    pthread_cond_signal(&al.more);
    pthread_mutex_unlock(&al.lock);
    return 0;
}

void access_log_close(void)
{
    pthread_mutex_lock(&al.lock);
    if (!al.running) {
        pthread_mutex_unlock(&al.lock);
        return;
    }
    al.stopping = true;
    pthread_cond_signal(&al.more);
    pthread_mutex_unlock(&al.lock);
    pthread_join(al.thread, NULL); /* it writes every line queued before it ends */
    pthread_mutex_lock(&al.lock);
    assert(atomic_load(&al.head) == (atomic_load(&al.tail) | CLOSED) && al.pending_fd < 0);
    al.running = false;
    if (al.fd > STDERR_FILENO)
        close(al.fd);
    al.fd = -1;
    __atomic_store_n(&enabled, false, __ATOMIC_RELEASE);
    free(al.slots);
    al.slots = NULL;
    pthread_mutex_unlock(&al.lock);
}

bool access_log_enabled(void)
{
    return __atomic_load_n(&enabled, __ATOMIC_ACQUIRE);
}

static bool plain(unsigned char ch)
{
    return ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\';
}

/* Append `s` escaped (a byte that is not plain as \xHH, and a space too when `token`: a field
 * outside quotes); stops short of the end of the line buffer. Runs of plain bytes (all of a
 * line but rare ones) are copied whole. */
static size_t add_escaped_as(char *line, size_t n, size_t max, const char *s, bool token)
{
    static const char hex[] = "0123456789abcdef";
    while (s && *s && n + 4 < max) {
        size_t run = 0, room = max - 4 - n;
        while (run < room && s[run] && plain((unsigned char)s[run]) && !(token && s[run] == ' '))
            run++;
        memcpy(line + n, s, run);
        n += run;
        s += run;
        if (!*s || n + 4 >= max)
            break;
        unsigned char ch = (unsigned char)*s++;
        line[n++] = '\\';
        line[n++] = 'x';
        line[n++] = hex[ch >> 4];
        line[n++] = hex[ch & 15];
    }
    return n;
}

static size_t add_escaped(char *line, size_t n, size_t max, const char *s)
{
    return add_escaped_as(line, n, max, s, false);
}

/* `s` appended as snprintf's "%s" would, without the printf machinery: most of a line is
 * strings. */
static size_t add_str(char *line, size_t n, size_t max, const char *s)
{
    size_t k = strlen(s);
    if (n + 1 >= max)
        return n;
    if (k > max - 1 - n)
        k = max - 1 - n;
    memcpy(line + n, s, k);
    line[n + k] = '\0';
    return n + k;
}

/* A number, at least `min_digits` long (zeros before), appended as add_str appends: a line has
 * four. */
static size_t add_uint(char *line, size_t n, size_t max, uint64_t v, int min_digits)
{
    char digits[FORMAT_INT_MAX];
    for (size_t k = format_uint(v, digits); k < (size_t)min_digits; k++)
        n = add_str(line, n, max, "0");
    return add_str(line, n, max, digits);
}

/* A field as this thread's last line had it: a lab's clients ask for the same URLs with the same
 * User-Agent over and over. */
struct field_memo {
    bool valid;
    size_t key_len, len;
    char key[2048];
    char text[LINE_MAX_BYTES]; /* the key redacted (if asked) and escaped */
};

/* What a thread formatted last: a lab's clients ask for the same URLs, and redacting, escaping
 * and the timestamp's formatting are most of a line's cost. Thread-local: no lock, and nothing
 * to free when the thread ends. */
static _Thread_local struct {
    struct field_memo uri, agent;
    bool stamp_valid;
    time_t when;
    char stamp[40];
} memo;

/* `s` with signed URLs' signatures and passwords redacted when `redact`, escaped; *len its
 * length. */
static const char *field_text(struct field_memo *m, const char *s, bool redact, size_t *len)
{
    size_t k = strlen(s);
    if (!m->valid || k != m->key_len || memcmp(s, m->key, k) != 0) {
        char redacted[LINE_MAX_BYTES];
        if (redact)
            url_redact(s, redacted, sizeof(redacted));
        m->len = add_escaped(m->text, 0, sizeof(m->text) - 1, redact ? redacted : s);
        m->valid = k < sizeof(m->key);
        if (m->valid) {
            memcpy(m->key, s, k);
            m->key_len = k;
        }
    }
    *len = m->len;
    return m->text;
}

/* Append an escaped field of `len` bytes as add_escaped would have: within `max` less 4, never
 * cutting an escape ("\xHH": escaped text has no other backslash). */
static size_t add_field(char *line, size_t n, size_t max, const char *text, size_t len)
{
    size_t room = n + 4 < max ? max - 4 - n : 0;
    if (len > room) {
        len = room;
        for (size_t i = len > 3 ? len - 3 : 0; i < len; i++)
            if (text[i] == '\\') {
                len = i;
                break;
            }
    }
    memcpy(line + n, text, len);
    return n + len;
}

/* The client's address as text: the last one a thread formatted, again (a lab's clients are a
 * few machines). Keyed on the address alone: with the port too, every other connection would
 * miss and pay inet_ntop and a copy. */
static const char *client_of(const struct sockaddr *sa, char *out, size_t size)
{
    static _Thread_local uint8_t last[16];
    static _Thread_local sa_family_t last_family;
    static _Thread_local char text[INET6_ADDRSTRLEN];
    uint8_t addr[16];
    if (!sa || addr_to_v6(sa, addr) != 0) {
        format_sockaddr(sa, out, size);
        return out;
    }
    if (text[0] && last_family == sa->sa_family && !memcmp(last, addr, sizeof(addr)))
        return text;
    format_sockaddr(sa, text, sizeof(text));
    memcpy(last, addr, sizeof(addr));
    last_family = sa->sa_family;
    return text;
}

static const char *stamp_of(time_t when)
{
    struct tm tm;
    if (!memo.stamp_valid || memo.when != when) {
        gmtime_r(&when, &tm);
        strftime(memo.stamp, sizeof(memo.stamp), "%d/%b/%Y:%H:%M:%S +0000", &tm);
        memo.when = when;
        memo.stamp_valid = true;
    }
    return memo.stamp;
}

/* Whether the ticket after `head` (as a writer read it) finds no room. A stale head may be below
 * the tail: then it is not full, and the compare-and-swap with it fails. */
static bool full(uint64_t head)
{
    return (int64_t)(head - atomic_load(&al.tail)) >= SLOTS;
}

/* A writer, the ring full: wait until the log thread has made room (or has ended). */
static void wait_for_room(void)
{
    uint64_t head;
    pthread_mutex_lock(&al.lock);
    atomic_fetch_add(&al.room_waiters, 1);
    while (!((head = atomic_load(&al.head)) & CLOSED) && full(head))
        pthread_cond_wait(&al.room, &al.lock);
    atomic_fetch_sub(&al.room_waiters, 1);
    pthread_mutex_unlock(&al.lock);
}

/* The log thread has ended (arca stops; the HTTP server is stopped before, so this is rare), or
 * a long line found no memory: the line is written here, under the lock (before
 * access_log_close closes the file). */
static void write_late(const char *line, size_t n)
{
    struct iovec iov = {.iov_base = (void *)line, .iov_len = n};
    pthread_mutex_lock(&al.lock);
    if (al.fd >= 0)
        write_batch(al.fd, &iov, 1);
    pthread_mutex_unlock(&al.lock);
}

/* Wake the log thread if it waits for a line, or lingers while the ring is half full. */
static void wake_log_thread(uint64_t queued_now)
{
    enum log_state state = atomic_load(&al.state);
    if (state == AWAKE || (state == LINGERING && queued_now < SLOTS / 2))
        return;
    pthread_mutex_lock(&al.lock);
    if (atomic_load(&al.state) != AWAKE) {
        atomic_store(&al.state, AWAKE); /* one signal is enough */
        pthread_cond_signal(&al.more);
    }
    pthread_mutex_unlock(&al.lock);
}

/* Any thread: the line into the ring, in ticket order (a connection's requests are answered one
 * after the other, so its lines stay in order). No lock on the way: a ticket is a
 * compare-and-swap of the head. A full ring makes the caller wait for the log thread: a line is
 * never dropped. */
static void enqueue(const char *line, size_t n)
{
    uint64_t ticket = atomic_load(&al.head);
    char *heap = NULL;
    assert(n <= LINE_MAX_BYTES);
    if (n > SLOT_LINE) {
        if (!(heap = malloc(n))) { /* no memory: written here rather than lost, ahead of the
                                      lines queued (their order is lost only then) */
            write_late(line, n);
            return;
        }
        memcpy(heap, line, n);
    }
    for (;;) {
        if (ticket & CLOSED) {
            write_late(line, n);
            free(heap);
            return;
        }
        if (full(ticket)) {
            wait_for_room();
            ticket = atomic_load(&al.head);
        } else if (atomic_compare_exchange_weak(&al.head, &ticket, ticket + 1)) {
            break;
        }
    }
    struct slot *s = &al.slots[ticket % SLOTS];
    assert(!s->heap); /* the log thread freed the last one before its tail passed the slot */
    s->heap = heap;
    if (!heap)
        memcpy(s->line, line, n);
    s->len = n;
    atomic_store_explicit(&s->seq, ticket + 1, memory_order_release);
    wake_log_thread(queued());
}

void access_log_write(const struct access_entry *e)
{
    char line[LINE_MAX_BYTES], client[INET6_ADDRSTRLEN], referer[1024];
    const char *text;
    size_t n, len, max = sizeof(line) - 1;

    if (!access_log_enabled())
        return;
    n = add_str(line, 0, max, client_of(e->client, client, sizeof(client)));
    n = add_str(line, n, max, " - ");
    if (e->user && *e->user) /* a certificate's subject: at most 256 bytes, 1 KiB escaped */
        n = add_escaped_as(line, n, max - 2048, e->user, true);
    else
        n = add_str(line, n, max, "-");
    n = add_str(line, n, max, " [");
    n = add_str(line, n, max, stamp_of(e->when));
    n = add_str(line, n, max, "] \"");
    n = add_escaped(line, n, max - 1024, e->method);
    n = add_str(line, n, max, " ");
    text = field_text(&memo.uri, e->uri, true, &len);
    n = add_field(line, n, max - 512, text, len);
    n = add_str(line, n, max, " ");
    n = add_str(line, n, max, e->version);
    n = add_str(line, n, max, "\" ");
    n = e->status ? add_uint(line, n, max, e->status, 1) : add_str(line, n, max, "-");
    n = add_str(line, n, max, " ");
    if (e->bytes < 0)
        n = add_str(line, n, max, "-");
    n = add_uint(line, n, max, e->bytes < 0 ? 0 - (uint64_t)e->bytes : (uint64_t)e->bytes, 1);
    n = add_str(line, n, max, " \"");
    if (e->referer) /* signed URLs' signatures, passwords */
        url_redact(e->referer, referer, sizeof(referer));
    n = add_escaped(line, n, max - 256, e->referer ? referer : "-");
    n = add_str(line, n, max, "\" \"");
    text = field_text(&memo.agent, e->agent ? e->agent : "-", false, &len);
    n = add_field(line, n, max - 64, text, len);
    n = add_str(line, n, max, "\" ");
    n = add_str(line, n, max, e->cache);
    int64_t ms = e->seconds > 0 ? (int64_t)(e->seconds * 1000 + 0.5) : 0; /* "%.3f" */
    n = add_str(line, n, max, " ");
    n = add_uint(line, n, max, (uint64_t)(ms / 1000), 1);
    n = add_str(line, n, max, ".");
    n = add_uint(line, n, max, (uint64_t)(ms % 1000), 3);
    n = add_str(line, n, max, "\n");
    enqueue(line, n);
}
