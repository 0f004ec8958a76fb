/* Upstream hosts held down (hosts.h): one small table of the routes, of every kind, whose last
 * asks failed or, an origin's, answered lately, found by kind, origin string and the address
 * they leave from, each held as its kind's policy says. A route neither failing nor asked for a
 * while leaves it. */
#include "upstream/hosts.h"
#include "base/clock.h"
#include "log/log.h"

#include <assert.h>
#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* What holds a host of a kind, and how it is let go. */
struct host_policy {
    const char *name; /* how the log and the reasons call it */
    int faults;       /* in a row, to hold it (0: never; the origins' is --origin-failures) */
    int64_t first_ms; /* the hold's first wait */
    int64_t max_ms;   /* the wait doubles up to this */
    bool probes;      /* held until one probe at a time finds it back; else passed over for
                         the wait, each fault while held doubling it */
    bool words;       /* its attempts' ends judge it (hosts_result); else its kind's code does
                         (hosts_judged) */
};

static struct host_policy policies[HOST_KINDS] = {
    [HOST_ORIGIN] = {"upstream host", 0, HOSTS_PROBE_FIRST_MS, HOSTS_PROBE_MAX_MS, true, true},
    [HOST_MIRROR] = {"mirror", HOSTS_MIRROR_FAULTS, HOSTS_MIRROR_HOLD_MS, HOSTS_MIRROR_HOLD_MS,
                     false, false},
    [HOST_PARENT] = {"parent", HOSTS_PARENT_FAULTS, HOSTS_PARENT_HOLD_MS, HOSTS_PARENT_HOLD_MAX_MS,
                     false, false},
};

struct host {
    char origin[HOSTS_ORIGIN_MAX]; /* "" : a free slot */
    char from[HOSTS_FROM_MAX];     /* the address it leaves from, "" the kernel's (an origin's) */
    enum host_kind kind;
    int failures;
    int64_t since;       /* wall s it went down; 0: up (failing, not yet held) */
    int64_t probe_at;    /* monotonic ms from which one probe (or, passed over, any ask) may go */
    int64_t wait_ms;     /* the wait before the probe after the next failed one */
    int64_t seen_ms;     /* its last failure, or the last attempt asked of it while held */
    int64_t checked_ms;  /* its root answered or closed a check then (0: never) */
    int64_t answered_ms; /* an attempt of any URL on it got an answer then (0: none known) */
    bool probing;        /* a probe is out */
    bool awaited;        /* a download waits for a slot to be its probe (hosts_await_probe) */
    bool checking;       /* a check of its root is out (hosts_result asked for it) */
    bool hung;           /* its silences held it: it accepts connections, answers nothing */
    /* Held at its upstream's asking (hosts_limit): until then (monotonic ms; 0 not), then until
     * its probe answers; the wall-clock second that is, as the status shows it; the hold the
     * next limit that names no time gets; who asked, and what it said. */
    int64_t limit_until;
    int64_t limit_start; /* when its wait began (monotonic ms): a lower cap cuts it from there */
    int64_t limit_wall;
    int64_t limit_next_ms;
    char limit_who[HOSTS_LIMIT_WHY_MAX];
    char limit_what[HOSTS_LIMIT_WHY_MAX];
};

/* Its lock is a leaf: nothing else is taken while it is held, and no caller holds a lock of its
 * own while asking (parent_report copies its table first). */
static struct {
    pthread_mutex_t lock;
    atomic_int down;                   /* origins held down now */
    atomic_int limited;                /* routes held at their upstream's asking now */
    int64_t swept_ms;                  /* the last pass for idle hosts (forget_idle) */
    char default_from[HOSTS_FROM_MAX]; /* --outgoing-address: not named in the list */
    struct host hosts[HOSTS_MAX];
} reg = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* The address `from` names, as a route of `kind` is keyed: an origin's alone leaves from one. */
static void from_text(enum host_kind kind, const struct outgoing_address *from, char *out,
                      size_t size)
{
    out[0] = '\0';
    if (kind == HOST_ORIGIN && from)
        config_outgoing_text(from, out, size);
}

