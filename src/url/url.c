#include "url/url.h"
#include "base/parse.h"

#include <arpa/inet.h>
#include <assert.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char hex_digits[] = "0123456789ABCDEF";

/* s[0] is '%': whether two hex digits follow (s is NUL-terminated or long enough). */
static bool is_escape(const char *s, size_t left)
{
    return left >= 3 && hex_digit(s[1]) >= 0 && hex_digit(s[2]) >= 0;
}

static bool is_control(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

/* Bytes that RFC 3986 does not allow anywhere in a URL: percent-encoded on the way out. A switch,
 * not strchr: it is asked of every byte of every URL a hit names. */
static bool needs_escape(unsigned char c)
{
    switch (c) {
    case '\0': /* never met: a URL with a control byte is refused first */
    case ' ':
    case '"':
    case '<':
    case '>':
    case '\\':
    case '^':
    case '`':
    case '{':
    case '|':
    case '}':
        return true;
    default:
        return c >= 0x80;
    }
}

static bool starts_with_ci(const char *s, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);
    return len >= n && strncasecmp(s, prefix, n) == 0;
}

/* A bounded writer: `ok` turns false once the buffer is full. */
struct out {
    char *p;
    size_t n, size;
    bool ok;
};

static void put(struct out *o, char c)
{
    if (o->n + 1 < o->size)
        o->p[o->n++] = c;
    else
        o->ok = false;
}

static void put_escaped(struct out *o, unsigned char c)
{
    put(o, '%');
    put(o, hex_digits[c >> 4]);
    put(o, hex_digits[c & 15]);
}

static int fail(int *status, const char **why, int code, const char *reason)
{
    *status = code;
    *why = reason;
    return -1;
}

/* Copy [s, s+len) with percent-encodings in upper case and forbidden bytes encoded. Returns -1
 * on an encoded control byte. `lower` lower-cases letters (the host). */
static int put_part(struct out *o, const char *s, size_t len, bool lower)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%' && is_escape(s + i, len - i)) {
            int v = hex_digit(s[i + 1]) << 4 | hex_digit(s[i + 2]);
            if (is_control((unsigned char)v))
                return -1;
            put_escaped(o, (unsigned char)v);
            i += 2;
        } else if (c == '%' || needs_escape(c)) {
            put_escaped(o, c);
        } else {
            put(o, lower && c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : (char)c);
        }
    }
    return 0;
}

/* Why a URL's authority is refused (parse_url's verdict, in a URL's words). A host is a name
 * (letters, digits, '-', '.', and '_' that some lab DNS names hold), an IPv4 address or an IPv6
 * literal in brackets: anything else (`%3Cscript%3E.lab`, `a*b.lab`) curl refuses after an
 * attempt, which made it an upstream failure (502); it is the client's error (400). */
static const char *authority_refusal(enum url_error e)
{
    switch (e) {
    case URL_NO_HOST:
        return "url has no host";
    case URL_BAD_HOST:
        return "url has a host that is not a host name (letters, digits, '-', '.', '_', or an IP "
               "address in brackets)";
    case URL_BAD_IPV6:
        return "url has a host in brackets that is not an IPv6 address";
    case URL_BAD_PORT:
        return "url has a port that is not a number";
    case URL_PORT_RANGE:
        return "url has a port out of range (1-65535)";
    case URL_OK:
    case URL_NO_SCHEME:
    case URL_BAD_SCHEME:
        break;
    }
    return NULL;
}

/* host[:port] of the URL into `o`, the port left out when it is the scheme's default; `e` is
 * parse_url's verdict, said after a blank or a non-ASCII byte in the host, which is worded. */
static int put_host_port(struct out *o, const struct url_parts *u, enum url_error e, int *status,
                         const char **why)
{
    for (const char *p = u->host; p < u->authority + u->authority_len && *p != ':'; p++)
        if (needs_escape((unsigned char)*p))
            return fail(status, why, 400,
                        "url has a host with a blank or a non-ASCII byte (use its xn-- form)");
    if (e != URL_OK)
        return fail(status, why, 400, authority_refusal(e));
    if (put_part(o, u->host, u->host_len, true) < 0)
        return fail(status, why, 400, "url holds an encoded control character");
    if (u->port && u->port != (url_scheme_is(u, "https") ? 443 : 80)) {
        char port[FORMAT_INT_MAX];
        format_int(u->port, port); /* not snprintf: every hit's URL is normalized */
        put(o, ':');
        for (const char *p = port; *p; p++)
            put(o, *p);
    }
    return 0;
}

