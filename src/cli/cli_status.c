/* What `arca status` prints from the status JSON (cli_status.h). */
#include "cli/cli_status.h"
#include "cli/cli_ask.h"
#include "web/charts.h"
#include "base/parse.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t cli_json_int(json_t *o, const char *key)
{
    return (int64_t)json_integer_value(json_object_get(o, key));
}

int64_t cli_usage_percent(int64_t usage, int64_t quota)
{
    return quota > 0 ? (int64_t)rint((double)usage / (double)quota * 100.0) : 0;
}

json_t *cli_status_json(const struct buf *body)
{
    json_t *s = json_loadb(body->data ? body->data : "", body->len, 0, NULL);
    if (s && !json_string_value(json_object_get(s, "version"))) {
        json_decref(s);
        s = NULL;
    }
    return s;
}

void cli_status_trouble(const char *server, long status, const struct buf *body, char *why,
                        size_t len)
{
    struct url_parts u;
    const char *prefix, *text;
    int n = cli_first_line(body, &text);
    parse_url(server, strlen(server), &u); /* cli_server_normal's: the path is arca's prefix */
    prefix = u.scheme ? u.path : "";
    if (status == 404 && *prefix)
        snprintf(why, len, "no arca status at this path (%s/api/v1/status/ answered 404)", prefix);
    else if (status == 404 || status == 200)
        snprintf(why, len, "not an arca (%s/api/v1/status/ answered %ld%s)", prefix, status,
                 status == 200 ? ", not arca's JSON" : "");
    else if (n > 0 && text[0] != '<')
        snprintf(why, len, "%s/api/v1/status/ answered %ld: %.*s", prefix, status,
                 n > 200 ? 200 : n, text);
    else
        snprintf(why, len, "%s/api/v1/status/ answered %ld", prefix, status);
}

const char *cli_health_state(long health)
{
    return health == 200 ? "up" : health == 503 ? "draining" : "down";
}

/* The upstream hosts held down, one line each (the names when the server shows them to us). */
static void print_hosts_down(json_t *s)
{
    int64_t n = cli_json_int(s, "upstream_hosts_down");
    json_t *list = json_object_get(s, "upstream_hosts_down_list"), *h;
    size_t i;
    if (n <= 0)
        return;
    printf("upstream   %lld host%s held down: misses fail at once, expired objects answer from "
           "disk within their stale-if-error\n",
           (long long)n, n == 1 ? "" : "s");
    json_array_foreach(list, i, h)
    {
        const char *since = json_string_value(json_object_get(h, "since")); /* ISO */
        const char *from = json_string_value(json_object_get(h, "outgoing_address"));
        printf("           %s%s%s%s down since %s, %lld failures in a row\n",
               json_string_value(json_object_get(h, "host")), from ? " (leaving from " : "",
               from ? from : "", from ? ")" : "", since ? since : "?",
               (long long)cli_json_int(h, "failures"));
    }
}

/* Whether the list lets every client fetch: ::/0 holds every IPv6 address and every IPv4 one
 * (mapped), as policy_clients_all counts it ("all" is listed 0.0.0.0/0, ::/0). */
static bool lists_everyone(json_t *list)
{
    for (size_t i = 0; i < json_array_size(list); i++) {
        const char *text = json_string_value(json_array_get(list, i));
        if (text && !strcmp(text, "::/0"))
            return true;
    }
    return false;
}

/* Who may fetch, in the start-up line's words, from the status JSON (an older server's has no
 * list: nothing said); the networks are wrapped under the column of values. */
