/* A registry's authorisation (reg_auth.h): what its challenge says, the tokens kept per
 * registry and scope, and the header every request to it carries. The requests that learn them
 * are upstream/reg_login.c's. */
#include "registry/reg_auth.h"
#include "base/clock.h"

#include <ctype.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* A long-lived arca meets a few hundred repositories; a bound keeps a hostile scope list from
 * growing the table (an old entry goes first). */
#define REG_TOKENS_MAX 2048
/* A token lives at most a day here, whatever its realm says. */
#define REG_TOKEN_LIFE_MAX (24 * 3600)

struct kept_token {
    const struct registry *r;
    char scope[REG_SCOPE_MAX];
    char token[REG_TOKEN_MAX];
    int64_t keep_until; /* monotonic ms: a fresh one is asked from then */
    int64_t expires;    /* monotonic ms: sent until then */
    uint64_t gen;       /* the password it came with (registries_login_gen): another's is old */
    struct kept_token *next;
};

struct learnt {
    const struct registry *r;
    struct reg_challenge c;
    struct learnt *next;
};

static struct {
    pthread_mutex_t lock;
    struct learnt *challenges;
    struct kept_token *tokens;
    int n_tokens;
} ra = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* --- pure pieces ------------------------------------------------------------------------- */

/* One `name="value"` or `name=value` of a challenge at *p into name/value; false at its end. */
static bool next_param(const char **p, char *name, size_t nsize, char *value, size_t vsize)
{
    const char *s = *p;
    size_t n = 0, v = 0;
    while (*s == ' ' || *s == ',' || *s == '\t')
        s++;
    while (*s && *s != '=' && *s != ',' && *s != ' ')
        if (n + 1 < nsize)
            name[n++] = *s++;
        else
            s++;
    name[n] = '\0';
    if (*s != '=' || n == 0)
        return false;
    s++;
    bool quoted = *s == '"';
    s += quoted;
    while (*s && (quoted ? *s != '"' : (*s != ',' && *s != ' '))) {
        if (quoted && *s == '\\' && s[1])
            s++;
        if (v + 1 < vsize)
            value[v++] = *s;
        s++;
    }
    value[v] = '\0';
    s += quoted && *s == '"';
    *p = s;
    return true;
}

bool reg_challenge_parse(const char *value, struct reg_challenge *c)
{
    char name[32], v[REGISTRY_URL_MAX];
    const char *p = value;
    memset(c, 0, sizeof(*c));
    while (*p == ' ')
        p++;
    if (strncasecmp(p, "Bearer ", 7) == 0)
        c->scheme = REG_AUTH_BEARER;
    else if (strncasecmp(p, "Basic", 5) == 0 && (p[5] == ' ' || p[5] == '\0'))
        c->scheme = REG_AUTH_BASIC;
    else
        return false;
    p += c->scheme == REG_AUTH_BEARER ? 7 : 5;
    while (next_param(&p, name, sizeof(name), v, sizeof(v))) {
        if (strcasecmp(name, "realm") == 0)
            snprintf(c->realm, sizeof(c->realm), "%s", v);
        else if (strcasecmp(name, "service") == 0)
            snprintf(c->service, sizeof(c->service), "%.*s", (int)sizeof(c->service) - 1, v);
        else if (strcasecmp(name, "scope") == 0)
            snprintf(c->scope, sizeof(c->scope), "%.*s", (int)sizeof(c->scope) - 1, v);
    }
    /* a Bearer challenge without a realm names nowhere to ask; one not http(s) goes nowhere */
    if (c->scheme == REG_AUTH_BEARER && strncasecmp(c->realm, "https://", 8) != 0 &&
        strncasecmp(c->realm, "http://", 7) != 0)
        return false;
    return true;
}

/* An RFC 3339 time ("2026-11-26T11:00:00Z", fractions and an offset allowed) as seconds since
 * the epoch; -1 when it is not one. */
