#include "index.h"
#include "log.h"
#include "persist.h"
#include "store_internal.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct store_state st = {.lock = PTHREAD_MUTEX_INITIALIZER};

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

static void url_key(const char *url, char key[65])
{
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)url, strlen(url), d);
    format_sha256_hex(d, key);
}

/* DATA_DIR/objects/<first two hex digits>/<key>: 256 directories keep each one small. */
void key_path(const char *key, char *buf, size_t size)
{
    snprintf(buf, size, "%s/%.2s/%s", st.objdir, key, key);
}

void object_path(const struct object *obj, char *buf, size_t size)
{
    key_path(obj->key, buf, size);
}

/* The key is already a uniform hash: its first 16 hex digits pick the bucket. */
struct object *table_find(const char *key)
{
    return table_get(&st.table, key);
}

static int table_insert(struct object *obj)
{
    if (table_add(&st.table, obj) < 0)
        return -1;
    obj->in_table = true;
    return 0;
}

void prepared_put(struct prepared *p)
{
    if (p && atomic_fetch_sub(&p->refs, 1) == 1)
        p->destroy(p);
}

/* Lock held. An object leaving the table (or giving up its ring slot) answers no more hits. */
static void detach_prepared(struct object *obj)
{
    if (!obj->prepared)
        return;
    st.prepared_ring[obj->prepared_slot] = NULL;
    prepared_put(obj->prepared);
    obj->prepared = NULL;
    obj->prepared_slot = -1;
}

void store_attach_prepared(const struct object_meta *meta, struct prepared *p)
{
    struct object *obj, *old;
    pthread_mutex_lock(&st.lock);
    obj = table_find(meta->key);
    /* the generation tells a re-downloaded object under the same key from the one `meta`
     * describes (`created`, in seconds, could not: two versions within one second) */
    if (obj && obj->state == OBJ_COMPLETE && !obj->prepared && obj->gen == meta->gen) {
        if ((old = st.prepared_ring[st.prepared_next]) != NULL)
            detach_prepared(old);
        st.prepared_ring[st.prepared_next] = obj;
        obj->prepared_slot = st.prepared_next;
        st.prepared_next = (st.prepared_next + 1) % STORE_PREPARED_MAX;
        atomic_fetch_add(&p->refs, 1);
        obj->prepared = p;
    }
    pthread_mutex_unlock(&st.lock);
}

/* Unlink from the table and give back the object's share of the quota. */
void table_remove(struct object *obj)
{
    assert(obj->in_table);
    detach_prepared(obj);
    /* A failed object was on the fetching list: only complete ones are on the LRU list. */
    dlist_remove(obj->state == OBJ_COMPLETE ? &st.lru : &st.fetching, &obj->lru);
    st.uses -= obj->usage;
    dlist_remove(&st.dirty, &obj->dirty);
    table_del(&st.table, obj);
    obj->in_table = false;
    st.usage -= obj->reserved;
    obj->reserved = 0;
}

static struct object *object_new(const char *url, const char *key)
{
    struct object *o = calloc(1, sizeof(*o));
    if (!o || !(o->url = strdup(url))) {
        free(o);
        return NULL;
    }
    static atomic_uint_least64_t generations;
    memcpy(o->key, key, 65);
    o->gen = atomic_fetch_add(&generations, 1) + 1; /* start-up loads from two threads */
    o->fd = -1;
    o->prepared_slot = -1;
    o->length = -1;
    return o;
}

const char *object_error(const struct object *obj)
{
    return obj->error ? obj->error : "download failed";
}

const char *object_url(const struct object *obj)
{
    return obj->url;
}

int object_error_status(const struct object *obj)
{
    pthread_mutex_lock(&st.lock);
    int status = obj->error_status;
    pthread_mutex_unlock(&st.lock);
    return status;
}

void store_progress(struct object *obj, struct download_progress *out)
{
    pthread_mutex_lock(&st.lock);
    *out = (struct download_progress){obj->have, obj->length, obj->headers_ready};
    pthread_mutex_unlock(&st.lock);
}

