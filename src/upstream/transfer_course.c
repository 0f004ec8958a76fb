/* One upstream download's course (transfer.h): its steps, the table of how an attempt's end
 * moves it, and the events that move it. What an attempt asks and what its answer decides is
 * transfer_answer.c's; what its source adds or judges is its kind's (source.h): this file calls
 * the hooks of the source asked now and names no kind. */
#include "upstream/transfer_answer.h"
#include "registry/reg_links.h"
#include "upstream/hosts.h"
#include "log/log.h"
#include "stats/stats.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const struct transfer_store transfer_store_real = {
    store_begin_file,  store_file_ready,    store_take_prefix,
    store_snapshot,    store_progress,      store_stale_validators,
    store_begin_body,  store_continue_body, store_staleness,
    store_from_parent, store_restart,       store_restart_afresh,
    store_new_version, store_append,        store_write_at,
    store_advance,     store_digest_range,  store_set_rate,
    store_announce,    store_finish,        store_renew,
    store_fail,        store_set_aside,     store_fail_held,
    store_offer_stale, store_keep_stale,    store_release,
    object_url,        object_error,        object_error_status,
    store_came_from,   store_purged_since,  store_read_body,
};

static void transfer_step(struct transfer *t);

/* --- the table of moves ---------------------------------------------------------------------- */

#define TO(s) (1u << (s))
/* The moves transfer.h draws, [from] a set of `to`s. Besides its steps', a fill's news moves a
 * download that asks, backs off or fills (fill_told), and transfer_stop ends one anywhere. */
static const unsigned moves[] = {
    [TS_OPENING] = TO(TS_SOURCE) | TO(TS_FAILED),
    [TS_SOURCE] = TO(TS_PROBING) | TO(TS_ATTEMPT) | TO(TS_FAILED),
    [TS_PROBING] = TO(TS_ATTEMPT) | TO(TS_FAILED),
    [TS_ATTEMPT] = TO(TS_ASKING) | TO(TS_OPENING) | TO(TS_SOURCE) | TO(TS_FAILED),
    [TS_ASKING] = TO(TS_ENDED) | TO(TS_ATTEMPT) | TO(TS_OPENING) | TO(TS_SOURCE) | TO(TS_FAILED),
    [TS_ENDED] = TO(TS_DONE) | TO(TS_ATTEMPT) | TO(TS_OPENING) | TO(TS_BACKOFF) | TO(TS_FILLING) |
                 TO(TS_SOURCE) | TO(TS_FAILED),
    [TS_FILLING] = TO(TS_DONE) | TO(TS_ATTEMPT) | TO(TS_OPENING) | TO(TS_SOURCE) | TO(TS_FAILED),
    [TS_BACKOFF] = TO(TS_ATTEMPT) | TO(TS_OPENING) | TO(TS_SOURCE) | TO(TS_FAILED),
    [TS_DONE] = 0,
    [TS_FAILED] = 0,
};

bool transfer_may_move(enum transfer_state from, enum transfer_state to)
{
    return (size_t)from < sizeof(moves) / sizeof(moves[0]) && (unsigned)to < 32 &&
           (moves[from] & TO(to)) != 0;
}

/* Whether a download in `s` is in progress for stats.downloads_active: from its start until
 * its attempt ends (backoffs, fills, starting over included). It drops as the attempt ends
 * (ENDED), before the object finishes or fails, so a client that has seen the end never finds
 * it still counted. */
static bool in_progress(enum transfer_state s)
{
    return s != TS_ENDED && s != TS_DONE && s != TS_FAILED;
}

/* The one writer of t->state: every move is one transfer.h draws. */
static void move(struct transfer *t, enum transfer_state to)
{
    assert(transfer_may_move(t->state, to));
    if (in_progress(t->state) != in_progress(to))
        atomic_fetch_add(&stats.downloads_active, in_progress(to) ? 1 : -1);
    t->state = to;
}

/* curl's own timer may fire a few ms before ours: the deadline counts as reached then. */
static bool past_deadline(const struct transfer *t)
{
    return t->loop->now_ms() >= t->deadline_ms - 50;
}

/* The download failed upstream (after its attempts): clients are told how many there were and
 * how long they took, with `why`; or, in an outage, the expired version it refreshed answers
 * (store_keep_stale). */
