/* Units for the rules ([rule NAME] sections): reading, compiling, the matcher's precedence,
 * hosts, escapes and ports, and the terms they decide (terms_decide), mirrors included. */
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
#include "rules/explain.h"
#include "rules/policy.h"
#include "rules/rules.h"
#include "rules/terms.h"
#include "url/fold.h"
#include "url/url.h"

static struct config cfg;
static char err[CONFIG_ERR_LEN];

/* cfg read afresh from `ini` (as file "t.ini"): 0 or -1 with err. */
static int load(const char *ini)
{
    FILE *f = fmemopen((void *)ini, strlen(ini), "r");
    int rc;
    config_free(&cfg);
    config_defaults(&cfg);
    err[0] = '\0';
    assert_non_null(f);
    rc = config_read_stream(&cfg, f, "t.ini", err);
    fclose(f);
    return rc;
}

/* The rules of `ini`, compiled; NULL with err. */
static struct rule_set *compile(const char *ini)
{
    if (load(ini) < 0)
        return NULL;
    return rules_compile(&cfg, err);
}

/* The name of the rule for `url` (put in normal form first), "" for none. */
static const char *winner(const struct rule_set *set, const char *url)
{
    static char norm[4096];
    int status;
    const char *why;
    const struct rule *r;
    assert_int_equal(url_normalize(url, strlen(url), norm, sizeof(norm), &status, &why), 0);
    r = rules_match(set, norm);
    return r ? r->name : "";
}

/* The names of every rule matching, winner first, as "a b c". */
static const char *all_names(const struct rule_set *set, const char *url)
{
    static char names[512];
    const struct rule *all[64];
    size_t n = rules_match_all(set, url, all, 64), used = 0;
    names[0] = '\0';
    for (size_t i = 0; i < n; i++)
        used += (size_t)snprintf(names + used, sizeof(names) - used, "%s%s", i ? " " : "",
                                 all[i]->name);
    if (n > 0)
        assert_ptr_equal(all[0], rules_match(set, url));
    return names;
}

static void precedence_longest_prefix(void **state)
{
    struct rule_set *set = compile("[rule site]\nmatch = https://example.org/\n"
                                   "[rule pub]\nmatch = https://example.org/pub/\n"
                                   "[rule rel]\nmatch = https://example.org/pub/rel/\n"
                                   "[rule other]\nmatch = https://example.com/pub/\n");
    (void)state;
    assert_non_null(set);
    assert_int_equal(rules_count(set), 4);
    assert_string_equal(winner(set, "https://example.org/pub/rel/x.img"), "rel");
    assert_string_equal(all_names(set, "https://example.org/pub/rel/x.img"), "rel pub site");
    assert_string_equal(winner(set, "https://example.org/pub/x"), "pub");
    assert_string_equal(winner(set, "https://example.org/pubx"), "site");
    assert_string_equal(winner(set, "https://example.org/"), "site");
    assert_string_equal(winner(set, "https://example.org/pub/relx"), "pub");
    assert_string_equal(winner(set, "http://example.org/pub/rel/x"), "");
    assert_string_equal(winner(set, "https://example.com/pub/a"), "other");
    assert_string_equal(winner(set, "https://example.com/"), "");
    rules_free(set);
}

static void precedence_named_and_globs(void **state)
{
    struct rule_set *set = compile("[rule glob]\nmatch = https://*.example.org/\n"
                                   "[rule named]\nmatch = https://a.b.example.org/\n"
                                   "[rule deep-glob]\nmatch = https://*.example.org/deep/\n"
                                   "[rule longer-glob]\nmatch = https://*.b.example.org/\n");
    (void)state;
    assert_non_null(set);
    /* a tie: the named host, then the longer glob, then the shorter */
    assert_string_equal(all_names(set, "https://a.b.example.org/x"), "named longer-glob glob");
    /* a longer path covered beats a named host */
    assert_string_equal(winner(set, "https://a.b.example.org/deep/x"), "deep-glob");
    assert_string_equal(all_names(set, "https://a.b.example.org/deep/x"),
                        "deep-glob named longer-glob glob");
    assert_string_equal(winner(set, "https://c.b.example.org/x"), "longer-glob");
    assert_string_equal(winner(set, "https://z.example.org/x"), "glob");
    rules_free(set);
}

static void hosts(void **state)
{
    struct rule_set *set = compile("[rule glob]\nmatch = https://*.example.org/\n"
                                   "[rule bare]\nmatch = https://Example.NET\n");
    (void)state;
    assert_non_null(set);
    assert_string_equal(winner(set, "https://example.org/x"), ""); /* not the bare domain */
    assert_string_equal(winner(set, "https://evilexample.org/x"), "");
    assert_string_equal(winner(set, "https://a.example.org.evil.com/x"), "");
    assert_string_equal(winner(set, "https://A.Example.ORG/x"), "glob");
    assert_string_equal(winner(set, "https://example.net/x"), "bare");
    assert_string_equal(winner(set, "https://example.net.evil.com/x"), "");
    assert_string_equal(winner(set, "https://example.network/x"), "");
    /* userinfo is no part of what is matched */
    assert_string_equal(winner(set, "https://user:pw@example.net/x"), "bare");
    assert_string_equal(winner(set, "https://u@a.example.org/x"), "glob");
    assert_string_equal(winner(set, "https://10.0.0.1/x"), "");
    rules_free(set);
}