/* One allocation for the four strings, none when upstream said nothing of them: a million
 * objects load at start. Returns -1 when out of memory. */
int headers_pack(const struct upstream_headers *h, char **out)
{
    const char *parts[4] = {h->content_type, h->content_encoding, h->filename, h->last_modified};
    size_t len[4], total = 0;
    char *p;
    for (int i = 0; i < 4; i++)
        total += (len[i] = parts[i] ? strlen(parts[i]) : 0) + 1;
    *out = NULL;
    if (total == 4)
        return 0;
    if (!(p = *out = malloc(total)))
        return -1;
    for (int i = 0; i < 4; i++) {
        memcpy(p, parts[i] ? parts[i] : "", len[i] + 1);
        p += len[i] + 1;
    }
    return 0;
}

void headers_unpack(const char *packed, struct upstream_headers *h)
{
    const char **parts[4] = {&h->content_type, &h->content_encoding, &h->filename,
                             &h->last_modified};
    for (int i = 0; i < 4; i++) {
        *parts[i] = packed ? packed : "";
        if (packed)
            packed += strlen(packed) + 1;
    }
}

void object_free(struct object *o)
{
    if (o->fd >= 0)
        close(o->fd);
    free(o->error);
    free(o->headers);
    free(o->url);
    free(o);
}

/* Called with the lock held whenever a reference goes away. Complete objects keep no descriptor
 * once nobody streams them: hits open their own. */
void maybe_free(struct object *obj)
{
    if (obj->refs > 0)
        return;
    if (obj->fd >= 0 && obj->state != OBJ_FETCHING) {
        close(obj->fd);
        obj->fd = -1;
    }
    if (!obj->in_table)
        object_free(obj);
}

void wake_all(struct object *obj)
{
    struct waiter *w = obj->waiters;
    obj->waiters = NULL;
    while (w) {
        struct waiter *next = w->next;
        w->queued = false;
        w->next = NULL;
        w->wake(w->arg);
        w = next;
    }
}

static void enqueue_waiter(struct object *obj, struct waiter *w)
{
    w->sleep(w->arg);
    w->queued = true;
    w->next = obj->waiters;
    obj->waiters = w;
}

/* Never `created + ttl`: an index written before TTLs were clamped may hold any ttl. */
static bool expired(const struct object *obj, int64_t now)
{
    return now - obj->created >= obj->ttl;
}

/* --- start-up ----------------------------------------------------------------------------- */

