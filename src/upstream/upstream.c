#include "upstream.h"
#include "buckets.h"
#include "buf.h"
#include "clock.h"
#include "grants.h"
#include "keys.h"
#include "log.h"
#include "persist.h"
#include "policy.h"
#include "stats.h"
#include "upstream_response.h"
#include "url.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <regex.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

/* What every curl handle of this thread carries first (CURLOPT_PRIVATE, the socket callback):
 * which kind of work it is, and why the address policy refused a connection. */
enum handle_kind { HANDLE_TRANSFER, HANDLE_PROBE };
struct handle {
    enum handle_kind kind;
    char refused[160];
};

/* One upstream download, over one or more attempts. Lives on the upstream thread only. */
struct transfer {
    struct handle h;
    struct object *obj;
    const char *url;     /* the object's (its key), fixed for its life: what logs show */
    char *asked;         /* the client's URL, whole: what the origin is asked for */
    const char *source;  /* what is fetched: `asked`, or a mirror's URL (one of `mirrors`) */
    int64_t grant_until; /* > 0: a signed URL, remembered as accepted once the origin says 2xx */
    const struct bucket_auth *auth; /* a bucket's object: SigV4-signed by libcurl */
    CURL *easy;
    EVP_MD_CTX *sha;
    struct curl_slist *req_headers; /* Range + If-Range of a resuming attempt, or the
                                         conditions of a revalidating one */
    int attempts;                   /* started so far */
    int64_t offset;                 /* bytes kept from earlier attempts */
    int64_t started_ms;             /* when the download began (monotonic) */
    int64_t deadline_ms;            /* the whole download, --download-timeout */
    int64_t retry_at_ms;            /* > 0: waiting out a backoff, not in the multi handle */
    bool resolved_again;            /* a name that did not resolve was asked once more */
    struct validators kept;         /* of the response the bytes kept came with */
    char host[256];                 /* of the URL asked for, for the per-host limit */
    struct upstream_response resp;  /* the response being received */
    bool body_started;              /* its body is being written */
    bool opening;     /* waiting for the persistence thread to create its file and row */
    bool conditional; /* this attempt revalidates an expired version (If-None-Match...) */
    bool start_over;  /* this response is dropped: the next attempt asks from byte 0 */
    char **mirrors;   /* --mirror: where to ask first, in order; the origin after them */
    int n_mirrors, next_mirror;
    int mirror_rule;   /* the --mirror rule they come from (mirror k is that rule's k-th) */
    bool origin_first; /* a URL with credentials: the origin must accept it before a mirror is asked
                        */
    bool renewed;      /* upstream answered 304: the expired version is the object again */
    /* What the origin said when asked before the mirrors (origin_answered): the validators the
     * object keeps though a mirror sends the bytes (a signed URL's hits are confirmed with the
     * origin, which knows nothing of a mirror's ETag), and the length a mirror must have. */
    bool origin_said;
    char origin_etag[HEADER_ETAG_MAX], origin_date[HEADER_DATE_MAX];
    int64_t origin_total;
    /* Outcome: */
    bool failed;      /* store_fail() already called */
    bool counted;     /* in stats.downloads_active */
    int retry_status; /* > 0: this attempt ended on a retryable upstream status */
    char errbuf[CURL_ERROR_SIZE];
    struct transfer *next;
};

struct pending {
    struct object *obj;
    char *source;
    int64_t grant_until;
    const struct bucket_auth *auth;
    struct pending *next;
};

/* One question of upstream_probe(), or one document of upstream_get(). */
struct probe {
    struct handle h;
    CURL *easy;
    char *url;
    struct curl_slist *headers;
    struct upstream_response resp;
    void (*done)(const struct probe_result *res, void *arg);
    /* upstream_get(): the body is kept, and handed to get_done instead. */
    void (*get_done)(const struct probe_result *res, const char *body, size_t len, void *arg);
    const struct bucket_auth *auth;
    struct buf body;
    void *arg;
    char errbuf[CURL_ERROR_SIZE];
    int64_t asked_ms; /* when it was asked for: a failure says the time spent, as a download's */
    /* A confirmation (upstream_probe) is asked as a download would be: a retryable failure is
     * tried again after the same backoff, up to --download-retries, so an outage reads the same
     * for a cached object as for an uncached one. A mirror's or the origin's question before a
     * download is not (the download decides next). Every probe asks a name that did not resolve
     * once more, as a download does. */
    bool retries;
    bool resolved_again;
    int attempts;        /* started so far */
    int64_t retry_at_ms; /* > 0: waiting, not in the multi handle */
    struct probe *next;
};

static struct {
    const struct config *cfg;
    CURLM *multi;
    pthread_t thread;
    pthread_mutex_t lock; /* guards queue and closed */
    struct pending *queue;
    struct probe *probes; /* asked for, not started yet */
    bool closed;          /* the thread has taken its last look at the queues */
    atomic_bool stopping;
    /* Upstream thread only: */
    struct pending *backlog, **backlog_tail; /* waiting for a download slot, in arrival order */
    struct transfer *active;                 /* started, running or between attempts */
    int n_active;
    struct probe *asking;                     /* probes running */
    regex_t mirror_res[CONFIG_MAX_RULES / 2]; /* cfg->mirror_rules, compiled */
    /* A mirror that did not answer at all is passed over until then (monotonic ms): one that
     * drops packets would otherwise hold every download up to --connect-timeout. */
    int64_t mirror_down_until[CONFIG_MAX_RULES / 2][CONFIG_MAX_MIRRORS];
} fx = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void end_transfer(struct transfer *t);
static void find_mirrors(struct transfer *t);
static int probe_new(const char *url, void (*done)(const struct probe_result *res, void *arg),
                     void *arg, bool retries);

/* stats.downloads_active counts downloads in progress (backoffs included). It drops before the
 * object finishes or fails, so a client that has seen the end never finds it still counted. */
static void count_active(struct transfer *t, bool active)
{
    if (t->counted != active)
        atomic_fetch_add(&stats.downloads_active, active ? 1 : -1);
    t->counted = active;
}

/* curl's own timer may fire a few ms before ours: the deadline counts as reached then. */
static bool past_deadline(const struct transfer *t)
{
    return monotonic_ms() >= t->deadline_ms - 50;
}

static void fail(struct transfer *t, int status, const char *reason)
{
    if (t->failed)
        return;
    t->failed = true;
    store_fail(t->obj, status, reason);
    log_error("fetch %s: %d %s", t->url, status, object_error(t->obj));
}

