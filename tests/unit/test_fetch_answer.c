/* Units for the headers of an object's answer (fetch_answer.c, fetch_add_headers): Cache-Status
 * lists the parent arca's members before arca's own, each of arca's members about an object
 * says its freshness (ttl) with Age beside it, an error about a download says neither, and the
 * object keeps one ETag for its whole life; upstream's own words in an error go only to clients
 * that may see URLs (fetch_failure_words). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "fetch/fetch_req.h"

#define PARENT "arca; hit; ttl=5"

static struct fetch_req req(enum lookup_result kind)
{
    static char url[] = "http://origin.test/images/rootfs.ext4";
    struct fetch_req r = {.kind = kind, .url = url, .end = -1};
    r.terms.object.store = true;
    return r;
}

/* An object downloaded `age` seconds ago, fresh for `ttl` seconds from then. */
static struct object_meta object(enum object_state state, int64_t age, int64_t ttl)
{
    struct object_meta m;
    memset(&m, 0, sizeof(m));
    m.state = state;
    m.headers_ready = true;
    m.length = 1000;
    m.created = (int64_t)time(NULL) - age;
    m.ttl = ttl;
    memset(m.digest, 0xab, sizeof(m.digest));
    return m;
}

/* The answer's header `name` ("" when it has none). */
static const char *header(const struct object_meta *m, const struct fetch_req *r, const char *name)
{
    static char value[512];
    struct answer *a = answer_static("", 0);
    assert_non_null(a);
    fetch_add_headers(a, m, r);
    if (!answer_header_value(a, name, value, sizeof(value)))
        value[0] = '\0';
    answer_put(a);
    return value;
}

/* That a Cache-Status is prefix, ttl, suffix: the ttl as expected, or a second less (the clock
 * may have moved on since the object was made). */
static void assert_status(const char *got, const char *prefix, int64_t ttl, const char *suffix)
{
    char want[2][512];
    snprintf(want[0], sizeof(want[0]), "%s%lld%s", prefix, (long long)ttl, suffix);
    snprintf(want[1], sizeof(want[1]), "%s%lld%s", prefix, (long long)ttl - 1, suffix);
    if (strcmp(got, want[0]) && strcmp(got, want[1]))
        fail_msg("Cache-Status: %s, wanted %s", got, want[0]);
}

/* Who may read upstream's own words, as the suite says (fetch_sees_upstream asks it). */
static bool sees_urls;
bool __wrap_http_sees_urls(struct conn *c);
bool __wrap_http_sees_urls(struct conn *c)
{
    (void)c;
    return sees_urls;
}

/* To a client that may read upstream's words; a stranger gets arca's member alone (the parent's
 * name it). */
static void a_parents_members_come_first(void **state)
{
    struct object_meta m = object(OBJ_COMPLETE, 10, 100);
    struct fetch_req hit = req(LOOKUP_HIT), miss = req(LOOKUP_MISS);
    (void)state;
    snprintf(m.parent_status, sizeof(m.parent_status), "%s", PARENT);
    sees_urls = false;
    assert_status(header(&m, &hit, "Cache-Status"), "arca; hit; ttl=", 90, "");
    sees_urls = true;
    assert_status(header(&m, &hit, "Cache-Status"), PARENT ", arca; hit; ttl=", 90, "");
    m.state = OBJ_FETCHING; /* the download that took it from the parent */
    assert_status(header(&m, &miss, "Cache-Status"), PARENT ", arca; fwd=uri-miss; ttl=", 90, "");
    /* two tiers above: every member, in order, then arca's */
    snprintf(m.parent_status, sizeof(m.parent_status), "%s", "arca; hit; ttl=5, " PARENT);
    assert_status(header(&m, &miss, "Cache-Status"),
                  "arca; hit; ttl=5, " PARENT ", arca; fwd=uri-miss; ttl=", 90, "");
    /* the longest a parent's members may be still leaves room for arca's */
    memset(m.parent_status, 'a', sizeof(m.parent_status) - 1);
    m.parent_status[sizeof(m.parent_status) - 1] = '\0';
    const char *got = header(&m, &miss, "Cache-Status");
    assert_int_equal(strncmp(got, m.parent_status, sizeof(m.parent_status) - 1), 0);
    assert_non_null(strstr(got, ", arca; fwd=uri-miss; ttl="));
}

static void every_answer_of_an_object_says_its_freshness(void **state)
{
    struct object_meta m = object(OBJ_FETCHING, 0, 3600);
    struct fetch_req miss = req(LOOKUP_MISS), joined = req(LOOKUP_COALESCED);
    (void)state;
    assert_status(header(&m, &miss, "Cache-Status"), "arca; fwd=uri-miss; ttl=", 3600, "");
    assert_status(header(&m, &joined, "Cache-Status"), "arca; fwd=uri-miss; collapsed; ttl=", 3600,
                  "");
    assert_true(!strcmp(header(&m, &miss, "Age"), "0") || !strcmp(header(&m, &miss, "Age"), "1"));
    m.revalidation = true; /* a refresh of an expired version, which upstream sent anew */
    assert_status(header(&m, &miss, "Cache-Status"), "arca; fwd=stale; fwd-status=200; ttl=", 3600,
                  "");
    /* a parent's stale copy, kept expired: said so, never as fresh */
    m = object(OBJ_COMPLETE, 50, 40);
    struct fetch_req hit = req(LOOKUP_HIT);
    assert_status(header(&m, &hit, "Cache-Status"), "arca; hit; ttl=", -10, "");
    const char *age = header(&m, &hit, "Age");
    assert_true(!strcmp(age, "50") || !strcmp(age, "51"));
}

