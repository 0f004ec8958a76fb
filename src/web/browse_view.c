/* What one client may see of a bucket (browse_view.h): the rules' who-may-fetch (terms.h) read
 * for the URL an entry would be fetched by, only while some rule names networks. */
#include "web/browse_view.h"
#include "rules/rules.h"
#include "rules/terms.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *browse_url(const struct bucket_auth *a, const char *key)
{
    struct buf b = {0};
    buf_addf(&b, "%s/", a->url);
    buf_path(&b, a->bucket->prefix);
    buf_path(&b, key);
    return buf_take(&b, NULL);
}

void browse_view_update(struct browse_view *v)
{
    const struct rule_set *set = rules_current();
    v->judged = rules_have_networks(set);
    rules_put(set);
}

/* The client's address is copied: http_client may hand the connection's own, and a JSON
 * document is written on events after the handler returned. */
void browse_view_init(struct browse_view *v, struct conn *c)
{
    const struct sockaddr *client = http_client(c, &v->client);
    sa_family_t family = client ? client->sa_family : AF_UNSPEC;
    size_t len = family == AF_INET    ? sizeof(struct sockaddr_in)
                 : family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                      : 0;
    if ((v->has_client = len > 0) && client != (const struct sockaddr *)&v->client)
        memcpy(&v->client, client, len);
    browse_view_update(v);
}

static bool is_folder(const char *path)
{
    return !path[0] || path[strlen(path) - 1] == '/';
}

bool browse_view_sees(const struct browse_view *v, const struct bucket_auth *a, const char *path)
{
    const struct sockaddr *client = (const struct sockaddr *)&v->client;
    char *url;
    bool seen;
    if (!v->judged)
        return true;
    if (!v->has_client || !(url = browse_url(a, path)))
        return false;
    seen = is_folder(path) ? terms_prefix_listed_for(url, client) : terms_listed_for(url, client);
    free(url);
    return seen;
}

int browse_view_closed(const struct browse_view *v, const struct bucket_auth *a, const char *path,
                       char *why, size_t size)
{
    struct request_facts req = {.client = (const struct sockaddr *)&v->client, .option_says = 1};
    struct fetch_terms t;
    char *url;
    if (browse_view_sees(v, a, path))
        return 0;
    if (!v->has_client) {
        snprintf(why, size, "%s", http_client_refusal(NULL));
        return 1;
    }
    if (!(url = browse_url(a, path)))
        return -1;
    req.url = req.key = url;
    terms_decide(http_cfg, &req, &t); /* the rule to name: the one that refuses the folder's URL */
    free(url);
    snprintf(why, size,
             "client address not allowed to list this folder: rule %s names who may fetch under "
             "it (allow-network)",
             t.allowed_rule);
    return 1;
}
