/* rules_compile (rules.h): each [rule NAME] section's values checked and its match put in the
 * normal form URLs are matched in; then the table (rules.c). Every refusal is one line,
 * "FILE:LINE: rule NAME: why", at the line of the key at fault. */
#include "rules/rules.h"
#include "rules/rules_internal.h"
#include "url/fold.h"
#include "base/parse.h"
#include "url/url.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* What compiling one rule needs besides the rule: the set's networks, handed out in turn. */
struct compiling {
    const struct config_rule *cr;
    struct rule *r;
    struct cidr *nets;
    size_t nets_used;
    const struct config_rule_key *cert, *key; /* the rule's parent-cert and parent-key (NULL) */
    char *err;
};

__attribute__((format(printf, 3, 4))) static int refuse(struct compiling *c, int line,
                                                        const char *fmt, ...)
{
    va_list ap;
    int n =
        snprintf(c->err, CONFIG_ERR_LEN, "%.100s:%d: rule %s: ", c->cr->file, line, c->cr->name);
    va_start(ap, fmt);
    if (n >= 0 && n < CONFIG_ERR_LEN)
        vsnprintf(c->err + n, CONFIG_ERR_LEN - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

/* "0", "0s", "00d": none of a duration. */
static bool zero_duration(const char *v)
{
    size_t zeros = strspn(v, "0");
    return zeros > 0 && (!v[zeros] || (strchr("dhms", v[zeros]) && !v[zeros + 1]));
}

/* A duration as the options take one, 1s..36500d (and 0 when `zero`). */
static int duration(struct compiling *c, const struct config_rule_key *k, bool zero, int64_t *out)
{
    if (zero && zero_duration(k->value)) {
        *out = 0;
        return 0;
    }
    if (parse_seconds(k->value, out) < 0)
        return refuse(c, k->line, "%s: expected <int>d|h|m|s%s, got '%.60s'", k->key,
                      zero ? " or 0" : ", positive", k->value);
    if (*out > TTL_MAX)
        return refuse(c, k->line, "%s: '%.60s' is out of range (1s..36500d)", k->key, k->value);
    return 0;
}

/* A negative answer is kept briefly: 0 (never) up to NEGATIVE_TTL_MAX, as --negative-ttl. */
static int negative_ttl(struct compiling *c, const struct config_rule_key *k, int64_t *out)
{
    if (duration(c, k, true, out) < 0)
        return -1;
    if (*out > NEGATIVE_TTL_MAX)
        return refuse(c, k->line, "negative-ttl: '%.60s' is out of range (0..1d)", k->value);
    return 0;
}

static int size_value(struct compiling *c, const struct config_rule_key *k, int64_t *out)
{
    if (parse_size(k->value, out) < 0)
        return refuse(c, k->line, "%s: expected <int>[K|M|G|T], positive, got '%.60s'", k->key,
                      k->value);
    return 0;
}

static int yes_no(struct compiling *c, const struct config_rule_key *k, bool *out)
{
    static const char *const words[][2] = {
        {"no", "yes"}, {"false", "true"}, {"off", "on"}, {"0", "1"}};
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        for (int on = 0; on < 2; on++) {
            if (!strcasecmp(k->value, words[i][on])) {
                *out = on == 1;
                return 0;
            }
        }
    }
    return refuse(c, k->line, "%s: expected yes or no (true/false, on/off, 1/0), got '%.60s'",
                  k->key, k->value);
}

/* obey, ignore, or MIN and MAX (each a duration, MIN <= MAX) apart by '-', "..", ',', ':' or
 * blanks: 1h-30d, 1h..30d, "1h, 30d". */
static int client_ttl(struct compiling *c, const struct config_rule_key *k)
{
    struct rule *r = c->r;
    const char *v = k->value, *dots = strstr(v, "..");
    size_t len = dots ? (size_t)(dots - v) : strcspn(v, "-,: \t");
    const char *rest = dots ? dots + 2 : v[len] ? v + len + 1 : NULL;
    char min[32], max[32];
    r->has_client_ttl = true;
    if (!strcasecmp(v, "obey") || !strcasecmp(v, "ignore")) {
        r->client_ttl = !strcasecmp(v, "obey") ? CLIENT_TTL_OBEY : CLIENT_TTL_IGNORE;
        return 0;
    }
    r->client_ttl = CLIENT_TTL_CLAMP;
    if (rest)
        rest += strspn(rest, "-,: \t");
    if (rest && len < sizeof(min) && strlen(rest) < sizeof(max)) {
        snprintf(min, sizeof(min), "%.*s", (int)len, v);
        snprintf(max, sizeof(max), "%s", rest);
        if (parse_seconds(min, &r->client_ttl_min) == 0 &&
            parse_seconds(max, &r->client_ttl_max) == 0 && r->client_ttl_max <= TTL_MAX &&
            r->client_ttl_min <= r->client_ttl_max)
            return 0;
    }
    return refuse(c, k->line,
                  "client-ttl: expected obey, ignore or MIN-MAX (durations, MIN <= MAX, such as "
                  "1h-30d), got '%.60s'",
                  v);
}

/* One network, or "all" (every IPv4 and IPv6 address). */
static int one_net(struct compiling *c, const struct config_rule_key *k, const char *v)
{
    struct rule *r = c->r;
    if (!strcasecmp(v, "all"))
        return one_net(c, k, "0.0.0.0/0") < 0 ? -1 : one_net(c, k, "::/0");
    if (r->n_allow_nets >= CONFIG_MAX_NETS)
        return refuse(c, k->line, "allow-network: at most %d networks", CONFIG_MAX_NETS);
    if (parse_cidr(v, &c->nets[c->nets_used]) < 0)
        return refuse(c, k->line,
                      "allow-network: not a network (CIDR, such as 10.0.0.0/8), all nor none: "
                      "'%.60s'",
                      v);
    c->nets_used++;
    r->n_allow_nets++;
    return 0;
}

/* allow-network = CIDR[,CIDR...] | all | none (nobody: it goes alone); a rule's lines add up.
 * The networks of one rule are contiguous in the set's block: its keys are read together. */
static int allow_network(struct compiling *c, const struct config_rule_key *k, bool *none)
{
    char item[128];
    if (!c->r->allow_nets)
        c->r->allow_nets = c->nets + c->nets_used;
    for (const char *p = k->value;; p++) {
        size_t n = strcspn(p, ","), blank = strspn(p, " \t"), len = n > blank ? n - blank : 0;
        while (len > 0 && (p[blank + len - 1] == ' ' || p[blank + len - 1] == '\t'))
            len--; /* "10.0.0.0/8, 192.168.0.0/16" */
        snprintf(item, sizeof(item), "%.*s", (int)(len < sizeof(item) ? len : sizeof(item) - 1),
                 p + blank);
        if (!strcmp(item, "none"))
            *none = true;
        else if (one_net(c, k, item) < 0)
            return -1;
        if (*none && c->r->n_allow_nets)
            return refuse(c, k->line, "allow-network: none goes alone, not with networks");
        p += n;
        if (!*p)
            return 0;
    }
}

static bool all_of(const char *s, size_t len, const char *set)
{
    return strspn(s, set) >= len;
}

/* The match's normal form into r->match: an http(s) URL prefix as url_normalize writes URLs,
 * its host maybe "*." and a domain. What could never match a URL in normal form is refused. */
static int match_value(struct compiling *c, const struct config_rule_key *k)
{
    const char *v = k->value, *why = "";
    size_t scheme, len = strlen(v);
    struct url_parts u;
    char plain[1024];
    int status;
    bool glob;
    if (!strcmp(v, "*")) { /* every URL: what --allow-network and the options would cover */
        strcpy(c->r->match, "*");
        c->r->catch_all = true;
        return 0;
    }
    parse_url(v, len, &u); /* its verdict aside: "*." is no host, url_normalize words the rest */
    if (!url_scheme_is(&u, "http") && !url_scheme_is(&u, "https"))
        return refuse(c, k->line, "match: '%.80s' can never match: not an http:// or https:// URL",
                      v);
    scheme = (size_t)(u.authority - v);
    glob = !strncmp(v + scheme, "*.", 2);
    if (u.query || u.fragment)
        return refuse(c, k->line,
                      "match: '%.80s' can never match: a prefix has no query nor "
                      "fragment",
                      v);
    if (u.userinfo)
        return refuse(c, k->line, "match: '%.80s': no user@ (URLs are matched without it)", v);
    if (strchr(v + scheme + (glob ? 1 : 0), '*'))
        return refuse(c, k->line,
                      "match: '%.80s' can never match: a glob is only the host's "
                      "first label (https://*.example.org/; match = * covers every URL)",
                      v);
    if (len - (glob ? 2 : 0) >= sizeof(plain))
        return refuse(c, k->line, "match: longer than %zu bytes", sizeof(plain) - 1);
    snprintf(plain, sizeof(plain), "%.*s%s", (int)scheme, v, v + scheme + (glob ? 2 : 0));
    if (url_normalize(plain, strlen(plain), c->r->match + (glob ? 2 : 0), sizeof(c->r->match) - 2,
                      &status, &why) < 0)
        return refuse(c, k->line, "match: '%.80s' can never match: %s", v, why);
    parse_url(c->r->match + 2 * glob, strlen(c->r->match + 2 * glob), &u); /* a normal form */
    if (glob && (u.host[0] == '[' || all_of(u.host, u.host_len, "0123456789.")))
        return refuse(c, k->line,
                      "match: '%.80s' can never match: *. goes before a domain, not "
                      "an IP address",
                      v);
    if (glob) { /* "https://" back before "*." */
        memmove(c->r->match, c->r->match + 2, scheme);
        memcpy(c->r->match + scheme, "*.", 2);
    }
    c->r->host_glob = glob;
    return 0;
}

/* `outgoing-address = ADDR[,ADDR]`: the address this prefix's upstream connections leave from,
 * one this host holds (config_outgoing_parse, as --outgoing-address). */
static int outgoing_value(struct compiling *c, const struct config_rule_key *k)
{
    char why[160];
    c->r->has_outgoing = true;
    if (config_outgoing_parse(k->value, &c->r->outgoing, why, sizeof(why)) < 0)
        return refuse(c, k->line, "outgoing-address: %s", why);
    return 0;
}

/* `parent = URL|none`: the rule's parent arca, or none (the origin directly, whatever
 * --parent says). */
static int parent_value(struct compiling *c, const struct config_rule_key *k)
{
    char why[160];
    c->r->has_parent = true;
    if (!strcmp(k->value, "none")) {
        c->r->parent[0] = '\0';
        return 0;
    }
    if (config_parent_url(k->value, c->r->parent, why, sizeof(why)) < 0)
        return refuse(c, k->line, "parent: %s (or none)", why);
    return 0;
}

/* One key of the rule. */
static int rule_key(struct compiling *c, const struct config_rule_key *k, bool *none)
{
    struct rule *r = c->r;
    const char *key = k->key;
    if (!strcmp(key, "match"))
        return match_value(c, k);
    if (!strcmp(key, "ttl"))
        return r->has_ttl = true, duration(c, k, false, &r->ttl);
    if (!strcmp(key, "client-ttl"))
        return client_ttl(c, k);
    if (!strcmp(key, "store"))
        return r->has_store = true, yes_no(c, k, &r->store);
    if (!strcmp(key, "pin"))
        return r->has_pin = true, yes_no(c, k, &r->pin);
    if (!strcmp(key, "stale-if-error"))
        return r->has_stale_if_error = true, duration(c, k, true, &r->stale_if_error);
    if (!strcmp(key, "stale-while-revalidate"))
        return r->has_stale_while_revalidate = true,
               duration(c, k, true, &r->stale_while_revalidate);
    if (!strcmp(key, "negative-ttl"))
        return r->has_negative_ttl = true, negative_ttl(c, k, &r->negative_ttl);
    if (!strcmp(key, "fill-min-size"))
        return r->has_fill_min_size = true, size_value(c, k, &r->fill_min_size);
    if (!strcmp(key, "max-object-size"))
        return r->has_max_object_size = true, size_value(c, k, &r->max_object_size);
    if (!strcmp(key, "allow-network"))
        return allow_network(c, k, none);
    if (!strcmp(key, "parent"))
        return parent_value(c, k);
    if (!strcmp(key, "outgoing-address"))
        return outgoing_value(c, k);
    if (!strcmp(key, "parent-cert") || !strcmp(key, "parent-key")) { /* rule_identity */
        *(strcmp(key, "parent-cert") ? &c->key : &c->cert) = k;
        return 0;
    }
    if (!strcmp(key, "fill-connections")) {
        int64_t n;
        char *end;
        r->has_fill_connections = true;
        n = strtoll(k->value, &end, 10);
        r->fill_connections = (int)n;
        if (k->value[0] >= '0' && k->value[0] <= '9' && !*end && n >= 1 && n <= 64)
            return 0;
        return refuse(c, k->line, "fill-connections: expected an integer 1..64, got '%.60s'",
                      k->value);
    }
    return refuse(c, k->line, "unknown key '%.60s'", key);
}

static int compile_rule(struct compiling *c, int *match_line)
{
    const struct config_rule *cr = c->cr;
    bool none = false;
    snprintf(c->r->name, sizeof(c->r->name), "%s", cr->name);
    snprintf(c->r->file, sizeof(c->r->file), "%s", cr->file);
    c->r->line = cr->line;
    c->cert = c->key = NULL;
    *match_line = 0;
    for (int i = 0; i < cr->n_keys; i++) {
        if (rule_key(c, &cr->keys[i], &none) < 0) { /* its value is the file's: never shown */
            config_hide_line(c->err, (const char *const[3]){cr->keys[i].value, NULL, NULL});
            return -1;
        }
        if (!strcmp(cr->keys[i].key, "match"))
            *match_line = cr->keys[i].line;
    }
    if (!*match_line)
        return refuse(c, cr->line, "match missing (match = https://HOST/PATH-PREFIX)");
    return 0;
}

/* A refusal's line into err (CONFIG_ERR_LEN), cut at its end: a file's path may be long. */
__attribute__((format(printf, 2, 3))) static int say(char *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, CONFIG_ERR_LEN, fmt, ap);
    va_end(ap);
    return -1;
}

