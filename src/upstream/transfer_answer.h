/*
 * transfer_answer.h — the transfer itself, under its course (transfer_course.c: steps and events):
 * an attempt's answer (what its headers decide, its bytes hashed and appended), how a download
 * fails or starts over, and the connections it holds. transfer_course.c and the kinds of source
 * (source.h) call down into this; nothing here calls transfer_course.c or names a kind. Upstream
 * thread only, as transfer.h says.
 */
#ifndef ARCA_TRANSFER_ANSWER_H
#define ARCA_TRANSFER_ANSWER_H

#include "upstream/transfer.h"

/* transfer_answer.c */
/* The attempt about to start (its record begun afresh: struct attempt), its request: what its
 * source adds, a resume's range or a revalidation's conditions, its source's timeouts and
 * `left` ms for the whole of it (-1: out of memory). */
int transfer_prepare_attempt(struct transfer *t, int64_t left);
/* The connections it holds to its host now (--max-downloads-per-host): its own but while it
 * backs off (a download waiting out a backoff holds no slot), and its fill's (fill.h). */
int transfer_holds(const struct transfer *t);
/* The connections all downloads hold to its host now (transfer_holds). */
int transfer_host_connections(const struct transfer *t);
/* The download fails with `status` and `reason`, told to its clients (once), an error line in
 * the log. */
void transfer_fail(struct transfer *t, int status, const char *reason);
/* The same, for a reason the log said once where it was found (a login refused, a registry's
 * hold begun: every download meeting it meanwhile would repeat it): a debug line. */
void transfer_fail_said(struct transfer *t, int status, const char *reason);
/* The object's own failure (the store refused a step): its clients know already. */
void transfer_fail_as_object(struct transfer *t);
/* Its fill is over: retired (fill.h), its bytes counted as the download's. */
void transfer_drop_fill(struct transfer *t);
/* The attempt's answer comes to transfer_header and transfer_body (curl's callbacks). */
void transfer_hear_answer(struct transfer *t);
/* The bytes kept are dropped: the next attempt asks from byte 0. Returns 0 (the same object,
 * emptied), 1 (a new version, waiting for its file) or -1 (the download failed). */
int transfer_start_over(struct transfer *t, int64_t length, const struct upstream_headers *h,
                        const char *why);
/* The bytes and headers a source gave go (only it vouched for them: its move on): nothing given,
 * the same object (0); else a new version (1, waiting for its file; its readers cut, the old one
 * not a failed download: store_new_version); -1 the download failed. */
int transfer_start_afresh(struct transfer *t, const char *why);
/* transfer_start_afresh, as the state the download takes next: SOURCE (the same object, asked
 * again from its source), OPENING (a new version, once its file exists) or FAILED. */
enum transfer_state transfer_afresh_state(struct transfer *t, const char *why);
/* A source that failed the download leaves it: the next in its list asks the client's URL, with
 * retries of its own (a source's move_on, before what it drops). */
void transfer_leave_source(struct transfer *t);

#endif
