/* The fetch endpoint's answers (fetch_req.h): the headers of an object's answer
 * (Cache-Status, validators, the file name), If-None-Match / If-Modified-Since / If-Range and
 * Range, and a finished object's bytes from its file, its mapping or a prepared answer shared by
 * plain hits. Below the rest of the fetch files: it calls none of them. */
#include "fetch/fetch_req.h"
#include "base/parse.h"
#include "rules/rules.h"
#include "stats/stats.h"
#include "store/store.h"
#include "url/url.h"
#include "url/filename.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define MMAP_MIN_BYTES (1 << 20)
/* Prepared answers for objects up to this size hold the bytes themselves: headers and body then
 * leave in one send() instead of send() + sendfile(). At most STORE_PREPARED_MAX of them. */
#define SMALL_MAX (64 * 1024)

static void add_cache_status(struct answer *resp, const struct fetch_req *r,
                             const struct object_meta *meta);

void fetch_count_error(void)
{
    atomic_fetch_add(&stats.failures, 1);
    atomic_fetch_add(&stats.errors, 1);
}

enum conn_result fetch_refuse(struct conn *c, unsigned int status, const char *reason)
{
    fetch_count_error();
    return http_send_error(c, status, "%s", reason);
}

enum conn_result fetch_refuse_client(struct fetch_req *r, const char *reason)
{
    /* arca's policy, not a failure: neither an error nor a request the hit ratio counts */
    atomic_fetch_add(&stats.refused, 1);
    r->refusal = "REFUSED";
    return http_send_error(r->conn, HTTP_FORBIDDEN, "%s", reason);
}

/* An error answer about the object or its download (not arca's refusal of the request): it says
 * how the request was handled, like any other answer. One whose host is held down (it carries a
 * Retry-After) was not tried: counted apart, as no failure. */
enum conn_result fetch_refuse_object(struct fetch_req *r, const struct object_meta *meta,
                                     unsigned int status, const char *reason)
{
    struct answer *resp = http_error_response("%s", reason);
    char seconds[16];
    bool held = meta && meta->retry_after > 0;
    if (held) {
        atomic_fetch_add(&stats.held_down, 1);
        r->refusal = "HELD_DOWN";
    } else
        fetch_count_error();
    if (resp)
        add_cache_status(resp, r, meta);
    if (resp && held) { /* its host is held down until then */
        snprintf(seconds, sizeof(seconds), "%d", meta->retry_after);
        answer_header(resp, "Retry-After", seconds);
    }
    return http_queue(r->conn, status, resp);
}

bool fetch_sees_upstream(const struct fetch_req *r)
{
    return http_sees_urls(r->conn);
}

/* Whether `why` starts with `lead` followed by a status, its length then in *len. */
static bool status_words(const char *why, const char *lead, size_t *len)
{
    size_t n = strlen(lead), digits = strncmp(why, lead, n) ? 0 : strspn(why + n, "0123456789");
    *len = n + digits;
    return digits > 0;
}

/* How much of `why` (a failure's reason, past its "WHO failed after N attempts in S s: ") any
 * client may read: a source's bare status ("upstream answered 503", cut before what it said), or
 * arca's own words (its limits, its disk, its state); 0: none of it (upstream's own words). */
static size_t words_for_anyone(const char *why)
{
    static const char *const statuses[] = {"upstream answered ", "parent answered ",
                                           "unexpected upstream status "};
    static const char *const own[] = {"object ",
                                      "no room in the cache quota",
                                      "cannot sync ",
                                      "cannot move the object file",
                                      "out of memory",
                                      "cannot read back the object file",
                                      "arca is shutting down",
                                      "download failed"};
    size_t len;
    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
        if (status_words(why, statuses[i], &len))
            return len;
    for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++)
        if (!strncmp(why, own[i], strlen(own[i])))
            return strlen(why);
    return 0;
}

/* Which source a failure's reason speaks of: its first word (failure_summary's WHO, a parent's
 * or a mirror's own words, a held host's kind). */
static const char *failure_source(const char *reason)
{
    static const char *const kinds[] = {"parent", "mirror", "registry"};
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        size_t n = strlen(kinds[i]);
        if (!strncmp(reason, kinds[i], n) && reason[n] == ' ')
            return kinds[i];
    }
    return "upstream";
}

/* failure_summary's " failed after N attempts in S s: " past its WHO at the start of `reason`
 * ("upstream", "parent", a registry's "registry NAME:"), NULL when it has none there. */
