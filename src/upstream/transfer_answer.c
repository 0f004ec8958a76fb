/* An attempt's answer (transfer_answer.h): what its headers decide (the body begun or
 * continued, started over, a new version, a refusal, a 304 that renews the expired version) and
 * its bytes, hashed and appended. */
#include "upstream/transfer_answer.h"
#include "config/buckets.h"
#include "rules/grants.h"
#include "rules/terms.h"
#include "log/log.h"
#include "stats/stats.h"

#include <stdio.h>
#include <strings.h>
#include <string.h>

void transfer_drop_fill(struct transfer *t)
{
    if (!t->fill)
        return;
    t->received += fill_received(t->fill);
    fill_retire(t->fill);
    t->fill = NULL;
}

void transfer_fail(struct transfer *t, int status, const char *reason)
{
    if (t->failed)
        return;
    t->failed = true;
    transfer_drop_fill(t);
    t->st->fail(t->obj, status, reason);
    log_error("fetch %s: %d %s", t->url, status, t->st->error(t->obj));
}

void transfer_fail_as_object(struct transfer *t)
{
    transfer_fail(t, t->st->error_status(t->obj), t->st->error(t->obj));
}

/* The object's Content-Length as the download knows it, -1 when unknown. */
static int64_t known_length(struct transfer *t)
{
    struct download_progress p;
    t->st->progress(t->obj, &p);
    return p.length;
}

static struct upstream_headers headers_of(const struct transfer *t)
{
    const struct upstream_response *r = &t->resp;
    bool mirrored = t->source != t->asked && t->pick.origin_said;
    return (struct upstream_headers){r->content_type,
                                     r->content_encoding,
                                     r->filename,
                                     mirrored ? t->pick.origin_date : r->last_modified,
                                     mirrored ? t->pick.origin_etag : r->etag,
                                     t->hops};
}

/* The download goes on as a new object for its URL (store_new_version): readers of the old one
 * are cut. Its next attempt begins once the persistence thread has made its file (OPENING). */
static int new_version(struct transfer *t, const char *why, bool failure)
{
    struct object *old = t->obj, *fresh = t->st->new_version(old, why, failure);
    if (!fresh) {
        log_error("fetch %s: cannot start a new version (out of memory); failed", t->url);
        t->failed = true;
        return -1;
    }
    t->obj = fresh;
    t->url = t->pick.url = t->st->url(fresh);
    t->st->release(old);
    if (t->st->begin_file(fresh, t->asked, t->loop->wake, NULL) < 0) {
        transfer_fail(t, 500, "out of memory");
        return -1;
    }
    return 0;
}

/* A check of the bytes kept (after a parent broke off) ends with them. */
static void drop_prefix_check(struct transfer *t)
{
    EVP_MD_CTX_free(t->prefix_check);
    t->prefix_check = NULL;
}

/* The kept bytes cannot be continued (upstream changed the file, or nothing proves it did not):
 * start over from byte 0, with a body of `length` bytes described by `h` (NULL: not known yet).
 * Readers that hold nothing of the old body the new one contradicts go on with the same object;
 * otherwise they are cut and a new version takes over. Returns 0 (the same object, emptied), 1
 * (a new one, waiting for its file) or -1 (the download failed). */
int transfer_start_over(struct transfer *t, int64_t length, const struct upstream_headers *h,
                        const char *why)
{
    int rc;
    transfer_drop_fill(t); /* its ranges' bytes go with the body they belonged to */
    rc = t->st->restart(t->obj, length, h);
    if (rc < 0) {
        transfer_fail_as_object(t);
        return -1;
    }
    drop_prefix_check(t);
    log_info("fetch %s: %s; starting over from byte 0%s", t->url, why,
             rc > 0 ? ", as a new version (clients of the old one are cut)" : "");
    atomic_fetch_add(&stats.download_restarts, 1);
    t->offset = 0;
    memset(&t->kept, 0, sizeof(t->kept));
    EVP_DigestInit_ex(t->sha, EVP_sha256(), NULL);
    if (rc == 0)
        return 0;
    return new_version(t, why, true) < 0 ? -1 : 1;
}