/* The download failed upstream (after its attempts): clients are told how many there were and
 * how long they took, with `why`. */
static void fail_upstream(struct transfer *t, int status, const char *why)
{
    char reason[CURL_ERROR_SIZE + 160];
    failure_summary(reason, sizeof(reason), t->attempts, monotonic_ms() - t->started_ms, why);
    fail(t, status, reason);
}

/* The host name of `url`, without its port, into `out`. */
static void host_name(const char *url, char *out, size_t size)
{
    size_t len;
    const char *host = url_host(url, &len);
    size_t name = host[0] == '[' ? len : strcspn(host, ":");
    snprintf(out, size, "%.*s", (int)(name < len ? name : len), host);
}

/* The host name of the URL curl asked last: the source's (origin or mirror), or the target of a
 * redirect it followed. */
static void asked_host(CURL *easy, const char *source, char *out, size_t size)
{
    const char *effective = NULL;
    curl_easy_getinfo(easy, CURLINFO_EFFECTIVE_URL, &effective);
    host_name(effective && effective[0] ? effective : source, out, size);
}

/* The source's name does not resolve: curl's own words add nothing to that. */
static void fail_unresolved(struct transfer *t, const char *host)
{
    char why[300];
    snprintf(why, sizeof(why), "cannot resolve host %s", host);
    fail_upstream(t, 502, why);
}

/* --- curl callbacks ------------------------------------------------------------------------ */

static curl_socket_t open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
    struct handle *h = clientp;
    (void)purpose;
    if (policy_upstream_check(&a->addr, h->refused, sizeof(h->refused)) < 0)
        return CURL_SOCKET_BAD;
    return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

/* The object's Content-Length as the download knows it, -1 when unknown. */
static int64_t known_length(struct transfer *t)
{
    struct download_progress p;
    store_progress(t->obj, &p);
    return p.length;
}

static void wake_fetch(void *arg);

static struct upstream_headers headers_of(const struct transfer *t)
{
    const struct upstream_response *r = &t->resp;
    bool mirrored = t->source != t->asked && t->origin_said;
    return (struct upstream_headers){r->content_type, r->content_encoding, r->filename,
                                     mirrored ? t->origin_date : r->last_modified,
                                     mirrored ? t->origin_etag : r->etag};
}

/* The download goes on as a new object for its URL (store_new_version): readers of the old one
 * are cut. Its first attempt begins once the persistence thread has made its file. */
static int new_version(struct transfer *t, const char *why)
{
    struct object *old = t->obj, *fresh = store_new_version(old, why);
    if (!fresh) {
        log_error("fetch %s: cannot start a new version (out of memory); failed", t->url);
        t->failed = true;
        return -1;
    }
    t->obj = fresh;
    t->url = object_url(fresh);
    store_release(old);
    if (store_begin_file(fresh, t->asked, wake_fetch, NULL) < 0) {
        fail(t, 500, "out of memory");
        return -1;
    }
    t->opening = true;
    return 0;
}

/* The kept bytes cannot be continued (upstream changed the file, or nothing proves it did not):
 * start over from byte 0, with a body of `length` bytes described by `h` (NULL: not known yet).
 * Readers that hold nothing of the old body the new one contradicts go on with the same object;
 * otherwise they are cut and a new version takes over. Returns 0 (the same object, emptied), 1
 * (a new one, waiting for its file: t->opening) or -1 (the download failed). */
static int start_over(struct transfer *t, int64_t length, const struct upstream_headers *h,
                      const char *why)
{
    int rc = store_restart(t->obj, length, h);
    if (rc < 0) {
        fail(t, object_error_status(t->obj), object_error(t->obj));
        return -1;
    }
    log_info("fetch %s: %s; starting over from byte 0%s", t->url, why,
             rc > 0 ? ", as a new version (clients of the old one are cut)" : "");
    atomic_fetch_add(&stats.download_restarts, 1);
    t->offset = 0;
    memset(&t->kept, 0, sizeof(t->kept));
    EVP_DigestInit_ex(t->sha, EVP_sha256(), NULL);
    if (rc == 0)
        return 0;
    return new_version(t, why) < 0 ? -1 : 1;
}

static int begin_full_body(struct transfer *t)
{
    struct upstream_headers h = headers_of(t);
    validators_of(&t->resp, &t->kept);
    if (store_begin_body(t->obj, t->resp.content_length, &h, resume_validator(&t->kept)) < 0) {
        fail(t, object_error_status(t->obj), object_error(t->obj));
        return -1;
    }
    return 0;
}

/* A resume was answered with something that does not continue the kept bytes (v: RESTART, a
 * whole body; REFETCH, a 206 that proves nothing or another version). A whole body is the new
 * version's, and is taken at once when the same object goes on; otherwise this response is
 * dropped (-1 to curl: t->start_over) and the next attempt asks again from byte 0. */
static int not_continued(struct transfer *t, const struct verdict *v)
{
    struct upstream_headers h = headers_of(t);
    bool whole = v->kind == VERDICT_RESTART;
    int64_t length = whole ? t->resp.content_length : t->resp.has_range ? t->resp.range_total : -1;
    int rc = start_over(t, length, &h, v->reason);
    if (rc < 0)
        return -1;
    if (rc == 0 && whole) {
        if (begin_full_body(t) < 0)
            return -1;
        t->body_started = true;
        return 0;
    }
    t->start_over = true;
    return -1;
}

/* The end of one response's headers: decide what to do with this response. */
static int headers_done(struct transfer *t)
{
    long status = 0;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    struct resume_terms sent = {t->offset, known_length(t), &t->kept};
    struct verdict v = response_verdict(&t->resp, status, &sent);
    /* before any waiter wakes to check it; a mirror's answer says nothing of the signature */
    if (t->grant_until > 0 && t->source == t->asked && status >= 200 && status < 300)
        grants_add(t->asked, t->grant_until);
    if (t->conditional && status == 304) {
        atomic_fetch_add(&stats.revalidated_unchanged, 1);
        t->renewed = true;
        t->failed = store_renew(t->obj) < 0;
        return 0; /* a 304 has no body: the attempt ends by itself */
    }
    if (t->conditional && v.kind == VERDICT_BODY)
        atomic_fetch_add(&stats.revalidated_changed, 1);
    switch (v.kind) {
    case VERDICT_SKIP:
        return 0;
    case VERDICT_RETRY:
        t->retry_status = v.status;
        return -1;
    case VERDICT_FAIL:
        if (t->auth && (v.status == 401 || v.status == 403)) {
            char reason[160]; /* the bucket's name only: never a key or secret */
            snprintf(reason, sizeof(reason), "bucket %s: access denied by S3",
                     t->auth->bucket->name);
            fail(t, 502, reason);
        } else {
            fail(t, v.status, v.reason);
        }
        return -1;
    case VERDICT_CONTINUE:
        atomic_fetch_add(&stats.download_resumes, 1);
        store_continue_body(t->obj); /* a download taken up after a restart: readers may join */
        break;
    case VERDICT_RESTART:
    case VERDICT_REFETCH:
        return not_continued(t, &v);
    case VERDICT_BODY:
        if (begin_full_body(t) < 0)
            return -1;
        break;
    }
    t->body_started = true;
    return 0;
}