static int64_t rfc3339_seconds(const char *s)
{
    struct tm tm = {0};
    const char *rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!rest)
        return -1;
    int64_t t = (int64_t)timegm(&tm);
    if (*rest == '.')
        while (isdigit((unsigned char)*++rest))
            ;
    if (*rest == 'Z' || *rest == 'z')
        return t;
    int hh, mm;
    if ((*rest == '+' || *rest == '-') && sscanf(rest + 1, "%2d:%2d", &hh, &mm) == 2)
        return t - (*rest == '+' ? 1 : -1) * (int64_t)(hh * 3600 + mm * 60);
    return -1;
}

bool reg_token_parse(const char *body, size_t len, int64_t wall_s, char *token, size_t size,
                     int64_t *life_s)
{
    json_t *root = json_loadb(body, len, 0, NULL), *tok, *exp, *at;
    bool ok = false;
    if (!json_is_object(root))
        goto out;
    tok = json_object_get(root, "token");
    if (!json_is_string(tok) || !json_string_length(tok))
        tok = json_object_get(root, "access_token");
    if (!json_is_string(tok) || !json_string_length(tok) || json_string_length(tok) >= size)
        goto out;
    exp = json_object_get(root, "expires_in");
    int64_t life =
        json_is_integer(exp) && json_integer_value(exp) > 0 ? json_integer_value(exp) : 60;
    if (life > REG_TOKEN_LIFE_MAX)
        life = REG_TOKEN_LIFE_MAX;
    at = json_object_get(root, "issued_at");
    int64_t issued = json_is_string(at) ? rfc3339_seconds(json_string_value(at)) : -1;
    /* its age when it came: a realm's clock ahead of ours ages it none, one behind ages it;
     * both times are whole seconds, so a second's difference is their rounding, not an age */
    if (issued > 0 && wall_s - issued > 1)
        life -= wall_s - issued;
    snprintf(token, size, "%s", json_string_value(tok));
    /* a token is a header value: a line break in it would be a header of the realm's choosing */
    ok = strcspn(token, "\r\n") == strlen(token);
    *life_s = life > 0 ? life : 0;
out:
    json_decref(root);
    return ok;
}

int64_t reg_token_keep_ms(int64_t life_s)
{
    return life_s >= 300 ? (life_s - 60) * 1000 : life_s * 1000 - life_s * 1000 / 5;
}

/* `s` percent-encoded but for RFC 3986's unreserved characters, appended at out[*at]. */
static bool append_escaped(char *out, size_t size, size_t *at, const char *s)
{
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        int n = isalnum(ch) || strchr("-._~", ch) ? snprintf(out + *at, size - *at, "%c", ch)
                                                  : snprintf(out + *at, size - *at, "%%%02X", ch);
        if (n < 0 || (size_t)n >= size - *at)
            return false;
        *at += (size_t)n;
    }
    return true;
}

bool reg_token_url(const struct reg_challenge *c, const char *scope, char *out, size_t size)
{
    int n = snprintf(out, size, "%s%s", c->realm, strchr(c->realm, '?') ? "&" : "?");
    size_t at = n > 0 ? (size_t)n : size;
    if (at >= size)
        return false;
    if (c->service[0]) {
        if (snprintf(out + at, size - at, "service=") >= (int)(size - at))
            return false;
        at += 8;
        if (!append_escaped(out, size, &at, c->service) || at + 1 >= size)
            return false;
        out[at++] = '&';
        out[at] = '\0';
    }
    if (snprintf(out + at, size - at, "scope=") >= (int)(size - at))
        return false;
    at += 6;
    return append_escaped(out, size, &at, scope);
}

/* --- what is kept (under ra.lock) -------------------------------------------------------- */

static struct learnt *learnt_of(const struct registry *r)
{
    for (struct learnt *l = ra.challenges; l; l = l->next)
        if (l->r == r)
            return l;
    return NULL;
}

static struct kept_token **token_slot(const struct registry *r, const char *scope)
{
    struct kept_token **k = &ra.tokens;
    for (; *k; k = &(*k)->next)
        if ((*k)->r == r && strcmp((*k)->scope, scope) == 0)
            break;
    return k;
}

/* `k`, kept for `r`'s scope, sent until `until` (monotonic ms): not once the password it came
 * with was replaced (a SIGHUP read another: the old one may be revoked). */
