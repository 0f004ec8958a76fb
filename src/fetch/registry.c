/* The /v2 route (registry.h): a request is checked at the edge (method, client, the grammar,
 * which registry), its upstream URL made, a token made sure of (reg_auth.h, the request parked
 * meanwhile), then it takes the fetch course; every answer is dressed as a registry's. */
#include "fetch/registry.h"
#include "registry/reg_auth.h"
#include "registry/reg_name.h"
#include "registry/registries.h"
#include "fetch/fetch.h"
#include "http/proxy_target.h"
#include "base/clock.h"
#include "base/park.h"
#include "base/parse.h"
#include "rules/rules.h"
#include "rules/terms.h"

#include <assert.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REG_MAGIC 0x7e617c01u
/* The distribution spec's bound on a manifest a registry takes; a larger one is no image's. */
#define MANIFEST_MAX (4 << 20)
#define API_VERSION "registry/2.0"
/* "sha256:" and 64 hex digits, or a longer algorithm's, with its NUL */
#define DIGEST_TEXT 160
_Static_assert(REG_REF_MAX <= DIGEST_TEXT, "a path's digest fits a Docker-Content-Digest");

/* One /v2/ request, from its first call to its done. */
struct reg_req {
    unsigned magic;
    struct conn *conn;
    struct request *req;
    struct park park; /* waits for the authorisation; owns this */
    const struct registry *reg;
    struct reg_path path;
    const char *code; /* the error code a refusal of ours names (NULL: from the status) */
    char *url;        /* the upstream URL, until the fetch takes it over */
    struct fetch_req *fetch;
    bool waiting; /* the authorisation was asked: auth_done says it is in */
    atomic_bool auth_done;
    char lines[96 + DIGEST_TEXT]; /* registry_dress_shared's, until the request's done */
};

static struct reg_req *reg_of(struct park *p)
{
    struct reg_req *s = PARK_OWNER(p, struct reg_req, park);
    assert(s->magic == REG_MAGIC);
    return s;
}

static void suspend_conn(struct park *p)
{
    conn_suspend(reg_of(p)->conn);
}

static void resume_conn(struct park *p)
{
    conn_resume(reg_of(p)->conn);
}

static void reg_free(struct park *p)
{
    struct reg_req *s = reg_of(p);
    s->magic = 0;
    free(s->url);
    free(s);
}

/* --- answers as a registry gives them ------------------------------------------------------- */

/* A path as long as a namespace, a repository and a reference can make, with room to spare. */
#define RAW_MAX 1024

/* The path after "/v2/" as the client sent it (no query): the grammar is checked on it, so that
 * an encoded byte ('%' is in no part of it) is refused with the code of the part it is in, never
 * decoded into one that passes. -1: longer than any a client sends. */
static int raw_path(const struct request *req, char out[RAW_MAX])
{
    const char *p = req->uri + 3; /* the route's "/v2" */
    size_t len = strcspn(p, "?");
    if (len && *p == '/') { /* one: "/v2//x" names an empty component */
        p++;
        len--;
    }
    if (len >= RAW_MAX)
        return -1;
    memcpy(out, p, len);
    out[len] = '\0';
    return 0;
}

/* The path past a configured registry's name (or its URL's host[:port]) as its first component
 * (podman's namespace). */
static const char *past_namespace(const char *path, const struct registry **reg)
{
    size_t len = strcspn(path, "/");
    /* its NAME, or the host[:port] of its URL as an image reference writes it (registries.h) */
    *reg = path[len] == '/' ? registries_for_ns(path, len) : NULL;
    return *reg ? path + len + 1 : path;
}

/* What a request refused at its head had wrong: the code of the first part outside the grammar. */
static const char *path_code(const struct request *req)
{
    char path[RAW_MAX], why[8];
    const struct registry *reg;
    struct reg_path p;
    if (raw_path(req, path) < 0)
        return "NAME_INVALID";
    enum reg_error e = reg_path_parse(past_namespace(path, &reg), &p, why, sizeof(why));
    return e == REG_OK ? "NAME_INVALID" : reg_error_code(e);
}

