/* Units for the client allow-list and the upstream address policy (the SSRF default). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "rules/policy.h"

static struct config cfg;

static struct sockaddr_storage addr(const char *ip, int port)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, ip, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
    } else {
        assert_int_equal(inet_pton(AF_INET6, ip, &v6->sin6_addr), 1);
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
    }
    return ss;
}

static char why[160]; /* the last refusal's reason */

static int upstream(const char *ip, int port)
{
    struct sockaddr_storage ss = addr(ip, port);
    why[0] = '\0';
    return policy_upstream_check((struct sockaddr *)&ss, why, sizeof(why));
}

/* The host these units pretend to run on: a LAN address of each family besides loopback's (no
 * interface of the machine running them is read). */
static const char *host_addrs[] = {"127.0.0.1", "::1", "192.0.2.10", "2001:db8:1::10",
                                   "2002:c633:6401::1"}; /* a 6to4 address of its own */

static int setup(void **state)
{
    char err[CONFIG_ERR_LEN];
    struct sockaddr_storage ss[5];
    const struct sockaddr *list[5];
    (void)state;
    for (int i = 0; i < 5; i++) {
        ss[i] = addr(host_addrs[i], 0);
        list[i] = (const struct sockaddr *)&ss[i];
    }
    policy_set_host_addrs(list, 5);
    config_defaults(&cfg);
    config_set(&cfg, "listen", "127.0.0.1:8001", err);
    policy_init(&cfg);
    return 0;
}

static void refused_by_default(void **state)
{
    const char *bad[] = {"127.0.0.1",
                         "127.8.9.10",
                         "::1",
                         "::ffff:127.0.0.1",
                         "169.254.169.254",
                         "fe80::1",
                         "0.0.0.0",
                         "::",
                         "224.0.0.1",
                         "ff02::1",
                         "::ffff:169.254.169.254",
                         "64:ff9b::7f00:1",    /* NAT64 of 127.0.0.1 */
                         "64:ff9b::a9fe:a9fe", /* NAT64 of 169.254.169.254 */
                         "2002:7f00:1::1",     /* 6to4 of 127.0.0.1 */
                         "2002:a9fe:a9fe::1",  /* 6to4 of 169.254.169.254 */
                         NULL};
    (void)state;
    for (int i = 0; bad[i]; i++)
        assert_int_equal(upstream(bad[i], 80), -1);
}

/* Every cloud's metadata endpoint, as written and as the IPv6 forms that reach it (IPv4-mapped,
 * NAT64, 6to4), is refused before any connection, with the network named in the reason. */
static void metadata_endpoints_refused_in_every_form(void **state)
{
    static const struct {
        const char *addr, *net;
    } table[] = {
        {"169.254.169.254", "169.254.0.0/16"}, /* AWS, GCP, Azure IMDS, OpenStack... */
        {"::ffff:169.254.169.254", "169.254.0.0/16"},
        {"64:ff9b::a9fe:a9fe", "169.254.0.0/16"},
        {"2002:a9fe:a9fe::1", "169.254.0.0/16"},
        {"100.100.100.200", "100.100.100.200/32"}, /* Alibaba Cloud */
        {"::ffff:100.100.100.200", "100.100.100.200/32"},
        {"64:ff9b::6464:64c8", "100.100.100.200/32"},
        {"2002:6464:64c8::1", "100.100.100.200/32"},
        {"168.63.129.16", "168.63.129.16/32"}, /* Azure's wire server */
        {"::ffff:168.63.129.16", "168.63.129.16/32"},
        {"64:ff9b::a83f:8110", "168.63.129.16/32"},
        {"2002:a83f:8110::1", "168.63.129.16/32"},
        {"::ffff:0:168.63.129.16", "168.63.129.16/32"}, /* SIIT */
        {"::100.100.100.200", "100.100.100.200/32"},    /* IPv4-compatible */
        {"fd00:ec2::254", "fd00:ec2::254/128"},         /* AWS over IPv6 */
    };
    char want[160];
    (void)state;
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        assert_int_equal(upstream(table[i].addr, 80), -1);
        snprintf(want, sizeof(want), "(%s; see --upstream-allow)", table[i].net);
        assert_non_null(strstr(why, want));
        assert_non_null(strstr(why, "refused"));
    }
    /* their neighbours are not metadata: CGNAT, Azure's public range, a ULA */
    assert_int_equal(upstream("100.100.100.199", 80), 0);
    assert_int_equal(upstream("168.63.129.17", 80), 0);
    assert_int_equal(upstream("fd00:ec2::253", 80), 0);
}

