/* Units for the hosts held down (hosts.h): held after failures in a row, one probe at a time
 * however each ends, out of the table once idle, a full table that still holds a new dead host,
 * and a hold that is a route's (the address it leaves from), decided on what it does for all. Times
 * are fake monotonic ms after the real clock's now (hosts_ends_retries and hosts_down_count read
 * the real one: entries seen "later" are never idle to them). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "upstream/hosts.h"
#include "base/clock.h"

#include <arpa/inet.h>

static int64_t base;

static int setup(void **state)
{
    (void)state;
    base = monotonic_ms();
    hosts_configure(3, NULL);
    return 0;
}

static const char *url_of(int i)
{
    static char url[64];
    snprintf(url, sizeof(url), "http://h%d.lab/file", i);
    return url;
}

/* Whether an attempt at `url` may go at `now`; *probe when it is its host's probe. */
static bool admit(const char *url, int64_t now, bool *probe)
{
    char why[400];
    int retry_after = 0;
    return hosts_admit(url, NULL, HOST_ORIGIN, now, true, probe, why, sizeof(why), &retry_after);
}

static size_t down_at(int64_t now)
{
    size_t n;
    free(hosts_down_list(&n, now));
    return n;
}

/* `url`'s host fails `n` times in a row at `now`. */
static void fail_at(const char *url, int n, int64_t now)
{
    for (int i = 0; i < n; i++)
        hosts_result(url, NULL, HOST_ORIGIN, HOST_DOWN, false, now);
}

static void a_host_is_held_after_its_failures_in_a_row(void **state)
{
    bool probe;
    (void)state;
    fail_at(url_of(0), 2, base);
    assert_false(hosts_ends_retries(url_of(0), NULL));
    fail_at(url_of(0), 1, base);
    assert_true(hosts_ends_retries(url_of(0), NULL));
    assert_false(admit(url_of(0), base + 10, &probe));
    assert_true(admit(url_of(0), base + HOSTS_PROBE_FIRST_MS, &probe));
    assert_true(probe);
    assert_false(admit(url_of(0), base + HOSTS_PROBE_FIRST_MS, &probe)); /* one at a time */
    hosts_result(url_of(0), NULL, HOST_ORIGIN, HOST_UP, true, base + HOSTS_PROBE_FIRST_MS + 5);
    assert_false(hosts_ends_retries(url_of(0), NULL));
    assert_int_equal(down_at(base + HOSTS_PROBE_FIRST_MS + 5), 0);
}

/* A download started without a slot (its host held) is never the probe, even once the probe is
 * due: it is refused at once, takes no mark, and the next download with a slot probes (the
 * second outside review of issue 51: the host's downloads waited for a slot instead). */
static void a_download_without_a_slot_is_never_the_probe(void **state)
{
    bool probe = true;
    char why[400];
    int retry_after = 0;
    int64_t due = base + HOSTS_PROBE_FIRST_MS;
    (void)state;
    fail_at(url_of(7), 3, base);
    assert_false(hosts_admit(url_of(7), NULL, HOST_ORIGIN, due, false, &probe, why, sizeof(why),
                             &retry_after));
    assert_false(probe);
    assert_true(retry_after >= 1);
    assert_non_null(strstr(why, "is down since"));
    assert_true(admit(url_of(7), due, &probe)); /* no mark was taken: this one probes */
    assert_true(probe);
    hosts_result(url_of(7), NULL, HOST_ORIGIN, HOST_UP, true, due + 5);
}

/* Once the probe is due, one download without a slot waits to be it: the host's others are
 * refused meanwhile, and the mark goes when a download that may probe reaches hosts_admit (the
 * third outside review of issue 51: refusing them all left a host back up held while busy). */
static void one_download_waits_to_be_the_probe(void **state)
{
    bool probe;
    int64_t due = base + HOSTS_PROBE_FIRST_MS;
    (void)state;
    fail_at(url_of(8), 3, base);
    assert_false(hosts_await_probe(url_of(8), NULL, base + 10)); /* not due yet */
    assert_true(hosts_await_probe(url_of(8), NULL, due));
    assert_false(hosts_await_probe(url_of(8), NULL, due)); /* one at a time */
    assert_true(hosts_refuses(url_of(8), NULL, due, due)); /* the host's others fail at once */
    assert_true(admit(url_of(8), due, &probe));            /* the waiting one, with its slot */
    assert_true(probe);
    assert_false(hosts_await_probe(url_of(8), NULL, due)); /* a probe is out */
    hosts_result(url_of(8), NULL, HOST_ORIGIN, HOST_UP, true, due + 5);
    assert_false(hosts_ends_retries(url_of(8), NULL));
}

