/* /api/v1/health/, /api/v1/status/ (KissCache's keys) and /metrics (Prometheus text).
 *
 * The status follows KissCache's api_status: disk_usage_percent is the integer
 * round(disk_usage / disk_quota * 100), rounding half to even as Python's round does (0 when
 * there is no quota); instance is the base URL the client used, "http://HOST/" from its Host
 * header (Django's build_absolute_uri("/")). A Host that is not a plain host[:port] is never
 * echoed: the listening address stands in. X-Forwarded-Host is not read (HAProxy passes Host on
 * unchanged); X-Forwarded-Proto: https makes the scheme https only from a --trusted-proxy, a
 * connection to a --tls-listen address always. "tls" (not KissCache's) is null without
 * --tls-listen; its times are written as the status's others. The arca_tls_ families of the
 * metrics appear only with --tls-listen. "parent" (docs/API.md, "Parent arcas") is null, and the
 * arca_parent_ families absent, until some parent is known: --parent from the start, a rule's
 * once a download asked it (upstream/parent.h's table). A parent's URL and the rule that names
 * it are the lab's layout: shown to a client that may see what arca caches (http_sees_urls),
 * a stranger gets the counters only (null in their place; the metrics label a parent by its
 * place in the list, "1", "2"...). */
#include "http/http_internal.h"
#include "http/http_offload.h"
#include "engine/engine.h"
#include "base/clock.h"
#include "base/parse.h"
#include "upstream/hosts.h"
#include "upstream/parent.h"
#include "upstream/upstream.h"
#include "rules/policy.h"
#include "persist/pace.h"
#include "persist/persist.h"
#include "stats/latency.h"
#include "stats/rule_stats.h"
#include "stats/stats.h"
#include "store/store.h"
#include "tls/tls.h"

#include <assert.h>
#include <curl/curl.h>
#include <openssl/crypto.h>
#include <sqlite3.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

enum conn_result http_health(struct conn *c, struct request *req, const char *rest)
{
    (void)rest;
    assert(http_handling(c, req));
    if (engine_draining())
        return http_send_error(c, HTTP_SERVICE_UNAVAILABLE, "draining: arca is stopping");
    if (http_cfg->shutdown_file[0] && access(http_cfg->shutdown_file, F_OK) == 0)
        return http_send_error(c, HTTP_SERVICE_UNAVAILABLE, "shutdown file %s exists",
                               http_cfg->shutdown_file);
    return http_send_text(c, HTTP_OK, "text/plain; charset=utf-8", "ok");
}

/* KissCache's round(usage / quota * 100), in that order; rint rounds half to even, as Python. */
static json_int_t percent(int64_t part, int64_t whole)
{
    return whole > 0 ? (json_int_t)rint((double)part / (double)whole * 100.0) : 0;
}

/* A Host header worth echoing: a name or address, an optional port, nothing else. */
static bool plain_host(const char *host)
{
    static const char ok[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]";
    size_t len = host ? strlen(host) : 0;
    return len > 0 && len < 256 && strspn(host, ok) == len;
}

/* "https" when the client spoke TLS to arca (a --tls-listen address), or when a --trusted-proxy
 * says it spoke TLS to it. */
static const char *client_scheme(struct conn *c)
{
    const struct sockaddr *peer = conn_peer(c);
    const char *proto = conn_header(c, "X-Forwarded-Proto");
    if (conn_tls(c))
        return "https";
    if (peer && proto && !strcasecmp(proto, "https") && policy_trusted_proxy(peer))
        return "https";
    return "http";
}

/* The upstream hosts held down (upstream/hosts.h): how many, and which to a client that may see
 * what arca caches. */
static void add_hosts_down(struct conn *c, json_t *o)
{
    size_t n;
    struct host_down *down = hosts_down_list(&n, monotonic_ms());
    size_t shown = http_sees_urls(c) ? n : 0;
    json_t *list = json_array();
    char since[32];
    json_object_set_new(o, "upstream_hosts_down", json_integer((json_int_t)n));
    for (size_t i = 0; list && i < shown; i++) {
        http_iso_time(down[i].since, since, sizeof(since)); /* as the status's other times */
        json_t *d = json_pack("{s:s, s:s, s:i, s:I, s:b}", "host", down[i].origin, "since", since,
                              "failures", down[i].failures, "next_probe_ms",
                              (json_int_t)down[i].probe_in_ms, "hung", down[i].hung);
        if (d && down[i].from[0]) /* a route leaving from a rule's own address */
            json_object_set_new(d, "outgoing_address", json_string(down[i].from));
        json_array_append_new(list, d);
    }
    if (list)
        json_object_set_new(o, "upstream_hosts_down_list", list);
    free(down);
}

