/* Units for downloads taken up after a restart (store_resume.c), driven as arca drives them:
 * downloads set aside by a stop, the store opened again, the survivors handed to the upstream
 * thread. This suite is linked with -Wl,--wrap=calloc,--wrap=free (see meson.build): arca's own
 * calls go through the wrappers below, which fail an allocation on demand and scribble on
 * memory as it is freed, so that a read after free shows without a sanitizer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <malloc.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "log/log.h"
#include "persist/persist.h"
#include "store/object.h"
#include "store/store.h"
#include "unit_tmp.h"

#include <openssl/sha.h>
#include <unistd.h>

/* The table starts with 1024 buckets (table.c) and doubles when a 1025th object comes in. */
#define START_BUCKETS 1024

void *__real_calloc(size_t n, size_t size);
void __real_free(void *p);

void __wrap_free(void *p)
{
    if (p)
        memset(p, 0xa5, malloc_usable_size(p));
    __real_free(p);
}

/* calloc(n, size) with this n * size fails once, then calloc works again. */
static atomic_size_t fail_bytes;

void *__wrap_calloc(size_t n, size_t size)
{
    size_t want = atomic_load(&fail_bytes);
    if (want && n * size == want && atomic_compare_exchange_strong(&fail_bytes, &want, 0))
        return NULL;
    return __real_calloc(n, size);
}

static char dir[UNIT_TMP_MAX] = "/tmp/arca-unit-resume-XXXXXX";
static struct config cfg;

/* The store runs in a data dir under `dir`; "restarting" moves to a copy of it, since the data
 * dir's lock is held for the life of the process (store_open.c). */
static void use_data_dir(const char *name)
{
    snprintf(cfg.data_dir, sizeof(cfg.data_dir), "%s/%s", dir, name);
}

static void restart_in(const char *name)
{
    char cmd[2200];
    snprintf(cmd, sizeof(cmd), "cp -a %s %s/%s", cfg.data_dir, dir, name);
    assert_int_equal(system(cmd), 0);
    use_data_dir(name);
}

static int make_dir(void **state)
{
    (void)state;
    if (!mkdtemp(dir))
        return -1;
    config_defaults(&cfg);
    log_set_level(LOG_ERROR); /* a line per download taken up otherwise */
    return 0;
}

static int remove_dir(void **state)
{
    char cmd[128];
    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd);
}

static void open_store(void)
{
    char err[256];
    assert_int_equal(store_open(&cfg, err, sizeof(err)), 0);
    assert_int_equal(store_start(err, sizeof(err)), 0);
}

static void file_ready(void *arg)
{
    (void)arg;
}

/* A download of `url` begun (a miss), its partial file asked for: made at the next flush. */
static struct object *download_begun(const char *url)
{
    struct object *obj;
    struct object_meta meta;
    int fd;
    assert_int_equal(store_lookup(url, 3600, &obj, &fd, NULL, &meta), LOOKUP_MISS);
    assert_int_equal(store_begin_file(obj, url, file_ready, NULL), 0);
    return obj;
}

/* A download whose file is made: 4 bytes of 10, then set aside by a stop as arca does, its row
 * saying how much of its partial file is synced, for the next start to continue it. */
static void set_aside_now(struct object *obj)
{
    struct upstream_headers h = {"application/octet-stream",      "", "",
                                 "Tue, 01 Sep 2026 10:00:00 GMT", "", ""};
    assert_int_equal(store_begin_body(obj, 10, &h, true), 0);
    assert_int_equal(store_append(obj, "0123", 4), 0);
    store_set_aside(obj, "arca is shutting down");
    store_release(obj); /* the lookup's */
    store_release(obj); /* the fetch's */
}

/* `n` downloads set aside (set_aside_now). */
static void set_aside_downloads(int n)
{
    struct object **objs = calloc((size_t)n, sizeof(*objs));
    char url[64];
    assert_non_null(objs);
    for (int i = 0; i < n; i++) {
        snprintf(url, sizeof(url), "http://h/%d", i);
        objs[i] = download_begun(url);
    }
    persist_flush();
    for (int i = 0; i < n; i++)
        set_aside_now(objs[i]);
    persist_flush();
    free(objs);
}

struct taken {
    int n;
    bool urls_match;
};

static void take(struct object *obj, const char *source, void *arg)
{
    struct taken *t = arg;
    t->n++;
    t->urls_match &= strcmp(source, object_url(obj)) == 0;
    store_release(obj); /* the upstream thread's, in arca */
}

static int partial_files(void)
{
    char cmd[1200];
    int n = -1;
    snprintf(cmd, sizeof(cmd), "find %s/objects -name '*.part' | wc -l", cfg.data_dir);
    FILE *p = popen(cmd, "r");
    if (p && fscanf(p, "%d", &n) != 1)
        n = -1;
    if (p)
        pclose(p);
    return n;
}

/* Issue 22, item 10: a download that could not go back into the table (out of memory while the
 * table grows) was freed but stayed among those handed to the upstream thread, which then read
 * it (and, its memory scribbled on, took it for one to hand over). */
