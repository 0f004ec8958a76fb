#include "cli/cli.h"
#include "cli/cli_ask.h"
#include "cli/cli_images.h"
#include "cli/cli_rules.h"
#include "cli/cli_server.h"
#include "cli/cli_status.h"
#include "base/buf.h"
#include "web/charts.h"
#include "base/clock.h"
#include "config/config.h"
#include "log/log.h"
#include "tls/tls_identity.h"
#include "base/parse.h"
#include "url/url.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define MAX_SERVERS 64
#define MAX_URLS 256
/* prefetch --wait gives up after this long unless --timeout says otherwise */
#define WAIT_DEFAULT_MS (60LL * 60 * 1000)

/* The options, as bits: what each command accepts. */
enum {
    OPT_SERVER = 1 << 0,
    OPT_TOKEN = 1 << 1,
    OPT_TTL = 1 << 2,
    OPT_CONFIG = 1 << 3,
    OPT_WAIT = 1 << 4,
    OPT_TIMEOUT = 1 << 5,
    OPT_JSON = 1 << 6,
    OPT_VERSION = 1 << 7, /* arca --version's: no command takes it */
    OPT_CERT = 1 << 8,    /* a client certificate, for an arca that requires one */
    OPT_KEY = 1 << 9,
    OPT_CACERT = 1 << 10, /* the CA an https:// server's certificate is checked against */
    OPT_PREFIX = 1 << 11, /* purge --prefix URL: every object under it */
    OPT_ALL = 1 << 12,    /* ... even a prefix with no host, which matches every URL */
    /* what every command asking an arca takes: --config names the server by its listen */
    OPT_ASK = OPT_SERVER | OPT_CERT | OPT_KEY | OPT_CACERT | OPT_CONFIG,
};

struct cli_args {
    const char *server, *token_file, *ttl, *config, *timeout, *cert, *key, *cacert, *prefix;
    char found[CLI_SERVER_MAX];           /* the server no --server named (cli_server_find) */
    char how[600];                        /* and how it was chosen: said when it gives no answer */
    struct cli_config_token config_token; /* the admin-token-file of the configuration read */
    unsigned given;                       /* OPT_* seen */
    bool help;                            /* -h or --help anywhere */
    int64_t wait_ms;                      /* prefetch --wait: the deadline, from --timeout */
    const char *urls[MAX_URLS];
    int n_urls;
    const char *servers[MAX_SERVERS]; /* every --server given, normalized (cluster-status) */
    int n_servers;
    char norm[MAX_SERVERS][CLI_SERVER_MAX];
};

/* What each command takes: its options and how many URLs. */
static const struct command {
    const char *name;
    unsigned options;
    int min_urls, max_urls;
} commands[] = {
    {"status", OPT_ASK, 0, 0},
    {"cluster-status", OPT_ASK | OPT_JSON, 0, 0},
    {"prefetch", OPT_ASK | OPT_TOKEN | OPT_TTL | OPT_WAIT | OPT_TIMEOUT, 1, MAX_URLS},
    {"purge", OPT_ASK | OPT_TOKEN | OPT_PREFIX | OPT_ALL, 1, 1}, /* --prefix: no URL */
    {"images", OPT_ASK | OPT_JSON, 0, 0},
};

static const char *const option_names[] = {
    "--server", "--admin-token-file", "--ttl",  "--config", "--wait",   "--timeout",
    "--json",   "--version",          "--cert", "--key",    "--cacert", "--prefix",
    "--all"};

static const struct command *find_command(const char *name)
{
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (!strcmp(name, commands[i].name))
            return &commands[i];
    return NULL;
}

bool cli_is_command(const char *name)
{
    return find_command(name) != NULL || !strcmp(name, "rules");
}