/* The host's own addresses reach its own services (a Redis bound to every address): refused on
 * every port, in every form, unless --upstream-allow names them; on arca's own port, even then. */
static void the_hosts_own_addresses_refused_on_every_port(void **state)
{
    const char *own[] = {"192.0.2.10",       "::ffff:192.0.2.10", "64:ff9b::c000:20a",
                         "2002:c000:20a::1", "2001:db8:1::10",    NULL};
    char err[CONFIG_ERR_LEN];
    (void)state;
    for (int i = 0; own[i]; i++)
        for (int port = 1; port <= 65535; port += 6378) {
            assert_int_equal(upstream(own[i], port), -1);
            assert_non_null(strstr(why, "is this host's own"));
        }
    /* an address of its own in a range that embeds an IPv4 address (a 6to4 LAN behind
     * 198.51.100.1): the host's own as it is (found by the second outside review) */
    assert_int_equal(upstream("2002:c633:6401::1", 6379), -1);
    assert_non_null(strstr(why, "is this host's own"));
    assert_int_equal(upstream("2002:c633:6401::2", 6379), 0); /* its neighbour */
    assert_int_equal(upstream("192.0.2.11", 6379), 0);        /* a neighbour on the LAN */
    assert_int_equal(upstream("2001:db8:1::11", 6379), 0);
    config_set(&cfg, "upstream-allow", "192.0.2.10/32", err);
    config_set(&cfg, "listen", "0.0.0.0:8001", err);
    policy_init(&cfg);
    assert_int_equal(upstream("192.0.2.10", 6379), 0);  /* named by the admin */
    assert_int_equal(upstream("192.0.2.10", 8001), -1); /* arca itself: a loop */
    assert_non_null(strstr(why, "is arca itself"));
    assert_int_equal(upstream("2001:db8:1::10", 6379), -1); /* not named */
    /* listening on one address, arca is that address only: the host's others on its port are
     * the host's own, and what --upstream-allow names there is another server */
    config_set(&cfg, "listen", "127.0.0.1:8001", err);
    policy_init(&cfg);
    assert_int_equal(upstream("192.0.2.10", 8001), 0);
    assert_int_equal(upstream("2001:db8:1::10", 8001), -1);
    assert_non_null(strstr(why, "is this host's own"));
    assert_int_equal(upstream("127.0.0.1", 8001), -1);
    assert_non_null(strstr(why, "is arca itself"));
    /* its HTTPS listener is arca too, allowed or not (found by the TLS issue's review) */
    config_set(&cfg, "tls-listen", "0.0.0.0:8443", err);
    policy_init(&cfg);
    assert_int_equal(upstream("192.0.2.10", 8443), -1);
    assert_non_null(strstr(why, "is arca itself"));
    assert_int_equal(upstream("127.0.0.1", 8443), -1);
    assert_non_null(strstr(why, "is arca itself"));
    assert_int_equal(upstream("192.0.2.10", 8444), 0);
    cfg.n_tls_listen = 0;
}

static void public_addresses_allowed(void **state)
{
    (void)state;
    assert_int_equal(upstream("93.184.216.34", 443), 0);
    assert_int_equal(upstream("2001:db8::1", 443), 0);
    assert_int_equal(upstream("10.1.2.3", 80), 0);            /* private LANs are the lab's own */
    assert_int_equal(upstream("64:ff9b::5db8:d822", 443), 0); /* NAT64 of a public address */
    assert_int_equal(upstream("2002:5db8:d822::1", 443), 0);
}