static void escapes_and_dot_segments(void **state)
{
    struct rule_set *set = compile("[rule esc]\nmatch = HTTPS://example.org/a/./b/../c%2f%7e\n");
    const struct rule *r;
    (void)state;
    assert_non_null(set);
    r = rules_match(set, "https://example.org/a/c%2F%7E/file");
    assert_non_null(r);
    assert_string_equal(r->match, "https://example.org/a/c%2F%7E");
    assert_false(r->host_glob);
    assert_string_equal(winner(set, "https://example.org/a/x/../c%2f%7e/file"), "esc");
    assert_string_equal(winner(set, "https://example.org/a/%2E/c%2F%7E"), "esc");
    assert_string_equal(winner(set, "https://example.org/a/b/c%2F%7E"), "");
    rules_free(set);
}

static void ports(void **state)
{
    struct rule_set *set = compile("[rule default]\nmatch = https://example.org:443/\n"
                                   "[rule alt]\nmatch = http://example.org:8080/\n"
                                   "[rule glob-port]\nmatch = https://*.example.org:8443/x/\n");
    (void)state;
    assert_non_null(set);
    assert_string_equal(winner(set, "https://example.org/f"), "default");
    assert_string_equal(winner(set, "https://example.org:8443/f"), "");
    assert_string_equal(winner(set, "http://example.org/f"), "");
    assert_string_equal(winner(set, "http://example.org:8080/f"), "alt");
    assert_string_equal(winner(set, "https://a.example.org:8443/x/f"), "glob-port");
    assert_string_equal(winner(set, "https://a.example.org/x/f"), "");
    rules_free(set);
    /* the default port is no port: the same match twice */
    assert_null(compile("[rule a]\nmatch = https://example.org/\n\n"
                        "[rule b]\nmatch = https://EXAMPLE.org:443\n"));
    assert_string_equal(err, "t.ini:5: rule b: the same match as rule a (line 2)");
}

static void duplicates_and_names(void **state)
{
    (void)state;
    assert_null(compile("[rule a]\nmatch = https://example.org/x/./y\n"
                        "[rule b]\nmatch = https://example.org/x/y\n"));
    assert_string_equal(err, "t.ini:4: rule b: the same match as rule a (line 2)");
    assert_int_equal(load("[rule a]\nmatch = https://a.org/\n[rule a]\nmatch = https://b.org/\n"),
                     -1);
    assert_string_equal(err, "t.ini:3: rule a given twice (first at t.ini:1)");
    assert_int_equal(load("[rule bad/name]\nmatch = https://a.org/\n"), -1);
    assert_non_null(strstr(err, "t.ini:1: rule name (not shown): 1-63 letters"));
    assert_int_equal(load("[rule a]\nmatch = https://a.org/\nttl = 1h\nttl = 2h\n"), -1);
    assert_string_equal(err, "t.ini:4: rule a: ttl given twice (first at line 3)");
    assert_int_equal(load("[rule a]\nmatch = https://a.org/\nallow-network = 10.0.0.0/8\n"
                          "allow-network = 192.168.0.0/16\n"),
                     0);
}

/* A file with a rule per host: each name told apart from every other through the name index's
 * growths, and one given again, however far back, named with its first line. */
static void many_names(void **state)
{
    enum { N = 3000 };
    static char ini[N * 48 + 64];
    size_t n = 0;
    (void)state;
    for (int i = 0; i < N; i++)
        n += (size_t)snprintf(ini + n, sizeof(ini) - n,
                              "[rule h%d]\nmatch = https://h%d.example.org/\n", i, i);
    assert_int_equal(load(ini), 0);
    assert_int_equal(cfg.n_rules, N);
    assert_string_equal(cfg.rules[N - 1].name, "h2999");
    snprintf(ini + n, sizeof(ini) - n, "[rule h17]\nmatch = https://again.example.org/\n");
    assert_int_equal(load(ini), -1);
    assert_string_equal(err, "t.ini:6001: rule h17 given twice (first at t.ini:35)");
    snprintf(ini + n, sizeof(ini) - n, "[rule h2999]\nmatch = https://again.example.org/\n");
    assert_int_equal(load(ini), -1);
    assert_string_equal(err, "t.ini:6001: rule h2999 given twice (first at t.ini:5999)");
}

static void unknown_key(void **state)
{
    (void)state;
    assert_int_equal(load("[rule a]\nmatch = https://a.org/\nttll = 1h\n"), -1);
    assert_string_equal(err, "t.ini:3: rule a: unknown key (not shown); did you mean ttl?");
    assert_int_equal(load("[rule a]\nmatch = https://a.org/\nquota = 1G\n"), -1);
    /* an option written below a rule's section (the new user's review) */
    assert_non_null(strstr(err, "t.ini:3: rule a: 'quota' is an option, not a rule's key"));
}

/* `key = value` in a rule is refused, naming line 3 and `want`. */
static void refused(const char *key, const char *value, const char *want)
{
    char ini[512];
    snprintf(ini, sizeof(ini), "[rule r]\n%s\n%s = %s\n",
             strcmp(key, "match") ? "match = https://a.org/" : "ttl = 1h", key, value);
    assert_null(compile(ini));
    if (!strstr(err, want) || strncmp(err, "t.ini:3: rule r: ", 17) != 0)
        fail_msg("%s = %s: '%s' does not say '%s'", key, value, err, want);
}

