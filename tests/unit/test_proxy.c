/* Units for arca as an HTTP proxy (fetch/proxy.h): which proxy-form targets name arca itself,
 * which Via lines came from it, what a Cache-Control asks; and --connect-port (config.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "http/proxy_target.h"
#include "upstream/upstream.h"

/* easy.c's Via, as upstream_init sets it, without starting the upstream thread. */
void easy_via_init(const struct config *cfg);

/* A config listening (plain) on host:port only. */
static const struct config *plain_at(const char *host, int port)
{
    static struct config cfg;
    config_defaults(&cfg);
    snprintf(cfg.listen_host, sizeof(cfg.listen_host), "%s", host);
    cfg.listen_port = port;
    cfg.n_tls_listen = 0;
    return &cfg;
}

static bool names_self(const char *authority, bool https, const char *host, int port)
{
    return proxy_names_self(authority, https, plain_at(host, port));
}

static enum proxy_target target_of(const char *authority, bool https, const char *host, int port)
{
    return proxy_target_of(authority, https, plain_at(host, port));
}

static void a_target_on_arcas_port_and_address_is_arca(void **state)
{
    (void)state;
    assert_true(names_self("127.0.0.1:8001", false, "0.0.0.0", 8001));
    assert_true(names_self("localhost:8001", false, "0.0.0.0", 8001));
    assert_true(names_self("LocalHost:8001", false, "::", 8001));
    assert_int_equal(target_of("127.0.0.1:8001", false, "0.0.0.0", 8001), PROXY_SELF);
    assert_int_equal(target_of("cache:8001", false, "0.0.0.0", 8001), PROXY_RESOLVE);
    assert_int_equal(target_of("cache:8002", false, "0.0.0.0", 8001), PROXY_FETCH);
    assert_int_equal(target_of("127.0.0.1:8001", false, "127.0.0.2", 8001), PROXY_FETCH);
    assert_true(names_self("[::1]:8001", false, "0.0.0.0", 8001));
    assert_true(names_self("user:secret@127.0.0.1:8001", false, "0.0.0.0", 8001));
    assert_true(names_self("127.0.0.2:8001", false, "127.0.0.2", 8001));
    /* the default port of the scheme */
    assert_true(names_self("127.0.0.1", false, "0.0.0.0", 80));
    assert_true(names_self("127.0.0.1", true, "0.0.0.0", 443));
    assert_false(names_self("127.0.0.1", true, "0.0.0.0", 80));
    /* an IPv4 address in its mapped form, and a listener named localhost (outside review: both
     * were fetched and refused as arca itself, not answered by arca's own routes) */
    assert_true(names_self("[::ffff:127.0.0.1]:8001", false, "127.0.0.1", 8001));
    assert_true(names_self("127.0.0.1:8001", false, "localhost", 8001));
    assert_true(names_self("[::1]:8001", false, "localhost", 8001));
    assert_false(names_self("127.0.0.2:8001", false, "localhost", 8001));
    assert_true(names_self("localhost:8001", false, "localhost", 8001));
    assert_true(names_self("localhost:8001", false, "127.0.0.1", 8001));
    assert_true(names_self("localhost:8001", false, "::1", 8001));
}

static void any_other_target_is_fetched(void **state)
{
    (void)state;
    assert_false(names_self("127.0.0.1:8002", false, "0.0.0.0", 8001));
    assert_false(names_self("192.0.2.1:8001", false, "0.0.0.0", 8001)); /* TEST-NET-1 */
    assert_false(names_self("127.0.0.1:8001", false, "127.0.0.2", 8001));
    assert_false(names_self("localhost:8001", false, "192.0.2.1", 8001));
    /* not an authority: fetched, and refused there with its reason */
    assert_false(names_self("", false, "0.0.0.0", 80));
    assert_false(names_self("127.0.0.1:80x", false, "0.0.0.0", 80));
    assert_false(names_self("127.0.0.1:99999", false, "0.0.0.0", 8001));
    assert_false(names_self("[::1", false, "0.0.0.0", 80));
}

/* A --tls-listen address is arca too, asked as https:// or http:// (its port is what counts):
 * each listener with its own host, a wildcard one standing for loopback. */
