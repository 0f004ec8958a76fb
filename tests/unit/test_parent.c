/* Units for a download's parent arca (parent.h): the URL it is asked, what its answer's headers
 * and trailer say (Repr-Digest, Age, Cache-Status's ttl), which statuses are its own faults,
 * when it is not asked (credentials over plain http, held down), and its table's counts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "upstream/easy.h"
#include "upstream/parent.h"
#include "base/clock.h"

/* sha256("abc") as a Repr-Digest member, and its bytes. */
#define ABC_B64 "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="
static const uint8_t abc[32] = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
                                0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
                                0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};

static int setup(void **state)
{
    (void)state;
    upstream_claim_thread();
    return 0;
}

/* No key rules, no mirrors: a URL's credentials are what arca knows of itself (a sig=). */
static struct config cfg;

static struct fetch_terms terms_for(const char *parent, bool only, bool may)
{
    struct fetch_terms t;
    memset(&t, 0, sizeof(t));
    snprintf(t.sources.parent, sizeof(t.sources.parent), "%s", parent);
    t.sources.parent_only = only;
    t.sources.parent_credentials = may;
    t.parent_from = FROM_OPTION;
    return t;
}

/* The client's URL goes whole, its query and signature included, encoded as one argument. */
static void the_fetch_url_carries_the_url_whole(void **state)
{
    (void)state;
    char *u = parent_fetch_url("https://central.lab:8443/arca", "http://o.lab/a b?x=1&sig=Z~");
    assert_non_null(u);
    assert_string_equal(u, "https://central.lab:8443/arca/api/v1/fetch/"
                           "?url=http%3A%2F%2Fo.lab%2Fa%20b%3Fx%3D1%26sig%3DZ~");
    free(u);
}

/* Its Repr-Digest (a header or the trailer), Age, and its own (last) Cache-Status member. */
static void its_answer_says_digest_age_and_freshness(void **state)
{
    struct parent_ask p = {.slot = -1};
    (void)state;
    parent_header(&p, "Repr-Digest: md5=:AAAA:, sha-256=:" ABC_B64 ":");
    assert_true(p.has_digest);
    assert_true(parent_digest_ok(&p, abc));
    parent_header(&p, "Age: 120");
    parent_header(&p, "Cache-Status: edge; hit, arca; fwd=uri-miss; ttl=3480");
    assert_int_equal(p.age, 120);
    assert_true(p.has_left);
    assert_int_equal(p.left, 3480);
    assert_false(p.hit); /* the parent's own member is its last one: a miss */
    parent_header(&p, "Cache-Status: arca; hit; ttl=-5");
    assert_true(p.hit);
    assert_int_equal(p.left, -5);
    /* a new response forgets all but the digest (a trailer may have brought it) */
    parent_response_reset(&p);
    assert_false(p.has_left);
    assert_int_equal(p.age, 0);
    assert_true(p.has_digest);
}

/* A parent that kept no copy (its own member says stored=?0) vouches for no freshness; the
 * words inside a quoted string, or in an earlier member, are not its own. */
static void an_answer_it_did_not_keep_vouches_for_no_freshness(void **state)
{
    struct parent_ask p = {.slot = -1};
    (void)state;
    parent_header(&p, "Cache-Status: arca; fwd=uri-miss; stored=?0; ttl=864000");
    assert_true(p.not_stored);
    assert_true(p.has_left);
    parent_response_reset(&p);
    assert_false(p.not_stored);
    parent_header(&p, "Cache-Status: edge; stored=?0, arca; hit; detail=\"stored=?0\"; ttl=5");
    assert_false(p.not_stored);
}

/* Where redirects took a download, as a child is told it: no secret, one a line, and what
 * cannot be held is a hop no rule lets through, never a silent gap. */
static void hops_are_shown_without_secrets_and_never_lost(void **state)
{
    char hops[160] = "", small[48] = "";
    (void)state;
    easy_add_hop(hops, sizeof(hops), "http://o.lab/private/fw.bin?X-Amz-Signature=s3cr3t");
    easy_add_hop(hops, sizeof(hops), "http://o.lab/b");
    assert_null(strstr(hops, "s3cr3t"));
    assert_non_null(strstr(hops, "http://o.lab/private/fw.bin?"));
    assert_non_null(strstr(hops, "\nhttp://o.lab/b"));
    easy_add_hop(small, sizeof(small), "http://o.lab/a");
    easy_add_hop(small, sizeof(small), "http://o.lab/a-much-longer-path-than-fits-here");
    assert_non_null(strstr(small, EASY_HOP_UNKNOWN));
    assert_null(strstr(small, "longer"));
}

