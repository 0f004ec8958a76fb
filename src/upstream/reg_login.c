/* reg_auth_ensure (registry/reg_auth.h): the token dance's requests, on the upstream thread's
 * multi handle as documents (probe.h), so the upstream address policy, the host hold and the
 * uplink cap judge them as any upstream request; a realm's token is its registry's too (struct
 * doc_ask's realm_of): asked nothing while the registry is held at its asking, its 429 holds it.
 * What they teach is kept by reg_auth.c. One request is out per registry's /v2/ ping and per
 * registry and scope's token: every ensure meanwhile waits on it (twenty clients pulling one cold
 * image ask the realm once). A failed one's answer is every such ensure's for FAILED_KEPT_MS after:
 * a /v2/ request's own ensure and its download's (source_registry.c) ask once between them, and
 * clients pulling through an outage or a 429 do not each ask again. */
#include "registry/reg_auth.h"
#include "upstream/probe.h"
#include "base/clock.h"
#include "log/log.h"

#include <assert.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* One ensure: who waits, for what. */
struct waiter {
    struct upstream_loop *loop;
    const struct registry *r;
    char scope[REG_SCOPE_MAX];
    reg_auth_done_fn *done;
    void *arg;
    struct waiter *next;
};

/* Long enough to span a request's two ensures, short enough that a registry back up is asked
 * again at once (a host held down waits as long: hosts.h). */
#define FAILED_KEPT_MS 1000

/* One request out: a registry's /v2/ ping (`ping`), or a token of its realm for `scope`; once
 * it failed (`failed`: the status told), kept with no waiters until `until`. */
struct asking {
    struct upstream_loop *loop;
    const struct registry *r;
    bool ping;
    char scope[REG_SCOPE_MAX];
    struct waiter *waiters;
    int failed;
    char why[300];
    int64_t until; /* monotonic ms */
    uint64_t gen;  /* the password it asks with (registries_login_gen) */
    struct asking *next;
};

static struct asking *out;                /* upstream thread only */
static struct upstream_loop *thread_loop; /* upstream_init's: an ensure naming none */

void reg_auth_use_loop(struct upstream_loop *loop)
{
    thread_loop = loop;
}

static void step(struct waiter *w);

/* The request's answer is `w`'s: told, and freed. */
static void tell(struct waiter *w, int status, const char *why)
{
    w->done(status, why, w->arg);
    free(w);
}

/* The request out for `r` and `ping`/`scope`, or its failure kept; the failures kept past their
 * time, or of a password since replaced (a SIGHUP read another: asked again at once), go on
 * the way. */
static struct asking *asking_for(const struct registry *r, bool ping, const char *scope)
{
    int64_t now = monotonic_ms();
    for (struct asking **p = &out; *p;) {
        struct asking *a = *p;
        if (a->failed && (a->until <= now || a->gen != registries_login_gen(a->r))) {
            *p = a->next;
            free(a);
        } else if (a->r == r && a->ping == ping && (ping || strcmp(a->scope, scope) == 0)) {
            return a;
        } else {
            p = &a->next;
        }
    }
    return NULL;
}

/* `a` answered: its waiters handed over; out of the list, or kept as a failure. */
static struct waiter *take_waiters(struct asking *a, int status, const char *why)
{
    struct waiter *w = a->waiters;
    a->waiters = NULL;
    if (status != 0) {
        a->failed = status;
        snprintf(a->why, sizeof(a->why), "%s", why);
        a->until = monotonic_ms() + FAILED_KEPT_MS;
        return w;
    }
    for (struct asking **p = &out; *p; p = &(*p)->next)
        if (*p == a) {
            *p = a->next;
            break;
        }
    free(a);
    return w;
}

/* Every waiter of `a` told `status`, `why` (0: each goes on: its next step). */
static void answer_all(struct asking *a, int status, const char *why)
{
    struct waiter *w = take_waiters(a, status, why), *next;
    for (; w; w = next) {
        next = w->next;
        w->next = NULL;
        if (status == 0)
            step(w);
        else
            tell(w, status, why);
    }
}

/* The status clients are told when the dance failed with `status` upstream (0: no answer,
 * `failure_status` said): a 429 stays one (the registry's limit), the realm's refusal of the
 * login stays 401/403, anything else is the upstream's failure. */
