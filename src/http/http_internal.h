/*
 * http_internal.h — what route handlers (http/, fetch/, web/) use of the server (http.c): the
 * request, the responses, the client's address; and the handlers http/ itself offers to the route
 * table.
 *
 * Contract: the handlers and the helpers that queue an answer run on the engine's worker
 * threads, in the call for their request (http_handling() says so). A response not yet queued
 * may be built on any thread (http_owned_response, http_error_response). What every answer of a
 * request carries, its status, Via for a proxied one and Connection: close while draining, the
 * engine keeps and adds (engine.h): no helper here changes an answer behind its builder's back.
 * http_on_pool and http_cfg are read anywhere, engine_draining() too. http.c calls no handler by
 * name: the table given to http_start() does.
 */
#ifndef ARCA_HTTP_INTERNAL_H
#define ARCA_HTTP_INTERNAL_H

#include "base/buf.h"
#include "config/config.h"
#include "http/request.h"

#include "engine/handler.h"
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

extern const struct config *http_cfg;

/* Queue `r` and drop our reference to it (NULL: CONN_CLOSE, the connection is closed). */
enum conn_result http_queue(struct conn *c, unsigned int status, struct answer *r);

/* Queue a small text response; http_send_error's body is one line, the reason. */
enum conn_result http_send_text(struct conn *c, unsigned int status, const char *type,
                                const char *body);
/* A response owning `body` (freed with it, or at once on failure: NULL), its type set. */
struct answer *http_owned_response(const char *type, char *body, size_t len);
/* The same, queued; `body` NULL (out of memory while building it) answers 500. */
enum conn_result http_send_owned(struct conn *c, unsigned int status, const char *type, char *body,
                                 size_t len);
/* http_send_owned for an answer that differs by client (a listing filtered by the rules, the
 * parents shown to some clients only): it says Cache-Control private, so that a shared cache in
 * front (a --trusted-proxy) never gives one client's answer to another. */
enum conn_result http_send_private(struct conn *c, unsigned int status, const char *type,
                                   char *body, size_t len);
