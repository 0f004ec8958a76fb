/* parse_url, the one reading of a URL's parts (config, rules, the proxy, the client commands):
 * its parts are spans of the input, in order, that cover it whole ("scheme://" authority path
 * "?"query "#"fragment); the authority holds no '/', '?' nor '#', the path no '?' nor '#';
 * there is no scheme exactly when there is no "://"; an accepted host and port are
 * parse_authority's and parse_url_authority's reading of the authority; and whatever
 * url_normalize accepts, parse_url accepts. */
#include "fuzz.h"
#include "base/parse.h"
#include "url/url.h"

#define SPAN_HAS(p, n, c) ((n) > 0 && memchr((p), (c), (n)) != NULL)

/* The parts of a split URL cover `s` whole, in order, each free of what ends it. */
static void check_spans(const char *s, size_t len, const struct url_parts *u)
{
    size_t at = u->scheme_len + 3;
    if (u->scheme != s || u->authority != s + at || memcmp(s + u->scheme_len, "://", 3))
        abort();
    at += u->authority_len;
    if (u->path != s + at || SPAN_HAS(u->authority, u->authority_len, '/') ||
        SPAN_HAS(u->authority, u->authority_len, '?') ||
        SPAN_HAS(u->authority, u->authority_len, '#'))
        abort();
    at += u->path_len;
    if (SPAN_HAS(u->path, u->path_len, '?') || SPAN_HAS(u->path, u->path_len, '#') ||
        (u->path_len && u->path[0] != '/'))
        abort();
    if (u->query &&
        (u->query != s + at + 1 || s[at] != '?' || SPAN_HAS(u->query, u->query_len, '#')))
        abort();
    at += u->query ? 1 + u->query_len : 0;
    if (u->fragment && (u->fragment != s + at + 1 || s[at] != '#'))
        abort();
    at += u->fragment ? 1 + u->fragment_len : 0;
    if (at != len)
        abort();
}

/* An accepted authority: its host within it after the userinfo, read as parse_authority reads
 * host[:port], and as parse_url_authority reads the authority alone. */
static void check_host(const struct url_parts *u)
{
    const char *end = u->authority + u->authority_len, *start = u->host;
    struct authority a;
    struct url_parts alone;
    if ((u->userinfo ? u->userinfo + u->userinfo_len + 1 : u->authority) != start)
        abort();
    if (u->host_len == 0 || u->name_len == 0 || u->name_len > u->host_len ||
        start + u->host_len > end || u->port < 0 || u->port > 65535)
        abort();
    if (parse_authority(start, (size_t)(end - start), &a) != AUTHORITY_OK || a.host != u->host ||
        a.host_len != u->host_len || a.port != u->port)
        abort();
    if (parse_url_authority(u->authority, u->authority_len, &alone) != URL_OK ||
        alone.host != u->host || alone.host_len != u->host_len || alone.port != u->port ||
        alone.userinfo != u->userinfo)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    struct url_parts u;
    enum url_error e = parse_url(s, size, &u);
    bool has_sep = size >= 3 && memmem(s, size, "://", 3) != NULL;
    if ((e == URL_NO_SCHEME) != !has_sep ||
        (u.scheme == NULL) != (e == URL_NO_SCHEME || e == URL_BAD_SCHEME))
        abort();
    if (!u.scheme)
        return 0;
    check_spans(s, size, &u);
    if (e == URL_OK)
        check_host(&u);
    else if (u.host_len || u.port)
        abort();
    char *str = fuzz_string(data, size), *out = malloc(URL_BUF_SIZE(size));
    int status;
    const char *why;
    if (str && out && strlen(str) == size &&
        url_normalize(str, size, out, URL_BUF_SIZE(size), &status, &why) == 0 && e != URL_OK)
        abort();
    free(out);
    free(str);
    return 0;
}
