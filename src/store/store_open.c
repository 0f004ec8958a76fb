/* The store's start and end: the data dir locked, the index loaded into the table (main), the
 * index handed to the persistence thread with the orphan sweep as its first work, and at the
 * end everything handed over written and the table freed. */
#include "persist/index.h"
#include "log/log.h"
#include "store/object.h"
#include "store/store_room.h"
#include "persist/persist.h"
#include "store/store_list.h"
#include "store/store_negative.h"
#include "store/store_resume.h"
#include "store/store_twins.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* In the data dir: held with flock() while an arca serves it (store_open). */
#define LOCK_FILE "lock"

static int make_dirs(const struct config *cfg, char *err, size_t errlen)
{
    char path[1200];
    /* closed to other users: the index keeps each URL fetched, signatures included */
    if (mkdir(cfg->data_dir, 0750) < 0 && errno != EEXIST)
        goto fail_path_cfg;
    snprintf(st.objdir, sizeof(st.objdir), "%s/objects", cfg->data_dir);
    /* its 256 directories are made as files need them (store_write.c) */
    if (mkdir(st.objdir, 0755) < 0 && errno != EEXIST)
        goto fail_objdir;
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
 * the object's first hit (lookup.c's open_hit_file), so that a big cache starts without a
 * stat() per object. */
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
    o->headers_ready = true;
    o->length = o->have = o->reserved = row->length;
    object_set_staleness(o, row->stale_if_error, row->stale_while_revalidate);
    memcpy(o->digest, row->digest, 32);
    o->created = row->created;
    o->ttl = row->ttl;
    o->last_use = row->last_use;
    o->usage = row->usage;
    o->signed_key = row->signed_key;
    object_take_row_keep(o, row);
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

/* Into the table, which has room for all of them: only the hash chains and counts, st.usage,
 * st.uses and the pinned totals are touched here (object_enter: NEW -> COMPLETE), never an
 * object's LRU links, so main links those meanwhile. */
static void *insert_loaded(void *arg)
{
    (void)arg;
    for (int part = 0; part < 2; part++) {
        for (size_t i = 0; i < loaded[part].n; i++) {
            object_enter(loaded[part].v[i].obj, OBJ_COMPLETE); /* cannot fail: the table has room */
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

    if (!order || loaded[0].failed || loaded[1].failed || objects_reserve(n + 1) < 0) {
        free(order);
        drop_loaded();
        return -1;
    }
    threaded = pthread_create(&inserter, NULL, insert_loaded, NULL) == 0;
    if (!threaded)
        insert_loaded(NULL);
    sort_by_use(order, n);
    for (size_t i = 0; i < n; i++)
        dlist_append(object_lru(order[i].obj), &order[i].obj->lru);
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
    part_path(key, path, sizeof(path));
    unlink(path);
}

bool store_dir_in_use(const char *data_dir)
{
    char path[1200];
    int fd;
    bool held;
    snprintf(path, sizeof(path), "%s/%s", data_dir, LOCK_FILE);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return false; /* no lock file: no arca has opened it yet */
    held = flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK;
    close(fd);
    return held;
}

/* Two servers on one data dir would each delete the other's downloads at start: refuse. The
 * lock lives as long as the process (the descriptor is never closed). */
static int lock_data_dir(const struct config *cfg, char *err, size_t errlen)
{
    char path[1200];
    snprintf(path, sizeof(path), "%s/%s", cfg->data_dir, LOCK_FILE);
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
    static const struct index_loader loader = {load_row, resume_partial, discard_partial, NULL};
    int rc = index_open(path, &loader, err, errlen);
    if (rc != INDEX_CORRUPT)
        return rc;
    drop_loaded();
    drop_resumed();
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

/* Lock held. A file an object in the table owns: KEY (a complete version, or the one a download
 * revalidates) or KEY.part (a download's). object_find() hashes the first 16 characters: only
 * 64-character keys are looked up. */
static bool file_wanted(const char *name)
{
    assert(store_locked());
    size_t len = strlen(name);
    char key[65];
    const struct object *obj;
    if (len == 64)
        return object_find(name) != NULL;
    if (len != 64 + strlen(".part") || strcmp(name + 64, ".part") != 0)
        return false;
    memcpy(key, name, 64);
    key[64] = '\0';
    return (obj = object_find(key)) != NULL && obj->state == OBJ_FETCHING;
}

static void run_sweep(struct persist_job *job)
{
    assert(persist_owns_index());
    struct sweep_job *sw = (struct sweep_job *)job;
    char dir[1200], path[1500];
    snprintf(dir, sizeof(dir), "%s/%02x", st.objdir, sw->dir);
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        store_lock();
        if (!file_wanted(e->d_name))
            sw->removed += unlink(path) == 0;
        store_unlock();
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

/* The digest index over what was loaded; objects with the same digest share one file (a crash
 * may have left two: linked now) and count once. */
static void join_loaded_twins(void)
{
    store_lock(); /* main alone: for the lock-held claims of store_twins.c */
    digests_reserve(st.objects.count * 2);
    for (struct dnode *d = st.lru.head; d; d = d->next)
        twins_join(DLIST_ENTRY(d, struct object, lru));
    for (struct dnode *d = st.pinned.head; d; d = d->next)
        twins_join(DLIST_ENTRY(d, struct object, lru));
    store_unlock();
}

int store_open(const struct config *cfg, char *err, size_t errlen)
{
    char path[1200];
    st.quota = cfg->quota;
    st.max_object_size = cfg->max_object_size;
    st.keep_expired = cfg->keep_expired;
    store_set_stale(cfg->stale_if_error, cfg->stale_while_revalidate);
    purges_allow();
    /* what a move does beyond object.c: twins, the failures listing, negative answers */
    st.hooks = (struct object_hooks){twins_join, twins_leave, store_failed};
    if (make_dirs(cfg, err, errlen) < 0 || lock_data_dir(cfg, err, errlen) < 0 ||
        objects_reserve(0) < 0)
        return -1;
    snprintf(path, sizeof(path), "%s/index.sqlite", cfg->data_dir);
    if (open_index(path, err, errlen) < 0) {
        drop_loaded();
        drop_resumed();
        return -1;
    }
    load_failures();
    if (adopt_loaded() < 0) {
        drop_resumed();
        snprintf(err, errlen, "index %s: out of memory loading its rows", path);
        return -1;
    }
    adopt_resumed();
    join_loaded_twins();
    log_info("store: %zu object%s, %lld bytes in %s", st.objects.count,
             st.objects.count == 1 ? "" : "s", (long long)st.usage, cfg->data_dir);
    return 0;
}

void store_close(void)
{
    purges_stop();  /* a purge's walk and jobs are the table's and the queue's: none runs on */
    persist_stop(); /* what it was handed is done first; the index is main's again */
    store_lock();
    for (size_t i = 0; i < object_slots(); i++) {
        for (struct object *o = object_slot(i), *next; o; o = next) {
            next = object_next(o);
            object_forget(o);
            detach_prepared(o);
            if (o->refs == 0) /* otherwise its last reader frees it */
                object_free(o);
        }
    }
    objects_free();
    st.expire_cursor = 0;
    st.lru = st.pinned = st.dirty = st.fetching = (struct dlist){0};
    st.usage = st.uses = st.pinned_objects = st.pinned_bytes = 0;
    free_failures();
    negative_free();
    free(st.digests);
    st.digests = NULL;
    st.n_digests = st.digest_count = 0;
    store_unlock();
    store_forget_upstream();
    index_close();
}