static bool token_good(const struct kept_token *k, const struct registry *r, int64_t until,
                       int64_t now_ms)
{
    return k && until > now_ms && k->gen == registries_login_gen(r);
}

static void drop_token(struct kept_token **k)
{
    struct kept_token *gone = *k;
    *k = gone->next;
    OPENSSL_cleanse(gone->token, sizeof(gone->token));
    free(gone);
    ra.n_tokens--;
}

/* Room for one more: the expired go, then the oldest kept (the list's last). */
static void make_room(int64_t now_ms)
{
    for (struct kept_token **k = &ra.tokens; *k;)
        if ((*k)->expires <= now_ms)
            drop_token(k);
        else
            k = &(*k)->next;
    if (ra.n_tokens < REG_TOKENS_MAX)
        return;
    struct kept_token **last = &ra.tokens;
    while ((*last)->next)
        last = &(*last)->next;
    drop_token(last);
}

enum reg_need reg_auth_need(const struct registry *r, const char *scope, int64_t now_ms,
                            struct reg_challenge *c)
{
    enum reg_need need = REG_NEED_PING;
    pthread_mutex_lock(&ra.lock);
    struct learnt *l = learnt_of(r);
    if (l && l->c.scheme != REG_AUTH_UNKNOWN) {
        *c = l->c;
        if (l->c.scheme == REG_AUTH_BASIC)
            need = r->has_login ? REG_NEED_NOTHING : REG_NEED_LOGIN;
        else if (l->c.scheme == REG_AUTH_NONE)
            need = REG_NEED_NOTHING;
        else {
            struct kept_token *k = *token_slot(r, scope);
            need =
                token_good(k, r, k ? k->keep_until : 0, now_ms) ? REG_NEED_NOTHING : REG_NEED_TOKEN;
        }
    }
    pthread_mutex_unlock(&ra.lock);
    return need;
}

int reg_auth_learn(const struct registry *r, int status, const char *challenge, char *why,
                   size_t size)
{
    struct reg_challenge c = {.scheme = REG_AUTH_NONE};
    if (status == 401 && !reg_challenge_parse(challenge, &c)) {
        snprintf(why, size, "registry %s asks for an authorisation arca does not speak", r->name);
        return -1;
    }
    /* another 4xx (a /v2/ some proxies do not route) asks for nothing: the registry's own
     * requests say what they want (a 401 has it asked again); a 429 or 5xx is its outage */
    if (status == 429 || status >= 500 || status < 200) {
        snprintf(why, size, "registry %s answered %d to /v2/", r->name, status);
        return -1;
    }
    pthread_mutex_lock(&ra.lock);
    struct learnt *l = learnt_of(r);
    if (!l && (l = calloc(1, sizeof(*l)))) {
        l->r = r;
        l->next = ra.challenges;
        ra.challenges = l;
    }
    if (l)
        l->c = c;
    pthread_mutex_unlock(&ra.lock);
    if (!l) {
        snprintf(why, size, "out of memory");
        return -1;
    }
    return 0;
}

int reg_auth_keep(const struct registry *r, const char *scope, const char *body, size_t len,
                  int64_t now_ms, int64_t wall_s, char *why, size_t size)
{
    struct kept_token *k = calloc(1, sizeof(*k));
    int64_t life = 0;
    if (!k || !reg_token_parse(body, len, wall_s, k->token, sizeof(k->token), &life)) {
        snprintf(why, size, k ? "registry %s's token realm gave no token" : "out of memory",
                 r->name);
        if (k)
            OPENSSL_cleanse(k->token, sizeof(k->token));
        free(k);
        return -1;
    }
    k->r = r;
    k->gen = registries_login_gen(r);
    snprintf(k->scope, sizeof(k->scope), "%s", scope);
    k->keep_until = now_ms + reg_token_keep_ms(life);
    k->expires = now_ms + life * 1000;
    pthread_mutex_lock(&ra.lock);
    struct kept_token **old = token_slot(r, scope);
    if (*old)
        drop_token(old);
    make_room(now_ms);
    k->next = ra.tokens;
    ra.tokens = k;
    ra.n_tokens++;
    pthread_mutex_unlock(&ra.lock);
    atomic_fetch_add(&r->counters->tokens, 1);
    return 0;
}