int cli_usage(void)
{
    /* docs/COMMANDS.md's "Command line" block is this text, to the byte (test_cli.py checks it) */
    fputs("usage: arca [serve] [OPTION...]\n"
          "       arca status [--server URL]                   # a running arca, summarised\n"
          "       arca cluster-status [--json] [--server URL ...]\n"
          "                                                    # several nodes: a table, totals\n"
          "       arca prefetch [--server URL] [--admin-token-file FILE] [--ttl TTL]\n"
          "                     [--wait [--timeout DURATION]] URL...\n"
          "                                                    # warm the cache (admin token)\n"
          "       arca purge [--server URL] [--admin-token-file FILE] URL\n"
          "                                                    # drop one object (admin token)\n"
          "       arca purge [--server URL] [--admin-token-file FILE] --prefix URL [--all]\n"
          "                                                    # every object under URL\n"
          "       arca purge [--server URL] [--admin-token-file FILE] IMAGE\n"
          "                                                    # an image, its own layers\n"
          "       arca images [--json] [--server URL]          # the images kept\n"
          "       (they ask --server URL, else the listen address of --config FILE, else\n"
          "        ARCA_SERVER, else /etc/arca/arca.ini's, else 127.0.0.1:8001; --cacert FILE\n"
          "        for https://, --cert FILE --key FILE for an arca that asks clients for a\n"
          "        certificate)\n"
          "       arca check-config [--config FILE] [OPTION...]\n"
          "                                                    # would serve start with them?\n"
          "       arca rules test [--config FILE] [--client ADDR] [--json] [OPTION...] URL|IMAGE\n"
          "                                                    # which rule, which terms, why\n"
          "arca --help tells every option\n",
          stderr);
    return 2;
}

static int usage(const char *why)
{
    fprintf(stderr, "arca: %s\n", why);
    return 2;
}

/* The option argv[i] names (OPT_*), 0 when it is none. */
static unsigned option_bit(const char *arg)
{
    for (size_t i = 0; i < sizeof(option_names) / sizeof(option_names[0]); i++)
        if (!strcmp(arg, option_names[i]))
            return 1u << i;
    return 0;
}

static const char **option_slot(struct cli_args *a, unsigned bit)
{
    return bit == OPT_SERVER    ? &a->server
           : bit == OPT_TOKEN   ? &a->token_file
           : bit == OPT_TTL     ? &a->ttl
           : bit == OPT_CONFIG  ? &a->config
           : bit == OPT_TIMEOUT ? &a->timeout
           : bit == OPT_CERT    ? &a->cert
           : bit == OPT_KEY     ? &a->key
           : bit == OPT_CACERT  ? &a->cacert
           : bit == OPT_PREFIX  ? &a->prefix
                                : NULL; /* a flag */
}

static int take_server(struct cli_args *a, const char *given)
{
    if (a->n_servers == MAX_SERVERS) {
        fprintf(stderr, "arca: at most %d --server\n", MAX_SERVERS);
        return -1;
    }
    if (cli_server_normal(given, a->norm[a->n_servers]) < 0) {
        fprintf(stderr,
                "arca: --server '%s': expected http://HOST[:PORT][/PATH], https://... or "
                "HOST[:PORT]\n",
                given);
        return -1;
    }
    a->server = a->servers[a->n_servers] = a->norm[a->n_servers];
    a->n_servers++;
    return 0;
}

/* "unknown option '--NAME'", with the nearest client option when one is near; a serve option
 * given to a client command is named as such ("status does not take --allow-network"). */
static void unknown_option(const char *command, const char *arg)
{
    const char *names[sizeof(option_names) / sizeof(option_names[0]) + 1] = {NULL}, *near;
    for (size_t i = 0; i < sizeof(option_names) / sizeof(option_names[0]); i++)
        names[i] = option_names[i];
    near = strncmp(arg, "--", 2) ? NULL : parse_nearest_name(arg, names);
    if (!strncmp(arg, "--", 2) && config_is_serve_option(arg + 2))
        fprintf(stderr, "arca: %s does not take %.*s (an option of arca serve)\n", command,
                (int)strcspn(arg, "="), arg);
    else if (near)
        fprintf(stderr, "arca: unknown option '%s'; did you mean %s?\n", arg, near);
    else
        fprintf(stderr, "arca: unknown option '%s'\n", arg);
}

