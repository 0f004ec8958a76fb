#include "fetch.h"
#include "log.h"
#include "policy.h"
#include "stats.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#define MAX_REDIRECTS 5

/* One upstream download. Lives on the fetch thread only. */
struct transfer {
    struct object *obj;
    CURL *easy;
    EVP_MD_CTX *sha;
    int64_t content_length; /* of the response being received, -1 if none */
    char content_type[128];
    bool location;     /* the response being received carries Location */
    bool body_started; /* store_begin_body() accepted the response */
    bool failed;       /* store_fail() already called */
    char refused[160]; /* why the address policy refused a connection */
    char errbuf[CURL_ERROR_SIZE];
    struct transfer *next;
};

struct pending {
    struct object *obj;
    struct pending *next;
};

static struct {
    const struct config *cfg;
    CURLM *multi;
    pthread_t thread;
    pthread_mutex_t lock; /* guards queue and closed */
    struct pending *queue;
    bool closed; /* the thread has taken its last look at the queue */
    atomic_bool stopping;
    struct transfer *active;
} fx = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void fail(struct transfer *t, int status, const char *reason)
{
    if (t->failed)
        return;
    t->failed = true;
    store_fail(t->obj, status, reason);
    log_error("fetch %s: %d %s", t->obj->url, status, t->obj->error[0] ? t->obj->error : reason);
}

/* --- curl callbacks ------------------------------------------------------------------------ */

static curl_socket_t open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
    struct transfer *t = clientp;
    (void)purpose;
    if (policy_upstream_check(&a->addr, t->refused, sizeof(t->refused)) < 0)
        return CURL_SOCKET_BAD;
    return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

/* `line` is NUL-terminated. True when it is header `name`; *value then points at its value. */
static bool header_is(const char *line, const char *name, const char **value)
{
    size_t n = strlen(name);
    if (strncasecmp(line, name, n) != 0 || line[n] != ':')
        return false;
    *value = line + n + 1;
    while (**value == ' ' || **value == '\t')
        (*value)++;
    return true;
}

/* The end of one response's headers: decide whether this response is the one we keep. */
static int headers_done(struct transfer *t)
{
    long status = 0;
    char reason[96];
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    if (status < 200 || (status >= 300 && status < 400 && t->location))
        return 0; /* informational, or a redirect curl is about to follow */
    if (status >= 400) {
        snprintf(reason, sizeof(reason), "upstream answered %ld", status);
        fail(t, (int)status, reason);
        return -1;
    }
    if (status >= 300) {
        snprintf(reason, sizeof(reason), "unexpected upstream status %ld", status);
        fail(t, 502, reason);
        return -1;
    }
    if (store_begin_body(t->obj, t->content_length, t->content_type) < 0) {
        fail(t, t->obj->error_status, t->obj->error);
        return -1;
    }
    t->body_started = true;
    return 0;
}

/* curl hands over one header line at a time, not NUL-terminated: copy it (bounded) before any
 * string function sees it. Lines longer than the copy only matter for headers we ignore. */
static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
    struct transfer *t = arg;
    size_t len = size * n;
    char line[512];
    const char *v;

    if (t->failed)
        return 0;
    snprintf(line, sizeof(line), "%.*s", (int)(len < sizeof(line) ? len : sizeof(line) - 1), data);
    line[strcspn(line, "\r\n")] = '\0';
    if (strncmp(line, "HTTP/", 5) == 0) {
        t->content_length = -1;
        t->content_type[0] = '\0';
        t->location = false;
    } else if (header_is(line, "content-length", &v)) {
        char *end;
        long long cl = strtoll(v, &end, 10);
        /* Anything but a plain non-negative number counts as "length unknown". */
        t->content_length = (end != v && cl >= 0 && strspn(end, " \t") == strlen(end)) ? cl : -1;
    } else if (header_is(line, "content-type", &v)) {
        snprintf(t->content_type, sizeof(t->content_type), "%s", v);
    } else if (header_is(line, "location", &v)) {
        t->location = true;
    } else if (line[0] == '\0' && headers_done(t) < 0) {
        return 0; /* the blank line ends one response's headers */
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
        fail(t, t->obj->error_status, t->obj->error);
        return 0;
    }
    EVP_DigestUpdate(t->sha, data, len);
    atomic_fetch_add(&stats.bytes_downloaded, (int64_t)len);
    return len;
}

/* --- transfers ------------------------------------------------------------------------------ */

static void setup_easy(struct transfer *t)
{
    CURL *e = t->easy;
    curl_easy_setopt(e, CURLOPT_URL, t->obj->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, t);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, (long)MAX_REDIRECTS);
    /* Environment proxies would make the address policy check the proxy, not the origin. */
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, t);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, t);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
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

static void start_transfer(struct object *obj)
{
    char err[160];
    struct transfer *t = calloc(1, sizeof(*t));

    if (!t || !(t->easy = curl_easy_init()) || !(t->sha = EVP_MD_CTX_new()) ||
        EVP_DigestInit_ex(t->sha, EVP_sha256(), NULL) != 1) {
        store_fail(obj, 500, "out of memory");
        goto fail;
    }
    t->obj = obj;
    t->content_length = -1;
    if (store_begin_file(obj, err, sizeof(err)) < 0) {
        store_fail(obj, 500, err);
        goto fail;
    }
    setup_easy(t);
    curl_multi_add_handle(fx.multi, t->easy);
    t->next = fx.active;
    fx.active = t;
    atomic_fetch_add(&stats.downloads_active, 1);
    return;
fail:
    if (t) {
        curl_easy_cleanup(t->easy);
        EVP_MD_CTX_free(t->sha);
        free(t);
    }
    store_release(obj);
}

