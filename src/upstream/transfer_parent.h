/*
 * transfer_parent.h — a download and its parent arca (parent.h says what is asked of a parent
 * and what is believed), above the transfer itself (transfer_answer.h) and below its course
 * (transfer.c): whether the parent is asked, whether an attempt's end is the parent's fault,
 * whether its bytes are vouched for by its digest, and the fall back to the origin. What the
 * parent's answer's headers decide is transfer_answer.c's. Upstream thread only.
 */
#ifndef ARCA_TRANSFER_PARENT_H
#define ARCA_TRANSFER_PARENT_H

#include "upstream/transfer_answer.h"

/* What a parent is asked beside the URL, appended to *headers (-1: out of memory): its digest
 * (Want-Repr-Digest), the download's own terms as a request's Cache-Control (API.md, "Request
 * headers"), and on a first attempt a Range from byte 0 (parent.h). */
int transfer_parent_headers(const struct transfer *t, struct curl_slist **headers);
/* Whether the download asks its parent first (*next: ATTEMPT; FAILED when --parent-only forbids
 * the origin and the parent may not be asked). At its first SOURCE. */
bool transfer_ask_parent(struct transfer *t, enum transfer_state *next);
/* Whether fault `f` of the download's parent is the parent's own, counting toward holding it
 * down: no connection, its own 5xx (no Cache-Status) or 507 (its disk), a lie, a digest (not
 * after a resume on a date: t->on_date, the kept bytes may be another version's). Not
 * what any client can bring about with a URL: a 4xx, an object too large for it (its 507 says
 * detail=too-large), its upstream's failure relayed (a 5xx with a Cache-Status, silence after
 * the request went, a cut), nor a loop, its hold, credentials. */
bool transfer_parent_own_fault(const struct transfer *t, enum parent_fault f);
/* The attempt's redirects, timeouts and certificate: a parent's redirect is never followed, a
 * parent that does not connect or answer is passed over within PARENT_CONNECT_MS or
 * PARENT_STALL_S, and a parent is shown its certificate (parent_show_certificate); the
 * options' for any other source, and no certificate. */
void transfer_parent_timeouts(struct transfer *t);
/* The origin's first bytes did not hash as those the parent sent before it broke off (its
 * body was checked: check_prefix): they go, the download starts afresh from the origin
 * (ATTEMPT, or OPENING for a new version; its clients cut then). */
enum transfer_state transfer_prefix_refused(struct transfer *t);
/* Whether a failure of the parent's sends the download to the origin (not with --parent-only). */
bool transfer_may_fall_back(const struct transfer *t);
/* Whether the attempt that ended in `rc` failed by its parent's fault: *f, t->parent_why. */
bool transfer_parent_fault(struct transfer *t, CURLcode rc, enum parent_fault *f);
/* The download starts over from the origin (SOURCE, or OPENING for a new version's file;
 * FAILED), the parent's bytes and freshness dropped. */
enum transfer_state transfer_fall_back(struct transfer *t, enum parent_fault f, const char *why);
/* The parent's bytes are all in, their sha256 `digest`: true when it is the parent's
 * Repr-Digest; otherwise *next is the origin's turn (or FAILED with --parent-only). */
bool transfer_parent_vouches(struct transfer *t, const uint8_t digest[32],
                             enum transfer_state *next);
#endif
