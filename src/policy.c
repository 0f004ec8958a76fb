#include "policy.h"

#include <arpa/inet.h>
#include "clock.h"

#include <assert.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define MAX_HOST_ADDRS 256
/* How often the host's addresses are read again on the upstream check's path: an address that
 * DHCP or an admin adds is refused within this long even without a SIGHUP. */
#define HOST_REFRESH_MS 5000

static const struct config *cfg;
static pthread_rwlock_t clients_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct cidr clients[CONFIG_MAX_NETS];
static int n_clients;

/* --listen's address, when it is one (not a name, not the wildcard). */
static struct cidr listen_addr;
static bool has_listen_addr;

/* The host's own addresses (every interface's), as IPv6 (IPv4 mapped): refused upstream on
 * every port, as loopback is; on arca's port they are arca itself. */
static struct {
    pthread_rwlock_t lock;
    uint8_t addrs[MAX_HOST_ADDRS][16];
    int n;
    _Atomic int64_t next_read_ms; /* INT64_MAX: a list given by policy_set_host_addrs, kept */
} host = {.lock = PTHREAD_RWLOCK_INITIALIZER};

/* Networks refused by default: loopback, link-local (cloud metadata lives at 169.254.169.254),
 * the other clouds' metadata endpoints (Alibaba's, AWS's over IPv6, Azure's wire server),
 * unspecified and "this network", and multicast. README, "Upstream addresses", lists them. */
static const char *refused_default[] = {
    "127.0.0.0/8",       "::1/128",          "169.254.0.0/16", "fe80::/10", "100.100.100.200/32",
    "fd00:ec2::254/128", "168.63.129.16/32", "0.0.0.0/8",      "::/128",    "224.0.0.0/4",
    "ff00::/8",
};

static void put_host_addrs(const uint8_t (*addrs)[16], int n)
{
    pthread_rwlock_wrlock(&host.lock);
    memcpy(host.addrs, addrs, (size_t)n * sizeof(addrs[0]));
    host.n = n;
    pthread_rwlock_unlock(&host.lock);
}

/* Every interface's addresses: read without the lock (getifaddrs asks the kernel), then swapped
 * in. A failed read keeps the list before it. */
static int read_host_addrs(void)
{
    static uint8_t found[MAX_HOST_ADDRS][16];
    static pthread_mutex_t reading = PTHREAD_MUTEX_INITIALIZER; /* `found` is one buffer */
    struct ifaddrs *list, *ifa;
    int n = 0;
    pthread_mutex_lock(&reading);
    if (getifaddrs(&list) < 0) {
        pthread_mutex_unlock(&reading);
        return -1;
    }
    for (ifa = list; ifa && n < MAX_HOST_ADDRS; ifa = ifa->ifa_next)
        if (ifa->ifa_addr && addr_to_v6(ifa->ifa_addr, found[n]) == 0)
            n++;
    freeifaddrs(list);
    put_host_addrs((const uint8_t(*)[16])found, n);
    pthread_mutex_unlock(&reading);
    return n;
}

int policy_refresh_host(void)
{
    assert(cfg); /* policy_init ran first */
    if (atomic_load(&host.next_read_ms) == INT64_MAX)
        return host.n; /* given by the caller: kept */
    atomic_store(&host.next_read_ms, monotonic_ms() + HOST_REFRESH_MS);
    return read_host_addrs();
}

void policy_set_host_addrs(const struct sockaddr *const *addrs, int n)
{
    static uint8_t given[MAX_HOST_ADDRS][16];
    int kept = 0;
    assert(n >= 0 && n <= MAX_HOST_ADDRS);
    for (int i = 0; i < n; i++)
        kept += addr_to_v6(addrs[i], given[kept]) == 0;
    atomic_store(&host.next_read_ms, INT64_MAX);
    put_host_addrs((const uint8_t(*)[16])given, kept);
}

/* On the check's path: read again when the last read is older than HOST_REFRESH_MS (one
 * thread does; the others go on with the list they have). */