/* The certificate `parent` is shown (read and checked: `id`, taken over) joins the set's; a
 * parent is shown one, so another one for the same parent is refused (`what` says whose). */
static int add_identity(struct rule_set *set, const char *parent, struct tls_identity *id,
                        char *err, const char *what)
{
    const struct tls_identity *known = rules_parent_identity(set, parent);
    if (known && !tls_identity_same(known, id)) {
        tls_identity_free(id);
        return say(err, "%s: another certificate than %s for parent %s: a parent is shown one",
                   what, known->cert_path, parent);
    }
    if (known) {
        tls_identity_free(id);
        return 0;
    }
    struct parent_identity *e = &set->identities[set->n_identities++];
    snprintf(e->parent, sizeof(e->parent), "%s", parent);
    e->id = *id;
    return 0;
}

/* A rule's parent-cert and parent-key: the certificate shown to the parent the rule names
 * (parent = URL), read and checked as --parent-cert's; both or neither. */
static int rule_identity(struct compiling *c, struct rule_set *set)
{
    const struct config_rule_key *cert = c->cert, *key = c->key, *given = cert ? cert : key;
    struct tls_identity id;
    char why[CONFIG_ERR_LEN];
    if (!given)
        return 0;
    if (!c->r->has_parent || !c->r->parent[0])
        return refuse(c, given->line, "%s is for the parent the rule names: parent = URL",
                      given->key);
    if (!cert || !key)
        return refuse(c, given->line, "%s",
                      cert ? "parent-cert needs parent-key (its private key)"
                           : "parent-key needs parent-cert (the certificate it goes with)");
    if (tls_identity_load(&id, "parent-cert", cert->value, "parent-key", key->value, why,
                          sizeof(why)) < 0)
        return refuse(c, strncmp(why, "parent-key", 10) ? cert->line : key->line, "%s", why);
    say(why, "%s:%d: rule %s: parent-cert", c->cr->file, cert->line, c->cr->name);
    return add_identity(set, c->r->parent, &id, c->err, why);
}

