/* The rule table (rules.h): sorted matches, each linked to the longest match that is a prefix of
 * it, so that the longest match covering a URL is one binary search and a walk up that chain;
 * and the set in force, swapped by SIGHUP under readers that hold a reference. */
#include "rules/rules.h"
#include "rules/rules_internal.h"
#include "base/parse.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int by_match(const void *a, const void *b)
{
    return strcmp(((const struct rule_entry *)a)->rule->match,
                  ((const struct rule_entry *)b)->rule->match);
}

/* The length of "scheme://" and the authority: every match and every URL in normal form has a
 * path after it; "*" has none. A glob's "*." host is no host parse_url accepts, but it splits
 * it all the same. */
static size_t authority_len(const char *url)
{
    struct url_parts u;
    parse_url(url, strlen(url), &u);
    return u.scheme ? (size_t)(u.authority + u.authority_len - url) : strlen(url);
}

/* The parents, in one pass over the sorted table: the matches that are prefixes of the current
 * one are on the stack, the longest on top (a prefix sorts before what it starts). */
static int link_parents(struct rule_set *set)
{
    long *stack = malloc((set->n ? set->n : 1) * sizeof(*stack)), top = 0;
    if (!stack)
        return -1;
    for (size_t i = 0; i < set->n; i++) {
        struct rule_entry *e = &set->sorted[i];
        while (top > 0) {
            const struct rule_entry *p = &set->sorted[stack[top - 1]];
            if (p->len < e->len && !memcmp(p->rule->match, e->rule->match, p->len))
                break;
            top--;
        }
        e->parent = top > 0 ? stack[top - 1] : -1;
        stack[top++] = (long)i;
    }
    free(stack);
    return 0;
}

int rules_index(struct rule_set *set, char *err)
{
    if (!(set->sorted = calloc(set->n ? set->n : 1, sizeof(*set->sorted)))) {
        snprintf(err, CONFIG_ERR_LEN, "rules: out of memory");
        return -1;
    }
    for (size_t i = 0; i < set->n; i++) {
        set->sorted[i].rule = &set->rules[i];
        set->sorted[i].len = strlen(set->rules[i].match);
        set->sorted[i].auth_len = authority_len(set->rules[i].match);
        set->has_globs = set->has_globs || set->rules[i].host_glob;
        set->has_nets = set->has_nets || set->rules[i].allow_nets;
        if (set->rules[i].catch_all) /* "*" prefixes no URL: the table never finds it */
            set->catch_all = &set->rules[i];
    }
    qsort(set->sorted, set->n, sizeof(*set->sorted), by_match);
    for (size_t i = 1; i < set->n; i++) {
        const struct rule *a = set->sorted[i - 1].rule, *b = set->sorted[i].rule;
        if (strcmp(a->match, b->match) != 0)
            continue;
        if (b->line < a->line && !strcmp(a->file, b->file)) { /* name the later one */
            const struct rule *t = a;
            a = b;
            b = t;
        }
        snprintf(err, CONFIG_ERR_LEN, "%.60s:%d: rule %s: the same match as rule %s (line %d)",
                 b->file, set->match_line[b - set->rules], b->name, a->name,
                 set->match_line[a - set->rules]);
        return -1;
    }
    if (link_parents(set) < 0) {
        snprintf(err, CONFIG_ERR_LEN, "rules: out of memory");
        return -1;
    }
    return 0;
}

/* The text a URL is matched as: "scheme://" (head), then "*." when a glob is tried, then the
 * rest of the URL from its host or one of the host's dot-suffixes on (userinfo left out). */
struct key {
    const char *head;
    size_t head_len;
    bool glob;
    const char *tail; /* to the URL's end */
};

/* strcmp of `s` against the key. */
static int key_cmp(const char *s, const struct key *k)
{
    int c = strncmp(s, k->head, k->head_len);
    if (c || (c = k->glob ? strncmp(s + k->head_len, "*.", 2) : 0))
        return c;
    return strcmp(s + k->head_len + (k->glob ? 2 : 0), k->tail);
}

/* How many bytes `s` and the key have in common from the start. */
static size_t key_common(const char *s, const struct key *k)
{
    const char *parts[3] = {k->head, k->glob ? "*." : "", k->tail};
    size_t lens[3] = {k->head_len, k->glob ? 2 : 0, (size_t)-1}, n = 0;
    for (int p = 0; p < 3; p++)
        for (size_t i = 0; i < lens[p] && parts[p][i]; i++, n++)
            if (s[n] != parts[p][i])
                return n;
    return n;
}

