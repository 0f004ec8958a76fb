/* The writing side of the store: files, the quota claimed as bytes come, completion (the room
 * they take is store_room.c's). The upstream thread appends and decides; what touches SQLite,
 * fsync or unlink is a job for the persistence thread (persist.h). Every change of an object's
 * state is asked of object.c. */
#include "base/clock.h"
#include "persist/index.h"
#include "log/log.h"
#include "store/object.h"
#include "persist/persist.h"
#include "store/store_list.h"
#include "store/store_resume.h"
#include "store/store_room.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Writeback of a growing file is started every WRITEBACK_STEP bytes, so that the fsync which
 * completes the object has little left to write: on a 1 GiB download that fsync took 0.6 s, and
 * every client streaming it waits for the held-back last byte meanwhile. */
#define WRITEBACK_STEP (8LL << 20)

/* Quota is claimed in steps of this size while the length is unknown, so eviction does not run
 * for every chunk of a chunked download. */
#define RESERVE_STEP (16LL << 20)

struct begin_job {
    struct persist_job job;
    struct object *obj; /* a reference of its own: the download may end while this waits */
    char *source;       /* the URL fetched, for the row */
    void (*ready)(void *arg);
    void *arg;
};

/* Persistence thread. The row comes first: a crash after it leaves a 'fetching' row whose file
 * start-up deletes; the other order could leave an older version's 'complete' row over a new
 * partial file. A refresh writes only its part file: the older version's row and file stay. Returns
 * 0, or the status for clients with the reason in err. */
static int create_file(struct object *obj, const char *source, char *err, size_t errlen)
{
    assert(persist_owns_index()); /* the persistence thread while it runs */
    char path[1200];
    int fd, rc;
    store_lock();
    bool live = obj->state == OBJ_FETCHING, revalidating = object_stale(obj) != NULL;
    /* one not stored (store = no) gets no row: a restart can never take it up, and a crash
     * leaves a part file the orphan sweep removes */
    bool row = !revalidating && !obj->transient;
    obj->on_disk = live; /* from here on, store_fail has a file and row to remove */
    store_unlock();
    if (!live)
        return 0;     /* failed while this waited (shutdown): nothing to create */
    if (obj->resumed) /* after a restart: its file and row are there */
        return reopen_partial(obj, err, errlen);
    /* A refresh of an expired version leaves that version's row as it is: a crash meanwhile
     * finds it whole (its file is not touched before the new one is complete). */
    if (row && (rc = index_mark_fetching(OBJECT_KEY(obj), obj->url, source)) < 0) {
        snprintf(err, errlen, "%s",
                 rc == INDEX_FULL ? "disk full (index)"
                                  : "cannot record the download in the index");
        return rc == INDEX_FULL ? 507 : 500;
    }
    /* An older version may still be open by readers: unlink keeps their inode alive. One being
     * revalidated stays until upstream has answered. */
    if (!revalidating) {
        object_path(obj, path, sizeof(path));
        unlink(path);
    }
    part_path(OBJECT_KEY(obj), path, sizeof(path));
    unlink(path);
    fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0 && errno == ENOENT && make_key_dir(path) == 0)
        fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "cannot create object file: %s", strerror(e));
        return e == ENOSPC ? 507 : 500;
    }
    store_lock();
    obj->fd = fd;
    store_unlock();
    return 0;
}

static void run_begin(struct persist_job *job)
{
    struct begin_job *b = (struct begin_job *)job;
    char err[160];
    int status = create_file(b->obj, b->source, err, sizeof(err));
    if (status != 0) {
        log_error("fetch %s: %d %s", b->obj->url, status, err);
        store_fail(b->obj, status, err);
    }
    b->ready(b->arg);
    store_release(b->obj);
    free(b->source);
    free(b);
}