static int parse_args(int argc, char **argv, struct cli_args *a)
{
    for (int i = 2; i < argc; i++) {
        unsigned bit = option_bit(argv[i]);
        const char **slot = bit ? option_slot(a, bit) : NULL;
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            a->help = true;
            return 0;
        }
        if (bit && slot && i + 1 >= argc) {
            fprintf(stderr, "arca: %s needs a value\n", argv[i]);
            return -1;
        }
        a->given |= bit;
        if (bit == OPT_SERVER) {
            if (take_server(a, argv[++i]) < 0)
                return -1;
        } else if (slot) {
            *slot = argv[++i];
        } else if (bit) {
            continue; /* a flag: its bit says it all */
        } else if (argv[i][0] == '-' && argv[i][1]) {
            unknown_option(argv[1], argv[i]);
            return -1;
        } else if (a->n_urls == MAX_URLS) {
            fprintf(stderr, "arca: at most %d URLs\n", MAX_URLS);
            return -1;
        } else {
            a->urls[a->n_urls++] = argv[i];
        }
    }
    return 0;
}

/* --cert and --key go together, and are checked as --parent-cert and --parent-key are
 * (tls_identity.h: readable, a certificate valid now, not swapped, the key the certificate's),
 * before anything is asked: curl would say only "problem with the local SSL certificate", which
 * reads as a server that is not there. */
static int check_certificate(const struct cli_args *a, char *why, size_t size)
{
    struct tls_identity id;
    if (!a->cert != !a->key) {
        snprintf(why, size, "%s",
                 a->cert ? "--cert needs --key (its private key)"
                         : "--key needs --cert (the certificate it goes with)");
        return -1;
    }
    if (!a->cert)
        return 0;
    /* a key others may read is the user's own business here: no warning, only the checks */
    log_set_level(LOG_ERROR);
    if (tls_identity_load(&id, "--cert", a->cert, "--key", a->key, why, size) < 0)
        return -1;
    tls_identity_free(&id);
    return 0;
}

/* The server when no --server names one (cli_server.h); every ask says how it was chosen when
 * nothing answers there. */
static int find_server(struct cli_args *a, char *why, size_t size)
{
    /* --server with --config: the file is still read, for its admin token (an https:// address
     * of the arca it describes, which its plain listen does not give) */
    if ((a->n_servers == 0 || a->config) &&
        cli_server_find(a->config, a->found, a->how, sizeof(a->how), &a->config_token) < 0) {
        snprintf(why, size, "%s", a->how);
        return -1;
    }
    if (a->n_servers > 0) {
        cli_use_origin("--server");
        return 0;
    }
    a->server = a->found;
    cli_use_origin(a->how);
    return 0;
}

/* purge --prefix's URL, as the server will judge it (url_purge_prefix): bad usage, said before
 * anything is asked. */
static int check_prefix(const struct cli_args *a, char *why, size_t size)
{
    size_t len = strlen(a->prefix);
    char *norm = malloc(URL_BUF_SIZE(len));
    const char *reason = "out of memory";
    int rc = norm ? url_purge_prefix(a->prefix, a->given & OPT_ALL, norm, URL_BUF_SIZE(len), NULL,
                                     &reason)
                  : -1;
    if (rc < 0) {
        char *shown = url_shown(a->prefix);
        snprintf(why, size, "--prefix %.400s: %s", shown ? shown : "", reason);
        free(shown);
    }
    free(norm);
    return rc;
}

