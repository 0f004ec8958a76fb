#include "config/config.h"
#include "config/config_internal.h"
#include "url/url.h"
#include "base/parse.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <regex.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

void config_defaults(struct config *cfg)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    memset(cfg, 0, sizeof(*cfg));
    snprintf(cfg->listen_host, sizeof(cfg->listen_host), "0.0.0.0");
    cfg->listen_port = 8001;
    snprintf(cfg->data_dir, sizeof(cfg->data_dir), "./arca-data");
    cfg->quota = 5LL << 30;
    cfg->default_ttl = 10 * 86400;
    cfg->registry_tag_ttl = 60; /* a rebuilt :latest seen within a minute, at a HEAD a minute */
    /* a Retry-After of hours (Docker Hub's anonymous pulls) is asked again sooner */
    cfg->registry_hold_max = 600;
    cfg->remote_meta_ttl = 60; /* a republished repository seen within a minute */
    cfg->stall_timeout = 60;
    cfg->connect_timeout = 30;
    cfg->download_timeout = 6 * 3600;
    cfg->download_retries = 4;
    cfg->max_redirects = 20;
    cfg->retry_delay_ms = 1000;
    cfg->max_downloads = 32;
    cfg->max_downloads_per_host = 8;
    cfg->fill_connections = 4;
    cfg->fill_min_size = 64LL << 20;
    cfg->max_object_size = 64LL << 30;
    cfg->max_connections = 1024;
    cfg->max_connections_per_ip = 128;
    cfg->max_header_size = 16384;
    cfg->header_timeout = 10;
    cfg->idle_timeout = 60;
    cfg->grace_period = 10;
    cfg->threads = cpus > 0 ? (int)(cpus > 16 ? 16 : cpus) : 2;
    cfg->max_url_len = 8192;
    snprintf(cfg->access_log, sizeof(cfg->access_log), "-");
    cfg->log_level = LOG_INFO;
    cfg->confirm_ttl = 600;
    cfg->keep_expired = 7 * 86400;
    cfg->stale_if_error = 86400;
    cfg->stale_while_revalidate = 0;
    cfg->origin_failures = 3;
}

static int copy_str(char *dst, size_t size, const char *name, const char *v, char *err)
{
    if (strlen(v) >= size) {
        snprintf(err, CONFIG_ERR_LEN, "--%s: value too long (max %zu bytes)", name, size - 1);
        return -1;
    }
    memset(dst, 0, size); /* no bytes of an earlier value: SIGHUP compares fields bytewise */
    memcpy(dst, v, strlen(v));
    return 0;
}

/* "HOST:PORT", "[v6]:PORT" (parse_authority's reading) or ":PORT" (every address), for the
 * option `name`. */
static int parse_listen(struct listen_addr *out, const char *name, const char *v, char *err)
{
    struct authority a = {.host = "0.0.0.0", .host_len = 7};
    if (v[0] == ':')
        a.port = parse_port(v + 1, strlen(v + 1));
    else if (parse_authority(v, strlen(v), &a) != AUTHORITY_OK)
        a.port = 0;
    if (a.host[0] == '[') { /* the address without its brackets */
        a.host++;
        a.host_len -= 2;
    }
    if (a.port <= 0 || a.host_len >= sizeof(out->host)) {
        snprintf(err, CONFIG_ERR_LEN, "--%s: expected HOST:PORT, got '%s'", name, v);
        return -1;
    }
    memset(out->host, 0, sizeof(out->host));
    memcpy(out->host, a.host, a.host_len);
    out->port = a.port;
    return 0;
}

static int set_listen(struct config *cfg, const char *v, char *err)
{
    struct listen_addr a;
    if (parse_listen(&a, "listen", v, err) < 0)
        return -1;
    memcpy(cfg->listen_host, a.host, sizeof(cfg->listen_host));
    cfg->listen_port = a.port;
    return 0;
}

/* --tls-listen HOST:PORT, repeatable: each address once, none the plain --listen's. */
static int add_tls_listen(struct config *cfg, const char *v, char *err)
{
    struct listen_addr a;
    if (parse_listen(&a, "tls-listen", v, err) < 0)
        return -1;
    for (int i = 0; i < cfg->n_tls_listen; i++)
        if (cfg->tls_listen[i].port == a.port && !strcmp(cfg->tls_listen[i].host, a.host))
            return 0; /* the same address again (a file and the command line): once */
    if (cfg->n_tls_listen >= CONFIG_MAX_TLS_LISTEN) {
        snprintf(err, CONFIG_ERR_LEN, "--tls-listen: at most %d addresses", CONFIG_MAX_TLS_LISTEN);
        return -1;
    }
    cfg->tls_listen[cfg->n_tls_listen++] = a;
    return 0;
}

