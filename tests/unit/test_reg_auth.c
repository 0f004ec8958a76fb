/* Units for a registry's authorisation (registry/reg_auth.h): its challenge taken apart, a
 * realm's token answer and how long it is kept, the scope a URL asks, the realm's URL, and the
 * header each request gets once the challenge and a token are known. The registries are the
 * suite's own (ask_of): one with a login, one without. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "registry/reg_auth.h"
#include "base/clock.h"

static struct registry_counters counters_hub, counters_lab;
static struct registry_login login_lab = {.password = "s3cret"};
static struct registry hub = {.name = "docker.io",
                              .url = "https://registry-1.docker.io",
                              .docker_hub = true,
                              .counters = &counters_hub};
static struct registry lab = {.name = "lab",
                              .url = "http://127.0.0.1:5000",
                              .has_login = true,
                              .username = "ci",
                              .password_file = "/etc/arca/lab.pw",
                              .login = &login_lab,
                              .counters = &counters_lab};

#define BLOB "blobs/sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/* What `url` asks under the suite's two registries, as registries_ask_of reads it from the
 * table (test_registries.c has its units). */
static const struct registry_ask *ask_of(const char *url)
{
    static struct registry_ask a;
    const struct registry *r = !strncmp(url, hub.url, strlen(hub.url))   ? &hub
                               : !strncmp(url, lab.url, strlen(lab.url)) ? &lab
                                                                         : NULL;
    memset(&a, 0, sizeof(a));
    if (r && !strncmp(url + strlen(r->url), "/v2/", 4) &&
        reg_path_parse(url + strlen(r->url) + 4, &a.path, NULL, 0) == REG_OK)
        a.r = r;
    return &a;
}

static void a_bearer_challenge_is_taken_apart(void **state)
{
    struct reg_challenge c;
    (void)state;
    assert_true(
        reg_challenge_parse("Bearer realm=\"https://auth.docker.io/token\",service="
                            "\"registry.docker.io\",scope=\"repository:library/debian:pull\"",
                            &c));
    assert_int_equal(c.scheme, REG_AUTH_BEARER);
    assert_string_equal(c.realm, "https://auth.docker.io/token");
    assert_string_equal(c.service, "registry.docker.io");
    assert_string_equal(c.scope, "repository:library/debian:pull");
    /* unquoted values, spaces after commas, the scheme in any case */
    assert_true(reg_challenge_parse("bearer realm=http://127.0.0.1:9/t, service=reg", &c));
    assert_string_equal(c.realm, "http://127.0.0.1:9/t");
    assert_string_equal(c.service, "reg");
    assert_string_equal(c.scope, "");
    /* an escaped quote stays in the value */
    assert_true(reg_challenge_parse("Bearer realm=\"https://a/t\",service=\"x\\\"y\"", &c));
    assert_string_equal(c.service, "x\"y");
}

static void a_basic_challenge_or_nothing_usable(void **state)
{
    struct reg_challenge c;
    (void)state;
    assert_true(reg_challenge_parse("Basic realm=\"lab\"", &c));
    assert_int_equal(c.scheme, REG_AUTH_BASIC);
    assert_true(reg_challenge_parse("Basic", &c));
    assert_false(reg_challenge_parse("Digest realm=\"x\"", &c));
    assert_false(reg_challenge_parse("", &c));
    assert_false(reg_challenge_parse("Basically", &c));
    /* a Bearer realm that names nowhere arca may ask */
    assert_false(reg_challenge_parse("Bearer service=\"x\"", &c));
    assert_false(reg_challenge_parse("Bearer realm=\"file:///etc/passwd\"", &c));
    assert_false(reg_challenge_parse("Bearer realm=\"ftp://h/t\"", &c));
}

