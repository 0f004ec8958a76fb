/* Units for the client behind a --trusted-proxy (policy_forwarded_client): the rightmost entry
 * that is not a trusted proxy, whatever the client wrote to its left; an unreadable entry in
 * the client's place makes it unknown. */
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

static int setup(void **state)
{
    char err[CONFIG_ERR_LEN];
    (void)state;
    config_defaults(&cfg);
    config_set(&cfg, "trusted-proxy", "192.168.0.0/30", err);
    config_set(&cfg, "trusted-proxy", "fd00:1::/64", err);
    policy_init(&cfg);
    return 0;
}

/* The client a request from the proxy 192.168.0.1 names, as text: "peer" when it is the
 * proxy itself, "unknown" when none. */
static const char *client_of(const char *const *xff, int n)
{
    static char out[INET6_ADDRSTRLEN];
    struct sockaddr_storage peer = {0}, buf;
    struct sockaddr_in *v4 = (struct sockaddr_in *)&peer;
    const struct sockaddr *c;
    v4->sin_family = AF_INET;
    inet_pton(AF_INET, "192.168.0.1", &v4->sin_addr);
    c = policy_forwarded_client((struct sockaddr *)&peer, xff, n, &buf);
    if (!c)
        return "unknown";
    if (c == (struct sockaddr *)&peer)
        return "peer";
    if (c->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)c)->sin_addr, out, sizeof(out));
    else
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)c)->sin6_addr, out, sizeof(out));
    return out;
}

static const char *one(const char *line)
{
    return client_of(&line, 1);
}

static void the_rightmost_untrusted_entry_is_the_client(void **state)
{
    const char *lines[] = {"10.5.5.5", "10.5.5.5, 10.6.6.6", "10.7.7.7"};
    (void)state;
    assert_string_equal(client_of(lines, 3), "10.7.7.7");
    assert_string_equal(client_of(lines, 2), "10.6.6.6");
    assert_string_equal(one("10.5.5.5,10.6.6.6"), "10.6.6.6");
    assert_string_equal(one(" 10.5.5.5 ,\t10.6.6.6\t"), "10.6.6.6");
    assert_string_equal(one("10.6.6.6, 192.168.0.2, 192.168.0.1"), "10.6.6.6");
    assert_string_equal(one("2001:db8::7, fd00:1::9"), "2001:db8::7");
    assert_string_equal(client_of(NULL, 0), "peer");
}

static void ports_and_brackets(void **state)
{
    (void)state;
    assert_string_equal(one("10.2.2.2:80"), "10.2.2.2");
    assert_string_equal(one("[2001:db8::1]:4711"), "2001:db8::1");
    assert_string_equal(one("[2001:db8::1]"), "2001:db8::1");
    assert_string_equal(one("10.2.2.2:"), "unknown");
    assert_string_equal(one("10.2.2.2:http"), "unknown");
    assert_string_equal(one("10.2.2.2:123456"), "unknown");
    assert_string_equal(one("[2001:db8::1]junk"), "unknown");
    assert_string_equal(one("[2001:db8::1"), "unknown");
    assert_string_equal(one("[10.2.2.2"), "unknown");
}

/* Garbage where the client should be never lets the proxy or an address to its left stand in. */
static void an_unreadable_client_entry_makes_it_unknown(void **state)
{
    const char *empty_last[] = {"10.5.5.5", ""};
    const char *garbage_last[] = {"10.5.5.5", "not-an-address"};
    (void)state;
    assert_string_equal(client_of(empty_last, 2), "unknown");
    assert_string_equal(client_of(garbage_last, 2), "unknown");
    assert_string_equal(one("10.5.5.5, unknown"), "unknown");
    assert_string_equal(one("10.5.5.5,"), "unknown");
    assert_string_equal(one("10.5.5.5,,192.168.0.2"), "unknown");
    assert_string_equal(one("10.5.5.5 10.6.6.6"), "unknown");
    assert_string_equal(one("fe80::1%eth0"), "unknown");
    assert_string_equal(one("   "), "unknown");
    /* garbage left of the client is never read */
    assert_string_equal(one("junk, 10.6.6.6"), "10.6.6.6");
}

static void only_trusted_proxies(void **state)
{
    char line[POLICY_XFF_MAX_HOPS * 16 + 32];
    size_t len = 0;
    (void)state;
    assert_string_equal(one("192.168.0.2, 192.168.0.3"), "192.168.0.2");
    /* as many trusted hops as arca reads: the leftmost; one more: unknown */
    for (int i = 0; i < POLICY_XFF_MAX_HOPS; i++)
        len += (size_t)snprintf(line + len, sizeof(line) - len, "%s192.168.0.2", i ? "," : "");
    assert_string_equal(one(line), "192.168.0.2");
    snprintf(line + len, sizeof(line) - len, ",192.168.0.3");
    assert_string_equal(one(line), "unknown");
    memmove(line + 9, line, len + 13);
    memcpy(line, "10.5.5.5,", 9);
    assert_string_equal(one(line), "unknown");
}

static void an_untrusted_peer_is_the_client(void **state)
{
    struct sockaddr_storage peer = {0}, buf;
    struct sockaddr_in *v4 = (struct sockaddr_in *)&peer;
    const char *forged = "10.5.5.5";
    (void)state;
    v4->sin_family = AF_INET;
    inet_pton(AF_INET, "192.168.0.9", &v4->sin_addr);
    assert_ptr_equal(policy_forwarded_client((struct sockaddr *)&peer, &forged, 1, &buf),
                     (struct sockaddr *)&peer);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(the_rightmost_untrusted_entry_is_the_client, setup),
        cmocka_unit_test_setup(ports_and_brackets, setup),
        cmocka_unit_test_setup(an_unreadable_client_entry_makes_it_unknown, setup),
        cmocka_unit_test_setup(only_trusted_proxies, setup),
        cmocka_unit_test_setup(an_untrusted_peer_is_the_client, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
