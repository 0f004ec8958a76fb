/* Who this arca is to others: the name its Cache-Status member gives (--cache-name) and the
 * address its upstream connections leave from (--outgoing-address, a rule's outgoing-address).
 * Their grammar and checks, for config.c's table and rules_compile. */
#include "config/config.h"
#include "config/config_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

bool config_sf_token(const char *s)
{
    /* RFC 8941 3.3.4: ( ALPHA / "*" ) *( tchar / ":" / "/" ), tchar RFC 9110's */
    static const char tchar[] = "!#$%&'*+-.^_`|~:/0123456789"
                                "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    size_t len = strlen(s);
    bool alpha = (s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z');
    return len > 0 && (alpha || s[0] == '*') && strspn(s, tchar) == len;
}

/* The host's name, as a token when it is one, else as an sf-string (a name that starts with a
 * digit): RFC 9211 takes either for a cache's name. "arca" when it has none. */
static void host_cache_name(char *out, size_t size)
{
    char host[256] = "";
    if (gethostname(host, sizeof(host)) < 0)
        host[0] = '\0';
    host[sizeof(host) - 1] = '\0';
    host[strcspn(host, "\"\\")] = '\0'; /* never in a host name; never in an sf-string here */
    if (!host[0] || strlen(host) + 3 > size)
        snprintf(out, size, "arca");
    else if (config_sf_token(host))
        snprintf(out, size, "%s", host);
    else
        snprintf(out, size, "\"%s\"", host);
}

void config_identity_defaults(struct config *cfg)
{
    host_cache_name(cfg->cache_name, sizeof(cfg->cache_name));
}

/* --cache-name: a token (the host's name, the default, may be an sf-string). */
static int finish_cache_name(struct config *cfg, char *err)
{
    const char *v = cfg->cache_name;
    char shown[64], host[sizeof(cfg->cache_name)];
    size_t i;
    host_cache_name(host, sizeof(host));
    if (config_sf_token(v) || !strcmp(v, host))
        return 0;
    for (i = 0; v[i] && i < sizeof(shown) - 1; i++) /* a control byte is not echoed */
        shown[i] = (unsigned char)v[i] < 0x20 || v[i] == 0x7f ? '?' : v[i];
    shown[i] = '\0';
    snprintf(err, CONFIG_ERR_LEN,
             "--cache-name: '%s' is not a name Cache-Status can carry: a letter or '*', then "
             "letters, digits and !#$%%&'*+-.^_`|~:/ (no blank)",
             shown);
    return -1;
}

/* One address of the value into `out`: -1 when it is none, or its family is given twice. */
static int parse_one(const char *s, size_t len, struct outgoing_address *out)
{
    char text[INET6_ADDRSTRLEN];
    if (len == 0 || len >= sizeof(text))
        return -1;
    memcpy(text, s, len);
    text[len] = '\0';
    if (inet_pton(AF_INET, text, &out->v4.sin_addr) == 1 && !out->has_v4) {
        out->v4.sin_family = AF_INET;
        out->has_v4 = true;
        return 0;
    }
    if (inet_pton(AF_INET6, text, &out->v6.sin6_addr) == 1 && !out->has_v6) {
        out->v6.sin6_family = AF_INET6;
        out->has_v6 = true;
        return 0;
    }
    return -1;
}

/* Whether this host holds `sa` (an address a socket can be bound to), else why not. */
static const char *bind_fails(const struct sockaddr *sa, socklen_t len)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const char *why = NULL;
    if (fd < 0)
        return strerror(errno);
    if (bind(fd, sa, len) < 0)
        why = errno == EADDRNOTAVAIL ? "is not an address of this host" : strerror(errno);
    close(fd);
    return why;
}

int config_outgoing_parse(const char *v, struct outgoing_address *out, char *why, size_t size)
{
    const char *comma = strchr(v, ',');
    const char *fails = NULL;
    memset(out, 0, sizeof(*out));
    if (parse_one(v, comma ? (size_t)(comma - v) : strlen(v), out) < 0 ||
        (comma && parse_one(comma + 1, strlen(comma + 1), out) < 0)) {
        snprintf(why, size,
                 "expected an IPv4 or IPv6 address of this host, or one of each "
                 "(ADDR4,ADDR6), got '%.64s'",
                 v);
        return -1;
    }
    if (out->has_v4)
        fails = bind_fails((const struct sockaddr *)&out->v4, sizeof(out->v4));
    if (!fails && out->has_v6)
        fails = bind_fails((const struct sockaddr *)&out->v6, sizeof(out->v6));
    if (fails) {
        snprintf(why, size, "%.64s %s", v, fails);
        return -1;
    }
    return 0;
}

void config_outgoing_text(const struct outgoing_address *a, char *out, size_t size)
{
    char v4[INET_ADDRSTRLEN] = "", v6[INET6_ADDRSTRLEN] = "";
    if (a->has_v4)
        inet_ntop(AF_INET, &a->v4.sin_addr, v4, sizeof(v4));
    if (a->has_v6)
        inet_ntop(AF_INET6, &a->v6.sin6_addr, v6, sizeof(v6));
    snprintf(out, size, "%s%s%s", v4, v4[0] && v6[0] ? "," : "", v6);
}

/* --outgoing-address, read (and checked: an address of this host) into cfg->outgoing. */
static int finish_outgoing(struct config *cfg, char *err)
{
    char why[160];
    memset(&cfg->outgoing, 0, sizeof(cfg->outgoing));
    if (!cfg->outgoing_address[0] ||
        config_outgoing_parse(cfg->outgoing_address, &cfg->outgoing, why, sizeof(why)) == 0)
        return 0;
    snprintf(err, CONFIG_ERR_LEN, "--outgoing-address: %s", why);
    return -1;
}

const char *config_finish_identity(struct config *cfg, char *err)
{
    return finish_cache_name(cfg, err) < 0 ? "cache-name"
           : finish_outgoing(cfg, err) < 0 ? "outgoing-address"
                                           : NULL;
}
