/*
 * cli.h — the client commands: status, prefetch, purge (against a running arca, --server URL),
 * cluster-status (against several, --server URL each: docs/CLUSTER.md); rules test, which asks
 * no server (cli_rules.h). check-config is main.c's: it runs serve's own start-up checks.
 *
 * --server takes http://HOST[:PORT][/PATH], https://..., or HOST[:PORT] (http); trailing
 * slashes are dropped. cluster-status takes several --server, the others one; with none, each
 * asks http://127.0.0.1:8001. Each command takes only its own options and URLs
 * (docs/COMMANDS.md): anything else is bad usage. Requests say User-Agent: arca/VERSION.
 *
 * Contract: runs in its own process before anything else; prints results on stdout, one-line
 * errors on stderr, naming the server or the URL (redacted) they are about and never another
 * server's page; returns the exit code: 0 done, 1 refused or failed (prefetch --wait: a
 * download that failed or did not end in time; status: a node that is not up, draining
 * included, as HAProxy's health check sees it), 2 bad usage.
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