/* The base URL clients use (see the top comment), into out[size]. */
static void instance_url(struct conn *c, char *out, size_t size)
{
    const char *host = conn_header(c, "Host");
    const char *listen = http_cfg->listen_host;
    char name[256] = "localhost";
    if (plain_host(host)) {
        snprintf(out, size, "%s://%s/", client_scheme(c), host);
        return;
    }
    if (!strcmp(listen, "0.0.0.0") || !strcmp(listen, "::"))
        listen = gethostname(name, sizeof(name) - 1) == 0 ? name : "localhost";
    snprintf(out, size, strchr(listen, ':') ? "%s://[%s]:%d/" : "%s://%s:%d/", client_scheme(c),
             listen, http_cfg->listen_port);
}

/* Who may fetch: the networks, and whether they are the default list (no --allow-network). */
static void add_allow_networks(json_t *o)
{
    struct cidr nets[CONFIG_MAX_NETS];
    bool by_default;
    int n = policy_clients(nets, &by_default);
    json_t *list = json_array();
    for (int i = 0; i < n; i++) {
        char text[64];
        format_cidr(&nets[i], text, sizeof(text));
        json_array_append_new(list, json_string(text));
    }
    json_object_set_new(o, "allow_networks", list);
    json_object_set_new(o, "allow_networks_default", json_boolean(by_default));
}

/* The certificate in force, its times as the status's other times. */
static json_t *tls_certificate(const struct tls_info *t)
{
    char before[32], after[32], loaded[32];
    http_iso_time(t->not_before, before, sizeof(before));
    http_iso_time(t->not_after, after, sizeof(after));
    http_iso_time(t->loaded_at, loaded, sizeof(loaded));
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:s}", "file", t->cert_file, "subject",
                     t->subject, "issuer", t->issuer, "not_before", before, "not_after", after,
                     "expires_in_seconds", (json_int_t)(t->not_after - (int64_t)time(NULL)),
                     "loaded_at", loaded);
}

/* Whether new connections get kernel TLS, and why not (as the kernel said when the certificate
 * was read: a module loaded since is offered from the next SIGHUP on). */
static json_t *tls_kernel(const struct tls_info *t, int64_t connections)
{
    return json_pack("{s:b, s:s?, s:I}", "offered", t->ktls, "why", t->ktls ? NULL : t->ktls_why,
                     "connections", (json_int_t)connections);
}

/* The status's "tls": null without --tls-listen; the addresses, the certificate, the client CA
 * and what the TLS connections did since start (tls.h's counts: handshakes include the resumed,
 * handshake_failures the refused client certificates). */
static json_t *tls_status(void)
{
    struct tls_info t;
    int64_t n[TLS_N_EVENTS];
    json_t *listen = json_array(), *o;
    char addr[96];
    if (http_cfg->n_tls_listen == 0) {
        json_decref(listen);
        return json_null();
    }
    tls_describe(&t);
    tls_counts(n);
    for (int i = 0; listen && i < http_cfg->n_tls_listen; i++) {
        format_host_port(http_cfg->tls_listen[i].host, http_cfg->tls_listen[i].port, addr,
                         sizeof(addr));
        json_array_append_new(listen, json_string(addr));
    }
    o = json_pack(
        "{s:o, s:o, s:o, s:o, s:I, s:I, s:I, s:I, s:I, s:I}", "listen", listen, "certificate",
        t.enabled ? tls_certificate(&t) : json_null(), "client_ca",
        t.client_ca[0] ? json_string(t.client_ca) : json_null(), "kernel_tls",
        tls_kernel(&t, n[TLS_KTLS]), "handshakes", (json_int_t)n[TLS_HANDSHAKE], "resumed",
        (json_int_t)n[TLS_RESUMED], "handshake_failures", (json_int_t)n[TLS_FAILED],
        "no_client_certificate", (json_int_t)n[TLS_NO_CLIENT_CERT], "plain_http_refused",
        (json_int_t)n[TLS_PLAIN_HTTP], "refused_after_reload", (json_int_t)n[TLS_REFUSED_LATER]);
    return o ? o : json_null();
}

/* One parent's entry: what it gave, its state, its fallbacks by reason (parent_fault_name);
 * its URL and who named it when `named`, else null. */
static json_t *parent_entry(const struct parent_report *r, bool named)
{
    char since[32];
    json_t *fallbacks = json_object();
    for (int f = 0; fallbacks && f < PARENT_FAULTS; f++)
        json_object_set_new(fallbacks, parent_fault_name((enum parent_fault)f),
                            json_integer((json_int_t)r->fallbacks[f]));
    if (r->down)
        http_iso_time(r->down_since, since, sizeof(since));
    return json_pack("{s:s?, s:s?, s:s, s:o, s:i, s:I, s:I, s:I, s:o?}", "url",
                     named ? r->url : NULL, "from", named ? r->from : NULL, "state",
                     r->down ? "down" : "up", "down_since",
                     r->down ? json_string(since) : json_null(), "failures", r->failures,
                     "requests", (json_int_t)r->requests, "bytes", (json_int_t)r->bytes, "hits",
                     (json_int_t)r->hits, "fallbacks", fallbacks);
}