static int add_net(struct cidr *nets, int *n, const char *name, const char *v, char *err)
{
    if (*n >= CONFIG_MAX_NETS) {
        snprintf(err, CONFIG_ERR_LEN, "--%s: at most %d networks", name, CONFIG_MAX_NETS);
        return -1;
    }
    if (parse_cidr(v, &nets[*n]) < 0) {
        snprintf(err, CONFIG_ERR_LEN, "--%s: not a network (CIDR): '%s'", name, v);
        return -1;
    }
    (*n)++;
    return 0;
}

/* --connect-port N, repeatable; "none" refuses every tunnel (until a port is given again). */
static int add_connect_port(struct config *cfg, const char *v, char *err)
{
    int port = parse_port(v, strlen(v));
    if (!strcmp(v, "none")) {
        cfg->n_connect_ports = -1;
        return 0;
    }
    if (port < 0) {
        snprintf(err, CONFIG_ERR_LEN,
                 "--connect-port: expected a port (1..65535) or none, got '%s'", v);
        return -1;
    }
    if (cfg->n_connect_ports < 0)
        cfg->n_connect_ports = 0;
    if (cfg->n_connect_ports >= CONFIG_MAX_PORTS) {
        snprintf(err, CONFIG_ERR_LEN, "--connect-port: at most %d ports", CONFIG_MAX_PORTS);
        return -1;
    }
    cfg->connect_ports[cfg->n_connect_ports++] = port;
    return 0;
}

bool config_tunnel_port(const struct config *cfg, int port)
{
    if (cfg->n_connect_ports == 0)
        return port == 443;
    for (int i = 0; i < cfg->n_connect_ports; i++)
        if (cfg->connect_ports[i] == port)
            return true;
    return false;
}

/* A plain decimal integer; strtoll alone would accept blanks and signs. */
static int parse_int(const char *v, int64_t *out)
{
    char *end;
    if (!*v || (*v != '-' && (*v < '0' || *v > '9')))
        return -1;
    errno = 0;
    *out = strtoll(v, &end, 10);
    return *end || errno ? -1 : 0;
}

/* A bound as the user would write it: in the largest unit that divides it ("30s", "36500d",
 * "1M"); an integer as it is. */
static void format_amount(enum value_kind kind, int64_t n, char *out, size_t size)
{
    static const struct {
        enum value_kind kind;
        const char *suffix;
        int64_t unit;
    } units[] = {
        {V_DURATION, "d", 86400},    {V_DURATION, "h", 3600},        {V_DURATION, "m", 60},
        {V_DURATION, "s", 1},        {V_DURATION_MS, "d", 86400000}, {V_DURATION_MS, "h", 3600000},
        {V_DURATION_MS, "m", 60000}, {V_DURATION_MS, "s", 1000},     {V_DURATION_MS, "ms", 1},
        {V_SIZE, "T", 1LL << 40},    {V_SIZE, "G", 1LL << 30},       {V_SIZE, "M", 1LL << 20},
        {V_SIZE, "K", 1LL << 10}};
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (units[i].kind == kind && n % units[i].unit == 0) {
            snprintf(out, size, "%lld%s", (long long)(n / units[i].unit), units[i].suffix);
            return;
        }
    }
    snprintf(out, size, "%lld", (long long)n);
}

/* "0", "0s", "00d": none of a duration. */
static bool zero_duration(const char *v)
{
    size_t zeros = strspn(v, "0");
    return zeros > 0 && (!v[zeros] || (strchr("dhms", v[zeros]) && !v[zeros + 1]));
}

/* A number within the option's bounds. A value past them is refused with the range, never
 * capped: arca does what its configuration says or says why it cannot. */
static int set_numeric(struct config *cfg, const struct option *o, const char *v, char *err)
{
    static const char *const expect[] = {"<int>d|h|m|s", "<int>ms|s|m", "<int>[K|M|G|T]",
                                         "an integer"};
    char lo[32], hi[32];
    int64_t n = 0;
    /* a duration that may be 0 (never) takes "0" alone as well as "0s" */
    int rc = o->kind == V_DURATION && o->min == 0 && zero_duration(v) ? 0
             : o->kind == V_DURATION                                  ? parse_seconds(v, &n)
             : o->kind == V_DURATION_MS                               ? parse_duration_ms(v, &n)
             : o->kind == V_SIZE && o->min == 0 && !strcmp(v, "none") ? 0
             : o->kind == V_SIZE                                      ? parse_size(v, &n)
                                                                      : parse_int(v, &n);
    if (rc < 0 && o->kind == V_SIZE && o->min == 0) { /* --upstream-rate: bytes, not bits */
        snprintf(err, CONFIG_ERR_LEN, "--%s: expected bytes as <int>[K|M|G|T], or none, got '%s'",
                 o->name, v);
        return -1;
    }
    if (rc < 0) {
        snprintf(err, CONFIG_ERR_LEN, "--%s: expected %s%s, got '%s'", o->name, expect[o->kind],
                 o->min > 0              ? ", positive"
                 : o->kind == V_DURATION ? " or 0"
                                         : ", 0 or more",
                 v);
        return -1;
    }
    if (n < o->min || n > o->max) {
        format_amount(o->kind, o->min, lo, sizeof(lo));
        format_amount(o->kind, o->max, hi, sizeof(hi));
        snprintf(err, CONFIG_ERR_LEN, "--%s: '%s' is out of range (%s..%s)", o->name, v, lo, hi);
        return -1;
    }
    if (o->kind == V_INT)
        *(int *)((char *)cfg + o->offset) = (int)n;
    else
        *(int64_t *)((char *)cfg + o->offset) = n;
    return 0;
}

