/*
 * cli_status.h — what `arca status` and `arca cluster-status` read from a node's status JSON
 * (GET /api/v1/status/, docs/API.md) and how `arca status` prints it. Called on the client
 * command's one thread; nothing here asks a server (cli_ask.h does).
 */
#ifndef ARCA_CLI_STATUS_H
#define ARCA_CLI_STATUS_H

#include "base/buf.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* An integer key of the status JSON (0 when absent). */
int64_t cli_json_int(json_t *o, const char *key);
/* KissCache's round(usage / quota * 100), as the status JSON gives it (http_info.c). */
int64_t cli_usage_percent(int64_t usage, int64_t quota);
/* The status JSON in `body`, NULL when it is not arca's (another server's page or JSON). */
json_t *cli_status_json(const struct buf *body);
/* Why `server` gave no status (it answered `status`), into why[len]: said in arca's words,
 * never the body of another server (a web server's HTML page). */
void cli_status_trouble(const char *server, long status, const struct buf *body, char *why,
                        size_t len);
/* The node's state as its health check tells it (HAProxy's view): "up" (200) or "draining"
 * (503: its shutdown file exists, new clients go elsewhere); anything else "down". */
const char *cli_health_state(long health);
/* One parent of the status's "parent.parents" as `arca status` prints it: "URL (FROM): up; 12
 * requests, 7 hits, 1.2 GiB; fell back to the origin 3 times (status 1, down 2)", "DOWN since
 * TIME, N failures in a row" for one held down, "never fell back to the origin" without
 * fallbacks; with --parent-only (`only`) "passed over" instead: such a download never goes to
 * the origin. Into out[size], cut to fit. */
void cli_parent_line(json_t *p, bool only, char *out, size_t size);
/* `arca status`'s summary of the node, `health` its health check's answer. */
void cli_print_status(json_t *s, long health);

#endif
