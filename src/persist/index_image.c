/* The index's complete rows as a clean stop left them (index_image.h). */
#include "persist/index_image.h"
#include "base/halves.h"
#include "log/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define IMAGE_SUFFIX ".image"
#define IMAGE_MAGIC "arca rows image\n" /* 16 bytes, no NUL kept */
/* Raised whenever a record's or the head's fields change their meaning, even at the same size */
#define IMAGE_VERSION 2
#define IMAGE_STRINGS 7 /* the URL, then the six header values (headers.h's order) */
/* What a row may take, for the room asked before writing: a record and its strings, with
 * room for long URLs; and what the disk keeps free beyond twice that. */
#define IMAGE_ROW_ROOM 512
#define IMAGE_MARGIN (64u << 20)

/* The file: this head, then the first half's records, then the second's. Written and read by the
 * same build on the same machine (a new build that changed a record has another version or
 * record size: its image is not taken, the rows come from SQLite). */
struct image_head {
    char magic[16];
    uint32_t version, record_size;
    uint64_t count[2];  /* records in each half */
    uint64_t offset[2]; /* where each half begins */
    uint64_t size;      /* the whole file's */
    char identity[128]; /* the index file's, as its clean mark says it (index.c) */
    /* the index's at the seal: its complete rows (the image's) and its highest rowid */
    int64_t complete, max_rowid;
};

/* A record: these fields, then its strings, each followed by a NUL (so that a row points into
 * the mapping). The figures are as the store keeps them: wall seconds and a use count in 32
 * bits, windows in 32. */
struct image_record {
    int64_t length;
    uint32_t created, ttl, last_use, usage;
    int32_t stale_if_error, stale_while, keep_if_error, keep_while;
    uint8_t key[32], digest[32];
    uint16_t len[IMAGE_STRINGS]; /* without the NUL */
    uint8_t signed_key, pinned;
};

static struct {
    FILE *f;
    char path[1300], tmp[1320];
    struct image_head head;
    int part;
    bool failed;
} out;

static struct {
    int fd; /* taken, not yet mapped: -1 when none */
    uint8_t *map;
    size_t size;
    struct image_head head;
} in = {.fd = -1};

static void image_path(const char *index_path, char *out_path, size_t size)
{
    snprintf(out_path, size, "%s%s", index_path, IMAGE_SUFFIX);
}

/* --- writing -------------------------------------------------------------------------------- */

static void write_failed(const char *what)
{
    if (!out.failed)
        log_error("index image %s: %s: %s; the next start reads the index's rows", out.tmp, what,
                  strerror(errno));
    out.failed = true;
}

/* Whether the file system holding the image has room for `rows` of them and a margin: the image
 * is never needed, and on a nearly full disk the index's own last writes come first. */
static bool room_for(const char *path, size_t rows)
{
    char dir[1300];
    struct statvfs v;
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    if (statvfs(slash ? dir : ".", &v) < 0)
        return true; /* cannot say: a failed write says it */
    uint64_t free_bytes = (uint64_t)v.f_bavail * v.f_frsize;
    return free_bytes / 2 > (uint64_t)rows * IMAGE_ROW_ROOM + IMAGE_MARGIN;
}

int index_image_begin(size_t rows)
{
    index_image_abandon();
    memset(&out.head, 0, sizeof(out.head));
    out.part = 0;
    out.failed = false;
    if (!out.path[0])
        return -1; /* no index opened */
    snprintf(out.tmp, sizeof(out.tmp), "%s.new", out.path);
    if (!room_for(out.path, rows)) {
        log_warn("index image %s: the disk is nearly full: none is written, the next start reads "
                 "the index's rows",
                 out.path);
        return -1;
    }
    int fd = open(out.tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || !(out.f = fdopen(fd, "w"))) {
        write_failed("cannot create it");
        if (fd >= 0)
            close(fd);
        unlink(out.tmp);
        return -1;
    }
    setvbuf(out.f, NULL, _IOFBF, 1 << 20);
    /* the head last, once its counts are known: a zeroed one in its place meanwhile */
    if (fwrite(&out.head, sizeof(out.head), 1, out.f) != 1)
        write_failed("cannot write it");
    out.head.offset[0] = out.head.offset[1] = sizeof(out.head);
    return 0;
}

void index_image_half(void)
{
    if (out.f && out.part == 0) {
        out.part = 1;
        out.head.offset[1] = (uint64_t)ftello(out.f);
    }
}

bool index_image_writing(void)
{
    return out.f && !out.failed;
}

uint64_t index_image_rows(void)
{
    return out.head.count[0] + out.head.count[1];
}

