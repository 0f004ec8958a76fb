/* Units for what a request's terms (store.h's struct object_keep) make of an object in the
 * store: a pin keeps it through evictions while unpinned objects can go, and survives a restart
 * in the index until a later lookup unpins it; store = no streams a download to the readers that
 * joined it and keeps nothing; the object's own maximum size and stale windows are the ones the
 * writes and the expiry read. The test thread plays the upstream thread and the clients; the
 * store is a real one, in a temporary data dir.
 *
 * Linked with -Wl,--wrap=fsync (meson.build): the objects' syncs are not the subject here, and
 * real ones cost milliseconds each. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/sha.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "config/config.h"
#include "persist/persist.h"
#include "store/object.h"
#include "store/store.h"
#include "store/store_negative.h"
#include "store_fixture.h"
#include "unit_tmp.h"

/* A digest's client that may fetch every URL. */
static bool any_url(const char *url, const void *arg)
{
    (void)url;
    (void)arg;
    return true;
}

static char dir[UNIT_TMP_MAX] = "/tmp/arca-unit-terms-XXXXXX";

int __wrap_fsync(int fd);
int __wrap_fsync(int fd)
{
    (void)fd;
    return 0;
}

/* The usage journal's before a complete row (usage_log_sync), as fsync: not to the disk here. */
int __wrap_fdatasync(int fd);
int __wrap_fdatasync(int fd)
{
    (void)fd;
    return 0;
}

/* A lookup made at the moment the store unlinks a refresh's partial file (armed with a URL and
 * its terms, once): another client's request landing between the two holds of the lock a
 * renewal takes. Its object, joined, is kept here for the test to read and release. */
static struct {
    const char *url;
    struct object_keep terms;
    struct object *joined;
} at_unlink;

int __real_unlink(const char *path);
int __wrap_unlink(const char *path);
int __wrap_unlink(const char *path)
{
    char key[65];
    if (at_unlink.url) {
        url_key(at_unlink.url, key);
        size_t n = strlen(path);
        if (n > 5 && !strcmp(path + n - 5, ".part") && strstr(path, key)) {
            struct object_meta meta;
            int fd;
            const char *url = at_unlink.url;
            at_unlink.url = NULL;
            assert_int_equal(store_lookup_as(url, &at_unlink.terms, AUTH_CONFIRMED, false,
                                             &at_unlink.joined, &fd, NULL, &meta),
                             LOOKUP_COALESCED);
        }
    }
    return __real_unlink(path);
}

static int open_store(void **state)
{
    (void)state;
    return fixture_store_open(dir, NULL);
}

static int close_store(void **state)
{
    (void)state;
    return fixture_store_close(dir);
}

static void file_ready(void *arg)
{
    (void)arg;
}

/* The terms the tests start from: an hour's ttl, the store's windows, no size limit, stored. */
static struct object_keep terms(void)
{
    return (struct object_keep){.ttl = 3600,
                                .stale_if_error = -1,
                                .stale_while_revalidate = -1,
                                .max_object_size = INT64_MAX,
                                .store = true};
}

/* A miss under `t`, its file made and its headers in, as the upstream thread makes them. */
static struct object *downloading(const char *url, const struct object_keep *t, int64_t length)
{
    struct object *obj;
    struct object_meta meta;
    int fd;
    struct upstream_headers h = {"text/plain", "", "", "", "", ""};
    assert_int_equal(store_lookup_as(url, t, AUTH_CONFIRMED, false, &obj, &fd, NULL, &meta),
                     LOOKUP_MISS);
    assert_int_equal(store_begin_file(obj, "http://h/", file_ready, NULL), 0);
    persist_flush();
    assert_int_equal(store_file_ready(obj), 1);
    if (store_begin_body(obj, length, &h, true) != 0)
        fail_msg("%s: %s", url, object_error(obj));
    return obj;
}

static void finish(struct object *obj, const char *body)
{
    uint8_t digest[32];
    assert_int_equal(store_append(obj, body, strlen(body)), 0);
    store_announce(obj);
    SHA256((const unsigned char *)body, strlen(body), digest);
    assert_int_equal(store_finish(obj, digest), 0);
    persist_flush();
}

/* The fetch's reference and the caller's. */
static void release_both(struct object *obj)
{
    store_release(obj);
    store_release(obj);
}

