#include "upstream/probe.h"
#include "upstream/hosts.h"
#include "config/buckets.h"
#include "base/buf.h"
#include "base/clock.h"
#include "stats/stats.h"

#include <assert.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum probe_state { PROBE_QUEUED, PROBE_ASKING, PROBE_BACKOFF };

#define PROBE_MAGIC 0x50524f42u
#define CHECK_PROBE(p) assert((p) != NULL && (p)->magic == PROBE_MAGIC)

/* One question of probe_ask(), or one document of probe_get(). */
struct probe {
    struct handle h; /* its easy handle, its host's hold and its turn under the cap (easy.h) */
    unsigned magic;
    enum probe_state state;
    struct upstream_loop *loop;
    struct rate_flow flow; /* a document's turn under the uplink cap, beside downloads' */
    char *url;
    struct curl_slist *headers;
    struct upstream_response resp;
    probe_done_fn *done;
    doc_done_fn *get_done; /* a document: the body is kept, and handed to get_done instead */
    const struct bucket_auth *auth;
    struct buf body;
    void *arg;
    /* The source it asks (source_req.h: what its requests carry, how its answer is read and
     * told; ops NULL: a plain URL's). Its record is the probe's, released with it. */
    struct source_req src;
    char errbuf[CURL_ERROR_SIZE];
    int64_t asked_ms; /* when it was asked for: a failure says the time spent, as a download's */
    /* A confirmation (upstream_probe) is asked as a download would be: a retryable failure is
     * tried again after the same backoff, up to --download-retries, so an outage reads the same
     * for a cached object as for an uncached one. A mirror's or the origin's question before a
     * download is not (the download decides next). */
    bool retries;
    bool resolved_again;     /* a name that did not resolve was asked once more (once) */
    bool host_check;         /* a check of its host's root (probe_check_host): no redirect */
    int held;                /* its host held down: no attempt went; seconds until one may */
    int attempts;            /* started so far */
    struct timer retry;      /* BACKOFF: the next attempt */
    bool head;               /* its source's probes ask HEAD (source_req.h) */
    char *userpwd;           /* a document's basic auth (struct doc_ask), NULL none */
    char challenge[512];     /* its answer's WWW-Authenticate */
    void (*call)(void *arg); /* probe_call's: run at the next pass, nothing asked */
    /* A document of a registry's token realm (struct doc_ask): that registry, else NULL. */
    const struct registry *realm_of;
    char who[FAILURE_WHO_MAX]; /* a document's failures name (struct doc_ask), "" "upstream" */
    /* A check's (probe_check_host): the address of the route it checks, and how curl's last
     * attempt ended (what the check's end says of the host). */
    struct outgoing_address from;
    CURLcode ended;
    struct probe *next, **prev;
};

static struct {
    pthread_mutex_t lock; /* guards queue and closed */
    struct probe *queue;  /* asked for, not started yet */
    bool closed;
    struct probe *asking; /* upstream thread only: started, running or between attempts */
} pr = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* A probe's headers; each response's (redirects, 1xx) replace the previous one's. */
static size_t probe_header(char *data, size_t size, size_t n, void *arg)
{
    struct probe *p = arg;
    size_t len = size * n;
    char line[HEADER_TYPE_MAX + 64];
    CHECK_PROBE(p);
    if (!copy_header_line(data, len, line, sizeof(line)))
        return len; /* nothing a probe reads is that long */
    if (response_is_status_line(line)) {
        response_reset(&p->resp);
        p->challenge[0] = '\0';
        if (p->src.ops && p->src.ops->status_line)
            p->src.ops->status_line(p->src.rec, line);
    } else if (strncasecmp(line, "WWW-Authenticate:", 17) == 0) {
        /* a Bearer challenge is what a registry's token dance needs: it wins over a Basic */
        if (!p->challenge[0] || strncasecmp(line + 17 + strspn(line + 17, " "), "Bearer", 6) == 0)
            snprintf(p->challenge, sizeof(p->challenge), "%s", line + 17 + strspn(line + 17, " "));
    } else if (line[0]) {
        response_header(&p->resp, line);
        if (p->src.ops && p->src.ops->header)
            p->src.ops->header(p->src.rec, line);
    }
    return len;
}

