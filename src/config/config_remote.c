/* The remotes as configured (config_internal.h): --remote NAME=URL, --remote NAME:KIND=URL and
 * [remote NAME] sections (url, kind, file-hosts), each NAME given in one place, as registries
 * are. */
#include "config/config.h"
#include "config/config_internal.h"

#include <stdio.h>
#include <string.h>

static const char *const kinds[] = {"files", "apt", "pypi", "go"};
#define N_KINDS (sizeof(kinds) / sizeof(kinds[0]))

/* A NAME as the first segment of a path: letters, digits, '.', '_', '-', begun with a letter or
 * a digit (no ".." and nothing a client would have to escape). */
static bool name_ok(const char *name, size_t len)
{
    if (len == 0 || len >= CONFIG_REMOTE_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-')))
            return false;
    }
    return true;
}

static int kind_of(const char *v, size_t len, enum remote_kind *out)
{
    for (size_t k = 0; k < N_KINDS; k++)
        if (strlen(kinds[k]) == len && !strncmp(kinds[k], v, len)) {
            *out = (enum remote_kind)k;
            return 0;
        }
    return -1;
}

const char *config_remote_kind_name(enum remote_kind kind)
{
    return (size_t)kind < N_KINDS ? kinds[kind] : "files";
}

/* Where a remote was given, as an error names it. */
static void place(const struct config_origin *o, char *out, size_t size)
{
    if (o->line > 0)
        snprintf(out, size, "at %.40s:%d", o->file, o->line);
    else
        snprintf(out, size, "on the command line");
}

/* The remote called `name`, added when new, given at `here`; NULL with the reason (a NAME given
 * in another place before: which URL would win is asked of the user, never decided). */
static struct remote_conf *remote_named(struct config *cfg, const char *name, size_t len,
                                        const struct config_origin *here, char *err)
{
    char first[64], second[64];
    for (int i = 0; i < cfg->n_remotes; i++) {
        const struct config_origin *was = &cfg->remote_origins[i];
        if (strlen(cfg->remotes[i].name) != len || strncmp(cfg->remotes[i].name, name, len))
            continue;
        if (here->line > 0 && was->line == here->line && !strcmp(was->file, here->file))
            return &cfg->remotes[i];
        place(was, first, sizeof(first));
        place(here, second, sizeof(second));
        snprintf(err, CONFIG_ERR_LEN, "remote %.40s given twice: %.60s and %.60s (one per NAME)",
                 cfg->remotes[i].name, first, second);
        return NULL;
    }
    if (!name_ok(name, len)) {
        snprintf(err, CONFIG_ERR_LEN,
                 "remote name '%.*s': letters, digits, '.', '_' and '-', begun with a letter or a "
                 "digit, at most %d",
                 (int)(len < 64 ? len : 64), name, CONFIG_REMOTE_NAME_MAX - 1);
        return NULL;
    }
    if (cfg->n_remotes == CONFIG_MAX_REMOTES) {
        snprintf(err, CONFIG_ERR_LEN, "at most %d remotes", CONFIG_MAX_REMOTES);
        return NULL;
    }
    cfg->remote_origins[cfg->n_remotes] = *here;
    struct remote_conf *r = &cfg->remotes[cfg->n_remotes++];
    memset(r, 0, sizeof(*r));
    memcpy(r->name, name, len);
    return r;
}

/* Its base URL, as a parent's is taken: http(s), no credentials (they would show), no query. */
static int set_url(struct remote_conf *r, const char *v, char *err)
{
    char why[160];
    if (config_parent_url(v, r->url, why, sizeof(why)) < 0) {
        snprintf(err, CONFIG_ERR_LEN, "remote %.64s: url: %s", r->name, why);
        return -1;
    }
    return 0;
}

static int set_kind(struct remote_conf *r, const char *v, size_t len, char *err)
{
    if (kind_of(v, len, &r->kind) == 0)
        return 0;
    snprintf(err, CONFIG_ERR_LEN, "remote %.64s: kind '%.*s': files, apt, pypi or go expected",
             r->name, (int)(len < 32 ? len : 32), v);
    return -1;
}

/* A host[:port] as a URL's authority writes it, in lower case: letters, digits, '.', '-', an
 * IPv6 address in brackets, an optional port. */
static bool host_ok(const char *h, size_t len)
{
    if (len == 0 || len >= CONFIG_REGISTRY_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = h[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || strchr(".-:[]", c)))
            return false;
    }
    return true;
}

/* `file-hosts = HOST[:PORT], ...` (a section says it once: config_file.c). */
static int set_file_hosts(struct remote_conf *r, const char *v, char *err)
{
    const char *bad;
    size_t len;
    if (config_name_list(v, host_ok, r->file_hosts, CONFIG_REMOTE_FILE_HOSTS, &r->n_file_hosts,
                         &bad, &len) == 0)
        return 0;
    snprintf(err, CONFIG_ERR_LEN,
             "remote %.64s: file-hosts: '%.*s' is no HOST[:PORT] in lower case (at most %d, "
             "separated by ',')",
             r->name, (int)(len < 64 ? len : 64), bad, CONFIG_REMOTE_FILE_HOSTS);
    return -1;
}

int config_remote_option(struct config *cfg, const char *v, const char *file, int line, char *err)
{
    struct config_origin here = config_origin_at(file, line);
    const char *eq = strchr(v, '='), *colon;
    size_t len = eq ? (size_t)(eq - v) : 0;
    struct remote_conf *r;
    if (!eq) {
        snprintf(err, CONFIG_ERR_LEN, "--remote: expected NAME=URL or NAME:KIND=URL");
        return -1;
    }
    colon = memchr(v, ':', len);
    if (!(r = remote_named(cfg, v, colon ? (size_t)(colon - v) : len, &here, err)))
        return -1;
    if (colon && set_kind(r, colon + 1, (size_t)(eq - colon - 1), err) < 0)
        return -1;
    return set_url(r, eq + 1, err);
}

int config_remote_key(struct config *cfg, const char *name, const char *key, const char *v,
                      const char *file, int section_line, char *err)
{
    struct config_origin here = config_origin_at(file, section_line);
    struct remote_conf *r = remote_named(cfg, name, strlen(name), &here, err);
    if (!r)
        return -1;
    if (!strcmp(key, "url"))
        return set_url(r, v, err);
    if (!strcmp(key, "kind"))
        return set_kind(r, v, strlen(v), err);
    if (!strcmp(key, "file-hosts"))
        return set_file_hosts(r, v, err);
    snprintf(err, CONFIG_ERR_LEN,
             "remote %.64s: unknown key '%.64s' (url, kind, file-hosts expected)", r->name, key);
    return -1;
}

int config_remote_finish(const struct config *cfg, char *err)
{
    for (int i = 0; i < cfg->n_remotes; i++) {
        const struct remote_conf *r = &cfg->remotes[i];
        const struct config_origin *o = &cfg->remote_origins[i];
        int n = o->line > 0 ? snprintf(err, CONFIG_ERR_LEN, "%.200s:%d: ", o->file, o->line) : 0;
        if (n < 0 || n >= CONFIG_ERR_LEN)
            n = 0;
        if (!r->url[0]) {
            snprintf(err + n, CONFIG_ERR_LEN - (size_t)n, "remote %.64s: url missing", r->name);
            return -1;
        }
        if (r->n_file_hosts && r->kind != REMOTE_PYPI) {
            snprintf(err + n, CONFIG_ERR_LEN - (size_t)n,
                     "remote %.64s: file-hosts is a pypi remote's (kind = pypi)", r->name);
            return -1;
        }
    }
    err[0] = '\0';
    return 0;
}
