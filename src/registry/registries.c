/* The container registries arca mirrors, their logins and their counters (registries.h). Built
 * once in main; read-only after, but for the logins (under `lock`) and the counters (atomics). */
#include "registry/registries.h"
#include "registry/reg_name.h"
#include "stats/stats.h"
#include "log/log.h"
#include "base/parse.h"
#include "url/url.h"

#include <assert.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define DOCKER_HUB "docker.io"
#define DOCKER_HUB_URL "https://registry-1.docker.io"
/* every configured one, and Docker Hub when it is not */
#define TABLE_MAX (CONFIG_MAX_REGISTRIES + 1)

static struct registry table[TABLE_MAX];
static struct registry_counters counters[TABLE_MAX];
static struct registry_login logins[TABLE_MAX];
/* every registry's login (a unit's own registries' too): its password, generation, refusal */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
/* what the last save wrote of each one's counters (upstream thread; main before it starts) */
static int64_t saved[TABLE_MAX][REGISTRY_COUNTERS];
static int n_table;
static const struct registry *default_registry;

static int add(const char *name, const char *url, const struct registry_conf *conf, char *err,
               size_t errlen)
{
    struct registry *r = &table[n_table];
    memset(r, 0, sizeof(*r));
    memset(&counters[n_table], 0, sizeof(counters[n_table]));
    memset(saved[n_table], 0, sizeof(saved[n_table]));
    explicit_bzero(&logins[n_table], sizeof(logins[n_table]));
    r->counters = &counters[n_table];
    r->login = &logins[n_table];
    snprintf(r->name, sizeof(r->name), "%s", name);
    snprintf(r->url, sizeof(r->url), "%s", url);
    r->docker_hub = !strcmp(name, DOCKER_HUB);
    if (conf && conf->username[0]) {
        snprintf(r->username, sizeof(r->username), "%s", conf->username);
        snprintf(r->password_file, sizeof(r->password_file), "%s", conf->password_file);
        if (config_read_token(r->password_file, r->login->password, sizeof(r->login->password)) <=
            0) {
            snprintf(err, errlen, "registry %s: cannot read password file '%s'", name,
                     conf->password_file);
            return -1;
        }
        r->has_login = true;
    }
    for (int k = 0; conf && k < conf->n_aliases; k++)
        snprintf(r->aliases[k], sizeof(r->aliases[k]), "%s", conf->aliases[k]);
    r->n_aliases = conf ? conf->n_aliases : 0;
    n_table++;
    return 0;
}

/* --- logins -------------------------------------------------------------------------------- */

/* `r`'s password file read again (main thread): 1 changed (swapped in), 0 the same, -1 it cannot
 * be read (the login as it was). */
static int reread(struct registry *r)
{
    char fresh[REGISTRY_PASSWORD_MAX];
    int changed = -1;
    if (config_read_token(r->password_file, fresh, sizeof(fresh)) > 0) {
        pthread_mutex_lock(&lock);
        changed = strcmp(fresh, r->login->password) != 0;
        if (changed) {
            memcpy(r->login->password, fresh, sizeof(fresh));
            r->login->gen++;
            r->login->refused[0] = '\0';
        }
        pthread_mutex_unlock(&lock);
    }
    explicit_bzero(fresh, sizeof(fresh));
    return changed;
}

int registries_reread_passwords(void)
{
    int n = 0;
    for (int i = 0; i < n_table; i++) {
        struct registry *r = &table[i];
        if (!r->has_login)
            continue;
        switch (reread(r)) {
        case 1:
            log_info("registry %s: password file %s changed: its logins use the new password",
                     r->name, r->password_file);
            n++;
            break;
        case -1:
            log_error("registry %s: password file %s cannot be read (or has no first line): "
                      "the login read before is kept",
                      r->name, r->password_file);
            break;
        }
    }
    return n;
}

bool registries_login(const struct registry *r, char *out, size_t size, uint64_t *gen)
{
    int n = -1;
    if (!r->has_login || !r->login)
        return false;
    pthread_mutex_lock(&lock);
    n = snprintf(out, size, "%s:%s", r->username, r->login->password);
    if (gen)
        *gen = r->login->gen;
    pthread_mutex_unlock(&lock);
    return n > 0 && (size_t)n < size;
}

uint64_t registries_login_gen(const struct registry *r)
{
    uint64_t gen = 0;
    if (!r->has_login || !r->login)
        return 0;
    pthread_mutex_lock(&lock);
    gen = r->login->gen;
    pthread_mutex_unlock(&lock);
    return gen;
}