/* Refuse what `cmd` does not take: an option of another command, a URL too many or too few. */
static int check_args(const struct command *cmd, struct cli_args *a)
{
    char why[1200];
    unsigned stray = a->given & ~cmd->options;
    if (stray) {
        for (size_t i = 0; i < sizeof(option_names) / sizeof(option_names[0]); i++)
            if (stray & (1u << i)) {
                snprintf(why, sizeof(why), "%s does not take %s", cmd->name, option_names[i]);
                return usage(why);
            }
    }
    if (cmd->max_urls == 0 && a->n_urls > 0) {
        snprintf(why, sizeof(why), "%s takes no argument: '%s'", cmd->name, a->urls[0]);
        return usage(why);
    }
    if ((a->given & OPT_PREFIX) && a->n_urls > 0) {
        snprintf(why, sizeof(why), "%s takes a URL or --prefix URL, not both", cmd->name);
        return usage(why);
    }
    if ((a->given & OPT_ALL) && !(a->given & OPT_PREFIX))
        return usage("--all is for purge --prefix");
    if (a->prefix && check_prefix(a, why, sizeof(why)) < 0)
        return usage(why);
    if (cmd->min_urls == 1 && cmd->max_urls == 1 && a->n_urls != 1 && !(a->given & OPT_PREFIX)) {
        snprintf(why, sizeof(why), "%s takes one URL, got %d", cmd->name, a->n_urls);
        return usage(why);
    }
    if (a->n_urls < cmd->min_urls && !(a->given & OPT_PREFIX)) {
        snprintf(why, sizeof(why), "%s needs at least one URL", cmd->name);
        return usage(why);
    }
    if (a->n_servers > 1 && strcmp(cmd->name, "cluster-status")) {
        snprintf(why, sizeof(why), "%s takes one --server (cluster-status takes several)",
                 cmd->name);
        return usage(why);
    }
    if (a->ttl && parse_ttl(a->ttl, &(int64_t){0}) < 0) {
        snprintf(why, sizeof(why), "--ttl: expected <int>d|h|m|s, positive, got '%s'", a->ttl);
        return usage(why);
    }
    if ((a->given & OPT_TIMEOUT) && !(a->given & OPT_WAIT))
        return usage("--timeout is for prefetch --wait");
    if (check_certificate(a, why, sizeof(why)) < 0)
        return usage(why);
    if (a->cacert && access(a->cacert, R_OK) < 0) {
        snprintf(why, sizeof(why), "--cacert %.400s: %s", a->cacert, strerror(errno));
        return usage(why);
    }
    if (find_server(a, why, sizeof(why)) < 0)
        return usage(why);
    a->wait_ms = WAIT_DEFAULT_MS;
    if (a->timeout && parse_duration_ms(a->timeout, &a->wait_ms) < 0) {
        snprintf(why, sizeof(why), "--timeout: expected <int>ms|s|m|h|d, positive, got '%s'",
                 a->timeout);
        return usage(why);
    }
    return 0;
}

static long request_within(const struct cli_args *a, const char *method, const char *path,
                           const char *payload, const char *token, struct buf *body,
                           long timeout_ms)
{
    struct call q = {method, path, payload, token, timeout_ms};
    return cli_ask(a->server, &q, body, NULL, 0, NULL);
}

static long request(const struct cli_args *a, const char *method, const char *path,
                    const char *payload, const char *token, struct buf *body)
{
    return request_within(a, method, path, payload, token, body, CALL_TIMEOUT_MS);
}

/* The summary; 0 only when the node is up: a draining node fails, as HAProxy's health check
 * takes it out (the compose health check is this command). */
static int cmd_status(const struct cli_args *a)
{
    struct buf body = {0};
    char why[400];
    long health = request(a, "GET", "/api/v1/health/", NULL, NULL, &body), status = -1;
    json_t *s = NULL;
    body.len = 0;
    if (health > 0)
        status = request(a, "GET", "/api/v1/status/", NULL, NULL, &body);
    if (status == 200)
        s = cli_status_json(&body);
    if (s) {
        cli_print_status(s, health);
        json_decref(s);
    } else if (status > 0) {
        cli_status_trouble(a->server, status, &body, why, sizeof(why));
        fprintf(stderr, "arca: %s: %s\n", a->server, why);
    }
    buf_free(&body);
    return s && health == 200 ? 0 : 1;
}

