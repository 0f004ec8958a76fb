/* The web pages: home, help, resources by state, statistics; and their static assets. Pages are
 * whole HTML documents built on the server, readable without JavaScript; web/arca.js only adds
 * the copy button and live progress. Everything from outside goes through buf_html/buf_query. */
#include "web/assets.h"
#include "web/charts.h"
#include "web/latency_card.h"
#include "http/http_internal.h"
#include "web/pages.h"
#include "web/parents.h"
#include "registry/registries.h"
#include "remote/remotes.h"
#include "rules/policy.h"
#include "http/resources.h"
#include "stats/stats.h"
#include "store/store.h"
#include "base/clock.h"
#include "upstream/hosts.h"
#include "tls/tls.h"
#include "base/parse.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHART_HOURS 48

/* No inline script or style anywhere: the policy forbids both, so an injected tag is inert. */
#define PAGE_CSP                                                                                   \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "              \
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

static const char *const nav[][2] = {
    {"/", "Home"},           {"/resources/", "Resources"}, {"/statistics/", "Statistics"},
    {"/browse/", "Buckets"}, /* only when a bucket is configured */
    {"/help/", "Help"},
};

void web_page_begin(struct buf *b, const char *title, const char *active)
{
    buf_add(b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
               "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
               "<title>");
    buf_html(b, title);
    buf_add(b, " · arca</title><link rel=\"icon\" href=\"/static/favicon.svg\">"
               "<link rel=\"stylesheet\" href=\"/static/arca.css\">"
               "<script src=\"/static/arca.js\" defer></script></head><body><header>"
               "<div class=\"inner\"><a class=\"brand\" href=\"/\">arca</a><nav>");
    for (size_t i = 0; i < sizeof(nav) / sizeof(nav[0]); i++)
        if (strcmp(nav[i][0], "/browse/") || http_cfg->n_buckets > 0)
            buf_addf(b, "<a href=\"%s\"%s>%s</a>", nav[i][0],
                     !strcmp(nav[i][0], active) ? " class=\"active\"" : "", nav[i][1]);
    buf_add(b, "</nav></div></header><main>");
}

struct answer *web_page_response(struct buf *b)
{
    struct answer *r;
    size_t len;
    char *body;
    buf_addf(b,
             "</main><footer><div>arca %s · an artifact cache for CI and test labs</div>"
             "</footer></body></html>\n",
             ARCA_VERSION);
    body = buf_take(b, &len);
    if (!body)
        return NULL;
    r = http_owned_response("text/html; charset=utf-8", body, len);
    if (r) {
        answer_header(r, "Content-Security-Policy", PAGE_CSP);
        answer_header(r, "X-Content-Type-Options", "nosniff");
    }
    return r;
}

static enum conn_result page_end(struct conn *c, struct buf *b, unsigned int status)
{
    struct answer *r = web_page_response(b);
    if (!r)
        return http_send_error(c, HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    answer_header(r, "Cache-Control", "no-store");
    return http_queue(c, status, r);
}

/* HOST:PORT of a listener, an IPv6 address in brackets (escaped: a name from the config). */
static void listener(struct buf *b, const char *host, int port)
{
    bool v6 = strchr(host, ':') != NULL;
    buf_add(b, v6 ? "[" : "");
    buf_html(b, host);
    buf_addf(b, "%s:%d", v6 ? "]" : "", port);
}

/* "http://HOST", or "https://HOST" on a TLS connection, HOST as the client named us (escaped
 * where it is shown). */
static void own_origin(struct conn *c, struct buf *b)
{
    const char *host = conn_header(c, "Host");
    bool tls = conn_tls(c) && http_cfg->n_tls_listen > 0;
    buf_add(b, tls ? "https://" : "http://");
    if (host && *host)
        buf_html(b, host);
    else if (tls)
        listener(b, http_cfg->tls_listen[0].host, http_cfg->tls_listen[0].port);
    else
        listener(b, http_cfg->listen_host, http_cfg->listen_port);
}

/* "https://HOST:PORT" of --tls-listen address `i`: its address, or for a wildcard one the host
 * the client named us by (its Host without the port), escaped. */
static void tls_origin(struct conn *c, struct buf *b, int i)
{
    const struct listen_addr *a = &http_cfg->tls_listen[i];
    const char *host = conn_header(c, "Host");
    size_t len = host ? strlen(host) : 0;
    buf_add(b, "https://");
    if (!host_is_wildcard(a->host) || len == 0 || len > 255) {
        listener(b, host_is_wildcard(a->host) ? "localhost" : a->host, a->port);
        return;
    }
    /* "[v6]:port", "name:port", "name": the part before the port */
    const char *end = host[0] == '[' ? strchr(host, ']') : strrchr(host, ':');
    char name[256];
    if (end && host[0] == '[')
        end++;
    len = end ? (size_t)(end - host) : len;
    snprintf(name, sizeof(name), "%.*s", (int)len, host);
    buf_html(b, name);
    buf_addf(b, ":%d", a->port);
}

static void format_time(int64_t t, char *out, size_t size)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (t <= 0) {
        snprintf(out, size, "—");
        return;
    }
    gmtime_r(&tt, &tm);
    strftime(out, size, "%Y-%m-%d %H:%M UTC", &tm);
}

