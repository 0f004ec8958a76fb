/* POST /api/v1/purge/?prefix=URL[&all=1]: every object under a prefix (store_purge_prefix),
 * behind the admin token; the query read as the fetch endpoint reads its own (url.h), the
 * prefix folded as the rules fold a URL (url_purge_prefix), so every spelling of a path goes.
 * The purge walks the whole table: it runs on a thread of its own (http_offload.h) while the
 * request is parked, so the worker's other connections, hits among them, go on meanwhile. A
 * prefix with no host needs all=1: a typo must not empty the cache. POST
 * /api/v1/purge/?image=REF: an image's manifests and the blobs no other manifest lists
 * (images.h), the reference read as `arca rules test` reads one (reg_ref.h). */
#include "http/http_internal.h"
#include "http/http_offload.h"
#include "http/images.h"
#include "log/log.h"
#include "registry/reg_ref.h"
#include "store/store.h"
#include "base/parse.h"
#include "url/url.h"

#include <assert.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define PURGE_MAGIC 0x9e7b2c41u

/* The request's state: the prefix asked (or one URL's key, for DELETE), then what the purge came
 * to. */
struct purge_req {
    unsigned magic;
    struct offload job;
    char *prefix;   /* normal form, folded (url_purge_prefix) */
    bool bounded;   /* the fold cut its last segment: url_purge_prefix's */
    char *url;      /* DELETE /api/v1/resources/?url=: the object's URL, keyed */
    int rc;         /* store_purge_settled's answer for `url`, images_purge's for `image` */
    int64_t length; /* its length, when purged */
    struct purge_result result;
    char *image;              /* ?image=: the reference as given */
    struct registry_ask *ref; /* ... as read */
    struct image_purge img;   /* ... and what its purge came to */
};

static struct purge_req *purge_of(struct offload *o)
{
    struct purge_req *p = OFFLOAD_OWNER(o, struct purge_req, job);
    assert(p->magic == PURGE_MAGIC);
    return p;
}

/* On the offload's thread: both purges answer once what they removed is on disk. */
static void purge_run(struct offload *o)
{
    struct purge_req *p = purge_of(o);
    if (p->url)
        p->rc = store_purge_settled(p->url, &p->length);
    else if (p->ref)
        p->rc = images_purge(p->ref, &p->img);
    else
        store_purge_prefix(p->prefix, p->bounded, &p->result);
}

/* The last reference: the request's, or the job's when the client left first. */
static void purge_free(struct offload *o)
{
    struct purge_req *p = purge_of(o);
    free(p->prefix);
    free(p->url);
    free(p->image);
    free(p->ref);
    p->magic = 0;
    free(p);
}

/* ?prefix=URL[&all=1], read as the fetch endpoint reads url=: an unencoded prefix runs to the
 * query's end, but for a trailing &all=. */
static const struct query_rule purge_query = {
    "prefix",
    {"all", NULL},
    "unknown parameter: purge takes prefix and all (percent-encode the prefix, or give it "
    "unencoded as the last parameter)"};

/* The normal form of the prefix `given` (malloc'd), all= as `a` says, whether the fold cut its
 * last segment in *bounded; NULL with *why. */
static char *normal_prefix(const char *given, const struct query_args *a, bool *bounded,
                           const char **why)
{
    char all[4] = "", *prefix;
    if (a->value[0] && (!url_query_value(a->value[0], a->len[0], false, all, sizeof(all)) ||
                        (strcmp(all, "1") && strcmp(all, "0")))) {
        *why = "all: expected 1 or 0";
        return NULL;
    }
    if (!(prefix = malloc(URL_BUF_SIZE(strlen(given))))) {
        *why = "out of memory";
        return NULL;
    }
    if (url_purge_prefix(given, !strcmp(all, "1"), prefix, URL_BUF_SIZE(strlen(given)), bounded,
                         why) < 0) {
        free(prefix);
        return NULL;
    }
    return prefix;
}

/* The prefix of the request's `query` in normal form, folded (malloc'd), or NULL with the
 * answer queued. */
static char *asked_prefix(struct conn *c, const char *query, bool *bounded, enum conn_result *ret)
{
    const char *why;
    struct query_args a;
    char *given = NULL, *prefix = NULL;
    int status;
    if (http_admin_authorize(c, ret) < 0)
        return NULL;
    if (url_read_query(query, &purge_query, &a, &status, &why) == 0 &&
        (given = http_query_url(&a, "prefix", &status, &why)))
        prefix = normal_prefix(given, &a, bounded, &why);
    free(given);
    if (!prefix)
        *ret = http_send_error(c, HTTP_BAD_REQUEST, "%s", why);
    return prefix;
}

