/* Admin API: POST /api/v1/prefetch/, GET /api/v1/resources/?url= (a download's outcome) and
 * DELETE /api/v1/resources/?url=, behind a bearer token read from --admin-token-file. Without a
 * token configured they answer 403: the API is off. */
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

/* What a purge of `url` came to (store_purge's result). */
static enum conn_result purge_answer(struct conn *c, const char *url, int rc, int64_t length)
{
    enum conn_result ret;
    if (rc == 0)
        return http_send_error(c, HTTP_NOT_FOUND, "not cached");
    if (rc == -1)
        return http_send_error(c, HTTP_CONFLICT,
                               "still downloading: purge it once the download ended");
    if (rc < 0)
        return http_send_error(c, HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    char *shown = url_shown(url);
    log_info("admin: purged %s", url);
    ret = http_send_json(
        c, HTTP_OK,
        json_pack("{s:s?, s:b, s:I}", "url", shown, "purged", 1, "bytes", (json_int_t)length));
    free(shown);
    return ret;
}

/* The cache key of ?url= for purge and the outcome, keyed as prefetch keys it, behind the token
 * (malloc'd; the URL as given in *given when asked). NULL when the answer was queued into *ret. */
static char *admin_url(struct conn *c, const char **given, enum conn_result *ret)
{
    const char *url_arg = conn_query(c, "url"), *why;
    struct signature sig;
    char *url;

    if (http_admin_authorize(c, ret) < 0)
        return NULL;
    if (!url_arg || !*url_arg) {
        *ret = http_send_error(c, HTTP_BAD_REQUEST, "missing url parameter");
        return NULL;
    }
    if (!(url = http_admin_url(url_arg, &why))) {
        *ret = http_send_error(c, HTTP_BAD_REQUEST, "%s", why);
        return NULL;
    }
    keys_cache_url(http_cfg, url, url, strlen(url) + 1, &sig); /* the key: never longer */
    if (given)
        *given = url_arg;
    return url;
}

enum conn_result http_purge(struct conn *c)
{
    enum conn_result ret;
    int64_t length = 0;
    char *url = admin_url(c, NULL, &ret);
    int rc;

    if (!url)
        return ret;
    rc = store_purge(url, &length);
    ret = purge_answer(c, url, rc, length);
    free(url);
    return ret;
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

enum conn_result http_outcome(struct conn *c)
{
    const char *given;
    enum conn_result ret;
    struct outcome o;
    char *url = admin_url(c, &given, &ret);

    if (!url)
        return ret;
    store_outcome(url, &o);
    free(url);
    return http_send_json(c, HTTP_OK, outcome_json(given, &o));
}

/* A client= parameter's value, decoded as any query argument (url_unescape_arg), into
 * out[size] (cut when too long: then no address). */
static void client_value(const char *v, size_t len, char *out, size_t size)
{
    snprintf(out, size, "%.*s", (int)len, v);
    url_unescape_arg(out);
}

/* The query without its client= parameters into out (as long as it), the last one's value
 * into client (decoded; "" when none): the rest is read as the fetch endpoint reads its query,
 * the url percent-encoded or unencoded as the last parameter, whole but for a trailing
 * &client=ADDR, the one client= an unencoded url leaves out of itself. Whether one was given. */
static bool without_client(const char *q, char *out, char *client, size_t size)
{
    char *w = out;
    bool given = false;
    client[0] = '\0';
    while (*q) {
        size_t n = strcspn(q, "&"), whole = 0;
        bool raw = !strncmp(q, "url=", 4) &&
                   (!strncasecmp(q + 4, "http://", 7) || !strncasecmp(q + 4, "https://", 8));
        const char *amp;
        if (raw) { /* to the end, but for a trailing client= parameter */
            whole = n = strlen(q);
            if ((amp = memrchr(q, '&', n)) && !strncmp(amp + 1, "client=", 7))
                n = (size_t)(amp - q);
        }
        if (!strncmp(q, "client=", 7)) {
            given = true;
            client_value(q + 7, n - 7, client, size);
        } else {
            if (w != out)
                *w++ = '&';
            memcpy(w, q, n);
            w += n;
        }
        if (raw) {
            if (n < whole) {
                given = true;
                client_value(q + n + 8, whole - n - 8, client, size);
            }
            break;
        }
        q += n + (q[n] == '&');
    }
    *w = '\0';
    return given;
}

/* GET /api/v1/rules/?url=URL[&client=ADDR] (admin token): the terms arca decides for
 * the URL, each with where it came from (rules/explain.h: what `arca rules test` prints), asked
 * of the rules in force. The url is read as /api/v1/fetch/ reads it, so a fetch URL's query,
 * pasted, asks about that URL. */
enum conn_result http_rules(struct conn *c, struct request *req, const char *rest)
{
    const char *query = strchr(req->uri, '?'), *why;
    char addr[192]; /* an IPv6 address with every ':' escaped fits */
    struct sockaddr_storage client;
    struct fetch_params p;
    enum conn_result ret = CONN_CLOSE;
    char err[CONFIG_ERR_LEN];
    json_t *answer = NULL;
    int status;

    (void)rest;
    if (http_admin_authorize(c, &ret) < 0)
        return ret;
    query = query ? query + 1 : "";
    p.url_size = URL_BUF_SIZE(strlen(query));
    if (!(p.url = malloc(p.url_size + strlen(query) + 1)))
        return http_send_error(c, HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    char *rest_of_query = p.url + p.url_size; /* past the url's room */
    bool given = without_client(query, rest_of_query, addr, sizeof(addr));
    if (url_parse_fetch_query(rest_of_query, (size_t)http_cfg->max_url_len, &p, &status, &why) < 0)
        ret = http_send_error(c, (unsigned int)status, "%s", why);
    else if (p.has_ttl || p.has_sha256)
        ret = http_send_error(c, HTTP_BAD_REQUEST, "the rules test takes url and client only");
    else if (given && parse_ip_address(addr, &client) < 0)
        ret = http_send_error(c, HTTP_BAD_REQUEST, "bad client: expected an IPv4 or IPv6 address");
    else if (!(answer =
                   rules_explain(http_cfg, p.url, given ? (struct sockaddr *)&client : NULL, err)))
        ret = http_send_error(c, HTTP_BAD_REQUEST, "%s", err);
    else
        ret = http_send_json(c, HTTP_OK, answer);
    free(p.url);
    return ret;
}
