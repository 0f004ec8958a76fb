/* terms_decide (terms.h): the rule for the URL, then each term from it or, where it says
 * nothing, from the option that applies to every URL. Nothing is allocated and no rule is
 * walked: one lookup in the sorted table (rules.c), the mirrors' regexes only when --mirror is
 * given (sources.c). */
#include "rules/terms.h"
#include "rules/policy.h"
#include "rules/rules.h"
#include "url/fold.h"
#include "rules/carried.h"
#include "base/buf.h"
#include "registry/registries.h"
#include "url/url.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Whether the client may fetch under rule r (NULL: none applies): the rule's networks when it
 * names any, else --allow-network's (policy.c, which SIGHUP updates). */
static bool allowed_under(const struct rule *r, const struct request_facts *req,
                          enum term_from *from)
{
    uint8_t a[16];
    bool allowed = false;
    if (!r || !r->allow_nets) {
        *from = FROM_OPTION;
        return req->option_says ? req->option_says > 0 : policy_client_allowed(req->client);
    }
    *from = FROM_RULE;
    if (addr_to_v6(req->client, a) == 0)
        for (int i = 0; i < r->n_allow_nets && !allowed; i++)
            allowed = cidr_contains(&r->allow_nets[i], a);
    return allowed;
}

/* Who may fetch: the rule whose networks decide for the URL says (rules_match_networks: the
 * URL's rule `r`, or the one around it that names networks), and where rules name networks, so
 * does the one for its folded spelling among the folded matches (fold.h): a rule that narrows
 * holds for every spelling an origin may take for one of its URLs, and a widening rule opens a
 * URL only when its folded spelling is under one too. arca's own requests (no client) always
 * may. */
static void decide_own_allowed(const struct rule_set *set, const struct rule *r,
                               const struct request_facts *req, struct fetch_terms *out)
{
    const struct rule *f;
    enum term_from from;
    int failed;
    out->allowed_rule[0] = '\0';
    out->allowed_carried[0] = '\0';
    if (!req->client) {
        out->allowed = true;
        out->allowed_from = FROM_BUILTIN;
        return;
    }
    /* a rule that names networks goes before any other that does; with none, --allow-network */
    if ((!r || !r->allow_nets) && rules_have_networks(set))
        r = rules_match_networks(set, req->url);
    out->allowed = allowed_under(r, req, &out->allowed_from);
    if (out->allowed_from == FROM_RULE)
        memcpy(out->allowed_rule, r->name, sizeof(out->allowed_rule));
    if (!out->allowed || !rules_have_networks(set))
        return;
    char *folded = fold_url(req->url, &failed);
    if (!folded && !failed && !rules_fold_matches(set))
        return; /* the same URL in the same table: the rule just asked */
    f = rules_match_folded(set, folded ? folded : req->url);
    free(folded);
    if (failed) { /* out of memory: closed, never open */
        out->allowed = false;
    } else if (!allowed_under(f, req, &from)) {
        out->allowed = false;
        out->allowed_from = from;
        if (from == FROM_RULE)
            memcpy(out->allowed_rule, f->name, sizeof(out->allowed_rule));
    }
}

/* A carried URL's judge (carried.h): the request's client for that URL. */
struct carried_judge {
    const struct rule_set *set;
    const struct request_facts *req;
    struct fetch_terms *out;
};

static int judge_carried(const char *normal, void *ctx)
{
    struct carried_judge *j = ctx;
    struct request_facts sub = *j->req;
    struct fetch_terms t;
    sub.url = normal;
    decide_own_allowed(j->set, rules_match(j->set, normal), &sub, &t);
    if (t.allowed)
        return 0;
    j->out->allowed_from = t.allowed_from;
    memcpy(j->out->allowed_rule, t.allowed_rule, sizeof(t.allowed_rule));
    char *shown = url_shown(normal);
    snprintf(j->out->allowed_carried, sizeof(j->out->allowed_carried), "%s",
             shown ? shown : "another URL");
    free(shown);
    return 1;
}

