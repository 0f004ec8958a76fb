#include "base/parse.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Parse a non-negative decimal integer prefix; *end points past it. Rejects signs, blanks and
 * overflow, which strtoll would silently accept or clamp. */
static int parse_digits(const char *s, int64_t *out, const char **end)
{
    int64_t v = 0;
    const char *p = s;
    if (!isdigit((unsigned char)*p))
        return -1;
    for (; isdigit((unsigned char)*p); p++) {
        int d = *p - '0';
        if (v > (INT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    *end = p;
    return 0;
}

/* Multiply with an overflow check; the suffix tables below would otherwise wrap. */
static int scale(int64_t v, int64_t unit, int64_t *out)
{
    if (v > INT64_MAX / unit)
        return -1;
    *out = v * unit;
    return 0;
}

int parse_seconds(const char *s, int64_t *seconds)
{
    int64_t v, unit;
    const char *end;
    if (!s || parse_digits(s, &v, &end) < 0 || v <= 0)
        return -1;
    switch (end[0]) {
    case 'd':
        unit = 86400;
        break;
    case 'h':
        unit = 3600;
        break;
    case 'm':
        unit = 60;
        break;
    case 's':
        unit = 1;
        break;
    default:
        return -1;
    }
    if (end[1] != '\0')
        return -1;
    *seconds = v > INT64_MAX / unit ? INT64_MAX : v * unit;
    return 0;
}

int parse_ttl(const char *s, int64_t *seconds)
{
    if (parse_seconds(s, seconds) < 0)
        return -1;
    if (*seconds > TTL_MAX)
        *seconds = TTL_MAX;
    return 0;
}

int parse_duration_ms(const char *s, int64_t *ms)
{
    static const struct {
        const char *suffix;
        int64_t unit;
    } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
    int64_t v;
    const char *end;
    if (!s || parse_digits(s, &v, &end) < 0 || v <= 0)
        return -1;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (!strcmp(end, units[i].suffix))
            return scale(v, units[i].unit, ms);
    return -1;
}

int parse_size(const char *s, int64_t *bytes)
{
    int64_t v, unit = 1;
    const char *end;
    if (!s || parse_digits(s, &v, &end) < 0 || v <= 0)
        return -1;
    if (*end) {
        const char *units = "KMGT";
        const char *u = strchr(units, toupper((unsigned char)*end));
        if (!u || end[1] != '\0')
            return -1;
        for (const char *k = units; k <= u; k++)
            unit *= 1024;
    }
    return scale(v, unit, bytes);
}

static const uint8_t v4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

bool addr_is_v4_mapped(const uint8_t addr[16])
{
    return !memcmp(addr, v4_mapped_prefix, sizeof(v4_mapped_prefix));
}

bool addr_is_loopback(const uint8_t addr[16])
{
    static const uint8_t one[16] = {[15] = 1};
    return (addr_is_v4_mapped(addr) && addr[12] == 127) || !memcmp(addr, one, 16);
}

bool addr_is_unspecified(const uint8_t addr[16])
{
    static const uint8_t zero[16];
    return !memcmp(addr, zero, 16) || (addr_is_v4_mapped(addr) && !memcmp(addr + 12, zero, 4));
}

bool host_is_wildcard(const char *host)
{
    return !host[0] || !strcmp(host, "0.0.0.0") || !strcmp(host, "::") || !strcmp(host, "*");
}

static void v4_to_mapped(const void *v4, uint8_t out[16])
{
    memset(out, 0, 10);
    out[10] = 0xff;
    out[11] = 0xff;
    memcpy(out + 12, v4, 4);
}

/* The bits past the prefix, zeroed: what the network contains is unchanged (cidr_contains
 * compares the prefix only), what it is shown as is the network, not the host written. */
static void clear_host_bits(struct cidr *net)
{
    int full = net->prefix / 8, rest = net->prefix % 8;
    if (full >= 16)
        return;
    net->addr[full] &= (uint8_t)(0xff << (8 - rest));
    memset(net->addr + full + 1, 0, (size_t)(15 - full));
}

int parse_cidr(const char *s, struct cidr *out)
{
    char buf[INET6_ADDRSTRLEN + 8];
    const char *slash;
    int64_t prefix = -1;
    size_t alen;
    unsigned char raw[16];

    if (!s || strlen(s) >= sizeof(buf))
        return -1;
    slash = strchr(s, '/');
    alen = slash ? (size_t)(slash - s) : strlen(s);
    memcpy(buf, s, alen);
    buf[alen] = '\0';
    if (slash) {
        const char *end;
        if (parse_digits(slash + 1, &prefix, &end) < 0 || *end)
            return -1;
    }
    if (inet_pton(AF_INET, buf, raw) == 1) {
        if (prefix > 32)
            return -1;
        v4_to_mapped(raw, out->addr);
        out->prefix = prefix < 0 ? 128 : 96 + (int)prefix;
        clear_host_bits(out);
        return 0;
    }
    if (inet_pton(AF_INET6, buf, raw) == 1) {
        if (prefix > 128)
            return -1;
        memcpy(out->addr, raw, 16);
        out->prefix = prefix < 0 ? 128 : (int)prefix;
        clear_host_bits(out);
        return 0;
    }
    return -1;
}

int addr_to_v6(const struct sockaddr *sa, uint8_t out[16])
{
    if (sa->sa_family == AF_INET) {
        v4_to_mapped(&((const struct sockaddr_in *)sa)->sin_addr, out);
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        memcpy(out, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
        return 0;
    }
    return -1;
}

bool cidr_contains(const struct cidr *net, const uint8_t addr[16])
{
    int full = net->prefix / 8, rest = net->prefix % 8;
    if (memcmp(net->addr, addr, (size_t)full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (net->addr[full] & mask) == (addr[full] & mask);
}

int format_sockaddr(const struct sockaddr *sa, char *out, size_t size)
{
    const void *a =
        !sa                         ? NULL
        : sa->sa_family == AF_INET  ? (const void *)&((const struct sockaddr_in *)sa)->sin_addr
        : sa->sa_family == AF_INET6 ? (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr
                                    : NULL;
    if (a && inet_ntop(sa->sa_family, a, out, (socklen_t)size))
        return 0;
    snprintf(out, size, "-");
    return -1;
}

void format_cidr(const struct cidr *net, char *out, size_t size)
{
    char text[INET6_ADDRSTRLEN] = "?";
    if (addr_is_v4_mapped(net->addr) && net->prefix >= 96) {
        inet_ntop(AF_INET, net->addr + 12, text, sizeof(text));
        snprintf(out, size, "%s/%d", text, net->prefix - 96);
    } else {
        inet_ntop(AF_INET6, net->addr, text, sizeof(text));
        snprintf(out, size, "%s/%d", text, net->prefix);
    }
}

enum range_result parse_range(const char *header, int64_t total, struct byte_range *out)
{
    int64_t a = -1, b = -1;
    const char *p, *end;

    if (!header || strncasecmp(header, "bytes=", 6) != 0)
        return RANGE_NONE;
    p = header + 6;
    while (*p == ' ')
        p++;
    if (strchr(p, ','))
        return RANGE_NONE; /* multipart ranges: ignored, full body served */
    if (*p == '-') {
        if (parse_digits(p + 1, &b, &end) < 0)
            return RANGE_NONE;
        while (*end == ' ')
            end++;
        if (*end)
            return RANGE_NONE;
        if (b == 0 || total == 0)
            return RANGE_UNSATISFIABLE;
        out->first = b >= total ? 0 : total - b;
        out->last = total - 1;
        return RANGE_OK;
    }
    if (parse_digits(p, &a, &end) < 0 || *end != '-')
        return RANGE_NONE;
    p = end + 1;
    if (*p && *p != ' ') {
        if (parse_digits(p, &b, &end) < 0)
            return RANGE_NONE;
        p = end;
        if (b < a)
            return RANGE_NONE;
    }
    while (*p == ' ')
        p++;
    if (*p)
        return RANGE_NONE;
    if (a >= total)
        return RANGE_UNSATISFIABLE;
    out->first = a;
    out->last = (b < 0 || b >= total) ? total - 1 : b;
    return RANGE_OK;
}

int parse_port(const char *s, size_t len)
{
    long n = 0;
    if (len == 0)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        n = n * 10 + (s[i] - '0');
        if (n > 65535)
            return -1;
    }
    return n >= 1 ? (int)n : -1;
}

/* The name's characters: letters, digits, '-', '.', '_' (a stricter reg-name: no
 * percent-encoding, no sub-delims, as curl and the resolver take them). */
static bool host_name_ok(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)s[i]) && (!s[i] || !strchr("-._", s[i]))) /* NUL: no */
            return false;
    return true;
}

/* "[v6]" or "[v6%25zone]" (len bytes, brackets in): an IPv6 address, a zone of unreserved
 * characters after it. */
static bool ipv6_literal_ok(const char *s, size_t len)
{
    char addr[INET6_ADDRSTRLEN];
    struct in6_addr a;
    const char *zone = memchr(s, '%', len);
    size_t end = zone ? (size_t)(zone - s) : len - 1;    /* the address: s[1..end) */
    if (end - 1 >= sizeof(addr) || memchr(s, '\0', len)) /* inet_pton would stop at a NUL */
        return false;
    if (zone) {
        if (len - 1 - end < 4 || strncmp(zone, "%25", 3) != 0)
            return false;
        for (size_t i = end + 3; i < len - 1; i++)
            if (!isalnum((unsigned char)s[i]) && (!s[i] || !strchr("-._~", s[i])))
                return false;
    }
    memcpy(addr, s + 1, end - 1);
    addr[end - 1] = '\0';
    return inet_pton(AF_INET6, addr, &a) == 1;
}

enum authority_error parse_authority(const char *s, size_t len, struct authority *a)
{
    const char *close = len && s[0] == '[' ? memchr(s, ']', len) : NULL;
    const char *colon;
    a->host = s;
    a->port = 0;
    if (len && s[0] == '[') {
        if (!close)
            return AUTHORITY_BAD_IPV6;
        a->host_len = (size_t)(close - s) + 1;
        if (a->host_len < len && s[a->host_len] != ':')
            return AUTHORITY_BAD_IPV6; /* "[::1]x": nothing but a port may follow */
        colon = a->host_len < len ? s + a->host_len : NULL;
        if (a->host_len == 2)
            return AUTHORITY_NO_HOST;
        if (!ipv6_literal_ok(s, a->host_len))
            return AUTHORITY_BAD_IPV6;
    } else {
        colon = memchr(s, ':', len);
        a->host_len = colon ? (size_t)(colon - s) : len;
        if (a->host_len == 0)
            return AUTHORITY_NO_HOST;
        if (!host_name_ok(s, a->host_len))
            return AUTHORITY_BAD_HOST;
    }
    if (!colon || colon + 1 == s + len)
        return AUTHORITY_OK; /* "host:" is the scheme's default port (RFC 3986 3.2.3) */
    for (const char *p = colon + 1; p < s + len; p++)
        if (*p < '0' || *p > '9')
            return AUTHORITY_BAD_PORT;
    a->port = parse_port(colon + 1, (size_t)(s + len - colon - 1));
    return a->port > 0 ? AUTHORITY_OK : AUTHORITY_PORT_RANGE;
}

/* A name's final dots ("example.org." is the name example.org in DNS's absolute form) are
 * left out of name_len, but never its first byte; an IP literal has none. */
static size_t name_without_dots(const char *host, size_t len)
{
    if (len && host[0] != '[')
        while (len > 1 && host[len - 1] == '.')
            len--;
    return len;
}

/* parse_authority's verdicts are parse_url's in the same order, from URL_NO_HOST on. */
_Static_assert(URL_PORT_RANGE - URL_NO_HOST == AUTHORITY_PORT_RANGE - AUTHORITY_NO_HOST,
               "enum url_error follows enum authority_error");

enum url_error parse_url_authority(const char *s, size_t len, struct url_parts *u)
{
    const char *at = NULL;
    struct authority a;
    enum authority_error e;
    for (const char *p = s; p < s + len; p++)
        if (*p == '@')
            at = p; /* the last: a userinfo may hold '@', a host never */
    u->authority = s;
    u->authority_len = len;
    u->userinfo = at ? s : NULL;
    u->userinfo_len = at ? (size_t)(at - s) : 0;
    u->host = at ? at + 1 : s;
    u->host_len = u->name_len = 0;
    u->port = 0;
    if (memchr(s, '/', len) || memchr(s, '?', len) || memchr(s, '#', len))
        return URL_BAD_HOST;
    e = parse_authority(u->host, (size_t)(s + len - u->host), &a);
    if (e != AUTHORITY_OK)
        return (enum url_error)(URL_NO_HOST + (e - AUTHORITY_NO_HOST));
    u->host_len = a.host_len;
    u->name_len = name_without_dots(a.host, a.host_len);
    u->port = a.port;
    return URL_OK;
}

/* The scheme's length: what comes before the first "://" of s[0, len), which must be a letter
 * then letters, digits, '+', '-' or '.' (RFC 3986 3.1). *found: whether there is a "://". */
static size_t scheme_length(const char *s, size_t len, bool *found)
{
    const char *sep = NULL;
    for (size_t i = 0; !sep && i + 3 <= len; i++)
        if (!memcmp(s + i, "://", 3))
            sep = s + i;
    *found = sep != NULL;
    if (!sep || sep == s || !isalpha((unsigned char)s[0]))
        return 0;
    for (const char *p = s; p < sep; p++)
        if (!isalnum((unsigned char)*p) && *p != '+' && *p != '-' && *p != '.')
            return 0;
    return (size_t)(sep - s);
}

/* RFC 3986 3.2 and 3.3: an authority ends at the first '/', '?' or '#', a path at '?' or '#'. */
static const char *authority_end(const char *p, const char *end)
{
    while (p < end && *p != '/' && *p != '?' && *p != '#')
        p++;
    return p;
}

static const char *path_end(const char *p, const char *end)
{
    while (p < end && *p != '?' && *p != '#')
        p++;
    return p;
}

bool parse_url_path(const char *s, size_t len, const char **path, size_t *path_len)
{
    bool found;
    size_t n = scheme_length(s, len, &found);
    if (n == 0)
        return false;
    *path = authority_end(s + n + 3, s + len);
    *path_len = (size_t)(path_end(*path, s + len) - *path);
    return true;
}

enum url_error parse_url(const char *s, size_t len, struct url_parts *u)
{
    bool found;
    size_t n = scheme_length(s, len, &found);
    const char *end = s + len, *p;
    enum url_error e;
    *u = (struct url_parts){0};
    if (n == 0)
        return found ? URL_BAD_SCHEME : URL_NO_SCHEME;
    p = authority_end(s + n + 3, end);
    e = parse_url_authority(s + n + 3, (size_t)(p - (s + n + 3)), u);
    u->scheme = s;
    u->scheme_len = n;
    u->path = p;
    p = path_end(p, end);
    u->path_len = (size_t)(p - u->path);
    u->query = p < end && *p == '?' ? p + 1 : NULL;
    while (p < end && *p != '#')
        p++;
    u->query_len = u->query ? (size_t)(p - u->query) : 0;
    u->fragment = p < end ? p + 1 : NULL;
    u->fragment_len = p < end ? (size_t)(end - p - 1) : 0;
    return e;
}

bool url_scheme_is(const struct url_parts *u, const char *scheme)
{
    return u->scheme && u->scheme_len == strlen(scheme) &&
           !strncasecmp(u->scheme, scheme, u->scheme_len);
}

int url_port(const struct url_parts *u)
{
    if (u->port)
        return u->port;
    return url_scheme_is(u, "https") ? 443 : url_scheme_is(u, "http") ? 80 : 0;
}

const char *url_host(const char *url, size_t *len)
{
    struct url_parts u;
    parse_url(url, strlen(url), &u); /* its verdict aside: the host's place is enough */
    if (!u.scheme) {
        *len = 0;
        return url;
    }
    *len = (size_t)(u.authority + u.authority_len - u.host);
    return u.host;
}

static const char *skip_blanks(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

int parse_content_length(const char *value, int64_t *length)
{
    const char *end;
    if (!value || parse_digits(skip_blanks(value), length, &end) < 0)
        return -1;
    return *skip_blanks(end) ? -1 : 0;
}

int parse_content_range(const char *value, int64_t *first, int64_t *last, int64_t *total)
{
    const char *p, *end;
    if (!value || strncasecmp(skip_blanks(value), "bytes ", 6) != 0)
        return -1;
    p = skip_blanks(skip_blanks(value) + 6);
    if (parse_digits(p, first, &end) < 0 || *end != '-')
        return -1;
    if (parse_digits(end + 1, last, &end) < 0 || *end != '/' || *last < *first)
        return -1;
    p = end + 1;
    if (*p == '*') {
        *total = -1;
        end = p + 1;
    } else if (parse_digits(p, total, &end) < 0 || *last >= *total) {
        return -1;
    }
    return *skip_blanks(end) ? -1 : 0;
}

/* RFC 8941 (Structured Field Values), what a Dictionary of Items and Inner Lists needs: each
 * reader returns the byte after what it read, or NULL when that is not well-formed there. */
static bool sf_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool sf_lcalpha(char c)
{
    return c >= 'a' && c <= 'z';
}

/* A key: lcalpha or "*", then lcalpha, DIGIT, "_", "-", "." or "*"; *len its bytes. */
static const char *sf_key(const char *p, size_t *len)
{
    const char *start = p;
    if (!sf_lcalpha(*p) && *p != '*')
        return NULL;
    while (sf_lcalpha(*p) || sf_digit(*p) || (*p && strchr("_-.*", *p)))
        p++;
    *len = (size_t)(p - start);
    return p;
}

/* An Integer or Decimal (*is_int, *value set for an Integer only). */
static const char *sf_number(const char *p, bool *is_int, int64_t *value)
{
    bool neg = *p == '-';
    int digits = 0, fraction = 0;
    int64_t v = 0;
    for (p += neg; sf_digit(*p); p++) {
        if (++digits > 15)
            return NULL;
        v = v * 10 + (*p - '0');
    }
    if (digits == 0)
        return NULL;
    if (*p != '.') {
        *is_int = true;
        *value = neg ? -v : v;
        return p;
    }
    for (p++; sf_digit(*p); p++)
        fraction++;
    return digits <= 12 && fraction >= 1 && fraction <= 3 ? p : NULL;
}

/* A Bare Item: Integer, Decimal, String, Token, Byte Sequence or Boolean. */
static const char *sf_bare_item(const char *p, bool *is_int, int64_t *value)
{
    unsigned char c = (unsigned char)*p;
    *is_int = false;
    if (c == '-' || sf_digit(*p))
        return sf_number(p, is_int, value);
    if (c == '"') {
        for (p++; *p != '"'; p++) {
            if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
                p++;
            else if (*p == '\\' || (unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
                return NULL; /* the end of the text comes here too */
        }
        return p + 1;
    }
    if (isalpha(c) || c == '*') {
        while (*p && (isalnum((unsigned char)*p) || strchr("!#$%&'*+-.^_`|~:/", *p)))
            p++;
        return p;
    }
    if (c == ':') {
        for (p++; *p != ':'; p++)
            if (!*p || !(isalnum((unsigned char)*p) || strchr("+/=", *p)))
                return NULL;
        return p + 1;
    }
    if (c == '?')
        return p[1] == '0' || p[1] == '1' ? p + 2 : NULL;
    return NULL;
}

/* Parameters: ";key[=bare-item]"... (none is fine). */
static const char *sf_params(const char *p)
{
    bool is_int;
    int64_t v;
    size_t len;
    while (p && *p == ';') {
        for (p++; *p == ' ';)
            p++;
        if ((p = sf_key(p, &len)) && *p == '=')
            p = sf_bare_item(p + 1, &is_int, &v);
    }
    return p;
}

/* A member's value: an Item or an Inner List, with its parameters. */
static const char *sf_member_value(const char *p, bool *is_int, int64_t *value)
{
    bool item_int;
    int64_t v;
    if (*p != '(')
        return sf_params(sf_bare_item(p, is_int, value));
    *is_int = false;
    for (p++;;) {
        while (*p == ' ')
            p++;
        if (*p == ')')
            return sf_params(p + 1);
        if (!(p = sf_params(sf_bare_item(p, &item_int, &v))) || (*p != ' ' && *p != ')'))
            return NULL;
    }
}

int parse_want_digest(const char *value, const char *alg, int64_t *pref)
{
    const char *p = skip_blanks(value);
    size_t alg_len = strlen(alg);
    int64_t found = -1;
    *pref = -1;
    while (*p) {
        const char *key = p;
        size_t len;
        bool is_int = false;
        int64_t v = 0;
        if (!(p = sf_key(p, &len)))
            return -1;
        /* no "=": Boolean true, not a preference */
        if (!(p = *p == '=' ? sf_member_value(p + 1, &is_int, &v) : sf_params(p)))
            return -1;
        if (len == alg_len && !memcmp(key, alg, len)) /* a key given twice: the last counts */
            found = is_int && v > 0 ? v : 0;
        p = skip_blanks(p);
        if (*p && (*p != ',' || !*(p = skip_blanks(p + 1))))
            return -1; /* not a member's end, or a comma ending the field */
    }
    *pref = found;
    return 0;
}

/* Each byte's hex value plus one, 0 for a byte that is no hex digit: a table, as every key is
 * 64 of them (a start parses a million keys from the index's rows and as many file names; with
 * tolower() per digit they were a fifth of its profile). */
static const uint8_t hex_plus_one[256] = {
    ['0'] = 1,  ['1'] = 2,  ['2'] = 3,  ['3'] = 4,  ['4'] = 5,  ['5'] = 6,  ['6'] = 7,  ['7'] = 8,
    ['8'] = 9,  ['9'] = 10, ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
    ['A'] = 11, ['B'] = 12, ['C'] = 13, ['D'] = 14, ['E'] = 15, ['F'] = 16};

int hex_digit(char c)
{
    return hex_plus_one[(unsigned char)c] - 1;
}

/* Runs on every hit (the store's key): a table lookup, not snprintf, which showed in the 4 KiB
 * hit profile. */
void format_host_port(const char *host, int port, char *out, size_t size)
{
    bool v6 = strchr(host, ':') != NULL;
    snprintf(out, size, "%s%s%s:%d", v6 ? "[" : "", host, v6 ? "]" : "", port);
}

void format_utc(int64_t t, char *out, size_t size)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, size, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

/* "N days" from two days on, "N h" from two hours, else "N min": whole units, rounded down. */
static void format_span(int64_t s, char *out, size_t size)
{
    if (s >= 2 * 86400)
        snprintf(out, size, "%lld days", (long long)(s / 86400));
    else if (s >= 2 * 3600)
        snprintf(out, size, "%lld h", (long long)(s / 3600));
    else
        snprintf(out, size, "%lld min", (long long)(s / 60));
}

void format_time_left(int64_t until, int64_t now, char *out, size_t size)
{
    char date[40], span[32];
    format_utc(until, date, sizeof(date));
    format_span(until > now ? until - now : now - until, span, sizeof(span));
    snprintf(out, size, until > now ? "%s (%s left)" : "%s (expired %s ago)", date, span);
}

/* Each byte's two digits at once: a hit formats two digests (its key, its ETag), each in a
 * quarter fewer instructions than a digit at a time. */
static const char hex_pairs[513] = "000102030405060708090a0b0c0d0e0f"
                                   "101112131415161718191a1b1c1d1e1f"
                                   "202122232425262728292a2b2c2d2e2f"
                                   "303132333435363738393a3b3c3d3e3f"
                                   "404142434445464748494a4b4c4d4e4f"
                                   "505152535455565758595a5b5c5d5e5f"
                                   "606162636465666768696a6b6c6d6e6f"
                                   "707172737475767778797a7b7c7d7e7f"
                                   "808182838485868788898a8b8c8d8e8f"
                                   "909192939495969798999a9b9c9d9e9f"
                                   "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf"
                                   "b0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
                                   "c0c1c2c3c4c5c6c7c8c9cacbcccdcecf"
                                   "d0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
                                   "e0e1e2e3e4e5e6e7e8e9eaebecedeeef"
                                   "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";

void format_sha256_hex(const uint8_t d[32], char out[65])
{
    for (int i = 0; i < 32; i++)
        memcpy(out + 2 * i, hex_pairs + 2 * d[i], 2);
    out[64] = '\0';
}

/* v's digits and a NUL at `out` (20 bytes at most with it: UINT64_MAX's), their count. */
static size_t put_digits(uint64_t v, char *out)
{
    char digits[FORMAT_INT_MAX];
    size_t k = 0, n = 0;
    do
        digits[k++] = (char)('0' + v % 10);
    while ((v /= 10) > 0);
    while (k > 0)
        out[n++] = digits[--k];
    out[n] = '\0';
    return n;
}

size_t format_uint(uint64_t v, char out[FORMAT_INT_MAX])
{
    return put_digits(v, out);
}

size_t format_int(int64_t v, char out[FORMAT_INT_MAX])
{
    if (v >= 0)
        return put_digits((uint64_t)v, out);
    out[0] = '-';
    return 1 + put_digits(0 - (uint64_t)v, out + 1); /* INT64_MIN's 19 digits fit after it */
}

uint64_t sha256_prefix(const uint8_t d[32])
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | d[i];
    return v;
}

int parse_hex_bytes(const char *hex, size_t n, uint8_t *out)
{
    for (size_t i = 0; i < n; i++) {
        int hi = hex_digit(hex[2 * i]), lo = hi < 0 ? -1 : hex_digit(hex[2 * i + 1]);
        if (lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

int parse_sha256_hex(const char *hex, uint8_t out[32])
{
    if (!hex || strlen(hex) != 64)
        return -1;
    return parse_hex_bytes(hex, 32, out);
}

int parse_http_date(const char *s, int64_t *t)
{
    static const char *const formats[] = {"%a, %d %b %Y %H:%M:%S GMT", "%A, %d-%b-%y %H:%M:%S GMT",
                                          "%a %b %e %H:%M:%S %Y"};
    for (size_t i = 0; s && i < sizeof(formats) / sizeof(formats[0]); i++) {
        struct tm tm = {0};
        const char *end = strptime(s, formats[i], &tm);
        if (end && *end == '\0') {
            *t = (int64_t)timegm(&tm);
            return 0;
        }
    }
    return -1;
}

int parse_page(const char *s, int64_t *page)
{
    const char *end;
    return s && parse_digits(s, page, &end) == 0 && *end == '\0' && *page >= 1 ? 0 : -1;
}

/* Copy the run of bytes from s that `ok` accepts into out[size]; returns its length, or -1 when
 * it does not fit. */
static int take_run(const char *s, int (*ok)(int), char *out, size_t size)
{
    size_t n = 0;
    while (ok((unsigned char)s[n]))
        n++;
    if (n >= size)
        return -1;
    memcpy(out, s, n);
    out[n] = '\0';
    return (int)n;
}

static int is_lower(int c)
{
    return c >= 'a' && c <= 'z';
}

int parse_listing_path(const char *s, char *state, size_t state_size, char *page, size_t page_size)
{
    int n = take_run(s, is_lower, state, state_size), k;
    if (n <= 0)
        return -1;
    s += n;
    page[0] = '\0';
    if (*s == '/' && (k = take_run(s + 1, isdigit, page, page_size)) >= 0)
        s += 1 + k;
    if (page[0] && *s == '/')
        s++;
    return *s == '\0' ? 0 : -1;
}

/* Levenshtein distance, for near misses: names are short (< 64). */
static size_t distance(const char *a, const char *b)
{
    size_t lb = strlen(b), row[64];
    if (strlen(a) >= 64 || lb >= 64)
        return 64;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; a[i - 1]; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            best = up + 1 < best ? up + 1 : best;
            row[j] = row[j - 1] + 1 < best ? row[j - 1] + 1 : best;
            diag = up;
        }
    }
    return row[lb];
}

const char *parse_nearest_name(const char *name, const char *const *names)
{
    const char *best = NULL;
    size_t best_d = 3;
    for (; *names; names++) {
        size_t d = distance(name, *names);
        if (strlen(name) >= 3 && !strncmp(*names, name, strlen(name)) && d > 2)
            d = 2; /* a prefix: --exact for --exact-keys */
        if (d < best_d) {
            best = *names;
            best_d = d;
        }
    }
    return best;
}

int parse_ip_address(const char *s, struct sockaddr_storage *out)
{
    struct sockaddr_in *v4 = (struct sockaddr_in *)out;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;
    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, s, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, s, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        return 0;
    }
    return -1;
}

void addr_embedded_v4(uint8_t a[16])
{
    static const uint8_t nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
    static const uint8_t siit[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0};
    static const uint8_t compat[12] = {0};
    uint8_t v4[4];
    if (!memcmp(a, nat64, sizeof(nat64)) || !memcmp(a, siit, sizeof(siit)))
        memcpy(v4, a + 12, 4);
    else if (!memcmp(a, compat, sizeof(compat)) && (a[12] | a[13] | a[14] | (a[15] > 1)))
        /* not :: nor ::1 */
        memcpy(v4, a + 12, 4);
    else if (a[0] == 0x20 && a[1] == 0x02)
        memcpy(v4, a + 2, 4);
    else
        return;
    memset(a, 0, 10);
    a[10] = a[11] = 0xff;
    memcpy(a + 12, v4, 4);
}
