/* Absolute-form requests: whether they name arca itself, whether they came from it, and their
 * Cache-Control (proxy_target.h). */
#include "http/proxy_target.h"
#include "base/parse.h"
#include "upstream/upstream.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

/* host (without brackets) and port of "user@host:port", "[v6]:port" or "host" (parse_authority's
 * reading); false when it is not one. */
static bool split_host_port(const char *authority, bool https, char *host, size_t size, int *port)
{
    struct url_parts u;
    /* "evil.example#@arca:8001" is refused: its host is evil.example */
    if (parse_url_authority(authority, strlen(authority), &u) != URL_OK)
        return false;
    if (u.host[0] == '[') {
        u.host++;
        u.host_len -= 2;
    }
    if (u.host_len >= size)
        return false;
    snprintf(host, size, "%.*s", (int)u.host_len, u.host);
    *port = u.port ? u.port : https ? 443 : 80;
    return true;
}

/* Compared as the policy compares them: an IPv4 address and its IPv4-mapped form are one
 * ([::ffff:127.0.0.1] is 127.0.0.1, found by the outside review). */
static bool same_address(const struct sockaddr *a, const struct sockaddr *b)
{
    uint8_t x[16], y[16];
    return a && b && addr_to_v6(a, x) == 0 && addr_to_v6(b, y) == 0 && !memcmp(x, y, 16);
}

/* Whether `a` is an address of one of this machine's interfaces. */
static bool is_local(const struct sockaddr *a)
{
    struct ifaddrs *ifs, *i;
    bool found = false;
    if (getifaddrs(&ifs) < 0)
        return false;
    for (i = ifs; i && !found; i = i->ifa_next)
        found = same_address(a, i->ifa_addr);
    freeifaddrs(ifs);
    return found;
}

/* Whether `a` is where arca listens. */
static bool is_arca(const struct sockaddr *a, const char *listen_host)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST}, *ai, *i;
    bool found = false;
    uint8_t v6[16];
    if (host_is_wildcard(listen_host))
        return (addr_to_v6(a, v6) == 0 && addr_is_loopback(v6)) || is_local(a);
    if (!strcasecmp(listen_host, "localhost")) { /* no lookup on a worker: its two addresses */
        static const uint8_t v4_one[16] = {[10] = 0xff, [11] = 0xff, [12] = 127, [15] = 1};
        static const uint8_t v6_one[16] = {[15] = 1};
        return addr_to_v6(a, v6) == 0 && (!memcmp(v6, v4_one, 16) || !memcmp(v6, v6_one, 16));
    }
    if (getaddrinfo(listen_host, NULL, &hints, &ai) != 0)
        return false;
    for (i = ai; i && !found; i = i->ai_next)
        found = same_address(a, i->ai_addr);
    freeaddrinfo(ai);
    return found;
}

/* Whether `host` is a numeric address (no lookup needed to place it). */
static bool numeric(const char *host)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST}, *ai;
    if (getaddrinfo(host, NULL, &hints, &ai) != 0)
        return false;
    freeaddrinfo(ai);
    return true;
}

/* The hosts arca listens on at `port` (--listen's, each --tls-listen's) into hosts[]; how many. */
static int hosts_at(const struct config *cfg, int port,
                    const char *hosts[CONFIG_MAX_TLS_LISTEN + 1])
{
    int n = 0;
    if (cfg->listen_port == port)
        hosts[n++] = cfg->listen_host;
    for (int i = 0; i < cfg->n_tls_listen && n <= CONFIG_MAX_TLS_LISTEN; i++)
        if (cfg->tls_listen[i].port == port)
            hosts[n++] = cfg->tls_listen[i].host;
    return n;
}

/* Whether `a` is where one of the n listeners of hosts[] listens. */
static bool is_arca_of(const struct sockaddr *a, const char *const hosts[], int n)
{
    for (int i = 0; i < n; i++)
        if (is_arca(a, hosts[i]))
            return true;
    return false;
}

bool proxy_addr_is_self(const struct sockaddr *a, int port, const struct config *cfg)
{
    const char *hosts[CONFIG_MAX_TLS_LISTEN + 1];
    int n = hosts_at(cfg, port, hosts);
    return n > 0 && is_arca_of(a, hosts, n);
}

enum proxy_target proxy_target_of(const char *authority, bool https, const struct config *cfg)
{
    char host[256];
    const char *hosts[CONFIG_MAX_TLS_LISTEN + 1];
    int port;
    if (!split_host_port(authority, https, host, sizeof(host), &port) ||
        hosts_at(cfg, port, hosts) == 0)
        return PROXY_FETCH;
    if (!strcasecmp(host, "localhost") || numeric(host))
        return proxy_names_self(authority, https, cfg) ? PROXY_SELF : PROXY_FETCH;
    if (strchr(authority, '[')) /* brackets hold an IPv6 address, or the URL is refused */
        return PROXY_FETCH;
    return PROXY_RESOLVE;
}

