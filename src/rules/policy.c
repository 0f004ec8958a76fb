#include "rules/policy.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define MAX_GIVEN_ADDRS 16

static const struct config *cfg;
/* A leaf: nothing is taken under it; taken after the store's mutex (store_open_twin's `allowed`
 * decides a URL's terms under it), never before. */
static pthread_rwlock_t clients_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct cidr clients[CONFIG_MAX_NETS];
static int n_clients;
static bool clients_by_default; /* no --allow-network: the local networks below */

/* Who may fetch when no --allow-network is given: loopback and the private ranges (RFC 1918,
 * carrier-grade NAT, unique-local, and link-local in both families), Squid's "localnet". A host
 * with a public address is not an open proxy for the internet's bandwidth until an operator says
 * so (--allow-network all). IPv4-mapped IPv6 clients are judged as the IPv4 address (struct cidr
 * stores IPv4 mapped). */
static const char *client_default[] = {
    "127.0.0.0/8",   "::1/128",        "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
    "100.64.0.0/10", "169.254.0.0/16", "fc00::/7",   "fe80::/10",
};

/* --listen's address, when it is one (not a name, not the wildcard). */

/* The host's own addresses as a list given by policy_set_host_addrs (units), IPv6 (IPv4
 * mapped); without one (n < 0), the kernel is asked for each address. */
static struct {
    uint8_t addrs[MAX_GIVEN_ADDRS][16];
    int n;
} given = {.n = -1};

/* Networks refused by default: loopback, link-local (cloud metadata lives at 169.254.169.254),
 * the other clouds' metadata endpoints (Alibaba's, AWS's over IPv6, Azure's wire server),
 * unspecified and "this network", and multicast. README, "What arca refuses to fetch",
 * lists them. */
static const char *refused_default[] = {
    "127.0.0.0/8",       "::1/128",          "169.254.0.0/16", "fe80::/10", "100.100.100.200/32",
    "fd00:ec2::254/128", "168.63.129.16/32", "0.0.0.0/8",      "::/128",    "224.0.0.0/4",
    "ff00::/8",
};

/* The errors a route lookup gives for an address no packet reaches: no route, and routes of
 * type unreachable, prohibit and blackhole. Any other error is no answer. */
static bool unroutable(int err)
{
    return err == ENETUNREACH || err == EHOSTUNREACH || err == EACCES || err == EINVAL;
}

/* Whether the kernel delivers packets for `a` to this host (a route of type "local": every
 * address of every interface, and whole prefixes on loopback, "ip route add local NET dev lo"),
 * asked over rtnetlink as `ip route get` does: 1, 0, or -1 when it cannot be asked. Asked
 * afresh for each connection, so an address the host gets later is known at once. */
static int kernel_says_local(const uint8_t a[16], int port)
{
    struct {
        struct nlmsghdr n;
        struct rtmsg r;
        char attrs[RTA_SPACE(16) + RTA_SPACE(1) + RTA_SPACE(2)];
    } req = {0};
    union {
        struct nlmsghdr n;
        char buf[4096];
    } reply;
    bool v4 = addr_is_v4_mapped(a);
    size_t alen = v4 ? 4 : 16;
    struct rtattr *dst = (struct rtattr *)req.attrs;
    struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE), local = -1;
    ssize_t got;

    if (fd < 0)
        return -1;
    req.n.nlmsg_type = RTM_GETROUTE;
    req.n.nlmsg_flags = NLM_F_REQUEST;
    req.r.rtm_family = v4 ? AF_INET : AF_INET6;
    req.r.rtm_dst_len = (unsigned char)(alen * 8);
    dst->rta_type = RTA_DST;
    dst->rta_len = (unsigned short)RTA_LENGTH(alen);
    memcpy(RTA_DATA(dst), v4 ? a + 12 : a, alen);
    /* the connection's protocol and port too: policy rules may route by them, as connect does */
    struct rtattr *proto = (struct rtattr *)(req.attrs + RTA_SPACE(alen));
    proto->rta_type = RTA_IP_PROTO;
    proto->rta_len = (unsigned short)RTA_LENGTH(1);
    *(uint8_t *)RTA_DATA(proto) = IPPROTO_TCP;
    struct rtattr *dport = (struct rtattr *)(req.attrs + RTA_SPACE(alen) + RTA_SPACE(1));
    dport->rta_type = RTA_DPORT;
    dport->rta_len = (unsigned short)RTA_LENGTH(2);
    uint16_t be_port = htons((uint16_t)port);
    memcpy(RTA_DATA(dport), &be_port, 2);
    req.n.nlmsg_len =
        (uint32_t)NLMSG_LENGTH(sizeof(req.r) + RTA_SPACE(alen) + RTA_SPACE(1) + RTA_SPACE(2));
    if (sendto(fd, &req, req.n.nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0 ||
        (got = recv(fd, &reply, sizeof(reply), 0)) < (ssize_t)sizeof(struct nlmsghdr) ||
        !NLMSG_OK(&reply.n, (size_t)got))
        local = -1;
    else if (reply.n.nlmsg_type == RTM_NEWROUTE)
        local = ((struct rtmsg *)NLMSG_DATA(&reply.n))->rtm_type == RTN_LOCAL;
    else if (reply.n.nlmsg_type == NLMSG_ERROR) /* no route, or one that drops: not ours */
        local = unroutable(-((struct nlmsgerr *)NLMSG_DATA(&reply.n))->error) ? 0 : -1;
    close(fd);
    return local;
}