static void fail_upstream(struct transfer *t, int status, const char *why)
{
    char reason[CURL_ERROR_SIZE + 160 + FAILURE_WHO_MAX], who[FAILURE_WHO_MAX];
    if (t->src.kind->who)
        t->src.kind->who(t, who, sizeof(who));
    else
        snprintf(who, sizeof(who), "%s", t->src.kind->name);
    failure_summary(reason, sizeof(reason), who, t->attempts, t->loop->now_ms() - t->started_ms,
                    why);
    if (!t->failed && status_outage(t->a.retry_status) &&
        t->st->keep_stale(t->obj, status, t->a.retry_status, reason, false) == 0) {
        t->failed = true; /* its end is told: its clients take the expired version (or are
                             told, when it is too old), which stays */
        atomic_fetch_add(&stats.refreshes_failed_stale, 1);
        return;
    }
    transfer_fail(t, status, reason);
}

/* The source's host is held (hosts.h): the expired version this download refreshes answers,
 * or its clients are told at once when the host is tried again: 503 held down, 429 held at its
 * upstream's asking (a registry's limit). `fwd_status`: what upstream answered this download,
 * when its own answer held the host (0: it asked nothing). The hold was logged once as it
 * began: each download meeting it says so at debug level only. */
static void held_down(struct transfer *t, const char *why, int retry_after, int fwd_status)
{
    int status = easy_held_status(&t->h);
    if (t->st->keep_stale(t->obj, status, fwd_status, why, true) == 0) {
        atomic_fetch_add(&stats.refreshes_failed_stale, 1);
    } else {
        t->st->fail_held(t->obj, status, why, retry_after);
        atomic_fetch_add(&stats.held_down_failures, 1);
        log_debug("fetch %s: %s", t->url, why);
    }
    t->failed = true;
}

/* STORE_STALE_PATIENCE_MS after the start: a refresh still without an answer lets its readers
 * take the expired version meanwhile (a download refreshing none: nothing happens). */
static void patience_over(void *arg)
{
    struct transfer *t = arg;
    CHECK_TRANSFER(t);
    assert(upstream_on_thread());
    t->st->offer_stale(t->obj, STALE_SLOW, 0);
}

/* The source's name does not resolve: curl's own words add nothing to that. */
static void fail_unresolved(struct transfer *t, const char *host)
{
    char why[300];
    snprintf(why, sizeof(why), "cannot resolve host %s", host);
    fail_upstream(t, 502, why);
}

/* --- its handle, and the bytes it keeps ------------------------------------------------------ */

/* Options that stay the same for every attempt of a download. */
static void setup_easy(struct transfer *t)
{
    easy_setup(&t->h, t->loop, t->h.easy, t->source, &t->flow, t->a.errbuf);
    t->h.outgoing = &t->terms.outgoing; /* a rule's, else --outgoing-address's */
    transfer_hear_answer(t);
}

/* A download taken up after a restart keeps the bytes it has: their digest (computed when the
 * file was reopened) and the validator they were fetched under, for the resume's If-Range. */
static int take_kept(struct transfer *t)
{
    struct object_meta *meta;
    int rc = t->st->take_prefix(t->obj, t->sha);
    if (rc <= 0)
        return rc;
    if (!(meta = malloc(sizeof(*meta))))
        return -1;
    t->st->snapshot(t->obj, meta);
    /* only a body whose Last-Modified was a strong validator is synced for a restart */
    snprintf(t->kept.etag, sizeof(t->kept.etag), "%s", meta->etag);
    snprintf(t->kept.last_modified, sizeof(t->kept.last_modified), "%s", meta->last_modified);
    snprintf(t->kept.encoding, sizeof(t->kept.encoding), "%s", meta->content_encoding);
    free(meta);
    t->resumed_kept = true;
    return 0;
}

/* --- the steps ------------------------------------------------------------------------------ */

/* SOURCE: the first source of its list from here that is asked (source.h): PROBING while a
 * probe chooses among them. */
static enum transfer_state step_source(struct transfer *t)
{
    assert(t->state == TS_SOURCE);
    return source_choose(t);
}

/* PROBING ends: its source chose (a mirror's probe answered, or the origin's). */
static void source_chosen(struct transfer *t)
{
    CHECK_TRANSFER(t);
    assert(upstream_on_thread() && t->state == TS_PROBING);
    move(t, t->src.kind->chosen(t));
    transfer_step(t);
}

static void fail_attempt(struct transfer *t, CURLcode rc);

