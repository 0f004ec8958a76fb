/* The buckets and their credentials (see buckets.h). */
#include "config/buckets.h"
#include "url/url.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct bucket_auth table[CONFIG_MAX_BUCKETS];
static int n_table;

/* Up to three lines, blanks around each trimmed: -1 when the file cannot be read. */
static int read_lines(const char *path, char lines[3][1024])
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    int n = 0;
    while (n < 3 && fgets(lines[n], sizeof(lines[n]), f)) {
        char *s = lines[n];
        size_t len = strlen(s);
        while (len > 0 && strchr(" \t\r\n", s[len - 1]))
            s[--len] = '\0';
        size_t lead = strspn(s, " \t");
        memmove(s, s + lead, len - lead + 1);
        n++;
    }
    fclose(f);
    return n;
}

static int set_keys(struct bucket_auth *a, const char *id, const char *secret, const char *token,
                    char *err, size_t errlen)
{
    if (!id[0] || !secret[0] || strchr(id, ':') ||
        snprintf(a->userpwd, sizeof(a->userpwd), "%s:%s", id, secret) >= (int)sizeof(a->userpwd) ||
        snprintf(a->token_header, sizeof(a->token_header), "%s%s",
                 token && token[0] ? "x-amz-security-token: " : "",
                 token ? token : "") >= (int)sizeof(a->token_header)) {
        snprintf(err, errlen,
                 "bucket %s: credentials need an access key id and a secret (at most 1 KiB)",
                 a->bucket->name);
        return -1;
    }
    return 0;
}

static int load(struct bucket_auth *a, char *err, size_t errlen)
{
    char lines[3][1024] = {"", "", ""};
    const char *id = getenv("AWS_ACCESS_KEY_ID"), *secret = getenv("AWS_SECRET_ACCESS_KEY");
    snprintf(a->sigv4, sizeof(a->sigv4), "aws:amz:%s:s3", a->bucket->region);
    if (a->bucket->credentials[0]) {
        int n = read_lines(a->bucket->credentials, lines);
        if (n < 2) {
            snprintf(err, errlen, "bucket %s: credentials file '%s' %s", a->bucket->name,
                     a->bucket->credentials,
                     n < 0 ? "cannot be read" : "needs an access key id and a secret");
            return -1;
        }
        return set_keys(a, lines[0], lines[1], lines[2], err, errlen);
    }
    if (id && secret && id[0] && secret[0])
        return set_keys(a, id, secret, getenv("AWS_SESSION_TOKEN"), err, errlen);
    a->anonymous = true;
    return 0;
}

int buckets_init(const struct config *cfg, char *err, size_t errlen)
{
    n_table = 0;
    for (int i = 0; i < cfg->n_buckets; i++) {
        struct bucket_auth *a = &table[n_table];
        memset(a, 0, sizeof(*a));
        a->bucket = &cfg->buckets[i];
        int status;
        const char *why;
        if (url_normalize(a->bucket->url, strlen(a->bucket->url), a->url, sizeof(a->url), &status,
                          &why) < 0) {
            snprintf(err, errlen, "bucket %s: url: %s", a->bucket->name, why);
            return -1;
        }
        if (load(a, err, errlen) < 0)
            return -1;
        n_table++;
    }
    return 0;
}

const struct bucket_auth *buckets_find(const char *name, size_t len)
{
    assert(n_table >= 0 && n_table <= CONFIG_MAX_BUCKETS);
    for (int i = 0; i < n_table; i++)
        if (strlen(table[i].bucket->name) == len && !strncmp(table[i].bucket->name, name, len))
            return &table[i];
    return NULL;
}

const struct bucket_auth *buckets_for_url(const char *url)
{
    for (int i = 0; i < n_table; i++) {
        size_t n = strlen(table[i].url);
        if (!strncmp(url, table[i].url, n) && url[n] == '/')
            return &table[i];
    }
    return NULL;
}

bool buckets_sign_under(const char *url)
{
    for (int i = 0; i < n_table; i++) {
        size_t n = strlen(table[i].url);
        if (!table[i].anonymous && !strncmp(url, table[i].url, n) && url[n] == '/')
            return true;
    }
    return false;
}