/* What the upstream thread asks before starting a download without a slot (issue 51's second
 * review): refused until the probe is due, taking no mark, and refused while one is out. */
static void a_download_is_refused_until_its_probe_is_due(void **state)
{
    bool probe;
    int64_t due = base + HOSTS_PROBE_FIRST_MS;
    (void)state;
    assert_false(hosts_refuses(url_of(2), NULL, base, base)); /* not held */
    fail_at(url_of(2), 3, base);
    assert_true(hosts_refuses(url_of(2), NULL, base, due - 1));
    assert_false(hosts_refuses(url_of(2), NULL, base, due)); /* due by then: it may be the probe */
    assert_false(hosts_refuses(url_of(2), NULL, due, due));
    assert_true(admit(url_of(2), due, &probe) && probe); /* the question took no mark */
    assert_true(hosts_refuses(url_of(2), NULL, due, due + HOSTS_PROBE_MAX_MS)); /* one is out */
    hosts_result(url_of(2), NULL, HOST_ORIGIN, HOST_UP, true, due + 5);
    assert_false(hosts_refuses(url_of(2), NULL, due + 5, due + 5));
}

/* The outside review: a probe refused by the address policy, unresolved or cut said nothing,
 * and its mark stayed: no probe again until a restart. */
static void a_probe_that_says_nothing_lets_the_next_one_go(void **state)
{
    bool probe;
    int64_t t = base + HOSTS_PROBE_FIRST_MS;
    (void)state;
    fail_at(url_of(1), 3, base);
    assert_true(admit(url_of(1), t, &probe) && probe);
    hosts_result(url_of(1), NULL, HOST_ORIGIN, HOST_SAID_NOTHING, true, t);
    assert_true(hosts_ends_retries(url_of(1), NULL));
    assert_false(admit(url_of(1), t + 10, &probe));
    assert_true(admit(url_of(1), t + HOSTS_PROBE_FIRST_MS, &probe) && probe);
    hosts_result(url_of(1), NULL, HOST_ORIGIN, HOST_DOWN, true, t + HOSTS_PROBE_FIRST_MS);
    /* a failed probe puts the next one off twice as long */
    assert_false(admit(url_of(1), t + 2 * HOSTS_PROBE_FIRST_MS, &probe));
    assert_true(admit(url_of(1), t + 3 * HOSTS_PROBE_FIRST_MS, &probe) && probe);
}

static void a_host_held_and_never_asked_for_leaves_the_table(void **state)
{
    bool probe;
    int64_t asked = base + HOSTS_IDLE_MS - HOSTS_PROBE_MAX_MS;
    (void)state;
    fail_at(url_of(2), 3, base);
    fail_at(url_of(3), 3, base);
    /* asked for meanwhile (its probe, which finds nothing): kept */
    assert_true(admit(url_of(3), asked, &probe) && probe);
    hosts_result(url_of(3), NULL, HOST_ORIGIN, HOST_SAID_NOTHING, true, asked);
    assert_int_equal(down_at(base + HOSTS_IDLE_MS - 1), 2);
    size_t n;
    struct host_down *left = hosts_down_list(&n, base + HOSTS_IDLE_MS + HOSTS_SWEEP_MS);
    assert_int_equal(n, 1);
    assert_string_equal(left[0].origin, "http://h3.lab:80");
    free(left);
}

static void failures_that_old_are_not_in_a_row(void **state)
{
    (void)state;
    fail_at(url_of(4), 2, base);
    fail_at(url_of(4), 1, base + HOSTS_IDLE_MS);
    assert_false(hosts_ends_retries(url_of(4), NULL));
    fail_at(url_of(4), 2, base + HOSTS_IDLE_MS + 1);
    assert_true(hosts_ends_retries(url_of(4), NULL));
}

/* The outside review: 261 dead ports filled the table for good; a real outage afterwards was
 * never held. */