/* Bytes from s before `end` up to the first of `stops` (one byte: every caller's) or a NUL. */
static size_t span_until(const char *s, const char *end, char stop)
{
    const char *p = s;
    while (p < end && *p != stop && *p)
        p++;
    return (size_t)(p - s);
}

/* How many dots a path segment of `len` bytes is when it is a dot segment ("." or "..", a dot
 * also written "%2E", as WHATWG's URL parser reads them); 0 for any other segment. */
static int dot_segment(const char *s, size_t len)
{
    int dots = 0;
    for (size_t i = 0; i < len; dots++) {
        if (s[i] == '.')
            i++;
        else if (len - i >= 3 && !strncmp(s + i, "%2E", 3)) /* upper case by now */
            i += 3;
        else
            return 0;
    }
    return dots <= 2 ? dots : 0;
}

/* RFC 3986 5.2.4 on an absolute path of `len` bytes, in place: "." segments go, ".." takes the
 * segment before it along ("/a/b/../c" is "/a/c", "/a/b/.." is "/a/", "/.." is "/"), as curl
 * does on the wire, so that one upstream file is one object. Returns the new length (never
 * longer). */
static size_t remove_dot_segments(char *path, size_t len)
{
    size_t in = 0, out = 0;
    while (in < len) {
        size_t seg = in + 1, seg_len = span_until(path + seg, path + len, '/');
        bool last = seg + seg_len == len;
        int dots = dot_segment(path + seg, seg_len);
        if (dots == 2)
            while (out > 0 && path[--out] != '/') /* back to the slash before the last segment */
                ;
        if (dots && last)
            path[out++] = '/'; /* "/a/." and "/a/b/.." name the folder "/a/" */
        if (!dots) {
            memmove(path + out, path + in, 1 + seg_len);
            out += 1 + seg_len;
        }
        in = seg + seg_len;
    }
    return out;
}

/* The path of the normal form written from `start` (up to its query) without dot segments. */
static void drop_dot_segments(struct out *o, size_t start)
{
    char *path = o->p + start;
    size_t len = o->n - start, path_len = span_until(path, path + len, '?');
    size_t kept = remove_dot_segments(path, path_len);
    memmove(path + kept, path + path_len, len - path_len);
    o->n -= path_len - kept;
}

/* The userinfo [s, at) and its '@': an '@' inside it (its last '@' ends it, as for curl and
 * every reader here) is written %40, as a browser writes it, so that curl, which refuses a
 * second '@', fetches what the key names (found by the outside review: 502, not the file). */
static int put_userinfo(struct out *o, const char *s, const char *at)
{
    for (const char *p = s;; p++) {
        const char *next = memchr(p, '@', (size_t)(at + 1 - p));
        if (put_part(o, p, (size_t)(next - p), false) < 0)
            return -1;
        if (next == at) {
            put(o, '@');
            return 0;
        }
        put_escaped(o, '@');
        p = next;
    }
}

int url_normalize(const char *in, size_t len, char *out, size_t size, int *status, const char **why)
{
    struct out o = {out, 0, size, size > 0};
    struct url_parts u;
    enum url_error e;

    for (size_t i = 0; i < len; i++)
        if (is_control((unsigned char)in[i]))
            return fail(status, why, 400, "url holds a control character (NUL, newline, ...)");
    e = parse_url(in, len, &u);
    if (!url_scheme_is(&u, "http") && !url_scheme_is(&u, "https"))
        return fail(status, why, 400, "url must be an absolute http:// or https:// URL");
    for (const char *p = in; p < u.authority; p++)
        put(&o, (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p));
    if (u.userinfo && put_userinfo(&o, u.userinfo, u.userinfo + u.userinfo_len) < 0)
        return fail(status, why, 400, "url holds an encoded control character");
    if (put_host_port(&o, &u, e, status, why) < 0)
        return -1;
    /* the path and query; the fragment is the client's, never sent upstream */
    const char *end = u.query ? u.query + u.query_len : u.path + u.path_len;
    size_t path = o.n;
    if (u.path_len == 0)
        put(&o, '/');
    if (put_part(&o, u.path, (size_t)(end - u.path), false) < 0)
        return fail(status, why, 400, "url holds an encoded control character");
    if (!o.ok)
        return fail(status, why, 414, "url longer than --max-url-length");
    drop_dot_segments(&o, path);
    out[o.n] = '\0';
    return 0;
}

