/* Units for the kinds of a download's source (source.h), judged without a transfer running:
 * the parent's judgement of an attempt's end and of its answers (its fault, the URL's, or a
 * lie), what its answer's lines add, what a mirror's bytes keep of the origin's word, and what
 * each kind brings or leaves out. A struct transfer here is a record on the stack, never
 * started. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "upstream/source_mirror.h"
#include "upstream/source_parent.h"
#include "upstream/transfer.h"

static int setup(void **state)
{
    (void)state;
    upstream_claim_thread();
    return 0;
}

/* An attempt that brought what it asked is no fault; otherwise how it ended says which. */
static void the_parents_end_is_judged_by_how_the_attempt_ended(void **state)
{
    (void)state;
    struct attempt a = {.rc = CURLE_OK};
    assert_int_equal(source_parent_end_fault(&a), PARENT_FAULTS);
    a = (struct attempt){.rc = CURLE_PARTIAL_FILE, .own_cut = true}; /* its range was in */
    assert_int_equal(source_parent_end_fault(&a), PARENT_FAULTS);
    a = (struct attempt){.rc = CURLE_OK, .bounded = true};
    assert_int_equal(source_parent_end_fault(&a), PARENT_FAULTS);
    a = (struct attempt){.rc = CURLE_OK, .retry_status = 503};
    assert_int_equal(source_parent_end_fault(&a), PARENT_STATUS);
    a = (struct attempt){.rc = CURLE_WRITE_ERROR, .start_over = true};
    assert_int_equal(source_parent_end_fault(&a), PARENT_LIE);
    a = (struct attempt){.rc = CURLE_PARTIAL_FILE, .body_started = true};
    assert_int_equal(source_parent_end_fault(&a), PARENT_CUT);
    a = (struct attempt){.rc = CURLE_COULDNT_CONNECT};
    assert_int_equal(source_parent_end_fault(&a), PARENT_REFUSED);
    /* a resume on a date met another version: its origin's change, asked again whole */
    a = (struct attempt){.rc = CURLE_WRITE_ERROR, .start_over = true, .on_date = true};
    assert_int_equal(source_parent_end_fault(&a), PARENT_FAULTS);
}

/* Only what no client can bring about with a URL counts toward holding the parent down. */
static void only_the_parents_own_faults_count_against_it(void **state)
{
    (void)state;
    assert_true(source_parent_own_fault(PARENT_DIGEST, false, false));
    assert_true(source_parent_own_fault(PARENT_LIE, true, false));
    assert_true(source_parent_own_fault(PARENT_STATUS, false, false));
    assert_false(source_parent_own_fault(PARENT_STATUS, true, false)); /* its upstream's, relayed */
    assert_true(source_parent_own_fault(PARENT_REFUSED, false, false)); /* no connection */
    assert_false(
        source_parent_own_fault(PARENT_REFUSED, true, false)); /* silent after the request */
    assert_false(source_parent_own_fault(PARENT_CUT, false, false));
    assert_false(source_parent_own_fault(PARENT_LOOP, false, false));
    assert_false(source_parent_own_fault(PARENT_DOWN, false, false));
    assert_false(source_parent_own_fault(PARENT_CREDENTIALS, false, false));
    /* after a resume on a date the kept bytes may be another version's: no digest fault */
    assert_false(source_parent_own_fault(PARENT_DIGEST, false, true));
    assert_true(source_parent_own_fault(PARENT_LIE, false, true));
}

/* A 4xx is the URL's; a 5xx its upstream's only when it carries a Cache-Status, but 507 (its
 * disk) unless the object is too large for it. */
static void a_parents_status_relays_the_urls_verdict_or_says_its_own(void **state)
{
    (void)state;
    assert_true(source_parent_relays(404, false, false));
    assert_true(source_parent_relays(502, false, true));
    assert_false(source_parent_relays(502, false, false));
    assert_false(source_parent_relays(507, false, true));
    assert_true(source_parent_relays(507, true, false));
    assert_false(source_parent_relays(200, false, true));
}

/* What does not continue what it sent, or a failure that is not a 4xx, is a lie. */
static void a_parents_answer_that_does_not_continue_is_a_lie(void **state)
{
    (void)state;
    struct verdict v = {VERDICT_REFETCH, 502, "another range"};
    assert_true(source_parent_lie(&v, 206, false, 100));
    v.kind = VERDICT_RESTART;
    assert_true(source_parent_lie(&v, 200, false, 100));
    assert_false(source_parent_lie(&v, 200, false, 0)); /* nothing kept: the whole body */
    v.kind = VERDICT_FAIL;
    assert_true(source_parent_lie(&v, 304, false, 0));  /* a 304 unasked */
    assert_false(source_parent_lie(&v, 304, true, 0));  /* it revalidated: renewed */
    assert_false(source_parent_lie(&v, 404, false, 0)); /* the URL's */
    /* its own failure statuses are judged before (parent_judge): one that is the verdict here
     * is not what a parent answers */
    assert_true(source_parent_lie(&v, 503, false, 0));
    v.kind = VERDICT_BODY;
    assert_false(source_parent_lie(&v, 200, false, 0));
}