/* One more attempt is counted (a retry, past the first). */
static void count_attempt(struct transfer *t)
{
    if (t->attempts++ > 0)
        atomic_fetch_add(&stats.download_retries, 1);
}

/* Whether the last attempt brought all it asked (its fill's head range): a download whose fill
 * went alone asks again though its host is held now, and meets the hold as a new one does. */
static bool last_attempt_in(const struct transfer *t)
{
    return t->a.own_cut || (t->a.bounded && t->a.rc == CURLE_OK);
}

/* ATTEMPT: one request. A resume needs a validator that can prove the answer continues the kept
 * bytes; without one, the download starts over (start_over). None goes to a host held down
 * (easy_go): a download that has not tried yet fails at once (or is its probe), one that has
 * ends as its last attempt did (its own failures held the host down, or it waited in a backoff
 * meanwhile: it is never the probe). */
static enum transfer_state step_attempt(struct transfer *t)
{
    /* A backoff may end past the deadline, and a timeout of 0 would mean none at all. */
    int64_t left = t->deadline_ms - t->loop->now_ms();
    struct download_progress p;
    char host[256], why[HOSTS_ORIGIN_MAX + 128];
    int retry_after = 0;
    assert(t->state == TS_ATTEMPT);
    if (left <= 0) {
        fail_upstream(t, 504, "download took longer than --download-timeout");
        return TS_FAILED;
    }
    t->st->progress(t->obj, &p);
    t->offset = p.have;
    /* its own range has no byte yet: the whole body is asked again, and may be split again; a
     * whole body of another version must never meet the ranges' bytes (fill.h) */
    if (t->fill && t->offset == 0)
        transfer_drop_fill(t);
    /* after a source broke off the next one's first bytes prove the kept ones (check_prefix) */
    if (t->offset > 0 && !t->check.ctx && !resume_validator(&t->kept)) {
        int rc =
            transfer_start_over(t, -1, NULL, "upstream cut the body and gave no strong validator");
        if (rc != 0)
            return rc < 0 ? TS_FAILED : TS_OPENING; /* a new version: once its file exists */
    }
    if (t->attempts > 0 && !last_attempt_in(t) &&
        hosts_ends_retries(t->source, &t->terms.outgoing)) {
        fail_attempt(t, t->a.rc); /* its own failures held the host down: it ends as its last did */
        return TS_FAILED;
    }
    host_name(t->source, host, sizeof(host));
    if (host_never_resolves(host, strlen(host))) { /* no resolver is asked (RFC 6761 6.4) */
        count_attempt(t);
        fail_unresolved(t, host);
        return TS_FAILED;
    }
    if (transfer_prepare_attempt(t, left) < 0) {
        transfer_fail(t, 500, "out of memory");
        return TS_FAILED;
    }
    switch (easy_go(&t->h, !t->no_probe, why, sizeof(why), &retry_after)) {
    case EASY_HELD:
        if (source_may_move_on(t, SOURCE_HELD))
            return source_move_on(t, SOURCE_HELD, why);
        held_down(t, why, retry_after, 0);
        return TS_FAILED;
    case EASY_FAILED:
        transfer_fail(t, 500, "cannot start the upstream request");
        return TS_FAILED;
    case EASY_ASKING:
        break;
    }
    count_attempt(t);
    return TS_ASKING;
}

/* Its last answer was refused for now and its route is held at its upstream's asking (that
 * answer, a registry's 429, held it: easy_ended; or another's meanwhile): never retried, its
 * clients are told at once with the wait left, as a download meeting the hold is. */
static bool told_limited(struct transfer *t)
{
    char why[HOSTS_LIMIT_WHY_MAX * 2 + 64];
    int retry_after;
    if (!t->a.retry_status || !easy_limited(&t->h, why, sizeof(why), &retry_after))
        return false;
    held_down(t, why, retry_after, t->a.retry_status);
    return true;
}

