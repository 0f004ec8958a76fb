#include "upstream/mirror.h"
#include "base/clock.h"
#include "rules/grants.h"
#include "log/log.h"
#include "upstream/probe.h"
#include "upstream/source_probe.h"
#include "upstream/hosts.h"
#include "stats/stats.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The mirrors of the download's terms (rules/terms.h: the --mirror rule its URL falls under,
 * decided without its credentials), their URLs made by terms_source_url: a mirror is another
 * host, it never sees what the origin authorises the client with, and a URL that carried any
 * of it is asked of the origin first (origin_answered). */
void mirror_find(struct mirror_pick *mp, const struct fetch_terms *terms)
{
    const struct source_plan *src = &terms->sources;
    assert(upstream_on_thread());
    mp->source = mp->asked;
    mp->registry = &terms->registry;
    if (src->mirror_rule < 0 || src->n_mirrors <= 0)
        return;
    assert(src->n_mirrors <= CONFIG_MAX_MIRRORS);
    if (!(mp->mirrors = calloc((size_t)src->n_mirrors, sizeof(*mp->mirrors))))
        return;
    mp->origin_first = src->origin_first;
    for (int k = 0; k < src->n_mirrors; k++) {
        if (!(mp->mirrors[mp->n_mirrors] = terms_source_url(mp->loop->cfg, terms, mp->asked, k)))
            break; /* out of memory: the mirrors made so far, then the origin */
        mp->n_mirrors++;
    }
}

/* Ask the next question, or settle on the choice made so far. */
static void go_on(struct mirror_pick *m)
{
    if (mirror_pick(m) == 0)
        m->picked(m);
}

/* A mirror answered the probe: a 2xx makes it the source, anything else moves on to the next
 * mirror, and after the last to the origin. One that did not answer at all (no connection, no
 * response) is held as a mirror (hosts.h: passed over by every download for
 * HOSTS_MIRROR_HOLD_MS): one that drops packets would otherwise hold every download up to
 * --connect-timeout. One held already was not asked (its question refused at once). */
static void mirror_answered(const struct probe_result *res, void *arg)
{
    struct mirror_pick *m = arg;
    int k = m->next_mirror++;
    const char *mirror = m->mirrors[k];
    assert(upstream_on_thread());
    if (atomic_load(&m->loop->stopping))
        return; /* the loop ends the download */
    int64_t held_ms = 0;
    if (res->status == 0 && !res->retry_after)
        held_ms = hosts_judged(mirror, HOST_MIRROR, true, monotonic_ms());
    if (held_ms)
        log_info("mirror %s: no answer; passed over for %lld s", mirror,
                 (long long)(held_ms / 1000));
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

/* For a URL with credentials, the origin's probe first; then the next mirror (its question
 * meets its hold as every ask does: easy_go); then the source chosen so far (the origin, unless
 * a mirror answered). */
int mirror_pick(struct mirror_pick *m)
{
    assert(upstream_on_thread());
    if (m->next_mirror < m->n_mirrors && m->origin_first) {
        m->origin_first = false;
        struct source_req src;
        if (source_req_for_probe(NULL, m->registry, &src) == 0 &&
            probe_ask(m->loop, m->asked, &src, HOST_ORIGIN, origin_answered, m, false) == 0)
            return 1;
        m->next_mirror = m->n_mirrors; /* cannot ask: the origin itself decides */
    }
    if (m->next_mirror < m->n_mirrors && probe_ask(m->loop, m->mirrors[m->next_mirror], NULL,
                                                   HOST_MIRROR, mirror_answered, m, false) == 0)
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