/* A value that is one of `n` words (n >= 2): its index in `words`, or -1 with the reason
 * ("--NAME: expected a, b or c, got 'v'"). */
static int pick_of(const char *name, const char *v, const char *const *words, int n,
                   char err[CONFIG_ERR_LEN])
{
    int len;
    for (int i = 0; i < n; i++)
        if (!strcmp(v, words[i]))
            return i;
    len = snprintf(err, CONFIG_ERR_LEN, "--%s: expected %s", name, words[0]);
    for (int i = 1; i < n && len >= 0 && len < CONFIG_ERR_LEN; i++)
        len += snprintf(err + len, (size_t)(CONFIG_ERR_LEN - len), "%s%s",
                        i == n - 1 ? " or " : ", ", words[i]);
    if (len >= 0 && len < CONFIG_ERR_LEN)
        snprintf(err + len, (size_t)(CONFIG_ERR_LEN - len), ", got '%s'", v);
    return -1;
}

static int set_log_level(struct config *cfg, const char *v, char *err)
{
    static const char *const names[] = {"error", "warning", "info", "debug"}; /* enum's order */
    int i = pick_of("log-level", v, names, 4, err);
    if (i >= 0)
        cfg->log_level = (enum log_level)i;
    return i < 0 ? -1 : 0;
}

/* A value that is one of two words: 0 for `first`, 1 for `second`, -1 with the reason. */
static int pick(const char *name, const char *v, const char *first, const char *second,
                char err[CONFIG_ERR_LEN])
{
    return pick_of(name, v, (const char *const[]){first, second}, 2, err);
}

/* "HOSTGLOB=PARAM[,PARAM...]": the host pattern is kept in lower case, as hosts are in a URL's
 * normal form. */
static int add_key_rule(struct config *cfg, const char *v, char *err)
{
    const char *eq = strchr(v, '=');
    struct key_rule *r = &cfg->key_rules[cfg->n_key_rules];
    if (cfg->n_key_rules >= CONFIG_MAX_RULES) {
        snprintf(err, CONFIG_ERR_LEN, "--key-rules: at most %d rules", CONFIG_MAX_RULES);
        return -1;
    }
    if (!eq || eq == v || !eq[1] || (size_t)(eq - v) >= sizeof(r->host) ||
        strlen(eq + 1) >= sizeof(r->params) || strspn(eq + 1, ",") == strlen(eq + 1)) {
        snprintf(err, CONFIG_ERR_LEN, "--key-rules: expected HOSTGLOB=PARAM[,PARAM...], got '%s'",
                 v);
        return -1;
    }
    for (size_t i = 0; i < (size_t)(eq - v); i++)
        r->host[i] = (char)tolower((unsigned char)v[i]);
    r->host[eq - v] = '\0';
    memcpy(r->params, eq + 1, strlen(eq + 1) + 1);
    cfg->n_key_rules++;
    return 0;
}

/* Whether a regex is cheap to compile. glibc's regcomp copies the subexpression a '+' or a
 * "{m,n}" applies to, so nested ones grow exponentially: "t+++...+" with sixty '+' took 2 GiB
 * (found by fuzz_config). Counted repetition is refused, and '+' allowed a few times. */
static bool regex_tame(const char *re)
{
    int plus = 0;
    for (const char *p = re; *p; p++) {
        if (*p == '\\' && p[1]) {
            p++;
            continue;
        }
        if (*p == '{')
            return false;
        plus += *p == '+';
    }
    return plus <= 8;
}

/* "REGEX=URL[,URL...]": the regex ends where "=http://" or "=https://" begins, so it may hold
 * '=' itself; it must compile, and each mirror must be an http(s) URL. */