/* A parent's answer: the object is as old as the parent's copy and fresh for what is left of
 * the parent's freshness, never past its own terms' ttl counted from the parent's download (a
 * 304 renews nothing from now), nor at all when the parent kept no copy (stored=?0: it vouches
 * for nothing after this answer); it shows the parent's Cache-Status. */
static void transfer_parent_freshness(struct transfer *t)
{
    const struct parent_ask *p = &t->parent;
    int64_t own = t->terms.object.ttl - p->age;
    int64_t fresh = p->not_stored ? 0 : p->has_left && p->left < own ? p->left : own;
    t->st->from_parent(t->obj, p->age, fresh, p->cache_status);
}

/* Each URL the parent's download went through (its Arca-Redirect lines) is judged by this
 * arca's rules as a redirect it follows itself is (easy.c): one under another allow-network
 * fails the download with the same 403, nothing kept under the URL asked. */
static bool parent_redirects_allowed(struct transfer *t)
{
    char hop[HEADER_REDIRECTS_MAX], why[sizeof(t->h.refused)];
    for (const char *p = t->hops; *p;) {
        size_t len = strcspn(p, "\n");
        memcpy(hop, p, len);
        hop[len] = '\0';
        if (!terms_same_access(t->asked, hop, why, sizeof(why))) {
            transfer_fail(t, 403, why);
            return false;
        }
        p += len + (p[len] == '\n');
    }
    return true;
}

/* The parent's answer (parent.h): its own failure ends the attempt (the download goes to the
 * origin, transfer.c); the 206 that a first attempt's "Range: bytes=0-" brings is the whole
 * body. With --parent-only its statuses are judged as any upstream's. -1 ends the attempt. */
static int transfer_parent_answer(struct transfer *t)
{
    struct upstream_response *r = &t->resp;
    enum parent_fault f;
    /* not its own failure: a 4xx is about the URL (one too long for it, say: any client can
     * ask for one), a 5xx with a Cache-Status its upstream's (but 507, its disk, unless it
     * says the object is too large for it: the URL's too) */
    t->parent_relayed = t->status >= 400 && (t->status < 500 || t->parent.too_large ||
                                             (t->status != 507 && t->parent.cache_status[0]));
    if (!t->terms.sources.parent_only && parent_judge(&t->parent, t->status, &f) < 0) {
        t->parent_failed = f;
        parent_status_words(&t->parent, t->status, t->parent_why, sizeof(t->parent_why));
        return -1;
    }
    if (!parent_redirects_allowed(t))
        return -1;
    if (t->status == 206 && t->offset == 0 && r->has_range && r->range_first == 0 &&
        (r->range_total < 0 || r->range_last + 1 == r->range_total)) {
        if (r->content_length >= 0 && r->content_length != r->range_last + 1) {
            t->parent_failed = PARENT_LIE;
            snprintf(t->parent_why, sizeof(t->parent_why),
                     "its Content-Length is not its Content-Range's");
            return -1;
        }
        t->status = 200;
        r->content_length = r->range_total;
        r->has_range = false;
    }
    return 0;
}

/* A parent whose answer does not continue what it sent before (another version, another
 * range) lied, or changed under the download: either way, the origin (-1 ends the attempt). */
static bool transfer_parent_lied(struct transfer *t, const struct verdict *v)
{
    /* a refusal the parent relays is a 4xx (parent_judge); any other end it gives (a 304 to
     * an unconditional ask, a 206 to the whole object) is a lie */
    bool renews = t->conditional && t->status == 304;
    bool lie = v->kind == VERDICT_REFETCH || (v->kind == VERDICT_RESTART && t->offset > 0) ||
               (v->kind == VERDICT_FAIL && !renews && (t->status < 400 || t->status >= 500));
    if (!t->parent.active || t->terms.sources.parent_only || !lie)
        return false;
    t->parent_failed = PARENT_LIE;
    snprintf(t->parent_why, sizeof(t->parent_why), "%s", v->reason);
    return true;
}
int transfer_start_afresh(struct transfer *t, const char *why)
{
    struct download_progress p;
    transfer_drop_fill(t);
    drop_prefix_check(t);
    t->st->progress(t->obj, &p);
    t->offset = 0;
    memset(&t->kept, 0, sizeof(t->kept));
    EVP_DigestInit_ex(t->sha, EVP_sha256(), NULL);
    if (!p.headers_ready && p.have == 0)
        return 0; /* nothing of it reached the object: the origin's answer begins it */
    atomic_fetch_add(&stats.download_restarts, 1);
    int rc = t->st->restart_afresh(t->obj);
    if (rc < 0) {
        transfer_fail_as_object(t);
        return -1;
    }
    if (rc == 0) { /* no reader answered with the parent's headers: the same object */
        log_info("fetch %s: %s; starting over from the origin", t->url, why);
        return 0;
    }
    log_info("fetch %s: %s; starting over from the origin, as a new version (clients of the "
             "old one are cut)",
             t->url, why);
    return new_version(t, why, false) < 0 ? -1 : 1;
}