/* The last entry sorting at or before the key; -1: none. */
static long last_at_or_before(const struct rule_set *set, const struct key *k)
{
    long lo = 0, hi = (long)set->n - 1, found = -1;
    while (lo <= hi) {
        long mid = lo + (hi - lo) / 2;
        if (key_cmp(set->sorted[mid].rule->match, k) <= 0) {
            found = mid;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    return found;
}

/* The longest match that is a prefix of the key: in the chain of parents of the entry sorting
 * just before it (any prefix of the key sorts between itself and the key, so it starts that
 * entry), the first no longer than what the entry and the key share. -1: none. */
static long longest_prefix(const struct rule_set *set, const struct key *k)
{
    long i = last_at_or_before(set, k);
    size_t common;
    if (i < 0)
        return -1;
    common = key_common(set->sorted[i].rule->match, k);
    while (i >= 0 && set->sorted[i].len > common)
        i = set->sorted[i].parent;
    return i;
}

/* Precedence: the longer path covered (every candidate covers the URL's whole authority), then
 * a named host before a glob, then the longer glob. Positive when a goes before b. */
static long precedes(const struct rule_entry *a, const struct rule_entry *b)
{
    size_t pa = a->len - a->auth_len, pb = b->len - b->auth_len;
    if (pa != pb)
        return pa > pb ? 1 : -1;
    if (a->rule->host_glob != b->rule->host_glob)
        return a->rule->host_glob ? -1 : 1;
    return (long)a->auth_len - (long)b->auth_len;
}

/* Where a URL's host starts and ends (after any userinfo, before any port); false when `url`
 * is no absolute URL. A host parse_url refuses (no URL in normal form has one) runs to the
 * authority's end. */
static bool url_host_span(const char *url, size_t *scheme, size_t *host, size_t *host_end)
{
    struct url_parts u;
    enum url_error e = parse_url(url, strlen(url), &u);
    if (!u.scheme)
        return false;
    *scheme = (size_t)(u.authority - url);
    *host = (size_t)(u.host - url);
    *host_end = e == URL_OK ? *host + u.host_len : (size_t)(u.authority + u.authority_len - url);
    return true;
}

/* Calls `take` with each candidate chain of the URL: its named host, then each of its host's
 * dot-suffixes as a glob (a.b.example.org: *.b.example.org, *.example.org, *.org). An IP
 * address has no glob. */
static void each_candidate(const struct rule_set *set, const char *url,
                           void (*take)(const struct rule_set *, long, void *), void *arg)
{
    size_t scheme, host, host_end;
    struct key k;
    if (set->n == 0 || !url_host_span(url, &scheme, &host, &host_end))
        return;
    k = (struct key){url, scheme, false, url + host};
    take(set, longest_prefix(set, &k), arg);
    if (!set->has_globs || url[host] == '[' || strspn(url + host, "0123456789.") >= host_end - host)
        return;
    for (size_t i = host; i < host_end; i++) {
        if (url[i] != '.' || i + 1 >= host_end)
            continue;
        k = (struct key){url, scheme, true, url + i + 1};
        take(set, longest_prefix(set, &k), arg);
    }
}

static void take_best(const struct rule_set *set, long i, void *arg)
{
    const struct rule_entry **best = arg;
    if (i >= 0 && (!*best || precedes(&set->sorted[i], *best) > 0))
        *best = &set->sorted[i];
}

const struct rule *rules_match(const struct rule_set *set, const char *url)
{
    const struct rule_entry *best = NULL;
    each_candidate(set, url, take_best, &best);
    return best ? best->rule : set->catch_all;
}

/* The first of the chain from entry i up that names networks (a chain shares one authority,
 * longest first: the chain's best), kept when it goes before the best so far. */
static void take_networks(const struct rule_set *set, long i, void *arg)
{
    const struct rule_entry **best = arg;
    for (; i >= 0; i = set->sorted[i].parent) {
        const struct rule_entry *e = &set->sorted[i];
        if (!e->rule->allow_nets)
            continue;
        if (!*best || precedes(e, *best) > 0)
            *best = e;
        return;
    }
}

const struct rule *rules_match_networks(const struct rule_set *set, const char *url)
{
    const struct rule_entry *best = NULL;
    if (!set->has_nets)
        return NULL;
    each_candidate(set, url, take_networks, &best);
    if (best)
        return best->rule;
    return set->catch_all && set->catch_all->allow_nets ? set->catch_all : NULL;
}

struct all {
    const struct rule_entry *found[64];
    const struct rule **out;
    size_t n, max;
};

/* Every match of the chain from entry i up, each put in its place by precedence; the last
 * dropped when `max` are kept. */
static void take_all(const struct rule_set *set, long i, void *arg)
{
    struct all *a = arg;
    size_t keep = a->max < 64 ? a->max : 64;
    for (; i >= 0; i = set->sorted[i].parent) {
        const struct rule_entry *e = &set->sorted[i];
        size_t at = a->n;
        while (at > 0 && precedes(e, a->found[at - 1]) > 0)
            at--;
        if (at >= keep)
            continue;
        if (a->n == keep)
            a->n--;
        memmove(&a->found[at + 1], &a->found[at], (a->n - at) * sizeof(a->found[0]));
        a->found[at] = e;
        a->n++;
    }
}

size_t rules_match_all(const struct rule_set *set, const char *url, const struct rule **out,
                       size_t max)
{
    struct all a = {.out = out, .max = max};
    each_candidate(set, url, take_all, &a);
    for (size_t i = 0; i < a.n; i++)
        out[i] = a.found[i]->rule;
    if (set->catch_all && a.n < (max < 64 ? max : 64))
        out[a.n++] = set->catch_all; /* behind every other */
    return a.n;
}

size_t rules_count(const struct rule_set *set)
{
    return set ? set->n : 0;
}

const struct tls_identity *rules_parent_identity(const struct rule_set *set, const char *parent)
{
    for (size_t i = 0; set && i < set->n_identities; i++)
        if (!strcmp(set->identities[i].parent, parent))
            return &set->identities[i].id;
    return NULL;
}

void rules_free(struct rule_set *set)
{
    if (!set || set->forever)
        return;
    for (size_t i = 0; i < set->n_identities; i++)
        tls_identity_free(&set->identities[i].id);
    free(set->identities);
    free(set->places);
    rules_free(set->folded);
    free(set->warnings);
    free(set->rules);
    free(set->match_line);
    free(set->sorted);
    free(set->nets);
    free(set);
}

/* The set in force. A reader takes its reference under the read lock, so SIGHUP's swap (the
 * write lock) never drops the last reference between a reader's load and its increment; the
 * lock is held for those two steps only, and nothing is taken under it: a leaf, taken after the
 * store's mutex (store_open_twin's `allowed` decides a URL's terms under it), never before. */
static struct rule_set empty = {.forever = true};
static struct rule_set *in_force = &empty;
static pthread_rwlock_t swap_lock = PTHREAD_RWLOCK_INITIALIZER;

/* Whether a rule of the set in force names networks that may fetch (rules_widen_any): set with
 * the set, read without its lock (a refused request asks it, every such request). */
static bool widens;

bool rules_have_networks(const struct rule_set *set)
{
    return set->has_nets;
}

const struct rule *rules_match_folded(const struct rule_set *set, const char *folded_url)
{
    return set->folded ? rules_match_networks(set->folded, folded_url) : NULL;
}

const char *rules_warning(const struct rule_set *set, size_t i)
{
    return i < set->n_warnings ? set->warnings[i] : NULL;
}

bool rules_fold_matches(const struct rule_set *set)
{
    return set->folds_matches;
}

/* Whether glob match `m` ("scheme://" then "*.suffix[:port]/...") covers `root`'s authority. */
static bool glob_covers(const char *m, const char *root)
{
    struct url_parts g, r;
    parse_url(m, strlen(m), &g); /* "*." is no host: the split is enough */
    parse_url(root, strlen(root), &r);
    if (!g.scheme || !r.scheme || g.authority_len < 1)
        return false;
    size_t scheme = (size_t)(g.authority - m), suffix = g.authority_len - 1; /* past the '*' */
    return !strncmp(m, root, scheme) && r.authority_len > suffix &&
           !memcmp(r.authority + r.authority_len - suffix, g.authority + 1, suffix);
}

const struct rule *rules_next_under(const struct rule_set *set, const char *root,
                                    const struct rule *after)
{
    const struct rule_set *f = set->folded;
    size_t len = strlen(root);
    for (size_t i = after ? (size_t)(after - f->rules) + 1 : 0; f && i < f->n; i++) {
        const struct rule *r = &f->rules[i];
        if (r->catch_all ||
            (r->host_glob ? glob_covers(r->match, root) : !strncmp(r->match, root, len)))
            return r;
    }
    return NULL;
}

bool rules_widen_any(void)
{
    return __atomic_load_n(&widens, __ATOMIC_RELAXED);
}

static bool names_networks(const struct rule_set *set)
{
    for (size_t i = 0; i < set->n; i++)
        if (set->rules[i].allow_nets && set->rules[i].n_allow_nets > 0)
            return true;
    return false;
}

/* Whether no rule is in force: every request of a lab without rules asks, so it is read without
 * the lock (the set it then gets is `empty`, which is never freed). */
static bool none_in_force = true;

void rules_install(struct rule_set *set)
{
    struct rule_set *old;
    /* the same answers as `empty`, which readers take without the lock */
    if (set->n == 0 && set->n_identities == 0) {
        rules_free(set);
        set = &empty;
    }
    __atomic_store_n(&widens, names_networks(set), __ATOMIC_RELAXED);
    if (!set->forever)
        __atomic_store_n(&set->refs, 1, __ATOMIC_RELAXED); /* in force */
    pthread_rwlock_wrlock(&swap_lock);
    old = in_force;
    in_force = set;
    __atomic_store_n(&none_in_force, set == &empty, __ATOMIC_RELEASE);
    pthread_rwlock_unlock(&swap_lock);
    rules_put(old);
}

const struct rule_set *rules_current(void)
{
    struct rule_set *set;
    if (__atomic_load_n(&none_in_force, __ATOMIC_ACQUIRE))
        return &empty; /* a reload racing this request: it gets the rules of just before */
    pthread_rwlock_rdlock(&swap_lock);
    set = in_force;
    if (!set->forever)
        __atomic_add_fetch(&set->refs, 1, __ATOMIC_RELAXED);
    pthread_rwlock_unlock(&swap_lock);
    return set;
}

void rules_put(const struct rule_set *set)
{
    struct rule_set *s = (struct rule_set *)set;
    if (!s || s->forever)
        return;
    if (__atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) == 0)
        rules_free(s);
}
