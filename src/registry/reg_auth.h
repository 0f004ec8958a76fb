/*
 * reg_auth.h — a registry's authorisation, as arca does it for its clients: the token realm's
 * dance (an upstream's 401 says `WWW-Authenticate: Bearer realm=...,service=...`; a token is
 * asked of the realm for a scope "repository:<name>:pull", anonymously or with the registry's
 * login), tokens kept per registry and scope until shortly before they expire; or HTTP basic
 * auth when the upstream asks for it (`WWW-Authenticate: Basic`) and a login is configured.
 *
 * Contract: reg_auth_ensure() may be called from any thread; its `done` runs once, on the
 * upstream thread (the caller wakes its request from there: park.h), after the registry's
 * challenge is known and a token for the scope is kept (or none is needed, or it failed:
 * `status` says which). reg_auth_header() may be called from any thread (the upstream thread
 * before each request to a registry, a download's, a probe's): it only reads the kept tokens
 * under this module's lock. Neither a password nor a token is ever logged or shown. A token is
 * kept with the generation of the password it was fetched with (registries.h): once a SIGHUP
 * read another, it is neither sent nor taken for one kept, and a new one is asked.
 *
 * The dance's requests (the /v2/ ping, the realm's token) are upstream requests like any: asked
 * on the upstream thread's multi handle (probe.h's documents), under the upstream address
 * policy, its host's hold (the realm's too: its registry's hold at the registry's asking, a 429)
 * and the uplink cap. reg_auth.c keeps what was learnt (the pure
 * parsing below, the challenges and tokens under its lock); upstream/reg_login.c asks
 * (reg_auth_ensure: registry/ sits below upstream/ and never calls it).
 */
#ifndef ARCA_REG_AUTH_H
#define ARCA_REG_AUTH_H

#include "registry/registries.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct upstream_loop;

#define REG_SCOPE_MAX 300

/* What reg_auth_ensure learnt: 0 ready (a token kept, or none needed); else the status to
 * answer the client with (401/403 the realm's refusal of the login, 502 no answer, 429) and
 * a one-line why without secrets. */
typedef void reg_auth_done_fn(int status, const char *why, void *arg);

/* Make sure a request of `scope` to registry `r` can be authorised: learn its challenge (a
 * GET of its /v2/, once), then fetch a token for `scope` unless a kept one has a minute left.
 * Concurrent asks of one registry and scope share one request, and for a second after it
 * failed, its failure (a /v2/ request's ask and its download's are one upstream). `loop`: the
 * upstream thread's (NULL: the one upstream_init started, what a client thread passes). 0: `done`
 * will run (also when nothing was to be learnt; called on the upstream thread, it may run before
 * this returns); -1: out of memory or stopping (done never runs). A download of a registry's
 * URL asks it itself (source_registry.c), so a URL asked through the fetch API (a site's
 * arca asking its central one) is authorised as one asked at /v2/. */
int reg_auth_ensure(struct upstream_loop *loop, const struct registry *r, const char *scope,
                    reg_auth_done_fn *done, void *arg);
/* The upstream thread's caller of reg_auth_ensure with `arg` is gone: its `done` never runs. */
void reg_auth_abandon(void *arg);
/* upstream_init hands its loop over (main thread, before any ensure): the loop of an ensure
 * that names none. */
void reg_auth_use_loop(struct upstream_loop *loop);
/* The Authorization header line for a request that asks `a` (its terms': registries.h):
 * "Authorization: Bearer ..." (the token of its scope) or "Authorization: Basic ..." into out,
 * true; false when none is kept or needed, or `a` is no registry's pull API (a->r NULL: no URL
 * outside the grammar ever carries the login). */
bool reg_auth_header(const struct registry_ask *a, char *out, size_t size);
/* A 401 came for a request that asked `a`: its kept token is dropped (the next ensure fetches
 * another), and a registry believed open is asked for its challenge again. */
void reg_auth_forget(const struct registry_ask *a);
/* Whether requests to `r` carry its basic-auth login (its challenge asks for one, and one is
 * configured): a 401 to one is the login's refusal, not asked again with the same login. */
