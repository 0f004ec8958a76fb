#include "upstream/easy.h"
#include "config/buckets.h"
#include "registry/registries.h"
#include "rules/policy.h"
#include "rules/rules.h"
#include "rules/terms.h"
#include "upstream/hosts.h"
#include "upstream/outgoing.h"
#include "url/url.h"

#include <arpa/inet.h>
#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* "Via: 1.1 host:port (arca)", set once at start, before any thread reads it. */
static char via_line[sizeof("Via: 1.1 :65535 (arca)") + 256];

void easy_via_init(const struct config *cfg)
{
    char host[256] = "arca";
    if (gethostname(host, sizeof(host)) < 0 || !host[0])
        snprintf(host, sizeof(host), "arca");
    host[sizeof(host) - 1] = '\0';
    snprintf(via_line, sizeof(via_line), "Via: 1.1 %s:%d (arca)", host, cfg->listen_port);
}

const char *upstream_via(void)
{
    return via_line + strlen("Via: ");
}

struct curl_slist *easy_base_headers(const struct bucket_auth *auth, const char *received)
{
    struct curl_slist *l = NULL, *t = NULL;
    char *line = NULL;
    if (auth && !auth->anonymous && !(l = easy_signing_headers(auth)))
        return NULL;
    /* the Via the client's request came with, then ours: a loop through other proxies (arcas)
     * comes back carrying ours */
    if (received && asprintf(&line, "Via: %s, %s", received, upstream_via()) < 0)
        line = NULL;
    if (!received || line)
        t = curl_slist_append(l, line ? line : via_line);
    if (!t)
        curl_slist_free_all(l);
    free(line);
    return t;
}

/* The upstream thread, once it has claimed itself. */
/* The upstream thread, once claimed: `owner` is written before `claimed` is published, so a
 * thread that sees `claimed` sees `owner` (any thread asks: reg_auth_ensure hops to the upstream
 * thread unless it is on it). */
static pthread_t owner;
static atomic_bool claimed;

void upstream_claim_thread(void)
{
    owner = pthread_self();
    atomic_store_explicit(&claimed, true, memory_order_release);
}

bool upstream_on_thread(void)
{
    return atomic_load_explicit(&claimed, memory_order_acquire) &&
           pthread_equal(owner, pthread_self());
}

/* The address a request of `h` to `url` leaves from, into *out: `h`'s download's terms'
 * (h->outgoing) for its own URL, else the rule's of `url`, else --outgoing-address's. */
static void route_from(const struct handle *h, const char *url, struct outgoing_address *out)
{
    bool own = h->outgoing && url == h->url;
    const struct rule_set *set = own ? NULL : rules_current();
    const struct rule *r = set ? rules_match(set, url) : NULL;
    *out = own ? *h->outgoing : r && r->has_outgoing ? r->outgoing : h->loop->cfg->outgoing;
    if (set)
        rules_put(set);
}

/* The address `h` leaves from (route_from for the URL it asks: a probe's, a document's, the
 * rule's of it). Its connections are bound to it and its route's hold is asked with it
 * (hosts.h). */
static void leaves_from(const struct handle *h, struct outgoing_address *out)
{
    route_from(h, h->url, out);
}

static int bind_outgoing(struct handle *h, int fd, int family)
{
    struct outgoing_address out;
    leaves_from(h, &out);
    return outgoing_bind(fd, family, &out, h->refused, sizeof(h->refused));
}

static curl_socket_t open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
    struct handle *h = clientp;
    curl_socket_t fd;
    (void)purpose;
    if (policy_upstream_check(&a->addr, h->refused, sizeof(h->refused)) < 0)
        return CURL_SOCKET_BAD;
    fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
    if (fd >= 0 && bind_outgoing(h, fd, a->family) < 0) {
        close(fd);
        return CURL_SOCKET_BAD;
    }
    return fd;
}

