/* The registries in the status JSON and the metrics (http_internal.h's http_registries_*): each
 * one's name, URL, password file's path and refused login to a client that may see URLs, whether
 * it is the default and has a login, its counters (registries.h), its hold at its own asking
 * (upstream/hosts.h). A stranger gets the counters: a name is the lab's layout (the namespace
 * clients use, usually the registry's host), null for it in the status, its place in the list
 * ("1", "2"...) in the metrics' label, as a parent's. Never a password or a token. */
#include "http/http_internal.h"
#include "registry/registries.h"
#include "upstream/hosts.h"
#include "base/buf.h"
#include "base/clock.h"

#include <jansson.h>
#include <stddef.h>
#include <time.h>

/* What each counter counts (the metric's HELP), in registries.h's order: registry_counter_name(k)
 * is its word, arca_registry_<word>_total. */
static const char *const help[REGISTRY_COUNTERS] = {
    "Image pulls: GETs answered (2xx) with an image manifest, by tag or digest (not an index).",
    "Manifest and blob answers (2xx) from the store.",
    "Body bytes of manifests and blobs sent to clients.",
    "Tags asked again upstream with a HEAD.",
    "Tags answered from an expired manifest.",
    "Upstream refusals (a 4xx but 404, a 5xx).",
    "Of them, 429 Too Many Requests.",
    "Tokens fetched from the registry's realm.",
    "Blob GETs answered (2xx).",
    "Requests of the registry's pull API (manifests, blobs, tag lists), whatever their answer.",
};

static int64_t value(const struct registry *r, int k)
{
    return atomic_load(registry_counter(r->counters, k));
}

/* Its login's file and why it was last refused (null: it was not), to a client that may see
 * URLs: a path of the lab's, never the password. */
static void add_login(json_t *e, const struct registry *r, bool named)
{
    char why[REGISTRY_LOGIN_WHY];
    bool refused = named && registries_login_error(r, why, sizeof(why));
    if (named && r->has_login)
        json_object_set_new(e, "password_file", json_string(r->password_file));
    json_object_set_new(e, "login_error", refused ? json_string(why) : json_null());
}

/* Its hold at its own asking (a 429, a 503 with Retry-After: hosts.h), until its probe lifts
 * it: "held_until" (when its wait ends) and, to a client that may see URLs, "hold" (what it
 * answered: the upstream's own words), null when none. */
static void put_hold(json_t *e, const struct registry *r, bool named)
{
    struct host_limit l;
    char until[32] = "";
    hosts_limit_state(r->url, monotonic_ms(), &l);
    if (l.held)
        http_iso_time(l.until, until, sizeof(until));
    json_object_set_new(e, "held_until", l.held ? json_string(until) : json_null());
    json_object_set_new(e, "hold", l.held && named ? json_string(l.why) : json_null());
}

void http_registries_status(json_t *o, bool named)
{
    json_t *list = json_array();
    const struct registry *def = registries_default();
    for (int i = 0; list && i < registries_count(); i++) {
        const struct registry *r = registries_at(i);
        json_t *e = json_pack("{s:s?, s:b, s:b}", "name", named ? r->name : NULL, "default",
                              r == def, "login", r->has_login);
        if (!e)
            continue;
        if (named)
            json_object_set_new(e, "url", json_string(r->url));
        add_login(e, r, named);
        for (int k = 0; k < REGISTRY_COUNTERS; k++)
            json_object_set_new(e, registry_counter_name(k), json_integer(value(r, k)));
        put_hold(e, r, named);
        json_array_append_new(list, e);
    }
    if (list)
        json_object_set_new(o, "registries", list);
}

void http_registries_metrics(struct buf *b, bool named)
{
    for (int k = 0; k < REGISTRY_COUNTERS; k++) {
        const char *word = registry_counter_name(k);
        buf_addf(b, "# HELP arca_registry_%s_total %s\n# TYPE arca_registry_%s_total counter\n",
                 word, help[k], word);
        for (int i = 0; i < registries_count(); i++) {
            const struct registry *r = registries_at(i);
            buf_addf(b, "arca_registry_%s_total{registry=", word);
            if (named)
                buf_label(b, r->name);
            else
                buf_addf(b, "\"%d\"", i + 1);
            buf_addf(b, "} %lld\n", (long long)value(r, k));
        }
    }
}
