/* arca: options, start-up in request order (store, fetch, http), signals, orderly shutdown. */
#include "log/access_log.h"
#include "cli/cli.h"
#include "config/config.h"
#include "base/parse.h"
#include "upstream/upstream.h"
#include "upstream/parent.h"
#include "http/http.h"
#include "log/log.h"
#include "rules/policy.h"
#include "rules/rules.h"
#include "web/routes.h"
#include "stats/stats.h"
#include "config/buckets.h"
#include "registry/registries.h"
#include "registry/reg_links.h"
#include "remote/remotes.h"
#include "upstream/hosts.h"
#include "base/clock.h"
#include "store/store.h"
#include "tls/tls.h"
#include "engine/engine.h"

#include <errno.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Signals are blocked before any thread starts, so only main's sigwait sees them. */
static void block_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGHUP);
    sigaddset(set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, set, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* Every client connection, object being streamed and upstream transfer holds a descriptor; the
 * usual soft limit of 1024 would cap --max-connections well below its default. */
static void raise_fd_limit(const struct config *cfg)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)cfg->max_connections * 2 + (rlim_t)cfg->max_downloads * 2 +
                  STORE_PREPARED_MAX + 256;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur < want)
        log_error("open-file limit %llu is below the %llu that --max-connections may need",
                  (unsigned long long)rl.rlim_cur, (unsigned long long)want);
}

/* Name the changed options SIGHUP cannot apply: they wait for a restart. */
static void note_needs_restart(const struct config *old, const struct config *fresh)
{
    char names[512];
    int n = config_restart_changes(old, fresh, names, sizeof(names));
    if (n > 0)
        log_warn("SIGHUP: %s changed; %s effect at restart", names,
                 n == 1 ? "it takes" : "they take");
}

static const char *level_name(enum log_level level)
{
    static const char *const names[] = {"error", "warning", "info", "debug"}; /* enum's order */
    return names[level];
}

/* What a reload applied: every value SIGHUP reloads (config.c's OPT_RELOADABLE), who may fetch
 * in the start-up line's words (the networks policy.c now holds, set just before). */
static void log_reloaded(const struct config *fresh)
{
    char who[512];
    policy_describe_clients(who, sizeof(who));
    char rate[48] = "none";
    if (fresh->upstream_rate > 0)
        snprintf(rate, sizeof(rate), "%lld bytes/s", (long long)fresh->upstream_rate);
    char token[sizeof(fresh->admin_token_file) + 32] = "no admin token";
    if (fresh->admin_token_file[0])
        snprintf(token, sizeof(token), "admin token from %s", fresh->admin_token_file);
    const struct rule_set *rules = rules_current();
    size_t n_rules = rules_count(rules);
    rules_put(rules);
    log_info("SIGHUP: reloaded (may fetch: %s; log level %s, quota %lld bytes, default ttl %llds, "
             "upstream "
             "rate %s, stale-if-error %llds, stale-while-revalidate %llds, %s, %zu rule%s)",
             who, level_name(fresh->log_level), (long long)fresh->quota,
             (long long)fresh->default_ttl, rate, (long long)fresh->stale_if_error,
             (long long)fresh->stale_while_revalidate, token, n_rules, n_rules == 1 ? "" : "s");
}

/* The certificate in force, as the log says it at start and at each SIGHUP. */
static void log_tls(const char *when)
{
    struct tls_info t;
    char until[32];
    tls_describe(&t);
    format_utc(t.not_after, until, sizeof(until));
    log_info("%sHTTPS certificate %s (issuer %s), valid until %s%s%s", when, t.subject, t.issuer,
             until, t.client_ca[0] ? "; clients must show a certificate signed by " : "",
             t.client_ca);
    if (!when[0] && t.ktls)
        log_info("HTTPS: kernel TLS is offered to each connection (hits by SSL_sendfile)");
    else if (!when[0])
        log_info("HTTPS: hits are encrypted by OpenSSL: no kernel TLS (%s)", t.ktls_why);
}

/* The certificate in force nears its end, or passed it: said at start and at each SIGHUP
 * (`now_anyway`), and else once a day, and at once when it expires (serve's loop looks every
 * hour), so that a lab renews it before its clients refuse it. */
