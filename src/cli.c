#include "cli.h"
#include "buckets.h"
#include "buf.h"
#include "charts.h"
#include "config.h"
#include "parse.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_SERVER "http://127.0.0.1:8001"

#define MAX_SERVERS 64

struct cli_args {
    const char *server, *token_file, *ttl, *config;
    const char *urls[256];
    int n_urls;
    const char *servers[MAX_SERVERS]; /* every --server given (cluster-status) */
    int n_servers;
};

bool cli_is_command(const char *name)
{
    return !strcmp(name, "status") || !strcmp(name, "prefetch") || !strcmp(name, "purge") ||
           !strcmp(name, "check-config") || !strcmp(name, "cluster-status");
}

static int usage(const char *why)
{
    fprintf(stderr, "arca: %s (try arca --help)\n", why);
    return 2;
}

static int parse_args(int argc, char **argv, struct cli_args *a)
{
    *a = (struct cli_args){.server = DEFAULT_SERVER};
    for (int i = 2; i < argc; i++) {
        const char **slot = !strcmp(argv[i], "--server")             ? &a->server
                            : !strcmp(argv[i], "--admin-token-file") ? &a->token_file
                            : !strcmp(argv[i], "--ttl")              ? &a->ttl
                            : !strcmp(argv[i], "--config")           ? &a->config
                                                                     : NULL;
        if (slot) {
            if (i + 1 >= argc) {
                fprintf(stderr, "arca: %s needs a value\n", argv[i]);
                return -1;
            }
            *slot = argv[++i];
            if (slot == &a->server && a->n_servers == MAX_SERVERS) {
                fprintf(stderr, "arca: at most %d --server\n", MAX_SERVERS);
                return -1;
            }
            if (slot == &a->server)
                a->servers[a->n_servers++] = a->server;
        } else if (!strncmp(argv[i], "--", 2) || a->n_urls == 256) {
            fprintf(stderr, "arca: unexpected argument '%s'\n", argv[i]);
            return -1;
        } else {
            a->urls[a->n_urls++] = argv[i];
        }
    }
    return 0;
}

static size_t collect(char *data, size_t size, size_t n, void *arg)
{
    buf_addn(arg, data, size * n);
    return size * n;
}

/* One request to `server`; the body lands in *body. Returns the status, or -1 with curl's
 * reason in `why` (NULL: printed). */
static long ask(const char *server, const char *method, const char *path, const char *payload,
                const char *token, struct buf *body, char *why, size_t whylen)
{
    char url[4096], auth[600];
    struct curl_slist *headers = NULL;
    CURL *easy = curl_easy_init();
    long status = -1;
    CURLcode rc;

    if (!easy)
        return -1;
    snprintf(url, sizeof(url), "%s%s", server, path);
    curl_easy_setopt(easy, CURLOPT_URL, url);
    curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, body);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(easy, CURLOPT_NOPROXY, "*");
    if (token) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
        headers = curl_slist_append(headers, auth);
    }
    if (payload) {
        headers = curl_slist_append(headers, "Content-Type: application/json");
        curl_easy_setopt(easy, CURLOPT_POSTFIELDS, payload);
    }
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
    rc = curl_easy_perform(easy);
    if (rc != CURLE_OK && why)
        snprintf(why, whylen, "%s", curl_easy_strerror(rc));
    else if (rc != CURLE_OK)
        fprintf(stderr, "arca: %s: %s\n", server, curl_easy_strerror(rc));
    else
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(easy);
    return status;
}

static long request(const struct cli_args *a, const char *method, const char *path,
                    const char *payload, const char *token, struct buf *body)
{
    return ask(a->server, method, path, payload, token, body, NULL, 0);
}

/* The server's one-line reason for a refusal. */
static int refused(long status, const struct buf *body)
{
    const char *text = body->data ? body->data : "";
    fprintf(stderr, "arca: %ld: %.*s\n", status, (int)strcspn(text, "\n"), text);
    return 1;
}

static int64_t get_int(json_t *o, const char *key)
{
    return (int64_t)json_integer_value(json_object_get(o, key));
}