/* Who may fetch, and the URLs it carries (carried.h): a cache in front (a parent's fetch API at
 * an address this arca does not know as its parent's, a KissCache) would fetch them for this
 * client with this arca's address, which may be granted more. Asked only where rules name
 * networks, as the folded spelling is: otherwise --allow-network decides every URL alike. */
static void decide_allowed(const struct rule_set *set, const struct rule *r,
                           const struct request_facts *req, struct fetch_terms *out)
{
    struct carried_judge j = {.set = set, .req = req, .out = out};
    decide_own_allowed(set, r, req, out);
    if (!out->allowed || !req->client || !rules_have_networks(set) || !strchr(req->url, '?'))
        return;
    if (carried_urls(req->url, judge_carried, &j) == 0)
        return;
    out->allowed = false;
    if (!out->allowed_carried[0]) { /* not readable, too deep or out of memory: closed */
        out->allowed_from = FROM_BUILTIN;
        out->allowed_rule[0] = '\0';
        snprintf(out->allowed_carried, sizeof(out->allowed_carried),
                 "arca cannot judge (not a URL it reads, nested too deep, or too many)");
    }
}

/* What a remote's kind says of the URL (remote_kind.h), from its path below the remote's base;
 * a digest its path names (apt's by-hash/) is the URL's, as a registry's is. */
static void decide_remote(const struct request_facts *req, struct fetch_terms *out)
{
    const struct remote *r = remotes_of_url(req->url);
    size_t klen = req->key ? strlen(req->key) : 0, jlen = sizeof(REMOTE_JSON_KEY) - 1;
    memset(&out->remote, 0, sizeof(out->remote));
    if (!(out->remote.r = r))
        return;
    const char *path = req->url + r->url_len;
    size_t len = strcspn(path, "?");
    out->remote.cls = remote_classify(r->kind, path, len);
    out->remote.json = out->remote.cls == REMOTE_PAGE && klen > jlen &&
                       !strcmp(req->key + klen - jlen, REMOTE_JSON_KEY);
    if (!out->digest_named && remote_named_digest(r->kind, path, len, out->named_digest))
        out->digest_named = true;
}

/* What the URL is: a registry's pull API (its registry, repository and reference), a remote's
 * metadata or file, and the digest its bytes must have when it names one, whichever source
 * brings them. */
static void decide_what(const struct request_facts *req, struct fetch_terms *out)
{
    const struct reg_path *p = &out->registry.path;
    registries_ask_of(req->url, &out->registry);
    out->digest_named = out->registry.r && p->by_digest;
    if (out->digest_named)
        memcpy(out->named_digest, p->digest, sizeof(out->named_digest));
    decide_remote(req, out);
}

/* The ttl: the base (the rule's, else --registry-tag-ttl for a registry's tag or tag list,
 * --remote-meta-ttl for a remote's metadata, else --default-ttl), changed by the client's ttl= as
 * client-ttl lets it. A proxied request's max-age (client_ttl_shorter) may only shorten it. */
static void decide_ttl(const struct config *cfg, const struct rule *r,
                       const struct request_facts *req, struct fetch_terms *out)
{
    int64_t ttl;
    /* a tag moves upstream: where no rule says otherwise it is asked again soon, with a HEAD
     * that costs no pull when the digest has not changed; the list of tags moves with them */
    out->registry_tag =
        (out->registry.path.what == REG_MANIFEST && !out->registry.path.by_digest) ||
        out->registry.path.what == REG_TAGS;
    bool meta = out->remote.cls == REMOTE_META || out->remote.cls == REMOTE_PAGE;
    const int64_t *option = out->registry_tag ? &cfg->registry_tag_ttl
                            : meta            ? &cfg->remote_meta_ttl
                                              : &cfg->default_ttl;
    out->ttl_base = r && r->has_ttl ? r->ttl : __atomic_load_n(option, __ATOMIC_RELAXED);
    out->ttl_from = r && r->has_ttl ? FROM_RULE : FROM_OPTION;
    out->client_ttl = r && r->has_client_ttl ? r->client_ttl : CLIENT_TTL_OBEY;
    out->client_ttl_from = r && r->has_client_ttl ? FROM_RULE : FROM_BUILTIN;
    out->client_ttl_min = out->client_ttl == CLIENT_TTL_CLAMP ? r->client_ttl_min : 0;
    out->client_ttl_max = out->client_ttl == CLIENT_TTL_CLAMP ? r->client_ttl_max : 0;
    out->object.ttl = out->ttl_base;
    if (req->client_ttl <= 0 || out->client_ttl == CLIENT_TTL_IGNORE)
        return;
    ttl = req->client_ttl;
    if (out->client_ttl == CLIENT_TTL_CLAMP)
        ttl = ttl < out->client_ttl_min   ? out->client_ttl_min
              : ttl > out->client_ttl_max ? out->client_ttl_max
                                          : ttl;
    if (req->client_ttl_shorter && ttl >= out->ttl_base)
        return;
    out->object.ttl = ttl;
    /* clamped: the rule's bound is what applies */
    out->ttl_from = ttl == req->client_ttl ? FROM_CLIENT : FROM_RULE;
}

