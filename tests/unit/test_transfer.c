/* Units for the transfer state machine (transfer.h), driven without sockets: the test hands it
 * the events the loop would (its file made, a response's header lines, body bytes, curl's
 * result, a timer firing, the clock moving) and checks the states it waits in and what it asks
 * of the object, through a store that records the calls. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "base/clock.h"
#include "upstream/hosts.h"
#include "upstream/mirror.h"
#include "upstream/probe.h"
#include "stats/stats.h"
#include "upstream/transfer.h"
#include "upstream/transfer_answer.h" /* a fill's scenarios reach its ranges through t->fill */

#include <openssl/sha.h>

/* --- a store that records ------------------------------------------------------------------ */

#define FAKE_MAX (1 << 20) /* a fake object's bytes: its file */

struct fake_object {
    char url[128];
    int64_t have, length;
    bool headers_ready;
    unsigned char file[FAKE_MAX];
    int64_t rate;
    int connections;
};

static struct {
    char calls[4096]; /* "begin_file restart ...": what the transfer asked, in order */
    int ready;        /* what file_ready answers */
    int restart_rc;   /* what restart answers: 0 the same object, 1 a new version */
    int fail_status;
    char fail_reason[512];
    struct fake_object objects[4];
    int n_objects;
    uint8_t digest[32]; /* what finish was handed */
} fs;

static struct fake_object *fake(const struct object *obj)
{
    return (struct fake_object *)obj;
}

static void called(const char *what)
{
    if (fs.calls[0])
        strcat(fs.calls, " ");
    strcat(fs.calls, what);
}

static struct object *new_object(const char *url)
{
    struct fake_object *o = &fs.objects[fs.n_objects++];
    snprintf(o->url, sizeof(o->url), "%s", url);
    o->length = -1;
    return (struct object *)o;
}

static int f_begin_file(struct object *obj, const char *source, void (*ready)(void *), void *arg)
{
    (void)obj, (void)source, (void)ready, (void)arg;
    called("begin_file");
    return 0;
}
static int f_file_ready(struct object *obj)
{
    (void)obj;
    return fs.ready;
}
static int f_take_prefix(struct object *obj, EVP_MD_CTX *into)
{
    (void)obj, (void)into;
    return 0;
}
static void f_snapshot(struct object *obj, struct object_meta *out)
{
    (void)obj, (void)out;
}
static void f_progress(struct object *obj, struct download_progress *out)
{
    *out = (struct download_progress){fake(obj)->have, fake(obj)->length, fake(obj)->headers_ready};
}
static bool f_stale(struct object *obj, char *etag, size_t es, char *date, size_t ds)
{
    (void)obj, (void)etag, (void)es, (void)date, (void)ds;
    return false;
}
static int f_begin_body(struct object *obj, int64_t length, const struct upstream_headers *h,
                        bool resumable)
{
    (void)h, (void)resumable;
    called("begin_body");
    fake(obj)->length = length;
    fake(obj)->headers_ready = true;
    return 0;
}
static void f_continue_body(struct object *obj)
{
    (void)obj;
    called("continue_body");
}
static void f_from_parent(struct object *obj, int64_t age, int64_t left, const char *cache_status)
{
    (void)obj;
    (void)age;
    (void)left;
    (void)cache_status;
}

static void f_staleness(struct object *obj, int64_t if_error, int64_t while_revalidate)
{
    (void)obj, (void)if_error, (void)while_revalidate; /* not a call the units follow */
}
static int f_restart(struct object *obj, int64_t length, const struct upstream_headers *h)
{
    (void)h;
    called("restart");
    fake(obj)->have = 0;
    fake(obj)->length = length;
    return fs.restart_rc;
}
static int f_restart_afresh(struct object *obj)
{
    (void)obj;
    called("restart_afresh");
    return fs.restart_rc;
}
static struct object *f_new_version(struct object *obj, const char *reason, bool failure)
{
    (void)reason;
    (void)failure;
    called("new_version");
    return new_object(fake(obj)->url);
}
static int f_append(struct object *obj, const char *data, size_t len)
{
    struct fake_object *o = fake(obj);
    called("append");
    if (o->have + (int64_t)len <= FAKE_MAX)
        memcpy(o->file + o->have, data, len);
    o->have += (int64_t)len;
    return 0;
}
/* A fill's calls are many: only the first of a run is recorded ("write_at" once per range). */
static void called_once(const char *what)
{
    size_t n = strlen(fs.calls), w = strlen(what);
    if (n < w || strcmp(fs.calls + n - w, what) != 0)
        called(what);
}
static int f_write_at(struct object *obj, int64_t off, const char *data, size_t len)
{
    struct fake_object *o = fake(obj);
    assert_true(off > o->have && off + (int64_t)len <= o->length && off + (int64_t)len <= FAKE_MAX);
    called_once("write_at");
    memcpy(o->file + off, data, len);
    return 0;
}
static void f_advance(struct object *obj, int64_t to)
{
    assert_true(to >= fake(obj)->have);
    called_once("advance");
    fake(obj)->have = to;
}
static int f_digest_range(struct object *obj, EVP_MD_CTX *ctx, int64_t from, int64_t to)
{
    EVP_DigestUpdate(ctx, fake(obj)->file + from, (size_t)(to - from));
    return 0;
}
static void f_set_rate(struct object *obj, int64_t rate, int connections)
{
    fake(obj)->rate = rate;
    fake(obj)->connections = connections;
}
static int64_t f_announce(struct object *obj)
{
    (void)obj;
    return 0;
}
static int f_finish(struct object *obj, const uint8_t digest[32])
{
    (void)obj;
    called("finish");
    memcpy(fs.digest, digest, 32);
    return 0;
}
static int f_renew(struct object *obj)
{
    (void)obj;
    called("renew");
    return 0;
}
static void f_fail(struct object *obj, int status, const char *reason)
{
    (void)obj;
    called("fail");
    fs.fail_status = status;
    snprintf(fs.fail_reason, sizeof(fs.fail_reason), "%s", reason);
}
static void f_set_aside(struct object *obj, const char *reason)
{
    (void)obj, (void)reason;
    called("set_aside");
}
/* A refresh's expired version: none here (store_offer_stale, store_keep_stale have their own
 * scenarios), so the transfer fails as it would without one. */