static int print_status(json_t *s)
{
    char used[32], quota[32], served[32], down[32];
    int64_t requests = get_int(s, "statistics_requests"), hits = get_int(s, "statistics_hits");
    format_bytes((double)get_int(s, "disk_usage"), used, sizeof(used));
    format_bytes((double)get_int(s, "disk_quota"), quota, sizeof(quota));
    format_bytes((double)get_int(s, "statistics_upload"), served, sizeof(served));
    format_bytes((double)get_int(s, "statistics_download"), down, sizeof(down));
    printf("arca %s on %s\n", json_string_value(json_object_get(s, "version")),
           json_string_value(json_object_get(s, "instance")));
    printf("disk       %s of %s (%.0f %%)\n", used, quota,
           json_real_value(json_object_get(s, "disk_usage_percent")));
    printf("objects    %lld on disk, %lld downloading, %lld scheduled\n",
           (long long)get_int(s, "resources_successes"),
           (long long)get_int(s, "resources_downloading"),
           (long long)get_int(s, "resources_scheduled"));
    printf("failures   %lld downloads failed\n", (long long)get_int(s, "resources_failures"));
    printf("requests   %lld, %.1f %% answered from disk\n", (long long)requests,
           requests ? 100.0 * (double)hits / (double)requests : 0.0);
    printf("traffic    %s served, %s downloaded\n", served, down);
    return 0;
}

static int cmd_status(const struct cli_args *a)
{
    struct buf body = {0};
    long status = request(a, "GET", "/api/v1/status/", NULL, NULL, &body);
    json_t *s;
    int rc = 1;
    if (status == 200 && (s = json_loadb(body.data, body.len, 0, NULL))) {
        rc = print_status(s);
        json_decref(s);
    } else if (status > 0) {
        rc = refused(status, &body);
    }
    buf_free(&body);
    return rc;
}

/* One node of the cluster, as its health and status endpoints answer. */
struct node {
    const char *state; /* up, draining (health 503: its shutdown file exists), down */
    char why[160];     /* down: why */
    int64_t usage, quota, objects, downloading, served, downloaded;
};

static void ask_node(const char *server, struct node *n)
{
    struct buf body = {0};
    json_t *s = NULL;
    long health = ask(server, "GET", "/api/v1/health/", NULL, NULL, &body, n->why, sizeof(n->why));
    n->state = health == 200 ? "up" : health == 503 ? "draining" : "down";
    if (health > 0 && health != 200 && health != 503)
        snprintf(n->why, sizeof(n->why), "health answered %ld", health);
    body.len = 0;
    if (health > 0 &&
        ask(server, "GET", "/api/v1/status/", NULL, NULL, &body, n->why, sizeof(n->why)) == 200 &&
        (s = json_loadb(body.data, body.len, 0, NULL))) {
        n->usage = get_int(s, "disk_usage");
        n->quota = get_int(s, "disk_quota");
        n->objects = get_int(s, "resources_successes");
        n->downloading = get_int(s, "resources_downloading");
        n->served = get_int(s, "statistics_upload");
        n->downloaded = get_int(s, "statistics_download");
        json_decref(s);
    } else if (health > 0) {
        n->state = "down";
        snprintf(n->why, sizeof(n->why), "no status");
    }
    buf_free(&body);
}

static void print_node(const char *name, const struct node *n)
{
    char used[32], quota[32], served[32], down[32];
    format_bytes((double)n->usage, used, sizeof(used));
    format_bytes((double)n->quota, quota, sizeof(quota));
    format_bytes((double)n->served, served, sizeof(served));
    format_bytes((double)n->downloaded, down, sizeof(down));
    if (!strcmp(n->state, "down") && n->why[0]) {
        printf("%-32s %-8s %s\n", name, n->state, n->why);
        return;
    }
    printf("%-32s %-8s %10s %10s %4.0f %% %9lld %11lld %10s %10s\n", name, n->state, used, quota,
           n->quota ? 100.0 * (double)n->usage / (double)n->quota : 0.0, (long long)n->objects,
           (long long)n->downloading, served, down);
}

/* Every node's state and figures, then the cluster's totals; 1 when a node is down. */
static int cmd_cluster_status(const struct cli_args *a)
{
    struct node total = {.state = ""}, n;
    int up = 0;
    const char *one[1] = {DEFAULT_SERVER};
    const char *const *servers = a->n_servers ? a->servers : one;
    int count = a->n_servers ? a->n_servers : 1;
    printf("%-32s %-8s %10s %10s %6s %9s %11s %10s %10s\n", "node", "state", "disk", "quota",
           "used", "objects", "downloading", "served", "downloaded");
    for (int i = 0; i < count; i++) {
        memset(&n, 0, sizeof(n));
        ask_node(servers[i], &n);
        print_node(servers[i], &n);
        up += strcmp(n.state, "down") != 0;
        total.usage += n.usage;
        total.quota += n.quota;
        total.objects += n.objects;
        total.downloading += n.downloading;
        total.served += n.served;
        total.downloaded += n.downloaded;
    }
    char label[32];
    snprintf(label, sizeof(label), "%d/%d", up, count);
    total.state = label;
    print_node("total", &total);
    return up == count ? 0 : 1;
}

