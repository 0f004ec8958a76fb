/*
 * source.h — where a download's bytes come from: one ordered list of sources, each of a kind
 * (source_parent.c: its parent arca; source_mirror.c: its mirrors; source_registry.c: a container
 * registry arca mirrors; source_origin.c: the URL itself), the list built from the terms by the
 * one table of kinds (source_list.c) and walked in order. Each kind brings its hooks: whether it
 * joins a download (its record made), whether it is asked, what it adds to a request, its
 * timeouts, how it reads and judges an answer or an end (its fault, the URL's, or none), whether
 * its digest vouches for the bytes, who its failures name, and its record's release. The download's
 * core (transfer_course.c, transfer_answer.c) calls the hooks of the source it asks now and names
 * no kind; a hook a kind has no use for is NULL (the core does nothing). This header names no
 * kind's record either: each kind owns its own (sources.rec), made by its `join`, freed by its
 * `release`. A fill's pieces and a probe ask a source through what the download's kind gives them
 * (fill_settings, probe.h's struct probe_source), so neither names a kind.
 *
 * Moving on to the next source is one event: source_move_on (the source failed the download
 * in a way that is its own, never the URL's), the download's move back to SOURCE (transfer.h).
 * Upstream thread only; a struct sources belongs to one download (struct transfer's `src`).
 */
#ifndef ARCA_SOURCE_H
#define ARCA_SOURCE_H

#include "upstream/download.h"
#include "upstream/upstream_response.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <stdint.h>

struct transfer;
struct fill_settings;

/* Why the core moves a download on from its source (the kind says how it counts it). */
enum source_end {
    SOURCE_HELD,    /* its host is held down: no attempt went */
    SOURCE_CHANGED, /* the object changed under a parallel fill */
    SOURCE_DIGEST,  /* its bytes are not the digest their URL names (they are dropped) */
};

struct source_kind {
    const char *name; /* as failures say who failed them: "parent", "upstream" */
    /* Who failed, as its failures name it when its `name` says too little (a registry's
     * "registry NAME:"), into out[size] (FAILURE_WHO_MAX). */
    void (*who)(const struct transfer *t, char *out, size_t size);
    const char *from; /* where its bytes come from, as the access log says a miss's */
    /* Whether the download `t` has a source of this kind (its terms say): 1, its record made in
     * *rec (NULL when it needs none); 0 not (nothing made); -1 out of memory. */
    int (*join)(struct transfer *t, void **rec);
    /* Its record goes with the download (never NULL when `join` makes one). */
    void (*release)(void *rec);
    /* An attempt of its is about to start: nothing judged of it yet. */
    void (*attempt_begins)(struct transfer *t);
    /* The object's URL changed (a new version's): what its logs show. */
    void (*renamed)(void *rec, const char *url);
    /* SOURCE: whether this source is asked (*next: ATTEMPT, PROBING or FAILED); false: it is
     * passed over, the next in the list is asked. */
    bool (*choose)(struct transfer *t, enum transfer_state *next);
    /* PROBING is over (a probe chose among its sources): ATTEMPT or FAILED. */
    enum transfer_state (*chosen)(struct transfer *t);
    /* What it adds to a request beside the URL, appended to *headers (-1: out of memory). */
    int (*headers)(const struct transfer *t, struct curl_slist **headers);
    /* The attempt's redirects, timeouts and certificate. Never NULL. */
    void (*timeouts)(struct transfer *t);
    /* A status line begins a response of its (NUL-terminated, no CRLF). */
    void (*status_line)(struct transfer *t, const char *line);
    /* A header line of its answer (`whole`: it fitted the copy): true when the line is its
     * own and the core reads nothing of it. */
    bool (*header)(struct transfer *t, const char *line, bool whole);
    /* A trailer line, after a chunked body. */
    void (*trailer)(struct transfer *t, const char *line);
    /* Its answer's headers are in, before the core reads them: -1 ends the attempt (by its
     * fault, t->src.fault and t->src.why set). */
    int (*answer)(struct transfer *t);
    /* The verdict on its answer is a lie of its own (t->src.fault set): the attempt ends. */
    bool (*lied)(struct transfer *t, const struct verdict *v);
    /* Whether its 2xx confirms a signed URL (rules/grants.h). */
    bool confirms_grants;
    /* Whether it gives an object whose origin had no strong ETag its sha256 as ETag once its
     * copy is complete: a resume of its bytes is on their date (struct attempt's on_date). */
    bool tags_its_copy;
    /* The validators kept with its body beside its own answer's (`h`, the core's reading). */
    void (*describe)(const struct transfer *t, struct upstream_headers *h);
    /* The object's freshness as it says it, before readers wake to its headers or its 304, or
     * its refusal is told (a kept 404 is as old as the source's). */
    void (*freshness)(struct transfer *t);
    /* A refusal (`status`) in its own words, not the origin's: the status the download fails
     * with, `reason` written (0: none of its own, the origin's status and reason stand); *said
     * true when the log already said it once (a login refused): the failure's line is debug. */
    int (*refusal)(struct transfer *t, int status, char *reason, size_t size, bool *said);
    /* Why its body cannot be split into ranges (NULL: it can, as far as it goes). */
    const char *(*no_fill)(const struct transfer *t);
    /* What a parallel fill's ranges need of it. */
    void (*fill_settings)(struct transfer *t, struct fill_settings *settings);
    /* Body bytes came: whether they run past the length it said (a lie: the attempt ends). */
    bool (*overran)(struct transfer *t, size_t len);
    /* The attempt ended (ENDED): true when its end was this source's to judge and the
     * download moves on (*next: SOURCE, OPENING, FAILED; SOURCE without source_move_on asks
     * the same source again from its `choose`). */
    bool (*judge_end)(struct transfer *t, enum transfer_state *next);
    /* Its bytes are all in, their sha256 `digest`: whether its own digest vouches for them
     * (false: *next, another source's turn or FAILED). */
    bool (*vouches)(struct transfer *t, const uint8_t digest[32], enum transfer_state *next);
    /* Whether the download may move on from it (source_move_on) now, for `end`. */
    bool (*may_move_on)(const struct transfer *t, enum source_end end);
    /* It failed the download (`end`, `why`): what it drops, the next source's turn. */
    enum transfer_state (*move_on)(struct transfer *t, enum source_end end, const char *why);
};

