/* CONNECT host:port (HTTPS_PROXY clients): checked on the request's thread, then the host
 * resolved and connected on a thread of its own (a slow resolver must not hold a worker), every
 * address checked by the upstream address policy before a socket is connected to it; the request
 * waits parked meanwhile, and once woken answers 2xx and hands the socket to the engine's tunnel
 * (conn_tunnel), or answers the refusal. Nothing of a tunnel is cached: its bytes are TLS; what
 * it reads from upstream is taken from the uplink cap's bucket, as downloads' bytes are. */
#include "http/http_connect.h"
#include "base/clock.h"
#include "http/http_offload.h"
#include "base/parse.h"
#include "http/proxy_target.h"
#include "rules/policy.h"
#include "rules/rules.h"
#include "rules/terms.h"
#include "stats/stats.h"
#include "upstream/upstream.h"

#include <assert.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CONNECT_MAGIC 0xc0111ec7u

static const char *port_refusal(int port, char *buf, size_t size);

struct connect_req {
    unsigned magic;
    struct offload job; /* resolve and connect (connect_run), off the worker */
    char host[256];
    char port[8];
    int port_number;
    int64_t timeout_ms;
    bool opened;  /* answered 200: the engine relays */
    bool refused; /* the client outside --allow-network: statistics_refused, logged REFUSED */
    /* The target is one of arca's own listeners (self), or a name on a listener's port that
     * only the job's lookup can place (maybe_self); a port no --connect-port names is refused
     * unless the target is arca itself (port_refused, said once the lookup has answered). */
    bool self, maybe_self, port_refused;
    struct sockaddr_storage client; /* whose tunnel it is: a tunnel to arca itself is theirs */
    /* connect_run's result, read once the job is done */
    int fd;
    unsigned int status; /* with fd < 0: 403 (policy), 502 (resolve, connect) */
    char why[512];
};

static struct connect_req *connect_of(struct offload *o)
{
    struct connect_req *r = OFFLOAD_OWNER(o, struct connect_req, job);
    assert(r->magic == CONNECT_MAGIC);
    return r;
}

/* The last reference: the request's, or the job's when the client left first. */
static void req_free(struct offload *o)
{
    struct connect_req *r = connect_of(o);
    if (r->fd >= 0)
        close(r->fd);
    r->magic = 0;
    free(r);
}

/* A non-blocking connect, finished by the deadline; 0 or an errno (ECANCELED: the client left,
 * seen within OFFLOAD_POLL_MS, so its share of the jobs is back at once). */
