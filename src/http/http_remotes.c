/* The remotes in the status JSON and the metrics (http_internal.h's http_remotes_*): each one's
 * name, kind and URL to a client that may see URLs, its counters (remotes.h) to any. A stranger
 * gets the counters and the kind: a name and a URL are the lab's layout, null for it in the
 * status, its place in the list ("1", "2"...) in the metrics' label, as a registry's. */
#include "http/http_internal.h"
#include "remote/remotes.h"
#include "base/buf.h"

#include <jansson.h>

/* What each counter counts (the metric's HELP), in remotes.h's order: remote_counter_name(k) is
 * its word, arca_remote_<word>_total. */
static const char *const help[REMOTE_COUNTERS] = {
    "Requests of the remote's paths, whatever their answer.",
    "Answers (2xx) from the store, upstream not asked.",
    "Body bytes of the remote's 2xx answers.",
    "Answers (2xx) renewed by a 304 to a conditional request.",
    "Answers (2xx) from an expired copy (upstream down or slow).",
};

static int64_t value(const struct remote *r, int k)
{
    return atomic_load(remote_counter(r->counters, k));
}

void http_remotes_status(json_t *o, bool named)
{
    json_t *list = json_array();
    for (int i = 0; list && i < remotes_count(); i++) {
        const struct remote *r = remotes_at(i);
        json_t *e = json_pack("{s:s?, s:s, s:s?}", "name", named ? r->name : NULL, "kind",
                              config_remote_kind_name(r->kind), "url", named ? r->url : NULL);
        if (!e)
            continue;
        for (int k = 0; k < REMOTE_COUNTERS; k++)
            json_object_set_new(e, remote_counter_name(k), json_integer(value(r, k)));
        json_array_append_new(list, e);
    }
    if (list)
        json_object_set_new(o, "remotes", list);
}

void http_remotes_metrics(struct buf *b, bool named)
{
    if (remotes_count() == 0)
        return;
    for (int k = 0; k < REMOTE_COUNTERS; k++) {
        const char *word = remote_counter_name(k);
        buf_addf(b, "# HELP arca_remote_%s_total %s\n# TYPE arca_remote_%s_total counter\n", word,
                 help[k], word);
        for (int i = 0; i < remotes_count(); i++) {
            buf_addf(b, "arca_remote_%s_total{remote=", word);
            if (named)
                buf_label(b, remotes_at(i)->name);
            else
                buf_addf(b, "\"%d\"", i + 1);
            buf_addf(b, "} %lld\n", (long long)value(remotes_at(i), k));
        }
    }
}