static const char *row_string(const struct index_row *row, int i)
{
    const char *s[IMAGE_STRINGS] = {row->url,
                                    row->headers.content_type,
                                    row->headers.content_encoding,
                                    row->headers.filename,
                                    row->headers.last_modified,
                                    row->headers.etag,
                                    row->headers.redirects};
    return s[i] ? s[i] : "";
}

/* A window as the store keeps it (int32, -1 not said). */
static int32_t window32(int64_t s)
{
    return s < -1 ? -1 : s > INT32_MAX ? INT32_MAX : (int32_t)s;
}

static uint32_t u32(int64_t v)
{
    return v < 0 ? 0 : v > (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

void index_image_row(const uint8_t key[32], const struct index_row *row)
{
    struct image_record r;
    size_t len[IMAGE_STRINGS];
    if (!index_image_writing())
        return;
    memset(&r, 0, sizeof(r)); /* its padding too: no stack bytes in the file */
    for (int i = 0; i < IMAGE_STRINGS; i++) {
        len[i] = strlen(row_string(row, i));
        if (len[i] > UINT16_MAX) {
            errno = EOVERFLOW;
            write_failed("a row's value is longer than an image holds");
            return;
        }
        r.len[i] = (uint16_t)len[i];
    }
    r.length = row->length;
    r.created = u32(row->created), r.ttl = u32(row->ttl), r.last_use = u32(row->last_use);
    r.usage = u32(row->usage);
    r.stale_if_error = window32(row->stale_if_error);
    r.stale_while = window32(row->stale_while_revalidate);
    r.keep_if_error = window32(row->keep_if_error);
    r.keep_while = window32(row->keep_while);
    memcpy(r.key, key, 32);
    memcpy(r.digest, row->digest, 32);
    r.signed_key = row->signed_key;
    r.pinned = row->pinned;
    bool ok = fwrite(&r, sizeof(r), 1, out.f) == 1;
    for (int i = 0; ok && i < IMAGE_STRINGS; i++)
        ok = fwrite(row_string(row, i), 1, len[i] + 1, out.f) == len[i] + 1;
    if (!ok)
        write_failed("cannot write it");
    out.head.count[out.part]++;
}

int index_image_seal(const char *identity, int64_t complete, int64_t max_rowid)
{
    if (!index_image_writing())
        return -1;
    out.head.complete = complete;
    out.head.max_rowid = max_rowid;
    memcpy(out.head.magic, IMAGE_MAGIC, sizeof(out.head.magic));
    out.head.version = IMAGE_VERSION;
    out.head.record_size = sizeof(struct image_record);
    snprintf(out.head.identity, sizeof(out.head.identity), "%s", identity);
    if (out.part == 0) /* never split: all of it the first half */
        out.head.offset[1] = (uint64_t)ftello(out.f);
    out.head.size = (uint64_t)ftello(out.f);
    /* its rows on disk before the name says it is whole: a power cut leaves the old name's
     * absence, or a whole image */
    if (fflush(out.f) != 0 ||
        pwrite(fileno(out.f), &out.head, sizeof(out.head), 0) != (ssize_t)sizeof(out.head))
        write_failed("cannot write it");
    else if (fdatasync(fileno(out.f)) < 0)
        write_failed("cannot sync it");
    else if (rename(out.tmp, out.path) < 0)
        write_failed("cannot name it");
    if (out.failed) {
        index_image_abandon();
        return -1;
    }
    fclose(out.f);
    out.f = NULL;
    return 0;
}

void index_image_abandon(void)
{
    if (!out.f)
        return;
    fclose(out.f);
    out.f = NULL;
    unlink(out.tmp);
}

/* --- reading -------------------------------------------------------------------------------- */

/* The record at `at` read into *r, its strings checked and pointed at in s[]: the offset after
 * it, or 0 when it does not fit below `end` or a string is not what its length says. */
static size_t record_at(const uint8_t *map, size_t at, size_t end, struct image_record *r,
                        const char *s[IMAGE_STRINGS])
{
    if (end - at < sizeof(*r))
        return 0;
    memcpy(r, map + at, sizeof(*r));
    at += sizeof(*r);
    for (int i = 0; i < IMAGE_STRINGS; i++) {
        size_t len = r->len[i];
        if (end - at <= len || map[at + len] != '\0' || memchr(map + at, '\0', len))
            return 0;
        s[i] = (const char *)map + at;
        at += len + 1;
    }
    return at;
}

/* Whether the records of `part` fill exactly its span of the file. */
static bool half_whole(const uint8_t *map, const struct image_head *h, int part)
{
    size_t at = h->offset[part], end = part == 0 ? h->offset[1] : h->size;
    struct image_record r;
    const char *s[IMAGE_STRINGS];
    for (uint64_t i = 0; i < h->count[part]; i++)
        if (!(at = record_at(map, at, end, &r, s)))
            return false;
    return at == end;
}

static bool head_sound(const struct image_head *h, size_t size)
{
    return !memcmp(h->magic, IMAGE_MAGIC, sizeof(h->magic)) && h->version == IMAGE_VERSION &&
           h->record_size == sizeof(struct image_record) && h->size == size &&
           h->offset[0] == sizeof(*h) && h->offset[0] <= h->offset[1] && h->offset[1] <= size &&
           memchr(h->identity, '\0', sizeof(h->identity));
}

bool index_image_take(const char *index_path, const char *identity)
{
    char path[1300], unsealed[1320];
    struct stat s;
    index_image_drop();
    image_path(index_path, path, sizeof(path));
    snprintf(out.path, sizeof(out.path), "%s", path); /* where a clean stop writes the next */
    snprintf(unsealed, sizeof(unsealed), "%s.new", path);
    unlink(unsealed); /* a stop killed while it wrote one */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    unlink(path); /* read once at most: the index changes from here on */
    if (fd < 0)
        return false;
    /* its head only: the records are mapped and checked by the load, off the start's path */
    bool sound = identity && fstat(fd, &s) == 0 &&
                 pread(fd, &in.head, sizeof(in.head), 0) == (ssize_t)sizeof(in.head) &&
                 head_sound(&in.head, (size_t)s.st_size);
    if (!sound || strcmp(in.head.identity, identity) != 0) {
        if (identity) /* the index is as a clean stop left it: say why the image is not read */
            log_warn("index image %s: %s: the index's rows are read instead", path,
                     !sound ? "written by another build, or damaged"
                            : "not of the index's last clean stop (another build's stop?)");
        close(fd);
        return false;
    }
    in.fd = fd;
    in.size = (size_t)s.st_size;
    return true;
}

bool index_image_ready(void)
{
    return in.fd >= 0;
}

bool index_image_fits(int64_t complete, int64_t max_rowid)
{
    return in.fd >= 0 && complete >= 0 && complete == in.head.complete &&
           max_rowid == in.head.max_rowid &&
           (uint64_t)complete == in.head.count[0] + in.head.count[1];
}

struct image_half {
    int part;
    void (*row)(const struct index_row *row, int part, void *arg);
    void *arg;
    const atomic_bool *stop;
    bool whole;
    bool cut; /* a record the check passed could not be read again: the file changed under it */
};

static void *check_half(void *arg)
{
    struct image_half *h = arg;
    h->whole = half_whole(in.map, &in.head, h->part);
    return NULL;
}

/* One half's records to the callback: checked whole at take, so read as they are. */
static void *load_half(void *arg)
{
    struct image_half *h = arg;
    size_t at = in.head.offset[h->part], end = h->part == 0 ? in.head.offset[1] : in.head.size;
    struct image_record r;
    const char *s[IMAGE_STRINGS];
    for (uint64_t i = 0; i < in.head.count[h->part] && !atomic_load(h->stop); i++) {
        if (!(at = record_at(in.map, at, end, &r, s))) {
            h->cut = true; /* checked whole: only a file changed under the mapping gets here */
            break;
        }
        struct index_row row = {
            .key_bytes = r.key,
            .url = s[0],
            .headers = {s[1], s[2], s[3], s[4], s[5], s[6]},
            .length = r.length,
            .created = r.created,
            .ttl = r.ttl,
            .last_use = r.last_use,
            .usage = r.usage,
            .digest = r.digest,
            .signed_key = r.signed_key != 0,
            .source = "",
            .stale_if_error = r.stale_if_error,
            .stale_while_revalidate = r.stale_while,
            .pinned = r.pinned != 0,
            .keep_if_error = r.keep_if_error,
            .keep_while = r.keep_while,
            .max_size = -1,
        };
        h->row(&row, h->part, h->arg);
    }
    return NULL;
}

int index_image_load(void (*row)(const struct index_row *row, int part, void *arg), void *arg,
                     const atomic_bool *stop)
{
    struct image_half h[2] = {{0, row, arg, stop, false, false}, {1, row, arg, stop, false, false}};
    /* populated at once: page by page, its faults were a third of the time */
    void *map = mmap(NULL, in.size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, in.fd, 0);
    in.map = map == MAP_FAILED ? NULL : map;
    if (in.map)
        run_halves(check_half, &h[0], &h[1]); /* every record, before any row is handed on */
    bool whole = h[0].whole && h[1].whole;
    if (whole)
        run_halves(load_half, &h[0], &h[1]);
    if (!whole)
        log_error("index image: damaged; the index's rows are read instead");
    index_image_drop();
    return !whole ? 0 : h[0].cut || h[1].cut ? -1 : 1;
}

void index_image_drop(void)
{
    if (in.map)
        munmap(in.map, in.size);
    if (in.fd >= 0)
        close(in.fd);
    in.map = NULL;
    in.fd = -1;
    in.size = 0;
}