/* `t` as format_time_left says it (the log and `arca status` say it alike). */
static void expiry(struct buf *b, int64_t t)
{
    char text[FORMAT_TIME_LEFT_MAX];
    format_time_left(t, (int64_t)time(NULL), text, sizeof(text));
    buf_add(b, text);
}

/* The certificate --tls-listen addresses show: its subject, issuer and expiry, the client CA. */
static void certificate_lines(struct buf *b, const struct tls_info *t)
{
    buf_add(b, "<p>Certificate <code id=\"tls-subject\">");
    buf_html(b, t->subject);
    buf_add(b, "</code>, issued by <code id=\"tls-issuer\">");
    buf_html(b, t->issuer);
    buf_add(b, "</code>, valid until <span id=\"tls-expiry\">");
    expiry(b, t->not_after);
    buf_add(b, "</span>.</p>");
    if (t->client_ca[0]) {
        buf_add(b, "<p>Clients must show a certificate signed by <code id=\"tls-client-ca\">");
        buf_html(b, t->client_ca);
        buf_add(b, "</code> (<code>--tls-client-ca</code>); others are refused at the "
                   "handshake.</p>");
    }
}

/* Under three weeks left, or past: the card says so (as the log does, and OPERATIONS.md's
 * alert). */
static bool expires_soon(const struct tls_info *t)
{
    return t->not_after - (int64_t)time(NULL) < TLS_EXPIRY_WARN_S;
}

/* "http://HOST/api/v1/fetch/?url=". */
static void fetch_prefix(struct conn *c, struct buf *b)
{
    own_origin(c, b);
    buf_add(b, "/api/v1/fetch/?url=");
}

/* The two ways to ask, on the home and help pages: the prefix, and arca as an HTTP proxy. */
static void two_ways(struct conn *c, struct buf *b)
{
    buf_add(b, "<h2>Or as an HTTP proxy</h2><p>Clients that honour <code>http_proxy</code> "
               "(curl, wget, apt, pip, python requests, LAVA's <code>env.yaml</code>) can "
               "name arca as their proxy and keep their URLs as they are:</p><pre>"
               "export http_proxy=");
    own_origin(c, b);
    buf_add(b, "</pre><p class=\"muted\">An http:// URL asked through the proxy is the same "
               "object as through the prefix: fetched once, shared both ways. "
               "<code>https_proxy</code> tunnels (CONNECT) are passed through, not cached: their "
               "bytes are TLS. To cache an https:// file, ask for it through the prefix.</p>");
}

/* Where arca's parameters end and the target URL begins (url.h): on the home and help pages. */
static void url_rule(struct buf *b)
{
    buf_add(b, "<h2>The URL after <code>url=</code></h2><ul>"
               "<li>Unencoded, as it is: everything after <code>url=</code> is the URL, "
               "<code>+</code>, <code>&amp;</code> and <code>%XX</code> included, except "
               "trailing <code>&amp;ttl=</code> and <code>&amp;sha256=</code>, which are "
               "arca's. Put arca's parameters first to be sure: "
               "<code>?ttl=1d&amp;url=https://host/a?x=1&amp;y=2</code>.</li>"
               "<li>Percent-encoded (KissCache, <code>quote_plus</code>): the URL ends at the "
               "next <code>&amp;</code>; <code>+</code> is a space.</li>"
               "<li>Any other parameter is refused (400), so a half-encoded URL is never "
               "fetched as another one. Control characters (<code>%00</code>, newlines) are "
               "refused; spaces and other characters a URL may not hold are percent-encoded. "
               "<code>HTTP://Host:80/a</code> and <code>http://host/a</code> are one object.</li>"
               "</ul>");
}

/* With --tls-listen: the prefix over HTTPS, next to the plain one (home and help pages). */
static void https_example(struct conn *c, struct buf *b)
{
    if (http_cfg->n_tls_listen == 0)
        return;
    buf_add(b,
            "<p>Over HTTPS (the client verifies arca's certificate):</p><pre id=\"https-example\">"
            "curl -O -J '");
    tls_origin(c, b, 0);
    buf_add(b, "/api/v1/fetch/?url=https://example.com/Image'</pre>");
}

