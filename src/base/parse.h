/*
 * parse.h — parsers for the values that come from outside: option values, ttl and sha256,
 * Range headers, upstream headers, network addresses and a URL's parts (the fetch URL's rule
 * and normal form are url.h's).
 *
 * Contract: pure functions, callable from any thread, no allocation. Each returns 0 on success
 * and -1 on bad input (or its enum's verdict: parse_authority, parse_url); on failure the
 * out-parameters are left unspecified unless its comment says what it sets. Input is checked
 * here, once, at the edge; the rest of arca trusts the parsed values.
 */
#ifndef ARCA_PARSE_H
#define ARCA_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* "<int>" followed by d, h, m or s; strictly positive. Result in seconds, at most TTL_MAX
 * (longer is taken as TTL_MAX): an object's creation time plus its ttl must never overflow. */
#define TTL_MAX (100LL * 365 * 86400)
int parse_ttl(const char *s, int64_t *seconds);

/* The same, not capped: an option's value, refused with its range when over its bound. A value
 * too big for int64_t comes back as INT64_MAX, still a number (out of any range), not a typo. */
int parse_seconds(const char *s, int64_t *seconds);

/* "<int>" followed by ms, s, m, h or d; strictly positive. Result in milliseconds. */
int parse_duration_ms(const char *s, int64_t *ms);

/* "<int>" optionally followed by K, M, G or T (powers of 1024); strictly positive. */
int parse_size(const char *s, int64_t *bytes);

/* An IPv4 or IPv6 network. IPv4 is stored as IPv4-mapped IPv6 (::ffff:a.b.c.d) so that one
 * comparison covers both families and mapped addresses cannot slip past an IPv4 rule. */
struct cidr {
    uint8_t addr[16];
    int prefix; /* 0..128, counted on the 128-bit form */
};

/* "a.b.c.d[/n]" or "x:y::z[/n]"; without a prefix the network is one host. Host bits are
 * cleared: 10.1.2.3/8 is the network it means, 10.0.0.0/8, and format_cidr shows it so. */
int parse_cidr(const char *s, struct cidr *out);

/* An IPv4 or IPv6 address, no port, as a socket address (a rules test's client). */
int parse_ip_address(const char *s, struct sockaddr_storage *out);

/* Convert a socket address to the 128-bit form used by struct cidr. */
int addr_to_v6(const struct sockaddr *sa, uint8_t out[16]);

bool cidr_contains(const struct cidr *net, const uint8_t addr[16]);
/* Whether a 128-bit address is IPv4-mapped (::ffff:a.b.c.d); and loopback: 127.0.0.0/8 in that
 * form, or ::1. */
bool addr_is_v4_mapped(const uint8_t addr[16]);
bool addr_is_loopback(const uint8_t addr[16]);
/* Forms of an IPv6 address that reach the IPv4 address they embed: NAT64's well-known prefix
 * (64:ff9b::/96), 6to4 (2002::/16), SIIT's IPv4-translated form (::ffff:0:a.b.c.d) and the
 * deprecated IPv4-compatible one (::a.b.c.d), rewritten in place as that IPv4 address in its
 * IPv4-mapped form (64:ff9b::7f00:1 is 127.0.0.1 wherever a gateway translates it): what the
 * upstream policy judges, and what a rule's folded spelling names (url/fold.c). */
void addr_embedded_v4(uint8_t a[16]);
/* Whether it is the unspecified address, 0.0.0.0 (in that form) or ::: a connection to it is
 * delivered to this host (Linux takes it for loopback). */
bool addr_is_unspecified(const uint8_t addr[16]);
/* Whether a --listen host is every address ("", "*", 0.0.0.0 or ::): such a listener answers on
 * all of loopback, not only on the interface's 127.0.0.1. */
bool host_is_wildcard(const char *host);

/* A socket's IPv4 or IPv6 address as text; "-" (and -1) for anything else or NULL. */
int format_sockaddr(const struct sockaddr *sa, char *out, size_t size);

/* "a.b.c.d/n" for IPv4-mapped networks, "x::y/n" otherwise. */
void format_cidr(const struct cidr *net, char *out, size_t size);

/* A single byte range resolved against the object's total length. */
struct byte_range {
    int64_t first;
    int64_t last; /* inclusive */
};

enum range_result {
    RANGE_NONE,          /* no header, or a form we ignore (multiple ranges): serve 200 */
    RANGE_OK,            /* *out holds a satisfiable range */
    RANGE_UNSATISFIABLE, /* answer 416 */
};

/* Parse "bytes=a-b", "bytes=a-" or "bytes=-n" against total length `total`. A header we do not
 * understand yields RANGE_NONE, as RFC 9110 allows a server to ignore Range. */