static void a_target_on_a_tls_listener_is_arca(void **state)
{
    static struct config cfg;
    (void)state;
    config_defaults(&cfg);
    snprintf(cfg.listen_host, sizeof(cfg.listen_host), "127.0.0.1");
    cfg.listen_port = 8001;
    cfg.tls_listen[0] = (struct listen_addr){"127.0.0.1", 8443};
    cfg.tls_listen[1] = (struct listen_addr){"::1", 8444};
    cfg.tls_listen[2] = (struct listen_addr){"0.0.0.0", 443};
    cfg.n_tls_listen = 3;
    assert_int_equal(proxy_target_of("127.0.0.1:8443", true, &cfg), PROXY_SELF);
    assert_int_equal(proxy_target_of("127.0.0.1:8443", false, &cfg), PROXY_SELF);
    assert_int_equal(proxy_target_of("localhost:8443", true, &cfg), PROXY_SELF);
    assert_int_equal(proxy_target_of("user@[::ffff:127.0.0.1]:8443", true, &cfg), PROXY_SELF);
    assert_int_equal(proxy_target_of("[::1]:8444", true, &cfg), PROXY_SELF);
    assert_int_equal(proxy_target_of("127.0.0.1", true, &cfg), PROXY_SELF); /* 443 */
    assert_int_equal(proxy_target_of("127.0.0.1:8001", false, &cfg), PROXY_SELF);
    assert_int_equal(proxy_target_of("cache.lab:8443", true, &cfg), PROXY_RESOLVE);
    assert_true(proxy_names_self("localhost:8444", false, &cfg));
    assert_true(proxy_names_self("127.0.0.1:8443", true, &cfg));
    /* another address on a TLS port, a port arca does not listen on, a listener's port with
     * another listener's address */
    assert_int_equal(proxy_target_of("127.0.0.2:8443", true, &cfg), PROXY_FETCH);
    assert_int_equal(proxy_target_of("192.0.2.1:443", true, &cfg), PROXY_FETCH);
    assert_int_equal(proxy_target_of("127.0.0.1:8445", true, &cfg), PROXY_FETCH);
    assert_int_equal(proxy_target_of("cache.lab:8445", true, &cfg), PROXY_FETCH);
    assert_int_equal(proxy_target_of("127.0.0.1:8444", true, &cfg), PROXY_FETCH);
    assert_int_equal(proxy_target_of("127.0.0.1", false, &cfg), PROXY_FETCH); /* 80 */
    assert_false(proxy_names_self("[::1]:8443", true, &cfg));
    /* an address a CONNECT's lookup found: arca's own listener at that port, or not */
    struct sockaddr_in v4 = {.sin_family = AF_INET};
    struct sockaddr_in6 v6 = {.sin6_family = AF_INET6};
    inet_pton(AF_INET, "127.0.0.1", &v4.sin_addr);
    inet_pton(AF_INET6, "::1", &v6.sin6_addr);
    assert_true(proxy_addr_is_self((struct sockaddr *)&v4, 8443, &cfg));
    assert_false(proxy_addr_is_self((struct sockaddr *)&v6, 8443, &cfg));
    assert_true(proxy_addr_is_self((struct sockaddr *)&v6, 8444, &cfg));
    assert_false(proxy_addr_is_self((struct sockaddr *)&v4, 8445, &cfg));
    inet_pton(AF_INET, "127.0.0.5", &v4.sin_addr); /* the wildcard's loopback */
    assert_true(proxy_addr_is_self((struct sockaddr *)&v4, 443, &cfg));
    assert_false(proxy_addr_is_self((struct sockaddr *)&v4, 8443, &cfg));
    inet_pton(AF_INET, "192.0.2.1", &v4.sin_addr); /* TEST-NET-1: no interface has it */
    assert_false(proxy_addr_is_self((struct sockaddr *)&v4, 443, &cfg));
    /* without the TLS listeners, their addresses are other servers */
    cfg.n_tls_listen = 0;
    assert_int_equal(proxy_target_of("127.0.0.1:8443", true, &cfg), PROXY_FETCH);
    assert_false(proxy_names_self("localhost:8444", false, &cfg));
}

static void a_via_of_this_arca_is_a_loop(void **state)
{
    struct config cfg;
    char host[256], mine[400], other[400], longer[400];
    (void)state;
    config_defaults(&cfg);
    cfg.listen_port = 8123;
    easy_via_init(&cfg);
    assert_int_equal(gethostname(host, sizeof(host)), 0);
    snprintf(mine, sizeof(mine), "1.1 %s:8123 (arca)", host);
    assert_string_equal(upstream_via(), mine);
    assert_true(proxy_via_names_self(mine));
    snprintf(other, sizeof(other), "1.0 squid (squid/5.7), 1.1 %s:8123 (arca)", host);
    assert_true(proxy_via_names_self(other));
    snprintf(other, sizeof(other), "1.1 %s:8124 (arca)", host);
    assert_false(proxy_via_names_self(other)); /* another arca on this machine */
    snprintf(longer, sizeof(longer), "1.1 x%s:8123 (arca)", host);
    assert_false(proxy_via_names_self(longer)); /* another machine whose name ends like ours */
    assert_false(proxy_via_names_self(""));
}

/* A request's Via lines, as the engine would give them (conn_each_header is wrapped), and
 * arca's allocations failed on demand (malloc is wrapped). */
static const char *via_lines[4];
static bool malloc_fails;

void *__real_malloc(size_t size);
void *__wrap_malloc(size_t size)
{
    return malloc_fails ? NULL : __real_malloc(size);
}

void __wrap_conn_each_header(struct conn *c, const char *name,
                             void (*fn)(void *cls, const char *value), void *cls)
{
    (void)c;
    for (int i = 0; i < 4 && via_lines[i]; i++)
        if (!strcmp(name, "Via"))
            fn(cls, via_lines[i]);
}

