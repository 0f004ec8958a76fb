/*
 * source.h — where a download's bytes come from: one ordered list of sources, its parent arca
 * first when its terms name one (source_parent.c), then its mirrors (source_mirror.c), then the
 * origin (source_origin.c), or instead of the origin a registry's URL (source_registry.c:
 * a container registry arca mirrors, registries.h); room for more kinds. source_list.c builds the
 * list from the terms (the one file that names the kinds) and walks it. Each source is of a kind
 * that brings its own hooks: whether it is asked, what it adds to a request, its timeouts, how it
 * reads and judges an answer or an end (its fault, the URL's, or none), whether its digest vouches
 * for the bytes. The download's core (transfer_course.c, transfer_answer.c) calls the hooks of the
 * source it asks now and names no kind; a hook a kind has no use for is NULL (the core does
 * nothing).
 *
 * Moving on to the next source is one event: source_move_on (the source failed the download
 * in a way that is its own, never the URL's), the download's move back to SOURCE (transfer.h).
 * Upstream thread only; a struct sources belongs to one download (struct transfer's `src`).
 */
#ifndef ARCA_SOURCE_H
#define ARCA_SOURCE_H

#include "upstream/download.h"
#include "upstream/mirror.h"
#include "upstream/parent.h"
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
    const char *from; /* where its bytes come from, as the access log says a miss's */
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
    /* The object's freshness as it says it, before readers wake to its headers or its 304. */
    void (*freshness)(struct transfer *t);
    /* A refusal (`status`) in its own words, not the origin's: the status the download fails
     * with, `reason` written (0: none of its own, the origin's status and reason stand). */
    int (*refusal)(struct transfer *t, int status, char *reason, size_t size);
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

/* What a registry's answer said (source_registry.c's record; what its URL asks is the terms':
 * terms.h's `registry`). */
#define REGISTRY_MANIFEST_MAX (4 << 20) /* a manifest longer is refused, never kept */
struct registry_pull {
    bool head;         /* this attempt asks HEAD: a revalidation */
    bool head_changed; /* its HEAD said another digest: the next attempt GETs */
    char said[72];     /* the answer's Docker-Content-Digest, "sha256:<hex>" ("" none) */
    char etag[76];     /* `said` quoted: the ETag its manifest is kept under */
    char *fill_line;   /* its Authorization, for a parallel fill's ranges (NULL none) */
    /* PROBING: its authorisation is asked (reg_auth_ensure), and what came of it */
    bool waiting, in_choose;
    int auth_status;
    char auth_why[300];
    bool reauthed; /* a 401 had its token dropped and asked again (once a download) */
    bool again;    /* ... this attempt's: the next source step asks for a new one */
};

/* A download's sources, and what the one asked now said of its last attempt. */
struct sources {
    const struct source_kind *list[SOURCES_MAX];
    int n, at;                          /* the list, and the one asked now (list[at]) */
    const struct source_kind *kind;     /* list[at] */
    void (*chosen)(struct transfer *t); /* the course's event: PROBING is over */
    /* The parent's own record (source_parent.c): what is asked, what was believed. */
    struct parent_ask parent;
    bool parent_planned; /* parent_plan ran (once, at its first SOURCE) */
    /* The mirrors' own record (source_mirror.c): the mirrors and the origin's word first. */
    struct mirror_pick pick;
    /* A registry's own record (source_registry.c). */
    struct registry_pull reg;
    /* How the source failed the attempt under way (< PARENT_FAULTS; PARENT_FAULTS: not) and
     * whether its fault is the URL's it relays (its upstream's failure), in `why`'s words. */
    enum parent_fault fault;
    bool relayed;
    char why[320];
};

/* The sources of `t` (its terms': a parent, mirrors, the origin), the first to be asked. */
void source_list_init(struct transfer *t);
/* The attempt about to start: nothing judged of it yet. */
static inline void source_attempt_begins(struct sources *s)
{
    s->why[0] = '\0';
    s->fault = PARENT_FAULTS;
    s->relayed = false;
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
    s->pick.url = url;
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

extern const struct source_kind source_parent, source_mirror, source_origin, source_registry;
/* The parent's judgements, pure (their units: tests/unit/test_source.c). */
struct attempt;
/* The parent's fault in an attempt that ended as `a` says (transfer.h): none (PARENT_FAULTS)
 * when it brought what it asked; else a retryable status (PARENT_STATUS), an answer that did
 * not continue the bytes kept (PARENT_LIE), a cut body (PARENT_CUT), or no answer
 * (PARENT_REFUSED). */
enum parent_fault source_parent_end_fault(const struct attempt *a);
/* Whether fault `f` is the parent's own, counting toward holding it down: a digest (not after
 * a resume `on_date`: the kept bytes may be another version's), a lie, its own failure status
 * or silence (not `relayed`, its upstream's failure); never a cut, a loop, its hold,
 * credentials, nor what any client can bring about with a URL. */
bool source_parent_own_fault(enum parent_fault f, bool relayed, bool on_date);
/* Whether a parent's `status` relays its upstream's verdict on the URL: a 4xx, an object too
 * large for it, a 5xx carrying a Cache-Status (but 507, its own disk). */
bool source_parent_relays(long status, bool too_large, bool cache_status);
/* Whether verdict `v` on a parent's answer `status` is a lie: another version or range while
 * resuming (`offset` > 0), a 304 unasked (not `conditional`), a failure not a 4xx or 5xx. */
bool source_parent_lie(const struct verdict *v, long status, bool conditional, int64_t offset);

/* mirror.h's `picked`: the mirrors' probe chose (the course's event, sources.chosen). */
void source_mirror_picked(struct mirror_pick *m);

/* The registry's judgements, pure (their units: tests/unit/test_source_registry.c). */
struct registry_ask;
/* Whether a HEAD's `said` Docker-Content-Digest is the manifest kept under ETag `kept`. */
bool source_registry_unchanged(const char *kept, const char *said);
/* Whether a 2xx to the HEAD revalidating the copy of what `a` asks (kept under ETag `kept`; the
 * HEAD said `said`) renews it: a digest's always (its bytes cannot change), a tag's when its
 * digest is unchanged. */
bool source_registry_renews(const struct registry_ask *a, const char *said, const char *kept);
/* Whether bytes of sha256 `digest` are what a tag's answer said of them (`said`, its
 * Docker-Content-Digest, "" none): NULL, or why not. The digest a URL names is checked by the
 * core, whatever source brought the bytes (transfer.h). */
const char *source_registry_vouch(const struct registry_ask *a, const char *said,
                                  const uint8_t digest[32]);

#endif
