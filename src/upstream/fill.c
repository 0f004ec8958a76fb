/* A parallel fill (fill.h): pieces asked in order over several connections, written in place,
 * read and digested in order. */
#include "upstream/fill.h"
#include "upstream/hosts.h"
#include "log/log.h"
#include "stats/stats.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define FILL_MAGIC 0x46494c4cu

/* Why a range's answer stopped the fill (its news), or none. */
enum range_fault { FAULT_NONE, FAULT_CHANGED, FAULT_LIE, FAULT_STORE };

/* A piece of the object: [start, end), its bytes in up to `pos`. Pieces are handed out in
 * order, so the head (what readers take) grows about as fast as all connections together bring
 * bytes: readers keep pace with the fill instead of getting most of it at its end. */
struct piece {
    int64_t start, pos, end;
};

/* A connection of the fill, asking for one piece after another. seg[0] is the download's own
 * connection while it brings the first piece (the head's); then a handle of its own, as the
 * others. */
struct segment {
    struct handle h; /* first: CURLOPT_PRIVATE (easy.h); its easy handle, hold and turn */
    struct fill *fill;
    struct curl_slist *headers;
    struct upstream_response resp;
    struct timer backoff;
    int piece; /* the piece it brings now (fill->pieces), -1: none */
    long status;
    int attempts;
    bool asking; /* in the multi handle (a connection's own course, not its download's) */
    bool body;   /* its answer proved itself: its bytes are written */
    enum range_fault fault;
    char why[120];
    char errbuf[CURL_ERROR_SIZE];
};

struct fill {
    unsigned magic;
    struct fill_settings settings;
    int n;   /* connections, the download's own included */
    int cur; /* the piece the head is in */
    int64_t head, received;
    int64_t piece_size, next; /* a piece's size; where the next one starts */
    char host[256];           /* settings.host's copy: the origin, "scheme://host:port" */
    /* settings.source's copy: its pieces' handles name it (easy_ended reads it), also as they
     * end after the download that owned the fill went (a retired fill) */
    char *source;
    /* settings.outgoing's copy, for the same reason: a retired fill's pieces still end */
    struct outgoing_address outgoing;
    struct piece *pieces; /* handed out so far, in order */
    int n_pieces;
    /* a range's answer proved itself (range_answer): the head's connection may be cut at its
     * range's end from then on; `proved_told` tells its download so, from the loop */
    bool proved;
    struct timer proved_told;
    bool retired;
    char reason[CURL_ERROR_SIZE + 160];
    struct fill *next_retired;
    struct segment seg[];
};

static size_t on_header(char *data, size_t size, size_t n, void *arg);
static size_t on_body(char *data, size_t size, size_t n, void *arg);
static void backoff_over(void *arg);
static void tell_proved(void *arg);

static struct fill *fill_of(struct segment *s)
{
    assert(s->fill && s->fill->magic == FILL_MAGIC);
    return s->fill;
}

static struct piece *piece_of(struct fill *f, const struct segment *s)
{
    assert(s->piece >= 0 && s->piece < f->n_pieces);
    return &f->pieces[s->piece];
}

/* The next piece for `s`, in order; false when every piece is handed out. */
static bool take_piece(struct fill *f, struct segment *s)
{
    if (f->next >= f->settings.length) {
        s->piece = -1;
        return false;
    }
    int64_t end = f->next + f->piece_size;
    struct piece *p = &f->pieces[f->n_pieces];
    *p = (struct piece){f->next, f->next, end < f->settings.length ? end : f->settings.length};
    s->piece = f->n_pieces++;
    s->attempts = 0; /* --download-retries counts per piece */
    f->next = p->end;
    return true;
}

/* --- asking a range ------------------------------------------------------------------------ */