static void complete_as(const char *url, const struct object_keep *t, const char *body)
{
    struct object *obj = downloading(url, t, (int64_t)strlen(body));
    finish(obj, body);
    release_both(obj);
}

/* A lookup under `t` that takes nothing: a hit's file closed, a miss failed at once. */
static enum lookup_result look_as(const char *url, const struct object_keep *t)
{
    struct object *obj;
    struct object_meta meta;
    int fd = -1;
    enum lookup_result r = store_lookup_as(url, t, AUTH_CONFIRMED, false, &obj, &fd, NULL, &meta);
    if (r == LOOKUP_HIT && fd >= 0)
        close(fd);
    if (r == LOOKUP_MISS) {
        store_fail(obj, 503, "only looking");
        release_both(obj);
    } else if (r == LOOKUP_COALESCED) {
        store_release(obj);
    }
    return r;
}

static enum outcome_state outcome_of(const char *url)
{
    struct outcome out;
    store_outcome(url, &out);
    return out.state;
}

/* A pinned object is kept through a storm of unpinned downloads that each need the room of one:
 * the unpinned go, least recently used first, and the pinned totals count it throughout. */
static void a_pinned_object_survives_an_eviction_storm(void **state)
{
    struct object_keep pin = terms(), plain = terms();
    struct store_totals t;
    char url[64], body[16];
    (void)state;
    pin.pin = true;
    complete_as("http://h/boot/kernel", &pin, "kkkkkkkkkk"); /* the least recently used */
    store_totals(&t);
    assert_int_equal(t.pinned_objects, 1);
    assert_int_equal(t.pinned_bytes, 10);
    store_set_quota(40); /* room for three more */
    for (int i = 0; i < 40; i++) {
        snprintf(url, sizeof(url), "http://h/storm/%d", i);
        snprintf(body, sizeof(body), "storm%05d", i); /* 10 bytes, no two alike */
        complete_as(url, &plain, body);
    }
    assert_int_equal(outcome_of("http://h/boot/kernel"), OUTCOME_COMPLETE);
    assert_int_equal(outcome_of("http://h/storm/36"), OUTCOME_ABSENT);
    assert_int_equal(outcome_of("http://h/storm/37"), OUTCOME_COMPLETE);
    store_totals(&t);
    assert_int_equal(t.pinned_objects, 1);
    assert_int_equal(t.pinned_bytes, 10);
    assert_int_equal(look_as("http://h/boot/kernel", &pin), LOOKUP_HIT);
}

/* When only pinned objects are left, room is still made: an unpinned object goes first, then
 * the pinned ones too, least recently used first, rather than every download refused for good. */
static void with_only_pinned_objects_left_the_least_recently_used_goes(void **state)
{
    struct object_keep pin = terms(), plain = terms();
    struct store_totals t;
    (void)state;
    pin.pin = true;
    complete_as("http://h/only/1", &pin, "1111111111");
    complete_as("http://h/only/2", &pin, "2222222222");
    complete_as("http://h/only/3", &pin, "3333333333");
    complete_as("http://h/only/plain", &plain, "pppppppppp");       /* used last of all */
    assert_int_equal(look_as("http://h/only/1", &pin), LOOKUP_HIT); /* 2 is the oldest pinned */
    store_set_quota(40);
    complete_as("http://h/only/4", &pin, "4444444444");
    assert_int_equal(outcome_of("http://h/only/plain"), OUTCOME_ABSENT);
    assert_int_equal(outcome_of("http://h/only/2"), OUTCOME_COMPLETE);
    complete_as("http://h/only/5", &pin, "5555555555"); /* nothing but pinned objects left */
    assert_int_equal(outcome_of("http://h/only/2"), OUTCOME_ABSENT);
    assert_int_equal(outcome_of("http://h/only/1"), OUTCOME_COMPLETE);
    assert_int_equal(outcome_of("http://h/only/3"), OUTCOME_COMPLETE);
    assert_int_equal(outcome_of("http://h/only/4"), OUTCOME_COMPLETE);
    store_totals(&t);
    assert_int_equal(t.pinned_objects, 4);
    assert_int_equal(t.pinned_bytes, 40);
}

/* A later lookup whose terms say pin = no unpins it: it is then evicted as any object, before
 * the pinned ones, and leaves the pinned totals. */
