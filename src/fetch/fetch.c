/* GET|HEAD /api/v1/fetch/[FILENAME]?url=URL[&ttl=TTL][&sha256=HEX], and an object another
 * handler names (fetch_object): the request's course (fetch.h). Its query is checked, its
 * key made, the store asked; then a hit is answered (fetch_answer.c), a download joined or
 * started and streamed (fetch_stream.c), or the URL confirmed first (fetch_confirm.c).
 * This file decides; the three below it only answer, and call nothing here. */
#include "fetch/fetch.h"
#include "fetch/fetch_req.h"
#include "config/buckets.h"
#include "rules/grants.h"
#include "http/proxy_target.h"
#include "rules/keys.h"
#include "rules/policy.h"
#include "rules/rules.h"
#include "registry/reg_name.h"
#include "registry/registries.h"
#include "registry/reg_links.h"
#include "base/parse.h"
#include "stats/stats.h"
#include "store/store.h"
#include "upstream/upstream.h"
#include "url/url.h"
#include "url/filename.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static struct fetch_req *fetch_of(struct park *p)
{
    struct fetch_req *r = PARK_OWNER(p, struct fetch_req, park);
    assert(r->magic == FETCH_MAGIC);
    return r;
}

/* The park's sleep: the request's own thread, in its handler or its content reader. */
static void suspend_conn(struct park *p)
{
    assert(http_on_pool());
    conn_suspend(fetch_of(p)->conn);
}

/* The park's wake: any thread (the upstream thread's wake-ups, a probe's answer). */
static void resume_conn(struct park *p)
{
    conn_resume(fetch_of(p)->conn);
}

/* The last reference went: the request's or a running probe's. */
static void req_free(struct park *p)
{
    struct fetch_req *r = fetch_of(p);
    r->magic = 0;
    free(r->confirm_res);
    free(r);
}

static struct fetch_req *req_new(struct conn *c, struct request *req, const char *filename,
                                 bool head)
{
    struct fetch_req *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->magic = FETCH_MAGIC;
    r->conn = c;
    r->req = req;
    r->head = head;
    r->http10 = strcmp(req->version, "HTTP/1.1") != 0;
    r->hold = r->http10 || http_cfg->digest_framing == FRAMING_HOLD; /* no chunks, or told so */
    r->end = -1;
    r->twin_fd = -1;
    park_init(&r->park, suspend_conn, resume_conn, req_free);
    if (filename) /* the server has decoded the path: "a%2F..%2Fb" arrives as "a/../b" */
        filename_clean(filename, strlen(filename), r->filename, sizeof(r->filename));
    /* A plain hit may use and leave a prepared answer: the one shared response has no
     * Content-Range, no file name of the client's, no Connection: close and is never a 304. */
    r->plain = (!req->dress || req->dress_shared) && !r->filename[0] && !engine_draining() &&
               !conn_header(c, "Range") && !conn_header(c, "If-None-Match") &&
               !conn_header(c, "If-Modified-Since");
    return r;
}

/* The URL of a proxied request: its target, whole, in normal form; ttl and sha256 are not
 * arca's to take from it (its query is the URL's), but a Cache-Control max-age is its ttl, one
 * that may only shorten the terms' (request_facts's client_ttl_shorter). */
static int proxied_url(struct conn *c, const struct request *req, struct fetch_params *p,
                       int *status, const char **why)
{
    size_t len = strlen(req->uri);
    int64_t max_age = proxy_max_age(c);
    p->has_sha256 = false;
    p->has_ttl = max_age >= 0; /* a ttl is at least a second */
    snprintf(p->ttl, sizeof(p->ttl), "%llds", (long long)(max_age > 0 ? max_age : 1));
    if (len > (size_t)http_cfg->max_url_len) {
        *status = HTTP_URI_TOO_LONG;
        *why = "url longer than --max-url-length";
        return -1;
    }
    return url_normalize(req->uri, len, p->url, p->url_size, status, why);
}

/* The Via the request came with, kept to be sent on with a download it starts (proxy_target.h);
 * one past VIA_MAX bytes is taken for a loop through other proxies: nobody chains that many. */
#define VIA_MAX 2048
static bool via_loops(struct conn *c, struct fetch_req *r)
{
    return proxy_via_received(c, VIA_MAX, &r->via) == VIA_LOOP;
}

/* What a request's check found that its terms are decided from, besides its URL. */
struct asked {
    struct sockaddr_storage buf;
    const struct sockaddr *client; /* http_client's, once (NULL: unknown) */
    int64_t client_ttl;            /* the client's ttl= (0: none) */
    int option_says;               /* --allow-network's answer: 1 allowed, -1 refused */
};

/* Whether a client is refused before its URL is read: it is unknown (a trusted proxy's
 * X-Forwarded-For names no address), or outside --allow-network while no rule names networks of
 * its own (http_refused_outright). *refusal says why (NULL: it is not). */
static bool refused_outright(struct conn *c, struct asked *asked, const char **refusal)
{
    asked->client = http_client(c, &asked->buf);
    bool option_refuses;
    asked->client_ttl = 0;
    *refusal = http_refused_outright(asked->client, &option_refuses);
    asked->option_says = option_refuses ? -1 : 1;
    return *refusal != NULL;
}