/* One header line from curl (not NUL-terminated) into line[size], bounded, its CRLF cut:
 * whether it fitted whole. */
static bool copy_header_line(const char *data, size_t len, char *line, size_t size)
{
    snprintf(line, size, "%.*s", (int)(len < size ? len : size - 1), data);
    line[strcspn(line, "\r\n")] = '\0';
    return len < size;
}

/* curl hands over one header line at a time, not NUL-terminated: copy it (bounded) before any
 * string function sees it. A line too long for the copy is only looked at for its name: the
 * values we keep are far shorter, and one that is not is dropped rather than cut. */

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
    struct transfer *t = arg;
    size_t len = size * n;
    char line[HEADER_TYPE_MAX + 64];

    if (t->failed || t->retry_status)
        return 0;
    bool whole = copy_header_line(data, len, line, sizeof(line));
    if (strncmp(line, "HTTP/", 5) == 0) {
        response_reset(&t->resp);
    } else if (line[0] == '\0') {
        if (headers_done(t) < 0)
            return 0; /* the blank line ends one response's headers */
    } else if (whole) {
        const char *dropped = response_header(&t->resp, line);
        if (dropped)
            log_info("fetch %s: upstream %s too long, not replayed", t->url, dropped);
    } else {
        log_info("fetch %s: upstream header line of %zu bytes ignored", t->url, len);
    }
    return len;
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    struct transfer *t = arg;
    size_t len = size * n;
    if (t->failed || !t->body_started)
        return 0;
    if (store_append(t->obj, data, len) < 0) {
        fail(t, object_error_status(t->obj), object_error(t->obj));
        return 0;
    }
    EVP_DigestUpdate(t->sha, data, len);
    atomic_fetch_add(&stats.bytes_downloaded, (int64_t)len);
    return len;
}

/* --- transfers ------------------------------------------------------------------------------ */

/* What every upstream request does the same way: protocols, redirects, the address policy,
 * timeouts, TLS. */
static void setup_common(CURL *e, const char *url, struct handle *h, char *errbuf)
{
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, h);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, (long)fx.cfg->max_redirects);
    /* Environment proxies would make the address policy check the proxy, not the origin. */
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, h);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, (long)fx.cfg->connect_timeout);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, (long)fx.cfg->stall_timeout);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "arca/" ARCA_VERSION);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    if (fx.cfg->ca_file[0]) {
        /* CAINFO replaces the default bundle; the system store stays reachable through CAPATH. */
        curl_easy_setopt(e, CURLOPT_CAINFO, fx.cfg->ca_file);
        curl_easy_setopt(e, CURLOPT_CAPATH, "/etc/ssl/certs");
    }
}

/* A bucket's request (NULL: none) is SigV4-signed by libcurl with its credentials. */
static void sign_for(CURL *e, const struct bucket_auth *auth)
{
    if (auth && !auth->anonymous) {
        curl_easy_setopt(e, CURLOPT_AWS_SIGV4, auth->sigv4);
        curl_easy_setopt(e, CURLOPT_USERPWD, auth->userpwd);
    }
}