static void a_long_value_is_cut_never_overrun(void **state)
{
    char value[4096];
    struct reg_challenge c;
    (void)state;
    memset(value, 'a', sizeof(value));
    memcpy(value, "Bearer realm=\"https://", 22);
    value[sizeof(value) - 1] = '\0';
    assert_true(reg_challenge_parse(value, &c));
    assert_int_equal(strlen(c.realm), sizeof(c.realm) - 1);
}

static void a_token_answer_is_read(void **state)
{
    char tok[64];
    int64_t life;
    const char *doc = "{\"token\":\"abc\",\"expires_in\":300}";
    (void)state;
    assert_true(reg_token_parse(doc, strlen(doc), 1000, tok, sizeof(tok), &life));
    assert_string_equal(tok, "abc");
    assert_int_equal(life, 300);
    doc = "{\"access_token\":\"xyz\"}"; /* OAuth's name; no expires_in: 60 s */
    assert_true(reg_token_parse(doc, strlen(doc), 1000, tok, sizeof(tok), &life));
    assert_string_equal(tok, "xyz");
    assert_int_equal(life, 60);
    /* issued 100 s ago by its clock: 100 s of its life are gone; a second is rounding */
    doc = "{\"token\":\"t\",\"expires_in\":300,\"issued_at\":\"2026-11-26T10:58:20Z\"}";
    assert_true(reg_token_parse(doc, strlen(doc), 1795690800, tok, sizeof(tok), &life));
    assert_int_equal(life, 200);
    doc = "{\"token\":\"t\",\"expires_in\":300,\"issued_at\":\"2026-11-26T10:59:59Z\"}";
    assert_true(reg_token_parse(doc, strlen(doc), 1795690800, tok, sizeof(tok), &life));
    assert_int_equal(life, 300);
    /* a realm whose clock runs ahead ages it none */
    doc = "{\"token\":\"t\",\"expires_in\":300,\"issued_at\":\"2026-11-26T12:00:00.123+01:00\"}";
    assert_true(reg_token_parse(doc, strlen(doc), 1795690800 - 3600, tok, sizeof(tok), &life));
    assert_int_equal(life, 300);
}