/* A request's own bounds (its Cache-Control: a child's terms at its parent), as client-ttl
 * lets the client's word act: `ignore` drops them, a MIN-MAX range raises a max-age to MIN
 * and drops no-store. They never change the object's ttl (store.h). */
static void decide_bounds(const struct request_facts *req, struct fetch_terms *out)
{
    struct object_keep *o = &out->object;
    o->has_max_age = req->has_max_age && out->client_ttl != CLIENT_TTL_IGNORE;
    o->max_age = out->client_ttl == CLIENT_TTL_CLAMP && req->max_age < out->client_ttl_min
                     ? out->client_ttl_min
                     : req->max_age;
    o->asked_no_store = req->no_store && out->client_ttl == CLIENT_TTL_OBEY;
    /* a child arca's own negative ttl: a site that keeps no 404 gets none of its parent's */
    o->has_negative_max_age = req->has_negative_max_age && out->client_ttl != CLIENT_TTL_IGNORE;
    o->negative_max_age =
        out->client_ttl == CLIENT_TTL_CLAMP && req->negative_max_age < out->client_ttl_min
            ? out->client_ttl_min
            : req->negative_max_age;
}

/* Every other term: the rule's when it gives one, else the option's, else arca's own. A stale
 * window the option gives is -1 for the store: the store's own value, which SIGHUP changes for
 * every object at once (store_set_stale), not at each object's next request. */
static void decide_rest(const struct config *cfg, const struct rule *r, struct fetch_terms *out)
{
    struct object_keep *o = &out->object;
    bool rule_fill = r && (r->has_fill_connections || r->has_fill_min_size);
    o->stale_if_error = r && r->has_stale_if_error ? r->stale_if_error : -1;
    out->stale_if_error_from = r && r->has_stale_if_error ? FROM_RULE : FROM_OPTION;
    o->stale_while_revalidate = r && r->has_stale_while_revalidate ? r->stale_while_revalidate : -1;
    out->stale_while_revalidate_from = r && r->has_stale_while_revalidate ? FROM_RULE : FROM_OPTION;
    o->max_object_size = r && r->has_max_object_size ? r->max_object_size : cfg->max_object_size;
    out->max_object_size_from = r && r->has_max_object_size ? FROM_RULE : FROM_OPTION;
    /* a remote's path that passes through (go's checksum database) is never kept */
    o->store = r && r->has_store ? r->store : out->remote.cls != REMOTE_PASS;
    out->store_from = r && r->has_store ? FROM_RULE : FROM_BUILTIN;
    o->negative_ttl = r && r->has_negative_ttl
                          ? r->negative_ttl
                          : __atomic_load_n(&cfg->negative_ttl, __ATOMIC_RELAXED);
    out->negative_ttl_from = r && r->has_negative_ttl ? FROM_RULE : FROM_OPTION;
    o->pin = r && r->has_pin ? r->pin : false;
    out->pin_from = r && r->has_pin ? FROM_RULE : FROM_BUILTIN;
    out->fill_connections =
        r && r->has_fill_connections ? r->fill_connections : cfg->fill_connections;
    out->fill_min_size = r && r->has_fill_min_size ? r->fill_min_size : cfg->fill_min_size;
    out->fill_from = rule_fill ? FROM_RULE : FROM_OPTION;
    out->outgoing = r && r->has_outgoing ? r->outgoing : cfg->outgoing;
    out->outgoing_from = r && r->has_outgoing ? FROM_RULE : FROM_OPTION;
}