/* Percent-decode [s, s+len) into out (at least len + 1 bytes); '+' is a space when `plus`. */
static size_t decode(const char *s, size_t len, bool plus, char *out)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '%' && is_escape(s + i, len - i)) {
            out[n++] = (char)(hex_digit(s[i + 1]) << 4 | hex_digit(s[i + 2]));
            i += 2;
        } else {
            out[n++] = plus && s[i] == '+' ? ' ' : s[i];
        }
    }
    out[n] = '\0';
    return n;
}

bool url_escape_arg(const char *in, char *out, size_t size)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    assert(size > 0);
    for (const unsigned char *s = (const unsigned char *)in; *s; s++) {
        bool plain = isalnum(*s) || strchr("-._~", *s);
        if (o + (plain ? 1 : 3) >= size) {
            out[o] = '\0';
            return false;
        }
        if (plain) {
            out[o++] = (char)*s;
        } else {
            out[o++] = '%';
            out[o++] = hex[*s >> 4];
            out[o++] = hex[*s & 15];
        }
    }
    out[o] = '\0';
    return true;
}

size_t url_unescape(char *s)
{
    return decode(s, strlen(s), false, s);
}

size_t url_unescape_arg(char *s)
{
    return decode(s, strlen(s), true, s);
}

/* name=value at [s, end): sets *name_len and *value. */
static void split_param(const char *s, const char *end, size_t *name_len, const char **value)
{
    const char *eq = memchr(s, '=', (size_t)(end - s));
    *name_len = (size_t)((eq ? eq : end) - s);
    *value = eq ? eq + 1 : end;
}

static bool named(const char *s, size_t len, const char *name)
{
    return len == strlen(name) && !strncmp(s, name, len);
}

/* Which of the rule's short parameters [s, s + len) names: its index, or -1. */
static int short_name(const struct query_rule *r, const char *s, size_t len)
{
    for (int i = 0; i < QUERY_NAMES_MAX && r->names[i]; i++)
        if (named(s, len, r->names[i]))
            return i;
    return -1;
}

/* "NAME given twice", in a buffer of the thread's: read before its next query. */
static int twice(const char *name, int *status, const char **why)
{
    static _Thread_local char reason[64];
    snprintf(reason, sizeof(reason), "%.40s given twice", name);
    return fail(status, why, 400, reason);
}

/* Short parameter i's value at [v, end), as sent; once only. */
static int take_short(struct query_args *a, const struct query_rule *r, int i, const char *v,
                      const char *end, int *status, const char **why)
{
    if (a->value[i])
        return twice(r->names[i], status, why);
    a->value[i] = v;
    a->len[i] = (size_t)(end - v);
    return 0;
}

/* The unencoded form: trailing parameters the rule names are arca's, peeled from the end; the
 * URL's end into *end. */
static int peel_trailing(const struct query_rule *r, const char *v, const char **end,
                         struct query_args *a, int *status, const char **why)
{
    for (;;) {
        const char *amp = NULL, *value;
        for (const char *q = v; q < *end; q++)
            if (*q == '&')
                amp = q;
        if (!amp)
            return 0;
        size_t nlen;
        split_param(amp + 1, *end, &nlen, &value);
        int i = short_name(r, amp + 1, nlen);
        if (i < 0)
            return 0;
        if (take_short(a, r, i, value, *end, status, why) < 0)
            return -1;
        *end = amp;
    }
}