void hosts_configure(int origin_failures, const struct outgoing_address *from)
{
    pthread_mutex_lock(&reg.lock);
    policies[HOST_ORIGIN].faults = origin_failures;
    from_text(HOST_ORIGIN, from, reg.default_from, sizeof(reg.default_from));
    reg.swept_ms = 0;
    memset(reg.hosts, 0, sizeof(reg.hosts));
    atomic_store(&reg.down, 0);
    atomic_store(&reg.limited, 0);
    pthread_mutex_unlock(&reg.lock);
}

void hosts_origin_of(const char *url, char *out, size_t size)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL;
    out[0] = '\0';
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK &&
        (size_t)snprintf(out, size, "%s://%s:%s", scheme, host, port) < size) {
        for (char *p = out; *p; p++)
            *p = (char)tolower((unsigned char)*p);
    } else {
        out[0] = '\0';
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
}

/* How the log and the reasons name a route: its origin, and the address it leaves from when
 * that is not --outgoing-address's. */
#define ROUTE_NAME_MAX (HOSTS_ORIGIN_MAX + HOSTS_FROM_MAX + 20)

/* Lock held. `h`'s name (above) in out[ROUTE_NAME_MAX]. */
static const char *name_of(const struct host *h, char *out)
{
    if (!h->from[0] || !strcmp(h->from, reg.default_from))
        snprintf(out, ROUTE_NAME_MAX, "%s", h->origin);
    else
        snprintf(out, ROUTE_NAME_MAX, "%s (leaving from %s)", h->origin, h->from);
    return out;
}

/* Whether `at_ms` (0: never) is less than `window_ms` before `now_ms`. */
static bool within(int64_t at_ms, int64_t window_ms, int64_t now_ms)
{
    return at_ms && now_ms - at_ms < window_ms;
}

/* Lock held. Whether `h` holds its asks back at `now_ms`: held down, or at its upstream's
 * asking (until its probe answers). */
static bool held_now(const struct host *h, int64_t now_ms)
{
    return (h->since && (policies[h->kind].probes || now_ms < h->probe_at)) || h->limit_until;
}

/* Lock held. Whether `h` is held, down or at its upstream's asking, its hold's end aside. */
static bool held(const struct host *h)
{
    return h->since || h->limit_until;
}

/* Lock held. When the probe of held `h` may go: both its holds' waits over. */
static int64_t due_at(const struct host *h)
{
    int64_t at = h->since ? h->probe_at : 0;
    return h->limit_until > at ? h->limit_until : at;
}

/* Lock held. `h` is held at its upstream's asking until `until_ms` (0: no longer); the count of
 * such routes follows. */
static void set_limit(struct host *h, int64_t until_ms)
{
    if (!h->limit_until != !until_ms)
        atomic_fetch_add(&reg.limited, until_ms ? 1 : -1);
    h->limit_until = until_ms;
}

/* Lock held. `h` is held (since now) or not: the origins' count follows. */
static void set_held(struct host *h, bool held)
{
    if (!h->since == !held)
        return;
    h->since = held ? (int64_t)time(NULL) : 0;
    if (h->kind == HOST_ORIGIN)
        atomic_fetch_add(&reg.down, held ? 1 : -1);
}

/* Lock held. The slot of `h` is free again. */
static void drop(struct host *h)
{
    set_held(h, false);
    set_limit(h, 0);
    h->origin[0] = '\0';
}

/* Lock held. Routes neither failing nor asked for HOSTS_IDLE_MS leave the table (at most one
 * pass a HOSTS_SWEEP_MS): failures that old are no longer "in a row", an answer that old says
 * nothing of the route now, and a route held down that nobody asks for has no download to spare
 * a wait. A probe or a check out, or awaited, keeps its route. */