/* Options that stay the same for every attempt of a download. */
static void setup_easy(struct transfer *t)
{
    setup_common(t->easy, t->source, &t->h, t->errbuf);
    curl_easy_setopt(t->easy, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(t->easy, CURLOPT_HEADERDATA, t);
    curl_easy_setopt(t->easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(t->easy, CURLOPT_WRITEDATA, t);
}

/* One more header line for this attempt's request; -1 when out of memory. */
static int add_header(struct transfer *t, const char *line)
{
    struct curl_slist *l = curl_slist_append(t->req_headers, line);
    if (!l)
        return -1;
    t->req_headers = l;
    return 0;
}

/* Ask for the bytes after those we keep, and only if they still belong to the same body. */
static int add_resume_headers(struct transfer *t)
{
    char range[64], if_range[300];
    snprintf(range, sizeof(range), "Range: bytes=%lld-", (long long)t->offset);
    snprintf(if_range, sizeof(if_range), "If-Range: %s", resume_validator(&t->kept));
    return add_header(t, range) < 0 || add_header(t, if_range) < 0 ? -1 : 0;
}

/* Ask only for a version other than the expired one this download revalidates: by its ETag
 * when it has one, else by its date. Never both: RFC 9110 has a server ignore If-Modified-Since
 * beside If-None-Match, but some do not (s3rver), and a file replaced within the second of its
 * Last-Modified would then be answered 304 and kept in its old version. */
static int add_conditions(struct transfer *t)
{
    char etag[HEADER_ETAG_MAX], date[HEADER_DATE_MAX], line[HEADER_ETAG_MAX + 32];
    if (!store_stale_validators(t->obj, etag, sizeof(etag), date, sizeof(date)))
        return 0;
    t->conditional = true;
    if (etag[0])
        snprintf(line, sizeof(line), "If-None-Match: %s", etag);
    else
        snprintf(line, sizeof(line), "If-Modified-Since: %s", date);
    return add_header(t, line);
}

/* S3 requires the body's hash with every SigV4 request (a GET's is the empty string's), and
 * libcurl 7.88 does not add it; it signs every x-amz- header it is given. */
#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* The headers a bucket's signature needs and libcurl does not add. */
static struct curl_slist *signing_headers(const struct bucket_auth *auth)
{
    struct curl_slist *l = curl_slist_append(NULL, "x-amz-content-sha256: " EMPTY_SHA256), *t;
    if (l && auth->token_header[0] && !(t = curl_slist_append(l, auth->token_header))) {
        curl_slist_free_all(l);
        return NULL;
    }
    return l;
}

/* The request headers of this attempt: what a bucket's signature needs, then a resume's range or
 * a revalidation's conditions. */
static int set_headers(struct transfer *t)
{
    bool signing = t->auth && !t->auth->anonymous;
    curl_slist_free_all(t->req_headers);
    t->req_headers = signing ? signing_headers(t->auth) : NULL;
    t->conditional = false;
    if ((signing && !t->req_headers) ||
        (t->offset > 0 ? add_resume_headers(t) : add_conditions(t)) < 0)
        return -1;
    curl_easy_setopt(t->easy, CURLOPT_HTTPHEADER, t->req_headers);
    return 0;
}

/* One attempt. A resume needs a validator that can prove the answer continues the kept bytes;
 * without one, the download starts over (start_over). */
static int start_attempt(struct transfer *t)
{
    /* A backoff may end past the deadline, and a timeout of 0 would mean none at all. */
    int64_t left = t->deadline_ms - monotonic_ms();
    struct download_progress p;
    char host[256];
    if (left <= 0) {
        fail_upstream(t, 504, "download took longer than --download-timeout");
        return -1;
    }
    t->retry_at_ms = 0;
    store_progress(t->obj, &p);
    t->offset = p.have;
    if (t->offset > 0 && !resume_validator(&t->kept)) {
        int rc = start_over(t, -1, NULL, "upstream cut the body and gave no strong validator");
        if (rc != 0)
            return rc < 0 ? -1 : 0; /* a new version: its first attempt once its file exists */
    }
    if (t->attempts++ > 0)
        atomic_fetch_add(&stats.download_retries, 1);
    host_name(t->source, host, sizeof(host));
    if (host_never_resolves(host, strlen(host))) { /* no resolver is asked (RFC 6761 6.4) */
        fail_unresolved(t, host);
        return -1;
    }
    t->retry_status = 0;
    t->body_started = t->start_over = false;
    t->h.refused[0] = t->errbuf[0] = '\0';
    if (set_headers(t) < 0) {
        fail(t, 500, "out of memory");
        return -1;
    }
    curl_easy_setopt(t->easy, CURLOPT_TIMEOUT_MS, (long)left);
    if (curl_multi_add_handle(fx.multi, t->easy) != CURLM_OK) {
        fail(t, 500, "cannot start the upstream request");
        return -1;
    }
    return 0;
}

static void free_transfer(struct transfer *t)
{
    if (t->easy)
        curl_easy_cleanup(t->easy);
    curl_slist_free_all(t->req_headers);
    EVP_MD_CTX_free(t->sha);
    free(t->asked);
    for (int i = 0; i < t->n_mirrors; i++)
        free(t->mirrors[i]);
    free(t->mirrors);
    free(t);
}

/* The persistence thread has made a download's file (or failed to): look again. */
static void wake_fetch(void *arg)
{
    (void)arg;
    curl_multi_wakeup(fx.multi);
}

/* Takes over the pending request's source. */
static void start_transfer(struct pending *p, const char *host)
{
    struct object *obj = p->obj;
    struct transfer *t = calloc(1, sizeof(*t));

    if (!t || !(t->easy = curl_easy_init()) || !(t->sha = EVP_MD_CTX_new()) ||
        EVP_DigestInit_ex(t->sha, EVP_sha256(), NULL) != 1) {
        store_fail(obj, 500, "out of memory");
        free(p->source);
        goto fail;
    }
    t->h.kind = HANDLE_TRANSFER;
    t->obj = obj;
    t->url = object_url(obj);
    t->source = t->asked = p->source;
    t->grant_until = p->grant_until;
    t->auth = p->auth;
    response_reset(&t->resp);
    t->started_ms = monotonic_ms();
    t->deadline_ms = t->started_ms + fx.cfg->download_timeout * 1000;
    snprintf(t->host, sizeof(t->host), "%s", host);
    if (store_begin_file(obj, t->source, wake_fetch, NULL) < 0) {
        store_fail(obj, 500, "out of memory");
        goto fail;
    }
    setup_easy(t);
    find_mirrors(t);
    t->opening = true; /* start_opened() begins the first attempt once the file exists */
    t->next = fx.active;
    fx.active = t;
    fx.n_active++;
    count_active(t, true);
    return;
fail:
    if (t)
        free_transfer(t);
    store_release(obj);
}

static void fail_attempt(struct transfer *t, CURLcode rc)
{
    char reason[CURL_ERROR_SIZE + 96], host[256];
    struct download_progress p;
    struct upstream_error e;
    if (t->h.refused[0] && rc == CURLE_COULDNT_CONNECT) {
        fail(t, 403, t->h.refused);
        return;
    }
    if (t->retry_status) {
        snprintf(reason, sizeof(reason), "upstream answered %d", t->retry_status);
        fail_upstream(t, t->retry_status, reason);
        return;
    }
    if (rc == CURLE_COULDNT_RESOLVE_HOST) {
        asked_host(t->easy, t->source, host, sizeof(host));
        fail_unresolved(t, host);
        return;
    }
    store_progress(t->obj, &p);
    e = error_for_clients(rc, p.headers_ready, past_deadline(t));
    snprintf(reason, sizeof(reason), "%s: %s", e.what,
             t->errbuf[0] ? t->errbuf : curl_easy_strerror(rc));
    fail_upstream(t, e.status, reason);
}

/* An attempt ended: finish, schedule the next attempt after a backoff, or give up. */
static void end_attempt(struct transfer *t, CURLcode rc)
{
    uint8_t digest[32];
    unsigned int dlen = 0;

    curl_multi_remove_handle(fx.multi, t->easy);
    count_active(t, false);
    if (t->renewed) {
        log_debug("fetch %s: unchanged upstream (304), renewed", t->url);
    } else if (rc == CURLE_OK && !t->failed && !t->retry_status) {
        EVP_DigestFinal_ex(t->sha, digest, &dlen);
        if (store_finish(t->obj, digest) < 0)
            log_error("fetch %s: %d %s", t->url, object_error_status(t->obj), object_error(t->obj));
        log_debug("fetch %s: download ended after %d attempt(s)", t->url, t->attempts);
    } else if (t->start_over && !t->failed && !atomic_load(&fx.stopping)) {
        /* nothing to wait out: the next attempt asks for the whole body at once, or, for a
         * new version, once its file exists */
        count_active(t, true);
        if (!t->opening)
            t->retry_at_ms = monotonic_ms();
        return;
    } else if (!t->failed &&
               error_retryable(rc, t->retry_status > 0, t->h.refused[0], past_deadline(t)) &&
               t->attempts <= fx.cfg->download_retries && !atomic_load(&fx.stopping)) {
        t->retry_at_ms = monotonic_ms() + retry_backoff_ms(fx.cfg->retry_delay_ms, t->attempts);
        count_active(t, true);
        log_info("fetch %s: attempt %d failed (%s); retrying in %lld ms", t->url, t->attempts,
                 t->retry_status ? "retryable status" : curl_easy_strerror(rc),
                 (long long)(t->retry_at_ms - monotonic_ms()));
        return;
    } else if (!t->failed && !atomic_load(&fx.stopping) &&
               resolve_retryable(rc, t->resolved_again, past_deadline(t))) {
        t->resolved_again = true;
        t->retry_at_ms = monotonic_ms() + RESOLVE_RETRY_MS;
        count_active(t, true);
        log_info("fetch %s: attempt %d: %s; asking again in %d ms", t->url, t->attempts,
                 t->errbuf[0] ? t->errbuf : curl_easy_strerror(rc), RESOLVE_RETRY_MS);
        return;
    } else {
        fail_attempt(t, rc);
    }
    end_transfer(t);
}

static void end_transfer(struct transfer *t)
{
    count_active(t, false);
    store_release(t->obj);
    for (struct transfer **p = &fx.active; *p; p = &(*p)->next) {
        if (*p == t) {
            *p = t->next;
            break;
        }
    }
    fx.n_active--;
    free_transfer(t);
}

/* --- probes --------------------------------------------------------------------------------- */

/* A probe's headers; each response's (redirects, 1xx) replace the previous one's. */
static size_t probe_header(char *data, size_t size, size_t n, void *arg)
{
    struct probe *p = arg;
    size_t len = size * n;
    char line[HEADER_TYPE_MAX + 64];
    if (!copy_header_line(data, len, line, sizeof(line)))
        return len; /* nothing a probe reads is that long */
    if (strncmp(line, "HTTP/", 5) == 0)
        response_reset(&p->resp);
    else if (line[0])
        response_header(&p->resp, line);
    return len;
}

/* The headers are all a probe wants: the first body byte ends it. A document's body is kept. */
static size_t probe_body(char *data, size_t size, size_t n, void *arg)
{
    struct probe *p = arg;
    if (!p->get_done || p->body.len + size * n > UPSTREAM_DOC_MAX)
        return 0;
    buf_addn(&p->body, data, size * n);
    return p->body.failed ? 0 : size * n;
}

static void free_probe(struct probe *p)
{
    if (p->easy)
        curl_easy_cleanup(p->easy);
    curl_slist_free_all(p->headers);
    buf_free(&p->body);
    free(p->url);
    free(p);
}

/* What a download failing this way would say (fail_attempt): its attempts, time and why. */
static void probe_failure(const struct probe *p, CURLcode rc, long status, struct probe_result *res)
{
    char why[CURL_ERROR_SIZE + 200], host[256];
    struct upstream_error e = error_for_clients(rc, false, false);
    res->failure_status = e.status;
    if (status_retryable(status)) {
        res->failure_status = (int)status;
        snprintf(why, sizeof(why), "upstream answered %ld", status);
    } else if (rc == CURLE_COULDNT_RESOLVE_HOST) {
        asked_host(p->easy, p->url, host, sizeof(host));
        snprintf(why, sizeof(why), "cannot resolve host %s", host);
    } else {
        snprintf(why, sizeof(why), "%s: %s", e.what, res->error);
    }
    failure_summary(res->failure, sizeof(res->failure), p->attempts, monotonic_ms() - p->asked_ms,
                    why);
}

/* Whether curl's end (`rc`) came with an answer: a status, and the body read or, for a probe,
 * cut by us at its first byte. */
static bool probe_answered(const struct probe *p, CURLcode rc, long status)
{
    return (rc == CURLE_OK || (rc == CURLE_WRITE_ERROR && !p->get_done)) && status >= 200;
}

/* Hand the answer over (rc: how curl ended; a write error is our own stop at the body). */
static void end_probe(struct probe *p, CURLcode rc, bool stopping)
{
    struct probe_result res = {.total = -1};
    long status = 0;
    curl_easy_getinfo(p->easy, CURLINFO_RESPONSE_CODE, &status);
    if (stopping) {
        snprintf(res.error, sizeof(res.error), "arca is shutting down");
    } else if (p->retries && probe_answered(p, rc, status) && status_retryable(status)) {
        /* its attempts are over: worded as the download's last words, with the status */
        snprintf(res.error, sizeof(res.error), "upstream answered %ld", status);
        probe_failure(p, rc, status, &res);
    } else if (probe_answered(p, rc, status)) {
        res.status = (int)status;
        snprintf(res.etag, sizeof(res.etag), "%s", p->resp.etag);
        snprintf(res.last_modified, sizeof(res.last_modified), "%s", p->resp.last_modified);
        snprintf(res.content_type, sizeof(res.content_type), "%s", p->resp.content_type);
        snprintf(res.content_encoding, sizeof(res.content_encoding), "%s",
                 p->resp.content_encoding);
        snprintf(res.filename, sizeof(res.filename), "%s", p->resp.filename);
        res.total = p->resp.has_range ? p->resp.range_total
                    : status == 200   ? p->resp.content_length
                                      : -1;
    } else {
        snprintf(res.error, sizeof(res.error), "%s",
                 p->h.refused[0] && rc == CURLE_COULDNT_CONNECT ? p->h.refused
                 : p->errbuf[0]                                 ? p->errbuf
                                                                : curl_easy_strerror(rc));
        probe_failure(p, rc, 0, &res);
    }
    if (p->get_done)
        p->get_done(&res, p->body.data ? p->body.data : "", p->body.len, p->arg);
    else
        p->done(&res, p->arg);
    free_probe(p);
}

static void unlink_probe(struct probe *p)
{
    for (struct probe **q = &fx.asking; *q; q = &(*q)->next) {
        if (*q == p) {
            *q = p->next;
            return;
        }
    }
}

/* One attempt of a probe (in fx.asking): into the multi handle, or ended at once. */
static void start_probe_attempt(struct probe *p)
{
    char host[256];
    p->attempts++;
    p->retry_at_ms = 0;
    p->h.refused[0] = p->errbuf[0] = '\0';
    p->body.len = 0;
    response_reset(&p->resp);
    host_name(p->url, host, sizeof(host));
    if (host_never_resolves(host, strlen(host))) { /* as start_attempt: no resolver asked */
        unlink_probe(p);
        snprintf(p->errbuf, sizeof(p->errbuf), "cannot resolve host %s", host);
        end_probe(p, CURLE_COULDNT_RESOLVE_HOST, false);
    } else if (curl_multi_add_handle(fx.multi, p->easy) != CURLM_OK) {
        unlink_probe(p);
        end_probe(p, CURLE_FAILED_INIT, false);
    }
}

/* A probe's attempt ended (its handle out of the multi handle): ask again after a download's
 * backoff when it retries and the failure is worth it, or once more after RESOLVE_RETRY_MS for
 * a name that did not resolve; otherwise hand the answer over. */
static void end_probe_attempt(struct probe *p, CURLcode rc)
{
    long status = 0;
    curl_easy_getinfo(p->easy, CURLINFO_RESPONSE_CODE, &status);
    bool answered = probe_answered(p, rc, status);
    bool stopping = atomic_load(&fx.stopping);
    if (p->retries && !stopping && p->attempts <= fx.cfg->download_retries &&
        (answered ? status_retryable(status)
                  : error_retryable(rc, false, p->h.refused[0], false))) {
        p->retry_at_ms = monotonic_ms() + retry_backoff_ms(fx.cfg->retry_delay_ms, p->attempts);
    } else if (!answered && !stopping && resolve_retryable(rc, p->resolved_again, false)) {
        p->resolved_again = true;
        p->retry_at_ms = monotonic_ms() + RESOLVE_RETRY_MS;
    } else {
        unlink_probe(p);
        end_probe(p, rc, false);
    }
}

/* Probes asked for since the last pass go into the multi handle. */
static void start_probes(void)
{
    pthread_mutex_lock(&fx.lock);
    struct probe *q = fx.probes;
    fx.probes = NULL;
    pthread_mutex_unlock(&fx.lock);
    while (q) {
        struct probe *p = q;
        q = q->next;
        p->next = fx.asking;
        fx.asking = p;
        setup_common(p->easy, p->url, &p->h, p->errbuf);
        curl_easy_setopt(p->easy, CURLOPT_HTTPHEADER, p->headers);
        curl_easy_setopt(p->easy, CURLOPT_HEADERFUNCTION, probe_header);
        curl_easy_setopt(p->easy, CURLOPT_HEADERDATA, p);
        curl_easy_setopt(p->easy, CURLOPT_WRITEFUNCTION, probe_body);
        curl_easy_setopt(p->easy, CURLOPT_WRITEDATA, p);
        sign_for(p->easy, p->auth);
        curl_easy_setopt(p->easy, CURLOPT_TIMEOUT, (long)(fx.cfg->connect_timeout + 30));
        start_probe_attempt(p);
    }
}

/* Queue `p` for the upstream thread; -1 (p freed) when stopping. */
static int ask(struct probe *p)
{
    p->h.kind = HANDLE_PROBE;
    p->asked_ms = monotonic_ms();
    response_reset(&p->resp);
    pthread_mutex_lock(&fx.lock);
    if (fx.closed) {
        pthread_mutex_unlock(&fx.lock);
        free_probe(p);
        return -1;
    }
    p->next = fx.probes;
    fx.probes = p;
    curl_multi_wakeup(fx.multi);
    pthread_mutex_unlock(&fx.lock);
    return 0;
}

/* A one-byte question; `retries`: asked as a download (see struct probe). */
static int probe_new(const char *url, void (*done)(const struct probe_result *res, void *arg),
                     void *arg, bool retries)
{
    struct probe *p = calloc(1, sizeof(*p));
    if (!p || !(p->url = strdup(url)) || !(p->easy = curl_easy_init()) ||
        !(p->headers = curl_slist_append(NULL, "Range: bytes=0-0"))) {
        if (p)
            free_probe(p);
        return -1;
    }
    p->done = done;
    p->arg = arg;
    p->retries = retries;
    return ask(p);
}

int upstream_probe(const char *url, void (*done)(const struct probe_result *res, void *arg),
                   void *arg)
{
    return probe_new(url, done, arg, true);
}

int upstream_get(const char *url, const struct bucket_auth *auth,
                 void (*done)(const struct probe_result *res, const char *body, size_t len,
                              void *arg),
                 void *arg)
{
    bool signing = auth && !auth->anonymous;
    struct probe *p = calloc(1, sizeof(*p));
    if (!p || !(p->url = strdup(url)) || !(p->easy = curl_easy_init()) ||
        (signing && !(p->headers = signing_headers(auth)))) {
        if (p)
            free_probe(p);
        return -1;
    }
    p->get_done = done;
    p->auth = auth;
    p->arg = arg;
    return ask(p);
}

/* --- the thread ------------------------------------------------------------------------------ */

static int downloads_from(const char *host)
{
    int n = 0;
    for (struct transfer *t = fx.active; t; t = t->next)
        n += strcasecmp(t->host, host) == 0;
    return n;
}

/* Move new requests to the backlog, then start what the limits allow, oldest first; a host at
 * its limit does not hold up the others. */
static void start_queued(void)
{
    struct pending *q, *rev = NULL;
    pthread_mutex_lock(&fx.lock);
    q = fx.queue;
    fx.queue = NULL;
    pthread_mutex_unlock(&fx.lock);
    while (q) { /* the queue is LIFO */
        struct pending *next = q->next;
        q->next = rev;
        rev = q;
        q = next;
    }
    *fx.backlog_tail = rev;
    while (*fx.backlog_tail)
        fx.backlog_tail = &(*fx.backlog_tail)->next;

    for (struct pending **p = &fx.backlog; *p && fx.n_active < fx.cfg->max_downloads;) {
        struct pending *item = *p;
        char host[256];
        size_t hlen;
        const char *h = url_host(object_url(item->obj), &hlen);
        snprintf(host, sizeof(host), "%.*s", (int)hlen, h);
        if (downloads_from(host) >= fx.cfg->max_downloads_per_host) {
            p = &item->next;
            continue;
        }
        *p = item->next;
        if (fx.backlog_tail == &item->next)
            fx.backlog_tail = p;
        start_transfer(item, host);
        free(item);
    }
}

/* A download taken up after a restart keeps the bytes it has: their digest (computed when the
 * file was reopened) and the validator they were fetched under, for the resume's If-Range. */
static int take_kept(struct transfer *t)
{
    struct object_meta *meta;
    int rc = store_take_prefix(t->obj, t->sha);
    if (rc <= 0)
        return rc;
    if (!(meta = malloc(sizeof(*meta))))
        return -1;
    store_snapshot(t->obj, meta);
    /* only a body whose Last-Modified was a strong validator is synced for a restart */
    snprintf(t->kept.etag, sizeof(t->kept.etag), "%s", meta->etag);
    snprintf(t->kept.last_modified, sizeof(t->kept.last_modified), "%s", meta->last_modified);
    free(meta);
    return 0;
}

/* --- mirrors ----------------------------------------------------------------------------- */

/* The URLs of the first --mirror rule matching the URL without its credentials: its signature
 * (also under --exact-keys), userinfo and any parameter url_redact would hide (a token, an API
 * key): the matched text replaced by each mirror in turn. A mirror is another host: it never
 * sees what the origin authorises the client with, and a URL that carried any of it is asked
 * of the origin first (origin_answered). None when no rule matches (or out of memory: the
 * origin serves). */
static void find_mirrors(struct transfer *t)
{
    struct signature sig;
    regmatch_t m;
    char *unsigned_url = keys_unsigned_url_dup(fx.cfg, t->asked, &sig), *plain = NULL;
    bool credentials = false;
    if (unsigned_url && (plain = malloc(strlen(unsigned_url) + 1)))
        credentials = url_strip_secrets(unsigned_url, plain, strlen(unsigned_url) + 1);
    free(unsigned_url);
    if (!plain)
        return;
    for (int i = 0; i < fx.cfg->n_mirror_rules; i++) {
        const struct mirror_rule *r = &fx.cfg->mirror_rules[i];
        if (regexec(&fx.mirror_res[i], plain, 1, &m, 0) != 0)
            continue;
        if (!(t->mirrors = calloc((size_t)r->n, sizeof(*t->mirrors))))
            break;
        t->mirror_rule = i;
        t->origin_first = sig.is_signed || credentials;
        for (int k = 0; k < r->n; k++) {
            size_t len = (size_t)m.rm_so + strlen(r->mirrors[k]) + strlen(plain + m.rm_eo);
            if (!(t->mirrors[t->n_mirrors] = malloc(len + 1)))
                break;
            snprintf(t->mirrors[t->n_mirrors++], len + 1, "%.*s%s%s", (int)m.rm_so, plain,
                     r->mirrors[k], plain + m.rm_eo);
        }
        break;
    }
    free(plain);
}

static int begin_download(struct transfer *t);

/* How long a mirror that did not answer is passed over. */
#define MIRROR_DOWN_MS 60000

/* A mirror answered the probe: a 2xx makes it the source, anything else moves on to the next
 * mirror, and after the last to the origin. One that did not answer at all (no connection, no
 * response) is passed over by every download for MIRROR_DOWN_MS. */
static void mirror_answered(const struct probe_result *res, void *arg)
{
    struct transfer *t = arg;
    int k = t->next_mirror++;
    const char *mirror = t->mirrors[k];
    if (atomic_load(&fx.stopping))
        return; /* fail_everything ends the transfer */
    if (res->status == 0)
        fx.mirror_down_until[t->mirror_rule][k] = monotonic_ms() + MIRROR_DOWN_MS;
    if (res->status >= 200 && res->status < 300 && t->origin_said && t->origin_total >= 0 &&
        res->total >= 0 && res->total != t->origin_total) {
        log_info("fetch %s: mirror %s has another length than the origin", t->url, mirror);
    } else if (res->status >= 200 && res->status < 300) {
        log_info("fetch %s: from mirror %s", t->url, mirror);
        t->source = mirror;
        curl_easy_setopt(t->easy, CURLOPT_URL, t->source);
        t->next_mirror = t->n_mirrors;
        atomic_fetch_add(&stats.mirror_downloads, 1);
    } else {
        if (res->status)
            log_info("fetch %s: mirror %s does not serve it (%d)", t->url, mirror, res->status);
        else
            log_info("fetch %s: mirror %s does not serve it (%s)", t->url, mirror, res->error);
    }
    if (begin_download(t) < 0)
        end_transfer(t);
}

/* The origin answered the probe of a URL with credentials that mirrors could serve: they may, once
 * it has accepted the signature (2xx), which is then remembered like a download's. A refusal ends
 * the download with the origin's status, so a forged or expired signature gets what the origin
 * would have answered; no answer, or a status worth retrying, leaves the download to the origin
 * itself (its attempts retry). */
static void origin_answered(const struct probe_result *res, void *arg)
{
    struct transfer *t = arg;
    char reason[96];
    if (atomic_load(&fx.stopping))
        return; /* fail_everything ends the transfer */
    if (res->status >= 200 && res->status < 300) {
        if (t->grant_until > 0)
            grants_add(t->asked, t->grant_until);
        t->origin_said = true;
        snprintf(t->origin_etag, sizeof(t->origin_etag), "%s", res->etag);
        snprintf(t->origin_date, sizeof(t->origin_date), "%s", res->last_modified);
        t->origin_total = res->total;
    } else if (res->status == 0 || status_retryable(res->status)) {
        t->next_mirror = t->n_mirrors;
    } else {
        /* worded as the origin's own refusal of a download, and as a refused confirmation of a
         * cached object: with or without mirrors, cached or not, the same answer */
        snprintf(reason, sizeof(reason), "%s %d",
                 res->status >= 400 ? "upstream answered" : "unexpected upstream status",
                 res->status);
        fail(t, res->status >= 400 ? res->status : 502, reason);
        end_transfer(t);
        return;
    }
    if (begin_download(t) < 0)
        end_transfer(t);
}

/* The first attempt, once the source is chosen. Only the origin gets a bucket's signature: a
 * mirror is fetched unsigned. */
static int first_attempt(struct transfer *t)
{
    if (t->source == t->asked)
        sign_for(t->easy, t->auth);
    else
        t->auth = NULL;
    return start_attempt(t);
}

/* For a URL with credentials, the origin's probe first (see origin_answered); then the next mirror
 * not known to be down; then the first attempt from the source chosen. */
static int begin_download(struct transfer *t)
{
    while (t->next_mirror < t->n_mirrors &&
           fx.mirror_down_until[t->mirror_rule][t->next_mirror] > monotonic_ms())
        t->next_mirror++;
    if (t->next_mirror < t->n_mirrors && t->origin_first) {
        t->origin_first = false;
        if (probe_new(t->asked, origin_answered, t, false) == 0)
            return 0;
        t->next_mirror = t->n_mirrors; /* cannot ask: the origin itself decides */
    }
    if (t->next_mirror < t->n_mirrors &&
        probe_new(t->mirrors[t->next_mirror], mirror_answered, t, false) == 0)
        return 0;
    t->next_mirror = t->n_mirrors;
    return first_attempt(t);
}

/* Downloads whose file the persistence thread has made begin their first attempt; those it
 * could not make have failed there. */
static void start_opened(void)
{
    for (struct transfer *t = fx.active, *n; t; t = n) {
        n = t->next;
        if (!t->opening)
            continue;
        int ready = store_file_ready(t->obj);
        if (ready == 0)
            continue;
        t->opening = false;
        t->failed = ready < 0;
        if (ready > 0 && take_kept(t) < 0)
            fail(t, 500, "out of memory");
        if (t->failed || begin_download(t) < 0)
            end_transfer(t);
        else
            log_debug("fetch %s: download started", t->url);
    }
}

/* Attempts whose backoff is over go back into the multi handle. Returns ms until the next. */
static long restart_due(void)
{
    int64_t now = monotonic_ms(), next = 1000;
    for (struct transfer *t = fx.active, *n; t; t = n) {
        n = t->next;
        if (!t->retry_at_ms)
            continue;
        if (t->retry_at_ms <= now) {
            if (start_attempt(t) < 0)
                end_transfer(t);
        } else if (t->retry_at_ms - now < next) {
            next = t->retry_at_ms - now;
        }
    }
    for (struct probe *p = fx.asking, *n; p; p = n) {
        n = p->next;
        if (!p->retry_at_ms)
            continue;
        if (p->retry_at_ms <= now)
            start_probe_attempt(p);
        else if (p->retry_at_ms - now < next)
            next = p->retry_at_ms - now;
    }
    return (long)next;
}

/* Readers of every running download learn of this pass's bytes at once (see store_append). */
static void announce_appended(void)
{
    for (struct transfer *t = fx.active; t; t = t->next)
        store_announce(t->obj);
}

static void reap_finished(void)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(fx.multi, &left))) {
        struct handle *h;
        if (msg->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&h);
        if (h->kind == HANDLE_PROBE) {
            curl_multi_remove_handle(fx.multi, msg->easy_handle);
            end_probe_attempt((struct probe *)h, msg->data.result);
        } else {
            end_attempt((struct transfer *)h, msg->data.result);
        }
    }
}

