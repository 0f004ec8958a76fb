#include "http_limits.h"
#include "policy.h"
#include "clock.h"
#include "log.h"
#include "parse.h"
#include "stats.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define WATCH_INTERVAL_MS 250

/* The request path touches a connection's entry without the mutex: `deadline_ms` is atomic and
 * the over_* flags never change after the entry is published. The mutex guards the list. */
struct conn_track {
    int fd;
    uint8_t addr[16];
    _Atomic int64_t deadline_ms; /* headers due by then; 0 while a request is being served */
    bool over_ip, over_total;
    /* From a --trusted-proxy: the connection carries many clients' requests in turn, so it
     * counts for the client of the request it serves (X-Forwarded-For), and only meanwhile. */
    bool proxied, serving;
    struct conn_track *prev, *next;
};

static struct {
    const struct config *cfg;
    pthread_mutex_t lock;
    struct conn_track *head;
    int count;
    pthread_t watchdog;
    atomic_bool stopping;
    bool started;
} lim = {.lock = PTHREAD_MUTEX_INITIALIZER};

static struct conn_track *track_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* Lock held. O(connections): once per new connection, bounded by --max-connections. */
static int same_address(const uint8_t addr[16])
{
    int n = 0;
    for (struct conn_track *t = lim.head; t; t = t->next)
        n += (!t->proxied || t->serving) && memcmp(t->addr, addr, 16) == 0;
    return n;
}

void limits_conn_open(struct MHD_Connection *c, void **socket_ctx)
{
    const union MHD_ConnectionInfo *fd =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    const union MHD_ConnectionInfo *ai =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    struct conn_track *t = calloc(1, sizeof(*t));
    *socket_ctx = t;
    if (!t)
        return;
    t->fd = fd ? fd->connect_fd : -1;
    if (ai)
        addr_to_v6(ai->client_addr, t->addr);
    t->proxied = ai && policy_trusted_proxy(ai->client_addr);
    atomic_init(&t->deadline_ms, monotonic_ms() + lim.cfg->header_timeout * 1000);
    pthread_mutex_lock(&lim.lock);
    assert(lim.count >= 0 && (lim.head == NULL) == (lim.count == 0));
    t->over_total = lim.count >= lim.cfg->max_connections;
    t->over_ip = !t->proxied && same_address(t->addr) >= lim.cfg->max_connections_per_ip;
    t->next = lim.head;
    if (lim.head)
        lim.head->prev = t;
    lim.head = t;
    lim.count++;
    pthread_mutex_unlock(&lim.lock);
}

void limits_conn_close(void *socket_ctx)
{
    struct conn_track *t = socket_ctx;
    if (!t)
        return;
    pthread_mutex_lock(&lim.lock);
    assert(lim.count > 0 && (t->prev ? t->prev->next == t : lim.head == t));
    if (t->prev)
        t->prev->next = t->next;
    else
        lim.head = t->next;
    if (t->next)
        t->next->prev = t->prev;
    lim.count--;
    pthread_mutex_unlock(&lim.lock);
    free(t);
}

static void set_deadline(struct MHD_Connection *c, int64_t deadline_ms)
{
    struct conn_track *t = track_of(c);
    if (t)
        atomic_store(&t->deadline_ms, deadline_ms);
}

void limits_request_begins(struct MHD_Connection *c, const struct sockaddr *client)
{
    struct conn_track *t = track_of(c);
    set_deadline(c, 0);
    if (!t || !t->proxied)
        return;
    pthread_mutex_lock(&lim.lock);
    t->serving = false;
    if (!client)
        memset(t->addr, 0, sizeof(t->addr)); /* unknown clients share one count, as "::" */
    if (!client || addr_to_v6(client, t->addr) == 0) {
        t->over_ip = same_address(t->addr) >= lim.cfg->max_connections_per_ip;
        t->serving = true;
    }
    pthread_mutex_unlock(&lim.lock);
}

void limits_request_ends(struct MHD_Connection *c)
{
    struct conn_track *t = track_of(c);
    set_deadline(c, monotonic_ms() + lim.cfg->idle_timeout * 1000);
    if (t && t->proxied) {
        pthread_mutex_lock(&lim.lock);
        t->serving = false;
        pthread_mutex_unlock(&lim.lock);
    }
}

unsigned int limits_refusal(struct MHD_Connection *c, const char **reason)
{
    struct conn_track *t = track_of(c);
    if (t && t->over_total) {
        *reason = "too many client connections (--max-connections); try again later";
        return MHD_HTTP_SERVICE_UNAVAILABLE;
    }
    if (t && t->over_ip) {
        *reason = "too many connections from your address (--max-connections-per-ip)";
        return MHD_HTTP_TOO_MANY_REQUESTS;
    }
    return 0;
}

/* Shut down (not close: libmicrohttpd owns the descriptor) connections whose headers are late;
 * libmicrohttpd then sees the end of the stream and closes them its usual way. */
static void *watch(void *arg)
{
    struct timespec tick = {0, WATCH_INTERVAL_MS * 1000000L};
    (void)arg;
    while (!atomic_load(&lim.stopping)) {
        int64_t now = monotonic_ms();
        int cut = 0;
        pthread_mutex_lock(&lim.lock);
        for (struct conn_track *t = lim.head; t; t = t->next) {
            int64_t due = atomic_load(&t->deadline_ms);
            /* The exchange fails if the request's headers arrived meanwhile. */
            if (due && now > due && t->fd >= 0 &&
                atomic_compare_exchange_strong(&t->deadline_ms, &due, 0)) {
                atomic_fetch_add(&stats.limited, 1); /* before the client can see the close */
                shutdown(t->fd, SHUT_RDWR);
                cut++;
            }
        }
        pthread_mutex_unlock(&lim.lock);
        if (cut)
            log_info("closed %d connections that sent no complete request in time", cut);
        nanosleep(&tick, NULL);
    }
    return NULL;
}

int limits_start(const struct config *cfg, char *err, size_t errlen)
{
    lim.cfg = cfg;
    if (pthread_create(&lim.watchdog, NULL, watch, NULL) != 0) {
        snprintf(err, errlen, "cannot start the connection watchdog");
        return -1;
    }
    lim.started = true;
    return 0;
}

void limits_stop(void)
{
    if (!lim.started)
        return;
    atomic_store(&lim.stopping, true);
    pthread_join(lim.watchdog, NULL);
    lim.started = false;
}
