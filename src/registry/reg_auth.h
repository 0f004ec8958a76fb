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
 * under this module's lock. Neither a password nor a token is ever logged or shown.
 */
#ifndef ARCA_REG_AUTH_H
#define ARCA_REG_AUTH_H

#include "registry/registries.h"

#include <stdbool.h>
#include <stddef.h>

struct upstream_loop;

#define REG_SCOPE_MAX 300

/* What reg_auth_ensure learnt: 0 ready (a token kept, or none needed); else the status to
 * answer the client with (401/403 the realm's refusal of the login, 502 no answer, 429) and
 * a one-line why without secrets. */
typedef void reg_auth_done_fn(int status, const char *why, void *arg);

/* Make sure a request of `scope` to registry `r` can be authorised: learn its challenge (a
 * GET of its /v2/, once), then fetch a token for `scope` unless a kept one has a minute left.
 * 0: `done` will run; -1: out of memory (done never runs). */
int reg_auth_ensure(struct upstream_loop *loop, const struct registry *r, const char *scope,
                    reg_auth_done_fn *done, void *arg);
/* The Authorization header line for a request of `url` (normal form) to a registry (scope from
 * its path): "Authorization: Bearer ..." or "Authorization: Basic ..." into out, true; false
 * when none is kept or needed (not a registry's URL: nothing to add). */
bool reg_auth_header(const char *url, char *out, size_t size);
/* A 401 came for `url`: its kept token is dropped (the next ensure fetches another). */
void reg_auth_forget(const char *url);

#endif