static enum via_received received(const char *a, const char *b, const char *c, char **joined)
{
    via_lines[0] = a, via_lines[1] = b, via_lines[2] = c, via_lines[3] = NULL;
    return proxy_via_received(NULL, 2048, joined);
}

static void via_lines_are_joined_and_a_chain_too_long_is_a_loop(void **state)
{
    struct config cfg;
    char mine[400], *joined, big[1500];
    (void)state;
    config_defaults(&cfg);
    cfg.listen_port = 8123;
    easy_via_init(&cfg);
    snprintf(mine, sizeof(mine), "%s", upstream_via());
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(received(NULL, NULL, NULL, &joined), VIA_OK);
    assert_null(joined);
    assert_int_equal(received("1.0 squid", "", "1.1 lab:3128", &joined), VIA_OK);
    assert_string_equal(joined, "1.0 squid, 1.1 lab:3128");
    free(joined);
    assert_int_equal(received("1.0 squid", mine, NULL, &joined), VIA_LOOP);
    assert_null(joined);
    assert_int_equal(received(big, big, NULL, &joined), VIA_LOOP); /* 3,000 bytes joined */
    assert_null(joined);
    /* out of memory: nothing joined, but a loop is still one, whichever way it shows */
    malloc_fails = true;
    assert_int_equal(received("1.0 squid", "1.1 lab:3128", NULL, &joined), VIA_OK);
    assert_null(joined);
    assert_int_equal(received("1.0 squid", mine, NULL, &joined), VIA_LOOP);
    assert_int_equal(received(big, big, NULL, &joined), VIA_LOOP);
    malloc_fails = false;
}

static void cache_control_gives_the_smallest_max_age(void **state)
{
    (void)state;
    assert_int_equal(proxy_max_age_of("max-age=0", -1), 0);
    assert_int_equal(proxy_max_age_of("max-age=3600", -1), 3600);
    assert_int_equal(proxy_max_age_of("no-cache", -1), 0);
    assert_int_equal(proxy_max_age_of("No-Cache, max-age=60", -1), 0);
    assert_int_equal(proxy_max_age_of("max-age=60, max-age=30", -1), 30);
    assert_int_equal(proxy_max_age_of("max-age=\"45\"", -1), 45);
    assert_int_equal(proxy_max_age_of("max-age=120", 60), 60); /* an earlier line's is smaller */
    assert_int_equal(proxy_max_age_of("no-store", -1), -1);
    assert_int_equal(proxy_max_age_of("max-age=", -1), -1);
    assert_int_equal(proxy_max_age_of("max-age=-5", -1), -1);
    /* delta-seconds are digits only: anything else says nothing, never its leading digits */
    assert_int_equal(proxy_max_age_of("max-age=1e3", -1), -1);
    assert_int_equal(proxy_max_age_of("max-age=1x, max-age=7", -1), 7);
    assert_int_equal(proxy_max_age_of("max-age=+5", -1), -1);
    assert_int_equal(proxy_max_age_of("max-age=5 , no-store", -1), 5);
    assert_int_equal(proxy_max_age_of("max-age=\"5", -1), -1);
    assert_int_equal(proxy_max_age_of("max-age=99999999999999999999999", -1), 2147483648LL);
    assert_int_equal(proxy_max_age_of("max-stale=10", -1), -1);
    assert_int_equal(proxy_max_age_of("", -1), -1);
}

static void connect_ports_default_to_443_and_replace_it(void **state)
{
    struct config cfg;
    char err[CONFIG_ERR_LEN];
    (void)state;
    config_defaults(&cfg);
    assert_true(config_tunnel_port(&cfg, 443));
    assert_false(config_tunnel_port(&cfg, 22));
    assert_int_equal(config_set(&cfg, "connect-port", "8443", err), 0);
    assert_int_equal(config_set(&cfg, "connect-port", "563", err), 0);
    assert_true(config_tunnel_port(&cfg, 8443) && config_tunnel_port(&cfg, 563));
    assert_false(config_tunnel_port(&cfg, 443));
    assert_int_equal(config_set(&cfg, "connect-port", "none", err), 0);
    assert_false(config_tunnel_port(&cfg, 8443) || config_tunnel_port(&cfg, 443));
    assert_int_equal(config_set(&cfg, "connect-port", "0", err), -1);
    assert_non_null(strstr(err, "--connect-port: expected a port (1..65535) or none, got '0'"));
    assert_int_equal(config_set(&cfg, "connect-port", "65536", err), -1);
    assert_int_equal(config_set(&cfg, "connect-port", "+443", err), -1);
    assert_int_equal(config_set(&cfg, "connect-port", "443x", err), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_target_on_arcas_port_and_address_is_arca),
        cmocka_unit_test(any_other_target_is_fetched),
        cmocka_unit_test(a_target_on_a_tls_listener_is_arca),
        cmocka_unit_test(a_via_of_this_arca_is_a_loop),
        cmocka_unit_test(via_lines_are_joined_and_a_chain_too_long_is_a_loop),
        cmocka_unit_test(cache_control_gives_the_smallest_max_age),
        cmocka_unit_test(connect_ports_default_to_443_and_replace_it),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