/* The status's "parent": null without any parent known, else the options and each parent
 * (their URLs and namers when `named`). */
static json_t *parent_status(bool named)
{
    struct parent_report r[PARENT_MAX];
    int n = parent_report(r, PARENT_MAX);
    json_t *list, *o;
    if (n == 0 && !http_cfg->parent[0])
        return json_null();
    list = json_array();
    for (int i = 0; list && i < n; i++)
        json_array_append_new(list, parent_entry(&r[i], named));
    o = json_pack("{s:o, s:b, s:b, s:o?}", "url",
                  named && http_cfg->parent[0] ? json_string(http_cfg->parent) : json_null(),
                  "only", http_cfg->parent_only, "trusted_http", http_cfg->parent_trusted_http,
                  "parents", list);
    return o ? o : json_null();
}

enum conn_result http_status(struct conn *c, struct request *req, const char *rest)
{
    (void)rest;
    assert(http_handling(c, req));
    struct store_totals t;
    char stamp[32], instance[300], *text;
    json_t *o;

    engine_settle(); /* a request its client saw end is counted (engine.h) */
    store_totals(&t);
    http_iso_time((int64_t)time(NULL), stamp, sizeof(stamp));
    instance_url(c, instance, sizeof(instance));
    o = json_pack("{s:s, s:I, s:I, s:I, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
                  "s:s}",
                  "timestamp", stamp, "disk_usage", (json_int_t)t.disk_usage, "disk_usage_percent",
                  percent(t.disk_usage, t.quota), "disk_quota", (json_int_t)t.quota, "instance",
                  instance, "resources_scheduled", (json_int_t)t.scheduled, "resources_downloading",
                  (json_int_t)t.downloading, "resources_successes", (json_int_t)t.complete,
                  "resources_failures", (json_int_t)atomic_load(&stats.downloads_failed),
                  "resources_usage", (json_int_t)t.usage, "statistics_successes",
                  (json_int_t)atomic_load(&stats.successes), "statistics_failures",
                  (json_int_t)atomic_load(&stats.failures), "statistics_download",
                  (json_int_t)atomic_load(&stats.bytes_downloaded), "statistics_upload",
                  (json_int_t)atomic_load(&stats.bytes_served), "statistics_requests",
                  (json_int_t)atomic_load(&stats.requests), "version", ARCA_VERSION);
    /* Beyond KissCache's keys: what `arca status` needs for the hit ratio. */
    json_object_set_new(o, "statistics_hits", json_integer(atomic_load(&stats.hits)));
    json_object_set_new(o, "statistics_disk_answers", json_integer(stats_disk_answers()));
    json_object_set_new(o, "statistics_tried", json_integer(stats_ratio_requests()));
    json_object_set_new(o, "statistics_revalidated", json_integer(atomic_load(&stats.revalidated)));
    json_object_set_new(o, "statistics_refused", json_integer(atomic_load(&stats.refused)));
    json_object_set_new(o, "statistics_held_down", json_integer(atomic_load(&stats.held_down)));
    json_object_set_new(o, "statistics_signed_hits", json_integer(atomic_load(&stats.signed_hits)));
    json_object_set_new(o, "statistics_confirmations",
                        json_integer(atomic_load(&stats.confirmations)));
    json_object_set_new(o, "statistics_confirm_refused",
                        json_integer(atomic_load(&stats.confirm_refused)));
    json_object_set_new(o, "statistics_confirm_changed",
                        json_integer(atomic_load(&stats.confirm_changed)));
    json_object_set_new(o, "statistics_stale_answers",
                        json_integer(atomic_load(&stats.stale_error) +
                                     atomic_load(&stats.stale_slow) +
                                     atomic_load(&stats.stale_revalidate)));
    /* the index's rows still loading after a start: the counts above grow until false */
    json_object_set_new(o, "index_loading", json_boolean(store_loading()));
    /* the objects a rule pinned (pin = yes), among resources_successes */
    json_object_set_new(o, "pinned_objects", json_integer((json_int_t)t.pinned_objects));
    json_object_set_new(o, "pinned_bytes", json_integer((json_int_t)t.pinned_bytes));
    json_object_set_new(o, "upstream_rate_limit", json_integer((json_int_t)upstream_rate_cap()));
    add_hosts_down(c, o);
    add_allow_networks(o);
    json_object_set_new(o, "tls", tls_status());
    json_object_set_new(o, "parent", parent_status(http_sees_urls(c)));
    json_object_set_new(o, "statistics_bucket_listings",
                        json_integer(atomic_load(&stats.bucket_listings)));
    json_object_set_new(o, "statistics_bucket_list_requests",
                        json_integer(atomic_load(&stats.bucket_list_requests)));
    json_object_set_new(o, "statistics_bucket_list_cached",
                        json_integer(atomic_load(&stats.bucket_list_cached)));
    if (o) {
        http_registries_status(o, http_sees_urls(c));
        http_remotes_status(o, http_sees_urls(c));
    }
    text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!text)
        return http_send_error(c, HTTP_INTERNAL_SERVER_ERROR, "cannot build status");
    return http_send_private(c, HTTP_OK, "application/json", text, strlen(text));
}