/* The help page's HTTPS card: the addresses, the prefix and proxy over TLS, the certificate. */
static void https_card(struct conn *c, struct buf *b)
{
    struct tls_info t;
    if (http_cfg->n_tls_listen == 0)
        return;
    tls_describe(&t);
    buf_addf(b, "<div class=\"card%s\" id=\"https\"><h2>HTTPS</h2><p>arca speaks HTTPS at ",
             t.enabled && expires_soon(&t) ? " warning" : "");
    for (int i = 0; i < http_cfg->n_tls_listen; i++) {
        buf_add(b, i ? ", <code>" : "<code>");
        tls_origin(c, b, i);
        buf_add(b, "/</code>");
    }
    buf_add(b, ", with the same pages, API, cache and proxy as plain HTTP. The prefix over "
               "TLS:</p><pre id=\"https-prefix\">");
    tls_origin(c, b, 0);
    buf_add(b, "/api/v1/fetch/?url=</pre>");
    https_example(c, b);
    buf_add(b, "<p>As a proxy, for clients that reach a proxy over TLS (curl):</p><pre>"
               "export http_proxy=");
    tls_origin(c, b, 0);
    buf_add(b, "</pre>");
    if (t.enabled)
        certificate_lines(b, &t);
    buf_add(b, "</div>");
}

static enum conn_result home_page(struct conn *c)
{
    struct buf b = {0};
    web_page_begin(&b, "Home", "/");
    buf_add(&b, "<h1>arca</h1><div class=\"card\"><p>arca is an artifact cache for CI and test "
                "labs. Ask it for a URL: it downloads the file <b>once</b>, streams it to every "
                "client asking meanwhile, keeps it on disk for its TTL and serves later requests "
                "from disk. Upstream TLS is verified by arca itself.</p>"
                "<p>Put this prefix in front of any http:// or https:// URL:</p>"
                "<div class=\"prefix\"><code id=\"prefix\">");
    fetch_prefix(c, &b);
    buf_add(&b, "</code><button class=\"js-only\" data-copy=\"prefix\">Copy</button></div>"
                "<h2>Example</h2><pre>curl -O -J '");
    fetch_prefix(c, &b);
    buf_add(&b, "https://example.com/Image'</pre>");
    if (!conn_tls(c)) /* the example above is over HTTPS already */
        https_example(c, &b);
    buf_add(&b, "<p class=\"muted\">Add <code>&amp;ttl=2h</code> "
                "to keep an object for less time than the default, <code>&amp;sha256=HEX</code> "
                "to have your copy's digest checked, or name the file: "
                "<code>/api/v1/fetch/Image?url=...</code>.</p>");
    two_ways(c, &b);
    url_rule(&b);
    buf_add(&b, "</div>");
    return page_end(c, &b, HTTP_OK);
}

static void net_list(struct buf *b, const struct cidr *nets, int n, const char *none)
{
    if (n == 0) {
        buf_addf(b, "<p class=\"muted\">%s</p>", none);
        return;
    }
    buf_add(b, "<ul>");
    for (int i = 0; i < n; i++) {
        char text[64];
        format_cidr(&nets[i], text, sizeof(text));
        buf_addf(b, "<li><code>%s</code></li>", text);
    }
    buf_add(b, "</ul>");
}

static enum conn_result help_page(struct conn *c)
{
    struct sockaddr_storage addr;
    const struct sockaddr *client = http_client(c, &addr);
    bool allowed = client && policy_client_allowed(client);
    struct cidr nets[CONFIG_MAX_NETS];
    bool by_default;
    int n = policy_clients(nets, &by_default);
    struct buf b = {0};
    char ip[64];