/* A URL with credentials (a signature, a userinfo, a token: whatever its key or its shown form
 * leaves out) never has a negative answer kept nor given: upstream's 404 to one client's
 * credentials is not another's, and a bare URL's 404 must not hide what credentials fetch.
 * Read only when a negative ttl applies: every request passes here. */
static void decide_negative(const struct config *cfg, const struct request_facts *req,
                            struct fetch_terms *out)
{
    if (out->object.negative_ttl &&
        (strcmp(req->key, req->url) != 0 || sources_credentials(cfg, req->url))) {
        out->object.negative_ttl = 0;
        out->negative_ttl_from = FROM_BUILTIN;
    }
}

/* The parent: the rule's (a URL, or none), else --parent's. Credentials go to it over https://
 * only (curl verifies its certificate), or where the admin says the plain path is trusted. */
static void decide_parent(const struct config *cfg, const struct rule *r, struct fetch_terms *out)
{
    struct source_plan *s = &out->sources;
    const char *parent = r && r->has_parent ? r->parent : cfg->parent;
    memcpy(s->parent, parent, strlen(parent) + 1);
    out->parent_from = r && r->has_parent ? FROM_RULE : FROM_OPTION;
    s->parent_only = s->parent[0] && cfg->parent_only;
    s->parent_credentials = !strncmp(s->parent, "https://", 8) || cfg->parent_trusted_http;
}

void terms_decide(const struct config *cfg, const struct request_facts *req,
                  struct fetch_terms *out)
{
    const struct rule_set *set = rules_current();
    const struct rule *r = rules_match(set, req->url);
    out->rule[0] = out->rule_file[0] = '\0';
    out->rule_line = 0;
    if (r) {
        memcpy(out->rule, r->name, sizeof(out->rule));
        memcpy(out->rule_file, r->file, sizeof(out->rule_file));
        out->rule_line = r->line;
    }
    decide_what(req, out);
    decide_allowed(set, r, req, out);
    decide_ttl(cfg, r, req, out);
    decide_bounds(req, out);
    decide_rest(cfg, r, out);
    decide_negative(cfg, req, out);
    sources_decide(cfg, req->url, &out->sources);
    decide_parent(cfg, r, out);
    rules_put(set);
}

bool terms_listed_for(const char *url, const struct sockaddr *client)
{
    const struct rule_set *set = rules_current();
    const struct request_facts req = {.url = url, .client = client, .option_says = 1};
    struct fetch_terms t;
    bool listed = true;
    if (rules_have_networks(set)) {
        decide_allowed(set, rules_match(set, url), &req, &t);
        listed = t.allowed || t.allowed_from != FROM_RULE;
    }
    rules_put(set);
    return listed;
}

/* Whether rule `r`, covering some URL under a prefix, lets `req`'s client fetch there: it names
 * networks that hold the client, and goes before the prefix's own rule for those URLs (the
 * catch-all never does). */
static bool opens_inside(const struct rule *r, const struct request_facts *req)
{
    enum term_from from;
    return r->allow_nets && !r->catch_all && allowed_under(r, req, &from);
}

bool terms_prefix_listed_for(const char *prefix, const struct sockaddr *client)
{
    const struct rule_set *set = rules_current();
    const struct request_facts req = {.url = prefix, .client = client, .option_says = 1};
    const struct rule *r = NULL;
    bool listed = terms_listed_for(prefix, client);
    int failed;
    char *folded = listed ? NULL : fold_url(prefix, &failed);
    while (!listed && (r = rules_next_under(set, folded ? folded : prefix, r)))
        listed = opens_inside(r, &req);
    free(folded);
    rules_put(set);
    return listed;
}

bool terms_parent_may_see(const struct config *cfg, const struct fetch_terms *t, const char *url)
{
    const struct source_plan *s = &t->sources;
    return s->parent_credentials || !(s->origin_first || sources_credentials(cfg, url));
}