/* One node of the cluster, as its health and status endpoints answer. */
struct node {
    const char *state; /* up, draining (health 503: its shutdown file exists), down */
    char why[400];     /* down: why */
    int64_t usage, quota, objects, downloading, served, downloaded;
};

static void ask_node(const char *server, struct node *n)
{
    struct buf body = {0};
    json_t *s = NULL;
    struct call health_q = {"GET", "/api/v1/health/", NULL, NULL, CALL_TIMEOUT_MS},
                status_q = {"GET", "/api/v1/status/", NULL, NULL, CALL_TIMEOUT_MS};
    long health = cli_ask(server, &health_q, &body, n->why, sizeof(n->why), NULL), status = -1;
    n->state = cli_health_state(health);
    if (health > 0 && health != 200 && health != 503)
        snprintf(n->why, sizeof(n->why), "health answered %ld", health);
    body.len = 0;
    if (health > 0)
        status = cli_ask(server, &status_q, &body, n->why, sizeof(n->why), NULL);
    if (status == 200 && (s = cli_status_json(&body))) {
        n->usage = cli_json_int(s, "disk_usage");
        n->quota = cli_json_int(s, "disk_quota");
        n->objects = cli_json_int(s, "resources_successes");
        n->downloading = cli_json_int(s, "resources_downloading");
        n->served = cli_json_int(s, "statistics_upload");
        n->downloaded = cli_json_int(s, "statistics_download");
        json_decref(s);
    } else if (status > 0) {
        n->state = "down";
        cli_status_trouble(server, status, &body, n->why, sizeof(n->why));
    } else if (health > 0) {
        n->state = "down"; /* the status request failed: cli_ask() said why */
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
    printf("%-32s %-8s %10s %10s %4lld %% %9lld %11lld %10s %10s\n", name, n->state, used, quota,
           (long long)cli_usage_percent(n->usage, n->quota), (long long)n->objects,
           (long long)n->downloading, served, down);
}

/* A node's figures under the status JSON's names (--json). */
static json_t *node_json(const struct node *n)
{
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "disk_usage", (json_int_t)n->usage,
                     "disk_quota", (json_int_t)n->quota, "disk_usage_percent",
                     (json_int_t)cli_usage_percent(n->usage, n->quota), "resources_successes",
                     (json_int_t)n->objects, "resources_downloading", (json_int_t)n->downloading,
                     "statistics_upload", (json_int_t)n->served, "statistics_download",
                     (json_int_t)n->downloaded);
}

static void add_node_json(json_t *nodes, const char *server, const struct node *n)
{
    json_t *o = json_pack("{s:s, s:s}", "server", server, "state", n->state),
           *figures = node_json(n);
    if (!strcmp(n->state, "down"))
        json_object_set_new(o, "error", json_string(n->why[0] ? n->why : "down"));
    json_object_update(o, figures);
    json_decref(figures);
    json_array_append_new(nodes, o);
}

static void print_cluster_json(json_t *nodes, const struct node *total, int up, int count)
{
    json_t *t = json_pack("{s:i, s:i}", "nodes", count, "up", up), *figures = node_json(total),
           *doc;
    char *text;
    json_object_update(t, figures);
    json_decref(figures);
    doc = json_pack("{s:o, s:o}", "nodes", nodes, "total", t);
    text = doc ? json_dumps(doc, JSON_INDENT(2)) : NULL;
    if (text)
        puts(text);
    free(text);
    json_decref(doc);
}

