/* A download and its parent arca (transfer_answer.h; parent.h says what is asked of a parent
 * and what is believed): whether it is asked, what its answer's headers decide, and the fall
 * back to the origin when it fails. */
#include "upstream/transfer_parent.h"
#include "log/log.h"

#include <stdio.h>
#include <string.h>

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
    if (EVP_MD_CTX_copy_ex(copy, t->sha) != 1 || EVP_DigestFinal_ex(copy, t->prefix, &n) != 1 ||
        !(t->prefix_check = EVP_MD_CTX_new()) ||
        EVP_DigestInit_ex(t->prefix_check, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(copy);
        EVP_MD_CTX_free(t->prefix_check);
        t->prefix_check = NULL;
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
enum transfer_state transfer_fall_back(struct transfer *t, enum parent_fault f, const char *why)
{
    int rc = 0;
    parent_fault(&t->parent, t->url, f, transfer_parent_own_fault(t, f), why);
    t->source = t->asked;
    easy_set_url(&t->h, t->source);
    t->attempts = 0; /* the origin gets its own retries */
    t->retry_status = 0;
    t->alone = false;
    t->parent_failed = PARENT_FAULTS;
    t->st->from_parent(t->obj, 0, t->terms.object.ttl, NULL);
    if (!continue_from_origin(t, f))
        rc = transfer_start_afresh(t, "its parent failed");
    return rc < 0 ? TS_FAILED : rc > 0 ? TS_OPENING : TS_SOURCE;
}

enum transfer_state transfer_prefix_refused(struct transfer *t)
{
    int rc;
    t->prefix_wrong = false;
    t->alone = false;
    rc = transfer_start_afresh(t, "the bytes its parent sent are not the origin's");
    return rc < 0 ? TS_FAILED : rc > 0 ? TS_OPENING : TS_ATTEMPT;
}

bool transfer_parent_own_fault(const struct transfer *t, enum parent_fault f)
{
    switch (f) {
    case PARENT_DIGEST: /* after a resume on a date, the kept bytes may be another version's */
        return !t->on_date;
    case PARENT_LIE:
        return true;
    case PARENT_STATUS:  /* a 4xx, its upstream's 5xx relayed, too large for it: no */
    case PARENT_REFUSED: /* silent after the request went: waiting on its upstream */
        return !t->parent_relayed;
    default: /* a cut (it may relay its upstream's), a loop, its hold, credentials */
        return false;
    }
}

/* Whether a parent's failure sends the download to the origin: not with --parent-only, where the
 * parent is retried as any upstream is. */
bool transfer_may_fall_back(const struct transfer *t)
{
    return t->parent.active && !t->terms.sources.parent_only && !t->failed &&
           !atomic_load(&t->loop->stopping);
}

/* Whether the parent refused the TLS handshake (parent_tls_refused): t->parent_why says so. */
static bool tls_refused(struct transfer *t, CURLcode rc)
{
    char cert[1024];
    parent_certificate_file(t->parent.base, cert, sizeof(cert));
    return parent_tls_refused(rc, t->errbuf, cert, t->parent_why, sizeof(t->parent_why));
}

/* Whether the attempt that ended in `rc` failed by its parent's fault: *f, t->parent_why. */
bool transfer_parent_fault(struct transfer *t, CURLcode rc, enum parent_fault *f)
{
    if (t->parent_failed < PARENT_FAULTS) {
        *f = t->parent_failed;
        return true;
    }
    /* a resume on a date met another version: asked again whole, no fault of the parent's */
    if (t->own_cut || (t->bounded && rc == CURLE_OK) ||
        (rc == CURLE_OK && !t->retry_status && !t->start_over) || (t->on_date && t->start_over))
        return false;
    *f = t->retry_status   ? PARENT_STATUS
         : t->start_over   ? PARENT_LIE
         : t->body_started ? PARENT_CUT
                           : PARENT_REFUSED;
    /* what its own failure is, holding it down: no connection (refused, timed out before
     * the request went). A parent silent after the request, or cutting its answer, may be
     * waiting on or relaying its own upstream, for a URL any client can ask for. */
    long sent = 0;
    curl_easy_getinfo(t->h.easy, CURLINFO_REQUEST_SIZE, &sent);
    if (*f == PARENT_REFUSED)
        t->parent_relayed = sent > 0;
    if (t->retry_status)
        parent_status_words(&t->parent, t->retry_status, t->parent_why, sizeof(t->parent_why));
    else if (!t->body_started && tls_refused(t, rc))
        t->parent_relayed = false; /* it refused this arca, whatever the URL: its own */
    else
        snprintf(t->parent_why, sizeof(t->parent_why), "%.150s",
                 t->errbuf[0] ? t->errbuf : curl_easy_strerror(rc));
    return true;
}

/* The parent's bytes are all in, their sha256 `digest`: they are kept only when it is the
 * parent's Repr-Digest; otherwise the origin (or, with --parent-only, the download fails). */
bool transfer_parent_vouches(struct transfer *t, const uint8_t digest[32],
                             enum transfer_state *next)
{
    struct download_progress p;
    const char *why;
    char reason[200];
    t->st->progress(t->obj, &p);
    if (p.length >= 0 && p.have != p.length)
        why = "its body is shorter than the length it said";
    else if (!t->parent.has_digest)
        why = "it gave no Repr-Digest to check its bytes against";
    else if (!parent_digest_ok(&t->parent, digest))
        why = "the sha256 of its bytes is not its Repr-Digest";
    else {
        parent_served(&t->parent, p.have);
        return true;
    }
    if (transfer_may_fall_back(t)) {
        *next = transfer_fall_back(t, PARENT_DIGEST, why);
        return false;
    }
    snprintf(reason, sizeof(reason), "the parent's answer cannot be trusted: %s", why);
    transfer_fail(t, 502, reason);
    *next = TS_FAILED;
    return false;
}

/* Whether the download asks its parent first (*next: ATTEMPT; FAILED when --parent-only forbids
 * the origin and the parent may not be asked). A bucket's object is not: only this arca holds
 * the bucket's keys. */
bool transfer_ask_parent(struct transfer *t, enum transfer_state *next)
{
    enum parent_fault why;
    char refuse[300];
    if (t->auth)
        return false;
    parent_plan(t->loop->cfg, &t->parent, &t->terms, t->asked, &why, refuse, sizeof(refuse));
    if (refuse[0]) {
        transfer_fail(t, 502, refuse);
        *next = TS_FAILED;
        return true;
    }
    if (!t->parent.active) {
        if (why < PARENT_FAULTS)
            log_debug("fetch %s: not asked of its parent (%s)", t->url, parent_fault_name(why));
        return false;
    }
    t->source = t->parent.fetch_url;
    easy_set_source(&t->h, t->source, t->terms.sources.parent_only ? HOST_ORIGIN : HOST_PARENT);
    log_debug("fetch %s: download started, asked of its parent", t->url);
    *next = TS_ATTEMPT;
    return true;
}

/* Its Cache-Control line: no copy older than the download's ttl (or the max-age it was asked
 * with); for store = no (or a no-store ask) none kept there and none but the origin's word now. */
static void bounds_line(const struct transfer *t, char *line, size_t size)
{
    const struct object_terms *o = &t->terms.object;
    int64_t age = o->has_max_age && o->max_age < o->ttl ? o->max_age : o->ttl;
    if (!o->store || o->asked_no_store)
        snprintf(line, size, "Cache-Control: no-store, max-age=0");
    else
        snprintf(line, size, "Cache-Control: max-age=%lld", (long long)age);
}

int transfer_parent_headers(const struct transfer *t, struct curl_slist **headers)
{
    char bounds[64];
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
void transfer_parent_timeouts(struct transfer *t)
{
    const struct config *cfg = t->loop->cfg;
    bool p = t->parent.active;
    long connect_ms = (long)cfg->connect_timeout * 1000, stall = (long)cfg->stall_timeout;
    curl_easy_setopt(t->h.easy, CURLOPT_FOLLOWLOCATION, p ? 0L : 1L);
    curl_easy_setopt(t->h.easy, CURLOPT_CONNECTTIMEOUT_MS,
                     p && connect_ms > PARENT_CONNECT_MS ? (long)PARENT_CONNECT_MS : connect_ms);
    curl_easy_setopt(t->h.easy, CURLOPT_LOW_SPEED_TIME,
                     p && stall > PARENT_STALL_S ? (long)PARENT_STALL_S : stall);
    /* a parent trickling bytes would hold its misses until --download-timeout */
    curl_easy_setopt(t->h.easy, CURLOPT_LOW_SPEED_LIMIT, p ? (long)PARENT_LOW_SPEED : 1L);
    parent_show_certificate(t->h.easy, p ? t->parent.base : NULL);
}
