/* The usage journal beside the index (usage_log.h): records appended, one sorted run after each
 * compaction, and the copy of the file at open that the load's rows are read through. */
#include "persist/usage_log.h"
#include "base/parse.h"
#include "log/log.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SUFFIX "-usage"
#define MAGIC "arca usage 2" /* 2: 72-byte records naming their version */

enum { KIND_USE = 0x55, KIND_RESET = 0xAA }; /* anything else (zeros after a power cut): none */

/* A use names the version of the object it counts: its row's creation time and the first bytes
 * of its SHA-256. A start lays it over that row alone: besides the reset before the row (fsynced,
 * index.c's reset_usage), a renewed or downloaded-again object made in another second or with
 * other bytes never takes an older one's pin or ttl (an index restored from a backup, say). */
struct record {
    uint8_t key[32];
    uint8_t digest[8];
    uint32_t created, last_use;
    int64_t usage;
    uint32_t ttl;
    int32_t keep_if_error, keep_while;
    uint8_t kind, pinned;
    uint8_t pad[2];
};
_Static_assert(sizeof(struct record) == 72, "records are 72 bytes");

struct header {
    char magic[16];
    uint64_t sorted;   /* records in the run after the header */
    uint64_t index_id; /* the index it belongs to (its counter "usage journal") */
    uint8_t pad[32];
};
_Static_assert(sizeof(struct header) % 8 == 0, "records stay aligned after the header");

/* Records written at once: 72 KiB. */
#define BUFFERED 1024
/* No compaction below this many appended records (4.5 MiB): a small store's journal stays as it is
 * for a long time, and costs a start a few milliseconds at most. */
#define COMPACT_MIN 65536

/* The file read as a start reads it: its sorted run, and a table of its appended records' last
 * one a key (slots hold an index + 1; 0 is empty). */
struct usage_view {
    void *map;
    size_t map_len;
    const struct record *run, *tail;
    size_t run_n, tail_n;
    uint32_t *slots;
    size_t mask;
};

static struct {
    char path[1300];
    int fd;
    size_t sorted, appended, compact_at;
    struct record buf[BUFFERED];
    size_t buffered;
    time_t lost_at; /* a write failed then: the file went, another is tried a minute on */
    uint64_t index_id;
    struct usage_view *loading; /* the file at open, for usage_log_apply */
} ul = {.fd = -1};

/* Keys are SHA-256 digests: their first bytes are a hash already. */
static size_t slot_of(const uint8_t key[32], size_t mask)
{
    uint64_t v;
    memcpy(&v, key, sizeof(v));
    return (size_t)v & mask;
}

static bool valid(const struct record *r)
{
    return r->kind == KIND_USE || r->kind == KIND_RESET;
}

/* --- the file read as a start reads it ------------------------------------------------------- */

void usage_view_close(struct usage_view *v)
{
    if (!v)
        return;
    if (v->map)
        munmap(v->map, v->map_len);
    free(v->slots);
    free(v);
}

/* The appended records' table, the last one of each key in it: a quarter full at most, so that
 * a lookup probes once or twice. False when out of memory. */
static bool index_tail(struct usage_view *v)
{
    size_t size = 16;
    if (v->tail_n >= UINT32_MAX / 4)
        return false; /* slots hold 32-bit places: 77 GB of records, never written so far */
    while (size < v->tail_n * 4)
        size *= 2;
    if (!(v->slots = calloc(size, sizeof(*v->slots))))
        return false;
    v->mask = size - 1;
    for (size_t i = 0; i < v->tail_n; i++) {
        const struct record *r = &v->tail[i];
        if (!valid(r))
            continue;
        size_t at = slot_of(r->key, v->mask);
        while (v->slots[at] && memcmp(v->tail[v->slots[at] - 1].key, r->key, 32) != 0)
            at = (at + 1) & v->mask;
        v->slots[at] = (uint32_t)(i + 1);
    }
    return true;
}

/* The file `fd` holds (`sorted` + `appended` whole records) mapped; `lookup`: with the appended
 * records' table (usage_view_apply), else read in order (a compaction). NULL when it cannot. */
static struct usage_view *view_map(int fd, size_t sorted, size_t appended, bool lookup)
{
    struct usage_view *v = calloc(1, sizeof(*v));
    if (!v || sorted + appended == 0)
        return v;
    v->map_len = sizeof(struct header) + (sorted + appended) * sizeof(struct record);
    v->map = mmap(NULL, v->map_len, PROT_READ, MAP_PRIVATE, fd, 0);
    if (v->map == MAP_FAILED) {
        v->map = NULL;
        usage_view_close(v);
        return NULL;
    }
    v->run = (const struct record *)((const char *)v->map + sizeof(struct header));
    v->run_n = sorted;
    v->tail = v->run + sorted;
    v->tail_n = appended;
    if (lookup && !index_tail(v)) {
        usage_view_close(v);
        return NULL;
    }
    return v;
}