char *terms_source_url(const struct config *cfg, const struct fetch_terms *t, const char *url,
                       int k)
{
    return sources_mirror_url(cfg, &t->sources, url, k);
}

const char *terms_from_name(enum term_from from)
{
    switch (from) {
    case FROM_RULE:
        return "rule";
    case FROM_OPTION:
        return "option";
    case FROM_CLIENT:
        return "ttl=";
    case FROM_BUILTIN:
        break;
    }
    return "built-in";
}

/* Which rules decide who may fetch `url` (normal form): its own spelling's networks (NULL: the
 * option's) and its folded spelling's (fold.h). */
struct access {
    const struct rule *own, *folded;
};

static int access_of(const struct rule_set *set, const char *url, struct access *out)
{
    int failed;
    char *folded = fold_url(url, &failed);
    const struct rule *r = rules_match_networks(set, url);
    const struct rule *f = rules_match_folded(set, folded ? folded : url);
    out->own = r;
    out->folded = f && f->allow_nets ? f : NULL;
    free(folded);
    return failed ? -1 : 0;
}

/* What a refused redirect says, a download's and a hit's alike: where it went (`shown`: no
 * secret) and the rule whose allow-network decides there (NULL: --allow-network). */
static void not_followed(char *why, size_t size, const char *shown, const char *rule)
{
    snprintf(why, size, "redirected to %.300s, %s%s%s: not followed", shown,
             rule ? "under rule " : "where another allow-network decides", rule ? rule : "",
             rule ? "'s allow-network" : "");
}

/* A redirect target's carried URLs (carried.h) against the access of the URL redirected. */
struct carried_access {
    const struct rule_set *set;
    const struct access *from;
    struct access *refused; /* the carried URL's that differs */
};

static int same_as_from(const char *normal, void *ctx)
{
    struct carried_access *c = ctx;
    struct access a;
    if (access_of(c->set, normal, &a) < 0)
        return -1;
    if (a.own == c->from->own && a.folded == c->from->folded)
        return 0;
    *c->refused = a;
    return 1;
}

/* Whether every URL `to` (normal form) carries keeps the access `from` has; else `*b` becomes
 * the access of the one that does not, to name its rule. */
static bool carried_same_access(const struct rule_set *set, const char *to,
                                const struct access *from, struct access *b)
{
    struct carried_access c = {.set = set, .from = from, .refused = b};
    return !strchr(to, '?') || carried_urls(to, same_as_from, &c) == 0;
}

bool terms_same_access(const char *from, const char *to, char *why, size_t size)
{
    const struct rule_set *set = rules_current();
    struct access a = {0}, b = {0};
    size_t len = strlen(to), room = URL_BUF_SIZE(len);
    char *normal = NULL;
    const char *no;
    int status;
    bool same = true;
    if (rules_have_networks(set)) {
        normal = malloc(room);
        same = normal && url_normalize(to, len, normal, room, &status, &no) == 0 &&
               access_of(set, from, &a) == 0 && access_of(set, normal, &b) == 0 && a.own == b.own &&
               a.folded == b.folded && carried_same_access(set, normal, &a, &b);
    }
    if (!same) { /* named by the rule that decides there: the target's, else the URL's */
        const struct rule *r = b.own ? b.own : b.folded ? b.folded : a.own ? a.own : a.folded;
        char *shown = terms_hop_shown(to);
        not_followed(why, size, shown ? shown : "another URL", r ? r->name : NULL);
        free(shown);
    }
    free(normal);
    rules_put(set);
    return same;
}

/* Whatever a URL carries stops the walk: it carries one. */
static int carries_one(const char *normal, void *ctx)
{
    (void)normal, (void)ctx;
    return 1;
}

/* `url` with every query parameter that carries no URL shown as REDACTED (its value, or the
 * parameter whole without '='), the fragment cut, then as url_shown shows it (the secrets of the
 * URLs it carries hidden): a CDN's signature goes whatever its name, what a carried URL is stays
 * to judge who may fetch it. NULL when out of memory. */
