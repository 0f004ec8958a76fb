#include "upstream/mirror.h"
#include "base/clock.h"
#include "rules/grants.h"
#include "rules/keys.h"
#include "log/log.h"
#include "upstream/probe.h"
#include "upstream/hosts.h"
#include "stats/stats.h"
#include "url/url.h"

#include <assert.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How long a mirror that did not answer is passed over. */
#define MIRROR_DOWN_MS 60000

static struct {
    regex_t res[CONFIG_MAX_RULES / 2]; /* cfg->mirror_rules, compiled */
    /* A mirror that did not answer at all is passed over until then (monotonic ms): one that
     * drops packets would otherwise hold every download up to --connect-timeout. */
    int64_t down_until[CONFIG_MAX_RULES / 2][CONFIG_MAX_MIRRORS];
} mx;

int mirror_init(const struct config *cfg, char *err, size_t errlen)
{
    for (int i = 0; i < cfg->n_mirror_rules; i++) {
        if (regcomp(&mx.res[i], cfg->mirror_rules[i].pattern, REG_EXTENDED) != 0) {
            snprintf(err, errlen, "--mirror: cannot compile '%s'", cfg->mirror_rules[i].pattern);
            return -1;
        }
    }
    return 0;
}

void mirror_cleanup(const struct config *cfg)
{
    for (int i = 0; i < cfg->n_mirror_rules; i++)
        regfree(&mx.res[i]);
}

/* The URLs of rule `r` for `plain`, its match `m` replaced by each mirror in turn. */
static void mirrors_of(struct mirror_pick *mp, const struct mirror_rule *r, const char *plain,
                       const regmatch_t *m)
{
    if (!(mp->mirrors = calloc((size_t)r->n, sizeof(*mp->mirrors))))
        return;
    for (int k = 0; k < r->n; k++) {
        size_t len = (size_t)m->rm_so + strlen(r->mirrors[k]) + strlen(plain + m->rm_eo);
        if (!(mp->mirrors[mp->n_mirrors] = malloc(len + 1)))
            break;
        snprintf(mp->mirrors[mp->n_mirrors++], len + 1, "%.*s%s%s", (int)m->rm_so, plain,
                 r->mirrors[k], plain + m->rm_eo);
    }
}

/* The URLs of the first --mirror rule matching the URL without its credentials: its signature
 * (also under --exact-keys), userinfo and any parameter url_redact would hide (a token, an API
 * key). A mirror is another host: it never sees what the origin authorises the client with, and
 * a URL that carried any of it is asked of the origin first (origin_answered). */
void mirror_find(struct mirror_pick *mp)
{
    const struct config *cfg = mp->loop->cfg;
    struct signature sig;
    regmatch_t m;
    char *unsigned_url = keys_unsigned_url_dup(cfg, mp->asked, &sig), *plain = NULL;
    bool credentials = false;
    assert(upstream_on_thread());
    mp->source = mp->asked;
    if (unsigned_url && (plain = malloc(strlen(unsigned_url) + 1)))
        credentials = url_strip_secrets(unsigned_url, plain, strlen(unsigned_url) + 1);
    free(unsigned_url);
    if (!plain)
        return;
    for (int i = 0; i < cfg->n_mirror_rules; i++) {
        if (regexec(&mx.res[i], plain, 1, &m, 0) != 0)
            continue;
        mp->rule = i;
        mp->origin_first = sig.is_signed || credentials;
        mirrors_of(mp, &cfg->mirror_rules[i], plain, &m);
        break;
    }
    free(plain);
}

/* Ask the next question, or settle on the choice made so far. */
static void go_on(struct mirror_pick *m)
{
    if (mirror_pick(m) == 0)
        m->picked(m);
}

/* A mirror answered the probe: a 2xx makes it the source, anything else moves on to the next
 * mirror, and after the last to the origin. One that did not answer at all (no connection, no
 * response) is passed over by every download for MIRROR_DOWN_MS. */
