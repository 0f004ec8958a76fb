/* Units for the relays arca makes to its own listeners (relay.c): a connection from a registered
 * local address is the registered client's (its peer replaced), once; one from anywhere else keeps
 * its peer; a forgotten relay is nobody's; the table is bounded and says so. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <string.h>

#include "engine/engine_internal.h"

static struct sockaddr_in v4(const char *addr, int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, addr, &sa.sin_addr);
    return sa;
}

/* A connection accepted from `peer`, as conn_open sees it. */
static void accept_from(struct conn *c, const struct sockaddr_in *peer)
{
    memset(c, 0, sizeof(*c));
    memcpy(&c->peer, peer, sizeof(*peer));
    relay_claim(c);
}

static void a_relay_is_its_clients_once(void **state)
{
    struct sockaddr_in from = v4("127.0.0.1", 40001), client = v4("10.1.2.3", 5555),
                       other = v4("127.0.0.1", 40002);
    struct conn c;
    char text[64];
    (void)state;
    assert_true(engine_expect_relay((struct sockaddr *)&from, (struct sockaddr *)&client));
    assert_false(engine_relay_accepted((struct sockaddr *)&from));
    accept_from(&c, &other); /* another local port: a local client of its own */
    assert_string_equal(inet_ntop(AF_INET, &c.peer.in4.sin_addr, text, sizeof(text)), "127.0.0.1");
    accept_from(&c, &from);
    assert_string_equal(inet_ntop(AF_INET, &c.peer.in4.sin_addr, text, sizeof(text)), "10.1.2.3");
    assert_true(engine_relay_accepted((struct sockaddr *)&from));
    accept_from(&c, &from); /* claimed once */
    assert_string_equal(inet_ntop(AF_INET, &c.peer.in4.sin_addr, text, sizeof(text)), "127.0.0.1");
    engine_forget_relay((struct sockaddr *)&from);
    assert_false(engine_relay_accepted((struct sockaddr *)&from));
}

static void a_dual_stack_listener_sees_the_mapped_form(void **state)
{
    struct sockaddr_in from = v4("127.0.0.1", 40003), client = v4("10.9.9.9", 1);
    struct sockaddr_in6 mapped = {.sin6_family = AF_INET6, .sin6_port = htons(40003)};
    struct conn c;
    (void)state;
    inet_pton(AF_INET6, "::ffff:127.0.0.1", &mapped.sin6_addr);
    assert_true(engine_expect_relay((struct sockaddr *)&from, (struct sockaddr *)&client));
    memset(&c, 0, sizeof(c));
    memcpy(&c.peer, &mapped, sizeof(mapped));
    relay_claim(&c);
    assert_int_equal(c.peer.sa.sa_family, AF_INET);
    assert_true(engine_relay_accepted((struct sockaddr *)&from));
    engine_forget_relay((struct sockaddr *)&from);
}

static void the_table_is_bounded(void **state)
{
    struct sockaddr_in client = v4("10.0.0.1", 1), from;
    int n = 0;
    (void)state;
    for (int port = 1; port < 2000; port++) {
        from = v4("127.0.0.1", port);
        if (!engine_expect_relay((struct sockaddr *)&from, (struct sockaddr *)&client))
            break;
        n++;
    }
    assert_true(n > 0 && n < 1999);
    from = v4("127.0.0.1", 1);
    engine_forget_relay((struct sockaddr *)&from); /* a place again */
    from = v4("127.0.0.1", 3000);
    assert_true(engine_expect_relay((struct sockaddr *)&from, (struct sockaddr *)&client));
    for (int port = 2; port <= n; port++) {
        from = v4("127.0.0.1", port);
        engine_forget_relay((struct sockaddr *)&from);
    }
    from = v4("127.0.0.1", 3000);
    engine_forget_relay((struct sockaddr *)&from);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_relay_is_its_clients_once),
        cmocka_unit_test(a_dual_stack_listener_sees_the_mapped_form),
        cmocka_unit_test(the_table_is_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