static int add_mirror(struct config *cfg, const char *v, char *err)
{
    const char *eq = strstr(v, "=http://"), *s = strstr(v, "=https://");
    struct mirror_rule *r = &cfg->mirror_rules[cfg->n_mirror_rules];
    regex_t re;
    if (!eq || (s && s < eq))
        eq = s;
    if (cfg->n_mirror_rules >= (int)(sizeof(cfg->mirror_rules) / sizeof(cfg->mirror_rules[0]))) {
        snprintf(err, CONFIG_ERR_LEN, "--mirror: at most %zu rules",
                 sizeof(cfg->mirror_rules) / sizeof(cfg->mirror_rules[0]));
        return -1;
    }
    if (!eq || eq == v || (size_t)(eq - v) >= sizeof(r->pattern)) {
        snprintf(err, CONFIG_ERR_LEN, "--mirror: expected REGEX=URL[,URL...], got '%s'", v);
        return -1;
    }
    memset(r, 0, sizeof(*r));
    memcpy(r->pattern, v, (size_t)(eq - v));
    if (!regex_tame(r->pattern)) {
        snprintf(
            err, CONFIG_ERR_LEN,
            "--mirror: '%.160s': no {m,n} and at most 8 '+' (use * and ?): the regex must stay "
            "cheap to compile",
            r->pattern);
        return -1;
    }
    if (regcomp(&re, r->pattern, REG_EXTENDED) != 0) {
        snprintf(err, CONFIG_ERR_LEN, "--mirror: not a regular expression: '%.200s'", r->pattern);
        return -1;
    }
    regfree(&re);
    for (const char *p = eq + 1; *p;) {
        size_t n = strcspn(p, ",");
        if (r->n == CONFIG_MAX_MIRRORS || n >= sizeof(r->mirrors[0]) ||
            (strncmp(p, "http://", 7) != 0 && strncmp(p, "https://", 8) != 0)) {
            snprintf(err, CONFIG_ERR_LEN,
                     "--mirror: each mirror must be an http(s) URL, at most %d, got '%.*s'",
                     CONFIG_MAX_MIRRORS, (int)n, p);
            return -1;
        }
        memcpy(r->mirrors[r->n++], p, n);
        p += n + (p[n] == ',');
    }
    cfg->n_mirror_rules++;
    return 0;
}

/* A switch: true/false, yes/no, on/off or 1/0 (on the command line, the bare flag means true).
 * `what` names it in the error: "--exact-keys", "bucket lab: hide-root". */
static int set_bool(bool *field, const char *what, const char *v, char *err)
{
    static const char *const words[][2] = {
        {"false", "true"}, {"no", "yes"}, {"off", "on"}, {"0", "1"}};
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        for (int on = 0; on < 2; on++) {
            if (!strcmp(v, words[i][on])) {
                *field = on == 1;
                return 0;
            }
        }
    }
    snprintf(err, CONFIG_ERR_LEN, "%s: expected true or false (yes/no, on/off, 1/0), got '%s'",
             what, v);
    return -1;
}

/* The bucket called `name`, added (with its defaults) when new; NULL with the reason. */
static struct bucket *bucket_named(struct config *cfg, const char *name, size_t len, char *err)
{
    for (int i = 0; i < cfg->n_buckets; i++)
        if (strlen(cfg->buckets[i].name) == len && !strncmp(cfg->buckets[i].name, name, len))
            return &cfg->buckets[i];
    if (len == 0 || len >= sizeof(cfg->buckets[0].name) ||
        strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") < len) {
        snprintf(err, CONFIG_ERR_LEN,
                 "bucket name '%.*s': 1-63 letters, digits, '.', '_' or '-' expected", (int)len,
                 name);
        return NULL;
    }
    if (cfg->n_buckets == CONFIG_MAX_BUCKETS) {
        snprintf(err, CONFIG_ERR_LEN, "at most %d buckets", CONFIG_MAX_BUCKETS);
        return NULL;
    }
    struct bucket *b = &cfg->buckets[cfg->n_buckets++];
    memset(b, 0, sizeof(*b));
    memcpy(b->name, name, len);
    snprintf(b->region, sizeof(b->region), "us-east-1");
    b->listing_ttl = 60;
    return b;
}

/* A bucket's path-style URL: http(s)://host[:port]/bucket[/...] (the scheme in lower case),
 * kept without a trailing '/'. Its host is judged where it is normalized (buckets_init). */
static int set_bucket_url(struct bucket *b, const char *v, char *err)
{
    struct url_parts u;
    size_t len = strlen(v);
    while (len > 0 && v[len - 1] == '/')
        len--;
    parse_url(v, len, &u); /* its verdict aside: the host is buckets_init's */
    if ((strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0) || !u.scheme ||
        u.path_len == 0 || u.query || u.fragment || strpbrk(v, " \t") || len >= sizeof(b->url)) {
        snprintf(err, CONFIG_ERR_LEN,
                 "bucket %s: url must be the bucket's path-style http(s) URL "
                 "(https://HOST/BUCKET), got '%s'",
                 b->name, v);
        return -1;
    }
    memcpy(b->url, v, len);
    b->url[len] = '\0';
    return 0;
}

/* "NAME=URL" */
static int add_bucket(struct config *cfg, const char *v, char *err)
{
    const char *eq = strchr(v, '=');
    struct bucket *b;
    if (!eq) {
        snprintf(err, CONFIG_ERR_LEN, "--bucket: expected NAME=URL, got '%s'", v);
        return -1;
    }
    if (!(b = bucket_named(cfg, v, (size_t)(eq - v), err)))
        return -1;
    return set_bucket_url(b, eq + 1, err);
}