/* The header's word on the file of `size` bytes: -1 when it is not one of ours, or its run
 * overlaps its end. */
static int read_header(int fd, size_t size, size_t *sorted, uint64_t *index_id)
{
    struct header h;
    if (size < sizeof(h) || pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h) ||
        memcmp(h.magic, MAGIC, sizeof(MAGIC)) != 0 ||
        h.sorted > (size - sizeof(h)) / sizeof(struct record))
        return -1;
    *sorted = (size_t)h.sorted;
    *index_id = h.index_id;
    return 0;
}

static size_t whole_records(size_t size)
{
    return size < sizeof(struct header) ? 0
                                        : (size - sizeof(struct header)) / sizeof(struct record);
}

struct usage_view *usage_view_open(const char *index_path)
{
    char path[1300];
    struct stat sb;
    size_t sorted;
    uint64_t id;
    struct usage_view *v = NULL;
    snprintf(path, sizeof(path), "%s%s", index_path, SUFFIX);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0 && fstat(fd, &sb) == 0 && read_header(fd, (size_t)sb.st_size, &sorted, &id) == 0)
        v = view_map(fd, sorted, whole_records((size_t)sb.st_size) - sorted, true);
    if (fd >= 0)
        close(fd);
    return v;
}

static const struct record *find_appended(const struct usage_view *v, const uint8_t key[32])
{
    if (!v->slots)
        return NULL;
    for (size_t at = slot_of(key, v->mask); v->slots[at]; at = (at + 1) & v->mask)
        if (!memcmp(v->tail[v->slots[at] - 1].key, key, 32))
            return &v->tail[v->slots[at] - 1];
    return NULL;
}

/* Interpolation on the keys' first 8 bytes (uniform: a start reads a million rows through this,
 * three or four probes each instead of twenty), bisection after the first few probes so that
 * no run of keys makes it linear. */