static void upstream_allow_lifts_the_refusal_but_not_for_arca_itself(void **state)
{
    char err[CONFIG_ERR_LEN];
    (void)state;
    config_set(&cfg, "upstream-allow", "127.0.0.0/8", err);
    policy_init(&cfg);
    assert_int_equal(upstream("127.0.0.1", 8080), 0);
    assert_int_equal(upstream("::ffff:127.0.0.1", 8080), 0);
    assert_int_equal(upstream("127.0.0.1", 8001), -1); /* our own listener: a loop */
    assert_int_equal(upstream("::1", 8080), -1);       /* not in the allowed network */
    assert_int_equal(upstream("169.254.169.254", 80), -1);
    assert_int_equal(upstream("64:ff9b::7f00:1", 8080), 0); /* NAT64 of an allowed address */
    /* a wildcard listener answers on all of loopback, not only on the interface's 127.0.0.1 */
    assert_int_equal(upstream("127.0.0.2", 8001), 0); /* listening on 127.0.0.1 only */
    config_set(&cfg, "listen", "0.0.0.0:8001", err);
    policy_init(&cfg);
    assert_int_equal(upstream("127.0.0.2", 8001), -1);
    assert_int_equal(upstream("::ffff:127.9.9.9", 8001), -1);
    assert_int_equal(upstream("64:ff9b::7f00:2", 8001), -1);
    assert_int_equal(upstream("127.0.0.2", 8080), 0);
    config_set(&cfg, "listen", "127.0.0.1:8001", err);
    /* a NAT64 network allowed as written */
    config_set(&cfg, "upstream-allow", "64:ff9b::/96", err);
    policy_init(&cfg);
    assert_int_equal(upstream("64:ff9b::a9fe:a9fe", 80), 0);
    assert_int_equal(upstream("2002:a9fe:a9fe::1", 80), -1);
    /* 0.0.0.0 and :: reach the host's listeners, arca's on its port whatever its address (found
     * by the outside review: --upstream-allow 0.0.0.0/0 let arca fetch and tunnel into itself) */
    config_set(&cfg, "upstream-allow", "0.0.0.0/0", err);
    config_set(&cfg, "upstream-allow", "::/0", err);
    policy_init(&cfg);
    const char *unspecified[] = {"0.0.0.0", "::ffff:0.0.0.0", "::", NULL};
    for (int i = 0; unspecified[i]; i++) {
        assert_int_equal(upstream(unspecified[i], 8001), -1);
        assert_non_null(strstr(why, "is arca itself"));
        assert_int_equal(upstream(unspecified[i], 8080), 0); /* allowed, another port */
    }
    assert_int_equal(upstream("127.0.0.2", 8001), 0); /* listening on 127.0.0.1 only */
}

/* Without --allow-network, loopback and the private networks may fetch, in either family and
 * IPv4-mapped; a public address may not, and the 403's reason names the option. */
static void local_networks_fetch_by_default(void **state)
{
    static const char *local[] = {"127.0.0.1",       "127.9.9.9",          "::1",
                                  "10.1.2.3",        "172.16.0.1",         "172.31.255.254",
                                  "192.168.1.1",     "100.64.0.1",         "100.127.255.255",
                                  "fc00::1",         "fd12:3456::7",       "fe80::1",
                                  "::ffff:10.1.2.3", "::ffff:192.168.0.9", "::ffff:127.0.0.1",
                                  "169.254.1.1"};
    static const char *public[] = {"203.0.113.7",        "8.8.8.8",     "172.32.0.1",
                                   "100.128.0.1",        "192.169.0.1", "2001:db8::1",
                                   "::ffff:203.0.113.7", "11.0.0.1"};
    struct cidr nets[CONFIG_MAX_NETS];
    bool by_default;
    char err[CONFIG_ERR_LEN];
    (void)state;
    policy_init(&cfg);
    for (size_t i = 0; i < sizeof(local) / sizeof(local[0]); i++) {
        struct sockaddr_storage a = addr(local[i], 5000);
        if (!policy_client_allowed((struct sockaddr *)&a))
            fail_msg("%s refused by default", local[i]);
    }
    for (size_t i = 0; i < sizeof(public) / sizeof(public[0]); i++) {
        struct sockaddr_storage a = addr(public[i], 5000);
        if (policy_client_allowed((struct sockaddr *)&a))
            fail_msg("%s allowed by default", public[i]);
    }
    assert_int_equal(policy_clients(nets, &by_default), 9);
    assert_true(by_default);
    assert_false(policy_clients_all(nets, 9));
    assert_non_null(strstr(policy_client_refusal(), "--allow-network"));
    /* "all" opens it to every address, of both families */
    assert_int_equal(config_set(&cfg, "allow-network", "all", err), 0);
    policy_init(&cfg);
    struct sockaddr_storage p4 = addr("203.0.113.7", 5000), p6 = addr("2001:db8::1", 5000);
    assert_true(policy_client_allowed((struct sockaddr *)&p4));
    assert_true(policy_client_allowed((struct sockaddr *)&p6));
    assert_int_equal(policy_clients(nets, &by_default), 2);
    assert_false(by_default);
    assert_true(policy_clients_all(nets, 2));
    /* a reload without the option goes back to the default */
    policy_set_clients(NULL, 0);
    assert_false(policy_client_allowed((struct sockaddr *)&p4));
    assert_int_equal(policy_clients(nets, &by_default), 9);
    assert_true(by_default);
}

