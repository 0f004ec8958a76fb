/*
 * remotes.h — the remotes arca serves by path (--remote NAME=URL, [remote NAME] sections:
 * docs/REMOTES.md): http://cache/NAME/PATH answers what URL/PATH answers, through the store, the
 * object kept under that upstream URL. Each remote has a kind (files, apt, pypi, go) that says
 * which of its URLs are metadata (remote_kind.h), and counters.
 *
 * Contract: remotes_init() runs once in main before any thread; after it the table is read-only
 * and any thread may look a remote up, by NAME (a request's first path segment) or by an upstream
 * URL (the terms of any request for that URL, whichever route it came by: the fetch API, the
 * proxy, a prefetch, the remote's own path, so that one URL has one freshness). Counters are
 * atomics any thread adds to; they persist across restarts per NAME in the index, as a
 * registry's do (stats.h, struct stats_family).
 */
#ifndef ARCA_REMOTES_H
#define ARCA_REMOTES_H

#include "config/config.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

/* What the status JSON, `arca status`, the pages and /metrics show of a remote. */
struct remote_counters {
    atomic_int_fast64_t requests;    /* requests of its paths, whatever their answer */
    atomic_int_fast64_t hits;        /* 2xx answered from the store without asking upstream */
    atomic_int_fast64_t bytes;       /* body bytes of its 2xx answers */
    atomic_int_fast64_t revalidated; /* 2xx renewed by a 304 to a conditional request */
    atomic_int_fast64_t stale;       /* 2xx from an expired copy (upstream down or slow) */
};
#define REMOTE_COUNTERS 5
/* Each counter by the word the status JSON, the metrics and the index say for it. */
const char *remote_counter_name(int k);
atomic_int_fast64_t *remote_counter(struct remote_counters *c, int k);

struct remote {
    char name[CONFIG_REMOTE_NAME_MAX];
    char url[CONFIG_PARENT_MAX]; /* its base URL, normal form, no trailing '/' */
    size_t url_len;
    enum remote_kind kind;
    char file_hosts[CONFIG_REMOTE_FILE_HOSTS][CONFIG_REGISTRY_NAME_MAX];
    int n_file_hosts;
    struct remote_counters *counters;
};

/* The table from cfg's remotes: 0, or -1 with a one-line reason (two remotes of one URL: an
 * object would have two kinds). */
int remotes_init(const struct config *cfg, char *err, size_t errlen);
/* The remote named `name` (len bytes), NULL when none. */
const struct remote *remotes_find(const char *name, size_t len);
/* The remote whose base `url` (normal form) lies under (its URL, then '/' or the end), the longest
 * when several; NULL when none. */
const struct remote *remotes_of_url(const char *url);
int remotes_count(void);
const struct remote *remotes_at(int i);

/* Main, at start (after the index is open): each remote's counters as last saved. */
void remotes_load_counters(void);
/* Upstream thread, with stats_save: the counters that changed, written to the index. */
void remotes_save_counters(void);

#endif