static int begin_full_body(struct transfer *t)
{
    struct upstream_headers h = headers_of(t);
    validators_of(&t->resp, &t->kept);
    asked_origin(t->h.easy, t->source, t->body_host, sizeof(t->body_host));
    t->st->staleness(t->obj, t->resp.stale_if_error, t->resp.stale_while_revalidate);
    if (t->parent.active) /* before its readers wake to the headers */
        transfer_parent_freshness(t);
    if (t->st->begin_body(t->obj, t->resp.content_length, &h, resume_validator(&t->kept)) < 0) {
        transfer_fail_as_object(t);
        return -1;
    }
    return 0;
}

/* A resume was answered with something that does not continue the kept bytes (v: RESTART, a
 * whole body; REFETCH, a 206 that proves nothing or another version). A whole body is the new
 * version's, and is taken at once when the same object goes on; otherwise this response is
 * dropped (-1 to curl: t->start_over) and the next attempt asks again from byte 0. */
static int not_continued(struct transfer *t, const struct verdict *v)
{
    struct upstream_headers h = headers_of(t);
    bool whole = v->kind == VERDICT_RESTART;
    int64_t length = whole ? t->resp.content_length : t->resp.has_range ? t->resp.range_total : -1;
    int rc = transfer_start_over(t, length, &h, v->reason);
    if (rc < 0)
        return -1;
    if (rc == 0 && whole) {
        if (begin_full_body(t) < 0)
            return -1;
        t->body_started = true;
        return 0;
    }
    t->start_over = true;
    t->new_file = rc > 0;
    return -1;
}

/* upstream refused the request for good; a bucket's 401/403 names the bucket only (never a key
 * or secret). */
static void refused(struct transfer *t, const struct verdict *v)
{
    char reason[160];
    if (t->auth && (v->status == 401 || v->status == 403)) {
        snprintf(reason, sizeof(reason), "bucket %s: access denied by S3", t->auth->bucket->name);
        transfer_fail(t, 502, reason);
    } else if (t->parent.active &&
               parent_judge(&t->parent, v->status, &(enum parent_fault){0}) < 0) {
        /* --parent-only: the parent's own refusal of this site, not the origin's of the URL */
        parent_status_words(&t->parent, v->status, reason, sizeof(reason));
        transfer_fail(t, 502, reason);
    } else {
        transfer_fail(t, v->status, v->reason);
    }
}

/* A 304 to a revalidation: no body comes, the attempt ends by itself. */
static int renewed(struct transfer *t)
{
    atomic_fetch_add(&stats.revalidated_unchanged, 1);
    t->renewed = true;
    if (t->parent.active) /* renewed by the parent: as old as its copy (before it is written) */
        transfer_parent_freshness(t);
    t->failed = t->st->renew(t->obj) < 0;
    return 0;
}

int transfer_holds(const struct transfer *t)
{
    return (t->state != TS_BACKOFF) + (t->fill ? fill_open_connections(t->fill) : 0);
}

int transfer_host_connections(const struct transfer *t)
{
    int n = 0;
    for (const struct transfer *o = t->loop->active; o; o = o->next)
        if (strcasecmp(o->host, t->host) == 0)
            n += transfer_holds(o);
    return n;
}

