/* arca rules test [--config FILE] [--client ADDR] [--json] [serve options] URL|IMAGE: the rule
 * that applies to URL (an image reference: its manifest's upstream URL) and every term with
 * where it came from, as serving decides them (explain.h).
 * The configuration is loaded as serve and check-config load it; nothing is started. */
#include "cli/cli_rules.h"
#include "rules/explain.h"
#include "rules/policy.h"
#include "rules/rules.h"
#include "config/config.h"
#include "registry/registries.h"
#include "registry/reg_ref.h"
#include "remote/remotes.h"
#include "url/url.h"
#include "base/parse.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RULES_USAGE                                                                                \
    "usage: arca rules test [--config FILE] [--client ADDR] [--json] [serve options] URL|IMAGE"

static int usage(const char *why)
{
    if (why)
        fprintf(stderr, "arca: %s\n", why);
    fprintf(stderr, "%s\n", RULES_USAGE);
    return 2;
}

/* The options of `rules test` besides serve's: --client ADDR (or =ADDR), --json. */
struct rules_args {
    const char *client, *url;
    bool json;
    char **serve_argv; /* "arca", "serve", then serve's options */
    int serve_argc;
};

static int parse(int argc, char **argv, struct rules_args *a)
{
    a->serve_argv[a->serve_argc++] = argv[0];
    a->serve_argv[a->serve_argc++] = "serve";
    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            puts(RULES_USAGE);
            return 1;
        } else if (!strcmp(argv[i], "--json")) {
            a->json = true;
        } else if (!strcmp(argv[i], "--client") && i + 1 < argc) {
            a->client = argv[++i];
        } else if (!strncmp(argv[i], "--client=", 9)) {
            a->client = argv[i] + 9;
        } else if (!strcmp(argv[i], "--client")) {
            return usage("--client needs an address");
        } else if (i == argc - 1 && argv[i][0] != '-') {
            a->url = argv[i];
        } else {
            a->serve_argv[a->serve_argc++] = argv[i];
        }
    }
    a->serve_argv[a->serve_argc] = NULL;
    return a->url ? 0 : usage("rules test needs a URL, last");
}

/* A number of seconds or bytes as the options write it: 1d, 6h, 64M; "0" for none. */
static void amount(json_int_t n, bool bytes, char *out, size_t size)
{
    static const struct {
        const char *suffix;
        json_int_t unit;
    } seconds[] = {{"d", 86400}, {"h", 3600}, {"m", 60}, {"s", 1}},
      sizes[] = {{"T", 1LL << 40}, {"G", 1LL << 30}, {"M", 1LL << 20}, {"K", 1LL << 10}, {"", 1}};
    size_t count = bytes ? sizeof(sizes) / sizeof(sizes[0]) : sizeof(seconds) / sizeof(seconds[0]);
    for (size_t i = 0; n > 0 && i < count; i++) {
        json_int_t unit = bytes ? sizes[i].unit : seconds[i].unit;
        if (n % unit == 0) {
            snprintf(out, size, "%lld%s", (long long)(n / unit),
                     bytes ? sizes[i].suffix : seconds[i].suffix);
            return;
        }
    }
    snprintf(out, size, "%lld", (long long)n);
}

static const char *str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

/* One term's line: name, value as written in the INI file, where it came from. */
static void print_term(const char *name, json_t *term)
{
    json_t *v = json_object_get(term, "value");
    const char *note = str(term, "note");
    char text[64];
    bool bytes = strstr(name, "size") != NULL;
    if (json_is_boolean(v))
        snprintf(text, sizeof(text), "%s", json_is_true(v) ? "yes" : "no");
    else if (json_is_string(v))
        snprintf(text, sizeof(text), "%s", json_string_value(v));
    else if (json_is_null(v)) /* outgoing-address: none, the kernel's choice */
        snprintf(text, sizeof(text), "none");
    else if (!strcmp(name, "fill-connections"))
        snprintf(text, sizeof(text), "%lld", (long long)json_integer_value(v));
    else
        amount(json_integer_value(v), bytes, text, sizeof(text));
    printf("  %-24s %-12s %s%s%s%s\n", name, text, str(term, "from"), *note ? " (" : "", note,
           *note ? ")" : "");
}

static void print_rule(const char *label, json_t *r)
{
    printf("%-10s %s (%s:%lld) match %s\n", label, str(r, "name"), str(r, "file"),
           (long long)json_integer_value(json_object_get(r, "line")), str(r, "match"));
}

static void print_who(json_t *a)
{
    json_t *nets = json_object_get(a, "networks"), *net;
    size_t i;
    if (!json_is_null(json_object_get(a, "allowed"))) {
        printf("%-10s %s: %s (%s)\n", "client", str(a, "client"),
               json_is_true(json_object_get(a, "allowed")) ? "may fetch" : "may not fetch",
               str(a, "allowed_from"));
        return;
    }
    printf("%-10s", "may fetch");
    json_array_foreach(nets, i, net) printf("%s %s", i ? "," : "", json_string_value(net));
    printf("%s (%s%s)\n", json_array_size(nets) ? "" : " nobody", str(a, "allowed_from"),
           json_is_true(json_object_get(a, "networks_default")) ? "'s default" : "");
}

/* No rule applies: say whether any was read, so that a forgotten --config is seen. */
static void print_none(json_t *a)
{
    json_int_t n = json_integer_value(json_object_get(a, "rules_in_force"));
    json_t *file = json_object_get(a, "config_file");
    if (n == 1)
        printf("%-10s none: the one rule read does not match; the options apply\n", "rule");
    else if (n > 1)
        printf("%-10s none: none of the %lld rules read matches; the options apply\n", "rule",
               (long long)n);
    else if (json_is_string(file))
        printf("%-10s none: %s has no [rule NAME] section; the options apply\n", "rule",
               json_string_value(file));
    else
        printf("%-10s none: no rules read (no --config FILE given); the options apply\n", "rule");
}