static void forget_idle(int64_t now_ms)
{
    char name[ROUTE_NAME_MAX];
    if (now_ms >= reg.swept_ms && now_ms - reg.swept_ms < HOSTS_SWEEP_MS)
        return;
    reg.swept_ms = now_ms;
    for (size_t i = 0; i < HOSTS_MAX; i++) {
        struct host *h = &reg.hosts[i];
        if (!h->origin[0] || h->probing || h->awaited || h->checking ||
            now_ms - h->seen_ms < HOSTS_IDLE_MS || now_ms < h->limit_until)
            continue;
        if (held(h))
            log_info("%s %s no longer held: not asked for in %d s", policies[h->kind].name,
                     name_of(h, name), HOSTS_IDLE_MS / 1000);
        drop(h);
    }
}

/* Lock held. What keeping `h` is worth: 2 held (a hold would be lost), 1 failing (its failures
 * in a row), 0 only answered lately (its answer). */
static int worth(const struct host *h)
{
    return held(h) ? 2 : h->failures > 0 || h->hung ? 1 : 0;
}

/* Lock held. Whether `a` is of less use than `b` to keep: the one worth less, then the one
 * asked for longest ago. */
static bool less_useful(const struct host *a, const struct host *b)
{
    if (worth(a) != worth(b))
        return worth(a) < worth(b);
    return a->seen_ms < b->seen_ms;
}

/* Lock held. The table is full: the least useful route's slot of those worth at most
 * `max_worth` (a probe or a check out, or awaited, keeps its route), emptied; NULL when none. */
static struct host *make_room(int max_worth)
{
    char name[ROUTE_NAME_MAX];
    struct host *victim = NULL;
    for (size_t i = 0; i < HOSTS_MAX; i++) {
        const struct host *h = &reg.hosts[i];
        if (!h->probing && !h->awaited && !h->checking && worth(h) <= max_worth &&
            (!victim || less_useful(h, victim)))
            victim = &reg.hosts[i];
    }
    if (victim) {
        if (held(victim))
            log_info("%s %s no longer held: its place went to another host",
                     policies[victim->kind].name, name_of(victim, name));
        drop(victim);
    }
    return victim;
}

/* What find does when the route is not in the table: nothing, or take a slot for one that
 * answered (a free one, or one of a route that only answered: an answer never pushes out a
 * failure) or for one that failed (any, the least useful). */
enum make { FIND_ONLY, MAKE_ANSWERED, MAKE_FAILING };

/* Lock held. The route's slot, or NULL; with `make`, a slot taken for it (above). */
static struct host *find(const char *origin, const char *from, enum host_kind kind, enum make make)
{
    struct host *slot = NULL;
    if (!origin[0])
        return NULL;
    for (size_t i = 0; i < HOSTS_MAX; i++) {
        if (reg.hosts[i].kind == kind && !strcmp(reg.hosts[i].origin, origin) &&
            !strcmp(reg.hosts[i].from, from))
            return &reg.hosts[i];
        if (!reg.hosts[i].origin[0] && !slot)
            slot = &reg.hosts[i];
    }
    if (make == FIND_ONLY || (!slot && !(slot = make_room(make == MAKE_FAILING ? 2 : 0))))
        return NULL;
    memset(slot, 0, sizeof(*slot));
    snprintf(slot->origin, sizeof(slot->origin), "%s", origin);
    snprintf(slot->from, sizeof(slot->from), "%s", from);
    slot->kind = kind;
    return slot;
}

/* Lock held. The route of `url` from `from` as `kind`, after a pass for idle ones (NULL: not in
 * the table). */
static struct host *host_of(const char *url, const struct outgoing_address *from,
                            enum host_kind kind, enum make make, int64_t now_ms)
{
    char origin[HOSTS_ORIGIN_MAX], addr[HOSTS_FROM_MAX];
    hosts_origin_of(url, origin, sizeof(origin));
    from_text(kind, from, addr, sizeof(addr));
    forget_idle(now_ms);
    return find(origin, addr, kind, make);
}