/* The spec's code for an error status arca or upstream gave, where no refusal of ours named one;
 * a 400 at the head (an encoded '/' or NUL, before the handler ran) names the part it is in. */
static const char *code_of(const struct request *req, const struct reg_req *s, unsigned int status)
{
    if (s && s->code)
        return s->code;
    switch (status) {
    case HTTP_BAD_REQUEST:
        return s ? "NAME_INVALID" : path_code(req);
    case HTTP_UNAUTHORIZED:
    case HTTP_FORBIDDEN:
        return "DENIED";
    case HTTP_NOT_FOUND:
        return !s                             ? "NAME_UNKNOWN"
               : s->path.what == REG_MANIFEST ? "MANIFEST_UNKNOWN"
               : s->path.what == REG_BLOB     ? "BLOB_UNKNOWN"
                                              : "NAME_UNKNOWN";
    case HTTP_METHOD_NOT_ALLOWED:
        return "UNSUPPORTED";
    case HTTP_CONTENT_TOO_LARGE:
        return "SIZE_INVALID";
    case HTTP_RANGE_NOT_SATISFIABLE:
        return "RANGE_INVALID";
    case HTTP_TOO_MANY_REQUESTS:
        return "TOOMANYREQUESTS";
    default:
        return status >= 500 ? "UNAVAILABLE" : "UNKNOWN";
    }
}

/* Copy header `name` of `from` onto `to`, when it has one. */
static void keep_header(struct answer *to, struct answer *from, const char *name)
{
    char value[600];
    if (answer_header_value(from, name, value, sizeof(value)))
        answer_header(to, name, value);
}

/* arca's error answer `a` as the registry's JSON error, its one-line reason kept in Arca-Error
 * (and the message), what it said of the cache and of a held host kept too. */
static struct answer *error_answer(const struct request *req, const struct reg_req *s,
                                   unsigned int status, struct answer *a)
{
    char reason[600] = "";
    answer_header_value(a, "Arca-Error", reason, sizeof(reason));
    json_t *o = json_pack("{s:[{s:s,s:s,s:n}]}", "errors", "code", code_of(req, s, status),
                          "message", reason[0] ? reason : "error", "detail");
    char *body = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    struct answer *out = body ? http_owned_response("application/json", body, strlen(body)) : NULL;
    if (out) {
        static const char *const kept[] = {"Arca-Error", "Retry-After", "Cache-Status",
                                           "Allow",      "Connection",  "X-Content-Type-Options"};
        for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++)
            keep_header(out, a, kept[i]);
    }
    answer_put(a);
    return out;
}

/* Docker-Content-Digest of a manifest's or blob's 200, into out ("" when unknown): the digest
 * asked; for a tag the body's sha256 once known (its Repr-Digest), else upstream's, which a
 * registry gives as its ETag. Every warm hit asks it, so no printf: a tag's hex by
 * format_sha256_hex (the %02x loop was 7 % of a warm manifest hit's CPU). */
static void digest_of(const struct reg_req *s, const struct answer *a, char out[DIGEST_TEXT])
{
    char value[200];
    unsigned char raw[48];
    out[0] = '\0';
    if (!s || (s->path.what != REG_MANIFEST && s->path.what != REG_BLOB))
        return;
    if (s->path.by_digest) {
        memcpy(out, s->path.ref, strlen(s->path.ref) + 1);
        return;
    }
    if (answer_header_value(a, "Repr-Digest", value, sizeof(value)) &&
        !strncmp(value, "sha-256=:", 9) && strlen(value) == 9 + 44 + 1 &&
        EVP_DecodeBlock(raw, (const unsigned char *)value + 9, 44) == 33) {
        memcpy(out, "sha256:", 7);
        format_sha256_hex(raw, out + 7);
        return;
    }
    if (answer_header_value(a, "ETag", value, sizeof(value)) && !strncmp(value, "\"sha256:", 8) &&
        strlen(value) == 8 + 64 + 1)
        snprintf(out, DIGEST_TEXT, "%.71s", value + 1);
}

