/* POST /api/v1/prefetch/: an admin's URLs through the fetch course (prefetch.h). */
#include "fetch/prefetch.h"
#include "fetch/fetch_req.h"
#include "base/parse.h"
#include "log/log.h"
#include "stats/stats.h"
#include "url/url.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* What the lookup of a URL under its terms came to: a download started (handed to upstream)
 * or joined, or a copy on disk. */
static const char *look_up(const char *url, const char *key, const struct signature *sig,
                           const struct fetch_terms *terms, const char **error)
{
    struct object *obj;
    struct object_meta meta;
    int fd;
    /* a signed URL's object is a capability's, as when a client fetches it: marked so */
    enum lookup_result kind = store_lookup_as(key, &terms->object, AUTH_CONFIRMED, sig->is_signed,
                                              &obj, &fd, NULL, &meta);
    if (kind == LOOKUP_NEGATIVE) { /* upstream's 404 or 410, kept: it would say the same */
        *error = "upstream answered 404 or 410 (kept: --negative-ttl or the rule's negative-ttl)";
        return "error";
    }
    if (kind == LOOKUP_HIT || kind == LOOKUP_UNAVAILABLE) {
        if (fd >= 0)
            close(fd);
        return "cached";
    }
    if (!obj) {
        *error = "out of memory";
        return "error";
    }
    if (kind == LOOKUP_MISS) /* the download takes its own reference; ours goes below */
        fetch_start_download(obj, url, sig, NULL, NULL, NULL, terms);
    store_release(obj);
    return kind == LOOKUP_MISS ? "started" : "downloading";
}

/* Start the download of one URL unless it is cached or on its way; says which. */
static const char *prefetch_one(const char *given, int64_t ttl, const char **error)
{
    struct signature sig;
    struct fetch_terms terms;
    const char *result = "error";
    char *url = http_admin_url(given, error);
    const char *key = url ? fetch_key(url, &sig) : NULL;

    if (!key) {
        if (url)
            *error = "out of memory";
        goto out;
    }
    terms_decide(http_cfg, &(struct request_facts){.url = url, .key = key, .client_ttl = ttl},
                 &terms);
    if (!terms.object.store) /* it would be downloaded and dropped at once */
        *error = "not prefetched: its rule says store = no";
    else
        result = look_up(url, key, &sig, &terms, error);
out:
    if (key != url)
        free((char *)key);
    free(url);
    return result;
}

/* The body: ["URL", ...] or {"urls": ["URL", ...], "ttl": "1d"} (*ttl 0: none given). */
static int parse_prefetch(const struct buf *body, json_t **root, json_t **urls, int64_t *ttl,
                          char *why, size_t whylen)
{
    json_error_t jerr;
    json_t *t;
    *ttl = 0;
    *root = json_loadb(body->data ? body->data : "", body->len, 0, &jerr);
    *urls = json_is_object(*root) ? json_object_get(*root, "urls") : *root;
    t = json_is_object(*root) ? json_object_get(*root, "ttl") : NULL;
    if (json_is_null(t))
        t = NULL;
    if (!*root)
        snprintf(why, whylen, "body is not JSON: %s (line %d)", jerr.text, jerr.line);
    else if (!json_is_array(*urls) || json_array_size(*urls) == 0)
        snprintf(why, whylen,
                 "expected a JSON list of URLs, or {\"urls\": [...], \"ttl\": \"1d\"}");
    else if (t && (!json_is_string(t) || parse_ttl(json_string_value(t), ttl) < 0))
        snprintf(why, whylen, "bad ttl: expected <int>d|h|m|s, positive");
    else
        return 0;
    return -1;
}

static json_t *one_result(json_t *u, int64_t ttl)
{
    const char *error = NULL, *url = json_is_string(u) ? json_string_value(u) : NULL;
    const char *result = url ? prefetch_one(url, ttl, &error) : "error";
    char *shown = url ? url_shown(url) : NULL;
    json_t *item = json_pack("{s:s?, s:s}", "url", shown, "result", result);
    free(shown);
    if (!url)
        error = "not a string";
    if (error && item)
        json_object_set_new(item, "error", json_string(error));
    return item;
}

enum conn_result fetch_prefetch(struct conn *c, struct request *req, const char *rest)
{
    enum conn_result ret;
    json_t *root, *urls, *results, *u;
    int64_t ttl;
    char why[256];
    size_t i;
    bool too_big;
    const struct buf *body = http_prefetch_body(req, &too_big);

    (void)rest;
    if (too_big) {
        atomic_fetch_add(&stats.limited, 1);
        return http_send_error(c, HTTP_CONTENT_TOO_LARGE, "body larger than %d bytes",
                               HTTP_PREFETCH_BODY_MAX);
    }
    if (http_admin_authorize(c, &ret) < 0)
        return ret;
    if (parse_prefetch(body, &root, &urls, &ttl, why, sizeof(why)) < 0) {
        json_decref(root);
        return http_send_error(c, HTTP_BAD_REQUEST, "%s", why);
    }
    results = json_array();
    json_array_foreach(urls, i, u) json_array_append_new(results, one_result(u, ttl));
    json_decref(root);
    log_info("admin: prefetch of %zu URL(s)", json_array_size(results));
    return http_send_json(c, HTTP_ACCEPTED, json_pack("{s:o}", "results", results));
}
