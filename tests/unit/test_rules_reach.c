/* Units for where a rule that names networks reaches: a path segment's parameters folded away,
 * the catch-all rule (match = *), the networks of a rule that names none (the first rule around
 * it that does) and the warning that says so, and what the listings may show a client: a URL,
 * or a folder of them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "rules/carried.h"
#include "rules/explain.h"
#include "url/fold.h"
#include "rules/policy.h"
#include "rules/rules.h"
#include "rules/terms.h"

static struct config cfg;
static char err[CONFIG_ERR_LEN];

/* The rules of `ini` (as file "t.ini"), compiled; NULL with err. */
static struct rule_set *compile(const char *ini)
{
    FILE *f = fmemopen((void *)ini, strlen(ini), "r");
    int rc;
    config_free(&cfg);
    config_defaults(&cfg);
    err[0] = '\0';
    assert_non_null(f);
    rc = config_read_stream(&cfg, f, "t.ini", err);
    fclose(f);
    return rc < 0 ? NULL : rules_compile(&cfg, err);
}

static void install(const char *ini)
{
    struct rule_set *set = compile(ini);
    assert_non_null(set);
    rules_install(set);
    policy_init(&cfg); /* --allow-network's default: loopback and private networks */
}

static struct sockaddr_storage ip(const char *text)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    if (inet_pton(AF_INET, text, &((struct sockaddr_in *)&ss)->sin_addr) == 1)
        ss.ss_family = AF_INET;
    return ss;
}

static struct sockaddr_storage board_addr, loopback_addr, outsider_addr;
#define BOARD ((const struct sockaddr *)&board_addr)
#define LOOPBACK ((const struct sockaddr *)&loopback_addr)
#define OUTSIDER ((const struct sockaddr *)&outsider_addr)

static struct fetch_terms decide(const char *url, const struct sockaddr *client)
{
    struct request_facts req = {.url = url, .key = url, .client = client};
    struct fetch_terms t;
    terms_decide(&cfg, &req, &t);
    return t;
}

static int setup(void **state)
{
    (void)state;
    board_addr = ip("10.1.2.3");
    loopback_addr = ip("127.0.0.1");
    outsider_addr = ip("203.0.113.7");
    return 0;
}

/* fold_url: a segment's parameters go before the dot segments are resolved. */
static void path_parameters_folded(void **state)
{
    static const char *const cases[][2] = {
        {"https://a.org/private;x=1/a.bin", "https://a.org/private/a.bin"},
        {"https://a.org/pub/..;/private/a.bin", "https://a.org/private/a.bin"},
        {"https://a.org/pub;/..;x=2/private/a.bin", "https://a.org/private/a.bin"},
        {"https://a.org/private/a.bin;jsessionid=1", "https://a.org/private/a.bin"},
        {"https://a.org/p;a/r;b/i%76ate;c/k", "https://a.org/p/r/ivate/k"},
        {"https://a.org/;x/private/k", "https://a.org/private/k"},
        {"https://a.org/..;/private/k", "https://a.org/private/k"}, /* above the root: at it */
        {"https://a.org/a;x?q=;y", "https://a.org/a?q=;y"}, /* the query's are no segment's */
        /* an escaped ';' too: a server that decodes the path first reads it as one */
        {"https://a.org/a%3Bx/k", "https://a.org/a/k"},
        {"https://a.org/private%3bx=1/a.bin", "https://a.org/private/a.bin"},
        {"https://a.org/pub/..%3B/private/a.bin", "https://a.org/private/a.bin"},
        {"https://a.org/a?q=;y", NULL},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int failed;
        char *got = fold_url(cases[i][0], &failed);
        assert_int_equal(failed, 0);
        if (cases[i][1] && (!got || strcmp(got, cases[i][1])))
            fail_msg("%s: %s, not %s", cases[i][0], got ? got : "(none)", cases[i][1]);
        if (!cases[i][1] && got)
            fail_msg("%s: folded to %s", cases[i][0], got);
        free(got);
    }
}