/* --parent-cert and --parent-key: the certificate --parent is shown, read and checked at start
 * and at each SIGHUP with the rules (their pairing and --parent: config_file.c). */
static int option_identity(const struct config *cfg, struct rule_set *set, char *err)
{
    struct tls_identity id;
    char where[512], why[CONFIG_ERR_LEN];
    if (!cfg->parent_cert[0] || !cfg->parent[0])
        return 0;
    if (tls_identity_load(&id, "--parent-cert", cfg->parent_cert, "--parent-key", cfg->parent_key,
                          why, sizeof(why)) < 0) {
        config_where(cfg, strncmp(why, "--parent-key", 12) ? "parent-cert" : "parent-key", where,
                     sizeof(where));
        return say(err, "%s%s", where, why);
    }
    return add_identity(set, cfg->parent, &id, err, "--parent-cert");
}

/* Room for every rule's networks: at most one per comma, two for "all", and one more. */
static size_t nets_needed(const struct config *cfg)
{
    size_t n = 1;
    for (int i = 0; i < cfg->n_rules; i++)
        for (int k = 0; k < cfg->rules[i].n_keys; k++)
            if (!strcmp(cfg->rules[i].keys[k].key, "allow-network")) {
                n += 2;
                for (const char *p = cfg->rules[i].keys[k].value; (p = strchr(p, ',')); p++)
                    n += 2;
            }
    return n;
}