static void bad_values(void **state)
{
    (void)state;
    refused("ttl", "1x", "ttl: expected <int>d|h|m|s");
    refused("ttl", "0", "ttl: expected");
    refused("ttl", "99999999d", "out of range");
    refused("client-ttl", "sometimes", "client-ttl: expected obey, ignore or MIN-MAX");
    refused("client-ttl", "30d-1h", "MIN <= MAX");
    refused("client-ttl", "1h-", "client-ttl");
    refused("store", "maybe", "store: expected yes or no");
    refused("pin", "2", "pin: expected yes or no");
    refused("stale-if-error", "-1", "stale-if-error: expected <int>d|h|m|s or 0");
    refused("stale-while-revalidate", "1y", "stale-while-revalidate");
    refused("fill-connections", "0", "fill-connections: expected an integer 1..64");
    refused("fill-connections", "65", "fill-connections");
    refused("fill-min-size", "0", "fill-min-size: expected <int>[K|M|G|T]");
    refused("max-object-size", "1Q", "max-object-size");
    refused("allow-network", "10.0.0.0/33", "allow-network: not a network");
    refused("allow-network", "none, 10.0.0.0/8", "none goes alone");
    refused("allow-network", "", "allow-network: not a network"); /* fuzz_config: read past "" */
    refused("allow-network", "10.0.0.0/8,", "allow-network: not a network");
    assert_null(compile("[rule r]\nttl = 1h\n"));
    assert_string_equal(err, "t.ini:1: rule r: match missing (match = https://HOST/PATH-PREFIX)");
    assert_null(compile("[rule r]\n"));
    assert_non_null(strstr(err, "t.ini:1: rule r: match missing"));
}

static void never_matches(void **state)
{
    (void)state;
    refused("match", "ftp://a.org/", "can never match: not an http:// or https:// URL");
    refused("match", "a.org/x", "not an http");
    refused("match", "https://a*.org/", "a glob is only the host's first label");
    refused("match", "https://*.a.org/x*", "a glob is only");
    refused("match", "https://x.*.org/", "a glob is only");
    refused("match", "https://a.org/x?y=1", "no query nor fragment");
    refused("match", "https://a.org/x#top", "no query nor fragment");
    refused("match", "https://u@a.org/", "no user@");
    refused("match", "https://*.0.0.1/", "not an IP address");
    refused("match", "https://*.[::1]/", "can never match");
    refused("match", "https://a.org:99999/", "can never match: url has a port out of range");
    refused("match", "https:///x", "can never match: url has no host");
}

/* 10,000 rules, nested and on many hosts: each URL finds its own. */
static void ten_thousand(void **state)
{
    size_t size = 10000 * 80, used = 0;
    char *ini = malloc(size), url[128];
    struct rule_set *set;
    (void)state;
    for (int i = 0; i < 10000; i++)
        used += (size_t)snprintf(ini + used, size - used,
                                 i % 4 == 3 ? "[rule r%d]\nmatch = https://*.h%d.example.org/\n"
                                 : i % 2    ? "[rule r%d]\nmatch = https://h%d.example.org/p/\n"
                                            : "[rule r%d]\nmatch = https://h%d.example.org/\n",
                                 i, i / 2);
    set = compile(ini);
    assert_non_null(set);
    assert_int_equal(rules_count(set), 10000);
    for (int i = 0; i < 5000; i += 7) {
        char want[16];
        /* host i: r(2i) its root; r(2i+1) its /p/ for an even i, a glob over it for an odd */
        snprintf(url, sizeof(url), "https://h%d.example.org/p/file", i);
        snprintf(want, sizeof(want), "r%d", i % 2 ? 2 * i : 2 * i + 1);
        assert_string_equal(winner(set, url), want);
        snprintf(url, sizeof(url), "https://h%d.example.org/q", i);
        snprintf(want, sizeof(want), "r%d", 2 * i);
        assert_string_equal(winner(set, url), want);
        snprintf(url, sizeof(url), "https://x.h%d.example.org/q", i);
        snprintf(want, sizeof(want), "r%d", (i % 2) ? 2 * i + 1 : -1);
        assert_string_equal(winner(set, url), (i % 2) ? want : "");
    }
    rules_free(set);
    free(ini);
}

/* The terms of `url` (normal form) for a client ttl, under the rules installed. */
static struct fetch_terms decide(const char *url, int64_t client_ttl, bool shorter,
                                 const struct sockaddr *client)
{
    struct request_facts req = {.url = url,
                                .key = url,
                                .client = client,
                                .client_ttl = client_ttl,
                                .client_ttl_shorter = shorter};
    struct fetch_terms t;
    terms_decide(&cfg, &req, &t);
    return t;
}

static void install(const char *ini)
{
    struct rule_set *set = compile(ini);
    assert_non_null(set);
    rules_install(set);
}

/* A floor and a ceiling may be written apart by '-', "..", ',', ':' or blanks. */
static void client_ttl_spellings(void **state)
{
    static const char *const spellings[] = {"1h-30d", "1h..30d", "1h, 30d",
                                            "1h 30d", "1h:30d",  "1h - 30d"};
    char ini[128];
    (void)state;
    for (size_t i = 0; i < sizeof(spellings) / sizeof(spellings[0]); i++) {
        snprintf(ini, sizeof(ini), "[rule a]\nmatch = https://a.org/\nclient-ttl = %s\n",
                 spellings[i]);
        install(ini);
        assert_int_equal(decide("https://a.org/x", 1, false, NULL).object.ttl, 3600);
        assert_int_equal(decide("https://a.org/x", 90 * 86400, false, NULL).object.ttl, 30 * 86400);
    }
    refused("client-ttl", "30d-1h", "client-ttl");
    refused("client-ttl", "1h-", "client-ttl");
}

