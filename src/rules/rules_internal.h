/*
 * rules_internal.h — what rules_compile.c (a [rule NAME] section's values, checked) hands to
 * rules.c (the sorted table, the matcher, the set in force). Not for other modules: rules.h.
 */
#ifndef ARCA_RULES_INTERNAL_H
#define ARCA_RULES_INTERNAL_H

#include "rules/rules.h"
#include "tls/tls_identity.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A rule in the table, sorted by match. A match always holds "scheme://authority/", so a match
 * that is a prefix of another has the same authority, and the matches sharing an authority are
 * next to each other. */
struct rule_entry {
    const struct rule *rule;
    size_t len;      /* strlen(rule->match) */
    size_t auth_len; /* "scheme://authority", up to the path's '/' */
    long parent;     /* the longest other match that is a prefix of this one; -1: none */
};

/* At most this many warnings are kept, the last saying how many more there were; each fits a
 * line naming two rules and their files. */
#define RULES_WARNINGS_MAX 16
#define RULES_WARNING_LEN 768
/* The certificate a parent is shown (--parent-cert for --parent, a rule's parent-cert for the
 * parent it names): one per parent URL. */
struct parent_identity {
    char parent[CONFIG_PARENT_MAX];
    struct tls_identity id;
};

/* Where a parent listens (parents.c): its host and port as its base URL names them, and the
 * addresses that host had when the set was compiled (start, SIGHUP). */
#define PARENT_PLACE_ADDRS 8
struct parent_place {
    char parent[CONFIG_PARENT_MAX]; /* its base URL */
    char host[256];                 /* brackets off */
    int port;
    uint8_t addrs[PARENT_PLACE_ADDRS][16]; /* as addr_to_v6 writes them */
    int n_addrs;
};

struct rule_set {
    int refs;     /* readers and the slot in force; atomics (rules.c) */
    bool forever; /* the empty set: in force before any rules_install and whenever a set of no
                     rules is installed; never freed */
    size_t n;
    struct rule *rules;        /* in the order of the file */
    int *match_line;           /* each rule's `match` line, for errors */
    struct rule_entry *sorted; /* n of them */
    struct cidr *nets;         /* every rule's allow-network, one block */
    bool has_globs;
    bool has_nets; /* a rule names who may fetch (allow-network): terms.c folds URLs then */
    /* with has_nets: the same rules, their matches folded (fold.h), for who may fetch; NULL */
    struct rule_set *folded;
    bool folds_matches;           /* with folded: some match is spelt otherwise once folded */
    const struct rule *catch_all; /* the rule of match "*", NULL: none */
    char (*warnings)[RULES_WARNING_LEN]; /* rules_warning's, n_warnings of them */
    size_t n_warnings;
    struct parent_identity *identities; /* n_identities of them (a folded copy holds none) */
    size_t n_identities;
    struct parent_place *places; /* --parent's and each rule's, n_places of them */
    size_t n_places;
};

/* Sort the table and link each match to its parent; -1 with "FILE:LINE: rule NAME: why" in err
 * (CONFIG_ERR_LEN) when two rules have the same match. */
int rules_index(struct rule_set *set, char *err);

/* The places of --parent and of every rule's parent, resolved now (parents.c); -1 with a
 * reason in err (CONFIG_ERR_LEN) when memory lacks. */
int parents_compile(const struct config *cfg, struct rule_set *set, char *err);

#endif