static int make_dirs(const struct config *cfg, char *err, size_t errlen)
{
    char path[1200];
    if (mkdir(cfg->data_dir, 0755) < 0 && errno != EEXIST)
        goto fail_path_cfg;
    snprintf(st.objdir, sizeof(st.objdir), "%s/objects", cfg->data_dir);
    if (mkdir(st.objdir, 0755) < 0 && errno != EEXIST)
        goto fail_objdir;
    for (int i = 0; i < 256; i++) {
        snprintf(path, sizeof(path), "%s/%02x", st.objdir, i);
        if (mkdir(path, 0755) < 0 && errno != EEXIST)
            goto fail_objdir;
    }
    snprintf(path, sizeof(path), "%s/.probe", st.objdir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        goto fail_objdir;
    close(fd);
    unlink(path);
    return 0;
fail_path_cfg:
    snprintf(err, errlen, "data dir %s: %s", cfg->data_dir, strerror(errno));
    return -1;
fail_objdir:
    snprintf(err, errlen, "data dir %s: %s", st.objdir, strerror(errno));
    return -1;
}

struct by_use {
    int64_t last_use;
    struct object *obj;
};

/* Objects as their rows load, before the table is sized for them: one vector per half of the
 * index (index_open loads the halves in two threads). Sorted by last use, they also give the LRU
 * order. */
struct loaded {
    struct by_use *v;
    size_t n, cap;
    bool failed; /* out of memory: start-up stops rather than drop rows (and sweep their files) */
};
static struct loaded loaded[2];

static bool loaded_room(struct loaded *l)
{
    if (!l->failed && l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4096;
        struct by_use *v = realloc(l->v, cap * sizeof(*v));
        l->failed = !v;
        l->v = v ? v : l->v;
        l->cap = v ? cap : l->cap;
    }
    return !l->failed;
}

/* A row is trusted as it is: whether its file is there with the recorded length is checked on
 * the object's first hit (open_hit), so that a big cache starts without a stat() per object. */
static void load_row(const struct index_row *row, int part, void *arg)
{
    struct loaded *l = &loaded[part];
    struct object *o = NULL;
    (void)arg;
    if (!loaded_room(l) || !(o = object_new(row->url, row->key)) ||
        headers_pack(&row->headers, &o->headers) < 0) {
        if (o)
            object_free(o);
        l->failed = true;
        return;
    }
    o->state = OBJ_COMPLETE;
    o->headers_ready = true;
    o->length = o->have = o->reserved = row->length;
    memcpy(o->digest, row->digest, 32);
    o->created = row->created;
    o->ttl = row->ttl;
    o->last_use = row->last_use;
    o->usage = row->usage;
    l->v[l->n++] = (struct by_use){o->last_use, o};
}

static void drop_loaded(void)
{
    for (int part = 0; part < 2; part++) {
        for (size_t i = 0; i < loaded[part].n; i++)
            object_free(loaded[part].v[i].obj);
        free(loaded[part].v);
    }
    memset(loaded, 0, sizeof(loaded));
}

static int by_last_use(const void *a, const void *b)
{
    int64_t x = ((const struct by_use *)a)->last_use, y = ((const struct by_use *)b)->last_use;
    return (x > y) - (x < y);
}

/* Both halves in one new vector, sorted by last use: the halves stay as they are, for the
 * thread inserting them into the table meanwhile. */
static void sort_by_use(struct by_use *v, size_t n)
{
    if (loaded[0].n)
        memcpy(v, loaded[0].v, loaded[0].n * sizeof(*v));
    if (loaded[1].n)
        memcpy(v + loaded[0].n, loaded[1].v, loaded[1].n * sizeof(*v));
    if (n > 1)
        qsort(v, n, sizeof(*v), by_last_use);
}

/* Into the table, which has room for all of them: only the hash chains and counts, st.usage
 * are touched here, never an object's LRU links, so main links those meanwhile. */
static void *insert_loaded(void *arg)
{
    (void)arg;
    for (int part = 0; part < 2; part++) {
        for (size_t i = 0; i < loaded[part].n; i++) {
            struct object *o = loaded[part].v[i].obj;
            table_insert(o); /* cannot fail: the table has room */
            st.usage += o->length;
            st.uses += o->usage;
        }
    }
    return NULL;
}

/* Into the table, sized once for all of them (growing it row by row rehashed a million objects
 * about twenty times over), and onto the LRU list in last-use order. Sorting the (last use,
 * object) pairs keeps qsort off the objects themselves: a cache miss per compare. The inserts
 * (cache misses on every bucket) run in a thread while main sorts and links the LRU list.
 * (Inserting from the two loading threads under the lock was slower: 2 cores, 3 threads.) */
static int adopt_loaded(void)
{
    size_t n = loaded[0].n + loaded[1].n;
    struct by_use *order = malloc((n ? n : 1) * sizeof(*order));
    pthread_t inserter;
    bool threaded;

    if (!order || loaded[0].failed || loaded[1].failed || table_reserve(&st.table, n + 1) < 0) {
        free(order);
        drop_loaded();
        return -1;
    }
    threaded = pthread_create(&inserter, NULL, insert_loaded, NULL) == 0;
    if (!threaded)
        insert_loaded(NULL);
    sort_by_use(order, n);
    for (size_t i = 0; i < n; i++)
        dlist_append(&st.lru, &order[i].obj->lru);
    if (threaded)
        pthread_join(inserter, NULL);
    free(order);
    for (int part = 0; part < 2; part++)
        free(loaded[part].v);
    memset(loaded, 0, sizeof(loaded));
    return 0;
}

static void discard_partial(const char *key, void *arg)
{
    char path[1200];
    (void)arg;
    key_path(key, path, sizeof(path));
    unlink(path);
}

/* Two servers on one data dir would each delete the other's downloads at start: refuse. The
 * lock lives as long as the process (the descriptor is never closed). */
static int lock_data_dir(const struct config *cfg, char *err, size_t errlen)
{
    char path[1200];
    snprintf(path, sizeof(path), "%s/lock", cfg->data_dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) < 0) {
        snprintf(err, errlen, "data dir %s: %s", cfg->data_dir,
                 fd < 0 ? strerror(errno) : "in use by another arca");
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return 0;
}

/* A corrupt index is never trusted: it is kept for inspection under a new name, what was loaded
 * from it is dropped, and the object files it described are swept as orphans. */
static int open_index(const char *path, char *err, size_t errlen)
{
    char aside[1300];
    static const struct index_loader loader = {load_row, discard_partial, NULL};
    int rc = index_open(path, &loader, err, errlen);
    if (rc != INDEX_CORRUPT)
        return rc;
    drop_loaded();
    snprintf(aside, sizeof(aside), "%s.corrupt-%lld", path, (long long)time(NULL));
    log_error("%s; moved aside to %s, starting with an empty cache", err, aside);
    if (rename(path, aside) < 0) {
        snprintf(err, errlen, "index %s is corrupt and cannot be moved aside: %s", path,
                 strerror(errno));
        return -1;
    }
    for (int i = 0; i < 2; i++) {
        char side[1300];
        snprintf(side, sizeof(side), "%s%s", path, i == 0 ? "-wal" : "-shm");
        unlink(side);
    }
    return index_open(path, &loader, err, errlen);
}

/* Files no trusted row points to (a corrupt index, a crash mid-unlink) only take space. They are
 * swept after start, one of the 256 directories per job of the persistence thread, so that a big
 * cache serves at once and downloads wait behind one directory at most. Each name is looked up
 * and unlinked under the lock: a download that starts meanwhile is in the table before its file
 * exists, so it is never touched. */
struct sweep_job {
    struct persist_job job;
    int dir, removed;
};

static void run_sweep(struct persist_job *job)
{
    struct sweep_job *sw = (struct sweep_job *)job;
    char dir[1200], path[1500];
    snprintf(dir, sizeof(dir), "%s/%02x", st.objdir, sw->dir);
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        pthread_mutex_lock(&st.lock);
        /* table_find() hashes the first 16 characters: only 64-character names are keys */
        if (strlen(e->d_name) != 64 || !table_find(e->d_name))
            sw->removed += unlink(path) == 0;
        pthread_mutex_unlock(&st.lock);
    }
    if (d)
        closedir(d);
    if (++sw->dir < 256 && !persist_stopping()) {
        persist_submit(&sw->job); /* the next directory, after what was queued meanwhile */
        return;
    }
    if (sw->removed)
        log_info("store: removed %d object files no index row points to", sw->removed);
    free(sw);
}

