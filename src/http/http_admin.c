/* Admin API: POST /api/v1/prefetch/, GET /api/v1/resources/?url= (a download's outcome) and
 * DELETE /api/v1/resources/?url=, behind a bearer token read from --admin-token-file. Without a
 * token configured they answer 403: the API is off. Their queries are read as the fetch
 * endpoint reads its own (url_read_query): a parameter they do not take, or one given twice,
 * gets 400. */
#include "upstream/upstream.h"
#include "http/http_internal.h"
#include "stats/stats.h"
#include "rules/keys.h"
#include "rules/explain.h"
#include "log/log.h"
#include "base/parse.h"
#include "store/store.h"
#include "url/url.h"

#include <assert.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TOKEN_MAX 512
#define TOKEN_MIN 16
#define PREFETCH_MAGIC 0x7e1f3a09u

/* A prefetch request's body, as it comes (its request's state). */
struct prefetch_state {
    unsigned magic;
    bool too_big; /* beyond HTTP_PREFETCH_BODY_MAX: the request gets 413 */
    struct buf body;
};

static struct {
    pthread_mutex_t lock; /* SIGHUP replaces the token while requests read it */
    char value[TOKEN_MAX];
    size_t len; /* 0: admin API disabled */
} token = {.lock = PTHREAD_MUTEX_INITIALIZER};

int http_load_admin_token(const struct config *cfg, char *err, size_t errlen)
{
    char value[TOKEN_MAX];
    int len = 0;
    if (cfg->admin_token_file[0] &&
        (len = config_read_token(cfg->admin_token_file, value, sizeof(value))) < TOKEN_MIN) {
        /* A short token would be guessable: an admin who wrote one should hear of it at once. */
        if (len == -1)
            snprintf(err, errlen, "--admin-token-file %s: cannot read it: %s",
                     cfg->admin_token_file, strerror(errno));
        else
            snprintf(err, errlen, "--admin-token-file %s: %s (%d to %d characters)",
                     cfg->admin_token_file, len < 0 ? "token too long" : "token too short",
                     TOKEN_MIN, TOKEN_MAX - 1);
        return -1;
    }
    pthread_mutex_lock(&token.lock);
    memcpy(token.value, value, (size_t)len);
    token.len = (size_t)len;
    pthread_mutex_unlock(&token.lock);
    return 0;
}

/* 0 when the request carries the token; otherwise the answer was queued into *ret. */
int http_admin_authorize(struct conn *c, enum conn_result *ret)
{
    const char *auth = conn_header(c, "Authorization");
    const char *given = auth && !strncasecmp(auth, "Bearer ", 7) ? auth + 7 : NULL;
    bool enabled, match = false;
    struct answer *r;

    pthread_mutex_lock(&token.lock);
    enabled = token.len > 0;
    if (enabled && given && strlen(given) == token.len)
        match = CRYPTO_memcmp(given, token.value, token.len) == 0;
    pthread_mutex_unlock(&token.lock);
    if (match)
        return 0;
    if (!enabled) {
        *ret = http_send_error(c, HTTP_FORBIDDEN,
                               "admin API disabled: start arca with --admin-token-file");
        return -1;
    }
    r = http_error_response("%s", given ? "wrong admin token"
                                        : "admin API needs Authorization: Bearer <token>");
    if (r)
        answer_header(r, "WWW-Authenticate", "Bearer");
    *ret = http_queue(c, HTTP_UNAUTHORIZED, r);
    return -1;
}

enum conn_result http_send_json(struct conn *c, unsigned int status, json_t *o)
{
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return http_send_owned(c, status, "application/json", text, text ? strlen(text) : 0);
}

/* The normal form of a URL an admin gave (url.h), the store's key; NULL with *why set. The
 * caller frees it. */
char *http_admin_url(const char *url, const char **why)
{
    size_t len = strlen(url);
    char *out = NULL;
    int status;
    if (len == 0)
        *why = "missing url";
    else if (len > (size_t)http_cfg->max_url_len)
        *why = "url longer than --max-url-length";
    else if (!(out = malloc(URL_BUF_SIZE(len))))
        *why = "out of memory";
    else if (url_normalize(url, len, out, URL_BUF_SIZE(len), &status, why) < 0) {
        free(out);
        out = NULL;
    }
    return out;
}

static struct prefetch_state *prefetch_state(const struct request *req)
{
    struct prefetch_state *s = req->state;
    assert(!s || s->magic == PREFETCH_MAGIC);
    return s;
}

bool http_prefetch_admit(struct conn *c)
{
    enum conn_result ret;
    return http_admin_authorize(c, &ret) == 0;
}

/* The body, up to HTTP_PREFETCH_BODY_MAX bytes: the server hands it over in pieces. */
void http_prefetch_upload(struct request *req, const char *data, size_t size)
{
    struct prefetch_state *s = prefetch_state(req);
    assert(http_on_pool()); /* on_upload's: the engine's worker, in the request's body */
    if (!s) {
        if (!(s = calloc(1, sizeof(*s))))
            return; /* the body is short: it is refused as not JSON */
        s->magic = PREFETCH_MAGIC;
        req->state = s;
    }
    if (s->body.len + size > HTTP_PREFETCH_BODY_MAX)
        s->too_big = true;
    else
        buf_addn(&s->body, data, size);
}

const struct buf *http_prefetch_body(struct request *req, bool *too_big)
{
    static const struct buf none;
    const struct prefetch_state *s = prefetch_state(req);
    *too_big = s && s->too_big;
    return s ? &s->body : &none;
}

const char *http_prefetch_done(struct request *req, bool completed)
{
    struct prefetch_state *s = prefetch_state(req);
    (void)completed;
    if (s) {
        s->magic = 0;
        buf_free(&s->body);
        free(s);
        req->state = NULL;
    }
    return NULL;
}