static void print_allowed(json_t *s)
{
    json_t *list = json_object_get(s, "allow_networks"), *net;
    size_t i, column = 11;
    bool by_default = json_is_true(json_object_get(s, "allow_networks_default"));
    if (!json_is_array(list))
        return;
    if (lists_everyone(list)) {
        printf("may fetch  every client (--allow-network all)\n");
        return;
    }
    printf("may fetch  %s", by_default ? "loopback and private networks (the default: no "
                                         "--allow-network given):\n           "
                                       : "");
    json_array_foreach(list, i, net)
    {
        const char *text = json_string_value(net);
        size_t len = strlen(text ? text : "") + 2;
        if (i && column + len > 94) {
            printf(",\n           ");
            column = 11;
        } else if (i) {
            printf(", ");
        }
        printf("%s", text ? text : "?");
        column += len;
    }
    printf(by_default ? "\n" : " (--allow-network)\n");
}

/* The hit ratio with its two counts, and the requests it leaves out (refused: arca did not try
 * them), so that the numbers beside the % add up. */
static void print_requests(json_t *s)
{
    long long requests = cli_json_int(s, "statistics_requests"),
              tried = cli_json_int(s, "statistics_tried"),
              disk = cli_json_int(s, "statistics_disk_answers"),
              refused = cli_json_int(s, "statistics_refused"),
              held = cli_json_int(s, "statistics_held_down");
    if (tried > 0)
        printf("requests   %lld: %lld of %lld tried answered from disk (%.1f %%)\n", requests, disk,
               tried, 100.0 * (double)disk / (double)(tried > disk ? tried : disk));
    else if (requests > 0)
        printf("requests   %lld, none tried: all refused\n", requests);
    else
        printf("requests   0\n");
    printf("refused    %lld client%s not allowed to fetch (403), %lld held down (503/429)\n",
           refused, refused == 1 ? "" : "s", held);
}

/* ", certificate SUBJECT, valid until DATE (N days left)": format_time_left's words, as the
 * log and the pages say them. `after` is the server's RFC 3339 UTC date, `left` its count of
 * seconds from its own clock. */
static void print_expiry(const char *subject, const char *after, long long left)
{
    char text[FORMAT_TIME_LEFT_MAX];
    struct tm tm = {0};
    const char *end = strptime(after, "%Y-%m-%dT%H:%M:%S", &tm);
    int64_t until = end ? (int64_t)timegm(&tm) : (int64_t)time(NULL) + left;
    format_time_left(until, until - left, text, sizeof(text));
    printf(", certificate %s, valid until %s", subject, text);
}

/* The HTTPS listeners, the certificate and its expiry, the handshakes, and the client CA when
 * one is asked for; nothing without --tls-listen ("tls" null, or absent from an older server). */
static void print_tls(json_t *s)
{
    json_t *t = json_object_get(s, "tls"), *cert = json_object_get(t, "certificate"), *a;
    const char *after = json_string_value(json_object_get(cert, "not_after"));
    const char *subject = json_string_value(json_object_get(cert, "subject"));
    const char *ca = json_string_value(json_object_get(t, "client_ca"));
    long long left = cli_json_int(cert, "expires_in_seconds");
    long long done = cli_json_int(t, "handshakes");
    size_t i;
    if (!json_is_object(t))
        return;
    printf("HTTPS: ");
    json_array_foreach(json_object_get(t, "listen"), i, a)
    {
        printf("%s%s", i ? " and " : "", json_string_value(a) ? json_string_value(a) : "?");
    }
    if (subject && after)
        print_expiry(subject, after, left);
    printf("; %lld handshake%s (%lld resumed), %lld failed\n", done, done == 1 ? "" : "s",
           (long long)cli_json_int(t, "resumed"), (long long)cli_json_int(t, "handshake_failures"));
    if (ca)
        printf("HTTPS client CA: %s (clients without a certificate it signed are refused)\n", ca);
}

/* "3 times (status 1, down 2)": how many, and the reasons that counted in the JSON's order;
 * "" when none. */