/* The attempt ended without a body worth keeping and will not be retried: say why. */
static void fail_attempt(struct transfer *t, CURLcode rc)
{
    char reason[CURL_ERROR_SIZE + 96], host[256];
    struct download_progress p;
    struct upstream_error e;
    if (easy_refused(&t->h, rc)) {
        transfer_fail(t, 403, t->h.refused);
        return;
    }
    if (told_limited(t))
        return;
    if (t->src.why[0]) { /* in its source's words (its judgement of the end, source.h) */
        fail_upstream(t, t->a.retry_status ? t->a.retry_status : 502, t->src.why);
        return;
    }
    if (t->a.retry_status) {
        snprintf(reason, sizeof(reason), "upstream answered %d", t->a.retry_status);
        fail_upstream(t, t->a.retry_status, reason);
        return;
    }
    if (rc == CURLE_COULDNT_RESOLVE_HOST) {
        asked_host(t->h.easy, t->source, host, sizeof(host));
        fail_unresolved(t, host);
        return;
    }
    t->st->progress(t->obj, &p);
    e = error_for_clients(rc, p.headers_ready, past_deadline(t));
    snprintf(reason, sizeof(reason), "%s: %s", e.what,
             t->a.errbuf[0] ? t->a.errbuf : curl_easy_strerror(rc));
    fail_upstream(t, e.status, reason);
}

/* Whether its host has a slot for its next attempt (--max-downloads-per-host): backing off,
 * it holds none (transfer_holds), so that downloads sleeping between retries never keep
 * another's new URL on the host waiting; its retry takes one again. */
static bool host_has_room(const struct transfer *t)
{
    return transfer_host_connections(t) < t->loop->cfg->max_downloads_per_host;
}

/* Its backoff is over: the next attempt, once its host has a slot (its timer idle meanwhile,
 * the loop's look retries it: transfer_poll_retry). */
static void backoff_over(void *arg)
{
    struct transfer *t = arg;
    CHECK_TRANSFER(t);
    assert(upstream_on_thread() && t->state == TS_BACKOFF);
    if (!host_has_room(t))
        return;
    move(t, TS_ATTEMPT);
    transfer_step(t);
}

/* BACKOFF for `ms`, still counted as a download in progress. */
static enum transfer_state back_off(struct transfer *t, int64_t ms)
{
    if (timer_arm(&t->loop->timers, &t->backoff, t->loop->now_ms() + ms, backoff_over, t) < 0) {
        transfer_fail(t, 500, "out of memory");
        return TS_FAILED;
    }
    return TS_BACKOFF;
}

/* Whether the bytes are the digest their URL names (terms.h's `named_digest`), whichever source
 * brought them, over one connection or in a fill's pieces: the check belongs to the object, not
 * to the road. Bytes that are not go, and the next source is asked (as a source's own digest
 * that does not vouch for them); from the last, the download fails (*next). */
static bool named_digest_holds(struct transfer *t, const uint8_t digest[32],
                               enum transfer_state *next)
{
    static const char why[] = "its bytes are not the digest their URL names";
    char reason[300];
    if (!t->terms.digest_named || !memcmp(digest, t->terms.named_digest, 32))
        return true;
    log_info("fetch %s: %s (%s); not kept", t->url, why, t->src.kind->from);
    if (source_may_move_on(t, SOURCE_DIGEST)) {
        *next = source_move_on(t, SOURCE_DIGEST, why);
        return false;
    }
    if (t->resumed_kept) { /* the kept bytes may be the ones at fault: all of it, from this one */
        *next =
            transfer_afresh_state(t, "the bytes resumed with are not the digest their URL names");
        return false;
    }
    snprintf(reason, sizeof(reason), "the %s's bytes are not the digest their URL names; not kept",
             t->src.kind->from);
    transfer_fail(t, 502, reason);
    *next = TS_FAILED;
    return false;
}

/* A registry's manifest, whole and checked: what it lists is its repository's (reg_links.h),
 * whichever source brought it. Read back from the download's file (4 MiB at most: the registry
 * source refuses a longer one) before the persistence thread takes the file over. */
static void note_manifest(struct transfer *t)
{
    const struct registry_ask *a = &t->terms.registry;
    char *body;
    size_t n;
    if (!a->r || a->path.what != REG_MANIFEST ||
        !(body = t->st->read_body(t->obj, REGISTRY_MANIFEST_MAX, &n)))
        return;
    if (reg_links_note_manifest(a, body, n) < 0)
        log_info("fetch %s: not a manifest arca can read: no layer of it is linked to its "
                 "repository",
                 t->url);
    free(body);
}

/* The whole body came: hand it over to be made durable (once it is the digest its URL names,
 * and its source's own digest vouches for it, when its source has one). */