static void refresh_when_due(void)
{
    int64_t due = atomic_load(&host.next_read_ms), now = monotonic_ms();
    if (now >= due &&
        atomic_compare_exchange_strong(&host.next_read_ms, &due, now + HOST_REFRESH_MS))
        read_host_addrs();
}

static bool is_host_addr(const uint8_t a[16])
{
    bool found = false;
    pthread_rwlock_rdlock(&host.lock);
    for (int i = 0; i < host.n && !found; i++)
        found = !memcmp(host.addrs[i], a, 16);
    pthread_rwlock_unlock(&host.lock);
    return found;
}

void policy_init(const struct config *config)
{
    cfg = config;
    has_listen_addr =
        !host_is_wildcard(cfg->listen_host) && parse_cidr(cfg->listen_host, &listen_addr) == 0;
    policy_refresh_host();
    policy_set_clients(cfg->allow_nets, cfg->n_allow_nets);
}

void policy_set_clients(const struct cidr *nets, int n)
{
    assert(n >= 0 && n <= CONFIG_MAX_NETS);
    pthread_rwlock_wrlock(&clients_lock);
    memcpy(clients, nets, (size_t)n * sizeof(*nets));
    n_clients = n;
    pthread_rwlock_unlock(&clients_lock);
}

int policy_clients(struct cidr *out)
{
    int n;
    pthread_rwlock_rdlock(&clients_lock);
    memcpy(out, clients, (size_t)n_clients * sizeof(*out));
    n = n_clients;
    pthread_rwlock_unlock(&clients_lock);
    return n;
}

const char *policy_refused_default(int i)
{
    return i >= 0 && i < (int)(sizeof(refused_default) / sizeof(refused_default[0]))
               ? refused_default[i]
               : NULL;
}

static bool in_list(const struct cidr *nets, int n, const uint8_t addr[16])
{
    assert(cfg && n >= 0 && n <= CONFIG_MAX_NETS); /* policy_init ran first */
    for (int i = 0; i < n; i++)
        if (cidr_contains(&nets[i], addr))
            return true;
    return false;
}

bool policy_client_allowed(const struct sockaddr *client)
{
    uint8_t a[16];
    bool allowed;
    pthread_rwlock_rdlock(&clients_lock);
    allowed = n_clients == 0 || (addr_to_v6(client, a) == 0 && in_list(clients, n_clients, a));
    pthread_rwlock_unlock(&clients_lock);
    return allowed;
}

bool policy_trusted_proxy(const struct sockaddr *peer)
{
    uint8_t a[16];
    return cfg->n_trusted_proxies > 0 && addr_to_v6(peer, a) == 0 &&
           in_list(cfg->trusted_proxies, cfg->n_trusted_proxies, a);
}

/* ":PORT" after an address in an X-Forwarded-For entry: 1 to 5 digits. */
static bool port_suffix(const char *s)
{
    size_t n = strspn(s + 1, "0123456789");
    return s[0] == ':' && n >= 1 && n <= 5 && s[1 + n] == '\0';
}

/* One entry of an X-Forwarded-For list: an IPv4 or IPv6 address, maybe bracketed, maybe with
 * a port (HAProxy writes neither, others do), with spaces or tabs around it. Anything else
 * (empty, a name, "unknown", trailing text) is not an address. */
static bool forwarded_addr(const char *s, size_t len, struct sockaddr_storage *out)
{
    char buf[64], *host = buf, *end;
    struct sockaddr_in *v4 = (struct sockaddr_in *)out;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;

    while (len && (*s == ' ' || *s == '\t'))
        s++, len--;
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    if (!len || len >= sizeof(buf))
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (host[0] == '[') { /* [v6] or [v6]:port */
        if (!(end = strchr(host, ']')) || (end[1] && !port_suffix(end + 1)))
            return false;
        *end = '\0';
        host++;
    } else if ((end = strchr(host, ':')) && !strchr(end + 1, ':')) { /* v4:port */
        if (!port_suffix(end))
            return false;
        *end = '\0';
    }
    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        return true;
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        return true;
    }
    return false;
}

/* Right to left through the entries of one X-Forwarded-For line, then the lines before it: the
 * last line is the one our proxy appended (or extended). An empty line is one empty entry. */