/* Check the query once, at the edge (the rule is url.h's): r->url gets the target's normal
 * form, *asked the client's ttl= and --allow-network's answer. Returns 0 or -1 after queueing a
 * 400/403/414. Who may fetch is the terms' to say (a rule may name other networks than
 * --allow-network's); a client refused by --allow-network is refused before its URL is read, unless
 * some rule could let it in: it learns nothing of how arca reads URLs. */
static int check_request(struct conn *c, const struct request *req, struct fetch_req *r,
                         struct asked *asked, enum conn_result *ret)
{
    const char *query = req->proxied ? req->uri : strchr(req->uri, '?'), *why;
    struct fetch_params p;
    int status;

    query = !query ? "" : req->proxied ? query : query + 1;
    p.url_size = URL_BUF_SIZE(strlen(query));
    p.url = r->url = malloc(p.url_size);
    const char *refusal;
    if (refused_outright(c, asked, &refusal))
        *ret = fetch_refuse_client(r, refusal);
    else if (!r->url)
        *ret = fetch_refuse(c, HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    else if (via_loops(c, r))
        *ret = fetch_refuse(c, HTTP_LOOP_DETECTED, FETCH_LOOP_REASON);
    else if ((req->proxied ? proxied_url(c, req, &p, &status, &why)
                           : url_parse_fetch_query(query, (size_t)http_cfg->max_url_len, &p,
                                                   &status, &why)) < 0) {
        if (status == HTTP_URI_TOO_LONG) /* --max-url-length: a limit, counted as one */
            atomic_fetch_add(&stats.limited, 1);
        *ret = fetch_refuse(c, (unsigned int)status, why);
    } else if (p.has_ttl && parse_ttl(p.ttl, &asked->client_ttl) < 0)
        *ret = fetch_refuse(c, HTTP_BAD_REQUEST, "bad ttl: expected <int>d|h|m|s, positive");
    else if (p.has_sha256 && parse_sha256_hex(p.sha256, r->expect) < 0)
        *ret = fetch_refuse(c, HTTP_BAD_REQUEST, "bad sha256: expected 64 hex digits");
    else {
        r->has_expect = p.has_sha256;
        return 0;
    }
    return -1;
}

/* Whether the request's ttl or max-age, or the object's own ttl, says a hit is too old for
 * this request. */
static bool expired_for(const struct fetch_req *r, const struct object_meta *meta)
{
    int64_t age = (int64_t)time(NULL) - meta->created;
    const struct object_keep *o = &r->terms.object;
    return age >= meta->ttl || age >= o->ttl || (o->has_max_age && age >= o->max_age);
}

struct bounds_seen {
    int64_t max_age, negative_max_age; /* -1: none said */
    bool no_store, said;               /* said: a Cache-Control line came */
};

#define NEGATIVE_MAX_AGE "arca-negative-max-age="

/* One directive of a Cache-Control line, `len` bytes at `p`, trailing blanks cut. */
static void take_directive(struct bounds_seen *b, const char *p, size_t len)
{
    size_t name = sizeof(NEGATIVE_MAX_AGE) - 1;
    int64_t n;
    if (len == 8 && !strncasecmp(p, "no-store", 8))
        b->no_store = true;
    else if (len > name && !strncasecmp(p, NEGATIVE_MAX_AGE, name) &&
             (n = proxy_delta_seconds(p + name, len - name)) >= 0 &&
             (b->negative_max_age < 0 || n < b->negative_max_age))
        b->negative_max_age = n;
}

static void take_bounds(void *cls, const char *value)
{
    struct bounds_seen *b = cls;
    b->said = true;
    b->max_age = proxy_max_age_of(value, b->max_age);
    for (const char *p = value; *p;) {
        p += strspn(p, " \t,");
        size_t len = strcspn(p, ",");
        while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        take_directive(b, p, len);
        p += strcspn(p, ",");
    }
}

/* Pragma: no-cache, read only where no Cache-Control came (RFC 9111 5.4): a max-age of 0. */
static void take_pragma(void *cls, const char *value)
{
    struct bounds_seen *b = cls;
    for (const char *p = value; *p;) {
        p += strspn(p, " \t,");
        size_t len = strcspn(p, ",");
        while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        if (len == 8 && !strncasecmp(p, "no-cache", 8))
            b->max_age = 0;
        p += strcspn(p, ",");
    }
}

/* A request's Cache-Control bounds its own answer (terms.h), a kept 404 as any other: a child
 * arca asks its parent so, apt and pip ask a proxy so (max-age=0, no-cache, Pragma). A proxied
 * request's max-age is its ttl too (proxied_url), as clients of a proxy mean. One pass over the
 * request's Cache-Control lines: this is every request's path. */
static void request_bounds(struct conn *c, struct request_facts *q)
{
    struct bounds_seen b = {-1, -1, false, false};
    conn_each_header(c, "Cache-Control", take_bounds, &b);
    if (!b.said)
        conn_each_header(c, "Pragma", take_pragma, &b);
    q->has_max_age = b.max_age >= 0;
    q->max_age = b.max_age;
    q->no_store = b.no_store;
    q->has_negative_max_age = b.negative_max_age >= 0;
    q->negative_max_age = b.negative_max_age;
}

/* --- the course: a table of steps ------------------------------------------------------------ */

/* What a step did: answered (the result kept in r->ret), or where the fetch goes next. */
static enum fetch_step answered(struct fetch_req *r, enum conn_result ret)
{
    r->ret = ret;
    return FETCH_ANSWERED;
}

/* Who asks, for the store: only an authorised request's ttl acts on the cached object. A signed
 * URL upstream accepted before (a grant) is authorised at once: it will not be confirmed again,
 * so this lookup is the one where its ttl acts. */
static enum lookup_auth lookup_auth(const struct fetch_req *r)
{
    if (r->trust != TRUST_NONE || http_cfg->trust_signed)
        return AUTH_CONFIRMED;
    if (!r->sig.is_signed)
        return AUTH_UNSIGNED;
    return grants_check(r->url, (int64_t)time(NULL)) ? AUTH_CONFIRMED : AUTH_PENDING;
}

/* Whether an authorised request that joined a download (not one it started) got another URL's
 * failure: where URLs of one key differ (a signed one, or an object fetched through one), the
 * download may be a forged or bare URL's that upstream refused. Such a request must not be
 * refused for it (anyone could block an uncached private object so): it looks up once more,
 * and starts its own download. Once only: a failure of its own download is told. */
static bool inherits_failure(const struct fetch_req *r, const struct object_meta *meta)
{
    return meta->state == OBJ_FAILED && r->kind == LOOKUP_COALESCED && !r->looked_again &&
           (r->sig.is_signed || meta->signed_key);
}

/* Whether this request's client may not have the object `meta` describes: a URL a redirect
 * took its download to is one the rules in force keep from it (terms_hops_allowed: a rule may
 * have narrowed since, or the client is not the one whose download it was). Refused as a
 * download of the URL would be (the same 403 and Cache-Status, nothing of the object: its
 * bytes, validators and Arca-Redirect lines are not the client's), queued into *ret. */
static bool hops_refused(struct fetch_req *r, const struct object_meta *meta, enum conn_result *ret)
{
    struct sockaddr_storage client;
    char why[400], words[160];
    if (!meta->redirects[0] ||
        terms_hops_allowed(meta->redirects, http_client(r->conn, &client), why, sizeof(why)))
        return false;
    /* the hop is upstream's word: worded as the download's own refusal of it would be */
    *ret =
        fetch_refuse_object(r, NULL, HTTP_FORBIDDEN,
                            fetch_failure_words(r, why, HTTP_FORBIDDEN, 0, words, sizeof(words)));
    return true;
}

/* LOOK_AGAIN: let go of the download joined and look the URL up again, as the authorised
 * request it is. */
static enum fetch_step step_look_again(struct fetch_req *r)
{
    store_release(r->obj);
    r->obj = NULL;
    r->looked_again = true;
    return FETCH_LOOKUP;
}

/* STREAM: an object still downloading (or just finished) is streamed from its growing file,
 * once its headers are in and this request may see it. */
static enum fetch_step step_stream(struct fetch_req *r)
{
    struct object_meta meta;
    if (!store_wait(r->obj, (r->has_expect && r->hold) || r->whole, &r->park, &meta))
        return FETCH_WAITING; /* suspended; the server calls us again once resumed */
    /* joining a download another URL started: asked first, so that a URL upstream refuses
     * learns nothing of the download, not even how it ended */
    if (fetch_needs_confirm(r, &meta))
        return FETCH_CONFIRM;
    if (inherits_failure(r, &meta))
        return FETCH_LOOK_AGAIN;
    if (meta.stale && (meta.state == OBJ_FAILED || !meta.headers_ready))
        return FETCH_LOOK_AGAIN; /* the refresh is slow or failed: its expired version answers */
    if (meta.state == OBJ_FAILED && meta.error_status == 404 && r->missing)
        return answered(r, r->missing(r->missing_arg)); /* a folder's name, maybe */
    enum conn_result ret;
    if (meta.state != OBJ_FAILED && hops_refused(r, &meta, &ret))
        return answered(r, ret); /* a download joined from before a rule narrowed */
    if (r->rewrite && meta.state == OBJ_COMPLETE)
        return answered(r, fetch_respond_rewritten(r, &meta, -1));
    return answered(r, fetch_stream(r, &meta));
}

/* A hit. Authorisation comes before anything that depends on the cached object: a URL upstream
 * would refuse learns nothing from its sha256 (the same refusal whether it matches or not), and
 * a client the object's redirects keep out learns nothing of it (hops_refused). */
static enum fetch_step answer_hit(struct fetch_req *r, const struct object_meta *meta, int fd,
                                  struct prepared *prep)
{
    bool confirm = fetch_needs_confirm(r, meta);
    if (!confirm && r->trust == TRUST_NONE &&
        (expired_for(r, meta) || r->terms.object.ttl < meta->ttl)) {
        /* authorised now (accepted before, or no check applies): its ttl may act, shortening
         * the object's life or finding it expired */
        if (fd >= 0)
            close(fd);
        prepared_put(prep);
        r->trust = TRUST_AUTHORISED;
        return FETCH_LOOKUP;
    }
    enum conn_result ret;
    bool refused = !confirm && hops_refused(r, meta, &ret);
    if (confirm || refused || !fetch_digest_ok(r, meta)) {
        if (fd >= 0)
            close(fd);
        prepared_put(prep);
        if (confirm) /* looked up again once upstream has answered */
            return FETCH_CONFIRM;
        if (refused)
            return answered(r, ret);
        return answered(r, fetch_refuse_object(r, meta, HTTP_BAD_GATEWAY,
                                               "cached object does not match the requested "
                                               "sha256"));
    }
    if (r->sig.is_signed)
        atomic_fetch_add(&stats.signed_hits, 1);
    if (r->rewrite) /* never a prepared answer: r->plain is false */
        return answered(r, fetch_respond_rewritten(r, meta, fd));
    return answered(r, fetch_respond_file(r, meta, fd, prep));
}

/* A 404 or 410 upstream gave this URL's last download, kept (store_negative.h): answered as
 * the download's failure was, upstream not asked; a bucket's 404 may name a folder. */
static enum fetch_step answer_negative(struct fetch_req *r, const struct object_meta *meta)
{
    r->refusal = "NEGATIVE_HIT";
    if (meta->error_status == 404 && r->missing)
        return answered(r, r->missing(r->missing_arg));
    return answered(r, fetch_refuse_download(r, meta, (unsigned int)meta->error_status));
}

/* What a lookup found: answer from the cache, join a download or start one. */
static enum fetch_step answer_lookup(struct fetch_req *r, struct object *obj, int fd,
                                     struct prepared *prep, const struct object_meta *meta)
{
    if (r->kind == LOOKUP_UNAVAILABLE)
        return answered(r, fetch_refuse(r->conn, HTTP_SERVICE_UNAVAILABLE, meta->error));
    if (r->kind == LOOKUP_HIT)
        return answer_hit(r, meta, fd, prep);
    if (r->kind == LOOKUP_NEGATIVE)
        return answer_negative(r, meta);
    if (!obj)
        return answered(r, fetch_refuse(r->conn, HTTP_INTERNAL_SERVER_ERROR, "out of memory"));
    r->obj = obj;
    if (r->kind == LOOKUP_COALESCED && !meta->headers_ready) {
        /* a download waiting for a slot is this client's too (upstream_join); one with its
         * headers in holds its slot already: no message for the upstream thread */
        struct sockaddr_storage client;
        upstream_join(obj, http_client(r->conn, &client));
    } else if (r->kind == LOOKUP_MISS) {
        /* this URL is the one fetched: upstream's answer to it is every joiner's */
        struct sockaddr_storage client;
        r->trust = TRUST_CONFIRMED;
        fetch_start_download(obj, r->url, &r->sig, r->auth, r->via, http_client(r->conn, &client),
                             &r->terms);
    }
    return FETCH_STREAM;
}

static enum lookup_result ask_store(struct fetch_req *r, struct object **obj, int *fd,
                                    struct prepared **prep, struct object_meta *meta)
{
    return r->kind = store_lookup_as(r->key, &r->terms.object, lookup_auth(r), r->sig.is_signed,
                                     obj, fd, r->plain ? prep : NULL, meta);
}

/* LOOKUP: the store asked for the key. */
static enum fetch_step step_lookup(struct fetch_req *r)
{
    struct object *obj;
    struct object_meta meta;
    struct prepared *prep = NULL;
    int fd;
    ask_store(r, &obj, &fd, &prep, &meta);
    return answer_lookup(r, obj, fd, prep, &meta);
}

/* A digest hit's confirmation was accepted: the twin's bytes answer this request, unless
 * upstream's length says the URL serves another file (then it is downloaded). Only this request:
 * the URL's other clients get its own bytes, from its own download (docs/CACHING.md, "Same
 * file, other URL"). What the answer says of the URL is the URL's own upstream's word, not the
 * twin's; with no confirmation (`res` NULL: a twin in the request's scope, whose upstream gave
 * it for the same thing), the twin's own. */
static enum fetch_step answer_twin(struct fetch_req *r, const struct probe_result *res)
{
    struct object_meta *meta = r->twin;
    int fd = r->twin_fd;
    enum conn_result ret;
    r->twin = NULL;
    r->twin_fd = -1;
    if (res && res->total >= 0 && res->total != meta->length) {
        close(fd);
        free(meta);
        return FETCH_LOOKUP;
    }
    if (res && registry_ask_pulls(&r->terms.registry))
        reg_links_confirmed(&r->terms.registry); /* the registry's word, kept (reg_links.h) */
    if (res) {
        snprintf(meta->last_modified, sizeof(meta->last_modified), "%s", res->last_modified);
        snprintf(meta->content_type, sizeof(meta->content_type), "%s", res->content_type);
        snprintf(meta->content_encoding, sizeof(meta->content_encoding), "%s",
                 res->content_encoding);
        snprintf(meta->filename, sizeof(meta->filename), "%s", res->filename);
        snprintf(meta->etag, sizeof(meta->etag), "%s", res->etag); /* If-None-Match's */
    }
    if (!res) { /* a digest's bytes: as fresh as this URL's terms say, whatever the twin's age
                 * (a tag expired, restored after a failed refresh) */
        meta->created = (int64_t)time(NULL);
        meta->ttl = r->terms.object.ttl;
        meta->stale = STALE_NONE;
        meta->fwd_status = 0;
    }
    /* where the twin's download went is the twin's */
    meta->redirects[0] = '\0';
    r->kind = LOOKUP_HIT; /* not a byte from upstream */
    r->twin_answer = true;
    r->plain = false; /* names this URL's file: never the twin's prepared answer */
    atomic_fetch_add(&stats.digest_hits, 1);
    ret = fetch_respond_file(r, meta, fd, NULL);
    free(meta);
    return answered(r, ret);
}

/* Whether another URL's object may answer this client's digest (store_open_twin asks, the store
 * lock held): the client may fetch that URL, its terms decided for it as a request for that URL
 * would be (the URL's rule's allow-network, else --allow-network, and the rule of its folded
 * spelling), and the URL's rule keeps its objects (an object kept before a SIGHUP made its rule
 * `store = no` is the cache's no longer, to give out or to keep). A digest is public: it never
 * stands in for the URL. An object arca fetched with a registry's login is that login's: it
 * answers only a URL of the same registry, which the registry itself confirms (a repository
 * that has the blob), never another origin's URL that says yes to anything. A request with a
 * twin scope takes only a twin directly under it. */
struct twin_asker {
    const struct sockaddr *client;
    const char *url;              /* the URL asked, normal form */
    size_t scope;                 /* fetch_req's twin_scope */
    const struct registry *where; /* the registry whose pull API it is (its terms'), NULL none */
};

/* Whether `rest` is a tag or a digest of the registry grammar, and nothing else. */
static bool reference_alone(const char *rest)
{
    uint8_t digest[32];
    size_t len = strlen(rest);
    return reg_tag_valid(rest, len) || reg_digest_parse(rest, len, digest) == REG_OK;
}

static bool twin_allowed(const char *url, const void *arg)
{
    const struct twin_asker *a = arg;
    struct request_facts q = {.url = url, .key = url, .client = a->client};
    struct fetch_terms t;
    if (!q.client) /* unknown: never taken for arca's own, which every rule allows */
        return false;
    /* past the scope, a tag or digest alone: one deeper is another repository's
     * (`a/manifests/x/manifests/t` begins with `a/manifests/`, as `manifests` is a valid name
     * component), and a query or an encoded byte (a URL the fetch API kept) could be anything */
    if (a->scope && (strncmp(url, a->url, a->scope) || !reference_alone(url + a->scope)))
        return false;
    terms_decide(http_cfg, &q, &t);
    if (t.registry.r && t.registry.r->has_login && a->where != t.registry.r)
        return false; /* fetched with that login: it answers only that registry's URLs */
    return t.allowed && t.object.store;
}

/* TWIN: a request with &sha256= for a URL not cached: another URL's object with that digest may
 * answer it, once upstream has confirmed this URL (a digest alone never unlocks a file), or at
 * once when it lies in the request's twin scope (fetch.h's fetch_bounds). */
static enum fetch_step step_twin(struct fetch_req *r)
{
    struct object_meta *meta = malloc(sizeof(*meta));
    struct sockaddr_storage client;
    struct twin_asker asker = {http_client(r->conn, &client), r->url, r->twin_scope,
                               r->terms.registry.r};
    char why[400];
    int fd;
    if (!meta)
        return answered(r, fetch_refuse(r->conn, HTTP_INTERNAL_SERVER_ERROR, "out of memory"));
    if (store_open_twin(r->key, r->expect, twin_allowed, &asker, &fd, meta) != LOOKUP_DIGEST) {
        free(meta);
        return FETCH_LOOKUP;
    }
    if (meta->length > r->terms.object.max_object_size ||
        !terms_hops_allowed(meta->redirects, http_client(r->conn, &client), why, sizeof(why))) {
        /* longer than this URL's terms let its body be: fetched as itself, refused there; or
         * its download went where this client may not fetch: no twin of this client's */
        close(fd);
        free(meta);
        return FETCH_LOOKUP;
    }
    r->twin = meta;
    r->twin_fd = fd;
    /* in its scope, or a digest its repository is known to hold: the upstream's word is in */
    if (r->twin_scope || reg_links_has(&r->terms.registry, r->expect))
        return answer_twin(r, NULL);
    return FETCH_CONFIRM;
}

/* CONFIRM: the request waits (CONFIRMING) while upstream is asked about its exact URL. */
static enum fetch_step step_confirm(struct fetch_req *r)
{
    enum conn_result ret;
    return fetch_start_confirm(r, &ret) ? FETCH_CONFIRMING : answered(r, ret);
}

/* CONFIRMED: upstream answered. Refused: its status goes to the client. Accepted: a download
 * joined goes on if it is the version upstream has now; a hit is looked up again and served if
 * it is that version, else dropped and fetched again through this URL. */
static enum fetch_step step_confirmed(struct fetch_req *r)
{
    struct object_meta meta;
    struct probe_result res = *r->confirm_res;
    struct object *obj;
    struct prepared *prep = NULL;
    enum conn_result ret = CONN_CLOSE;
    int64_t length;
    int fd;