int url_read_query(const char *query, const struct query_rule *r, struct query_args *a, int *status,
                   const char **why)
{
    const char *s = query ? query : "";
    memset(a, 0, sizeof(*a));
    while (*s) {
        const char *end = s + strcspn(s, "&"), *value;
        size_t nlen;
        int i;
        split_param(s, end, &nlen, &value);
        if (r->url_name && named(s, nlen, r->url_name)) {
            const char *qend = s + strlen(s);
            if (a->url)
                return twice(r->url_name, status, why);
            a->url = value;
            a->url_raw = starts_with_ci(value, (size_t)(qend - value), "http://") ||
                         starts_with_ci(value, (size_t)(qend - value), "https://");
            if (a->url_raw) { /* the rest of the query, but for trailing parameters of arca's */
                int rc = peel_trailing(r, value, &qend, a, status, why);
                a->url_len = (size_t)(qend - value);
                return rc;
            }
            a->url_len = (size_t)(end - value);
        } else if ((i = short_name(r, s, nlen)) >= 0) {
            if (take_short(a, r, i, value, end, status, why) < 0)
                return -1;
        } else if (end != s) {
            return fail(status, why, 400, r->unknown);
        }
        s = *end ? end + 1 : end;
    }
    return 0;
}

bool url_query_value(const char *v, size_t len, bool raw, char *out, size_t size)
{
    if (len >= size) {
        if (size > 0)
            out[0] = '\0';
        return false;
    }
    if (raw) {
        memcpy(out, v, len);
        out[len] = '\0';
    } else {
        decode(v, len, true, out);
    }
    return true;
}

static const struct query_rule fetch_rule = {
    "url",
    {"ttl", "sha256", NULL},
    "unknown parameter: arca takes url, ttl and sha256 (percent-encode the whole target URL, or "
    "give it unencoded as the last parameter)"};

static int take_url(const char *v, const char *end, bool raw, size_t max_url_len,
                    struct fetch_params *p, int *status, const char **why)
{
    size_t len = (size_t)(end - v);
    if (len == 0)
        return fail(status, why, 400, "missing url parameter");
    if (len > max_url_len)
        return fail(status, why, 414, "url longer than --max-url-length");
    if (p->url_size < URL_BUF_SIZE(len))
        return fail(status, why, 414, "url longer than --max-url-length");
    if (raw)
        return url_normalize(v, len, p->url, p->url_size, status, why);
    /* The decoded URL goes to the buffer's tail, its normal form to the head: apart. */
    char *decoded = p->url + 3 * len + 16;
    size_t n = decode(v, len, true, decoded);
    return url_normalize(decoded, n, p->url, 3 * len + 16, status, why);
}

/* The last query a thread parsed, when it was good: a lab's clients ask for the same URLs over
 * and over, and the parse (decode, normalize) is a large share of a warm hit's work.
 * Thread-local: no lock. */
static _Thread_local struct {
    bool valid;
    size_t max_url_len, query_len, url_len;
    char query[2048];
    char url[4096];
    struct fetch_params params; /* but its url */
} last_query;

static int parse_fetch_query(const char *query, size_t max_url_len, struct fetch_params *p,
                             int *status, const char **why);

int url_parse_fetch_query(const char *query, size_t max_url_len, struct fetch_params *p,
                          int *status, const char **why)
{
    const char *q = query ? query : "";
    size_t len = strlen(q), url_len;
    int rc;
    if (last_query.valid && len == last_query.query_len && max_url_len == last_query.max_url_len &&
        !memcmp(q, last_query.query, len) && last_query.url_len < p->url_size) {
        char *url = p->url;
        size_t size = p->url_size;
        *p = last_query.params;
        p->url = url;
        p->url_size = size;
        memcpy(p->url, last_query.url, last_query.url_len + 1);
        return 0;
    }
    rc = parse_fetch_query(query, max_url_len, p, status, why);
    last_query.valid = false;
    if (rc == 0 && len < sizeof(last_query.query) &&
        (url_len = strlen(p->url)) < sizeof(last_query.url)) {
        memcpy(last_query.query, q, len);
        memcpy(last_query.url, p->url, url_len + 1);
        last_query.query_len = len;
        last_query.url_len = url_len;
        last_query.max_url_len = max_url_len;
        last_query.params = *p;
        last_query.valid = true;
    }
    return rc;
}

