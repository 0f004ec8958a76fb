/* A download's parent arca (parent.h): the URL it is asked, what its answer says, what it gave
 * and how it failed, per parent. */
#include "upstream/parent.h"
#include "base/clock.h"
#include "base/parse.h"
#include "log/log.h"
#include "registry/registries.h"
#include "stats/stats.h"
#include "upstream/easy.h"
#include "upstream/hosts.h"
#include "rules/rules.h"
#include "tls/tls_identity.h"
#include "url/url.h"

#include <assert.h>
#include <ctype.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static const char *const fault_names[PARENT_FAULTS] = {
    [PARENT_REFUSED] = "refused", [PARENT_STATUS] = "status",           [PARENT_LOOP] = "loop",
    [PARENT_CUT] = "cut",         [PARENT_DIGEST] = "digest",           [PARENT_LIE] = "lie",
    [PARENT_DOWN] = "down",       [PARENT_CREDENTIALS] = "credentials",
};

const char *parent_fault_name(enum parent_fault f)
{
    return (unsigned)f < PARENT_FAULTS ? fault_names[f] : "none";
}

/* --- the parents' table ---------------------------------------------------------------------- */

/* What each parent gave and how it failed; its faults in a row and its hold are the hold table's
 * (hosts.h, as HOST_PARENT), filled in by parent_report. Its lock is never held while another is
 * taken: parent_report copies the table, then asks the hold table (hosts.h) with it released. */
static struct {
    pthread_mutex_t lock;
    struct parent_report e[PARENT_MAX];
    int n;
} tab = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* --- its counters across a restart ------------------------------------------------------- */

/* A parent's counters, as the index keeps them (stats.h, struct stats_family): "parent URL
 * WHAT", WHAT one of these (a fallback's reason after the first three). Read once at start into
 * `kept`, which a parent's slot starts from when it is registered; `saved` is what the last save
 * wrote, per slot. `kept` holds every URL the index has rows of: which ones are in use is known
 * only as parents are named, and the rows of parents of old, which stay, must not push out
 * theirs. Written by main before any other thread reads it. */
#define KEPT_VALUES (3 + PARENT_FAULTS)
struct kept_row {
    char url[CONFIG_PARENT_MAX];
    int64_t v[KEPT_VALUES];
};
static struct kept_row *kept;
static int n_kept, room_kept;
static int64_t saved[PARENT_MAX]
                    [KEPT_VALUES]; /* upstream thread (main before it starts: parent_init) */

static const char *kept_what(int k)
{
    static const char *const what[3] = {"requests", "bytes", "hits"};
    return k < 3 ? what[k] : fault_names[k - 3];
}

static const struct stats_family family = {"parent ", kept_what, KEPT_VALUES};

static void values_of(const struct parent_report *e, int64_t v[KEPT_VALUES])
{
    v[0] = e->requests;
    v[1] = e->bytes;
    v[2] = e->hits;
    memcpy(v + 3, e->fallbacks, sizeof(e->fallbacks));
}

/* One counter row: the `k`-th value of the parent at `url`. */
static void take_kept(const char *url, size_t len, int k, int64_t value, void *arg)
{
    int i;
    (void)arg;
    if (len >= sizeof(kept[0].url))
        return;
    for (i = 0; i < n_kept; i++)
        if (strlen(kept[i].url) == len && !strncmp(kept[i].url, url, len))
            break;
    if (i == n_kept && n_kept == room_kept) {
        int room = room_kept ? 2 * room_kept : PARENT_MAX;
        struct kept_row *more = realloc(kept, (size_t)room * sizeof(*kept));
        if (!more)
            return; /* out of memory: its counts start from 0, as a new parent's */
        kept = more;
        room_kept = room;
    }
    if (i == n_kept) {
        memset(&kept[i], 0, sizeof(kept[i]));
        snprintf(kept[n_kept++].url, sizeof(kept[0].url), "%.*s", (int)len, url);
    }
    kept[i].v[k] = value;
}