static void client_ttl_modes(void **state)
{
    struct fetch_terms t;
    (void)state;
    install("[arca]\ndefault-ttl = 2d\n"
            "[rule obey]\nmatch = https://a.org/obey/\nttl = 1h\n"
            "[rule ignore]\nmatch = https://a.org/ignore/\nttl = 1h\nclient-ttl = ignore\n"
            "[rule clamp]\nmatch = https://a.org/clamp/\nclient-ttl = 1h-30d\n"
            "[rule dots]\nmatch = https://a.org/dots/\nclient-ttl = 1m..2h\n");
    t = decide("https://a.org/obey/x", 60, false, NULL);
    assert_int_equal(t.object.ttl, 60);
    assert_int_equal(t.ttl_from, FROM_CLIENT);
    assert_int_equal(t.ttl_base, 3600);
    t = decide("https://a.org/obey/x", 0, false, NULL);
    assert_int_equal(t.object.ttl, 3600);
    assert_int_equal(t.ttl_from, FROM_RULE);
    assert_string_equal(t.rule, "obey");
    assert_string_equal(t.rule_file, "t.ini");
    assert_int_equal(t.rule_line, 3);
    t = decide("https://a.org/ignore/x", 60, false, NULL);
    assert_int_equal(t.object.ttl, 3600);
    assert_int_equal(t.client_ttl, CLIENT_TTL_IGNORE);
    t = decide("https://a.org/clamp/x", 60, false, NULL);
    assert_int_equal(t.object.ttl, 3600);
    assert_int_equal(t.ttl_from, FROM_RULE);
    t = decide("https://a.org/clamp/x", 100 * 86400, false, NULL);
    assert_int_equal(t.object.ttl, 30 * 86400);
    t = decide("https://a.org/clamp/x", 7200, false, NULL);
    assert_int_equal(t.object.ttl, 7200);
    assert_int_equal(t.ttl_from, FROM_CLIENT);
    t = decide("https://a.org/clamp/x", 0, false, NULL);
    assert_int_equal(t.object.ttl, 2 * 86400); /* --default-ttl: no ttl= to clamp */
    assert_int_equal(t.ttl_from, FROM_OPTION);
    t = decide("https://a.org/dots/x", 10, false, NULL);
    assert_int_equal(t.object.ttl, 60);
    /* a proxy's max-age only shortens */
    t = decide("https://a.org/obey/x", 7200, true, NULL);
    assert_int_equal(t.object.ttl, 3600);
    t = decide("https://a.org/obey/x", 600, true, NULL);
    assert_int_equal(t.object.ttl, 600);
    t = decide("https://a.org/clamp/x", 60, true, NULL);
    assert_int_equal(t.object.ttl, 3600); /* clamped up to 1h, no shorter than 2d: 1h */
}

/* A request's Cache-Control (a child's terms at its parent) acts as client-ttl lets a client's
 * word act, and never changes the object's ttl. */
static void request_bounds_as_client_ttl_lets_them(void **state)
{
    struct request_facts q = {.has_max_age = true, .max_age = 2, .no_store = true};
    struct fetch_terms t;
    (void)state;
    install("[rule obey]\nmatch = https://a.org/obey/\nttl = 1h\n"
            "[rule ignore]\nmatch = https://a.org/ignore/\nclient-ttl = ignore\n"
            "[rule clamp]\nmatch = https://a.org/clamp/\nclient-ttl = 1m-30d\n");
    q.url = q.key = "https://a.org/obey/x";
    terms_decide(&cfg, &q, &t);
    assert_true(t.object.has_max_age && t.object.asked_no_store);
    assert_int_equal(t.object.max_age, 2);
    assert_int_equal(t.object.ttl, 3600);
    q.url = q.key = "https://a.org/ignore/x";
    terms_decide(&cfg, &q, &t);
    assert_false(t.object.has_max_age || t.object.asked_no_store);
    q.url = q.key = "https://a.org/clamp/x";
    terms_decide(&cfg, &q, &t);
    assert_true(t.object.has_max_age);
    assert_int_equal(t.object.max_age, 60);
    assert_false(t.object.asked_no_store);
    t = decide("https://a.org/obey/x", 0, false, NULL); /* none asked */
    assert_false(t.object.has_max_age || t.object.asked_no_store);
}

static struct sockaddr_storage ip(const char *text)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    if (inet_pton(AF_INET, text, &((struct sockaddr_in *)&ss)->sin_addr) == 1)
        ss.ss_family = AF_INET;
    else if (inet_pton(AF_INET6, text, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1)
        ss.ss_family = AF_INET6;
    return ss;
}

static void allow_network(void **state)
{
    struct sockaddr_storage lab = ip("10.1.2.3"), out = ip("8.8.8.8"), v6 = ip("2001:db8::1");
    const struct sockaddr *l = (struct sockaddr *)&lab, *o = (struct sockaddr *)&out,
                          *s6 = (struct sockaddr *)&v6;
    (void)state;
    install("[rule private]\nmatch = https://a.org/private/\nallow-network = 10.0.0.0/8\n"
            "[rule open]\nmatch = https://a.org/open/\nallow-network = all\n"
            "[rule closed]\nmatch = https://a.org/closed/\nallow-network = none\n"
            "[rule two]\nmatch = https://a.org/two/\nallow-network = 192.168.0.0/16\n"
            "allow-network = 2001:db8::/32, 8.8.8.0/24\n");
    policy_init(&cfg); /* --allow-network's default: loopback and private networks */
    assert_true(decide("https://a.org/private/x", 0, false, l).allowed);
    assert_false(decide("https://a.org/private/x", 0, false, o).allowed);
    assert_int_equal(decide("https://a.org/private/x", 0, false, o).allowed_from, FROM_RULE);
    assert_true(decide("https://a.org/open/x", 0, false, o).allowed);
    assert_true(decide("https://a.org/open/x", 0, false, s6).allowed);
    assert_false(decide("https://a.org/closed/x", 0, false, l).allowed);
    assert_true(decide("https://a.org/closed/x", 0, false, NULL).allowed); /* arca's own */
    assert_true(decide("https://a.org/two/x", 0, false, s6).allowed);
    assert_true(decide("https://a.org/two/x", 0, false, o).allowed);
    assert_false(decide("https://a.org/two/x", 0, false, l).allowed);
    /* no rule: --allow-network */
    assert_true(decide("https://a.org/else", 0, false, l).allowed);
    assert_false(decide("https://a.org/else", 0, false, o).allowed);
    assert_int_equal(decide("https://a.org/else", 0, false, o).allowed_from, FROM_OPTION);
}