static void a_later_lookup_unpins(void **state)
{
    struct object_keep pin = terms(), plain = terms();
    struct store_totals t;
    (void)state;
    pin.pin = true;
    complete_as("http://h/unpin/a", &pin, "aaaaaaaaaa");
    complete_as("http://h/unpin/b", &pin, "bbbbbbbbbb");
    assert_int_equal(look_as("http://h/unpin/b", &plain), LOOKUP_HIT); /* b unpinned, used last */
    store_totals(&t);
    assert_int_equal(t.pinned_objects, 1);
    assert_int_equal(t.pinned_bytes, 10);
    store_set_quota(20);
    complete_as("http://h/unpin/c", &pin, "cccccccccc");
    assert_int_equal(outcome_of("http://h/unpin/b"), OUTCOME_ABSENT); /* the one unpinned */
    assert_int_equal(outcome_of("http://h/unpin/a"), OUTCOME_COMPLETE);
    assert_int_equal(outcome_of("http://h/unpin/c"), OUTCOME_COMPLETE);
}

/* Whether the index holds a row for `url`: what a restart after kill -9 would find (its own
 * connection: the store's is the persistence thread's). */
static bool index_has(const char *url)
{
    char path[256], key[65];
    sqlite3 *db;
    sqlite3_stmt *stmt;
    bool found;
    url_key(url, key);
    snprintf(path, sizeof(path), "%s/index.sqlite", dir);
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT 1 FROM objects WHERE key=?", -1, &stmt, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(stmt, 1, key, -1, SQLITE_STATIC);
    found = sqlite3_step(stmt) == SQLITE_ROW;
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return found;
}

/* A complete version of `url` under `t` whose ETag a revalidation asks with ("v1", its body);
 * its file's path in `path`. */
static void complete_etagged(const char *url, const struct object_keep *t, char *path, size_t size)
{
    struct object *obj;
    struct object_meta meta;
    struct upstream_headers h = {"text/plain", "", "", "", "\"v1\"", ""};
    uint8_t digest[32];
    int fd;
    assert_int_equal(store_lookup_as(url, t, AUTH_CONFIRMED, false, &obj, &fd, NULL, &meta),
                     LOOKUP_MISS);
    assert_int_equal(store_begin_file(obj, "http://h/", file_ready, NULL), 0);
    persist_flush();
    assert_int_equal(store_begin_body(obj, 2, &h, true), 0);
    assert_int_equal(store_append(obj, "v1", 2), 0);
    SHA256((const unsigned char *)"v1", 2, digest);
    assert_int_equal(store_finish(obj, digest), 0);
    persist_flush();
    object_path(obj, path, size);
    release_both(obj);
}

/* store = no: a client that joined the download reads it whole from the open file; once it is
 * complete it has left the table (the next request misses), its file is gone, it had no row,
 * it answers no digest, and it counts nowhere as stored. */
static void a_download_not_stored_streams_then_leaves_nothing(void **state)
{
    struct object_keep once = terms();
    struct object *obj, *joined;
    struct object_meta meta;
    struct store_totals before, after;
    struct read_range all = {-1, NULL, 0};
    struct park w;
    uint8_t digest[32];
    char buf[32], path[1200], part[1300];
    int fd;
    (void)state;
    once.store = false;
    park_init(&w, NULL, NULL, NULL);
    store_totals(&before);
    obj = downloading("http://h/index.html", &once, 9);
    object_path(obj, path, sizeof(path));
    snprintf(part, sizeof(part), "%s.part", path);
    assert_int_equal(access(part, F_OK), 0);
    assert_int_equal(store_lookup_as("http://h/index.html", &once, AUTH_CONFIRMED, false, &joined,
                                     &fd, NULL, &meta),
                     LOOKUP_COALESCED);
    assert_false(index_has("http://h/index.html")); /* never a row: never resumed after a restart */
    finish(obj, "<a>b</a>\n");
    assert_int_equal(store_read(joined, 0, buf, sizeof(buf), &all, &w), 9); /* every byte */
    assert_memory_equal(buf, "<a>b</a>\n", 9);
    assert_int_equal(store_read(joined, 9, buf, sizeof(buf), &all, &w), STORE_READ_END);
    store_snapshot(joined, &meta);
    assert_int_equal(meta.state, OBJ_COMPLETE); /* whole for its reader */
    store_release(joined);
    release_both(obj);
    persist_flush(); /* the removal its end queued */
    assert_int_equal(outcome_of("http://h/index.html"), OUTCOME_ABSENT);
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(access(part, F_OK), -1);
    assert_false(index_has("http://h/index.html"));
    SHA256((const unsigned char *)"<a>b</a>\n", 9, digest);
    assert_int_equal(store_open_twin("http://h/other", digest, any_url, NULL, &fd, &meta),
                     LOOKUP_MISS);
    store_totals(&after);
    assert_int_equal(after.complete, before.complete);
    assert_int_equal(after.disk_usage, before.disk_usage); /* its quota given back */
    assert_int_equal(look_as("http://h/index.html", &once), LOOKUP_MISS);
}