char *http_query_url(const struct query_args *a, const char *name, int *status, const char **why)
{
    bool url = !strcmp(name, "url");
    char *text;
    *status = HTTP_BAD_REQUEST;
    if (!a->url || a->url_len == 0) {
        *why = url ? "missing url parameter" : "missing prefix parameter";
        return NULL;
    }
    if (a->url_len > (size_t)http_cfg->max_url_len) {
        *why = url ? "url longer than --max-url-length" : "prefix longer than --max-url-length";
        *status = HTTP_URI_TOO_LONG;
        return NULL;
    }
    if (!(text = malloc(a->url_len + 1)))
        *why = "out of memory";
    else
        url_query_value(a->url, a->url_len, a->url_raw, text, a->url_len + 1);
    return text;
}

/* ?url= alone, read as the fetch endpoint reads it: an unencoded URL runs to the query's end. */
static const struct query_rule url_alone = {
    "url",
    {NULL},
    "unknown parameter: /api/v1/resources/?url= takes url alone (percent-encode the whole "
    "target URL, or give it unencoded as the last parameter)"};

char *http_admin_url_key(struct conn *c, const char *query, char **given, enum conn_result *ret)
{
    const char *why;
    struct query_args a;
    struct signature sig;
    char *text = NULL, *url = NULL;
    int status;

    if (http_admin_authorize(c, ret) < 0)
        return NULL;
    if (url_read_query(query, &url_alone, &a, &status, &why) < 0 ||
        !(text = http_query_url(&a, "url", &status, &why)) || !(url = http_admin_url(text, &why))) {
        free(text);
        *ret = http_send_error(c, HTTP_BAD_REQUEST, "%s", why);
        return NULL;
    }
    keys_cache_url(http_cfg, url, url, strlen(url) + 1, &sig); /* the key: never longer */
    if (given)
        *given = text;
    else
        free(text);
    return url;
}

static const char *const outcome_names[] = {"absent", "scheduled", "downloading", "complete",
                                            "failed"};

/* The outcome as JSON: the URL as the admin gave it, redacted (never the key, which keeps a
 * signature under --exact-keys). */
static json_t *outcome_json(const char *given, const struct outcome *o)
{
    char *shown = url_shown(given);
    json_t *j = json_pack("{s:s?, s:s, s:I}", "url", shown, "state", outcome_names[o->state],
                          "downloaded", (json_int_t)o->have);
    free(shown);
    if (!j)
        return NULL;
    json_object_set_new(j, "content_length",
                        o->length >= 0 ? json_integer(o->length) : json_null());
    if (o->state == OUTCOME_FAILED) {
        json_object_set_new(j, "status_code", json_integer(o->status));
        json_object_set_new(j, "error", json_string(o->error));
    }
    return j;
}

enum conn_result http_outcome(struct conn *c, const char *query)
{
    char *given = NULL;
    enum conn_result ret;
    struct outcome o;
    char *url = http_admin_url_key(c, query, &given, &ret);

    if (!url)
        return ret;
    store_outcome(url, &o);
    free(url);
    ret = http_send_json(c, HTTP_OK, outcome_json(given, &o));
    free(given);
    return ret;
}

/* The rules test's query: a fetch URL's query pasted after it asks about that URL, so ttl and
 * sha256 are read as the fetch endpoint reads them, then refused. */
static const struct query_rule rules_query = {
    "url",
    {"client", "ttl", "sha256", NULL},
    "unknown parameter: the rules test takes url and client (percent-encode the whole target "
    "URL, or give it unencoded as the last parameter)"};

/* GET /api/v1/rules/?url=URL[&client=ADDR] (admin token): the terms arca decides for
 * the URL, each with where it came from (rules/explain.h: what `arca rules test` prints), asked
 * of the rules in force. */
enum conn_result http_rules(struct conn *c, struct request *req, const char *rest)
{
    const char *query = strchr(req->uri, '?'), *why;
    char addr[192]; /* an IPv6 address with every ':' escaped fits */
    struct sockaddr_storage client;
    struct query_args a;
    enum conn_result ret = CONN_CLOSE;
    char err[CONFIG_ERR_LEN], *text = NULL, *url = NULL;
    json_t *answer = NULL;
    int status;

    (void)rest;
    if (http_admin_authorize(c, &ret) < 0)
        return ret;
    if (url_read_query(query ? query + 1 : "", &rules_query, &a, &status, &why) < 0 ||
        !(text = http_query_url(&a, "url", &status, &why)))
        ret = http_send_error(c, (unsigned int)status, "%s", why); /* 414: as a fetch's */
    else if (!(url = http_admin_url(text, &why)))
        ret = http_send_error(c, HTTP_BAD_REQUEST, "%s", why);
    else if (a.value[1] || a.value[2])
        ret = http_send_error(c, HTTP_BAD_REQUEST, "the rules test takes url and client only");
    else if (a.value[0] && (!url_query_value(a.value[0], a.len[0], false, addr, sizeof(addr)) ||
                            parse_ip_address(addr, &client) < 0))
        ret = http_send_error(c, HTTP_BAD_REQUEST, "bad client: expected an IPv4 or IPv6 address");
    /* the URL as given: a remote's path is read before its dot segments go (remote_path.h) */
    else if (!(answer = rules_explain(http_cfg, text,
                                      a.value[0] ? (struct sockaddr *)&client : NULL, err)))
        ret = http_send_error(c, HTTP_BAD_REQUEST, "%s", err);
    else
        ret = http_send_json(c, HTTP_OK, answer);
    free(text);
    free(url);
    return ret;
}