static void housekeeping(void)
{
    store_flush_usage();
    stats_save();
    store_expire();
}

/* Nothing may be left waiting once the thread ends: fail queued and running downloads alike. */
static void fail_everything(void)
{
    pthread_mutex_lock(&fx.lock);
    fx.closed = true;
    pthread_mutex_unlock(&fx.lock);
    start_queued();
    while (fx.backlog) {
        struct pending *p = fx.backlog;
        fx.backlog = p->next;
        store_fail(p->obj, 503, "arca is shutting down");
        store_release(p->obj);
        free(p->source);
        free(p);
    }
    start_probes();
    while (fx.asking) {
        struct probe *p = fx.asking;
        fx.asking = p->next;
        curl_multi_remove_handle(fx.multi, p->easy);
        end_probe(p, CURLE_OK, true);
    }
    while (fx.active) {
        struct transfer *t = fx.active;
        if (!t->retry_at_ms && !t->opening)
            curl_multi_remove_handle(fx.multi, t->easy);
        if (t->opening) {
            fail(t, 503, "arca is shutting down");
        } else if (!t->failed) { /* kept on disk: the next start continues it */
            store_set_aside(t->obj, "arca is shutting down");
            log_info("fetch %s: stopped; kept for the next start to continue", t->url);
            t->failed = true;
        }
        end_transfer(t);
    }
}