/* The wall-clock second `s`, as the log and the status write it, into out[32]. */
static const char *wall_text(int64_t s, char *out)
{
    struct tm tm;
    time_t t = (time_t)s;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return out;
}

/* Lock held. Why an ask of `h`, held at its upstream's asking, does not go, and in how many
 * seconds one may: what is left of the wait asked, 1 once it is over (its probe out or due). */
static void say_limited(const struct host *h, int64_t now_ms, char *why, size_t size,
                        int *retry_after)
{
    char until[32];
    int64_t left = h->probing || now_ms >= h->limit_until ? 0 : h->limit_until - now_ms;
    *retry_after = left > 0 ? (int)((left + 999) / 1000) : 1;
    snprintf(why, size, "%s: %s; held until %s, asked again in %d s", h->limit_who, h->limit_what,
             wall_text(h->limit_wall, until), *retry_after);
}

/* Lock held. Why an ask of held `h` does not go, and in how many seconds one may. */
static void say_held(const struct host *h, int64_t now_ms, char *why, size_t size, int *retry_after)
{
    char since[32], name[ROUTE_NAME_MAX];
    int64_t wait = h->probing             ? h->wait_ms
                   : h->probe_at > now_ms ? h->probe_at - now_ms
                                          : 0; /* due: the next with a slot probes */
    if (h->limit_until) {
        say_limited(h, now_ms, why, size, retry_after);
        return;
    }
    wall_text(h->since, since);
    *retry_after = (int)(wait / 1000 + 1);
    snprintf(why, size, "%s %s is down since %s (%d failures in a row%s); tried again in %d s",
             policies[h->kind].name, name_of(h, name), since, h->failures,
             h->hung ? ": it accepts connections but answers nothing" : "", *retry_after);
}

bool hosts_admit(const char *url, const struct outgoing_address *from, enum host_kind kind,
                 int64_t now_ms, bool may_probe, bool *probe, char *why, size_t size,
                 int *retry_after)
{
    bool go = true;
    assert((unsigned)kind < HOST_KINDS);
    *probe = false;
    pthread_mutex_lock(&reg.lock);
    struct host *h = host_of(url, from, kind, FIND_ONLY, now_ms);
    if (h && held(h))
        h->seen_ms = now_ms; /* asked for: kept while held */
    if (h && may_probe)
        h->awaited = false; /* the download that waited to be the probe is here */
    if (!h || !held_now(h, now_ms)) {
        go = true; /* not held, or passed over no longer: asked again */
    } else if (!h->probing && now_ms >= due_at(h) && may_probe) {
        h->probing = *probe = true; /* this attempt asks whether it is back */
    } else {
        say_held(h, now_ms, why, size, retry_after);
        go = false;
    }
    pthread_mutex_unlock(&reg.lock);
    return go;
}

enum host_word hosts_word(CURL *easy, CURLcode rc, bool refused)
{
    long sent = 0, heard = 0;
    curl_easy_getinfo(easy, CURLINFO_REQUEST_SIZE, &sent);
    curl_easy_getinfo(easy, CURLINFO_HEADER_SIZE, &heard);
    if (heard > 0)
        return HOST_UP; /* a redirect's answer too: this host answered, whatever came after */
    if (sent > 0)       /* silence or a reset after the request: the URL's, or a hung host's */
        return rc == CURLE_OPERATION_TIMEDOUT || rc == CURLE_RECV_ERROR ||
                       rc == CURLE_GOT_NOTHING || rc == CURLE_SEND_ERROR
                   ? HOST_SILENT
                   : HOST_UP;
    if (refused)
        return HOST_SAID_NOTHING; /* arca's own refusal */
    /* a connection timed out or refused; curl reports a connect timeout as a timeout */
    return rc == CURLE_COULDNT_CONNECT || rc == CURLE_OPERATION_TIMEDOUT ? HOST_DOWN
                                                                         : HOST_SAID_NOTHING;
}

