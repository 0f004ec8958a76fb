/* The container registries arca mirrors and their counters (registries.h). Built once in main;
 * read-only after, but for the counters (atomics). */
#include "registry/registries.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#define DOCKER_HUB "docker.io"
#define DOCKER_HUB_URL "https://registry-1.docker.io"
/* every configured one, and Docker Hub when it is not */
#define TABLE_MAX (CONFIG_MAX_REGISTRIES + 1)

static struct registry table[TABLE_MAX];
static struct registry_counters counters[TABLE_MAX];
static int n_table;
static const struct registry *default_registry;

static int add(const char *name, const char *url, const struct registry_conf *conf, char *err,
               size_t errlen)
{
    struct registry *r = &table[n_table];
    memset(r, 0, sizeof(*r));
    memset(&counters[n_table], 0, sizeof(counters[n_table]));
    r->counters = &counters[n_table];
    snprintf(r->name, sizeof(r->name), "%s", name);
    snprintf(r->url, sizeof(r->url), "%s", url);
    r->docker_hub = !strcmp(name, DOCKER_HUB);
    if (conf && conf->username[0]) {
        snprintf(r->username, sizeof(r->username), "%s", conf->username);
        if (config_read_token(conf->password_file, r->password, sizeof(r->password)) <= 0) {
            snprintf(err, errlen, "registry %s: cannot read password file '%s'", name,
                     conf->password_file);
            return -1;
        }
        r->has_login = true;
    }
    n_table++;
    return 0;
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

const struct registry *registries_default(void)
{
    return default_registry;
}

const struct registry *registries_for_url(const char *url)
{
    for (int i = 0; i < n_table; i++) {
        size_t n = strlen(table[i].url);
        if (!strncmp(url, table[i].url, n) && !strncmp(url + n, "/v2/", 4))
            return &table[i];
    }
    return NULL;
}

int registries_count(void)
{
    return n_table;
}

const struct registry *registries_at(int i)
{
    return i >= 0 && i < n_table ? &table[i] : NULL;
}