static void note_expiry(bool now_anyway)
{
    static int64_t said_at;
    static bool said_expired;
    struct tls_info t;
    char until[FORMAT_TIME_LEFT_MAX];
    int64_t now = (int64_t)time(NULL);
    tls_describe(&t);
    if (!t.enabled || t.not_after - now > TLS_EXPIRY_WARN_S)
        return;
    if (!now_anyway && now - said_at < 86400 && (said_expired || t.not_after > now))
        return;
    said_at = now;
    said_expired = t.not_after <= now;
    format_time_left(t.not_after, now, until, sizeof(until));
    if (said_expired)
        log_error("HTTPS certificate %s valid until %s: clients refuse it; renew it, then SIGHUP",
                  t.subject, until);
    else
        log_warn("HTTPS certificate %s valid until %s: renew it, then SIGHUP", t.subject, until);
}

/* A SIGHUP's certificate, read again from the files `fresh` names (the listeners are the running
 * ones: --tls-listen waits for a restart). 0 with *out NULL when the running arca has none. */
static int load_tls(const struct config *running, const struct config *fresh, struct tls_ctx **out,
                    char *err, size_t errlen)
{
    *out = NULL;
    if (running->n_tls_listen == 0)
        return 0;
    if (fresh->n_tls_listen == 0) {
        snprintf(err, errlen,
                 "--tls-listen is gone from the configuration (a restart stops "
                 "HTTPS; a SIGHUP keeps the running certificate)");
        return -1;
    }
    return (*out = tls_load(fresh, err, errlen)) ? 0 : -1;
}

/* SIGUSR1, logrotate's: reopen the access log and nothing else, so that a nightly rotation never
 * applies a config someone is still editing. */
static void reopen_log(void)
{
    char err[512];
    if (access_log_reopen(err, sizeof(err)) < 0)
        log_error("SIGUSR1: %s; lines go on to the file open before", err);
    else
        log_info("SIGUSR1: access log reopened");
}

/* The warnings of the rules in force (rules_warning), each with `say` (the log's, or
 * check-config's stderr). */
static void say_rule_warnings(void (*say)(const char *line))
{
    const struct rule_set *set = rules_current();
    const char *w;
    for (size_t i = 0; (w = rules_warning(set, i)); i++)
        say(w);
    rules_put(set);
}

static void log_rule_warning(const char *line)
{
    log_warn("%s", line);
}

static void print_rule_warning(const char *line)
{
    fprintf(stderr, "arca: warning: %s\n", line);
}

/* SIGHUP: reopen the access log; reload the allowed networks, quota, stale windows, default
 * TTL, uplink cap, log level and admin token from the same command line and config file, and
 * read the registries' password files again. A bad file changes nothing. */
static void reload(struct config *cfg, int argc, char **argv)
{
    static struct config fresh;
    struct rule_set *rules;
    struct tls_ctx *tls = NULL;
    char err[CONFIG_ERR_LEN];

    if (access_log_reopen(err, sizeof(err)) < 0)
        log_error("SIGHUP: %s; lines go on to the file open before", err);
    if (config_load(&fresh, argc, argv, err) != CONFIG_SERVE) {
        log_error("SIGHUP: %s; keeping the running configuration", err);
        config_free(&fresh);
        return;
    }
    if (http_load_admin_token(&fresh, err, sizeof(err)) < 0 ||
        load_tls(cfg, &fresh, &tls, err, sizeof(err)) < 0 ||
        !(rules = rules_compile(&fresh, err))) {
        log_error("SIGHUP: %s; keeping the running configuration", err);
        tls_free(tls);
        config_free(&fresh);
        return;
    }
    rules_install(rules);
    say_rule_warnings(log_rule_warning);
    if (tls) {
        tls_install(tls);
        engine_judge_tls(); /* the connections open before: judged by the new client CA too */
        log_tls("SIGHUP: ");
        note_expiry(true);
    }
    note_needs_restart(cfg, &fresh);
    registries_reread_passwords(); /* each registry's file as it started: a path is a restart's */
    policy_set_clients(fresh.allow_nets, fresh.n_allow_nets);
    store_set_quota(fresh.quota);
    store_set_stale(fresh.stale_if_error, fresh.stale_while_revalidate);
    upstream_set_rate(fresh.upstream_rate);
    __atomic_store_n(&cfg->default_ttl, fresh.default_ttl, __ATOMIC_RELAXED);
    __atomic_store_n(&cfg->negative_ttl, fresh.negative_ttl, __ATOMIC_RELAXED);
    __atomic_store_n(&cfg->registry_tag_ttl, fresh.registry_tag_ttl, __ATOMIC_RELAXED);
    __atomic_store_n(&cfg->registry_hold_max, fresh.registry_hold_max, __ATOMIC_RELAXED);
    __atomic_store_n(&cfg->remote_meta_ttl, fresh.remote_meta_ttl, __ATOMIC_RELAXED);
    hosts_cap_limits(fresh.registry_hold_max * 1000, monotonic_ms()); /* a lower cap: now */
    /* what the rules test says of them (the store has its own copy, store_set_stale) */
    __atomic_store_n(&cfg->stale_if_error, fresh.stale_if_error, __ATOMIC_RELAXED);
    __atomic_store_n(&cfg->stale_while_revalidate, fresh.stale_while_revalidate, __ATOMIC_RELAXED);
    /* the line is written under the more verbose of the two levels: going to "error" is said */
    if (fresh.log_level >= LOG_INFO)
        log_set_level(fresh.log_level);
    log_reloaded(&fresh);
    log_set_level(fresh.log_level);
    config_free(&fresh); /* what was read of the rules: the set compiled from it is in force */
}