static void a_full_table_still_holds_a_new_dead_host(void **state)
{
    (void)state;
    hosts_configure(1, NULL);
    for (int i = 0; i < HOSTS_MAX; i++)
        fail_at(url_of(i), 1, base + i);
    assert_int_equal(down_at(base + HOSTS_MAX), HOSTS_MAX);
    fail_at(url_of(1000), 1, base + HOSTS_MAX);
    assert_true(hosts_ends_retries(url_of(1000), NULL));
    assert_false(hosts_ends_retries(url_of(0), NULL)); /* the one asked for longest ago made room */
    assert_true(hosts_ends_retries(url_of(1), NULL));
    assert_int_equal(down_at(base + HOSTS_MAX), HOSTS_MAX);
}

static void a_host_not_held_makes_room_first(void **state)
{
    (void)state;
    hosts_configure(2, NULL);
    for (int i = 0; i < HOSTS_MAX - 1; i++)
        fail_at(url_of(i), 2, base);
    fail_at(url_of(HOSTS_MAX), 1, base + 10); /* failing, not held: the newest */
    fail_at(url_of(1000), 2, base + 20);
    assert_true(hosts_ends_retries(url_of(1000), NULL));
    assert_true(hosts_ends_retries(url_of(0), NULL));
    assert_int_equal(down_at(base + 20), HOSTS_MAX);
    fail_at(url_of(HOSTS_MAX), 1, base + 30); /* its first failure was forgotten */
    assert_false(hosts_ends_retries(url_of(HOSTS_MAX), NULL));
}

/* Silence after the request asks the host itself, once: a check that gets no answer holds it
 * at once (a hung host), one that gets any answer holds nothing, and silences of a route that
 * answered lately ask no new check. */
static void a_silence_asks_the_host_and_its_check_decides(void **state)
{
    char why[400];
    int retry_after = 0;
    bool probe;
    (void)state;
    assert_true(hosts_result(url_of(20), NULL, HOST_ORIGIN, HOST_SILENT, false, base));
    assert_false(
        hosts_result(url_of(20), NULL, HOST_ORIGIN, HOST_SILENT, false, base + 1)); /* out */
    assert_false(hosts_ends_retries(url_of(20), NULL));
    hosts_checked(url_of(20), NULL, HOST_CHECK_SILENT, base + 10);
    assert_true(hosts_ends_retries(url_of(20), NULL));
    assert_false(hosts_admit(url_of(20), NULL, HOST_ORIGIN, base + 20, true, &probe, why,
                             sizeof(why), &retry_after));
    assert_non_null(strstr(why, "accepts connections but answers nothing"));
    /* a live host: its check answers, nothing held, no new check for a while */
    assert_true(hosts_result(url_of(21), NULL, HOST_ORIGIN, HOST_SILENT, false, base));
    hosts_checked(url_of(21), NULL, HOST_CHECK_ANSWERED, base + 5);
    assert_false(hosts_ends_retries(url_of(21), NULL));
    assert_false(hosts_result(url_of(21), NULL, HOST_ORIGIN, HOST_SILENT, false, base + 6));
    assert_false(hosts_result(url_of(21), NULL, HOST_ORIGIN, HOST_SILENT, false,
                              base + 5 + HOSTS_ANSWERED_MS - 1));
    assert_true(hosts_result(url_of(21), NULL, HOST_ORIGIN, HOST_SILENT, false,
                             base + 5 + HOSTS_ANSWERED_MS));
    hosts_checked(url_of(21), NULL, HOST_CHECK_NONE, base + 5 + HOSTS_ANSWERED_MS); /* arca stops */
    assert_false(hosts_ends_retries(url_of(21), NULL));
    assert_int_equal(down_at(base + 30), 1);
}

/* The IPv4 address `text` as a rule's outgoing-address. */
static struct outgoing_address address(const char *text)
{
    struct outgoing_address a = {.has_v4 = true};
    a.v4.sin_family = AF_INET;
    assert_int_equal(inet_pton(AF_INET, text, &a.v4.sin_addr), 1);
    return a;
}

/* A route is the host and the address it leaves from: failures from one address hold that
 * route alone, its reason and the list name the address, and the other routes go. */
