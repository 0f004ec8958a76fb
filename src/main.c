/* arca: options, start-up in request order (store, fetch, http), signals, orderly shutdown. */
#include "access_log.h"
#include "cli.h"
#include "config.h"
#include "upstream.h"
#include "http.h"
#include "log.h"
#include "policy.h"
#include "stats.h"
#include "buckets.h"
#include "store.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

/* Signals are blocked before any thread starts, so only main's sigwait sees them. */
static void block_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGHUP);
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

/* Say which changed options SIGHUP cannot apply: they wait for a restart. */
static void note_needs_restart(const struct config *old, const struct config *fresh)
{
    struct config a = *old, b = *fresh;
    /* The reloadable ones compare equal from here on. */
    a.quota = b.quota;
    a.default_ttl = b.default_ttl;
    a.log_level = b.log_level;
    memcpy(a.allow_nets, b.allow_nets, sizeof(a.allow_nets));
    a.n_allow_nets = b.n_allow_nets;
    if (memcmp(&a, &b, sizeof(a)) != 0)
        log_info("SIGHUP: some changed options (e.g. --listen, --data-dir, --threads) take "
                 "effect only after a restart");
}

/* SIGHUP: reopen the access log; reload the allowed networks, quota, default TTL, log level
 * and admin token from the same command line and config file. A bad file changes nothing. */
static void reload(struct config *cfg, int argc, char **argv)
{
    static struct config fresh;
    char err[CONFIG_ERR_LEN];

    if (access_log_reopen(err, sizeof(err)) < 0)
        log_error("SIGHUP: %s", err);
    if (config_load(&fresh, argc, argv, err) != CONFIG_SERVE) {
        log_error("SIGHUP: %s; keeping the running configuration", err);
        return;
    }
    if (http_load_admin_token(&fresh, err, sizeof(err)) < 0) {
        log_error("SIGHUP: %s; keeping the running configuration", err);
        return;
    }
    note_needs_restart(cfg, &fresh);
    policy_set_clients(fresh.allow_nets, fresh.n_allow_nets);
    store_set_quota(fresh.quota);
    __atomic_store_n(&cfg->default_ttl, fresh.default_ttl, __ATOMIC_RELAXED);
    __atomic_store_n(&cfg->quota, fresh.quota, __ATOMIC_RELAXED);
    log_set_level(fresh.log_level);
    log_info("SIGHUP: reloaded (%d allowed networks, quota %lld bytes, default ttl %llds)",
             fresh.n_allow_nets, (long long)fresh.quota, (long long)fresh.default_ttl);
}

/* A download the last stop cut continues where its synced bytes end (store_resume.c). */
static void resume_one(struct object *obj, const char *source, void *arg)
{
    /* a bucket's object is signed for again; a public URL's partial body was public */
    struct fetch_source src = {source, 0, buckets_for_url(source)};
    (void)arg;
    upstream_fetch(obj, &src);
}

static int start(const struct config *cfg, char *err, size_t errlen)
{
    raise_fd_limit(cfg);
    policy_init(cfg);
    /* What can be refused in a moment is checked before a big index loads. */
    if (buckets_init(cfg, err, errlen) < 0 || access_log_open(cfg->access_log, err, errlen) < 0 ||
        http_load_admin_token(cfg, err, errlen) < 0)
        return -1;
    if (store_open(cfg, err, errlen) < 0)
        return -1;
    stats_load(); /* the last read of the index on main until store_close */
    if (store_start(err, errlen) < 0 || upstream_init(cfg, err, errlen) < 0) {
        store_close();
        return -1;
    }
    store_take_resumed(resume_one, NULL);
    if (http_start(cfg, err, errlen) < 0) {
        upstream_stop();
        store_close();
        return -1;
    }
    return 0;
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
    while (sigwait(&set, &sig) == 0 && sig == SIGHUP)
        reload(cfg, argc, argv);
    log_info("signal %d: draining (grace period %llds)", sig, (long long)cfg->grace_period);
    http_drain(cfg->grace_period);
    upstream_stop();
    http_stop();
    store_close();
    access_log_close();
    log_info("stopped");
    return 0;
}

int main(int argc, char **argv)
{
    static struct config cfg;
    char err[CONFIG_ERR_LEN];

    if (argc < 2)
        return cli_usage();
    if (cli_is_command(argv[1]))
        return cli_main(argc, argv);
    switch (config_load(&cfg, argc, argv, err)) {
    case CONFIG_HELP:
        config_print_help();
        return 0;
    case CONFIG_VERSION:
        printf("arca %s\n", ARCA_VERSION);
        return 0;
    case CONFIG_ERROR:
        fprintf(stderr, "arca: %s\n", err);
        return 2;
    case CONFIG_SERVE:
        break;
    }
    return serve(&cfg, argc, argv);
}
