/* An attempt (transfer_answer.h): its request (what its source adds, a resume's range, a
 * revalidation's conditions) and its answer: what its headers decide (the body begun or
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

/* --- an attempt's request ------------------------------------------------------------------ */

/* One more header line for this attempt's request; -1 when out of memory. */
static int add_header(struct transfer *t, const char *line)
{
    struct curl_slist *l = curl_slist_append(t->a.req_headers, line);
    if (!l)
        return -1;
    t->a.req_headers = l;
    return 0;
}

/* Ask for the bytes after those we keep (up to the end of its own range while a fill runs), and
 * only if they still belong to the same body. */
static int add_resume_headers(struct transfer *t)
{
    char range[80], if_range[300];
    t->a.bounded = t->fill != NULL;
    if (t->a.bounded)
        snprintf(range, sizeof(range), "Range: bytes=%lld-%lld", (long long)t->offset,
                 (long long)fill_head_end(t->fill) - 1);
    else
        snprintf(range, sizeof(range), "Range: bytes=%lld-", (long long)t->offset);
    snprintf(if_range, sizeof(if_range), "If-Range: %s", resume_validator(&t->kept));
    return add_header(t, range) < 0 || add_header(t, if_range) < 0 ? -1 : 0;
}

/* Ask only for a version other than the expired one this download revalidates: by its ETag
 * when it has one, else by its date. Never both: RFC 9110 has a server ignore If-Modified-Since
 * beside If-None-Match, but some do not (s3rver), and a file replaced within the second of its
 * Last-Modified would then be answered 304 and kept in its old version. */
static int add_conditions(struct transfer *t)
{
    char etag[HEADER_ETAG_MAX], date[HEADER_DATE_MAX], line[HEADER_ETAG_MAX + 32];
    if (!t->st->stale_validators(t->obj, etag, sizeof(etag), date, sizeof(date)))
        return 0;
    t->a.conditional = true;
    if (etag[0])
        snprintf(line, sizeof(line), "If-None-Match: %s", etag);
    else
        snprintf(line, sizeof(line), "If-Modified-Since: %s", date);
    return add_header(t, line);
}

/* The request headers of this attempt: what a bucket's signature needs, arca's Via, then a
 * resume's range or a revalidation's conditions. */
static int set_headers(struct transfer *t)
{
    curl_slist_free_all(t->a.req_headers);
    t->a.req_headers = easy_base_headers(t->auth, t->via);
    t->a.conditional = t->a.bounded = false;
    if (t->src.kind->headers && t->src.kind->headers(t, &t->a.req_headers) < 0)
        return -1;
    /* a download whose fill stopped asks for the whole body again (ranges failed it: they may
     * fail it again), dropping what it keeps (transfer_answer.c, same_whole_body) */
    if (!t->a.req_headers ||
        (t->offset > 0 ? (t->alone ? 0 : add_resume_headers(t)) : add_conditions(t)) < 0)
        return -1;
    curl_easy_setopt(t->h.easy, CURLOPT_HTTPHEADER, t->a.req_headers);
    return 0;
}

int transfer_prepare_attempt(struct transfer *t, int64_t left)
{
    t->a.retry_status = 0;
    t->a.status = 0;
    t->a.body_started = t->a.start_over = t->a.new_file = t->a.renewed = t->a.own_cut =
        t->a.unrenewed = false;
    t->a.skip = 0;
    t->h.refused[0] = t->a.errbuf[0] = t->a.hops[0] = '\0';
    source_attempt_begins(t, &t->src);
    t->a.on_date =
        t->src.kind->tags_its_copy && t->offset > 0 && !t->check.ctx && t->kept.etag[0] != '"';
    if (set_headers(t) < 0)
        return -1;
    t->src.kind->timeouts(t);
    curl_easy_setopt(t->h.easy, CURLOPT_TIMEOUT_MS, (long)left);
    return 0;
}

/* --- its answer ---------------------------------------------------------------------------- */

void transfer_drop_fill(struct transfer *t)
{
    if (!t->fill)
        return;
    t->received += fill_received(t->fill);
    fill_retire(t->fill);
    t->fill = NULL;
}

/* The download fails; `said`: its reason is in the log once already (transfer_fail_said). */
static void fail(struct transfer *t, int status, const char *reason, bool said)
{
    if (t->failed)
        return;
    t->failed = true;
    transfer_drop_fill(t);
    t->st->fail(t->obj, status, reason);
    if (said)
        log_debug("fetch %s: %d %s", t->url, status, t->st->error(t->obj));
    else
        log_error("fetch %s: %d %s", t->url, status, t->st->error(t->obj));
}

void transfer_fail(struct transfer *t, int status, const char *reason)
{
    fail(t, status, reason, false);
}

