/* Cache keys of signed URLs (see keys.h). */
#include "rules/keys.h"
#include "base/parse.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* One built-in scheme: present when every trigger parameter is; then `drop` goes. */
struct scheme {
    const char *trigger[2];
    const char *drop;
};

static const struct scheme schemes[] = {
    {{"X-Amz-Signature", NULL},
     "X-Amz-Algorithm,X-Amz-Credential,X-Amz-Date,X-Amz-Expires,X-Amz-SignedHeaders,"
     "X-Amz-Signature,X-Amz-Security-Token"},
    {{"Signature", "AWSAccessKeyId"}, "AWSAccessKeyId,Signature,Expires,x-amz-security-token"},
    {{"X-Goog-Signature", NULL},
     "X-Goog-Algorithm,X-Goog-Credential,X-Goog-Date,X-Goog-Expires,X-Goog-SignedHeaders,"
     "X-Goog-Signature"},
    {{"Signature", "GoogleAccessId"}, "GoogleAccessId,Signature,Expires"},
    {{"sig", "sv"},
     "sv,ss,srt,sp,se,st,spr,sig,sr,si,sip,sdd,skoid,sktid,skt,ske,sks,skv,saoid,suoid,scid"},
    {{"Signature", "Key-Pair-Id"}, "Expires,Signature,Key-Pair-Id,Policy"},
};
#define N_SCHEMES (sizeof(schemes) / sizeof(schemes[0]))
#define MAX_PARAMS 128

struct param {
    const char *s; /* "name=value" or "name" */
    size_t len, name_len;
};

/* Whether `name` (name_len bytes) is in the comma-separated `list`. */
static bool listed(const char *list, const char *name, size_t name_len)
{
    for (const char *p = list; *p;) {
        size_t n = strcspn(p, ",");
        if (n == name_len && strncasecmp(p, name, n) == 0)
            return true;
        p += n + (p[n] == ',');
    }
    return false;
}

static const struct param *find(const struct param *ps, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (ps[i].name_len == strlen(name) && strncasecmp(ps[i].s, name, ps[i].name_len) == 0)
            return &ps[i];
    return NULL;
}

int parse_signature_time(const char *s, size_t len, int64_t *t)
{
    struct tm tm = {0};
    char buf[32];
    const char *end;
    if (len >= sizeof(buf))
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (!(end = strptime(buf, "%Y%m%dT%H%M%SZ", &tm)) || *end) {
        memset(&tm, 0, sizeof(tm));
        if (!(end = strptime(buf, "%Y-%m-%dT%H:%M:%SZ", &tm)) || *end) {
            memset(&tm, 0, sizeof(tm));
            if (!(end = strptime(buf, "%Y-%m-%d", &tm)) || *end)
                return -1;
        }
    }
    *t = (int64_t)timegm(&tm);
    return 0;
}

/* A decimal value of a parameter (its "value" part). */
static int param_number(const struct param *p, int64_t *out)
{
    char buf[24], *end;
    size_t vlen = p->len - p->name_len - 1;
    if (p->len <= p->name_len + 1 || vlen >= sizeof(buf))
        return -1;
    memcpy(buf, p->s + p->name_len + 1, vlen);
    buf[vlen] = '\0';
    *out = strtoll(buf, &end, 10);
    return *end || buf[0] < '0' || buf[0] > '9' ? -1 : 0;
}

static int param_time(const struct param *p, int64_t *out)
{
    if (p->len <= p->name_len + 1)
        return -1;
    return parse_signature_time(p->s + p->name_len + 1, p->len - p->name_len - 1, out);
}

/* When the signature ends, as far as the URL tells: a start plus a duration (AWS, GCS), an
 * epoch (S3 V2, GCS V2, CloudFront) or a date (Azure's se). 0 when it does not tell. */
static int64_t expiry(const struct param *ps, int n)
{
    static const char *const starts[][2] = {{"X-Amz-Date", "X-Amz-Expires"},
                                            {"X-Goog-Date", "X-Goog-Expires"}};
    const struct param *a, *b;
    int64_t t, d;
    for (size_t i = 0; i < 2; i++)
        if ((a = find(ps, n, starts[i][0])) && (b = find(ps, n, starts[i][1])) &&
            param_time(a, &t) == 0 && param_number(b, &d) == 0)
            return t + d;
    if ((a = find(ps, n, "Expires")) && param_number(a, &t) == 0)
        return t;
    if ((a = find(ps, n, "se")) && param_time(a, &t) == 0)
        return t;
    return 0;
}

