/* The parent kind of source (source.h; parent.h says what is asked of a parent and what is
 * believed): whether it is asked, what its request adds, what its answer's headers decide,
 * whether an attempt's end is its fault, whether its digest vouches for its bytes, and the
 * move on to the next source when it fails. */
#include "upstream/source_parent.h"
#include "upstream/transfer_answer.h"
#include "rules/terms.h"
#include "log/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Its record: its hooks run while it is the source asked (fall_back reads it before the next
 * source's turn). */
static struct parent_source *own(const struct transfer *t)
{
    assert(t->src.kind == &source_parent);
    return source_own(&t->src);
}

/* A download whose terms name a parent asks it first (planned at its first SOURCE: it may be
 * held down, or refuse credentials). */
static int join(struct transfer *t, void **rec)
{
    struct parent_source *ps;
    if (!t->terms.sources.parent[0])
        return 0;
    if (!(ps = calloc(1, sizeof(*ps))))
        return -1;
    ps->ask.slot = -1;
    ps->fault = PARENT_FAULTS;
    *rec = ps;
    return 1;
}

static void release(void *rec)
{
    struct parent_source *ps = rec;
    parent_forget(&ps->ask);
    free(ps);
}

static void attempt_begins(struct transfer *t)
{
    own(t)->fault = PARENT_FAULTS;
    own(t)->relayed = false;
}

static bool own_fault(const struct transfer *t, enum parent_fault f);

/* The parent failed after sending some of the body (it broke off, or was held down while a
 * fill's pieces retried it): its clients need not be cut. Not for bytes that did not check out
 * (`digest`, `lie`): those are known wrong, and go. The
 * origin's whole body is asked (alone: no Range, whatever validator it has), and the bytes kept
 * stay only once the origin's first ones hash the same (transfer_answer.c, check_prefix): never
 * a byte the origin did not send. False when there is nothing to keep (or no memory): the
 * download starts afresh. */
