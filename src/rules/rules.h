/*
 * rules.h — the admin's per-prefix rules ([rule NAME] sections of the INI file, docs/CACHING.md
 * "Rules"): a compiled, immutable set, and the matcher that finds the rule for a URL.
 *
 * A rule's `match` is a URL prefix, scheme and host included, put in the normal form arca keys
 * by (url.h: a %-escape or a dot segment is matched as the URL that arca fetches is); the host
 * may start with "*." (any host ending in what follows, not the bare domain). The rule that
 * applies is the one whose match covers the longest start of the URL; on a tie a named host
 * beats a glob, and a longer glob beats a shorter one. Two rules with the same match are an
 * error. Finding it costs O(log n) string compares (a sorted table, not a list walked): one
 * binary search for the URL's host, and, when some rule has a glob, one for each of the host's
 * dot-suffixes (a.b.example.org: *.b.example.org, *.example.org, *.org). A URL's userinfo is
 * no part of what is matched; a match holds none. A match of "*" (one rule at most) covers
 * every URL, behind any other match: the rule of the URLs no other rule covers.
 *
 * Who may fetch a URL is decided by the rule that applies when it names networks
 * (allow-network), else by the next rule covering the URL, in precedence, that names some (a
 * size limit inside a private prefix does not open it), else by --allow-network.
 *
 * Contract: rules_compile() runs on any thread and touches nothing shared (it looks the
 * parents' names up, so it may block: start, SIGHUP, check-config); rules_install()
 * makes a set the one in force (start and SIGHUP, main thread); rules_current() and
 * rules_put() may be called from any thread: a set stays alive while a reference is held, so a
 * SIGHUP never frees one under a request. A set never changes once compiled.
 */
#ifndef ARCA_RULES_H
#define ARCA_RULES_H

#include "config/config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A client's ttl=, as a rule lets it act (client-ttl). */
enum client_ttl_mode {
    CLIENT_TTL_OBEY,   /* as without rules: a client's ttl= is the request's ttl */
    CLIENT_TTL_IGNORE, /* a client's ttl= is ignored */
    CLIENT_TTL_CLAMP,  /* kept within [client_ttl_min, client_ttl_max] */
};

/* Where a download may come from, in order: the mirrors of the --mirror rule its URL matches,
 * then the origin (docs/CACHING.md, "Mirrors"). A mirror is sent the URL without anything that
 * authorises the client (signature, userinfo, tokens); the origin the client's URL, whole.
 * The mirror URLs themselves are made by terms_source_url(). */
#define TERMS_MAX_SOURCES (CONFIG_MAX_MIRRORS + 1)
struct source_plan {
    int mirror_rule;   /* the --mirror rule matched (its index), -1: none: the origin alone */
    int n_mirrors;     /* that rule's mirrors, asked in order before the origin */
    bool origin_first; /* the URL carries credentials: the origin must accept it before a mirror */
    /* The parent arca asked before all of them (upstream/parent.h): its base URL, "" none (no
     * --parent, or the rule's `parent = none`); `parent_only`: never the origin directly;
     * `parent_credentials`: the parent may be sent a URL's credentials (https://, or
     * --parent-trusted-http; whether a URL has some: terms_parent_may_see). */
    char parent[CONFIG_PARENT_MAX];
    bool parent_only, parent_credentials;
};

/* One compiled rule. A field a rule does not set has its `has_` false: the option applies. */
struct rule {
    char name[64];
    char file[256];
    int line;         /* of its [rule NAME] line */
    char match[1024]; /* its normal form, as matched */
    bool host_glob;   /* match's host starts with "*." */
    bool catch_all;   /* match is "*": every URL, behind any other match */
    bool has_ttl, has_client_ttl, has_stale_if_error, has_stale_while_revalidate, has_store,
        has_pin, has_fill_connections, has_fill_min_size, has_max_object_size, has_parent,
        has_negative_ttl;
    char parent[CONFIG_PARENT_MAX]; /* with has_parent: its parent's base URL, "" none */
    int64_t ttl;
    enum client_ttl_mode client_ttl;
    int64_t client_ttl_min, client_ttl_max;
    int64_t stale_if_error, stale_while_revalidate;
    int64_t negative_ttl; /* seconds a 404 or 410 answers for its URL (0: never) */
    bool store, pin;
    int fill_connections;
    int64_t fill_min_size, max_object_size;
    bool has_outgoing;
    struct outgoing_address outgoing; /* with has_outgoing: its upstream connections' address */
    struct cidr *allow_nets; /* allow-network under this prefix (NULL: --allow-network's) */
    int n_allow_nets;        /* with allow_nets: 0 means nobody */
};

struct rule_set;

/* Compile the [rule NAME] sections cfg->rules holds: each value checked, each match put in
 * normal form, the table sorted. NULL with a one-line "FILE:LINE: rule NAME: why" in err
 * (size CONFIG_ERR_LEN) on the first bad rule. No rules: an empty set. */