/* Why the body cannot be split (NULL: it can). A file modified within the second of its answer
 * is not: an ETag made of its time and size (nginx's) would not change with a rewrite in that
 * second, and pieces asked later would read the rewritten file (RFC 9110 8.8.2.2's reason for
 * Last-Modified). */
static const char *no_fill(const struct transfer *t, int64_t length, bool ranges_taken)
{
    if (t->alone)
        return "its fill stopped";
    if (length < 0 || length - t->offset < t->terms.fill_min_size)
        return "smaller than --fill-min-size";
    if (!ranges_taken)
        return "upstream does not say Accept-Ranges: bytes";
    if (!resume_validator(&t->kept))
        return "no strong validator (a strong ETag, or a Last-Modified a second before Date)";
    /* a parent gives an object whose origin had no strong ETag its sha256 as ETag once its
     * copy is complete: pieces asked after that would look like another version */
    if (t->parent.active && !t->kept.etag[0])
        return "the parent gives it no ETag until its copy is complete";
    if (t->resp.last_modified[0] && !t->kept.last_modified[0])
        return "modified within the second of its answer";
    return NULL;
}

/* A body that begins (or continues) with at least its terms' fill-min-size bytes to come
 * (--fill-min-size, or the rule's), upstream taking ranges and a strong validator proving them:
 * the rest is fetched in pieces over its terms' fill-connections, as many as
 * --max-downloads-per-host leaves (fill.h). */
static void maybe_fill(struct transfer *t, bool ranges_taken)
{
    const struct config *cfg = t->loop->cfg;
    int64_t length = known_length(t), rest = length - t->offset;
    int ranges = t->terms.fill_connections, room;
    const char *why;
    if (t->fill || ranges < 2) /* a fill already, or none wanted */
        return;
    if ((why = no_fill(t, length, ranges_taken))) {
        log_debug("fetch %s: one connection: %s", t->url, why);
        return;
    }
    room = cfg->max_downloads_per_host - transfer_host_connections(t) + 1;
    if (ranges > room)
        ranges = room;
    if (ranges > rest / FILL_RANGE_MIN)
        ranges = (int)(rest / FILL_RANGE_MIN);
    if (ranges < 2) {
        log_debug("fetch %s: one connection: --max-downloads-per-host leaves no other", t->url);
        return;
    }
    struct fill_terms terms = {
        .host = t->body_host,
        .loop = t->loop,
        .st = t->st,
        .obj = t->obj,
        .sha = t->sha,
        .source = t->source,
        .auth = t->auth,
        .via = t->via,
        .kept = &t->kept,
        .flow = &t->flow,
        .head = t->offset,
        .length = length,
        .ranges = ranges,
        .deadline_ms = t->deadline_ms,
        .tell = t->fill_told,
        .owner = t,
        .parent = t->parent.active ? &t->parent : NULL,
    };
    t->fill = fill_start(&terms); /* NULL (out of memory): one connection, as before */
}

/* Whether the answer comes from another host than the body it would continue (after redirects):
 * an ETag speaks for its own resource only. Unknown (taken up after a restart): no. */
static bool other_host(struct transfer *t)
{
    char origin[sizeof(t->body_host)];
    asked_origin(t->h.easy, t->source, origin, sizeof(origin));
    return t->body_host[0] && strcmp(origin, t->body_host) != 0;
}

/* A whole body of the very version kept (its strong validator, its length, its host): what a
 * download that gave up ranges (its fill stopped: t->alone) asks for, its first `offset` bytes
 * dropped as they come instead of asked for again with a Range the origin may refuse. */
static bool same_whole_body(struct transfer *t)
{
    struct validators now;
    validators_of(&t->resp, &now);
    if (t->status != 200 || t->resp.content_length != known_length(t) || other_host(t) ||
        strcmp(now.encoding, t->kept.encoding) != 0)
        return false;
    if (t->kept.etag[0] == '"')
        return strcmp(now.etag, t->kept.etag) == 0;
    return t->kept.last_modified[0] && !strcmp(now.last_modified, t->kept.last_modified) &&
           !strcmp(now.etag, t->kept.etag);
}

/* A whole body of the kept bytes' length, or one at least as long as what is kept when no length
 * was said (after a parent broke off: its first bytes are checked against the kept ones as they
 * come, transfer_body; a body that ends before all came is refused, transfer.c). */