/* Queue a response whose reference the caller keeps (a shared, prepared answer). */
enum conn_result http_queue_shared(struct conn *c, unsigned int status, struct answer *r);
enum conn_result http_send_error(struct conn *c, unsigned int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The same one-line body as a response not yet queued, for callers adding headers. */
struct answer *http_error_response(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A proxied request whose target turned out to name arca itself: routed from now on by its
 * path, as an origin-form request is (its uri becomes its path and query). */
enum conn_result http_route_as_origin(struct conn *c, struct request *req);

/* Whether this thread is one of the engine's workers (handlers, body readers). */
bool http_on_pool(void);
/* Whether this thread is `c`'s worker and `req` the request the engine is handling on `c`. */
bool http_handling(struct conn *c, const struct request *req);
/* Whether `req` was asked with HEAD. */
bool http_is_head(const struct request *req);

/* Route handlers of http/ (struct route): health, status and metrics (http_info.c), the
 * resources' JSON, a download's outcome and purge (http_resources.c, http_admin.c), prefetch's
 * body (http_admin.c: taken by http_prefetch_upload and let go by http_prefetch_done; its
 * handler is fetch/prefetch.h's), the rules test (http_admin.c). The
 * fetch endpoint's and the proxy's are in fetch/ (fetch.h, proxy.h). */
enum conn_result http_health(struct conn *c, struct request *req, const char *rest);
enum conn_result http_status(struct conn *c, struct request *req, const char *rest);
enum conn_result http_metrics(struct conn *c, struct request *req, const char *rest);
/* GET|HEAD /api/v1/resources/?state=&page=&order= (KissCache's states and orders), or with
 * ?url= a download's outcome (admin token); DELETE /api/v1/resources/?url= purges. */
enum conn_result http_resources_api(struct conn *c, struct request *req, const char *rest);
/* GET /api/v1/rules/?url=URL[&client=ADDR] (admin token): rules/explain.h's answer. */
enum conn_result http_rules(struct conn *c, struct request *req, const char *rest);
/* The largest prefetch list taken (its route's body_max); a chunked one beyond it gets 413. */
#define HTTP_PREFETCH_BODY_MAX (1024 * 1024)
void http_prefetch_upload(struct request *req, const char *data, size_t size);
/* The body taken so far (empty when none came); *too_big: it went past the limit. The route's
 * handler is fetch/prefetch.c's: a prefetch takes the fetch course. */
const struct buf *http_prefetch_body(struct request *req, bool *too_big);
/* 0 when the request carries the admin token; otherwise the answer was queued into *ret. */
int http_admin_authorize(struct conn *c, enum conn_result *ret);
/* The normal form of a URL an admin gave (url.h); NULL with *why set. The caller frees it. */
char *http_admin_url(const char *url, const char **why);
/* The URL parameter `name` ("url" or "prefix") of a query read by url_read_query, as given
 * (decoded when it was percent-encoded), into a string the caller frees; NULL with *why set
 * (missing, or out of memory: *status 400; longer than --max-url-length: 414, a fetch's). */
struct query_args;
char *http_query_url(const struct query_args *a, const char *name, int *status, const char **why);
/* `o` (taken over; NULL: out of memory) as the JSON answer. */
struct json_t;
enum conn_result http_send_json(struct conn *c, unsigned int status, struct json_t *o);
/* At the head: false (a 401 or 403 queued) unless the request carries the admin token. */
bool http_prefetch_admit(struct conn *c);
const char *http_prefetch_done(struct request *req, bool completed);

/* The request's client: the connection's peer, or behind a --trusted-proxy the address its
 * X-Forwarded-For names (policy_forwarded_client, given the last 16 lines); `buf` may hold it.
 * NULL when unknown (an entry there is not an address): such a client may not fetch or list,
 * and the access log shows "-". */
const struct sockaddr *http_client(struct conn *c, struct sockaddr_storage *buf);
/* NULL when that client may fetch (--allow-network); else why not, for the 403's reason. */
const char *http_fetch_refusal(struct conn *c);
/* The same for a client http_client gave (NULL: unknown). */
const char *http_client_refusal(const struct sockaddr *client);
/* Why `client` (http_client's) is refused before anything of its request is read, or NULL: it is
 * outside --allow-network and no rule could let it in (or it is unknown). It learns nothing of
 * how arca reads a URL or a path (the fetch API's query, a remote's path). *option_refuses (when
 * not NULL): whether --allow-network refuses it, a rule letting it in or not. */
const char *http_refused_outright(const struct sockaddr *client, bool *option_refuses);

/* Whether the client may see what arca caches: listings of URLs, the upstream hosts held down
 * (policy_ui_allowed). */
bool http_sees_urls(struct conn *c);
/* The same; if not, a 403 is queued into *ret. */
bool http_may_list(struct conn *c, enum conn_result *ret);

/* http_registries.c: the status JSON's "registries" and the
 * arca_registry_<counter>_total{registry="NAME"} families; a name and URL only when `named`
 * (the client may see URLs, http_sees_urls), else the counters alone. */
/* `t` (wall-clock seconds) as 2026-11-25T14:03:12Z, the one way the status and the listings
 * write a time (http.c); as a JSON string, null for none (t <= 0). */
void http_iso_time(int64_t t, char *out, size_t size);
struct json_t *http_json_time(int64_t t);
void http_registries_status(struct json_t *o, bool named);
void http_registries_metrics(struct buf *b, bool named);
/* http_remotes.c: the status JSON's "remotes" (a list: name, kind, url, counters) and the
 * arca_remote_<counter>_total{remote="NAME"} families, named as the registries' are. */
void http_remotes_status(struct json_t *o, bool named);
void http_remotes_metrics(struct buf *b, bool named);

/* Admin API (http_admin.c): bearer token from --admin-token-file. */
/* The cache key's URL of ?url= in `query` (after the '?') for purge and the outcome, keyed as
 * prefetch keys it, behind the token (malloc'd; the URL as given, decoded, in *given when
 * asked: the caller frees it). NULL when the answer was queued into *ret. */
char *http_admin_url_key(struct conn *c, const char *query, char **given, enum conn_result *ret);
/* POST /api/v1/purge/?prefix=URL[&all=1]: every object under the prefix (admin token), or with
 * ?image=REF an image's (images.h); and one URL's object (`url`, keyed, taken; NULL when
 * woken): each on a thread of its own while the request waits, answered once what went is on
 * disk (http_purge.c); done lets go of its state. */
enum conn_result http_purge_prefix(struct conn *c, struct request *req, const char *rest);
enum conn_result http_purge_url(struct conn *c, struct request *req, char *url);
const char *http_purge_done(struct request *req, bool completed);
/* GET /api/v1/images/[?page=N]: the images the store keeps, as JSON, on a thread of its own
 * while the request waits (http_images.c, images.h); done lets go of its state. */
enum conn_result http_images(struct conn *c, struct request *req, const char *rest);
const char *http_images_done(struct request *req, bool completed);
/* GET /api/v1/resources/?url=: the download's outcome, without fetching it (admin token). */
enum conn_result http_outcome(struct conn *c, const char *query);

#endif