/* Lock held. One more failure in a row of `h`: held at its kind's limit; a fault while held
 * (an origin's: its probe's) puts the next ask off, twice as long. Returns how long a kind not
 * probed is now passed over (0: not held by this failure): its own code says what that means
 * for its downloads (hosts_judged). */
static int64_t count_failure(struct host *h, bool probe, int64_t now_ms)
{
    const struct host_policy *pol = &policies[h->kind];
    char name[ROUTE_NAME_MAX];
    h->failures++;
    h->seen_ms = now_ms;
    if (h->since && (probe || !pol->probes)) {
        h->wait_ms = h->wait_ms * 2 > pol->max_ms ? pol->max_ms : h->wait_ms * 2;
        h->probe_at = now_ms + h->wait_ms;
    } else if (!h->since && pol->faults > 0 && h->failures >= pol->faults) {
        set_held(h, true);
        h->wait_ms = pol->first_ms;
        h->probe_at = now_ms + h->wait_ms;
    } else {
        return 0;
    }
    if (pol->probes && h->failures == pol->faults)
        log_error("%s %s held down after %d failures in a row%s: its downloads fail at once "
                  "(expired objects answer from disk within their stale-if-error)",
                  pol->name, name_of(h, name), h->failures,
                  h->hung ? " (it accepts connections but answers nothing)" : "");
    return pol->probes ? 0 : h->wait_ms;
}

/* Lock held. `h` answered: its failures and hold forgotten. An origin's route keeps its slot,
 * and when it answered (its silences are its URLs' for HOSTS_ANSWERED_MS); another kind's
 * leaves the table. */
static void clear(struct host *h, int64_t now_ms)
{
    char name[ROUTE_NAME_MAX];
    if (h->since)
        log_info("%s %s answers again after %d failures", policies[h->kind].name, name_of(h, name),
                 h->failures);
    if (h->limit_until && now_ms >= h->limit_until) { /* a limit still running is kept */
        log_info("%s: its hold is over, %s answers again", h->limit_who, name_of(h, name));
        set_limit(h, 0);
        h->limit_next_ms = 0;
    }
    set_held(h, false);
    h->failures = 0;
    h->hung = false;
    if (policies[h->kind].words)
        h->answered_ms = h->seen_ms = now_ms;
    else if (!h->limit_until)
        drop(h);
}

/* Lock held. A silence of the route (`h`, NULL: not in the table) after its request went:
 * whether its root is to be checked. Not when it answered any URL lately (a live route: the
 * silence is its URL's), nor when a check is out or answered lately. A held route's probe that
 * met silence connected: its URL's silence says nothing of the route (one client's resetting
 * URLs, each a probe in turn, kept it held for everyone), so its root decides (hosts_checked). */
static bool silence(const char *origin, const char *from, struct host *h, bool probe,
                    int64_t now_ms)
{
    if (h && h->since) {
        if (!probe || h->checking)
            return false;
        h->checking = true;
        h->seen_ms = now_ms;
        return true;
    }
    if (h && (h->checking || within(h->checked_ms, HOSTS_CHECK_QUIET_MS, now_ms) ||
              within(h->answered_ms, HOSTS_ANSWERED_MS, now_ms)))
        return false;
    if (!h && !(h = find(origin, from, HOST_ORIGIN, MAKE_FAILING)))
        return false;
    h->checking = true;
    h->seen_ms = now_ms;
    return true;
}

