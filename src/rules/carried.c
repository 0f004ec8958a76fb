/* carried_urls (carried.h): the query split at '&' and ';', each value decoded until it reads
 * as an http(s) URL or stops changing, normalized, handed on, and walked in turn. */
#include "rules/carried.h"
#include "url/url.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int hex(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* s percent-decoded in place ('+' kept: no scheme holds one); whether anything changed. */
static bool decode_once(char *s)
{
    char *o = s;
    bool changed = false;
    for (const char *p = s; *p; p++) {
        if (*p == '%' && hex(p[1]) >= 0 && hex(p[2]) >= 0) {
            *o++ = (char)(hex(p[1]) << 4 | hex(p[2]));
            p += 2;
            changed = true;
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
    return changed;
}

static bool reads_as_url(const char *s)
{
    while (*s == ' ' || *s == '\t') /* a lenient cache may skip them */
        s++;
    return !strncasecmp(s, "http://", 7) || !strncasecmp(s, "https://", 8);
}

bool carried_value_is_url(const char *v, size_t len)
{
    char *value = strndup(v, len);
    bool is = false;
    if (!value)
        return false;
    for (int i = 0; !reads_as_url(value) && i < CARRIED_DEPTH && decode_once(value); i++)
        continue;
    is = reads_as_url(value);
    free(value);
    return is;
}

/* What a walk carries along: the caller's callback, and how many more URLs it may judge (a URL
 * made of many nested parameters must not cost the server more than a few dozen). */
struct walker {
    int (*each)(const char *, void *);
    void *ctx;
    int budget;
};

static int walk(const char *url, int depth, struct walker *w);

/* One parameter's value (len bytes at v): decoded until it reads as a URL, then judged. */
static int one_value(const char *v, size_t len, int depth, struct walker *w)
{
    char *value = strndup(v, len), *normal = NULL;
    const char *no;
    int status, ret = 0;
    if (!value)
        return -1;
    for (int i = 0; !reads_as_url(value) && i < CARRIED_DEPTH && decode_once(value); i++)
        continue;
    if (reads_as_url(value)) {
        const char *u = value + strspn(value, " \t");
        size_t n = strlen(u);
        normal = malloc(URL_BUF_SIZE(n));
        if (depth >= CARRIED_DEPTH || --w->budget < 0 || !normal ||
            url_normalize(u, n, normal, URL_BUF_SIZE(n), &status, &no) < 0)
            ret = -1;
        else if (!(ret = w->each(normal, w->ctx)))
            ret = walk(normal, depth + 1, w);
    }
    free(normal);
    free(value);
    return ret;
}

/* Each parameter's value (after '=', or the parameter whole) is cut where each reader may cut
 * it: at the next ';' or '&', at the next '&', or at the query's end (arca's own unencoded url=
 * takes the rest of the query, '&' included). Every cut must pass. */
static int walk(const char *url, int depth, struct walker *w)
{
    const char *p = strchr(url, '?');
    int ret = 0;
    while (p && *p && !ret) {
        p++;
        size_t param = strcspn(p, "&;");
        const char *eq = memchr(p, '=', param);
        const char *v = eq ? eq + 1 : p;
        size_t cuts[3] = {strcspn(v, "&;"), strcspn(v, "&"), strlen(v)};
        for (int i = 0; i < 3 && !ret; i++)
            if (i == 0 || cuts[i] != cuts[i - 1])
                ret = one_value(v, cuts[i], depth, w);
        p += param;
    }
    return ret;
}

int carried_urls(const char *url, int (*each)(const char *normal, void *ctx), void *ctx)
{
    struct walker w = {.each = each, .ctx = ctx, .budget = CARRIED_BUDGET};
    return walk(url, 0, &w);
}