/* Who may fetch holds for a URL written with parameters, and the rules test says so. */
static void path_parameters_refused(void **state)
{
    static const char *const spellings[] = {
        "https://a.org/private;x=1/a.bin", "https://a.org/pub/..;/private/a.bin",
        "https://a.org/pub/..;x/private/a.bin", "https://a.org/private%3Bx=1/a.bin",
        "https://a.org/pub/..%3B/private/a.bin"};
    (void)state;
    install("[rule private]\nmatch = https://a.org/private/\nallow-network = 10.0.0.0/8\n");
    for (size_t i = 0; i < sizeof(spellings) / sizeof(spellings[0]); i++) {
        struct fetch_terms t = decide(spellings[i], LOOPBACK);
        json_t *said = rules_explain(&cfg, spellings[i], LOOPBACK, err);
        assert_false(t.allowed);
        assert_string_equal(t.allowed_rule, "private");
        assert_true(decide(spellings[i], BOARD).allowed);
        assert_non_null(said);
        assert_true(json_is_false(json_object_get(said, "allowed")));
        assert_string_equal(json_string_value(json_object_get(said, "allowed_from")),
                            "rule private");
        json_decref(said);
    }
}

/* match = *: every URL, behind any other match; one only; http:// with a bare glob is still
 * refused. */
static void catch_all_compiles_and_loses_to_any_match(void **state)
{
    struct rule_set *set = compile("[rule every]\nmatch = *\nttl = 2d\n"
                                   "[rule pub]\nmatch = https://a.org/pub/\n");
    const struct rule *all[64];
    (void)state;
    assert_non_null(set);
    assert_string_equal(rules_match(set, "https://a.org/pub/x")->name, "pub");
    assert_string_equal(rules_match(set, "https://a.org/else")->name, "every");
    assert_string_equal(rules_match(set, "http://[::1]:8080/x")->name, "every");
    assert_int_equal(rules_match_all(set, "https://a.org/pub/x", all, 64), 2);
    assert_string_equal(all[1]->name, "every");
    assert_int_equal(rules_match_all(set, "https://a.org/pub/x", all, 1), 1);
    assert_string_equal(all[0]->name, "pub");
    assert_null(rules_match_networks(set, "https://a.org/else")); /* it names none */
    rules_free(set);
    assert_null(compile("[rule a]\nmatch = *\n[rule b]\nmatch = *\n"));
    assert_non_null(strstr(err, "rule b: the same match as rule a"));
    assert_null(compile("[rule a]\nmatch = http://*/\n"));
    assert_non_null(strstr(err, "match = * covers every URL"));
    assert_null(compile("[rule a]\nmatch = **\n"));
    assert_null(compile("[rule a]\nmatch = *.example.org\n"));
}

/* Deny by default, widen per prefix: the catch-all's networks for every URL no rule that
 * names networks covers, a rule that names none included; no tunnel past it. */
static void catch_all_denies_by_default(void **state)
{
    char why[256];
    struct fetch_terms t;
    (void)state;
    install("[rule boards]\nmatch = *\nallow-network = 10.0.0.0/8\n"
            "[rule public]\nmatch = https://a.org/public/\nallow-network = all\n"
            "[rule nightly]\nmatch = https://a.org/nightly/\nttl = 1h\n");
    assert_true(decide("https://a.org/public/x", OUTSIDER).allowed);
    assert_true(decide("https://a.org/public/x", LOOPBACK).allowed);
    t = decide("https://b.org/x", LOOPBACK);
    assert_false(t.allowed);
    assert_string_equal(t.rule, "boards");
    assert_string_equal(t.allowed_rule, "boards");
    t = decide("https://a.org/nightly/x", LOOPBACK);
    assert_false(t.allowed);
    assert_string_equal(t.rule, "nightly");
    assert_string_equal(t.allowed_rule, "boards");
    assert_true(decide("https://a.org/nightly/x", BOARD).allowed);
    /* the folded spelling of a public URL under the catch-all only: refused */
    assert_false(decide("https://a.org/pub%6cic/x", OUTSIDER).allowed);
    assert_false(terms_tunnel_allowed("a.org", 443, LOOPBACK, why, sizeof(why)));
    assert_non_null(strstr(why, "rule boards"));
    assert_true(terms_tunnel_allowed("a.org", 443, BOARD, why, sizeof(why)));
}

/* A rule that names no networks takes those of the first rule around it that names some, for
 * both spellings, a glob around a named host too; the rules test names that rule. */