    format_sockaddr(client, ip, sizeof(ip));
    web_page_begin(&b, "Help", "/help/");
    buf_addf(&b,
             "<h1>Help</h1><div class=\"card\"><h2>You</h2><p>Your address: <code id=\"ip\">%s"
             "</code>. You <span id=\"allowed\" class=\"%s\">%s</span> fetch through this "
             "cache%s.</p><h2>Networks allowed to fetch</h2>",
             ip, allowed ? "yes" : "no", allowed ? "may" : "may not",
             client ? ""
                    : ": the load balancer in front of arca (--trusted-proxy) named no "
                      "readable address in X-Forwarded-For");
    if (policy_clients_all(nets, n))
        buf_add(&b, "<p id=\"who\">Every client may fetch (<code>--allow-network all</code>).</p>");
    else if (by_default)
        buf_add(&b, "<p id=\"who\">The default (no <code>--allow-network</code> given): loopback "
                    "and the private networks. Other addresses get <code>403</code> until "
                    "<code>--allow-network</code> names them (or <code>all</code>).</p>");
    net_list(&b, nets, n, "");
    buf_add(&b, "</div><div class=\"card\"><h2>Upstream policy</h2><p>arca refuses to fetch "
                "from these networks (server-side request forgery), checked on the address it "
                "actually connects to, for every connection and redirect:</p><ul>");
    for (int i = 0; policy_refused_default(i); i++)
        buf_addf(&b, "<li><code>%s</code></li>", policy_refused_default(i));
    buf_add(&b, "</ul><p>and every address of this host, on every port (on arca's own port, "
                "even when allowed). Allowed despite that (<code>--upstream-allow</code>):</p>");
    net_list(&b, http_cfg->upstream_allow, http_cfg->n_upstream_allow, "none.");
    buf_add(&b, "<p>CONNECT tunnels may reach port");
    if (http_cfg->n_connect_ports < 0)
        buf_add(&b, "s: none (<code>--connect-port none</code>)");
    else if (http_cfg->n_connect_ports == 0)
        buf_add(&b, " 443");
    for (int i = 0; i < http_cfg->n_connect_ports; i++)
        buf_addf(&b, "%s %d", i ? "," : (http_cfg->n_connect_ports > 1 ? "s" : ""),
                 http_cfg->connect_ports[i]);
    buf_add(&b, ", at addresses the policy above allows.</p>");
    buf_add(&b, "</div><div class=\"card\"><h2>API</h2><ul>"
                "<li><code>GET /api/v1/fetch/?url=URL[&amp;ttl=TTL][&amp;sha256=HEX]</code></li>"
                "<li><code>GET /api/v1/status/</code>, <code>/api/v1/health/</code>, "
                "<code>/metrics</code></li>"
                "<li><code>GET /api/v1/resources/?state=&amp;page=&amp;order=</code></li>"
                "<li><code>POST /api/v1/prefetch/</code>, <code>DELETE "
                "/api/v1/resources/?url=</code> (admin token)</li>"
                "<li><code>GET /browse/NAME/[FOLDER/][?page=N|?export=json]</code>, "
                "<code>GET /browse/NAME/KEY</code> (S3 buckets, when configured)</li>"
                "<li><code>GET http://host/path</code> as a proxy is asked (proxy form), and "
                "<code>CONNECT host:port</code> to the ports of <code>--connect-port</code></li>"
                "</ul>");
    two_ways(c, &b);
    url_rule(&b);
    buf_add(&b, "</div>");
    https_card(c, &b);
    web_parents_help(&b, http_sees_urls(c));
    return page_end(c, &b, HTTP_OK);
}

/* A link to `state`'s page `page` in `order`: the same path the pages live at. */
static void listing_link(struct buf *b, enum list_state state, int64_t page, const char *order)
{
    buf_addf(b, "/resources/%s/", resource_state_names[state]);
    if (page > 1)
        buf_addf(b, "%lld/", (long long)page);
    buf_add(b, "?order=");
    buf_query(b, order);
}

static void state_tabs(struct buf *b, const struct resources_query *q, const struct listing *l)
{
    buf_add(b, "<div class=\"tabs\">");
    for (int s = 0; s < LIST_STATES; s++) {
        buf_addf(b, "<a href=\"/resources/%s/\"%s>%s<span class=\"count\">%lld</span></a>",
                 resource_state_names[s], s == (int)q->state ? " class=\"active\"" : "",
                 resource_state_names[s], (long long)l->counts[s]);
    }
    buf_add(b, "</div>");
}

/* A sortable column header: clicking the sorted column reverses it. */
static void sort_header(struct buf *b, const struct resources_query *q, enum list_order order,
                        const char *label)
{
    char next[40];
    bool sorted = q->order == order;
    snprintf(next, sizeof(next), "%s%s", sorted && !q->desc ? "-" : "", resource_order_name(order));
    buf_add(b, "<th><a href=\"");
    listing_link(b, q->state, 1, next);
    buf_addf(b, "\"%s>%s</a></th>",
             sorted ? (q->desc ? " class=\"sorted\"" : " class=\"sorted asc\"") : "", label);
}