bool reg_auth_sends_login(const struct registry *r);
/* The registry's own 401 or 403 to a request that asked `a` (not its realm's: reg_login.c),
 * worded into why[size] for the client and the log: the status its client gets, 0 for another
 * status. One to the basic-auth login is answered as a realm's refusal of the login is (its
 * own 401 or 403: DENIED), names the registry and its password file's path (never the
 * password) and is kept as the login's refusal (registries_login_refused, which logs it once):
 * *login true. Another 401 is arca's failure to authorise (502), another 403 the registry's
 * denial (403). */
int reg_auth_refusal(const struct registry_ask *a, int status, char *why, size_t size, bool *login);
/* The registry answered `status` to a request that asked `a`: a 2xx to one carrying the
 * basic-auth login says the login is taken (registries_login_taken). */
void reg_auth_answered(const struct registry_ask *a, int status);

/* --- what reg_auth_ensure (upstream/reg_login.c) asks and learns ---------------------------- */

/* How a registry asks to be authorised (its /v2/'s answer). */
enum reg_scheme {
    REG_AUTH_UNKNOWN, /* not asked yet (or forgotten) */
    REG_AUTH_NONE,    /* /v2/ answered 200: nothing to add */
    REG_AUTH_BEARER,  /* a token of its realm per scope */
    REG_AUTH_BASIC,   /* the configured login on every request */
};

/* A WWW-Authenticate challenge, taken apart. */
struct reg_challenge {
    enum reg_scheme scheme;
    char realm[REGISTRY_URL_MAX];
    char service[256];
    char scope[REG_SCOPE_MAX];
};

/* What a request of `scope` to `r` lacks now. */
enum reg_need {
    REG_NEED_NOTHING, /* a token with its margin left, or none needed */
    REG_NEED_PING,    /* the challenge is unknown: GET its /v2/ */
    REG_NEED_TOKEN,   /* a Bearer realm: a token for the scope */
    REG_NEED_LOGIN,   /* it asks for basic auth and no login is configured */
};
enum reg_need reg_auth_need(const struct registry *r, const char *scope, int64_t now_ms,
                            struct reg_challenge *c);
/* The /v2/ ping's answer (`status`, its WWW-Authenticate `challenge`, "" none): what the registry
 * asks from now (a 2xx, or a 4xx but 401 and 429: nothing). 0; -1 when the answer says nothing
 * usable (a 401 arca cannot answer, a 429 or 5xx: `why`, one line, no secret). */
int reg_auth_learn(const struct registry *r, int status, const char *challenge, char *why,
                   size_t size);
/* A token for `scope` from the realm's answer `body`: kept until its margin (reg_token_keep_ms);
 * 0, or -1 with a one-line why. now_ms: the monotonic clock (clock.h), wall_s the wall clock's
 * seconds (what issued_at is read against). */
int reg_auth_keep(const struct registry *r, const char *scope, const char *body, size_t len,
                  int64_t now_ms, int64_t wall_s, char *why, size_t size);

/* Pure pieces (units: tests/unit/test_reg_auth.c). */
#define REG_TOKEN_MAX 8192
/* `value` (a WWW-Authenticate value: `Bearer realm="…",service="…",scope="…"` or
 * `Basic realm="…"`) into *c; false when neither. */
bool reg_challenge_parse(const char *value, struct reg_challenge *c);
/* A realm's JSON answer: its `token` (or `access_token`) into token[size], how many seconds it
 * lives from now (`expires_in`, 60 when absent, less the age `issued_at` says it has at
 * `wall_s` (over a second: both are whole seconds); never more than expires_in). false: no token in
 * it. */
bool reg_token_parse(const char *body, size_t len, int64_t wall_s, char *token, size_t size,
                     int64_t *life_s);
/* Milliseconds a token living `life_s` seconds is kept: to a minute before it expires, or a
 * fifth of its life before for one living less than five minutes. */
int64_t reg_token_keep_ms(int64_t life_s);
/* The realm's URL asking a token for `scope`: realm?service=…&scope=… (percent-encoded). */
bool reg_token_url(const struct reg_challenge *c, const char *scope, char *out, size_t size);

#endif
