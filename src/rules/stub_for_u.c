/* TEMPORARY (helper U's branch only, for the lead to drop when helper R's rules/terms.c and
 * rules/sources.c land): the least of terms.h and rules.h's sources that upstream/ needs to
 * link and to keep --mirror working: terms from the options alone (no rules), and the --mirror
 * regexes as upstream/mirror.c had them. */
#include "rules/rules.h"
#include "rules/keys.h"
#include "url/url.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static regex_t res[CONFIG_MAX_RULES / 2];
static int n_res;

int sources_init(const struct config *cfg, char *err, size_t errlen)
{
    for (n_res = 0; n_res < cfg->n_mirror_rules; n_res++) {
        if (regcomp(&res[n_res], cfg->mirror_rules[n_res].pattern, REG_EXTENDED) != 0) {
            snprintf(err, errlen, "--mirror: cannot compile '%s'",
                     cfg->mirror_rules[n_res].pattern);
            return -1;
        }
    }
    return 0;
}

void sources_cleanup(void)
{
    while (n_res > 0)
        regfree(&res[--n_res]);
}

/* The URL without what authorises the client (a signature, userinfo, tokens): malloc'd, NULL
 * when out of memory; *credentials: it carried some. */
static char *plain_url(const struct config *cfg, const char *url, bool *credentials)
{
    struct signature sig;
    char *unsigned_url = keys_unsigned_url_dup(cfg, url, &sig), *plain = NULL;
    *credentials = false;
    if (unsigned_url && (plain = malloc(strlen(unsigned_url) + 1)))
        *credentials = url_strip_secrets(unsigned_url, plain, strlen(unsigned_url) + 1);
    *credentials = *credentials || sig.is_signed;
    free(unsigned_url);
    return plain;
}

void sources_decide(const struct config *cfg, const char *url, struct terms_sources *out)
{
    bool credentials;
    char *plain = plain_url(cfg, url, &credentials);
    *out = (struct terms_sources){.mirror_rule = -1};
    for (int i = 0; plain && i < n_res; i++) {
        if (regexec(&res[i], plain, 0, NULL, 0) != 0)
            continue;
        *out = (struct terms_sources){i, cfg->mirror_rules[i].n, credentials};
        break;
    }
    free(plain);
}

char *terms_source_url(const struct config *cfg, const struct fetch_terms *t, const char *url,
                       int k)
{
    bool credentials;
    regmatch_t m;
    char *plain, *out = NULL;
    int r = t->sources.mirror_rule;
    if (r < 0 || r >= n_res || k < 0 || k >= t->sources.n_mirrors)
        return NULL;
    if (!(plain = plain_url(cfg, url, &credentials)))
        return NULL;
    if (regexec(&res[r], plain, 1, &m, 0) == 0 &&
        asprintf(&out, "%.*s%s%s", (int)m.rm_so, plain, cfg->mirror_rules[r].mirrors[k],
                 plain + m.rm_eo) < 0)
        out = NULL;
    free(plain);
    return out;
}

void terms_decide(const struct config *cfg, const struct terms_request *req,
                  struct fetch_terms *out)
{
    memset(out, 0, sizeof(*out));
    out->allowed = true;
    out->object = store_default_terms(cfg->default_ttl);
    out->fill_connections = cfg->fill_connections;
    out->fill_min_size = cfg->fill_min_size;
    out->fill_from = FROM_OPTION;
    sources_decide(cfg, req->url, &out->sources);
}