/* Digests that do not parse are no digest: the bytes are then never vouched for. */
static void a_malformed_digest_vouches_for_nothing(void **state)
{
    static const char *const bad[] = {
        "Repr-Digest: sha-256=:" ABC_B64,                /* no closing colon */
        "Repr-Digest: sha-256=:ungWv48Bz+pBQUDeXa4iI7:", /* too short */
        "Repr-Digest: sha-512=:" ABC_B64 ":",            /* another algorithm */
        "Repr-Digest: sha-256=:!!!!v48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=:",
        "Age: -3",
    };
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct parent_ask p = {.slot = -1};
        parent_header(&p, bad[i]);
        assert_false(parent_digest_ok(&p, abc));
        assert_int_equal(p.age, 0);
    }
}

/* What is kept to be shown again has no control byte and whole members, the parent's own last. */
static void its_cache_status_is_kept_clean(void **state)
{
    struct parent_ask p = {.slot = -1};
    char line[600];
    (void)state;
    parent_header(&p, "Cache-Status: arca; hit\x01; ttl=5");
    assert_string_equal(p.cache_status, "");
    snprintf(line, sizeof(line), "Cache-Status: %0200d, arca; hit; ttl=7", 0);
    parent_header(&p, line);
    assert_string_equal(p.cache_status, "arca; hit; ttl=7");
    assert_int_equal(p.left, 7);
}

/* Its 2xx and 304 are bodies; a 4xx with Cache-Status is the origin's verdict; the rest, and a
 * 416 about our own Range, are its faults. */
static void its_statuses_are_judged(void **state)
{
    struct parent_ask bare = {.slot = -1}, relayed = {.slot = -1};
    enum parent_fault f = PARENT_FAULTS;
    (void)state;
    parent_header(&relayed, "Cache-Status: arca; fwd=uri-miss");
    assert_int_equal(parent_judge(&bare, 200, &f), 0);
    assert_int_equal(parent_judge(&bare, 206, &f), 0);
    assert_int_equal(parent_judge(&bare, 304, &f), 0);
    assert_int_equal(parent_judge(&bare, 103, &f), 0);
    assert_int_equal(parent_judge(&relayed, 404, &f), 1);
    assert_int_equal(parent_judge(&relayed, 403, &f), 1);
    assert_int_equal(parent_judge(&bare, 403, &f), -1);
    assert_int_equal(f, PARENT_STATUS);
    assert_int_equal(parent_judge(&relayed, 416, &f), -1);
    assert_int_equal(parent_judge(&bare, 302, &f), -1);
    assert_int_equal(parent_judge(&relayed, 503, &f), -1);
    assert_int_equal(parent_judge(&relayed, 507, &f), -1);
    assert_int_equal(f, PARENT_STATUS);
    assert_int_equal(parent_judge(&bare, 508, &f), -1);
    assert_int_equal(f, PARENT_LOOP);
}

/* An object too large for the parent (its 413 or 507 says detail=too-large, in its own member
 * only) is the URL's: the origin is asked; a member before it, or a quoted string, says
 * nothing of this parent. */
static void too_large_for_it_is_said_in_its_own_member(void **state)
{
    struct parent_ask p = {.slot = -1};
    enum parent_fault f = PARENT_FAULTS;
    (void)state;
    parent_header(&p, "Cache-Status: arca; fwd=uri-miss; detail=too-large");
    assert_true(p.too_large);
    assert_int_equal(parent_judge(&p, 413, &f), -1);
    assert_int_equal(f, PARENT_STATUS);
    parent_response_reset(&p);
    assert_false(p.too_large);
    parent_header(&p, "Cache-Status: arca; fwd=uri-miss; detail=too-large, arca; fwd=uri-miss");
    assert_false(p.too_large);
    parent_header(&p, "Cache-Status: arca; fwd=uri-miss; x=\"; detail=too-large\"");
    assert_false(p.too_large);
    parent_header(&p, "Cache-Status: arca; fwd=uri-miss; detail=too-large-ish");
    assert_false(p.too_large);
}

/* A parent's answer is said as the parent's: its own refusal, its origin's failure relayed, an
 * object too large for it; its reason phrase shown, printable bytes only. */
