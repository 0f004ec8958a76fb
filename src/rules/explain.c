/* rules_explain (explain.h): terms_decide's answer for a URL, with where each term came from,
 * the sources in order and the rules that lose, as JSON. */
#include "rules/explain.h"
#include "registry/registries.h"
#include "remote/remote_path.h"
#include "rules/keys.h"
#include "rules/policy.h"
#include "rules/rules.h"
#include "rules/terms.h"
#include "url/url.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STALE_NOTE "origin Cache-Control wins when it says one"

/* "rule NAME", the option's name, "ttl=" or "built-in". */
static json_t *from_text(enum term_from from, const struct fetch_terms *t, const char *option)
{
    char text[96];
    switch (from) {
    case FROM_RULE:
        snprintf(text, sizeof(text), "rule %s", t->rule);
        return json_string(text);
    case FROM_OPTION:
        snprintf(text, sizeof(text), "--%s", option);
        return json_string(text);
    case FROM_CLIENT:
    case FROM_BUILTIN:
        break;
    }
    return json_string(terms_from_name(from));
}

static void add_term(json_t *terms, const char *name, json_t *value, json_t *from)
{
    json_object_set_new(terms, name, json_pack("{s:o, s:o}", "value", value, "from", from));
}

/* Seconds as the INI file writes them: in the largest unit that divides them (90m, 1d). */
static int duration_text(int64_t s, char *out, size_t size)
{
    static const struct {
        char suffix;
        int64_t unit;
    } units[] = {{'d', 86400}, {'h', 3600}, {'m', 60}, {'s', 1}};
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (s > 0 && s % units[i].unit == 0)
            return snprintf(out, size, "%lld%c", (long long)(s / units[i].unit), units[i].suffix);
    return snprintf(out, size, "%lld", (long long)s);
}

/* obey, ignore, or MIN-MAX as a rule writes it ("1h-30d"). */
static json_t *client_ttl_value(const struct fetch_terms *t)
{
    char text[64];
    int n;
    if (t->client_ttl != CLIENT_TTL_CLAMP)
        return json_string(t->client_ttl == CLIENT_TTL_OBEY ? "obey" : "ignore");
    n = duration_text(t->client_ttl_min, text, sizeof(text));
    text[n++] = '-';
    duration_text(t->client_ttl_max, text + n, sizeof(text) - (size_t)n);
    return json_string(text);
}

/* Which of the fill settings the rule gives: each term names its own origin. */
static enum term_from fill_from(const struct rule *r, bool connections)
{
    if (r && (connections ? r->has_fill_connections : r->has_fill_min_size))
        return FROM_RULE;
    return FROM_OPTION;
}

/* A stale window: the rule's, or (-1 in the terms: the store's own) the option's as SIGHUP last
 * set it. */
static json_t *window(int64_t terms, const int64_t *option)
{
    return json_integer(terms >= 0 ? terms : __atomic_load_n(option, __ATOMIC_RELAXED));
}

static json_t *terms_json(const struct config *cfg, const struct fetch_terms *t,
                          const struct rule *r)
{
    json_t *o = json_object();
    const struct object_keep *ob = &t->object;
    char text[2 * INET6_ADDRSTRLEN];
    add_term(o, "ttl", json_integer(ob->ttl),
             from_text(t->ttl_from, t,
                       t->registry_tag ? "registry-tag-ttl"
                       : t->remote.cls == REMOTE_META || t->remote.cls == REMOTE_PAGE
                           ? "remote-meta-ttl"
                           : "default-ttl"));
    add_term(o, "client-ttl", client_ttl_value(t), from_text(t->client_ttl_from, t, ""));
    add_term(o, "stale-if-error", window(ob->stale_if_error, &cfg->stale_if_error),
             from_text(t->stale_if_error_from, t, "stale-if-error"));
    add_term(o, "stale-while-revalidate",
             window(ob->stale_while_revalidate, &cfg->stale_while_revalidate),
             from_text(t->stale_while_revalidate_from, t, "stale-while-revalidate"));
    json_object_set_new(json_object_get(o, "stale-if-error"), "note", json_string(STALE_NOTE));
    json_object_set_new(json_object_get(o, "stale-while-revalidate"), "note",
                        json_string(STALE_NOTE));
    add_term(o, "store", json_boolean(ob->store), from_text(t->store_from, t, ""));
    add_term(o, "negative-ttl", json_integer(ob->negative_ttl),
             from_text(t->negative_ttl_from, t, "negative-ttl"));
    if (t->negative_ttl_from == FROM_BUILTIN) /* zeroed: the URL carries credentials */
        json_object_set_new(json_object_get(o, "negative-ttl"), "note",
                            json_string("never for a URL with credentials"));
    add_term(o, "pin", json_boolean(ob->pin), from_text(t->pin_from, t, ""));
    add_term(o, "max-object-size", json_integer(ob->max_object_size),
             from_text(t->max_object_size_from, t, "max-object-size"));
    add_term(o, "fill-connections", json_integer(t->fill_connections),
             from_text(fill_from(r, true), t, "fill-connections"));
    add_term(o, "fill-min-size", json_integer(t->fill_min_size),
             from_text(fill_from(r, false), t, "fill-min-size"));
    add_term(o, "parent", json_string(t->sources.parent[0] ? t->sources.parent : "none"),
             from_text(t->parent_from, t, "parent"));
    config_outgoing_text(&t->outgoing, text, sizeof(text));
    add_term(o, "outgoing-address", text[0] ? json_string(text) : json_null(),
             from_text(t->outgoing_from, t, "outgoing-address"));
    return o;
}

