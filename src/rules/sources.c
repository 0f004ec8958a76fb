/* Where a download may come from (rules.h, "Mirrors"): the --mirror rule a URL falls under, and
 * each mirror's URL for it. A mirror is another host: it is matched and asked with the URL
 * without its credentials (its signature, also under --exact-keys, userinfo, and any parameter
 * url_redact would hide: a token, an API key), and a URL that carried any of them is asked of
 * the origin first. */
#include "rules/rules.h"
#include "rules/keys.h"
#include "url/url.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cfg->mirror_rules, compiled once at start: regexec on them may run on any thread. */
static struct {
    regex_t res[CONFIG_MAX_RULES / 2];
    int n;
} sx;

int sources_init(const struct config *cfg, char *err, size_t errlen)
{
    sources_cleanup();
    for (int i = 0; i < cfg->n_mirror_rules; i++) {
        if (regcomp(&sx.res[i], cfg->mirror_rules[i].pattern, REG_EXTENDED) != 0) {
            snprintf(err, errlen, "--mirror: cannot compile '%s'", cfg->mirror_rules[i].pattern);
            sources_cleanup();
            return -1;
        }
        sx.n = i + 1;
    }
    return 0;
}

void sources_cleanup(void)
{
    for (int i = 0; i < sx.n; i++)
        regfree(&sx.res[i]);
    sx.n = 0;
}

/* A URL this long is matched in a buffer on the stack; a longer one (--max-url-length allows
 * up to 1 MiB) in one allocated. */
#define PLAIN_STACK 8192

/* The URL as a mirror may see it into plain (size: strlen(url) + 1), and whether it carried
 * credentials. */
static bool without_credentials(const struct config *cfg, const char *url, char *plain, size_t size)
{
    struct signature sig;
    keys_unsigned_url(cfg, url, plain, size, &sig);
    return url_strip_secrets(plain, plain, size) || sig.is_signed;
}

/* The first rule matching `plain` (its match in *m), -1: none. */
static int first_rule(const char *plain, regmatch_t *m)
{
    for (int i = 0; i < sx.n; i++)
        if (regexec(&sx.res[i], plain, 1, m, 0) == 0)
            return i;
    return -1;
}

bool sources_credentials(const struct config *cfg, const char *url)
{
    size_t size = strlen(url) + 1;
    char stack[PLAIN_STACK], *plain = size > sizeof(stack) ? malloc(size) : stack;
    bool credentials = true; /* out of memory: taken as carrying some, never sent on */
    /* and whatever the log would hide (url_redact: a ;jsessionid= path parameter too) */
    if (plain)
        credentials = without_credentials(cfg, url, plain, size) ||
                      url_redact(url, plain, size) != size - 1 || strcmp(plain, url) != 0;
    if (plain != stack)
        free(plain);
    return credentials;
}

void sources_decide(const struct config *cfg, const char *url, struct source_plan *out)
{
    char stack[PLAIN_STACK], *plain = stack;
    size_t size;
    bool credentials;
    regmatch_t m;
    *out = (struct source_plan){.mirror_rule = -1};
    if (sx.n == 0 || cfg->n_mirror_rules == 0)
        return;
    size = strlen(url) + 1;
    if (size > sizeof(stack) && !(plain = malloc(size)))
        return; /* the origin alone: it needs nothing */
    credentials = without_credentials(cfg, url, plain, size);
    out->mirror_rule = first_rule(plain, &m);
    if (out->mirror_rule >= 0) {
        out->n_mirrors = cfg->mirror_rules[out->mirror_rule].n;
        out->origin_first = credentials;
    }
    if (plain != stack)
        free(plain);
}

char *sources_mirror_url(const struct config *cfg, const struct source_plan *s, const char *url,
                         int k)
{
    size_t size = strlen(url) + 1, len;
    char *plain = malloc(size), *out = NULL;
    const struct mirror_rule *r;
    regmatch_t m;
    if (!plain || s->mirror_rule < 0 || s->mirror_rule >= sx.n || k < 0 || k >= s->n_mirrors)
        goto done;
    r = &cfg->mirror_rules[s->mirror_rule];
    without_credentials(cfg, url, plain, size);
    if (k >= r->n || regexec(&sx.res[s->mirror_rule], plain, 1, &m, 0) != 0)
        goto done;
    len = (size_t)m.rm_so + strlen(r->mirrors[k]) + strlen(plain + m.rm_eo);
    if ((out = malloc(len + 1)))
        snprintf(out, len + 1, "%.*s%s%s", (int)m.rm_so, plain, r->mirrors[k], plain + m.rm_eo);
done:
    free(plain);
    return out;
}
