/* The [rule NAME] sections of the INI file, read raw into struct config (config.h): their
 * names, keys and lines. What a value means is rules/'s to check (rules_compile). */
#include "config/config.h"
#include "config/config_internal.h"
#include "base/hash.h"
#include "base/parse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const config_rule_keys[] = {"match",
                                        "ttl",
                                        "client-ttl",
                                        "store",
                                        "pin",
                                        "stale-if-error",
                                        "stale-while-revalidate",
                                        "fill-connections",
                                        "fill-min-size",
                                        "parent",
                                        "parent-cert",
                                        "parent-key",
                                        "max-object-size",
                                        "allow-network",
                                        "outgoing-address",
                                        "negative-ttl",
                                        NULL};

void config_free(struct config *cfg)
{
    for (int i = 0; i < cfg->n_rules; i++) {
        struct config_rule *r = &cfg->rules[i];
        for (int k = 0; k < r->n_keys; k++) {
            free(r->keys[k].key);
            free(r->keys[k].value);
        }
        free(r->keys);
        free(r->name);
        free(r->file);
    }
    free(cfg->rules);
    free(cfg->rule_names);
    cfg->rules = NULL;
    cfg->rule_names = NULL;
    cfg->n_rules = cfg->cap_rules = cfg->cap_rule_names = 0;
}

/* Room for one more in an array of `*cap` items of `size` bytes growing by doubling: -1 when
 * out of memory (the array stays as it was). */
static int grow(void **items, int n, int *cap, size_t size)
{
    void *more;
    int want = *cap ? *cap * 2 : 8;
    if (n < *cap)
        return 0;
    if (!(more = realloc(*items, (size_t)want * size)))
        return -1;
    *items = more;
    *cap = want;
    return 0;
}

static bool rule_name_ok(const char *name)
{
    size_t len = strlen(name);
    return len > 0 && len < 64 &&
           strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == len;
}

/* The slot of cfg->rule_names that holds `name`, or the empty one where it would go. */
static int *name_slot(const struct config *cfg, const char *name)
{
    unsigned mask = (unsigned)cfg->cap_rule_names - 1;
    /* FNV-1a: names are short, and a file's names alike (h1, h2, ...) spread well */
    for (unsigned i = fnv1a(name, FNV1A_START) & mask;; i = (i + 1) & mask) {
        int *slot = &cfg->rule_names[i];
        if (!*slot || !strcmp(cfg->rules[*slot - 1].name, name))
            return slot;
    }
}

/* Room in the name index for one more rule (kept at most half full, so that a probe ends
 * soon): -1 when out of memory (the index stays as it was). */
static int grow_names(struct config *cfg)
{
    int cap = cfg->cap_rule_names ? cfg->cap_rule_names : 16, *old = cfg->rule_names;
    int old_cap = cfg->cap_rule_names;
    if (2 * (cfg->n_rules + 1) <= old_cap)
        return 0;
    while (2 * (cfg->n_rules + 1) > cap)
        cap *= 2;
    if (!(cfg->rule_names = calloc((size_t)cap, sizeof(int)))) {
        cfg->rule_names = old;
        return -1;
    }
    cfg->cap_rule_names = cap;
    for (int i = 0; i < old_cap; i++)
        if (old[i])
            *name_slot(cfg, cfg->rules[old[i] - 1].name) = old[i];
    free(old);
    return 0;
}

int config_rule_begin(struct config *cfg, const char *name, const char *file, int line, char *err)
{
    struct config_rule *r;
    int *slot;
    if (!rule_name_ok(name)) {
        snprintf(err, CONFIG_ERR_LEN, "rule name '%.64s': 1-63 letters, digits, '.', '_' or '-'",
                 name);
        return -1;
    }
    if (grow_names(cfg) < 0)
        goto oom;
    slot = name_slot(cfg, name);
    if (*slot) {
        r = &cfg->rules[*slot - 1];
        snprintf(err, CONFIG_ERR_LEN, "rule %s given twice (first at %.100s:%d)", name, r->file,
                 r->line);
        return -1;
    }
    if (grow((void **)&cfg->rules, cfg->n_rules, &cfg->cap_rules, sizeof(*cfg->rules)) < 0)
        goto oom;
    r = &cfg->rules[cfg->n_rules];
    memset(r, 0, sizeof(*r));
    r->line = line;
    if (!(r->name = strdup(name)) || !(r->file = strdup(file))) {
        free(r->name);
        goto oom;
    }
    *slot = ++cfg->n_rules;
    return 0;
oom:
    snprintf(err, CONFIG_ERR_LEN, "rule %s: out of memory", name);
    return -1;
}

/* "unknown key 'ttll'; did you mean ttl?" */
static void unknown_key(const struct config_rule *r, const char *key, char *err)
{
    const char *near = parse_nearest_name(key, config_rule_keys);
    if (config_option(key)) /* an option written below a rule's section */
        snprintf(err, CONFIG_ERR_LEN,
                 "rule %s: '%.64s' is an option, not a rule's key: write options before the "
                 "first section, or under [arca]",
                 r->name, key);
    else if (near)
        snprintf(err, CONFIG_ERR_LEN, "rule %s: unknown key '%.64s'; did you mean %s?", r->name,
                 key, near);
    else
        snprintf(err, CONFIG_ERR_LEN,
                 "rule %s: unknown key '%.64s' (a rule's keys: docs/CACHING.md, \"Rules\")",
                 r->name, key);
}

int config_rule_add_key(struct config *cfg, int rule, const char *key, const char *value, int line,
                        char *err)
{
    struct config_rule *r = &cfg->rules[rule];
    struct config_rule_key *k;
    bool known = false;
    for (int i = 0; config_rule_keys[i]; i++)
        known = known || !strcmp(config_rule_keys[i], key);
    if (!known) {
        unknown_key(r, key, err);
        return -1;
    }
    for (int i = 0; i < r->n_keys && strcmp(key, "allow-network") != 0; i++) {
        if (!strcmp(r->keys[i].key, key)) {
            snprintf(err, CONFIG_ERR_LEN, "rule %s: %s given twice (first at line %d)", r->name,
                     key, r->keys[i].line);
            return -1;
        }
    }
    if (grow((void **)&r->keys, r->n_keys, &r->cap_keys, sizeof(*r->keys)) < 0)
        goto oom;
    k = &r->keys[r->n_keys];
    k->line = line;
    if (!(k->key = strdup(key)) || !(k->value = strdup(value))) {
        free(k->key);
        goto oom;
    }
    r->n_keys++;
    return 0;
oom:
    snprintf(err, CONFIG_ERR_LEN, "rule %s: out of memory", r->name);
    return -1;
}