static int parse_fetch_query(const char *query, size_t max_url_len, struct fetch_params *p,
                             int *status, const char **why)
{
    struct query_args a;
    p->has_ttl = p->has_sha256 = false;
    p->ttl[0] = p->sha256[0] = '\0';
    if (url_read_query(query, &fetch_rule, &a, status, why) < 0)
        return -1;
    if (!a.url)
        return fail(status, why, 400, "missing url parameter");
    /* one too long for its field is left empty, which its own parser then refuses */
    if ((p->has_ttl = a.value[0] != NULL))
        url_query_value(a.value[0], a.len[0], false, p->ttl, sizeof(p->ttl));
    if ((p->has_sha256 = a.value[1] != NULL))
        url_query_value(a.value[1], a.len[1], false, p->sha256, sizeof(p->sha256));
    return take_url(a.url, a.url + a.url_len, a.url_raw, max_url_len, p, status, why);
}

/* --- secrets in what arca shows ------------------------------------------------------------ */

/* The bytes at s that stand for `c`: c itself, or c percent-encoded once or more ("%3F",
 * "%253F", ...: a URL in a URL's query, in a request line), or 0. */
static size_t at_char(const char *s, char c)
{
    size_t n = 1;
    if (*s == c)
        return 1;
    if (*s != '%')
        return 0;
    while (s[n] == '2' && s[n + 1] == '5')
        n += 2;
    if (hex_digit(s[n]) < 0 || hex_digit(s[n + 1]) < 0 ||
        (hex_digit(s[n]) << 4 | hex_digit(s[n + 1])) != (unsigned char)c)
        return 0;
    return n + 2;
}

/* The bytes at s that stand for `t`, each of its characters as is or encoded, or 0. */
static size_t at(const char *s, const char *t)
{
    size_t n = 0, k;
    for (; *t; t++, n += k)
        if (!(k = at_char(s + n, *t)))
            return 0;
    return n;
}

/* A parameter starts after '?' or '&', after ';' (a path parameter: Java's ;jsessionid=) and
 * after '#' (a fragment: OAuth's #access_token=), each as is or encoded. */
static size_t param_start(const char *s)
{
    size_t n = 0;
    for (const char *c = "?&;#"; *c && !n; c++)
        n = at_char(s, *c);
    return n;
}

/* How deep `c` is encoded at s: 0 as is, 1 as %XX, 2 as %25XX, ...; -1 when s is not `c`. */
static int char_depth(const char *s, char c)
{
    size_t k = at_char(s, c);
    return k ? (int)(k - 1) / 2 : -1;
}

/* Whether s is the delimiter `c` of a URL written at `depth` (or of the text around it, less
 * deep). Deeper, it is data of that URL: "%2F" in a password, "%26" in a token's value. */
static bool delimiter(const char *s, char c, int depth)
{
    int d = char_depth(s, c);
    return d >= 0 && d <= depth;
}

/* Where a value (or an authority) of a URL written at `depth` stops: its delimiter, or text
 * around the URL (a log line's "URL: reason" among it: a URL holds no blank). Not ';' nor '\'':
 * a value may hold them, and a secret's tail must not be shown. */
static bool value_ends(const char *s, int depth)
{
    return !*s || strchr(" \"<>\\", *s) || delimiter(s, '&', depth) || delimiter(s, '#', depth) ||
           (s[0] == ':' && s[1] == ' ');
}

/* A name as it is judged: percent-decoded as often as it was encoded, letters in lower case,
 * all but letters and digits dropped, so "X-API-Key", "api_key", "api%2Dkey" and "apikey" are
 * one name. False when it does not fit in out[size]. */
static bool judged_name(const char *s, size_t len, char *out, size_t size)
{
    char raw[256];
    size_t n = len, was, k = 0;
    if (len >= sizeof(raw))
        return false;
    memcpy(raw, s, len);
    do { /* decoding in place: each pass that decodes shortens the name */
        was = n;
        n = decode(raw, n, false, raw);
    } while (n < was);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)raw[i];
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c - 'A' + 'a');
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
            if (k + 1 >= size)
                return false; /* too long to judge: the caller redacts it */
            out[k++] = (char)c;
        }
    }
    out[k] = '\0';
    return true;
}

