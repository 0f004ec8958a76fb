/* GET /api/v1/images/[?page=N]: the images the store keeps (images.h), as JSON, to a client
 * that may see cached URLs, each image one it may fetch. The listing walks the whole table and
 * reads every manifest's file: it runs on a thread of its own (http_offload.h) while the
 * request is parked, so the worker's other connections go on meanwhile. */
#include "http/http_internal.h"
#include "http/http_offload.h"
#include "http/images.h"
#include "base/parse.h"

#include <assert.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#define IMAGES_MAGIC 0x1a6e5a11u

struct images_req {
    unsigned magic;
    struct offload job;
    struct sockaddr_storage client; /* who asks: what it may see */
    bool known;                     /* http_client knew it */
    int64_t page;
    json_t *answer; /* the listing, or NULL with status and why */
    unsigned int status;
    const char *why;
};

static struct images_req *images_of(struct offload *o)
{
    struct images_req *q = OFFLOAD_OWNER(o, struct images_req, job);
    assert(q->magic == IMAGES_MAGIC);
    return q;
}

static void images_run(struct offload *o)
{
    struct images_req *q = images_of(o);
    q->answer = images_listing(q->known ? (const struct sockaddr *)&q->client : NULL, q->page,
                               &q->status, &q->why);
}

static void images_free(struct offload *o)
{
    struct images_req *q = images_of(o);
    json_decref(q->answer);
    q->magic = 0;
    free(q);
}

/* Woken: the listing, or still waiting (a stale wake-up). */
static enum conn_result woken(struct conn *c, struct images_req *q)
{
    assert(q->magic == IMAGES_MAGIC);
    if (!offload_done(&q->job)) {
        conn_suspend(c);
        return CONN_GO_ON;
    }
    if (!q->answer)
        return http_send_error(c, q->status, "%s", q->why);
    char *text = json_dumps(q->answer, JSON_COMPACT);
    return http_send_private(c, HTTP_OK, "application/json", text, text ? strlen(text) : 0);
}

/* The request's page (?page=N, from 1): 0, or -1 with the 400 queued into *ret. */
static int asked_page(struct conn *c, int64_t *page, enum conn_result *ret)
{
    const char *given = conn_query(c, "page");
    *page = 1;
    if (given && parse_page(given, page) < 0) {
        *ret = http_send_error(c, HTTP_BAD_REQUEST, "bad page: expected a number from 1");
        return -1;
    }
    return 0;
}

enum conn_result http_images(struct conn *c, struct request *req, const char *rest)
{
    enum conn_result ret;
    struct sockaddr_storage buf;
    int64_t page;
    (void)rest;
    assert(http_handling(c, req));
    if (req->state)
        return woken(c, req->state);
    if (!http_may_list(c, &ret) || asked_page(c, &page, &ret) < 0)
        return ret;
    struct images_req *q = calloc(1, sizeof(*q));
    if (!q)
        return http_send_error(c, HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    const struct sockaddr *client = http_client(c, &buf);
    q->magic = IMAGES_MAGIC;
    q->page = page;
    if ((q->known = client != NULL))
        memcpy(&q->client, client,
               client->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                             : sizeof(struct sockaddr_in));
    offload_init(&q->job, c, images_run, images_free);
    req->state = q;
    switch (offload_start(&q->job, client)) {
    case OFFLOAD_STARTED:
        return CONN_GO_ON;
    case OFFLOAD_CLIENT_BUSY:
        return http_send_error(c, HTTP_TOO_MANY_REQUESTS, OFFLOAD_CLIENT_BUSY_WHY);
    default:
        return http_send_error(c, HTTP_SERVICE_UNAVAILABLE, OFFLOAD_BUSY_WHY);
    }
}

const char *http_images_done(struct request *req, bool completed)
{
    struct images_req *q = req->state;
    (void)completed;
    req->state = NULL;
    if (q)
        offload_leave(&q->job); /* a listing still running holds q until it is done */
    return NULL;
}