static json_t *rule_json(const struct rule *r)
{
    return json_pack("{s:s, s:s, s:i, s:s}", "name", r->name, "file", r->file, "line", r->line,
                     "match", r->match);
}

/* Who may fetch under the rule: the networks of the rule that decides there (rules.h: the
 * URL's, or the one around it that names some), else --allow-network's (or the default
 * list). */
static void add_networks(json_t *answer, const struct rule *r)
{
    struct cidr policy[CONFIG_MAX_NETS];
    const struct cidr *nets = r ? r->allow_nets : policy;
    bool by_default = false;
    int n = r ? r->n_allow_nets : policy_clients(policy, &by_default);
    json_t *list = json_array();
    char text[96];
    for (int i = 0; i < n; i++) {
        format_cidr(&nets[i], text, sizeof(text));
        json_array_append_new(list, json_string(text));
    }
    if (r)
        snprintf(text, sizeof(text), "rule %s", r->name);
    json_t *from = json_string(r ? text : "--allow-network");
    /* a term like the others, and (as before the terms had it) beside them */
    add_term(json_object_get(answer, "terms"), "allow-network", json_copy(list), json_copy(from));
    json_object_set_new(answer, "networks", list);
    json_object_set_new(answer, "allowed_from", from);
    if (by_default)
        json_object_set_new(answer, "networks_default", json_true());
}

/* The parent, when one is asked: what it is sent, or why the URL goes past it. */
static void add_parent(const struct config *cfg, json_t *list, const struct fetch_terms *t,
                       const char *url)
{
    const struct source_plan *s = &t->sources;
    const char *sent = "the URL whole, through its fetch API";
    /* a registry path parses within its repository's and reference's bounds, and its URL is
     * at most REGISTRY_URL_MAX encoded: it fits */
    char from[96], target[4 * REGISTRY_URL_MAX], v2[sizeof(target) + 64];
    if (!s->parent[0])
        return;
    if (registries_parent_target(url, target, sizeof(target))) {
        snprintf(v2, sizeof(v2), "%s, through its registry API", target);
        sent = v2;
    }
    if (!terms_parent_may_see(cfg, t, url))
        sent = s->parent_only ? "nothing: the URL carries credentials and the parent is plain "
                                "http (--parent-trusted-http); --parent-only refuses it"
                              : "nothing: the URL carries credentials and the parent is plain "
                                "http (--parent-trusted-http); the origin is asked";
    snprintf(from, sizeof(from), t->parent_from == FROM_RULE ? "rule %s" : "--parent", t->rule);
    json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:s}", "url", s->parent, "kind",
                                          "parent", "sent", sent, "from", from));
}

/* The parent, the mirrors in order, then the origin (none with --parent-only). */
static json_t *sources_json(const struct config *cfg, const struct fetch_terms *t, const char *url)
{
    json_t *list = json_array();
    add_parent(cfg, list, t, url);
    for (int k = 0; k < (t->sources.parent_only ? 0 : t->sources.n_mirrors); k++) {
        char *mirror = terms_source_url(cfg, t, url, k), *shown = mirror ? url_shown(mirror) : NULL;
        if (shown)
            json_array_append_new(list, json_pack("{s:s, s:s, s:s}", "url", shown, "kind", "mirror",
                                                  "sent", "without credentials"));
        free(shown);
        free(mirror);
    }
    char *shown = url_shown(url);
    if (shown && !t->sources.parent_only)
        json_array_append_new(list, json_pack("{s:s, s:s, s:s}", "url", shown, "kind", "origin",
                                              "sent", "the URL whole"));
    free(shown);
    return list;
}