/* The token: the file's first line, trimmed; else $ARCA_ADMIN_TOKEN. */
static int load_token(const struct cli_args *a, char *out, size_t size)
{
    const char *env = getenv("ARCA_ADMIN_TOKEN");
    if (!a->token_file) {
        if (!env) {
            fprintf(stderr, "arca: give --admin-token-file FILE or set ARCA_ADMIN_TOKEN\n");
            return -1;
        }
        snprintf(out, size, "%s", env);
        return 0;
    }
    if (config_read_token(a->token_file, out, size) < 0) {
        fprintf(stderr, "arca: --admin-token-file %s: cannot read it\n", a->token_file);
        return -1;
    }
    return 0;
}

static int print_prefetch(json_t *answer)
{
    json_t *item;
    size_t i;
    int rc = 0;
    json_array_foreach(json_object_get(answer, "results"), i, item)
    {
        const char *error = json_string_value(json_object_get(item, "error"));
        const char *url = json_string_value(json_object_get(item, "url"));
        printf("%-12s %s%s%s\n", json_string_value(json_object_get(item, "result")),
               url ? url : "?", error ? ": " : "", error ? error : "");
        rc |= error != NULL;
    }
    return rc;
}

static int cmd_prefetch(const struct cli_args *a)
{
    char token[600];
    struct buf body = {0};
    json_t *urls = json_array(), *answer, *req;
    char *payload;
    long status;
    int rc = 1;

    if (a->n_urls == 0)
        return usage("prefetch needs at least one URL");
    if (load_token(a, token, sizeof(token)) < 0)
        return 1;
    for (int i = 0; i < a->n_urls; i++)
        json_array_append_new(urls, json_string(a->urls[i]));
    req = json_pack("{s:o, s:s?}", "urls", urls, "ttl", a->ttl);
    payload = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (!payload)
        return 1;
    status = request(a, "POST", "/api/v1/prefetch/", payload, token, &body);
    if (status == 202 && (answer = json_loadb(body.data, body.len, 0, NULL))) {
        rc = print_prefetch(answer);
        json_decref(answer);
    } else if (status > 0) {
        rc = refused(status, &body);
    }
    free(payload);
    buf_free(&body);
    return rc;
}

static int cmd_purge(const struct cli_args *a)
{
    char token[600];
    struct buf path = {0}, body = {0};
    long status;
    int rc = 1;

    if (a->n_urls != 1)
        return usage("purge takes one URL");
    if (load_token(a, token, sizeof(token)) < 0)
        return 1;
    buf_add(&path, "/api/v1/resources/?url=");
    buf_query(&path, a->urls[0]);
    status = request(a, "DELETE", path.data, NULL, token, &body);
    if (status == 200) {
        printf("purged %s\n", a->urls[0]);
        rc = 0;
    } else if (status > 0) {
        rc = refused(status, &body);
    }
    buf_free(&path);
    buf_free(&body);
    return rc;
}

static int cmd_check_config(const struct cli_args *a)
{
    static struct config cfg;
    char err[CONFIG_ERR_LEN];
    if (!a->config || a->n_urls)
        return usage("check-config takes --config FILE");
    config_defaults(&cfg);
    if (config_read_file(&cfg, a->config, err) < 0 || config_finish(&cfg, err) < 0 ||
        buckets_init(&cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "arca: %s\n", err);
        return 1;
    }
    printf("%s: ok\n", a->config);
    return 0;
}

int cli_main(int argc, char **argv)
{
    struct cli_args a;
    int rc;
    if (parse_args(argc, argv, &a) < 0)
        return 2;
    if (!strcmp(argv[1], "check-config"))
        return cmd_check_config(&a);
    if (a.config)
        return usage("--config is for arca serve and arca check-config");
    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = !strcmp(argv[1], "status")           ? cmd_status(&a)
         : !strcmp(argv[1], "cluster-status") ? cmd_cluster_status(&a)
         : !strcmp(argv[1], "prefetch")       ? cmd_prefetch(&a)
                                              : cmd_purge(&a);
    curl_global_cleanup();
    return rc;
}