static void its_statuses_are_said_as_its_own(void **state)
{
    struct parent_ask p = {.slot = -1};
    char out[320];
    (void)state;
    parent_status_line(&p, "HTTP/1.1 403 Forbidden");
    parent_status_words(&p, 403, out, sizeof(out));
    assert_string_equal(out, "parent refused: 403 Forbidden");
    parent_status_line(&p, "HTTP/1.1 503 Service\x01Unavailable");
    parent_header(&p, "Cache-Status: arca; fwd=uri-miss");
    parent_status_words(&p, 503, out, sizeof(out));
    assert_string_equal(out,
                        "parent answered 503 Service?Unavailable, its origin's failure relayed");
    parent_status_line(&p, "HTTP/1.1 507 Insufficient Storage");
    parent_header(&p, "Cache-Status: arca; fwd=uri-miss; detail=too-large");
    parent_status_words(&p, 507, out, sizeof(out));
    assert_string_equal(out,
                        "parent answered 507 Insufficient Storage: the object is too large for it");
    parent_status_line(&p, "HTTP/1.1 502");
    parent_status_words(&p, 502, out, sizeof(out));
    assert_string_equal(out, "parent answered 502");
    /* its one-line reason follows, printable, a URL's secret hidden; the next answer forgets it */
    parent_status_line(&p, "HTTP/1.1 403 Forbidden");
    parent_header(&p, "Arca-Error: rule s2 \x7f refused http://h/x?sig=abc&a=1");
    parent_status_words(&p, 403, out, sizeof(out));
    assert_string_equal(out, "parent refused: 403 Forbidden: rule s2 ? refused "
                             "http://h/x?sig=REDACTED&a=1");
    parent_status_line(&p, "HTTP/1.1 403 Forbidden");
    parent_status_words(&p, 403, out, sizeof(out));
    assert_string_equal(out, "parent refused: 403 Forbidden");
}

/* A TLS alert from the parent is its refusal of this arca, said with what to do when it is
 * about a certificate; any other failure is not. */
static void a_handshake_it_refuses_is_said_so(void **state)
{
    char out[300];
    (void)state;
    assert_true(parent_tls_refused(CURLE_RECV_ERROR,
                                   "OpenSSL SSL_read: OpenSSL/3.0.19: error:0A00045C:SSL "
                                   "routines::tlsv13 alert certificate required, errno 0",
                                   NULL, out, sizeof(out)));
    assert_string_equal(out, "parent refused the TLS handshake: tlsv13 alert certificate "
                             "required (show it one: --parent-cert, --parent-key)");
    assert_true(parent_tls_refused(CURLE_SSL_CONNECT_ERROR,
                                   "error:0A000418:SSL routines::tlsv1 alert unknown ca", "", out,
                                   sizeof(out)));
    assert_string_equal(out, "parent refused the TLS handshake: tlsv1 alert unknown ca (show it "
                             "one: --parent-cert, --parent-key)");
    /* a certificate was shown: that one is refused, and said so */
    assert_true(parent_tls_refused(CURLE_SSL_CONNECT_ERROR,
                                   "error:0A000418:SSL routines::tlsv1 alert unknown ca",
                                   "/etc/arca/tls/site1.pem", out, sizeof(out)));
    assert_string_equal(out, "parent refused the TLS handshake: tlsv1 alert unknown ca (the "
                             "parent's client CA does not accept the certificate shown, "
                             "/etc/arca/tls/site1.pem)");
    assert_true(parent_tls_refused(CURLE_SSL_CONNECT_ERROR,
                                   "error:0A00042E:SSL routines::tlsv1 alert protocol version",
                                   "/etc/arca/tls/site1.pem", out, sizeof(out)));
    assert_string_equal(out, "parent refused the TLS handshake: tlsv1 alert protocol version");
    assert_false(parent_tls_refused(CURLE_PEER_FAILED_VERIFICATION,
                                    "SSL certificate problem: unable to get local issuer "
                                    "certificate",
                                    NULL, out, sizeof(out)));
    assert_false(
        parent_tls_refused(CURLE_RECV_ERROR, "Connection reset by peer", NULL, out, sizeof(out)));
}

/* Credentials never go to a plain-http parent unless trusted; --parent-only then refuses. */
static void credentials_go_only_where_they_may(void **state)
{
    struct parent_ask p;
    enum parent_fault why;
    char refuse[300];
    struct fetch_terms t = terms_for("http://p1.lab:8001", false, false);
    (void)state;
    parent_plan(&cfg, &p, &t, "http://o.lab/a?sig=x", &why, refuse, sizeof(refuse));
    assert_false(p.active);
    assert_int_equal(why, PARENT_CREDENTIALS);
    assert_string_equal(refuse, "");
    t.sources.parent_only = true;
    parent_plan(&cfg, &p, &t, "http://o.lab/a?sig=x", &why, refuse, sizeof(refuse));
    assert_false(p.active);
    assert_non_null(strstr(refuse, "--parent-only"));
    t = terms_for("https://p1.lab:8443", false, true);
    parent_plan(&cfg, &p, &t, "http://o.lab/a?sig=x", &why, refuse, sizeof(refuse));
    assert_true(p.active);
    assert_non_null(strstr(p.fetch_url, "sig%3Dx"));
    parent_forget(&p);
    t = terms_for("", false, false);
    parent_plan(&cfg, &p, &t, "http://o.lab/a", &why, refuse, sizeof(refuse));
    assert_false(p.active);
    assert_int_equal(why, PARENT_FAULTS);
}