/* A rule changed to store = no acts on a cached object at its next request: it goes (file and
 * row), never a hit, and that request downloads it again, not to be kept. */
static void a_stored_object_goes_when_its_terms_say_store_no(void **state)
{
    struct object_keep kept = terms(), once = terms();
    struct object *obj;
    struct object_meta meta;
    char path[1200];
    int fd;
    (void)state;
    once.store = false;
    complete_as("http://h/latest", &kept, "v1");
    assert_int_equal(look_as("http://h/latest", &kept), LOOKUP_HIT);
    assert_int_equal(
        store_lookup_as("http://h/latest", &once, AUTH_CONFIRMED, false, &obj, &fd, NULL, &meta),
        LOOKUP_MISS);
    object_path(obj, path, sizeof(path));
    persist_flush();
    assert_int_equal(access(path, F_OK), -1);
    assert_false(index_has("http://h/latest"));
    store_fail(obj, 503, "only looking");
    release_both(obj);
}

/* The store's clock (wall seconds: time(), wrapped here by meson.build) is the real one moved
 * on by `skew`: a TTL runs out when the suite says, not after seconds of waiting (10 s of the
 * suite's 10.5 were waits, under each of scripts/test's three builds). */
static _Atomic int64_t skew;
time_t __real_time(time_t *t);
time_t __wrap_time(time_t *t);
time_t __wrap_time(time_t *t)
{
    time_t now = __real_time(NULL) + (time_t)atomic_load(&skew);
    if (t)
        *t = now;
    return now;
}

/* The store's clock moved past `t`, for every thread at once. */
static void clock_passes(int64_t t)
{
    int64_t now = (int64_t)time(NULL);
    if (now <= t)
        atomic_fetch_add(&skew, t + 1 - now);
    assert_true((int64_t)time(NULL) > t);
}

/* An expired version of `url` (ETag "v1", its file's path in `path`) being revalidated (the
 * download returned, its partial file made) after a second lookup joined it saying store = no
 * (that one's object in *joined). */
static struct object *refresh_not_stored(const char *url, struct object **joined, char *path,
                                         size_t size)
{
    struct object_keep t = terms(), once = terms();
    struct object *obj;
    struct object_meta meta;
    int fd;
    t.ttl = 1;
    once.store = false;
    complete_etagged(url, &t, path, size);
    clock_passes((int64_t)time(NULL));
    assert_int_equal(store_lookup_as(url, &t, AUTH_CONFIRMED, false, &obj, &fd, NULL, &meta),
                     LOOKUP_MISS); /* a revalidation of the expired version */
    assert_int_equal(store_lookup_as(url, &once, AUTH_CONFIRMED, false, joined, &fd, NULL, &meta),
                     LOOKUP_COALESCED); /* not to be stored, from now on */
    assert_int_equal(store_begin_file(obj, "http://h/", file_ready, NULL), 0);
    persist_flush();
    return obj;
}

/* A revalidation a later lookup's terms say not to store (store = no), renewed by upstream's
 * 304: its readers get the version it renewed, and then nothing of it is kept. */
static void a_renewal_not_to_be_stored_keeps_nothing(void **state)
{
    struct object *obj, *joined;
    struct object_meta meta;
    char path[1200];
    (void)state;
    obj = refresh_not_stored("http://h/etag", &joined, path, sizeof(path));
    assert_int_equal(store_renew(obj), 0);
    persist_flush();
    store_snapshot(joined, &meta);
    assert_int_equal(meta.state, OBJ_COMPLETE); /* its reader has the renewed version */
    store_release(joined);
    release_both(obj);
    persist_flush();
    assert_int_equal(outcome_of("http://h/etag"), OUTCOME_ABSENT);
    assert_int_equal(access(path, F_OK), -1);
    assert_false(index_has("http://h/etag"));
}