int store_start(char *err, size_t errlen)
{
    struct sweep_job *sw = calloc(1, sizeof(*sw));
    if (!sw) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (persist_start(err, errlen) < 0) {
        free(sw);
        return -1;
    }
    sw->job.run = run_sweep;
    persist_submit(&sw->job);
    return 0;
}

int store_open(const struct config *cfg, char *err, size_t errlen)
{
    char path[1200];
    st.quota = cfg->quota;
    st.max_object_size = cfg->max_object_size;
    if (make_dirs(cfg, err, errlen) < 0 || lock_data_dir(cfg, err, errlen) < 0 ||
        table_reserve(&st.table, 0) < 0)
        return -1;
    snprintf(path, sizeof(path), "%s/index.sqlite", cfg->data_dir);
    if (open_index(path, err, errlen) < 0) {
        drop_loaded();
        return -1;
    }
    load_failures();
    if (adopt_loaded() < 0) {
        snprintf(err, errlen, "index %s: out of memory loading its rows", path);
        return -1;
    }
    log_info("store: %zu objects, %lld bytes in %s", st.table.count, (long long)st.usage,
             cfg->data_dir);
    return 0;
}

void store_close(void)
{
    persist_stop(); /* what it was handed is done first; the index is main's again */
    pthread_mutex_lock(&st.lock);
    for (size_t i = 0; i < table_slots(&st.table); i++) {
        for (struct object *o = table_slot(&st.table, i), *next; o; o = next) {
            next = o->next;
            o->in_table = false;
            detach_prepared(o);
            if (o->refs == 0) /* otherwise its last reader frees it */
                object_free(o);
        }
    }
    table_free(&st.table);
    st.expire_cursor = 0;
    st.lru = st.dirty = st.fetching = (struct dlist){0};
    st.uses = 0;
    free_failures();
    pthread_mutex_unlock(&st.lock);
    index_close();
}

