/*
 * terms.h — the terms of a request: how one URL is cached, decided once, before anything else
 * happens, from the request, the configuration, the rules (rules.h) and the table of mirrored
 * registries (registries.h: a registry's tag has its own ttl). Every way into the
 * cache (the fetch prefix, the proxy, an admin's prefetch, a bucket's file) decides them with
 * terms_decide() and then reads them, never the globals they come from: the store gets
 * `object` (store.h's struct object_keep), the download gets the fill settings and the sources,
 * and `arca rules test` / GET /api/v1/rules/ print them with where each came from. A digest hit
 * decides them for the client once more, for the URL of the object that would answer it.
 *
 * Contract: terms_decide() runs on any thread; it reads the rule set in force (rules_current(),
 * a reference held for the call) and the configuration's reloadable values; it allocates
 * nothing (a fetch_terms is a value: copy it freely), but for a URL over 8 KiB matched against
 * --mirror's regexes (sources_decide) and, where rules name networks, for the URLs a URL
 * carries in its query (carried.h), each judged for the client as the URL itself is. The same call
 * serves requests and answers the rules test, so what the test says is what arca does.
 */
#ifndef ARCA_TERMS_H
#define ARCA_TERMS_H

#include "config/config.h"
#include "registry/registries.h"
#include "remote/remote_kind.h"
#include "remote/remotes.h"
#include "rules/rules.h"
#include "store/store.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

/* Where a term's value came from, for the rules test: a rule's key, an option, the client's
 * ttl=, the origin's Cache-Control (decided when its answer comes: the stale windows), or arca's
 * own built-in value. */
enum term_from {
    FROM_BUILTIN, /* arca's own, no option names it */
    FROM_OPTION,  /* a command-line option or [arca] key (its default included) */
    FROM_RULE,    /* the rule that applies */
    FROM_CLIENT,  /* the request's ttl= (or a proxied request's Cache-Control: max-age) */
};

/* What a request brings to the decision. */
struct request_facts {
    const char *url; /* the URL's normal form, whole (url.h): what the rules match */
    const char *key; /* its cache key (keys.h) */
    /* the client (http_client: behind a --trusted-proxy, the forwarded address); NULL: arca's
     * own (a prefetch, a resume), which every rule allows */
    const struct sockaddr *client;
    int64_t client_ttl;      /* the client's ttl= in seconds, 0: none */
    bool client_ttl_shorter; /* a proxied request's max-age: it may only shorten the ttl */
    /* --allow-network's answer for the client when the caller has it already (a fetch asks it
     * before reading the URL): 1 allowed, -1 refused; 0 (left out): terms_decide asks policy.c */
    int option_says;
    /* A fetch request's Cache-Control (a child arca asks its parent with its own terms): a
     * max-age bounds the age of this request's answer, no-store keeps nothing it downloads.
     * Both are the client's word, as its ttl= is: client-ttl decides what they may do. */
    bool has_max_age;
    int64_t max_age; /* seconds, >= 0 */
    bool no_store;
    /* arca-negative-max-age=N: the age past which a kept 404 or 410 does not answer it (a child
     * arca's own negative ttl, 0 for none), as max-age bounds the rest; client-ttl decides. */
    bool has_negative_max_age;
    int64_t negative_max_age; /* seconds, >= 0 */
};

struct fetch_terms {
    /* The rule that applies: its name and where it is written ("" and 0: none applies). */
    char rule[64];
    char rule_file[256];
    int rule_line;
    bool allowed; /* the client may fetch this URL (the rule's allow-network, else
                     --allow-network's) */
    enum term_from allowed_from;
    /* The rule whose allow-network decided ("": --allow-network or arca's own): the URL's rule,
     * or, when it refused, the rule of another spelling of the URL (fold.h) */
    char allowed_rule[64];
    /* When a URL the asked one carries in its query (carried.h) refused: that URL as url_shown
     * shows it, or why it could not be judged; "" otherwise */
    char allowed_carried[200];
    struct object_keep object; /* the store's: ttl, stale windows, max size, store, pin */
    enum term_from ttl_from, client_ttl_from, stale_if_error_from, stale_while_revalidate_from,
        max_object_size_from, store_from, pin_from, fill_from, parent_from, negative_ttl_from;
    enum client_ttl_mode client_ttl;
    int64_t client_ttl_min, client_ttl_max; /* CLIENT_TTL_CLAMP's bounds, seconds */
    int64_t ttl_base; /* the ttl before the client's: the rule's, --registry-tag-ttl or
                         --default-ttl */
    /* What the URL asks of a mirrored registry's pull API (registries.h; registry.r NULL: it
     * is none): its login, its token scope, its kind of source follow from this alone. */
    struct registry_ask registry;
    bool registry_tag; /* ... a manifest by tag, or a tag list: --registry-tag-ttl's */
    /* The remote whose base the URL lies under (remotes.h; remote.r NULL: none), what its kind
     * says the URL is (metadata: --remote-meta-ttl's; pass: never kept), and for a pypi page the
     * form its key asks (REMOTE_JSON_KEY: PEP 691's JSON, asked upstream with its Accept). */
    struct {
        const struct remote *r;
        enum remote_class cls;
        bool json;
    } remote;
    /* The sha256 the URL names for its bytes (a registry's blob or manifest by digest): a
     * property of the object, checked whichever source brings them (upstream/transfer.h). */
    bool digest_named;
    uint8_t named_digest[32];
    int fill_connections;  /* connections one download may use at once; 1: one */
    int64_t fill_min_size; /* smaller objects come over one connection */
    struct source_plan sources;
    /* the address its upstream connections leave from (the rule's outgoing-address, else
     * --outgoing-address; neither: the kernel's choice) */
    struct outgoing_address outgoing;
    enum term_from outgoing_from;
};