/* The headers are all a probe wants: the first body byte ends it. A document's body is kept,
 * its bytes taken through the uplink cap as a download's are (easy_take): a listing page waits
 * its turn, one flow of its own beside each download's (a turn, not the end of the downloads),
 * and counts in bytes_downloaded as every body byte from upstream does. */
static size_t probe_body(char *data, size_t size, size_t n, void *arg)
{
    struct probe *p = arg;
    CHECK_PROBE(p);
    if (!p->get_done || p->body.len + size * n > UPSTREAM_DOC_MAX)
        return 0;
    if (!easy_take(&p->h, size * n))
        return CURL_WRITEFUNC_PAUSE;
    buf_addn(&p->body, data, size * n);
    atomic_fetch_add(&stats.bytes_downloaded, (int64_t)(size * n));
    return p->body.failed ? 0 : size * n;
}

static void free_probe(struct probe *p)
{
    assert(!p->h.host_probe && !p->h.wait.queued); /* easy_ended ran for its last attempt */
    assert(!p->flow.waiting.head);                 /* so not in the cap's queue (rate.h) */
    if (p->h.easy)
        curl_easy_cleanup(p->h.easy);
    curl_slist_free_all(p->headers);
    buf_free(&p->body);
    if (p->userpwd)
        OPENSSL_cleanse(p->userpwd, strlen(p->userpwd));
    free(p->userpwd);
    free(p->url);
    if (p->src.ops && p->src.ops->release)
        p->src.ops->release(p->src.rec);
    p->magic = 0;
    free(p);
}

static void link_asking(struct probe *p)
{
    p->next = pr.asking;
    p->prev = &pr.asking;
    if (pr.asking)
        pr.asking->prev = &p->next;
    pr.asking = p;
}

static void unlink_asking(struct probe *p)
{
    *p->prev = p->next;
    if (p->next)
        p->next->prev = p->prev;
}

/* Who its failures name: its source's words, a document's, else "upstream" (failure_summary). */
static void who_failed(const struct probe *p, char *out, size_t size)
{
    const struct source_req_ops *o = p->src.ops;
    if (o && o->who)
        o->who(p->src.rec, out, size);
    else
        snprintf(out, size, "%s", o ? o->name : p->who[0] ? p->who : "upstream");
}

/* What a download failing this way would say (fail_attempt): its attempts, time and why; or,
 * its host held down, what a download would say then (transfer_course.c's held_down). */
static void probe_failure(const struct probe *p, CURLcode rc, long status, struct probe_result *res)
{
    char why[CURL_ERROR_SIZE + 400], host[256], who[FAILURE_WHO_MAX];
    const struct source_req_ops *o = p->src.ops;
    if (p->held) {
        res->failure_status = easy_held_status(&p->h);
        res->retry_after = p->held;
        snprintf(res->failure, sizeof(res->failure), "%s", p->errbuf);
        return;
    }
    if (status && easy_limited(&p->h, res->failure, sizeof(res->failure), &res->retry_after)) {
        res->failure_status = 429; /* its answer held its registry (or another's did): so told */
        return;
    }
    struct upstream_error e = error_for_clients(rc, false, false);
    res->failure_status = e.status;
    if (status_retryable(status)) {
        res->failure_status = (int)status;
        snprintf(why, sizeof(why), "%s", res->error); /* upstream's words, or its source's */
    } else if (rc == CURLE_COULDNT_RESOLVE_HOST) {
        asked_host(p->h.easy, p->url, host, sizeof(host));
        snprintf(why, sizeof(why), "cannot resolve host %s", host);
    } else if (!o || !o->silent || !o->silent(p->src.rec, rc, p->errbuf, why, sizeof(why))) {
        snprintf(why, sizeof(why), "%s: %s", e.what, res->error); /* else: its source's words */
    }
    who_failed(p, who, sizeof(who));
    failure_summary(res->failure, sizeof(res->failure), who, p->attempts,
                    monotonic_ms() - p->asked_ms, why);
}

