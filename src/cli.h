/*
 * cli.h — the client commands: status, prefetch, purge (against a running arca, --server URL),
 * cluster-status (against several, --server URL each: docs/CLUSTER.md) and check-config (a
 * config file, offline).
 *
 * Contract: runs in its own process before anything else; prints results on stdout, one-line
 * errors on stderr; returns the exit code: 0 done, 1 refused or failed, 2 bad usage.
 */
#ifndef ARCA_CLI_H
#define ARCA_CLI_H

#include <stdbool.h>

/* True when argv[1] names one of the commands above. */
bool cli_is_command(const char *name);
int cli_main(int argc, char **argv);

#endif
