/* arca: options, start-up in request order (store, fetch, http), signals, orderly shutdown. */
#include "config.h"
#include "fetch.h"
#include "http.h"
#include "log.h"
#include "policy.h"
#include "stats.h"
#include "store.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

/* Signals are blocked before any thread starts, so only main's sigwait sees them. */
static void block_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
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

static int serve(const struct config *cfg)
{
    char err[512];
    sigset_t set;
    int sig;

    block_signals(&set);
    raise_fd_limit(cfg);
    policy_init(cfg);
    if (store_open(cfg, err, sizeof(err)) < 0)
        goto fail;
    stats_load();
    if (fetch_init(cfg, err, sizeof(err)) < 0)
        goto fail_store;
    if (http_start(cfg, err, sizeof(err)) < 0) {
        fetch_stop();
        goto fail_store;
    }
    sigwait(&set, &sig);
    log_info("signal %d: draining (grace period %llds)", sig, (long long)cfg->grace_period);
    http_drain(cfg->grace_period);
    fetch_stop();
    http_stop();
    store_close();
    log_info("stopped");
    return 0;
fail_store:
    store_close();
fail:
    fprintf(stderr, "arca: %s\n", err);
    return 1;
}

int main(int argc, char **argv)
{
    static struct config cfg;
    char err[CONFIG_ERR_LEN];

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
    return serve(&cfg);
}