static enum transfer_state finished(struct transfer *t)
{
    uint8_t digest[32];
    unsigned int dlen = 0;
    enum transfer_state next;
    EVP_DigestFinal_ex(t->sha, digest, &dlen);
    if (!named_digest_holds(t, digest, &next))
        return next;
    if (t->src.kind->vouches && !t->src.kind->vouches(t, digest, &next))
        return next;
    note_manifest(t);
    if (t->st->finish(t->obj, digest) < 0)
        log_error("fetch %s: %d %s", t->url, t->st->error_status(t->obj), t->st->error(t->obj));
    log_debug("fetch %s: download ended after %d attempt(s)", t->url, t->attempts);
    return TS_DONE;
}

/* Its own range is in (it cut its answer there, or asked for that range alone): the fill's
 * others come meanwhile (FILLING), or all are in; its fill stopped meanwhile on a lie: the rest
 * over this connection. */
static enum transfer_state range_in(struct transfer *t)
{
    struct download_progress p;
    if (t->fill)
        return fill_whole(t->fill) ? finished(t) : TS_FILLING;
    t->st->progress(t->obj, &p);
    return p.have < p.length ? TS_ATTEMPT : finished(t);
}

/* --- ENDED: how the attempt's end moves the download ------------------------------------- */

/* Whether the download goes on after this end (nothing told its clients, arca not stopping). */
static bool goes_on(const struct transfer *t)
{
    return !t->failed && !atomic_load(&t->loop->stopping);
}

/* A 304: the expired version is the object again. */
static bool end_renewed(struct transfer *t, enum transfer_state *next)
{
    if (!t->a.renewed)
        return false;
    log_debug("fetch %s: unchanged upstream (304), renewed", t->url);
    *next = t->failed ? TS_FAILED : TS_DONE;
    return true;
}

/* Its source judges the end its own fault: the next source's turn (source.h). */
static bool end_judged_by_source(struct transfer *t, enum transfer_state *next)
{
    return t->src.kind->judge_end && t->src.kind->judge_end(t, next);
}

/* After a source broke off, the next one's first bytes did not hash as those kept (its body
 * was checked: check_prefix), or its body ended before they all came again: they go, the
 * download starts afresh (ATTEMPT, or OPENING for a new version; its clients cut then). */
static bool end_kept_refused(struct transfer *t, enum transfer_state *next)
{
    int rc;
    if (t->check.ctx && t->a.skip > 0 && t->a.rc == CURLE_OK && t->a.body_started)
        t->check.wrong = true;
    if (!t->check.wrong || !goes_on(t))
        return false;
    t->check.wrong = false;
    t->alone = false;
    rc = transfer_start_afresh(t, "the bytes its parent sent are not the origin's");
    *next = rc < 0 ? TS_FAILED : rc > 0 ? TS_OPENING : TS_ATTEMPT;
    return true;
}

/* Its fill's head range is in (range_in). */
static bool end_range_in(struct transfer *t, enum transfer_state *next)
{
    if (!goes_on(t) || !last_attempt_in(t))
        return false;
    *next = range_in(t);
    return true;
}

/* The whole body came (finished). */
static bool end_whole(struct transfer *t, enum transfer_state *next)
{
    if (t->a.rc != CURLE_OK || t->failed || t->a.retry_status)
        return false;
    *next = finished(t);
    return true;
}

/* Its answer was dropped: nothing to wait out, the whole body at once, or a new version's once
 * its file exists. */
static bool end_start_over(struct transfer *t, enum transfer_state *next)
{
    if (!t->a.start_over || !goes_on(t))
        return false;
    *next = t->a.new_file ? TS_OPENING : TS_ATTEMPT;
    return true;
}

/* A retryable failure with retries left: BACKOFF. A host held down now (this attempt's failure
 * may have done it) is not waited for. */
static bool end_retry(struct transfer *t, enum transfer_state *next)
{
    const struct config *cfg = t->loop->cfg;
    if (!goes_on(t) || t->attempts > cfg->download_retries ||
        hosts_ends_retries(t->source, &t->terms.outgoing) ||
        !error_retryable(t->a.rc, t->a.retry_status > 0, t->h.refused[0], past_deadline(t)))
        return false;
    int64_t ms = retry_backoff_ms(cfg->retry_delay_ms, t->attempts);
    log_info("fetch %s: attempt %d failed (%s); retrying in %lld ms", t->url, t->attempts,
             t->a.retry_status ? "retryable status" : curl_easy_strerror(t->a.rc), (long long)ms);
    if (status_outage(t->a.retry_status)) /* its readers need not wait out the retries */
        t->st->offer_stale(t->obj, STALE_ERROR, t->a.retry_status);
    *next = back_off(t, ms);
    return true;
}