static const char *summary_of(const char *reason)
{
    const char *p = reason + strcspn(reason, " ");
    if (!strncmp(reason, "registry ", 9)) { /* its NAME, one word ending in ':' */
        const char *end = p + 1 + strcspn(p + 1, " ");
        if (end > p + 1 && end[-1] == ':')
            p = end;
    }
    return strncmp(p, " failed after ", 14) ? NULL : p;
}

const char *fetch_failure_words(const struct fetch_req *r, const char *reason, unsigned int status,
                                int retry_after, char *buf, size_t size)
{
    const char *who = failure_source(reason), *why = reason, *summary = summary_of(reason), *s;
    char counted[96] = "";
    if (fetch_sees_upstream(r))
        return reason;
    /* failure_summary's count is arca's, kept, its WHO by kind alone (a registry's NAME is the
     * lab's: "registry failed after …") */
    if (summary && (s = strstr(summary, " s: ")) != NULL) {
        why = s + 4;
        snprintf(counted, sizeof(counted), "%s%.*s", who, (int)(why - summary), summary);
    }
    size_t kept = retry_after > 0 ? 0 : words_for_anyone(why);
    if (kept)
        snprintf(buf, size, "%s%.*s", counted, (int)kept, why);
    else if (retry_after > 0 && status == 429) /* held at its own asking (upstream/hosts.h) */
        snprintf(buf, size, "the %s asked arca to wait (429); asked again in %d s", who,
                 retry_after);
    else if (retry_after > 0) /* its Retry-After says when too */
        snprintf(buf, size, "the %s is held down after failures in a row; tried again in %d s", who,
                 retry_after);
    else if (status >= 400 && status < 500) /* upstream's refusal, or arca's of where it leads */
        snprintf(buf, size, "%sthe download was refused", counted);
    else
        snprintf(buf, size, "%sthe %s %s", counted, who,
                 status == 504 ? "did not answer in time" : "could not be reached");
    return buf;
}

enum conn_result fetch_refuse_download(struct fetch_req *r, const struct object_meta *meta,
                                       unsigned int status)
{
    char words[160];
    return fetch_refuse_object(
        r, meta, status,
        fetch_failure_words(r, meta->error[0] ? meta->error : "download failed", status,
                            meta->retry_after, words, sizeof(words)));
}

/* Each 2xx or 304 once, by how it was served: an expired version's answer by its cause
 * (r->stale), a download that upstream answered 304 as revalidated (r->revalidated), else as
 * the lookup found it; what type it was (r->answer_type). */
void fetch_count_success(struct fetch_req *r, const struct object_meta *meta)
{
    atomic_fetch_add(&stats.successes, 1);
    size_t type_len = strnlen(meta->content_type, sizeof(r->answer_type) - 1); /* for the log */
    memcpy(r->answer_type, meta->content_type, type_len);
    r->answer_type[type_len] = '\0';
    r->stale = meta->stale;
    r->revalidated = !meta->stale && r->kind == LOOKUP_MISS && meta->revalidation && meta->renewed;
    if (meta->stale)
        atomic_fetch_add(meta->stale == STALE_ERROR  ? &stats.stale_error
                         : meta->stale == STALE_SLOW ? &stats.stale_slow
                                                     : &stats.stale_revalidate,
                         1);
    else
        atomic_fetch_add(r->revalidated           ? &stats.revalidated
                         : r->kind == LOOKUP_HIT  ? &stats.hits
                         : r->kind == LOOKUP_MISS ? &stats.misses
                                                  : &stats.coalesced,
                         1);
}

/* A filename goes out bare when it is a plain token, quoted (RFC 6266) otherwise; quotes,
 * backslashes and control bytes never reach the header. */
static void add_disposition(struct answer *resp, const char *name)
{
    static const char head[] = "attachment; filename=";
    enum { NAME_MAX_SHOWN = 255 };
    char value[sizeof(head) + NAME_MAX_SHOWN + 2];
    size_t len = strnlen(name, NAME_MAX_SHOWN), n = sizeof(head) - 1;
    bool token = true;
    for (size_t i = 0; i < len && token; i++) {
        unsigned char ch = (unsigned char)name[i];
        token = isalnum(ch) || ch == '.' || ch == '_' || ch == '-' || ch == '+' || ch == '~';
    }
    memcpy(value, head, n);
    if (!token)
        value[n++] = '"';
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)name[i];
        value[n++] = (ch < 0x20 || ch == 0x7f || ch == '"' || ch == '\\') ? '_' : (char)ch;
    }
    if (!token)
        value[n++] = '"';
    value[n] = '\0';
    answer_header(resp, "Content-Disposition", value);
}