void parent_load_counters(void)
{
    n_kept = 0;
    stats_family_load(&family, take_kept, NULL);
}

/* Lock held. A new slot's counters: those kept for its URL at the last stop. */
static void start_from_kept(int slot)
{
    struct parent_report *e = &tab.e[slot];
    for (int i = 0; i < n_kept; i++) {
        if (strcmp(kept[i].url, e->url) != 0)
            continue;
        e->requests = kept[i].v[0];
        e->bytes = kept[i].v[1];
        e->hits = kept[i].v[2];
        memcpy(e->fallbacks, kept[i].v + 3, sizeof(e->fallbacks));
        memcpy(saved[slot], kept[i].v, sizeof(saved[slot]));
    }
}

void parent_save_counters(void)
{
    struct parent_report now[PARENT_MAX];
    const char *urls[PARENT_MAX];
    int64_t v[PARENT_MAX][KEPT_VALUES];
    int n;
    pthread_mutex_lock(&tab.lock);
    n = tab.n;
    memcpy(now, tab.e, (size_t)n * sizeof(now[0]));
    pthread_mutex_unlock(&tab.lock);
    for (int i = 0; i < n; i++) {
        urls[i] = now[i].url;
        values_of(&now[i], v[i]);
    }
    stats_family_save(&family, urls, n, &v[0][0], &saved[0][0]);
}

/* The slot of `url` (registered when new, `from` saying who named it, its counters those kept
 * at the last stop); -1 when the table is full: the download then goes without a parent's
 * bookkeeping but is still asked. */
static int slot_of(const char *url, const char *from)
{
    int i;
    pthread_mutex_lock(&tab.lock);
    for (i = 0; i < tab.n; i++)
        if (!strcmp(tab.e[i].url, url))
            break;
    if (i == tab.n && tab.n < PARENT_MAX) {
        memset(&tab.e[i], 0, sizeof(tab.e[i]));
        snprintf(tab.e[i].url, sizeof(tab.e[i].url), "%s", url);
        snprintf(tab.e[i].from, sizeof(tab.e[i].from), "%s", from);
        start_from_kept(i);
        tab.n++;
    }
    pthread_mutex_unlock(&tab.lock);
    return i < PARENT_MAX ? i : -1;
}

void parent_init(const struct config *cfg)
{
    if (cfg->parent[0])
        slot_of(cfg->parent, "--parent");
}

/* Down while held as a parent (its own faults: passed over), or its host held as an origin
 * (under --parent-only, where it is the download's origin). */
int parent_report(struct parent_report *out, int max)
{
    int n = 0;
    int64_t now = monotonic_ms();
    pthread_mutex_lock(&tab.lock);
    for (int i = 0; i < tab.n && n < max; i++)
        out[n++] = tab.e[i];
    pthread_mutex_unlock(&tab.lock);
    for (int i = 0; i < n; i++) {
        struct host_state own, host;
        hosts_state(out[i].url, HOST_PARENT, now, &own);
        hosts_state(out[i].url, HOST_ORIGIN, now, &host);
        out[i].failures = own.failures;
        out[i].down = own.held || host.held;
        out[i].down_since = own.held ? own.since : host.since;
    }
    return n;
}

static void count(int slot, enum parent_fault fault)
{
    if (slot < 0)
        return;
    pthread_mutex_lock(&tab.lock);
    tab.e[slot].fallbacks[fault]++;
    pthread_mutex_unlock(&tab.lock);
}

/* --- a download's ask ------------------------------------------------------------------------- */

/* PARENT/v2/PATH?ns=URL for a configured registry's URL (registries_parent_target), else
 * PARENT/api/v1/fetch/?url=ENC: every byte but the unreserved ones percent-encoded, so the
 * parent reads the client's URL back whole (its own query included). */