/* The requests, bytes, objects, attempts, limits, disk and activity families. */
static void metrics_core(char *body, size_t size)
{
    struct store_totals t;
    store_totals(&t);
    snprintf(
        body, size,
        "# HELP arca_requests_total Fetch requests by result: hit (from disk), miss, coalesced, "
        "revalidated (upstream answered 304), stale (an expired version), error, refused (a client "
        "--allow-network or a rule's allow-network leaves out; a refused CONNECT too), held_down "
        "(503: the host held down).\n"
        "# TYPE arca_requests_total counter\n"
        "arca_requests_total{result=\"hit\"} %lld\n"
        "arca_requests_total{result=\"miss\"} %lld\n"
        "arca_requests_total{result=\"coalesced\"} %lld\n"
        "arca_requests_total{result=\"revalidated\"} %lld\n"
        "arca_requests_total{result=\"stale\"} %lld\n"
        "arca_requests_total{result=\"error\"} %lld\n"
        "arca_requests_total{result=\"refused\"} %lld\n"
        "arca_requests_total{result=\"held_down\"} %lld\n"
        "# HELP arca_served_bytes_total Body bytes sent to clients.\n"
        "# TYPE arca_served_bytes_total counter\n"
        "arca_served_bytes_total %lld\n"
        "# HELP arca_downloaded_bytes_total Body bytes received from upstream.\n"
        "# TYPE arca_downloaded_bytes_total counter\n"
        "arca_downloaded_bytes_total %lld\n"
        "# HELP arca_objects Objects in the cache by state.\n"
        "# TYPE arca_objects gauge\n"
        "arca_objects{state=\"scheduled\"} %lld\n"
        "arca_objects{state=\"downloading\"} %lld\n"
        "arca_objects{state=\"complete\"} %lld\n"
        "# HELP arca_downloads_failed_total Upstream downloads that failed.\n"
        "# TYPE arca_downloads_failed_total counter\n"
        "arca_downloads_failed_total %lld\n"
        "# HELP arca_download_attempts_total Upstream attempts after the first, by kind.\n"
        "# TYPE arca_download_attempts_total counter\n"
        "arca_download_attempts_total{kind=\"retry\"} %lld\n"
        "arca_download_attempts_total{kind=\"resume\"} %lld\n"
        "arca_download_attempts_total{kind=\"restart\"} %lld\n"
        "# HELP arca_limited_requests_total Requests refused by a limit (413/414/429/431/503).\n"
        "# TYPE arca_limited_requests_total counter\n"
        "arca_limited_requests_total %lld\n"
        "# HELP arca_disk_usage_bytes Bytes stored or claimed by downloads.\n"
        "# TYPE arca_disk_usage_bytes gauge\n"
        "arca_disk_usage_bytes %lld\n"
        "# HELP arca_disk_quota_bytes The configured quota.\n"
        "# TYPE arca_disk_quota_bytes gauge\n"
        "arca_disk_quota_bytes %lld\n"
        "# HELP arca_active_connections Open client connections.\n"
        "# TYPE arca_active_connections gauge\n"
        "arca_active_connections %lld\n"
        "# HELP arca_idle_connections_closed_total Idle keep-alive connections closed to admit "
        "new ones at --max-connections.\n"
        "# TYPE arca_idle_connections_closed_total counter\n"
        "arca_idle_connections_closed_total %lld\n"
        "# HELP arca_active_downloads Upstream transfers running.\n"
        "# TYPE arca_active_downloads gauge\n"
        "arca_active_downloads %lld\n",
        (long long)atomic_load(&stats.hits), (long long)atomic_load(&stats.misses),
        (long long)atomic_load(&stats.coalesced), (long long)atomic_load(&stats.revalidated),
        (long long)(atomic_load(&stats.stale_error) + atomic_load(&stats.stale_slow) +
                    atomic_load(&stats.stale_revalidate)),
        (long long)atomic_load(&stats.errors), (long long)atomic_load(&stats.refused),
        (long long)atomic_load(&stats.held_down), (long long)atomic_load(&stats.bytes_served),
        (long long)atomic_load(&stats.bytes_downloaded), (long long)t.scheduled,
        (long long)t.downloading, (long long)t.complete,
        (long long)atomic_load(&stats.downloads_failed),
        (long long)atomic_load(&stats.download_retries),
        (long long)atomic_load(&stats.download_resumes),
        (long long)atomic_load(&stats.download_restarts), (long long)atomic_load(&stats.limited),
        (long long)t.disk_usage, (long long)t.quota, (long long)atomic_load(&stats.connections),
        (long long)atomic_load(&stats.idle_closed),
        (long long)atomic_load(&stats.downloads_active));
}