/* fold_url: the spellings an origin may take for one file, folded. */
static void folded(void **state)
{
    static const char *const cases[][2] = {
        {"https://a.org/priv%61te/x", "https://a.org/private/x"},
        {"https://a.org//private///x", "https://a.org/private/x"},
        {"https://a.org./private/x", "https://a.org/private/x"},
        {"https://a.org..:8443/x", "https://a.org:8443/x"},
        {"https://a.org/a/%2E%2E/private/x", "https://a.org/private/x"},
        /* %2F and %5C as '/' (S3's keys, file servers), not the query's */
        {"https://a.org/a%2Fb?q=%61//", "https://a.org/a/b?q=%61//"},
        {"https://a.org/pub/..%2Fprivate/k", "https://a.org/private/k"},
        {"https://a.org/pub/..%5cprivate/k", "https://a.org/private/k"},
        /* an IP literal in its one spelling */
        {"http://127.1/private/k", "http://127.0.0.1/private/k"},
        {"http://2130706433:8080/k", "http://127.0.0.1:8080/k"},
        {"http://0x7f.0.0.1/k", "http://127.0.0.1/k"},
        {"http://127.000.000.001/k", "http://127.0.0.1/k"},
        {"http://[0:0::1]:18090/k", "http://[::1]:18090/k"},
        /* the second review's: mapped and translated forms as the IPv4 address they reach, a
         * zone, a literal of any length, final dots before the address is read */
        {"http://[::ffff:127.0.0.1]:18555/k", "http://127.0.0.1:18555/k"},
        {"http://[::ffff:7f00:1]/k", "http://127.0.0.1/k"},
        {"http://[64:ff9b::7f00:1]/k", "http://127.0.0.1/k"},
        {"http://[::1%25lo]:18555/k", "http://[::1]:18555/k"},
        {"http://"
         "127.0000000000000000000000000000000000000000000000000000000000000000000000.0.1:18555/k",
         "http://127.0.0.1:18555/k"},
        {"http://1.../x", "http://0.0.0.1/x"},
        {"http://127.1./x", "http://127.0.0.1/x"},
        {"http://127.0.0.1/k", NULL},
        {"http://cafe.be/k", NULL}, /* hex letters, no address */
        /* the host follows the userinfo, whose ':' is no port's */
        {"https://u:p@fw.example./private/k", "https://u:p@fw.example/private/k"},
        {"https://a.org/private/x", NULL}, /* nothing to fold: nothing allocated */
        {"https://[::1]:8080//x", "https://[::1]:8080/x"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int failed;
        char *got = fold_url(cases[i][0], &failed);
        assert_int_equal(failed, 0);
        if (cases[i][1])
            assert_string_equal(got, cases[i][1]);
        else
            assert_null(got);
        free(got);
    }
}

/* A rule that narrows who may fetch holds for every spelling of its URLs that folds into its
 * prefix; one that widens opens only URLs whose spellings it covers all. */
static void allow_network_across_spellings(void **state)
{
    struct sockaddr_storage lab = ip("10.1.2.3"), lo = ip("127.0.0.1");
    const struct sockaddr *l = (struct sockaddr *)&lab, *me = (struct sockaddr *)&lo;
    struct fetch_terms t;
    (void)state;
    install("[rule firmware]\nmatch = https://fw.org/private/\nallow-network = 10.0.0.0/8\n"
            "[rule public]\nmatch = https://fw.org/public/\nallow-network = all\n");
    policy_init(&cfg);
    static const char *const private[] = {"https://fw.org/priv%61te/x", "https://fw.org//private/x",
                                          "https://fw.org./private/x",
                                          "https://fw.org/public/%2E%2E/private/x"};
    for (size_t i = 0; i < sizeof(private) / sizeof(private[0]); i++) {
        t = decide(private[i], 0, false, me);
        assert_false(t.allowed);
        assert_int_equal(t.allowed_from, FROM_RULE);
        assert_string_equal(t.allowed_rule, "firmware");
        assert_true(decide(private[i], 0, false, l).allowed);
    }
    assert_true(decide("https://fw.org/public//x", 0, false, me).allowed);
    assert_true(decide("https://fw.org/elsewhere//x", 0, false, me).allowed);
    /* the outside review's: %2F, an IP literal's other spellings, a match written with %2F */
    install("[rule v4]\nmatch = http://127.0.0.1:18090/private/\nallow-network = 10.0.0.0/8\n"
            "[rule v6]\nmatch = http://[0:0::1]/private/\nallow-network = 10.0.0.0/8\n"
            "[rule key]\nmatch = https://s3.lab/bucket/a%2Fb/\nallow-network = 10.0.0.0/8\n"
            "[rule pub]\nmatch = http://127.0.0.1:18090/pub/\nallow-network = all\n");
    static const char *const around[] = {"http://127.0.0.1:18090/private%2Fk",
                                         "http://127.0.0.1:18090/pub/..%2Fprivate/k",
                                         "http://127.1:18090/private/k",
                                         "http://2130706433:18090/private/k",
                                         "http://0x7f.0.0.1:18090/private/k",
                                         "http://127.000.000.001:18090/private/k",
                                         "http://[::1]/private/k",
                                         "https://s3.lab/bucket/a/b/k",
                                         "http://u:p@127.0.0.1:18090/private/k"};
    for (size_t i = 0; i < sizeof(around) / sizeof(around[0]); i++) {
        t = decide(around[i], 0, false, me);
        if (t.allowed)
            fail_msg("%s: allowed", around[i]);
        assert_true(decide(around[i], 0, false, l).allowed);
    }
    assert_true(decide("http://127.0.0.1:18090/pub/k", 0, false, me).allowed);
    assert_null(compile("[rule a]\nmatch = http://[::1]/x/\nallow-network = none\n"
                        "[rule b]\nmatch = http://[0:0::1]/x/\n"));
    assert_non_null(strstr(err, "the same match as rule a"));
}

/* A redirect keeps its URL's who-may-fetch, and a tunnel may not pass a rule's networks (the
 * outside review's first and third findings). */
static void redirects_and_tunnels(void **state)
{
    struct sockaddr_storage lab = ip("10.1.2.3"), lo = ip("127.0.0.1");
    const struct sockaddr *l = (struct sockaddr *)&lab, *me = (struct sockaddr *)&lo;
    char why[256];
    (void)state;
    install("[rule nightly]\nmatch = http://127.0.0.1:8000/nightly/\nttl = 1h\n");
    /* no rule names networks: any redirect, any tunnel */
    assert_true(terms_same_access("http://127.0.0.1:8000/a", "http://127.0.0.1:8000/b", why, 256));
    assert_true(terms_tunnel_allowed("127.0.0.1", 8000, me, why, sizeof(why)));
    install("[rule private]\nmatch = http://127.0.0.1:8000/private/\nallow-network = 10.0.0.0/8\n"
            "[rule fw]\nmatch = https://*.fw.example/\nallow-network = 10.0.0.0/8\n");
    assert_false(terms_same_access("http://127.0.0.1:8000/go", "http://127.0.0.1:8000/private/k",
                                   why, sizeof(why)));
    assert_non_null(strstr(why, "under rule private's allow-network: not followed"));
    assert_false(terms_same_access("http://127.0.0.1:8000/private/k", "http://127.0.0.1:8000/x",
                                   why, sizeof(why))); /* out of it too */
    assert_false(terms_same_access("http://127.0.0.1:8000/go", "http://127.1:8000/priv%61te/k", why,
                                   sizeof(why)));
    assert_true(terms_same_access("http://127.0.0.1:8000/private/a",
                                  "http://127.0.0.1:8000/private/b", why, sizeof(why)));
    assert_true(terms_same_access("http://127.0.0.1:8000/a", "http://127.0.0.1:8000/b", why, 256));
    for (int i = 0; i < 4; i++) {
        static const char *const hosts[] = {"127.0.0.1", "127.1", "::ffff:127.0.0.1",
                                            "a.fw.example"};
        int port = i < 3 ? 8000 : 443;
        assert_false(terms_tunnel_allowed(hosts[i], port, me, why, sizeof(why)));
        assert_true(terms_tunnel_allowed(hosts[i], port, l, why, sizeof(why)));
    }
    assert_true(terms_tunnel_allowed("127.0.0.1", 8001, me, why, sizeof(why)));
    assert_true(terms_tunnel_allowed("fw.example", 443, me, why, sizeof(why))); /* not *. */
}

/* A redirect's target is shown and recorded without its query (a CDN's signature under any
 * name), but for a query carrying a URL: who may fetch is judged on what it carries. */
static void hops_shown(void **state)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"https://cdn.example/b/x?verify=1700000000-abc&Expires=1",
         "https://cdn.example/b/x?REDACTED"},
        {"https://cdn.example/b/x", "https://cdn.example/b/x"},
        {"http://c:8000/api/v1/fetch/?url=http://o/private/k&sig=s",
         "http://c:8000/api/v1/fetch/?url=http://o/private/k&sig=REDACTED"},
        {"http://c/x?u=http%253A%252F%252Fo%252Fp", "http://c/x?u=http%253A%252F%252Fo%252Fp"},
        /* beside a carried URL, a signature of any name goes: only what carries one stays */
        {"https://cdn/b?md5=S1&e=17;h&src=http%3A%2F%2Fo%2Fb#frag",
         "https://cdn/b?md5=REDACTED&e=REDACTED;REDACTED&src=http%3A%2F%2Fo%2Fb"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *shown = terms_hop_shown(cases[i].in);
        assert_non_null(shown);
        assert_string_equal(shown, cases[i].out);
        free(shown);
    }
}

