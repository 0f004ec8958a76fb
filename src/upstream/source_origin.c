/* The origin kind of source (source.h): the client's URL itself, the last of every list. A
 * bucket's object is signed for it (only the origin gets a bucket's signature), its 2xx
 * confirms a signed URL, and its timeouts are the options'. It judges no end of its own: every
 * failure is the URL's, retried and told as the core says. */
#include "upstream/transfer_answer.h"
#include "log/log.h"

/* Its patience is the options' (--connect-timeout, --stall-timeout), its redirects followed. */
void source_default_timeouts(struct transfer *t)
{
    const struct config *cfg = t->loop->cfg;
    curl_easy_setopt(t->h.easy, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(t->h.easy, CURLOPT_CONNECTTIMEOUT_MS, (long)cfg->connect_timeout * 1000);
    curl_easy_setopt(t->h.easy, CURLOPT_LOW_SPEED_TIME, (long)cfg->stall_timeout);
    curl_easy_setopt(t->h.easy, CURLOPT_LOW_SPEED_LIMIT, 1L);
    /* no client certificate: the one a parent's attempt showed on this handle is its own */
    curl_easy_setopt(t->h.easy, CURLOPT_SSLCERT_BLOB, NULL);
    curl_easy_setopt(t->h.easy, CURLOPT_SSLKEY_BLOB, NULL);
}

/* The URL itself, unless it is a registry's pull API (whose kind asks it instead): no record. */
static int join(struct transfer *t, void **rec)
{
    *rec = NULL;
    return t->terms.registry.r ? 0 : 1;
}

/* The form a pypi page's key asks (terms.h's remote.json): PEP 691's JSON by its Accept; an
 * index that serves only HTML answers HTML, kept as what that form's request got. */
static int headers(const struct transfer *t, struct curl_slist **headers)
{
    struct curl_slist *l;
    if (!t->terms.remote.json)
        return 0;
    if (!(l = curl_slist_append(*headers, "Accept: application/vnd.pypi.simple.v1+json")))
        return -1;
    *headers = l;
    return 0;
}

static bool choose(struct transfer *t, enum transfer_state *next)
{
    if (t->source != t->asked) {
        t->source = t->asked;
        easy_set_url(&t->h, t->source);
    }
    easy_sign_for(t->h.easy, t->auth);
    log_debug("fetch %s: download started", t->url);
    *next = TS_ATTEMPT;
    return true;
}

const struct source_kind source_origin = {
    .name = "upstream",
    .from = "origin",
    .join = join,
    .choose = choose,
    .headers = headers,
    .timeouts = source_default_timeouts,
    .confirms_grants = true,
};