/* Repr-Digest (RFC 9530) is the body's sha256 in base64 between colons. */
static void repr_digest_is_the_sha256_in_base64(void **state)
{
    struct object_meta m = object(OBJ_COMPLETE, 0, 3600); /* its digest: 32 bytes of 0xab */
    struct fetch_req hit = req(LOOKUP_HIT);
    (void)state;
    assert_string_equal(header(&m, &hit, "Repr-Digest"),
                        "sha-256=:q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=:");
    m.state = OBJ_FETCHING; /* not known before the last byte */
    assert_string_equal(header(&m, &hit, "Repr-Digest"), "");
}

/* The file name goes out bare when it is a token, else quoted, its quotes, backslashes and
 * control bytes made '_'; with no name asked for, the URL's last segment's. */
static void the_filename_is_a_token_or_quoted(void **state)
{
    struct object_meta m = object(OBJ_COMPLETE, 0, 3600);
    struct fetch_req hit = req(LOOKUP_HIT);
    (void)state;
    assert_string_equal(header(&m, &hit, "Content-Disposition"),
                        "attachment; filename=rootfs.ext4");
    snprintf(hit.filename, sizeof(hit.filename), "my \"image\\\t.img");
    assert_string_equal(header(&m, &hit, "Content-Disposition"),
                        "attachment; filename=\"my _image__.img\"");
    memset(hit.filename, 'a', sizeof(hit.filename) - 1);
    hit.filename[sizeof(hit.filename) - 1] = '\0';
    const char *value = header(&m, &hit, "Content-Disposition");
    assert_int_equal(strlen(value), strlen("attachment; filename=") + 255); /* 255 shown */
}

/* An error about a download or a digest is no answer of the object: no ttl, no Age, and no
 * parent's member (a refused confirmation reads the same, telling nothing of the cache). */
static void errors_say_no_freshness(void **state)
{
    struct object_meta m = object(OBJ_FAILED, 0, 3600);
    struct fetch_req miss = req(LOOKUP_MISS), hit = req(LOOKUP_HIT);
    (void)state;
    snprintf(m.parent_status, sizeof(m.parent_status), "%s", PARENT);
    assert_string_equal(header(&m, &miss, "Cache-Status"), "arca; fwd=uri-miss");
    assert_string_equal(header(&m, &miss, "Age"), "");
    m.retry_after = 30;
    assert_string_equal(header(&m, &miss, "Cache-Status"), "arca; detail=held-down");
    m = object(OBJ_COMPLETE, 10, 100);
    snprintf(m.parent_status, sizeof(m.parent_status), "%s", PARENT);
    hit.has_expect = miss.has_expect = true; /* a sha256 the object does not have */
    assert_string_equal(header(&m, &hit, "Cache-Status"), "arca; detail=digest-mismatch");
    assert_string_equal(header(&m, &miss, "Cache-Status"),
                        "arca; fwd=uri-miss; detail=digest-mismatch");
    assert_string_equal(header(&m, &hit, "Age"), "");
}

static void one_etag_for_an_objects_life(void **state)
{
    struct object_meta m = object(OBJ_FETCHING, 0, 3600);
    struct fetch_req miss = req(LOOKUP_MISS), hit = req(LOOKUP_HIT);
    char sha_tag[68];
    (void)state;
    snprintf(m.etag, sizeof(m.etag), "\"v1\"");
    assert_string_equal(header(&m, &miss, "ETag"), "\"v1\"");
    m.state = OBJ_COMPLETE;
    assert_string_equal(header(&m, &hit, "ETag"), "\"v1\"");
    /* none from the origin, or a weak one (it validates no range): the sha256 once complete */
    sha_tag[0] = '"'; /* the digest's bytes are 0xab */
    for (int i = 0; i < 32; i++)
        memcpy(sha_tag + 1 + 2 * i, "ab", 2);
    memcpy(sha_tag + 65, "\"", 2);
    for (int weak = 0; weak < 2; weak++) {
        snprintf(m.etag, sizeof(m.etag), "%s", weak ? "W/\"v1\"" : "");
        m.state = OBJ_FETCHING;
        assert_string_equal(header(&m, &miss, "ETag"), "");
        m.state = OBJ_COMPLETE;
        assert_string_equal(header(&m, &hit, "ETag"), sha_tag);
    }
}