static bool continue_from_origin(struct transfer *t, enum parent_fault f)
{
    struct download_progress p;
    EVP_MD_CTX *copy;
    unsigned int n = 0;
    transfer_drop_fill(t); /* what its pieces brought ahead of the head goes with them */
    t->st->progress(t->obj, &p);
    if (f == PARENT_DIGEST || f == PARENT_LIE || p.have <= 0 || !(copy = EVP_MD_CTX_new()))
        return false;
    if (EVP_MD_CTX_copy_ex(copy, t->sha) != 1 ||
        EVP_DigestFinal_ex(copy, t->check.digest, &n) != 1 || !(t->check.ctx = EVP_MD_CTX_new()) ||
        EVP_DigestInit_ex(t->check.ctx, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(copy);
        EVP_MD_CTX_free(t->check.ctx);
        t->check.ctx = NULL;
        return false;
    }
    EVP_MD_CTX_free(copy);
    t->alone = true; /* the whole body, over one connection: its first bytes are checked */
    log_info("fetch %s: its parent failed at byte %lld; the origin's body goes on, its first "
             "bytes checked against the parent's",
             t->url, (long long)p.have);
    return true;
}

/* The parent failed the download (`f`, `why`): it goes on from the origin at once (through
 * the mirrors' pick), never failed for that. The bytes the parent sent are kept only if the
 * origin's hash the same (continue_from_origin); the freshness it said goes. */
static enum transfer_state fall_back(struct transfer *t, enum parent_fault f, const char *why)
{
    struct parent_source *ps = own(t);
    parent_fault(&ps->ask, t->url, f, own_fault(t, f), why);
    ps->fault = PARENT_FAULTS;
    transfer_leave_source(t);
    t->alone = false;
    t->st->from_parent(t->obj, 0, t->terms.object.ttl, NULL);
    return continue_from_origin(t, f) ? TS_SOURCE : transfer_afresh_state(t, "its parent failed");
}

static enum transfer_state move_on(struct transfer *t, enum source_end end, const char *why)
{
    return fall_back(t,
                     end == SOURCE_HELD     ? PARENT_DOWN
                     : end == SOURCE_DIGEST ? PARENT_DIGEST
                                            : PARENT_LIE,
                     why);
}

/* Whether fault `f` of the download's parent is the parent's own, counting toward holding it
 * down: no connection, its own 5xx (no Cache-Status) or 507 (its disk), a lie, a digest (not
 * after a resume on a date: the kept bytes may be another version's). Not what any client can
 * bring about with a URL: a 4xx, an object too large for it (its 507 says detail=too-large),
 * its upstream's failure relayed (a 5xx with a Cache-Status, silence after the request went,
 * a cut), nor a loop, its hold, credentials. */
bool source_parent_own_fault(enum parent_fault f, bool relayed, bool on_date)
{
    switch (f) {
    case PARENT_DIGEST:
        return !on_date;
    case PARENT_LIE:
        return true;
    case PARENT_STATUS:  /* a 4xx, its upstream's 5xx relayed, too large for it: no */
    case PARENT_REFUSED: /* silent after the request went: waiting on its upstream */
        return !relayed;
    default: /* a cut (it may relay its upstream's), a loop, its hold, credentials */
        return false;
    }
}

static bool own_fault(const struct transfer *t, enum parent_fault f)
{
    return source_parent_own_fault(f, own(t)->relayed, t->a.on_date);
}

/* Whether a parent's failure sends the download to the origin: not with --parent-only, where the
 * parent is retried as any upstream is. */
static bool may_fall_back(const struct transfer *t)
{
    return own(t)->ask.active && !t->terms.sources.parent_only && !t->failed &&
           !atomic_load(&t->loop->stopping);
}

static bool may_move_on(const struct transfer *t, enum source_end end)
{
    (void)end; /* whatever its failure: the origin's turn, but with --parent-only */
    return may_fall_back(t);
}

enum parent_fault source_parent_end_fault(const struct attempt *a)
{
    /* a resume on a date met another version, or a 304 came for a copy purged meanwhile: asked
     * again whole, no fault of the parent's */
    if (a->own_cut || (a->bounded && a->rc == CURLE_OK) ||
        (a->rc == CURLE_OK && !a->retry_status && !a->start_over) ||
        (a->on_date && a->start_over) || a->unrenewed)
        return PARENT_FAULTS;
    return a->retry_status   ? PARENT_STATUS
           : a->start_over   ? PARENT_LIE
           : a->body_started ? PARENT_CUT
                             : PARENT_REFUSED;
}

/* Whether the parent refused the TLS handshake (parent_tls_refused), naming the certificate
 * shown to it: t->src.why says so. */
static bool tls_refused(struct transfer *t, CURLcode rc)
{
    char cert[1024];
    parent_certificate_file(own(t)->ask.base, cert, sizeof(cert));
    return parent_tls_refused(rc, t->a.errbuf, cert, t->src.why, sizeof(t->src.why));
}

/* Judges the attempt that ended in `rc`: whether it failed by its parent's fault (*f), and if
 * so writes the judgement down: t->src.why (the parent's words) and own(t)->relayed. */
static bool judge_attempt(struct transfer *t, CURLcode rc, enum parent_fault *f)
{
    if (own(t)->fault < PARENT_FAULTS) {
        *f = own(t)->fault;
        return true;
    }
    if ((*f = source_parent_end_fault(&t->a)) == PARENT_FAULTS)
        return false;
    /* what its own failure is, holding it down: no connection (refused, timed out before
     * the request went). A parent silent after the request, or cutting its answer, may be
     * waiting on or relaying its own upstream, for a URL any client can ask for. */
    long sent = 0;
    curl_easy_getinfo(t->h.easy, CURLINFO_REQUEST_SIZE, &sent);
    if (*f == PARENT_REFUSED)
        own(t)->relayed = sent > 0;
    if (t->a.retry_status)
        parent_status_words(&own(t)->ask, t->a.retry_status, t->src.why, sizeof(t->src.why));
    else if (!t->a.body_started && tls_refused(t, rc))
        own(t)->relayed = false; /* it refused this arca, whatever the URL: its own */
    else
        snprintf(t->src.why, sizeof(t->src.why), "%.150s",
                 t->a.errbuf[0] ? t->a.errbuf : curl_easy_strerror(rc));
    return true;
}

/* The parent's bytes are all in, their sha256 `digest`: they are kept only when it is the
 * parent's Repr-Digest; otherwise the origin (or, with --parent-only, the download fails). */
static bool vouches(struct transfer *t, const uint8_t digest[32], enum transfer_state *next)
{
    struct download_progress p;
    const char *why;
    char reason[200];
    t->st->progress(t->obj, &p);
    if (p.length >= 0 && p.have != p.length)
        why = "its body is shorter than the length it said";
    else if (!own(t)->ask.has_digest)
        why = "it gave no Repr-Digest to check its bytes against";
    else if (!parent_digest_ok(&own(t)->ask, digest))
        why = "the sha256 of its bytes is not its Repr-Digest";
    else {
        parent_served(&own(t)->ask, p.have);
        return true;
    }
    if (may_fall_back(t)) {
        *next = fall_back(t, PARENT_DIGEST, why);
        return false;
    }
    snprintf(reason, sizeof(reason), "the parent's answer cannot be trusted: %s", why);
    transfer_fail(t, 502, reason);
    *next = TS_FAILED;
    return false;
}

/* Whether the download asks its parent (*next: ATTEMPT; FAILED when --parent-only forbids the
 * origin and the parent may not be asked): planned once, at its first SOURCE; a new version's
 * file made, its parent still. A bucket's object is not: only this arca holds the bucket's
 * keys. */
static bool choose(struct transfer *t, enum transfer_state *next)
{
    enum parent_fault why;
    char refuse[300];
    if (own(t)->planned) {
        *next = TS_ATTEMPT;
        return own(t)->ask.active;
    }
    own(t)->planned = true;
    if (t->auth)
        return false;
    parent_plan(t->loop->cfg, &own(t)->ask, &t->terms, t->asked, &why, refuse, sizeof(refuse));
    if (refuse[0]) {
        transfer_fail(t, 502, refuse);
        *next = TS_FAILED;
        return true;
    }
    if (!own(t)->ask.active) {
        if (why < PARENT_FAULTS)
            log_debug("fetch %s: not asked of its parent (%s)", t->url, parent_fault_name(why));
        return false;
    }
    t->source = own(t)->ask.fetch_url;
    /* under --parent-only it is held as an origin is (hosts.h): there is no other to ask */
    easy_set_source(&t->h, t->source, t->terms.sources.parent_only ? HOST_ORIGIN : HOST_PARENT);
    log_debug("fetch %s: download started, asked of its parent", t->url);
    *next = TS_ATTEMPT;
    return true;
}

/* Its Cache-Control line: no copy older than the download's ttl (or the max-age it was asked
 * with), no kept 404 older than its negative ttl (0: none; arca-negative-max-age, read by a
 * parent's terms.c), and neither older than the admin's latest purge here over the URL (a purge
 * at a site is obeyed by its parent's copies); for store = no (or a no-store ask) none kept
 * there and none but the origin's word now. */
static void bounds_line(const struct transfer *t, char *line, size_t size)
{
    const struct object_keep *o = &t->terms.object;
    int64_t age = o->has_max_age && o->max_age < o->ttl ? o->max_age : o->ttl;
    int64_t negative = o->negative_ttl, purged = t->st->purged_since(t->obj);
    if (purged >= 0 && purged < age)
        age = purged;
    if (purged >= 0 && purged < negative)
        negative = purged;
    if (!o->store || o->asked_no_store)
        snprintf(line, size, "Cache-Control: no-store, max-age=0");
    else
        snprintf(line, size, "Cache-Control: max-age=%lld, arca-negative-max-age=%lld",
                 (long long)age, (long long)negative);
}

/* Its digest (Want-Repr-Digest), the download's own terms as a request's Cache-Control (API.md,
 * "Request headers"), and on a first attempt a Range from byte 0 (parent.h). */
static int request_lines(const struct transfer *t, struct curl_slist **headers)
{
    char bounds[96];
    const char *lines[3] = {"Want-Repr-Digest: sha-256=10", bounds, "Range: bytes=0-"};
    bounds_line(t, bounds, sizeof(bounds));
    /* with a Range from byte 0 its answer says the length though it goes out chunked to carry
     * the digest after the body; a resume's own Range follows instead */
    for (int i = 0; i < (t->offset == 0 ? 3 : 2); i++) {
        struct curl_slist *l = curl_slist_append(*headers, lines[i]);
        if (!l)
            return -1;
        *headers = l;
    }
    return 0;
}

/* A parent's redirect is a lie (it answers what it holds), never followed; a parent that does
 * not connect or answer is passed over within PARENT_CONNECT_MS or PARENT_STALL_S, not the
 * options' (an origin's) patience; it is shown its certificate, an origin none. */
static void timeouts(struct transfer *t)
{
    const struct config *cfg = t->loop->cfg;
    long connect_ms = (long)cfg->connect_timeout * 1000, stall = (long)cfg->stall_timeout;
    curl_easy_setopt(t->h.easy, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(t->h.easy, CURLOPT_CONNECTTIMEOUT_MS,
                     connect_ms > PARENT_CONNECT_MS ? (long)PARENT_CONNECT_MS : connect_ms);
    curl_easy_setopt(t->h.easy, CURLOPT_LOW_SPEED_TIME,
                     stall > PARENT_STALL_S ? (long)PARENT_STALL_S : stall);
    /* a parent trickling bytes would hold its misses until --download-timeout */
    curl_easy_setopt(t->h.easy, CURLOPT_LOW_SPEED_LIMIT, (long)PARENT_LOW_SPEED);
    parent_show_certificate(t->h.easy, own(t)->ask.base);
}

/* A parent's answer: the object is as old as the parent's copy and fresh for what is left of
 * the parent's freshness, never past its own terms' ttl counted from the parent's download (a
 * 304 renews nothing from now), nor at all when the parent kept no copy (stored=?0: it vouches
 * for nothing after this answer); it shows the parent's Cache-Status. A refusal it relays (a
 * 404 it kept, or its download got) is fresh by the negative ttl instead (store_negative.h). */
static void freshness(struct transfer *t)
{
    const struct parent_ask *p = &own(t)->ask;
    const struct object_keep *o = &t->terms.object;
    int64_t own = (t->a.status >= 400 ? o->negative_ttl : o->ttl) - p->age;
    int64_t fresh = p->not_stored ? 0 : p->has_left && p->left < own ? p->left : own;
    t->st->from_parent(t->obj, p->age, fresh, p->cache_status);
}

/* Each URL the parent's download went through (its Arca-Redirect lines) is judged by this
 * arca's rules as a redirect it follows itself is (easy.c): one under another allow-network
 * fails the download with the same 403, nothing kept under the URL asked. */
static bool redirects_allowed(struct transfer *t)
{
    char hop[HEADER_REDIRECTS_MAX], why[sizeof(t->h.refused)];
    for (const char *p = t->a.hops; *p;) {
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

bool source_parent_relays(long status, bool too_large, bool cache_status)
{
    return status >= 400 && (status < 500 || too_large || (status != 507 && cache_status));
}

/* The parent's answer (parent.h): its own failure ends the attempt (the download goes to the
 * origin: judge_end); the 206 that a first attempt's "Range: bytes=0-" brings is the whole
 * body. With --parent-only its statuses are judged as any upstream's. -1 ends the attempt. */
static int answer(struct transfer *t)
{
    struct upstream_response *r = &t->a.resp;
    enum parent_fault f;
    /* not its own failure: a 4xx is about the URL (one too long for it, say: any client can
     * ask for one), a 5xx with a Cache-Status its upstream's (but 507, its disk, unless it
     * says the object is too large for it: the URL's too) */
    own(t)->relayed = source_parent_relays(t->a.status, own(t)->ask.too_large,
                                           own(t)->ask.cache_status[0] != '\0');
    if (!t->terms.sources.parent_only && parent_judge(&own(t)->ask, t->a.status, &f) < 0) {
        own(t)->fault = f;
        parent_status_words(&own(t)->ask, t->a.status, t->src.why, sizeof(t->src.why));
        return -1;
    }
    if (!redirects_allowed(t))
        return -1;
    if (t->a.status == 206 && t->offset == 0 && r->has_range && r->range_first == 0 &&
        (r->range_total < 0 || r->range_last + 1 == r->range_total)) {
        if (r->content_length >= 0 && r->content_length != r->range_last + 1) {
            own(t)->fault = PARENT_LIE;
            snprintf(t->src.why, sizeof(t->src.why),
                     "its Content-Length is not its Content-Range's");
            return -1;
        }
        t->a.status = 200;
        r->content_length = r->range_total;
        r->has_range = false;
    }
    return 0;
}

bool source_parent_lie(const struct verdict *v, long status, bool conditional, int64_t offset)
{
    /* a refusal the parent relays is a 4xx (parent_judge); any other end it gives (a 304 to
     * an unconditional ask, a 206 to the whole object) is a lie */
    bool renews = conditional && status == 304;
    return v->kind == VERDICT_REFETCH || (v->kind == VERDICT_RESTART && offset > 0) ||
           (v->kind == VERDICT_FAIL && !renews && (status < 400 || status >= 500));
}

/* A parent whose answer does not continue what it sent before (another version, another
 * range) lied, or changed under the download: either way, the origin (the attempt ends).
 * Not on a resume on a date (t->a.on_date): it never gave those bytes a version of its own, so
 * another one is asked again whole (transfer_answer.c, not_continued). */
static bool lied(struct transfer *t, const struct verdict *v)
{
    if (t->terms.sources.parent_only ||
        !source_parent_lie(v, t->a.status, t->a.conditional, t->offset) ||
        (t->a.on_date && v->kind != VERDICT_FAIL))
        return false;
    own(t)->fault = PARENT_LIE;
    snprintf(t->src.why, sizeof(t->src.why), "%s", v->reason);
    return true;
}

/* --parent-only: the parent's own refusal of this site (502), not the origin's of the URL; a
 * refusal it relays is said as its answer, in its own words (its Arca-Error: its origin's
 * status, or its rule refusing a redirect its download met). */
static int refusal(struct transfer *t, int status, char *reason, size_t size, bool *said)
{
    (void)said;
    if (parent_judge(&own(t)->ask, status, &(enum parent_fault){0}) < 0) {
        parent_status_words(&own(t)->ask, status, reason, size);
        return 502;
    }
    if (!own(t)->ask.said[0])
        return 0;
    snprintf(reason, size, "parent answered %d: %s", status, own(t)->ask.said);
    return status;
}

/* A parent gives an object whose origin had no strong ETag its sha256 as ETag once its copy is
 * complete: pieces asked after that would look like another version. */
static const char *no_fill(const struct transfer *t)
{
    return t->kept.etag[0] ? NULL : "the parent gives it no ETag until its copy is complete";
}

/* Each range asks the parent too, and reads its digest (fill.h). */
static void fill_settings(struct transfer *t, struct fill_settings *settings)
{
    settings->req = parent_piece_req(&own(t)->ask);
}

static void status_line(struct transfer *t, const char *line)
{
    parent_status_line(&own(t)->ask, line);
}

/* Its Arca-Redirect lines are the redirects its download went through (one it cannot read
 * whole is recorded as a redirect no rule lets through); its digest, Age and Cache-Status are
 * read beside what the core reads. */
static bool header(struct transfer *t, const char *line, bool whole)
{
    if (!strncasecmp(line, "Arca-Redirect:", 14)) {
        easy_add_hop(t->a.hops, sizeof(t->a.hops),
                     whole ? line + 14 + strspn(line + 14, " \t") : "");
        return true;
    }
    if (whole)
        parent_header(&own(t)->ask, line);
    return false;
}

/* A trailer, after a chunked body: its digest. */
static void trailer(struct transfer *t, const char *line)
{
    parent_digest_line(&own(t)->ask, line);
}

/* A parent that sends more than the length it said lied: the attempt ends, the object is not
 * failed for it (the store would refuse the bytes and fail it). */
static bool overran(struct transfer *t, size_t len)
{
    struct download_progress p;
    t->st->progress(t->obj, &p);
    if (p.length < 0 || p.have + (int64_t)len - t->a.skip <= p.length || t->fill)
        return false;
    own(t)->fault = PARENT_LIE;
    snprintf(t->src.why, sizeof(t->src.why), "it sent more bytes than its length");
    return true;
}

/* The attempt ended by its parent's fault: the origin's turn (*next); with --parent-only it
 * is retried of the parent, the fault counted toward its hold. */
static bool judge_end(struct transfer *t, enum transfer_state *next)
{
    enum parent_fault fault;
    if (may_fall_back(t) && judge_attempt(t, t->a.rc, &fault)) {
        *next = fall_back(t, fault, t->src.why);
        return true;
    }
    if (!t->failed && judge_attempt(t, t->a.rc, &fault)) /* --parent-only */
        parent_failed_attempt(&own(t)->ask, fault, own_fault(t, fault));
    return false;
}

const struct source_kind source_parent = {
    .name = "parent",
    .from = "parent",
    .join = join,
    .release = release,
    .attempt_begins = attempt_begins,
    .choose = choose,
    .headers = request_lines,
    .timeouts = timeouts,
    .status_line = status_line,
    .header = header,
    .trailer = trailer,
    .answer = answer,
    .lied = lied,
    .confirms_grants = true, /* its 2xx is its origin's (it confirms a signed URL as any arca) */
    .tags_its_copy = true,
    .freshness = freshness,
    .refusal = refusal,
    .no_fill = no_fill,
    .fill_settings = fill_settings,
    .overran = overran,
    .judge_end = judge_end,
    .vouches = vouches,
    .may_move_on = may_move_on,
    .move_on = move_on,
};