void policy_set_host_addrs(const struct sockaddr *const *addrs, int n)
{
    assert(n >= 0 && n <= MAX_GIVEN_ADDRS);
    given.n = 0;
    for (int i = 0; i < n; i++)
        given.n += addr_to_v6(addrs[i], given.addrs[given.n]) == 0;
}

/* Whether `a` is one of this host's own addresses: 1, 0, or -1 when the kernel cannot be asked
 * (then it is refused as if it were: never a fetch from the host's own services). */
static int host_addr(const uint8_t a[16], int port)
{
    bool found = false;
    if (given.n < 0)
        return kernel_says_local(a, port);
    for (int i = 0; i < given.n && !found; i++)
        found = !memcmp(given.addrs[i], a, 16);
    return found;
}

int policy_check_kernel(char *err, size_t errlen)
{
    static const uint8_t loopback[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1};
    errno = 0;
    if (given.n >= 0 || kernel_says_local(loopback, 80) == 1)
        return 0;
    snprintf(err, errlen,
             "cannot ask the kernel which addresses are this host's own (rtnetlink: %s); a "
             "service manager must allow AF_NETLINK",
             strerror(errno ? errno : EPROTO));
    return -1;
}

void policy_init(const struct config *config)
{
    cfg = config;
    policy_set_clients(cfg->allow_nets, cfg->n_allow_nets);
}

/* The default list as networks; it fits in CONFIG_MAX_NETS (asserted). */
static int default_clients(struct cidr *out)
{
    int n = (int)(sizeof(client_default) / sizeof(client_default[0]));
    assert(n <= CONFIG_MAX_NETS);
    for (int i = 0; i < n; i++) {
        int ok = parse_cidr(client_default[i], &out[i]);
        assert(ok == 0);
        (void)ok;
    }
    return n;
}

void policy_set_clients(const struct cidr *nets, int n)
{
    struct cidr local[CONFIG_MAX_NETS];
    bool by_default = n == 0;
    assert(n >= 0 && n <= CONFIG_MAX_NETS);
    if (by_default) {
        n = default_clients(local);
        nets = local;
    }
    pthread_rwlock_wrlock(&clients_lock);
    memcpy(clients, nets, (size_t)n * sizeof(*nets));
    n_clients = n;
    clients_by_default = by_default;
    pthread_rwlock_unlock(&clients_lock);
}

int policy_clients(struct cidr *out, bool *by_default)
{
    int n;
    pthread_rwlock_rdlock(&clients_lock);
    memcpy(out, clients, (size_t)n_clients * sizeof(*out));
    n = n_clients;
    *by_default = clients_by_default;
    pthread_rwlock_unlock(&clients_lock);
    return n;
}

bool policy_clients_all(const struct cidr *nets, int n)
{
    static const uint8_t v4_zero[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0};
    bool v4 = false, v6 = false;
    for (int i = 0; i < n; i++) {
        v4 = v4 || (nets[i].prefix <= 96 && cidr_contains(&nets[i], v4_zero));
        v6 = v6 || nets[i].prefix == 0;
    }
    return v4 && v6;
}