void registries_login_refused(const struct registry *r, const char *why)
{
    bool told;
    if (!r->has_login || !r->login)
        return;
    pthread_mutex_lock(&lock);
    told = !strcmp(r->login->refused, why);
    snprintf(r->login->refused, sizeof(r->login->refused), "%s", why);
    pthread_mutex_unlock(&lock);
    if (!told) /* once until mended: every pull meanwhile is refused the same way */
        log_error("%s; a SIGHUP reads the file again once it is mended", why);
}

void registries_login_taken(const struct registry *r)
{
    bool was;
    if (!r->has_login || !r->login)
        return;
    pthread_mutex_lock(&lock);
    was = r->login->refused[0] != '\0';
    r->login->refused[0] = '\0';
    pthread_mutex_unlock(&lock);
    if (was)
        log_info("registry %s: its login is taken again", r->name);
}

bool registries_login_error(const struct registry *r, char *out, size_t size)
{
    bool refused = false;
    if (!r->has_login || !r->login || size == 0)
        return false;
    pthread_mutex_lock(&lock);
    refused = r->login->refused[0] != '\0';
    snprintf(out, size, "%s", r->login->refused);
    pthread_mutex_unlock(&lock);
    return refused;
}

int registries_init(const struct config *cfg, char *err, size_t errlen)
{
    bool hub = false;
    n_table = 0;
    default_registry = NULL;
    for (int i = 0; i < cfg->n_registries; i++) {
        const struct registry_conf *c = &cfg->registries[i];
        hub |= !strcmp(c->name, DOCKER_HUB);
        if (add(c->name, c->url[0] ? c->url : DOCKER_HUB_URL, c, err, errlen) < 0)
            return -1;
    }
    if (!hub && add(DOCKER_HUB, DOCKER_HUB_URL, NULL, err, errlen) < 0)
        return -1;
    const char *name = cfg->registry_default[0] ? cfg->registry_default : DOCKER_HUB;
    if (!(default_registry = registries_find(name, strlen(name)))) {
        snprintf(err, errlen, "--registry-default %s: no such registry", name);
        return -1;
    }
    return 0;
}

const struct registry *registries_find(const char *name, size_t len)
{
    assert(n_table >= 0 && n_table <= TABLE_MAX);
    for (int i = 0; i < n_table; i++)
        if (strlen(table[i].name) == len && !strncmp(table[i].name, name, len))
            return &table[i];
    return NULL;
}

const struct registry *registries_for_ns(const char *ns, size_t len)
{
    const struct registry *r = registries_find(ns, len);
    size_t host_len;
    for (int i = 0; !r && i < n_table; i++)
        for (int k = 0; !r && k < table[i].n_aliases; k++)
            if (strlen(table[i].aliases[k]) == len && !strncmp(table[i].aliases[k], ns, len))
                r = &table[i];
    for (int i = 0; !r && i < n_table; i++) /* a site's arca names it by its URL */
        if (strlen(table[i].url) == len && !strncmp(table[i].url, ns, len))
            r = &table[i];
    for (int i = 0; !r && i < n_table; i++) {
        const char *host = url_host(table[i].url, &host_len); /* normal form: no userinfo */
        if (host_len == len && !strncmp(host, ns, len))
            r = &table[i];
    }
    return r;
}

const struct registry *registries_default(void)
{
    return default_registry;
}

const struct registry *registries_for_url(const char *url)
{
    const struct registry *r = NULL;
    /* the longest: one registry's URL may lie under another's /v2/ */
    for (int i = 0; i < n_table; i++) {
        size_t n = strlen(table[i].url);
        if (!strncmp(url, table[i].url, n) && !strncmp(url + n, "/v2/", 4) &&
            (!r || n > strlen(r->url)))
            r = &table[i];
    }
    return r;
}

bool registries_ask_of(const char *url, struct registry_ask *a)
{
    char path[REG_REPO_MAX + REG_REF_MAX + 32];
    const struct registry *r = registries_for_url(url);
    const char *rest = r ? url + strlen(r->url) + 4 : NULL; /* past "/v2/" */
    size_t len = rest ? strcspn(rest, "?#") : 0;
    memset(a, 0, sizeof(*a));
    if (!r || rest[len] == '#' || len >= sizeof(path))
        return false;
    memcpy(path, rest, len);
    path[len] = '\0';
    if (reg_path_parse(path, &a->path, NULL, 0) != REG_OK ||
        (rest[len] == '?' && a->path.what != REG_TAGS)) {
        memset(&a->path, 0, sizeof(a->path));
        return false;
    }
    a->r = r;
    return true;
}

