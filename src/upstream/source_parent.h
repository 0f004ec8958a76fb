/*
 * source_parent.h — the parent kind of source's record and its pure judgements (source_parent.c;
 * parent.h says what is asked of a parent and what is believed). The record belongs to one
 * download (source.h's sources.rec), made when its terms name a parent, freed with it.
 */
#ifndef ARCA_SOURCE_PARENT_H
#define ARCA_SOURCE_PARENT_H

#include "upstream/parent.h"
#include "upstream/upstream_response.h"

#include <stdbool.h>
#include <stdint.h>

/* What the download asks of its parent and what was believed, and how the parent failed the
 * attempt under way. */
struct parent_source {
    struct parent_ask ask;
    bool planned; /* parent_plan ran (once, at its first SOURCE) */
    /* how it failed the attempt under way (PARENT_FAULTS: it did not), and whether its fault is
     * the URL's it relays (its upstream's failure) */
    enum parent_fault fault;
    bool relayed;
};

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

#endif