/* Whether the parameter goes: a built-in scheme present in the URL, or a rule for its host. */
static bool dropped(const struct config *cfg, const struct param *p, const bool *present,
                    const char *host)
{
    for (size_t i = 0; i < N_SCHEMES; i++)
        if (present[i] && listed(schemes[i].drop, p->s, p->name_len))
            return true;
    for (int i = 0; i < cfg->n_key_rules; i++)
        if (fnmatch(cfg->key_rules[i].host, host, 0) == 0 &&
            listed(cfg->key_rules[i].params, p->s, p->name_len))
            return true;
    return false;
}

/* The host of a normal-form URL, without userinfo nor port ("[v6]" with its brackets), into
 * out: what --key-rules' globs are matched against ("" for no URL). */
static void host_of(const char *url, char *out, size_t size)
{
    struct url_parts u;
    if (parse_url(url, strlen(url), &u) != URL_OK)
        u.host_len = 0;
    snprintf(out, size, "%.*s", (int)u.host_len, u.host ? u.host : "");
}

/* Split the query into parameters; -1 when there are too many to judge (kept whole). */
static int split(const char *query, struct param *ps)
{
    int n = 0;
    for (const char *p = query; *p;) {
        size_t len = strcspn(p, "&");
        if (n == MAX_PARAMS)
            return -1;
        ps[n] = (struct param){p, len, strcspn(p, "=&")};
        if (ps[n].name_len > len)
            ps[n].name_len = len;
        n++;
        p += len + (p[len] == '&');
    }
    return n;
}

/* `rewrite` into a copy of the URL's size (what is left out only shortens it). */
static char *rewritten_dup(void (*rewrite)(const struct config *, const char *, char *, size_t,
                                           struct signature *),
                           const struct config *cfg, const char *url, struct signature *sig)
{
    size_t size = strlen(url) + 1;
    char *out = malloc(size);
    if (out)
        rewrite(cfg, url, out, size, sig);
    return out;
}

char *keys_cache_url_dup(const struct config *cfg, const char *url, struct signature *sig)
{
    return rewritten_dup(keys_cache_url, cfg, url, sig);
}

int64_t keys_grant_until(const struct config *cfg, const struct signature *sig, int64_t now)
{
    int64_t until = now + cfg->confirm_ttl;
    return sig->expires > 0 && sig->expires < until ? sig->expires : until;
}

void keys_cache_url(const struct config *cfg, const char *url, char *out, size_t size,
                    struct signature *sig)
{
    if (cfg->exact_keys) {
        *sig = (struct signature){false, 0};
        if (out != url)
            snprintf(out, size, "%s", url);
        return;
    }
    keys_unsigned_url(cfg, url, out, size, sig);
}

char *keys_unsigned_url_dup(const struct config *cfg, const char *url, struct signature *sig)
{
    return rewritten_dup(keys_unsigned_url, cfg, url, sig);
}

void keys_unsigned_url(const struct config *cfg, const char *url, char *out, size_t size,
                       struct signature *sig)
{
    const char *q = strchr(url, '?');
    struct param ps[MAX_PARAMS];
    bool present[N_SCHEMES];
    char host[256];
    int n;

    *sig = (struct signature){false, 0};
    if (out != url)
        snprintf(out, size, "%s", url);
    if (!q || (n = split(q + 1, ps)) <= 0)
        return;
    int64_t expires = expiry(ps, n); /* before `out`, which may be `url`, is rewritten */
    for (size_t i = 0; i < N_SCHEMES; i++)
        present[i] = find(ps, n, schemes[i].trigger[0]) &&
                     (!schemes[i].trigger[1] || find(ps, n, schemes[i].trigger[1]));
    host_of(url, host, sizeof(host));
    bool drop[MAX_PARAMS];
    for (int i = 0; i < n; i++)
        sig->is_signed |= drop[i] = dropped(cfg, &ps[i], present, host);
    if (!sig->is_signed)
        return; /* the URL as it is (out holds its copy) */
    size_t len = (size_t)(q - url);
    bool first = true;
    for (int i = 0; i < n; i++) {
        if (drop[i])
            continue;
        if (len + 1 + ps[i].len + 1 > size)
            return; /* cannot happen: the key is never longer than the URL */
        out[len++] = first ? '?' : '&';
        memmove(out + len, ps[i].s, ps[i].len);
        len += ps[i].len;
        first = false;
    }
    out[len] = '\0';
    sig->expires = expires;
}
