/*
 * registries.h — the container registries arca mirrors (--registry NAME=URL, the config file's
 * [registry NAME] sections with url, username and password-file, --registry-default NAME): how
 * each is reached, its login, and its counters. "docker.io" names Docker Hub: reached at
 * https://registry-1.docker.io unless a URL is given, and a one-component repository name
 * ("debian") is Docker Hub's "library/debian".
 *
 * Contract: registries_init() runs once in main before any thread (it reads the password
 * files); after it the table's registries (names, URLs, usernames, password files' paths) are
 * read-only and any thread may look them up. What changes after is each one's login (struct
 * registry_login) and its counters. A login's password is read again at each SIGHUP
 * (registries_reread_passwords, main thread) and swapped under this module's lock, its
 * generation raised when it changed, so that the tokens of the old one are never sent again
 * (reg_auth.h); a file that can no longer be read leaves the login as it was. A password never
 * leaves this module but through registries_login(), which only the token and basic-auth
 * requests of reg_auth.c and reg_login.c hand to libcurl; it is never logged, shown or counted.
 * A refused login is kept, in words naming the registry and its password file's path (never its
 * content), until a login is taken again or another password is read: the status shows it.
 * Counters are atomics any thread adds to; they persist across restarts as arca's other counters
 * do (stats.h), kept per registry NAME: a registry no longer configured keeps its rows in the
 * index, and its counts come back when it is configured again.
 */
#ifndef ARCA_REGISTRIES_H
#define ARCA_REGISTRIES_H

#include "config/config.h"
#include "registry/reg_name.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REGISTRY_NAME_MAX 128
#define REGISTRY_URL_MAX 512
#define REGISTRY_MANIFEST_MAX (4 << 20) /* a manifest longer is refused, never kept */

/* What /api/v1/status/, `arca status`, the pages and /metrics show of a registry. */
struct registry_counters {
    atomic_int_fast64_t pulls;       /* image pulls: GETs answered (2xx) an image manifest */
    atomic_int_fast64_t hits;        /* manifest and blob answers (2xx) served from the store */
    atomic_int_fast64_t bytes;       /* body bytes of every 2xx manifest and blob answer */
    atomic_int_fast64_t revalidated; /* HEADs answered of an expired copy (a hold asks none) */
    atomic_int_fast64_t stale;       /* tags answered from an expired manifest */
    atomic_int_fast64_t refused;     /* upstream refusals (4xx but 404, 5xx) */
    atomic_int_fast64_t too_many;    /* of them, 429 */
    atomic_int_fast64_t tokens;      /* tokens fetched from its realm */
    atomic_int_fast64_t blobs;       /* blob GETs answered (2xx) */
    atomic_int_fast64_t requests;    /* requests of its pull API, whatever their answer */
};

/* Each counter by the word the status JSON, the metrics and the index say for it ("throttled"
 * for too_many), k from 0 to REGISTRY_COUNTERS - 1. */
#define REGISTRY_COUNTERS 10
const char *registry_counter_name(int k);
atomic_int_fast64_t *registry_counter(struct registry_counters *n, int k);

#define REGISTRY_PASSWORD_MAX 1024
#define REGISTRY_LOGIN_WHY 300

/* A registry's login as it is now: under this module's lock (registries_login*()). */
struct registry_login {
    char password[REGISTRY_PASSWORD_MAX]; /* password-file's first line; never shown */
    uint64_t gen;                         /* raised each time another password is read */
    char refused[REGISTRY_LOGIN_WHY];     /* why it was last refused ("": it was not since) */
};

struct registry {
    char name[REGISTRY_NAME_MAX]; /* as clients name it: "docker.io", "quay.io", "lab" */
    char url[REGISTRY_URL_MAX];   /* its base URL, normal form, no trailing '/' */
    bool docker_hub;              /* "docker.io": one-component names get "library/" */
    bool has_login;               /* username and password-file given */
    char username[256];
    char password_file[1024]; /* where its password is read: its path is shown, never its content */
    struct registry_login *login; /* has_login: its password, its generation, a refusal */
    /* other names clients give it (`aliases`): registries_for_ns finds it by them too */
    char aliases[CONFIG_REGISTRY_ALIASES][CONFIG_REGISTRY_NAME_MAX];
    int n_aliases;
    struct registry_counters *counters;
};

/* Read every registry's password file, build the table. 0, or -1 with a one-line reason. */
int registries_init(const struct config *cfg, char *err, size_t errlen);
/* SIGHUP (main thread): every password file read again. One that changed is swapped in (its
 * generation raised, its refusal forgotten) and logged as "registry NAME: password file PATH
 * changed", never its content; one that cannot be read is an error line, the login read before
 * kept. How many changed. */
int registries_reread_passwords(void);
/* "username:password" of `r`'s login into out[size] (the caller cleanses it once used), and its
 * generation into *gen (NULL: not wanted): false when it has none, or no room. Any thread. */
bool registries_login(const struct registry *r, char *out, size_t size, uint64_t *gen);
/* The generation of `r`'s password (0 without a login): a token fetched under another is the
 * old password's. Any thread. */