char *parent_fetch_url(const char *parent, const char *asked)
{
    size_t n =
        strlen(parent) + sizeof("/api/v1/fetch/?url=") + 3 * strlen(asked) + 3 * REGISTRY_URL_MAX;
    char *out = malloc(n), *o;
    if (!out)
        return NULL;
    o = out + snprintf(out, n, "%s", parent);
    if (registries_parent_target(asked, o, n - (size_t)(o - out)))
        return out;
    o += snprintf(o, n - (size_t)(o - out), "/api/v1/fetch/?url=");
    url_escape_arg(asked, o, n - (size_t)(o - out)); /* sized for it: it fits */
    return out;
}

void parent_plan(const struct config *cfg, struct parent_ask *p, const struct fetch_terms *terms,
                 const char *asked, enum parent_fault *why, char *refuse, size_t size)
{
    const struct source_plan *s = &terms->sources;
    char from[80];
    assert(upstream_on_thread());
    *p = (struct parent_ask){.slot = -1};
    *why = PARENT_FAULTS;
    refuse[0] = '\0';
    if (!s->parent[0])
        return;
    snprintf(from, sizeof(from), terms->parent_from == FROM_RULE ? "rule %s" : "--parent",
             terms->rule);
    p->slot = slot_of(s->parent, from);
    if (!terms_parent_may_see(cfg, terms, asked)) {
        *why = PARENT_CREDENTIALS;
        if (s->parent_only)
            snprintf(refuse, size,
                     "the URL carries credentials and the parent is reached over plain http "
                     "(--parent-trusted-http says that path is trusted); --parent-only forbids "
                     "the origin");
    } else if ((p->fetch_url = parent_fetch_url(s->parent, asked))) {
        snprintf(p->base, sizeof(p->base), "%s", s->parent);
        p->active = true;
        return;
    } else {
        snprintf(refuse, size, "out of memory");
        return;
    }
    count(p->slot, *why);
}

void parent_response_reset(struct parent_ask *p)
{
    p->age = 0;
    p->left = 0;
    p->has_left = p->hit = p->not_stored = p->too_large = false;
    p->cache_status[0] = p->reason[0] = p->said[0] = '\0';
}

void parent_status_line(struct parent_ask *p, const char *line)
{
    const char *r = strchr(line, ' ');
    size_t i = 0;
    parent_response_reset(p);
    r = r ? strchr(r + 1, ' ') : NULL; /* past "HTTP/1.1 403" */
    if (!r)
        return;
    for (r++; r[i] && i < sizeof(p->reason) - 1; i++) /* shown again: printable bytes only */
        p->reason[i] = isprint((unsigned char)r[i]) ? r[i] : '?';
    p->reason[i] = '\0';
}

void parent_status_words(const struct parent_ask *p, long status, char *out, size_t size)
{
    bool relayed = p->cache_status[0] && !p->too_large;
    bool own_refusal = status >= 400 && status < 500 && !p->too_large &&
                       (!relayed || status == 408 || status == 416 || status == 429);
    snprintf(out, size, "%s %ld%s%s%s%s%s", own_refusal ? "parent refused:" : "parent answered",
             status, p->reason[0] ? " " : "", p->reason,
             p->too_large              ? ": the object is too large for it"
             : relayed && !own_refusal ? ", its origin's failure relayed"
                                       : "",
             p->said[0] ? ": " : "", p->said);
}

bool parent_tls_refused(CURLcode rc, const char *errbuf, const char *cert, char *out, size_t size)
{
    char hint[300] = "";
    const char *alert = strstr(errbuf, " alert "), *start;
    size_t len;
    if (!alert ||
        (rc != CURLE_SSL_CONNECT_ERROR && rc != CURLE_RECV_ERROR && rc != CURLE_SEND_ERROR))
        return false;
    for (start = alert; start > errbuf && start[-1] != ':' && start[-1] != ' ';)
        start--; /* "tlsv13 alert certificate required" */
    len = strcspn(start, ",");
    if (strstr(start, "certificate") || strstr(start, "unknown ca")) {
        if (cert && cert[0]) /* one was shown: it is the one refused */
            snprintf(hint, sizeof(hint),
                     " (the parent's client CA does not accept the "
                     "certificate shown, %.200s)",
                     cert);
        else
            snprintf(hint, sizeof(hint), " (show it one: --parent-cert, --parent-key)");
    }
    snprintf(out, size, "parent refused the TLS handshake: %.*s%s", (int)(len > 80 ? 80 : len),
             start, hint);
    return true;
}