struct answer *registry_dress(struct request *req, unsigned int status, struct answer *a)
{
    const struct reg_req *s = req->state;
    char digest[DIGEST_TEXT];
    if (status >= 400)
        a = error_answer(req, s, status, a);
    if (!a)
        return NULL;
    answer_header(a, "Docker-Distribution-API-Version", API_VERSION);
    if (status < 400) {
        digest_of(s, a, digest);
        if (digest[0])
            answer_header(a, "Docker-Content-Digest", digest);
    }
    return a;
}

/* A hit's answer is the object's, prepared once and shared by every plain hit, the fetch API's
 * too: what a registry says besides goes out as this request's lines (put together by hand:
 * they are every warm hit's). */
const char *registry_dress_shared(struct request *req, const struct answer *a)
{
    static const char version[] = "Docker-Distribution-API-Version: " API_VERSION "\r\n",
                      name[] = "Docker-Content-Digest: ";
    struct reg_req *s = req->state;
    char digest[DIGEST_TEXT], *p = s->lines;
    assert(s && s->magic == REG_MAGIC);
    digest_of(s, a, digest);
    memcpy(p, version, sizeof(version) - 1);
    p += sizeof(version) - 1;
    size_t len = strlen(digest);
    if (len) { /* lines: room for both with DIGEST_TEXT's */
        memcpy(p, name, sizeof(name) - 1);
        p += sizeof(name) - 1;
        memcpy(p, digest, len);
        p += len;
        memcpy(p, "\r\n", 2);
        p += 2;
    }
    *p = '\0';
    return s->lines;
}

/* Our refusal, naming its code. */
static enum conn_result refuse(struct reg_req *s, unsigned int status, const char *code,
                               const char *why)
{
    s->code = code;
    return http_send_error(s->conn, status, "%s", why);
}

/* --- the request's course ------------------------------------------------------------------- */

/* Upstream thread: the authorisation is in, or failed; the request goes on once woken, whatever
 * came of it: what the store holds needs no login, and a download of what it lacks asks the
 * realm itself (its failure shared for a second: reg_auth.h), so the refusal is told as on every
 * other route. */
static void on_auth(int status, const char *why, void *arg)
{
    struct reg_req *s = arg;
    (void)status;
    (void)why;
    assert(s->magic == REG_MAGIC && !atomic_load(&s->auth_done));
    atomic_store(&s->auth_done, true);
    park_wake(&s->park);
    park_put(&s->park);
}

/* A refusal of the path's own (a registry not mirrored, a name outside the grammar). To a client
 * outside --allow-network, which the route reads when a rule could let it in, the 403 the fetch
 * course gives a mirrored registry's URL instead: which names arca mirrors is the lab's, and a
 * stranger reads them as null in the status. */
static enum conn_result refuse_path(struct reg_req *s, unsigned int status, const char *code,
                                    const char *why)
{
    const char *refusal = http_fetch_refusal(s->conn);
    return refusal ? refuse(s, HTTP_FORBIDDEN, "DENIED", refusal) : refuse(s, status, code, why);
}

/* The registry a path names: its namespace (a configured registry's name as its first
 * component), containerd's ?ns= (a NAME, or a configured URL's host[:port]), else the default.
 * *path moves past a namespace. NULL: a registry named that is not configured (a 404 queued into
 * *ret, refuse_path). */
static const struct registry *which_registry(struct reg_req *s, const char **path,
                                             enum conn_result *ret)
{
    const char *ns = conn_query(s->conn, "ns"), *p = *path;
    size_t len = strcspn(p, "/");
    const struct registry *reg;
    char why[200];
    if (ns) {
        if ((reg = registries_for_ns(ns, strlen(ns))))
            return reg;
    } else if ((*path = past_namespace(p, &reg)) != p) {
        return reg;
    } else if (p[len] != '/' ||
               /* a host's name (docker's reference grammar: a '.', a ':' or localhost) */
               (!memchr(p, '.', len) && !memchr(p, ':', len) && strncmp(p, "localhost/", 10))) {
        return registries_default();
    }
    snprintf(why, sizeof(why), "registry '%.*s' is not one arca mirrors (--registry NAME=URL)",
             ns ? (int)strnlen(ns, 128) : (int)(len < 128 ? len : 128), ns ? ns : p);
    *ret = refuse_path(s, HTTP_NOT_FOUND, "NAME_UNKNOWN", why);
    return NULL;
}