/* What a prefix cannot reach, said in its answer: the fold leaves a query as it is. */
#define QUERY_NOT_MATCHED                                                                          \
    "the query as written: its other spellings (parameters in another order, escaped "             \
    "otherwise) are not matched"

/* What went, as JSON, and the log's line. The prefix shown is the one matched: folded. */
static enum conn_result answer(struct conn *c, const struct purge_req *p)
{
    const struct purge_result *r = &p->result;
    char *shown = url_shown(p->prefix);
    log_info("admin: purged %lld objects (%lld bytes) under %s; %lld downloads not kept",
             (long long)r->objects, (long long)r->bytes, shown ? shown : "?",
             (long long)r->downloads);
    json_t *o = json_pack("{s:s?, s:I, s:I, s:I, s:I, s:I}", "prefix", shown, "purged",
                          (json_int_t)r->objects, "bytes", (json_int_t)r->bytes,
                          "downloads_not_kept", (json_int_t)r->downloads, "negative_answers",
                          (json_int_t)r->negatives, "left", (json_int_t)r->left);
    if (o && strchr(p->prefix, '?'))
        json_object_set_new(o, "not_matched", json_string(QUERY_NOT_MATCHED));
    free(shown);
    return http_send_json(c, HTTP_OK, o);
}

/* What a purge of one URL came to (store_purge's result). */
static enum conn_result answer_url(struct conn *c, const struct purge_req *p)
{
    enum conn_result ret;
    if (p->rc == 0)
        return http_send_error(c, HTTP_NOT_FOUND, "not cached");
    if (p->rc == -1)
        return http_send_error(c, HTTP_CONFLICT,
                               "still downloading: purge it once the download ended");
    if (p->rc < 0)
        return http_send_error(c, HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    char *shown = url_shown(p->url);
    log_info("admin: purged %s", shown ? shown : "?");
    ret = http_send_json(
        c, HTTP_OK,
        json_pack("{s:s?, s:b, s:I}", "url", shown, "purged", 1, "bytes", (json_int_t)p->length));
    free(shown);
    return ret;
}

/* What an image's purge came to (images_purge's result), and the log's line. */
static enum conn_result answer_image(struct conn *c, const struct purge_req *p)
{
    const struct image_purge *r = &p->img;
    if (p->rc == -1)
        return http_send_error(c, HTTP_NOT_FOUND, "not cached: no manifest of %.300s is kept",
                               p->image);
    if (p->rc < 0)
        return http_send_error(c, HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    log_info("admin: purged image %s (%s): %lld manifests, %lld blobs (%lld bytes); %lld blobs "
             "kept, another manifest lists them",
             p->image, r->digest, (long long)r->manifests, (long long)r->blobs,
             (long long)r->store.bytes, (long long)r->shared);
    return http_send_json(
        c, HTTP_OK,
        json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "image", p->image,
                  "registry", p->ref->r->name, "repository", p->ref->path.repo, "digest", r->digest,
                  "manifests", (json_int_t)r->manifests, "blobs", (json_int_t)r->blobs,
                  "kept_shared", (json_int_t)r->shared, "objects", (json_int_t)r->store.objects,
                  "bytes", (json_int_t)r->store.bytes, "downloads_not_kept",
                  (json_int_t)r->store.downloads, "negative_answers",
                  (json_int_t)r->store.negatives, "left", (json_int_t)r->store.left));
}

/* A request woken: its purge's answer, or still waiting (a stale wake-up). */
static enum conn_result woken(struct conn *c, struct purge_req *p)
{
    assert(p->magic == PURGE_MAGIC);
    if (!offload_done(&p->job)) {
        conn_suspend(c);
        return CONN_GO_ON;
    }
    return p->url ? answer_url(c, p) : p->ref ? answer_image(c, p) : answer(c, p);
}

/* The purge of `prefix` (`bounded` as url_purge_prefix says), `url` or `image` (one of them;
 * taken, `ref` with `image`), on a thread of its own. */
struct purge_aimed {
    char *prefix, *url, *image;
    struct registry_ask *ref;
    bool bounded;
};
static enum conn_result start(struct conn *c, struct request *req, struct purge_aimed aimed)
{
    struct purge_req *p = calloc(1, sizeof(*p));
    if (!p) {
        free(aimed.prefix);
        free(aimed.url);
        free(aimed.image);
        free(aimed.ref);
        return http_send_error(c, HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    }
    p->magic = PURGE_MAGIC;
    p->prefix = aimed.prefix;
    p->bounded = aimed.bounded;
    p->url = aimed.url;
    p->image = aimed.image;
    p->ref = aimed.ref;
    offload_init(&p->job, c, purge_run, purge_free);
    req->state = p;
    if (offload_start_admin(&p->job) == OFFLOAD_STARTED) /* the token was checked */
        return CONN_GO_ON;
    return http_send_error(c, HTTP_SERVICE_UNAVAILABLE, OFFLOAD_ADMIN_BUSY_WHY);
}

/* ?image=REF alone, percent-encoded or not. */
static const struct query_rule image_query = {
    "image", {NULL}, "unknown parameter: an image's purge takes image alone"};

/* Whether `given` holds a byte no reference has (a space, a control byte), which a reason
 * echoing it would carry into a line of its own. */
static bool odd_bytes(const char *given)
{
    for (const unsigned char *p = (const unsigned char *)given; *p; p++)
        if (*p <= ' ' || *p >= 0x7f)
            return true;
    return false;
}

/* The reference `given` read (malloc'd), or NULL with *why (the 400's). */
static struct registry_ask *read_reference(const char *given, char *why, size_t size)
{
    struct url_parts u;
    struct registry_ask *ref = malloc(sizeof(*ref));
    if (!ref)
        snprintf(why, size, "out of memory");
    else if (odd_bytes(given))
        snprintf(why, size, "not an image reference: a space or a control byte in it");
    else if (parse_url(given, strlen(given), &u) != URL_NO_SCHEME) /* a URL: not an image */
        snprintf(why, size,
                 "image: an image reference (REGISTRY/REPOSITORY:TAG or @DIGEST), "
                 "not a URL (purge a URL with DELETE /api/v1/resources/?url=)");
    else if (reg_ref_parse(given, ref, why, size) == REG_OK)
        return ref;
    free(ref);
    return NULL;
}

/* POST ?image=REF: the token first, then the reference; its purge on a thread of its own. */
static enum conn_result purge_image(struct conn *c, struct request *req, const char *query)
{
    enum conn_result ret;
    struct query_args a;
    const char *reason;
    char why[300], *given = NULL;
    int status;
    struct registry_ask *ref = NULL;
    if (http_admin_authorize(c, &ret) < 0)
        return ret;
    if (url_read_query(query, &image_query, &a, &status, &reason) < 0)
        return http_send_error(c, (unsigned int)status, "%s", reason);
    if (!a.url || !a.url_len || a.url_len > REG_REPO_MAX + REG_REF_MAX + 256)
        return http_send_error(c, HTTP_BAD_REQUEST, "%s",
                               a.url && a.url_len ? "image reference too long"
                                                  : "missing image parameter");
    if (!a.url_raw && memmem(a.url, a.url_len, "%00", 3)) /* decoded, it would end there */
        return http_send_error(c, HTTP_BAD_REQUEST, "not an image reference: a NUL byte in it");
    if (!(given = malloc(a.url_len + 1)))
        return http_send_error(c, HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    url_query_value(a.url, a.url_len, a.url_raw, given, a.url_len + 1);
    if (!(ref = read_reference(given, why, sizeof(why)))) {
        free(given);
        return http_send_error(c, HTTP_BAD_REQUEST, "%s", why);
    }
    return start(c, req, (struct purge_aimed){.image = given, .ref = ref});
}

enum conn_result http_purge_prefix(struct conn *c, struct request *req, const char *rest)
{
    enum conn_result ret;
    char *prefix;
    (void)rest;
    assert(http_handling(c, req));
    if (req->state)
        return woken(c, req->state);
    const char *query = strchr(req->uri, '?');
    bool bounded = false;
    query = query ? query + 1 : "";
    if (!strncmp(query, "image=", 6) || !strcmp(query, "image"))
        return purge_image(c, req, query);
    if (!(prefix = asked_prefix(c, query, &bounded, &ret)))
        return ret;
    return start(c, req, (struct purge_aimed){.prefix = prefix, .bounded = bounded});
}

enum conn_result http_purge_url(struct conn *c, struct request *req, char *url)
{
    assert(http_handling(c, req));
    return req->state ? woken(c, req->state) : start(c, req, (struct purge_aimed){.url = url});
}

const char *http_purge_done(struct request *req, bool completed)
{
    struct purge_req *p = req->state;
    (void)completed;
    req->state = NULL;
    if (p)
        offload_leave(&p->job); /* a purge still running holds p until it is done */
    return NULL;
}
