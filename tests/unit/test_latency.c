/* Units for request times (latency.h) and each rule's counters (rule_stats.h): buckets by their
 * upper bound, quantiles as bucket bounds, threads' cells summed, the Prometheus text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "stats/latency.h"
#include "stats/rule_stats.h"

static void outcomes_are_the_access_logs_words(void **state)
{
    (void)state;
    assert_int_equal(latency_outcome_of("HIT"), LAT_HIT);
    assert_int_equal(latency_outcome_of("MISS:parent"), LAT_MISS);
    assert_int_equal(latency_outcome_of("MISSED"), -1);
    assert_int_equal(latency_outcome_of("HELD_DOWN"), LAT_HELD_DOWN);
    assert_int_equal(latency_outcome_of("TUNNEL"), -1);
    assert_int_equal(latency_outcome_of("-"), -1);
    assert_string_equal(latency_outcome_name(LAT_HELD_DOWN), "held_down");
}

static void a_time_falls_in_the_first_bucket_it_does_not_exceed(void **state)
{
    struct latency_hist h;
    (void)state;
    latency_record(LAT_CUT, 100, 101);     /* 100 µs: the first bucket; 101: the second */
    latency_record(LAT_CUT, 0, 400000000); /* past 5 min: +Inf */
    latency_read(LAT_CUT, LAT_FIRST_BYTE, &h);
    assert_int_equal(h.count, 2);
    assert_int_equal(h.bucket[0], 2);
    assert_int_equal(h.sum_us, 100);
    latency_read(LAT_CUT, LAT_TOTAL, &h);
    assert_int_equal(h.bucket[1], 1);
    assert_int_equal(h.bucket[LATENCY_BUCKETS], 1);
    assert_true(fabs(latency_quantile(&h, 0.5) - 0.00025) < 1e-12);
    assert_true(fabs(latency_quantile(&h, 0.99) - 300.0) < 1e-9); /* +Inf: the last bound */
}

static void an_empty_histogram_has_no_quantile(void **state)
{
    struct latency_hist h;
    (void)state;
    latency_read(LAT_REFUSED, LAT_TOTAL, &h);
    assert_int_equal(h.count, 0);
    assert_true(isnan(latency_quantile(&h, 0.5)));
}

static void *record_many(void *arg)
{
    (void)arg;
    for (int i = 0; i < 1000; i++)
        latency_record(LAT_STALE, 3000, 3000);
    return NULL;
}

static void every_threads_cells_are_summed(void **state)
{
    pthread_t t[4];
    struct latency_hist h;
    (void)state;
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, record_many, NULL), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    latency_read(LAT_STALE, LAT_TOTAL, &h);
    assert_int_equal(h.count, 4000);
    assert_int_equal(h.bucket[5], 4000); /* 3 ms: the 5 ms bucket */
    assert_int_equal(h.sum_us, 4000 * 3000);
}

static void the_metrics_text_is_cumulative_and_leaves_out_what_never_happened(void **state)
{
    struct buf b = {0};
    (void)state;
    latency_record(LAT_HIT, 50, 700);
    latency_metrics(&b);
    assert_non_null(strstr(b.data, "# TYPE arca_request_duration_seconds histogram\n"));
    assert_non_null(strstr(b.data, "arca_request_duration_seconds_bucket{outcome=\"hit\","
                                   "phase=\"total\",le=\"0.0005\"} 0\n"));
    assert_non_null(strstr(b.data, "arca_request_duration_seconds_bucket{outcome=\"hit\","
                                   "phase=\"total\",le=\"0.001\"} 1\n"));
    assert_non_null(strstr(b.data, "arca_request_duration_seconds_count{outcome=\"hit\","
                                   "phase=\"first_byte\"} 1\n"));
    assert_null(strstr(b.data, "outcome=\"revalidated\""));
    buf_free(&b);
}

static void rules_are_counted_by_name_and_the_rest_as_other(void **state)
{
    struct buf b = {0};
    char name[32];
    (void)state;
    rule_stats_count("", true, 10); /* no rule: not counted */
    rule_stats_count("firmware", true, 100);
    rule_stats_count("firmware", false, 50);
    for (int i = 0; i < RULE_STATS_MAX + 5; i++) {
        snprintf(name, sizeof(name), "r%d", i);
        rule_stats_count(name, false, 1);
    }
    rule_stats_metrics(&b);
    assert_non_null(strstr(b.data, "arca_rule_requests_total{rule=\"firmware\"} 2\n"));
    assert_non_null(strstr(b.data, "arca_rule_hits_total{rule=\"firmware\"} 1\n"));
    assert_non_null(strstr(b.data, "arca_rule_served_bytes_total{rule=\"firmware\"} 150\n"));
    assert_non_null(strstr(b.data, "arca_rule_requests_total{rule=\"r0\"} 1\n"));
    /* 255 names fit: firmware and r0..r253; the other 7 are one line */
    assert_non_null(strstr(b.data, "arca_rule_requests_total{rule=\"r253\"} 1\n"));
    assert_null(strstr(b.data, "rule=\"r254\""));
    assert_non_null(strstr(b.data, "arca_rule_requests_total{rule=\"(other)\"} 7\n"));
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(outcomes_are_the_access_logs_words),
        cmocka_unit_test(a_time_falls_in_the_first_bucket_it_does_not_exceed),
        cmocka_unit_test(an_empty_histogram_has_no_quantile),
        cmocka_unit_test(every_threads_cells_are_summed),
        cmocka_unit_test(the_metrics_text_is_cumulative_and_leaves_out_what_never_happened),
        cmocka_unit_test(rules_are_counted_by_name_and_the_rest_as_other),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