static void mirror_answered(const struct probe_result *res, void *arg)
{
    struct mirror_pick *m = arg;
    int k = m->next_mirror++;
    const char *mirror = m->mirrors[k];
    assert(upstream_on_thread());
    if (atomic_load(&m->loop->stopping))
        return; /* the loop ends the download */
    if (res->status == 0)
        mx.down_until[m->rule][k] = monotonic_ms() + MIRROR_DOWN_MS;
    if (res->status >= 200 && res->status < 300 && m->origin_said && m->origin_total >= 0 &&
        res->total >= 0 && res->total != m->origin_total) {
        log_info("fetch %s: mirror %s has another length than the origin", m->url, mirror);
    } else if (res->status >= 200 && res->status < 300) {
        log_info("fetch %s: from mirror %s", m->url, mirror);
        m->source = mirror;
        m->next_mirror = m->n_mirrors;
        atomic_fetch_add(&stats.mirror_downloads, 1);
    } else if (res->status) {
        log_info("fetch %s: mirror %s does not serve it (%d)", m->url, mirror, res->status);
    } else {
        log_info("fetch %s: mirror %s does not serve it (%s)", m->url, mirror, res->error);
    }
    go_on(m);
}

/* The origin answered the probe of a URL with credentials that mirrors could serve: they may, once
 * it has accepted the signature (2xx), which is then remembered like a download's. A refusal ends
 * the download with the origin's status, so a forged or expired signature gets what the origin
 * would have answered; no answer, or a status worth retrying, leaves the download to the origin
 * itself (its attempts retry). */
static void origin_answered(const struct probe_result *res, void *arg)
{
    struct mirror_pick *m = arg;
    assert(upstream_on_thread());
    if (atomic_load(&m->loop->stopping))
        return; /* the loop ends the download */
    if (res->status >= 200 && res->status < 300) {
        if (m->grant_until > 0)
            grants_add(m->asked, m->grant_until);
        m->origin_said = true;
        snprintf(m->origin_etag, sizeof(m->origin_etag), "%s", res->etag);
        snprintf(m->origin_date, sizeof(m->origin_date), "%s", res->last_modified);
        m->origin_total = res->total;
    } else if (res->status == 0 || status_retryable(res->status)) {
        m->next_mirror = m->n_mirrors;
    } else {
        /* worded as the origin's own refusal of a download, and as a refused confirmation of a
         * cached object: with or without mirrors, cached or not, the same answer */
        snprintf(m->reason, sizeof(m->reason), "%s %d",
                 res->status >= 400 ? "upstream answered" : "unexpected upstream status",
                 res->status);
        m->refused = res->status >= 400 ? res->status : 502;
        m->picked(m);
        return;
    }
    go_on(m);
}

/* For a URL with credentials, the origin's probe first; then the next mirror not known to be
 * down; then the source chosen so far (the origin, unless a mirror answered). */
int mirror_pick(struct mirror_pick *m)
{
    assert(upstream_on_thread());
    while (m->next_mirror < m->n_mirrors &&
           (mx.down_until[m->rule][m->next_mirror] > monotonic_ms() ||
            hosts_held(m->mirrors[m->next_mirror])))
        m->next_mirror++;
    if (m->next_mirror < m->n_mirrors && m->origin_first) {
        m->origin_first = false;
        if (probe_ask(m->loop, m->asked, origin_answered, m, false) == 0)
            return 1;
        m->next_mirror = m->n_mirrors; /* cannot ask: the origin itself decides */
    }
    if (m->next_mirror < m->n_mirrors &&
        probe_ask(m->loop, m->mirrors[m->next_mirror], mirror_answered, m, false) == 0)
        return 1;
    m->next_mirror = m->n_mirrors;
    return 0;
}

void mirror_free(struct mirror_pick *m)
{
    for (int i = 0; i < m->n_mirrors; i++)
        free(m->mirrors[i]);
    free(m->mirrors);
    m->mirrors = NULL;
    m->n_mirrors = 0;
}
