/* The container registries arca mirrors, as configured (config_internal.h): --registry
 * NAME=URL, --registry-default NAME and [registry NAME] sections, done as buckets are; the
 * password files are read by registry/registries.c, only checked readable here. */
#include "config/config.h"
#include "config/config_internal.h"
#include "base/parse.h"
#include "url/url.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Docker Hub: what "docker.io" means unless a URL is given. */
#define DOCKER_HUB_URL "https://registry-1.docker.io"

/* A registry's name as clients write it before a repository (podman's "cache:8001/docker.io",
 * containerd's ?ns=docker.io): a host name in lower case, an optional :port. */
static bool name_ok(const char *name, size_t len)
{
    size_t host = len;
    const char *colon = memchr(name, ':', len);
    if (len == 0 || len >= CONFIG_REGISTRY_NAME_MAX)
        return false;
    if (colon) {
        host = (size_t)(colon - name);
        if (host + 1 == len || len - host - 1 > 5)
            return false;
        for (size_t i = host + 1; i < len; i++)
            if (name[i] < '0' || name[i] > '9')
                return false;
    }
    if (host == 0 || name[0] == '.' || name[0] == '-' || name[host - 1] == '.' ||
        name[host - 1] == '-')
        return false;
    for (size_t i = 0; i < host; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-') ||
            (c == '.' && name[i + 1] == '.'))
            return false;
    }
    return true;
}

/* Where a registry was given, as its error names it. */
static void place(const struct config_origin *o, char *out, size_t size)
{
    if (o->line > 0)
        snprintf(out, size, "at %.64s:%d", o->file, o->line);
    else
        snprintf(out, size, "on the command line");
}

/* Registry `name` given at `here` after `was`: which of two URLs would win, and whether a
 * section's login would survive a --registry, is asked of the user, never decided silently. */
static void given_twice(const char *name, const struct config_origin *was,
                        const struct config_origin *here, char *err)
{
    char first[80], second[80];
    place(was, first, sizeof(first));
    place(here, second, sizeof(second));
    if (was->line == 0 && here->line == 0)
        snprintf(err, CONFIG_ERR_LEN, "registry %.32s given twice on the command line %s", name,
                 "(one place per NAME)");
    else
        snprintf(err, CONFIG_ERR_LEN, "registry %.32s given twice: %s and %s %s", name, first,
                 second, "(one place per NAME)");
}

/* The registry called `name`, added when new, given at `here` (a section's keys, read one by
 * one, are one place); NULL with the reason, a NAME given in another place before included. */
static struct registry_conf *registry_named(struct config *cfg, const char *name, size_t len,
                                            const struct config_origin *here, char *err)
{
    for (int i = 0; i < cfg->n_registries; i++) {
        const struct config_origin *was = &cfg->registry_origins[i];
        if (strlen(cfg->registries[i].name) != len || strncmp(cfg->registries[i].name, name, len))
            continue;
        if (here->line > 0 && was->line == here->line && !strcmp(was->file, here->file))
            return &cfg->registries[i];
        given_twice(cfg->registries[i].name, was, here, err);
        return NULL;
    }
    if (!name_ok(name, len)) {
        snprintf(err, CONFIG_ERR_LEN,
                 "registry name '%.*s': a lower-case host name (letters, digits, '.', '-') with "
                 "an optional :port expected",
                 (int)(len < 64 ? len : 64), name);
        return NULL;
    }
    if (cfg->n_registries == CONFIG_MAX_REGISTRIES) {
        snprintf(err, CONFIG_ERR_LEN, "at most %d registries", CONFIG_MAX_REGISTRIES);
        return NULL;
    }
    cfg->registry_origins[cfg->n_registries] = *here;
    cfg->registry_aliases_line[cfg->n_registries] = 0;
    struct registry_conf *r = &cfg->registries[cfg->n_registries++];
    memset(r, 0, sizeof(*r));
    memcpy(r->name, name, len);
    return r;
}

/* Its base URL, as a parent's is taken: http(s), no credentials (they would show), no query. */
static int set_url(struct registry_conf *r, const char *v, char *err)
{
    char why[160];
    if (config_parent_url(v, r->url, why, sizeof(why)) < 0) {
        snprintf(err, CONFIG_ERR_LEN, "registry %.64s: url: %s", r->name, why);
        return -1;
    }
    return 0;
}

static int add_registry(struct config *cfg, const char *v, const struct config_origin *here,
                        char *err)
{
    const char *eq = strchr(v, '=');
    size_t len = eq ? (size_t)(eq - v) : strlen(v);
    struct registry_conf *r;
    if (!eq && strcmp(v, "docker.io") != 0) {
        snprintf(err, CONFIG_ERR_LEN,
                 "--registry: expected NAME=URL (or docker.io alone), got '%.64s'", v);
        return -1;
    }
    if (!(r = registry_named(cfg, v, len, here, err)))
        return -1;
    return set_url(r, eq ? eq + 1 : DOCKER_HUB_URL, err);
}

