/* The store's start and end: the data dir locked, the index loaded into the table (main), the
 * index handed to the persistence thread with the orphan sweep as its first work, and at the
 * end everything handed over written and the table freed. */
#include "persist/index.h"
#include "log/log.h"
#include "store/object.h"
#include "store/store_room.h"
#include "persist/persist.h"
#include "store/store_list.h"
#include "store/store_load.h"
#include "store/store_negative.h"
#include "store/store_resume.h"
#include "store/store_twins.h"
#include "store/spellings.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
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
    if (st.objdir_fd >= 0) /* a store_open that failed after it: no store_close came */
        close(st.objdir_fd);
    if ((st.objdir_fd = open(st.objdir, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
        goto fail_objdir;
    return 0;
fail_path_cfg:
    snprintf(err, errlen, "data dir %s: %s", cfg->data_dir, strerror(errno));
    return -1;
fail_objdir:
    snprintf(err, errlen, "data dir %s: %s", st.objdir, strerror(errno));
    return -1;
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
    static const struct index_loader loader = {resume_partial, discard_partial, NULL};
    int rc = index_open(path, &loader, err, errlen);
    if (rc != INDEX_CORRUPT)
        return rc;
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

int store_start(char *err, size_t errlen)
{
    if (persist_start(err, errlen) < 0)
        return -1;
    store_load_start();
    return 0;
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
    st.hooks = (struct object_hooks){twins_join, twins_leave, store_failed, store_load_touched,
                                     store_load_missing};
    if (make_dirs(cfg, err, errlen) < 0 || lock_data_dir(cfg, err, errlen) < 0 ||
        objects_reserve(0) < 0)
        return -1;
    snprintf(path, sizeof(path), "%s/index.sqlite", cfg->data_dir);
    if (open_index(path, err, errlen) < 0) {
        drop_resumed();
        return -1;
    }
    load_failures();
    adopt_resumed();
    st.loading = index_has_rows(); /* the table is sized once they are read (store_load.c) */
    return 0;
}

void store_close(void)
{
    store_load_stop(); /* its objects not in the table yet are its own to free */
    purges_stop();     /* a purge's walk and jobs are the table's and the queue's: none runs on */
    persist_stop();    /* what it was handed is done first; the index is main's again */
    store_lock();
    store_load_leave_image(); /* the rows the table holds, for the next start (index_close) */
    object_aside_release();
    ring_free(&st.dirty); /* the objects it names are freed below */
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
    spellings_free(); /* its entries' objects went above */
    st.expire_cursor = 0;
    st.lru = st.pinned = st.fetching = (struct dlist){0};
    st.usage = st.uses = st.pinned_objects = st.pinned_bytes = 0;
    free_failures();
    negative_free();
    table_free(&st.digests);
    if (st.objdir_fd >= 0)
        close(st.objdir_fd);
    st.objdir_fd = -1;
    store_unlock();
    store_forget_upstream();
    index_close();
}
