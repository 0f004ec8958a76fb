/*
 * hosts.h — the hold table: the one table of upstream hosts held down, origins, mirrors and parents
 * alike (docs/CACHING.md, "When the origin is down"; docs/CLUSTER.md, "Holding a failing parent
 * down"). A host is a kind and a scheme, name and port (as written: no lookup); the same name
 * asked as a mirror and as an origin is two hosts, each with its kind's policy (relayd's tables).
 * An origin is held as a route: its name and port, and the address its connections leave from
 * (outgoing.h: a rule's outgoing-address, else --outgoing-address; the kernel's choice is one
 * address too): a partner's firewall that lets in one address of this host and resets the
 * others says nothing of the route leaving from that one, and no route's hold is another's.
 *
 *  - an origin is held after --origin-failures faults in a row (0: never), judged by what its
 *    attempts' ends say (hosts_word); while held, one probe at a time goes, due
 *    HOSTS_PROBE_FIRST_MS after, then after a wait that doubles up to HOSTS_PROBE_MAX_MS;
 *  - a mirror is held after HOSTS_MIRROR_FAULTS, judged by mirror.c (no answer to its
 *    question), and passed over for HOSTS_MIRROR_HOLD_MS, then asked again;
 *  - a parent is held after HOSTS_PARENT_FAULTS of its own faults in a row, judged by parent.c
 *    (bytes that check out clear it), and passed over for HOSTS_PARENT_HOLD_MS, each fault
 *    meanwhile doubling that up to HOSTS_PARENT_HOLD_MAX_MS;
 *  - an origin's route is held at its upstream's asking (hosts_limit: a container registry's
 *    429, or its 503 with a Retry-After, easy.c tells) for the wait it asked, at most the most
 *    its caller gives (--registry-hold-max), or without one HOSTS_PROBE_FIRST_MS doubled by each
 *    such answer in a row up to HOSTS_PROBE_MAX_MS; then one probe at a time, as a route held
 *    down: an answer once the wait is over lifts it, another limit holds it again. A limit
 *    that lands while one runs (an answer to a request asked before) only lengthens it, and
 *    the route stays in the table until its wait is over, asked or not (as a held one when
 *    the table is full: below). Its refusals say so
 *    (hosts_limited: clients are told 429, the seconds left as Retry-After).
 *
 * Every handle asks one question before it sends (hosts_admit, from easy_go): whether its host,
 * of the kind it is asked as, lets it go. An origin's attempt says DOWN when its connection was
 * refused or timed out before the request went, UP when an answer came. Silence or a reset after
 * the request went (HOST_SILENT) is one URL's word as much as its host's: any client can ask for
 * a route that resets. So a route is held for it on what it does for everyone: one that answered
 * any attempt in the last HOSTS_ANSWERED_MS is live, and its silences are its URLs' (nothing
 * held, nothing asked). Else the host itself is asked: one check of its root, from the route's
 * address (hosts_result asks for it, the caller sends it, hosts_checked gets its end) decides:
 * any HTTP answer is a live host; a connection closed without a word is a live process that
 * will not answer that path (nginx's 444), nothing held; nothing at all before the check's time
 * is up holds it at once (a hung process: the kernel completes the handshake, nothing ever
 * answers), unless the route answered meanwhile. A host that answered or closed a check is not
 * checked again for HOSTS_CHECK_QUIET_MS. Refused connections are no URL's: they hold the route
 * after --origin-failures in a row, however lately it answered.
 *
 * Two other questions come before a send, not instead of it: the queue asks, before a download
 * takes a slot, whether its host's hold refuses it now (hosts_refuses) or wants it as its probe
 * (hosts_await_probe); a download or a fill's piece asks, before it waits out a backoff or sends
 * a retry, whether its host's hold ends its retries (hosts_ends_retries). No other file keeps a
 * table of held hosts. Each asks with the address its connections leave from (`from`, NULL: the
 * kernel's choice); a mirror's and a parent's hold is their host's whatever the address.
 *
 * Contract: hosts_configure runs on main before the upstream thread starts; hosts_admit,
 * hosts_result, hosts_judged and hosts_checked on the upstream thread; the rest on any thread.
 * One mutex guards the hold table, held for a few comparisons at a time (a pass over HOSTS_MAX
 * entries at most once a HOSTS_SWEEP_MS) and never while another lock is taken: no lock nests
 * in it, and no caller holds one of its own while asking (parent_report copies its table first).
 * Times in ms are monotonic_ms()'s. At most HOSTS_MAX routes are tracked, those with failures
 * and those that answered lately: a route neither failing nor asked for HOSTS_IDLE_MS leaves the
 * table, and a new failing route takes the place of the least useful one when it is full (one
 * that only answered, then one not held, before one held, the one asked for longest ago first),
 * so that a burst of dead hosts never keeps a later outage from being held; an answer takes only
 * a free place or one of a route that only answered. The status's hosts held down (hosts_down_*,
 * hosts_any_down) are the origins' routes; a parent's hold is shown as its state (hosts_state),
 * a mirror's only in the log, a route's at its upstream's asking as its registry's
 * (hosts_limit_state; hosts_any_down counts it too).
 */