static int set_default(struct config *cfg, const char *v, char *err)
{
    if (!name_ok(v, strlen(v))) {
        snprintf(err, CONFIG_ERR_LEN, "--registry-default: '%.64s' is no registry name", v);
        return -1;
    }
    snprintf(cfg->registry_default, sizeof(cfg->registry_default), "%s", v);
    return 0;
}

/* `aliases = HOST[:PORT], ...`: other names clients give the registry (containerd's ?ns= as an
 * image reference writes it, a podman prefix), each one a NAME's grammar. A second line
 * replaces the first. */
static int set_aliases(struct registry_conf *r, const char *v, char *err)
{
    const char *bad;
    size_t len;
    if (config_name_list(v, name_ok, r->aliases, CONFIG_REGISTRY_ALIASES, &r->n_aliases, &bad,
                         &len) == 0)
        return 0;
    if (r->n_aliases == CONFIG_REGISTRY_ALIASES)
        snprintf(err, CONFIG_ERR_LEN, "registry %.64s: aliases: at most %d", r->name,
                 CONFIG_REGISTRY_ALIASES);
    else
        snprintf(err, CONFIG_ERR_LEN,
                 "registry %.64s: aliases: '%.*s' is no HOST[:PORT] (a lower-case host name "
                 "with an optional :port; aliases separated by ',')",
                 r->name, (int)(len < 64 ? len : 64), bad);
    return -1;
}

int config_registry_option(struct config *cfg, const struct option *o, const char *v,
                           const char *file, int line, char *err)
{
    struct config_origin here = config_origin_at(file, line);
    return !strcmp(o->name, "registry") ? add_registry(cfg, v, &here, err)
                                        : set_default(cfg, v, err);
}

int config_registry_key(struct config *cfg, const char *name, const char *key, const char *v,
                        const char *file, int section_line, int key_line, char *err)
{
    struct config_origin here = config_origin_at(file, section_line);
    struct registry_conf *r = registry_named(cfg, name, strlen(name), &here, err);
    if (!r)
        return -1;
    if (!strcmp(key, "aliases")) {
        cfg->registry_aliases_line[r - cfg->registries] = key_line;
        return set_aliases(r, v, err);
    }
    if (!strcmp(key, "url"))
        return set_url(r, v, err);
    if (!strcmp(key, "username")) {
        if (!v[0] || strlen(v) >= sizeof(r->username) || strpbrk(v, ":\r\n")) {
            snprintf(err, CONFIG_ERR_LEN, "registry %.64s: username: 1-255 bytes, no ':'", r->name);
            return -1;
        }
        snprintf(r->username, sizeof(r->username), "%s", v);
        return 0;
    }
    if (!strcmp(key, "password-file")) {
        if (!v[0] || strlen(v) >= sizeof(r->password_file)) {
            snprintf(err, CONFIG_ERR_LEN, "registry %.64s: password-file: a file's path", r->name);
            return -1;
        }
        snprintf(r->password_file, sizeof(r->password_file), "%s", v);
        return 0;
    }
    snprintf(err, CONFIG_ERR_LEN,
             "registry %.64s: unknown key '%.64s' (url, username, password-file, aliases "
             "expected)",
             r->name, key);
    return -1;
}

static bool named(const struct config *cfg, const char *name)
{
    if (!strcmp(name, "docker.io")) /* always known: Docker Hub */
        return true;
    for (int i = 0; i < cfg->n_registries; i++)
        if (!strcmp(cfg->registries[i].name, name))
            return true;
    return false;
}

/* Whether a password file gives a first line (registries.c reads it at start): config_read_token's
 * test, without its copy of the secret. */
static bool readable(const char *path)
{
    char line[1024];
    FILE *f = fopen(path, "r");
    bool ok = f && fgets(line, sizeof(line), f) && line[strspn(line, " \t\r\n")] != '\0';
    if (f)
        fclose(f);
    explicit_bzero(line, sizeof(line));
    return ok;
}

/* Whether `name` is the host[:port] of `url` (normal form: the scheme's default port left out),
 * as an image reference writes a registry. */
static bool authority_of(const char *url, const char *name)
{
    size_t len;
    const char *host = url_host(url, &len);
    return len == strlen(name) && !strncmp(host, name, len);
}

/* The registry other than cfg->registries[self] that `alias` names already (its NAME, its URL's
 * host[:port], one of its aliases; Docker Hub's when arca adds it), *what saying how; NULL
 * when none: a name reaches one registry, never the first of two. */