/* Each worker's connections, appended: whether they are spread over the cores. */
static void metrics_workers(struct buf *out)
{
    int n = engine_workers();
    buf_add(out, "# HELP arca_worker_connections Open client connections by worker thread (a new "
                 "one goes to the worker with the fewest).\n"
                 "# TYPE arca_worker_connections gauge\n");
    for (int i = 0; i < n; i++)
        buf_addf(out, "arca_worker_connections{worker=\"%d\"} %d\n", i,
                 engine_worker_connections(i));
}

/* The signed URLs', revalidations', restarts', mirrors', digest hits' and stale answers'
 * families, appended. */
static void metrics_keys(char *body, size_t size)
{
    size_t used = strlen(body);
    snprintf(body + used, size - used,
             "# HELP arca_signed_hits_total Hits served through a signed URL (its key left the "
             "signature out).\n"
             "# TYPE arca_signed_hits_total counter\n"
             "arca_signed_hits_total %lld\n"
             "# HELP arca_confirmations_total Signed URLs asked of upstream before a hit, by "
             "outcome.\n"
             "# TYPE arca_confirmations_total counter\n"
             "arca_confirmations_total{outcome=\"accepted\"} %lld\n"
             "arca_confirmations_total{outcome=\"refused\"} %lld\n"
             "# HELP arca_confirm_changed_total Confirmations that found another version "
             "upstream.\n"
             "# TYPE arca_confirm_changed_total counter\n"
             "arca_confirm_changed_total %lld\n"
             "# HELP arca_revalidations_total Expired objects asked for again conditionally, by "
             "answer.\n"
             "# TYPE arca_revalidations_total counter\n"
             "arca_revalidations_total{result=\"unchanged\"} %lld\n"
             "arca_revalidations_total{result=\"changed\"} %lld\n"
             "# HELP arca_restart_resumes_total Downloads cut by a stop and continued after the "
             "restart.\n"
             "# TYPE arca_restart_resumes_total counter\n"
             "arca_restart_resumes_total %lld\n"
             "# HELP arca_mirror_downloads_total Downloads served by a --mirror instead of the "
             "origin.\n"
             "# TYPE arca_mirror_downloads_total counter\n"
             "arca_mirror_downloads_total %lld\n"
             "# HELP arca_digest_hits_total Requests with &sha256= served from an identical object "
             "cached under another URL.\n"
             "# TYPE arca_digest_hits_total counter\n"
             "arca_digest_hits_total %lld\n"
             "# HELP arca_stale_answers_total Answers from an expired version, by cause: upstream "
             "failed, upstream slow, or refreshed behind (stale-while-revalidate).\n"
             "# TYPE arca_stale_answers_total counter\n"
             "arca_stale_answers_total{cause=\"error\"} %lld\n"
             "arca_stale_answers_total{cause=\"slow\"} %lld\n"
             "arca_stale_answers_total{cause=\"revalidate\"} %lld\n"
             "# HELP arca_refreshes_failed_stale_total Refreshes of expired objects that failed "
             "upstream, the expired version kept to answer.\n"
             "# TYPE arca_refreshes_failed_stale_total counter\n"
             "arca_refreshes_failed_stale_total %lld\n"
             "# HELP arca_upstream_hosts_down Upstream hosts held down after --origin-failures "
             "failures in a row.\n"
             "# TYPE arca_upstream_hosts_down gauge\n"
             "arca_upstream_hosts_down %lld\n"
             "# HELP arca_held_down_failures_total Downloads failed at once: their host held "
             "down.\n"
             "# TYPE arca_held_down_failures_total counter\n"
             "arca_held_down_failures_total %lld\n",
             (long long)atomic_load(&stats.signed_hits),
             (long long)(atomic_load(&stats.confirmations) - atomic_load(&stats.confirm_refused)),
             (long long)atomic_load(&stats.confirm_refused),
             (long long)atomic_load(&stats.confirm_changed),
             (long long)atomic_load(&stats.revalidated_unchanged),
             (long long)atomic_load(&stats.revalidated_changed),
             (long long)atomic_load(&stats.restart_resumes),
             (long long)atomic_load(&stats.mirror_downloads),
             (long long)atomic_load(&stats.digest_hits), (long long)atomic_load(&stats.stale_error),
             (long long)atomic_load(&stats.stale_slow),
             (long long)atomic_load(&stats.stale_revalidate),
             (long long)atomic_load(&stats.refreshes_failed_stale), (long long)hosts_down_count(),
             (long long)atomic_load(&stats.held_down_failures));
}