static void size_cell(struct buf *b, const struct resource *r, enum list_state state)
{
    char got[32], total[32];
    format_bytes((double)r->have, got, sizeof(got));
    format_bytes((double)r->length, total, sizeof(total));
    if (state != LIST_DOWNLOADING) {
        buf_addf(b, "<td class=\"num\">%s</td>", r->length >= 0 ? total : got);
        return;
    }
    buf_add(b, "<td class=\"num\">");
    if (r->length > 0)
        buf_addf(b, "<progress value=\"%lld\" max=\"%lld\"></progress>", (long long)r->have,
                 (long long)r->length);
    else
        buf_add(b, "<progress></progress>");
    buf_addf(b, " <span class=\"got\">%s%s%s</span><span class=\"rate\">", got,
             r->length >= 0 ? " of " : "", r->length >= 0 ? total : "");
    /* arca's own figure (bytes a second from upstream, all its connections): JavaScript moves
     * it on, and a page read without it still says how fast the download goes */
    if (r->connections > 0) {
        char rate[32];
        format_bytes((double)r->rate, rate, sizeof(rate));
        buf_addf(b, "%s/s", rate);
        if (r->connections > 1)
            buf_addf(b, " over %d connections", r->connections);
    }
    buf_add(b, "</span></td>");
}

/* An expired copy kept on disk: until when it answers while upstream fails (stale_until). */
static void expired_note(struct buf *b, const struct resource *r)
{
    char until[40];
    if (r->stale_until > (int64_t)time(NULL)) {
        format_time(r->stale_until, until, sizeof(until));
        buf_addf(b, "<div class=\"muted stale\">expired; answers stale until %s</div>", until);
    } else {
        buf_add(b, "<div class=\"muted stale\">expired; kept to be revalidated</div>");
    }
}

static void resource_row(struct buf *b, const struct resource *r, enum list_state state)
{
    char used[40], created[40];
    format_time(r->last_use, used, sizeof(used));
    format_time(r->created, created, sizeof(created));
    buf_addf(b, "<tr data-key=\"%s\"><td class=\"url\">", r->key);
    buf_html(b, r->url);
    if (state == LIST_FAILURES) {
        buf_addf(b, "<div class=\"error\">%d: ", r->status);
        buf_html(b, r->error);
        buf_add(b, "</div>");
    }
    if (state == LIST_SUCCESSES && r->expired)
        expired_note(b, r);
    if (state == LIST_SCHEDULED && r->waiting_for) /* the option's name: no escaping needed */
        buf_addf(b, "<div class=\"muted waiting\">waits for a slot (--%s)</div>", r->waiting_for);
    buf_add(b, "</td>");
    size_cell(b, r, state);
    buf_addf(b,
             "<td class=\"num\">%lld</td><td class=\"num\">%s</td><td class=\"num\">%s</td>"
             "</tr>",
             (long long)r->usage, used, created);
}

static void pager(struct buf *b, const struct resources_query *q, const struct listing *l)
{
    int64_t pages = resources_pages(l->total);
    buf_add(b, "<div class=\"pager\">");
    if (q->page > 1) {
        buf_add(b, "<a rel=\"prev\" href=\"");
        listing_link(b, q->state, q->page - 1, q->order_text);
        buf_add(b, "\">← previous</a>");
    }
    buf_addf(b, "<span class=\"muted\">page %lld of %lld</span>", (long long)q->page,
             (long long)pages);
    if (q->page < pages) {
        buf_add(b, "<a rel=\"next\" href=\"");
        listing_link(b, q->state, q->page + 1, q->order_text);
        buf_add(b, "\">next →</a>");
    }
    buf_add(b, "</div>");
}

static void resources_table(struct buf *b, const struct resources_query *q, const struct listing *l)
{
    buf_add(b, "<table");
    if (q->state == LIST_DOWNLOADING) { /* arca.js polls this page's JSON twin */
        buf_addf(b, " data-live=\"/api/v1/resources/?state=downloading&amp;page=%lld&amp;order=",
                 (long long)q->page);
        buf_query(b, q->order_text);
        buf_add(b, "\"");
    }
    buf_add(b, "><thead><tr>");
    sort_header(b, q, ORDER_URL, "URL");
    sort_header(b, q, ORDER_SIZE, q->state == LIST_DOWNLOADING ? "Progress" : "Size");
    sort_header(b, q, ORDER_USAGE, "Usage");
    sort_header(b, q, ORDER_LAST_USE, q->state == LIST_FAILURES ? "Failed" : "Last use");
    sort_header(b, q, ORDER_CREATED, "Created");
    buf_add(b, "</tr></thead><tbody>");
    for (int i = 0; i < l->n; i++)
        resource_row(b, &l->rows[i], q->state);
    if (l->n == 0)
        buf_add(b, "<tr><td colspan=\"5\" class=\"muted\">Nothing here.</td></tr>");
    buf_add(b, "</tbody></table>");
}

/* /resources/[STATE/[PAGE/]] with ?order= (and ?page=, as the JSON API takes it). */
static enum conn_result resources_page(struct conn *c, const char *rest)
{
    char state[32] = "successes", page[24] = "";
    const char *why, *qpage = conn_query(c, "page");
    struct resources_query q;
    struct listing l;
    struct sockaddr_storage addr;
    unsigned int status;
    struct buf b = {0};

