/* GET|HEAD /api/v1/fetch/[FILENAME]?url=URL[&ttl=TTL][&sha256=HEX] */
#include "upstream.h"
#include "buckets.h"
#include "grants.h"
#include "http_fetch.h"
#include "keys.h"
#include "parse.h"
#include "policy.h"
#include "stats.h"
#include "store.h"
#include "url.h"

#include <assert.h>
#include <ctype.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* A streamed body is copied from the growing file into libmicrohttpd's buffer (its callback
 * API has no other way) and sent from there: the bigger the block, the fewer calls and the bigger
 * each send, for us and for the client. But each pass of a libmicrohttpd thread moves a block for
 * every busy connection, and a new client waits a few passes for its first byte. Cold fan-out of
 * 1 GiB to 50 clients (bench/), against 64 KiB blocks: 256 KiB took 8-14 % less of arca's CPU
 * and 10-16 % less of the clients'; the slowest first byte of a round took 12-25 ms (64 KiB:
 * 7-15 ms). 1 MiB saved about as much, but first bytes took up to 70 ms. A response holds its block
 * while it lives, so past STREAM_BIG_MAX of them at once the next ones get small blocks (256 MiB at
 * most). */
#define STREAM_BLOCK_BIG (256 * 1024)
#define STREAM_BLOCK_SMALL (64 * 1024)
#define STREAM_BIG_MAX 1024
#define MMAP_MIN_BYTES (1 << 20)
/* Prepared answers for objects up to this size hold the bytes themselves: headers and body then
 * leave in one send() instead of send() + sendfile(). At most STORE_PREPARED_MAX of them. */
#define SMALL_MAX (64 * 1024)

#define FETCH_MAGIC 0x5f3e7c21u

/* One fetch request, from its first call to its completion callback. */
struct fetch_req {
    unsigned magic;
    struct MHD_Connection *conn;
    struct request *req;
    struct object *obj; /* reference held while streaming; NULL when served from a file */
    struct park park;   /* waits for bytes (store_read) and for a confirmation; owns this */
    enum lookup_result kind;
    int64_t start, end; /* deliver bytes [start, end); end < 0: up to the end of the object */
    int64_t fd_bytes;   /* file responses: body bytes, counted once completed */
    int64_t sent;       /* streamed responses: body bytes handed over so far */
    bool head;
    bool http10;    /* no chunked framing: a cut body could look complete */
    bool plain;     /* no Range, no filename, not draining: a prepared answer may serve it */
    bool big_block; /* holds one of the STREAM_BIG_MAX big blocks */
    bool cut;       /* the body was cut: the download failed or its sha256 was not `expect` */
    bool has_expect;
    uint8_t expect[32];             /* this request's &sha256=: it decides this answer only */
    char *url;                      /* the target's normal form, whole: what is fetched */
    const struct bucket_auth *auth; /* a --bucket's object: signed for it upstream */
    char *key; /* the cache key: url without the parameters that only sign it (url
                  itself when there are none) */
    struct signature sig;
    int64_t ttl;
    bool confirmed;           /* upstream accepted url for the object being answered */
    bool authorised;          /* confirmed, or needing no confirmation: its ttl may act */
    bool looked_again;        /* let go of a download it joined and looked up anew (once) */
    struct object_meta *twin; /* a digest hit: another URL's identical object, its file open in
                                 twin_fd, waiting for upstream to confirm url (NULL: none) */
    int twin_fd;
    /* A signed URL being confirmed with upstream (README, "Signed URLs"): the probe holds a
     * reference to the park until its answer is in confirm_res and the request woken. */
    bool confirming;
    atomic_bool confirm_done;
    struct probe_result *confirm_res;
    int probe_status;         /* upstream's answer to the confirmation a hit waited for (0: none) */
    bool twin_answer;         /* the answer is a digest hit's: another URL's bytes */
    fetch_missing_fn missing; /* S3 has no such object: the caller's answer (NULL: the error) */
    void *missing_arg;
    char filename[256];
};

static bool needs_confirm(const struct fetch_req *r, const struct object_meta *meta);
static enum MHD_Result lookup(struct fetch_req *r);
static bool inherits_failure(const struct fetch_req *r, const struct object_meta *meta);
static enum MHD_Result look_again(struct fetch_req *r);
static enum MHD_Result start_confirm(struct fetch_req *r);

static void suspend_conn(struct park *p)
{
    MHD_suspend_connection(PARK_OWNER(p, struct fetch_req, park)->conn);
}

static void resume_conn(struct park *p)
{
    MHD_resume_connection(PARK_OWNER(p, struct fetch_req, park)->conn);
}

static void req_free(struct park *p)
{
    struct fetch_req *r = PARK_OWNER(p, struct fetch_req, park);
    free(r->confirm_res);
    free(r);
}

static struct fetch_req *req_new(struct MHD_Connection *c, struct request *req,
                                 const char *filename, bool head)
{
    struct fetch_req *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->magic = FETCH_MAGIC;
    r->conn = c;
    r->req = req;
    r->head = head;
    r->http10 = strcmp(req->version, MHD_HTTP_VERSION_1_1) != 0;
    r->end = -1;
    r->twin_fd = -1;
    park_init(&r->park, suspend_conn, resume_conn, req_free);
    if (filename) /* libmicrohttpd has decoded the path: "a%2F..%2Fb" arrives as "a/../b" */
        filename_clean(filename, strlen(filename), r->filename, sizeof(r->filename));
    /* A plain hit may use and leave a prepared answer: the one shared response has no
     * Content-Range, no file name of the client's, no Connection: close and is never a 304. */
    r->plain = !r->filename[0] && !atomic_load(&http_draining) &&
               !MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Range") &&
               !MHD_lookup_connection_value(c, MHD_HEADER_KIND, "If-None-Match") &&
               !MHD_lookup_connection_value(c, MHD_HEADER_KIND, "If-Modified-Since");
    return r;
}