/* Whether curl's end (`rc`) came with an answer: a status, and the body read or, for a probe,
 * cut by us at its first byte. */
static bool probe_answered(const struct probe *p, CURLcode rc, long status)
{
    return (rc == CURLE_OK || (rc == CURLE_WRITE_ERROR && !p->get_done)) && status >= 200;
}

/* The answer's words, as upstream said them. */
static void answer_of(const struct probe *p, long status, struct probe_result *res)
{
    res->status = (int)status;
    snprintf(res->etag, sizeof(res->etag), "%s", p->resp.etag);
    snprintf(res->last_modified, sizeof(res->last_modified), "%s", p->resp.last_modified);
    snprintf(res->content_type, sizeof(res->content_type), "%s", p->resp.content_type);
    snprintf(res->content_encoding, sizeof(res->content_encoding), "%s", p->resp.content_encoding);
    snprintf(res->filename, sizeof(res->filename), "%s", p->resp.filename);
    snprintf(res->challenge, sizeof(res->challenge), "%s", p->challenge);
    res->total = p->resp.has_range ? p->resp.range_total
                 : status == 200   ? p->resp.content_length
                                   : -1;
}

/* Its source's words for its answer `status` into why[size] (false: it has none of its own). */
static bool said(const struct probe *p, long status, char *why, size_t size)
{
    if (!p->src.ops || !p->src.ops->said)
        return false;
    p->src.ops->said(p->src.rec, status, why, size);
    return true;
}

/* Whether its source says `status` is a refusal of its own, not the URL's: its words then in
 * why[size] (left as it was otherwise: an answer has none). */
static bool refused_by_source(const struct probe *p, long status, char *why, size_t size)
{
    char words[sizeof(((struct probe_result *)NULL)->error)];
    if (!p->src.ops || !p->src.ops->said ||
        !p->src.ops->said(p->src.rec, status, words, sizeof(words)))
        return false;
    snprintf(why, size, "%s", words);
    return true;
}

/* Hand the answer over and free the probe, which has left every list (rc: how curl ended; a
 * write error is our own stop at the body). */
static void end_probe(struct probe *p, CURLcode rc, bool stopping)
{
    struct probe_result res = {.total = -1};
    char who[FAILURE_WHO_MAX];
    long status = 0;
    CHECK_PROBE(p);
    assert(upstream_on_thread());
    p->ended = rc;
    curl_easy_getinfo(p->h.easy, CURLINFO_RESPONSE_CODE, &status);
    if (stopping) {
        snprintf(res.error, sizeof(res.error), "arca is shutting down");
    } else if (p->retries && probe_answered(p, rc, status) && status_retryable(status)) {
        /* its attempts are over: worded as the download's last words, with the status */
        if (!said(p, status, res.error, sizeof(res.error)))
            snprintf(res.error, sizeof(res.error), "upstream answered %ld", status);
        probe_failure(p, rc, status, &res);
    } else if (probe_answered(p, rc, status) &&
               refused_by_source(p, status, res.error, sizeof(res.error))) {
        /* its source's own refusal, not the URL's: its words */
        res.failure_status = 502;
        who_failed(p, who, sizeof(who));
        failure_summary(res.failure, sizeof(res.failure), who, p->attempts,
                        monotonic_ms() - p->asked_ms, res.error);
    } else if (probe_answered(p, rc, status)) {
        answer_of(p, status, &res);
    } else {
        snprintf(res.error, sizeof(res.error), "%s",
                 easy_refused(&p->h, rc) ? p->h.refused
                 : p->errbuf[0]          ? p->errbuf
                                         : curl_easy_strerror(rc));
        probe_failure(p, rc, 0, &res);
    }
    if (p->get_done)
        p->get_done(&res, p->body.data ? p->body.data : "", p->body.len, p->arg);
    else
        p->done(&res, p->arg);
    free_probe(p);
}

/* Its host held down, no attempt went: told as a download's would be (503, its Retry-After),
 * and counted as one when the answer is a client's (a confirmation, a listing page; a mirror's
 * question is its download's, which counts its own). */