    if (*rest && parse_listing_path(rest, state, sizeof(state), page, sizeof(page)) < 0)
        return http_send_error(c, HTTP_NOT_FOUND, "no such page");
    if (resources_parse(state, conn_query(c, "order"), page[0] ? page : qpage, &q, &why) < 0)
        return http_send_error(c, HTTP_BAD_REQUEST, "%s", why);
    if (resources_fetch(&q, http_client(c, &addr), &l, &status, &why) < 0)
        return http_send_error(c, status, "%s", why);
    web_page_begin(&b, "Resources", "/resources/");
    buf_add(&b, "<h1>Resources</h1>");
    state_tabs(&b, &q, &l);
    if (q.state == LIST_FAILURES)
        buf_addf(&b,
                 "<p class=\"muted\">The last %d downloads that failed; a failed download's "
                 "bytes are never kept, and its next request tries again.</p>",
                 STORE_FAILURES_KEPT);
    resources_table(&b, &q, &l);
    pager(&b, &q, &l);
    listing_free(&l);
    return page_end(c, &b, HTTP_OK);
}

static void summary_card(struct buf *b, const char *id, const char *value, const char *label)
{
    buf_addf(b,
             "<div class=\"card\" id=\"%s\"><div class=\"value\">%s</div>"
             "<div class=\"label\">%s</div></div>",
             id, value, label);
}

/* The share of the requests arca tried (the refused and held down left out) answered from disk
 * (stats_disk_answers), with both counts, so that it adds up with the cards beside it. */
static void hit_ratio_card(struct buf *b, int64_t requests)
{
    int64_t tried = stats_ratio_requests(), disk = stats_disk_answers();
    char value[32], label[96];
    if (tried > 0) {
        snprintf(value, sizeof(value), "%.1f %%",
                 100.0 * (double)disk / (double)(tried > disk ? tried : disk));
        snprintf(label, sizeof(label), "answered from disk (%lld of %lld tried)", (long long)disk,
                 (long long)tried);
    } else {
        snprintf(value, sizeof(value), "%s", requests ? "none tried" : "no requests");
        snprintf(label, sizeof(label), "%s",
                 requests ? "answered from disk: every request refused" : "answered from disk");
    }
    summary_card(b, "hit-ratio", value, label);
}

static void summary(struct buf *b, const struct store_totals *t)
{
    int64_t requests = atomic_load(&stats.requests);
    int64_t served = atomic_load(&stats.bytes_served), down = atomic_load(&stats.bytes_downloaded);
    char text[64];

    buf_add(b, "<div class=\"cards\">");
    snprintf(text, sizeof(text), "%lld", (long long)requests);
    summary_card(b, "requests", text, requests == 1 ? "fetch request" : "fetch requests");
    hit_ratio_card(b, requests);
    snprintf(text, sizeof(text), "%lld", (long long)atomic_load(&stats.refused));
    summary_card(b, "refused", text,
                 "refused (403): client not allowed to fetch (--allow-network, a rule's)");
    snprintf(text, sizeof(text), "%lld", (long long)atomic_load(&stats.held_down));
    summary_card(b, "held-down", text,
                 "held down (503/429): upstream not asked (host down, or a registry's hold)");
    format_bytes((double)served, text, sizeof(text));
    summary_card(b, "served", text, "served to clients");
    format_bytes((double)down, text, sizeof(text));
    summary_card(b, "downloaded", text, "downloaded from upstream");
    format_bytes((double)(served > down ? served - down : 0), text, sizeof(text));
    summary_card(b, "saved", text, "upstream traffic saved");
    snprintf(text, sizeof(text), "%lld", (long long)t->complete);
    summary_card(b, "objects", text, t->complete == 1 ? "object on disk" : "objects on disk");
    format_bytes((double)t->pinned_bytes, text, sizeof(text));
    char label[64];
    snprintf(label, sizeof(label), "pinned: %lld object%s, evicted last",
             (long long)t->pinned_objects, t->pinned_objects == 1 ? "" : "s");
    summary_card(b, "pinned", text, label);
    buf_add(b, "</div>");
}

