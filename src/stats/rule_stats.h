/*
 * rule_stats.h — what each rule's URLs did: fetch requests, hits and body bytes served, by the
 * name of the rule that applied (/metrics: arca_rule_requests_total{rule="NAME"}, ...). A rule a
 * SIGHUP removes keeps its counts until restart; one it adds starts at 0. Rule names are
 * 1-63 letters, digits, '.', '_' or '-' (config_rules.c), so they are label values as they are.
 *
 * Contract: rule_stats_count() is called once per fetch request under a rule (a worker thread,
 * at its end); it writes only the calling thread's cells, as latency.h does, and takes this
 * module's lock only the first time a name is seen (at most RULE_STATS_MAX names; later ones
 * are counted under "(other)"). rule_stats_metrics() may run on any thread at any time.
 */
#ifndef ARCA_RULE_STATS_H
#define ARCA_RULE_STATS_H

#include "base/buf.h"

#include <stdbool.h>
#include <stdint.h>

#define RULE_STATS_MAX 256

/* A request under rule `rule` ("" none: not counted) ended; `hit`: a HIT (a fresh copy from
 * disk, as arca_requests_total{result="hit"} counts them). */
void rule_stats_count(const char *rule, bool hit, int64_t bytes);
/* The families arca_rule_requests_total, arca_rule_hits_total and arca_rule_served_bytes_total,
 * one sample per rule seen, appended to `b`. */
void rule_stats_metrics(struct buf *b);

#endif