static void held(struct probe *p, int retry_after)
{
    p->held = retry_after;
    if (p->retries || p->get_done)
        atomic_fetch_add(&stats.held_down_failures, 1);
    unlink_asking(p);
    end_probe(p, CURLE_COULDNT_CONNECT, false);
}

/* One attempt of a probe (in pr.asking): into the multi handle (easy_go: its host's hold as a
 * download's attempt), or ended at once. */
static void start_attempt(struct probe *p)
{
    char host[256];
    int retry_after = 0;
    CHECK_PROBE(p);
    assert(upstream_on_thread() && p->state != PROBE_ASKING);
    p->attempts++;
    p->state = PROBE_ASKING;
    p->h.refused[0] = p->errbuf[0] = '\0';
    p->body.len = 0;
    response_reset(&p->resp);
    host_name(p->url, host, sizeof(host));
    if (host_never_resolves(host, strlen(host))) { /* as a download's: no resolver asked */
        unlink_asking(p);
        snprintf(p->errbuf, sizeof(p->errbuf), "cannot resolve host %.200s", host);
        end_probe(p, CURLE_COULDNT_RESOLVE_HOST, false);
        return;
    }
    switch (easy_go(&p->h, true, p->errbuf, sizeof(p->errbuf), &retry_after)) {
    case EASY_HELD: /* no attempt, no wait */
        held(p, retry_after);
        break;
    case EASY_FAILED:
        unlink_asking(p);
        end_probe(p, CURLE_FAILED_INIT, false);
        break;
    case EASY_ASKING:
        break;
    }
}

static void retry_due(void *arg)
{
    struct probe *p = arg;
    CHECK_PROBE(p);
    assert(p->state == PROBE_BACKOFF);
    start_attempt(p);
}

/* Wait `ms` before the next attempt; ended at once when the timer cannot be armed. */
static void back_off(struct probe *p, int64_t ms, CURLcode rc)
{
    p->state = PROBE_BACKOFF;
    if (timer_arm(&p->loop->timers, &p->retry, monotonic_ms() + ms, retry_due, p) < 0) {
        unlink_asking(p);
        end_probe(p, rc, false);
    }
}

/* A probe's attempt ended (its handle out of the multi handle): ask again after a download's
 * backoff when it retries and the failure is worth it, or once more after RESOLVE_RETRY_MS for
 * a name that did not resolve; otherwise hand the answer over. */
void probe_attempt_ended(struct handle *h, CURLcode rc)
{
    struct probe *p = (struct probe *)h;
    long status = 0;
    CHECK_PROBE(p);
    assert(upstream_on_thread() && p->state == PROBE_ASKING);
    curl_easy_getinfo(p->h.easy, CURLINFO_RESPONSE_CODE, &status);
    bool answered = probe_answered(p, rc, status);
    bool stopping = atomic_load(&p->loop->stopping);
    const struct config *cfg = p->loop->cfg;
    easy_ended(&p->h, rc); /* as a download's: what it says of its host, its probe mark gone */
    /* a registry's limit its answer met (easy_ended held it): asked again only after the hold */
    bool limited = answered && easy_limited(&p->h, NULL, 0, NULL);
    if (p->retries && !stopping && !limited && p->attempts <= cfg->download_retries &&
        (answered ? status_retryable(status)
                  : error_retryable(rc, false, p->h.refused[0], false))) {
        back_off(p, retry_backoff_ms(cfg->retry_delay_ms, p->attempts), rc);
    } else if (!answered && !stopping && resolve_retryable(rc, p->resolved_again, false)) {
        p->resolved_again = true;
        back_off(p, RESOLVE_RETRY_MS, rc);
    } else {
        unlink_asking(p);
        end_probe(p, rc, false);
    }
}