static int failure_status(const struct probe_result *res)
{
    int s = res->status ? res->status : res->failure_status;
    return s == 429 || s == 401 || s == 403 || s == 503 || s == 504 ? s : 502;
}

/* The registry's refusals are counted as its requests' are (source_registry.c): its ping's
 * and its realm's too, a 429 above all. */
static void count(const struct registry *r, int status)
{
    if (status == 429)
        atomic_fetch_add(&r->counters->too_many, 1);
    if (status >= 500 || (status >= 400 && status != 404 && status != 401))
        atomic_fetch_add(&r->counters->refused, 1);
}

/* Who an ask of `a` names when it fails (doc_ask's who): "registry NAME:", as a download of the
 * registry's does ("registry NAME: failed after …"), or its realm. */
static void who_of(const struct asking *a, char *out, size_t size)
{
    snprintf(out, size, a->ping ? "registry %.60s:" : "registry %.60s's token realm:", a->r->name);
}

/* Why the ask of `a` got no answer (`res`), naming the registry once: the probe's summary names
 * it (who_of), and so does a hold at its asking ("registry NAME: answered 429 …"); other words
 * (its host held down after failures) are led by who_of's. */
static void failed_words(const struct asking *a, const struct probe_result *res, char *why,
                         size_t size)
{
    const char *words = res->failure[0] ? res->failure : res->error;
    char named[80], who[FAILURE_WHO_MAX];
    int n = snprintf(named, sizeof(named), "registry %.60s", a->r->name);
    if (!strncmp(words, named, (size_t)n) && (words[n] == ':' || words[n] == '\'')) {
        snprintf(why, size, "%.299s", words);
        return;
    }
    who_of(a, who, sizeof(who));
    snprintf(why, size, "%.90s %.200s", who, words);
}

static void ping_answered(const struct probe_result *res, const char *body, size_t len, void *arg)
{
    struct asking *a = arg;
    char why[300];
    (void)body, (void)len;
    assert(upstream_on_thread());
    count(a->r, res->status);
    if (res->status == 0) {
        failed_words(a, res, why, sizeof(why));
        answer_all(a, failure_status(res), why);
    } else if (reg_auth_learn(a->r, res->status, res->challenge, why, sizeof(why)) < 0) {
        answer_all(a, res->status == 429 ? 429 : 502, why);
    } else {
        answer_all(a, 0, "");
    }
}

/* The realm refused `r`'s token (`status`, 401 or 403), in words for the client and the log:
 * with a login, which password file it came from (its path, never its content), kept as the
 * login's refusal for the status (registries.h); without, that none is configured. */
static void realm_refused(const struct registry *r, int status, char *why, size_t size)
{
    if (!r->has_login) {
        snprintf(why, size,
                 "registry %s's token realm refused an anonymous token (%d): no login is "
                 "configured for it",
                 r->name, status);
        return;
    }
    snprintf(why, size,
             "registry %.64s's token realm refused the login of password-file %.150s (%d)", r->name,
             r->password_file, status);
    registries_login_refused(r, why);
}

static void token_answered(const struct probe_result *res, const char *body, size_t len, void *arg)
{
    struct asking *a = arg;
    char why[300];
    assert(upstream_on_thread());
    count(a->r, res->status == 401 ? 403 : res->status); /* the realm refusing the login */
    if (res->status == 0) {
        failed_words(a, res, why, sizeof(why));
        answer_all(a, failure_status(res), why);
    } else if (res->status == 401 || res->status == 403) {
        realm_refused(a->r, res->status, why, sizeof(why));
        answer_all(a, failure_status(res), why);
    } else if (res->status != 200) {
        snprintf(why, sizeof(why), "registry %s's token realm answered %d", a->r->name,
                 res->status);
        answer_all(a, failure_status(res), why);
    } else if (reg_auth_keep(a->r, a->scope, body, len, monotonic_ms(), time(NULL), why,
                             sizeof(why)) < 0) {
        answer_all(a, 502, why);
    } else {
        log_debug("registry %s: a token for %s kept", a->r->name, a->scope);
        registries_login_taken(a->r);
        answer_all(a, 0, "");
    }
}