/* --cache-name names arca's own member; the parent's members stay as it named them. */
static void the_member_is_named_cache_name(void **state)
{
    struct config cfg = *http_cfg;
    const struct config *before = http_cfg;
    struct object_meta m = object(OBJ_COMPLETE, 10, 100);
    struct fetch_req miss = req(LOOKUP_MISS);
    (void)state;
    sees_urls = true; /* the parent's members: for a client that may read upstream's words */
    snprintf(cfg.cache_name, sizeof(cfg.cache_name), "site-a");
    http_cfg = &cfg;
    snprintf(m.parent_status, sizeof(m.parent_status), "%s", "central; hit; ttl=90");
    assert_status(header(&m, &miss, "Cache-Status"),
                  "central; hit; ttl=90, site-a; fwd=uri-miss; ttl=", 90, "");
    http_cfg = before;
}

/* What a stranger (may not see URLs) reads of `reason`. */
static const char *strangers(const char *reason, unsigned int status, int retry_after)
{
    static char buf[256];
    struct fetch_req r = req(LOOKUP_MISS);
    sees_urls = false;
    return fetch_failure_words(&r, reason, status, retry_after, buf, sizeof(buf));
}

static void upstreams_words_go_to_those_who_see_urls(void **state)
{
    static const char reason[] = "parent failed after 1 attempt in 0.0 s: Failed to connect to "
                                 "10.0.0.5 port 8001 after 0 ms: Couldn't connect to server";
    struct fetch_req r = req(LOOKUP_MISS);
    char buf[256];
    (void)state;
    sees_urls = true;
    assert_ptr_equal(fetch_failure_words(&r, reason, 502, 0, buf, sizeof(buf)), reason);
    assert_string_equal(strangers(reason, 502, 0),
                        "parent failed after 1 attempt in 0.0 s: the parent could not be reached");
    assert_string_equal(
        strangers("upstream failed after 5 attempts in 15.1 s: upstream timed out: Operation "
                  "timed out after 3000 milliseconds with 0 bytes received",
                  504, 0),
        "upstream failed after 5 attempts in 15.1 s: the upstream did not answer in time");
    assert_string_equal(strangers("cannot resolve host build.example", 502, 0),
                        "the upstream could not be reached");
    /* a registry's failure names it; a stranger reads the count, not the lab's NAME */
    assert_string_equal(strangers("registry lab: failed after 5 attempts in 15.0 s: upstream "
                                  "answered 503",
                                  503, 0),
                        "registry failed after 5 attempts in 15.0 s: upstream answered 503");
    assert_string_equal(strangers("registry lab: failed after 1 attempt in 0.0 s: upstream "
                                  "unreachable: Failed to connect to 10.0.0.7 port 5000",
                                  502, 0),
                        "registry failed after 1 attempt in 0.0 s: the registry could not be "
                        "reached");
}

static void a_stranger_reads_bare_statuses_and_arcas_own_words(void **state)
{
    (void)state;
    assert_string_equal(strangers("upstream answered 404", 404, 0), "upstream answered 404");
    assert_string_equal(strangers("upstream failed after 5 attempts in 15.1 s: upstream answered "
                                  "503",
                                  503, 0),
                        "upstream failed after 5 attempts in 15.1 s: upstream answered 503");
    /* a parent's status, never what it said with it */
    assert_string_equal(strangers("parent answered 502 Bad Gateway, its origin's failure "
                                  "relayed: upstream unreachable: Failed to connect to 10.0.0.9",
                                  502, 0),
                        "parent answered 502");
    assert_string_equal(strangers("object larger than max-object-size (1000 bytes)", 413, 0),
                        "object larger than max-object-size (1000 bytes)");
    /* arca's refusal of an address, a redirect or a parent's own refusal: a refusal, unnamed */
    assert_string_equal(strangers("upstream address 10.0.0.5 port 80 names this arca's parent "
                                  "http://10.0.0.5",
                                  403, 0),
                        "the download was refused");
    assert_string_equal(strangers("parent http://10.0.0.5:8001 is down since "
                                  "2026-11-25T14:03:12Z (3 failures in a row); tried again in 4 s",
                                  503, 4),
                        "the parent is held down after failures in a row; tried again in 4 s");
    /* a summary only at the start is arca's count: one inside a parent's words is its words */
    assert_string_equal(strangers("parent refused: 403 Forbidden: x failed after 1 attempt in 0.0 "
                                  "s: upstream answered 404",
                                  403, 0),
                        "the download was refused");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_parents_members_come_first),
        cmocka_unit_test(every_answer_of_an_object_says_its_freshness),
        cmocka_unit_test(errors_say_no_freshness),
        cmocka_unit_test(one_etag_for_an_objects_life),
        cmocka_unit_test(the_member_is_named_cache_name),
        cmocka_unit_test(repr_digest_is_the_sha256_in_base64),
        cmocka_unit_test(the_filename_is_a_token_or_quoted),
        cmocka_unit_test(upstreams_words_go_to_those_who_see_urls),
        cmocka_unit_test(a_stranger_reads_bare_statuses_and_arcas_own_words),
    };
    static struct config cfg;
    config_defaults(&cfg);
    snprintf(cfg.cache_name, sizeof(cfg.cache_name), "arca"); /* the names pinned above */
    http_cfg = &cfg;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