/* Options of every attempt of `p`. */
static void setup_probe(struct probe *p)
{
    easy_setup(&p->h, p->loop, p->h.easy, p->url, &p->flow, p->errbuf);
    p->h.realm_of = p->realm_of;
    curl_easy_setopt(p->h.easy, CURLOPT_HTTPHEADER, p->headers);
    curl_easy_setopt(p->h.easy, CURLOPT_HEADERFUNCTION, probe_header);
    curl_easy_setopt(p->h.easy, CURLOPT_HEADERDATA, p);
    curl_easy_setopt(p->h.easy, CURLOPT_WRITEFUNCTION, probe_body);
    curl_easy_setopt(p->h.easy, CURLOPT_WRITEDATA, p);
    easy_sign_for(p->h.easy, p->auth);
    if (p->head)
        curl_easy_setopt(p->h.easy, CURLOPT_NOBODY, 1L);
    if (p->userpwd) {
        curl_easy_setopt(p->h.easy, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(p->h.easy, CURLOPT_USERPWD, p->userpwd);
    }
    curl_easy_setopt(p->h.easy, CURLOPT_TIMEOUT, (long)(p->loop->cfg->connect_timeout + 30));
    if (p->host_check) {
        int64_t ms = (int64_t)p->loop->cfg->stall_timeout * 1000;
        p->h.outgoing = &p->from; /* the route's address: another may be let in or not */
        curl_easy_setopt(p->h.easy, CURLOPT_FOLLOWLOCATION, 0L); /* its own answer, not another's */
        curl_easy_setopt(p->h.easy, CURLOPT_TIMEOUT_MS,
                         (long)(ms < HOSTS_CHECK_MAX_MS ? ms : HOSTS_CHECK_MAX_MS));
    }
}

void probe_start_asked(struct upstream_loop *loop)
{
    assert(upstream_on_thread());
    pthread_mutex_lock(&pr.lock);
    struct probe *q = pr.queue;
    pr.queue = NULL;
    pthread_mutex_unlock(&pr.lock);
    (void)loop;
    while (q) {
        struct probe *p = q;
        q = q->next;
        CHECK_PROBE(p);
        assert(p->state == PROBE_QUEUED);
        if (p->call) {
            p->call(p->arg);
            free_probe(p);
            continue;
        }
        link_asking(p);
        setup_probe(p);
        start_attempt(p);
    }
}

/* Queue `p` for the upstream thread; -1 (p freed) once closed. */
static int queue_probe(struct upstream_loop *loop, struct probe *p)
{
    p->h.kind = HANDLE_PROBE;
    p->magic = PROBE_MAGIC;
    p->state = PROBE_QUEUED;
    p->loop = loop;
    p->asked_ms = monotonic_ms();
    timer_init(&p->retry);
    response_reset(&p->resp);
    pthread_mutex_lock(&pr.lock);
    if (pr.closed) {
        pthread_mutex_unlock(&pr.lock);
        free_probe(p);
        return -1;
    }
    p->next = pr.queue;
    pr.queue = p;
    /* Under the lock: once `closed` is set no wake-up can reach a multi handle being freed. */
    curl_multi_wakeup(loop->multi);
    pthread_mutex_unlock(&pr.lock);
    return 0;
}

/* The header lines a probe starts with: a bucket's signing and arca's Via. NULL when out of
 * memory. */
static struct curl_slist *probe_headers(const struct bucket_auth *auth)
{
    return easy_base_headers(auth, NULL);
}

int probe_ask(struct upstream_loop *loop, const char *url, const struct source_req *src,
              enum host_kind kind, probe_done_fn *done, void *arg, bool retries)
{
    struct probe *p = calloc(1, sizeof(*p));
    const struct source_req_ops *o = src ? src->ops : NULL;
    if (p && src)
        p->src = *src; /* the probe's from here: released with it */
    else if (o && o->release)
        o->release(src->rec);
    /* what its source's requests carry and set (a certificate shown: upstream thread's, the
     * rules in force read as a download's are when it starts) */
    if (!p || !(p->url = strdup(url)) || !(p->h.easy = curl_easy_init()) ||
        !(p->headers = probe_headers(NULL)) ||
        (o && o->request && !o->request(p->src.rec, SOURCE_REQ_PROBE, p->h.easy, &p->headers)) ||
        (!(o && o->probe_head) && !curl_slist_append(p->headers, "Range: bytes=0-0"))) {
        if (p)
            free_probe(p);
        return -1;
    }
    p->h.host_kind = kind;
    p->head = o && o->probe_head;
    p->done = done;
    p->arg = arg;
    p->retries = retries;
    return queue_probe(loop, p);
}

/* What a check of a host's root that ended with `res` says (hosts.h): any answer that it is
 * up; a connection closed or reset without a word, or a TLS handshake that failed, that a live
 * process will not answer that path; nothing before its time was up, or no connection, that it
 * is hung. arca stopping, arca's own refusal or a name that does not resolve say nothing. */
static enum host_check check_end(const struct probe *p, const struct probe_result *res)
{
    if (atomic_load(&p->loop->stopping) || easy_refused(&p->h, p->ended))
        return HOST_CHECK_NONE;
    if (res->status > 0)
        return HOST_CHECK_ANSWERED;
    switch (p->ended) {
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_COULDNT_CONNECT:
        return HOST_CHECK_SILENT;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_FAILED_INIT:
    case CURLE_OUT_OF_MEMORY:
    case CURLE_ABORTED_BY_CALLBACK:
        return HOST_CHECK_NONE;
    default:
        return HOST_CHECK_CLOSED;
    }
}

static void host_checked(const struct probe_result *res, void *arg)
{
    struct probe *p = arg;
    hosts_checked(p->url, &p->from, check_end(p, res), monotonic_ms());
}

int probe_check_host(struct upstream_loop *loop, const char *url,
                     const struct outgoing_address *from)
{
    char origin[HOSTS_ORIGIN_MAX + 1];
    struct probe *p = calloc(1, sizeof(*p));
    assert(upstream_on_thread());
    hosts_origin_of(url, origin, sizeof(origin) - 1);
    strcat(origin, "/");
    if (!p || !(p->url = strdup(origin)) || !(p->h.easy = curl_easy_init()) ||
        !(p->headers = easy_base_headers(NULL, NULL)) ||
        !curl_slist_append(p->headers, "Range: bytes=0-0")) {
        if (p)
            free_probe(p);
        return -1;
    }
    p->host_check = p->h.root_check = true;
    p->from = *from;
    p->done = host_checked;
    p->arg = p;
    return queue_probe(loop, p);
}

int probe_get_as(struct upstream_loop *loop, const struct doc_ask *ask, doc_done_fn *done,
                 void *arg)
{
    struct probe *p = calloc(1, sizeof(*p));
    if (!p || !(p->url = strdup(ask->url)) || !(p->h.easy = curl_easy_init()) ||
        !(p->headers = probe_headers(ask->auth)) ||
        (ask->userpwd && !(p->userpwd = strdup(ask->userpwd)))) {
        if (p)
            free_probe(p);
        return -1;
    }
    p->get_done = done;
    p->auth = ask->auth;
    p->realm_of = ask->realm_of;
    snprintf(p->who, sizeof(p->who), "%s", ask->who ? ask->who : "");
    p->arg = arg;
    return queue_probe(loop, p);
}

int probe_get(struct upstream_loop *loop, const char *url, const struct bucket_auth *auth,
              doc_done_fn *done, void *arg)
{
    return probe_get_as(loop, &(struct doc_ask){.url = url, .auth = auth}, done, arg);
}

int probe_call(struct upstream_loop *loop, void (*fn)(void *arg), void *arg)
{
    struct probe *p = calloc(1, sizeof(*p));
    if (!p)
        return -1;
    p->call = fn;
    p->arg = arg;
    return queue_probe(loop, p);
}

void probe_close(struct upstream_loop *loop)
{
    assert(upstream_on_thread());
    pthread_mutex_lock(&pr.lock);
    pr.closed = true;
    pthread_mutex_unlock(&pr.lock);
    probe_start_asked(loop);
    while (pr.asking) {
        struct probe *p = pr.asking;
        unlink_asking(p);
        timer_cancel(&loop->timers, &p->retry);
        if (p->state == PROBE_ASKING)
            easy_ended(&p->h, CURLE_OK); /* stopping: says nothing, its probe mark goes */
        end_probe(p, CURLE_OK, true);
    }
}