static void a_hold_is_the_routes_it_leaves_from(void **state)
{
    struct outgoing_address partner = address("127.0.0.2"), lab = address("127.0.0.3");
    char why[400];
    int retry_after = 0;
    bool probe;
    size_t n;
    (void)state;
    hosts_configure(3, &lab); /* --outgoing-address: the list does not name it */
    for (int i = 0; i < 3; i++)
        hosts_result(url_of(30), &partner, HOST_ORIGIN, HOST_DOWN, false, base);
    assert_true(hosts_ends_retries(url_of(30), &partner));
    assert_false(hosts_ends_retries(url_of(30), &lab));
    assert_false(hosts_ends_retries(url_of(30), NULL));
    assert_true(hosts_admit(url_of(30), &lab, HOST_ORIGIN, base + 1, true, &probe, why, sizeof(why),
                            &retry_after));
    assert_false(hosts_admit(url_of(30), &partner, HOST_ORIGIN, base + 1, true, &probe, why,
                             sizeof(why), &retry_after));
    assert_non_null(strstr(why, "http://h30.lab:80 (leaving from 127.0.0.2) is down since"));
    for (int i = 0; i < 3; i++)
        hosts_result(url_of(30), &lab, HOST_ORIGIN, HOST_DOWN, false, base + 2);
    struct host_down *down = hosts_down_list(&n, base + 3);
    assert_int_equal(n, 2);
    size_t at = strcmp(down[0].from, "127.0.0.2") ? 1 : 0;
    assert_string_equal(down[at].from, "127.0.0.2");
    assert_string_equal(down[1 - at].from, ""); /* --outgoing-address's route */
    free(down);
    hosts_configure(3, NULL);
}

/* What a route does for everyone decides: one that answered any URL lately is live, so one
 * URL's silences ask nothing and hold nothing, and a check of its root that answers nothing
 * (the root is one path) holds nothing once another URL answered. A refused connection is no
 * URL's: it holds the route however lately it answered. */
static void a_route_that_answered_lately_is_not_held_for_one_urls_silence(void **state)
{
    (void)state;
    hosts_result(url_of(40), NULL, HOST_ORIGIN, HOST_UP, false, base);
    assert_false(hosts_result(url_of(40), NULL, HOST_ORIGIN, HOST_SILENT, false, base + 10));
    assert_false(hosts_ends_retries(url_of(40), NULL));
    /* no answer known: its root is checked; another URL answers while the check is out */
    assert_true(hosts_result(url_of(41), NULL, HOST_ORIGIN, HOST_SILENT, false, base));
    hosts_result(url_of(41), NULL, HOST_ORIGIN, HOST_UP, false, base + 5);
    hosts_checked(url_of(41), NULL, HOST_CHECK_SILENT, base + 10);
    assert_false(hosts_ends_retries(url_of(41), NULL));
    /* a root that closes without a word: a live process, nothing held, no new check soon */
    assert_true(hosts_result(url_of(42), NULL, HOST_ORIGIN, HOST_SILENT, false, base));
    hosts_checked(url_of(42), NULL, HOST_CHECK_CLOSED, base + 5);
    assert_false(hosts_ends_retries(url_of(42), NULL));
    assert_false(hosts_result(url_of(42), NULL, HOST_ORIGIN, HOST_SILENT, false, base + 6));
    /* refused connections after an answer still hold it */
    fail_at(url_of(40), 3, base + 20);
    assert_true(hosts_ends_retries(url_of(40), NULL));
    assert_int_equal(down_at(base + 30), 1);
}

/* Routes that only answered fill free places and each other's: never a failing route's. */
static void an_answer_never_pushes_out_a_failure(void **state)
{
    (void)state;
    hosts_configure(2, NULL);
    for (int i = 0; i < HOSTS_MAX - 1; i++)
        hosts_result(url_of(i), NULL, HOST_ORIGIN, HOST_UP, false, base + i);
    fail_at(url_of(1000), 1, base + HOSTS_MAX);
    for (int i = 0; i < HOSTS_MAX; i++)
        hosts_result(url_of(2000 + i), NULL, HOST_ORIGIN, HOST_UP, false, base + HOSTS_MAX + i);
    fail_at(url_of(1000), 1, base + 3 * HOSTS_MAX); /* its first failure was kept */
    assert_true(hosts_ends_retries(url_of(1000), NULL));
    hosts_configure(3, NULL);
}

/* A parent is held after its own faults, passed over for a wait that doubles with each fault,
 * and asked again once it is over; its good answer forgets it all. Its attempts' ends do not
 * count (parent.c judges them), and it is not among the origins held down. */