/* The winner's rule and the losers, from one look at the set in force. */
static void add_rules(const struct config *cfg, json_t *answer, const char *url,
                      const struct fetch_terms *t)
{
    const struct rule_set *set = rules_current();
    const struct rule *all[64];
    size_t n = rules_match_all(set, url, all, 64);
    json_t *losers = json_array();
    json_object_set_new(answer, "rules_in_force", json_integer((json_int_t)rules_count(set)));
    json_object_set_new(answer, "config_file",
                        cfg->config_file[0] ? json_string(cfg->config_file) : json_null());
    json_object_set_new(answer, "rule", n > 0 && t->rule[0] ? rule_json(all[0]) : json_null());
    for (size_t i = 1; i < n; i++)
        json_array_append_new(losers, rule_json(all[i]));
    json_object_set_new(answer, "losers", losers);
    json_object_set_new(answer, "terms", terms_json(cfg, t, n > 0 ? all[0] : NULL));
    add_networks(answer, rules_match_networks(set, url));
    rules_put(set);
}

static json_t *answer_json(const struct config *cfg, const char *url, const char *key,
                           const struct sockaddr *client, const struct fetch_terms *t)
{
    char *shown_url = url_shown(url), *shown_key = url_shown(key), addr[64];
    json_t *a = NULL;
    if (shown_url && shown_key)
        a = json_pack("{s:s, s:s}", "url", shown_url, "key", shown_key);
    free(shown_url);
    free(shown_key);
    if (!a)
        return NULL;
    add_rules(cfg, a, url, t);
    format_sockaddr(client, addr, sizeof(addr));
    json_object_set_new(a, "client", client ? json_string(addr) : json_null());
    json_object_set_new(a, "allowed", client ? json_boolean(t->allowed) : json_null());
    if (client) { /* what decided for this client: maybe the rule of another spelling (fold.h) */
        char from[96];
        snprintf(from, sizeof(from), t->allowed_rule[0] ? "rule %s" : "--allow-network",
                 t->allowed_rule);
        json_object_set_new(a, "allowed_from", json_string(from));
        if (t->allowed_carried[0]) /* refused for a URL the query carries (carried.h) */
            json_object_set_new(a, "allowed_carried", json_string(t->allowed_carried));
    }
    json_object_set_new(a, "sources", sources_json(cfg, t, url));
    json_object_set_new(a, "origin_first", json_boolean(t->sources.origin_first));
    if (t->remote.r) /* what its remote's kind says the URL is (remote_kind.h) */
        json_object_set_new(a, "remote",
                            json_pack("{s:s, s:s, s:s}", "name", t->remote.r->name, "kind",
                                      config_remote_kind_name(t->remote.r->kind), "class",
                                      remote_class_name(t->remote.cls)));
    return a;
}

/* rules_explain's answer for `url_given`, an upstream URL or any other: no remote's path. */
static json_t *explain_url(const struct config *cfg, const char *url_given,
                           const struct sockaddr *client, char *err)
{
    size_t size = URL_BUF_SIZE(strlen(url_given));
    char *url = malloc(size), *key = NULL;
    const char *why = "out of memory";
    struct request_facts req = {.client = client};
    struct fetch_terms t;
    struct signature sig;
    json_t *answer = NULL;
    int status;
    if (strlen(url_given) > (size_t)cfg->max_url_len) {
        snprintf(err, CONFIG_ERR_LEN, "url longer than --max-url-length (%d)", cfg->max_url_len);
        free(url);
        return NULL;
    }
    if (url && url_normalize(url_given, strlen(url_given), url, size, &status, &why) == 0 &&
        (key = keys_cache_url_dup(cfg, url, &sig))) {
        req.url = url;
        req.key = key;
        terms_decide(cfg, &req, &t);
        answer = answer_json(cfg, url, key, client, &t);
    }
    if (!answer)
        snprintf(err, CONFIG_ERR_LEN, "%s", url && key ? "out of memory" : why);
    free(key);
    free(url);
    return answer;
}

json_t *rules_explain(const struct config *cfg, const char *url_given,
                      const struct sockaddr *client, char *err)
{
    char *upstream = NULL;
    json_t *answer = NULL;
    /* a remote's path on arca stands for its upstream URL, as the route reads it */
    int remote = strlen(url_given) > (size_t)cfg->max_url_len
                     ? 0
                     : remote_path_url(url_given, &upstream, err, CONFIG_ERR_LEN);
    if (remote >= 0)
        answer = explain_url(cfg, remote ? upstream : url_given, client, err);
    free(upstream);
    return answer;
}