static bool same_length(struct transfer *t)
{
    int64_t length = known_length(t);
    if (t->status != 200)
        return false;
    if (length < 0)
        return t->resp.content_length < 0 || t->resp.content_length >= t->offset;
    return t->resp.content_length == length;
}

/* The bytes a parent sent before it broke off come again from the origin (skipped): once all
 * are in, their digest must be the kept bytes'; -1 ends the attempt when it is not (the
 * download then starts over: transfer.c). */
static int check_prefix(struct transfer *t, const char *data, size_t len)
{
    uint8_t got[32];
    unsigned int n = 0;
    EVP_DigestUpdate(t->prefix_check, data, len);
    if (t->skip > 0)
        return 0;
    EVP_DigestFinal_ex(t->prefix_check, got, &n);
    EVP_MD_CTX_free(t->prefix_check);
    t->prefix_check = NULL;
    if (memcmp(got, t->prefix, 32) == 0)
        return 0;
    t->prefix_wrong = true;
    return -1;
}

/* The end of one response's headers: decide what to do with this response (-1 ends the
 * attempt). */
static int headers_done(struct transfer *t)
{
    if (t->parent.active && transfer_parent_answer(t) < 0)
        return -1;
    long status = t->status;
    struct resume_terms sent = {t->offset, known_length(t), &t->kept};
    struct verdict v = response_verdict(&t->resp, status, &sent);
    /* before any waiter wakes to check it; a mirror's answer says nothing of the signature, a
     * parent's 2xx is its origin's (it confirms a signed URL as any arca does) */
    if (t->grant_until > 0 && (t->source == t->asked || t->parent.active) && status >= 200 &&
        status < 300)
        grants_add(t->asked, t->grant_until);
    if (transfer_parent_lied(t, &v))
        return -1;
    if (t->conditional && status == 304)
        return renewed(t);
    if (t->conditional && v.kind == VERDICT_BODY)
        atomic_fetch_add(&stats.revalidated_changed, 1);
    /* a download that gave up ranges takes the rest only from the host its bytes came from (a
     * plain resume keeps its rule: origins that redirect to one mirror or another) */
    if (v.kind == VERDICT_CONTINUE && t->alone && other_host(t))
        v = (struct verdict){VERDICT_REFETCH, 502, "the rest came from another host"};
    if (v.kind == VERDICT_RESTART && t->alone &&
        (t->prefix_check ? same_length(t) : same_whole_body(t))) {
        t->skip = t->offset; /* the bytes kept come again first: dropped */
        v.kind = VERDICT_CONTINUE;
        /* checked from this answer's first byte (an attempt cut before may have hashed some) */
        if (t->prefix_check && EVP_DigestInit_ex(t->prefix_check, EVP_sha256(), NULL) != 1)
            return -1;
    }
    switch (v.kind) {
    case VERDICT_SKIP:
        return 0;
    case VERDICT_RETRY:
        t->retry_status = v.status;
        return -1;
    case VERDICT_FAIL:
        refused(t, &v);
        return -1;
    case VERDICT_CONTINUE:
        atomic_fetch_add(&stats.download_resumes, 1);
        /* the body goes on from this answer's host (after redirects): its fill's pieces too */
        asked_origin(t->h.easy, t->source, t->body_host, sizeof(t->body_host));
        t->st->staleness(t->obj, t->resp.stale_if_error, t->resp.stale_while_revalidate);
        t->st->continue_body(t->obj); /* a download taken up after a restart: readers may join */
        maybe_fill(t, true);
        break;
    case VERDICT_RESTART:
    case VERDICT_REFETCH:
        return not_continued(t, &v);
    case VERDICT_BODY:
        if (begin_full_body(t) < 0)
            return -1;
        maybe_fill(t, t->resp.accept_ranges);
        break;
    }
    t->body_started = true;
    return 0;
}

/* curl hands over one header line at a time, not NUL-terminated: copy it (bounded) before any
 * string function sees it. A line too long for the copy is only looked at for its name: the
 * values we keep are far shorter, and one that is not is dropped rather than cut. */