static char *kept_carried(const char *url)
{
    size_t len = strcspn(url, "#"), at = strcspn(url, "?");
    struct buf b = {0};
    char *whole, *out = NULL;
    buf_addn(&b, url, at < len ? at : len);
    for (size_t p = at; p < len;) {
        size_t n = strcspn(url + p + 1, "&;#"), name;
        const char *param = url + p + 1, *eq = memchr(param, '=', n);
        buf_addn(&b, url + p, 1); /* '?', '&' or ';' */
        name = eq ? (size_t)(eq - param) + 1 : 0;
        if (carried_value_is_url(param + name, n - name)) {
            buf_addn(&b, param, n);
        } else {
            buf_addn(&b, param, name);
            buf_add(&b, "REDACTED");
        }
        p += n + 1;
    }
    if ((whole = buf_take(&b, NULL)))
        out = url_shown(whole);
    free(whole);
    return out;
}

char *terms_hop_shown(const char *url)
{
    return carried_urls(url, carries_one, NULL) != 0 ? kept_carried(url) : url_shown_hop(url);
}

/* Whether `client` may fetch `hop` (len bytes of a hops list: a URL as terms_hop_shown shows it),
 * decided as a request for it would be; one arca cannot read is refused. */
static bool hop_allowed(const struct rule_set *set, const char *hop, size_t len,
                        const struct sockaddr *client, char *why, size_t size)
{
    char *normal = malloc(URL_BUF_SIZE(len)), shown[320];
    const char *no;
    int status;
    struct request_facts req = {.url = normal, .client = client};
    struct fetch_terms t = {.allowed = false, .allowed_from = FROM_OPTION};
    if (normal && url_normalize(hop, len, normal, URL_BUF_SIZE(len), &status, &no) == 0)
        decide_allowed(set, rules_match(set, normal), &req, &t);
    if (!t.allowed) {
        snprintf(shown, sizeof(shown), "%.*s", (int)(len < 300 ? len : 300), hop);
        not_followed(why, size, shown, t.allowed_from == FROM_RULE ? t.allowed_rule : NULL);
    }
    free(normal);
    return t.allowed;
}

bool terms_hops_allowed(const char *hops, const struct sockaddr *client, char *why, size_t size)
{
    const struct rule_set *set = rules_current();
    bool allowed = true;
    /* without a rule that names networks, --allow-network decides every URL: the one asked
     * let the client in */
    if (!client || !rules_have_networks(set))
        hops = "";
    for (const char *p = hops; allowed && *p;) {
        size_t len = strcspn(p, "\n");
        allowed = hop_allowed(set, p, len, client, why, size);
        p += len + (p[len] == '\n');
    }
    rules_put(set);
    return allowed;
}

/* The first rule that covers a URL under `scheme`://host:port/ and leaves the client out. */
static const struct rule *tunnel_refusal(const struct rule_set *set, const char *scheme,
                                         const char *host, int port,
                                         const struct request_facts *req)
{
    char url[320], normal[URL_BUF_SIZE(320)];
    const char *no;
    const struct rule *r = NULL;
    enum term_from from;
    int status, failed;
    snprintf(url, sizeof(url), strchr(host, ':') ? "%s://[%s]:%d/" : "%s://%s:%d/", scheme, host,
             port);
    if (url_normalize(url, strlen(url), normal, sizeof(normal), &status, &no) < 0)
        return NULL; /* no URL is spelt so: no rule covers one */
    char *folded = fold_url(normal, &failed);
    while ((r = rules_next_under(set, folded ? folded : normal, r)))
        if (r->allow_nets && !allowed_under(r, req, &from))
            break;
    free(folded);
    return r;
}

bool terms_tunnel_allowed(const char *host, int port, const struct sockaddr *client, char *why,
                          size_t size)
{
    const struct rule_set *set = rules_current();
    const struct request_facts req = {.client = client};
    const struct rule *r = NULL;
    if (client && rules_have_networks(set) && !(r = tunnel_refusal(set, "https", host, port, &req)))
        r = tunnel_refusal(set, "http", host, port, &req);
    if (r)
        snprintf(why, size,
                 "CONNECT refused: rule %s names who may fetch from this host (allow-network), "
                 "and a tunnel would pass it",
                 r->name);
    rules_put(set);
    return !r;
}