bool hosts_result(const char *url, const struct outgoing_address *from, enum host_kind kind,
                  enum host_word word, bool probe, int64_t now_ms)
{
    char origin[HOSTS_ORIGIN_MAX], addr[HOSTS_FROM_MAX];
    bool check = false;
    assert((unsigned)kind < HOST_KINDS);
    hosts_origin_of(url, origin, sizeof(origin));
    from_text(kind, from, addr, sizeof(addr));
    if (!origin[0])
        return false;
    pthread_mutex_lock(&reg.lock);
    forget_idle(now_ms);
    bool counts = policies[kind].words && policies[kind].faults > 0;
    enum make make = !counts             ? FIND_ONLY
                     : word == HOST_DOWN ? MAKE_FAILING
                     : word == HOST_UP   ? MAKE_ANSWERED
                                         : FIND_ONLY;
    struct host *h = find(origin, addr, kind, make);
    if (h && probe && h->probing) { /* the probe is over, however it ended */
        h->probing = false;
        h->probe_at = now_ms + h->wait_ms;
    }
    if (policies[kind].words && h && word == HOST_UP) {
        clear(h, now_ms);
    } else if (counts && h && word == HOST_DOWN) {
        h->hung = false;
        count_failure(h, probe, now_ms);
    } else if (counts && word == HOST_SILENT) {
        check = silence(origin, addr, h, probe, now_ms);
    }
    pthread_mutex_unlock(&reg.lock);
    return check;
}

/* Lock held. `h`'s root answered nothing before its check's time was up: hung, held at once,
 * unless the route answered meanwhile (a download of another URL: that root is one path); held
 * already, its next probe later. */
static void hold_hung(struct host *h, int64_t now_ms)
{
    char name[ROUTE_NAME_MAX];
    if (h->since) {
        h->hung = true;
        count_failure(h, true, now_ms);
        return;
    }
    if (within(h->answered_ms, HOSTS_ANSWERED_MS, now_ms))
        return;
    log_info("upstream host %s accepts connections but answers nothing, not even at its root",
             name_of(h, name));
    h->hung = true;
    if (h->failures < policies[HOST_ORIGIN].faults - 1)
        h->failures = policies[HOST_ORIGIN].faults - 1;
    count_failure(h, false, now_ms);
}

void hosts_checked(const char *url, const struct outgoing_address *from, enum host_check end,
                   int64_t now_ms)
{
    char name[ROUTE_NAME_MAX];
    pthread_mutex_lock(&reg.lock);
    struct host *h = host_of(url, from, HOST_ORIGIN, FIND_ONLY, now_ms);
    if (h && h->checking) {
        h->checking = false;
        if (end == HOST_CHECK_ANSWERED || end == HOST_CHECK_CLOSED)
            h->checked_ms = now_ms; /* its silences ask no new check for a while */
        if (end == HOST_CHECK_ANSWERED || (end == HOST_CHECK_CLOSED && h->since))
            clear(h, now_ms); /* a held route whose root connects again is back */
        else if (end == HOST_CHECK_CLOSED)
            log_debug("upstream host %s closes its root's connection without a word: a live "
                      "process, nothing held",
                      name_of(h, name));
        else if (end == HOST_CHECK_SILENT)
            hold_hung(h, now_ms);
    }
    pthread_mutex_unlock(&reg.lock);
}

int64_t hosts_judged(const char *url, enum host_kind kind, bool fault, int64_t now_ms)
{
    int64_t held_ms = 0;
    assert((unsigned)kind < HOST_KINDS && !policies[kind].words);
    pthread_mutex_lock(&reg.lock);
    struct host *h = host_of(url, NULL, kind, fault ? MAKE_FAILING : FIND_ONLY, now_ms);
    if (h && fault)
        held_ms = count_failure(h, false, now_ms);
    else if (h)
        clear(h, now_ms);
    pthread_mutex_unlock(&reg.lock);
    return held_ms;
}

void hosts_state(const char *url, enum host_kind kind, int64_t now_ms, struct host_state *out)
{
    char origin[HOSTS_ORIGIN_MAX];
    *out = (struct host_state){0};
    hosts_origin_of(url, origin, sizeof(origin));
    pthread_mutex_lock(&reg.lock);
    forget_idle(now_ms);
    for (size_t i = 0; origin[0] && i < HOSTS_MAX; i++) { /* each route of it */
        const struct host *h = &reg.hosts[i];
        if (h->kind != kind || strcmp(h->origin, origin))
            continue;
        if (held_now(h, now_ms) && (!out->held || h->since < out->since)) {
            out->held = true;
            out->since = h->since;
        }
        if (h->failures > out->failures)
            out->failures = h->failures;
    }
    pthread_mutex_unlock(&reg.lock);
}

