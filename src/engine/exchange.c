/* The request as the engine keeps it (engine_internal.h's struct exchange), from its head to
 * its answer: made from the parsed head, freed with what it holds, and read and filled through
 * handler.h's request side and engine.h's accessors. */
#include "engine/engine_internal.h"
#include "base/clock.h"
#include "url/url.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

void exchange_free(struct exchange *x)
{
    if (!x)
        return;
    answer_put(x->ans);
    free(x->out);
    free(x->block);
    if (x->tunnel_fd >= 0)
        close(x->tunnel_fd);
    tunnel_free(x->tunnel);
    free(x);
}

/* Bytes the head's strings need, and how many query arguments the target has. */
static size_t text_size(const struct h1_request *h, const char *buf, int *n_args)
{
    size_t size = 2u * h->target.len + h->method.len + 8;
    const char *q = memchr(buf + h->target.at, '?', h->target.len);
    *n_args = 0;
    if (q) {
        const char *end = buf + h->target.at + h->target.len;
        *n_args = 1;
        for (const char *p = q; p < end; p++)
            *n_args += *p == '&';
    }
    for (int i = 0; i < h->n_fields; i++)
        size += h->fields[i].name.len + h->fields[i].value.len + 2;
    return size + (size_t)(2 * h->n_fields + 2 * *n_args) * sizeof(char *);
}

static char *put(char **at, const char *s, size_t n)
{
    char *p = *at;
    memcpy(p, s, n);
    p[n] = '\0';
    *at += n + 1;
    return p;
}

/* The query's arguments, percent-decoded ('+' a space), as name=value pairs; one without '='
 * has no value (NULL). */
static void split_args(struct exchange *x, char *query)
{
    char *save = NULL;
    x->n_args = 0;
    for (char *a = strtok_r(query, "&", &save); a; a = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(a, '=');
        if (eq)
            *eq++ = '\0';
        url_unescape_arg(a);
        if (eq)
            url_unescape_arg(eq);
        x->arg_names[x->n_args] = a;
        x->arg_values[x->n_args] = eq;
        x->n_args++;
    }
}

/* An absolute-form target (RFC 9112 3.2.2: "http://host:port/path", sent to a proxy): its
 * authority apart, and the path after it ("/" when it has none), so that routes see the path as
 * an origin-form target would give it. The scheme is the target's (engine_target). */
static char *split_authority(struct exchange *x, char *path)
{
    size_t scheme = !strncasecmp(path, "http://", 7)    ? 7
                    : !strncasecmp(path, "https://", 8) ? 8
                                                        : 0;
    x->authority = NULL;
    if (!scheme)
        return path;
    char *host = path + scheme, *slash = strchr(host, '/');
    size_t len = slash ? (size_t)(slash - host) : strlen(host);
    /* the authority moves to the scheme's place, before it; the path stays or becomes "/" */
    memmove(path, host, len);
    path[len] = '\0';
    x->authority = path;
    if (!slash) {
        path[len + 1] = '/';
        path[len + 2] = '\0';
        return path + len + 1;
    }
    return slash;
}

/* The request as the handler sees it: every string of its head copied out of the read buffer,
 * NUL-terminated, so the buffer can be given back (or hold the next request) meanwhile. */
struct exchange *exchange_new(const struct h1_request *h, const char *buf, bool whole)
{
    int n_args = 0;
    size_t size = whole          ? text_size(h, buf, &n_args)
                  : h->have_line ? h->method.len + h->target.len + 2
                                 : 0;
    struct exchange *x = calloc(1, sizeof(*x) + size);
    char *at;
    if (!x)
        return NULL;
    x->tunnel_fd = -1;
    x->names = x->slots;
    x->values = x->names + (whole ? h->n_fields : 0);
    x->arg_names = x->values + (whole ? h->n_fields : 0);
    x->arg_values = x->arg_names + n_args;
    at = (char *)(x->arg_values + n_args);
    x->version = h->minor == 0 ? "HTTP/1.0" : "HTTP/1.1";
    if (!h->have_line) {
        x->method = x->target = x->path = "";
        return x;
    }
    x->method = put(&at, buf + h->method.at, h->method.len);
    x->target = put(&at, buf + h->target.at, h->target.len);
    if (!whole) {
        x->path = x->target;
        return x;
    }
    char *path = put(&at, buf + h->target.at, h->target.len);
    char *query = strchr(path, '?');
    if (query) {
        *query++ = '\0';
        split_args(x, query);
    }
    path = split_authority(x, path);
    url_unescape(path);
    x->path = path;
    x->n_fields = h->n_fields;
    for (int i = 0; i < h->n_fields; i++) {
        x->names[i] = put(&at, buf + h->fields[i].name.at, h->fields[i].name.len);
        x->values[i] = put(&at, buf + h->fields[i].value.at, h->fields[i].value.len);
    }
    return x;
}