/* The bucket listings' families, appended. */
static void metrics_buckets(char *body, size_t size)
{
    size_t used = strlen(body);
    snprintf(body + used, size - used,
             "# HELP arca_bucket_listings_total Bucket folders answered under /browse/ (HTML "
             "pages and JSON documents).\n"
             "# TYPE arca_bucket_listings_total counter\n"
             "arca_bucket_listings_total %lld\n"
             "# HELP arca_bucket_list_pages_total Listing pages used, by where they came from.\n"
             "# TYPE arca_bucket_list_pages_total counter\n"
             "arca_bucket_list_pages_total{source=\"s3\"} %lld\n"
             "arca_bucket_list_pages_total{source=\"cache\"} %lld\n",
             (long long)atomic_load(&stats.bucket_listings),
             (long long)atomic_load(&stats.bucket_list_requests),
             (long long)atomic_load(&stats.bucket_list_cached));
}

/* The persistence queues' depths, appended: a disk that cannot keep up shows here first. */
static void metrics_persist(char *body, size_t size)
{
    size_t used = strlen(body);
    snprintf(body + used, size - used,
             "# HELP arca_persist_queue_jobs Jobs queued or running on the disk, by queue: ordered "
             "(files created, renamed, removed; index rows) and sync (fsync of downloaded data).\n"
             "# TYPE arca_persist_queue_jobs gauge\n"
             "arca_persist_queue_jobs{queue=\"ordered\"} %zu\n"
             "arca_persist_queue_jobs{queue=\"sync\"} %zu\n"
             "# HELP arca_purge_removals_queued Objects purged from the table whose file the disk "
             "has yet to remove.\n"
             "# TYPE arca_purge_removals_queued gauge\n"
             "arca_purge_removals_queued %zu\n"
             "# HELP arca_removals_paused_seconds_total Seconds the disk's removals of files "
             "(eviction, expiry, purge) paused, nobody waiting for them, so that hits beside "
             "them keep their pace.\n"
             "# TYPE arca_removals_paused_seconds_total counter\n"
             "arca_removals_paused_seconds_total %.3f\n",
             persist_depth(PERSIST_ORDERED), persist_depth(PERSIST_SYNC), store_purge_ahead(),
             (double)pace_paused_us() / 1e6);
}

/* The proxy's families, appended: absolute-form fetches and CONNECT tunnels. */
static void metrics_proxy(char *body, size_t size)
{
    size_t used = strlen(body);
    snprintf(body + used, size - used,
             "# HELP arca_proxy_requests_total Requests in proxy form (GET http://host/path) "
             "fetched as /api/v1/fetch/ would.\n"
             "# TYPE arca_proxy_requests_total counter\n"
             "arca_proxy_requests_total %lld\n"
             "# HELP arca_tunnels_total CONNECT requests, by outcome.\n"
             "# TYPE arca_tunnels_total counter\n"
             "arca_tunnels_total{result=\"opened\"} %lld\n"
             "arca_tunnels_total{result=\"refused\"} %lld\n"
             "# HELP arca_active_tunnels CONNECT tunnels open now.\n"
             "# TYPE arca_active_tunnels gauge\n"
             "arca_active_tunnels %lld\n"
             "# HELP arca_tunnel_bytes_total Bytes CONNECT tunnels carried, by direction.\n"
             "# TYPE arca_tunnel_bytes_total counter\n"
             "arca_tunnel_bytes_total{direction=\"up\"} %lld\n"
             "arca_tunnel_bytes_total{direction=\"down\"} %lld\n"
             "# HELP arca_offload_jobs Tunnels being connected and proxy targets being looked "
             "up now, off the workers (at most 64, 8 per client).\n"
             "# TYPE arca_offload_jobs gauge\n"
             "arca_offload_jobs %d\n",
             (long long)atomic_load(&stats.proxy_requests), (long long)atomic_load(&stats.tunnels),
             (long long)atomic_load(&stats.tunnels_refused),
             (long long)atomic_load(&stats.tunnels_active),
             (long long)atomic_load(&stats.tunnel_bytes_up),
             (long long)atomic_load(&stats.tunnel_bytes_down), offload_running());
}

/* The parallel fills' and the uplink cap's families, appended. */
static void metrics_fills(char *body, size_t size)
{
    size_t used = strlen(body);
    snprintf(body + used, size - used,
             "# HELP arca_fills_total Downloads split into ranges over several connections.\n"
             "# TYPE arca_fills_total counter\n"
             "arca_fills_total %lld\n"
             "# HELP arca_fill_ranges_total Requests for a parallel fill's ranges (retries "
             "included).\n"
             "# TYPE arca_fill_ranges_total counter\n"
             "arca_fill_ranges_total %lld\n"
             "# HELP arca_fill_stops_total Parallel fills stopped: upstream changed the object, or "
             "answered a range wrongly.\n"
             "# TYPE arca_fill_stops_total counter\n"
             "arca_fill_stops_total %lld\n"
             "# HELP arca_upstream_rate_limit_bytes The cap on bytes a second from upstream "
             "(--upstream-rate); 0: none.\n"
             "# TYPE arca_upstream_rate_limit_bytes gauge\n"
             "arca_upstream_rate_limit_bytes %lld\n",
             (long long)atomic_load(&stats.fills), (long long)atomic_load(&stats.fill_ranges),
             (long long)atomic_load(&stats.fill_stops), (long long)upstream_rate_cap());
}