/* --- client side -------------------------------------------------------------------------- */

static void note_use(struct object *obj, int64_t ttl, int64_t now)
{
    if (ttl > 0 && ttl < obj->ttl)
        obj->ttl = ttl;
    obj->usage++;
    st.uses++;
    obj->last_use = now;
    dlist_append(&st.dirty, &obj->dirty);
    if (obj->state == OBJ_COMPLETE)
        dlist_append(&st.lru, &obj->lru);
}

/* Truncating copy; on every hit, where snprintf's formatting showed in the profile. */
void copy_string(char *dst, size_t size, const char *src)
{
    size_t n = src ? strnlen(src, size - 1) : 0;
    memcpy(dst, src ? src : "", n);
    dst[n] = '\0';
}

/* The object may be freed once the lock drops: the copy must not point into it. */
static void copy_meta(const struct object *obj, struct object_meta *meta)
{
    memcpy(meta->key, obj->key, sizeof(meta->key));
    meta->state = obj->state;
    meta->headers_ready = obj->headers_ready;
    meta->hit = obj->hit;
    meta->length = obj->length;
    meta->created = obj->created;
    meta->gen = obj->gen;
    struct upstream_headers h;
    headers_unpack(obj->headers, &h);
    copy_string(meta->content_type, sizeof(meta->content_type), h.content_type);
    copy_string(meta->content_encoding, sizeof(meta->content_encoding), h.content_encoding);
    copy_string(meta->filename, sizeof(meta->filename), h.filename);
    copy_string(meta->last_modified, sizeof(meta->last_modified), h.last_modified);
    memcpy(meta->digest, obj->digest, sizeof(meta->digest));
    meta->error_status = obj->error_status;
    copy_string(meta->error, sizeof(meta->error), obj->error);
}

/* Lock not held; `obj` pinned (a reference: eviction and expiry pass it by). Open the hit's
 * file. Returns 0; -1 when the file is gone or has another length (the object is dropped and
 * fetched again); -2 when it cannot be opened for now (EMFILE, ENOMEM: a good object is not
 * thrown away for that), with the reason in meta->error. `verified` and `length` are read
 * unlocked: a complete object's length never changes, and `verified` only says whether to stat. */
static int open_hit_file(struct object *obj, bool verified, int *fd, struct object_meta *meta)
{
    char path[1200];
    struct stat sb;
    object_path(obj, path, sizeof(path));
    *fd = open(path, O_RDONLY | O_CLOEXEC);
    if (*fd < 0 && errno != ENOENT) {
        snprintf(meta->error, sizeof(meta->error), "cannot open the cached object: %s",
                 strerror(errno));
        return -2;
    }
    if (*fd < 0)
        return -1;
    if (!verified && (fstat(*fd, &sb) < 0 || sb.st_size != obj->length)) {
        log_error("store: %s: file missing or wrong length, fetching it again", obj->url);
        close(*fd);
        *fd = -1;
        return -1;
    }
    return 0;
}