/* The upstream URL of what the path asks, into s->url: 0, or -1 out of memory. */
static int make_url(struct reg_req *s)
{
    const struct reg_path *p = &s->path;
    bool library = s->reg->docker_hub && !strchr(p->repo, '/');
    size_t size = strlen(s->reg->url) + strlen(p->repo) + strlen(p->ref) + 40;
    if (!(s->url = malloc(size)))
        return -1;
    snprintf(s->url, size, "%s/v2/%s%s/%s%s", s->reg->url, library ? "library/" : "", p->repo,
             p->what == REG_MANIFEST ? "manifests/"
             : p->what == REG_BLOB   ? "blobs/"
                                     : "tags/list",
             p->ref);
    return 0;
}

static enum conn_result fetch(struct reg_req *s);

/* Ask for the token of `scope` the upstream URL needs; the request is parked until it is in.
 * One the registry needs nothing more for (its challenge known, and a token of the scope kept
 * with its margin, or none needed) goes on at once: the ensure would find the same on the
 * upstream thread, and the hop there and back (two thread wake-ups, the connection suspended)
 * was a third of a warm manifest hit's CPU. */
static enum conn_result authorise(struct reg_req *s, const char *scope)
{
    struct reg_challenge c;
    if (reg_auth_need(s->reg, scope, monotonic_ms(), &c) == REG_NEED_NOTHING)
        return fetch(s);
    s->waiting = true;
    conn_suspend(s->conn);
    park_hold(&s->park); /* the authorisation's */
    if (reg_auth_ensure(NULL, s->reg, scope, on_auth, s) < 0) {
        park_put(&s->park);
        conn_resume(s->conn);
        return refuse(s, HTTP_INTERNAL_SERVER_ERROR, "UNAVAILABLE", "out of memory");
    }
    return CONN_GO_ON;
}

/* Whether a client may ask at all: as the fetch endpoint's, refused before its path is read
 * unless some rule could let it in. */
static const char *client_refusal(struct conn *c)
{
    const char *why = http_fetch_refusal(c);
    return why && !rules_widen_any() ? why : NULL;
}

/* Whether the client may fetch the upstream URL, decided as the fetch course decides it (a
 * rule's allow-network, else --allow-network). One it refuses goes to that refusal without the
 * token dance: a refused client must cost the lab nothing upstream, neither the registry's
 * ping nor the realm asked with the lab's login for a scope it names. *parent_only: the URL's
 * downloads and confirmations go to a parent arca alone (--parent-only), which does the dance
 * with its own login. scope[REG_SCOPE_MAX]: the token scope its terms give it ("" none). */
static bool may_fetch(struct reg_req *s, bool *parent_only, char *scope)
{
    struct sockaddr_storage buf;
    struct request_facts q = {.url = s->url, .key = s->url, .client = http_client(s->conn, &buf)};
    struct fetch_terms t;
    if (!q.client) /* unknown: the fetch course refuses it */
        return false;
    terms_decide(http_cfg, &q, &t);
    *parent_only = t.sources.parent_only;
    if (!registry_ask_scope(&t.registry, scope, REG_SCOPE_MAX))
        scope[0] = '\0';
    return t.allowed;
}