static void hourly_charts(struct buf *b)
{
    struct stats_hour h[CHART_HOURS];
    double served[CHART_HOURS], down[CHART_HOURS], ratio[CHART_HOURS];
    char names[CHART_HOURS][24];
    const char *labels[CHART_HOURS];

    stats_hours(h, CHART_HOURS);
    for (int i = 0; i < CHART_HOURS; i++) {
        time_t t = (time_t)(h[i].hour * 3600);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(names[i], sizeof(names[i]), "%d %b %H:00", &tm);
        labels[i] = names[i];
        served[i] = (double)h[i].served;
        down[i] = (double)h[i].downloaded;
        /* an hour without requests has no ratio: NAN, drawn as "no requests" (charts.h) */
        ratio[i] = h[i].requests ? 100.0 * (double)h[i].hits / (double)h[i].requests : NAN;
    }
    chart_bars(b, "traffic", "Bytes served and downloaded per hour (UTC), last 48 hours",
               CHART_HOURS, labels, 8,
               (struct chart_series[]){{"served to clients", "served", served, NULL},
                                       {"downloaded from upstream", "downloaded", down, NULL}},
               2, UNIT_BYTES);
    chart_bars(b, "hits", "Hit ratio per hour (tried requests answered from disk)", CHART_HOURS,
               labels, 8, (struct chart_series[]){{"hit ratio", "hits", ratio, "no requests"}}, 1,
               UNIT_PERCENT);
}

/* The upstream hosts held down (upstream/hosts.h), as a warning: which ones only to a client
 * that may see what arca caches. */
static void hosts_down_card(struct conn *c, struct buf *b)
{
    size_t n;
    struct host_down *down = hosts_down_list(&n, monotonic_ms());
    char since[32];
    if (n > 0) {
        buf_addf(b,
                 "<div class=\"card warning\" id=\"hosts-down\"><h2>%zu upstream host%s "
                 "down</h2><p>Expired objects from %s are answered from disk; downloads from %s "
                 "fail at once until %s again.</p>",
                 n, n == 1 ? "" : "s", n == 1 ? "it" : "them", n == 1 ? "it" : "them",
                 n == 1 ? "it answers" : "they answer");
        if (http_sees_urls(c)) {
            buf_add(b, "<table><tr><th>Host</th><th>Down since</th><th>Failures in a row</th>"
                       "<th>Next try</th></tr>");
            for (size_t i = 0; i < n; i++) {
                format_time(down[i].since, since, sizeof(since));
                buf_add(b, "<tr><td>");
                buf_html(b, down[i].origin);
                if (down[i].from[0]) { /* a route leaving from a rule's own address */
                    buf_add(b, " (leaving from ");
                    buf_html(b, down[i].from);
                    buf_add(b, ")");
                }
                buf_addf(b, "</td><td>%s</td><td>%d</td><td>%lld s</td></tr>", since,
                         down[i].failures, (long long)(down[i].probe_in_ms / 1000));
            }
            buf_add(b, "</table>");
        }
        buf_add(b, "</div>");
    }
    free(down);
}

/* The statistics page's HTTPS card: the certificate and what the TLS connections did. */
static void tls_card(struct buf *b)
{
    struct tls_info t;
    int64_t n[TLS_N_EVENTS];
    if (http_cfg->n_tls_listen == 0)
        return;
    tls_describe(&t);
    tls_counts(n);
    buf_addf(b, "<div class=\"card%s\" id=\"tls\"><h2>HTTPS</h2>",
             t.enabled && expires_soon(&t) ? " warning" : "");
    if (t.enabled)
        certificate_lines(b, &t);
    buf_addf(b,
             "<p id=\"tls-counts\">%lld handshake%s (%lld resumed), %lld failed (%lld without a "
             "client certificate the CA signed); %lld plain HTTP request%s refused.</p>",
             (long long)n[TLS_HANDSHAKE], n[TLS_HANDSHAKE] == 1 ? "" : "s",
             (long long)n[TLS_RESUMED], (long long)n[TLS_FAILED], (long long)n[TLS_NO_CLIENT_CERT],
             (long long)n[TLS_PLAIN_HTTP], n[TLS_PLAIN_HTTP] == 1 ? "" : "s");
    if (t.ktls) {
        buf_addf(b, "<p>Kernel TLS: offered (%lld connection%s).</p>", (long long)n[TLS_KTLS],
                 n[TLS_KTLS] == 1 ? "" : "s");
    } else {
        buf_add(b, "<p class=\"muted\">Kernel TLS: not offered, hits are encrypted by OpenSSL (");
        buf_html(b, t.ktls_why);
        buf_add(b, ").</p>");
    }
    buf_add(b, "</div>");
}

/* The statistics page's registries card, once a registry is configured or pulled from: what each
 * mirror served. Its name when `named` (names are the operator's, escaped all the same), else
 * "registry i", its place: a stranger reads counters only, as in the status and the metrics. */