/* A probe on the persistence thread, queued behind a job: whether the index held the row then. */
struct row_probe {
    struct persist_job job;
    const char *url;
    bool had_row;
};

static void probe_row(struct persist_job *job)
{
    struct row_probe *p = (struct row_probe *)job;
    p->had_row = index_has(p->url);
}

/* A purge answered between the upstream thread's look at the expired copy (still there: the
 * 304 renews it) and the renewal on the persistence thread: the renewal writes no row for the
 * copy the purge took, so that kill -9 at any point after the purge's answer finds none (one
 * written and then removed by the drop that follows was there in between), and nothing of it
 * stays. */
static void a_renewal_after_a_purge_of_its_copy_writes_no_row(void **state)
{
    struct object_keep t = terms();
    struct object *obj, *joined;
    struct object_meta meta;
    struct purge_result r = {0};
    struct row_probe probe = {.job.run = probe_row, .url = "http://h/rv/etag"};
    char etag[64], date[64], path[1200];
    int fd;
    (void)state;
    t.ttl = 1;
    complete_etagged("http://h/rv/etag", &t, path, sizeof(path));
    clock_passes((int64_t)time(NULL));
    assert_int_equal(
        store_lookup_as("http://h/rv/etag", &t, AUTH_CONFIRMED, false, &obj, &fd, NULL, &meta),
        LOOKUP_MISS); /* a revalidation of the expired version */
    assert_int_equal(
        store_lookup_as("http://h/rv/etag", &t, AUTH_CONFIRMED, false, &joined, &fd, NULL, &meta),
        LOOKUP_COALESCED);
    assert_int_equal(store_begin_file(obj, "http://h/", file_ready, NULL), 0);
    persist_flush();
    /* the upstream thread's look at the 304: the copy is there to renew */
    assert_true(store_stale_validators(obj, etag, sizeof(etag), date, sizeof(date)));
    store_purge_prefix("http://h/rv/", false, &r);
    assert_int_equal(r.objects, 1); /* the expired copy */
    assert_int_equal(r.downloads, 1);
    assert_false(index_has("http://h/rv/etag")); /* answered: its row gone on disk */
    assert_int_equal(store_renew(obj), 0);
    persist_submit(&probe.job);
    persist_flush();
    assert_false(probe.had_row);
    store_snapshot(joined, &meta);
    assert_int_equal(meta.state, OBJ_COMPLETE); /* its reader has the version upstream renewed */
    store_release(joined);
    release_both(obj);
    persist_flush();
    assert_int_equal(outcome_of("http://h/rv/etag"), OUTCOME_ABSENT);
    assert_false(index_has("http://h/rv/etag"));
    assert_int_equal(access(path, F_OK), -1);
}

/* A renewal not to be stored (store = no) writes no row; a lookup that says store = yes
 * between that decision and the renewal's end (here: at its partial file's unlink) does not
 * make it kept, for the row on disk is still the expired copy's, which a restart would take for
 * the renewed version. Its readers have the renewed version all the same. */
static void a_renewal_decided_not_kept_stays_so(void **state)
{
    struct object *obj, *joined;
    struct object_meta meta;
    char path[1200];
    (void)state;
    obj = refresh_not_stored("http://h/flip/etag", &joined, path, sizeof(path));
    at_unlink.url = "http://h/flip/etag";
    at_unlink.terms = terms(); /* store = yes */
    assert_int_equal(store_renew(obj), 0);
    persist_flush();
    assert_null(at_unlink.url); /* the lookup was made */
    store_snapshot(at_unlink.joined, &meta);
    assert_int_equal(meta.state, OBJ_COMPLETE); /* its reader has the renewed version */
    store_release(at_unlink.joined);
    store_release(joined);
    release_both(obj);
    persist_flush();
    assert_int_equal(outcome_of("http://h/flip/etag"), OUTCOME_ABSENT);
    assert_false(index_has("http://h/flip/etag"));
}

/* The object's own maximum size (its terms': a rule's max-object-size) refuses a body longer
 * than it, announced or grown, whatever --max-object-size says. */