/* One key of an INI section [bucket NAME]. */
int config_bucket_key(struct config *cfg, const char *name, const char *key, const char *v,
                      char *err)
{
    struct bucket *b = bucket_named(cfg, name, strlen(name), err);
    int64_t n;
    if (!b)
        return -1;
    if (!strcmp(key, "url"))
        return set_bucket_url(b, v, err);
    if (!strcmp(key, "region")) {
        if (!*v || strlen(v) >= sizeof(b->region) ||
            strspn(v, "abcdefghijklmnopqrstuvwxyz0123456789-") < strlen(v)) {
            snprintf(err, CONFIG_ERR_LEN, "bucket %s: region: expected like us-east-1, got '%s'",
                     b->name, v);
            return -1;
        }
        return copy_str(b->region, sizeof(b->region), "region", v, err);
    }
    if (!strcmp(key, "credentials"))
        return copy_str(b->credentials, sizeof(b->credentials), "credentials", v, err);
    if (!strcmp(key, "hide-root")) {
        char what[96];
        snprintf(what, sizeof(what), "bucket %s: hide-root", b->name);
        return set_bool(&b->hide_root, what, v, err);
    }
    if (!strcmp(key, "prefix")) {
        size_t len = strlen(v);
        if (v[0] == '/' || len + 2 >= sizeof(b->prefix)) {
            snprintf(err, CONFIG_ERR_LEN, "bucket %s: prefix: a key prefix without a leading '/'",
                     b->name);
            return -1;
        }
        snprintf(b->prefix, sizeof(b->prefix), "%s%s", v, len && v[len - 1] != '/' ? "/" : "");
        return 0;
    }
    if (!strcmp(key, "listing-ttl")) {
        if (parse_seconds(v, &n) < 0 || n > TTL_MAX) {
            snprintf(err, CONFIG_ERR_LEN,
                     "bucket %s: listing-ttl: expected <int>d|h|m|s, 1s..36500d, got '%s'", b->name,
                     v);
            return -1;
        }
        b->listing_ttl = n;
        return 0;
    }
    snprintf(err, CONFIG_ERR_LEN, "bucket %s: unknown key '%s'", b->name, key);
    return -1;
}

/* The setters of the table, one signature for all. */
static int opt_string(struct config *cfg, const struct option *o, const char *v, char *err)
{
    return copy_str((char *)cfg + o->offset, o->size, o->name, v, err);
}

static int opt_listen(struct config *cfg, const struct option *o, const char *v, char *err)
{
    (void)o;
    return set_listen(cfg, v, err);
}

static int opt_tls_listen(struct config *cfg, const struct option *o, const char *v, char *err)
{
    (void)o;
    return add_tls_listen(cfg, v, err);
}

/* A network list's span ends with its count. */
static int opt_net(struct config *cfg, const struct option *o, const char *v, char *err)
{
    int *n = (int *)((char *)cfg + o->offset + o->size - sizeof(int));
    return add_net((struct cidr *)((char *)cfg + o->offset), n, o->name, v, err);
}

/* --allow-network: a network, or "all" (any case) for every IPv4 and IPv6 client (without the
 * option only loopback and the private networks may fetch: rules/policy.c). Anything else is
 * refused with both forms named. */
static int opt_allow_net(struct config *cfg, const struct option *o, const char *v, char *err)
{
    struct cidr net;
    if (strcasecmp(v, "all") != 0 && parse_cidr(v, &net) < 0) {
        snprintf(err, CONFIG_ERR_LEN,
                 "--%s: not a network (CIDR, such as 10.0.0.0/8) nor all: '%s'", o->name, v);
        return -1;
    }
    if (strcasecmp(v, "all") != 0)
        return opt_net(cfg, o, v, err);
    if (opt_net(cfg, o, "0.0.0.0/0", err) < 0)
        return -1;
    return opt_net(cfg, o, "::/0", err);
}

static int opt_switch(struct config *cfg, const struct option *o, const char *v, char *err)
{
    char what[72];
    snprintf(what, sizeof(what), "--%s", o->name);
    return set_bool((bool *)((char *)cfg + o->offset), what, v, err);
}

static int opt_ca_file(struct config *cfg, const struct option *o, const char *v, char *err)
{
    if (access(v, R_OK) != 0) {
        snprintf(err, CONFIG_ERR_LEN, "--ca-file: cannot read '%s'", v);
        return -1;
    }
    return opt_string(cfg, o, v, err);
}

static int opt_send_mode(struct config *cfg, const struct option *o, const char *v, char *err)
{
    static const char *const names[] = {
        [SEND_AUTO] = "auto", [SEND_MMAP] = "mmap", [SEND_SENDFILE] = "sendfile"};
    int i = pick_of(o->name, v, names, 3, err);
    if (i >= 0)
        cfg->send_mode = (enum send_mode)i;
    return i < 0 ? -1 : 0;
}