static void count_error(void)
{
    atomic_fetch_add(&stats.failures, 1);
    atomic_fetch_add(&stats.errors, 1);
}

static enum MHD_Result refuse(struct MHD_Connection *c, unsigned int status, const char *reason)
{
    count_error();
    return http_send_error(c, status, "%s", reason);
}

static void add_cache_status(struct MHD_Response *resp, const struct fetch_req *r,
                             const struct object_meta *meta);

/* An error answer about the object or its download (not arca's refusal of the request): it says
 * how the request was handled, like any other answer. */
static enum MHD_Result refuse_object(struct fetch_req *r, const struct object_meta *meta,
                                     unsigned int status, const char *reason)
{
    struct MHD_Response *resp = http_error_response("%s", reason);
    count_error();
    if (resp)
        add_cache_status(resp, r, meta);
    return http_queue(r->conn, status, resp);
}

/* Count a 2xx by how it was served. */
static void count_success(enum lookup_result kind)
{
    atomic_fetch_add(&stats.successes, 1);
    atomic_fetch_add(kind == LOOKUP_HIT    ? &stats.hits
                     : kind == LOOKUP_MISS ? &stats.misses
                                           : &stats.coalesced,
                     1);
}

/* A filename goes out bare when it is a plain token, quoted (RFC 6266) otherwise; quotes,
 * backslashes and control bytes never reach the header. */
static void add_disposition(struct MHD_Response *resp, const char *name)
{
    char value[300], clean[256];
    bool token = true;
    size_t i;
    for (i = 0; name[i] && i < sizeof(clean) - 1; i++) {
        unsigned char ch = (unsigned char)name[i];
        clean[i] = (ch < 0x20 || ch == 0x7f || ch == '"' || ch == '\\') ? '_' : (char)ch;
        if (!isalnum(ch) && !strchr("._-+~", ch))
            token = false;
    }
    clean[i] = '\0';
    snprintf(value, sizeof(value),
             token ? "attachment; filename=%s" : "attachment; filename=\"%s\"", clean);
    MHD_add_response_header(resp, "Content-Disposition", value);
}

/* The file name a client saving the answer should use: the one it put in the path, else the
 * one upstream's Content-Disposition gave, else the target URL's last path segment (as
 * KissCache does: `curl -O -J` on the unnamed route). */
static void add_filename(struct MHD_Response *resp, const struct object_meta *meta,
                         const struct fetch_req *r)
{
    char name[256];
    if (r->filename[0]) {
        add_disposition(resp, r->filename);
    } else if (meta->filename[0]) {
        add_disposition(resp, meta->filename);
    } else {
        url_filename(r->url, name, sizeof(name));
        if (name[0])
            add_disposition(resp, name);
    }
}

/* A strong ETag: the body's sha256, known once the object is complete. */
static bool etag_of(const struct object_meta *meta, char out[68])
{
    if (meta->state != OBJ_COMPLETE)
        return false;
    out[0] = '"';
    format_sha256_hex(meta->digest, out + 1);
    out[65] = '"';
    out[66] = '\0';
    return true;
}

/* The validators, also on a 304. Until the body's sha256 is known (a download being streamed),
 * the origin's own ETag stands for the same bytes. */