/* What makes a parameter's value a secret, matched against its judged name. Chosen one by one:
 * a word that is often harmless matches only where it ends the name, or as the whole name. */
enum match { HOLDS, ENDS, IS };
static const struct secret_word {
    const char *word;
    enum match how;
} secret_words[] = {
    {"signature", HOLDS},     /* X-Amz-Signature, X-Goog-Signature, Signature, oauth_signature */
    {"token", HOLDS},         /* token, access_token, X-Amz-Security-Token, private_token */
    {"secret", HOLDS},        /* client_secret */
    {"passw", HOLDS},         /* password, passwd, Passwort */
    {"passphrase", HOLDS},    /* key passphrases */
    {"credential", HOLDS},    /* X-Amz-Credential, X-Goog-Credential, credentials */
    {"apikey", HOLDS},        /* api-key, x-api-key, apikey, api_key_id */
    {"jwt", HOLDS},           /* jwt, id_jwt */
    {"session", HOLDS},       /* session, sessionid, JSESSIONID, session_key */
    {"hmac", HOLDS},          /* hmac, hmac_sha256 */
    {"authorization", HOLDS}, /* authorization (the header, as a parameter) */
    {"key", ENDS},            /* key, access_key, private_key, subscription-key: not keyword */
    {"auth", ENDS},           /* auth, x-auth, basic_auth: not author */
    {"sig", ENDS},            /* sig (Azure SAS), api_sig: not signed, design */
    {"sessid", ENDS},         /* PHPSESSID */
    {"pwd", ENDS},            /* pwd, db_pwd */
    {"pass", IS},             /* pass: not bypass, compass */
    {"pw", IS},
    {"sid", IS},   /* a session id */
    {"hdnts", IS}, /* Akamai's token: its value holds hmac=... */
};

static bool matches(const char *name, size_t len, const struct secret_word *w)
{
    size_t n = strlen(w->word);
    switch (w->how) {
    case HOLDS:
        return strstr(name, w->word) != NULL;
    case ENDS:
        return len >= n && !strcmp(name + len - n, w->word);
    case IS:
        return !strcmp(name, w->word);
    }
    return false;
}

/* Whether the parameter named by [s, s+len) (as it appears) holds a secret. A name too long to
 * judge is taken as one: nothing is shown that was not judged. */
static bool secret_name(const char *s, size_t len)
{
    char name[128];
    if (!judged_name(s, len, name, sizeof(name)))
        return true;
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof(secret_words) / sizeof(secret_words[0]); i++)
        if (matches(name, n, &secret_words[i]))
            return true;
    return false;
}

static void put_str(struct out *o, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        put(o, s[i]);
}

/* A delimiter of the text around a URL written at `depth` (less deep than its own), which a
 * value of that URL does not hold as data: its length at s, or 0. */
static size_t outer_delimiter(const char *s, int depth)
{
    for (const char *c = "/?@&#:"; *c; c++) {
        size_t k = at_char(s, *c);
        if (k && (int)(k - 1) / 2 < depth)
            return k;
    }
    return 0;
}

/* At a parameter's name, in a URL written at `depth`: copy it; if it names a secret, its value
 * becomes REDACTED. A value of a nested URL (depth > 0) that holds the delimiters of the text
 * around it keeps them, each run between them REDACTED: replaced whole, a '/' ending the outer
 * URL's authority went with it, and a second look read that authority on to a later '@' (a
 * redacted URL must redact to itself; fuzz_url). Returns the bytes of `s` consumed. */
static size_t redact_param(const char *s, int depth, struct out *o)
{
    size_t name = 0, eq = 0, len, k;
    bool in_run = true;
    while (!value_ends(s + name, depth) && !at_char(s + name, '=') && !param_start(s + name))
        name++;
    eq = at_char(s + name, '=');
    put_str(o, s, name + eq);
    if (!eq || !secret_name(s, name))
        return name + eq;
    put_str(o, "REDACTED", 8);
    for (len = name + eq; !value_ends(s + len, depth);) {
        if (depth > 0 && (k = outer_delimiter(s + len, depth))) {
            put_str(o, s + len, k);
            len += k;
            in_run = false;
        } else {
            if (!in_run)
                put_str(o, "REDACTED", 8);
            in_run = true;
            len++;
        }
    }
    return len;
}