static void fallback_count(json_t *fallbacks, char *out, size_t size)
{
    const char *reason;
    json_t *n;
    long long total = 0;
    char reasons[256] = "";
    size_t used = 0;
    json_object_foreach(fallbacks, reason, n)
    {
        long long count = (long long)json_integer_value(n);
        total += count > 0 ? count : 0;
        if (count > 0 && used < sizeof(reasons))
            used += (size_t)snprintf(reasons + used, sizeof(reasons) - used, "%s%s %lld",
                                     used ? ", " : "", reason, count);
    }
    if (total > 0)
        snprintf(out, size, " %lld time%s (%s)", total, total == 1 ? "" : "s", reasons);
    else
        out[0] = '\0';
}

void cli_parent_line(json_t *p, bool only, char *out, size_t size)
{
    const char *url = json_string_value(json_object_get(p, "url"));
    const char *from = json_string_value(json_object_get(p, "from"));
    const char *state = json_string_value(json_object_get(p, "state"));
    const char *since = json_string_value(json_object_get(p, "down_since"));
    long long requests = cli_json_int(p, "requests"), hits = cli_json_int(p, "hits");
    long long failures = cli_json_int(p, "failures");
    char bytes[32], down[96] = "up", times[300];
    fallback_count(json_object_get(p, "fallbacks"), times, sizeof(times));
    format_bytes((double)cli_json_int(p, "bytes"), bytes, sizeof(bytes));
    if (state && !strcmp(state, "down"))
        snprintf(down, sizeof(down), "DOWN since %s, %lld failure%s in a row", since ? since : "?",
                 failures, failures == 1 ? "" : "s");
    snprintf(out, size, "%s (%s): %s; %lld request%s, %lld hit%s, %s; %s%s%s", url ? url : "?",
             from ? from : "?", down, requests, requests == 1 ? "" : "s", hits,
             hits == 1 ? "" : "s", bytes, times[0] ? "" : "never ",
             only ? "passed over" : "fell back to the origin", times);
}

/* A line per registry a /v2/ request can reach (docs/REGISTRY.md, "Visible"), those that served
 * nothing yet too, so that an admin confirms a set-up before any pull, and why its login was
 * refused when it was, continued on a second line while the registry is held at its own
 * asking (a 429: "held_until", "hold"); nothing from an older server. */
static void print_registries(json_t *s)
{
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(s, "registries"), i, r)
    {
        char bytes[32], place[24];
        const char *name = json_string_value(json_object_get(r, "name"));
        const char *refused = json_string_value(json_object_get(r, "login_error"));
        snprintf(place, sizeof(place), "%zu", i + 1); /* to a stranger, as the pages say it */
        format_bytes((double)cli_json_int(r, "bytes"), bytes, sizeof(bytes));
        printf("registry   %s: %lld pulls, %lld blobs, %lld requests, %lld hits, %s; %lld tags "
               "revalidated, %lld stale, %lld upstream refusals (%lld 429)%s%s\n",
               name ? name : place, (long long)cli_json_int(r, "pulls"),
               (long long)cli_json_int(r, "blobs"), (long long)cli_json_int(r, "requests"),
               (long long)cli_json_int(r, "hits"), bytes, (long long)cli_json_int(r, "revalidated"),
               (long long)cli_json_int(r, "stale"), (long long)cli_json_int(r, "refused"),
               (long long)cli_json_int(r, "throttled"), refused ? "; login refused: " : "",
               refused ? refused : "");
        const char *until = json_string_value(json_object_get(r, "held_until"));
        const char *hold = json_string_value(json_object_get(r, "hold"));
        if (until) /* its own line's continuation: one line per registry starts with its name */
            printf("           held until %s (%s): nothing asked of it, what is not kept "
                   "answers 429\n",
                   until, hold ? hold : "?");
    }
}

/* A line per remote (docs/REMOTES.md), those that served nothing yet too; nothing from an older
 * server. */
