/* The registries in the status JSON and the metrics (http_internal.h's http_registries_*): each
 * one's name and URL to a client that may see URLs, whether it is the default and has a login,
 * its counters (registries.h). A stranger gets the counters: a name is the lab's layout (the
 * namespace clients use, usually the registry's host), null for it in the status, its place in
 * the list ("1", "2"...) in the metrics' label, as a parent's. Never a password or a token. */
#include "http/http_internal.h"
#include "registry/registries.h"
#include "base/buf.h"

#include <jansson.h>
#include <stddef.h>

/* One counter of struct registry_counters, as the status and the metrics name it. */
struct counter {
    const char *key;  /* the status JSON's */
    const char *help; /* the metric's, arca_registry_<key>_total */
    size_t offset;
};

#define COUNTER(f, help)                                                                           \
    {                                                                                              \
#f, help, offsetof(struct registry_counters, f)                                            \
    }
static const struct counter counters[] = {
    COUNTER(pulls, "Manifests and blobs answered (2xx) through a registry's mirror."),
    COUNTER(hits, "Of them, answered from the store."),
    COUNTER(bytes, "Body bytes of manifests and blobs sent to clients."),
    COUNTER(revalidated, "Tags asked again upstream with a HEAD."),
    COUNTER(stale, "Tags answered from an expired manifest."),
    COUNTER(refused, "Upstream refusals (a 4xx but 404, a 5xx)."),
    /* "throttled": the word the status and the metrics use for a 429 */
    {"throttled", "Of them, 429 Too Many Requests.", offsetof(struct registry_counters, too_many)},
    COUNTER(tokens, "Tokens fetched from the registry's realm."),
};
#define N_COUNTERS (sizeof(counters) / sizeof(counters[0]))

static int64_t value(const struct registry *r, const struct counter *c)
{
    return atomic_load((atomic_int_fast64_t *)((char *)r->counters + c->offset));
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
        for (size_t k = 0; k < N_COUNTERS; k++)
            json_object_set_new(e, counters[k].key, json_integer(value(r, &counters[k])));
        json_array_append_new(list, e);
    }
    if (list)
        json_object_set_new(o, "registries", list);
}

void http_registries_metrics(struct buf *b, bool named)
{
    for (size_t k = 0; k < N_COUNTERS; k++) {
        buf_addf(b, "# HELP arca_registry_%s_total %s\n# TYPE arca_registry_%s_total counter\n",
                 counters[k].key, counters[k].help, counters[k].key);
        for (int i = 0; i < registries_count(); i++) {
            const struct registry *r = registries_at(i);
            buf_addf(b, "arca_registry_%s_total{registry=", counters[k].key);
            if (named)
                buf_label(b, r->name);
            else
                buf_addf(b, "\"%d\"", i + 1);
            buf_addf(b, "} %lld\n", (long long)value(r, &counters[k]));
        }
    }
}
