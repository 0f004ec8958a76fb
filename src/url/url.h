/*
 * url.h — the target URL of a fetch: where arca's own parameters end and the URL begins, the one
 * normal form that is both the cache key and the URL fetched, and its secrets kept from view
 * (the file name a URL suggests: filename.h).
 *
 * The rule (docs/API.md, "The fetch URL"): arca's parameters are url, ttl and sha256.
 * - A url value that starts with http:// or https:// is the unencoded form: the target is
 *   everything after "url=" to the end of the query, taken as it is ('+', '&' and '%XX' included),
 *   except trailing "&ttl=..." and "&sha256=..." parameters, which are arca's.
 * - Any other url value is the encoded form (KissCache's, LAVA's quote_plus): it ends at the next
 *   '&' and is decoded, '%XX' and '+' for a space.
 * - Any other parameter, or one given twice, is refused: a target URL with an unencoded '&' after
 *   an encoded one must not silently become a different URL.
 * The normal form (RFC 3986, 6.2.2): scheme and host in lower case, no default port, no
 * fragment, an empty path as "/", percent-encodings in upper case, no dot segments ("." and "..",
 * also written %2E, removed as section 5.2.4 says; the query keeps them); bytes a URL may not hold
 * (space, '"', '<', '>', '\', '^', '`', '{', '|', '}', bytes >= 0x80, a '%' not followed by two
 * hex digits) percent-encoded. Control bytes, raw or encoded (%00-%1F, %7F), are refused, and so
 * is a host that is not a host name (letters, digits, "-", ".", "_") or a bracketed IP literal.
 *
 * Contract: pure functions, any thread; only url_shown, url_purge_prefix and url_spelling
 * allocate (and url_under_prefix for a URL of over 3,000 bytes), the others write into buffers
 * their callers give. Parsers return 0, or -1 with the HTTP status and a one-line reason for the
 * client.
 */
#ifndef ARCA_URL_H
#define ARCA_URL_H

#include <stdbool.h>
#include <stddef.h>

/* A buffer for the normal form of a url parameter of n bytes (decoding needs room too). */
#define URL_BUF_SIZE(n) (4 * (n) + 32)

struct fetch_params {
    char *url; /* the caller's buffer of url_size bytes: the target URL's normal form */
    size_t url_size;
    char ttl[32]; /* "" when not given */
    char sha256[72];
    bool has_ttl, has_sha256;
};

/* The query of /api/v1/fetch (after '?', as sent). `max_url_len` bounds the url parameter. */
int url_parse_fetch_query(const char *query, size_t max_url_len, struct fetch_params *p,
                          int *status, const char **why);

/* The same rule with other names, for the admin API (url_read_query): the parameter that holds
 * a URL (`url_name`: "url", "prefix"; NULL: none) is read as the fetch endpoint reads url=, the
 * short ones beside it (`names`) as ttl and sha256 are, peeled from the end of an unencoded
 * URL too. Any other parameter is refused with `unknown`, one given twice as such. */
#define QUERY_NAMES_MAX 4
struct query_rule {
    const char *url_name;
    const char *names[QUERY_NAMES_MAX]; /* NULL after the last */
    const char *unknown;
};
/* Where each parameter is in the query, as sent: NULL when it was not given. */
struct query_args {
    const char *url; /* url_len bytes: as it is when url_raw (the unencoded form), else encoded */
    size_t url_len;
    bool url_raw;
    const char *value[QUERY_NAMES_MAX]; /* names[i]'s, len[i] bytes, encoded */
    size_t len[QUERY_NAMES_MAX];
};
/* 0, or -1 with a 400 and a one-line reason (valid until the thread's next call). */
int url_read_query(const char *query, const struct query_rule *rule, struct query_args *a,
                   int *status, const char **why);
/* One of its values into out[size]: as it is when `raw`, else decoded ('%XX'; '+' a space).
 * False when it does not fit (out is then ""). */
bool url_query_value(const char *v, size_t len, bool raw, char *out, size_t size);

/* The normal form of an absolute http:// or https:// URL of `len` bytes into out[size]. */
int url_normalize(const char *in, size_t len, char *out, size_t size, int *status,
                  const char **why);

/* The prefix of a purge by prefix into out[size] (at least URL_BUF_SIZE(strlen(in))): an
 * http:// or https:// URL in normal form, folded as fold.h folds (the spellings an origin serves
 * as one path: "/file//P/", "/file/P;v=1/", 127.1, [::ffff:127.0.0.1]), and without userinfo,
 * which the URLs it purges start with (url_under_prefix). A host alone gets its path "/", so
 * that "http://host" never matches "http://hostile/". A scheme with no host ("http://") matches
 * every URL of that scheme: taken only with `all`. One that ends in a cut escape ("%", "%4")
 * would match nothing: refused. *bounded (unless NULL) says whether the fold cut its last
 * segment ("/pkg;v=2" is "/pkg"): then a URL under it goes on past it with a new segment, a
 * parameter or a query, never "/pkgs" (AIM_SEGMENT). Returns 0, or -1 with a one-line reason. */