/* Lock held; a complete, unexpired object. A hit: its prepared answer, or its file, opened with
 * the lock dropped (open() and the first hit's fstat() held up every other hit before). The
 * object is pinned meanwhile; if it left the table all the same (purged, or a lookup found it
 * expired), a new download may be replacing its file, so the descriptor is not trusted:
 * LOOKUP_RETRY. Otherwise LOOKUP_HIT, LOOKUP_UNAVAILABLE, or LOOKUP_MISS after dropping an
 * object whose file is gone. */
#define LOOKUP_RETRY (-1)
static int take_hit(struct object *obj, int *fd, struct prepared **prep, struct object_meta *meta)
{
    if (prep && obj->prepared) {
        atomic_fetch_add(&obj->prepared->refs, 1);
        *prep = obj->prepared;
        copy_meta(obj, meta);
        return LOOKUP_HIT;
    }
    bool verified = obj->verified;
    obj->refs++;
    pthread_mutex_unlock(&st.lock);
    int opened = open_hit_file(obj, verified, fd, meta);
    pthread_mutex_lock(&st.lock);
    obj->refs--;
    bool gone = !obj->in_table;
    maybe_free(obj); /* frees it when gone; else closes a descriptor the last reader left */
    if (gone) {
        if (*fd >= 0)
            close(*fd);
        *fd = -1;
        return LOOKUP_RETRY;
    }
    if (opened == -2)
        return LOOKUP_UNAVAILABLE;
    if (opened == -1) {
        /* Out of the table; its file and row go when the new download replaces them. */
        table_remove(obj);
        maybe_free(obj);
        return LOOKUP_MISS;
    }
    obj->verified = true;
    copy_meta(obj, meta);
    obj->hit = true;
    return LOOKUP_HIT;
}

/* Lock held. A new FETCHING object in the table, or NULL when out of memory. */
static struct object *create_fetching(const char *url, const char *key, int64_t ttl, int64_t now)
{
    struct object *obj = object_new(url, key);
    if (!obj)
        return NULL;
    if (table_insert(obj) < 0) {
        object_free(obj);
        return NULL;
    }
    obj->created = obj->last_use = now;
    obj->ttl = ttl;
    obj->usage = 1;
    st.uses++;
    dlist_append(&st.fetching, &obj->lru);
    obj->refs = 2; /* the caller and the fetch */
    return obj;
}

/* Lock held. The object for `key` after a lookup's use of it: a hit (*fd or *prep set), a
 * download to join, or a new one. */
static int lookup_locked(const char *url, const char *key, int64_t ttl, int64_t now,
                         struct object **out, int *fd, struct prepared **prep,
                         struct object_meta *meta)
{
    struct object *obj = table_find(key);
    int res = LOOKUP_MISS;
    *out = NULL;
    if (obj)
        note_use(obj, ttl, now);
    if (obj && obj->state == OBJ_COMPLETE && expired(obj, now)) {
        /* Out of the table; its file and row go when the new download replaces them. */
        table_remove(obj);
        maybe_free(obj);
        obj = NULL;
    } else if (obj && obj->state == OBJ_COMPLETE) {
        res = take_hit(obj, fd, prep, meta);
        if (res != LOOKUP_MISS)
            return res;
        obj = NULL;
    }
    if (obj) {
        obj->refs++;
        *out = obj;
        return LOOKUP_COALESCED;
    }
    *out = create_fetching(url, key, ttl, now);
    return LOOKUP_MISS;
}

enum lookup_result store_lookup(const char *url, int64_t ttl, struct object **out, int *fd,
                                struct prepared **prep, struct object_meta *meta)
{
    char key[65];
    int64_t now = now_s();
    int res;