static void f_fail_held(struct object *obj, int status, const char *reason, int retry_after)
{
    (void)retry_after;
    f_fail(obj, status, reason);
}
static bool f_offer_stale(struct object *obj, enum stale_cause cause, int fwd_status)
{
    (void)obj, (void)cause, (void)fwd_status;
    return false;
}
static int f_keep_stale(struct object *obj, int status, int fwd_status, const char *reason,
                        bool said)
{
    (void)obj, (void)status, (void)fwd_status, (void)reason, (void)said;
    return -1;
}
static void f_release(struct object *obj)
{
    (void)obj;
    called("release");
}
static const char *f_url(const struct object *obj)
{
    return fake(obj)->url;
}
static const char *f_error(const struct object *obj)
{
    (void)obj;
    return fs.fail_reason;
}
static int f_error_status(const struct object *obj)
{
    (void)obj;
    return fs.fail_status;
}

static void f_came_from(struct object *obj, const char *from)
{
    (void)obj, (void)from;
}

static int64_t f_purged_since(const struct object *obj)
{
    (void)obj;
    return -1;
}

static char *f_read_body(struct object *obj, size_t max, size_t *len)
{
    (void)obj, (void)max, (void)len;
    return NULL;
}

static const struct transfer_store recording = {
    f_begin_file,  f_file_ready,    f_take_prefix, f_snapshot,    f_progress,     f_stale,
    f_begin_body,  f_continue_body, f_staleness,   f_from_parent, f_restart,      f_restart_afresh,
    f_new_version, f_append,        f_write_at,    f_advance,     f_digest_range, f_set_rate,
    f_announce,    f_finish,        f_renew,       f_fail,        f_set_aside,    f_fail_held,
    f_offer_stale, f_keep_stale,    f_release,     f_url,         f_error,        f_error_status,
    f_came_from,   f_purged_since,  f_read_body,
};

/* --- the loop around it -------------------------------------------------------------------- */

static struct config cfg;
static struct upstream_loop loop;
static int64_t clock_ms;
static struct fetch_terms terms; /* what every download of a test is started under */

/* Mirror k's URL (rules/terms.h), wrapped (-Wl,--wrap): the rules' own are theirs to test. */
char *__wrap_terms_source_url(const struct config *c, const struct fetch_terms *t, const char *url,
                              int k);
char *__wrap_terms_source_url(const struct config *c, const struct fetch_terms *t, const char *url,
                              int k)
{
    char *out = NULL;
    (void)c, (void)t;
    if (asprintf(&out, "http://mirror.test/%d%s", k, strrchr(url, '/')) < 0)
        return NULL;
    return out;
}

static int64_t fake_now(void)
{
    return clock_ms;
}

static void no_wake(void *arg)
{
    (void)arg;
}

