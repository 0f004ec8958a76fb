/* The proxy's route (proxy.h): a lookup first when only one can tell whether the target
 * is arca itself, then the fetch. */
#include "fetch/proxy.h"
#include "fetch/fetch.h"
#include "http/http_offload.h"
#include "http/proxy_target.h"
#include "rules/rules.h"
#include "base/parse.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#define SELF_CHECK_MAGIC 0x5e1fc4ecu

/* Whether the target's name is one of arca's: looked up off the worker. */
struct self_check {
    unsigned magic;
    struct offload job;
    bool https;
    bool self; /* the lookup's answer, read once the job is done */
    char authority[];
};

static struct self_check *check_of(struct offload *o)
{
    struct self_check *s = OFFLOAD_OWNER(o, struct self_check, job);
    assert(s->magic == SELF_CHECK_MAGIC);
    return s;
}

static void check_run(struct offload *o)
{
    struct self_check *s = check_of(o);
    s->self = proxy_names_self(s->authority, s->https, http_cfg);
}

static void check_free(struct offload *o)
{
    struct self_check *s = check_of(o);
    s->magic = 0;
    free(s);
}

static bool is_check(const struct request *req)
{
    return req->state && *(const unsigned *)req->state == SELF_CHECK_MAGIC;
}

/* Start the lookup (OFFLOAD_STARTED), or say why it cannot run. */
static enum offload_start start_check(struct conn *c, struct request *req)
{
    struct url_parts u; /* the URL as sent */
    enum offload_start started;
    parse_url(req->uri, strlen(req->uri), &u);
    struct self_check *s = u.scheme ? calloc(1, sizeof(*s) + u.authority_len + 1) : NULL;
    if (!s)
        return OFFLOAD_BUSY;
    s->magic = SELF_CHECK_MAGIC;
    s->https = url_scheme_is(&u, "https");
    memcpy(s->authority, u.authority, u.authority_len);
    offload_init(&s->job, c, check_run, check_free);
    req->state = s;
    if ((started = offload_start(&s->job, http_client(c, &req->client))) != OFFLOAD_STARTED) {
        req->state = NULL;
        offload_leave(&s->job);
    }
    return started;
}

/* The lookup's answer: arca itself (routed by its path), or not (fetched). */
static enum conn_result after_check(struct conn *c, struct request *req)
{
    struct self_check *s = req->state;
    bool self = s->self;
    req->state = NULL;
    req->ask_self = false;
    offload_leave(&s->job);
    return self ? http_route_as_origin(c, req) : fetch_proxied(c, req);
}

enum conn_result proxy_route(struct conn *c, struct request *req, const char *rest)
{
    (void)rest;
    assert(http_handling(c, req) && req->proxied);
    if (is_check(req)) {
        if (offload_done(&((struct self_check *)req->state)->job))
            return after_check(c, req);
        conn_suspend(c); /* not woken by the job (a stale wake-up): still waiting */
        return CONN_GO_ON;
    }
    if (req->ask_self && !req->state) {
        /* refused before a thread is spent on it, as any fetch: counted, logged REFUSED; unless
         * a rule names networks of its own (it may let the client in: checked like the rest) */
        if (http_fetch_refusal(c) && !rules_widen_any())
            return fetch_proxied(c, req);
        /* without the lookup arca could fetch its own URL and refuse it as arca's address */
        switch (start_check(c, req)) {
        case OFFLOAD_STARTED:
            return CONN_GO_ON;
        case OFFLOAD_CLIENT_BUSY:
            return http_send_error(c, HTTP_TOO_MANY_REQUESTS, "%s", OFFLOAD_CLIENT_BUSY_WHY);
        default:
            return http_send_error(c, HTTP_SERVICE_UNAVAILABLE, "%s", OFFLOAD_BUSY_WHY);
        }
    }
    return fetch_proxied(c, req);
}

const char *proxy_done(struct request *req, bool completed)
{
    if (is_check(req)) {
        struct self_check *s = req->state;
        req->state = NULL;
        offload_leave(&s->job);
        return NULL;
    }
    return fetch_done(req, completed);
}