/* A name that did not resolve is asked once more, after RESOLVE_RETRY_MS. */
static bool end_resolve_again(struct transfer *t, enum transfer_state *next)
{
    if (!goes_on(t) || !resolve_retryable(t->a.rc, t->resolved_again, past_deadline(t)))
        return false;
    t->resolved_again = true;
    log_info("fetch %s: attempt %d: %s; asking again in %d ms", t->url, t->attempts,
             t->a.errbuf[0] ? t->a.errbuf : curl_easy_strerror(t->a.rc), RESOLVE_RETRY_MS);
    *next = back_off(t, RESOLVE_RETRY_MS);
    return true;
}

/* None of the above: the download fails, saying why (fail_attempt). */
static bool end_failed(struct transfer *t, enum transfer_state *next)
{
    fail_attempt(t, t->a.rc);
    *next = TS_FAILED;
    return true;
}

typedef bool end_fn(struct transfer *t, enum transfer_state *next);

/* How an attempt's end moves the download: the first row that takes the end says the next
 * state. The order is the policy: a source's own fault before the bytes' fate, a finished body
 * before a retry, a retry before a failure. */
static end_fn *const endings[] = {
    end_renewed, end_judged_by_source, end_kept_refused, end_range_in, end_whole, end_start_over,
    end_retry,   end_resolve_again,    end_failed,
};

/* ENDED: finish, start over at once, back off and retry, or give up (endings). */
static enum transfer_state step_ended(struct transfer *t)
{
    enum transfer_state next = TS_FAILED;
    assert(t->state == TS_ENDED);
    for (size_t i = 0; i < sizeof(endings) / sizeof(endings[0]); i++)
        if (endings[i](t, &next))
            break;
    return next;
}

static void free_transfer(struct transfer *t)
{
    if (t->h.easy)
        curl_easy_cleanup(t->h.easy);
    curl_slist_free_all(t->a.req_headers);
    EVP_MD_CTX_free(t->sha);
    free(t->asked);
    free(t->via);
    source_list_free(&t->src);
    EVP_MD_CTX_free(t->check.ctx);
    t->magic = 0;
    free(t);
}

/* DONE or FAILED: the object's reference goes, and the transfer with it. */
static void end_transfer(struct transfer *t)
{
    assert(t->state == TS_DONE || t->state == TS_FAILED);
    assert(t->backoff.slot == TIMER_IDLE && !t->h.wait.queued && !t->h.host_probe);
    timer_cancel(&t->loop->timers, &t->patience);
    transfer_drop_fill(t);
    assert(!t->flow.waiting.head); /* none paused: so not in the cap's queue (rate.h) */
    t->st->release(t->obj);
    *t->prev = t->next;
    if (t->next)
        t->next->prev = t->prev;
    t->loop->n_active--;
    free_transfer(t);
}

typedef enum transfer_state step_fn(struct transfer *t);

/* The states with work to do; the others wait for an event (or are over). */
static step_fn *const steps[] = {
    [TS_SOURCE] = step_source,
    [TS_ATTEMPT] = step_attempt,
    [TS_ENDED] = step_ended,
};

/* Run steps until the transfer waits for an event; a transfer that is over is freed. */
static void transfer_step(struct transfer *t)
{
    for (;;) {
        CHECK_TRANSFER(t);
        assert(upstream_on_thread());
        if (t->state == TS_DONE || t->state == TS_FAILED) {
            end_transfer(t);
            return;
        }
        if ((size_t)t->state >= sizeof(steps) / sizeof(steps[0]) || !steps[t->state])
            return;
        move(t, steps[t->state](t));
    }
}

/* --- what its fill tells it (fill.h) --------------------------------------------------------- */

/* The attempt under way, or the backoff before the next, is cut: the fill decided. */
static void cut_attempt(struct transfer *t)
{
    if (t->state == TS_ASKING)
        easy_ended(&t->h, CURLE_ABORTED_BY_CALLBACK);
    timer_cancel(&t->loop->timers, &t->backoff);
}

/* Upstream changed the object mid-fill: the download starts over, once (a second change fails
 * it: an origin that changes all the time would otherwise be fetched for ever). */