/* handler.h, the request's side */

/* Whether field name `a` is `b`, case aside. The first letters are compared inline: most names
 * differ there, and a request's nine lookups over its fields were 4 % of a warm hit. */
static bool name_is(const char *a, const char *b)
{
    return (a[0] | 0x20) == (b[0] | 0x20) && !strcasecmp(a, b);
}

const char *conn_header(struct conn *c, const char *name)
{
    for (int i = 0; c->x && i < c->x->n_fields; i++)
        if (name_is(c->x->names[i], name))
            return c->x->values[i];
    return NULL;
}

void conn_each_header(struct conn *c, const char *name, void (*fn)(void *cls, const char *value),
                      void *cls)
{
    for (int i = 0; c->x && i < c->x->n_fields; i++)
        if (name_is(c->x->names[i], name))
            fn(cls, c->x->values[i]);
}

const char *conn_query(struct conn *c, const char *name)
{
    for (int i = 0; c->x && i < c->x->n_args; i++)
        if (!strcmp(c->x->arg_names[i], name))
            return c->x->arg_values[i];
    return NULL;
}

const struct sockaddr *conn_peer(struct conn *c)
{
    return c->peer.sa.sa_family ? &c->peer.sa : NULL;
}

void conn_suspend(struct conn *c)
{
    c->suspended = true;
}

void *engine_conn_ctx(struct conn *c)
{
    return c->ctx;
}

const char *engine_method(struct conn *c)
{
    return c->x ? c->x->method : "";
}

const char *engine_target(struct conn *c)
{
    return c->x ? c->x->target : "";
}

const char *engine_authority(struct conn *c)
{
    return c->x ? c->x->authority : NULL;
}

const char *engine_path(struct conn *c)
{
    return c->x ? c->x->path : "";
}

const char *engine_version(struct conn *c)
{
    return c->x ? c->x->version : "HTTP/1.1";
}

int64_t engine_body_size(struct conn *c)
{
    return c->x ? c->x->body_size : 0;
}

bool engine_keeps_alive(struct conn *c)
{
    return c->x && c->x->keep_alive;
}

uint64_t engine_body_sent(struct conn *c)
{
    return c->x ? c->x->body_sent : 0;
}

void engine_limit_body(struct conn *c, uint64_t max)
{
    if (c->x)
        c->x->body_max = max;
}

bool conn_tunnel(struct conn *c, int fd, struct token_bucket *cap)
{
    if (!c->x || c->x->tunnel_fd >= 0 || strcmp(c->x->method, "CONNECT"))
        return false;
    c->x->tunnel_fd = fd;
    c->x->tunnel_cap = cap;
    return true;
}

void *engine_request(struct conn *c)
{
    return c->x ? c->x->req : NULL;
}

unsigned int engine_status(struct conn *c)
{
    return c->x ? c->x->status : 0;
}

int64_t engine_answer_queued_us(struct conn *c)
{
    return c->x ? c->x->queued_us : 0;
}

uint64_t engine_answer_size(struct conn *c)
{
    const struct exchange *x = c->x;
    if (!x || !x->ans || x->ans->len == ANSWER_SIZE_UNKNOWN || x->status < 200 ||
        x->status == 204 || x->status == 304)
        return 0;
    return x->ans->len;
}

void engine_set_lines(struct conn *c, const char *lines)
{
    size_t len = lines ? strlen(lines) : 0;
    assert(!len || (len >= 2 && !strcmp(lines + len - 2, "\r\n")));
    if (c->x)
        c->x->lines = len ? lines : NULL;
}

bool engine_queue(struct conn *c, unsigned int status, struct answer *a)
{
    if (!c->x || c->x->ans)
        return false;
    answer_hold(a);
    c->x->ans = a;
    c->x->status = status;
    c->x->queued_us = monotonic_us();
    return true;
}
