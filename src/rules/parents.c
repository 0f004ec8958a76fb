/* The parents' places (rules.h, rules_names_parent): each parent's host and port as written,
 * and its addresses as this machine resolved them when the set was compiled. A parent serves
 * this arca every URL its rules let its clients fetch, seeing this arca's address: a client
 * must never reach it through this arca as an origin, a redirect's target or a tunnel's end. */
#include "rules/rules_internal.h"
#include "base/parse.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* host (brackets off) and port (the scheme's default when none) of `url`'s authority. */
static bool place_of_url(const char *url, char host[256], int *port)
{
    size_t len;
    const char *h = url_host(url, &len);
    struct authority a;
    if (parse_authority(h, len, &a) != AUTHORITY_OK)
        return false;
    if (a.host[0] == '[') {
        a.host++;
        a.host_len -= 2;
    }
    if (a.host_len >= 256)
        return false;
    snprintf(host, 256, "%.*s", (int)a.host_len, a.host);
    *port = a.port ? a.port : !strncasecmp(url, "https://", 8) ? 443 : 80;
    return true;
}

/* `parent` (a base URL) joins the set's places, its addresses resolved now; once each. */
static void add_place(struct rule_set *set, const char *parent)
{
    struct parent_place *p = &set->places[set->n_places];
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai, *i;
    if (!parent[0])
        return;
    for (size_t k = 0; k < set->n_places; k++)
        if (!strcmp(set->places[k].parent, parent))
            return;
    memset(p, 0, sizeof(*p));
    if (!place_of_url(parent, p->host, &p->port))
        return;
    snprintf(p->parent, sizeof(p->parent), "%s", parent);
    /* a name that does not resolve now has no address: it is still refused by name */
    if (getaddrinfo(p->host, NULL, &hints, &ai) == 0) {
        for (i = ai; i && p->n_addrs < PARENT_PLACE_ADDRS; i = i->ai_next)
            if (addr_to_v6(i->ai_addr, p->addrs[p->n_addrs]) == 0)
                p->n_addrs++;
        freeaddrinfo(ai);
    }
    set->n_places++;
}

int parents_compile(const struct config *cfg, struct rule_set *set, char *err)
{
    if (!(set->places = calloc(set->n + 1, sizeof(*set->places)))) {
        snprintf(err, CONFIG_ERR_LEN, "rules: out of memory");
        return -1;
    }
    add_place(set, cfg->parent);
    for (size_t i = 0; i < set->n; i++)
        if (set->rules[i].has_parent)
            add_place(set, set->rules[i].parent);
    return 0;
}

/* The place at `port` whose name is `host` or one of whose addresses is `a` (NULL: none). */
static const struct parent_place *place_at(const struct rule_set *set, const char *host,
                                           const uint8_t *a, int port)
{
    for (size_t k = 0; k < set->n_places; k++) {
        const struct parent_place *p = &set->places[k];
        if (p->port != port)
            continue;
        if (host && !strcasecmp(host, p->host))
            return p;
        for (int j = 0; a && j < p->n_addrs; j++)
            if (!memcmp(a, p->addrs[j], 16))
                return p;
    }
    return NULL;
}

static void say_parent(const struct parent_place *p, const char *what, char *why, size_t size)
{
    if (why && size)
        snprintf(why, size, "%s names this arca's parent %.200s: ask for the URL itself", what,
                 p->parent);
}

bool rules_names_parent(const char *url, char *why, size_t size)
{
    const struct rule_set *set = rules_current();
    const struct parent_place *p = NULL;
    char host[256];
    int port;
    struct sockaddr_storage ss;
    uint8_t a[16];
    bool numeric = false;
    if (set->n_places && place_of_url(url, host, &port)) {
        /* an address literal in any of its spellings ([::ffff:127.0.0.1], 127.1) */
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST}, *ai;
        if (getaddrinfo(host, NULL, &hints, &ai) == 0) {
            memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
            numeric = addr_to_v6((struct sockaddr *)&ss, a) == 0;
            freeaddrinfo(ai);
        }
        p = place_at(set, host, numeric ? a : NULL, port);
    }
    if (p)
        say_parent(p, "the URL", why, size);
    rules_put(set);
    return p != NULL;
}

bool rules_addr_is_parent(const struct sockaddr *sa, int port, char *why, size_t size)
{
    const struct rule_set *set = rules_current();
    const struct parent_place *p = NULL;
    uint8_t a[16];
    char text[INET6_ADDRSTRLEN + 8] = "?";
    if (set->n_places && addr_to_v6(sa, a) == 0)
        p = place_at(set, NULL, a, port);
    if (p) {
        format_sockaddr(sa, text, sizeof(text));
        char what[INET6_ADDRSTRLEN + 48];
        snprintf(what, sizeof(what), "upstream address %s port %d", text, port);
        say_parent(p, what, why, size);
    }
    rules_put(set);
    return p != NULL;
}