static void a_parent_is_passed_over_after_its_own_faults(void **state)
{
    const char *parent = "http://central.lab:8080/api/v1/fetch/?url=x";
    struct host_state st;
    char why[400];
    int retry_after = 0;
    bool probe;
    (void)state;
    for (int i = 0; i < 5; i++)
        hosts_result(parent, NULL, HOST_PARENT, HOST_DOWN, false, base);
    hosts_state(parent, HOST_PARENT, base, &st);
    assert_false(st.held);
    for (int i = 0; i < HOSTS_PARENT_FAULTS; i++)
        hosts_judged(parent, HOST_PARENT, true, base);
    hosts_state(parent, HOST_PARENT, base, &st);
    assert_true(st.held && st.since > 0);
    assert_int_equal(st.failures, HOSTS_PARENT_FAULTS);
    assert_false(hosts_admit(parent, NULL, HOST_PARENT, base + 1, true, &probe, why, sizeof(why),
                             &retry_after));
    assert_true(hosts_admit(parent, NULL, HOST_ORIGIN, base + 1, true, &probe, why, sizeof(why),
                            &retry_after)); /* as an origin (--parent-only), another host */
    assert_true(hosts_admit(parent, NULL, HOST_PARENT, base + HOSTS_PARENT_HOLD_MS, true, &probe,
                            why, sizeof(why), &retry_after));
    hosts_judged(parent, HOST_PARENT, true, base + HOSTS_PARENT_HOLD_MS);
    hosts_state(parent, HOST_PARENT, base + 3 * HOSTS_PARENT_HOLD_MS - 1, &st);
    assert_true(st.held); /* doubled */
    assert_int_equal(down_at(base + 1), 0);
    hosts_judged(parent, HOST_PARENT, false, base + 3 * HOSTS_PARENT_HOLD_MS);
    hosts_state(parent, HOST_PARENT, base + 3 * HOSTS_PARENT_HOLD_MS, &st);
    assert_false(st.held);
    assert_int_equal(st.failures, 0);
}

/* A mirror that did not answer is passed over for a flat HOSTS_MIRROR_HOLD_MS. */
static void a_mirror_is_passed_over_for_a_minute(void **state)
{
    const char *mirror = "https://mirror.lab/debian/pool/x.deb";
    char why[400];
    int retry_after = 0;
    bool probe;
    (void)state;
    hosts_judged(mirror, HOST_MIRROR, true, base);
    assert_false(hosts_admit(mirror, NULL, HOST_MIRROR, base + HOSTS_MIRROR_HOLD_MS - 1, true,
                             &probe, why, sizeof(why), &retry_after));
    assert_false(hosts_ends_retries(mirror, NULL)); /* as an origin it is not held */
    assert_true(hosts_admit(mirror, NULL, HOST_MIRROR, base + HOSTS_MIRROR_HOLD_MS, true, &probe,
                            why, sizeof(why), &retry_after));
}

/* A registry's 429 holds its route for the wait it asked, cut to the most given: its asks are
 * refused with the seconds left, its retries end, the status shows it; once the wait is over,
 * one probe at a time; a 429 to that probe holds it again, an answer lifts it. */