void easy_add_hop(char *hops, size_t size, const char *url)
{
    char *shown = terms_hop_shown(url);
    size_t have = strlen(hops), len = shown ? strlen(shown) : 0;
    /* a hop that cannot be told (too long, no memory) is told as one no rule lets through */
    if (!shown || !shown[0] || strchr(shown, '\n') || have + len + 2 > size) {
        free(shown);
        shown = NULL;
        len = strlen(EASY_HOP_UNKNOWN);
        if (have + len + 2 > size)
            have = 0; /* the list gives way: what it cannot hold is never let through */
    }
    snprintf(hops + have, size - have, "%s%s", have ? "\n" : "", shown ? shown : EASY_HOP_UNKNOWN);
    free(shown);
}

/* A parent serves this arca every URL: only a request for a URL at the parent's own place
 * (source_parent.c, a probe of it) may reach it. Any other handle reaching its address (a name
 * that resolves there, a redirect, a pooled connection) is refused, as an origin naming it is
 * at the request (rules_names_parent). */
static bool reaches_parent(struct handle *h, const char *ip, int port)
{
    struct sockaddr_storage ss = {0};
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    if (!ip || rules_names_parent(h->url, NULL, 0))
        return false;
    if (inet_pton(AF_INET, ip, &v4->sin_addr) == 1)
        v4->sin_family = AF_INET;
    else if (inet_pton(AF_INET6, ip, &v6->sin6_addr) == 1)
        v6->sin6_family = AF_INET6;
    else
        return false;
    return rules_addr_is_parent((struct sockaddr *)&ss, port, h->refused, sizeof(h->refused));
}

/* Each request a handle sends, once connected, a redirect's too: a redirect may not take what
 * is fetched out of the who-may-fetch of the URL asked (rules' allow-network), since its bytes
 * go to every client that URL lets in (terms_same_access). Each followed is recorded: a child
 * arca judges them with its own rules. */
static int before_request(void *clientp, char *primary_ip, char *local_ip, int primary_port,
                          int local_port)
{
    struct handle *h = clientp;
    char *now = NULL;
    (void)local_ip, (void)local_port;
    if (reaches_parent(h, primary_ip, primary_port))
        return CURL_PREREQFUNC_ABORT;
    if (curl_easy_getinfo(h->easy, CURLINFO_EFFECTIVE_URL, &now) != CURLE_OK || !now ||
        !strcmp(now, h->url))
        return CURL_PREREQFUNC_OK;
    if (!terms_same_access(h->url, now, h->refused, sizeof(h->refused)) ||
        rules_names_parent(now, h->refused, sizeof(h->refused)))
        return CURL_PREREQFUNC_ABORT;
    if (h->hops)
        easy_add_hop(h->hops, h->hops_size, now);
    return CURL_PREREQFUNC_OK;
}

bool easy_refused(const struct handle *h, CURLcode rc)
{
    return h->refused[0] && (rc == CURLE_COULDNT_CONNECT || rc == CURLE_ABORTED_BY_CALLBACK);
}

void easy_setup(struct handle *h, struct upstream_loop *loop, CURL *e, const char *url,
                struct rate_flow *flow, char *errbuf)
{
    const struct config *cfg = loop->cfg;
    h->loop = loop;
    h->easy = e;
    h->url = url;
    h->host_probe = false;
    h->hops = NULL;
    h->hops_size = 0;
    h->outgoing = NULL;
    h->realm_of = NULL;
    h->wait = (struct rate_wait){.easy = e, .flow = flow};
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, h);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, (long)cfg->max_redirects);
    /* Environment proxies would make the address policy check the proxy, not the origin. */
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, h);
    curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, before_request);
    curl_easy_setopt(e, CURLOPT_PREREQDATA, h);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, (long)cfg->connect_timeout);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, (long)cfg->stall_timeout);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "arca/" ARCA_VERSION);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    if (cfg->ca_file[0]) {
        /* CAINFO replaces the default bundle; the system store stays reachable through CAPATH. */
        curl_easy_setopt(e, CURLOPT_CAINFO, cfg->ca_file);
        curl_easy_setopt(e, CURLOPT_CAPATH, "/etc/ssl/certs");
    }
}