void parent_certificate_file(const char *parent, char *out, size_t size)
{
    const struct rule_set *set = rules_current();
    const struct tls_identity *id = parent ? rules_parent_identity(set, parent) : NULL;
    snprintf(out, size, "%s", id ? id->cert_path : "");
    rules_put(set);
}

/* "sha-256=:B64:" among a Repr-Digest's members. */
static void take_digest(struct parent_ask *p, const char *v)
{
    const char *m = strcasestr(v, "sha-256=:");
    unsigned char raw[48];
    char b64[48];
    size_t len;
    if (!m)
        return;
    m += strlen("sha-256=:");
    len = strcspn(m, ":");
    if (len != 44 || m[len] != ':')
        return;
    memcpy(b64, m, 44);
    b64[44] = '\0';
    if (EVP_DecodeBlock(raw, (const unsigned char *)b64, 44) != 33) /* 32 and a pad byte */
        return;
    if (p->has_digest && memcmp(p->digest, raw, 32) != 0)
        p->digest_conflict = true; /* two answers of one object, two digests: neither holds */
    memcpy(p->digest, raw, 32);
    p->has_digest = true;
}

/* The first byte of `s` that is `stop` outside a quoted string (RFC 8941
 * sf-string: "..." with \" and \\ inside), or its end. */
static const char *unquoted(const char *s, char stop)
{
    bool quoted = false;
    for (; *s; s++) {
        if (quoted && *s == '\\' && s[1])
            s++;
        else if (*s == '"')
            quoted = !quoted;
        else if (!quoted && *s == stop)
            return s;
    }
    return s;
}

/* The parent's own member (the last: an arca behind it wrote the earlier ones) of Cache-Status
 * value `v`: whether it is a hit, and its ttl parameter, read as RFC 8941 lists and parameters
 * (a quoted string's commas and "ttl=" are no member's end nor parameter). */
static void read_own_member(struct parent_ask *p, const char *v)
{
    const char *member = v, *at;
    for (const char *c = unquoted(v, ','); *c; c = unquoted(c + 1, ','))
        member = c + 1;
    member += strspn(member, " \t");
    at = unquoted(member, ';');
    while (*at == ';') {
        const char *param = at + 1 + strspn(at + 1, " \t"), *next = unquoted(at + 1, ';');
        size_t len = (size_t)(next - param);
        char *end;
        if (len == 3 && !strncmp(param, "hit", 3))
            p->hit = true;
        if (len == 9 && !strncmp(param, "stored=?0", 9))
            p->not_stored = true;
        if (len == 16 && !strncmp(param, "detail=too-large", 16))
            p->too_large = true;
        if (len > 4 && !strncmp(param, "ttl=", 4)) {
            long long n = strtoll(param + 4, &end, 10);
            if (end != param + 4 && end <= next) {
                p->left = n;
                p->has_left = true;
            }
        }
        at = next;
    }
}

/* What is kept to be shown again holds no control byte, and members whole: the earlier ones go
 * first when it is too long. */
static void take_cache_status(struct parent_ask *p, const char *v)
{
    const char *kept = v;
    for (const unsigned char *c = (const unsigned char *)v; *c; c++)
        if (*c < 0x20 || *c == 0x7f)
            return;
    while (strlen(kept) >= sizeof(p->cache_status) && *unquoted(kept, ','))
        kept = unquoted(kept, ',') + 1 + strspn(unquoted(kept, ',') + 1, " ");
    if (strlen(kept) < sizeof(p->cache_status))
        snprintf(p->cache_status, sizeof(p->cache_status), "%s", kept);
    read_own_member(p, v);
}