static void an_objects_own_maximum_size_refuses(void **state)
{
    struct object_keep small = terms();
    struct object *obj;
    struct object_meta meta;
    struct upstream_headers h = {"", "", "", "", "", ""};
    int fd;
    (void)state;
    small.max_object_size = 8;
    assert_int_equal(
        store_lookup_as("http://h/big", &small, AUTH_CONFIRMED, false, &obj, &fd, NULL, &meta),
        LOOKUP_MISS);
    assert_int_equal(store_begin_file(obj, "http://h/", file_ready, NULL), 0);
    persist_flush();
    assert_int_equal(store_begin_body(obj, 9, &h, true), -1);
    assert_int_equal(object_error_status(obj), 413);
    store_fail(obj, 413, object_error(obj));
    release_both(obj);
    obj = downloading("http://h/grows", &small, -1); /* no Content-Length */
    assert_int_equal(store_append(obj, "12345678", 8), 0);
    assert_int_equal(store_append(obj, "9", 1), -1);
    assert_int_equal(object_error_status(obj), 413);
    store_fail(obj, 413, object_error(obj));
    release_both(obj);
}

/* The stale windows an object's terms give replace the store-wide options for it: once expired,
 * the copy whose terms say none goes at the sweep though the options give a day, and the one
 * whose terms give a day stays though the options say none; a listing shows until when. */
static void an_objects_own_stale_windows_decide_its_expiry(void **state)
{
    struct object_keep day = terms(), never = terms();
    struct listing l;
    (void)state;
    day.ttl = never.ttl = 1;
    day.stale_if_error = 86400;
    never.stale_if_error = 0;
    complete_as("http://h/window/day", &day, "day");
    complete_as("http://h/window/never", &never, "never");
    clock_passes((int64_t)time(NULL));
    for (int round = 0; round < 2; round++) {
        store_set_stale(round ? 0 : 86400, 0); /* the options: a day, then none */
        sweep_whole_round();
        persist_flush();
        assert_int_equal(outcome_of("http://h/window/never"), OUTCOME_ABSENT);
        assert_int_equal(outcome_of("http://h/window/day"), OUTCOME_COMPLETE);
    }
    assert_int_equal(store_list(LIST_SUCCESSES, ORDER_LAST_USE, true, 0, 1, &l), 0);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.rows[0].url, "http://h/window/day");
    assert_true(l.rows[0].expired);
    assert_int_equal(l.rows[0].stale_until, l.rows[0].created + 1 + 86400);
    listing_free(&l);
    store_set_stale(86400, 0); /* the defaults */
}

/* A pin is kept in the index: a restart finds the object pinned, and a later lookup that
 * unpins it is written there too (with its use). Each restart opens a copy of the data dir, as
 * another process would find it: this one keeps its lock on the first for good (store_open). */
static void a_pin_survives_a_restart(void **state)
{
    struct object_keep pin = terms(), plain = terms();
    struct store_totals t;
    struct config cfg;
    char err[256];
    (void)state;
    pin.pin = true;
    config_defaults(&cfg);
    complete_as("http://h/kept/pinned", &pin, "pinned!");
    for (int round = 0; round < 2; round++) {
        while (store_flush_usage())
            ;
        persist_flush();
        store_totals(&t);
        int64_t pinned = t.pinned_objects, bytes = t.pinned_bytes;
        store_close();
        char from[sizeof(cfg.data_dir)], cmd[4 * sizeof(cfg.data_dir) + 64];
        snprintf(from, sizeof(from), "%s", round ? cfg.data_dir : dir);
        snprintf(cfg.data_dir, sizeof(cfg.data_dir), "%s/restart%d", dir, round);
        snprintf(cmd, sizeof(cmd), "mkdir %s && cp -a %s/objects %s/index.sqlite* %s", cfg.data_dir,
                 from, from, cfg.data_dir);
        assert_int_equal(system(cmd), 0);
        assert_int_equal(store_open(&cfg, err, sizeof(err)), 0);
        assert_int_equal(store_start(err, sizeof(err)), 0);
        store_wait_loaded(); /* the totals count what has loaded */
        store_totals(&t);
        assert_int_equal(t.pinned_objects, pinned);
        assert_int_equal(t.pinned_bytes, bytes);
        assert_int_equal(look_as("http://h/kept/pinned", round ? &pin : &plain), LOOKUP_HIT);
        store_totals(&t);
        assert_int_equal(t.pinned_objects, round ? pinned + 1 : pinned - 1);
    }
}

/* The store as another process finds it after a stop: closed, the data dir copied (this
 * process keeps its lock on the first: store_open), opened on the copy, every row loaded. */