static void inner_rules_take_the_networks_around_them(void **state)
{
    char why[256];
    json_t *said;
    (void)state;
    install("[rule private]\nmatch = https://a.org/private/\nallow-network = 10.0.0.0/8\n"
            "[rule big]\nmatch = https://a.org/private/big/\nmax-object-size = 1G\n"
            "[rule open]\nmatch = https://a.org/private/big/open/\nallow-network = all\n"
            "[rule lab]\nmatch = https://*.lab.org/\nallow-network = 10.0.0.0/8\n"
            "[rule fw]\nmatch = https://fw.lab.org/fw/\nttl = 1d\n");
    assert_false(decide("https://a.org/private/big/x", LOOPBACK).allowed);
    assert_string_equal(decide("https://a.org/private/big/x", LOOPBACK).allowed_rule, "private");
    assert_false(decide("https://a.org/private/bi%67/x", LOOPBACK).allowed);
    assert_false(decide("https://a.org/private;p/big/x", LOOPBACK).allowed);
    assert_true(decide("https://a.org/private/big/x", BOARD).allowed);
    assert_true(decide("https://a.org/private/big/open/x", OUTSIDER).allowed);
    assert_false(decide("https://fw.lab.org/fw/x", LOOPBACK).allowed);
    assert_string_equal(decide("https://fw.lab.org/fw/x", LOOPBACK).allowed_rule, "lab");
    /* the same networks: a redirect between them keeps who may fetch */
    assert_true(terms_same_access("https://a.org/private/a", "https://a.org/private/big/b", why,
                                  sizeof(why)));
    said = rules_explain(&cfg, "https://a.org/private/big/x", NULL, err);
    assert_non_null(said);
    assert_string_equal(json_string_value(json_object_get(said, "allowed_from")), "rule private");
    assert_string_equal(
        json_string_value(json_object_get(
            json_object_get(json_object_get(said, "terms"), "max-object-size"), "from")),
        "rule big");
    json_decref(said);
}

/* The warning names both rules and their lines, and what would decide without the enclosing
 * rule; none for a rule with networks of its own, under a rule that lets everyone in, nor
 * under the catch-all alone; at most RULES_WARNINGS_MAX lines, the last counting the rest. */
static void inner_rules_are_warned_of(void **state)
{
    struct rule_set *set = compile("[rule private]\nmatch = https://a.org/private/\n"
                                   "allow-network = 10.0.0.0/8\n"
                                   "[rule big]\nmatch = https://a.org/private/big/\nttl = 1d\n"
                                   "[rule own]\nmatch = https://a.org/private/own/\n"
                                   "allow-network = none\n"
                                   "[rule every]\nmatch = *\nallow-network = 10.0.0.0/8\n"
                                   "[rule else]\nmatch = https://b.org/\nttl = 1d\n");
    char ini[16384];
    size_t used;
    (void)state;
    assert_non_null(set);
    assert_string_equal(rules_warning(set, 0),
                        "t.ini:4: rule big names no allow-network, inside rule private's prefix "
                        "(t.ini:1): rule private's networks decide who may fetch there, not "
                        "rule every's (match = *)");
    assert_null(rules_warning(set, 1));
    rules_free(set);
    /* without a catch-all naming networks, --allow-network's is what would decide */
    set = compile("[rule private]\nmatch = https://a.org/private/\nallow-network = 10.0.0.0/8\n"
                  "[rule big]\nmatch = https://a.org/private/big/\nttl = 1d\n");
    assert_non_null(strstr(rules_warning(set, 0), "decide who may fetch there, not "
                                                  "--allow-network's"));
    rules_free(set);
    /* a rule that lets everyone in opens its prefix: what is inside it is meant to be open */
    set = compile("[rule public]\nmatch = https://a.org/pub/\nallow-network = all\n"
                  "[rule big]\nmatch = https://a.org/pub/big/\nttl = 1d\n"
                  "[rule v6]\nmatch = https://a.org/v6/\nallow-network = ::/0\n"
                  "[rule in6]\nmatch = https://a.org/v6/in/\nttl = 1d\n");
    assert_null(rules_warning(set, 0));
    rules_free(set);
    set = compile("[rule nightly]\nmatch = https://a.org/n/\nttl = 1d\n");
    assert_null(rules_warning(set, 0)); /* no networks anywhere */
    rules_free(set);
    used = (size_t)snprintf(ini, sizeof(ini),
                            "[rule p]\nmatch = https://a.org/p/\nallow-network = none\n");
    for (int i = 0; i < 40; i++)
        used += (size_t)snprintf(ini + used, sizeof(ini) - used,
                                 "[rule in%d]\nmatch = https://a.org/p/%d/\nttl = 1d\n", i, i);
    set = compile(ini);
    assert_non_null(set);
    assert_non_null(rules_warning(set, 14));
    assert_non_null(strstr(rules_warning(set, 15), "and 25 more rules"));
    assert_null(rules_warning(set, 16));
    rules_free(set);
}

/* A listing shows a URL unless a rule's networks refuse the client it (both spellings);
 * --allow-network's refusal is the listing's own gate, not this one. */