/* --- the header, and a refusal ------------------------------------------------------------ */

/* "Authorization: Basic base64(user:password)" into out. */
static bool basic_line(const struct registry *r, char *out, size_t size)
{
    char login[sizeof(r->username) + REGISTRY_PASSWORD_MAX + 2];
    unsigned char b64[4 * ((sizeof(login) + 2) / 3) + 1];
    bool ok = registries_login(r, login, sizeof(login), NULL);
    int n;
    if (ok) {
        EVP_EncodeBlock(b64, (const unsigned char *)login, (int)strlen(login));
        n = snprintf(out, size, "Authorization: Basic %s", b64);
        ok = n > 0 && (size_t)n < size;
        OPENSSL_cleanse(b64, sizeof(b64));
    }
    OPENSSL_cleanse(login, sizeof(login));
    return ok;
}

bool reg_auth_header(const struct registry_ask *a, char *out, size_t size)
{
    const struct registry *r = a->r;
    char scope[REG_SCOPE_MAX];
    bool have = false;
    if (!r)
        return false;
    pthread_mutex_lock(&ra.lock);
    struct learnt *l = learnt_of(r);
    if (l && l->c.scheme == REG_AUTH_BASIC && r->has_login) {
        have = basic_line(r, out, size);
    } else if (l && l->c.scheme == REG_AUTH_BEARER && registry_ask_scope(a, scope, sizeof(scope))) {
        struct kept_token *k = *token_slot(r, scope);
        int n = -1;
        if (token_good(k, r, k ? k->expires : 0, monotonic_ms()))
            n = snprintf(out, size, "Authorization: Bearer %s", k->token);
        have = n > 0 && (size_t)n < size;
    }
    pthread_mutex_unlock(&ra.lock);
    return have;
}

void reg_auth_forget(const struct registry_ask *a)
{
    const struct registry *r = a->r;
    char scope[REG_SCOPE_MAX];
    if (!r)
        return;
    pthread_mutex_lock(&ra.lock);
    struct learnt *l = learnt_of(r);
    if (l && l->c.scheme == REG_AUTH_NONE) /* it asks for something now: learnt again */
        l->c.scheme = REG_AUTH_UNKNOWN;
    if (registry_ask_scope(a, scope, sizeof(scope))) {
        struct kept_token **k = token_slot(r, scope);
        if (*k)
            drop_token(k);
    }
    pthread_mutex_unlock(&ra.lock);
}

/* How `r` asks to be authorised, as last learnt. */
static enum reg_scheme scheme_of(const struct registry *r)
{
    pthread_mutex_lock(&ra.lock);
    struct learnt *l = learnt_of(r);
    enum reg_scheme s = l ? l->c.scheme : REG_AUTH_UNKNOWN;
    pthread_mutex_unlock(&ra.lock);
    return s;
}

bool reg_auth_sends_login(const struct registry *r)
{
    return r->has_login && scheme_of(r) == REG_AUTH_BASIC;
}

int reg_auth_refusal(const struct registry_ask *a, int status, char *why, size_t size, bool *login)
{
    const struct registry *r = a->r;
    *login = false;
    if (!r || (status != 401 && status != 403))
        return 0;
    if (reg_auth_sends_login(r)) { /* the login itself went with the request */
        snprintf(why, size, "registry %s %s the login of password-file %s (%d)", r->name,
                 status == 401 ? "refused" : "denied access to", r->password_file, status);
        registries_login_refused(r, why);
        *login = true;
        return status;
    }
    if (status == 403) {
        snprintf(why, size, "registry %s denied access (403)", r->name);
        return 403;
    }
    snprintf(why, size,
             scheme_of(r) == REG_AUTH_BEARER
                 ? "registry %s refused its realm's token (401): the next pull asks for another"
                 : "registry %s asks for an authorisation arca did not send (401)",
             r->name);
    return 502;
}

void reg_auth_answered(const struct registry_ask *a, int status)
{
    if (a->r && status >= 200 && status < 300 && reg_auth_sends_login(a->r))
        registries_login_taken(a->r);
}