static void print_remotes(json_t *s)
{
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(s, "remotes"), i, r)
    {
        char bytes[32], place[24];
        const char *name = json_string_value(json_object_get(r, "name"));
        const char *kind = json_string_value(json_object_get(r, "kind"));
        snprintf(place, sizeof(place), "%zu", i + 1); /* to a stranger, as the pages say it */
        format_bytes((double)cli_json_int(r, "bytes"), bytes, sizeof(bytes));
        printf("remote     %s (%s): %lld requests, %lld hits, %s; %lld revalidated, %lld stale\n",
               name ? name : place, kind ? kind : "?", (long long)cli_json_int(r, "requests"),
               (long long)cli_json_int(r, "hits"), bytes, (long long)cli_json_int(r, "revalidated"),
               (long long)cli_json_int(r, "stale"));
    }
}

/* A line per parent arca and one for --parent-only / --parent-trusted-http; nothing without
 * any parent ("parent" null, or absent from an older server). */
static void print_parents(json_t *s)
{
    json_t *o = json_object_get(s, "parent"), *p;
    bool only = json_is_true(json_object_get(o, "only"));
    bool trusted = json_is_true(json_object_get(o, "trusted_http"));
    char line[1024];
    size_t i;
    if (!json_is_object(o))
        return;
    json_array_foreach(json_object_get(o, "parents"), i, p)
    {
        cli_parent_line(p, only, line, sizeof(line));
        printf("parent     %s\n", line);
    }
    if (only || trusted)
        printf("parent     %s%s%s\n",
               only ? "--parent-only: misses never go to the origin directly" : "",
               only && trusted ? "; " : "",
               trusted ? "--parent-trusted-http: URLs with credentials may go to a plain http:// "
                         "parent"
                       : "");
}

void cli_print_status(json_t *s, long health)
{
    char used[32], quota[32], served[32], down[32], pinned[32];
    format_bytes((double)cli_json_int(s, "disk_usage"), used, sizeof(used));
    format_bytes((double)cli_json_int(s, "pinned_bytes"), pinned, sizeof(pinned));
    format_bytes((double)cli_json_int(s, "disk_quota"), quota, sizeof(quota));
    format_bytes((double)cli_json_int(s, "statistics_upload"), served, sizeof(served));
    format_bytes((double)cli_json_int(s, "statistics_download"), down, sizeof(down));
    printf("arca %s on %s\n", json_string_value(json_object_get(s, "version")),
           json_string_value(json_object_get(s, "instance")));
    if (health == 503)
        printf("state      draining (its shutdown file exists: health answers 503, new clients "
               "go elsewhere)\n");
    else if (health == 200)
        printf("state      up\n");
    else
        printf("state      down (health answered %ld)\n", health);
    /* right after a start, the index's rows still going into memory: the figures grow */
    bool loading = json_is_true(json_object_get(s, "index_loading"));
    printf("disk       %s of %s (%lld %%)%s\n", used, quota,
           (long long)cli_json_int(s, "disk_usage_percent"), loading ? " so far" : "");
    printf("objects    %lld on disk%s, %lld downloading, %lld scheduled\n",
           (long long)cli_json_int(s, "resources_successes"),
           loading ? " so far (the index is loading)" : "",
           (long long)cli_json_int(s, "resources_downloading"),
           (long long)cli_json_int(s, "resources_scheduled"));
    printf("pinned     %lld object%s, %s (pin = yes: evicted last)\n",
           (long long)cli_json_int(s, "pinned_objects"),
           cli_json_int(s, "pinned_objects") == 1 ? "" : "s", pinned);
    printf("failures   %lld downloads failed\n", (long long)cli_json_int(s, "resources_failures"));
    print_requests(s);
    printf("traffic    %s served, %s downloaded\n", served, down);
    if (cli_json_int(s, "upstream_rate_limit") > 0) {
        char cap[32];
        format_bytes((double)cli_json_int(s, "upstream_rate_limit"), cap, sizeof(cap));
        printf("upstream   capped at %s/s (--upstream-rate)\n", cap);
    }
    print_tls(s);
    print_parents(s);
    print_registries(s);
    print_remotes(s);
    print_allowed(s);
    print_hosts_down(s);
}