static void listed_for(void **state)
{
    (void)state;
    install("[rule private]\nmatch = https://a.org/private/\nallow-network = 10.0.0.0/8\n");
    assert_false(terms_listed_for("https://a.org/private/k", LOOPBACK));
    assert_false(terms_listed_for("https://a.org/priv%61te/k", LOOPBACK));
    assert_true(terms_listed_for("https://a.org/private/k", BOARD));
    assert_true(terms_listed_for("https://a.org/public/k", LOOPBACK));
    assert_true(terms_listed_for("https://a.org/public/k", OUTSIDER));
    install("[rule nightly]\nmatch = https://a.org/n/\nttl = 1d\n");
    assert_true(terms_listed_for("https://a.org/private/k", OUTSIDER)); /* no rule names any */
}

/* A folder (a URL prefix) is hidden only where every URL under it is refused the client: its
 * own rule refuses, and no rule inside it that names networks lets the client in (one that names
 * none keeps the networks around it; the catch-all goes behind every other, never inside). */
static void folder_listed_for(void **state)
{
    (void)state;
    install("[rule private]\nmatch = https://a.org/private/\nallow-network = 10.0.0.0/8\n"
            "[rule shared]\nmatch = https://a.org/private/shared/\nallow-network = all\n"
            "[rule big]\nmatch = https://a.org/private/big/\nmax-object-size = 1G\n"
            "[rule plans]\nmatch = https://a.org/pub/secret-\nallow-network = 10.0.0.0/8\n");
    assert_true(terms_prefix_listed_for("https://a.org/private/", LOOPBACK)); /* shared/ */
    assert_true(terms_prefix_listed_for("https://a.org/private/shared/", LOOPBACK));
    assert_false(terms_prefix_listed_for("https://a.org/private/big/", LOOPBACK));
    assert_false(terms_prefix_listed_for("https://a.org/private/other/", LOOPBACK));
    assert_true(terms_prefix_listed_for("https://a.org/private/other/", BOARD));
    assert_true(terms_prefix_listed_for("https://a.org/pub/", LOOPBACK)); /* some of it */
    assert_false(terms_prefix_listed_for("https://a.org/pub/secret-x/", LOOPBACK));
    install("[rule boards]\nmatch = *\nallow-network = 10.0.0.0/8\n"
            "[rule public]\nmatch = https://a.org/public/\nallow-network = all\n");
    assert_true(terms_prefix_listed_for("https://a.org/", LOOPBACK)); /* public/ opens */
    assert_false(terms_prefix_listed_for("https://a.org/other/", LOOPBACK));
    assert_false(terms_prefix_listed_for("https://b.org/", LOOPBACK));
    assert_true(terms_prefix_listed_for("https://b.org/", BOARD));
    install("[rule open]\nmatch = *\nallow-network = all\n"
            "[rule private]\nmatch = https://a.org/private/\nallow-network = 10.0.0.0/8\n");
    assert_false(terms_prefix_listed_for("https://a.org/private/", LOOPBACK));
    assert_true(terms_prefix_listed_for("https://a.org/", LOOPBACK));
    install("[rule nightly]\nmatch = https://a.org/n/\nttl = 1d\n");
    assert_true(terms_prefix_listed_for("https://a.org/n/", OUTSIDER)); /* no rule names any */
}

/* A parent's place (--parent's, a rule's): by name, by an address its name had, any spelling
 * of the address; another port or host is no parent's. */
static void parents_are_no_origin(void **state)
{
    struct sockaddr_storage a = ip("127.0.0.1");
    char why[256];
    (void)state;
    install("[arca]\nparent = http://localhost:9002\n"
            "[rule r]\nmatch = https://a.org/\nparent = https://central.example:8443/\n");
    assert_true(rules_names_parent("http://localhost:9002/api/v1/fetch/?url=x", why, sizeof(why)));
    assert_non_null(strstr(why, "names this arca's parent http://localhost:9002"));
    assert_true(rules_names_parent("http://127.0.0.1:9002/x", NULL, 0));
    assert_true(rules_names_parent("http://[::ffff:127.0.0.1]:9002/x", NULL, 0));
    assert_true(rules_names_parent("https://LOCALHOST:9002/", NULL, 0));
    assert_true(rules_names_parent("http://u:p@central.example:8443/k", NULL, 0));
    assert_false(rules_names_parent("http://127.0.0.1:9003/x", NULL, 0));
    assert_false(rules_names_parent("https://central.example/k", NULL, 0)); /* port 443 */
    assert_false(rules_names_parent("http://127.0.0.2:9002/x", NULL, 0));
    ((struct sockaddr_in *)&a)->sin_port = htons(9002);
    assert_true(rules_addr_is_parent((struct sockaddr *)&a, 9002, why, sizeof(why)));
    assert_false(rules_addr_is_parent((struct sockaddr *)&a, 9001, why, sizeof(why)));
    install("[rule r]\nmatch = https://a.org/\nttl = 1d\n");
    assert_false(rules_names_parent("http://localhost:9002/x", NULL, 0)); /* reloaded: none */
}