/* A download the last stop cut continues where its synced bytes end (store_resume.c). */
static void resume_one(struct object *obj, const char *source, void *arg)
{
    /* a bucket's object is signed for again; a public URL's partial body was public */
    struct fetch_source src = {source, 0, buckets_for_url(source), NULL, NULL, NULL};
    (void)arg;
    upstream_fetch(obj, &src);
}

/* Put "FILE:LINE: " before err, where option `name` was set. Returns -1, for the caller's
 * return. */
static int located(const struct config *cfg, const char *name, char *err, size_t errlen)
{
    char msg[512];
    size_t n;
    snprintf(msg, sizeof(msg), "%s", err);
    config_where(cfg, name, err, errlen);
    n = strlen(err);
    snprintf(err + n, errlen - n, "%s", msg);
    return -1;
}

/* The same for buckets_init's "bucket NAME: ..." (at its credentials key, or its section). */
static int bucket_located(const struct config *cfg, char *err, size_t errlen)
{
    char msg[512];
    for (int i = 0; i < cfg->n_buckets; i++) {
        size_t len = strlen(cfg->buckets[i].name);
        if (!strncmp(err, "bucket ", 7) && !strncmp(err + 7, cfg->buckets[i].name, len) &&
            err[7 + len] == ':') {
            snprintf(msg, sizeof(msg), "%s", err);
            config_bucket_where(cfg, i, strstr(msg, "credentials") != NULL, err, errlen);
            len = strlen(err);
            snprintf(err + len, errlen - len, "%s", msg);
            break;
        }
    }
    return -1;
}

/* The [rule NAME] sections compiled and put in force (their errors name FILE:LINE). */
static int install_rules(const struct config *cfg, char *err, size_t errlen)
{
    char why[CONFIG_ERR_LEN];
    struct rule_set *set = rules_compile(cfg, why);
    if (!set) {
        snprintf(err, errlen, "%s", why);
        return -1;
    }
    rules_install(set);
    return 0;
}

/* --data-dir: there and writable, or creatable (store_open makes one level, as mkdir does), as
 * the user running this. */
static int check_data_dir(const char *dir, char *err, size_t errlen)
{
    struct stat st;
    if (stat(dir, &st) == 0) {
        if (!S_ISDIR(st.st_mode))
            snprintf(err, errlen, "--data-dir %.400s: not a directory", dir);
        else if (access(dir, W_OK | X_OK) != 0)
            snprintf(err, errlen, "--data-dir %.400s: cannot write it: %s", dir, strerror(errno));
        else
            return 0;
        return -1;
    }
    if (errno != ENOENT) {
        snprintf(err, errlen, "--data-dir %.400s: %s", dir, strerror(errno));
        return -1;
    }
    /* Made and removed at once: only mkdir itself knows every reason it fails (permissions as
     * this user, a read-only mount, a file system such as /proc that takes no directories). */
    if (mkdir(dir, 0750) != 0) {
        snprintf(err, errlen, "--data-dir %.400s: cannot create it: %s", dir, strerror(errno));
        return -1;
    }
    rmdir(dir);
    return 0;
}