static void add_validators(struct MHD_Response *resp, const struct object_meta *meta)
{
    char etag[68];
    if (etag_of(meta, etag))
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
    else if (meta->etag[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, meta->etag);
    if (meta->last_modified[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_LAST_MODIFIED, meta->last_modified);
}

/* Upstream's bytes are shown under arca's own origin, beside its admin UI and listings: a page an
 * origin serves must never run there as one of arca's (README, "Security"). So browsers are told
 * not to guess a type, and to treat the body as a sandboxed document of no origin, with nothing
 * to load and no script to run. Saving it (the usual case) is unaffected. */
#define UPSTREAM_CSP "sandbox; default-src 'none'"

/* Upstream's headers that say what the bytes are, then ours. */
static void add_headers(struct MHD_Response *resp, const struct object_meta *meta,
                        const struct fetch_req *r)
{
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Content-Security-Policy", UPSTREAM_CSP);
    if (meta->content_type[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, meta->content_type);
    if (meta->content_encoding[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_ENCODING, meta->content_encoding);
    add_filename(resp, meta, r);
    add_validators(resp, meta);
    add_cache_status(resp, r, meta);
    if (meta->state == OBJ_COMPLETE) {
        char b64[48], value[64];
        EVP_EncodeBlock((unsigned char *)b64, meta->digest, 32);
        snprintf(value, sizeof(value), "sha-256=:%s:", b64);
        MHD_add_response_header(resp, "Repr-Digest", value);
    }
}

/* Whether `tag` (len bytes, W/ already skipped) is `etag`, compared weakly. */
static bool same_tag(const char *tag, size_t len, const char *etag)
{
    if (!strncmp(etag, "W/", 2))
        etag += 2;
    return etag[0] && strlen(etag) == len && !memcmp(tag, etag, len);
}

/* RFC 9211 Cache-Status, arca's one member, saying how this request was handled (README,
 * "What happened"):
 * - `hit; ttl=N`: served from the cache without asking upstream; N seconds of freshness left.
 *   Such answers also carry Age (RFC 9111 4.2.3: seconds since the object was downloaded or
 *   last revalidated). A 304, 206 or 416 made from a stored object is a hit too.
 * - `fwd=uri-miss`: nothing stored for the URL, downloaded; `collapsed` when the request joined
 *   a download another one had started. An answer about a failed download says the same, and
 *   so does every refused confirmation: worded as any download's refusal, it tells nobody what
 *   was cached.
 * - `fwd=stale; fwd-status=304|200`: an expired version was revalidated; upstream confirmed it
 *   (304) or sent another (200).
 * - `fwd=request; fwd-status=S`: a stored object whose URL is a capability (signed) was served
 *   once upstream had accepted the URL (S, its answer to the one-byte GET).
 * - `fwd=uri-miss; fwd-status=S; detail=digest-hit`: the URL was not stored; upstream accepted it
 *   (S) and another URL's object with the sha256 asked for answered it.
 * Requests arca refuses before looking anything up (400, 403, 414) are its own answers, not the
 * cache's, and carry none (RFC 9211 2: not on locally generated responses). */
static void add_cache_status(struct MHD_Response *resp, const struct fetch_req *r,
                             const struct object_meta *meta)
{
    char value[128], age[24];
    int64_t now = (int64_t)time(NULL);
    bool hit = r->kind == LOOKUP_HIT && meta && meta->state == OBJ_COMPLETE;

    if (hit && r->twin_answer) {
        snprintf(value, sizeof(value), "arca; fwd=uri-miss; fwd-status=%d; detail=digest-hit",
                 r->probe_status);
    } else if (hit && r->probe_status) {
        snprintf(value, sizeof(value), "arca; fwd=request; fwd-status=%d", r->probe_status);
    } else if (hit) {
        snprintf(value, sizeof(value), "arca; hit; ttl=%lld",
                 (long long)(meta->created + meta->ttl - now));
        snprintf(age, sizeof(age), "%lld",
                 (long long)(now > meta->created ? now - meta->created : 0));
        MHD_add_response_header(resp, MHD_HTTP_HEADER_AGE, age);
    } else {
        bool stale = meta && meta->revalidation && meta->state != OBJ_FAILED;
        int n = snprintf(value, sizeof(value), "arca; fwd=%s", stale ? "stale" : "uri-miss");
        if (stale && meta->headers_ready)
            n += snprintf(value + n, sizeof(value) - (size_t)n, "; fwd-status=%d",
                          meta->renewed ? 304 : 200);
        if (r->kind == LOOKUP_COALESCED)
            snprintf(value + n, sizeof(value) - (size_t)n, "; collapsed");
    }
    MHD_add_response_header(resp, "Cache-Status", value);
}

/* Whether entity-tag list `list` (If-None-Match) holds our ETag or the origin's one a streamed
 * answer gave (add_validators), compared weakly (RFC 9110 8.8.3.2: W/ is ignored), or is "*". */
static bool etag_listed(const char *list, const struct object_meta *meta)
{
    char etag[68];
    bool known = etag_of(meta, etag);
    for (const char *p = list; *p;) {
        p += strspn(p, " \t,");
        if (*p == '*')
            return true;
        if (!strncmp(p, "W/", 2))
            p += 2;
        size_t len = strcspn(p, ",");
        while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        if ((known && same_tag(p, len, etag)) || same_tag(p, len, meta->etag))
            return true;
        p += strcspn(p, ",");
    }
    return false;
}

/* Not modified since `since` (If-Modified-Since): only with a Last-Modified to compare. */
static bool unmodified_since(const char *since, const struct object_meta *meta)
{
    int64_t ims, lm;
    return meta->last_modified[0] && parse_http_date(since, &ims) == 0 &&
           parse_http_date(meta->last_modified, &lm) == 0 && lm <= ims;
}

/* RFC 9110 13.2.2: If-None-Match, or else If-Modified-Since, may answer 304 (GET and HEAD).
 * Returns true after queueing it into *ret. */
static bool not_modified(struct fetch_req *r, const struct object_meta *meta, enum MHD_Result *ret)
{
    const char *inm = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "If-None-Match");
    const char *ims = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "If-Modified-Since");
    struct MHD_Response *resp;
    if (inm ? !etag_listed(inm, meta) : !ims || !unmodified_since(ims, meta))
        return false;
    resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (resp) {
        add_validators(resp, meta);
        add_cache_status(resp, r, meta);
    }
    count_success(r->kind);
    *ret = http_queue(r->conn, MHD_HTTP_NOT_MODIFIED, resp);
    return true;
}

/* If-Range (RFC 9110 13.1.5): the Range applies only when the validator is our strong ETag, or
 * the very date of our Last-Modified; otherwise the whole body goes out (200). */
static bool range_applies(const struct fetch_req *r, const struct object_meta *meta)
{
    const char *v = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "If-Range");
    char etag[68];
    int64_t a, b;
    if (!v)
        return true;
    if (v[0] == '"' || !strncmp(v, "W/", 2))
        return (etag_of(meta, etag) && !strcmp(v, etag)) ||
               (meta->etag[0] == '"' && !strcmp(v, meta->etag));
    return meta->last_modified[0] && parse_http_date(v, &a) == 0 &&
           parse_http_date(meta->last_modified, &b) == 0 && a == b;
}

/* Resolve the Range header against the object's length. Returns 0 (r->start/end set, *status
 * 200 or 206) or -1 after queueing a 416. An unknown total (chunked upstream still downloading)
 * or an If-Range that does not match serves 200. */
static int apply_range(struct fetch_req *r, const struct object_meta *meta, unsigned int *status,
                       enum MHD_Result *ret)
{
    const char *hdr = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Range");
    int64_t total = meta->length;
    struct byte_range br;
    *status = MHD_HTTP_OK;
    r->start = 0;
    r->end = total;
    if (!hdr || total < 0 || !range_applies(r, meta))
        return 0;
    switch (parse_range(hdr, total, &br)) {
    case RANGE_NONE:
        return 0;
    case RANGE_UNSATISFIABLE: {
        char cr[64];
        struct MHD_Response *resp = http_error_response("range not satisfiable (object is %lld "
                                                        "bytes)",
                                                        (long long)total);
        snprintf(cr, sizeof(cr), "bytes */%lld", (long long)total);
        if (resp) {
            MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
            add_cache_status(resp, r, meta);
        }
        count_error();
        *ret = http_queue(r->conn, MHD_HTTP_RANGE_NOT_SATISFIABLE, resp);
        return -1;
    }
    case RANGE_OK:
        r->start = br.first;
        r->end = br.last + 1;
        *status = MHD_HTTP_PARTIAL_CONTENT;
        return 0;
    }
    return 0;
}

static void add_content_range(struct MHD_Response *resp, const struct fetch_req *r, int64_t total)
{
    char cr[96];
    snprintf(cr, sizeof(cr), "bytes %lld-%lld/%lld", (long long)r->start, (long long)(r->end - 1),
             (long long)total);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
}

struct mapping {
    void *addr;
    size_t len;
};

static void unmap(void *cls)
{
    struct mapping *m = cls;
    munmap(m->addr, m->len);
    free(m);
}

/* Bytes [start, end) of a finished object's file. Measured on loopback (bench/quick, 16 clients,
 * 256 MiB): the file mapped and handed over as a buffer goes out at 3.8 GB/s and 0.2 ns of CPU
 * per byte, sendfile at 3.0 GB/s and 0.25 ns/byte; but for 4 KiB objects mmap+munmap per request
 * halves the request rate. So large objects are mapped, small ones sent from the descriptor.
 * Finished files are never truncated (a new version is a new inode), so a mapping cannot fault.
 * On success the response owns fd (or the mapping replaced it); on NULL the caller still does. */
static struct MHD_Response *file_response(int fd, int64_t start, int64_t end)
{
    struct MHD_Response *resp = NULL;
    struct mapping *m;

    if (http_cfg->send_mode == SEND_MMAP && end - start >= MMAP_MIN_BYTES &&
        (m = malloc(sizeof(*m)))) {
        m->len = (size_t)end;
        m->addr = mmap(NULL, m->len, PROT_READ, MAP_SHARED, fd, 0);
        if (m->addr != MAP_FAILED) {
            resp = MHD_create_response_from_buffer_with_free_callback_cls(
                (size_t)(end - start), (char *)m->addr + start, unmap, m);
            if (!resp)
                munmap(m->addr, m->len);
        }
        if (!resp)
            free(m);
    }
    if (!resp)
        resp =
            MHD_create_response_from_fd_at_offset64((uint64_t)(end - start), fd, (uint64_t)start);
    else
        close(fd); /* the mapping keeps the file alive */
    return resp;
}

/* One response shared by every plain hit on an object: headers built once, file open or mapped
 * once (see struct prepared in store.h). libmicrohttpd counts the response's own references, so
 * connections still sending it keep it alive after the store lets go. */
struct prepared_answer {
    struct prepared base;
    struct MHD_Response *resp;
};

static void destroy_answer(struct prepared *p)
{
    struct prepared_answer *a = (struct prepared_answer *)p;
    MHD_destroy_response(a->resp);
    free(a);
}

static enum MHD_Result queue_prepared(struct fetch_req *r, const struct object_meta *meta,
                                      struct prepared *p)
{
    enum MHD_Result ret;
    r->fd_bytes = r->head ? 0 : meta->length;
    count_success(r->kind);
    ret = http_queue_shared(r->conn, MHD_HTTP_OK, ((struct prepared_answer *)p)->resp);
    prepared_put(p);
    return ret;
}

/* Offer a freshly built plain answer to the store, then send it. */
static enum MHD_Result share_and_queue(struct fetch_req *r, const struct object_meta *meta,
                                       struct MHD_Response *resp)
{
    struct prepared_answer *a = malloc(sizeof(*a));
    if (!a)
        return http_queue(r->conn, MHD_HTTP_OK, resp);
    atomic_init(&a->base.refs, 1);
    a->base.destroy = destroy_answer;
    a->base.until = (int64_t)time(NULL) + 1; /* its Age and ttl are this second's */
    a->resp = resp;
    store_attach_prepared(meta, &a->base);
    return queue_prepared(r, meta, &a->base);
}

/* A small object's bytes in memory (see SMALL_MAX); on success the descriptor is closed. */
static struct MHD_Response *small_response(int fd, int64_t length)
{
    struct MHD_Response *resp = NULL;
    char *buf = malloc(length > 0 ? (size_t)length : 1);
    if (buf && pread(fd, buf, (size_t)length, 0) == (ssize_t)length)
        resp = MHD_create_response_from_buffer((size_t)length, buf, MHD_RESPMEM_MUST_FREE);
    if (!resp)
        free(buf);
    else
        close(fd);
    return resp;
}

/* A finished object goes out from its prepared answer or its file; see file_response(). */
static enum MHD_Result respond_from_file(struct fetch_req *r, const struct object_meta *meta,
                                         int fd, struct prepared *prep)
{
    enum MHD_Result ret = MHD_NO;
    unsigned int status;
    struct MHD_Response *resp;

    if (prep)
        return queue_prepared(r, meta, prep);
    if (not_modified(r, meta, &ret) || apply_range(r, meta, &status, &ret) < 0) {
        close(fd);
        return ret;
    }
    r->fd_bytes = r->head ? 0 : r->end - r->start;
    if (r->plain && meta->length <= SMALL_MAX)
        resp = small_response(fd, meta->length);
    else
        resp = file_response(fd, r->start, r->end);
    if (!resp) {
        close(fd);
        return MHD_NO;
    }
    add_headers(resp, meta, r);
    if (status == MHD_HTTP_PARTIAL_CONTENT) {
        add_content_range(resp, r, meta->length);
    } else if (r->plain && meta->hit && !r->probe_status) {
        /* a second hit: the object is worth an answer kept (one that says upstream was asked,
         * Cache-Status, is this request's only) */
        return share_and_queue(r, meta, resp);
    }
    count_success(r->kind);
    return http_queue(r->conn, status, resp);
}

static ssize_t read_body(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct fetch_req *r = cls;
    int64_t off = r->start + (int64_t)pos;
    struct read_terms terms = {r->end, r->has_expect ? r->expect : NULL};
    ssize_t n;

    if (r->end >= 0 && off >= r->end) {
        if (!r->has_expect)
            return MHD_CONTENT_READER_END_OF_STREAM;
        max = 0; /* the last byte went out after the check; an empty body still needs it */
    } else if (r->end >= 0 && (int64_t)max > r->end - off) {
        max = (size_t)(r->end - off);
    }
    n = store_read(r->obj, off, buf, max, &terms, &r->park);
    if (n > 0) {
        atomic_fetch_add(&stats.bytes_served, (int64_t)n);
        r->sent += n;
        return n;
    }
    if (n == 0)
        return 0; /* suspended until the upstream thread appends bytes */
    if (n == STORE_READ_END)
        return MHD_CONTENT_READER_END_OF_STREAM;
    /* A failed or mismatching body must never look complete: cut it (no final chunk). */
    r->cut = true;
    return MHD_CONTENT_READER_END_WITH_ERROR;
}

static atomic_int big_blocks; /* streaming responses holding a big block */

/* No bigger than the body (when its length is known): small objects stream too. HEAD sends no
 * body, so it never takes a big block. */
static size_t stream_block(struct fetch_req *r, int64_t body)
{
    if (body >= 0 && body <= STREAM_BLOCK_SMALL)
        return body > 0 ? (size_t)body : 1;
    if (r->head)
        return STREAM_BLOCK_SMALL;
    if (atomic_fetch_add(&big_blocks, 1) >= STREAM_BIG_MAX) {
        atomic_fetch_sub(&big_blocks, 1);
        return STREAM_BLOCK_SMALL;
    }
    r->big_block = true;
    return body >= 0 && body < STREAM_BLOCK_BIG ? (size_t)body : STREAM_BLOCK_BIG;
}

/* Whether a complete object answers this request's sha256 (true when it gave none). */
static bool digest_ok(const struct fetch_req *r, const struct object_meta *meta)
{
    return !r->has_expect || memcmp(meta->digest, r->expect, 32) == 0;
}

/* A request with &sha256= on an object still downloading: its body may yet be cut, so it goes
 * out chunked, without Content-Length (clients that do not check a length, python-requests
 * among them, still see a missing final chunk as an error). HTTP/1.0 has no chunks: its answer
 * waits for the object to complete instead. Requests without sha256 keep their length. */
static bool digest_pending(const struct fetch_req *r, const struct object_meta *meta)
{
    return r->has_expect && meta->state != OBJ_COMPLETE;
}

/* Stream an object still downloading (or just finished) from its growing file. */
static enum MHD_Result respond_streaming(struct fetch_req *r)
{
    struct object_meta meta;
    enum MHD_Result ret = MHD_NO;
    unsigned int status;
    struct MHD_Response *resp;
    int64_t body;

    if (!store_wait(r->obj,
                    r->has_expect && (r->http10 || http_cfg->digest_framing == FRAMING_HOLD),
                    &r->park))
        return MHD_YES; /* suspended; libmicrohttpd calls us again once resumed */
    store_snapshot(r->obj, &meta);
    /* joining a download another URL started: asked first, so that a URL upstream refuses
     * learns nothing of the download, not even how it ended */
    if (needs_confirm(r, &meta))
        return start_confirm(r);
    if (inherits_failure(r, &meta))
        return look_again(r);
    if (meta.state == OBJ_FAILED && meta.error_status == 404 && r->missing)
        return r->missing(r->missing_arg); /* a folder's name, maybe */
    if (meta.state == OBJ_FAILED || !meta.headers_ready)
        return refuse_object(r, &meta, meta.error_status ? (unsigned int)meta.error_status : 502,
                             meta.error[0] ? meta.error : "download failed");
    if (meta.state == OBJ_COMPLETE && !digest_ok(r, &meta))
        return refuse_object(r, &meta, MHD_HTTP_BAD_GATEWAY,
                             "the object's sha256 does not match the requested sha256");
    if (not_modified(r, &meta, &ret) || apply_range(r, &meta, &status, &ret) < 0)
        return ret;
    body = r->end >= 0 && !digest_pending(r, &meta) ? r->end - r->start : -1;
    resp = MHD_create_response_from_callback(body >= 0 ? (uint64_t)body : MHD_SIZE_UNKNOWN,
                                             stream_block(r, r->end >= 0 ? r->end - r->start : -1),
                                             read_body, r, NULL);
    if (!resp)
        return MHD_NO;
    add_headers(resp, &meta, r);
    if (status == MHD_HTTP_PARTIAL_CONTENT)
        add_content_range(resp, r, meta.length);
    count_success(r->kind);
    return http_queue(r->conn, status, resp);
}

/* Check the query once, at the edge (the rule is url.h's): r->url gets the target's normal
 * form. Returns 0 or -1 after queueing a 400/403/414. */
static int check_request(struct MHD_Connection *c, const struct request *req, struct fetch_req *r,
                         int64_t *ttl, enum MHD_Result *ret)
{
    const char *query = strchr(req->uri, '?'), *why;
    struct fetch_params p;
    int status;

    query = query ? query + 1 : "";
    p.url_size = URL_BUF_SIZE(strlen(query));
    p.url = r->url = malloc(p.url_size);
    *ttl = __atomic_load_n(&http_cfg->default_ttl, __ATOMIC_RELAXED); /* SIGHUP may change it */
    const char *refusal = http_fetch_refusal(c);
    if (refusal)
        *ret = refuse(c, MHD_HTTP_FORBIDDEN, refusal);
    else if (!r->url)
        *ret = refuse(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    else if (url_parse_fetch_query(query, (size_t)http_cfg->max_url_len, &p, &status, &why) < 0)
        *ret = refuse(c, (unsigned int)status, why);
    else if (p.has_ttl && parse_ttl(p.ttl, ttl) < 0)
        *ret = refuse(c, MHD_HTTP_BAD_REQUEST, "bad ttl: expected <int>d|h|m|s, positive");
    else if (p.has_sha256 && parse_sha256_hex(p.sha256, r->expect) < 0)
        *ret = refuse(c, MHD_HTTP_BAD_REQUEST, "bad sha256: expected 64 hex digits");
    else {
        r->has_expect = p.has_sha256;
        return 0;
    }
    return -1;
}

/* --- signed URLs ------------------------------------------------------------------------- */

/* Whether this request's URL must be confirmed with upstream before the object it names under
 * its key is handed out: a signature is a capability, and a hit must not leak the object to a
 * URL upstream would refuse. That holds for a signed URL, and for any URL (unsigned too) of an
 * object that was downloaded through a signed one. */
static bool needs_confirm(const struct fetch_req *r, const struct object_meta *meta)
{
    return (r->sig.is_signed || meta->signed_key) && !r->confirmed && !http_cfg->trust_signed &&
           !grants_check(r->url, (int64_t)time(NULL));
}

/* Upstream thread: the probe's answer; the request picks it up once woken. */
static void on_probe(const struct probe_result *res, void *arg)
{
    struct fetch_req *r = arg;
    *r->confirm_res = *res;
    atomic_store(&r->confirm_done, true);
    park_wake(&r->park);
    park_put(&r->park);
}

/* Suspend the request and ask upstream about its exact URL. */
static enum MHD_Result start_confirm(struct fetch_req *r)
{
    if (!r->confirm_res && !(r->confirm_res = malloc(sizeof(*r->confirm_res))))
        return refuse(r->conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    atomic_store(&r->confirm_done, false);
    r->confirming = true;
    atomic_fetch_add(&stats.confirmations, 1);
    MHD_suspend_connection(r->conn);
    park_hold(&r->park); /* the probe's */
    if (upstream_probe(r->url, on_probe, r) < 0) {
        park_put(&r->park);
        MHD_resume_connection(r->conn);
        r->confirming = false;
        return refuse(r->conn, MHD_HTTP_SERVICE_UNAVAILABLE,
                      "cannot ask upstream to confirm the URL now");
    }
    return MHD_YES;
}

/* Whether upstream's answer names the version `meta` describes: its ETag when it had one, else
 * its Last-Modified; with neither, nothing shows it is the same, and it is not taken as such. */
static bool same_version(const struct probe_result *res, const struct object_meta *meta)
{
    if (res->total >= 0 && meta->length >= 0 && res->total != meta->length)
        return false;
    if (meta->etag[0])
        return strcmp(res->etag, meta->etag) == 0;
    return meta->last_modified[0] && strcmp(res->last_modified, meta->last_modified) == 0;
}

/* Whether upstream refused the exact URL (its status goes to the client, *ret queued). When it
 * accepted it, the URL is remembered as accepted. */
static bool confirm_refused(struct fetch_req *r, const struct probe_result *res,
                            enum MHD_Result *ret)
{
    if (res->status >= 200 && res->status < 300) {
        grants_add(r->url, keys_grant_until(http_cfg, &r->sig, (int64_t)time(NULL)));
        r->confirmed = true;
        return false;
    }
    atomic_fetch_add(&stats.confirm_refused, 1);
    count_error();
    /* Worded as a download's refusal of an uncached URL would be, whatever was cached (a hit, a
     * download joined, a digest's twin): the answer tells nothing of the cache. */
    unsigned int status = res->status >= 400 ? (unsigned int)res->status : 502;
    struct MHD_Response *resp;
    if (res->status == 0)
        resp = http_error_response("%s", res->failure);
    else
        resp = http_error_response(
            "%s %d", res->status >= 400 ? "upstream answered" : "unexpected upstream status",
            res->status);
    if (resp) /* as a failed download's: see add_cache_status */
        MHD_add_response_header(resp, "Cache-Status", "arca; fwd=uri-miss");
    if (res->status == 0)
        status = res->failure_status ? (unsigned int)res->failure_status : 502;
    *ret = http_queue(r->conn, status, resp);
    return true;
}

/* --- the request ------------------------------------------------------------------------- */

/* Whether the request's ttl, or the object's own, says a hit is too old for this request. */
static bool expired_for(const struct fetch_req *r, const struct object_meta *meta)
{
    int64_t age = (int64_t)time(NULL) - meta->created;
    return age >= meta->ttl || age >= r->ttl;
}

/* Who asks, for the store: only an authorised request's ttl acts on the cached object. A signed
 * URL upstream accepted before (a grant) is authorised at once: it will not be confirmed again,
 * so this lookup is the one where its ttl acts. */
static enum lookup_auth lookup_auth(const struct fetch_req *r)
{
    if (r->authorised || r->confirmed || http_cfg->trust_signed)
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

/* Let go of the download joined and look the URL up again, as the authorised request it is. */
static enum MHD_Result look_again(struct fetch_req *r)
{
    store_release(r->obj);
    r->obj = NULL;
    r->looked_again = true;
    return lookup(r);
}

/* Authorisation comes before anything that depends on the cached object: a URL upstream would
 * refuse learns nothing from its sha256 (the same refusal whether it matches or not). */
static enum MHD_Result answer_hit(struct fetch_req *r, const struct object_meta *meta, int fd,
                                  struct prepared *prep)
{
    bool confirm = needs_confirm(r, meta);
    if (!confirm && !r->authorised && (expired_for(r, meta) || r->ttl < meta->ttl)) {
        /* authorised now (accepted before, or no check applies): its ttl may act, shortening
         * the object's life or finding it expired */
        if (fd >= 0)
            close(fd);
        prepared_put(prep);
        r->authorised = true;
        return lookup(r);
    }
    if (confirm || !digest_ok(r, meta)) {
        if (fd >= 0)
            close(fd);
        prepared_put(prep);
        if (confirm) /* looked up again once upstream has answered */
            return start_confirm(r);
        return refuse_object(r, meta, MHD_HTTP_BAD_GATEWAY,
                             "cached object does not match the requested sha256");
    }
    if (r->sig.is_signed)
        atomic_fetch_add(&stats.signed_hits, 1);
    return respond_from_file(r, meta, fd, prep);
}

/* What a lookup found: answer from the cache, join a download or start one. */
static enum MHD_Result answer_lookup(struct fetch_req *r, struct object *obj, int fd,
                                     struct prepared *prep, const struct object_meta *meta)
{
    if (r->kind == LOOKUP_UNAVAILABLE)
        return refuse(r->conn, MHD_HTTP_SERVICE_UNAVAILABLE, meta->error);
    if (r->kind == LOOKUP_HIT)
        return answer_hit(r, meta, fd, prep);
    if (!obj)
        return refuse(r->conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    r->obj = obj;
    if (r->kind == LOOKUP_MISS) {
        /* this URL is the one fetched: upstream's answer to it is every joiner's */
        struct fetch_source src = {
            r->url, r->sig.is_signed ? keys_grant_until(http_cfg, &r->sig, (int64_t)time(NULL)) : 0,
            r->auth};
        r->confirmed = true;
        upstream_fetch(obj, &src);
    }
    return respond_streaming(r);
}

static enum MHD_Result lookup(struct fetch_req *r)
{
    struct object *obj;
    struct object_meta meta;
    struct prepared *prep = NULL;
    int fd;
    r->kind = store_lookup_as(r->key, r->ttl, lookup_auth(r), r->sig.is_signed, &obj, &fd,
                              r->plain ? &prep : NULL, &meta);
    return answer_lookup(r, obj, fd, prep, &meta);
}

/* A digest hit's confirmation was accepted: the twin's bytes answer this request, unless
 * upstream's length says the URL serves another file (then it is downloaded). Only this request:
 * the URL's other clients get its own bytes, from its own download (README, "Same file, other
 * URL"). What the answer says of the URL is the URL's own upstream's word, not the twin's. */
static enum MHD_Result answer_twin(struct fetch_req *r, const struct probe_result *res)
{
    struct object_meta *meta = r->twin;
    int fd = r->twin_fd;
    enum MHD_Result ret;
    r->twin = NULL;
    r->twin_fd = -1;
    if (res->total >= 0 && res->total != meta->length) {
        close(fd);
        free(meta);
        return lookup(r);
    }
    snprintf(meta->last_modified, sizeof(meta->last_modified), "%s", res->last_modified);
    snprintf(meta->content_type, sizeof(meta->content_type), "%s", res->content_type);
    snprintf(meta->content_encoding, sizeof(meta->content_encoding), "%s", res->content_encoding);
    snprintf(meta->filename, sizeof(meta->filename), "%s", res->filename);
    snprintf(meta->etag, sizeof(meta->etag), "%s", res->etag); /* what If-None-Match may name */
    r->kind = LOOKUP_HIT;                                      /* not a byte from upstream */
    r->twin_answer = true;
    r->plain = false; /* names this URL's file: never the twin's prepared answer */
    atomic_fetch_add(&stats.digest_hits, 1);
    ret = respond_from_file(r, meta, fd, NULL);
    free(meta);
    return ret;
}

/* A request with &sha256= for a URL not cached: another URL's object with that digest may answer
 * it, once upstream has confirmed this URL (a digest alone never unlocks a file). */
static enum MHD_Result lookup_twin(struct fetch_req *r)
{
    struct object_meta *meta = malloc(sizeof(*meta));
    int fd;
    if (!meta)
        return refuse(r->conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    if (store_open_twin(r->key, r->expect, &fd, meta) != LOOKUP_DIGEST) {
        free(meta);
        return lookup(r);
    }
    r->twin = meta;
    r->twin_fd = fd;
    return start_confirm(r);
}

/* Upstream answered the confirmation. Refused: its status goes to the client. Accepted: a
 * download joined goes on if it is the version upstream has now; a hit is looked up again and
 * served if it is that version, else dropped and fetched again through this URL. */
static enum MHD_Result after_confirm(struct fetch_req *r)
{
    struct object_meta meta;
    struct probe_result res;
    struct object *obj;
    struct prepared *prep = NULL;
    enum MHD_Result ret = MHD_NO;
    int64_t length;
    int fd;

    if (!atomic_load(&r->confirm_done))
        return MHD_YES; /* not woken by the probe: still waiting */
    res = *r->confirm_res;
    r->confirming = false;
    if (confirm_refused(r, &res, &ret))
        return ret;
    r->probe_status = res.status;
    if (r->twin)
        return answer_twin(r, &res);
    if (r->obj) {
        store_snapshot(r->obj, &meta);
        /* A failed download was another URL's (inherits_failure). One of the version upstream
         * confirmed is joined again, as the authorised request this is, so its ttl acts. */
        if (inherits_failure(r, &meta) ||
            (same_version(&res, &meta) && r->ttl < meta.ttl && !r->looked_again))
            return look_again(r);
        if (same_version(&res, &meta))
            return respond_streaming(r);
        /* A running download of another version: looking up again would join it once more. */
        atomic_fetch_add(&stats.confirm_changed, 1);
        return refuse_object(r, &meta, MHD_HTTP_BAD_GATEWAY,
                             "upstream now serves another version than the one downloading; "
                             "retry");
    }
    r->kind = store_lookup_as(r->key, r->ttl, lookup_auth(r), r->sig.is_signed, &obj, &fd,
                              r->plain ? &prep : NULL, &meta);
    if (r->kind == LOOKUP_HIT && !same_version(&res, &meta)) {
        atomic_fetch_add(&stats.confirm_changed, 1);
        if (fd >= 0)
            close(fd);
        prepared_put(prep);
        store_purge(r->key, &length);
        return lookup(r);
    }
    return answer_lookup(r, obj, fd, prep, &meta);
}

/* The cache key: the URL itself (no copy) unless signing parameters leave it. */
static int set_key(struct fetch_req *r)
{
    r->key = r->url;
    r->sig = (struct signature){false, 0};
    if (!strchr(r->url, '?') || http_cfg->exact_keys)
        return 0; /* the common case on the hit path: nothing to parse */
    char *key = keys_cache_url_dup(http_cfg, r->url, &r->sig);
    if (!key)
        return -1;
    if (r->sig.is_signed)
        r->key = key;
    else
        free(key);
    return 0;
}

static enum MHD_Result begin(struct MHD_Connection *c, struct request *req, const char *filename,
                             bool head)
{
    enum MHD_Result ret = MHD_NO;
    struct fetch_req *r;

    atomic_fetch_add(&stats.requests, 1);
    if (!(r = req_new(c, req, filename, head)))
        return MHD_NO;
    req->state = r;
    if (check_request(c, req, r, &r->ttl, &ret) < 0)
        return ret;
    if (set_key(r) < 0)
        return refuse(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    return r->has_expect ? lookup_twin(r) : lookup(r);
}

/* ?ttl= and ?sha256= of a /browse/ file, as the fetch query gives them. */
static int browse_params(struct fetch_req *r, enum MHD_Result *ret)
{
    const char *ttl = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "ttl");
    const char *sha = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "sha256");
    r->ttl = __atomic_load_n(&http_cfg->default_ttl, __ATOMIC_RELAXED);
    const char *refusal = http_fetch_refusal(r->conn);
    if (refusal)
        *ret = refuse(r->conn, MHD_HTTP_FORBIDDEN, refusal);
    else if (ttl && parse_ttl(ttl, &r->ttl) < 0)
        *ret = refuse(r->conn, MHD_HTTP_BAD_REQUEST, "bad ttl: expected <int>d|h|m|s, positive");
    else if (sha && parse_sha256_hex(sha, r->expect) < 0)
        *ret = refuse(r->conn, MHD_HTTP_BAD_REQUEST, "bad sha256: expected 64 hex digits");
    else {
        r->has_expect = sha != NULL;
        return 0;
    }
    return -1;
}

enum MHD_Result fetch_object(struct MHD_Connection *c, struct request *req, char *url,
                             const struct bucket_auth *auth, fetch_missing_fn missing, void *arg,
                             struct fetch_req **out)
{
    enum MHD_Result ret = MHD_NO;
    struct fetch_req *r;
    assert(http_handling(req));
    atomic_fetch_add(&stats.requests, 1);
    if (!(*out = r = req_new(c, req, NULL, http_is_head(req)))) {
        free(url);
        return MHD_NO;
    }
    r->url = r->key = url;
    r->auth = auth;
    r->missing = missing;
    r->missing_arg = arg;
    if (browse_params(r, &ret) < 0)
        return ret;
    /* a twin is confirmed by an unsigned probe, which S3 refuses for a bucket arca signs for:
     * such a file is looked up as itself */
    return r->has_expect && auth->anonymous ? lookup_twin(r) : lookup(r);
}

enum MHD_Result fetch_resume(struct fetch_req *r)
{
    assert(r->magic == FETCH_MAGIC && http_handling(r->req));
    if (r->confirming)
        return after_confirm(r);
    return respond_streaming(r);
}

enum MHD_Result http_fetch(struct MHD_Connection *c, struct request *req, const char *rest)
{
    assert(http_handling(req));
    if (req->state)
        return fetch_resume(req->state);
    return begin(c, req, rest[0] == '/' && rest[1] ? rest + 1 : NULL, http_is_head(req));
}

/* What the request's answer was, for the access log; *sent the body bytes it handed over. */
static const char *let_go(struct fetch_req *r, enum MHD_RequestTerminationCode toe, int64_t *sent)
{
    const char *cache = r->cut                   ? "CUT"
                        : r->kind == LOOKUP_HIT  ? "HIT"
                        : r->kind == LOOKUP_MISS ? "MISS"
                                                 : "COALESCED";
    *sent = r->sent;
    if (r->big_block)
        atomic_fetch_sub(&big_blocks, 1);
    if (r->twin_fd >= 0)
        close(r->twin_fd);
    free(r->twin);
    if (r->obj) {
        store_unwait(r->obj, &r->park);
        store_release(r->obj);
    } else if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK) {
        atomic_fetch_add(&stats.bytes_served, r->fd_bytes);
        *sent = r->fd_bytes;
    }
    if (r->key != r->url)
        free(r->key);
    free(r->url);
    park_leave(&r->park); /* a confirmation still running holds r until its answer */
    return cache;
}

/* An error line (a status of 400 or more, or none queued) is ERROR whatever the object was; an
 * answer from the object says how it was served, and its bytes are the body's. */
const char *fetch_finish(struct fetch_req *r, struct request *req,
                         enum MHD_RequestTerminationCode toe)
{
    const char *cache = req->status >= 400 || req->status == 0 ? "ERROR" : NULL;
    int64_t sent;
    if (r) {
        const char *kind;
        assert(r->magic == FETCH_MAGIC && r->req == req);
        kind = let_go(r, toe, &sent);
        if (!cache) {
            cache = kind;
            req->bytes = sent;
        }
    }
    return cache ? cache : "ERROR";
}

const char *http_fetch_done(struct request *req, enum MHD_RequestTerminationCode toe)
{
    const char *cache = fetch_finish(req->state, req, toe);
    req->state = NULL;
    return cache;
}