#ifndef ARCA_HOSTS_H
#define ARCA_HOSTS_H

#include "config/config.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HOSTS_MAX 256
#define HOSTS_ORIGIN_MAX 300
#define HOSTS_PROBE_FIRST_MS 1000
#define HOSTS_PROBE_MAX_MS 60000
#define HOSTS_IDLE_MS (5 * HOSTS_PROBE_MAX_MS)
#define HOSTS_SWEEP_MS 1000
#define HOSTS_MIRROR_FAULTS 1
#define HOSTS_MIRROR_HOLD_MS 60000
#define HOSTS_PARENT_FAULTS 3
#define HOSTS_PARENT_HOLD_MS 5000
#define HOSTS_PARENT_HOLD_MAX_MS 60000
/* A check of a host's root waits for an answer at most --stall-timeout, and this long. */
#define HOSTS_CHECK_MAX_MS 10000
#define HOSTS_CHECK_QUIET_MS 1000
/* A route that answered within this long is live: a silence of its is one URL's. */
#define HOSTS_ANSWERED_MS HOSTS_PROBE_MAX_MS
/* "192.0.2.7,2001:db8::7": the address a route leaves from, as text (config_outgoing_text). */
#define HOSTS_FROM_MAX 96

/* What a host is asked as: each kind its policy (above). */
enum host_kind { HOST_ORIGIN, HOST_MIRROR, HOST_PARENT, HOST_KINDS };

/* What the end of an attempt says of its host. */
enum host_word {
    HOST_SAID_NOTHING, /* arca refused the address, the name did not resolve, the attempt was
                          cut or never went, or arca stops */
    HOST_UP,           /* the request went and an answer came (a redirect too) */
    HOST_DOWN,         /* the connection was refused, or timed out before the request went */
    HOST_SILENT,       /* the request went, then silence or a reset before any answer: what
                          the route did lately, else the host's check, decides */
};

/* How a check of a host's root (hosts_result asked for it) ended. */
enum host_check {
    HOST_CHECK_NONE,     /* not asked, or arca stops, or nothing learnt: says nothing */
    HOST_CHECK_ANSWERED, /* any HTTP answer: the host is up */
    HOST_CHECK_CLOSED,   /* closed or reset without a word: a live process, nothing held */
    HOST_CHECK_SILENT,   /* nothing before its time was up, or its connection refused: hung */
};

/* A host held down, as the status page and `arca status` show it. */
struct host_down {
    char origin[HOSTS_ORIGIN_MAX]; /* scheme://name:port */
    char from[HOSTS_FROM_MAX];     /* the address its route leaves from; "": the default one */
    int64_t since;                 /* wall-clock second it went down */
    int failures;                  /* consecutive failed attempts */
    int64_t probe_in_ms;           /* until its next probe may go (0: due, or one is out) */
    bool hung;                     /* it accepts connections and answers nothing */
};

/* What held a route at its upstream's asking, as the status shows it (hosts_limit_state). */
#define HOSTS_LIMIT_WHY_MAX 200
struct host_limit {
    bool held;
    int64_t until;                 /* wall-clock second its wait ends */
    char why[HOSTS_LIMIT_WHY_MAX]; /* what its upstream said ("answered 429 ..."): no URL */
};

/* A host's state, as parent_report shows it. */
struct host_state {
    bool held;
    int64_t since; /* wall-clock second its hold began (0: not held) */
    int failures;  /* faults in a row */
};

/* --origin-failures (0: never hold a host down); `from`: --outgoing-address (NULL: none), the
 * address routes leave from unless a rule says otherwise (the list names the others). */
void hosts_configure(int origin_failures, const struct outgoing_address *from);

/* "scheme://name:port" of `url` (the scheme's port when it names none), lower case; "" when it
 * cannot be read. */
void hosts_origin_of(const char *url, char *out, size_t size);

/* The one question every handle asks before it sends (easy_go): whether an attempt at `url`,
 * leaving from `from`, asked as `kind`, may go now. True when its host is not held, or when this
 * attempt is its probe (an origin's: *probe set, its hosts_result says so; only when `may_probe`: a
 * download started without a slot must not be the probe, which runs within the download limits).
 * False when it is held: `why` (one line naming the host, since when and how many failures) and
 * *retry_after (seconds until it may be tried again, at least 1). */
bool hosts_admit(const char *url, const struct outgoing_address *from, enum host_kind kind,
                 int64_t now_ms, bool may_probe, bool *probe, char *why, size_t size,
                 int *retry_after);
/* What curl's end of an attempt (`rc`, on `easy`) says of its host; `refused`: arca's address
 * policy refused an address it was to connect to. */