int store_begin_file(struct object *obj, const char *source, void (*ready)(void *arg), void *arg)
{
    struct begin_job *b = malloc(sizeof(*b));
    char *copy = strdup(source);
    CHECK_OBJ(obj);
    if (!b || !copy) {
        free(b);
        free(copy);
        return -1;
    }
    *b = (struct begin_job){
        .job.run = run_begin, .obj = obj, .source = copy, .ready = ready, .arg = arg};
    store_lock();
    obj->refs++;
    store_unlock();
    persist_submit(&b->job);
    return 0;
}

void store_progress(struct object *obj, struct download_progress *out)
{
    CHECK_OBJ(obj);
    store_lock();
    *out = (struct download_progress){object_have(obj), obj->length, obj->headers_ready};
    store_unlock();
}

int store_file_ready(struct object *obj)
{
    CHECK_OBJ(obj);
    store_lock();
    int ready = obj->state == OBJ_FAILED ? -1 : obj->fd >= 0;
    store_unlock();
    return ready;
}

/* Lock held. Whether a body that begins again (after a retry) may replace what readers hold:
 * they were told its length and every replayed header. */
static bool same_headers(const struct object *obj, int64_t length, const struct upstream_headers *h)
{
    assert(store_locked());
    struct upstream_headers old;
    headers_unpack(obj->headers, &old);
    return obj->length == length && !strcmp(old.content_type, headers_kept_type(h->content_type)) &&
           !strcmp(old.content_encoding, h->content_encoding) &&
           !strcmp(old.filename, h->filename) && !strcmp(old.last_modified, h->last_modified) &&
           !strcmp(old.etag, h->etag);
}

/* Lock held. */
static int check_body(struct object *obj, int64_t length, const struct upstream_headers *h)
{
    assert(store_locked());
    char reason[160];
    if (obj->headers_ready && obj->committed && !same_headers(obj, length, h)) {
        object_set_error(obj, 502, "upstream changed the object between attempts");
        return -1;
    }
    if (length >
        live_of(obj)->max_size) { /* its terms': a rule's max-object-size, or the option's */
        snprintf(reason, sizeof(reason), "object larger than max-object-size (%lld bytes)",
                 (long long)live_of(obj)->max_size);
        object_refuse_size(obj, 413, reason);
        return -1;
    }
    if (length > st.quota) {
        object_refuse_size(obj, 507, "object larger than the cache quota");
        return -1;
    }
    /* A body beginning again gives back what the previous attempt reserved. */
    object_reserve(obj, 0);
    if (length >= 0 && room_make(length) < 0) {
        object_refuse_size(obj, 507, "no room in the cache quota for this object");
        return -1;
    }
    return 0;
}

int store_begin_body(struct object *obj, int64_t length, const struct upstream_headers *h,
                     bool resumable)
{
    char *packed = NULL, *old = NULL;
    int rc = -1, packed_rc = headers_pack(h, &packed);
    CHECK_OBJ(obj);
    assert(store_on_upstream() && obj->state == OBJ_FETCHING);
    store_lock();
    if (packed_rc < 0)
        object_set_error(obj, 500, "out of memory");
    else
        rc = check_body(obj, length, h);
    if (rc == 0) {
        if (length >= 0)
            object_reserve(obj, length);
        obj->length = length;
        old = obj->headers;
        obj->headers = packed;
        packed = NULL;
        obj->headers_ready = true;
        obj->resumable = resumable;
        wake_all(obj);
    }
    store_unlock();
    free(packed);
    free(old);
    if (rc == 0)
        submit_started(obj);
    return rc;
}

/* Lock held. The body written so far goes: its file emptied (-1 with the reason set when it
 * cannot be). */
static int empty_body(struct object *obj)
{
    assert(store_locked());
    if (ftruncate(obj->fd, 0) < 0) {
        object_set_error(obj, 500, "cannot truncate object file");
        return -1;
    }
    object_live(obj)->have = object_live(obj)->flush_mark = 0;
    object_live(obj)->bodies++;
    return 0;
}