/* The pinned objects' gauges (a rule's pin = yes) and whether the index still loads, appended. */
static void metrics_pinned(char *body, size_t size)
{
    struct store_totals t;
    size_t used = strlen(body);
    store_totals(&t);
    snprintf(body + used, size - used,
             "# HELP arca_pinned_objects Complete objects pinned by a rule (pin = yes): evicted "
             "for room only once no unpinned object is left.\n"
             "# TYPE arca_pinned_objects gauge\n"
             "arca_pinned_objects %lld\n"
             "# HELP arca_pinned_bytes The length of the pinned objects, in bytes.\n"
             "# TYPE arca_pinned_bytes gauge\n"
             "arca_pinned_bytes %lld\n"
             "# HELP arca_index_loading 1 while the index's rows go into memory after a start: "
             "object counts and disk usage grow until 0.\n"
             "# TYPE arca_index_loading gauge\n"
             "arca_index_loading %d\n",
             (long long)t.pinned_objects, (long long)t.pinned_bytes, store_loading() ? 1 : 0);
}

/* The TLS families, appended, only when --tls-listen is set: the certificate's expiry (for
 * alerts), the handshakes by kind, the failures by reason, the plain requests refused, kernel
 * TLS. */
static void metrics_tls(char *body, size_t size)
{
    struct tls_info t;
    int64_t n[TLS_N_EVENTS];
    size_t used = strlen(body);
    if (http_cfg->n_tls_listen == 0)
        return;
    tls_describe(&t);
    tls_counts(n);
    snprintf(body + used, size - used,
             "# HELP arca_tls_certificate_expiry_seconds Seconds until the HTTPS certificate "
             "(--tls-cert) expires; negative once it has.\n"
             "# TYPE arca_tls_certificate_expiry_seconds gauge\n"
             "arca_tls_certificate_expiry_seconds %lld\n"
             "# HELP arca_tls_certificate_not_after_timestamp_seconds When the HTTPS certificate "
             "expires, in Unix seconds.\n"
             "# TYPE arca_tls_certificate_not_after_timestamp_seconds gauge\n"
             "arca_tls_certificate_not_after_timestamp_seconds %lld\n"
             "# HELP arca_tls_handshakes_total TLS handshakes completed, by kind: full, or "
             "resumed (a session ticket).\n"
             "# TYPE arca_tls_handshakes_total counter\n"
             "arca_tls_handshakes_total{kind=\"full\"} %lld\n"
             "arca_tls_handshakes_total{kind=\"resumed\"} %lld\n"
             "# HELP arca_tls_handshake_failures_total TLS handshakes failed, by reason: no "
             "client certificate --tls-client-ca signed, or other (garbage, a protocol or cipher "
             "refused, a client that gave up).\n"
             "# TYPE arca_tls_handshake_failures_total counter\n"
             "arca_tls_handshake_failures_total{reason=\"client_certificate\"} %lld\n"
             "arca_tls_handshake_failures_total{reason=\"other\"} %lld\n"
             "# HELP arca_tls_plain_http_refused_total Plain HTTP requests sent to a TLS port, "
             "refused with 400.\n"
             "# TYPE arca_tls_plain_http_refused_total counter\n"
             "arca_tls_plain_http_refused_total %lld\n"
             "# HELP arca_tls_refused_after_reload_total Open TLS connections closed because "
             "the client CA a SIGHUP installed refuses their client.\n"
             "# TYPE arca_tls_refused_after_reload_total counter\n"
             "arca_tls_refused_after_reload_total %lld\n"
             "# HELP arca_tls_kernel_offered Whether kernel TLS is offered to new connections "
             "(1) or hits are encrypted by OpenSSL (0).\n"
             "# TYPE arca_tls_kernel_offered gauge\n"
             "arca_tls_kernel_offered %d\n"
             "# HELP arca_tls_kernel_connections_total TLS connections whose hits the kernel "
             "encrypts.\n"
             "# TYPE arca_tls_kernel_connections_total counter\n"
             "arca_tls_kernel_connections_total %lld\n",
             (long long)(t.not_after - (int64_t)time(NULL)), (long long)t.not_after,
             (long long)(n[TLS_HANDSHAKE] - n[TLS_RESUMED]), (long long)n[TLS_RESUMED],
             (long long)n[TLS_NO_CLIENT_CERT], (long long)(n[TLS_FAILED] - n[TLS_NO_CLIENT_CERT]),
             (long long)n[TLS_PLAIN_HTTP], (long long)n[TLS_REFUSED_LATER], t.ktls ? 1 : 0,
             (long long)n[TLS_KTLS]);
}

/* A parent's label: its URL when `named`, else its place in the list ("1", "2"...). */
static void parent_label(struct buf *b, const struct parent_report *r, int i, bool named)
{
    if (named)
        buf_label(b, r[i].url);
    else
        buf_addf(b, "\"%d\"", i + 1);
}