#define SOURCES_MAX 4

/* A download's sources, and what the one asked now said of its last attempt. */
struct sources {
    const struct source_kind *list[SOURCES_MAX];
    void *rec[SOURCES_MAX];             /* each one's own record (its kind's join and release) */
    int n, at;                          /* the list, and the one asked now (list[at]) */
    const struct source_kind *kind;     /* list[at] */
    void (*chosen)(struct transfer *t); /* the course's event: PROBING is over */
    /* why the source asked now failed the attempt under way, in its own words ("": it did not,
     * or says nothing of its own) */
    char why[320];
};

/* The sources of `t` (its terms': a parent, mirrors, the registry or the origin), the first to
 * be asked: 0, or -1 out of memory (the download fails). */
int source_list_init(struct transfer *t);
/* The record of the source asked now (its kind's). */
static inline void *source_own(const struct sources *s)
{
    return s->rec[s->at];
}
/* The attempt of download `t` about to start: nothing judged of it yet. */
static inline void source_attempt_begins(struct transfer *t, struct sources *s)
{
    s->why[0] = '\0';
    if (s->kind->attempt_begins)
        s->kind->attempt_begins(t);
}
/* The next source in the list is asked from now (the last stays). */
static inline void source_next(struct sources *s)
{
    if (s->at + 1 < s->n)
        s->kind = s->list[++s->at];
}
/* The object's URL changed (a new version's): what logs show. */
static inline void source_rename(struct sources *s, const char *url)
{
    for (int i = 0; i < s->n; i++)
        if (s->list[i]->renamed && s->rec[i])
            s->list[i]->renamed(s->rec[i], url);
}
void source_list_free(struct sources *s);

/* SOURCE: the first source in the list from here that is asked. */
enum transfer_state source_choose(struct transfer *t);
/* Whether the download may move on from its source now, for `end`, and the move (SOURCE,
 * OPENING for a new version's file, FAILED). */
bool source_may_move_on(const struct transfer *t, enum source_end end);
enum transfer_state source_move_on(struct transfer *t, enum source_end end, const char *why);

/* source_origin.c: the origin's redirects and timeouts (the options'), no certificate; a
 * mirror's are the same. */
void source_default_timeouts(struct transfer *t);

/* The kinds (source_list.c's table). */
extern const struct source_kind source_parent, source_mirror, source_registry, source_origin;

#endif