/* What a pypi page's key ends with when it is the JSON form (PEP 691): the same URL, another
 * object (a '#' never is in a URL's normal form). */
#define REMOTE_JSON_KEY "#pypi-json"

/* Decide the terms of `req` under the rules in force and the configuration `cfg`. */
void terms_decide(const struct config *cfg, const struct request_facts *req,
                  struct fetch_terms *out);

/* Whether a redirect from `from` (a URL a download or question asked, normal form) to `to`
 * (where upstream sent it, as curl asks it) keeps the same who-may-fetch: the same rule's
 * allow-network, or --allow-network's for both, for the URLs and their folded spellings
 * (fold.h). Its bytes go to every client `from` let in: a redirect may not take them out of a
 * narrower rule, nor into one. False with a one-line why. Any thread. */
bool terms_same_access(const char *from, const char *to, char *why, size_t size);

/* A redirect's target `url` as it is recorded among the hops and shown (Arca-Redirect, a
 * refusal's words): url_shown_hop's, its query REDACTED whole (a CDN signs under any name),
 * unless the query carries a URL (carried.h, or one arca cannot read): then url_shown's, so that
 * who may fetch it is judged on what it carries, here and at a child arca. A copy the caller
 * frees (NULL: out of memory). Any thread. */
char *terms_hop_shown(const char *url);

/* Whether `client` may have an object whose download went through `hops` (each URL a redirect
 * took it to, one a line, as terms_hop_shown shows them: store.h's object_meta.redirects): it may
 * fetch each of them, decided under the rules in force as a request for that URL would be
 * (its rule's allow-network, else --allow-network, both spellings). A rule made since the
 * download may have narrowed one: the cached bytes are a refused client's no more than a
 * download of them would be. False with the why a download's refusal of that redirect gives
 * (terms_same_access's). NULL client (arca's own): true. Any thread. */
bool terms_hops_allowed(const char *hops, const struct sockaddr *client, char *why, size_t size);

/* Whether a CONNECT tunnel to `host` (an address without brackets, or a name) and `port` may
 * be opened for `client`: no rule that names networks leaving the client out covers a URL of
 * that authority, http:// or https:// (a tunnel carries what it likes, past every rule). False
 * with a one-line why. Any thread. */
bool terms_tunnel_allowed(const char *host, int port, const struct sockaddr *client, char *why,
                          size_t size);

/* Whether a listing may show `url` (normal form) to `client`: no rule that names networks
 * refuses it the URL (terms_decide's who-may-fetch, both spellings); the listing's own gate
 * (--allow-network, --ui-network) is the caller's. Any thread. */
bool terms_listed_for(const char *url, const struct sockaddr *client);
/* Whether a listing may show the folder of URLs starting with `prefix` (normal form) to
 * `client`: false only when every one of them is refused it by a rule that names networks
 * (terms_listed_for refuses `prefix`, whose rule covers them all, and no rule that names
 * networks holding the client matches some URL under it). Any thread. */
bool terms_prefix_listed_for(const char *prefix, const struct sockaddr *client);

/* Whether the parent of `t` may be sent `url` (the client's, whole): it carries no credentials,
 * or that parent may have them (https://, or --parent-trusted-http). Asked where a parent is
 * asked (a download, a confirmation, the rules test), never on every request: it reads the
 * URL's query. Any thread. */
bool terms_parent_may_see(const struct config *cfg, const struct fetch_terms *t, const char *url);

/* The URL mirror `k` (0 .. sources.n_mirrors - 1) is asked for `url`, into a new string (NULL:
 * out of memory, or no such mirror). */
char *terms_source_url(const struct config *cfg, const struct fetch_terms *t, const char *url,
                       int k);

/* The word for a term's origin: "rule", "option", "ttl=" or "built-in" (the rules test, explain.h,
 * names the rule and the option: "rule nightly", "--default-ttl"). */
const char *terms_from_name(enum term_from from);

#endif