struct rule_set *rules_compile(const struct config *cfg, char *err);
/* Make `set` (taken over) the one in force; the one before goes once its last reader is done. */
void rules_install(struct rule_set *set);
/* The set in force, with a reference; never NULL once rules_install ran (an empty set before). */
const struct rule_set *rules_current(void);
void rules_put(const struct rule_set *set);
/* Free a set never installed (one compiled to be checked, or refused); an installed set goes
 * with rules_put. */
void rules_free(struct rule_set *set);
/* The set's warnings, each one line "FILE:LINE: rule NAME ..." (the last may count those past
 * a bound): what the admin may not mean though arca can serve it (a rule that names no
 * networks inside the prefix of one that does). The i-th, NULL past the last. For check-config
 * and the start-up and reload logs. */
const char *rules_warning(const struct rule_set *set, size_t i);

size_t rules_count(const struct rule_set *set);
/* The certificate parent `parent` (a base URL, config_parent_url's form) is shown, read and
 * checked when `set` was compiled: --parent-cert for --parent, a rule's parent-cert for the
 * parent it names (tls/tls_identity.h); NULL: none. Valid while `set` is held. */
struct tls_identity;
const struct tls_identity *rules_parent_identity(const struct rule_set *set, const char *parent);
/* A parent (--parent, a rule's parent) serves this arca every URL, seeing this arca's address:
 * it is never an origin, a redirect's target nor a tunnel's end. Whether `url`'s authority is a
 * parent's of the set in force: the same port, and the same host by name or as an address
 * literal of one of the addresses the parent's name had when the rules were read (start,
 * SIGHUP). With a one-line reason in `why` (NULL: none wanted). Any thread. */
bool rules_names_parent(const char *url, char *why, size_t size);
/* Whether address `sa` at `port` is one of a parent's (as rules_names_parent), with a
 * one-line reason. Any thread. */
struct sockaddr;
bool rules_addr_is_parent(const struct sockaddr *sa, int port, char *why, size_t size);

/* The rule for `url` (its normal form); NULL: none. */
const struct rule *rules_match(const struct rule_set *set, const char *url);
/* Every rule matching `url`, the winner first, then the losers by precedence: how many were
 * written (at most `max`, and at most 64). */
size_t rules_match_all(const struct rule_set *set, const char *url, const struct rule **out,
                       size_t max);

/* Whether a rule of the set in force names networks of its own (allow-network): then a client
 * outside --allow-network may still fetch under its prefix, and is refused only once its URL is
 * read. Any thread. */
bool rules_widen_any(void);
/* Whether a rule of `set` names who may fetch (allow-network: more, fewer or none). */
bool rules_have_networks(const struct rule_set *set);
/* The rule whose allow-network decides who may fetch `url` (normal form): of the rules covering
 * it that name networks, the one that takes precedence (the catch-all last); NULL: none, then
 * --allow-network decides. */
const struct rule *rules_match_networks(const struct rule_set *set, const char *url);
/* With rules_have_networks: rules_match_networks for a URL in folded form (fold.h) among the
 * rules' folded matches, a copy of the set's rule (its name and networks); NULL: none. */
const struct rule *rules_match_folded(const struct rule_set *set, const char *folded_url);
/* Whether some match of `set` is spelt otherwise once folded: else a URL that does not fold
 * falls under the same rule in both tables, and need not be looked up twice. */
bool rules_fold_matches(const struct rule_set *set);
/* With rules_have_networks: the next rule after `after` (NULL: the first) among the folded
 * matches that covers some URL under `root` ("scheme://authority/", folded), in no order; NULL
 * when no more. What a tunnel to that authority would pass (terms_tunnel_allowed). */
const struct rule *rules_next_under(const struct rule_set *set, const char *root,
                                    const struct rule *after);

/* Mirrors (--mirror), compiled once at start (they do not reload): rules/sources.c. */
int sources_init(const struct config *cfg, char *err, size_t errlen);
void sources_cleanup(void);
/* Which mirror rule `url` (the client's, whole) falls under, and whether it carries
 * credentials (the origin first). No allocation for a URL under 8 KiB; nothing at all to do
 * without --mirror. */
void sources_decide(const struct config *cfg, const char *url, struct source_plan *out);
/* Mirror k's URL for `url` under `s` (sources_decide's): the URL without its credentials, the
 * text the rule's regex matched replaced by the mirror. A new string; NULL: out of memory, or
 * no such mirror. terms_source_url() is this for a request's terms. */
/* Whether `url` carries credentials (a signature, userinfo, a token): what only the origin, or a
 * parent that may be sent them, is asked with. */
bool sources_credentials(const struct config *cfg, const char *url);
char *sources_mirror_url(const struct config *cfg, const struct source_plan *s, const char *url,
                         int k);

#endif