static void restart_on_a_copy(struct config *cfg, int round)
{
    char err[256], from[sizeof(cfg->data_dir)], cmd[4 * sizeof(cfg->data_dir) + 64];
    while (store_flush_usage())
        ;
    persist_flush();
    store_close();
    snprintf(from, sizeof(from), "%s", round ? cfg->data_dir : dir);
    snprintf(cfg->data_dir, sizeof(cfg->data_dir), "%s/restart%d", dir, round);
    snprintf(cmd, sizeof(cmd), "mkdir %s && cp -a %s/objects %s/index.sqlite* %s", cfg->data_dir,
             from, from, cfg->data_dir);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(store_open(cfg, err, sizeof(err)), 0);
    assert_int_equal(store_start(err, sizeof(err)), 0);
    store_wait_loaded();
}

/* A version loaded at start keeps its headers after its URL, in its own allocation: renewed by
 * a 304, the download that renewed it answers with a copy of them (never with bytes of the old
 * version's allocation, freed once it goes: ASan's builds would say so), and so does every
 * later hit. */
static void a_renewal_of_a_version_loaded_at_start_keeps_its_headers(void **state)
{
    struct object_keep t = terms();
    struct object *obj;
    struct object_meta meta;
    struct config cfg;
    int fd;
    (void)state;
    config_defaults(&cfg);
    t.ttl = 1;
    struct upstream_headers h = {"text/plain", "", "", "", "\"v1\"", ""};
    assert_int_equal(
        store_lookup_as("http://h/loaded", &t, AUTH_CONFIRMED, false, &obj, &fd, NULL, &meta),
        LOOKUP_MISS);
    assert_int_equal(store_begin_file(obj, "http://h/", file_ready, NULL), 0);
    persist_flush();
    assert_int_equal(store_begin_body(obj, 2, &h, true), 0);
    finish(obj, "v1");
    release_both(obj);
    restart_on_a_copy(&cfg, 0);
    clock_passes((int64_t)time(NULL) + 1);
    t.ttl = 3600; /* the renewed version stays fresh however slow the run (a 1 s one may not) */
    assert_int_equal(
        store_lookup_as("http://h/loaded", &t, AUTH_CONFIRMED, false, &obj, &fd, NULL, &meta),
        LOOKUP_MISS); /* a revalidation of the version loaded */
    assert_int_equal(store_begin_file(obj, "http://h/", file_ready, NULL), 0);
    persist_flush();
    assert_int_equal(store_renew(obj), 0);
    persist_flush();
    release_both(obj);
    for (int hit = 0; hit < 2; hit++) {
        assert_int_equal(
            store_lookup_as("http://h/loaded", &t, AUTH_CONFIRMED, false, &obj, &fd, NULL, &meta),
            LOOKUP_HIT);
        assert_string_equal(meta.content_type, "text/plain");
        assert_string_equal(meta.etag, "\"v1\"");
        assert_int_equal(meta.length, 2);
        if (fd >= 0) /* a hit holds no reference: its own descriptor */
            close(fd);
    }
}

/* A download failed `status` under `t`. */
static void failed_as(const char *url, const struct object_keep *t, int status)
{
    struct object *obj;
    struct object_meta meta;
    int fd;
    assert_int_equal(store_lookup_as(url, t, AUTH_CONFIRMED, false, &obj, &fd, NULL, &meta),
                     LOOKUP_MISS);
    store_fail(obj, status, "upstream said no");
    release_both(obj);
}

/* A 404 or 410 under a negative ttl answers the lookups that have one, for that long; never a
 * lookup whose negative ttl is 0 (a URL with credentials), never a 5xx; a download of the URL or
 * a purge drops it. */
