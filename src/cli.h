/*
 * cli.h — the client commands: status, prefetch, purge (against a running arca, --server URL),
 * cluster-status (against several, --server URL each: docs/CLUSTER.md). check-config is main.c's:
 * it runs serve's own start-up checks.
 *
 * --server takes http://HOST[:PORT][/PATH], https://..., or HOST[:PORT] (http); trailing
 * slashes are dropped. Each command takes only its own options and URLs (README, "Client
 * commands"): anything else is bad usage.
 *
 * Contract: runs in its own process before anything else; prints results on stdout, one-line
 * errors on stderr; returns the exit code: 0 done, 1 refused or failed (prefetch --wait: a
 * download that failed or did not end in time), 2 bad usage.
 */
#ifndef ARCA_CLI_H
#define ARCA_CLI_H

#include <stdbool.h>

/* True when argv[1] names one of the commands above. */
bool cli_is_command(const char *name);
int cli_main(int argc, char **argv);
/* `arca` alone: the synopsis on stderr; returns 2. */
int cli_usage(void);

#endif