    if (fetch_confirm_refused(r, &res, &ret))
        return answered(r, ret);
    r->probe_status = res.status;
    if (r->twin)
        return answer_twin(r, &res);
    if (r->obj) {
        store_snapshot(r->obj, &meta);
        /* A failed download was another URL's (inherits_failure). One of the version upstream
         * confirmed is joined again, as the authorised request this is, so its ttl acts. */
        if (inherits_failure(r, &meta) ||
            (fetch_same_version(&res, &meta) && r->terms.object.ttl < meta.ttl && !r->looked_again))
            return FETCH_LOOK_AGAIN;
        if (fetch_same_version(&res, &meta))
            return FETCH_STREAM;
        /* A running download of another version: looking up again would join it once more. */
        atomic_fetch_add(&stats.confirm_changed, 1);
        return answered(r, fetch_refuse_object(r, &meta, HTTP_BAD_GATEWAY,
                                               "upstream now serves another version than the one "
                                               "downloading; retry"));
    }
    if (ask_store(r, &obj, &fd, &prep, &meta) == LOOKUP_HIT && !fetch_same_version(&res, &meta)) {
        atomic_fetch_add(&stats.confirm_changed, 1);
        if (fd >= 0)
            close(fd);
        prepared_put(prep);
        store_purge(r->key, &length);
        return FETCH_LOOKUP;
    }
    return answer_lookup(r, obj, fd, prep, &meta);
}

typedef enum fetch_step step_fn(struct fetch_req *r);

/* The steps with work to do; the others wait for an event (CONFIRMING, WAITING) or are over. */
static step_fn *const steps[] = {
    [FETCH_LOOKUP] = step_lookup,   [FETCH_TWIN] = step_twin,
    [FETCH_CONFIRM] = step_confirm, [FETCH_CONFIRMED] = step_confirmed,
    [FETCH_STREAM] = step_stream,   [FETCH_LOOK_AGAIN] = step_look_again,
};

#define TO(s) (1u << (s))
/* The moves each step may make (asserted): everything else is a bug in this file. */
static const unsigned moves[] = {
    [FETCH_BEGIN] = TO(FETCH_TWIN) | TO(FETCH_LOOKUP), /* the query read, the key made */
    [FETCH_TWIN] = TO(FETCH_LOOKUP) | TO(FETCH_CONFIRM) | TO(FETCH_ANSWERED),
    [FETCH_LOOKUP] = TO(FETCH_LOOKUP) | TO(FETCH_CONFIRM) | TO(FETCH_STREAM) | TO(FETCH_ANSWERED),
    [FETCH_CONFIRM] = TO(FETCH_CONFIRMING) | TO(FETCH_ANSWERED),
    [FETCH_CONFIRMING] = TO(FETCH_CONFIRMED), /* the probe's answer is in (fetch_resume) */
    [FETCH_CONFIRMED] = TO(FETCH_LOOKUP) | TO(FETCH_LOOK_AGAIN) | TO(FETCH_CONFIRM) |
                        TO(FETCH_STREAM) | TO(FETCH_ANSWERED),
    [FETCH_STREAM] =
        TO(FETCH_WAITING) | TO(FETCH_CONFIRM) | TO(FETCH_LOOK_AGAIN) | TO(FETCH_ANSWERED),
    [FETCH_WAITING] = TO(FETCH_STREAM), /* woken: bytes or headers came (fetch_resume) */
    [FETCH_LOOK_AGAIN] = TO(FETCH_LOOKUP),
};

static void step_to(struct fetch_req *r, enum fetch_step next)
{
    assert((size_t)r->step < sizeof(moves) / sizeof(moves[0]) && (moves[r->step] & TO(next)));
    r->step = next;
}

/* Run steps until the fetch waits for an event (CONN_GO_ON) or has answered (its result). */
static enum conn_result run(struct fetch_req *r)
{
    for (;;) {
        assert(r->magic == FETCH_MAGIC && http_handling(r->conn, r->req));
        step_fn *step = (size_t)r->step < sizeof(steps) / sizeof(steps[0]) ? steps[r->step] : NULL;
        if (!step)
            return r->step == FETCH_ANSWERED ? r->ret : CONN_GO_ON;
        step_to(r, step(r));
    }
}

void fetch_start_download(struct object *obj, const char *url, const struct signature *sig,
                          const struct bucket_auth *auth, const char *via,
                          const struct sockaddr *client, const struct fetch_terms *terms)
{
    struct fetch_source src = {
        url,    sig->is_signed ? keys_grant_until(http_cfg, sig, (int64_t)time(NULL)) : 0,
        auth,   via,
        client, terms};
    upstream_fetch(obj, &src);
}

const char *fetch_key(const char *url, struct signature *sig)
{
    *sig = (struct signature){false, 0};
    if (!strchr(url, '?') || http_cfg->exact_keys)
        return url; /* the common case on the hit path: nothing to parse */
    char *key = keys_cache_url_dup(http_cfg, url, sig);
    if (key && !sig->is_signed) {
        free(key);
        return url;
    }
    return key;
}

/* The cache key: the URL itself (no copy) unless signing parameters leave it. */
static int set_key(struct fetch_req *r)
{
    r->key = (char *)fetch_key(r->url, &r->sig);
    return r->key ? 0 : -1;
}

/* Why the terms do not let r's client fetch its URL, as its 403 says. */
static enum conn_result refuse_terms(struct fetch_req *r)
{
    char why[400];
    if (r->terms.allowed_carried[0]) { /* a cache in front would fetch it for this client */
        snprintf(why, sizeof(why),
                 "client address not allowed to fetch this URL: it carries URL %s%s%s%s",
                 r->terms.allowed_carried, r->terms.allowed_rule[0] ? ", under rule " : "",
                 r->terms.allowed_rule, r->terms.allowed_rule[0] ? "'s allow-network" : "");
        return fetch_refuse_client(r, why);
    }
    if (r->terms.allowed_from != FROM_RULE)
        return fetch_refuse_client(r, policy_client_refusal());
    snprintf(why, sizeof(why),
             "client address not allowed to fetch this URL: rule %s names who may "
             "(allow-network)",
             r->terms.allowed_rule);
    return fetch_refuse_client(r, why);
}

/* A URL at a parent's place (rules_names_parent), as a client that may not read the parent's
 * URL is told it. */
#define FETCH_NOT_AN_ORIGIN "the URL names a place this arca never fetches from"

/* The request's terms, decided once its URL and key are known (rules/terms.h): from here on
 * the course reads them, never the options. A client they do not let fetch this URL is refused
 * first, as for any URL: nothing the URL names (a parent) is said to it before its rights are
 * judged. */
static int decide(struct fetch_req *r, const struct asked *asked, enum conn_result *ret)
{
    struct request_facts q = {.url = r->url,
                              .key = r->key,
                              .client = asked->client,
                              .client_ttl = asked->client_ttl,
                              .client_ttl_shorter = r->req->proxied,
                              .option_says = asked->option_says};
    if (!asked->client) { /* unknown: refused already; never taken for arca's own */
        *ret = fetch_refuse_client(r, http_client_refusal(NULL));
        return -1;
    }
    request_bounds(r->conn, &q);
    terms_decide(http_cfg, &q, &r->terms);
    if (r->auth && !r->auth->anonymous) /* arca's signature is a credential: never kept */
        r->terms.object.negative_ttl = 0;
    if (!r->terms.allowed) {
        *ret = refuse_terms(r);
        return -1;
    }
    char why[CONFIG_PARENT_MAX + 96];
    if (rules_names_parent(r->url, why, sizeof(why))) { /* a relay around every rule here */
        /* the parent's URL is for the clients that read it in the status */
        *ret = fetch_refuse_client(r, fetch_sees_upstream(r) ? why : FETCH_NOT_AN_ORIGIN);
        return -1;
    }
    return 0;
}

/* A registry's manifest or blob by digest asked on the fetch API or through the proxy is
 * answered as /v2/ answers it (registry.c's fetch_bounds): a manifest held whole and checked
 * against its digest, and from the bytes a tag of its repository brought when arca holds them;
 * a blob from another repository's bytes once its repository is known to hold it. One rule on
 * every route: what is kept answers alike, whatever the registry's realm says of the login. */
static void bound_as_registry(struct fetch_req *r)
{
    const struct reg_path *p = &r->terms.registry.path;
    if (r->has_expect || !r->terms.digest_named || !registry_ask_pulls(&r->terms.registry))
        return;
    memcpy(r->expect, r->terms.named_digest, sizeof(r->expect));
    r->has_expect = true; /* a blob's bytes another repository brought may answer (step_twin) */
    if (p->what != REG_MANIFEST)
        return;
    r->hold = r->whole = true;
    r->twin_scope = strlen(r->url) - strlen(p->ref); /* its repository's manifests/ */
}

static enum conn_result begin(struct conn *c, struct request *req, const char *filename, bool head)
{
    enum conn_result ret = CONN_CLOSE;
    struct fetch_req *r;
    struct asked asked;