static int connect_by(struct connect_req *r, int fd, const struct sockaddr *sa, socklen_t len,
                      int64_t deadline_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    int err = 0, n = 0;
    socklen_t elen = sizeof(err);
    if (connect(fd, sa, len) == 0)
        return 0;
    if (errno != EINPROGRESS)
        return errno;
    while (n == 0 || (n < 0 && errno == EINTR)) {
        int64_t left = deadline_ms - monotonic_ms();
        if (offload_abandoned(&r->job))
            return ECANCELED;
        if (left <= 0)
            return ETIMEDOUT;
        n = poll(&p, 1, (int)(left < OFFLOAD_POLL_MS ? left : OFFLOAD_POLL_MS));
    }
    if (n < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
        return errno;
    return err;
}

/* Each address in turn: the policy's refusal, or a connection; all of them within the one
 * connect timeout (a name with many silent addresses must not hold the thread for each). */
static void connect_some(struct connect_req *r, const struct addrinfo *ai)
{
    char why[160];
    int64_t deadline = monotonic_ms() + r->timeout_ms;
    for (; ai && r->fd < 0 && !offload_abandoned(&r->job); ai = ai->ai_next) {
        int fd, err;
        int64_t left = deadline - monotonic_ms();
        if (left <= 0) {
            r->status = r->status ? r->status : HTTP_BAD_GATEWAY;
            if (r->status == HTTP_BAD_GATEWAY)
                snprintf(r->why, sizeof(r->why), "cannot connect to %s port %s: %s", r->host,
                         r->port, strerror(ETIMEDOUT));
            return;
        }
        if (policy_upstream_check(ai->ai_addr, why, sizeof(why)) < 0 ||
            rules_addr_is_parent(ai->ai_addr, r->port_number, why, sizeof(why))) {
            r->status = HTTP_FORBIDDEN;
            snprintf(r->why, sizeof(r->why), "%s", why);
            continue;
        }
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
            err = errno;
        else if ((err = connect_by(r, fd, ai->ai_addr, ai->ai_addrlen, deadline)) == 0) {
            r->fd = fd;
            return;
        }
        if (fd >= 0)
            close(fd);
        if (r->status != HTTP_FORBIDDEN) { /* a refusal says more than a later failure */
            r->status = HTTP_BAD_GATEWAY;
            snprintf(r->why, sizeof(r->why), "cannot connect to %s port %s: %s", r->host, r->port,
                     strerror(err));
        }
    }
}

/* Until the listener has taken the relay from `from` as the client's (engine_relay_accepted):
 * no byte goes through before its peer is the client's. 0 or an errno. */
static int wait_accepted(struct connect_req *r, const struct sockaddr *from, int64_t deadline_ms)
{
    struct timespec tick = {0, 1000 * 1000};
    while (!engine_relay_accepted(from)) {
        if (offload_abandoned(&r->job))
            return ECANCELED;
        if (monotonic_ms() >= deadline_ms)
            return ETIMEDOUT;
        nanosleep(&tick, NULL);
    }
    return 0;
}

/* A connection to arca's own listener at `to`, made from that same address (bound first: the
 * listener sees a local address and a port this socket holds) and registered as the client's
 * before it connects (engine_expect_relay): the requests in the tunnel are judged as the client's
 * own, never as arca's (loopback would pass --allow-network). 0 or an errno. */
static int connect_relay(struct connect_req *r, const struct addrinfo *to, int64_t deadline_ms)
{
    struct sockaddr_storage from;
    socklen_t len = to->ai_addrlen;
    int fd = socket(to->ai_family, to->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, to->ai_protocol);
    int err = 0;
    if (fd < 0)
        return errno;
    memcpy(&from, to->ai_addr, len);
    if (from.ss_family == AF_INET)
        ((struct sockaddr_in *)&from)->sin_port = 0;
    else
        ((struct sockaddr_in6 *)&from)->sin6_port = 0;
    if (bind(fd, (struct sockaddr *)&from, len) < 0 ||
        getsockname(fd, (struct sockaddr *)&from, &len) < 0) {
        err = errno;
        close(fd);
        return err;
    }
    if (!engine_expect_relay((struct sockaddr *)&from, (struct sockaddr *)&r->client)) {
        close(fd);
        return EBUSY;
    }
    if ((err = connect_by(r, fd, to->ai_addr, to->ai_addrlen, deadline_ms)) == 0)
        err = wait_accepted(r, (struct sockaddr *)&from, deadline_ms);
    engine_forget_relay((struct sockaddr *)&from);
    if (err)
        close(fd);
    else
        r->fd = fd;
    return err;
}

/* arca itself: the first address of the target that one of its listeners at that port listens
 * on (no upstream policy: arca is not an upstream). The requests in the tunnel get the rules,
 * the limits and who-may-fetch of any request to that listener, as the client's. */
static void connect_self(struct connect_req *r, const struct addrinfo *ai)
{
    int64_t deadline = monotonic_ms() + r->timeout_ms;
    int err = ENOENT;
    for (; ai && r->fd < 0 && err != ECANCELED; ai = ai->ai_next)
        if (proxy_addr_is_self(ai->ai_addr, r->port_number, http_cfg))
            err = connect_relay(r, ai, deadline);
    if (r->fd >= 0)
        return;
    r->status = err == EBUSY ? HTTP_SERVICE_UNAVAILABLE : HTTP_BAD_GATEWAY;
    snprintf(r->why, sizeof(r->why), "cannot connect to arca's own listener %s port %s: %s",
             r->host, r->port,
             err == EBUSY ? "too many tunnels to arca itself being opened" : strerror(err));
}

/* Whether a name on one of arca's ports names arca (a lookup: on the job's thread). */
static bool names_self(const struct connect_req *r)
{
    char authority[300];
    snprintf(authority, sizeof(authority), "%s:%s", r->host, r->port);
    return proxy_names_self(authority, true, http_cfg);
}

/* The job: arca itself, or every address of the name, each checked by the policy before it is
 * connected to. */
static void connect_run(struct offload *o)
{
    struct connect_req *r = connect_of(o);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_ADDRCONFIG | AI_NUMERICSERV},
                    *ai;
    if (r->maybe_self)
        r->self = names_self(r);
    if (!r->self && r->port_refused) {
        r->status = HTTP_FORBIDDEN;
        port_refusal(r->port_number, r->why, sizeof(r->why));
        return;
    }
    if (getaddrinfo(r->host, r->port, &hints, &ai) != 0) {
        r->status = HTTP_BAD_GATEWAY;
        snprintf(r->why, sizeof(r->why), "cannot resolve host %s", r->host);
        return;
    }
    if (r->self)
        connect_self(r, ai);
    else
        connect_some(r, ai);
    freeaddrinfo(ai);
}