void easy_set_source(struct handle *h, const char *url, enum host_kind kind)
{
    assert(!h->host_probe);
    h->url = url;
    h->host_kind = kind;
    curl_easy_setopt(h->easy, CURLOPT_URL, url);
}

void easy_set_url(struct handle *h, const char *url)
{
    easy_set_source(h, url, HOST_ORIGIN);
}

/* Whether `h` asks a registry's token realm while the registry is held at its asking: the
 * realm is the registry's, asked nothing meanwhile (why, *retry_after as hosts_limited). */
static bool realm_held(const struct handle *h, char *why, size_t size, int *retry_after)
{
    struct outgoing_address from;
    if (!h->realm_of || !hosts_any_down())
        return false;
    route_from(h, h->realm_of->url, &from);
    return hosts_limited(h->realm_of->url, &from, h->loop->now_ms(), why, size, retry_after);
}

enum easy_start easy_go(struct handle *h, bool may_probe, char *why, size_t size, int *retry_after)
{
    struct outgoing_address from;
    assert(upstream_on_thread() && !h->host_probe && !h->wait.queued);
    leaves_from(h, &from);
    if (realm_held(h, why, size, retry_after))
        return EASY_HELD;
    if (!h->root_check && !hosts_admit(h->url, &from, h->host_kind, h->loop->now_ms(), may_probe,
                                       &h->host_probe, why, size, retry_after))
        return EASY_HELD;
    if (curl_multi_add_handle(h->loop->multi, h->easy) == CURLM_OK)
        return EASY_ASKING;
    if (h->host_probe) /* granted, and no attempt went: the next may probe */
        hosts_result(h->url, &from, h->host_kind, HOST_SAID_NOTHING, true, h->loop->now_ms());
    h->host_probe = false;
    return EASY_FAILED;
}

bool easy_limited(const struct handle *h, char *why, size_t size, int *retry_after)
{
    struct outgoing_address from;
    if (realm_held(h, why, size, retry_after))
        return true;
    leaves_from(h, &from);
    return hosts_limited(h->url, &from, h->loop->now_ms(), why, size, retry_after);
}

int easy_held_status(const struct handle *h)
{
    return easy_limited(h, NULL, 0, NULL) ? 429 : 503;
}

bool easy_take(struct handle *h, size_t len)
{
    return rate_admit(&h->loop->gate, &h->wait, len);
}

/* The registry an answer of `h` speaks for: the one whose realm it asked, or the one whose API its
 * URL is under, asked as the origin (NULL: none). */
static const struct registry *registry_of(const struct handle *h)
{
    if (h->realm_of)
        return h->realm_of;
    return h->host_kind == HOST_ORIGIN ? registries_for_url(h->url) : NULL;
}

/* A registry's 429, or its 503 with a Retry-After (RFC 9110 10.2.3: seconds or an HTTP-date,
 * read by curl), to any request of its own or of its realm holds that registry's route for the
 * wait asked, at most --registry-hold-max (hosts_limit): a limit is the registry's, not one
 * URL's, and asking again before its time only spends the lab's quota. */
static void heard_limit(const struct handle *h)
{
    const struct registry *r;
    struct outgoing_address from;
    char who[REGISTRY_NAME_MAX + 16], what[160];
    long status = 0;
    curl_off_t asked = 0;
    curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &status);
    if (status != 429 && status != 503)
        return;
    if (curl_easy_getinfo(h->easy, CURLINFO_RETRY_AFTER, &asked) != CURLE_OK || asked < 0)
        asked = 0;
    if ((status == 503 && !asked) || !(r = registry_of(h)))
        return;
    asked = asked > INT64_MAX / 1000 ? INT64_MAX / 1000 : asked;
    const char *said = h->realm_of ? "its token realm answered" : "answered";
    snprintf(who, sizeof(who), "registry %s", r->name);
    if (asked)
        snprintf(what, sizeof(what), "%s %ld (Retry-After: %lld s)", said, status,
                 (long long)asked);
    else
        snprintf(what, sizeof(what), "%s %ld (no Retry-After)", said, status);
    route_from(h, r->url, &from);
    int64_t max = __atomic_load_n(&h->loop->cfg->registry_hold_max, __ATOMIC_RELAXED);
    hosts_limit(r->url, &from, who, what, (int64_t)asked * 1000, max * 1000, h->loop->now_ms());
}

