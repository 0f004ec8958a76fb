/* The remotes' table (remotes.h): built once from the configuration, read-only after. */
#include "remote/remotes.h"
#include "stats/stats.h"
#include "url/url.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct remote table[CONFIG_MAX_REMOTES];
static struct remote_counters counters[CONFIG_MAX_REMOTES];
static int64_t saved[CONFIG_MAX_REMOTES][REMOTE_COUNTERS];
static int n_table;

static const char *const counter_names[REMOTE_COUNTERS] = {"requests", "hits", "bytes",
                                                           "revalidated", "stale"};

const char *remote_counter_name(int k)
{
    return k >= 0 && k < REMOTE_COUNTERS ? counter_names[k] : NULL;
}

atomic_int_fast64_t *remote_counter(struct remote_counters *c, int k)
{
    atomic_int_fast64_t *all[REMOTE_COUNTERS] = {&c->requests, &c->hits, &c->bytes, &c->revalidated,
                                                 &c->stale};
    assert(k >= 0 && k < REMOTE_COUNTERS);
    return all[k];
}

/* Its URL in normal form without a trailing '/': what URLs are compared with. */
static int base_of(const struct remote_conf *c, struct remote *r, char *err, size_t errlen)
{
    const char *why;
    int status;
    if (url_normalize(c->url, strlen(c->url), r->url, sizeof(r->url), &status, &why) < 0) {
        snprintf(err, errlen, "remote %s: url: %s", c->name, why);
        return -1;
    }
    r->url_len = strlen(r->url);
    while (r->url_len > 0 && r->url[r->url_len - 1] == '/')
        r->url[--r->url_len] = '\0';
    return 0;
}

/* "FILE:LINE: " where a file gave the remote, as check-config's lines begin; "" for the command
 * line. */
static void place(const struct config_origin *o, char *out, size_t size)
{
    if (o->line > 0)
        snprintf(out, size, "%.200s:%d: ", o->file, o->line);
    else
        out[0] = '\0';
}

int remotes_init(const struct config *cfg, char *err, size_t errlen)
{
    n_table = 0;
    memset(counters, 0, sizeof(counters));
    for (int i = 0; i < cfg->n_remotes; i++) {
        const struct remote_conf *c = &cfg->remotes[i];
        struct remote *r = &table[n_table];
        memset(r, 0, sizeof(*r));
        snprintf(r->name, sizeof(r->name), "%s", c->name);
        r->kind = c->kind;
        memcpy(r->file_hosts, c->file_hosts, sizeof(r->file_hosts));
        r->n_file_hosts = c->n_file_hosts;
        r->counters = &counters[n_table];
        if (base_of(c, r, err, errlen) < 0)
            return -1;
        for (int j = 0; j < n_table; j++)
            if (!strcmp(table[j].url, r->url)) {
                char at[256];
                place(&cfg->remote_origins[i], at, sizeof(at));
                snprintf(err, errlen, "%sremote %s: its URL is remote %s's too: one URL, one kind",
                         at, r->name, table[j].name);
                return -1;
            }
        n_table++;
    }
    return 0;
}

const struct remote *remotes_find(const char *name, size_t len)
{
    for (int i = 0; i < n_table; i++)
        if (strlen(table[i].name) == len && !strncmp(table[i].name, name, len))
            return &table[i];
    return NULL;
}

const struct remote *remotes_of_url(const char *url)
{
    const struct remote *best = NULL;
    for (int i = 0; i < n_table; i++) {
        const struct remote *r = &table[i];
        if (strncmp(url, r->url, r->url_len) || (url[r->url_len] && url[r->url_len] != '/'))
            continue;
        if (!best || r->url_len > best->url_len)
            best = r;
    }
    return best;
}

int remotes_count(void)
{
    return n_table;
}

const struct remote *remotes_at(int i)
{
    return i >= 0 && i < n_table ? &table[i] : NULL;
}

/* In the index's counters as "remote NAME WHAT" (stats.h, struct stats_family). */
static const struct stats_family family = {"remote ", remote_counter_name, REMOTE_COUNTERS};

static void take_kept(const char *name, size_t len, int k, int64_t value, void *arg)
{
    const struct remote *r = remotes_find(name, len);
    (void)arg;
    if (!r)
        return; /* no longer configured: its rows stay, for when it is again */
    atomic_store(remote_counter(r->counters, k), value);
    saved[r - table][k] = value;
}

void remotes_load_counters(void)
{
    stats_family_load(&family, take_kept, NULL);
}

void remotes_save_counters(void)
{
    const char *names[CONFIG_MAX_REMOTES];
    int64_t v[CONFIG_MAX_REMOTES][REMOTE_COUNTERS];
    if (n_table == 0)
        return;
    for (int i = 0; i < n_table; i++) {
        names[i] = table[i].name;
        for (int k = 0; k < REMOTE_COUNTERS; k++)
            v[i][k] = atomic_load(remote_counter(table[i].counters, k));
    }
    stats_family_save(&family, names, n_table, &v[0][0], &saved[0][0]);
}