/* An address of --listen or --tls-listen (`option`) resolves and can be bound now (http_start
 * binds it for good): 0, -1, or -2 when something listens there already. */
static int check_address(const char *option, const char *host, int port, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *ai;
    const char *open_b = strchr(host, ':') ? "[" : "", *close_b = *open_b ? "]" : "";
    char service[16];
    int fd, one = 1, rc;
    snprintf(service, sizeof(service), "%d", port);
    if ((rc = getaddrinfo(host, service, &hints, &ai)) != 0) {
        snprintf(err, errlen, "--%s %s%s%s:%d: %s", option, open_b, host, close_b, port,
                 gai_strerror(rc));
        return -1;
    }
    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    rc = fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
                 bind(fd, ai->ai_addr, ai->ai_addrlen) < 0
             ? -1
             : 0;
    if (rc < 0) {
        rc = errno == EADDRINUSE ? -2 : -1;
        snprintf(err, errlen, "--%s %s%s%s:%d: cannot listen: %s", option, open_b, host, close_b,
                 port, strerror(errno));
    }
    if (fd >= 0)
        close(fd);
    freeaddrinfo(ai);
    return rc;
}

/* --listen's address, then each --tls-listen's, named where they were set. */
static int check_listen(const struct config *cfg, char *err, size_t errlen)
{
    int rc = check_address("listen", cfg->listen_host, cfg->listen_port, err, errlen);
    if (rc < 0) {
        located(cfg, "listen", err, errlen);
        return rc;
    }
    for (int i = 0; i < cfg->n_tls_listen; i++)
        if ((rc = check_address("tls-listen", cfg->tls_listen[i].host, cfg->tls_listen[i].port, err,
                                errlen)) < 0) {
            located(cfg, "tls-listen", err, errlen);
            return rc;
        }
    return 0;
}

/* The context check_tls made, for start to install (read once: its warnings said once). */
static struct tls_ctx *checked_tls;

/* --tls-cert, --tls-key and --tls-client-ca make a context serve can use (tls.h's checks). */
static int check_tls(const struct config *cfg, char *err, size_t errlen)
{
    tls_free(checked_tls);
    checked_tls = NULL;
    if (cfg->n_tls_listen == 0)
        return 0;
    return (checked_tls = tls_load(cfg, err, errlen)) ? 0 : -1;
}

/* check_startable's answers besides 0 and -1: all is well but for one thing that is held. */
enum { HELD_LISTEN = -2, HELD_DATA_DIR = -3 };

/* Every remote's NAME is free: one of arca's own first path segments would never reach it. */
static int remote_names_free(const struct config *cfg, char *err, size_t errlen)
{
    for (int i = 0; i < cfg->n_remotes; i++) {
        const struct config_origin *o = &cfg->remote_origins[i];
        const char *name = cfg->remotes[i].name;
        if (!routes_name_taken(name))
            continue;
        int n = o->line > 0 ? snprintf(err, errlen, "%.200s:%d: ", o->file, o->line) : 0;
        snprintf(err + (n > 0 && (size_t)n < errlen ? n : 0), errlen - (n > 0 ? (size_t)n : 0),
                 "remote %s: /%s/ is arca's own path: choose another NAME", name, name);
        return -1;
    }
    return 0;
}

/* Each reason serve would refuse to start, checked before anything is created or loaded, in this
 * order: buckets, admin token, access log, TLS certificate, data dir, listen addresses. `arca
 * check-config` runs exactly this, so its "ok" means serve starts. The admin token is loaded for
 * good here. Each error names the file and line that set the option. HELD_DATA_DIR: another arca
 * holds the data dir (the listen address is then not checked); HELD_LISTEN: something holds the
 * address. */
