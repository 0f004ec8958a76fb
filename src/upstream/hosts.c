/* Upstream hosts held down (hosts.h): a small table of the hosts whose last attempts failed,
 * found by their origin string. A host that answers leaves it. */
#include "upstream/hosts.h"
#include "log/log.h"

#include <assert.h>
#include <ctype.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct host {
    char origin[HOSTS_ORIGIN_MAX]; /* "" : a free slot */
    int failures;
    int64_t since;    /* wall s it went down; 0: up (failing, not yet held) */
    int64_t probe_at; /* monotonic ms from which one probe may go */
    int64_t wait_ms;  /* the wait before the probe after the next failed one */
    bool probing;     /* a probe is out */
};

static struct {
    pthread_mutex_t lock;
    atomic_int down; /* hosts held down now */
    int limit;       /* --origin-failures */
    struct host hosts[HOSTS_MAX];
} reg = {.lock = PTHREAD_MUTEX_INITIALIZER};

void hosts_configure(int origin_failures)
{
    pthread_mutex_lock(&reg.lock);
    reg.limit = origin_failures;
    memset(reg.hosts, 0, sizeof(reg.hosts));
    atomic_store(&reg.down, 0);
    pthread_mutex_unlock(&reg.lock);
}

bool hosts_outage_status(long status)
{
    return status == 500 || status == 502 || status == 503 || status == 504;
}

void hosts_origin_of(const char *url, char *out, size_t size)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL;
    out[0] = '\0';
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK &&
        (size_t)snprintf(out, size, "%s://%s:%s", scheme, host, port) < size) {
        for (char *p = out; *p; p++)
            *p = (char)tolower((unsigned char)*p);
    } else {
        out[0] = '\0';
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
}

/* Lock held. The host's slot, or NULL; with `make`, a free slot taken for it (NULL when full). */
static struct host *find(const char *origin, bool make)
{
    struct host *free_slot = NULL;
    for (size_t i = 0; i < HOSTS_MAX; i++) {
        if (!strcmp(reg.hosts[i].origin, origin))
            return &reg.hosts[i];
        if (!reg.hosts[i].origin[0] && !free_slot)
            free_slot = &reg.hosts[i];
    }
    if (make && free_slot) {
        memset(free_slot, 0, sizeof(*free_slot));
        snprintf(free_slot->origin, sizeof(free_slot->origin), "%s", origin);
        return free_slot;
    }
    return NULL;
}

bool hosts_admit(const char *url, int64_t now_ms, bool *probe, char *why, size_t size,
                 int *retry_after)
{
    char origin[HOSTS_ORIGIN_MAX], since[32];
    bool go = true;
    *probe = false;
    hosts_origin_of(url, origin, sizeof(origin));
    pthread_mutex_lock(&reg.lock);
    struct host *h = origin[0] ? find(origin, false) : NULL;
    if (h && h->since && !h->probing && now_ms >= h->probe_at) {
        h->probing = *probe = true; /* this attempt asks whether it is back */
    } else if (h && h->since) {
        struct tm tm;
        time_t t = (time_t)h->since;
        int64_t wait = h->probing ? h->wait_ms : h->probe_at - now_ms;
        gmtime_r(&t, &tm);
        strftime(since, sizeof(since), "%Y-%m-%dT%H:%M:%SZ", &tm);
        *retry_after = (int)(wait / 1000 + 1);
        snprintf(why, size,
                 "upstream host %s is down since %s (%d failures in a row); tried "
                 "again in %d s",
                 origin, since, h->failures, *retry_after);
        go = false;
    }
    pthread_mutex_unlock(&reg.lock);
    return go;
}

void hosts_result(const char *url, bool outage, bool probe, int64_t now_ms)
{
    char origin[HOSTS_ORIGIN_MAX];
    hosts_origin_of(url, origin, sizeof(origin));
    if (!origin[0])
        return;
    pthread_mutex_lock(&reg.lock);
    struct host *h = find(origin, outage && reg.limit > 0);
    if (h && !outage) {
        if (h->since) {
            log_info("upstream host %s answers again after %d failures", origin, h->failures);
            atomic_fetch_sub(&reg.down, 1);
        }
        h->origin[0] = '\0'; /* up: forgotten */
    } else if (h) {
        h->failures++;
        if (probe) {
            h->probing = false;
            h->wait_ms = h->wait_ms * 2 > HOSTS_PROBE_MAX_MS ? HOSTS_PROBE_MAX_MS : h->wait_ms * 2;
            h->probe_at = now_ms + h->wait_ms;
        } else if (!h->since && h->failures >= reg.limit) {
            h->since = (int64_t)time(NULL);
            atomic_fetch_add(&reg.down, 1);
            h->wait_ms = HOSTS_PROBE_FIRST_MS;
            h->probe_at = now_ms + h->wait_ms;
            log_error("upstream host %s held down after %d failures in a row: its downloads "
                      "fail at once (expired objects answer from disk within their "
                      "stale-if-error)",
                      origin, h->failures);
        }
    }
    pthread_mutex_unlock(&reg.lock);
}

bool hosts_any_down(void)
{
    return atomic_load(&reg.down) > 0;
}

bool hosts_held(const char *url)
{
    if (!hosts_any_down())
        return false;
    char origin[HOSTS_ORIGIN_MAX];
    hosts_origin_of(url, origin, sizeof(origin));
    pthread_mutex_lock(&reg.lock);
    struct host *h = origin[0] ? find(origin, false) : NULL;
    bool held = h && h->since;
    pthread_mutex_unlock(&reg.lock);
    return held;
}

size_t hosts_down_count(void)
{
    return (size_t)atomic_load(&reg.down);
}

struct host_down *hosts_down_list(size_t *n, int64_t now_ms)
{
    struct host_down *out = NULL;
    *n = 0;
    pthread_mutex_lock(&reg.lock);
    size_t down = (size_t)atomic_load(&reg.down); /* changed under this lock only */
    if (down && (out = calloc(down, sizeof(*out)))) {
        for (size_t i = 0; i < HOSTS_MAX && *n < down; i++) {
            const struct host *h = &reg.hosts[i];
            if (!h->origin[0] || !h->since)
                continue;
            struct host_down *d = &out[(*n)++];
            snprintf(d->origin, sizeof(d->origin), "%s", h->origin);
            d->since = h->since;
            d->failures = h->failures;
            d->probe_in_ms = h->probing || now_ms >= h->probe_at ? 0 : h->probe_at - now_ms;
        }
    }
    pthread_mutex_unlock(&reg.lock);
    return out;
}