static void a_token_answer_without_a_usable_token_is_refused(void **state)
{
    char tok[8];
    int64_t life;
    (void)state;
    const char *bad[] = {"",
                         "[]",
                         "{\"token\":3}",
                         "{\"token\":\"\"}",
                         "not json",
                         "{\"token\":\"much too long for the room\"}",
                         "{\"token\":\"a\\r\\nX: y\"}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(reg_token_parse(bad[i], strlen(bad[i]), 0, tok, sizeof(tok), &life));
}

/* Kept to a minute before it expires, or a fifth of its life before for short ones. */
static void a_token_is_kept_until_its_margin(void **state)
{
    (void)state;
    assert_int_equal(reg_token_keep_ms(300), 240000);
    assert_int_equal(reg_token_keep_ms(3600), 3540000);
    assert_int_equal(reg_token_keep_ms(60), 48000);
    assert_int_equal(reg_token_keep_ms(1), 800);
    assert_int_equal(reg_token_keep_ms(0), 0);
}

/* The scope is the repository as parsed: one named with a "blobs" or "manifests" component is
 * that whole name. */
static void a_url_names_its_scope(void **state)
{
    char s[REG_SCOPE_MAX];
    (void)state;
    assert_true(registry_ask_scope(
        ask_of("https://registry-1.docker.io/v2/library/debian/manifests/12"), s, sizeof(s)));
    assert_string_equal(s, "repository:library/debian:pull");
    assert_true(registry_ask_scope(ask_of("http://127.0.0.1:5000/v2/a/b/" BLOB), s, sizeof(s)));
    assert_string_equal(s, "repository:a/b:pull");
    assert_true(registry_ask_scope(ask_of("http://127.0.0.1:5000/v2/x/tags/list"), s, sizeof(s)));
    assert_string_equal(s, "repository:x:pull");
    assert_true(registry_ask_scope(ask_of("http://127.0.0.1:5000/v2/team/blobs/x/manifests/1"), s,
                                   sizeof(s)));
    assert_string_equal(s, "repository:team/blobs/x:pull");
    assert_true(
        registry_ask_scope(ask_of("http://127.0.0.1:5000/v2/team/tags/x/" BLOB), s, sizeof(s)));
    assert_string_equal(s, "repository:team/tags/x:pull");
    assert_false(registry_ask_scope(ask_of("http://127.0.0.1:5000/v2/"), s, sizeof(s)));
    assert_false(registry_ask_scope(ask_of("http://127.0.0.1:5000/v2//blobs/x"), s, sizeof(s)));
    assert_false(registry_ask_scope(ask_of("http://127.0.0.1:5001/v2/x/tags/list"), s, sizeof(s)));
}

static void the_realm_url_escapes_its_parameters(void **state)
{
    struct reg_challenge c = {.scheme = REG_AUTH_BEARER,
                              .realm = "https://auth.docker.io/token",
                              .service = "registry.docker.io"};
    char url[300];
    (void)state;
    assert_true(reg_token_url(&c, "repository:library/debian:pull", url, sizeof(url)));
    assert_string_equal(url, "https://auth.docker.io/token?service=registry.docker.io&scope="
                             "repository%3Alibrary%2Fdebian%3Apull");
    snprintf(c.realm, sizeof(c.realm), "http://h/t?x=1");
    c.service[0] = '\0';
    assert_true(reg_token_url(&c, "a b&c", url, sizeof(url)));
    assert_string_equal(url, "http://h/t?x=1&scope=a%20b%26c");
    assert_false(reg_token_url(&c, "repository:x:pull", url, 20));
}

/* Before the challenge is known nothing is added; a Bearer realm's token per scope, kept
 * until its margin and sent until it expires; a 401 drops it. */
static void the_header_follows_what_was_learnt(void **state)
{
    char line[REG_TOKEN_MAX + 64], why[200];
    struct reg_challenge c;
    const char *url = "https://registry-1.docker.io/v2/library/debian/manifests/12";
    const char *doc = "{\"token\":\"tok-1\",\"expires_in\":300}";
    int64_t now = monotonic_ms();
    (void)state;
    assert_false(reg_auth_header(ask_of("http://elsewhere/v2/x/blobs/y"), line, sizeof(line)));
    assert_false(reg_auth_header(ask_of(url), line, sizeof(line)));
    assert_int_equal(reg_auth_need(&hub, "repository:library/debian:pull", now, &c), REG_NEED_PING);
    assert_int_equal(reg_auth_learn(&hub, 401, "Bearer realm=\"https://auth.docker.io/token\"", why,
                                    sizeof(why)),
                     0);
    assert_int_equal(reg_auth_need(&hub, "repository:library/debian:pull", now, &c),
                     REG_NEED_TOKEN);
    assert_string_equal(c.realm, "https://auth.docker.io/token");
    assert_false(reg_auth_header(ask_of(url), line, sizeof(line)));
    assert_int_equal(reg_auth_keep(&hub, "repository:library/debian:pull", doc, strlen(doc), now, 0,
                                   why, sizeof(why)),
                     0);
    assert_int_equal(atomic_load(&counters_hub.tokens), 1);
    assert_true(reg_auth_header(ask_of(url), line, sizeof(line)));
    assert_string_equal(line, "Authorization: Bearer tok-1");
    assert_int_equal(reg_auth_need(&hub, "repository:library/debian:pull", now, &c),
                     REG_NEED_NOTHING);
    /* within its last minute a new one is asked, the old still sent meanwhile */
    assert_int_equal(reg_auth_need(&hub, "repository:library/debian:pull", now + 240001, &c),
                     REG_NEED_TOKEN);
    /* another repository is another scope */
    assert_false(reg_auth_header(
        ask_of("https://registry-1.docker.io/v2/library/alpine/manifests/3"), line, sizeof(line)));
    reg_auth_forget(ask_of(url));
    assert_false(reg_auth_header(ask_of(url), line, sizeof(line)));
    assert_int_equal(reg_auth_need(&hub, "repository:library/debian:pull", now, &c),
                     REG_NEED_TOKEN);
}

static void basic_auth_sends_the_login_or_says_none_is_there(void **state)
{
    char line[REG_TOKEN_MAX + 64], why[200];
    struct reg_challenge c;
    (void)state;
    assert_int_equal(reg_auth_learn(&lab, 401, "Basic realm=\"lab\"", why, sizeof(why)), 0);
    assert_int_equal(reg_auth_need(&lab, "repository:x:pull", 0, &c), REG_NEED_NOTHING);
    assert_true(reg_auth_header(ask_of("http://127.0.0.1:5000/v2/x/" BLOB), line, sizeof(line)));
    assert_string_equal(line, "Authorization: Basic Y2k6czNjcmV0"); /* ci:s3cret */
    /* the login goes with the pull API alone: never a path outside its grammar */
    assert_false(reg_auth_header(ask_of("http://127.0.0.1:5000/v2/..%2Finternal/secret.txt"), line,
                                 sizeof(line)));
    assert_false(reg_auth_header(ask_of("http://127.0.0.1:5000/v2/_catalog"), line, sizeof(line)));
    lab.has_login = false;
    assert_int_equal(reg_auth_need(&lab, "repository:x:pull", 0, &c), REG_NEED_LOGIN);
    assert_false(reg_auth_header(ask_of("http://127.0.0.1:5000/v2/x/" BLOB), line, sizeof(line)));
    lab.has_login = true;
}

/* A basic-auth registry refusing the login: the client's words name the registry and its
 * password file, never the password, and the status keeps them until a request with the login
 * is answered; a Bearer registry's own 401 is its token's, and says nothing of a file. */
static void a_refused_basic_login_names_its_file(void **state)
{
    char why[300], kept[REGISTRY_LOGIN_WHY];
    const struct registry_ask *a = ask_of("http://127.0.0.1:5000/v2/x/" BLOB);
    (void)state;
    assert_int_equal(reg_auth_learn(&lab, 401, "Basic realm=\"lab\"", why, sizeof(why)), 0);
    bool login;
    assert_int_equal(reg_auth_refusal(a, 404, why, sizeof(why), &login), 0);
    /* answered as a realm's refusal of the login is: its own status, DENIED */
    assert_int_equal(reg_auth_refusal(a, 401, why, sizeof(why), &login), 401);
    assert_true(login);
    assert_string_equal(why,
                        "registry lab refused the login of password-file /etc/arca/lab.pw (401)");
    assert_true(registries_login_error(&lab, kept, sizeof(kept)));
    assert_string_equal(kept, why);
    assert_null(strstr(why, "s3cret"));
    assert_null(strstr(why, "token"));
    reg_auth_answered(a, 200);
    assert_false(registries_login_error(&lab, kept, sizeof(kept)));
    assert_int_equal(reg_auth_refusal(a, 403, why, sizeof(why), &login), 403);
    assert_true(login);
    assert_string_equal(
        why, "registry lab denied access to the login of password-file /etc/arca/lab.pw (403)");
    reg_auth_answered(a, 200);
    /* a 401 to no login is arca's failure to authorise: 502 */
    assert_int_equal(
        reg_auth_refusal(ask_of("https://registry-1.docker.io/v2/library/debian/" BLOB), 401, why,
                         sizeof(why), &login),
        502);
    assert_false(login);
    assert_null(strstr(why, "password-file"));
}

/* A token fetched with a password a SIGHUP has since replaced is neither sent nor kept for one:
 * a new one is asked with the new password. */
static void a_token_of_an_old_password_is_not_sent(void **state)
{
    char line[REG_TOKEN_MAX + 64], why[200];
    struct reg_challenge c;
    const char *doc = "{\"token\":\"tok-lab\",\"expires_in\":300}";
    const struct registry_ask *a = ask_of("http://127.0.0.1:5000/v2/team/x/" BLOB);
    int64_t now = monotonic_ms();
    (void)state;
    assert_int_equal(
        reg_auth_learn(&lab, 401, "Bearer realm=\"https://auth.lab/token\"", why, sizeof(why)), 0);
    assert_int_equal(
        reg_auth_keep(&lab, "repository:team/x:pull", doc, strlen(doc), now, 0, why, sizeof(why)),
        0);
    assert_true(reg_auth_header(a, line, sizeof(line)));
    assert_int_equal(reg_auth_need(&lab, "repository:team/x:pull", now, &c), REG_NEED_NOTHING);
    login_lab.gen++; /* what registries_reread_passwords does to a changed file */
    assert_false(reg_auth_header(a, line, sizeof(line)));
    assert_int_equal(reg_auth_need(&lab, "repository:team/x:pull", now, &c), REG_NEED_TOKEN);
    assert_int_equal(
        reg_auth_keep(&lab, "repository:team/x:pull", doc, strlen(doc), now, 0, why, sizeof(why)),
        0);
    assert_true(reg_auth_header(a, line, sizeof(line)));
}

/* An open registry needs nothing, until a 401 says otherwise; a ping's other answers teach
 * nothing, in words without a secret. */
static void an_open_registry_is_asked_again_after_a_401(void **state)
{
    char line[128], why[200];
    struct reg_challenge c;
    (void)state;
    assert_int_equal(reg_auth_learn(&lab, 200, "", why, sizeof(why)), 0);
    assert_int_equal(reg_auth_need(&lab, "repository:x:pull", 0, &c), REG_NEED_NOTHING);
    assert_false(reg_auth_header(ask_of("http://127.0.0.1:5000/v2/x/" BLOB), line, sizeof(line)));
    reg_auth_forget(ask_of("http://127.0.0.1:5000/v2/x/" BLOB));
    assert_int_equal(reg_auth_need(&lab, "repository:x:pull", 0, &c), REG_NEED_PING);
    assert_int_equal(reg_auth_learn(&lab, 401, "Negotiate", why, sizeof(why)), -1);
    assert_string_equal(why, "registry lab asks for an authorisation arca does not speak");
    assert_int_equal(reg_auth_learn(&lab, 500, "", why, sizeof(why)), -1);
    assert_string_equal(why, "registry lab answered 500 to /v2/");
    assert_int_equal(reg_auth_learn(&lab, 429, "", why, sizeof(why)), -1);
    /* a /v2/ not routed asks for nothing: the registry's own 401 says what it wants */
    assert_int_equal(reg_auth_learn(&lab, 404, "", why, sizeof(why)), 0);
    assert_int_equal(reg_auth_need(&lab, "repository:x:pull", 0, &c), REG_NEED_NOTHING);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_bearer_challenge_is_taken_apart),
        cmocka_unit_test(a_basic_challenge_or_nothing_usable),
        cmocka_unit_test(a_long_value_is_cut_never_overrun),
        cmocka_unit_test(a_token_answer_is_read),
        cmocka_unit_test(a_token_answer_without_a_usable_token_is_refused),
        cmocka_unit_test(a_token_is_kept_until_its_margin),
        cmocka_unit_test(a_url_names_its_scope),
        cmocka_unit_test(the_realm_url_escapes_its_parameters),
        cmocka_unit_test(the_header_follows_what_was_learnt),
        cmocka_unit_test(basic_auth_sends_the_login_or_says_none_is_there),
        cmocka_unit_test(a_refused_basic_login_names_its_file),
        cmocka_unit_test(a_token_of_an_old_password_is_not_sent),
        cmocka_unit_test(an_open_registry_is_asked_again_after_a_401),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