    atomic_fetch_add(&stats.requests, 1);
    if (!(r = req_new(c, req, filename, head)))
        return CONN_CLOSE;
    req->state = r;
    if (req->proxied) /* its answers carry a Via: never the shared prepared one */
        r->plain = false;
    if (check_request(c, req, r, &asked, &ret) < 0)
        return ret;
    if (set_key(r) < 0)
        return fetch_refuse(c, HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    if (decide(r, &asked, &ret) < 0)
        return ret;
    bound_as_registry(r);
    step_to(r, r->has_expect ? FETCH_TWIN : FETCH_LOOKUP);
    return run(r);
}

/* ?ttl= and ?sha256= of a /browse/ file, as the fetch query gives them (*client_ttl 0: none).
 * The browser refused clients outside --allow-network already (its listings are theirs). */
static int browse_params(struct fetch_req *r, struct asked *asked, enum conn_result *ret)
{
    const char *ttl = conn_query(r->conn, "ttl");
    const char *sha = conn_query(r->conn, "sha256");
    asked->client = http_client(r->conn, &asked->buf);
    asked->client_ttl = 0;
    asked->option_says = 1; /* the browser let in only who --allow-network allows */
    if (ttl && parse_ttl(ttl, &asked->client_ttl) < 0)
        *ret = fetch_refuse(r->conn, HTTP_BAD_REQUEST, "bad ttl: expected <int>d|h|m|s, positive");
    else if (sha && parse_sha256_hex(sha, r->expect) < 0)
        *ret = fetch_refuse(r->conn, HTTP_BAD_REQUEST, "bad sha256: expected 64 hex digits");
    else {
        r->has_expect = sha != NULL;
        return 0;
    }
    return -1;
}

/* The fetch_req of an object another handler names by its `url` (taken over), counted as a
 * fetch request; NULL when out of memory (`url` freed). */
static struct fetch_req *object_req(struct conn *c, struct request *req, char *url,
                                    struct fetch_req **out)
{
    struct fetch_req *r;
    assert(http_handling(c, req));
    atomic_fetch_add(&stats.requests, 1);
    if (!(*out = r = req_new(c, req, NULL, http_is_head(req)))) {
        free(url);
        return NULL;
    }
    r->url = r->key = url;
    return r;
}

enum conn_result fetch_object(struct conn *c, struct request *req, char *url,
                              const struct bucket_auth *auth, fetch_missing_fn missing, void *arg,
                              struct fetch_req **out)
{
    enum conn_result ret = CONN_CLOSE;
    struct fetch_req *r = object_req(c, req, url, out);
    struct asked asked;
    if (!r)
        return CONN_CLOSE;
    r->auth = auth;
    r->missing = missing;
    r->missing_arg = arg;
    if (browse_params(r, &asked, &ret) < 0 || decide(r, &asked, &ret) < 0)
        return ret;
    /* a twin is confirmed by an unsigned probe, which S3 refuses for a bucket arca signs for:
     * such a file is looked up as itself */
    step_to(r, r->has_expect && auth->anonymous ? FETCH_TWIN : FETCH_LOOKUP);
    return run(r);
}

/* The cache key of `url`'s other object `variant` (fetch_bounds'): a new string, NULL out of
 * memory. */
static char *variant_key(const char *url, const char *variant)
{
    size_t n = strlen(url), v = strlen(variant);
    char *key = malloc(n + v + 1);
    if (key) {
        memcpy(key, url, n);
        memcpy(key + n, variant, v + 1);
    }
    return key;
}

enum conn_result fetch_object_by(struct conn *c, struct request *req, char *url,
                                 const struct fetch_bounds *b, struct fetch_req **out)
{
    enum conn_result ret = CONN_CLOSE;
    const char *refusal;
    struct fetch_req *r = object_req(c, req, url, out);
    struct asked asked;
    if (!r)
        return CONN_CLOSE;
    r->keep_length = true;
    r->hold |= b->small;
    r->whole = b->small || b->rewrite;
    if ((r->rewrite = b->rewrite)) {
        r->rewrite_arg = b->rewrite_arg;
        r->plain = false; /* its answer is its own, never the object's prepared one */
    }
    if (b->variant && !(r->key = variant_key(url, b->variant))) {
        r->key = r->url;
        return fetch_refuse(c, HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    }
    if (refused_outright(c, &asked, &refusal))
        return fetch_refuse_client(r, refusal);
    if (via_loops(c, r)) /* a site's arca asks a registry's /v2/ too (registries.h) */
        return fetch_refuse(c, HTTP_LOOP_DETECTED, FETCH_LOOP_REASON);
    if ((r->has_expect = b->expect != NULL))
        memcpy(r->expect, b->expect, sizeof(r->expect));
    if (decide(r, &asked, &ret) < 0)
        return ret;
    if (b->max_size < r->terms.object.max_object_size)
        r->terms.object.max_object_size = b->max_size;
    if (b->own_freshness) {
        r->terms.object.has_max_age = r->terms.object.has_negative_max_age = false;
        r->terms.object.asked_no_store = false;
    }
    if (b->has_max_age && (!r->terms.object.has_max_age || r->terms.object.max_age > b->max_age)) {
        r->terms.object.has_max_age = true;
        r->terms.object.max_age = b->max_age;
    }
    r->twin_scope = b->small ? b->twin_scope : 0;
    step_to(r, r->has_expect && (!b->small || r->twin_scope) ? FETCH_TWIN : FETCH_LOOKUP);
    return run(r);
}

enum conn_result fetch_resume(struct fetch_req *r)
{
    assert(r->magic == FETCH_MAGIC && http_handling(r->conn, r->req));
    if (r->step == FETCH_WAITING)
        step_to(r, FETCH_STREAM);
    else if (r->step == FETCH_CONFIRMING && atomic_load(&r->confirm_done))
        step_to(r, FETCH_CONFIRMED); /* else not woken by the probe: still waiting */
    return run(r);
}

enum conn_result fetch_route(struct conn *c, struct request *req, const char *rest)
{
    assert(http_handling(c, req));
    if (req->state)
        return fetch_resume(req->state);
    return begin(c, req, rest[0] == '/' && rest[1] ? rest + 1 : NULL, http_is_head(req));
}

enum conn_result fetch_proxied(struct conn *c, struct request *req)
{
    assert(http_handling(c, req) && req->proxied);
    if (req->state)
        return fetch_resume(req->state);
    atomic_fetch_add(&stats.proxy_requests, 1);
    return begin(c, req, NULL, http_is_head(req));
}