/* host and port of an authority-form target ("host:port", "[v6]:port": parse_authority's
 * reading, a port required); false if it is not one. */
static bool split_target(const char *target, struct connect_req *r, int *port)
{
    struct authority a;
    if (parse_authority(target, strlen(target), &a) != AUTHORITY_OK || !a.port)
        return false;
    if (a.host[0] == '[') { /* the address without its brackets, for getaddrinfo */
        a.host++;
        a.host_len -= 2;
    }
    if (a.host_len >= sizeof(r->host))
        return false;
    snprintf(r->host, sizeof(r->host), "%.*s", (int)a.host_len, a.host);
    snprintf(r->port, sizeof(r->port), "%d", a.port);
    *port = r->port_number = a.port;
    return true;
}

/* "CONNECT to port 22 refused: arca tunnels to ports 443 (--connect-port)", or that tunnels are
 * off, into buf. */
static const char *port_refusal(int port, char *buf, size_t size)
{
    size_t n;
    if (http_cfg->n_connect_ports < 0) {
        snprintf(buf, size, "CONNECT refused: arca opens no tunnels (--connect-port none)");
        return buf;
    }
    n = (size_t)snprintf(buf, size, "CONNECT to port %d refused: arca tunnels to port%s ", port,
                         http_cfg->n_connect_ports > 1 ? "s" : "");
    if (http_cfg->n_connect_ports == 0)
        n += (size_t)snprintf(buf + n, size - n, "443");
    for (int i = 0; i < http_cfg->n_connect_ports && n < size; i++)
        n += (size_t)snprintf(buf + n, size - n, "%s%d", i ? ", " : "", http_cfg->connect_ports[i]);
    if (n < size)
        snprintf(buf + n, size - n, " (--connect-port)");
    return buf;
}

/* A refusal closes the connection: a client that sent its tunnel's first bytes right behind
 * its CONNECT must not have them read as a request. A client refused by --allow-network is
 * counted as a refused fetch is. */
static enum conn_result refuse(struct conn *c, const struct connect_req *r, unsigned int status,
                               const char *why)
{
    struct answer *a = http_error_response("%s", why);
    atomic_fetch_add(&stats.tunnels_refused, 1);
    if (r->refused)
        atomic_fetch_add(&stats.refused, 1);
    if (a)
        answer_header(a, "Connection", "close");
    return http_queue(c, status, a);
}

/* Whether the rules let this client tunnel to the target (terms_tunnel_allowed; r->why says
 * why not, the refusal counted as a client's). */
static bool tunnel_allowed(struct conn *c, struct connect_req *r, int port)
{
    struct sockaddr_storage buf;
    if (terms_tunnel_allowed(r->host, port, http_client(c, &buf), r->why, sizeof(r->why)))
        return true;
    r->refused = true;
    return false;
}