void transfer_fail_said(struct transfer *t, int status, const char *reason)
{
    fail(t, status, reason, true);
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

/* What the answer says of the object, as its source describes it (a mirror's bytes keep the
 * origin's validators). */
static struct upstream_headers headers_of(const struct transfer *t)
{
    const struct upstream_response *r = &t->a.resp;
    struct upstream_headers h = {
        r->content_type, r->content_encoding, r->filename, r->last_modified, r->etag, t->a.hops};
    if (t->src.kind->describe)
        t->src.kind->describe(t, &h);
    return h;
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
    t->url = t->st->url(fresh);
    source_rename(&t->src, t->url);
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
    EVP_MD_CTX_free(t->check.ctx);
    t->check.ctx = NULL;
}

/* The bytes it holds go, and all it knew of them: the next ones come from byte 0. */
static void forget_bytes(struct transfer *t)
{
    drop_prefix_check(t);
    t->offset = 0;
    t->resumed_kept = false;
    memset(&t->kept, 0, sizeof(t->kept));
    EVP_DigestInit_ex(t->sha, EVP_sha256(), NULL);
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
    forget_bytes(t);
    log_info("fetch %s: %s; starting over from byte 0%s", t->url, why,
             rc > 0 ? ", as a new version (clients of the old one are cut)" : "");
    atomic_fetch_add(&stats.download_restarts, 1);
    if (rc == 0) {
        t->st->came_from(t->obj, t->src.kind->from);
        return 0;
    }
    if (new_version(t, why, true) < 0)
        return -1;
    t->st->came_from(t->obj, t->src.kind->from);
    return 1;
}

int transfer_start_afresh(struct transfer *t, const char *why)
{
    struct download_progress p;
    transfer_drop_fill(t);
    forget_bytes(t);
    t->st->progress(t->obj, &p);
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

enum transfer_state transfer_afresh_state(struct transfer *t, const char *why)
{
    int rc = transfer_start_afresh(t, why);
    return rc < 0 ? TS_FAILED : rc > 0 ? TS_OPENING : TS_SOURCE;
}

void transfer_leave_source(struct transfer *t)
{
    t->source = t->asked;
    easy_set_url(&t->h, t->source);
    source_next(&t->src);
    t->attempts = 0; /* the next source gets its own retries */
    t->a.retry_status = 0;
}

static int begin_full_body(struct transfer *t)
{
    struct upstream_headers h = headers_of(t);
    validators_of(&t->a.resp, &t->kept);
    asked_origin(t->h.easy, t->source, t->body_host, sizeof(t->body_host));
    t->st->staleness(t->obj, t->a.resp.stale_if_error, t->a.resp.stale_while_revalidate);
    if (t->src.kind->freshness) /* before its readers wake to the headers */
        t->src.kind->freshness(t);
    if (t->st->begin_body(t->obj, t->a.resp.content_length, &h, resume_validator(&t->kept)) < 0) {
        transfer_fail_as_object(t);
        return -1;
    }
    return 0;
}

/* A resume was answered with something that does not continue the kept bytes (v: RESTART, a
 * whole body; REFETCH, a 206 that proves nothing or another version). A whole body is the new
 * version's, and is taken at once when the same object goes on; otherwise this response is
 * dropped (-1 to curl: t->a.start_over) and the next attempt asks again from byte 0. */
static int not_continued(struct transfer *t, const struct verdict *v)
{
    struct upstream_headers h = headers_of(t);
    bool whole = v->kind == VERDICT_RESTART;
    int64_t length = whole                 ? t->a.resp.content_length
                     : t->a.resp.has_range ? t->a.resp.range_total
                                           : -1;
    int rc = transfer_start_over(t, length, &h, v->reason);
    if (rc < 0)
        return -1;
    if (rc == 0 && whole) {
        if (begin_full_body(t) < 0)
            return -1;
        t->a.body_started = true;
        return 0;
    }
    t->a.start_over = true;
    t->a.new_file = rc > 0;
    return -1;
}

/* upstream refused the request for good; a bucket's 401/403 names the bucket only (never a key
 * or secret); a source that says a refusal in its own words (source.h's `refusal`) is heard in
 * them. The refusal is as old as its source's word (a parent arca's kept 404: its Age), so a
 * negative answer kept from it ends when the source's does (store_negative.h). */
static void refused(struct transfer *t, const struct verdict *v)
{
    char reason[320];
    int status;
    bool said = false;
    if (t->src.kind->freshness)
        t->src.kind->freshness(t);
    if (t->auth && (v->status == 401 || v->status == 403)) {
        snprintf(reason, sizeof(reason), "bucket %s: access denied by S3", t->auth->bucket->name);
        transfer_fail(t, 502, reason);
    } else if (t->src.kind->refusal &&
               (status = t->src.kind->refusal(t, v->status, reason, sizeof(reason), &said)) > 0) {
        fail(t, status, reason, said); /* the source's own words, not the origin's of the URL */
    } else {
        transfer_fail(t, v->status, v->reason);
    }
}

/* A 304 to a revalidation whose expired copy a purge took meanwhile: nothing is left to renew,
 * so the answer is dropped and the next attempt asks at once for the whole body (no conditions
 * go with it: store_stale_validators), as for a copy never kept. Not the source's fault. */
static int purged_meanwhile(struct transfer *t)
{
    char etag[HEADER_ETAG_MAX], date[HEADER_DATE_MAX];
    if (t->st->stale_validators(t->obj, etag, sizeof(etag), date, sizeof(date)))
        return 0;
    log_debug("fetch %s: its expired copy was purged during the revalidation: asked whole", t->url);
    t->a.start_over = t->a.unrenewed = true;
    return -1;
}

/* A 304 to a revalidation: no body comes, the attempt ends by itself. */
static int renewed(struct transfer *t)
{
    atomic_fetch_add(&stats.revalidated_unchanged, 1);
    t->a.renewed = true;
    if (t->src.kind->freshness) /* as old as its source's copy (before it is written) */
        t->src.kind->freshness(t);
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
    const char *why = t->src.kind->no_fill ? t->src.kind->no_fill(t) : NULL;
    if (why)
        return why;
    if (t->a.resp.last_modified[0] && !t->kept.last_modified[0])
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
    struct fill_settings settings = {
        .host = t->body_host,
        .loop = t->loop,
        .st = t->st,
        .obj = t->obj,
        .sha = t->sha,
        .source = t->source,
        .auth = t->auth,
        .via = t->via,
        .outgoing = &t->terms.outgoing,
        .kept = &t->kept,
        .flow = &t->flow,
        .head = t->offset,
        .length = length,
        .ranges = ranges,
        .deadline_ms = t->deadline_ms,
        .tell = t->fill_told,
        .owner = t,
    };
    if (t->src.kind->fill_settings)
        t->src.kind->fill_settings(t, &settings);
    t->fill = fill_start(&settings); /* NULL (out of memory): one connection, as before */
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
    validators_of(&t->a.resp, &now);
    if (t->a.status != 200 || t->a.resp.content_length != known_length(t) || other_host(t) ||
        strcmp(now.encoding, t->kept.encoding) != 0)
        return false;
    if (t->kept.etag[0] == '"')
        return strcmp(now.etag, t->kept.etag) == 0;
    return t->kept.last_modified[0] && !strcmp(now.last_modified, t->kept.last_modified) &&
           !strcmp(now.etag, t->kept.etag);
}

/* A whole body of the kept bytes' length, or one at least as long as what is kept when no length
 * was said (after a parent broke off: its first bytes are checked against the kept ones as they
 * come, transfer_body; a body that ends before all came is refused, transfer_course.c). */
static bool same_length(struct transfer *t)
{
    int64_t length = known_length(t);
    if (t->a.status != 200)
        return false;
    if (length < 0)
        return t->a.resp.content_length < 0 || t->a.resp.content_length >= t->offset;
    return t->a.resp.content_length == length;
}

/* The bytes a parent sent before it broke off come again from the origin (skipped): once all
 * are in, their digest must be the kept bytes'; -1 ends the attempt when it is not (the
 * download then starts over: transfer_course.c). */
static int check_prefix(struct transfer *t, const char *data, size_t len)
{
    uint8_t got[32];
    unsigned int n = 0;
    EVP_DigestUpdate(t->check.ctx, data, len);
    if (t->a.skip > 0)
        return 0;
    EVP_DigestFinal_ex(t->check.ctx, got, &n);
    EVP_MD_CTX_free(t->check.ctx);
    t->check.ctx = NULL;
    if (memcmp(got, t->check.digest, 32) == 0)
        return 0;
    t->check.wrong = true;
    return -1;
}

/* The end of one response's headers: decide what to do with this response (-1 ends the
 * attempt). */
static int headers_done(struct transfer *t)
{
    if (t->src.kind->answer && t->src.kind->answer(t) < 0)
        return -1;
    long status = t->a.status;
    struct resume_ask sent = {t->offset, known_length(t), &t->kept, t->a.on_date};
    struct verdict v = response_verdict(&t->a.resp, status, &sent);
    /* before any waiter wakes to check it; a mirror's answer says nothing of the signature */
    if (t->grant_until > 0 && t->src.kind->confirms_grants && status >= 200 && status < 300)
        grants_add(t->asked, t->grant_until);
    if (t->src.kind->lied && t->src.kind->lied(t, &v))
        return -1;
    if (t->a.conditional && status == 304)
        return purged_meanwhile(t) < 0 ? -1 : renewed(t);
    if (t->a.conditional && v.kind == VERDICT_BODY)
        atomic_fetch_add(&stats.revalidated_changed, 1);
    /* a download that gave up ranges takes the rest only from the host its bytes came from (a
     * plain resume keeps its rule: origins that redirect to one mirror or another) */
    if (v.kind == VERDICT_CONTINUE && t->alone && other_host(t))
        v = (struct verdict){VERDICT_REFETCH, 502, "the rest came from another host"};
    if (v.kind == VERDICT_RESTART && t->alone &&
        (t->check.ctx ? same_length(t) : same_whole_body(t))) {
        t->a.skip = t->offset; /* the bytes kept come again first: dropped */
        v.kind = VERDICT_CONTINUE;
        /* checked from this answer's first byte (an attempt cut before may have hashed some) */
        if (t->check.ctx && EVP_DigestInit_ex(t->check.ctx, EVP_sha256(), NULL) != 1)
            return -1;
    }
    if (v.kind == VERDICT_CONTINUE || v.kind == VERDICT_BODY) /* before readers wake to it */
        t->st->came_from(t->obj, t->src.kind->from);
    switch (v.kind) {
    case VERDICT_SKIP:
        return 0;
    case VERDICT_RETRY:
        t->a.retry_status = v.status;
        return -1;
    case VERDICT_FAIL:
        refused(t, &v);
        return -1;
    case VERDICT_CONTINUE:
        atomic_fetch_add(&stats.download_resumes, 1);
        /* the body goes on from this answer's host (after redirects): its fill's pieces too */
        asked_origin(t->h.easy, t->source, t->body_host, sizeof(t->body_host));
        t->st->staleness(t->obj, t->a.resp.stale_if_error, t->a.resp.stale_while_revalidate);
        t->st->continue_body(t->obj); /* a download taken up after a restart: readers may join */
        maybe_fill(t, true);
        break;
    case VERDICT_RESTART:
    case VERDICT_REFETCH:
        return not_continued(t, &v);
    case VERDICT_BODY:
        if (begin_full_body(t) < 0)
            return -1;
        maybe_fill(t, t->a.resp.accept_ranges);
        break;
    }
    t->a.body_started = true;
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
    if (t->failed || t->a.retry_status)
        return 0;
    bool whole = copy_header_line(data, len, line, sizeof(line));
    if (response_is_status_line(line)) {
        response_reset(&t->a.resp);
        if (t->src.kind->status_line)
            t->src.kind->status_line(t, line);
        t->a.status = response_status_line(line);
    } else if (t->a.body_started) { /* a trailer, after a chunked body: its source's */
        if (t->src.kind->trailer && whole && line[0])
            t->src.kind->trailer(t, line);
    } else if (line[0] == '\0') {
        if (headers_done(t) < 0)
            return 0; /* the blank line ends one response's headers */
    } else if (t->src.kind->header && t->src.kind->header(t, line, whole)) {
        /* the source's own line (a parent's Arca-Redirect) */
    } else if (whole) {
        const char *dropped = response_header(&t->a.resp, line);
        if (dropped)
            log_info("fetch %s: upstream %s too long, not replayed", t->url, dropped);
    } else {
        log_info("fetch %s: upstream header line of %zu bytes ignored", t->url, len);
    }
    return len;
}

size_t transfer_body(struct transfer *t, const char *data, size_t len)
{
    CHECK_TRANSFER(t);
    assert(upstream_on_thread() && t->state == TS_ASKING);
    if (t->failed || !t->a.body_started)
        return 0;
    /* its range's end, no other range proved yet: held there, for the ranges may be refused
     * (its fill then stops, and this connection goes on alone: transfer_course.c, fill_told) */
    if (t->fill && fill_head_waits(t->fill, len))
        return CURL_WRITEFUNC_PAUSE;
    if (t->fill && fill_head_done(t->fill)) { /* its piece is in: the connection goes now */
        t->a.own_cut = true;
        return 0;
    }
    if (t->src.kind->overran && t->src.kind->overran(t, len))
        return 0;
    if (!easy_take(&t->h, len))
        return CURL_WRITEFUNC_PAUSE;
    size_t took = len, dropped = (int64_t)len < t->a.skip ? len : (size_t)t->a.skip;
    t->a.skip -= (int64_t)dropped; /* a whole body's bytes the download keeps already */
    if (dropped && t->check.ctx && check_prefix(t, data, dropped) < 0)
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
        t->a.own_cut = (size_t)n < len;
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
    t->h.hops = t->a.hops; /* the redirects curl follows (easy.c) */
    t->h.hops_size = sizeof(t->a.hops);
}