static void registries_card(struct buf *b, bool named)
{
    char bytes[32];
    bool any = http_cfg->n_registries > 0;
    for (int i = 0; !any && i < registries_count(); i++)
        any = atomic_load(&registries_at(i)->counters->requests) > 0 ||
              atomic_load(&registries_at(i)->counters->pulls) > 0;
    if (!any)
        return;
    buf_add(b, "<div class=\"card\" id=\"registries\"><h2>Registries</h2><ul>");
    for (int i = 0; i < registries_count(); i++) {
        const struct registry_counters *n = registries_at(i)->counters;
        format_bytes((double)atomic_load(&n->bytes), bytes, sizeof(bytes));
        buf_add(b, "<li><code>");
        if (named)
            buf_html(b, registries_at(i)->name);
        else
            buf_addf(b, "registry %d", i + 1);
        buf_addf(b,
                 "</code>: %lld pulls, %lld blobs, %lld requests, %lld hits, %s served, %lld "
                 "upstream refusals (%lld 429)</li>",
                 (long long)atomic_load(&n->pulls), (long long)atomic_load(&n->blobs),
                 (long long)atomic_load(&n->requests), (long long)atomic_load(&n->hits), bytes,
                 (long long)atomic_load(&n->refused), (long long)atomic_load(&n->too_many));
    }
    buf_add(b, "</ul></div>");
}

/* The statistics page's remotes card, once a remote is configured: what each served. Its name
 * when `named`, else "remote i", as the registries' card says them. */
static void remotes_card(struct buf *b, bool named)
{
    char bytes[32];
    if (remotes_count() == 0)
        return;
    buf_add(b, "<div class=\"card\" id=\"remotes\"><h2>Remotes</h2><ul>");
    for (int i = 0; i < remotes_count(); i++) {
        const struct remote *r = remotes_at(i);
        const struct remote_counters *n = r->counters;
        format_bytes((double)atomic_load(&n->bytes), bytes, sizeof(bytes));
        buf_add(b, "<li><code>");
        if (named)
            buf_html(b, r->name);
        else
            buf_addf(b, "remote %d", i + 1);
        buf_addf(
            b,
            "</code> (%s): %lld requests, %lld hits, %s served, %lld revalidated, %lld stale</li>",
            config_remote_kind_name(r->kind), (long long)atomic_load(&n->requests),
            (long long)atomic_load(&n->hits), bytes, (long long)atomic_load(&n->revalidated),
            (long long)atomic_load(&n->stale));
    }
    buf_add(b, "</ul></div>");
}

static enum conn_result statistics_page(struct conn *c)
{
    struct store_totals t;
    struct buf b = {0};
    store_totals(&t);
    web_page_begin(&b, "Statistics", "/statistics/");
    buf_add(&b, "<h1>Statistics</h1>");
    hosts_down_card(c, &b);
    summary(&b, &t);
    tls_card(&b);
    web_parents_card(&b, http_sees_urls(c));
    registries_card(&b, http_sees_urls(c));
    remotes_card(&b, http_sees_urls(c));
    chart_gauge(&b, "disk", "Disk usage against the quota", t.disk_usage, t.quota);
    hourly_charts(&b);
    web_latency_card(&b);
    return page_end(c, &b, HTTP_OK);
}

static enum conn_result asset(struct conn *c, const char *name)
{
    for (const struct asset *a = web_assets; a->name; a++) {
        if (strcmp(a->name, name))
            continue;
        struct answer *r = answer_static(a->data, a->size);
        if (r) {
            answer_header(r, "Content-Type", a->type);
            answer_header(r, "Cache-Control", "max-age=3600");
            answer_header(r, "X-Content-Type-Options", "nosniff");
        }
        return http_queue(c, HTTP_OK, r);
    }
    return http_send_error(c, HTTP_NOT_FOUND, "no such file");
}

enum conn_result web_home(struct conn *c, struct request *req, const char *rest)
{
    (void)rest;
    assert(http_handling(c, req));
    return home_page(c);
}

enum conn_result web_help(struct conn *c, struct request *req, const char *rest)
{
    (void)rest;
    assert(http_handling(c, req));
    return help_page(c);
}

enum conn_result web_statistics(struct conn *c, struct request *req, const char *rest)
{
    (void)rest;
    assert(http_handling(c, req));
    engine_settle(); /* a request its client saw end is counted (engine.h) */
    return statistics_page(c);
}

enum conn_result web_resources(struct conn *c, struct request *req, const char *rest)
{
    enum conn_result ret;
    assert(http_handling(c, req));
    if (!http_may_list(c, &ret)) /* a 403 is queued */
        return ret;
    engine_settle(); /* a request its client saw end is counted (engine.h) */
    return resources_page(c, rest[0] ? rest + 1 : "");
}

enum conn_result web_asset(struct conn *c, struct request *req, const char *rest)
{
    assert(http_handling(c, req));
    return asset(c, rest);
}