bool proxy_names_self(const char *authority, bool https, const struct config *cfg)
{
    char host[256];
    const char *hosts[CONFIG_MAX_TLS_LISTEN + 1];
    int port, n;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai, *i;
    bool found = false;
    if (!split_host_port(authority, https, host, sizeof(host), &port) ||
        (n = hosts_at(cfg, port, hosts)) == 0)
        return false;
    if (!strcasecmp(host, "localhost")) { /* no lookup on a worker: its two addresses */
        struct sockaddr_in v4 = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        struct sockaddr_in6 v6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
        return is_arca_of((struct sockaddr *)&v4, hosts, n) ||
               is_arca_of((struct sockaddr *)&v6, hosts, n);
    }
    if (getaddrinfo(host, NULL, &hints, &ai) != 0)
        return false; /* not a name of ours, as far as this machine knows: fetched (and refused) */
    for (i = ai; i && !found; i = i->ai_next)
        found = is_arca_of(i->ai_addr, hosts, n);
    freeaddrinfo(ai);
    return found;
}

/* An entry of a Via value is "[protocol/]version received-by [comment]", entries apart by
 * commas: ours is a received-by after a space, so "xhost:8001 (arca)" is not "host:8001 (arca)". */
bool proxy_via_names_self(const char *value)
{
    const char *via = upstream_via(), *self = strchr(via, ' ') ? strchr(via, ' ') + 1 : via;
    for (const char *p = strstr(value, self); p; p = strstr(p + 1, self))
        if (p > value && (p[-1] == ' ' || p[-1] == '\t'))
            return true;
    return false;
}

static void look_for_self(void *cls, const char *value)
{
    bool *found = cls;
    *found = *found || proxy_via_names_self(value);
}

struct via_join {
    char *out; /* taken at the first value: most requests have no Via */
    size_t len, max;
    bool loop, no_memory;
};

static void join_via(void *cls, const char *value)
{
    struct via_join *j = cls;
    size_t n = strlen(value), at = j->len ? j->len + 2 : 0; /* after ", " when not first */
    if (j->loop || !n)
        return;
    if (j->len + n + 2 > j->max || proxy_via_names_self(value)) {
        j->loop = true;
        return;
    }
    if (!j->out && !j->no_memory && !(j->out = malloc(j->max + 1)))
        j->no_memory = true;
    /* Without memory the lines are still counted: a chain past `max` is a loop either way
     * (only the join is lost: arca's own Via goes on alone). */
    if (j->out) {
        memcpy(j->out + j->len, ", ", at - j->len);
        memcpy(j->out + at, value, n + 1);
    }
    j->len = at + n;
}

enum via_received proxy_via_received(struct conn *c, size_t max, char **joined)
{
    struct via_join j = {NULL, 0, max, false, false};
    conn_each_header(c, "Via", join_via, &j);
    if (j.loop) {
        free(j.out);
        j.out = NULL;
    }
    *joined = j.out;
    return j.loop ? VIA_LOOP : VIA_OK;
}

bool proxy_came_from_self(struct conn *c)
{
    bool found = false;
    conn_each_header(c, "Via", look_for_self, &found);
    return found;
}

/* RFC 9111 1.2.2's delta-seconds: digits only (quoted, as some senders write it, too), up to
 * the directive's end but for blanks; -1 for anything else ("1e3", "+5", "1x", ""), which the
 * directive then says nothing. Past 2^31 it is 2^31, as the RFC says. */
int64_t proxy_delta_seconds(const char *v, size_t len)
{
    int64_t n = 0;
    while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
        len--;
    if (len >= 2 && v[0] == '"' && v[len - 1] == '"') {
        v++;
        len -= 2;
    }
    if (len == 0)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        n = n > 2147483648LL ? n : n * 10 + (v[i] - '0');
    }
    return n > 2147483648LL ? 2147483648LL : n;
}

int64_t proxy_max_age_of(const char *value, int64_t age)
{
    for (const char *p = value; *p;) {
        p += strspn(p, " \t,");
        size_t len = strcspn(p, ",");
        if (len == 8 && !strncasecmp(p, "no-cache", 8))
            age = 0;
        else if (len > 8 && !strncasecmp(p, "max-age=", 8)) {
            int64_t n = proxy_delta_seconds(p + 8, len - 8);
            if (n >= 0 && (age < 0 || n < age))
                age = n;
        }
        p += len;
    }
    return age;
}

static void take_max_age(void *cls, const char *value)
{
    int64_t *age = cls;
    *age = proxy_max_age_of(value, *age);
}

int64_t proxy_max_age(struct conn *c)
{
    int64_t age = -1;
    conn_each_header(c, "Cache-Control", take_max_age, &age);
    return age;
}