/* The set again with every match folded as who may fetch folds URLs (fold.h: an IP literal in
 * its one spelling, a name without its final dots, `%2F` and `//` as `/`), for that question
 * only: the URLs an origin may take for a rule's are its there. Two matches one once folded
 * are a duplicate ([::1] and [0:0::1]). Its rules' networks are the set's. */
static struct rule_set *folded_copy(struct rule_set *set, char *err)
{
    struct rule_set *f = calloc(1, sizeof(*f));
    size_t n = set->n;
    int failed = 0;
    if (!f || !(f->rules = malloc(n * sizeof(*f->rules))) ||
        !(f->match_line = malloc(n * sizeof(int)))) {
        snprintf(err, CONFIG_ERR_LEN, "rules: out of memory");
        rules_free(f);
        return NULL;
    }
    f->n = n;
    memcpy(f->rules, set->rules, n * sizeof(*f->rules));
    memcpy(f->match_line, set->match_line, n * sizeof(int));
    for (size_t i = 0; i < n && !failed; i++) {
        char *folded = fold_url(f->rules[i].match, &failed);
        if (folded && strlen(folded) < sizeof(f->rules[i].match)) {
            strcpy(f->rules[i].match, folded);
            set->folds_matches = true;
        }
        free(folded);
    }
    if (failed)
        snprintf(err, CONFIG_ERR_LEN, "rules: out of memory");
    if (failed || rules_index(f, err) < 0) {
        rules_free(f);
        return NULL;
    }
    return f;
}