/* A cached object's redirects are judged for each client under the rules in force: one whose
 * networks leave the client out refuses it the object, as a download's redirect is refused. */
static void hops_for_each_client(void **state)
{
    struct sockaddr_storage lab = ip("10.1.2.3"), lo = ip("127.0.0.1");
    const struct sockaddr *l = (struct sockaddr *)&lab, *me = (struct sockaddr *)&lo;
    const char *hops = "http://127.0.0.1:8000/a\nhttp://127.0.0.1:8000/private/k";
    char why[256];
    (void)state;
    install("[rule nightly]\nmatch = http://127.0.0.1:8000/nightly/\nttl = 1h\n");
    assert_true(terms_hops_allowed(hops, me, why, sizeof(why))); /* --allow-network let it in */
    install("[rule private]\nmatch = http://127.0.0.1:8000/private/\nallow-network = 10.0.0.0/8\n");
    policy_init(&cfg); /* --allow-network's default decides /a: loopback and private networks */
    assert_true(terms_hops_allowed(hops, l, why, sizeof(why)));
    assert_true(terms_hops_allowed(hops, NULL, why, sizeof(why))); /* arca's own */
    assert_true(terms_hops_allowed("", me, why, sizeof(why)));
    assert_false(terms_hops_allowed(hops, me, why, sizeof(why)));
    assert_string_equal(why, "redirected to http://127.0.0.1:8000/private/k, under rule private's "
                             "allow-network: not followed");
    assert_false(terms_hops_allowed("http://127.1:8000/priv%61te/k", me, why, sizeof(why)));
    assert_non_null(strstr(why, "under rule private's allow-network"));
    assert_false(terms_hops_allowed("(a redirect arca could not record)", l, why, sizeof(why)));
    assert_non_null(strstr(why, "where another allow-network decides: not followed"));
}