static enum transfer_state fill_changed(struct transfer *t, const char *why)
{
    char reason[CURL_ERROR_SIZE + 220];
    int rc;
    if (source_may_move_on(t, SOURCE_CHANGED))
        return source_move_on(t, SOURCE_CHANGED, why);
    if (t->fill_restarts++ > 0) {
        snprintf(reason, sizeof(reason),
                 "upstream changed the object twice during the download (%s)", why);
        transfer_fail(t, 502, reason);
        return TS_FAILED;
    }
    rc = transfer_start_over(t, -1, NULL, why);
    return rc < 0 ? TS_FAILED : rc > 0 ? TS_OPENING : TS_ATTEMPT;
}

/* Its own connection, held at its range's end (fill_head_waits), goes on: cut there once the
 * fill proved itself, or on to the end alone. A handle paused under the uplink cap is the cap's
 * to let go (rate.h); curl takes an unpause of one not paused as nothing. */
static void let_head_go(struct transfer *t)
{
    if (t->state == TS_ASKING && !t->h.wait.queued)
        curl_easy_pause(t->h.easy, CURLPAUSE_CONT);
}

/* FILL_ALONE: one connection from here on. Asking, it goes on to the end (a bounded range asks
 * again for the rest: step_ended); in a backoff, its next attempt asks for the rest. */
static void fill_alone(struct transfer *t, const char *why)
{
    log_info("fetch %s: %s; going on over one connection", t->url, why);
    transfer_drop_fill(t);
    t->alone = true;
    let_head_go(t);
    if (t->state == TS_FILLING) {
        move(t, TS_ATTEMPT);
        transfer_step(t);
    }
}

static void fill_told(void *arg, enum fill_news news)
{
    struct transfer *t = arg;
    char why[CURL_ERROR_SIZE + 160];
    CHECK_TRANSFER(t);
    assert(upstream_on_thread() && t->fill);
    if (news == FILL_PROVED) {
        let_head_go(t);
        return;
    }
    snprintf(why, sizeof(why), "%s", fill_reason(t->fill));
    if (news == FILL_WHOLE) { /* asking still: the end of its own attempt finishes it */
        if (t->state == TS_FILLING) {
            move(t, finished(t));
            transfer_step(t);
        }
        return;
    }
    if (news != FILL_FAILED)
        atomic_fetch_add(&stats.fill_stops, 1);
    if (news == FILL_ALONE) {
        fill_alone(t, why);
        return;
    }
    cut_attempt(t);
    if (news == FILL_CHANGED) {
        move(t, fill_changed(t, why));
    } else { /* the store refused a piece's bytes: as when it refuses the head's (transfer_body) */
        transfer_fail_as_object(t);
        move(t, TS_FAILED);
    }
    transfer_step(t);
}

/* --- events --------------------------------------------------------------------------------- */

void transfer_set_via(struct transfer *t, char *via)
{
    assert(upstream_on_thread() && t->magic == TRANSFER_MAGIC);
    free(t->via);
    t->via = via;
}

void transfer_set_no_probe(struct transfer *t)
{
    assert(upstream_on_thread() && t->magic == TRANSFER_MAGIC && t->attempts == 0);
    t->no_probe = true;
}

struct transfer *transfer_new(struct upstream_loop *loop, const struct transfer_store *st,
                              struct object *obj, char *source, int64_t grant_until,
                              const struct bucket_auth *auth, const char *host,
                              const struct fetch_terms *terms)
{
    struct transfer *t = calloc(1, sizeof(*t));
    assert(upstream_on_thread() && terms);
    if (!t || !(t->h.easy = curl_easy_init()) || !(t->sha = EVP_MD_CTX_new()) ||
        EVP_DigestInit_ex(t->sha, EVP_sha256(), NULL) != 1) {
        st->fail(obj, 500, "out of memory");
        free(source);
        goto fail;
    }
    *t = (struct transfer){.h = {.kind = HANDLE_TRANSFER, .easy = t->h.easy},
                           .magic = TRANSFER_MAGIC,
                           .loop = loop,
                           .st = st,
                           .obj = obj,
                           .url = st->url(obj),
                           .asked = source,
                           .source = source,
                           .grant_until = grant_until,
                           .auth = auth,
                           .terms = *terms,
                           .sha = t->sha,
                           .fill_told = fill_told,
                           .state = TS_OPENING};
    response_reset(&t->a.resp);
    timer_init(&t->backoff);
    timer_init(&t->patience);
    t->started_ms = t->measured_ms = loop->now_ms();
    t->deadline_ms = t->started_ms + loop->cfg->download_timeout * 1000;
    snprintf(t->host, sizeof(t->host), "%s", host);
    if (st->begin_file(obj, t->source, loop->wake, NULL) < 0) {
        st->fail(obj, 500, "out of memory");
        goto fail;
    }
    setup_easy(t);
    t->src.chosen = source_chosen;
    if (source_list_init(t) < 0) {
        st->fail(obj, 500, "out of memory");
        goto fail;
    }
    if (timer_arm(&loop->timers, &t->patience, t->started_ms + STORE_STALE_PATIENCE_MS,
                  patience_over, t) < 0)
        log_error("fetch %s: out of memory: its readers wait for upstream", t->url);
    t->next = loop->active;
    t->prev = &loop->active;
    if (loop->active)
        loop->active->prev = &t->next;
    loop->active = t;
    loop->n_active++;
    atomic_fetch_add(&stats.downloads_active, 1); /* in progress from its start (move) */
    return t;
fail:
    if (t)
        free_transfer(t);
    st->release(obj);
    return NULL;
}