int url_purge_prefix(const char *in, bool all, char *out, size_t size, bool *bounded,
                     const char **why);
/* url_purge_prefix's form of `url`, a normal form (an object's URL: it is not normalized
 * again), what follows a '#' cut off, in a new string: the spelling a purge of it names.
 * NULL when it has none (not an http:// or https:// URL: only its own key names it), or out of
 * memory (*failed set then). */
char *url_spelling(const char *url, int *failed);
/* Whether `url` (normal form) is under `prefix` (its first `len` bytes, url_purge_prefix's):
 * its userinfo left out, so that an object cached through a URL with a login is purged with
 * its host's prefix; as it is spelt or folded (fold.h), so that every spelling of a path goes
 * with it. Allocates nothing for a URL under about 3,000 bytes: a purge asks of every object. */
bool url_under_prefix(const char *url, const char *prefix, size_t len);
/* Whether `url` (normal form) is a spelling of `folded` (its first `len` bytes, a whole URL
 * as url_purge_prefix gives it): the same as spelt or folded, its userinfo left out, or one of
 * its other forms (`url` going on with a '#': a pypi page's JSON form). A purge of one URL
 * takes every spelling of it. */
bool url_is_spelling(const char *url, const char *folded, size_t len);
/* What a purge takes: the URLs under a prefix (one whose last segment the fold cut: only past
 * a segment's end), or every spelling of one whole URL, all in url_purge_prefix's form; with a
 * URL, the other objects of it ("URL#...": a pypi page's JSON form, terms.h's REMOTE_JSON_KEY). */
enum aim_end { AIM_PREFIX, AIM_SEGMENT, AIM_WHOLE };
struct purge_aim {
    const char *text;
    size_t len;
    enum aim_end end;
};
/* Whether `url` (normal form) is one `aim` takes: url_is_spelling or url_under_prefix. */
bool purge_aims_at(const char *url, const struct purge_aim *aim);

/* `in` (any text holding URLs, as they are or percent-encoded once or more, like a request line)
 * with its secrets replaced by REDACTED: userinfo ("user:pass@") and the values of parameters
 * (after '?', '&', ';' or '#') whose name is a secret's. A name is judged percent-decoded, in
 * lower case, with all but letters and digits dropped ("X-API-Key" is "xapikey"); it is a
 * secret's when it holds signature, token, secret, passw, passphrase, credential, apikey, jwt,
 * session, hmac or authorization; ends with key, auth, sig, sessid or pwd; is pass, pw, sid or
 * hdnts; or is too long to judge. A value runs to the next '&' or '#' (as is or encoded) or the
 * end of the URL. So X-Amz-Signature, X-Amz-Credential, X-Amz-Security-Token, sig, key, api-key,
 * access_token, jwt, auth, JSESSIONID are redacted; page, keyword, author, signed, max-keys
 * are not. Truncated to fit out[size]; returns the length written. For what arca shows: the
 * stored key keeps everything. */
/* Percent-decode `s` in place ('+' stays), as a request's path is read; its new length. */
size_t url_unescape(char *s);
/* The same for a query argument's name or value: '+' is a space. */
size_t url_unescape_arg(char *s);
/* `in` as one query argument's value: every byte but the unreserved ones percent-encoded, into
 * out[size]. False when it does not fit (out is then cut, NUL-terminated). */
bool url_escape_arg(const char *in, char *out, size_t size);

size_t url_redact(const char *in, char *out, size_t size);
/* The same into a copy the caller frees (NULL when out of memory): a URL as listings and answers
 * show it. */
char *url_shown(const char *url);
/* A redirect's target as it is shown and recorded (a hop: Arca-Redirect, a refusal's words, the
 * log): url_shown's, its whole query replaced by "?REDACTED" and any fragment dropped. A CDN
 * signs the URLs it is sent to under names no list of secrets' knows (verify=, Expires=,
 * Key-Pair-Id=, X-Amz-*...), and such a URL is the registry's to give, not a client's to see.
 * A copy the caller frees (NULL when out of memory). */
char *url_shown_hop(const char *url);
/* A normal-form URL without its credentials, into out[size] (the same size as the URL's is
 * enough): no userinfo, and none of the query's parameters whose name url_redact judges a
 * secret's (a token, an API key, a session...). What another host (a mirror) may be asked for:
 * the origin's credentials are never handed to it. Returns whether anything was left out: with
 * `out` NULL (size 0), only that is told, whether the URL holds credentials. */
bool url_strip_secrets(const char *url, char *out, size_t size);

#endif