enum range_result parse_range(const char *header, int64_t total, struct byte_range *out);

/* An upstream Content-Length value: digits with optional blanks around them. */
int parse_content_length(const char *value, int64_t *length);

/* An upstream Content-Range value "bytes FIRST-LAST/TOTAL" (TOTAL may be "*": *total = -1). */
int parse_content_range(const char *value, int64_t *first, int64_t *last, int64_t *total);

/* Want-Repr-Digest or Want-Content-Digest (RFC 9530 4): a Structured Field Dictionary (RFC
 * 8941) of algorithm keys ("sha-256", lower case) and preferences. *pref: the Integer given to
 * `alg` (1 to 10: wanted; a key given twice, the last), 0 when the field names it with 0 ("not
 * acceptable") or with no Integer, -1 when the field does not name it. Returns -1 when the field
 * is not a well-formed Dictionary (RFC 8941 has it ignored whole: *pref is -1 then too). */
int parse_want_digest(const char *value, const char *alg, int64_t *pref);

/* An authority's host and port (RFC 3986 3.2.2, 3.2.3), the one reading of them everywhere: a
 * URL, a proxy's absolute-form target, a CONNECT target and --listen. */
enum authority_error {
    AUTHORITY_OK,
    AUTHORITY_NO_HOST,   /* "", ":443", "[]" */
    AUTHORITY_BAD_HOST,  /* not letters, digits, '-', '.', '_', nor an address in brackets */
    AUTHORITY_BAD_IPV6,  /* in brackets, not an IPv6 address ("[::1", "[1.2.3.4]", "[::1]x") */
    AUTHORITY_BAD_PORT,  /* not decimal digits only ("+443", "443x", " 443", "-1") */
    AUTHORITY_PORT_RANGE /* not 1 to 65535 ("0", "65536") */
};
struct authority {
    const char *host; /* into the text parsed: a name, an IPv4 address, or "[v6]" (brackets in) */
    size_t host_len;
    int port; /* 0: none written ("host", or "host:", the scheme's default) */
};
/* `len` bytes "host", "host:port" or "[v6]:port" (no userinfo). A port is decimal digits only,
 * leading zeros allowed ("0443" is 443), 1 to 65535. An IPv6 literal may carry a zone written
 * as RFC 6874 says ("[fe80::1%25eth0]"). */
enum authority_error parse_authority(const char *s, size_t len, struct authority *a);

/* A port alone, as parse_authority reads one: 1..65535, or -1. */
int parse_port(const char *s, size_t len);

/* An absolute URL's parts (RFC 3986 3): "scheme://[userinfo@]host[:port][/path][?query][#frag]",
 * the one reading of a URL everywhere (config, rules, the proxy, the client commands). The
 * scheme is what comes before the first "://": a letter, then letters, digits, '+', '-' or '.'.
 * The authority runs from there to the first '/', '?' or '#'; its last '@' ends the userinfo
 * (which may hold '@' and ':' itself); the rest is host[:port] as parse_authority reads it. The
 * path runs to the first '?' or '#' (empty, or a '/' first), the query from after that '?' to the
 * first '#', the fragment after it. Nothing but the scheme and host[:port] is judged: what the
 * userinfo, path and query may hold is their reader's (url_normalize). */
enum url_error {
    URL_OK,
    URL_NO_SCHEME,  /* no "://" at all: "host/x", "host:80", "mailto:x" */
    URL_BAD_SCHEME, /* before the first "://", not a scheme: "://h", "1a://h", "a/b://c" */
    URL_NO_HOST,    /* from here, parse_authority's verdicts: "http://", "http://u@/x" */
    URL_BAD_HOST,   /* "http://a b/", "http://a*b.lab/" */
    URL_BAD_IPV6,   /* "http://[::1/", "http://[1.2.3.4]/" */
    URL_BAD_PORT,   /* "http://h:x/" */
    URL_PORT_RANGE, /* "http://h:0/", "http://h:65536/" */
};
struct url_parts {
    const char *scheme; /* as written ("HTTPS": compare with url_scheme_is), without "://" */
    size_t scheme_len;
    const char *authority; /* "[userinfo@]host[:port]", from right after "://" */
    size_t authority_len;
    const char *userinfo; /* before the authority's last '@'; NULL when it has no '@' */
    size_t userinfo_len;
    const char *host; /* parse_authority's: a name, an IPv4 address or "[v6]" (brackets in) */
    size_t host_len;
    size_t name_len;  /* host_len without a name's final dots: "example.org." is example.org */
    int port;         /* 0: none written */
    const char *path; /* at the authority's end: "" (its length 0) or "/..." */
    size_t path_len;
    const char *query; /* after '?', up to '#'; NULL when there is no '?' */
    size_t query_len;
    const char *fragment; /* after '#'; NULL when there is none */
    size_t fragment_len;
};
/* `len` bytes of `s` (no allocation: every part points into `s`). URL_NO_SCHEME and
 * URL_BAD_SCHEME leave every part NULL or 0 (u->scheme NULL: not split); any other verdict sets
 * every part, but an authority's error leaves host at host[:port]'s first byte and host_len,
 * name_len and port 0: so that a caller may say first what else is wrong, or read a glob's "*."
 * host as it is. */