uint64_t registries_login_gen(const struct registry *r);
/* `r` (with a login) refused it: `why` (one line naming the registry and its password file's
 * path, as the client is told) kept for the status, and logged once until it is mended. */
void registries_login_refused(const struct registry *r, const char *why);
/* `r` took its login (a token given, a request with it answered): no refusal is kept. */
void registries_login_taken(const struct registry *r);
/* Why `r`'s login was last refused into out[size]: false when it was not (or it has none). */
bool registries_login_error(const struct registry *r, char *out, size_t size);
/* The registry called `name` (`len` bytes), or NULL. */
const struct registry *registries_find(const char *name, size_t len);
/* The registry containerd's ?ns= names (`len` bytes), a path namespace and an image reference
 * too: the one called so or by that alias (config refuses an alias two registries would
 * answer to), else the one at that URL (a site's arca names it so: registries_parent_target),
 * else the first whose URL's authority it is, host[:port] as a reference writes it
 * ("registry.lab.example:5000", the scheme's default port left out as the URL's normal form
 * has it); NULL when none. Only configured registries are found: ?ns= never names a host to
 * reach. */
const struct registry *registries_for_ns(const char *ns, size_t len);
/* The registry for requests that name none (--registry-default), or NULL when none is set up. */
const struct registry *registries_default(void);
/* The registry whose API `url` (normal form) lies under (its url followed by "/v2/"; the longest
 * such url where one lies under another's /v2/), or NULL. Whether the URL is that registry's
 * pull API is registries_ask_of's question: this one says only where it points. */
const struct registry *registries_for_url(const char *url);

/* What a URL asks of a configured registry's pull API: decided once per request, where the rest
 * of its terms are (terms.h's `registry`), and read everywhere after: which registry, which
 * repository, what it asks (a manifest, a blob, a tag list, /v2/ itself), by tag or by digest.
 * Only a URL that passes the distribution grammar is one: the registry's login and the digest
 * check go with it, and never with another URL under its /v2/. */
struct registry_ask {
    const struct registry *r; /* NULL: no registry's pull API */
    struct reg_path path;     /* what it asks (reg_name.h) */
};
/* `url` (normal form) read as a registry's pull API into *a: true when it is one, its path after
 * "/v2/" passing the grammar as it is written (nothing percent-encoded: `..%2F` is no name), a
 * query only on a tag list (its n= and last=); false (a->r NULL) otherwise. Any thread. */
bool registries_ask_of(const char *url, struct registry_ask *a);
/* Whether `a` fetches something a repository holds (a manifest or a blob). */
static inline bool registry_ask_pulls(const struct registry_ask *a)
{
    return a->r && (a->path.what == REG_MANIFEST || a->path.what == REG_BLOB);
}
/* The token scope of `a`'s requests, "repository:<name>:pull" with the repository as parsed
 * (one named "team/blobs/x" is that whole name): false for /v2/ itself, or no room. The one
 * place a scope is made. */
bool registry_ask_scope(const struct registry_ask *a, char *out, size_t size);
/* What a site asks its central arca for `url` (normal form) when it is a configured registry's
 * manifest, blob or tag list: "/v2/PATH?ns=URL" into out[size] (true; URL the registry's,
 * percent-encoded), as a registry client asks a mirror, so the central's registry course answers
 * it (its login, its checks, its counters) and the digest in the path is checked at both ends.
 * Named by its URL, not its NAME: the central answers only if it mirrors that very registry.
 * False: no such URL, /v2/ itself, a one-component repository name (a central that calls that
 * registry docker.io reads it as library/NAME), or no room: the central's fetch API is asked,
 * for the URL whole. */
bool registries_parent_target(const char *url, char *out, size_t size);
/* A client's request of a registry's pull API, as it was answered. */
struct registry_answered {
    enum reg_what what; /* a manifest, a blob, a tag list */
    bool get;           /* a GET (a HEAD is no pull) */
    int status;
    const char *cache; /* its access log word: HIT, STALE, ... */
    const char *type;  /* the answer's Content-Type ("": none known) */
    int64_t bytes;     /* body bytes sent */
};
/* `a` counted for `r`, once per request, by the route that answered it (the /v2/ route, or the
 * fetch API's for a URL its terms say is the registry's pull API): a request, whatever it was;
 * a manifest's or blob's 2xx a hit (from the store) or stale, and its bytes; a GET's 2xx of an
 * image manifest (not an index: reg_media_is_index) an image pull, by tag or by digest, so that
 * a HEAD of a tag then a GET by digest (dockerd, containerd) is one pull, and an image pulled
 * for one platform through its index is one; a blob GET's 2xx a blob. */
void registries_count_answer(const struct registry *r, const struct registry_answered *a);
/* Main, once the index is open and before the persistence threads start (beside stats_load):
 * each configured registry's counters from what the index kept for its NAME. */
void registries_load_counters(void);
/* Upstream thread, with stats_save (each second, and at a stop): the counters that changed
 * since the last save, handed to the persistence thread. */
void registries_save_counters(void);
int registries_count(void);
const struct registry *registries_at(int i);

#endif