size_t transfer_header(struct transfer *t, const char *data, size_t len)
{
    char line[HEADER_TYPE_MAX + 64];
    CHECK_TRANSFER(t);
    assert(upstream_on_thread() && t->state == TS_ASKING);
    if (t->failed || t->retry_status)
        return 0;
    bool whole = copy_header_line(data, len, line, sizeof(line));
    if (response_is_status_line(line)) {
        response_reset(&t->resp);
        parent_status_line(&t->parent, line);
        t->status = response_status_line(line);
    } else if (t->body_started) { /* a trailer, after a chunked body: a parent's digest */
        if (t->parent.active && whole && line[0])
            parent_digest_line(&t->parent, line);
    } else if (line[0] == '\0') {
        if (headers_done(t) < 0)
            return 0; /* the blank line ends one response's headers */
    } else if (t->parent.active && !strncasecmp(line, "Arca-Redirect:", 14)) {
        /* one it cannot read whole is recorded as a redirect no rule lets through */
        easy_add_hop(t->hops, sizeof(t->hops), whole ? line + 14 + strspn(line + 14, " \t") : "");
    } else if (whole) {
        const char *dropped = response_header(&t->resp, line);
        if (t->parent.active)
            parent_header(&t->parent, line);
        if (dropped)
            log_info("fetch %s: upstream %s too long, not replayed", t->url, dropped);
    } else {
        log_info("fetch %s: upstream header line of %zu bytes ignored", t->url, len);
    }
    return len;
}

/* A parent that sends more than the length it said lied: the attempt ends, the object is not
 * failed for it (the store would refuse the bytes and fail it). */
static bool parent_overran(struct transfer *t, size_t len)
{
    struct download_progress p;
    t->st->progress(t->obj, &p);
    if (p.length < 0 || p.have + (int64_t)len - t->skip <= p.length || t->fill)
        return false;
    t->parent_failed = PARENT_LIE;
    snprintf(t->parent_why, sizeof(t->parent_why), "it sent more bytes than its length");
    return true;
}

size_t transfer_body(struct transfer *t, const char *data, size_t len)
{
    CHECK_TRANSFER(t);
    assert(upstream_on_thread() && t->state == TS_ASKING);
    if (t->failed || !t->body_started)
        return 0;
    if (t->fill && fill_head_done(t->fill)) { /* its piece is in: the connection goes now */
        t->own_cut = true;
        return 0;
    }
    if (t->parent.active && parent_overran(t, len))
        return 0;
    if (!easy_take(&t->h, len))
        return CURL_WRITEFUNC_PAUSE;
    size_t took = len, dropped = (int64_t)len < t->skip ? len : (size_t)t->skip;
    t->skip -= (int64_t)dropped; /* a whole body's bytes the download keeps already */
    if (dropped && t->prefix_check && check_prefix(t, data, dropped) < 0)
        return 0;
    data += dropped;
    len -= dropped;
    t->received += (int64_t)dropped;
    if (len == 0)
        return took;
    if (t->fill) { /* its own range only: fewer bytes taken end the attempt there */
        ssize_t n = fill_head_bytes(t->fill, data, len);
        if (n < 0) {
            transfer_fail_as_object(t);
            return 0;
        }
        t->own_cut = (size_t)n < len;
        took = (size_t)n;
        len = (size_t)n;
    } else if (t->st->append(t->obj, data, len) < 0) {
        transfer_fail_as_object(t);
        return 0;
    } else {
        EVP_DigestUpdate(t->sha, data, len);
    }
    t->received += (int64_t)len;
    atomic_fetch_add(&stats.bytes_downloaded, (int64_t)len);
    return took;
}

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
    return transfer_header(arg, data, size * n);
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    return transfer_body(arg, data, size * n);
}

void transfer_hear_answer(struct transfer *t)
{
    curl_easy_setopt(t->h.easy, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(t->h.easy, CURLOPT_HEADERDATA, t);
    curl_easy_setopt(t->h.easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(t->h.easy, CURLOPT_WRITEDATA, t);
    t->h.hops = t->hops; /* the redirects curl follows (easy.c) */
    t->h.hops_size = sizeof(t->hops);
}
