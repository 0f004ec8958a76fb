/*
 * mirror.h — where a download is fetched from: a --mirror's URL or the origin.
 *
 * Contract: upstream thread only. A download's struct mirror_pick lists the mirrors its terms
 * name (rules/terms.h: the --mirror rule its URL without credentials matches, each mirror's URL
 * made by terms_source_url; mirror_find); mirror_pick() then asks each in turn with a one-byte
 * probe (probe.h), the origin first when the URL carried credentials (a signature, userinfo, a
 * token), and settles on the first mirror that answers 2xx (with the origin's length, when it said
 * one), else on the origin. A mirror that did not answer at all is held as a mirror (hosts.h:
 * passed over by every download for HOSTS_MIRROR_HOLD_MS; its questions meanwhile refused at
 * once by the one question, easy_go). The origin refusing a URL with credentials ends the
 * choice with its status (`refused`). While stopping, an answer is dropped and `picked` never
 * runs: the loop ends the download itself.
 */
#ifndef ARCA_MIRROR_H
#define ARCA_MIRROR_H

#include "upstream/easy.h"
#include "upstream/upstream_response.h"
#include "rules/terms.h"

#include <stdbool.h>
#include <stdint.h>

struct mirror_pick {
    struct upstream_loop *loop;
    const char *url;   /* the object's: what logs show */
    const char *asked; /* the client's URL, whole */
    /* the registry whose pull API `asked` is (its terms': the origin's probe asks it so) */
    const struct registry_ask *registry;
    int64_t grant_until; /* > 0: a signed URL, remembered as accepted once the origin says 2xx */
    char **mirrors;      /* where to ask first, in order; the origin after them */
    int n_mirrors, next_mirror;
    bool origin_first; /* a URL with credentials: the origin must accept it before a mirror */
    /* What the origin said when asked before the mirrors: the validators the object keeps
     * though a mirror sends the bytes (a signed URL's hits are confirmed with the origin, which
     * knows nothing of a mirror's ETag), and the length a mirror must have. */
    bool origin_said;
    char origin_etag[HEADER_ETAG_MAX], origin_date[HEADER_DATE_MAX];
    int64_t origin_total;
    /* The choice, once made: */
    const char *source; /* `asked`, or one of `mirrors` */
    int refused;        /* > 0: the origin refused the URL: fail with this status and `reason` */
    char reason[96];
    /* Runs when the choice was made after a probe (mirror_pick returned 1). */
    void (*picked)(struct mirror_pick *m);
};

/* The mirrors `terms` name for m->asked (none when no rule matches, or out of memory: the
 * origin serves). */
void mirror_find(struct mirror_pick *m, const struct fetch_terms *terms);
/* 0: chosen now (m->source, m->refused); 1: a probe is out, m->picked runs with the choice. */
int mirror_pick(struct mirror_pick *m);
void mirror_free(struct mirror_pick *m);

#endif
