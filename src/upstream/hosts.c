/* Upstream hosts held down (hosts.h): a small table of the hosts whose last attempts failed,
 * found by their origin string. A host that answers leaves it, and so does one neither failing
 * nor asked for a while. */
#include "upstream/hosts.h"
#include "base/clock.h"
#include "log/log.h"

#include <assert.h>
#include <ctype.h>
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
    int64_t seen_ms;  /* its last failure, or the last attempt asked of it while held */
    bool probing;     /* a probe is out */
    bool awaited;     /* a download waits for a slot to be its probe (hosts_await_probe) */
};

static struct {
    pthread_mutex_t lock;
    atomic_int down;  /* hosts held down now */
    int limit;        /* --origin-failures */
    int64_t swept_ms; /* the last pass for idle hosts (forget_idle) */
    struct host hosts[HOSTS_MAX];
} reg = {.lock = PTHREAD_MUTEX_INITIALIZER};

void hosts_configure(int origin_failures)
{
    pthread_mutex_lock(&reg.lock);
    reg.limit = origin_failures;
    reg.swept_ms = 0;
    memset(reg.hosts, 0, sizeof(reg.hosts));
    atomic_store(&reg.down, 0);
    pthread_mutex_unlock(&reg.lock);
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

/* Lock held. The slot of `h` is free again. */
static void drop(struct host *h)
{
    if (h->since)
        atomic_fetch_sub(&reg.down, 1);
    h->origin[0] = '\0';
}

/* Lock held. Hosts neither failing nor asked for HOSTS_IDLE_MS leave the table (at most one
 * pass a HOSTS_SWEEP_MS): failures that old are no longer "in a row", and a host held down that
 * nobody asks for has no download to spare a wait. A probe out, or awaited, keeps its host. */
static void forget_idle(int64_t now_ms)
{
    if (now_ms >= reg.swept_ms && now_ms - reg.swept_ms < HOSTS_SWEEP_MS)
        return;
    reg.swept_ms = now_ms;
    for (size_t i = 0; i < HOSTS_MAX; i++) {
        struct host *h = &reg.hosts[i];
        if (!h->origin[0] || h->probing || h->awaited || now_ms - h->seen_ms < HOSTS_IDLE_MS)
            continue;
        if (h->since)
            log_info("upstream host %s no longer held down: not asked for in %d s", h->origin,
                     HOSTS_IDLE_MS / 1000);
        drop(h);
    }
}

/* Lock held. Whether `a` is of less use than `b` to keep: one not held before one held (only
 * failures would be lost), then the one asked for longest ago. */
static bool less_useful(const struct host *a, const struct host *b)
{
    if (!a->since != !b->since)
        return !a->since;
    return a->seen_ms < b->seen_ms;
}

/* Lock held. The table is full: the least useful host's slot (a probe out, or awaited, keeps
 * its host), emptied; NULL when every host has one. */
static struct host *make_room(void)
{
    struct host *victim = NULL;
    for (size_t i = 0; i < HOSTS_MAX; i++)
        if (!reg.hosts[i].probing && !reg.hosts[i].awaited &&
            (!victim || less_useful(&reg.hosts[i], victim)))
            victim = &reg.hosts[i];
    if (victim) {
        if (victim->since)
            log_info("upstream host %s no longer held down: its place went to another host",
                     victim->origin);
        drop(victim);
    }
    return victim;
}

/* Lock held. The host's slot, or NULL; with `make`, a slot taken for it (a free one, or the
 * least useful host's). */
static struct host *find(const char *origin, bool make)
{
    struct host *slot = NULL;
    for (size_t i = 0; i < HOSTS_MAX; i++) {
        if (!strcmp(reg.hosts[i].origin, origin))
            return &reg.hosts[i];
        if (!reg.hosts[i].origin[0] && !slot)
            slot = &reg.hosts[i];
    }
    if (!make || (!slot && !(slot = make_room())))
        return NULL;
    memset(slot, 0, sizeof(*slot));
    snprintf(slot->origin, sizeof(slot->origin), "%s", origin);
    return slot;
}

bool hosts_admit(const char *url, int64_t now_ms, bool may_probe, bool *probe, char *why,
                 size_t size, int *retry_after)
{
    char origin[HOSTS_ORIGIN_MAX], since[32];
    bool go = true;
    *probe = false;
    hosts_origin_of(url, origin, sizeof(origin));
    pthread_mutex_lock(&reg.lock);
    forget_idle(now_ms);
    struct host *h = origin[0] ? find(origin, false) : NULL;
    if (h && h->since)
        h->seen_ms = now_ms; /* asked for: kept while held */
    if (h && may_probe)
        h->awaited = false; /* the download that waited to be the probe is here */
    if (h && h->since && !h->probing && now_ms >= h->probe_at && may_probe) {
        h->probing = *probe = true; /* this attempt asks whether it is back */
    } else if (h && h->since) {
        struct tm tm;
        time_t t = (time_t)h->since;
        int64_t wait = h->probing             ? h->wait_ms
                       : h->probe_at > now_ms ? h->probe_at - now_ms
                                              : 0; /* due: the next with a slot probes */
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

enum host_word hosts_word(CURL *easy, CURLcode rc, bool refused)
{
    long sent = 0, heard = 0;
    curl_easy_getinfo(easy, CURLINFO_REQUEST_SIZE, &sent);
    curl_easy_getinfo(easy, CURLINFO_HEADER_SIZE, &heard);
    if (sent > 0 || heard > 0)
        return HOST_UP; /* a redirect's answer too: this host answered, whatever came after */
    if (refused)
        return HOST_SAID_NOTHING; /* arca's own refusal */
    /* a connection timed out or refused; curl reports a connect timeout as a timeout */
    return rc == CURLE_COULDNT_CONNECT || rc == CURLE_OPERATION_TIMEDOUT ? HOST_DOWN
                                                                         : HOST_SAID_NOTHING;
}

/* Lock held. One more failure in a row of `h`: held down at the limit; a probe's failure puts
 * its next one off, twice as long. */
static void count_failure(struct host *h, bool probe, int64_t now_ms)
{
    h->failures++;
    h->seen_ms = now_ms;
    if (h->since && probe) {
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
                  h->origin, h->failures);
    }
}

void hosts_result(const char *url, enum host_word word, bool probe, int64_t now_ms)
{
    char origin[HOSTS_ORIGIN_MAX];
    hosts_origin_of(url, origin, sizeof(origin));
    if (!origin[0])
        return;
    pthread_mutex_lock(&reg.lock);
    forget_idle(now_ms);
    struct host *h = find(origin, word == HOST_DOWN && reg.limit > 0);
    if (h && probe && h->probing) { /* the probe is over, however it ended */
        h->probing = false;
        h->probe_at = now_ms + h->wait_ms;
    }
    if (h && word == HOST_UP) {
        if (h->since)
            log_info("upstream host %s answers again after %d failures", origin, h->failures);
        drop(h); /* up: forgotten */
    } else if (h && word == HOST_DOWN) {
        count_failure(h, probe, now_ms);
    }
    pthread_mutex_unlock(&reg.lock);
}

bool hosts_await_probe(const char *url, int64_t until_ms)
{
    char origin[HOSTS_ORIGIN_MAX];
    bool mine = false;
    hosts_origin_of(url, origin, sizeof(origin));
    pthread_mutex_lock(&reg.lock);
    struct host *h = origin[0] ? find(origin, false) : NULL;
    if (h && h->since && !h->probing && !h->awaited && until_ms >= h->probe_at)
        mine = h->awaited = true;
    pthread_mutex_unlock(&reg.lock);
    return mine;
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
    forget_idle(monotonic_ms());
    struct host *h = origin[0] ? find(origin, false) : NULL;
    bool held = h && h->since;
    pthread_mutex_unlock(&reg.lock);
    return held;
}

bool hosts_refuses(const char *url, int64_t now_ms, int64_t until_ms)
{
    if (!hosts_any_down())
        return false;
    char origin[HOSTS_ORIGIN_MAX];
    hosts_origin_of(url, origin, sizeof(origin));
    pthread_mutex_lock(&reg.lock);
    forget_idle(now_ms);
    struct host *h = origin[0] ? find(origin, false) : NULL;
    bool refuses = h && h->since && (h->probing || h->awaited || until_ms < h->probe_at);
    pthread_mutex_unlock(&reg.lock);
    return refuses;
}

size_t hosts_down_count(void)
{
    pthread_mutex_lock(&reg.lock);
    forget_idle(monotonic_ms());
    pthread_mutex_unlock(&reg.lock);
    return (size_t)atomic_load(&reg.down);
}

struct host_down *hosts_down_list(size_t *n, int64_t now_ms)
{
    struct host_down *out = NULL;
    *n = 0;
    pthread_mutex_lock(&reg.lock);
    forget_idle(now_ms);
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