static int check_startable(const struct config *cfg, char *err, size_t errlen)
{
    policy_init(cfg);
    if (policy_check_kernel(err, errlen) < 0) /* the host's own addresses could not be refused */
        return -1;
    if (buckets_init(cfg, err, errlen) < 0)
        return bucket_located(cfg, err, errlen);
    if (registries_init(cfg, err, errlen) < 0)
        return -1;
    if (remote_names_free(cfg, err, errlen) < 0 || remotes_init(cfg, err, errlen) < 0)
        return -1;
    if (install_rules(cfg, err, errlen) < 0)
        return -1;
    if (http_load_admin_token(cfg, err, errlen) < 0)
        return located(cfg, "admin-token-file", err, errlen);
    if (access_log_check(cfg->access_log, err, errlen) < 0)
        return located(cfg, "access-log", err, errlen);
    if (check_tls(cfg, err, errlen) < 0)
        return -1;
    if (check_data_dir(cfg->data_dir, err, errlen) < 0)
        return located(cfg, "data-dir", err, errlen);
    if (store_dir_in_use(cfg->data_dir)) { /* store_open's lock, asked without taking it */
        snprintf(err, errlen, "--data-dir %.400s: in use by another arca", cfg->data_dir);
        located(cfg, "data-dir", err, errlen);
        return HELD_DATA_DIR;
    }
    return check_listen(cfg, err, errlen);
}

/* Whether an arca answers its health check at cfg's address: the running one, whose address a
 * SIGHUP reload keeps. A second of patience for the answer. */
static bool arca_answers(const struct config *cfg)
{
    static const char ask[] = "GET /api/v1/health/ HTTP/1.0\r\n\r\n";
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
    const char *host = !strcmp(cfg->listen_host, "0.0.0.0") ? "127.0.0.1"
                       : !strcmp(cfg->listen_host, "::")    ? "::1"
                                                            : cfg->listen_host;
    char port[16], buf[64] = "";
    size_t got = 0;
    ssize_t n;
    int fd;
    snprintf(port, sizeof(port), "%d", cfg->listen_port);
    if (getaddrinfo(host, port, &hints, &ai) != 0)
        return false;
    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
        write(fd, ask, sizeof(ask) - 1) == (ssize_t)sizeof(ask) - 1) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        while (got < 12 && poll(&p, 1, 1000) == 1 &&
               (n = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0)
            got += (size_t)n;
    }
    if (fd >= 0)
        close(fd);
    freeaddrinfo(ai);
    /* 503: draining, or its shutdown file exists */
    return got >= 12 && !strncmp(buf, "HTTP/1.", 7) &&
           (!strncmp(buf + 8, " 200", 4) || !strncmp(buf + 8, " 503", 4));
}

/* Whether the arca holding cfg's data dir is the running one SIGHUP will reload: an arca answers
 * at cfg's address too. Then err says the address is held (the note check-config prints). Two
 * different arcas, one holding the data dir and one the address, would pass: no more is known
 * from outside. */
static bool running_arca(const struct config *cfg, char *err, size_t errlen)
{
    return check_listen(cfg, err, errlen) == HELD_LISTEN && arca_answers(cfg);
}

/* The host and port of parent base URL `base` (config_parent_url's form): 0, or -1 when it
 * holds no host. */
static int parent_host(const char *base, char *host, size_t hsize, char *port, size_t psize)
{
    struct url_parts u;
    if (parse_url(base, strlen(base), &u) != URL_OK)
        return -1;
    if (u.host[0] == '[') /* an IPv6 literal, for getaddrinfo without its brackets */
        snprintf(host, hsize, "%.*s", (int)u.host_len - 2, u.host + 1);
    else
        snprintf(host, hsize, "%.*s", (int)u.host_len, u.host);
    snprintf(port, psize, "%d", url_port(&u));
    return 0;
}

/* A parent or a registry whose address the address policy refuses is never asked (every ask is
 * refused as an origin's would be: docs/CLUSTER.md, "Sites and tiers"), the usual slip of a trial
 * on one host: check-config says so, naming `what` (the option or rule that set it), `whom` ("the
 * parent", "the registry") and the option that lets it in. A name that does not resolve here is
 * not judged: the running arca says what it finds. */