/* carried_urls' callback: the URLs seen, one a line, into a buffer. */
static int collect(const char *normal, void *ctx)
{
    char *seen = ctx;
    size_t n = strlen(seen);
    snprintf(seen + n, 1024 - n, "%s\n", normal);
    return 0;
}

/* Every parameter's value, any name, as any reader cuts and decodes it; nested; closed beyond. */
static void carried_urls_found(void **state)
{
    static const char *const cases[][2] = {
        {"https://a.org/k", ""},
        {"https://a.org/k?page=2&q=http", ""},
        {"http://c:1/api/v1/fetch/?url=http://o/private/a?token=x", "http://o/private/a?token=x\n"},
        {"http://c/f?u=https%3A%2F%2Fo%2Fprivate%2Fa", "https://o/private/a\n"},
        {"http://c/f?u=https%253A%252F%252Fo%252Fp", "https://o/p\n"}, /* encoded twice */
        {"http://c/f?a=1;next=HTTP://o/p", "http://o/p\n"},
        /* arca's own unencoded url= takes the query's rest, '&' included */
        {"http://c/f?url=http://o/pub/a&b/../../private/k", "http://o/pub/a\nhttp://o/private/k\n"},
        {"http://c/f?x=http://d/g?y=http://o/private/k",
         "http://d/g?y=http://o/private/k\nhttp://o/private/k\n"},
    };
    char seen[1024];
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        seen[0] = '\0';
        assert_int_equal(carried_urls(cases[i][0], collect, seen), 0);
        if (strcmp(seen, cases[i][1]))
            fail_msg("%s: carried %s, not %s", cases[i][0], seen, cases[i][1]);
    }
    seen[0] = '\0';
    assert_int_equal(carried_urls("http://c/f?u=http://", collect, seen), -1); /* unreadable */
    seen[0] = '\0';
    assert_int_equal(carried_urls("http://c/?a=http://c/?a=http://c/?a=http://c/?a=http://c/?a="
                                  "http://o/k",
                                  collect, seen),
                     -1); /* deeper than CARRIED_DEPTH */
}

/* A URL carrying one the client may not fetch is refused it, naming the rule and that URL
 * (redacted); a board may; no rule naming networks: not read. */
static void carried_urls_refused(void **state)
{
    const char *wrapped = "http://c:9/api/v1/fetch/?url=https://a.org/private/a.bin?token=s";
    struct fetch_terms t;
    char why[300];
    (void)state;
    install("[rule private]\nmatch = https://a.org/private/\nallow-network = 10.0.0.0/8\n");
    t = decide(wrapped, LOOPBACK);
    assert_false(t.allowed);
    assert_string_equal(t.allowed_rule, "private");
    assert_string_equal(t.allowed_carried, "https://a.org/private/a.bin?token=REDACTED");
    assert_true(decide(wrapped, BOARD).allowed);
    assert_true(decide(wrapped, NULL).allowed); /* arca's own */
    assert_false(terms_listed_for(wrapped, LOOPBACK));
    assert_false(terms_same_access("https://a.org/pub/go", wrapped, why, sizeof(why)));
    assert_non_null(strstr(why, "rule private"));
    assert_true(terms_same_access("https://a.org/pub/go", "http://c/?url=https://a.org/pub/b", why,
                                  sizeof(why)));
    install("[rule r]\nmatch = https://a.org/\nttl = 1d\n");
    assert_true(decide(wrapped, LOOPBACK).allowed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(path_parameters_folded),
        cmocka_unit_test(path_parameters_refused),
        cmocka_unit_test(catch_all_compiles_and_loses_to_any_match),
        cmocka_unit_test(catch_all_denies_by_default),
        cmocka_unit_test(inner_rules_take_the_networks_around_them),
        cmocka_unit_test(inner_rules_are_warned_of),
        cmocka_unit_test(listed_for),
        cmocka_unit_test(folder_listed_for),
        cmocka_unit_test(parents_are_no_origin),
        cmocka_unit_test(carried_urls_found),
        cmocka_unit_test(carried_urls_refused),
    };
    int rc = cmocka_run_group_tests(tests, setup, NULL);
    rules_install(compile("")); /* the last set goes before the leak check */
    config_free(&cfg);
    return rc;
}