enum url_error parse_url(const char *s, size_t len, struct url_parts *u);
/* The path of s[0, len) as parse_url finds it (u->path, u->path_len), without reading the
 * authority (a hit's file name, url_filename, needs nothing else); false, nothing set, when
 * parse_url would not split it (no scheme, or a bad one). */
bool parse_url_path(const char *s, size_t len, const char **path, size_t *path_len);
/* "[userinfo@]host[:port]" alone (a proxy's absolute-form target's authority), as parse_url
 * reads one: the authority's parts of *u set, the others not. A '/', '?' or '#' in it is
 * URL_BAD_HOST: in a URL it would have ended the authority before ("evil.example#@arca:8001" is
 * the host evil.example). */
enum url_error parse_url_authority(const char *s, size_t len, struct url_parts *u);
/* Whether the URL's scheme is `scheme` (lower case), in any case as schemes are. */
bool url_scheme_is(const struct url_parts *u, const char *scheme);
/* The port written, else the scheme's default: 80 for http, 443 for https, 0 for another. */
int url_port(const struct url_parts *u);

/* The host[:port] of a URL (parse_url's), after any userinfo: *len bytes from the pointer
 * returned; *len is 0 for a string with no scheme. */
const char *url_host(const char *url, size_t *len);

/* A page number: decimal digits only, at least 1. */
int parse_page(const char *s, int64_t *page);

/* The rest of a listing page's path, "STATE[/[PAGE[/]]]": STATE lower-case letters, PAGE
 * digits; each copied into its buffer ("" for a PAGE not given). */
int parse_listing_path(const char *s, char *state, size_t state_size, char *page, size_t page_size);

/* An HTTP date (RFC 9110 5.6.7: IMF-fixdate, and the obsolete RFC 850 and asctime forms) as
 * Unix time. */
int parse_http_date(const char *s, int64_t *t);

/* The value of a hex digit, either case; -1 for anything else. */
int hex_digit(char c);

/* A listening address as written: "HOST:PORT", an IPv6 one "[v6]:PORT". */
void format_host_port(const char *host, int port, char *out, size_t size);

/* Unix seconds -> "2026-12-16 09:00:00 UTC" (the log's lines about a certificate's dates). */
void format_utc(int64_t t, char *out, size_t size);
/* `until` seen at `now`, the one wording of a certificate's time left (the log, `arca status`,
 * the pages): "2027-02-01 00:00:00 UTC (67 days left)", under two days "(5 h left)", under two
 * hours "(40 min left)", once past "(expired 3 days ago)". */
#define FORMAT_TIME_LEFT_MAX 80
void format_time_left(int64_t until, int64_t now, char *out, size_t size);

/* 32 bytes -> 64 lower-case hex digits and a NUL. */
void format_sha256_hex(const uint8_t d[32], char out[65]);
/* v in decimal ("-" before a negative one) and a NUL; returns its length. Without the printf
 * machinery: a hit's answer writes several numbers. */
#define FORMAT_INT_MAX 21 /* INT64_MIN's 20 characters, UINT64_MAX's 20, and the NUL */
size_t format_int(int64_t v, char out[FORMAT_INT_MAX]);
size_t format_uint(uint64_t v, char out[FORMAT_INT_MAX]);

/* The `n` bytes written by the first 2n hex digits of `hex` (either case), nothing after them
 * read; -1 when one of them is not a digit (a NUL included). */
int parse_hex_bytes(const char *hex, size_t n, uint8_t *out);
/* 64 hex digits -> 32 bytes. */
int parse_sha256_hex(const char *hex, uint8_t out[32]);
/* A digest's first 8 bytes, big-endian: the digests' order, as an integer (the usage journal's
 * run and the store's load sort and merge by it). */
uint64_t sha256_prefix(const uint8_t d[32]);

/* For "did you mean": the name in `names` (NULL-terminated) nearest to `name`, within two edits
 * or one that `name` (3 characters at least) begins; NULL when none is that near. */
const char *parse_nearest_name(const char *name, const char *const *names);

#endif