bool hosts_await_probe(const char *url, const struct outgoing_address *from, int64_t until_ms)
{
    bool mine = false;
    pthread_mutex_lock(&reg.lock);
    struct host *h = host_of(url, from, HOST_ORIGIN, FIND_ONLY, monotonic_ms());
    if (h && held(h) && !h->probing && !h->awaited && until_ms >= due_at(h))
        mine = h->awaited = true;
    pthread_mutex_unlock(&reg.lock);
    return mine;
}

bool hosts_any_down(void)
{
    return atomic_load(&reg.down) > 0 || atomic_load(&reg.limited) > 0;
}

bool hosts_ends_retries(const char *url, const struct outgoing_address *from)
{
    if (!hosts_any_down())
        return false;
    pthread_mutex_lock(&reg.lock);
    struct host *h = host_of(url, from, HOST_ORIGIN, FIND_ONLY, monotonic_ms());
    bool ends = h && held(h);
    pthread_mutex_unlock(&reg.lock);
    return ends;
}

bool hosts_refuses(const char *url, const struct outgoing_address *from, int64_t now_ms,
                   int64_t until_ms)
{
    if (!hosts_any_down())
        return false;
    pthread_mutex_lock(&reg.lock);
    struct host *h = host_of(url, from, HOST_ORIGIN, FIND_ONLY, now_ms);
    bool refuses = h && held(h) && (h->probing || h->awaited || until_ms < due_at(h));
    pthread_mutex_unlock(&reg.lock);
    return refuses;
}

size_t hosts_down_count(void)
{
    pthread_mutex_lock(&reg.lock);
    forget_idle(monotonic_ms());
    pthread_mutex_unlock(&reg.lock);
    return (size_t)atomic_load(&reg.down);
}

struct host_down *hosts_down_list(size_t *n, int64_t now_ms)
{
    struct host_down *out = NULL;
    *n = 0;
    pthread_mutex_lock(&reg.lock);
    forget_idle(now_ms);
    size_t down = (size_t)atomic_load(&reg.down); /* changed under this lock only */
    if (down && (out = calloc(down, sizeof(*out)))) {
        for (size_t i = 0; i < HOSTS_MAX && *n < down; i++) {
            const struct host *h = &reg.hosts[i];
            if (!h->origin[0] || !h->since || h->kind != HOST_ORIGIN)
                continue;
            struct host_down *d = &out[(*n)++];
            snprintf(d->origin, sizeof(d->origin), "%s", h->origin);
            snprintf(d->from, sizeof(d->from), "%s",
                     strcmp(h->from, reg.default_from) ? h->from : "");
            d->since = h->since;
            d->failures = h->failures;
            d->probe_in_ms = h->probing || now_ms >= h->probe_at ? 0 : h->probe_at - now_ms;
            d->hung = h->hung;
        }
    }
    pthread_mutex_unlock(&reg.lock);
    return out;
}

/* Lock held. The hold a limit that names no wait gets on `h`: HOSTS_PROBE_FIRST_MS, doubled by
 * each such limit in a row up to HOSTS_PROBE_MAX_MS, as a host held down is probed. */
static int64_t next_limit_ms(struct host *h)
{
    int64_t ms = h->limit_next_ms ? h->limit_next_ms : HOSTS_PROBE_FIRST_MS;
    h->limit_next_ms = ms * 2 > HOSTS_PROBE_MAX_MS ? HOSTS_PROBE_MAX_MS : ms * 2;
    return ms;
}

