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
#include "upstream/mirror.h"
#include "upstream/probe.h"
#include "stats/stats.h"
#include "upstream/transfer.h"

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
static struct object *f_new_version(struct object *obj, const char *reason)
{
    (void)reason;
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
    (void)obj, (void)digest;
    called("finish");
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
static void f_fail_held(struct object *obj, const char *reason, int retry_after)
{
    (void)retry_after;
    f_fail(obj, 503, reason);
}
static bool f_offer_stale(struct object *obj, enum stale_cause cause, int fwd_status)
{
    (void)obj, (void)cause, (void)fwd_status;
    return false;
}
static int f_keep_stale(struct object *obj, int status, int fwd_status, const char *reason)
{
    (void)obj, (void)status, (void)fwd_status, (void)reason;
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

static const struct transfer_store recording = {
    f_begin_file, f_file_ready,    f_take_prefix,  f_snapshot,     f_progress,    f_stale,
    f_begin_body, f_continue_body, f_staleness,    f_restart,      f_new_version, f_append,
    f_write_at,   f_advance,       f_digest_range, f_set_rate,     f_announce,    f_finish,
    f_renew,      f_fail,          f_set_aside,    f_fail_held,    f_offer_stale, f_keep_stale,
    f_release,    f_url,           f_error,        f_error_status,
};

/* --- the loop around it -------------------------------------------------------------------- */

static struct config cfg;
static struct upstream_loop loop;
static int64_t clock_ms;

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
    return 0;
}

static int teardown(void **state)
{
    (void)state;
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
        transfer_new(&loop, &recording, new_object(source), source, 0, NULL, "origin.test");
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
        transfer_new(&loop, &recording, new_object(source), source, 0, NULL, "origin.test");
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
        transfer_new(&loop, &recording, new_object(source), source, 0, NULL, "origin.test");
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
    char err[256];
    cfg.n_mirror_rules = 1;
    snprintf(cfg.mirror_rules[0].pattern, sizeof(cfg.mirror_rules[0].pattern),
             "^http://origin\\.test");
    snprintf(cfg.mirror_rules[0].mirrors[0], sizeof(cfg.mirror_rules[0].mirrors[0]),
             "http://mirror.test");
    cfg.mirror_rules[0].n = 1;
    assert_int_equal(mirror_init(&cfg, err, sizeof(err)), 0);
    char *source = strdup("http://origin.test/file");
    struct transfer *t =
        transfer_new(&loop, &recording, new_object(source), source, 0, NULL, "origin.test");
    fs.ready = 1;
    transfer_poll_file(t);
    assert_int_equal(transfer_state_of(t), TS_PROBING);
    atomic_store(&loop.stopping, true);
    probe_close(&loop); /* the mirror's probe ends unanswered: dropped while stopping */
    assert_int_equal(transfer_state_of(t), TS_PROBING);
    transfer_stop(t);
    assert_string_equal(fs.calls, "begin_file set_aside release");
    mirror_cleanup(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(a_whole_body_finishes, setup, teardown),
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