static int opt_framing(struct config *cfg, const struct option *o, const char *v, char *err)
{
    int rc = pick(o->name, v, "chunked", "hold", err);
    if (rc >= 0)
        cfg->digest_framing = rc ? FRAMING_HOLD : FRAMING_CHUNKED;
    return rc < 0 ? -1 : 0;
}

static int opt_log_level(struct config *cfg, const struct option *o, const char *v, char *err)
{
    (void)o;
    return set_log_level(cfg, v, err);
}

static int opt_key_rule(struct config *cfg, const struct option *o, const char *v, char *err)
{
    (void)o;
    return add_key_rule(cfg, v, err);
}

static int opt_mirror(struct config *cfg, const struct option *o, const char *v, char *err)
{
    (void)o;
    return add_mirror(cfg, v, err);
}

int config_parent_url(const char *v, char out[CONFIG_PARENT_MAX], char *why, size_t size)
{
    char norm[CONFIG_PARENT_MAX];
    const char *err = NULL;
    struct url_parts u;
    int status;
    size_t n;
    parse_url(v, strlen(v), &u); /* its verdict aside: url_normalize words the host's */
    if (!url_scheme_is(&u, "http") && !url_scheme_is(&u, "https")) {
        snprintf(why, size, "not an http:// or https:// URL");
        return -1;
    }
    if (u.userinfo) { /* never echoed: it holds a password */
        snprintf(why, size,
                 "a URL with credentials (user:password@) is refused: they "
                 "would show in logs and the status; give the address alone");
        return -1;
    }
    if (u.query || u.fragment) {
        snprintf(why, size, "expected a base URL, without a query or fragment");
        return -1;
    }
    if (strlen(v) >= sizeof(norm) - 1 ||
        url_normalize(v, strlen(v), norm, sizeof(norm), &status, &err) < 0) {
        snprintf(why, size, "%s", err ? err : "too long");
        return -1;
    }
    n = strlen(norm);
    while (n > 0 && norm[n - 1] == '/')
        norm[--n] = '\0';
    memcpy(out, norm, n + 1);
    return 0;
}

static int opt_parent(struct config *cfg, const struct option *o, const char *v, char *err)
{
    char why[160];
    if (config_parent_url(v, cfg->parent, why, sizeof(why)) < 0) {
        snprintf(err, CONFIG_ERR_LEN, "--%s: %s", o->name, why);
        return -1;
    }
    return 0;
}

static int opt_connect_port(struct config *cfg, const struct option *o, const char *v, char *err)
{
    (void)o;
    return add_connect_port(cfg, v, err);
}

static int opt_bucket(struct config *cfg, const struct option *o, const char *v, char *err)
{
    (void)o;
    return add_bucket(cfg, v, err);
}

#define FIELD(f) offsetof(struct config, f), sizeof(((struct config *)0)->f)
#define SPAN(first, last)                                                                          \
    offsetof(struct config, first), offsetof(struct config, last) +                                \
                                        sizeof(((struct config *)0)->last) -                       \
                                        offsetof(struct config, first)
#define NUMBER(name, flags, f, kind, min, max)                                                     \
    {                                                                                              \
        name, set_numeric, flags, FIELD(f), kind, min, max                                         \
    }

