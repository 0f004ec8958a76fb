/* GET /api/v1/resources/?state=&page=&order=: one page of a listing, as JSON. With ?url=, the
 * outcome of that URL's download instead, and DELETE ?url= purges it (the admin API's,
 * http_admin.c). */
#include "http/http_internal.h"
#include "http/resources.h"

#include <assert.h>
#include <jansson.h>
#include <string.h>
#include <time.h>

static json_t *resource_json(const struct resource *r, enum list_state state)
{
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:i}", "url", r->url, "key", r->key,
                  "content_type", r->content_type, "downloaded", (json_int_t)r->have, "usage",
                  (json_int_t)r->usage, "ttl", (json_int_t)r->ttl, "status_code", r->status);
    if (!o)
        return NULL;
    json_object_set_new(o, "content_length",
                        r->length >= 0 ? json_integer(r->length) : json_null());
    json_object_set_new(o, "created_at", http_json_time(r->created));
    json_object_set_new(o, "last_usage", http_json_time(r->last_use));
    if (state == LIST_FAILURES)
        json_object_set_new(o, "error", json_string(r->error));
    /* an expired copy, kept: until when it may answer while upstream fails (null: never) */
    if (state == LIST_SUCCESSES && r->expired)
        json_object_set_new(o, "stale_until", http_json_time(r->stale_until));
    /* a download waiting for a slot: the limit it waits for (null: none, it is being opened) */
    if (state == LIST_SCHEDULED)
        json_object_set_new(o, "waiting_for",
                            r->waiting_for ? json_string(r->waiting_for) : json_null());
    if (state == LIST_DOWNLOADING) {
        json_object_set_new(o, "rate", json_integer(r->rate));
        json_object_set_new(o, "connections", json_integer(r->connections));
    }
    return o;
}

static json_t *listing_json(const struct resources_query *q, const struct listing *l)
{
    json_t *rows = json_array(), *counts = json_object();
    for (int i = 0; i < l->n; i++)
        json_array_append_new(rows, resource_json(&l->rows[i], q->state));
    for (int s = 0; s < LIST_STATES; s++)
        json_object_set_new(counts, resource_state_names[s], json_integer(l->counts[s]));
    return json_pack("{s:s, s:s, s:I, s:I, s:i, s:I, s:o, s:o}", "state",
                     resource_state_names[q->state], "order", q->order_text, "page",
                     (json_int_t)q->page, "pages", (json_int_t)resources_pages(l->total),
                     "per_page", RESOURCES_PER_PAGE, "count", (json_int_t)l->total, "counts",
                     counts, "resources", rows);
}

/* The listing is KissCache's, asked by its clients: parameters it does not know are let be.
 * With url=, the admin API's outcome, whose query is read strictly (http_outcome). */
static enum conn_result resources_json(struct conn *c, const char *query)
{
    struct resources_query q;
    struct listing l;
    struct sockaddr_storage addr;
    const char *why;
    unsigned int status;
    char *text;
    json_t *o;
    enum conn_result ret;

    if (conn_query(c, "url"))
        return http_outcome(c, query);
    if (!http_may_list(c, &ret))
        return ret;
    if (resources_parse(conn_query(c, "state"), conn_query(c, "order"), conn_query(c, "page"), &q,
                        &why) < 0)
        return http_send_error(c, HTTP_BAD_REQUEST, "%s", why);
    if (resources_fetch(&q, http_client(c, &addr), &l, &status, &why) < 0)
        return http_send_error(c, status, "%s", why);
    o = listing_json(&q, &l);
    listing_free(&l);
    text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return http_send_private(c, HTTP_OK, "application/json", text, text ? strlen(text) : 0);
}

enum conn_result http_resources_api(struct conn *c, struct request *req, const char *rest)
{
    const char *query = strchr(req->uri, '?');
    (void)rest;
    assert(http_handling(c, req));
    query = query ? query + 1 : "";
    if (!strcmp(req->method, "DELETE")) { /* its purge's state: http_purge_url's */
        enum conn_result ret;
        char *url = req->state ? NULL : http_admin_url_key(c, query, NULL, &ret);
        return req->state || url ? http_purge_url(c, req, url) : ret;
    }
    engine_settle(); /* a request its client saw end is counted (engine.h) */
    return resources_json(c, query);
}