/* The parent's row in the table. */
static const struct parent_report *row_of(const char *url, struct parent_report *rows, int n)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(rows[i].url, url))
            return &rows[i];
    return NULL;
}

/* PARENT_FAILURES faults in a row hold it down (its attempt refused by the one question,
 * hosts_admit as HOST_PARENT: passed over, counted as "down"); with --parent-only it is asked
 * anyway, as the download's origin; an answer that checks out clears it. */
static void faults_in_a_row_hold_it_down(void **state)
{
    struct parent_report rows[PARENT_MAX];
    struct parent_ask p;
    enum parent_fault why;
    char refuse[300], held[400];
    int retry_after = 0;
    bool probe;
    struct fetch_terms t = terms_for("http://p2.lab:8001", false, false);
    const struct parent_report *r;
    (void)state;
    for (int i = 0; i < PARENT_FAILURES; i++) {
        parent_plan(&cfg, &p, &t, "http://o.lab/a", &why, refuse, sizeof(refuse));
        assert_true(p.active);
        parent_fault(&p, "http://o.lab/a", i ? PARENT_CUT : PARENT_REFUSED, true, "test");
        assert_false(p.active);
        parent_forget(&p);
    }
    r = row_of("http://p2.lab:8001", rows, parent_report(rows, PARENT_MAX));
    assert_non_null(r);
    assert_true(r->down);
    assert_int_equal(r->failures, PARENT_FAILURES);
    assert_int_equal(r->fallbacks[PARENT_REFUSED], 1);
    assert_int_equal(r->fallbacks[PARENT_CUT], PARENT_FAILURES - 1);
    parent_plan(&cfg, &p, &t, "http://o.lab/a", &why, refuse, sizeof(refuse));
    assert_true(p.active);
    assert_false(hosts_admit(p.fetch_url, NULL, HOST_PARENT, monotonic_ms(), true, &probe, held,
                             sizeof(held), &retry_after));
    assert_non_null(strstr(held, "parent http://p2.lab:8001 is down since"));
    assert_true(hosts_admit(p.fetch_url, NULL, HOST_ORIGIN, monotonic_ms(), true, &probe, held,
                            sizeof(held), &retry_after));
    parent_fault(&p, "http://o.lab/a", PARENT_DOWN, false, held);
    parent_forget(&p);
    t.sources.parent_only = true;
    parent_plan(&cfg, &p, &t, "http://o.lab/a", &why, refuse, sizeof(refuse));
    assert_true(p.active);
    parent_header(&p, "Cache-Status: arca; hit; ttl=10");
    parent_served(&p, 1000);
    parent_forget(&p);
    r = row_of("http://p2.lab:8001", rows, parent_report(rows, PARENT_MAX));
    assert_false(r->down);
    assert_int_equal(r->failures, 0);
    assert_int_equal(r->requests, 1);
    assert_int_equal(r->hits, 1);
    assert_int_equal(r->bytes, 1000);
    assert_int_equal(r->fallbacks[PARENT_DOWN], 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_fetch_url_carries_the_url_whole),
        cmocka_unit_test(its_answer_says_digest_age_and_freshness),
        cmocka_unit_test(a_malformed_digest_vouches_for_nothing),
        cmocka_unit_test(an_answer_it_did_not_keep_vouches_for_no_freshness),
        cmocka_unit_test(hops_are_shown_without_secrets_and_never_lost),
        cmocka_unit_test(its_cache_status_is_kept_clean),
        cmocka_unit_test(its_statuses_are_judged),
        cmocka_unit_test(too_large_for_it_is_said_in_its_own_member),
        cmocka_unit_test(its_statuses_are_said_as_its_own),
        cmocka_unit_test(a_handshake_it_refuses_is_said_so),
        cmocka_unit_test(credentials_go_only_where_they_may),
        cmocka_unit_test(faults_in_a_row_hold_it_down),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