/* Why this CONNECT is refused before anything is resolved (*status set), or NULL. */
static const char *refusal(struct conn *c, struct request *req, struct connect_req *r,
                           unsigned int *status)
{
    enum proxy_target target;
    int port = 0;
    const char *why = http_fetch_refusal(c);
    *status = HTTP_FORBIDDEN;
    if ((r->refused = why != NULL))
        return why;
    *status = HTTP_BAD_REQUEST;
    if (!split_target(req->uri, r, &port))
        return "CONNECT takes host:port";
    if (conn_header(c, "Content-Length") || conn_header(c, "Transfer-Encoding"))
        return "CONNECT takes no request body"; /* "Content-Length: 0": none, but not taken */
    target = proxy_target_of(req->uri, true, http_cfg);
    r->self = target == PROXY_SELF;
    r->maybe_self = target == PROXY_RESOLVE;
    *status = HTTP_FORBIDDEN;
    if (!r->self && !config_tunnel_port(http_cfg, port)) {
        if (!r->maybe_self)
            return port_refusal(port, r->why, sizeof(r->why));
        r->port_refused = true; /* unless the lookup finds arca itself */
    }
    /* a tunnel to arca is no tunnel out: the requests in it get the rules as any request */
    if (!r->self && !r->port_refused && !tunnel_allowed(c, r, port))
        return r->why;
    *status = HTTP_LOOP_DETECTED;
    if (proxy_came_from_self(c))
        return "loop: this request came from this arca (its Via)";
    *status = HTTP_SERVICE_UNAVAILABLE;
    if (engine_draining())
        return "arca is shutting down";
    return NULL;
}

/* "user:secret@host:443" (refused: 400) is logged as "***********@host:443". */
static void mask_userinfo(char *target)
{
    char *at = strrchr(target, '@');
    if (at)
        memset(target, '*', (size_t)(at - target));
}

static enum conn_result begin(struct conn *c, struct request *req)
{
    struct connect_req *r = calloc(1, sizeof(*r));
    unsigned int status;
    const char *why;
    if (!r)
        return http_send_error(c, HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    r->magic = CONNECT_MAGIC;
    r->fd = -1;
    r->timeout_ms = http_cfg->connect_timeout * 1000;
    offload_init(&r->job, c, connect_run, req_free);
    req->state = r;
    mask_userinfo(req->uri);
    if ((why = refusal(c, req, r, &status)))
        return refuse(c, r, status, why);
    /* known: refusal() refused an unknown client (http_fetch_refusal) */
    const struct sockaddr *client = http_client(c, &req->client);
    memcpy(&r->client, client,
           client->sa_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
    switch (offload_start(&r->job, client)) {
    case OFFLOAD_STARTED:
        return CONN_GO_ON;
    case OFFLOAD_CLIENT_BUSY:
        return refuse(c, r, HTTP_TOO_MANY_REQUESTS, OFFLOAD_CLIENT_BUSY_WHY);
    default:
        return refuse(c, r, HTTP_SERVICE_UNAVAILABLE, OFFLOAD_BUSY_WHY);
    }
}

/* The job is done: the tunnel's answer, or the refusal. */
static enum conn_result answer(struct conn *c, struct connect_req *r)
{
    struct answer *a;
    if (r->fd < 0)
        return refuse(c, r, r->status, r->why);
    if (!(a = answer_static("", 0)) || !conn_tunnel(c, r->fd, upstream_rate_tokens())) {
        if (a)
            answer_put(a);
        return http_send_error(c, HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    }
    r->fd = -1; /* the engine's */
    atomic_fetch_add(&stats.tunnels, 1);
    atomic_fetch_add(&stats.tunnels_active, 1);
    r->opened = true;
    return http_queue(c, HTTP_OK, a);
}

enum conn_result http_connect(struct conn *c, struct request *req, const char *rest)
{
    struct connect_req *r = req->state;
    (void)rest;
    assert(http_handling(c, req));
    if (!r)
        return begin(c, req);
    assert(r->magic == CONNECT_MAGIC);
    if (!offload_done(&r->job)) { /* not woken by the job (a stale wake-up): still waiting */
        conn_suspend(c);
        return CONN_GO_ON;
    }
    return answer(c, r);
}

const char *http_connect_done(struct request *req, bool completed)
{
    struct connect_req *r = req->state;
    (void)completed;
    req->state = NULL;
    if (!r)
        return NULL;
    if (r->opened) {
        atomic_fetch_add(&stats.tunnels_active, -1);
        atomic_fetch_add(&stats.tunnel_bytes_down, req->wrote);
        atomic_fetch_add(&stats.tunnel_bytes_up, req->tunnel_up);
        req->bytes = req->wrote;
    }
    bool opened = r->opened, refused = r->refused;
    offload_leave(&r->job); /* a job still running holds r until it is done */
    return opened ? "TUNNEL" : refused ? "REFUSED" : NULL;
}