static void *upstream_main(void *arg)
{
    time_t last = 0;
    int running;
    (void)arg;
    while (!atomic_load(&fx.stopping)) {
        start_queued();
        start_opened();
        start_probes();
        curl_multi_perform(fx.multi, &running);
        announce_appended();
        reap_finished();
        if (time(NULL) != last) {
            last = time(NULL);
            housekeeping();
        }
        /* After the reaping, which may have scheduled retries; handles it re-adds make curl's
         * own timeout zero, so the poll returns at once for them. */
        curl_multi_poll(fx.multi, NULL, 0, (int)restart_due(), NULL);
    }
    fail_everything();
    store_flush_usage();
    stats_save();
    return NULL;
}

int upstream_init(const struct config *cfg, char *err, size_t errlen)
{
    fx.cfg = cfg;
    for (int i = 0; i < cfg->n_mirror_rules; i++) {
        if (regcomp(&fx.mirror_res[i], cfg->mirror_rules[i].pattern, REG_EXTENDED) != 0) {
            snprintf(err, errlen, "--mirror: cannot compile '%s'", cfg->mirror_rules[i].pattern);
            return -1;
        }
    }
    fx.backlog_tail = &fx.backlog;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(fx.multi = curl_multi_init())) {
        snprintf(err, errlen, "cannot initialise libcurl");
        return -1;
    }
    if (pthread_create(&fx.thread, NULL, upstream_main, NULL) != 0) {
        snprintf(err, errlen, "cannot start the upstream thread");
        return -1;
    }
    return 0;
}