int store_restart(struct object *obj, int64_t length, const struct upstream_headers *h)
{
    int rc = 1;
    CHECK_OBJ(obj);
    assert(store_on_upstream());
    store_lock();
    if (obj->delivered || (h && obj->committed && !same_headers(obj, length, h)))
        rc = 1;
    else if ((rc = empty_body(obj)) == 0)
        obj->headers_ready = obj->committed; /* readers joining now wait for the new body's */
    store_unlock();
    return rc;
}

int store_restart_afresh(struct object *obj)
{
    int rc = 1;
    char *old = NULL;
    CHECK_OBJ(obj);
    assert(store_on_upstream());
    store_lock();
    if (obj->delivered || obj->committed) {
        rc = 1;
    } else if ((rc = empty_body(obj)) == 0) {
        obj->length = -1;
        obj->headers_ready = false; /* nobody answered with them: the next source's are taken */
        old = obj->headers;
        obj->headers = NULL;
    }
    store_unlock();
    free(old);
    return rc;
}

/* Lock held. Claim quota for the bytes about to be written when the length was unknown. */
static int claim(struct object *obj, int64_t upto)
{
    assert(store_locked());
    int64_t extra;
    if (obj->length >= 0 && upto > obj->length) {
        /* a 206 whose Content-Length runs past its Content-Range, say */
        object_set_error(obj, 502, "upstream sent more bytes than its Content-Length");
        return -1;
    }
    if (upto > live_of(obj)->max_size) {
        object_refuse_size(obj, 413, "object grew larger than max-object-size");
        return -1;
    }
    if (upto <= object_reserved(obj))
        return 0;
    if (upto > st.quota) {
        object_refuse_size(obj, 507, "object grew larger than the cache quota");
        return -1;
    }
    extra = upto - object_reserved(obj);
    if (extra < RESERVE_STEP)
        extra = RESERVE_STEP;
    if (object_reserved(obj) + extra > st.quota)
        extra = st.quota - object_reserved(obj);
    if (room_make(extra) < 0) {
        object_refuse_size(obj, 507, "no room in the cache quota for this object");
        return -1;
    }
    object_reserve(obj, object_reserved(obj) + extra);
    return 0;
}