/* The request for what the piece `s` brings lacks, proved by the version's validator. */
static int set_range_headers(struct fill *f, struct segment *s)
{
    char range[80], if_range[300];
    struct curl_slist *l = easy_base_headers(f->settings.auth, f->settings.via), *t = NULL;
    const struct piece *p = piece_of(f, s);
    snprintf(range, sizeof(range), "Range: bytes=%lld-%lld", (long long)p->pos,
             (long long)p->end - 1);
    snprintf(if_range, sizeof(if_range), "If-Range: %s", resume_validator(f->settings.kept));
    if (l && (t = curl_slist_append(l, range)))
        t = curl_slist_append(t, if_range);
    if (t && f->settings.req.ops && f->settings.req.ops->request &&
        !f->settings.req.ops->request(f->settings.req.rec, SOURCE_REQ_PIECE, s->h.easy, &t))
        t = NULL;
    if (!t) {
        curl_slist_free_all(l);
        return -1;
    }
    curl_slist_free_all(s->headers);
    s->headers = t;
    curl_easy_setopt(s->h.easy, CURLOPT_HTTPHEADER, s->headers);
    return 0;
}

/* One request for the piece `s` brings, asked of its host's hold as a download's attempt is
 * (easy_go; never as its probe, which is a download's, within the limits). -1 when it cannot
 * start: `why` says so when its host is held down, and is empty otherwise (no memory, past the
 * deadline). */
static int ask(struct fill *f, struct segment *s, char *why, size_t size)
{
    int64_t left = f->settings.deadline_ms - f->settings.loop->now_ms();
    int retry_after;
    why[0] = '\0';
    if (left <= 0 || set_range_headers(f, s) < 0)
        return -1;
    response_reset(&s->resp);
    s->status = 0;
    s->body = false;
    s->h.refused[0] = s->errbuf[0] = '\0';
    curl_easy_setopt(s->h.easy, CURLOPT_TIMEOUT_MS, (long)left);
    if (easy_go(&s->h, false, why, size, &retry_after) != EASY_ASKING)
        return -1;
    s->asking = true;
    s->attempts++;
    atomic_fetch_add(&stats.fill_ranges, 1);
    return 0;
}

/* A range's own handle (timer_init'ed first: free_fill may cancel it): the download's options
 * (easy_setup), signed as it is. */