void policy_describe_clients(char *out, size_t size)
{
    struct cidr nets[CONFIG_MAX_NETS];
    bool by_default;
    int n = policy_clients(nets, &by_default);
    size_t used = 0;

    out[0] = '\0';
    if (policy_clients_all(nets, n)) {
        snprintf(out, size, "every client (--allow-network all)");
        return;
    }
    for (int i = 0; i < n && used < size; i++) {
        char text[64];
        format_cidr(&nets[i], text, sizeof(text));
        used += (size_t)snprintf(out + used, size - used, "%s%s", i ? ", " : "", text);
    }
    if (by_default && used < size)
        snprintf(out + used, size - used,
                 " (the default: loopback and private networks; --allow-network names others)");
}

const char *policy_client_refusal(void)
{
    bool by_default;
    pthread_rwlock_rdlock(&clients_lock);
    by_default = clients_by_default;
    pthread_rwlock_unlock(&clients_lock);
    return by_default ? "client address not allowed to fetch: by default only loopback and "
                        "private networks may (--allow-network names others, or all)"
                      : "client address not allowed to fetch (not in --allow-network)";
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
    allowed = addr_to_v6(client, a) == 0 && in_list(clients, n_clients, a);
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

/* Whether a connection to `sa` (its address `a`) reaches arca's listener at host:port. */
static bool reaches(const char *host, int port, const struct sockaddr *sa, const uint8_t a[16])
{
    struct cidr own;
    if (port_of(sa) != port)
        return false;
    /* a connection to 0.0.0.0 or :: reaches this host's listeners, arca's whatever its address
     * (arca into arca through 0.0.0.0 where an operator allowed 0.0.0.0/0) */
    if (addr_is_unspecified(a))
        return true;
    if (!host_is_wildcard(host) && parse_cidr(host, &own) == 0) /* arca answers there only */
        return !memcmp(own.addr, a, 16);
    /* the wildcard (or a name): every address of the host; a wildcard listener answers on all
     * of loopback, though the interface has only 127.0.0.1 (arca into arca through 127.0.0.2) */
    return addr_is_loopback(a) || host_addr(a, port_of(sa)) != 0;
}

/* --listen's address or a --tls-listen's. */
static bool is_own_listener(const struct sockaddr *sa, const uint8_t a[16])
{
    if (reaches(cfg->listen_host, cfg->listen_port, sa, a))
        return true;
    for (int i = 0; i < cfg->n_tls_listen; i++)
        if (reaches(cfg->tls_listen[i].host, cfg->tls_listen[i].port, sa, a))
            return true;
    return false;
}

int policy_upstream_check(const struct sockaddr *sa, char *why, size_t whylen)
{
    uint8_t a[16], sent[16];
    char text[INET6_ADDRSTRLEN] = "?";

    if (addr_to_v6(sa, a) < 0) {
        snprintf(why, whylen, "upstream address family not allowed");
        return -1;
    }
    format_sockaddr(sa, text, sizeof(text));
    if (in_list(cfg->upstream_allow, cfg->n_upstream_allow, a) && !is_own_listener(sa, a))
        return 0; /* the operator allowed it as written (a NAT64 network of their own, say) */
    memcpy(sent, a, sizeof(sent));
    addr_embedded_v4(a); /* judged as the IPv4 address it reaches; the host's own as sent, too */
    if (is_own_listener(sa, a) || (memcmp(sent, a, sizeof(a)) && is_own_listener(sa, sent))) {
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
    /* its services bound to every address: as loopback's (a 6to4 or NAT64 address may be the
     * host's own as it is, or reach one of its IPv4 addresses) */
    int own = host_addr(sent, port_of(sa));
    if (own == 0 && memcmp(sent, a, sizeof(a)))
        own = host_addr(a, port_of(sa));
    if (own != 0) {
        snprintf(why, whylen,
                 own > 0 ? "upstream address %s is this host's own (see --upstream-allow)"
                         : "upstream address %s refused: the kernel cannot say whether it is "
                           "this host's own",
                 text);
        return -1;
    }
    return 0;
}