static void warn_refused_upstream(const char *what, const char *base, const char *whom)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *list = NULL;
    char host[256], port[16], text[INET6_ADDRSTRLEN], why[256];
    if (parent_host(base, host, sizeof(host), port, sizeof(port)) < 0 ||
        getaddrinfo(host, port, &hints, &list) != 0)
        return;
    for (const struct addrinfo *ai = list; ai; ai = ai->ai_next) {
        if (policy_upstream_check(ai->ai_addr, why, sizeof(why)) == 0 ||
            getnameinfo(ai->ai_addr, ai->ai_addrlen, text, sizeof(text), NULL, 0, NI_NUMERICHOST) !=
                0)
            continue;
        fprintf(stderr, "arca: warning: %s %s: %s: every ask to %s will be refused", what, base,
                why, whom);
        if (strstr(why, "--upstream-allow"))
            fprintf(stderr, "; add --upstream-allow %s/%d (or a network holding it)", text,
                    ai->ai_family == AF_INET ? 32 : 128);
        fputc('\n', stderr);
        break;
    }
    freeaddrinfo(list);
}

/* warn_refused_upstream for --parent, each rule's parent and each configured registry's URL. */
static void warn_refused_upstreams(const struct config *cfg)
{
    char what[512], base[CONFIG_PARENT_MAX], why[160];
    if (cfg->parent[0]) {
        config_where(cfg, "parent", what, sizeof(what));
        snprintf(what + strlen(what), sizeof(what) - strlen(what), "--parent");
        warn_refused_upstream(what, cfg->parent, "the parent");
    }
    for (int i = 0; i < cfg->n_registries; i++) {
        if (!cfg->registries[i].url[0])
            continue; /* Docker Hub's own */
        snprintf(what, sizeof(what), "registry %s", cfg->registries[i].name);
        warn_refused_upstream(what, cfg->registries[i].url, "the registry");
    }
    for (int i = 0; i < cfg->n_rules; i++) {
        const struct config_rule *r = &cfg->rules[i];
        for (int k = 0; k < r->n_keys; k++) {
            if (strcmp(r->keys[k].key, "parent") != 0 ||
                config_parent_url(r->keys[k].value, base, why, sizeof(why)) < 0)
                continue; /* none */
            snprintf(what, sizeof(what), "%s:%d: rule %s: parent", r->file, r->keys[k].line,
                     r->name);
            warn_refused_upstream(what, base, "the parent");
        }
    }
}

/* Root may write where the service's user may not: say that root's "ok" is not the unit's,
 * where there is such a user (the package's `arca`; elsewhere the advice could not be run). */
static void note_root(int argc, char **argv)
{
    if (geteuid() != 0 || !getpwnam("arca"))
        return;
    fputs("arca: note: checked with root's rights; serve runs as the service's user: "
          "sudo -u arca arca check-config",
          stderr);
    for (int i = 2; i < argc; i++)
        fprintf(stderr, " %s", argv[i]);
    fputc('\n', stderr);
}

/* Whether --upstream-allow opens loopback (127.0.0.1 or ::1) to fetches while arca listens
 * beyond loopback. */
static bool upstream_loopback_exposed(const struct config *cfg)
{
    static const uint8_t v4[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1};
    static const uint8_t v6[16] = {[15] = 1};
    bool loopback = false;
    for (int i = 0; i < cfg->n_upstream_allow; i++)
        loopback = loopback || cidr_contains(&cfg->upstream_allow[i], v4) ||
                   cidr_contains(&cfg->upstream_allow[i], v6);
    return loopback && strncmp(cfg->listen_host, "127.", 4) != 0 &&
           strcmp(cfg->listen_host, "::1") != 0 && strcmp(cfg->listen_host, "localhost") != 0;
}

/* "parents: URL (--parent), URL (rule NAME)": every parent a miss may ask, as the start-up log
 * names them (nothing when none). */
static void log_parents(const struct config *cfg)
{
    char list[1024] = "", base[CONFIG_PARENT_MAX], why[160];
    size_t n = 0;
    if (cfg->parent[0])
        n += (size_t)snprintf(list, sizeof(list), "%s (--parent)", cfg->parent);
    for (int i = 0; i < cfg->n_rules && n < sizeof(list); i++) {
        const struct config_rule *r = &cfg->rules[i];
        for (int k = 0; k < r->n_keys && n < sizeof(list); k++)
            if (!strcmp(r->keys[k].key, "parent") &&
                config_parent_url(r->keys[k].value, base, why, sizeof(why)) == 0)
                n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s (rule %s)", n ? ", " : "",
                                      base, r->name);
    }
    if (list[0])
        log_info("%s: %s", strchr(list, ',') ? "parents" : "parent", list);
}