/* In --help's order: SIGHUP names changed options in this order. */
static const struct option options[] = {
    {"config", NULL, OPT_REPEATABLE | OPT_COMMAND_LINE, 0, 0, 0, 0, 0},
    {"listen", opt_listen, 0, SPAN(listen_host, listen_port), 0, 0, 0},
    {"tls-listen", opt_tls_listen, OPT_REPEATABLE, SPAN(tls_listen, n_tls_listen), 0, 0, 0},
    /* reloadable: SIGHUP reads the files again, whether their names changed or not */
    {"tls-cert", opt_string, OPT_RELOADABLE, FIELD(tls_cert), 0, 0, 0},
    {"tls-key", opt_string, OPT_RELOADABLE, FIELD(tls_key), 0, 0, 0},
    {"tls-client-ca", opt_string, OPT_RELOADABLE, FIELD(tls_client_ca), 0, 0, 0},
    {"data-dir", opt_string, 0, FIELD(data_dir), 0, 0, 0},
    NUMBER("quota", OPT_RELOADABLE, quota, V_SIZE, 1, INT64_MAX),
    NUMBER("default-ttl", OPT_RELOADABLE, default_ttl, V_DURATION, 1, TTL_MAX),
    {"allow-network", opt_allow_net, OPT_REPEATABLE | OPT_RELOADABLE,
     SPAN(allow_nets, n_allow_nets), 0, 0, 0},
    {"ui-network", opt_net, OPT_REPEATABLE, SPAN(ui_nets, n_ui_nets), 0, 0, 0},
    {"trusted-proxy", opt_net, OPT_REPEATABLE, SPAN(trusted_proxies, n_trusted_proxies), 0, 0, 0},
    {"upstream-allow", opt_net, OPT_REPEATABLE, SPAN(upstream_allow, n_upstream_allow), 0, 0, 0},
    {"connect-port", opt_connect_port, OPT_REPEATABLE, SPAN(connect_ports, n_connect_ports), 0, 0,
     0},
    {"outgoing-address", opt_string, 0, FIELD(outgoing_address), 0, 0, 0}, /* config_finish */
    {"ca-file", opt_ca_file, 0, FIELD(ca_file), 0, 0, 0},
    {"shutdown-file", opt_string, 0, FIELD(shutdown_file), 0, 0, 0},
    NUMBER("stall-timeout", 0, stall_timeout, V_DURATION, 1, 86400),
    NUMBER("download-timeout", 0, download_timeout, V_DURATION, 1, 30 * 86400),
    NUMBER("download-retries", 0, download_retries, V_INT, 0, 100),
    NUMBER("max-redirects", 0, max_redirects, V_INT, 0, 100),
    NUMBER("retry-delay", 0, retry_delay_ms, V_DURATION_MS, 1, 30000),
    NUMBER("max-downloads", 0, max_downloads, V_INT, 1, 10000),
    NUMBER("max-downloads-per-host", 0, max_downloads_per_host, V_INT, 1, 10000),
    NUMBER("max-downloads-per-client", 0, max_downloads_per_client, V_INT, 0, 10000),
    NUMBER("fill-connections", 0, fill_connections, V_INT, 1, 64),
    NUMBER("fill-min-size", 0, fill_min_size, V_SIZE, 1, INT64_MAX),
    NUMBER("upstream-rate", OPT_RELOADABLE, upstream_rate, V_SIZE, 0, INT64_MAX),
    NUMBER("max-object-size", 0, max_object_size, V_SIZE, 1, INT64_MAX),
    NUMBER("max-connections", 0, max_connections, V_INT, 1, 100000),
    NUMBER("max-connections-per-ip", 0, max_connections_per_ip, V_INT, 1, 100000),
    NUMBER("max-url-length", 0, max_url_len, V_INT, 64, 1 << 20),
    NUMBER("max-header-size", 0, max_header_size, V_SIZE, 1024, 1 << 20),
    NUMBER("header-timeout", 0, header_timeout, V_DURATION, 1, 3600),
    NUMBER("idle-timeout", 0, idle_timeout, V_DURATION, 1, 86400),
    NUMBER("grace-period", 0, grace_period, V_DURATION, 1, 86400),
    NUMBER("threads", 0, threads, V_INT, 1, 256),
    {"send-mode", opt_send_mode, 0, FIELD(send_mode), 0, 0, 0},
    {"digest-framing", opt_framing, 0, FIELD(digest_framing), 0, 0, 0},
    {"cache-name", opt_string, 0, FIELD(cache_name), 0, 0, 0}, /* checked by config_finish */
    {"access-log", opt_string, 0, FIELD(access_log), 0, 0, 0},
    {"log-health-checks", opt_switch, OPT_SWITCH, FIELD(log_health_checks), 0, 0, 0},
    {"log-level", opt_log_level, OPT_RELOADABLE, FIELD(log_level), 0, 0, 0},
    {"admin-token-file", opt_string, OPT_RELOADABLE, FIELD(admin_token_file), 0, 0, 0},
    {"key-rules", opt_key_rule, OPT_REPEATABLE, SPAN(key_rules, n_key_rules), 0, 0, 0},
    {"exact-keys", opt_switch, OPT_SWITCH, FIELD(exact_keys), 0, 0, 0},
    {"trust-signed-urls", opt_switch, OPT_SWITCH, FIELD(trust_signed), 0, 0, 0},
    {"bucket", opt_bucket, OPT_REPEATABLE, SPAN(buckets, n_buckets), 0, 0, 0},
    /* set by config_registry.c (config_registry_option), as the file and the command line read */
    {"registry", NULL, OPT_REPEATABLE, SPAN(registries, n_registries), 0, 0, 0},
    {"registry-default", NULL, 0, FIELD(registry_default), 0, 0, 0},
    NUMBER("registry-tag-ttl", OPT_RELOADABLE, registry_tag_ttl, V_DURATION, 1, TTL_MAX),
    NUMBER("registry-hold-max", OPT_RELOADABLE, registry_hold_max, V_DURATION, 1, 86400),
    /* set by config_remote.c (config_remote_option), as the file and the command line read */
    {"remote", NULL, OPT_REPEATABLE, SPAN(remotes, n_remotes), 0, 0, 0},
    NUMBER("remote-meta-ttl", OPT_RELOADABLE, remote_meta_ttl, V_DURATION, 1, TTL_MAX),
    {"mirror", opt_mirror, OPT_REPEATABLE, SPAN(mirror_rules, n_mirror_rules), 0, 0, 0},
    {"parent", opt_parent, 0, FIELD(parent), 0, 0, 0},
    {"parent-only", opt_switch, OPT_SWITCH, FIELD(parent_only), 0, 0, 0},
    {"parent-trusted-http", opt_switch, OPT_SWITCH, FIELD(parent_trusted_http), 0, 0, 0},
    {"parent-cert", opt_string, OPT_RELOADABLE, FIELD(parent_cert), 0, 0, 0},
    {"parent-key", opt_string, OPT_RELOADABLE, FIELD(parent_key), 0, 0, 0},
    NUMBER("keep-expired", 0, keep_expired, V_DURATION, 1, TTL_MAX),
    NUMBER("confirm-ttl", 0, confirm_ttl, V_DURATION, 1, 7 * 86400),
    NUMBER("stale-if-error", OPT_RELOADABLE, stale_if_error, V_DURATION, 0, TTL_MAX),
    NUMBER("stale-while-revalidate", OPT_RELOADABLE, stale_while_revalidate, V_DURATION, 0,
           TTL_MAX),
    NUMBER("origin-failures", 0, origin_failures, V_INT, 0, 1000),
    NUMBER("negative-ttl", OPT_RELOADABLE, negative_ttl, V_DURATION, 0, NEGATIVE_TTL_MAX),
    {"help", NULL, OPT_COMMAND_LINE, 0, 0, 0, 0, 0},
    {"version", NULL, OPT_COMMAND_LINE, 0, 0, 0, 0, 0},
};
#define N_OPTIONS (sizeof(options) / sizeof(options[0]))
_Static_assert(N_OPTIONS <= CONFIG_MAX_OPTIONS, "struct config's origins hold every option");