/* The parent's reason (its Arca-Error), shown again in a log line and a client's answer:
 * printable bytes only, bounded, any secret of a URL in it hidden as arca hides it. */
static void take_said(struct parent_ask *p, const char *v)
{
    url_redact(v, p->said, sizeof(p->said));
    for (char *c = p->said; *c; c++)
        if (!isprint((unsigned char)*c))
            *c = '?';
}

void parent_digest_line(struct parent_ask *p, const char *line)
{
    if (!strncasecmp(line, "Repr-Digest:", 12))
        take_digest(p, line + 12 + strspn(line + 12, " \t"));
}

void parent_header(struct parent_ask *p, const char *line)
{
    const char *colon = strchr(line, ':'), *v;
    size_t name;
    if (!colon)
        return;
    name = (size_t)(colon - line);
    v = colon + 1 + strspn(colon + 1, " \t");
    if (name == 11 && !strncasecmp(line, "Repr-Digest", 11)) {
        take_digest(p, v);
    } else if (name == 3 && !strncasecmp(line, "Age", 3)) {
        long long n = strtoll(v, NULL, 10);
        p->age = n > 0 && n < (1LL << 40) ? n : 0;
    } else if (name == 12 && !strncasecmp(line, "Cache-Status", 12)) {
        take_cache_status(p, v);
    } else if (name == 10 && !strncasecmp(line, "Arca-Error", 10)) {
        take_said(p, v);
    }
}

int parent_judge(const struct parent_ask *p, long status, enum parent_fault *fault)
{
    if (status < 200 || (status >= 200 && status < 300) || status == 304)
        return 0; /* an interim answer (1xx) comes before its final one */
    if (status == 508) {
        *fault = PARENT_LOOP;
        return -1;
    }
    if (p->too_large) { /* its limit, not the origin's word: the origin is asked */
        *fault = PARENT_STATUS;
        return -1;
    }
    /* a 4xx the parent's download got from the origin carries its Cache-Status (fwd=uri-miss):
     * the origin's verdict, the same from here; one without is the parent's own refusal */
    if (status >= 400 && status < 500 && status != 408 && status != 416 && status != 429 &&
        p->cache_status[0]) /* 416 is about the Range this arca sent, never the origin's word */
        return 1;
    *fault = PARENT_STATUS;
    return -1;
}

void parent_show_certificate(CURL *easy, const char *parent)
{
    const struct rule_set *set = rules_current();
    const struct tls_identity *id = parent ? rules_parent_identity(set, parent) : NULL;
    struct curl_blob cert = {0}, key = {0};
    if (id) { /* copied by libcurl: the set may go with a SIGHUP */
        cert = (struct curl_blob){id->cert, id->cert_len, CURL_BLOB_COPY};
        key = (struct curl_blob){id->key, id->key_len, CURL_BLOB_COPY};
    }
    curl_easy_setopt(easy, CURLOPT_SSLCERT_BLOB, id ? &cert : NULL);
    curl_easy_setopt(easy, CURLOPT_SSLKEY_BLOB, id ? &key : NULL);
    rules_put(set);
}

void parent_served(struct parent_ask *p, int64_t bytes)
{
    hosts_judged(p->base, HOST_PARENT, false, monotonic_ms());
    if (p->slot < 0)
        return;
    pthread_mutex_lock(&tab.lock);
    struct parent_report *e = &tab.e[p->slot];
    e->requests++;
    e->bytes += bytes;
    e->hits += p->hit;
    pthread_mutex_unlock(&tab.lock);
}

bool parent_digest_ok(const struct parent_ask *p, const uint8_t digest[32])
{
    return p->has_digest && !p->digest_conflict && memcmp(p->digest, digest, 32) == 0;
}

/* A fault of the parent's own, told to the hold table; a hold it brings is said here, as what
 * it is (`only`: --parent-only, where the parent is still asked, the only source). */