    *fd = -1;
    if (prep)
        *prep = NULL;
    url_key(url, key);
    pthread_mutex_lock(&st.lock);
    while ((res = lookup_locked(url, key, ttl, now, out, fd, prep, meta)) == LOOKUP_RETRY)
        ; /* the object left the table while its file was opened: look again */
    pthread_mutex_unlock(&st.lock);
    return (enum lookup_result)res;
}

int store_purge(const char *url, int64_t *length)
{
    char key[65];
    struct object *obj;
    int rc = 0;

    url_key(url, key);
    pthread_mutex_lock(&st.lock);
    obj = table_find(key);
    if (obj && obj->state != OBJ_COMPLETE) {
        rc = -1;
    } else if (obj) {
        *length = obj->length;
        table_remove(obj);
        submit_remove(key, NULL); /* clients streaming it finish from their open file */
        maybe_free(obj);
        rc = 1;
    }
    pthread_mutex_unlock(&st.lock);
    return rc;
}

void store_release(struct object *obj)
{
    pthread_mutex_lock(&st.lock);
    obj->refs--;
    maybe_free(obj);
    pthread_mutex_unlock(&st.lock);
}

void store_unwait(struct object *obj, struct waiter *w)
{
    pthread_mutex_lock(&st.lock);
    if (w->queued) {
        struct waiter **p = &obj->waiters;
        while (*p && *p != w)
            p = &(*p)->next;
        if (*p)
            *p = w->next;
        w->queued = false;
    }
    pthread_mutex_unlock(&st.lock);
}

bool store_wait(struct object *obj, bool complete, struct waiter *w)
{
    bool ready;
    pthread_mutex_lock(&st.lock);
    ready = (obj->headers_ready && !complete) || obj->state != OBJ_FETCHING;
    if (!ready)
        enqueue_waiter(obj, w);
    else if (obj->state == OBJ_FETCHING)
        obj->committed = true; /* the caller now answers with this length and type */
    pthread_mutex_unlock(&st.lock);
    return ready;
}

/* Lock held. Where this reader's bytes stop for now: the last byte written is held back while
 * FETCHING, and a reader with a digest to check also waits for completion before its own last
 * byte. */
static int64_t readable_end(const struct object *obj, const struct read_terms *terms)
{
    int64_t end = obj->state == OBJ_COMPLETE ? obj->have : obj->have - 1;
    if (terms->expect && obj->state != OBJ_COMPLETE && terms->end >= 0 && end > terms->end - 1)
        end = terms->end - 1;
    return end;
}

ssize_t store_read(struct object *obj, int64_t off, char *buf, size_t max,
                   const struct read_terms *terms, struct waiter *w)
{
    int64_t readable;
    ssize_t n = 0;
    bool copy = false;

    pthread_mutex_lock(&st.lock);
    if (obj->state == OBJ_FAILED) {
        n = STORE_READ_FAILED;
    } else if (terms->expect && obj->state == OBJ_COMPLETE &&
               memcmp(obj->digest, terms->expect, 32) != 0) {
        n = STORE_READ_MISMATCH;
    } else if (off >= (readable = readable_end(obj, terms)) || max == 0) {
        if (obj->state == OBJ_COMPLETE) {
            n = STORE_READ_END;
        } else {
            enqueue_waiter(obj, w);
        }
    } else {
        assert(readable <= obj->have && off >= 0);
        if ((int64_t)max > readable - off)
            max = (size_t)(readable - off);
        /* Set before the lock drops: from now on a restart from zero would corrupt this reader. */
        obj->delivered = true;
        copy = true;
    }
    pthread_mutex_unlock(&st.lock);
    if (!copy)
        return n;
    /* Bytes below `have` never change, and our reference keeps obj->fd open. */
    n = pread(obj->fd, buf, max, off);
    return n > 0 ? n : STORE_READ_FAILED;
}

void store_snapshot(struct object *obj, struct object_meta *out)
{
    pthread_mutex_lock(&st.lock);
    copy_meta(obj, out);
    pthread_mutex_unlock(&st.lock);
}