bool registry_ask_scope(const struct registry_ask *a, char *out, size_t size)
{
    if (!a->r || a->path.what == REG_BASE)
        return false;
    int n = snprintf(out, size, "repository:%s:pull", a->path.repo);
    return n > 0 && (size_t)n < size;
}

bool registries_parent_target(const char *url, char *out, size_t size)
{
    struct registry_ask a;
    const struct registry *r = registries_ask_of(url, &a) ? a.r : NULL;
    /* not /v2/ itself (the central's own answer), nor a one-component name, which a central
     * calling that registry docker.io reads as library/NAME */
    if (!r || a.path.what == REG_BASE || !strchr(a.path.repo, '/'))
        return false;
    /* by its URL, not its NAME: the same NAME at the central may be another registry (its own
     * Docker Hub, for a site's docker.io that is the lab's), whose digests check out as well */
    int n = snprintf(out, size, "/v2/%s?ns=", url + strlen(r->url) + 4);
    if (n < 0 || (size_t)n >= size)
        return false;
    return url_escape_arg(r->url, out + n, size - (size_t)n);
}

void registries_count_answer(const struct registry *r, const struct registry_answered *a)
{
    struct registry_counters *n = r->counters;
    atomic_fetch_add(&n->requests, 1);
    if (a->status < 200 || a->status >= 300 || (a->what != REG_MANIFEST && a->what != REG_BLOB))
        return;
    if (a->get && a->what == REG_BLOB)
        atomic_fetch_add(&n->blobs, 1);
    else if (a->get && !reg_media_is_index(a->type)) /* an index only names the image pulled */
        atomic_fetch_add(&n->pulls, 1);
    if (!strcmp(a->cache, "HIT"))
        atomic_fetch_add(&n->hits, 1);
    else if (!strcmp(a->cache, "STALE")) /* an expired manifest answered: upstream failed */
        atomic_fetch_add(&n->stale, 1);
    atomic_fetch_add(&n->bytes, a->bytes);
}

/* --- the counters across a restart --------------------------------------------------------- */

static const struct {
    const char *name;
    size_t offset;
} words[REGISTRY_COUNTERS] = {
    {"pulls", offsetof(struct registry_counters, pulls)},
    {"hits", offsetof(struct registry_counters, hits)},
    {"bytes", offsetof(struct registry_counters, bytes)},
    {"revalidated", offsetof(struct registry_counters, revalidated)},
    {"stale", offsetof(struct registry_counters, stale)},
    {"refused", offsetof(struct registry_counters, refused)},
    {"throttled", offsetof(struct registry_counters, too_many)}, /* a 429 */
    {"tokens", offsetof(struct registry_counters, tokens)},
    {"blobs", offsetof(struct registry_counters, blobs)},
    {"requests", offsetof(struct registry_counters, requests)},
};

const char *registry_counter_name(int k)
{
    assert(k >= 0 && k < REGISTRY_COUNTERS);
    return words[k].name;
}

atomic_int_fast64_t *registry_counter(struct registry_counters *n, int k)
{
    assert(k >= 0 && k < REGISTRY_COUNTERS);
    return (atomic_int_fast64_t *)((char *)n + words[k].offset);
}

/* In the index's counters as "registry NAME WHAT" (stats.h, struct stats_family). */
static const struct stats_family family = {"registry ", registry_counter_name, REGISTRY_COUNTERS};

static void take_kept(const char *name, size_t len, int k, int64_t value, void *arg)
{
    const struct registry *r = registries_find(name, len);
    (void)arg;
    if (!r)
        return; /* no longer configured: its rows stay, for when it is again */
    atomic_store(registry_counter(r->counters, k), value);
    saved[r - table][k] = value;
}

void registries_load_counters(void)
{
    stats_family_load(&family, take_kept, NULL);
}

void registries_save_counters(void)
{
    const char *names[TABLE_MAX];
    int64_t v[TABLE_MAX][REGISTRY_COUNTERS];
    for (int i = 0; i < n_table; i++) {
        names[i] = table[i].name;
        for (int k = 0; k < REGISTRY_COUNTERS; k++)
            v[i][k] = atomic_load(registry_counter(table[i].counters, k));
    }
    stats_family_save(&family, names, n_table, &v[0][0], &saved[0][0]);
}

int registries_count(void)
{
    return n_table;
}

const struct registry *registries_at(int i)
{
    return i >= 0 && i < n_table ? &table[i] : NULL;
}