/* After "://" of a URL written at `depth`: userinfo before the authority's last '@' becomes
 * REDACTED. */
static size_t redact_userinfo(const char *s, int depth, struct out *o)
{
    size_t end = 0, userinfo = 0, k;
    while (!value_ends(s + end, depth) && !delimiter(s + end, '/', depth) &&
           !delimiter(s + end, '?', depth)) {
        if (delimiter(s + end, '@', depth) && (k = at_char(s + end, '@')))
            userinfo = end, end += k;
        else
            end++;
    }
    if (!userinfo && !at_char(s, '@'))
        return 0;
    put_str(o, "REDACTED", 8);
    return userinfo;
}

size_t url_redact(const char *in, char *out, size_t size)
{
    struct out o = {out, 0, size, size > 0};
    size_t k;
    if (size == 0)
        return 0;
    for (const char *s = in; *s;) {
        if ((k = param_start(s))) { /* its encoding tells the depth of the URL it is in */
            put_str(&o, s, k);
            s += k;
            s += redact_param(s, (int)(k - 1) / 2, &o);
        } else if ((k = at(s, "://"))) {
            int depth = char_depth(s, ':');
            put_str(&o, s, k);
            s += k;
            s += redact_userinfo(s, depth, &o);
        } else {
            put(&o, *s++);
        }
    }
    out[o.n] = '\0';
    return o.n;
}

/* The URL's [p, end) into `o` but its path parameters (";name=value", as url_redact sees them:
 * a ;jsessionid=) whose name is a secret's: whether one was left out. */
static bool put_path_params(struct out *o, const char *p, const char *end)
{
    bool dropped = false;
    while (p < end) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        size_t len, name;
        if (!semi) {
            put_str(o, p, (size_t)(end - p));
            break;
        }
        put_str(o, p, (size_t)(semi - p));
        len = strcspn(semi + 1, ";/?#");
        if (len > (size_t)(end - semi - 1))
            len = (size_t)(end - semi - 1);
        name = strcspn(semi + 1, "=;/?#");
        if (name > len)
            name = len;
        if (secret_name(semi + 1, name))
            dropped = true;
        else
            put_str(o, semi, len + 1);
        p = semi + 1 + len;
    }
    return dropped;
}

bool url_strip_secrets(const char *url, char *out, size_t size)
{
    struct out o = {out, 0, size, size > 0};
    struct url_parts u;
    bool dropped, first = true;
    parse_url(url, strlen(url), &u); /* its verdict aside: a normal form's parts */
    /* no URL: nothing of it is known to be free of credentials */
    if (!u.scheme) {
        if (size > 0)
            out[0] = '\0';
        return true;
    }
    dropped = u.userinfo != NULL;
    put_str(&o, url, (size_t)(u.authority - url));
    dropped = put_path_params(&o, u.host, u.path + u.path_len) || dropped;
    const char *end = u.query + u.query_len;
    for (const char *p = u.query; p && p <= end;) { /* each parameter: kept unless a secret's */
        size_t len = span_until(p, end, '&'), name = span_until(p, p + len, '=');
        if (secret_name(p, name)) {
            dropped = true;
        } else {
            put(&o, first ? '?' : '&');
            put_str(&o, p, len);
            first = false;
        }
        p += len + 1;
    }
    if (size > 0)
        out[o.n] = '\0';
    return dropped;
}

char *url_shown(const char *url)
{
    /* a redaction makes at most 12 bytes ("&pw=REDACTED") of at least 4 ("&pw="): 3x fits */
    size_t size = 3 * strlen(url) + 64;
    char *out = malloc(size);
    if (out)
        url_redact(url, out, size);
    return out;
}

char *url_shown_hop(const char *url)
{
    static const char hidden[] = "?REDACTED";
    size_t len = strcspn(url, "?#"); /* a '?' or '#' in a path is percent-encoded */
    char *cut = malloc(len + sizeof(hidden)), *out;
    if (!cut)
        return NULL;
    snprintf(cut, len + sizeof(hidden), "%.*s%s", (int)len, url, url[len] == '?' ? hidden : "");
    out = url_shown(cut);
    free(cut);
    return out;
}