void upstream_fetch(struct object *obj, const struct fetch_source *src)
{
    struct pending *p = malloc(sizeof(*p));
    if (!p || !(p->source = strdup(src->url))) {
        free(p);
        store_fail(obj, 500, "out of memory");
        store_release(obj);
        return;
    }
    p->obj = obj;
    p->grant_until = src->grant_until;
    p->auth = src->auth;
    pthread_mutex_lock(&fx.lock);
    if (fx.closed) {
        /* A request that came in on a kept-alive connection while arca stops. */
        pthread_mutex_unlock(&fx.lock);
        free(p->source);
        free(p);
        store_fail(obj, 503, "arca is shutting down");
        store_release(obj);
        return;
    }
    p->next = fx.queue;
    fx.queue = p;
    /* Under the lock: once `closed` is set no wake-up can reach a multi handle being freed. */
    curl_multi_wakeup(fx.multi);
    pthread_mutex_unlock(&fx.lock);
}

void upstream_stop(void)
{
    atomic_store(&fx.stopping, true);
    curl_multi_wakeup(fx.multi);
    pthread_join(fx.thread, NULL);
    persist_flush(); /* its jobs may still call wake_fetch() */
    curl_multi_cleanup(fx.multi);
    curl_global_cleanup();
    for (int i = 0; i < fx.cfg->n_mirror_rules; i++)
        regfree(&fx.mirror_res[i]);
}