static enum conn_result begin(struct reg_req *s)
{
    enum conn_result ret = CONN_CLOSE;
    char path[RAW_MAX], why[300];
    const char *refusal, *rest = path;
    if (strcmp(s->req->method, "GET") && strcmp(s->req->method, "HEAD")) {
        struct answer *a =
            http_error_response("arca is a pull-through mirror: %s is refused", s->req->method);
        if (a)
            answer_header(a, "Allow", "GET, HEAD");
        s->code = "UNSUPPORTED";
        return http_queue(s->conn, HTTP_METHOD_NOT_ALLOWED, a);
    }
    if ((refusal = client_refusal(s->conn)))
        return refuse(s, HTTP_FORBIDDEN, "DENIED", refusal);
    if (proxy_came_from_self(s->conn)) /* before the dance: a loop costs the registry nothing */
        return refuse(s, HTTP_LOOP_DETECTED, NULL, FETCH_LOOP_REASON);
    if (raw_path(s->req, path) < 0)
        return refuse(s, HTTP_BAD_REQUEST, "NAME_INVALID", "registry path too long");
    if (!*rest) /* /v2/: the API is here, and asks for no credentials */
        return http_send_text(s->conn, HTTP_OK, "application/json", "{}");
    if (!(s->reg = which_registry(s, &rest, &ret)))
        return ret;
    enum reg_error e = reg_path_parse(rest, &s->path, why, sizeof(why));
    if (e != REG_OK) {
        s->path.what = REG_BASE; /* no request of its pull API: not counted for it */
        return refuse_path(s, e == REG_NAME_UNKNOWN ? HTTP_NOT_FOUND : HTTP_BAD_REQUEST,
                           reg_error_code(e), why);
    }
    if (make_url(s) < 0)
        return refuse(s, HTTP_INTERNAL_SERVER_ERROR, "UNAVAILABLE", "out of memory");
    bool parent_only = false;
    char scope[REG_SCOPE_MAX];
    /* refused: the fetch course says its refusal; the parent's alone: the parent authorises; no
     * scope: the download says what the registry does */
    return may_fetch(s, &parent_only, scope) && !parent_only && scope[0] ? authorise(s, scope)
                                                                         : fetch(s);
}

/* The token is in (or none is needed, or the dance failed): the fetch course, from here on the
 * request's. What is kept answers as on every other route (the fetch API, the proxy), whatever
 * the realm said of the login: a download asks again, and its failure (a login refused, an
 * outage) is told in the registry's words (source_registry.c). A manifest by digest is answered
 * from the bytes a tag of the same repository brought, when arca holds them: dockerd and containerd
 * ask the tag with a HEAD, then the manifest by its digest, and that second GET would count as a
 * pull at Docker Hub. */
static enum conn_result fetch(struct reg_req *s)
{
    bool blob = s->path.what == REG_BLOB;
    struct fetch_bounds b = {.expect = s->path.by_digest ? s->path.digest : NULL,
                             .max_size = blob ? INT64_MAX : MANIFEST_MAX,
                             .small = !blob};
    if (!blob && s->path.by_digest) /* the repository's manifests/ */
        b.twin_scope = strlen(s->url) - strlen(s->path.ref);
    char *url = s->url;
    s->url = NULL;
    return fetch_object_by(s->conn, s->req, url, &b, &s->fetch);
}

enum conn_result registry_route(struct conn *c, struct request *req, const char *rest)
{
    struct reg_req *s = req->state;
    assert(http_handling(c, req));
    if (s) {
        assert(s->magic == REG_MAGIC);
        if (s->fetch)
            return fetch_resume(s->fetch);
        if (!s->waiting || !atomic_load(&s->auth_done))
            return CONN_GO_ON; /* not woken by the authorisation: still waiting */
        s->waiting = false;
        return fetch(s);
    }
    if (!(s = calloc(1, sizeof(*s))))
        return CONN_CLOSE;
    s->magic = REG_MAGIC;
    s->conn = c;
    s->req = req;
    park_init(&s->park, suspend_conn, resume_conn, reg_free);
    req->state = s;
    (void)rest; /* decoded: the grammar is checked on the path as sent (raw_path) */
    return begin(s);
}

/* The access log's cache column; the registry's counters. */
const char *registry_done(struct request *req, bool completed)
{
    struct reg_req *s = req->state;
    char type[128];
    snprintf(type, sizeof(type), "%s", fetch_answer_type(s ? s->fetch : NULL));
    const char *cache = fetch_finish(s ? s->fetch : NULL, req, completed);
    req->state = NULL;
    if (!s)
        return cache;
    if (s->reg && s->path.what != REG_BASE) { /* a request of its pull API, whatever came of it */
        struct registry_answered a = {
            s->path.what, !strcmp(req->method, "GET"), (int)req->status, cache, type, req->bytes};
        registries_count_answer(s->reg, &a);
    }
    if (!s->reg && req->status == HTTP_OK) /* /v2/ itself: no object */
        cache = NULL;
    park_leave(&s->park);
    return cache;
}