static void a_download_dropped_for_want_of_memory_is_not_handed_over(void **state)
{
    struct taken t = {0, true};
    struct store_totals totals;
    (void)state;
    use_data_dir("before");
    open_store();
    /* The start-up sweep takes one directory per job, 256 in all; each flush lets at least one
     * go. Files it finds of downloads already set aside would be orphans to it. */
    for (int i = 0; i <= 256; i++)
        persist_flush();
    set_aside_downloads(START_BUCKETS + 1);
    store_close();
    restart_in("after");
    assert_int_equal(partial_files(), START_BUCKETS + 1);

    atomic_store(&fail_bytes, 2 * START_BUCKETS * sizeof(void *)); /* the table's growth */
    open_store();
    assert_int_equal(atomic_load(&fail_bytes), 0); /* the failure did happen */
    store_take_resumed(take, &t);
    assert_int_equal(t.n, START_BUCKETS);
    assert_true(t.urls_match);
    store_totals(&totals);
    assert_int_equal(totals.scheduled + totals.downloading, START_BUCKETS);
    persist_flush();
    assert_int_equal(partial_files(), START_BUCKETS); /* the dropped one's file went */
    store_close();
}

/* `n` complete objects of "http://h/p/I", made as the upstream thread makes them, all at once
 * (each a sync). */
static void complete_many(int n)
{
    struct object **objs = calloc((size_t)n, sizeof(*objs));
    struct upstream_headers h = {"text/plain", "", "", "", "", ""};
    uint8_t digest[32];
    char url[64];
    assert_non_null(objs);
    SHA256((const unsigned char *)"body", 4, digest);
    for (int i = 0; i < n; i++) {
        snprintf(url, sizeof(url), "http://h/p/%d", i);
        objs[i] = download_begun(url);
    }
    persist_flush();
    for (int i = 0; i < n; i++) {
        assert_int_equal(store_begin_body(objs[i], 4, &h, true), 0);
        assert_int_equal(store_append(objs[i], "body", 4), 0);
        assert_int_equal(store_finish(objs[i], digest), 0);
    }
    persist_flush();
    for (int i = 0; i < n; i++) {
        store_release(objs[i]);
        store_release(objs[i]);
    }
    free(objs);
}

/* A purge's files go after its answer, a few at a time. A download of one of its URLs begun
 * since, then set aside by a stop, has left the table with its partial file kept for the next
 * start: the purge's unlinks, which skip only the keys in the table, took that file (and the
 * next start began the download again from nothing). Once a download is set aside they stop;
 * the next start's sweep takes the files left, none of which a row names. */
static void a_download_set_aside_keeps_its_file_through_a_purge(void **state)
{
    enum { N = 1000 }; /* 4 runs of the purge's unlinks */
    char url[64], last[64] = "", key[65], best[65] = "", part[1200];
    struct object *obj;
    struct purge_result r = {0};
    (void)state;
    use_data_dir("purged");
    open_store();
    for (int i = 0; i <= 256; i++) /* the start-up sweep (above) */
        persist_flush();
    complete_many(N);
    for (int i = 0; i < N; i++) {
        snprintf(url, sizeof(url), "http://h/p/%d", i);
        url_key(url, key);
        if (strcmp(key, best) > 0) { /* the last the purge's unlinks reach: its keys in order */
            memcpy(best, key, sizeof(best));
            memcpy(last, url, sizeof(last));
        }
    }
    store_purge_hold_us = 60 * 1000 * 1000; /* one slice, one job: its files in key order */
    store_purge_prefix("http://h/p/", false, &r);
    store_purge_hold_us = 1000;
    assert_int_equal(r.objects, N);
    /* asked again at once: a download of its own, its partial file made, then set aside */
    obj = download_begun(last);
    persist_flush();
    set_aside_now(obj);
    while (store_purge_ahead() > 0) /* the purge's unlinks left, as far as they go */
        persist_flush();
    snprintf(part, sizeof(part), "%s/objects/%.2s/%s.part", cfg.data_dir, best, best);
    assert_int_equal(access(part, F_OK), 0);
    store_close();
    assert_int_equal(access(part, F_OK), 0);
}

/* The start's sweep of files no row names goes a directory at a time while arca serves: a
 * download set aside by a stop meanwhile has left the table with its partial file kept for the
 * next start, and the sweep, which keeps the files of the keys in the table, took it. Once a
 * download is set aside it keeps every file (the next start sweeps again). */
static void a_download_set_aside_keeps_its_file_through_the_sweep(void **state)
{
    char url[64], key[65], part[1200];
    struct object *obj;
    (void)state;
    for (int i = 0;; i++) { /* its key in objects/ff/, the last directory the sweep reaches */
        snprintf(url, sizeof(url), "http://h/swept/%d", i);
        url_key(url, key);
        if (!strncmp(key, "ff", 2))
            break;
    }
    use_data_dir("swept");
    open_store(); /* its sweep under way from here */
    obj = download_begun(url);
    persist_flush();
    set_aside_now(obj);
    for (int i = 0; i <= 256; i++) /* the sweep's directories left */
        persist_flush();
    snprintf(part, sizeof(part), "%s/objects/ff/%s.part", cfg.data_dir, key);
    assert_int_equal(access(part, F_OK), 0);
    store_close();
    assert_int_equal(access(part, F_OK), 0);
}

int main(void)
{
    unit_tmp(dir, sizeof(dir));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_download_dropped_for_want_of_memory_is_not_handed_over),
        cmocka_unit_test(a_download_set_aside_keeps_its_file_through_a_purge),
        cmocka_unit_test(a_download_set_aside_keeps_its_file_through_the_sweep),
    };
    return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
