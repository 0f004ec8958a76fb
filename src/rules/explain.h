/*
 * explain.h — why a URL is cached as it is: the answer of `arca rules test URL` and of
 * GET /api/v1/rules/?url=, from the same terms_decide() that serving calls, so the two cannot
 * disagree with each other nor with what arca does.
 *
 * Contract: any thread, once the rules are installed (rules_install) and the mirrors compiled
 * (sources_init); policy_init ran (who may fetch). Nothing shared is written. URLs are shown as
 * url_shown() shows them: a secret of the URL never appears in the answer.
 */
#ifndef ARCA_EXPLAIN_H
#define ARCA_EXPLAIN_H

#include "config/config.h"

#include <jansson.h>
#include <sys/socket.h>

/* The answer for `url_given` (any http(s) URL: it is put in normal form; a remote's path on
 * arca, http://cache/NAME/PATH, for the upstream URL it stands for: remote_path.h) from `client`
 * (NULL: no client named: the networks that may fetch are listed instead):
 *   {"url", "key",
 *    "rule": {"name", "file", "line", "match"} or null,
 *    "terms": {"ttl", "client-ttl", "stale-if-error", "stale-while-revalidate", "store", "pin",
 *              "negative-ttl", "max-object-size", "fill-connections", "fill-min-size",
 *              "parent" (its URL or "none"): {"value", "from"}},
 *    "allowed": true/false (null without a client), "client": ADDR or null,
 *    "allowed_from": "rule NAME" | "--allow-network" | "built-in",
 *    "networks": [CIDR...] (without a client: who may fetch; [] nobody),
 *    "sources": [{"url", "kind": "parent"|"mirror"|"origin", "sent": "without credentials"|"the
 *                 URL whole"|..., "from" (a parent's: "--parent"|"rule NAME")}...] in the order
 *                 asked (no origin with --parent-only), "origin_first": bool,
 *    "losers": [{"name", "file", "line", "match"}...] by precedence}
 * Durations are seconds, sizes bytes; "from" is "rule NAME", the option ("--default-ttl"),
 * "ttl=" (the client's) or "built-in"; the stale windows' "note" says the origin's
 * Cache-Control wins when it says one. NULL with one line in err (CONFIG_ERR_LEN) when the URL is
 * not a URL, a remote's path the route would refuse ("remote NAME: 400: ..."), or out of
 * memory. */
json_t *rules_explain(const struct config *cfg, const char *url_given,
                      const struct sockaddr *client, char *err);

#endif