/* One sample per parent of a family (after its HELP and TYPE): `what` picks the value. */
static void parent_samples(struct buf *b, const char *family, const struct parent_report *r, int n,
                           bool named, int64_t (*what)(const struct parent_report *))
{
    for (int i = 0; i < n; i++) {
        buf_addf(b, "%s{parent=", family);
        parent_label(b, r, i, named);
        buf_addf(b, "} %lld\n", (long long)what(&r[i]));
    }
}

static int64_t parent_requests(const struct parent_report *r)
{
    return r->requests;
}

static int64_t parent_bytes(const struct parent_report *r)
{
    return r->bytes;
}

static int64_t parent_hits(const struct parent_report *r)
{
    return r->hits;
}

static int64_t parent_up(const struct parent_report *r)
{
    return !r->down;
}

/* The parents' families, appended, once some parent is known: what each gave, whether it is
 * up, and the downloads that went to the origin instead, by reason. A family's samples stay
 * together, as the text format wants. */
static void metrics_parent(struct buf *b, bool named)
{
    struct parent_report r[PARENT_MAX];
    int n = parent_report(r, PARENT_MAX);
    if (n == 0)
        return;
    buf_add(b, "# HELP arca_parent_requests_total Downloads a parent arca served whole (their "
               "sha256 its Repr-Digest).\n# TYPE arca_parent_requests_total counter\n");
    parent_samples(b, "arca_parent_requests_total", r, n, named, parent_requests);
    buf_add(b, "# HELP arca_parent_bytes_total Bytes taken from a parent arca, in downloads it "
               "served whole.\n# TYPE arca_parent_bytes_total counter\n");
    parent_samples(b, "arca_parent_bytes_total", r, n, named, parent_bytes);
    buf_add(b, "# HELP arca_parent_hits_total Downloads a parent arca served from its own disk "
               "(its Cache-Status said hit).\n# TYPE arca_parent_hits_total counter\n");
    parent_samples(b, "arca_parent_hits_total", r, n, named, parent_hits);
    buf_add(b, "# HELP arca_parent_up Whether a parent arca is asked (1) or passed over, held "
               "down after its faults (0).\n# TYPE arca_parent_up gauge\n");
    parent_samples(b, "arca_parent_up", r, n, named, parent_up);
    buf_add(b, "# HELP arca_parent_fallbacks_total Downloads that went to the origin instead of "
               "(or after) a parent arca, by reason.\n"
               "# TYPE arca_parent_fallbacks_total counter\n");
    for (int i = 0; i < n; i++)
        for (int f = 0; f < PARENT_FAULTS; f++) {
            buf_add(b, "arca_parent_fallbacks_total{parent=");
            parent_label(b, r, i, named);
            buf_addf(b, ",reason=\"%s\"} %lld\n", parent_fault_name((enum parent_fault)f),
                     (long long)r[i].fallbacks[f]);
        }
}

/* arca_build_info: its version; the libraries' too to a client that may see what arca caches
 * (a stranger learns no version of OpenSSL or curl to match against their advisories). */
static void build_info(struct buf *b, bool named)
{
    buf_addf(b,
             "# HELP arca_build_info The running build: its version and libraries (always 1).\n"
             "# TYPE arca_build_info gauge\n"
             "arca_build_info{version=\"%s\"",
             ARCA_VERSION);
    if (named)
        buf_addf(b, ",curl=\"%s\",openssl=\"%s\",sqlite=\"%s\"",
                 curl_version_info(CURLVERSION_NOW)->version,
                 OpenSSL_version(OPENSSL_VERSION_STRING), sqlite3_libversion());
    buf_add(b, "} 1\n");
}

enum conn_result http_metrics(struct conn *c, struct request *req, const char *rest)
{
    char body[16384];
    struct buf out = {0};
    size_t len;
    char *text;
    (void)rest;
    assert(http_handling(c, req));
    engine_settle(); /* a request its client saw end is counted (engine.h) */
    metrics_core(body, sizeof(body));
    metrics_keys(body, sizeof(body));
    metrics_buckets(body, sizeof(body));
    metrics_persist(body, sizeof(body));
    metrics_proxy(body, sizeof(body));
    metrics_fills(body, sizeof(body));
    metrics_pinned(body, sizeof(body));
    metrics_tls(body, sizeof(body));
    buf_add(&out, body);
    metrics_workers(&out);
    metrics_parent(&out, http_sees_urls(c)); /* up to PARENT_MAX parents: a buffer that grows */
    http_registries_metrics(&out, http_sees_urls(c));
    http_remotes_metrics(&out, http_sees_urls(c));
    latency_metrics(&out);
    if (http_sees_urls(c)) /* rule names say what the lab caches: a stranger counts none */
        rule_stats_metrics(&out);
    build_info(&out, http_sees_urls(c));
    text = buf_take(&out, &len);
    return http_send_private(c, HTTP_OK, "text/plain; version=0.0.4", text, len);
}
