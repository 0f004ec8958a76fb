/*
 * http_internal.h — what the route handlers (http_fetch.c, http_info.c, pages.c,
 * http_admin.c) share with http.c.
 */
#ifndef ARCA_HTTP_INTERNAL_H
#define ARCA_HTTP_INTERNAL_H

#include "buf.h"
#include "config.h"

#include <microhttpd.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

/* Largest request body taken (a prefetch list); beyond, 413. */
#define ADMIN_BODY_MAX (1024 * 1024)

/* One request, from its request line (on_uri) to its completion; its req_cls. */
struct request {
    int64_t start_us;               /* monotonic */
    time_t when;                    /* wall clock, for the access log */
    unsigned int status;            /* of the response queued; 0 while none */
    int64_t bytes;                  /* body bytes handed to the connection */
    bool seen;                      /* the first call (headers in) is done */
    bool is_fetch;                  /* /api/v1/fetch: the access log gives its cache result */
    bool body_too_big;              /* a POST body beyond ADMIN_BODY_MAX */
    void *route;                    /* http_fetch's own state, NULL until it has some */
    void *browse;                   /* http_browse's listing state, NULL until it has some */
    struct buf body;                /* a POST body */
    struct sockaddr_storage client; /* room for http_client()'s answer */
    char method[16];
    char version[16];
    char *referer, *agent; /* only while the access log is on */
    /* While its header is read (on_uri to the first call): its connection, and its place in the
     * thread's list of such requests (http_request_check.c); conn is NULL otherwise. */
    struct MHD_Connection *conn;
    struct request *reading_prev, *reading_next;
    char uri[]; /* as sent: path and query */
};

extern const struct config *http_cfg;
extern atomic_bool http_draining;

/* Queue `r` and drop our reference to it (NULL: MHD_NO, the connection is closed). */
enum MHD_Result http_queue(struct MHD_Connection *c, unsigned int status, struct MHD_Response *r);

/* Queue a small text response; http_send_error's body is one line, the reason. */
enum MHD_Result http_send_text(struct MHD_Connection *c, unsigned int status, const char *type,
                               const char *body);
/* A response owning `body` (freed with it, or at once on failure: NULL), its type set. */
struct MHD_Response *http_owned_response(const char *type, char *body, size_t len);
/* The same, queued; `body` NULL (out of memory while building it) answers 500. */
enum MHD_Result http_send_owned(struct MHD_Connection *c, unsigned int status, const char *type,
                                char *body, size_t len);
/* Record the body size of the response being built, for the access log. */
void http_note_body(size_t len);
/* Queue a response whose reference the caller keeps (a shared, prepared answer). */
enum MHD_Result http_queue_shared(struct MHD_Connection *c, unsigned int status,
                                  struct MHD_Response *r);
enum MHD_Result http_send_error(struct MHD_Connection *c, unsigned int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The same one-line body as a response not yet queued, for callers adding headers. */
struct MHD_Response *http_error_response(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/* /api/v1/fetch/[FILENAME]: the first call has req->route == NULL; later calls come after a
 * suspended connection was resumed. */
enum MHD_Result http_fetch(struct MHD_Connection *c, struct request *req, const char *filename,
                           bool head);
/* The same for a known object URL (taken over; its normal form), fetched signed for `auth`:
 * GET|HEAD /browse/NAME/KEY. */
struct bucket_auth;
enum MHD_Result http_fetch_object(struct MHD_Connection *c, struct request *req, char *url,
                                  const struct bucket_auth *auth, bool head);
/* GET|HEAD /browse/...: the buckets, a bucket's folder (HTML, or ?export=json), or a file
 * through the cache. */
enum MHD_Result http_browse(struct MHD_Connection *c, struct request *req, const char *path,
                            bool head);
/* S3 has no file at the /browse/ path asked for: a folder of that name is redirected to (302),
 * else 404. Called by http_fetch on S3's 404. */
enum MHD_Result http_browse_missing(struct MHD_Connection *c, struct request *req);
/* The request ended: what http_browse held is let go; returns the body bytes it streamed. */
int64_t http_browse_done(void *state);
/* The request ended: returns the body bytes sent and, in *cache, HIT, MISS or COALESCED, or CUT
 * when arca cut the body (failed download, sha256 mismatch). */
int64_t http_fetch_done(void *state, enum MHD_RequestTerminationCode toe, const char **cache);

enum MHD_Result http_health(struct MHD_Connection *c);
enum MHD_Result http_status(struct MHD_Connection *c);
enum MHD_Result http_metrics(struct MHD_Connection *c);
/* GET /api/v1/resources/?state=&page=&order= (KissCache's states and orders). */
enum MHD_Result http_resources_json(struct MHD_Connection *c);

/* The request's client: the connection's peer, or behind a --trusted-proxy the address its
 * X-Forwarded-For names (policy_forwarded_client, given the last 16 lines); `buf` may hold it.
 * NULL when unknown (an entry there is not an address): such a client may not fetch or list,
 * and the access log shows "-". */
const struct sockaddr *http_client(struct MHD_Connection *c, struct sockaddr_storage *buf);
/* NULL when that client may fetch (--allow-network); else why not, for the 403's reason. */
const char *http_fetch_refusal(struct MHD_Connection *c);

/* Whether the client may see listings of cached URLs (policy_ui_allowed); if not, a 403 is
 * queued into *ret. */
bool http_may_list(struct MHD_Connection *c, enum MHD_Result *ret);

/* A web page (pages.c): its head and navigation, `active` the section shown as current; then
 * the whole page as a response (NULL when out of memory), its Cache-Control left to the caller. */
void http_page_begin(struct buf *b, const char *title, const char *active);
struct MHD_Response *http_page_response(struct buf *b);

/* The web pages and their assets; false when `url` is none of them. */
bool http_page(struct MHD_Connection *c, const char *url, enum MHD_Result *ret);

/* Admin API (http_admin.c): bearer token from --admin-token-file. */
enum MHD_Result http_prefetch(struct MHD_Connection *c, const struct buf *body);
enum MHD_Result http_purge(struct MHD_Connection *c);
/* GET /api/v1/resources/?url=: the download's outcome, without fetching it (admin token). */
enum MHD_Result http_outcome(struct MHD_Connection *c);

#endif