static int open_range(struct fill *f, struct segment *s)
{
    timer_init(&s->backoff);
    if (!(s->h.easy = curl_easy_init()))
        return -1;
    s->h.kind = HANDLE_SEGMENT;
    s->fill = f;
    easy_setup(&s->h, f->settings.loop, s->h.easy, f->source, f->settings.flow, s->errbuf);
    s->h.outgoing = f->settings.outgoing;
    easy_sign_for(s->h.easy, f->settings.auth);
    curl_easy_setopt(s->h.easy, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(s->h.easy, CURLOPT_HEADERDATA, s);
    curl_easy_setopt(s->h.easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(s->h.easy, CURLOPT_WRITEDATA, s);
    return 0;
}

/* Its handles and memory; none may be in the multi handle. */
static void free_fill(struct fill *f)
{
    free(f->pieces);
    free(f->source);
    for (int i = 0; i < f->n; i++) {
        struct segment *s = &f->seg[i];
        assert(!s->asking);
        if (s->h.easy)
            curl_easy_cleanup(s->h.easy);
        curl_slist_free_all(s->headers);
    }
    f->magic = 0;
    free(f);
}

/* Pieces of an eighth of each connection's share, between FILL_PIECE_MIN and FILL_PIECE_MAX:
 * small enough that the head moves on all the time, large enough that a request's round trip
 * is little beside its bytes on a far origin. */
static int64_t piece_size(const struct fill_settings *settings)
{
    int64_t size = (settings->length - settings->head) / ((int64_t)settings->ranges * 8);
    return size < FILL_PIECE_MIN ? FILL_PIECE_MIN : size > FILL_PIECE_MAX ? FILL_PIECE_MAX : size;
}

struct fill *fill_start(const struct fill_settings *settings)
{
    struct fill *f;
    assert(upstream_on_thread() && settings->ranges >= 2 && resume_validator(settings->kept));
    int64_t size = piece_size(settings);
    size_t pieces = (size_t)((settings->length - settings->head + size - 1) / size);
    if (!(f = calloc(1, sizeof(*f) + sizeof(struct segment) * (size_t)settings->ranges)) ||
        !(f->pieces = calloc(pieces, sizeof(*f->pieces))) ||
        !(f->source = strdup(settings->source))) {
        if (f)
            free(f->pieces);
        free(f);
        return NULL;
    }
    f->magic = FILL_MAGIC;
    f->settings = *settings;
    if (settings->outgoing) { /* the download's terms go before its fill */
        f->outgoing = *settings->outgoing;
        f->settings.outgoing = &f->outgoing;
    }
    f->n = settings->ranges;
    f->head = f->next = settings->head;
    f->piece_size = size;
    snprintf(f->host, sizeof(f->host), "%s", settings->host);
    timer_init(&f->proved_told);
    for (int i = 0; i < f->n; i++)
        timer_init(&f->seg[i].backoff);
    take_piece(f, &f->seg[0]); /* the head's, on the download's own connection */
    for (int i = 1; i < f->n && take_piece(f, &f->seg[i]); i++) {
        /* asked from the loop's timers: curl takes no new handle inside its callbacks, where
         * the download's headers are decided */
        if (open_range(f, &f->seg[i]) < 0 ||
            timer_arm(&settings->loop->timers, &f->seg[i].backoff, settings->loop->now_ms(),
                      backoff_over, &f->seg[i]) < 0) {
            for (int j = 1; j <= i; j++)
                timer_cancel(&settings->loop->timers, &f->seg[j].backoff);
            free_fill(f);
            return NULL;
        }
    }
    atomic_fetch_add(&stats.fills, 1);
    log_info("fetch %s: parallel fill over %d connections, pieces of %lld bytes",
             settings->st->url(settings->obj), f->n, (long long)size);
    return f;
}

/* --- bytes, in place and in order ---------------------------------------------------------- */

/* The head moves over bytes later pieces wrote ahead of it: digested from the file, then
 * readable. -1 when the file cannot be read back (the object failed). */
static int catch_up(struct fill *f)
{
    const struct transfer_store *st = f->settings.st;
    while (f->head < f->settings.length && f->cur < f->n_pieces) {
        const struct piece *p = &f->pieces[f->cur];
        if (f->head >= p->end) {
            f->cur++;
            continue;
        }
        if (p->pos <= f->head)
            break;
        if (st->digest_range(f->settings.obj, f->settings.sha, f->head, p->pos) < 0) {
            st->fail(f->settings.obj, 500, "cannot read back the object file");
            return -1;
        }
        st->advance(f->settings.obj, p->pos);
        f->head = p->pos;
    }
    return 0;
}

/* `len` bytes of piece `p` at its position: appended and digested when it is the head's place,
 * written ahead otherwise. */
static int write_piece(struct fill *f, struct piece *p, const char *data, size_t len)
{
    const struct transfer_store *st = f->settings.st;
    if (p->pos == f->head) {
        if (st->append(f->settings.obj, data, len) < 0)
            return -1;
        EVP_DigestUpdate(f->settings.sha, data, len);
        f->head += (int64_t)len;
    } else if (st->write_at(f->settings.obj, p->pos, data, len) < 0) {
        return -1;
    }
    p->pos += (int64_t)len;
    return catch_up(f);
}

/* seg[0] asks for pieces of its own once the download's connection has brought the head's. */
static void head_piece_in(struct fill *f)
{
    struct segment *s = &f->seg[0];
    if (take_piece(f, s) &&
        (open_range(f, s) < 0 || timer_arm(&f->settings.loop->timers, &s->backoff,
                                           f->settings.loop->now_ms(), backoff_over, s) < 0))
        s->piece = -1; /* out of memory: one connection fewer; the others take its pieces */
}

ssize_t fill_head_bytes(struct fill *f, const char *data, size_t len)
{
    struct piece *p = &f->pieces[0];
    size_t take = (size_t)(p->end - p->pos) < len ? (size_t)(p->end - p->pos) : len;
    assert(upstream_on_thread() && f->magic == FILL_MAGIC && !f->retired);
    assert(p->pos == f->head || take == 0);
    if (take > 0 && write_piece(f, p, data, take) < 0)
        return -1;
    if (take > 0 && p->pos == p->end)
        head_piece_in(f);
    return (ssize_t)take;
}

/* --- a range's answer ---------------------------------------------------------------------- */

/* Whether an answer that does not continue the range comes from another version: a range or a
 * whole body under another validator than the one the fill began with. Anything else (the same
 * validator, none, a status that is not 200 or 206: 403, 404, 416 to ranges only) says nothing
 * of the download's own answer, which goes on alone (the outside review found 404s to ranges
 * read as a change, and the download failed as "changed twice"). */
static bool other_version(const struct fill *f, const struct segment *s)
{
    const struct validators *k = f->settings.kept;
    const struct upstream_response *r = &s->resp;
    if (s->status != 200 && s->status != 206)
        return false;
    if (k->etag[0] == '"' && r->etag[0])
        return strcmp(r->etag, k->etag) != 0;
    if (k->etag[0] != '"' && r->last_modified[0])
        return strcmp(r->last_modified, k->last_modified) != 0;
    return false;
}

/* Whether the piece's answer comes from the origin the download's own did (after redirects):
 * its scheme, host and port (hosts.c's key). An ETag speaks for its own resource only: another
 * port of the same host may serve other bytes under the same validators and length. */
static bool same_origin(const struct fill *f, const struct segment *s)
{
    char origin[sizeof(f->host)];
    asked_origin(s->h.easy, f->source, origin, sizeof(origin));
    return origin[0] && strcmp(origin, f->host) == 0;
}

/* A range's answer proved itself: its bytes are written. The first such answer lets the head's
 * connection be cut at its range's end (fill_head_waits), told from the loop's timers (never
 * from this curl callback); -1 (out of memory) ends the range, and the fill goes on alone. */
static int range_proved(struct fill *f, struct segment *s)
{
    if (!f->proved && timer_arm(&f->settings.loop->timers, &f->proved_told,
                                f->settings.loop->now_ms(), tell_proved, f) < 0) {
        s->fault = FAULT_LIE;
        snprintf(s->why, sizeof(s->why), "out of memory");
        return -1;
    }
    f->proved = s->body = true;
    return 0;
}

/* The end of one response's headers: -1 ends the request (a retryable status, or an answer
 * that does not continue the range: s->fault says which). */
static int range_answer(struct fill *f, struct segment *s)
{
    const struct piece *p = piece_of(f, s);
    struct resume_ask sent = {p->pos, f->settings.length, f->settings.kept, false};
    const char *why;
    if (s->status < 200 || (s->status >= 300 && s->status < 400 && s->resp.location))
        return 0;                      /* informational, or a redirect curl follows */
    if (status_retryable(s->status)) { /* an origin that serves one connection at a time
                                            (nginx's limit_conn answers 503): alone at once */
        s->fault = FAULT_LIE;
        snprintf(s->why, sizeof(s->why), "upstream answered %ld to a range", s->status);
        return -1;
    }
    if (!same_origin(f, s)) {
        s->fault = FAULT_LIE;
        snprintf(s->why, sizeof(s->why), "a range came from another origin (scheme, host, port)");
        return -1;
    }
    why = resume_mismatch(&sent, s->status, &s->resp);
    if (!why && (s->resp.range_last != p->end - 1 ||
                 (s->resp.content_length >= 0 && s->resp.content_length != p->end - p->pos)))
        why = "upstream answered a range with another end";
    if (!why)
        return range_proved(f, s);
    s->fault = other_version(f, s) ? FAULT_CHANGED : FAULT_LIE;
    if (s->status != 200 && s->status != 206)
        snprintf(s->why, sizeof(s->why), "upstream answered %ld", s->status);
    else
        snprintf(s->why, sizeof(s->why), "%s", why);
    return -1;
}

size_t fill_range_header(struct fill *f, int i, const char *data, size_t len)
{
    struct segment *s = &f->seg[i];
    char line[HEADER_TYPE_MAX + 64];
    assert(upstream_on_thread() && f->magic == FILL_MAGIC && i >= 0 && i < f->n && s->h.easy);
    if (f->retired || s->fault)
        return 0;
    bool whole = copy_header_line(data, len, line, sizeof(line));
    if (response_is_status_line(line)) {
        response_reset(&s->resp);
        s->status = response_status_line(line);
    } else if (s->body) { /* a trailer, after a chunked range: its source's (a digest) */
        if (f->settings.req.ops && f->settings.req.ops->trailer && whole && line[0])
            f->settings.req.ops->trailer(f->settings.req.rec, line);
    } else if (line[0] == '\0') {
        if (range_answer(f, s) < 0)
            return 0;
    } else if (whole) {
        response_header(&s->resp, line);
        if (f->settings.req.ops && f->settings.req.ops->header)
            f->settings.req.ops->header(f->settings.req.rec, line);
    }
    return len;
}

size_t fill_range_body(struct fill *f, int i, const char *data, size_t len)
{
    struct segment *s = &f->seg[i];
    assert(upstream_on_thread() && f->magic == FILL_MAGIC && i >= 0 && i < f->n && s->h.easy);
    if (f->retired || !s->body || s->fault)
        return 0;
    if (!easy_take(&s->h, len))
        return CURL_WRITEFUNC_PAUSE;
    struct piece *p = piece_of(f, s);
    if ((int64_t)len > p->end - p->pos) { /* a 206 without a length, running past its range */
        s->fault = FAULT_LIE;
        snprintf(s->why, sizeof(s->why), "upstream sent more than the range it announced");
        return 0;
    }
    if (write_piece(f, p, data, len) < 0) {
        s->fault = FAULT_STORE;
        return 0;
    }
    f->received += (int64_t)len;
    atomic_fetch_add(&stats.bytes_downloaded, (int64_t)len);
    return len;
}

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
    struct segment *s = arg;
    return fill_range_header(fill_of(s), (int)(s - fill_of(s)->seg), data, size * n);
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    struct segment *s = arg;
    return fill_range_body(fill_of(s), (int)(s - fill_of(s)->seg), data, size * n);
}

/* --- a range's end ------------------------------------------------------------------------- */

/* The fill stops: its download hears `news` with the range's reason. */
static void stop(struct fill *f, const struct segment *s, enum fill_news news, const char *why)
{
    const struct piece *p = piece_of(f, s);
    snprintf(f->reason, sizeof(f->reason), "range bytes=%lld-%lld: %s", (long long)p->pos,
             (long long)p->end - 1, why);
    f->settings.tell(f->settings.owner, news);
}

/* A piece's requests failed to the end of their retries: the download goes on over its own
 * connection, whose own retries and failure say what its clients get (a host that serves one
 * connection but not several must not fail a download one connection would bring). */
static void range_failed(struct fill *f, struct segment *s, CURLcode rc, bool late)
{
    char why[CURL_ERROR_SIZE + 96];
    struct upstream_error e = error_for_clients(rc, true, late);
    if (easy_refused(&s->h, rc))
        snprintf(why, sizeof(why), "%s", s->h.refused);
    else
        snprintf(why, sizeof(why), "%s: %s", e.what,
                 s->errbuf[0] ? s->errbuf : curl_easy_strerror(rc));
    stop(f, s, FILL_ALONE, why);
}

/* A piece that could not be asked: its host held down, the fill stops and its download goes on
 * alone (its own connection meets the hold as any download does: it fails at once, or its
 * expired version answers); otherwise as a range failing with `rc`. */
static void not_asked(struct fill *f, struct segment *s, const char *why, CURLcode rc, bool late)
{
    if (why[0])
        stop(f, s, FILL_ALONE, why);
    else
        range_failed(f, s, rc, late);
}

static void tell_proved(void *arg)
{
    struct fill *f = arg;
    assert(upstream_on_thread() && f->magic == FILL_MAGIC && !f->retired);
    f->settings.tell(f->settings.owner, FILL_PROVED);
}

static void backoff_over(void *arg)
{
    struct segment *s = arg;
    struct fill *f = fill_of(s);
    char why[HOSTS_ORIGIN_MAX + 128];
    assert(upstream_on_thread() && !f->retired);
    if (ask(f, s, why, sizeof(why)) < 0)
        not_asked(f, s, why, CURLE_OPERATION_TIMEDOUT, true);
}

/* A range cut short: asked again for what it lacks, after the download's backoff. */
static void retry_or_fail(struct fill *f, struct segment *s, CURLcode rc)
{
    const struct config *cfg = f->settings.loop->cfg;
    int64_t now = f->settings.loop->now_ms();
    bool late = now >= f->settings.deadline_ms - 50;
    if (rc == CURLE_OK) /* a body shorter than its range, its connection closed cleanly */
        rc = CURLE_PARTIAL_FILE;
    /* a host held down now (this piece's failure may have done it) is not waited for */
    if (s->attempts <= cfg->download_retries &&
        !hosts_ends_retries(f->source, f->settings.outgoing) &&
        error_retryable(rc, false, s->h.refused[0], late)) {
        int64_t ms = retry_backoff_ms(cfg->retry_delay_ms, s->attempts);
        log_info("fetch %s: range bytes=%lld-%lld cut (%s); asking again in %lld ms",
                 f->settings.st->url(f->settings.obj), (long long)piece_of(f, s)->pos,
                 (long long)piece_of(f, s)->end - 1, curl_easy_strerror(rc), (long long)ms);
        atomic_fetch_add(&stats.download_retries, 1);
        if (timer_arm(&f->settings.loop->timers, &s->backoff, now + ms, backoff_over, s) == 0)
            return;
    }
    range_failed(f, s, rc, late);
}

/* A piece's end tells its host's hold what it says (easy_ended), as a download's attempt does:
 * its refused or timed-out connections count towards holding the host down. */
void fill_segment_ended(struct handle *h, CURLcode rc)
{
    struct segment *s = (struct segment *)h;
    struct fill *f = fill_of(s);
    char why[HOSTS_ORIGIN_MAX + 128];
    assert(upstream_on_thread() && h->kind == HANDLE_SEGMENT && s->asking);
    easy_ended(&s->h, rc);
    s->asking = false;
    if (f->retired)
        return;
    const struct piece *p = piece_of(f, s);
    if (s->fault == FAULT_CHANGED || s->fault == FAULT_LIE)
        stop(f, s, s->fault == FAULT_CHANGED ? FILL_CHANGED : FILL_ALONE, s->why);
    else if (s->fault == FAULT_STORE)
        stop(f, s, FILL_FAILED, f->settings.st->error(f->settings.obj));
    else if (p->pos < p->end)
        retry_or_fail(f, s, rc);
    else if (fill_whole(f))
        f->settings.tell(f->settings.owner, FILL_WHOLE);
    else if (take_piece(f, s) && ask(f, s, why, sizeof(why)) < 0) /* the next, same connection */
        not_asked(f, s, why, CURLE_OUT_OF_MEMORY, false);
}

/* --- its life ------------------------------------------------------------------------------ */

void fill_retire(struct fill *f)
{
    struct upstream_loop *loop = f->settings.loop;
    assert(upstream_on_thread() && f->magic == FILL_MAGIC);
    if (f->retired)
        return;
    f->retired = true;
    timer_cancel(&loop->timers, &f->proved_told);
    for (int i = 0; i < f->n; i++) {
        timer_cancel(&loop->timers, &f->seg[i].backoff);
        /* its flow goes with the download: no waiter may stay queued under it */
        rate_forget(&loop->gate, &f->seg[i].h.wait);
    }
    f->next_retired = loop->retired;
    loop->retired = f;
}

void fill_sweep(struct upstream_loop *loop)
{
    assert(upstream_on_thread());
    while (loop->retired) {
        struct fill *f = loop->retired;
        loop->retired = f->next_retired;
        /* a cut piece says nothing of its host (its download's own attempt does), and its
         * download, whose URL its handle names, may be gone: only out of the multi handle */
        for (int i = 0; i < f->n; i++) {
            if (f->seg[i].asking)
                curl_multi_remove_handle(loop->multi, f->seg[i].h.easy);
            f->seg[i].asking = false;
        }
        free_fill(f);
    }
}

int64_t fill_head_end(const struct fill *f)
{
    return f->pieces[0].end;
}

bool fill_head_waits(const struct fill *f, size_t len)
{
    const struct piece *p = &f->pieces[0];
    assert(f->magic == FILL_MAGIC && !f->retired);
    return !f->proved && f->n_pieces > 1 && (int64_t)len > p->end - p->pos;
}

bool fill_head_done(const struct fill *f)
{
    return f->pieces[0].pos == f->pieces[0].end;
}

bool fill_whole(const struct fill *f)
{
    return f->head == f->settings.length;
}

int fill_open_connections(const struct fill *f)
{
    int n = 0;
    for (int i = 0; i < f->n; i++)
        n += f->seg[i].asking || f->seg[i].backoff.slot != TIMER_IDLE;
    return n;
}

int64_t fill_received(const struct fill *f)
{
    return f->received;
}

const char *fill_reason(const struct fill *f)
{
    return f->reason;
}

CURL *fill_range_easy(struct fill *f, int i)
{
    assert(i >= 0 && i < f->n);
    return f->seg[i].h.easy;
}
