/*
 * routes.h — what arca serves: the route table handed to http_start() (http.h).
 *
 * Contract: one table, data only, assembled here above http/ and web/: the server (http.c)
 * names no handler and no page, and web/ is reached only through this table. Routes are
 * matched in order by http_route_match(); the last matches every path, so every URL gets an
 * answer: a remote's path (remote.h), else 404 for GET and HEAD, 405 for other methods. Constant:
 * any thread.
 */
#ifndef ARCA_ROUTES_H
#define ARCA_ROUTES_H

#include "http/http.h"

/* The table, ended by a route whose path is NULL. */
extern const struct route routes[];

/* Whether `name` is the first path segment of one of arca's own routes ("api", "v2", "browse",
 * "static", "metrics", ...): a remote of that NAME (remote.h, the last route) would never be
 * reached, so start and check-config refuse it. */
bool routes_name_taken(const char *name);

#endif