/* The parent's hooks on an answer: its Arca-Redirect lines are its own (hops recorded), other
 * lines are read beside the core; a lie is marked as its fault, never with --parent-only. */
static void the_parents_hooks_read_its_lines_and_mark_its_lies(void **state)
{
    (void)state;
    static struct transfer t;
    static struct parent_source ps;
    memset(&t, 0, sizeof(t));
    memset(&ps, 0, sizeof(ps));
    t.src.list[0] = t.src.kind = &source_parent;
    t.src.rec[0] = &ps;
    t.src.n = 1;
    ps.ask.slot = -1;
    ps.fault = PARENT_FAULTS;
    assert_true(source_parent.header(&t, "Arca-Redirect: http://o.lab/b", true));
    assert_string_equal(t.a.hops, "http://o.lab/b");
    assert_false(source_parent.header(&t, "Age: 30", true));
    assert_int_equal(ps.ask.age, 30);
    struct verdict v = {VERDICT_REFETCH, 502, "not the same version"};
    t.offset = 10;
    assert_true(source_parent.lied(&t, &v));
    assert_int_equal(ps.fault, PARENT_LIE);
    assert_string_equal(t.src.why, "not the same version");
    ps.fault = PARENT_FAULTS;
    t.terms.sources.parent_only = true; /* judged as any upstream's */
    assert_false(source_parent.lied(&t, &v));
    assert_int_equal(ps.fault, PARENT_FAULTS);
    /* an object whose origin had no strong ETag is not split: its ETag comes once complete */
    assert_non_null(source_parent.no_fill(&t));
    snprintf(t.kept.etag, sizeof(t.kept.etag), "\"abc\"");
    assert_null(source_parent.no_fill(&t));
}

/* A mirror's bytes keep the validators the origin said when asked first; it judges nothing of
 * its own but a digest, adds no line, and its answer confirms no signed URL (the origin's
 * does). */
static void a_mirror_keeps_the_origins_word_and_judges_nothing(void **state)
{
    (void)state;
    static struct transfer t;
    static struct mirror_source ms;
    memset(&t, 0, sizeof(t));
    memset(&ms, 0, sizeof(ms));
    t.src.list[0] = t.src.kind = &source_mirror;
    t.src.rec[0] = &ms;
    t.src.n = 1;
    struct upstream_headers h = {.etag = "\"mirror\"", .last_modified = "mirror's date"};
    source_mirror.describe(&t, &h);
    assert_string_equal(h.etag, "\"mirror\""); /* the origin said nothing */
    ms.pick.origin_said = true;
    snprintf(ms.pick.origin_etag, sizeof(ms.pick.origin_etag), "\"origin\"");
    snprintf(ms.pick.origin_date, sizeof(ms.pick.origin_date), "origin's date");
    source_mirror.describe(&t, &h);
    assert_string_equal(h.etag, "\"origin\"");
    assert_string_equal(h.last_modified, "origin's date");
    assert_false(source_mirror.confirms_grants);
    assert_true(source_origin.confirms_grants);
    assert_true(source_parent.confirms_grants);
    const struct source_kind *plain[] = {&source_mirror, &source_origin};
    /* the origin adds a line only for a pypi page's JSON form (PEP 691's Accept) */
    struct curl_slist *lines = NULL;
    assert_null(source_mirror.headers);
    assert_int_equal(source_origin.headers(&t, &lines), 0);
    assert_null(lines);
    t.terms.remote.json = true;
    assert_int_equal(source_origin.headers(&t, &lines), 0);
    assert_non_null(lines);
    assert_string_equal(lines->data, "Accept: application/vnd.pypi.simple.v1+json");
    curl_slist_free_all(lines);
    t.terms.remote.json = false;
    for (size_t i = 0; i < 2; i++) {
        assert_null(plain[i]->judge_end);
        assert_null(plain[i]->vouches);
        assert_non_null(plain[i]->choose);
        assert_non_null(plain[i]->timeouts);
    }
    /* the origin is the last: nothing to move on to; a mirror moves on only from bytes that
     * are not the digest their URL names (the core's check) */
    assert_null(source_origin.move_on);
    assert_non_null(source_mirror.move_on);
    static struct upstream_loop loop;
    t.loop = &loop;
    assert_true(source_mirror.may_move_on(&t, SOURCE_DIGEST));
    assert_false(source_mirror.may_move_on(&t, SOURCE_HELD));
    assert_false(source_mirror.may_move_on(&t, SOURCE_CHANGED));
    assert_non_null(source_parent.judge_end);
    assert_non_null(source_parent.vouches);
    assert_non_null(source_parent.move_on);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_parents_end_is_judged_by_how_the_attempt_ended),
        cmocka_unit_test(only_the_parents_own_faults_count_against_it),
        cmocka_unit_test(a_parents_status_relays_the_urls_verdict_or_says_its_own),
        cmocka_unit_test(a_parents_answer_that_does_not_continue_is_a_lie),
        cmocka_unit_test(the_parents_hooks_read_its_lines_and_mark_its_lies),
        cmocka_unit_test(a_mirror_keeps_the_origins_word_and_judges_nothing),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