/* One more warning, or (past RULES_WARNINGS_MAX - 1) one more counted in the last. */
__attribute__((format(printf, 3, 4))) static void warn(struct rule_set *set, size_t *more,
                                                       const char *fmt, ...)
{
    va_list ap;
    if (set->n_warnings == RULES_WARNINGS_MAX - 1) {
        (*more)++;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(set->warnings[set->n_warnings++], RULES_WARNING_LEN, fmt, ap);
    va_end(ap);
}

/* Whether rule `r`'s networks leave some client out: `all` (or ::/0) lets everyone in. */
static bool narrows(const struct rule *r)
{
    for (int i = 0; i < r->n_allow_nets; i++)
        if (r->allow_nets[i].prefix == 0)
            return false;
    return true;
}

/* The rule whose networks decide under `r`'s prefix, when it is not r and it narrows: the first
 * rule covering all of r's URLs that names networks (rules_match_all: by precedence), a
 * catch-all apart (its networks are the lab's default, as --allow-network's). NULL: none, one
 * that lets everyone in (an admin widening a prefix means to open what is under it), or r
 * names its own. *otherwise: what would decide without it, the catch-all when it names
 * networks (NULL: --allow-network). */
static const struct rule *enclosing_networks(const struct rule_set *set, const struct rule *r,
                                             const struct rule **otherwise)
{
    const struct rule *all[64], *e = NULL;
    size_t n;
    *otherwise = NULL;
    if (r->allow_nets || r->catch_all)
        return NULL;
    n = rules_match_all(set, r->match, all, 64);
    for (size_t i = 0; i < n; i++) {
        if (all[i]->catch_all && all[i]->allow_nets)
            *otherwise = all[i];
        else if (!e && all[i] != r && all[i]->allow_nets && !all[i]->catch_all)
            e = all[i];
    }
    return e && narrows(e) ? e : NULL;
}

/* A rule that names no networks inside the prefix of one that narrows takes that one's (an
 * admin adding a size limit under a private prefix does not mean to open it): said, naming
 * both and what the admin may have meant instead (--allow-network's, or the catch-all's). */
static int warn_inner_rules(struct rule_set *set, char *err)
{
    size_t more = 0;
    if (!set->has_nets)
        return 0;
    if (!(set->warnings = calloc(RULES_WARNINGS_MAX, sizeof(*set->warnings)))) {
        snprintf(err, CONFIG_ERR_LEN, "rules: out of memory");
        return -1;
    }
    for (size_t i = 0; i < set->n; i++) {
        const struct rule *r = &set->rules[i], *all, *e = enclosing_networks(set, r, &all);
        if (e)
            warn(set, &more,
                 "%.100s:%d: rule %s names no allow-network, inside rule %s's prefix "
                 "(%.100s:%d): rule %s's networks decide who may fetch there, not %s%s%s",
                 r->file, r->line, r->name, e->name, e->file, e->line, e->name,
                 all ? "rule " : "--allow-network's", all ? all->name : "",
                 all ? "'s (match = *)" : "");
    }
    if (more)
        snprintf(set->warnings[set->n_warnings++], RULES_WARNING_LEN,
                 "and %zu more rules name no allow-network inside a prefix whose rule narrows",
                 more);
    return 0;
}

struct rule_set *rules_compile(const struct config *cfg, char *err)
{
    struct rule_set *set = calloc(1, sizeof(*set));
    size_t n = (size_t)cfg->n_rules;
    struct compiling c = {.err = err};
    if (!set || !(set->rules = calloc(n ? n : 1, sizeof(*set->rules))) ||
        !(set->match_line = calloc(n ? n : 1, sizeof(int))) ||
        !(set->nets = calloc(nets_needed(cfg), sizeof(*set->nets))) ||
        !(set->identities = calloc(n + 1, sizeof(*set->identities)))) {
        snprintf(err, CONFIG_ERR_LEN, "rules: out of memory");
        rules_free(set);
        return NULL;
    }
    set->n = n;
    c.nets = set->nets;
    if (option_identity(cfg, set, err) < 0) {
        rules_free(set);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        c.cr = &cfg->rules[i];
        c.r = &set->rules[i];
        if (compile_rule(&c, &set->match_line[i]) < 0 || rule_identity(&c, set) < 0) {
            rules_free(set);
            return NULL;
        }
    }
    if (rules_index(set, err) < 0 || (set->has_nets && !(set->folded = folded_copy(set, err))) ||
        warn_inner_rules(set, err) < 0 || parents_compile(cfg, set, err) < 0) {
        rules_free(set);
        return NULL;
    }
    return set;
}