static const struct record *find_sorted(const struct usage_view *v, const uint8_t key[32])
{
    size_t lo = 0, hi = v->run_n;
    uint64_t k = sha256_prefix(key);
    for (int probes = 0; lo < hi; probes++) {
        uint64_t first = sha256_prefix(v->run[lo].key), last = sha256_prefix(v->run[hi - 1].key);
        if (k < first || k > last)
            return NULL;
        size_t mid = lo + (hi - lo) / 2;
        if (probes < 4 && last > first)
            mid =
                lo + (size_t)((double)(k - first) / (double)(last - first) * (double)(hi - 1 - lo));
        if (mid >= hi)
            mid = hi - 1;
        int c = memcmp(key, v->run[mid].key, 32);
        if (c == 0)
            return &v->run[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* `r`'s figures over `row`, when it is a use of the version `row` is (its created, its digest). */
static bool lay(const struct record *r, struct index_row *row)
{
    if (!r || r->kind != KIND_USE || (int64_t)r->created != row->created || !row->digest ||
        memcmp(r->digest, row->digest, sizeof(r->digest)) != 0)
        return false; /* none, a reset, or another version's */
    row->last_use = r->last_use;
    row->usage = r->usage;
    row->ttl = r->ttl;
    row->pinned = r->pinned != 0;
    row->keep_if_error = r->keep_if_error;
    row->keep_while = r->keep_while;
    return true;
}

void usage_view_apply(const struct usage_view *v, struct index_row *row)
{
    uint8_t key[32];
    if (!v || !v->map || !row->key || parse_sha256_hex(row->key, key) < 0)
        return;
    const struct record *r = find_appended(v, key);
    lay(r ? r : find_sorted(v, key), row);
}

/* An appended record as a compaction or a load's merge sorts it: by its key's first 8 bytes, read
 * once (the records themselves are spread over tens of MB: comparing them made each comparison a
 * cache miss), then its whole key, then its place. */
struct sorted_at {
    uint64_t prefix;
    size_t at;
};

static int by_key_then_place(const void *a, const void *b, void *arg)
{
    const struct sorted_at *x = a, *y = b;
    const struct record *tail = arg;
    if (x->prefix != y->prefix)
        return x->prefix < y->prefix ? -1 : 1;
    int c = memcmp(tail[x->at].key, tail[y->at].key, 32);
    return c ? c : (x->at < y->at ? -1 : x->at > y->at);
}

/* The appended records sorted, the last one of each key kept in `last`: how many, or -1 out of
 * memory. */
static ssize_t last_of_each_key(const struct usage_view *v, const struct record **last)
{
    size_t n = 0, kept = 0;
    struct sorted_at *order = malloc((v->tail_n ? v->tail_n : 1) * sizeof(*order));
    if (!order)
        return -1;
    for (size_t i = 0; i < v->tail_n; i++)
        if (valid(&v->tail[i]))
            order[n++] = (struct sorted_at){sha256_prefix(v->tail[i].key), i};
    qsort_r(order, n, sizeof(*order), by_key_then_place, (void *)v->tail);
    for (size_t i = 0; i < n; i++) {
        const struct record *r = &v->tail[order[i].at];
        if (kept && !memcmp(last[kept - 1]->key, r->key, 32))
            kept--;
        last[kept++] = r;
    }
    free(order);
    return (ssize_t)kept;
}

struct usage_cursor {
    const struct usage_view *v;
    const struct record **tail; /* the appended records' last one a key, in key order */
    size_t tail_n, i, j;        /* the next record of the run, of the tail */
};

struct usage_cursor *usage_log_cursor(void)
{
    const struct usage_view *v = ul.loading;
    if (!v || !v->map)
        return NULL;
    struct usage_cursor *c = calloc(1, sizeof(*c));
    ssize_t n = -1;
    if (c && (c->tail = malloc((v->tail_n ? v->tail_n : 1) * sizeof(*c->tail))))
        n = last_of_each_key(v, c->tail);
    if (n < 0) {
        log_error("usage journal %s: out of memory reading it: objects keep the figures their "
                  "rows have",
                  ul.path);
        usage_cursor_close(c);
        return NULL;
    }
    c->v = v;
    c->tail_n = (size_t)n;
    return c;
}

bool usage_cursor_near(struct usage_cursor *c, uint64_t prefix, int bits)
{
    const struct usage_view *v = c->v;
    int drop = 64 - bits;
    assert(bits >= 1 && bits <= 64);
    prefix >>= drop;
    while (c->i < v->run_n && sha256_prefix(v->run[c->i].key) >> drop < prefix)
        c->i++;
    while (c->j < c->tail_n && sha256_prefix(c->tail[c->j]->key) >> drop < prefix)
        c->j++;
    return (c->i < v->run_n && sha256_prefix(v->run[c->i].key) >> drop == prefix) ||
           (c->j < c->tail_n && sha256_prefix(c->tail[c->j]->key) >> drop == prefix);
}

bool usage_cursor_apply(struct usage_cursor *c, const uint8_t key[32], struct index_row *row)
{
    const struct usage_view *v = c->v;
    while (c->i < v->run_n && memcmp(v->run[c->i].key, key, 32) < 0)
        c->i++;
    while (c->j < c->tail_n && memcmp(c->tail[c->j]->key, key, 32) < 0)
        c->j++;
    if (c->j < c->tail_n && !memcmp(c->tail[c->j]->key, key, 32))
        return lay(c->tail[c->j], row); /* the later word */
    return c->i < v->run_n && !memcmp(v->run[c->i].key, key, 32) && lay(&v->run[c->i], row);
}

void usage_cursor_close(struct usage_cursor *c)
{
    if (c)
        free(c->tail);
    free(c);
}

void usage_log_apply(struct index_row *row)
{
    usage_view_apply(ul.loading, row);
}

void usage_log_loaded(void)
{
    usage_view_close(ul.loading);
    ul.loading = NULL;
}

/* --- writing -------------------------------------------------------------------------------- */

static int write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static void compact_at_next(void)
{
    ul.compact_at = ul.sorted / 2 > COMPACT_MIN ? ul.sorted / 2 : COMPACT_MIN;
}

static struct header header_of(size_t sorted)
{
    struct header h = {.sorted = sorted, .index_id = ul.index_id};
    memcpy(h.magic, MAGIC, sizeof(MAGIC));
    return h;
}

static int write_header(int fd, size_t sorted)
{
    struct header h = header_of(sorted);
    return write_all(fd, &h, sizeof(h));
}

/* A write failed (a full disk, an I/O error): the file goes, so that no start reads the uses
 * before a reset that is not there; the rows' figures stand. Another file is tried a minute on. */
static void lose(int err)
{
    log_error("usage journal %s: %s: removed (the objects' figures since their rows were written "
              "are lost; their rows' stand)",
              ul.path, strerror(err));
    if (unlink(ul.path) < 0) { /* then another index's header: no new block needed */
        int fd = open(ul.path, O_WRONLY | O_CLOEXEC);
        static const struct header none;
        if (fd >= 0 && pwrite(fd, &none, sizeof(none), 0) < 0)
            log_error("usage journal %s: cannot be disowned either: %s", ul.path, strerror(errno));
        if (fd >= 0)
            close(fd);
    }
    close(ul.fd);
    ul.fd = -1;
    ul.sorted = ul.appended = 0;
    ul.lost_at = time(NULL);
}

/* A minute after a loss: a new, empty journal in its place. */
static void try_again(void)
{
    if (time(NULL) < ul.lost_at + 60)
        return;
    ul.lost_at = time(NULL);
    /* a new inode: the old one may still be mapped by the load (truncated, a read of it faults) */
    unlink(ul.path);
    int fd = open(ul.path, O_RDWR | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0 && write_header(fd, 0) < 0) {
        close(fd);
        unlink(ul.path);
        fd = -1;
    }
    if (fd < 0)
        return;
    ul.fd = fd;
    ul.lost_at = 0;
    compact_at_next();
    log_info("usage journal %s: started again", ul.path);
}

void usage_log_flush(void)
{
    if (ul.fd < 0 && ul.lost_at)
        try_again();
    if (ul.fd >= 0 && ul.buffered > 0) {
        if (write_all(ul.fd, ul.buf, ul.buffered * sizeof(*ul.buf)) < 0)
            lose(errno);
        else
            ul.appended += ul.buffered;
    }
    ul.buffered = 0;
}

void usage_log_sync(void)
{
    usage_log_flush();
    if (ul.fd >= 0 && fdatasync(ul.fd) < 0)
        lose(errno);
}

static struct record *next_record(void)
{
    if (ul.buffered == BUFFERED)
        usage_log_flush();
    struct record *r = &ul.buf[ul.buffered++];
    memset(r, 0, sizeof(*r));
    return r;
}

static uint32_t clamp32(int64_t v)
{
    return v < 0 ? 0 : v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

void usage_log_use(const struct index_row *row)
{
    uint8_t key[32];
    if (ul.fd < 0 || parse_sha256_hex(row->key, key) < 0 || !row->digest)
        return; /* no journal (lost until a flush starts another), or nothing to name it by */
    struct record *r = next_record();
    memcpy(r->key, key, 32);
    memcpy(r->digest, row->digest, sizeof(r->digest));
    r->kind = KIND_USE;
    r->created = clamp32(row->created);
    r->last_use = clamp32(row->last_use);
    r->usage = row->usage;
    r->ttl = clamp32(row->ttl);
    r->pinned = row->pinned;
    r->keep_if_error = (int32_t)row->keep_if_error;
    r->keep_while = (int32_t)row->keep_while;
}

void usage_log_reset(const char *key)
{
    uint8_t bytes[32];
    if (ul.fd < 0 || !key || parse_sha256_hex(key, bytes) < 0)
        return; /* no journal (no use of it to undo), or a key no use was recorded under */
    struct record *r = next_record();
    memcpy(r->key, bytes, 32);
    r->kind = KIND_RESET;
}

/* --- compaction ----------------------------------------------------------------------------- */

struct out {
    int fd;
    struct record buf[BUFFERED];
    size_t n, written;
    bool failed;
};

static void out_put(struct out *o, const struct record *r)
{
    if (r->kind != KIND_USE)
        return; /* a reset's key: the row's figures stand, nothing to keep */
    o->buf[o->n++] = *r;
    o->written++;
    if (o->n == BUFFERED) {
        o->failed = o->failed || write_all(o->fd, o->buf, sizeof(o->buf)) < 0;
        o->n = 0;
    }
}

/* The run and the appended records' last one a key, merged in key order into `o`. */
static void merge(const struct usage_view *v, const struct record **last, size_t n, struct out *o)
{
    size_t i = 0, j = 0;
    while (i < v->run_n || j < n) {
        int c = i == v->run_n ? 1 : j == n ? -1 : memcmp(v->run[i].key, last[j]->key, 32);
        if (c < 0) {
            out_put(o, &v->run[i++]);
        } else {
            out_put(o, last[j++]);
            i += c == 0; /* the appended record is the later word */
        }
    }
}

/* The new file beside the old one, renamed over it: a crash leaves one or the other. Not
 * fsynced (a power cut may leave the new one empty: its figures lost, the rows' standing, never
 * wrong ones). Its descriptor, open for appends, is the one kept: the file renamed is the file
 * written to. 0, or an errno. */
static int write_compacted(const struct usage_view *v, const struct record **last, size_t n,
                           size_t *written, int *fd)
{
    char tmp[1320];
    struct header h = header_of(0);
    int err = 0;
    snprintf(tmp, sizeof(tmp), "%s.new", ul.path);
    struct out *o = calloc(1, sizeof(*o));
    if (!o)
        return ENOMEM;
    o->fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (o->fd < 0 || write_all(o->fd, &h, sizeof(h)) < 0)
        err = errno;
    if (!err) {
        merge(v, last, n, o);
        h = header_of(o->written); /* known once written: the header last */
        if (o->failed || write_all(o->fd, o->buf, o->n * sizeof(*o->buf)) < 0 ||
            pwrite(o->fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h) ||
            fcntl(o->fd, F_SETFL, O_APPEND) < 0 || rename(tmp, ul.path) < 0)
            err = errno ? errno : EIO;
    }
    if (err) {
        if (o->fd >= 0)
            close(o->fd);
        unlink(tmp);
    } else {
        *fd = o->fd;
        *written = o->written;
    }
    free(o);
    return err;
}

/* 0, or an errno (the old file kept). */
static int compact(void)
{
    size_t written = 0;
    int fd = -1, err = ENOMEM;
    usage_log_flush();
    if (ul.fd < 0)
        return EIO; /* the flush lost it */
    struct usage_view *v = view_map(ul.fd, ul.sorted, ul.appended, false);
    const struct record **last = v ? malloc((v->tail_n ? v->tail_n : 1) * sizeof(*last)) : NULL;
    ssize_t n = last ? last_of_each_key(v, last) : -1;
    if (n >= 0)
        err = write_compacted(v, last, (size_t)n, &written, &fd);
    free(last);
    usage_view_close(v);
    if (err)
        return err;
    close(ul.fd);
    ul.fd = fd;
    ul.sorted = written;
    ul.appended = 0;
    return 0;
}

void usage_log_compact_due(void)
{
    if (ul.fd < 0 || ul.appended + ul.buffered < ul.compact_at)
        return;
    int err = compact();
    if (err) {
        log_error("usage journal %s: cannot compact it: %s (tried again when it has doubled)",
                  ul.path, strerror(err));
        ul.compact_at = 2 * (ul.appended + ul.buffered);
        return;
    }
    compact_at_next();
}

/* --- open and close ------------------------------------------------------------------------- */

/* An empty journal of the index in place of another one's, a damaged one, or none. */
static int start_afresh(int fd)
{
    ul.sorted = ul.appended = 0;
    return ftruncate(fd, 0) < 0 || write_header(fd, 0) < 0 ? -1 : 0;
}

/* The file's records counted (a torn last one cut off: a crash in a write), or started afresh
 * when it is not this index's journal. */
static int take_up(int fd, size_t size)
{
    size_t sorted;
    uint64_t id;
    bool ours = read_header(fd, size, &sorted, &id) == 0;
    if (!ours || id != ul.index_id) {
        if (size > sizeof(struct header))
            log_error("usage journal %s: %s: started afresh (the index's figures stand)", ul.path,
                      ours ? "another index's" : "damaged");
        return start_afresh(fd);
    }
    size_t whole = whole_records(size);
    ul.sorted = sorted;
    ul.appended = whole - sorted;
    if (size == sizeof(struct header) + whole * sizeof(struct record))
        return 0;
    return ftruncate(fd, (off_t)(sizeof(struct header) + whole * sizeof(struct record)));
}

int usage_log_open(const char *index_path, uint64_t index_id, char *err, size_t errlen)
{
    struct stat sb;
    snprintf(ul.path, sizeof(ul.path), "%s%s", index_path, SUFFIX);
    ul.index_id = index_id;
    int fd = open(ul.path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    int rc = fd < 0 || fstat(fd, &sb) < 0 ? -1 : take_up(fd, (size_t)sb.st_size);
    if (rc < 0) {
        snprintf(err, errlen, "usage journal %s: %s", ul.path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (!(ul.loading = view_map(fd, ul.sorted, ul.appended, true)))
        log_error("usage journal %s: cannot read it: objects keep the figures their rows have",
                  ul.path);
    ul.fd = fd;
    ul.buffered = 0;
    ul.lost_at = 0;
    compact_at_next();
    return 0;
}

void usage_log_close(void)
{
    usage_log_flush();
    if (ul.fd >= 0) {
        fdatasync(ul.fd);
        close(ul.fd);
    }
    ul.fd = -1;
    usage_log_loaded();
}

void usage_log_counts(size_t *sorted, size_t *appended)
{
    *sorted = ul.sorted;
    *appended = ul.appended + ul.buffered;
}