/* "registries mirrored under /v2/: docker.io (https://registry-1.docker.io, the default), lab
 * (https://registry.lab, also lab.example:5000)": which registry a client's /v2/ request
 * reaches, by which names, said at start. */
static void log_registries(void)
{
    char list[4096] = "", also[1200];
    size_t n = 0;
    const struct registry *def = registries_default();
    for (int i = 0; i < registries_count() && n < sizeof(list); i++) {
        const struct registry *r = registries_at(i);
        size_t m = 0;
        also[0] = '\0';
        for (int k = 0; k < r->n_aliases && m < sizeof(also); k++)
            m += (size_t)snprintf(also + m, sizeof(also) - m, "%s%s", k ? ", " : ", also ",
                                  r->aliases[k]);
        n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s (%s%s%s)", n ? ", " : "", r->name,
                              r->url, r == def ? ", the default" : "", also);
    }
    if (list[0])
        log_info("registries mirrored under /v2/: %s", list);
}

/* "remotes served by path: debian (apt, https://deb.debian.org/debian), pypi (pypi,
 * https://pypi.org)": what /NAME/ reaches, said at start as the registries are. */
static void log_remotes(void)
{
    char list[4096] = "";
    size_t n = 0;
    for (int i = 0; i < remotes_count() && n < sizeof(list); i++) {
        const struct remote *r = remotes_at(i);
        n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s (%s, %s)", n ? ", " : "", r->name,
                              config_remote_kind_name(r->kind), r->url);
    }
    if (list[0])
        log_info("remotes served by path: %s", list);
}

/* The first lines of the log, once the checks passed (a refusal stays serve's one line): which
 * arca, which file, and who may fetch. */
static void log_starting(const struct config *cfg)
{
    char files[CONFIG_MAX_FILES * 64];
    config_describe_files(cfg, files, sizeof(files));
    if (files[0]) /* every file read: the --config files and what they include */
        log_info("arca %s starting, config %s", ARCA_VERSION, files);
    else
        log_info("arca %s starting, no config file", ARCA_VERSION);
    char who[512];
    policy_describe_clients(who, sizeof(who));
    log_info("may fetch: %s", who);
    log_parents(cfg);
    log_registries();
    log_remotes();
    if (cfg->outgoing_address[0])
        log_info("upstream connections leave from %s", cfg->outgoing_address);
    const struct rule_set *rules = rules_current();
    size_t n = rules_count(rules);
    rules_put(rules);
    if (n > 0) /* `arca rules test URL` says which applies to a URL, and why */
        log_info("rules: %zu in force", n);
    say_rule_warnings(log_rule_warning);
    bool v6 = strchr(cfg->listen_host, ':') != NULL; /* [::], as --listen writes it */
    if (upstream_loopback_exposed(cfg))
        log_warn("--upstream-allow lets arca fetch from this host's loopback while it "
                 "listens on %s%s%s: every client allowed to fetch reaches those services "
                 "through arca (--listen 127.0.0.1:%d keeps them to this host)",
                 v6 ? "[" : "", cfg->listen_host, v6 ? "]" : "", cfg->listen_port);
}

static int start(const struct config *cfg, char *err, size_t errlen)
{
    raise_fd_limit(cfg);
    /* What can be refused in a moment is checked before a big index loads. */
    if (check_startable(cfg, err, errlen) < 0 || access_log_open(cfg->access_log, err, errlen) < 0)
        return -1;
    tls_install(checked_tls); /* NULL without --tls-listen */
    checked_tls = NULL;
    log_starting(cfg);
    if (cfg->n_tls_listen > 0) {
        log_tls("");
        note_expiry(true);
    }
    if (store_open(cfg, err, errlen) < 0)
        return -1;
    stats_load(); /* the last reads of the index on main until store_close */
    parent_load_counters();
    registries_load_counters();
    remotes_load_counters();
    reg_links_load();
    if (store_start(err, errlen) < 0 || upstream_init(cfg, err, errlen) < 0) {
        store_close();
        return -1;
    }
    store_take_resumed(resume_one, NULL);
    if (http_start(cfg, routes, err, errlen) < 0) {
        upstream_stop();
        store_close();
        return -1;
    }
    return 0;
}