static void a_kept_404_answers_lookups_with_a_negative_ttl(void **state)
{
    struct object_keep t = terms(), bare = terms(), short_ttl = terms();
    struct object *obj;
    struct object_meta meta;
    int64_t length = -1;
    int fd;
    (void)state;
    t.negative_ttl = 60;
    short_ttl.negative_ttl = 2; /* whole seconds: 1 could run out between two lines */
    failed_as("http://h/404", &t, 404);
    assert_int_equal(
        store_lookup_as("http://h/404", &t, AUTH_CONFIRMED, false, &obj, &fd, NULL, &meta),
        LOOKUP_NEGATIVE);
    assert_int_equal(meta.error_status, 404);
    assert_string_equal(meta.error, "upstream said no");
    assert_int_equal(meta.ttl, 60);
    assert_int_equal(look_as("http://h/404", &short_ttl), LOOKUP_NEGATIVE);
    /* no negative ttl: asked upstream, and that download's outcome (a 503) is the word now */
    assert_int_equal(look_as("http://h/404", &bare), LOOKUP_MISS);
    assert_int_equal(look_as("http://h/404", &t), LOOKUP_MISS);
    failed_as("http://h/500", &t, 500);
    assert_int_equal(look_as("http://h/500", &t), LOOKUP_MISS);
    failed_as("http://h/410", &t, 410);
    assert_int_equal(look_as("http://h/410", &t), LOOKUP_NEGATIVE);
    assert_int_equal(store_purge("http://h/410", &length), 1);
    assert_int_equal(length, 0);
    assert_int_equal(look_as("http://h/410", &t), LOOKUP_MISS);
    /* never past the ttl it was kept with */
    failed_as("http://h/brief", &short_ttl, 404);
    int64_t kept = (int64_t)time(NULL);
    assert_int_equal(look_as("http://h/brief", &t), LOOKUP_NEGATIVE);
    clock_passes(kept + 2);
    assert_int_equal(look_as("http://h/brief", &t), LOOKUP_MISS);
}

/* Whether the kept answer for `url` answers a request with terms `t` (nothing begun, so nothing
 * dropped: a lookup that misses would begin a download and forget the entry). */
static bool negative_of(const char *url, const struct object_keep *t)
{
    char key[65];
    struct object_meta meta;
    url_key(url, key);
    store_lock();
    bool found = negative_find(key, t, (int64_t)time(NULL), &meta);
    store_unlock();
    return found;
}

/* A kept 404 is a cached answer under the request's terms: a download not stored keeps none, and
 * a request that takes no kept answer (store = no, no-store) or whose bounds it is older than
 * (max-age, a child arca's negative max-age) is asked upstream; the answer stays for the others. */
static void a_kept_404_answers_only_under_terms_that_take_it(void **state)
{
    struct object_keep t = terms(), unstored = terms(), no_store, young, child;
    (void)state;
    t.negative_ttl = 60;
    unstored.negative_ttl = 60;
    unstored.store = false;
    failed_as("http://h/unstored", &unstored, 404);
    assert_int_equal(look_as("http://h/unstored", &t), LOOKUP_MISS);
    failed_as("http://h/404", &t, 404);
    int64_t kept = (int64_t)time(NULL);
    no_store = young = child = t;
    no_store.asked_no_store = true;
    young.has_max_age = true;
    young.max_age = 2;
    child.has_negative_max_age = true;
    child.negative_max_age = 2;
    assert_int_equal(negative_of("http://h/404", &unstored), false);
    assert_int_equal(negative_of("http://h/404", &no_store), false);
    assert_int_equal(negative_of("http://h/404", &young), true);
    assert_int_equal(negative_of("http://h/404", &child), true);
    clock_passes(kept + 2);
    assert_int_equal(negative_of("http://h/404", &young), false);
    assert_int_equal(negative_of("http://h/404", &child), false);
    assert_int_equal(negative_of("http://h/404", &t), true);
}

int main(void)
{
    unit_tmp(dir, sizeof(dir));
    const struct CMUnitTest tests[] = {
#define EACH(test) cmocka_unit_test_setup_teardown(test, open_store, close_store)
        EACH(a_pinned_object_survives_an_eviction_storm),
        EACH(with_only_pinned_objects_left_the_least_recently_used_goes),
        EACH(a_later_lookup_unpins),
        EACH(a_download_not_stored_streams_then_leaves_nothing),
        EACH(a_stored_object_goes_when_its_terms_say_store_no),
        EACH(a_renewal_not_to_be_stored_keeps_nothing),
        EACH(a_renewal_after_a_purge_of_its_copy_writes_no_row),
        EACH(a_renewal_decided_not_kept_stays_so),
        EACH(an_objects_own_maximum_size_refuses),
        EACH(an_objects_own_stale_windows_decide_its_expiry),
        EACH(a_pin_survives_a_restart),
        EACH(a_renewal_of_a_version_loaded_at_start_keeps_its_headers),
        EACH(a_kept_404_answers_lookups_with_a_negative_ttl),
        EACH(a_kept_404_answers_only_under_terms_that_take_it),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