int64_t hosts_limit(const char *url, const struct outgoing_address *from, const char *who,
                    const char *what, int64_t asked_ms, int64_t max_ms, int64_t now_ms)
{
    char until[32];
    int64_t hold = 0;
    pthread_mutex_lock(&reg.lock);
    struct host *h = host_of(url, from, HOST_ORIGIN, MAKE_FAILING, now_ms);
    bool running = h && h->limit_until > now_ms;
    if (h)
        hold = asked_ms > 0 ? asked_ms : running ? 0 : next_limit_ms(h);
    bool cut = hold > max_ms;
    if (cut)
        hold = max_ms;
    if (!h || (running && now_ms + hold <= h->limit_until)) { /* one more answer of its wait */
        pthread_mutex_unlock(&reg.lock);
        return 0;
    }
    h->seen_ms = now_ms;
    set_limit(h, now_ms + hold);
    h->limit_start = now_ms;
    h->limit_wall = (int64_t)time(NULL) + (hold + 999) / 1000;
    snprintf(h->limit_who, sizeof(h->limit_who), "%s", who);
    if (cut)
        snprintf(h->limit_what, sizeof(h->limit_what), "%.120s, cut to --registry-hold-max %lld s",
                 what, (long long)(max_ms / 1000));
    else
        snprintf(h->limit_what, sizeof(h->limit_what), "%s", what);
    if (!running)
        log_warn("%s held until %s (%lld s): %s; nothing is asked of it meanwhile", who,
                 wall_text(h->limit_wall, until), (long long)((hold + 999) / 1000), h->limit_what);
    pthread_mutex_unlock(&reg.lock);
    return hold;
}

void hosts_cap_limits(int64_t max_ms, int64_t now_ms)
{
    char until[32];
    pthread_mutex_lock(&reg.lock);
    for (size_t i = 0; i < HOSTS_MAX; i++) {
        struct host *h = &reg.hosts[i];
        int64_t end = h->limit_start + max_ms;
        if (h->kind != HOST_ORIGIN || !h->limit_until || h->limit_until <= end)
            continue;
        h->limit_wall -= (h->limit_until - (end > now_ms ? end : now_ms)) / 1000;
        set_limit(h, end > now_ms ? end : now_ms);
        snprintf(h->limit_what + strcspn(h->limit_what, ","),
                 sizeof(h->limit_what) - strcspn(h->limit_what, ","),
                 ", cut to --registry-hold-max %lld s", (long long)(max_ms / 1000));
        log_warn("%s now held until %s: %s", h->limit_who, wall_text(h->limit_wall, until),
                 h->limit_what);
    }
    pthread_mutex_unlock(&reg.lock);
}

bool hosts_limited(const char *url, const struct outgoing_address *from, int64_t now_ms, char *why,
                   size_t size, int *retry_after)
{
    bool limited = false;
    if (!atomic_load(&reg.limited))
        return false;
    pthread_mutex_lock(&reg.lock);
    struct host *h = host_of(url, from, HOST_ORIGIN, FIND_ONLY, now_ms);
    if (h && h->limit_until && (now_ms < h->limit_until || h->probing)) {
        limited = true;
        h->seen_ms = now_ms;
        if (why)
            say_limited(h, now_ms, why, size, retry_after);
    }
    pthread_mutex_unlock(&reg.lock);
    return limited;
}

void hosts_limit_state(const char *url, int64_t now_ms, struct host_limit *out)
{
    char origin[HOSTS_ORIGIN_MAX];
    *out = (struct host_limit){0};
    if (!atomic_load(&reg.limited))
        return;
    hosts_origin_of(url, origin, sizeof(origin));
    pthread_mutex_lock(&reg.lock);
    forget_idle(now_ms);
    for (size_t i = 0; origin[0] && i < HOSTS_MAX; i++) { /* each route of it: the latest end */
        const struct host *h = &reg.hosts[i];
        if (h->kind != HOST_ORIGIN || !h->limit_until || strcmp(h->origin, origin) ||
            (out->held && h->limit_wall <= out->until))
            continue;
        out->held = true;
        out->until = h->limit_wall;
        snprintf(out->why, sizeof(out->why), "%s", h->limit_what);
    }
    pthread_mutex_unlock(&reg.lock);
}