/* Every node's state and figures, then the cluster's totals; 1 when a node is down. */
static int cmd_cluster_status(const struct cli_args *a)
{
    struct node total = {.state = ""}, n;
    int up = 0;
    const char *one[1] = {a->server};
    const char *const *servers = a->n_servers ? a->servers : one;
    int count = a->n_servers ? a->n_servers : 1;
    bool json = a->given & OPT_JSON;
    json_t *nodes = json ? json_array() : NULL;
    if (!json)
        printf("%-32s %-8s %10s %10s %6s %9s %11s %10s %10s\n", "node", "state", "disk", "quota",
               "used", "objects", "downloading", "served", "downloaded");
    for (int i = 0; i < count; i++) {
        memset(&n, 0, sizeof(n));
        ask_node(servers[i], &n);
        if (json)
            add_node_json(nodes, servers[i], &n);
        else
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
    if (json)
        print_cluster_json(nodes, &total, up, count);
    else
        print_node("total", &total);
    return up == count ? 0 : 1;
}

/* The token: --admin-token-file's first line, trimmed; else $ARCA_ADMIN_TOKEN; else the first
 * line of the admin-token-file the configuration read names (the server's own option). 0, or 2
 * with one line said: none given, or a file that cannot be read, is bad usage, found before
 * anything is asked. */
static int load_token(const struct cli_args *a, char *out, size_t size)
{
    const char *env = getenv("ARCA_ADMIN_TOKEN");
    const char *file = a->token_file ? a->token_file : a->config_token.file;
    if (!a->token_file && env) {
        snprintf(out, size, "%s", env);
        return 0;
    }
    if (!file[0]) {
        fprintf(stderr, "arca: no admin token: give --admin-token-file FILE, set ARCA_ADMIN_TOKEN "
                        "or --config a file whose admin-token-file holds it\n");
        return 2;
    }
    int len = config_read_token(file, out, size);
    if (len < 0)
        fprintf(stderr, "arca: %s--admin-token-file %s: %s%s\n",
                a->token_file ? "" : a->config_token.where, file,
                len == -1 ? "cannot read it: " : "its first line is too long",
                len == -1 ? strerror(errno) : "");
    return len < 0 ? 2 : 0;
}

/* The pause between two questions about a download (prefetch --wait): short at first, so that
 * a small download is told at once, then growing to WAIT_PAUSE_MAX_MS. */
#define WAIT_PAUSE_MIN_MS 100
#define WAIT_PAUSE_MAX_MS 2000

static void sleep_ms(int64_t ms)
{
    struct timespec t = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&t, &t) < 0 && errno == EINTR)
        ;
}

/* One answer of GET /api/v1/resources/?url=: the outcome word for `state`, NULL while the
 * download goes on; the reason in `why`. */
static const char *outcome_of(json_t *o, char *why, size_t whylen)
{
    const char *state = json_string_value(json_object_get(o, "state"));
    const char *error = json_string_value(json_object_get(o, "error"));
    if (!state) {
        snprintf(why, whylen, "the server's answer has no state: is it an arca?");
        return "failed";
    }
    if (!strcmp(state, "complete"))
        return "downloaded";
    if (!strcmp(state, "failed")) {
        snprintf(why, whylen, "%lld: %s", (long long)cli_json_int(o, "status_code"),
                 error ? error : "download failed");
        return "failed";
    }
    if (!strcmp(state, "absent")) {
        snprintf(why, whylen,
                 "not in the cache: purged or evicted before its outcome was seen, "
                 "or its failure is no longer kept");
        return "absent";
    }
    return NULL; /* scheduled or downloading */
}

/* What became of the download of `url` (prefetch --wait): "downloaded", "failed", "absent" or
 * "timeout", with the reason in `why`. It asks the admin API for the download's state until it
 * ends, with a growing pause: no object byte crosses the network, the client holds only small
 * answers, and neither the fetch statistics nor the download are touched (a failed download is
 * reported, never tried again). */