enum host_word hosts_word(CURL *easy, CURLcode rc, bool refused);
/* An attempt at `url` from `from`, asked as `kind`, ended (or was cut), saying `word` of its
 * host. Any answer, a 5xx's too, clears an origin's route and says it answered then: one URL
 * answering 502 to any client who asks for it must not hold the host down for everyone
 * (docs/SECURITY.md, "Stale answers"). A `probe`'s mark goes
 * however it ended: HOST_SAID_NOTHING leaves the host held, its next probe due after the same
 * wait. A mirror's and a parent's ends are judged by their kinds' code (hosts_judged), not here.
 * True: `word` was HOST_SILENT, and the caller is to check the host (its root, any answer) and
 * tell hosts_checked how it ended; meanwhile its silences say nothing more. */
bool hosts_result(const char *url, const struct outgoing_address *from, enum host_kind kind,
                  enum host_word word, bool probe, int64_t now_ms);
/* How the check hosts_result asked for (of `url`'s host, from `from`) ended: SILENT holds the
 * route at once ("it accepts connections but answers nothing") unless it answered within
 * HOSTS_ANSWERED_MS; the others hold nothing. */
void hosts_checked(const char *url, const struct outgoing_address *from, enum host_check end,
                   int64_t now_ms);
/* A mirror's or a parent's own code judged an ask of `url`: a `fault` of its own (counted toward
 * its kind's hold), or its answer good (its faults in a row and its hold forgotten). Returns the
 * ms the host is now passed over for when this fault held it (or held it longer), else 0: the
 * kind's code logs it, in its own words (what being passed over means for its downloads). */
int64_t hosts_judged(const char *url, enum host_kind kind, bool fault, int64_t now_ms);
/* `url`'s host as `kind` now (a parent's state in the status); an origin's, held on any route. */
void hosts_state(const char *url, enum host_kind kind, int64_t now_ms, struct host_state *out);
/* Whether an attempt at `url` from `from` would be refused (hosts_admit false) from now to
 * `until_ms`: its route held down, and its probe out or not due by then. Takes no mark: an
 * attempt that may be the probe gets it from hosts_admit as it starts. */
bool hosts_refuses(const char *url, const struct outgoing_address *from, int64_t now_ms,
                   int64_t until_ms);
/* A download of held `url` that has no slot waits for one to be its host's probe, the probe
 * being due by `until_ms`: true when it is the one (no probe out, none waiting), marked until a
 * download of the host that may probe reaches hosts_admit (it, or one that found a slot first);
 * meanwhile hosts_refuses is true for the host's other downloads, which fail at once. False:
 * another waits or probes, or the host is not held. */
bool hosts_await_probe(const char *url, const struct outgoing_address *from, int64_t until_ms);
/* Whether any host is held now, down or at its upstream's asking: one atomic load, for loops
 * that would ask of many. */
bool hosts_any_down(void);
/* Whether a download's retries at `url` from `from` end now: its route, as an origin's, is held
 * down (its own failures may have just held it) or at its upstream's asking. A retry would meet the
 * hold at hosts_admit, so none is waited for or sent: the download (or a fill's piece) ends as its
 * last attempt did. */
bool hosts_ends_retries(const char *url, const struct outgoing_address *from);
/* How many hosts are held down now. */
size_t hosts_down_count(void);
/* The hosts held down now, copied in one hold of the table's lock (malloc'd, the caller
 * frees it), their number in *n; NULL when there are none (or out of memory: *n is 0 then). */
struct host_down *hosts_down_list(size_t *n, int64_t now_ms);

/* Upstream thread. `url`'s route from `from` answered asking arca to wait `asked_ms` (a
 * Retry-After; 0 when it said none: the route's next wait, above), at most `max_ms`: held until
 * then, its asks refused meanwhile (hosts_admit), then one probe. `who` names what is held as
 * the log and the refusals say it ("registry docker.io"), `what` what it answered ("answered
 * 429 (Retry-After: 3600 s)"); a new hold is logged once, with its end. Returns the hold set
 * (ms), or 0 when one running already lasts as long. */
int64_t hosts_limit(const char *url, const struct outgoing_address *from, const char *who,
                    const char *what, int64_t asked_ms, int64_t max_ms, int64_t now_ms);
/* Whether `url`'s route from `from` is held at its upstream's asking now: its wait not over, or
 * its probe out. If so, unless `why` is NULL, `why` (one line: who, what it answered, until
 * when) and *retry_after (the seconds left, at least 1): what its clients are told with a 429. */
bool hosts_limited(const char *url, const struct outgoing_address *from, int64_t now_ms, char *why,
                   size_t size, int *retry_after);
/* Any thread (a SIGHUP's reload): each hold at its upstream's asking that `max_ms` from its
 * start would have ended sooner ends then (now, when that is past: its probe goes next), said
 * once in the log; a longer cap leaves running holds as they are. */
void hosts_cap_limits(int64_t max_ms, int64_t now_ms);
/* The hold at its upstream's asking of any route of `url`'s host (the one ending last), until
 * a probe lifts it, into *out (held false: none). */
void hosts_limit_state(const char *url, int64_t now_ms, struct host_limit *out);

#endif
