/*
 * index.h — the SQLite index: one row per object, plus the persistent counters, the hourly
 * traffic (hours) and the failures remembered for the listings (failures).
 *
 * Contract: touched by one thread at a time — main while starting (store_open) and after the
 * persistence thread has stopped (store_close), the persistence thread (persist.h) in between;
 * the integrity check, the loading of the complete rows and index_find_row run on connections
 * of their own (index_rows.c).
 * Beside it, the usage journal (usage_log.h) holds what hits change of a row.
 * WAL mode, synchronous=NORMAL: a crash loses at most the last commits, never consistency. A row
 * says 'fetching' while its file is being written and 'complete' only after the file was fsynced.
 * On start a 'fetching' row is trusted only as far as it says: the loader's `partial` callback
 * takes one up when its file still holds the bytes recorded as synced (store_resume.c), and
 * continues it from there; every other 'fetching' row is deleted, with its file (`discard`).
 */
#ifndef ARCA_INDEX_H
#define ARCA_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "persist/index_row.h"

/* What index_open does with the rows of downloads that never finished. */
struct index_loader {
    /* Each such row: true when the caller takes it up again (it resumes from the partial
     * file), false to have it dropped. */
    bool (*partial)(const struct index_row *row, void *arg);
    /* Each partial row not taken up, once the check has passed: the caller deletes the partial
     * file; the row is deleted after. */
    void (*discard)(const char *key, void *arg);
    void *arg;
};

/* Open (or create) the index at `path`: its schema, its check, and its unfinished rows to
 * `load`. The check reads every page (0.4 s at a million rows): it runs here unless the file is
 * as a clean close left it (index_close marks it), and then after the rows
 * (index_check_deferred).
 * The complete rows are left for index_load_rows. Returns 0; INDEX_CORRUPT (the index is closed:
 * the caller moves it aside and drops what it was given); or -1 with err filled. */
int index_open(const char *path, const struct index_loader *load, char *err, size_t errlen);
/* Whether the objects table has any row (main, after open): the load's to read. */
bool index_has_rows(void);
/* A check after start found the index damaged: the next start moves it aside. */
void index_distrust(void);
/* Deletes the complete rows no load can take (index_row_usable: a key that is not 64 lowercase
 * hex digits, no digest): never served, they would keep the index's count of complete rows
 * from matching the objects' (index_image.h). Persistence thread; a scan of the table. */
int index_forget_unusable(void);
/* Closes the index; marked clean when the last connection closed whole. */
void index_close(void);

/* A download begins: its row says 'fetching', with the URL fetched. */
int index_mark_fetching(const char *key, const char *url, const char *source);
/* Its body began: what a restart needs to resume it (row.source and row.digest unused), its
 * terms, and nothing synced yet. */
int index_mark_started(const struct index_row *row);
/* A later request's terms changed the download's (row.key and the terms' fields used). */
int index_set_keep(const struct index_row *row);
/* The first `synced` bytes of its partial file are on disk. */
int index_set_synced(const char *key, int64_t synced);
int index_mark_complete(const struct index_row *row);
int index_delete(const char *key);

/* Writes batched in one transaction; the commit writes the usage journal's buffered records
 * first (usage_log.h). */
int index_begin(void);
int index_commit(void);
/* What lookups change of a complete object: its use, its ttl (shortened), and its terms (the
 * pin and the stale windows: row.key, last_use, usage, ttl, pinned, keep_if_error and
 * keep_while used). A record of the usage journal, not its row (usage_log.h says why): the
 * loads read rows through the journal. A row written whole or deleted drops what it said. */
int index_touch(const struct index_row *row);

int index_counter_get(const char *name, int64_t *value);
int index_counter_set(const char *name, int64_t value);
/* Each counter whose name starts with `prefix`, to `each` (a family of counters whose names
 * are not known in advance: a parent's, named by its URL). */
void index_counters_each(const char *prefix,
                         void (*each)(const char *name, int64_t value, void *arg), void *arg);

/* Traffic per hour (hour = Unix time / 3600), for the statistics page. */
struct index_hour {
    int64_t hour, served, downloaded, requests, hits;
};
int index_hour_set(const struct index_hour *h);
int index_hours_forget(int64_t before);
int index_hours_load(int64_t since, void (*each)(const struct index_hour *h, void *arg), void *arg);

/* A download that failed, for the failures listing; the last `keep` are kept. */
struct index_failure {
    const char *key, *url;
    int status;
    const char *reason;
    int64_t length, have, created, failed, usage;
};
int index_failure_add(const struct index_failure *f, int keep);
int index_failures_load(int keep, void (*each)(const struct index_failure *f, void *arg),
                        void *arg);

/* What a registry's manifests prove a repository has (reg_links.h): one row per blob or
 * manifest digest a checked manifest of `repo` at the registry whose URL is `registry` lists,
 * or the registry confirmed for it. Added once (a row already there is left as it is). */
int index_link_add(const char *registry, const char *repo, const uint8_t digest[32]);
/* Each link kept, to `each` (main, at start). */
int index_links_each(void (*each)(const char *registry, const char *repo, const uint8_t digest[32],
                                  void *arg),
                     void *arg);

#endif