static const char *wait_one(const struct cli_args *a, const char *token, const char *url,
                            int64_t deadline, char *why, size_t whylen)
{
    struct buf path = {0}, body = {0};
    struct call q = {"GET", NULL, NULL, token, 0};
    const char *outcome = NULL, *text;
    int64_t pause = WAIT_PAUSE_MIN_MS, left;
    CURLcode code = CURLE_OK;
    long status;
    json_t *o;

    why[0] = '\0';
    buf_add(&path, "/api/v1/resources/?url=");
    buf_query(&path, url);
    q.path = path.data;
    while (!outcome && (left = deadline - monotonic_ms()) > 0) {
        q.timeout_ms = (long)(left < CALL_TIMEOUT_MS ? left : CALL_TIMEOUT_MS);
        buf_free(&body);
        status = cli_ask(a->server, &q, &body, why, whylen, &code);
        if (status < 0 && code == CURLE_OPERATION_TIMEDOUT) {
            break;
        } else if (status < 0) {
            outcome = "failed"; /* cli_ask() said why */
        } else if (status != 200) {
            int len = cli_first_line(&body, &text);
            snprintf(why, whylen, "cannot tell: %ld: %.*s", status, len, text);
            outcome = "failed";
        } else if ((o = json_loadb(body.data ? body.data : "", body.len, 0, NULL))) {
            outcome = outcome_of(o, why, whylen);
            json_decref(o);
        } else {
            snprintf(why, whylen, "cannot tell: the server's answer is not JSON");
            outcome = "failed";
        }
        if (!outcome) {
            left = deadline - monotonic_ms();
            sleep_ms(pause < left ? pause : left > 0 ? left : 0);
            pause = pause * 2 < WAIT_PAUSE_MAX_MS ? pause * 2 : WAIT_PAUSE_MAX_MS;
        }
    }
    if (!outcome) {
        outcome = "timeout";
        snprintf(why, whylen, "no outcome within %s (the download goes on)",
                 a->timeout ? a->timeout : "1h");
    }
    buf_free(&path);
    buf_free(&body);
    return outcome;
}

/* One line per URL; with --wait, a download's outcome rather than its start. 1 when any URL
 * failed, was refused or did not end in time. */