static void terms_without_rules_are_the_options(void **state)
{
    struct fetch_terms t;
    (void)state;
    install("[arca]\ndefault-ttl = 3h\nstale-if-error = 2h\nstale-while-revalidate = 5m\n"
            "max-object-size = 1G\nfill-connections = 3\nfill-min-size = 8M\n");
    const struct rule_set *set = rules_current();
    assert_int_equal(rules_count(set), 0);
    rules_put(set);
    t = decide("https://a.org/x", 0, false, NULL);
    assert_string_equal(t.rule, "");
    assert_int_equal(t.rule_line, 0);
    assert_int_equal(t.object.ttl, 3 * 3600);
    assert_int_equal(t.ttl_from, FROM_OPTION);
    /* the options' windows are the store's own (-1): SIGHUP changes them for every object */
    assert_int_equal(t.object.stale_if_error, -1);
    assert_int_equal(t.object.stale_while_revalidate, -1);
    assert_int_equal(t.object.max_object_size, 1LL << 30);
    assert_true(t.object.store);
    assert_false(t.object.pin);
    assert_int_equal(t.fill_connections, 3);
    assert_int_equal(t.fill_min_size, 8LL << 20);
    assert_int_equal(t.client_ttl, CLIENT_TTL_OBEY);
    assert_int_equal(t.sources.mirror_rule, -1);
    assert_int_equal(t.sources.n_mirrors, 0);
    t = decide("https://a.org/x", 120, false, NULL);
    assert_int_equal(t.object.ttl, 120); /* ttl= as today */
    /* a SIGHUP's stale windows are the store's: the terms leave them to it, whatever cfg says */
    __atomic_store_n(&cfg.stale_if_error, 7, __ATOMIC_RELAXED);
    assert_int_equal(decide("https://a.org/x", 0, false, NULL).object.stale_if_error, -1);
}

static void terms_from_a_rule(void **state)
{
    struct fetch_terms t;
    (void)state;
    install("[rule all]\nmatch = https://a.org/\nttl = 10m\nstore = off\npin = yes\n"
            "stale-if-error = 0\nstale-while-revalidate = 1h\nmax-object-size = 2M\n"
            "fill-connections = 16\n");
    t = decide("https://a.org/x", 0, false, NULL);
    assert_int_equal(t.object.ttl, 600);
    assert_false(t.object.store);
    assert_true(t.object.pin);
    assert_int_equal(t.object.stale_if_error, 0);
    assert_int_equal(t.object.stale_while_revalidate, 3600);
    assert_int_equal(t.object.max_object_size, 2LL << 20);
    assert_int_equal(t.fill_connections, 16);
    assert_int_equal(t.fill_min_size, cfg.fill_min_size);
    assert_int_equal(t.store_from, FROM_RULE);
    assert_int_equal(t.fill_from, FROM_RULE);
    assert_string_equal(terms_from_name(t.pin_from), "rule");
    assert_string_equal(terms_from_name(FROM_BUILTIN), "built-in");
}

static void mirrors(void **state)
{
    struct fetch_terms t;
    char *m;
    (void)state;
    install("[arca]\nmirror = https://dl\\.example\\.org/=https://m1.lab/,https://m2.lab/pub/\n");
    assert_int_equal(sources_init(&cfg, err, sizeof(err)), 0);
    t = decide("https://dl.example.org/f.img", 0, false, NULL);
    assert_int_equal(t.sources.mirror_rule, 0);
    assert_int_equal(t.sources.n_mirrors, 2);
    assert_false(t.sources.origin_first);
    m = terms_source_url(&cfg, &t, "https://dl.example.org/f.img", 1);
    assert_string_equal(m, "https://m2.lab/pub/f.img");
    free(m);
    assert_null(terms_source_url(&cfg, &t, "https://dl.example.org/f.img", 2));
    t = decide("https://u:p@dl.example.org/f.img?X-Amz-Signature=s&X-Amz-Date=1&token=t&v=1", 0,
               false, NULL);
    assert_true(t.sources.origin_first);
    m = terms_source_url(&cfg, &t,
                         "https://u:p@dl.example.org/f.img?X-Amz-Signature=s&X-Amz-Date=1"
                         "&token=t&v=1",
                         0);
    assert_string_equal(m, "https://m1.lab/f.img?v=1");
    free(m);
    t = decide("https://other.org/f.img", 0, false, NULL);
    assert_int_equal(t.sources.mirror_rule, -1);
    sources_cleanup();
}