size_t config_option_index(const struct option *o)
{
    return (size_t)(o - options);
}

const struct option *config_option(const char *name)
{
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (!strcmp(options[i].name, name))
            return &options[i];
    return NULL;
}

bool config_is_serve_option(const char *name)
{
    char plain[64];
    snprintf(plain, sizeof(plain), "%.*s", (int)strcspn(name, "="), name);
    return config_option(plain) != NULL;
}

/* "unknown option '--NAME'; did you mean --OTHER?" (dashes as the user wrote them). */
void config_unknown_option(const char *name, const char *dashes, bool in_file, char *err)
{
    const char *names[N_OPTIONS + 1], *near;
    size_t n = 0;
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (!in_file || !(options[i].flags & OPT_COMMAND_LINE))
            names[n++] = options[i].name;
    names[n] = NULL;
    near = strcmp(dashes, "-") ? parse_nearest_name(name, names) : NULL;
    if (near)
        snprintf(err, CONFIG_ERR_LEN, "unknown option '%s%s'; did you mean %s%s?", dashes, name,
                 dashes, near);
    else
        snprintf(err, CONFIG_ERR_LEN, "unknown option '%s%s'", dashes, name);
}

/* Apply option `o` and remember where it came from (file "" and line 0: the command line). */
int config_apply(struct config *cfg, const struct option *o, const char *v, const char *file,
                 int line, char *err)
{
    struct config_origin *where = &cfg->origins[o - options];
    if (o->set(cfg, o, v, err) < 0)
        return -1;
    snprintf(where->file, sizeof(where->file), "%s", file);
    where->line = line;
    return 0;
}

int config_set(struct config *cfg, const char *name, const char *v, char err[CONFIG_ERR_LEN])
{
    const struct option *o = config_option(name);
    if (!o || !o->set) {
        config_unknown_option(name, "", true, err);
        return -1;
    }
    return config_apply(cfg, o, v, "", 0, err);
}

int config_restart_changes(const struct config *old, const struct config *fresh, char *out,
                           size_t size)
{
    int n = 0;
    size_t len = 0;
    if (size > 0)
        out[0] = '\0';
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const struct option *o = &options[i];
        if (o->flags & (OPT_RELOADABLE | OPT_COMMAND_LINE) ||
            !memcmp((const char *)old + o->offset, (const char *)fresh + o->offset, o->size))
            continue;
        if (len < size)
            len += (size_t)snprintf(out + len, size - len, "%s--%s", n ? ", " : "", o->name);
        n++;
    }
    return n;
}

struct config_origin config_origin_at(const char *file, int line)
{
    struct config_origin o = {.line = line};
    snprintf(o.file, sizeof(o.file), "%s", line > 0 && file ? file : "");
    return o;
}

int config_name_list(const char *v, bool (*ok)(const char *item, size_t len),
                     char (*items)[CONFIG_REGISTRY_NAME_MAX], int max, int *n, const char **bad,
                     size_t *bad_len)
{
    *n = 0;
    for (const char *p = v;; p++) {
        p += strspn(p, " \t");
        size_t len = strcspn(p, ","), k = len;
        while (k > 0 && (p[k - 1] == ' ' || p[k - 1] == '\t'))
            k--;
        if (!ok(p, k) || k >= CONFIG_REGISTRY_NAME_MAX || *n == max) {
            *bad = p;
            *bad_len = k;
            return -1;
        }
        memcpy(items[*n], p, k);
        items[(*n)++][k] = '\0';
        p += len;
        if (!*p)
            return 0;
    }
}