/* The file name a client saving the answer should use: the one it put in the path, else the
 * one upstream's Content-Disposition gave, else the target URL's last path segment (as
 * KissCache does: `curl -O -J` on the unnamed route). */
static void add_filename(struct answer *resp, const struct object_meta *meta,
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

/* The body's sha256 as an entity-tag, once it is known (the object complete). */
static bool sha_tag_of(const struct object_meta *meta, char out[68])
{
    if (meta->state != OBJ_COMPLETE)
        return false;
    out[0] = '"';
    format_sha256_hex(meta->digest, out + 1);
    out[65] = '"';
    out[66] = '\0';
    return true;
}

/* The object's one validator (docs/API.md, "Fetch responses"): the origin's strong ETag when it
 * gave one, the same from the first streamed byte to the last hit, so that a client's resume,
 * If-Range or parallel fill (a tier's child arca among them) sees one version throughout; else
 * the body's sha256 once complete (into sha_tag); else none (NULL). A weak ETag validates no
 * range, so it is never the validator. */
static const char *etag_of(const struct object_meta *meta, char sha_tag[68])
{
    if (meta->etag[0] == '"')
        return meta->etag;
    return sha_tag_of(meta, sha_tag) ? sha_tag : NULL;
}

/* Each URL a redirect took the object's download to, one Arca-Redirect line each, in order:
 * a child arca judges them with its own rules, as it judges a redirect it follows itself
 * (docs/API.md, "Fetch responses"). Shown as terms_hop_shown shows them. */
static void add_redirects(struct answer *resp, const struct object_meta *meta)
{
    char hop[HEADER_REDIRECTS_MAX];
    for (const char *p = meta->redirects; *p;) {
        size_t len = strcspn(p, "\n");
        memcpy(hop, p, len);
        hop[len] = '\0';
        answer_header(resp, "Arca-Redirect", hop);
        p += len + (p[len] == '\n');
    }
}

/* The validators and where the download went, also on a 304. */
static void add_validators(struct answer *resp, const struct object_meta *meta)
{
    char sha_tag[68];
    const char *etag = etag_of(meta, sha_tag);
    if (etag)
        answer_header(resp, "ETag", etag);
    if (meta->last_modified[0])
        answer_header(resp, "Last-Modified", meta->last_modified);
    add_redirects(resp, meta);
}

void fetch_repr_digest(const uint8_t digest[32], char out[FETCH_REPR_DIGEST_MAX])
{
    static const char head[] = "sha-256=:";
    _Static_assert(sizeof(head) - 1 + 44 + 2 <= FETCH_REPR_DIGEST_MAX, "room for 32 bytes");
    memcpy(out, head, sizeof(head) - 1);
    int n = EVP_EncodeBlock((unsigned char *)out + sizeof(head) - 1, digest, 32); /* 44, a NUL */
    memcpy(out + sizeof(head) - 1 + n, ":", 2);
}

/* Upstream's bytes are shown under arca's own origin, beside its admin UI and listings: a page an
 * origin serves must never run there as one of arca's (docs/SECURITY.md). So browsers are told
 * not to guess a type, and to treat the body as a sandboxed document of no origin, with nothing
 * to load and no script to run. Saving it (the usual case) is unaffected. */
#define UPSTREAM_CSP "sandbox; default-src 'none'"

/* Whether the answer depends on who asks, beyond --allow-network's gate of every URL: a rule's
 * allow-network decided who may fetch the URL, or the URLs its download was redirected to are
 * judged per client (terms_hops_allowed, while a rule names networks). A shared cache in front
 * (the proxy arca trusts for X-Forwarded-For) must then keep it for no other client: another may
 * be refused. */
static bool differs_by_client(const struct fetch_req *r, const struct object_meta *meta)
{
    if (r->terms.allowed_rule[0])
        return true;
    if (!meta->redirects[0])
        return false;
    const struct rule_set *set = rules_current();
    bool judged = rules_have_networks(set);
    rules_put(set);
    return judged;
}

static void add_cache_control(struct answer *resp, const struct fetch_req *r,
                              const struct object_meta *meta)
{
    if (differs_by_client(r, meta))
        answer_header(resp, "Cache-Control", "private");
}

/* Upstream's headers that say what the bytes are, then ours. */
void fetch_add_headers(struct answer *resp, const struct object_meta *meta,
                       const struct fetch_req *r)
{
    answer_header(resp, "Accept-Ranges", "bytes");
    answer_header(resp, "X-Content-Type-Options", "nosniff");
    answer_header(resp, "Content-Security-Policy", UPSTREAM_CSP);
    if (meta->content_type[0])
        answer_header(resp, "Content-Type", meta->content_type);
    if (meta->content_encoding[0])
        answer_header(resp, "Content-Encoding", meta->content_encoding);
    add_filename(resp, meta, r);
    add_validators(resp, meta);
    add_cache_status(resp, r, meta);
    add_cache_control(resp, r, meta);
    if (meta->state == OBJ_COMPLETE) {
        char value[FETCH_REPR_DIGEST_MAX];
        fetch_repr_digest(meta->digest, value);
        answer_header(resp, "Repr-Digest", value);
    }
}

/* Whether `tag` (len bytes, W/ already skipped) is `etag`, compared weakly. */
static bool same_tag(const char *tag, size_t len, const char *etag)
{
    if (!strncmp(etag, "W/", 2))
        etag += 2;
    return etag[0] && strlen(etag) == len && !memcmp(tag, etag, len);
}

/* A Cache-Status value being written: the parent's members, then arca's, param by param. */
struct status_text {
    char s[sizeof(((struct object_meta *)0)->parent_status) + 160 +
           sizeof(((struct config *)0)->cache_name)];
    size_t n;
};

/* `s` added whole, or the text marked cut (n at the end), as put_param does. */
static void put_text(struct status_text *t, const char *s)
{
    size_t k = strlen(s);
    if (t->n >= sizeof(t->s) || k >= sizeof(t->s) - t->n) {
        t->n = sizeof(t->s);
        return;
    }
    memcpy(t->s + t->n, s, k + 1);
    t->n += k;
}

/* A hit's words without vsnprintf (a hit's answer is built on every hit at a big cache). */
static void put_ttl(struct status_text *t, const char *before, long long ttl)
{
    char n[FORMAT_INT_MAX];
    format_int(ttl, n);
    put_text(t, before);
    put_text(t, n);
}

static void put_param(struct status_text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void put_param(struct status_text *t, const char *fmt, ...)
{
    va_list ap;
    int k;
    if (t->n >= sizeof(t->s))
        return;
    va_start(ap, fmt);
    k = vsnprintf(t->s + t->n, sizeof(t->s) - t->n, fmt, ap);
    va_end(ap);
    t->n = k < 0 ? sizeof(t->s) : t->n + (size_t)k;
}

/* RFC 9211 Cache-Status: arca's own member, named --cache-name (the host's name by default),
 * saying how this request was handled, after the members of the parent arca its bytes came from
 * (meta->parent_status: that cache is nearer the origin, RFC 9211 2), so a tier's answer reads
 * `central; hit; ttl=5, site-a; fwd=uri-miss; ttl=5`
 * (docs/API.md, "Fetch responses"). Every member of an answer that serves an object (its bytes,
 * a 304, 206 or 416 of them; a download's too) carries `ttl=N`, the seconds of freshness left
 * (negative once expired; a download's counted from its start: a child arca keeps that much),
 * and the answer carries Age (RFC 9111 4.2.3: seconds since the object was downloaded or last
 * revalidated). An error about a failed download or a sha256 carries neither, but a kept 404's
 * Age (seconds since upstream said it). arca's member:
 * - `hit`: served from the cache without asking upstream. A 304, 206 or 416 made from a stored
 *   object is a hit too.
 * - `fwd=uri-miss`: nothing stored for the URL, downloaded; `collapsed` when the request joined
 *   a download another one had started. An answer about a failed download says only that (no
 *   ttl, no Age, no parent's member: nothing is held), and so does every refused confirmation
 *   (fetch_confirm.c): worded as any download's refusal, it tells nobody what was cached.
 * - `fwd=stale; fwd-status=304|200`: an expired version was revalidated; upstream confirmed it
 *   (304) or sent another (200).
 * - `fwd=stale; [fwd-status=S;] ttl=-N; detail=D`: an expired version answered (N seconds past
 *   its freshness): upstream failed the refresh (S, its status, when it answered; D
 *   stale-if-error), has not answered it yet (D stale-while-slow), or it is refreshed behind
 *   (D stale-while-revalidate).
 * - `fwd=request; fwd-status=S`: a stored object whose URL is a capability (signed) was served
 *   once upstream had accepted the URL (S, its answer to the one-byte GET).
 * - `fwd=uri-miss; fwd-status=S; detail=digest-hit`: the URL was not stored; upstream accepted it
 *   (S) and another URL's object with the sha256 asked for answered it.
 * - `stored=?0` (after `fwd=uri-miss`): the rule that applies says store = no, or the request
 *   that started the download asked no-store (a child arca's store = no): the answer is
 *   streamed to the clients asking while it downloads and never kept.
 * - `detail=digest-mismatch` (after `fwd=uri-miss` when it was just downloaded): a 502, the
 *   object's sha256 is not the one the request gave; a stored object's says neither hit nor fwd.
 * - `detail=held-down`: a 503, the URL's host is held down, upstream not asked.
 * - `hit; ttl=N; detail=negative`: a 404 or 410 upstream gave the URL's last download, kept
 *   (--negative-ttl, a rule's negative-ttl) and answered for N seconds more, upstream not asked.
 * - `detail=too-large` (after `fwd=uri-miss`): a 413 or 507, the object is more than this arca
 *   takes (its max-object-size, its quota or the room in it), not a disk that failed.
 * Requests arca refuses before looking anything up (400, 403, 414) are its own answers, not the
 * cache's, and carry none (RFC 9211 2: not on locally generated responses). */
static void put_member(struct status_text *t, const struct fetch_req *r,
                       const struct object_meta *meta, bool served, long long ttl)
{
    static const char *const stale_detail[STALE_CAUSES] = {[STALE_ERROR] = "stale-if-error",
                                                           [STALE_SLOW] = "stale-while-slow",
                                                           [STALE_REVALIDATE] =
                                                               "stale-while-revalidate"};
    bool failed = meta && meta->state == OBJ_FAILED;
    bool hit = r->kind == LOOKUP_HIT && meta && meta->state == OBJ_COMPLETE;
    bool mismatch = meta && meta->state == OBJ_COMPLETE && !served;
    put_text(t, http_cfg->cache_name);
    if (hit && mismatch) { /* a 502 from what is stored: neither a hit nor asked upstream */
        put_param(t, "; detail=digest-mismatch");
    } else if (failed && meta->retry_after > 0) { /* a 503: its host held down, not asked */
        put_param(t, "; detail=held-down");
    } else if (served && meta->stale && meta->state == OBJ_COMPLETE) {
        put_param(t, "; fwd=stale");
        if (meta->fwd_status)
            put_param(t, "; fwd-status=%d", meta->fwd_status);
        /* stale from the second its ttl runs out: said as -1 then, never as a fresh 0 */
        put_param(t, "; ttl=%lld; detail=%s", ttl < 0 ? ttl : -1, stale_detail[meta->stale]);
    } else if (hit && r->twin_answer) {
        put_param(t, "; fwd=uri-miss; fwd-status=%d; ttl=%lld; detail=digest-hit", r->probe_status,
                  ttl);
    } else if (hit && r->probe_status) {
        put_param(t, "; fwd=request; fwd-status=%d; ttl=%lld", r->probe_status, ttl);
    } else if (hit) {
        put_ttl(t, "; hit; ttl=", ttl);
    } else if (r->kind == LOOKUP_NEGATIVE) { /* upstream's 404 or 410, kept: not asked again */
        put_param(t, "; hit; ttl=%lld; detail=negative",
                  (long long)(meta->created + meta->ttl - (int64_t)time(NULL)));
    } else {
        bool stale = meta && meta->revalidation && !failed;
        put_param(t, "; fwd=%s", stale ? "stale" : "uri-miss");
        if (stale && meta->headers_ready)
            put_param(t, "; fwd-status=%d", meta->renewed ? 304 : 200);
        if (r->kind == LOOKUP_COALESCED)
            put_param(t, "; collapsed");
        /* its rule's store = no, or the no-store its download was asked with: streamed,
         * never kept */
        if (!r->terms.object.store || (meta && meta->transient))
            put_param(t, "; stored=?0");
        if (served)
            put_param(t, "; ttl=%lld", ttl);
        if (mismatch) /* downloaded, then refused: its sha256 is not the request's */
            put_param(t, "; detail=digest-mismatch");
        if (failed && meta->too_large) /* the URL's, not this cache's failing (parent.h) */
            put_param(t, "; detail=too-large");
    }
}

static void add_cache_status(struct answer *resp, const struct fetch_req *r,
                             const struct object_meta *meta)
{
    struct status_text t = {.n = 0};
    char age[FORMAT_INT_MAX];
    int64_t now = (int64_t)time(NULL);
    /* the answer is the object's (its bytes, headers, a 304, 206 or 416 of them), not an error
     * about a download that failed or about a sha256 it does not have */
    bool served = meta && meta->state != OBJ_FAILED &&
                  (meta->state != OBJ_COMPLETE || fetch_digest_ok(r, meta));

    /* the parent's members name it (its --cache-name, the host's by default): for the clients
     * that may read upstream's words, as the parent's URL is */
    if (served && meta->parent_status[0] && fetch_sees_upstream(r))
        put_param(&t, "%s, ", meta->parent_status);
    put_member(&t, r, meta, served, served ? (long long)(meta->created + meta->ttl - now) : 0);
    if (t.n < sizeof(t.s)) /* never a member cut short */
        answer_header(resp, "Cache-Status", t.s);
    /* a kept 404 is a cached answer too: a child arca keeps it no longer than this one */
    if (served || r->kind == LOOKUP_NEGATIVE) {
        format_int(now > meta->created ? now - meta->created : 0, age);
        answer_header(resp, "Age", age);
    }
}

/* Whether entity-tag list `list` (If-None-Match) holds the object's validator, the origin's own
 * ETag (weak or strong) or, once complete, the body's sha256 tag (what arca answered with before
 * the origin's strong ETag was kept throughout: older clients still hold it), compared weakly
 * (RFC 9110 8.8.3.2: W/ is ignored), or is "*". */
static bool etag_listed(const char *list, const struct object_meta *meta)
{
    char etag[68];
    bool known = sha_tag_of(meta, etag);
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
bool fetch_not_modified(struct fetch_req *r, const struct object_meta *meta, enum conn_result *ret)
{
    const char *inm = conn_header(r->conn, "If-None-Match");
    const char *ims = conn_header(r->conn, "If-Modified-Since");
    struct answer *resp;
    if (inm ? !etag_listed(inm, meta) : !ims || !unmodified_since(ims, meta))
        return false;
    resp = answer_static("", 0);
    if (resp) {
        add_validators(resp, meta);
        add_cache_status(resp, r, meta);
        add_cache_control(resp, r, meta);
    }
    fetch_count_success(r, meta);
    *ret = http_queue(r->conn, HTTP_NOT_MODIFIED, resp);
    return true;
}

/* If-Range (RFC 9110 13.1.5): the Range applies only when the validator is the object's (the
 * origin's strong ETag, while it downloads and after) or, once complete, its sha256 tag, compared
 * strongly, or the very date of our Last-Modified; otherwise the whole body goes out (200). */
static bool range_applies(const struct fetch_req *r, const struct object_meta *meta)
{
    const char *v = conn_header(r->conn, "If-Range");
    char sha_tag[68];
    const char *etag = etag_of(meta, sha_tag);
    int64_t a, b;
    if (!v)
        return true;
    if (v[0] == '"' || !strncmp(v, "W/", 2))
        return (etag && !strcmp(v, etag)) || (sha_tag_of(meta, sha_tag) && !strcmp(v, sha_tag));
    return meta->last_modified[0] && parse_http_date(v, &a) == 0 &&
           parse_http_date(meta->last_modified, &b) == 0 && a == b;
}

/* Resolve the Range header against the object's length. Returns 0 (r->start/end set, *status
 * 200 or 206) or -1 after queueing a 416. An unknown total (chunked upstream still downloading)
 * or an If-Range that does not match serves 200. */
int fetch_apply_range(struct fetch_req *r, const struct object_meta *meta, unsigned int *status,
                      enum conn_result *ret)
{
    const char *hdr = conn_header(r->conn, "Range");
    int64_t total = meta->length;
    struct byte_range br;
    *status = HTTP_OK;
    r->start = 0;
    r->end = total;
    /* an empty body has no byte to range over: the whole (empty) body answers, as RFC 9110
     * 14.2 lets a server ignore a Range, not a 416 (a child arca asks "bytes=0-" first) */
    if (!hdr || total <= 0 || !range_applies(r, meta))
        return 0;
    switch (parse_range(hdr, total, &br)) {
    case RANGE_NONE:
        return 0;
    case RANGE_UNSATISFIABLE: {
        char cr[64];
        struct answer *resp = http_error_response("range not satisfiable (object is %lld "
                                                  "bytes)",
                                                  (long long)total);
        snprintf(cr, sizeof(cr), "bytes */%lld", (long long)total);
        if (resp) {
            answer_header(resp, "Content-Range", cr);
            add_cache_status(resp, r, meta);
        }
        fetch_count_error();
        *ret = http_queue(r->conn, HTTP_RANGE_NOT_SATISFIABLE, resp);
        return -1;
    }
    case RANGE_OK:
        r->start = br.first;
        r->end = br.last + 1;
        *status = HTTP_PARTIAL_CONTENT;
        return 0;
    }
    return 0;
}

void fetch_add_content_range(struct answer *resp, const struct fetch_req *r, int64_t total)
{
    char cr[96];
    snprintf(cr, sizeof(cr), "bytes %lld-%lld/%lld", (long long)r->start, (long long)(r->end - 1),
             (long long)total);
    answer_header(resp, "Content-Range", cr);
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

/* Whether the answer `shared` by a large object's hits gets a mapping of its file, and who sends
 * from it: every connection (mmap), the TLS connections OpenSSL encrypts (auto: the others take
 * the file by sendfile), or none (sendfile). A file sent by sendfile costs a plain connection
 * 0.15 ns of CPU a byte against the mapping's 0.25, but a TLS one without kernel TLS has each
 * record read from the file, where the mapping is encrypted in place (903 MB/s against 783):
 * bench/results/2026-11-27-i70-sendmode-summary.md, and auto against mmap in
 * 2026-11-28-i70-auto-summary.md. A mapping of its own per answer loses to
 * sendfile everywhere: each one faults its pages in again, and for small objects mmap+munmap per
 * request halves the request rate (bench/README.md, "Why the hot path is shaped so"). */
static bool mapped(bool shared, int64_t len)
{
    if (!shared || len < MMAP_MIN_BYTES || http_cfg->send_mode == SEND_SENDFILE)
        return false;
    return http_cfg->send_mode == SEND_MMAP || http_cfg->n_tls_listen > 0;
}

/* Bytes [start, end) of a finished object's file, mapped when mapped() says so. Finished files
 * are never truncated (a new version is a new inode), so a mapping cannot fault.
 * On success the response owns fd (or the mapping replaced it); on NULL the caller still does. */
static struct answer *file_response(int fd, int64_t start, int64_t end, bool shared)
{
    struct answer *resp = NULL;
    struct mapping *m;
    bool both = http_cfg->send_mode == SEND_AUTO;

    if (mapped(shared, end - start) && (m = malloc(sizeof(*m)))) {
        m->len = (size_t)end;
        m->addr = mmap(NULL, m->len, PROT_READ, MAP_SHARED, fd, 0);
        if (m->addr != MAP_FAILED) {
            char *view = (char *)m->addr + start;
            uint64_t len = (uint64_t)(end - start);
            resp = both ? answer_file_mapped(fd, start, len, view, unmap, m)
                        : answer_borrowed(view, len, unmap, m);
            if (!resp)
                munmap(m->addr, m->len);
        }
        if (!resp)
            free(m);
        else if (!both)
            close(fd); /* the mapping keeps the file alive */
    }
    if (!resp)
        resp = answer_file(fd, start, (uint64_t)(end - start));
    return resp;
}

/* One response shared by every plain hit on an object: headers built once, file open or mapped
 * once (see struct prepared in store.h). The server counts an answer's references, so
 * connections still sending it keep it alive after the store lets go. */
struct prepared_answer {
    struct prepared base;
    struct answer *resp;
};

static void destroy_answer(struct prepared *p)
{
    struct prepared_answer *a = (struct prepared_answer *)p;
    answer_put(a->resp);
    free(a);
}

static enum conn_result queue_prepared(struct fetch_req *r, const struct object_meta *meta,
                                       struct prepared *p)
{
    enum conn_result ret;
    r->fd_bytes = r->head ? 0 : meta->length;
    fetch_count_success(r, meta);
    ret = http_queue_shared(r->conn, HTTP_OK, ((struct prepared_answer *)p)->resp);
    prepared_put(p);
    return ret;
}

/* Offer a freshly built plain answer to the store, then send it. */
static enum conn_result share_and_queue(struct fetch_req *r, const struct object_meta *meta,
                                        struct answer *resp)
{
    struct prepared_answer *a = malloc(sizeof(*a));
    if (!a)
        return http_queue(r->conn, HTTP_OK, resp);
    atomic_init(&a->base.refs, 1);
    a->base.destroy = destroy_answer;
    a->base.until = (int64_t)time(NULL) + 1; /* its Age and ttl are this second's */
    a->resp = resp;
    store_attach_prepared(meta, &a->base);
    return queue_prepared(r, meta, &a->base);
}

/* A small object's bytes in memory (see SMALL_MAX); on success the descriptor is closed. */
static struct answer *small_response(int fd, int64_t length)
{
    char *room;
    struct answer *resp = answer_room((size_t)length, &room);
    if (resp && pread(fd, room, (size_t)length, 0) != (ssize_t)length) {
        answer_put(resp);
        resp = NULL;
    }
    if (resp)
        close(fd);
    return resp;
}

/* A finished object goes out from its prepared answer or its file; see file_response(). */
enum conn_result fetch_respond_file(struct fetch_req *r, const struct object_meta *meta, int fd,
                                    struct prepared *prep)
{
    enum conn_result ret = CONN_CLOSE;
    unsigned int status;
    struct answer *resp;
    bool shared;

    if (prep)
        return queue_prepared(r, meta, prep);
    if (fetch_not_modified(r, meta, &ret) || fetch_apply_range(r, meta, &status, &ret) < 0) {
        close(fd);
        return ret;
    }
    /* an answer kept (one that says upstream was asked, Cache-Status, is this request's only):
     * a small object's, holding its bytes, when the object was used earlier in the second (it
     * serves to the second's end: random hits over a big cache would otherwise build one on
     * nearly every hit and drop another from the ring); a larger one's, holding its file and
     * its mapping (mapped()), from its second hit on, its bytes costing far more than the
     * answer */
    shared = status != HTTP_PARTIAL_CONTENT && r->plain && !r->probe_status &&
             (meta->length <= SMALL_MAX ? meta->hot : meta->hit);
    r->fd_bytes = r->head ? 0 : r->end - r->start;
    if (r->plain && meta->length <= SMALL_MAX)
        resp = small_response(fd, meta->length);
    else
        resp = file_response(fd, r->start, r->end, shared);
    if (!resp) {
        close(fd);
        return CONN_CLOSE;
    }
    fetch_add_headers(resp, meta, r);
    if (status == HTTP_PARTIAL_CONTENT)
        fetch_add_content_range(resp, r, meta->length);
    else if (shared)
        return share_and_queue(r, meta, resp);
    fetch_count_success(r, meta);
    return http_queue(r->conn, status, resp);
}

/* The largest body arca rewrites (a pypi page: the biggest projects' are a few MiB). */
#define REWRITE_MAX (64 << 20)

/* The `len` bytes of `fd` from its start, in a buffer of their own; NULL when they cannot all be
 * read. */
static char *read_whole(int fd, int64_t len)
{
    char *buf = len >= 0 && len <= REWRITE_MAX ? malloc((size_t)len + 1) : NULL;
    int64_t got = 0;
    while (buf && got < len) {
        ssize_t n = pread(fd, buf + got, (size_t)(len - got), got);
        if (n <= 0) {
            free(buf);
            return NULL;
        }
        got += n;
    }
    return buf;
}

enum conn_result fetch_respond_rewritten(struct fetch_req *r, const struct object_meta *meta,
                                         int fd)
{
    struct read_range want = {meta->length, NULL, 0};
    struct object_meta m = *meta;
    char *body = NULL, *out = NULL;
    size_t out_len = 0;
    struct answer *resp = NULL;
    int span_fd = -1;
    /* the object's own file, open while the request holds it (store_span) */
    if (meta->length == 0)
        body = calloc(1, 1);
    else if (fd < 0 && r->obj &&
             store_span(r->obj, 0, (size_t)meta->length, &want, NULL, &span_fd) > 0)
        body = read_whole(span_fd, meta->length);
    else if (fd >= 0)
        body = read_whole(fd, meta->length);
    if (body)
        out = r->rewrite(r->rewrite_arg, body, (size_t)meta->length, meta->content_type, &out_len);
    if (fd >= 0)
        close(fd);
    free(body);
    if (r->obj) { /* read whole: the answer is in memory, counted as a file's (fd_bytes) */
        store_unwait(r->obj, &r->park);
        store_release(r->obj);
        r->obj = NULL;
    }
    if (!out)
        return fetch_refuse_object(r, meta, HTTP_BAD_GATEWAY, "arca could not rewrite the page");
    SHA256((const unsigned char *)out, out_len, m.digest); /* its Repr-Digest: these bytes' */
    m.length = (int64_t)out_len;
    m.etag[0] = '\0'; /* upstream's names its bytes, not these */
    if (!(resp = answer_owned(out, out_len))) {
        free(out);
        return CONN_CLOSE;
    }
    r->fd_bytes = r->head ? 0 : (int64_t)out_len;
    fetch_add_headers(resp, &m, r);
    answer_header(resp, "Vary", "Accept");
    fetch_count_success(r, meta);
    return http_queue(r->conn, HTTP_OK, resp);
}

/* Whether a complete object answers this request's sha256 (true when it gave none). */
bool fetch_digest_ok(const struct fetch_req *r, const struct object_meta *meta)
{
    return !r->has_expect || memcmp(meta->digest, r->expect, 32) == 0;
}