void transfer_poll_file(struct transfer *t)
{
    CHECK_TRANSFER(t);
    assert(upstream_on_thread());
    if (t->state != TS_OPENING)
        return;
    int ready = t->st->file_ready(t->obj);
    if (ready == 0)
        return;
    t->failed = ready < 0; /* the persistence thread has failed it already */
    if (ready > 0 && take_kept(t) < 0)
        transfer_fail(t, 500, "out of memory");
    move(t, t->failed ? TS_FAILED : TS_SOURCE);
    transfer_step(t);
}

void transfer_poll_retry(struct transfer *t)
{
    CHECK_TRANSFER(t);
    assert(upstream_on_thread());
    if (t->state != TS_BACKOFF || t->backoff.slot != TIMER_IDLE || !host_has_room(t))
        return;
    move(t, TS_ATTEMPT);
    transfer_step(t);
}

void transfer_attempt_ended(struct handle *h, CURLcode rc)
{
    struct transfer *t = (struct transfer *)h;
    CHECK_TRANSFER(t);
    assert(upstream_on_thread() && t->state == TS_ASKING);
    easy_ended(&t->h, rc);
    t->a.rc = rc;
    move(t, TS_ENDED);
    transfer_step(t);
}

int64_t transfer_announce(struct transfer *t)
{
    CHECK_TRANSFER(t);
    assert(upstream_on_thread());
    return t->st->announce(t->obj);
}

void transfer_stop(struct transfer *t)
{
    CHECK_TRANSFER(t);
    assert(upstream_on_thread());
    cut_attempt(t);
    transfer_drop_fill(t);
    if (t->state == TS_OPENING || t->a.new_file) {
        transfer_fail(t, 503, "arca is shutting down");
    } else if (!t->failed) { /* kept on disk: the next start continues it */
        t->st->set_aside(t->obj, "arca is shutting down");
        log_info("fetch %s: stopped; kept for the next start to continue", t->url);
        t->failed = true;
    }
    move(t, TS_FAILED);
    end_transfer(t);
}

int transfer_connections(const struct transfer *t)
{
    CHECK_TRANSFER(t);
    return transfer_holds(t);
}

void transfer_measure(struct transfer *t)
{
    int64_t now = t->loop->now_ms(), bytes = t->received;
    /* its own connection, while it asks (and has not brought its fill's first piece yet) */
    int own = t->state == TS_ASKING && !(t->fill && fill_head_done(t->fill));
    CHECK_TRANSFER(t);
    assert(upstream_on_thread());
    if (t->fill)
        bytes += fill_received(t->fill);
    if (now > t->measured_ms && t->state != TS_OPENING)
        t->st->set_rate(t->obj, (bytes - t->measured_bytes) * 1000 / (now - t->measured_ms),
                        own + (t->fill ? fill_open_connections(t->fill) : 0));
    t->measured_bytes = bytes;
    t->measured_ms = now;
}

enum transfer_state transfer_state_of(const struct transfer *t)
{
    CHECK_TRANSFER(t);
    return t->state;
}

const char *transfer_host(const struct transfer *t)
{
    return t->host;
}

struct transfer *transfer_next(const struct transfer *t)
{
    return t->next;
}

CURL *transfer_easy(const struct transfer *t)
{
    return t->h.easy;
}

const struct curl_slist *transfer_request_headers(const struct transfer *t)
{
    return t->a.req_headers;
}