static int setup(void **state)
{
    (void)state;
    memset(&fs, 0, sizeof(fs));
    config_defaults(&cfg);
    cfg.download_timeout = 60;
    cfg.download_retries = 3;
    cfg.retry_delay_ms = 100;
    memset(&loop, 0, sizeof(loop));
    loop.cfg = &cfg;
    loop.multi = curl_multi_init(); /* handles are added and removed, never performed */
    loop.wake = no_wake;
    loop.now_ms = fake_now;
    clock_ms = 1000000;
    upstream_claim_thread();
    memset(&terms, 0, sizeof(terms));
    terms.fill_connections = cfg.fill_connections;
    terms.fill_min_size = cfg.fill_min_size;
    terms.sources.mirror_rule = -1;
    hosts_configure(0, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    fill_sweep(&loop);        /* what fills were retired: their handles leave the multi handle */
    assert_null(loop.active); /* every transfer was freed */
    assert_int_equal(loop.n_active, 0);
    timer_heap_free(&loop.timers);
    curl_multi_cleanup(loop.multi);
    return 0;
}

static struct transfer *start(void)
{
    char *source = strdup("http://origin.test/file");
    struct transfer *t =
        transfer_new(&loop, &recording, new_object(source), source, 0, NULL, "origin.test", &terms);
    assert_non_null(t);
    assert_int_equal(transfer_state_of(t), TS_OPENING);
    transfer_poll_file(t); /* not made yet: still waiting */
    assert_int_equal(transfer_state_of(t), TS_OPENING);
    fs.ready = 1;
    transfer_poll_file(t);
    assert_int_equal(transfer_state_of(t), TS_ASKING);
    return t;
}

/* A response's header lines, ended by the blank line; returns what curl was told last. */
static size_t respond(struct transfer *t, const char *const *lines)
{
    size_t rc = 0;
    char line[256];
    for (; *lines; lines++) {
        snprintf(line, sizeof(line), "%s\r\n", *lines);
        rc = transfer_header(t, line, strlen(line));
    }
    return transfer_header(t, "\r\n", 2) == 2 ? rc : 0;
}

static void body(struct transfer *t, const char *bytes)
{
    assert_int_equal(transfer_body(t, bytes, strlen(bytes)), strlen(bytes));
}

static void ended(struct transfer *t, CURLcode rc)
{
    struct handle *h;
    curl_easy_getinfo(transfer_easy(t), CURLINFO_PRIVATE, (char **)&h);
    transfer_attempt_ended(h, rc);
}

/* Whether the attempt under way asks with this request header line. */
static bool asks_with(const struct transfer *t, const char *line)
{
    for (const struct curl_slist *l = transfer_request_headers(t); l; l = l->next)
        if (strcmp(l->data, line) == 0)
            return true;
    return false;
}

static const char *const ok_v1[] = {"HTTP/1.1 200 OK", "Content-Length: 10", "ETag: \"v1\"", NULL};

static void a_whole_body_finishes(void **state)
{
    (void)state;
    struct transfer *t = start();
    assert_int_not_equal(respond(t, ok_v1), 0);
    body(t, "0123456789");
    ended(t, CURLE_OK);
    assert_string_equal(fs.calls, "begin_file begin_body append finish release");
}

static void a_retryable_status_backs_off_then_retries(void **state)
{
    (void)state;
    struct transfer *t = start();
    respond(t, (const char *const[]){"HTTP/1.1 503 Service Unavailable", NULL});
    ended(t, CURLE_WRITE_ERROR);
    assert_int_equal(transfer_state_of(t), TS_BACKOFF);
    assert_int_equal(timer_run(&loop.timers, clock_ms), 0); /* the backoff is not over yet */
    assert_int_equal(transfer_state_of(t), TS_BACKOFF);
    clock_ms += 1000;
    assert_int_equal(timer_run(&loop.timers, clock_ms), 1);
    assert_int_equal(transfer_state_of(t), TS_ASKING);
    respond(t, ok_v1);
    body(t, "0123456789");
    ended(t, CURLE_OK);
    assert_string_equal(fs.calls, "begin_file begin_body append finish release");
}

static void retryable_statuses_to_the_end_fail(void **state)
{
    (void)state;
    struct transfer *t = start();
    for (int i = 0; i <= cfg.download_retries; i++) {
        assert_int_equal(transfer_state_of(t), TS_ASKING);
        respond(t, (const char *const[]){"HTTP/1.1 502 Bad Gateway", NULL});
        ended(t, CURLE_WRITE_ERROR);
        clock_ms += 1000;
        timer_run(&loop.timers, clock_ms);
    }
    assert_string_equal(fs.calls, "begin_file fail release");
    assert_int_equal(fs.fail_status, 502);
    assert_non_null(strstr(fs.fail_reason, "upstream answered 502"));
}

static void a_broken_body_resumes_with_a_range(void **state)
{
    (void)state;
    struct transfer *t = start();
    respond(t, ok_v1);
    body(t, "0123");
    ended(t, CURLE_PARTIAL_FILE);
    assert_int_equal(transfer_state_of(t), TS_BACKOFF);
    clock_ms += 1000;
    timer_run(&loop.timers, clock_ms);
    assert_int_equal(transfer_state_of(t), TS_ASKING);
    assert_true(asks_with(t, "Range: bytes=4-"));
    assert_true(asks_with(t, "If-Range: \"v1\""));
    respond(t, (const char *const[]){"HTTP/1.1 206 Partial Content", "Content-Length: 6",
                                     "Content-Range: bytes 4-9/10", "ETag: \"v1\"", NULL});
    body(t, "456789");
    ended(t, CURLE_OK);
    assert_string_equal(fs.calls,
                        "begin_file begin_body append continue_body append finish release");
}

/* The resume is answered with another version's whole body: the same object starts over and
 * takes it at once. */
static void a_changed_validator_starts_over(void **state)
{
    (void)state;
    struct transfer *t = start();
    respond(t, ok_v1);
    body(t, "0123");
    ended(t, CURLE_RECV_ERROR);
    clock_ms += 1000;
    timer_run(&loop.timers, clock_ms);
    assert_true(asks_with(t, "Range: bytes=4-"));
    respond(t, (const char *const[]){"HTTP/1.1 200 OK", "Content-Length: 8", "ETag: \"v2\"", NULL});
    body(t, "abcdefgh");
    ended(t, CURLE_OK);
    assert_string_equal(fs.calls,
                        "begin_file begin_body append restart begin_body append finish release");
}

/* A 206 of another version while a reader holds the old one: the response is dropped, the
 * download goes on as a new version once its file is made, from byte 0. */
static void a_new_version_waits_for_its_file(void **state)
{
    (void)state;
    struct transfer *t = start();
    respond(t, ok_v1);
    body(t, "0123");
    ended(t, CURLE_RECV_ERROR);
    clock_ms += 1000;
    timer_run(&loop.timers, clock_ms);
    fs.restart_rc = 1;
    fs.ready = 0;
    assert_int_equal(
        respond(t, (const char *const[]){"HTTP/1.1 206 Partial Content",
                                         "Content-Range: bytes 4-9/10", "ETag: \"v2\"", NULL}),
        0);
    ended(t, CURLE_WRITE_ERROR);
    assert_int_equal(transfer_state_of(t), TS_OPENING);
    fs.ready = 1;
    transfer_poll_file(t);
    assert_int_equal(transfer_state_of(t), TS_ASKING);
    assert_false(asks_with(t, "Range: bytes=4-"));
    respond(t, (const char *const[]){"HTTP/1.1 200 OK", "Content-Length: 3", "ETag: \"v2\"", NULL});
    body(t, "abc");
    ended(t, CURLE_OK);
    assert_string_equal(fs.calls, "begin_file begin_body append restart new_version release "
                                  "begin_file begin_body append finish release");
}

static void past_the_deadline_the_download_fails(void **state)
{
    (void)state;
    struct transfer *t = start();
    respond(t, (const char *const[]){"HTTP/1.1 503 Service Unavailable", NULL});
    ended(t, CURLE_WRITE_ERROR);
    assert_int_equal(transfer_state_of(t), TS_BACKOFF);
    clock_ms += cfg.download_timeout * 1000 + 1;
    timer_run(&loop.timers, clock_ms);
    assert_string_equal(fs.calls, "begin_file fail release");
    assert_int_equal(fs.fail_status, 504);
    assert_non_null(strstr(fs.fail_reason, "--download-timeout"));
}

static void a_refusal_fails_at_once(void **state)
{
    (void)state;
    struct transfer *t = start();
    assert_int_equal(respond(t, (const char *const[]){"HTTP/1.1 404 Not Found", NULL}), 0);
    ended(t, CURLE_WRITE_ERROR);
    assert_string_equal(fs.calls, "begin_file fail release");
    assert_int_equal(fs.fail_status, 404);
}

static void a_file_the_store_could_not_make_ends_it(void **state)
{
    (void)state;
    char *source = strdup("http://origin.test/file");
    struct transfer *t =
        transfer_new(&loop, &recording, new_object(source), source, 0, NULL, "origin.test", &terms);
    assert_non_null(t);
    fs.ready = -1;
    transfer_poll_file(t);
    assert_string_equal(fs.calls, "begin_file release");
}

static void stopping_sets_a_running_download_aside(void **state)
{
    (void)state;
    struct transfer *t = start();
    respond(t, ok_v1);
    body(t, "0123");
    transfer_stop(t);
    assert_string_equal(fs.calls, "begin_file begin_body append set_aside release");
}

static void stopping_fails_a_download_without_its_file(void **state)
{
    (void)state;
    char *source = strdup("http://origin.test/file");
    struct transfer *t =
        transfer_new(&loop, &recording, new_object(source), source, 0, NULL, "origin.test", &terms);
    transfer_stop(t);
    assert_string_equal(fs.calls, "begin_file fail release");
    assert_int_equal(fs.fail_status, 503);
}

/* Last (it closes the probe queue for good): a download with a mirror waits in PROBING while
 * the mirror is asked; once arca stops, the probe's answer is dropped and the download, which
 * has its file, is set aside. */
static void a_mirror_is_asked_first_and_stopping_sets_it_aside(void **state)
{
    (void)state;
    terms.sources = (struct source_plan){.mirror_rule = 0, .n_mirrors = 1};
    char *source = strdup("http://origin.test/file");
    struct transfer *t =
        transfer_new(&loop, &recording, new_object(source), source, 0, NULL, "origin.test", &terms);
    fs.ready = 1;
    transfer_poll_file(t);
    assert_int_equal(transfer_state_of(t), TS_PROBING);
    atomic_store(&loop.stopping, true);
    probe_close(&loop); /* the mirror's probe ends unanswered: dropped while stopping */
    assert_int_equal(transfer_state_of(t), TS_PROBING);
    transfer_stop(t);
    assert_string_equal(fs.calls, "begin_file set_aside release");
}

/* --- parallel fills (fill.h) ------------------------------------------------------------- */

#define BLOB FAKE_MAX /* 1 MiB: four ranges of 256 KiB */
#define QUARTER (BLOB / 4)
static char blob[BLOB];

static const char *const fill_ok[] = {"HTTP/1.1 200 OK", "Content-Length: 1048576", "ETag: \"v1\"",
                                      "Accept-Ranges: bytes", NULL};

/* A download whose first answer starts a fill, its three other ranges asked (the loop's
 * timers run). */
static struct transfer *start_fill(void)
{
    for (size_t i = 0; i < sizeof(blob); i++)
        blob[i] = (char)(i * 2654435761u >> 13);
    terms.fill_min_size = 1; /* the download's terms, not the option, decide */
    cfg.fill_min_size = INT64_MAX;
    struct transfer *t = start();
    int64_t asked = atomic_load(&stats.fill_ranges);
    respond(t, fill_ok);
    assert_non_null(t->fill);
    timer_run(&loop.timers, clock_ms);
    assert_int_equal(atomic_load(&stats.fill_ranges) - asked, 3);
    return t;
}

/* Range i's answer: its header lines, then the blank line; what curl was told last. */
static size_t range_says(struct fill *f, int i, const char *status, int64_t first, const char *etag)
{
    char lines[5][128];
    size_t rc = 0;
    snprintf(lines[0], sizeof(lines[0]), "%s\r\n", status);
    snprintf(lines[1], sizeof(lines[1]), "Content-Range: bytes %lld-%lld/%d\r\n", (long long)first,
             (long long)QUARTER * (i + 1) - 1, BLOB);
    snprintf(lines[2], sizeof(lines[2]), "Content-Length: %lld\r\n",
             (long long)QUARTER * (i + 1) - first);
    snprintf(lines[3], sizeof(lines[3]), "ETag: %s\r\n", etag);
    snprintf(lines[4], sizeof(lines[4]), "\r\n");
    for (int k = 0; k < 5; k++)
        rc = fill_range_header(f, i, lines[k], strlen(lines[k]));
    return rc;
}

static void range_ended(struct fill *f, int i, CURLcode rc)
{
    struct handle *h;
    curl_easy_getinfo(fill_range_easy(f, i), CURLINFO_PRIVATE, (char **)&h);
    fill_segment_ended(h, rc);
}

static void range_sends(struct fill *f, int i, int64_t from, int64_t to)
{
    assert_int_equal(fill_range_body(f, i, blob + from, (size_t)(to - from)), to - from);
}

static void blob_is_what_finish_got(void)
{
    uint8_t want[32];
    SHA256((const unsigned char *)blob, sizeof(blob), want);
    assert_memory_equal(fs.digest, want, 32);
}

/* Ranges come out of order: a later one is written in place, readers get nothing of it before
 * every byte ahead is in, and the digest runs over the object in order. */
static void a_fill_writes_ahead_and_reads_in_order(void **state)
{
    (void)state;
    struct transfer *t = start_fill();
    struct fill *f = t->fill;
    struct fake_object *o = fake(t->obj);
    assert_int_not_equal(range_says(f, 2, "HTTP/1.1 206 Partial Content", 2 * QUARTER, "\"v1\""),
                         0);
    range_sends(f, 2, 2 * QUARTER, 3 * QUARTER);
    assert_int_equal(o->have, 0); /* ahead of the head: nobody reads it yet */
    /* the download's own connection takes its range and no byte more */
    assert_int_equal(transfer_body(t, blob, QUARTER + 100), QUARTER);
    ended(t, CURLE_WRITE_ERROR);
    assert_int_equal(transfer_state_of(t), TS_FILLING);
    range_says(f, 1, "HTTP/1.1 206 Partial Content", QUARTER, "\"v1\"");
    range_sends(f, 1, QUARTER, 2 * QUARTER);
    assert_int_equal(o->have, 3 * QUARTER); /* the head caught up over range 2 */
    range_ended(f, 1, CURLE_OK);
    range_ended(f, 2, CURLE_OK);
    range_says(f, 3, "HTTP/1.1 206 Partial Content", 3 * QUARTER, "\"v1\"");
    range_sends(f, 3, 3 * QUARTER, BLOB);
    range_ended(f, 3, CURLE_OK);
    assert_string_equal(fs.calls, "begin_file begin_body write_at append append advance append "
                                  "finish release");
    assert_memory_equal(o->file, blob, BLOB);
    blob_is_what_finish_got();
}

/* A range answered under another ETag: upstream serves another version. Nothing of that answer
 * is written; the download starts over from byte 0. */
static void a_range_of_another_version_starts_over(void **state)
{
    (void)state;
    int64_t stops = atomic_load(&stats.fill_stops);
    struct transfer *t = start_fill();
    struct fill *f = t->fill;
    transfer_body(t, blob, 1000);
    assert_int_equal(range_says(f, 1, "HTTP/1.1 206 Partial Content", QUARTER, "\"v2\""), 0);
    assert_int_equal(fill_range_body(f, 1, blob, 100), 0);
    range_ended(f, 1, CURLE_WRITE_ERROR);
    assert_int_equal(atomic_load(&stats.fill_stops) - stops, 1);
    assert_null(t->fill);
    assert_int_equal(transfer_state_of(t), TS_ASKING); /* from byte 0 */
    assert_false(asks_with(t, "Range: bytes=1000-"));
    assert_string_equal(fs.calls, "begin_file begin_body append restart");
    transfer_stop(t);
}

/* Accept-Ranges, then a 200 to a range under the same ETag: a lie. The fill stops; the first
 * connection goes on to the end, alone. */
static void a_whole_body_to_a_range_goes_on_alone(void **state)
{
    (void)state;
    struct transfer *t = start_fill();
    struct fill *f = t->fill;
    assert_int_equal(range_says(f, 1, "HTTP/1.1 200 OK", QUARTER, "\"v1\""), 0);
    range_ended(f, 1, CURLE_WRITE_ERROR);
    assert_null(t->fill);
    assert_int_equal(transfer_body(t, blob, BLOB), BLOB);
    ended(t, CURLE_OK);
    assert_string_equal(fs.calls, "begin_file begin_body append finish release");
    blob_is_what_finish_got();
}

/* No range has proved itself when the download's own connection reaches its range's end: it is
 * held there (paused), not cut, and cut once one proves itself (told from the loop's timers). */
static void the_head_is_held_at_its_end_until_a_range_proves_itself(void **state)
{
    (void)state;
    struct transfer *t = start_fill();
    struct fill *f = t->fill;
    assert_int_equal(transfer_body(t, blob, QUARTER), QUARTER);
    assert_int_equal(transfer_body(t, blob + QUARTER, 100), CURL_WRITEFUNC_PAUSE);
    assert_int_equal(transfer_body(t, blob + QUARTER, 100), CURL_WRITEFUNC_PAUSE);
    assert_int_not_equal(range_says(f, 1, "HTTP/1.1 206 Partial Content", QUARTER, "\"v1\""), 0);
    assert_int_equal(timer_run(&loop.timers, clock_ms), 1);     /* FILL_PROVED: let go */
    assert_int_equal(transfer_body(t, blob + QUARTER, 100), 0); /* cut at its range's end */
    ended(t, CURLE_WRITE_ERROR);
    assert_int_equal(transfer_state_of(t), TS_FILLING);
    assert_non_null(t->fill);
    transfer_stop(t);
}

/* Every range refused (an origin serving one connection at a time: 503; or refusing ranges
 * only: 404) while the download's own connection is held at its range's end: the fill stops and
 * that connection goes on to the end, alone; the refusals are no attempt of the download's
 * (issue 66: cut at its range's end first, its re-asks refused too, it failed). */
static void refused_ranges_let_the_held_head_go_on_alone(void **state)
{
    (void)state;
    int64_t stops = atomic_load(&stats.fill_stops), retries = atomic_load(&stats.download_retries);
    struct transfer *t = start_fill();
    struct fill *f = t->fill;
    assert_int_equal(transfer_body(t, blob, QUARTER), QUARTER);
    assert_int_equal(transfer_body(t, blob + QUARTER, 100), CURL_WRITEFUNC_PAUSE);
    assert_int_equal(range_says(f, 1, "HTTP/1.1 503 Service Unavailable", QUARTER, "\"v1\""), 0);
    range_ended(f, 1, CURLE_WRITE_ERROR);
    assert_null(t->fill);
    assert_int_equal(atomic_load(&stats.fill_stops) - stops, 1);
    assert_int_equal(transfer_state_of(t), TS_ASKING);
    assert_int_equal(transfer_body(t, blob + QUARTER, BLOB - QUARTER), BLOB - QUARTER);
    ended(t, CURLE_OK);
    assert_string_equal(fs.calls, "begin_file begin_body append append finish release");
    assert_int_equal(atomic_load(&stats.download_retries), retries);
    blob_is_what_finish_got();
}

/* A range cut midway is asked again, after the backoff, for the bytes it lacks. */
static void a_cut_range_is_asked_again_for_the_rest(void **state)
{
    (void)state;
    struct transfer *t = start_fill();
    struct fill *f = t->fill;
    int64_t asked = atomic_load(&stats.fill_ranges);
    range_says(f, 1, "HTTP/1.1 206 Partial Content", QUARTER, "\"v1\"");
    range_sends(f, 1, QUARTER, QUARTER + 1000);
    range_ended(f, 1, CURLE_RECV_ERROR);
    assert_int_equal(atomic_load(&stats.fill_ranges), asked);
    clock_ms += 1000;
    timer_run(&loop.timers, clock_ms);
    assert_int_equal(atomic_load(&stats.fill_ranges) - asked, 1);
    /* its answer must start where the cut left it */
    assert_int_equal(range_says(f, 1, "HTTP/1.1 206 Partial Content", QUARTER, "\"v1\""), 0);
    transfer_stop(t);
}

/* The first connection fails before its first byte: it asks for the whole body again, and the
 * ranges already asked go (another version's whole body must never meet their bytes). */
static void a_fill_whose_head_has_no_byte_asks_again_whole(void **state)
{
    (void)state;
    struct transfer *t = start_fill();
    struct fill *f = t->fill;
    range_says(f, 1, "HTTP/1.1 206 Partial Content", QUARTER, "\"v1\"");
    range_sends(f, 1, QUARTER, QUARTER + 1000);
    ended(t, CURLE_RECV_ERROR);
    clock_ms += 1000;
    timer_run(&loop.timers, clock_ms);
    assert_int_equal(transfer_state_of(t), TS_ASKING);
    assert_null(t->fill);
    assert_false(asks_with(t, "Range: bytes=0-262143"));
    transfer_stop(t);
}

/* --- the table of moves (transfer.h) -------------------------------------------------------- */

/* Every move transfer.h draws is in the table, and nothing else: the states that wait for an
 * event cannot skip the step that starts or ends an attempt, and an ended download moves no
 * more (move() asserts each against it). */
static void the_table_of_moves_is_transfer_h_s(void **state)
{
    static const enum transfer_state drawn[][2] = {
        {TS_OPENING, TS_SOURCE},
        {TS_OPENING, TS_FAILED},
        {TS_SOURCE, TS_PROBING},
        {TS_SOURCE, TS_ATTEMPT},
        {TS_SOURCE, TS_FAILED},
        {TS_PROBING, TS_ATTEMPT},
        {TS_PROBING, TS_FAILED},
        {TS_ATTEMPT, TS_ASKING},
        {TS_ATTEMPT, TS_OPENING},
        {TS_ATTEMPT, TS_FAILED},
        {TS_ASKING, TS_ENDED},
        {TS_ASKING, TS_ATTEMPT},
        {TS_ASKING, TS_OPENING},
        {TS_ASKING, TS_FAILED},
        {TS_ENDED, TS_DONE},
        {TS_ENDED, TS_ATTEMPT},
        {TS_ENDED, TS_OPENING},
        {TS_ENDED, TS_BACKOFF},
        {TS_ENDED, TS_FILLING},
        {TS_ENDED, TS_FAILED},
        {TS_FILLING, TS_DONE},
        {TS_FILLING, TS_ATTEMPT},
        {TS_FILLING, TS_OPENING},
        {TS_FILLING, TS_FAILED},
        {TS_BACKOFF, TS_ATTEMPT},
        {TS_BACKOFF, TS_OPENING},
        {TS_BACKOFF, TS_FAILED},
        /* a parent that fails sends the download to the origin's SOURCE (parent.h) */
        {TS_ATTEMPT, TS_SOURCE},
        {TS_ASKING, TS_SOURCE},
        {TS_ENDED, TS_SOURCE},
        {TS_FILLING, TS_SOURCE},
        {TS_BACKOFF, TS_SOURCE},
    };
    size_t n = sizeof(drawn) / sizeof(drawn[0]), allowed = 0;
    (void)state;
    for (size_t i = 0; i < n; i++)
        assert_true(transfer_may_move(drawn[i][0], drawn[i][1]));
    for (int from = TS_OPENING; from <= TS_FAILED; from++)
        for (int to = TS_OPENING; to <= TS_FAILED; to++)
            allowed += transfer_may_move(from, to);
    assert_int_equal(allowed, n);
    /* the moves a loose assignment could once make */
    assert_false(transfer_may_move(TS_OPENING, TS_ASKING));
    assert_false(transfer_may_move(TS_BACKOFF, TS_ASKING));
    assert_false(transfer_may_move(TS_ASKING, TS_DONE));
    assert_false(transfer_may_move(TS_PROBING, TS_ASKING));
    for (int to = TS_OPENING; to <= TS_FAILED; to++) {
        assert_false(transfer_may_move(TS_DONE, to));
        assert_false(transfer_may_move(TS_FAILED, to));
        assert_false(transfer_may_move(to, to));
    }
}

/* downloads_active follows the state: counted from the start, through a backoff, until the
 * last attempt ends. */
static void a_download_is_counted_while_in_progress(void **state)
{
    (void)state;
    int64_t before = atomic_load(&stats.downloads_active);
    struct transfer *t = start();
    assert_int_equal(atomic_load(&stats.downloads_active) - before, 1);
    respond(t, (const char *const[]){"HTTP/1.1 503 Service Unavailable", NULL});
    ended(t, CURLE_WRITE_ERROR);
    assert_int_equal(transfer_state_of(t), TS_BACKOFF);
    assert_int_equal(atomic_load(&stats.downloads_active) - before, 1);
    clock_ms += 1000;
    timer_run(&loop.timers, clock_ms);
    respond(t, ok_v1);
    body(t, "0123456789");
    ended(t, CURLE_OK);
    assert_int_equal(atomic_load(&stats.downloads_active), before);
}

/* --- one policy for every handle (easy.h) --------------------------------------------------- */

/* The download's host is held down once its fill has begun: none of the fill's pieces is asked
 * (not one request to the held host), the fill stops and the download's own connection, already
 * under way, goes on alone to the end. */
static void a_held_host_gets_no_piece_requests(void **state)
{
    (void)state;
    clock_ms = monotonic_ms(); /* hosts.c reads the real clock too */
    hosts_configure(1, NULL);
    for (size_t i = 0; i < sizeof(blob); i++)
        blob[i] = (char)(i * 7);
    terms.fill_min_size = 1;
    struct transfer *t = start();
    int64_t asked = atomic_load(&stats.fill_ranges), stops = atomic_load(&stats.fill_stops);
    hosts_result("http://origin.test/file", NULL, HOST_ORIGIN, HOST_DOWN, false, clock_ms);
    assert_true(hosts_ends_retries("http://origin.test/file", NULL));
    respond(t, fill_ok);
    assert_non_null(t->fill);
    timer_run(&loop.timers, clock_ms); /* where its pieces would be asked */
    assert_int_equal(atomic_load(&stats.fill_ranges), asked);
    assert_int_equal(atomic_load(&stats.fill_stops) - stops, 1);
    assert_null(t->fill);
    assert_int_equal(transfer_body(t, blob, BLOB), BLOB);
    ended(t, CURLE_OK);
    assert_string_equal(fs.calls, "begin_file begin_body append finish release");
    hosts_configure(0, NULL);
}

/* The download's terms, not --fill-connections, say how many connections its fill takes. */
static void a_fill_takes_its_terms_connections(void **state)
{
    (void)state;
    cfg.fill_connections = 8;
    terms.fill_connections = 2;
    terms.fill_min_size = 1;
    int64_t asked = atomic_load(&stats.fill_ranges);
    struct transfer *t = start();
    respond(t, fill_ok);
    assert_non_null(t->fill);
    timer_run(&loop.timers, clock_ms);
    assert_int_equal(atomic_load(&stats.fill_ranges) - asked, 1); /* one beside its own */
    transfer_stop(t);
}

/* A piece's connection refused counts for its host as a download's does: at --origin-failures
 * the host is held down and the fill stops; the download's own connection had its range (cut
 * there, another range having proved itself), so its next attempt (the rest, alone) meets the
 * hold as a new download does: refused at once (503), counted as one, and no request goes. */
static void a_piece_s_failures_count_for_its_host(void **state)
{
    (void)state;
    clock_ms = monotonic_ms();
    hosts_configure(1, NULL);
    int64_t held_before = atomic_load(&stats.held_down_failures);
    struct transfer *t = start_fill();
    struct fill *f = t->fill;
    int64_t asked = atomic_load(&stats.fill_ranges);
    assert_int_not_equal(range_says(f, 2, "HTTP/1.1 206 Partial Content", 2 * QUARTER, "\"v1\""),
                         0);
    assert_int_equal(transfer_body(t, blob, QUARTER + 100), QUARTER); /* its own range is in */
    ended(t, CURLE_WRITE_ERROR);
    assert_int_equal(transfer_state_of(t), TS_FILLING);
    range_ended(f, 1, CURLE_COULDNT_CONNECT);
    assert_true(hosts_ends_retries("http://origin.test/file", NULL));
    assert_int_equal(atomic_load(&stats.fill_ranges), asked);
    assert_int_equal(fs.fail_status, 503);
    assert_non_null(strstr(fs.fail_reason, "is down since"));
    assert_int_equal(atomic_load(&stats.held_down_failures) - held_before, 1);
    hosts_configure(0, NULL);
}

static struct probe_result got;
static int got_calls;

static void page_done(const struct probe_result *res, const char *body, size_t len, void *arg)
{
    (void)body, (void)len, (void)arg;
    got = *res;
    got_calls++;
}

/* A listing page (upstream_get) asks its host's hold as a download does: held down, no request
 * goes, and it is refused as a download is (503 with its Retry-After), counted as one. */
static void a_page_of_a_held_host_is_refused_as_a_download(void **state)
{
    (void)state;
    clock_ms = monotonic_ms();
    hosts_configure(1, NULL);
    int64_t held_before = atomic_load(&stats.held_down_failures);
    hosts_result("http://bucket.test/", NULL, HOST_ORIGIN, HOST_DOWN, false, clock_ms);
    got_calls = 0;
    assert_int_equal(probe_get(&loop, "http://bucket.test/?list-type=2", NULL, page_done, NULL), 0);
    probe_start_asked(&loop);
    assert_int_equal(got_calls, 1);
    assert_int_equal(got.status, 0);
    assert_int_equal(got.failure_status, 503);
    assert_true(got.retry_after > 0);
    assert_non_null(strstr(got.failure, "is down since"));
    assert_int_equal(atomic_load(&stats.held_down_failures) - held_before, 1);
    hosts_configure(0, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_table_of_moves_is_transfer_h_s),
        cmocka_unit_test_setup_teardown(a_download_is_counted_while_in_progress, setup, teardown),
        cmocka_unit_test_setup_teardown(a_held_host_gets_no_piece_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(a_piece_s_failures_count_for_its_host, setup, teardown),
        cmocka_unit_test_setup_teardown(a_fill_takes_its_terms_connections, setup, teardown),
        cmocka_unit_test_setup_teardown(a_page_of_a_held_host_is_refused_as_a_download, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_whole_body_finishes, setup, teardown),
        cmocka_unit_test_setup_teardown(a_fill_writes_ahead_and_reads_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(a_range_of_another_version_starts_over, setup, teardown),
        cmocka_unit_test_setup_teardown(a_whole_body_to_a_range_goes_on_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(the_head_is_held_at_its_end_until_a_range_proves_itself,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(refused_ranges_let_the_held_head_go_on_alone, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_cut_range_is_asked_again_for_the_rest, setup, teardown),
        cmocka_unit_test_setup_teardown(a_fill_whose_head_has_no_byte_asks_again_whole, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_retryable_status_backs_off_then_retries, setup, teardown),
        cmocka_unit_test_setup_teardown(retryable_statuses_to_the_end_fail, setup, teardown),
        cmocka_unit_test_setup_teardown(a_broken_body_resumes_with_a_range, setup, teardown),
        cmocka_unit_test_setup_teardown(a_changed_validator_starts_over, setup, teardown),
        cmocka_unit_test_setup_teardown(a_new_version_waits_for_its_file, setup, teardown),
        cmocka_unit_test_setup_teardown(past_the_deadline_the_download_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(a_refusal_fails_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(a_file_the_store_could_not_make_ends_it, setup, teardown),
        cmocka_unit_test_setup_teardown(stopping_sets_a_running_download_aside, setup, teardown),
        cmocka_unit_test_setup_teardown(stopping_fails_a_download_without_its_file, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_mirror_is_asked_first_and_stopping_sets_it_aside, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