const struct sockaddr *policy_forwarded_client(const struct sockaddr *peer, const char *const *xff,
                                               int n, struct sockaddr_storage *out)
{
    int hops = 0;
    if (!policy_trusted_proxy(peer) || n <= 0)
        return peer;
    for (int h = n - 1; h >= 0; h--) {
        const char *list = xff[h];
        for (size_t end = strlen(list);;) {
            size_t start = end;
            while (start > 0 && list[start - 1] != ',')
                start--;
            if (!forwarded_addr(list + start, end - start, out) || hops++ == POLICY_XFF_MAX_HOPS)
                return NULL; /* unknown: never the proxy, never an entry further left */
            if (!policy_trusted_proxy((const struct sockaddr *)out))
                return (const struct sockaddr *)out;
            if (start == 0)
                break;
            end = start - 1;
        }
    }
    return (const struct sockaddr *)out; /* all trusted proxies: the leftmost read */
}

bool policy_ui_allowed(const struct sockaddr *client)
{
    uint8_t a[16];
    return policy_client_allowed(client) ||
           (addr_to_v6(client, a) == 0 && in_list(cfg->ui_nets, cfg->n_ui_nets, a));
}

static int port_of(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)sa)->sin_port);
    return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
}

static bool is_own_listener(const struct sockaddr *sa, const uint8_t a[16])
{
    if (port_of(sa) != cfg->listen_port)
        return false;
    if (has_listen_addr) /* an address of its own: arca answers there only */
        return !memcmp(listen_addr.addr, a, 16);
    /* the wildcard (or a name): every address of the host; a wildcard listener answers on all
     * of loopback, though the interface has only 127.0.0.1 (an outside review tunnelled from
     * arca into arca through 127.0.0.2) */
    return addr_is_loopback(a) || is_host_addr(a);
}

/* NAT64's well-known prefix (64:ff9b::/96) and 6to4 (2002::/16) reach the IPv4 address they
 * embed: the policy judges that one (64:ff9b::7f00:1 is 127.0.0.1 wherever a gateway
 * translates it), in its IPv4-mapped form. */
static void embedded_v4(uint8_t a[16])
{
    static const uint8_t nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
    uint8_t v4[4];
    if (!memcmp(a, nat64, sizeof(nat64)))
        memcpy(v4, a + 12, 4);
    else if (a[0] == 0x20 && a[1] == 0x02)
        memcpy(v4, a + 2, 4);
    else
        return;
    memset(a, 0, 10);
    a[10] = a[11] = 0xff;
    memcpy(a + 12, v4, 4);
}

int policy_upstream_check(const struct sockaddr *sa, char *why, size_t whylen)
{
    uint8_t a[16];
    char text[INET6_ADDRSTRLEN] = "?";

    if (addr_to_v6(sa, a) < 0) {
        snprintf(why, whylen, "upstream address family not allowed");
        return -1;
    }
    format_sockaddr(sa, text, sizeof(text));
    refresh_when_due();
    if (in_list(cfg->upstream_allow, cfg->n_upstream_allow, a) && !is_own_listener(sa, a))
        return 0; /* the operator allowed it as written (a NAT64 network of their own, say) */
    embedded_v4(a);
    if (is_own_listener(sa, a)) {
        snprintf(why, whylen, "upstream address %s is arca itself", text);
        return -1;
    }
    if (in_list(cfg->upstream_allow, cfg->n_upstream_allow, a))
        return 0;
    for (size_t i = 0; i < sizeof(refused_default) / sizeof(refused_default[0]); i++) {
        struct cidr net;
        if (parse_cidr(refused_default[i], &net) == 0 && cidr_contains(&net, a)) {
            snprintf(why, whylen, "upstream address %s refused (%s; see --upstream-allow)", text,
                     refused_default[i]);
            return -1;
        }
    }
    if (is_host_addr(a)) { /* its services bound to every address: as loopback's */
        snprintf(why, whylen, "upstream address %s is this host's own (see --upstream-allow)",
                 text);
        return -1;
    }
    return 0;
}