/* Positioned writes: the file offset would survive a restart's truncation and leave a hole. */
static int write_all(int fd, const char *data, size_t len, int64_t off)
{
    while (len > 0) {
        ssize_t n = pwrite(fd, data, len, off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        data += n;
        len -= (size_t)n;
        off += n;
    }
    return 0;
}

/* Asynchronous (SYNC_FILE_RANGE_WRITE only): the pages go to disk while the download goes on. */
static void start_writeback(int fd, int64_t from, int64_t to)
{
    int64_t step = to / WRITEBACK_STEP;
    if (step != from / WRITEBACK_STEP)
        sync_file_range(fd, (step - 1) * WRITEBACK_STEP, WRITEBACK_STEP, SYNC_FILE_RANGE_WRITE);
}

/* Bytes at `off`: quota claimed, written, their writeback started. -1 with the object's error
 * set. */
static int write_bytes(struct object *obj, int64_t off, const char *data, size_t len)
{
    int rc;
    store_lock();
    rc = claim(obj, off + (int64_t)len);
    store_unlock();
    if (rc < 0)
        return -1;
    if (write_all(obj->fd, data, len, off) < 0) {
        store_lock();
        object_set_error(obj, errno == ENOSPC ? 507 : 500,
                         errno == ENOSPC ? "disk full" : "cannot write object file");
        store_unlock();
        return -1;
    }
    start_writeback(obj->fd, off, off + (int64_t)len);
    return 0;
}

/* Readers may take the bytes up to `to`, once the pass is over (store_announce). */
static void publish(struct object *obj, int64_t to)
{
    maybe_sync(obj, object_have(obj), to);
    store_lock();
    object_live(obj)->have = to;
    assert(obj->length < 0 || object_have(obj) <= obj->length); /* claim() refuses more */
    obj->unannounced = true; /* waiters are woken by store_announce, once per curl pass */
    store_unlock();
}

int store_append(struct object *obj, const char *data, size_t len)
{
    CHECK_OBJ(obj);
    assert(store_on_upstream());
    assert(obj->state == OBJ_FETCHING && obj->headers_ready && obj->fd >= 0);
    if (write_bytes(obj, object_have(obj), data, len) < 0)
        return -1;
    publish(obj, object_have(obj) + (int64_t)len);
    return 0;
}

int store_write_at(struct object *obj, int64_t off, const char *data, size_t len)
{
    CHECK_OBJ(obj);
    assert(store_on_upstream());
    assert(obj->state == OBJ_FETCHING && obj->headers_ready && obj->fd >= 0);
    assert(obj->length >= 0 &&
           off > object_have(obj)); /* ahead of the head, within a known length */
    return write_bytes(obj, off, data, len);
}

void store_advance(struct object *obj, int64_t to)
{
    CHECK_OBJ(obj);
    assert(store_on_upstream() && obj->state == OBJ_FETCHING);
    assert(obj->length >= 0 && to >= object_have(obj) && to <= obj->length);
    publish(obj, to);
}

int store_digest_range(struct object *obj, EVP_MD_CTX *ctx, int64_t from, int64_t to)
{
    static char buf[256 << 10]; /* the upstream thread's alone */
    CHECK_OBJ(obj);
    assert(store_on_upstream() && obj->fd >= 0);
    while (from < to) {
        size_t want = to - from < (int64_t)sizeof(buf) ? (size_t)(to - from) : sizeof(buf);
        ssize_t n = pread(obj->fd, buf, want, from);
        if (n <= 0 || EVP_DigestUpdate(ctx, buf, (size_t)n) != 1)
            return -1;
        from += n;
    }
    return 0;
}

char *store_read_body(struct object *obj, size_t max, size_t *len)
{
    CHECK_OBJ(obj);
    assert(store_on_upstream() && obj->fd >= 0);
    if (object_have(obj) < 0 || (uint64_t)object_have(obj) > max)
        return NULL;
    *len = (size_t)object_have(obj);
    return object_read_file(dup(obj->fd), NULL, object_have(obj));
}

void store_set_rate(struct object *obj, int64_t rate, int connections)
{
    CHECK_OBJ(obj);
    store_lock();
    object_live(obj)->rate = rate;
    object_live(obj)->connections = (uint8_t)(connections > 255 ? 255 : connections);
    store_unlock();
}

void store_set_waiting(struct object *obj, const char *limit)
{
    CHECK_OBJ(obj);
    store_lock();
    object_live(obj)->waiting_for = limit;
    store_unlock();
}

/* Lock held. A reader held for STORE_HOLD_MS takes what is there: every waiter wakes, and the
 * bytes there now go out at any size. now 0: the download has ended, no byte will come. */
static void end_hold(struct object *obj, int64_t now)
{
    assert(store_locked());
    const struct object_live *l = live_part(obj);
    if (!l || (now && (!l->hold_since || now < l->hold_since + STORE_HOLD_MS)))
        return;
    object_live(obj)->hold_since = 0;
    object_live(obj)->flush_mark = object_have(obj);
    wake_all(obj);
}

int64_t store_announce(struct object *obj)
{
    int64_t now = monotonic_ms(), due;
    CHECK_OBJ(obj);
    assert(store_on_upstream());
    store_lock();
    if (obj->unannounced) {
        obj->unannounced = false;
        /* a waiter's `until` is the `have` its bytes need (store_span) */
        park_defer_reached(&object_live(obj)->waiters, object_have(obj));
        if (park_queue_empty(&object_live(obj)->waiters))
            object_live(obj)->hold_since = 0; /* nobody is held */
        else if (!live_of(obj)->hold_since)
            object_live(obj)->hold_since = now; /* bytes came that a waiter does not take yet */
    }
    end_hold(obj, now);
    due = live_of(obj)->hold_since ? live_of(obj)->hold_since + STORE_HOLD_MS : 0;
    store_unlock();
    return due;
}

static int check_length(struct object *obj)
{
    if (obj->length >= 0 && object_have(obj) != obj->length) {
        store_fail(obj, 504, "upstream body shorter than its Content-Length");
        return -1;
    }
    return 0;
}

struct finish_job {
    struct persist_job job;
    struct object *obj; /* a reference of its own */
    uint32_t gen;       /* obj->gen when the download ended */
    uint8_t digest[32];
    bool synced; /* the sync queue's fsync of the file's data succeeded */
};

/* Persistence thread: the object's row says complete, or the object fails (507 when the disk
 * holding the index is full). */
static int record_complete(struct object *obj, const struct index_row *row)
{
    int rc = index_mark_complete(row);
    if (rc < 0)
        store_fail(obj, rc == INDEX_FULL ? 507 : 500,
                   rc == INDEX_FULL ? "disk full (index)" : "cannot record object in the index");
    return rc < 0 ? -1 : 0;
}

/* The sync queue's thread: the file's data on disk, nothing else (its name and row are the
 * ordered queue's, in run_finish). The slow part of a large download's end: new downloads' file
 * creation goes on meanwhile. */
static void sync_data(struct persist_job *job)
{
    struct finish_job *f = (struct finish_job *)job;
    assert(persist_on_sync_thread() || persist_owns_index()); /* or nobody runs: at start, end */
    store_lock();
    int fd = f->obj->fd; /* ours while the reference is held: closed only at the last one */
    store_unlock();
    f->synced = fsync(fd) == 0;
}

/* Ordered queue's thread, after sync_data: durable first (file under its final name, directory
 * entry, row), then COMPLETE. Returns 0, -1 with the object failed, or 1 when it failed while its
 * data synced: then its removal, and maybe a new download of the URL with its own part file and
 * row, were queued meanwhile, and nothing here may touch them. */
static int make_durable(struct finish_job *f)
{
    char path[1200], part[1200], key[65];
    struct index_row row;
    struct object *obj = f->obj;
    assert(persist_on_thread() || persist_owns_index());
    store_lock();
    bool live = obj->state == OBJ_FETCHING && obj->gen == f->gen;
    /* Not stored (store = no, or purged): its readers had every byte from its open file; it goes
     * now, decided under the same hold as a lookup that would make it stored */
    bool dropped =
        live && obj->transient &&
        object_drop(obj, f->digest, obj->purged ? OBJECT_PURGED_UNDER_WAY : OBJECT_STREAMED_ONLY);
    store_unlock();
    /* Not live, it stays so: the ordered queue, this thread, is the only one to create a part
     * file; a failure from now on queues its removal behind this job. */
    if (!live || dropped)
        return 1;
    object_path(obj, path, sizeof(path));
    part_path(OBJECT_KEY(obj), part, sizeof(part));
    if (!f->synced) {
        store_fail(obj, 507, "cannot sync object file (disk full?)");
        return -1;
    }
    /* replaces a version being revalidated; its readers keep their inode */
    if (key_rename(part, path) < 0) {
        store_fail(obj, 500, "cannot move the object file into place");
        return -1;
    }
    if (sync_dir_of(path) < 0) {
        store_fail(obj, 500, "cannot sync the object's directory");
        return -1;
    }
    store_lock();
    /* obj->headers no longer changes: its download is over */
    object_complete_row(obj, object_have(obj), f->digest, key, &row);
    store_unlock();
    return record_complete(obj, &row);
}

void object_complete_row(const struct object *obj, int64_t length, const uint8_t digest[32],
                         char key[65], struct index_row *row)
{
    assert(store_locked_or_alone());
    const struct object_extra *x = object_extra_of(obj);
    *row = (struct index_row){.key = object_key(obj, key),
                              .url = obj->url,
                              .length = length,
                              .created = obj->created,
                              .ttl = obj->ttl,
                              .last_use = obj->last_use,
                              .usage = obj->usage,
                              .digest = digest,
                              .signed_key = obj->signed_key,
                              .stale_if_error = x->stale_if_error,
                              .stale_while_revalidate = x->stale_while_revalidate};
    object_row_keep(obj, row); /* the pin and its terms' windows */
    headers_unpack(obj->headers, &row->headers);
}

/* The object is durable: FETCHING -> COMPLETE (object.c). run_finish calls it by this name. */
static void complete(struct object *obj, const uint8_t digest[32])
{
    store_lock();
    object_complete(obj, digest);
    store_unlock();
}

static void run_finish(struct persist_job *job)
{
    struct finish_job *f = (struct finish_job *)job;
    int rc = make_durable(f);
    if (rc == 0)
        complete(f->obj, f->digest);
    else if (rc < 0)
        log_error("fetch %s: %d %s", f->obj->url, live_of(f->obj)->error_status,
                  object_error(f->obj));
    store_release(f->obj);
    free(f);
}

int store_finish(struct object *obj, const uint8_t digest[32])
{
    struct finish_job *f;
    assert(obj->state == OBJ_FETCHING); /* only the upstream thread ends a download it began */
    if (check_length(obj) < 0)
        return -1;
    if (!(f = malloc(sizeof(*f)))) {
        store_fail(obj, 500, "out of memory");
        return -1;
    }
    *f = (struct finish_job){.job = {.run = run_finish, .sync = sync_data}, .obj = obj};
    memcpy(f->digest, digest, 32);
    store_lock();
    obj->refs++;
    f->gen = obj->gen;
    /* Readers take every byte but the last now, not after the sync: nothing announces this
     * object again, and a body of unknown length had no end a reader could wait for. */
    end_hold(obj, 0);
    store_unlock();
    persist_submit_sync(&f->job);
    return 0;
}

bool store_stale_validators(struct object *obj, char *etag, size_t etag_size, char *date,
                            size_t date_size)
{
    CHECK_OBJ(obj);
    assert(store_on_upstream());
    struct upstream_headers h;
    store_lock();
    /* a copy purged since is renewed by no 304: its download asks for the whole body */
    bool stale = object_stale(obj) != NULL && obj->revalidation && !object_stale(obj)->purged;
    if (stale) {
        headers_unpack(object_stale(obj)->headers, &h);
        copy_string(etag, etag_size, h.etag);
        copy_string(date, date_size, h.last_modified);
    }
    store_unlock();
    return stale;
}

/* A revalidation's partial file, empty: a 304 brought no body. */
static void drop_part_file(const struct object *obj)
{
    char path[1200];
    part_path(OBJECT_KEY(obj), path, sizeof(path));
    unlink(path);
}

/* Persistence thread: the revalidated version's file, and its row as a complete object again
 * (renewed), unless it is not to be kept (*kept false then); the download's empty partial file
 * goes. Returns the open file, or -1 with the object failed. */
static int renew_on_disk(struct object *obj, bool *kept)
{
    assert(persist_owns_index());
    char path[1200];
    struct index_row row;
    int fd;
    object_path(obj, path, sizeof(path));
    if ((fd = object_open_file(path)) < 0) {
        store_fail(obj, 502, "upstream says the object is unchanged, but the cached copy is gone");
        return -1;
    }
    store_lock();
    /* Not kept (a purge took the copy, or store = no since): its readers have the renewed
     * version, and run_renew drops it. No row, for a purge may have been answered since the
     * upstream thread's look at the copy (store_stale_validators), its row gone on disk: one
     * written again now would be there, until the drop's removal, for kill -9 to bring back. */
    *kept = !obj->transient;
    if (!*kept) {
        store_unlock();
        drop_part_file(obj);
        return fd;
    }
    const struct object *s = object_stale(obj);
    row = (struct index_row){.key = OBJECT_KEY(obj),
                             .url = obj->url,
                             .length = s->length,
                             .created = obj->created,
                             .ttl = obj->ttl,
                             .last_use = obj->last_use,
                             .usage = uses32((int64_t)obj->usage + s->usage),
                             .digest = s->digest,
                             .signed_key = obj->signed_key || s->signed_key,
                             .stale_if_error = object_extra_of(s)->stale_if_error,
                             .stale_while_revalidate = object_extra_of(s)->stale_while_revalidate};
    object_row_keep(obj, &row);               /* the pin and its terms' windows */
    headers_unpack(s->headers, &row.headers); /* the stale version's: it no longer changes */
    store_unlock();
    if (record_complete(obj, &row) < 0) {
        close(fd);
        return -1;
    }
    drop_part_file(obj);
    return fd;
}

static void run_renew(struct persist_job *job)
{
    struct finish_job *f = (struct finish_job *)job;
    bool kept = true;
    int fd = renew_on_disk(f->obj, &kept);
    if (fd >= 0) {
        store_lock();
        if (!object_renew(f->obj, fd))
            close(fd); /* failed meanwhile (shutdown) */
        /* purged, or store = no since: its readers have it. Not kept once no row was written,
         * though a lookup since may have said store = yes: the row on disk is the expired
         * copy's, which a restart would take for it */
        else if (!kept || f->obj->transient)
            object_remove(f->obj, f->obj->purged ? OBJECT_PURGED_UNDER_WAY : STORE_NOT_STORED);
        store_unlock();
    }
    store_release(f->obj);
    free(f);
}

int store_renew(struct object *obj)
{
    struct finish_job *f;
    CHECK_OBJ(obj);
    assert(store_on_upstream());
    assert(obj->state == OBJ_FETCHING && object_stale(obj) && !obj->headers_ready);
    if (!(f = malloc(sizeof(*f)))) {
        store_fail(obj, 500, "out of memory");
        return -1;
    }
    *f = (struct finish_job){.job.run = run_renew, .obj = obj};
    store_lock();
    obj->refs++;
    store_unlock();
    persist_submit(&f->job);
    return 0;
}

void store_staleness(struct object *obj, int64_t if_error, int64_t while_revalidate)
{
    CHECK_OBJ(obj);
    assert(store_on_upstream());
    store_lock();
    object_set_staleness(obj, if_error, while_revalidate);
    store_unlock();
}

void store_from_parent(struct object *obj, int64_t age, int64_t fresh, const char *cache_status)
{
    int64_t now = (int64_t)time(NULL);
    char *status = cache_status && cache_status[0] ? strdup(cache_status) : NULL;
    CHECK_OBJ(obj);
    assert(store_on_upstream() && age >= 0);
    store_lock();
    /* as old as the parent's copy; a stale one expired a second ago (ttl=-1), never fresh */
    object_set_times(obj, now - age - (fresh <= 0 ? 2 : 0), age + (fresh <= 0 ? 1 : fresh));
    obj->from_parent = cache_status != NULL; /* whatever memory allows of the rest */
    struct object_extra *e = status || extra_part(obj) ? object_extra(obj) : NULL;
    if (e) {
        free(e->parent_status);
        e->parent_status = status;
    } else {
        free(status); /* none to keep, or out of memory: its Cache-Status shows this arca's */
    }
    store_unlock();
}

bool store_offer_stale(struct object *obj, enum stale_cause cause, int fwd_status)
{
    CHECK_OBJ(obj);
    assert(store_on_upstream() && cause != STALE_NONE);
    store_lock();
    bool offered = obj->state == OBJ_FETCHING && object_stale(obj) && object_stale(obj)->fd >= 0 &&
                   !obj->headers_ready &&
                   object_may_answer(object_stale(obj), cause, (int64_t)time(NULL));
    if (offered && !live_of(obj)->offer_stale) {
        object_live(obj)->offer_stale = (uint8_t)cause;
        object_set_fwd_status(obj, fwd_status);
        wake_all(obj); /* its waiters take the stale version now */
    }
    store_unlock();
    return offered;
}

int store_keep_stale(struct object *obj, int status, int fwd_status, const char *reason, bool said)
{
    int64_t now = (int64_t)time(NULL);
    bool answers = false;
    int rc = -1;
    CHECK_OBJ(obj);
    assert(store_on_upstream());
    store_lock();
    /* a copy purged meanwhile is never restored: the download fails as one refreshing none */
    struct object *s = obj->state == OBJ_FETCHING && object_stale(obj) && !object_stale(obj)->purged
                           ? object_stale(obj)
                           : NULL;
    if (s) {
        answers = object_may_stale(s, now);
        s->refs++; /* the download lets go of it as it fails */
        if (answers) {
            object_live(obj)->offer_stale = STALE_ERROR; /* its waiters look again, and take it */
            object_set_fwd_status(obj, fwd_status);
        }
        object_fail_keeping_copy(obj, status, reason);
        if (object_restore(s, fwd_status))
            rc = 0;
        else
            submit_remove(s, NULL, false); /* out of memory: as a plain failure would have */
        s->refs--;
        maybe_free(s);
    }
    store_unlock();
    const char *then = answers ? "answers meanwhile" : "is kept, too old to answer";
    if (rc == 0 && said)
        log_debug("fetch %s: %d %s; its expired version %s", object_url(obj), status, reason, then);
    else if (rc == 0)
        log_error("fetch %s: %d %s; its expired version %s", object_url(obj), status, reason, then);
    return rc;
}

void store_fail_held(struct object *obj, int status, const char *reason, int retry_after)
{
    CHECK_OBJ(obj);
    store_lock();
    if (obj->state == OBJ_FETCHING && !live_of(obj)->error_status)
        object_live(obj)->retry_after = retry_after;
    object_fail(obj, status, reason);
    store_unlock();
}

void store_fail(struct object *obj, int status, const char *reason)
{
    CHECK_OBJ(obj);
    store_lock();
    object_fail(obj, status, reason);
    store_unlock();
}

/* One lock hold from the failure to the new object: no lookup in between can find the URL
 * without an object and start a second download of it. */
struct object *store_new_version(struct object *obj, const char *reason, bool failure)
{
    struct object *fresh = NULL;
    CHECK_OBJ(obj);
    assert(store_on_upstream());
    store_lock();
    bool replace = obj->state == OBJ_FETCHING;
    /* an expired version it refreshed goes on with the new one: kept whole, on disk and for a
     * failure of the new one (store_keep_stale) */
    struct object *stale = replace ? object_stale(obj) : NULL;
    object_live(obj)->stale = NULL;
    if (!failure)
        object_replace(obj, stale != NULL, reason);
    else if (stale)
        object_fail_keeping_copy(obj, 502, reason);
    else
        object_fail(obj, 502, reason);
    const char *key = replace ? OBJECT_KEY(obj) : NULL;
    if (replace && !object_find_url(obj->url, key) &&
        (fresh = object_begin(obj->url, key, obj->ttl, (int64_t)time(NULL)))) {
        fresh->refs = 1; /* the fetch's: the caller is the fetch */
        fresh->signed_key = obj->signed_key;
        fresh->pinned = obj->pinned; /* the terms it was begun under */
        fresh->transient = obj->transient;
        object_live(fresh)->max_size = live_of(obj)->max_size;
        object_set_keep_windows(fresh, object_extra_of(obj)->keep_if_error,
                                object_extra_of(obj)->keep_while);
        object_add_uses(fresh, (int64_t)obj->usage - fresh->usage);
        object_live(fresh)->stale = stale;
        fresh->revalidation = stale && revalidable(stale);
        stale = NULL;
    }
    if (stale) { /* no new download: let go of it as a failure would have */
        submit_remove(stale, NULL, false);
        stale->refs--;
        maybe_free(stale);
    }
    store_unlock();
    return fresh;
}