static void a_limit_holds_for_the_wait_asked_then_one_probe(void **state)
{
    const char *url = "http://limited.lab/v2/x/manifests/v1";
    char why[400];
    int retry_after = 0;
    bool probe;
    struct host_limit l;
    (void)state;
    assert_int_equal(hosts_limit(url, NULL, "registry lab", "answered 429 (Retry-After: 3600 s)",
                                 3600000, 5000, base),
                     5000);
    assert_true(hosts_any_down());
    assert_true(hosts_ends_retries(url, NULL));
    assert_int_equal(down_at(base), 0); /* not down: its own counts and words */
    assert_false(hosts_admit(url, NULL, HOST_ORIGIN, base + 1000, true, &probe, why, sizeof(why),
                             &retry_after));
    assert_int_equal(retry_after, 4);
    assert_non_null(strstr(why, "registry lab: answered 429"));
    assert_non_null(strstr(why, "cut to --registry-hold-max 5 s"));
    assert_true(hosts_limited(url, NULL, base + 1000, why, sizeof(why), &retry_after));
    hosts_limit_state("http://limited.lab/", base + 1000, &l);
    assert_true(l.held);
    assert_non_null(strstr(l.why, "answered 429"));
    /* an answer to a request asked before the hold lifts nothing while the wait runs */
    hosts_result(url, NULL, HOST_ORIGIN, HOST_UP, false, base + 2000);
    assert_true(hosts_limited(url, NULL, base + 2000, NULL, 0, NULL));
    /* its wait over: one probe, the others refused meanwhile */
    assert_false(hosts_limited(url, NULL, base + 5000, NULL, 0, NULL));
    assert_true(hosts_refuses(url, NULL, base + 4000, base + 4999));
    assert_true(admit(url, base + 5000, &probe));
    assert_true(probe);
    assert_false(admit(url, base + 5001, &probe));
    assert_true(hosts_limited(url, NULL, base + 5001, NULL, 0, NULL));
    /* limited again: held again (the limit is told before the end, easy_ended) */
    hosts_limit(url, NULL, "registry lab", "answered 429 (no Retry-After)", 0, 5000, base + 5010);
    hosts_result(url, NULL, HOST_ORIGIN, HOST_UP, true, base + 5010);
    assert_false(admit(url, base + 5010 + HOSTS_PROBE_FIRST_MS - 1, &probe));
    assert_true(admit(url, base + 5010 + HOSTS_PROBE_FIRST_MS, &probe));
    assert_true(probe);
    hosts_result(url, NULL, HOST_ORIGIN, HOST_UP, true, base + 5010 + HOSTS_PROBE_FIRST_MS);
    assert_false(hosts_limited(url, NULL, base + 7000, NULL, 0, NULL));
    assert_true(admit(url, base + 7000, &probe));
    assert_false(probe);
    hosts_limit_state(url, base + 7000, &l);
    assert_false(l.held);
}

/* A limit without a wait asked holds HOSTS_PROBE_FIRST_MS, doubled by each in a row; one that
 * lands while a longer one runs changes nothing. */
static void a_limit_without_a_wait_doubles_and_never_shortens_one(void **state)
{
    const char *url = "http://limited2.lab/v2/";
    int64_t t = base;
    (void)state;
    assert_int_equal(hosts_limit(url, NULL, "registry r", "answered 429", 0, 600000, t),
                     HOSTS_PROBE_FIRST_MS);
    assert_int_equal(hosts_limit(url, NULL, "registry r", "answered 429", 10, 600000, t + 1), 0);
    t += HOSTS_PROBE_FIRST_MS;
    assert_int_equal(hosts_limit(url, NULL, "registry r", "answered 429", 0, 600000, t),
                     2 * HOSTS_PROBE_FIRST_MS);
    t += 2 * HOSTS_PROBE_FIRST_MS;
    assert_int_equal(hosts_limit(url, NULL, "registry r", "answered 429", 0, 1500, t), 1500);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(a_host_is_held_after_its_failures_in_a_row, setup),
        cmocka_unit_test_setup(a_probe_that_says_nothing_lets_the_next_one_go, setup),
        cmocka_unit_test_setup(a_download_is_refused_until_its_probe_is_due, setup),
        cmocka_unit_test_setup(a_download_without_a_slot_is_never_the_probe, setup),
        cmocka_unit_test_setup(one_download_waits_to_be_the_probe, setup),
        cmocka_unit_test_setup(a_host_held_and_never_asked_for_leaves_the_table, setup),
        cmocka_unit_test_setup(failures_that_old_are_not_in_a_row, setup),
        cmocka_unit_test_setup(a_full_table_still_holds_a_new_dead_host, setup),
        cmocka_unit_test_setup(a_host_not_held_makes_room_first, setup),
        cmocka_unit_test_setup(a_silence_asks_the_host_and_its_check_decides, setup),
        cmocka_unit_test_setup(a_hold_is_the_routes_it_leaves_from, setup),
        cmocka_unit_test_setup(a_route_that_answered_lately_is_not_held_for_one_urls_silence,
                               setup),
        cmocka_unit_test_setup(an_answer_never_pushes_out_a_failure, setup),
        cmocka_unit_test_setup(a_parent_is_passed_over_after_its_own_faults, setup),
        cmocka_unit_test_setup(a_mirror_is_passed_over_for_a_minute, setup),
        cmocka_unit_test_setup(a_limit_holds_for_the_wait_asked_then_one_probe, setup),
        cmocka_unit_test_setup(a_limit_without_a_wait_doubles_and_never_shortens_one, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