static void note_fault(const struct parent_ask *p, bool only)
{
    struct host_state st;
    int64_t now_ms = monotonic_ms(), held_ms = hosts_judged(p->base, HOST_PARENT, true, now_ms);
    if (!held_ms)
        return;
    hosts_state(p->base, HOST_PARENT, now_ms, &st);
    log_info("parent %s: %d failures in a row; %s for %lld s", p->base, st.failures,
             only ? "held down (--parent-only: still asked, the only source)" : "passed over",
             (long long)(held_ms / 1000));
}

void parent_fault(struct parent_ask *p, const char *url, enum parent_fault fault, bool its_own,
                  const char *detail)
{
    assert(upstream_on_thread() && (unsigned)fault < PARENT_FAULTS);
    p->active = false;
    count(p->slot, fault);
    if (its_own)
        note_fault(p, false);
    log_info("fetch %s: parent failed (%s: %s); going to the origin", url, parent_fault_name(fault),
             detail);
}

void parent_failed_attempt(struct parent_ask *p, enum parent_fault fault, bool its_own)
{
    assert(upstream_on_thread() && (unsigned)fault < PARENT_FAULTS);
    if (its_own)
        note_fault(p, true);
}

void parent_forget(struct parent_ask *p)
{
    free(p->fetch_url);
    p->fetch_url = NULL;
    p->active = false;
}

/* --- a fill's piece and a probe asked of a parent (source_req.h) ----------------------------- */

/* A piece asks for the parent's digest too (its trailer, or its header once its copy is
 * complete); every request shows it the certificate the rules give it. */
static bool req_request(void *rec, enum source_req_what what, CURL *easy,
                        struct curl_slist **headers)
{
    struct parent_ask *p = rec;
    struct curl_slist *l = *headers;
    parent_show_certificate(easy, p->base);
    if (what == SOURCE_REQ_PIECE && !(l = curl_slist_append(l, "Want-Repr-Digest: sha-256=10")))
        return false;
    *headers = l;
    return true;
}

static void req_status_line(void *rec, const char *line)
{
    parent_status_line(rec, line);
}

/* A probe reads what a download reads of its headers; a piece only its digest (what its
 * download is was said by the answer it began with). */
static void req_header(void *rec, const char *line)
{
    parent_header(rec, line);
}

static void req_piece_line(void *rec, const char *line)
{
    parent_digest_line(rec, line);
}

static bool req_said(void *rec, long status, char *why, size_t size)
{
    const struct parent_ask *p = rec;
    parent_status_words(p, status, why, size);
    return parent_judge(p, status, &(enum parent_fault){0}) < 0;
}

static bool req_silent(void *rec, CURLcode rc, const char *errbuf, char *why, size_t size)
{
    const struct parent_ask *p = rec;
    char cert[1024];
    parent_certificate_file(p->base, cert, sizeof(cert));
    return parent_tls_refused(rc, errbuf, cert, why, size);
}

static void req_release(void *rec)
{
    parent_forget(rec);
    free(rec);
}

static const struct source_req_ops piece_ops = {
    .name = "parent",
    .request = req_request,
    .header = req_piece_line,
    .trailer = req_piece_line,
};

static const struct source_req_ops probe_ops = {
    .name = "parent",
    .request = req_request,
    .status_line = req_status_line,
    .header = req_header,
    .said = req_said,
    .silent = req_silent,
    .release = req_release,
};

struct source_req parent_piece_req(struct parent_ask *p)
{
    return (struct source_req){&piece_ops, p};
}

int parent_probe_req(const char *parent, struct source_req *out)
{
    struct parent_ask *p = calloc(1, sizeof(*p));
    if (!p)
        return -1;
    p->slot = -1; /* not the table's: its answer is only read */
    snprintf(p->base, sizeof(p->base), "%s", parent);
    *out = (struct source_req){&probe_ops, p};
    return 0;
}