static int print_prefetch(const struct cli_args *a, const char *token, json_t *answer)
{
    int64_t deadline = monotonic_ms() + a->wait_ms;
    bool wait = a->given & OPT_WAIT;
    json_t *item;
    size_t i;
    int rc = 0;
    json_array_foreach(json_object_get(answer, "results"), i, item)
    {
        const char *error = json_string_value(json_object_get(item, "error"));
        const char *url = json_string_value(json_object_get(item, "url"));
        const char *result = json_string_value(json_object_get(item, "result"));
        char why[512];
        if (!result)
            result = "error";
        if (wait && !error && i < (size_t)a->n_urls &&
            (!strcmp(result, "started") || !strcmp(result, "downloading"))) {
            result = wait_one(a, token, a->urls[i], deadline, why, sizeof(why));
            error = why[0] ? why : NULL;
        }
        printf("%-12s %s%s%s\n", result, url ? url : "?", error ? ": " : "", error ? error : "");
        fflush(stdout);
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

    if ((rc = load_token(a, token, sizeof(token))) != 0) {
        json_decref(urls);
        return rc;
    }
    rc = 1;
    for (int i = 0; i < a->n_urls; i++)
        json_array_append_new(urls, json_string(a->urls[i]));
    req = json_pack("{s:o, s:s?}", "urls", urls, "ttl", a->ttl);
    payload = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (!payload)
        return 1;
    status = request(a, "POST", "/api/v1/prefetch/", payload, token, &body);
    if (status == 202 && (answer = json_loadb(body.data, body.len, 0, NULL))) {
        rc = print_prefetch(a, token, answer);
        json_decref(answer);
    } else if (status > 0) {
        rc = cli_refused(NULL, status, &body);
    }
    free(payload);
    buf_free(&body);
    return rc;
}

/* A purge by prefix answers once its rows are gone on disk, and its walk keeps near the disk's
 * pace: 15-19 s for a tenth of a million objects here. Its call waits an hour, not the 30 s of
 * the others, so that a big tree's purge is not reported failed while it goes on. */
#define PURGE_TIMEOUT_MS (3600 * 1000L)

/* purge --prefix: what went, or why not (a refusal: 1). */
static int purge_prefix(const struct cli_args *a, const char *token)
{
    struct buf path = {0}, body = {0};
    json_t *answer;
    long status;
    int rc = 1;

    buf_add(&path, "/api/v1/purge/?prefix=");
    buf_query(&path, a->prefix);
    if (a->given & OPT_ALL)
        buf_add(&path, "&all=1");
    status = request_within(a, "POST", path.data, "", token, &body, PURGE_TIMEOUT_MS);
    if (status == 200 && (answer = json_loadb(body.data, body.len, 0, NULL))) {
        json_int_t purged = json_integer_value(json_object_get(answer, "purged"));
        printf("purged %lld object%s (%lld bytes) under %s", (long long)purged,
               purged == 1 ? "" : "s",
               (long long)json_integer_value(json_object_get(answer, "bytes")),
               json_string_value(json_object_get(answer, "prefix")));
        json_int_t downloads = json_integer_value(json_object_get(answer, "downloads_not_kept"));
        json_int_t negatives = json_integer_value(json_object_get(answer, "negative_answers"));
        const char *not_matched = json_string_value(json_object_get(answer, "not_matched"));
        if (downloads)
            printf("; %lld downloads under way finish for their clients, not kept",
                   (long long)downloads);
        if (negatives)
            printf("; %lld kept 404s dropped", (long long)negatives);
        if (not_matched)
            printf("; not matched: %s", not_matched);
        printf("\n");
        json_decref(answer);
        rc = 0;
    } else if (status > 0) {
        rc = cli_refused(a->prefix, status, &body);
    }
    buf_free(&path);
    buf_free(&body);
    return rc;
}

static int cmd_purge(const struct cli_args *a)
{
    char token[600];
    struct buf path = {0}, body = {0};
    long status;
    int rc = 1;

    if ((rc = load_token(a, token, sizeof(token))) != 0)
        return rc;
    rc = 1;
    if (a->prefix)
        return purge_prefix(a, token);
    struct url_parts u; /* no scheme: an image reference (docker.io/library/debian:12) */
    if (parse_url(a->urls[0], strlen(a->urls[0]), &u) == URL_NO_SCHEME)
        return cli_purge_image(a->server, token, a->urls[0]);
    buf_add(&path, "/api/v1/resources/?url=");
    buf_query(&path, a->urls[0]);
    status = request(a, "DELETE", path.data, NULL, token, &body);
    if (status == 200) {
        printf("purged %s\n", a->urls[0]);
        rc = 0;
    } else if (status > 0) {
        rc = cli_refused(a->urls[0], status, &body);
    }
    buf_free(&path);
    buf_free(&body);
    return rc;
}

int cli_main(int argc, char **argv)
{
    static struct cli_args a;
    const struct command *cmd = find_command(argv[1]);
    int rc;
    if (!cmd) /* rules: its own options, serve's among them */
        return cli_rules_main(argc, argv);
    if (parse_args(argc, argv, &a) < 0)
        return 2;
    if (a.help) {
        config_print_help();
        return 0;
    }
    if ((rc = check_args(cmd, &a)) != 0)
        return rc;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    cli_use_certificate(a.cert, a.key);
    cli_use_ca(a.cacert);
    rc = !strcmp(cmd->name, "status")           ? cmd_status(&a)
         : !strcmp(cmd->name, "cluster-status") ? cmd_cluster_status(&a)
         : !strcmp(cmd->name, "prefetch")       ? cmd_prefetch(&a)
         : !strcmp(cmd->name, "images")         ? cli_images(a.server, a.given & OPT_JSON)
                                                : cmd_purge(&a);
    curl_global_cleanup();
    return rc;
}