static const char *other_owner(const struct config *cfg, int self, const char *alias,
                               const char **what)
{
    bool hub = false;
    for (int j = 0; j < cfg->n_registries; j++) {
        const struct registry_conf *o = &cfg->registries[j];
        hub |= !strcmp(o->name, "docker.io");
        if (j == self)
            continue;
        *what = "its NAME";
        if (!strcmp(o->name, alias))
            return o->name;
        *what = "its URL's host:port";
        if (authority_of(o->url[0] ? o->url : DOCKER_HUB_URL, alias))
            return o->name;
        *what = "an alias of it";
        for (int k = 0; k < o->n_aliases; k++)
            if (!strcmp(o->aliases[k], alias))
                return o->name;
    }
    if (hub) /* configured: asked above */
        return NULL;
    *what = !strcmp(alias, "docker.io") ? "its NAME" : "its URL's host:port";
    return !strcmp(alias, "docker.io") || authority_of(DOCKER_HUB_URL, alias) ? "docker.io" : NULL;
}

/* A registry's URL in normal form without its trailing '/' into out[size] ("" when it has none
 * that reads). */
static void url_of(const struct registry_conf *r, char *out, size_t size)
{
    const char *url = r->url[0] ? r->url : DOCKER_HUB_URL, *why;
    int status;
    size_t n;
    if (url_normalize(url, strlen(url), out, size, &status, &why) < 0)
        out[0] = '\0';
    n = strlen(out);
    while (n > 0 && out[n - 1] == '/')
        out[--n] = '\0';
}

/* A finish error about registry `i`, begun with "FILE:LINE: " where a file gave it: its aliases
 * line when `aliases` (and there is one), else its section or --registry line. */
static void about(const struct config *cfg, int i, bool aliases, char *err, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void about(const struct config *cfg, int i, bool aliases, char *err, const char *fmt, ...)
{
    const struct config_origin *o = &cfg->registry_origins[i];
    int line = aliases && cfg->registry_aliases_line[i] ? cfg->registry_aliases_line[i] : o->line;
    int n = line > 0 ? snprintf(err, CONFIG_ERR_LEN, "%s:%d: ", o->file, line) : 0;
    va_list ap;
    if (n < 0 || n >= CONFIG_ERR_LEN)
        n = 0; /* a path too long to leave room: the reason alone */
    va_start(ap, fmt);
    vsnprintf(err + n, CONFIG_ERR_LEN - (size_t)n, fmt, ap);
    va_end(ap);
}

/* Every registry its own URL: one line naming both registries otherwise. Their upstream URLs
 * would be one key, one login, one set of counters: which NAME a client gave would be lost. (One
 * URL under another's /v2/ is allowed: registries_for_url takes the longer.) */
static int urls_apart(const struct config *cfg, char *err)
{
    char a[2 * CONFIG_PARENT_MAX], b[2 * CONFIG_PARENT_MAX];
    for (int i = 0; i < cfg->n_registries; i++) {
        url_of(&cfg->registries[i], a, sizeof(a));
        for (int j = 0; a[0] && j < i; j++) {
            url_of(&cfg->registries[j], b, sizeof(b));
            if (strcmp(a, b) != 0)
                continue;
            about(cfg, i, false, err,
                  "registry %.48s: its URL is registry %.48s's too: a name reaches one registry",
                  cfg->registries[i].name, cfg->registries[j].name);
            return -1;
        }
    }
    return 0;
}

/* Every alias names its registry alone: one line naming both registries otherwise. */
static int aliases_apart(const struct config *cfg, char *err)
{
    const char *owner, *what;
    for (int i = 0; i < cfg->n_registries; i++) {
        const struct registry_conf *r = &cfg->registries[i];
        for (int k = 0; k < r->n_aliases; k++) {
            if (!(owner = other_owner(cfg, i, r->aliases[k], &what)))
                continue;
            about(cfg, i, true, err,
                  "registry %.48s: alias %.48s names registry %.48s too (%.20s): a name reaches "
                  "one registry",
                  r->name, r->aliases[k], owner, what);
            return -1;
        }
    }
    return 0;
}

int config_registry_finish(const struct config *cfg, char *err)
{
    for (int i = 0; i < cfg->n_registries; i++) {
        const struct registry_conf *r = &cfg->registries[i];
        if (!r->url[0] && strcmp(r->name, "docker.io") != 0) {
            about(cfg, i, false, err, "registry %.64s: url missing", r->name);
            return -1;
        }
        if (!r->username[0] != !r->password_file[0]) {
            about(cfg, i, false, err,
                  "registry %.64s: a login needs both username and password-file", r->name);
            return -1;
        }
        if (r->password_file[0] && !readable(r->password_file)) {
            about(cfg, i, false, err, "registry %.64s: cannot read password file '%.120s'", r->name,
                  r->password_file);
            return -1;
        }
    }
    if (urls_apart(cfg, err) < 0 || aliases_apart(cfg, err) < 0)
        return -1;
    if (cfg->registry_default[0] && !named(cfg, cfg->registry_default)) {
        snprintf(err, CONFIG_ERR_LEN,
                 "--registry-default %.64s: no such registry (--registry NAME=URL)",
                 cfg->registry_default);
        return -1;
    }
    return 0;
}