/* Turn curl's verdict into the status clients see. */
static void map_error(struct transfer *t, CURLcode rc, int *status, const char **what)
{
    *status = 502;
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
        *status = 504;
        *what = "upstream timed out";
        break;
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_HTTP2_STREAM:
        *status = t->body_started ? 504 : 502;
        *what = t->body_started ? "upstream body truncated" : "upstream connection failed";
        break;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
        *what = "upstream TLS verification failed";
        break;
    case CURLE_TOO_MANY_REDIRECTS:
        *what = "too many upstream redirects";
        break;
    case CURLE_UNSUPPORTED_PROTOCOL:
        *what = "upstream redirected to a scheme other than http/https";
        break;
    default:
        *what = "upstream unreachable";
        break;
    }
}

static void end_transfer(struct transfer *t, CURLcode rc)
{
    char reason[CURL_ERROR_SIZE + 96];
    uint8_t digest[32];
    unsigned int dlen = 0;

    if (rc == CURLE_OK && !t->failed) {
        EVP_DigestFinal_ex(t->sha, digest, &dlen);
        store_finish(t->obj, digest);
    } else if (!t->failed && t->refused[0] && rc == CURLE_COULDNT_CONNECT) {
        fail(t, 403, t->refused);
    } else if (!t->failed) {
        int status;
        const char *what;
        map_error(t, rc, &status, &what);
        snprintf(reason, sizeof(reason), "%s: %s", what,
                 t->errbuf[0] ? t->errbuf : curl_easy_strerror(rc));
        fail(t, status, reason);
    }
    atomic_fetch_sub(&stats.downloads_active, 1);
    curl_multi_remove_handle(fx.multi, t->easy);
    curl_easy_cleanup(t->easy);
    EVP_MD_CTX_free(t->sha);
    store_release(t->obj);
    for (struct transfer **p = &fx.active; *p; p = &(*p)->next) {
        if (*p == t) {
            *p = t->next;
            break;
        }
    }
    free(t);
}

/* --- the thread ------------------------------------------------------------------------------ */

static void start_queued(void)
{
    struct pending *q;
    pthread_mutex_lock(&fx.lock);
    q = fx.queue;
    fx.queue = NULL;
    pthread_mutex_unlock(&fx.lock);
    /* The queue is LIFO; start in arrival order. */
    struct pending *rev = NULL;
    while (q) {
        struct pending *next = q->next;
        q->next = rev;
        rev = q;
        q = next;
    }
    while (rev) {
        struct pending *next = rev->next;
        start_transfer(rev->obj);
        free(rev);
        rev = next;
    }
}

static void reap_finished(void)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(fx.multi, &left))) {
        struct transfer *t;
        if (msg->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
        end_transfer(t, msg->data.result);
    }
}

static void housekeeping(void)
{
    store_flush_usage();
    stats_save();
    store_expire();
}

static void *fetch_main(void *arg)
{
    time_t last = 0;
    int running;
    (void)arg;
    while (!atomic_load(&fx.stopping)) {
        start_queued();
        curl_multi_perform(fx.multi, &running);
        reap_finished();
        if (time(NULL) != last) {
            last = time(NULL);
            housekeeping();
        }
        curl_multi_poll(fx.multi, NULL, 0, 1000, NULL);
    }
    pthread_mutex_lock(&fx.lock);
    fx.closed = true;
    pthread_mutex_unlock(&fx.lock);
    start_queued();
    while (fx.active) {
        fail(fx.active, 503, "arca is shutting down");
        end_transfer(fx.active, CURLE_ABORTED_BY_CALLBACK);
    }
    store_flush_usage();
    stats_save();
    return NULL;
}

int fetch_init(const struct config *cfg, char *err, size_t errlen)
{
    fx.cfg = cfg;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(fx.multi = curl_multi_init())) {
        snprintf(err, errlen, "cannot initialise libcurl");
        return -1;
    }
    if (pthread_create(&fx.thread, NULL, fetch_main, NULL) != 0) {
        snprintf(err, errlen, "cannot start the fetch thread");
        return -1;
    }
    return 0;
}

void fetch_start(struct object *obj)
{
    struct pending *p = malloc(sizeof(*p));
    if (!p) {
        store_fail(obj, 500, "out of memory");
        store_release(obj);
        return;
    }
    p->obj = obj;
    pthread_mutex_lock(&fx.lock);
    if (fx.closed) {
        /* A request that came in on a kept-alive connection while arca stops. */
        pthread_mutex_unlock(&fx.lock);
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

void fetch_stop(void)
{
    atomic_store(&fx.stopping, true);
    curl_multi_wakeup(fx.multi);
    pthread_join(fx.thread, NULL);
    curl_multi_cleanup(fx.multi);
    curl_global_cleanup();
}