static void explain(void **state)
{
    json_t *a;
    struct sockaddr_storage lab = ip("10.1.2.3");
    (void)state;
    install("[rule wide]\nmatch = https://*.org/\n"
            "[rule site]\nmatch = https://a.org/\nttl = 1h\nallow-network = 10.0.0.0/8\n"
            "client-ttl = 90m..30d\n");
    policy_init(&cfg);
    a = rules_explain(&cfg, "https://A.org/x?token=secret", (struct sockaddr *)&lab, err);
    assert_non_null(a);
    assert_string_equal(json_string_value(json_object_get(a, "url")),
                        "https://a.org/x?token=REDACTED");
    assert_string_equal(json_string_value(json_object_get(json_object_get(a, "rule"), "name")),
                        "site");
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_object_get(a, "terms"), "ttl"), "from")),
                        "rule site");
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_object_get(a, "terms"), "client-ttl"), "value")),
                        "90m-30d");
    assert_true(json_is_true(json_object_get(a, "allowed")));
    assert_int_equal(json_array_size(json_object_get(a, "losers")), 1);
    assert_int_equal(json_array_size(json_object_get(a, "sources")), 1);
    json_decref(a);
    assert_null(rules_explain(&cfg, "not a url", NULL, err));
    assert_string_equal(err, "url must be an absolute http:// or https:// URL");
}

/* A reader's set outlives the SIGHUP that replaces it, and goes with its last reference
 * (valgrind: neither freed early nor kept). */
static void install_under_a_reader(void **state)
{
    const struct rule_set *held;
    (void)state;
    install("[rule old]\nmatch = https://a.org/\n");
    held = rules_current();
    install("[rule new]\nmatch = https://a.org/\n");
    assert_string_equal(rules_match(held, "https://a.org/x")->name, "old");
    rules_put(held);
    held = rules_current();
    assert_string_equal(rules_match(held, "https://a.org/x")->name, "new");
    rules_put(held);
}

/* Without a client, the networks that may fetch are listed: the rule's, else the option's. */
static void explain_networks(void **state)
{
    json_t *a;
    (void)state;
    install("[arca]\nallow-network = 192.168.0.0/16\n"
            "[rule closed]\nmatch = https://a.org/closed/\nallow-network = none\n"
            "[rule lab]\nmatch = https://a.org/lab/\nallow-network = 10.0.0.0/8,fd00::/8\n");
    policy_init(&cfg);
    a = rules_explain(&cfg, "https://a.org/lab/x", NULL, err);
    assert_true(json_is_null(json_object_get(a, "allowed")));
    assert_int_equal(json_array_size(json_object_get(a, "networks")), 2);
    assert_string_equal(json_string_value(json_array_get(json_object_get(a, "networks"), 1)),
                        "fd00::/8");
    assert_string_equal(json_string_value(json_object_get(a, "allowed_from")), "rule lab");
    json_decref(a);
    a = rules_explain(&cfg, "https://a.org/closed/x", NULL, err);
    assert_int_equal(json_array_size(json_object_get(a, "networks")), 0);
    json_decref(a);
    a = rules_explain(&cfg, "https://a.org/else", NULL, err);
    assert_string_equal(json_string_value(json_array_get(json_object_get(a, "networks"), 0)),
                        "192.168.0.0/16");
    assert_string_equal(json_string_value(json_object_get(a, "allowed_from")), "--allow-network");
    assert_true(json_is_null(json_object_get(a, "rule")));
    json_decref(a);
}

/* A struct config loaded, freed and loaded again (SIGHUP's `fresh`) keeps nothing of before. */
static void config_reload(void **state)
{
    (void)state;
    assert_int_equal(load("[rule a]\nmatch = https://a.org/\n"), 0);
    assert_int_equal(cfg.n_rules, 1);
    assert_int_equal(load("[rule b]\nmatch = https://b.org/\n[rule c]\nmatch = https://c.org/\n"),
                     0);
    assert_int_equal(cfg.n_rules, 2);
    assert_string_equal(cfg.rules[1].name, "c");
    assert_int_equal(cfg.rules[1].line, 3);
    assert_int_equal(cfg.rules[1].keys[0].line, 4);
    config_free(&cfg);
    config_free(&cfg);
    assert_int_equal(cfg.n_rules, 0);
    assert_null(cfg.rules);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(precedence_longest_prefix),
        cmocka_unit_test(precedence_named_and_globs),
        cmocka_unit_test(hosts),
        cmocka_unit_test(escapes_and_dot_segments),
        cmocka_unit_test(ports),
        cmocka_unit_test(many_names),
        cmocka_unit_test(duplicates_and_names),
        cmocka_unit_test(unknown_key),
        cmocka_unit_test(bad_values),
        cmocka_unit_test(never_matches),
        cmocka_unit_test(ten_thousand),
        cmocka_unit_test(client_ttl_modes),
        cmocka_unit_test(request_bounds_as_client_ttl_lets_them),
        cmocka_unit_test(allow_network),
        cmocka_unit_test(terms_without_rules_are_the_options),
        cmocka_unit_test(terms_from_a_rule),
        cmocka_unit_test(mirrors),
        cmocka_unit_test(explain),
        cmocka_unit_test(install_under_a_reader),
        cmocka_unit_test(explain_networks),
        cmocka_unit_test(folded),
        cmocka_unit_test(client_ttl_spellings),
        cmocka_unit_test(redirects_and_tunnels),
        cmocka_unit_test(hops_shown),
        cmocka_unit_test(hops_for_each_client),
        cmocka_unit_test(allow_network_across_spellings),
        cmocka_unit_test(config_reload),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    config_free(&cfg);
    return rc;
}