/* Ask what `a` is for: the registry's /v2/, or its realm's token (with its login, if any). */
static int ask(struct asking *a, const struct reg_challenge *c)
{
    char url[REGISTRY_URL_MAX + REG_SCOPE_MAX * 3 + 300],
        login[sizeof(a->r->username) + REGISTRY_PASSWORD_MAX + 2] = "", who[FAILURE_WHO_MAX];
    struct doc_ask d = {.url = url, .realm_of = a->ping ? NULL : a->r, .who = who};
    int rc;
    who_of(a, who, sizeof(who));
    if (a->ping)
        snprintf(url, sizeof(url), "%s/v2/", a->r->url);
    else if (!reg_token_url(c, a->scope, url, sizeof(url)))
        return -1;
    if (!a->ping && registries_login(a->r, login, sizeof(login), NULL))
        d.userpwd = login;
    doc_done_fn *done = a->ping ? ping_answered : token_answered;
    rc = probe_get_as(a->loop, &d, done, a);
    OPENSSL_cleanse(login, sizeof(login));
    return rc;
}

/* `w` waits on the request for `ping`/its scope: the one out, or a new one. */
static void wait_on(struct waiter *w, bool ping, const struct reg_challenge *c)
{
    struct asking *a = asking_for(w->r, ping, w->scope);
    if (a && a->failed) {
        tell(w, a->failed, a->why);
        return;
    }
    if (!a) {
        if (!(a = calloc(1, sizeof(*a)))) {
            tell(w, 502, "out of memory");
            return;
        }
        *a = (struct asking){.loop = w->loop,
                             .r = w->r,
                             .ping = ping,
                             .gen = registries_login_gen(w->r),
                             .next = out};
        snprintf(a->scope, sizeof(a->scope), "%s", ping ? "" : w->scope);
        out = a;
        if (ask(a, c) < 0) {
            a->waiters = w;
            answer_all(a, 502, "arca could not ask the registry (out of memory or stopping)");
            return;
        }
    }
    w->next = a->waiters;
    a->waiters = w;
}

/* Whether the login would cross the wire in the clear: the admin named the registry by https://
 * and its challenge names a plain-http realm (the registry, or whoever answers for it, chose
 * it). A registry named by http:// is a plain path the admin chose: its realm may be too. */
static bool login_in_clear(const struct registry *r, const struct reg_challenge *c)
{
    return r->has_login && !strncasecmp(c->realm, "http://", 7) &&
           !strncasecmp(r->url, "https://", 8);
}

/* What `w` lacks now: nothing (told 0), the challenge, a token. */
static void step(struct waiter *w)
{
    struct reg_challenge c;
    char why[300];
    switch (reg_auth_need(w->r, w->scope, monotonic_ms(), &c)) {
    case REG_NEED_NOTHING:
        tell(w, 0, "");
        break;
    case REG_NEED_LOGIN:
        snprintf(why, sizeof(why),
                 "registry %s asks for a login (basic auth) and none is configured", w->r->name);
        tell(w, 502, why);
        break;
    case REG_NEED_PING:
        wait_on(w, true, NULL);
        break;
    case REG_NEED_TOKEN:
        if (login_in_clear(w->r, &c)) {
            snprintf(why, sizeof(why),
                     "registry %s names a token realm over plain http: arca sends its login "
                     "only over https",
                     w->r->name);
            tell(w, 502, why);
            break;
        }
        wait_on(w, false, &c);
        break;
    }
}

static void on_thread(void *arg)
{
    assert(upstream_on_thread());
    step(arg);
}

int reg_auth_ensure(struct upstream_loop *loop, const struct registry *r, const char *scope,
                    reg_auth_done_fn *done, void *arg)
{
    struct waiter *w = calloc(1, sizeof(*w));
    if (!w)
        return -1;
    *w = (struct waiter){.loop = loop ? loop : thread_loop, .r = r, .done = done, .arg = arg};
    if (!w->loop) { /* no upstream thread runs (a unit's process) */
        free(w);
        return -1;
    }
    snprintf(w->scope, sizeof(w->scope), "%s", scope);
    if (upstream_on_thread()) { /* a download's: no hop */
        step(w);
        return 0;
    }
    if (probe_call(w->loop, on_thread, w) < 0) {
        free(w);
        return -1;
    }
    return 0;
}

void reg_auth_abandon(void *arg)
{
    assert(upstream_on_thread());
    for (struct asking *a = out; a; a = a->next)
        for (struct waiter **w = &a->waiters; *w;) {
            struct waiter *gone = *w;
            if (gone->arg != arg) {
                w = &gone->next;
                continue;
            }
            *w = gone->next;
            free(gone);
        }
}