/* Told however it ended, so that a probe's mark always goes: a probe refused by the address
 * policy, or cut by a fill, once left its host held until a restart. A name that does not
 * resolve says nothing of the host (hosts_word): it is asked once more and fails fast by
 * itself. Silence after the request asks the host itself (its check's end reaches
 * hosts_checked; one that cannot go says nothing). */
void easy_ended(struct handle *h, CURLcode rc)
{
    bool stopping = atomic_load(&h->loop->stopping);
    enum host_word word = stopping ? HOST_SAID_NOTHING : hosts_word(h->easy, rc, h->refused[0]);
    struct outgoing_address from;
    assert(upstream_on_thread());
    rate_forget(&h->loop->gate, &h->wait);
    curl_multi_remove_handle(h->loop->multi, h->easy);
    leaves_from(h, &from);
    if (word == HOST_UP) /* before the end is told: an answer lifts no hold it asks for */
        heard_limit(h);
    if ((word != HOST_SAID_NOTHING || h->host_probe) &&
        hosts_result(h->url, &from, h->host_kind, word, h->host_probe, h->loop->now_ms()) &&
        (!h->loop->check_host || h->loop->check_host(h->loop, h->url, &from) < 0))
        hosts_checked(h->url, &from, HOST_CHECK_NONE, h->loop->now_ms());
    h->host_probe = false;
}

void easy_sign_for(CURL *e, const struct bucket_auth *auth)
{
    if (auth && !auth->anonymous) {
        curl_easy_setopt(e, CURLOPT_AWS_SIGV4, auth->sigv4);
        curl_easy_setopt(e, CURLOPT_USERPWD, auth->userpwd);
    }
}

/* S3 requires the body's hash with every SigV4 request (a GET's is the empty string's), and
 * libcurl 7.88 does not add it; it signs every x-amz- header it is given. */
#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

struct curl_slist *easy_signing_headers(const struct bucket_auth *auth)
{
    struct curl_slist *l = curl_slist_append(NULL, "x-amz-content-sha256: " EMPTY_SHA256), *t;
    if (l && auth->token_header[0] && !(t = curl_slist_append(l, auth->token_header))) {
        curl_slist_free_all(l);
        return NULL;
    }
    return l;
}

void host_name(const char *url, char *out, size_t size)
{
    size_t len;
    const char *host = url_host(url, &len);
    size_t name = host[0] == '[' ? len : strcspn(host, ":");
    snprintf(out, size, "%.*s", (int)(name < len ? name : len), host);
}

void asked_host(CURL *easy, const char *source, char *out, size_t size)
{
    const char *effective = NULL;
    curl_easy_getinfo(easy, CURLINFO_EFFECTIVE_URL, &effective);
    host_name(effective && effective[0] ? effective : source, out, size);
}

bool copy_header_line(const char *data, size_t len, char *line, size_t size)
{
    snprintf(line, size, "%.*s", (int)(len < size ? len : size - 1), data);
    line[strcspn(line, "\r\n")] = '\0';
    return len < size;
}

void asked_origin(CURL *easy, const char *source, char *out, size_t size)
{
    const char *effective = NULL;
    curl_easy_getinfo(easy, CURLINFO_EFFECTIVE_URL, &effective);
    hosts_origin_of(effective && effective[0] ? effective : source, out, size);
}