static void client_allow_list(void **state)
{
    char err[CONFIG_ERR_LEN];
    struct sockaddr_storage a = addr("10.2.3.4", 5000), b = addr("192.168.1.1", 5000),
                            c = addr("::ffff:10.9.9.9", 5000), d = addr("fd00::5", 5000);
    (void)state;
    assert_true(policy_client_allowed((struct sockaddr *)&b)); /* no list: the local networks */
    config_set(&cfg, "allow-network", "10.0.0.0/8", err);
    config_set(&cfg, "allow-network", "fd00::/8", err);
    policy_init(&cfg);
    assert_true(policy_client_allowed((struct sockaddr *)&a));
    assert_false(policy_client_allowed((struct sockaddr *)&b));
    assert_true(policy_client_allowed((struct sockaddr *)&c));
    assert_true(policy_client_allowed((struct sockaddr *)&d));
}

/* The client a request from `peer` names in X-Forwarded-For, as text ("peer" when it is peer,
 * "unknown" when none). */
static const char *forwarded(const char *peer, const char *const *xff, int n)
{
    static char out[64];
    struct sockaddr_storage p = addr(peer, 5000), buf;
    const struct sockaddr *c = policy_forwarded_client((struct sockaddr *)&p, xff, n, &buf);
    if (!c)
        return "unknown";
    if (c == (struct sockaddr *)&p)
        return "peer";
    if (c->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)c)->sin_addr, out, sizeof(out));
    else
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)c)->sin6_addr, out, sizeof(out));
    return out;
}

static void trusted_proxies_name_the_client(void **state)
{
    char err[CONFIG_ERR_LEN];
    (void)state;
    const char *haproxy[] = {"10.1.1.1"};
    const char *forged[] = {"10.6.6.6", "10.1.1.1"}; /* the client's own line, then the proxy's */
    const char *chain[] = {"10.6.6.6, 10.1.1.1, 192.168.0.2"};
    const char *bad[] = {"10.1.1.1, not-an-address"};
    const char *ported[] = {"[fd00::7]:4711", "10.2.2.2:80"};
    assert_string_equal(forwarded("192.168.0.1", haproxy, 1), "peer"); /* none configured */
    config_set(&cfg, "trusted-proxy", "192.168.0.0/30", err);
    policy_init(&cfg);
    assert_string_equal(forwarded("192.168.0.1", haproxy, 1), "10.1.1.1");
    assert_string_equal(forwarded("192.168.0.9", haproxy, 1), "peer"); /* not trusted */
    assert_string_equal(forwarded("192.168.0.1", forged, 2), "10.1.1.1");
    assert_string_equal(forwarded("192.168.0.1", chain, 1), "10.1.1.1"); /* a trusted hop */
    assert_string_equal(forwarded("192.168.0.1", bad, 1), "unknown");
    assert_string_equal(forwarded("192.168.0.1", ported, 2), "10.2.2.2");
    assert_string_equal(forwarded("192.168.0.1", ported, 1), "fd00::7");
    assert_string_equal(forwarded("192.168.0.1", NULL, 0), "peer");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(refused_by_default, setup),
        cmocka_unit_test_setup(metadata_endpoints_refused_in_every_form, setup),
        cmocka_unit_test_setup(the_hosts_own_addresses_refused_on_every_port, setup),
        cmocka_unit_test_setup(public_addresses_allowed, setup),
        cmocka_unit_test_setup(upstream_allow_lifts_the_refusal_but_not_for_arca_itself, setup),
        cmocka_unit_test_setup(local_networks_fetch_by_default, setup),
        cmocka_unit_test_setup(client_allow_list, setup),
        cmocka_unit_test_setup(trusted_proxies_name_the_client, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