/* The next signal of `set`, or 0 when an hour went by without one (the hourly look at the
 * certificate's end). */
static int next_signal(const sigset_t *set)
{
    struct timespec hour = {3600, 0};
    int sig;
    do
        sig = sigtimedwait(set, NULL, &hour);
    while (sig < 0 && errno == EINTR);
    return sig < 0 && errno == EAGAIN ? 0 : sig;
}

static int serve(struct config *cfg, int argc, char **argv)
{
    char err[512];
    sigset_t set;
    int sig;

    block_signals(&set);
    log_set_level(cfg->log_level);
    if (start(cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "arca: %s\n", err);
        access_log_close();
        return 1;
    }
    while ((sig = next_signal(&set)) == SIGHUP || sig == SIGUSR1 || sig == 0) {
        if (sig == SIGHUP)
            reload(cfg, argc, argv);
        else if (sig == SIGUSR1)
            reopen_log();
        else
            note_expiry(false);
    }
    log_info("signal %d: draining (grace period %llds)", sig, (long long)cfg->grace_period);
    http_drain(cfg->grace_period);
    upstream_stop();
    http_stop();
    store_close();
    tls_install(NULL);
    access_log_close();
    log_info("stopped");
    return 0;
}

/* config_load for serve and check-config: -1 when cfg is to be used; else the exit code, help,
 * the version or the error (exit `error_code`) printed. */
static int load(struct config *cfg, int argc, char **argv, int error_code)
{
    char err[CONFIG_ERR_LEN];
    switch (config_load(cfg, argc, argv, err)) {
    case CONFIG_HELP:
        config_print_help();
        return 0;
    case CONFIG_VERSION:
        printf("arca %s\n", ARCA_VERSION);
        return 0;
    case CONFIG_ERROR:
        fprintf(stderr, "arca: %s\n", err);
        return error_code;
    case CONFIG_SERVE:
        break;
    }
    return -1;
}

/* arca check-config [OPTIONS]: the options serve would get (--config FILE, options alone, or
 * both: the options after --config override the file as they do for serve). 0 and "FILE: ok" when
 * serve would start with them, else 1 and the reason; nothing is created. An arca holding the data
 * dir and answering at the address is taken for the running one about to be reloaded: ok, with a
 * note. Run as root, a note says the service's user should ask. */
static int check_config(int argc, char **argv)
{
    static struct config cfg;
    char err[512];
    int rc;
    if (argc < 3) {
        fprintf(stderr, "arca: check-config takes the options of arca serve: --config FILE, "
                        "options alone (arca check-config --quota 5G), or both\n");
        return 2;
    }
    if ((rc = load(&cfg, argc, argv, 1)) >= 0)
        return rc;
    rc = check_startable(&cfg, err, sizeof(err));
    if (rc == HELD_DATA_DIR && running_arca(&cfg, err, sizeof(err))) {
        fprintf(stderr, "arca: note: %s (a running arca: SIGHUP keeps its address)\n", err);
    } else if (rc == HELD_LISTEN && arca_answers(&cfg)) {
        /* the usual slip: a check run from another folder, whose default ./arca-data is not
         * the running arca's data dir */
        fprintf(stderr,
                "arca: %s (an arca runs there with another data dir than %s: give the "
                "--data-dir it runs with)\n",
                err, cfg.data_dir);
        return 1;
    } else if (rc < 0) {
        fprintf(stderr, "arca: %s\n", err);
        return 1;
    }
    note_root(argc, argv);
    say_rule_warnings(print_rule_warning);
    warn_refused_upstreams(&cfg);
    char files[CONFIG_MAX_FILES * 64];
    config_describe_files(&cfg, files, sizeof(files));
    if (files[0])
        printf("%s: ok\n", files);
    else
        puts("ok");
    return 0;
}

int main(int argc, char **argv)
{
    static struct config cfg;
    int rc;

    if (argc < 2)
        return cli_usage();
    if (!strcmp(argv[1], "check-config"))
        return check_config(argc, argv);
    if (cli_is_command(argv[1]))
        return cli_main(argc, argv);
    if ((rc = load(&cfg, argc, argv, 2)) >= 0)
        return rc;
    return serve(&cfg, argc, argv);
}