static void print_text(json_t *a)
{
    static const char *const order[] = {
        "ttl",           "client-ttl", "stale-if-error",   "stale-while-revalidate",
        "store",         "pin",        "max-object-size",  "fill-connections",
        "fill-min-size", "parent",     "outgoing-address", "negative-ttl"};
    json_t *terms = json_object_get(a, "terms"), *rule = json_object_get(a, "rule"), *item;
    size_t i;
    printf("%-10s %s\n%-10s %s\n", "url", str(a, "url"), "key", str(a, "key"));
    if (json_is_object(json_object_get(a, "remote"))) {
        json_t *r = json_object_get(a, "remote");
        printf("%-10s %s (kind %s): %s\n", "remote", str(r, "name"), str(r, "kind"),
               str(r, "class"));
    }
    if (json_is_object(rule))
        print_rule("rule", rule);
    else
        print_none(a);
    printf("terms\n");
    for (i = 0; i < sizeof(order) / sizeof(order[0]); i++)
        print_term(order[i], json_object_get(terms, order[i]));
    print_who(a);
    printf("sources%s\n", json_is_true(json_object_get(a, "origin_first"))
                              ? " (the URL carries credentials: the origin accepts it first)"
                              : "");
    json_array_foreach(json_object_get(a, "sources"), i, item)
        printf("  %zu. %-7s %s (sent %s%s%s)\n", i + 1, str(item, "kind"), str(item, "url"),
               str(item, "sent"), json_object_get(item, "from") ? "; " : "",
               json_object_get(item, "from") ? str(item, "from") : "");
    json_array_foreach(json_object_get(a, "losers"), i, item) print_rule(i ? "" : "losers", item);
}

/* An image reference (docker.io/library/debian:12, lab/x@sha256:..., debian) stands for its
 * manifest's upstream URL, which the rules match; a URL (a scheme, as parse_url reads one) is
 * given as it is (a remote's path on arca: rules_explain reads it, remote_path_url). */
static const char *image_url_of(const struct config *cfg, const char *arg, char *out, size_t size,
                                char *err)
{
    /* the registries are known for a URL too: a tag's URL has --registry-tag-ttl, as serve
     * gives it, not --default-ttl */
    if (registries_init(cfg, err, CONFIG_ERR_LEN) < 0 || remotes_init(cfg, err, CONFIG_ERR_LEN) < 0)
        return NULL;
    struct url_parts u;
    if (parse_url(arg, strlen(arg), &u) != URL_NO_SCHEME) /* a URL, or one with a bad scheme */
        return arg;
    struct registry_ask image;
    if (reg_ref_parse(arg, &image, err, CONFIG_ERR_LEN) != REG_OK)
        return NULL;
    if (!reg_ref_url(&image, out, size)) {
        snprintf(err, CONFIG_ERR_LEN, "image reference too long");
        return NULL;
    }
    return out;
}

/* Whether config_load()'s refusal `err` is about the command line's words rather than a value:
 * an option serve does not know, or one left without its value. A file's lines are said with
 * FILE:LINE first, and a bad value is a configuration serve would refuse (1, as check-config). */
static bool command_line_misuse(const char *err)
{
    return !strncmp(err, "unknown option '-", 17) ||
           (err[0] == '-' && strstr(err, " needs a value") != NULL);
}

/* Load, compile, explain: 0, 1 for a configuration serve would refuse, 2 for bad usage. */
static int rules_test(struct rules_args *a)
{
    static struct config cfg;
    char err[CONFIG_ERR_LEN];
    struct sockaddr_storage ss;
    struct rule_set *set;
    json_t *answer;
    if (a->client && parse_ip_address(a->client, &ss) < 0)
        return usage("--client: expected an IPv4 or IPv6 address");
    if (config_load(&cfg, a->serve_argc, a->serve_argv, err) != CONFIG_SERVE ||
        !(set = rules_compile(&cfg, err)) || sources_init(&cfg, err, sizeof(err)) < 0) {
        /* a word left before the URL is read as serve's, which takes no words: bad usage */
        bool word = strstr(err, "unexpected argument") != NULL;
        fprintf(stderr, "arca: %s%s\n", err, word ? " (rules test takes one URL, last)" : "");
        config_free(&cfg);
        return word || command_line_misuse(err) ? 2 : 1;
    }
    policy_init(&cfg);
    rules_install(set);
    char image_url[1024];
    const char *url = image_url_of(&cfg, a->url, image_url, sizeof(image_url), err);
    answer = url ? rules_explain(&cfg, url, a->client ? (struct sockaddr *)&ss : NULL, err) : NULL;
    if (!answer) {
        fprintf(stderr, "arca: %s\n", err);
    } else if (a->json) {
        char *text = json_dumps(answer, JSON_INDENT(2));
        if (text)
            puts(text);
        free(text);
    } else {
        print_text(answer);
    }
    json_decref(answer);
    sources_cleanup();
    config_free(&cfg);
    return answer ? 0 : 2;
}

int cli_rules_main(int argc, char **argv)
{
    struct rules_args a = {0};
    int rc;
    if (argc < 3 || strcmp(argv[2], "test") != 0)
        return usage(argc < 3 ? NULL : "rules: the one subcommand is test");
    if (!(a.serve_argv = calloc((size_t)argc + 2, sizeof(*a.serve_argv))))
        return 1;
    rc = parse(argc, argv, &a);
    if (rc == 0)
        rc = rules_test(&a);
    else if (rc == 1) /* --help */
        rc = 0;
    free(a.serve_argv);
    return rc;
}
