/*
 * transfer.h — one upstream download as a state machine, over one or more attempts.
 *
 * Contract: upstream thread only (upstream_on_thread()). A transfer is one of the states below;
 * transfer_step() runs the step function of each state that has work to do until the transfer
 * waits for an event (its file, a probe's answer, curl, a timer) or is over; every event
 * function checks the transfer is in the state that waits for it. One function moves it, and
 * asserts every move is one of the table below (transfer_may_move); the moves a fill's news
 * makes (fill.h: another version, the store refusing a piece) are drawn too, and
 * transfer_stop ends a transfer from any state but DONE (FAILED). The states:
 *
 *   OPENING  the persistence thread makes its file and row      -> SOURCE, FAILED
 *   SOURCE   its parent (once: parent.h), else choose a mirror  -> PROBING, ATTEMPT, FAILED
 *            or the origin (mirror.h)
 *   PROBING  a mirror's or the origin's probe is out            -> ATTEMPT, FAILED
 *   ATTEMPT  one more request: a resume's Range, or from byte 0 -> ASKING, OPENING, FAILED
 *   ASKING   in the multi handle: headers decide, bytes append  -> ENDED; a fill's news:
 *                                                                 ATTEMPT, OPENING, FAILED
 *   ENDED    the attempt ended: finish, start over, back off    -> DONE, ATTEMPT, OPENING,
 *                                                                 BACKOFF, FILLING, FAILED
 *   FILLING  its own range is in, its fill's others come (fill.h) -> DONE, ATTEMPT, OPENING,
 *                                                                 FAILED
 *   BACKOFF  a retry's timer (the loop's timer heap), then a     -> ATTEMPT; a fill's news:
 *            slot on its host: it holds none meanwhile            OPENING, FAILED
 *
 * Besides, a download asking its parent that fails by the parent's fault (no answer, its own
 * failure, a cut, a lie, a digest that does not match) moves from ATTEMPT, ASKING, ENDED,
 * FILLING or BACKOFF back to SOURCE (or OPENING, a new version's file first): the origin's turn
 * (transfer_parent.c).
 *   DONE     finished, renewed (304) or set aside: released and freed
 *   FAILED   store_fail() has told its clients: released and freed
 *
 * Everything it asks of the object goes through a struct transfer_store (transfer_store_real
 * points at store.h's functions; units record the calls). stats.downloads_active counts a
 * transfer from its start until its last attempt ends (backoffs included): in every state but
 * ENDED, DONE and FAILED. A transfer links itself into loop->active and unlinks itself when it
 * is freed. Its requests obey what every upstream request does (easy.h: the host hold, the
 * uplink cap, the report of its end), and it reads its terms (rules/terms.h: fill settings,
 * sources), never the configuration's globals for them.
 */
#ifndef ARCA_TRANSFER_H
#define ARCA_TRANSFER_H

#include "upstream/download.h"
#include "upstream/easy.h"
#include "store/store.h"
#include "rules/terms.h"

#include <openssl/evp.h>
#include <stdbool.h>
#include <stdint.h>

struct transfer;

/* A download of `obj` (whose reference it takes) from `source` (which it takes over) under
 * `terms` (copied), its file asked of the persistence thread: OPENING. NULL when it could not
 * start (the object failed and was released). */
struct transfer *transfer_new(struct upstream_loop *loop, const struct transfer_store *st,
                              struct object *obj, char *source, int64_t grant_until,
                              const struct bucket_auth *auth, const char *host,
                              const struct fetch_terms *terms);
/* Whether the table above has a transfer move from `from` to `to`. */
bool transfer_may_move(enum transfer_state from, enum transfer_state to);
/* The Via the first client's request came with (taken over), sent before arca's own on every
 * attempt, so that a loop through other proxies comes back with arca's (508). Before the first
 * attempt starts. */
void transfer_set_via(struct transfer *t, char *via);
/* It started without a download slot (its host held down): it is never its host's probe, so an
 * attempt at a host whose probe is due is refused at once too (hosts_admit). Before the first
 * attempt starts. */
void transfer_set_no_probe(struct transfer *t);
/* The loop's look after a wake-up: an OPENING transfer whose file is made goes on. The
 * transfer may be freed on return. */
void transfer_poll_file(struct transfer *t);
/* The loop's look after a wake-up: a BACKOFF transfer whose timer is over and whose host has
 * a slot now (it held none while it backed off) makes its next attempt. It may be freed on
 * return. */
void transfer_poll_retry(struct transfer *t);
/* curl ended the attempt of the transfer whose handle this is; it may be freed on return. */
void transfer_attempt_ended(struct handle *h, CURLcode rc);
/* Readers learn of this pass's bytes at once (store_announce); returns the monotonic ms by
 * which to call it again (a reader is held), or 0. */
int64_t transfer_announce(struct transfer *t);
/* arca stops: the download fails (nothing kept yet) or is set aside for the next start; freed. */
void transfer_stop(struct transfer *t);

/* Once a second: the bytes a second it took from upstream since the last call, and over how
 * many connections, for its listing (store_set_rate). */
void transfer_measure(struct transfer *t);
/* Connections it holds to its host now: its own (none while it backs off), and its fill's
 * (fill.h). */
int transfer_connections(const struct transfer *t);

enum transfer_state transfer_state_of(const struct transfer *t);
const char *transfer_host(const struct transfer *t);
struct transfer *transfer_next(const struct transfer *t);
CURL *transfer_easy(const struct transfer *t);
/* The request headers of the attempt under way (a resume's Range, a revalidation's conditions). */
const struct curl_slist *transfer_request_headers(const struct transfer *t);

/* What curl's callbacks hand over, one header line or a run of body bytes: the return is what
 * curl is told (a length other than `len` ends the attempt). */
size_t transfer_header(struct transfer *t, const char *data, size_t len);
size_t transfer_body(struct transfer *t, const char *data, size_t len);

#endif
