/* Units for what arca shows of its parent arcas: `arca status`'s line (cli_parent_line), the
 * statistics and help pages' cards (web/parents.h), and a Prometheus label's escaping
 * (buf_label). A parent's URL and a rule's name are fed hostile: the pages must escape them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_status.h"
#include "config/config.h"
#include "http/http_internal.h"
#include "upstream/easy.h"
#include "upstream/parent.h"
#include "web/parents.h"

/* Markup's five specials in what config_parent_url would let through ('&' and '\'' in a path)
 * and what it would not: the page escapes them all the same. */
#define HOSTILE_URL "http://central.lab:8443/a&b'c<script>\"x\""
#define HOSTILE_URL_HTML "http://central.lab:8443/a&amp;b&#39;c&lt;script&gt;&quot;x&quot;"
#define HOSTILE_RULE "site<b>&"

static struct config cfg;

static int setup(void **state)
{
    (void)state;
    config_defaults(&cfg);
    http_cfg = &cfg;
    upstream_claim_thread();
    return 0;
}

static char *take(struct buf *b)
{
    char *s = buf_take(b, NULL);
    assert_non_null(s);
    return s;
}

static json_t *parent_json(const char *state, const char *since, long long failures,
                           long long requests, long long hits, long long bytes, long long status,
                           long long down)
{
    return json_pack("{s:s, s:s, s:s, s:s?, s:I, s:I, s:I, s:I, s:{s:I, s:I, s:I, s:I}}", "url",
                     "https://central:8443", "from", "--parent", "state", state, "down_since",
                     since, "failures", failures, "requests", requests, "hits", hits, "bytes",
                     bytes, "fallbacks", "refused", 0LL, "status", status, "loop", 0LL, "down",
                     down);
}

/* Up: what it gave and the fallbacks by reason, only those that counted, in the JSON's order. */
static void the_status_line_of_a_parent_up(void **state)
{
    char line[512];
    json_t *p = parent_json("up", NULL, 0, 12, 7, 1288490189, 1, 2);
    (void)state;
    cli_parent_line(p, false, line, sizeof(line));
    assert_string_equal(line, "https://central:8443 (--parent): up; 12 requests, 7 hits, 1.2 GiB; "
                              "fell back to the origin 3 times (status 1, down 2)");
    json_decref(p);
}

/* Down: since when and its faults in a row; one of each is singular; none is "never". */
static void the_status_line_of_a_parent_down(void **state)
{
    char line[512];
    json_t *p = parent_json("down", "2026-11-26T04:55:24Z", 1, 1, 1, 6, 0, 0);
    (void)state;
    cli_parent_line(p, false, line, sizeof(line));
    assert_string_equal(line, "https://central:8443 (--parent): DOWN since 2026-11-26T04:55:24Z, "
                              "1 failure in a row; 1 request, 1 hit, 6 B; never fell back to the "
                              "origin");
    json_decref(p);
}

/* With --parent-only a download never goes to the origin: the faults are "passed over". */
static void the_status_line_under_parent_only(void **state)
{
    char line[512];
    json_t *p = parent_json("up", NULL, 0, 0, 0, 0, 1, 0);
    (void)state;
    cli_parent_line(p, true, line, sizeof(line));
    assert_string_equal(line, "https://central:8443 (--parent): up; 0 requests, 0 hits, 0 B; "
                              "passed over 1 time (status 1)");
    json_decref(p);
}

/* A line cut to its buffer stays a string; a JSON missing its keys prints "?" and zeros. */
static void the_status_line_fits_and_survives_a_bare_entry(void **state)
{
    char line[16];
    json_t *p = json_object();
    (void)state;
    cli_parent_line(p, false, line, sizeof(line));
    assert_int_equal(strlen(line), sizeof(line) - 1);
    char whole[256];
    cli_parent_line(p, false, whole, sizeof(whole));
    assert_string_equal(whole, "? (?): up; 0 requests, 0 hits, 0 B; never fell back to the origin");
    json_decref(p);
}

/* A label value can never end its label or its line. */
static void a_label_value_is_escaped(void **state)
{
    struct buf b = {0};
    char *s;
    (void)state;
    buf_label(&b, "http://a/\"x\\y\nz");
    s = take(&b);
    assert_string_equal(s, "\"http://a/\\\"x\\\\y\\nz\"");
    free(s);
}

/* Without any parent known, the pages say nothing of parents. */
static void no_parent_no_card(void **state)
{
    struct buf b = {0};
    char *s;
    (void)state;
    web_parents_card(&b, true);
    web_parents_help(&b, true);
    s = take(&b);
    assert_string_equal(s, "");
    free(s);
}

/* A rule's parent that failed PARENT_FAILURES times: held down, its card a warning, its URL and
 * its rule's name escaped, its fallbacks by reason. */
static void the_card_escapes_and_warns(void **state)
{
    struct parent_ask p;
    struct fetch_terms t;
    enum parent_fault why;
    char refuse[300], *s;
    struct buf b = {0};
    (void)state;
    memset(&t, 0, sizeof(t));
    snprintf(t.sources.parent, sizeof(t.sources.parent), "%s", HOSTILE_URL);
    snprintf(t.rule, sizeof(t.rule), "%s", HOSTILE_RULE);
    t.parent_from = FROM_RULE;
    for (int i = 0; i < PARENT_FAILURES; i++) {
        parent_plan(&cfg, &p, &t, "http://o.lab/a", &why, refuse, sizeof(refuse));
        assert_true(p.active);
        parent_fault(&p, "http://o.lab/a", i ? PARENT_STATUS : PARENT_REFUSED, true, "test");
        parent_forget(&p);
    }
    web_parents_card(&b, true);
    s = take(&b);
    assert_non_null(strstr(s, "<div class=\"card warning\" id=\"parent\">"));
    assert_non_null(strstr(s, "<code>" HOSTILE_URL_HTML "</code>"));
    assert_non_null(strstr(s, "<td>rule site&lt;b&gt;&amp;</td>"));
    assert_non_null(strstr(s, "<span class=\"no\">down</span> since "));
    assert_non_null(strstr(s, "3 failures in a row"));
    assert_non_null(strstr(s, "<td class=\"fallbacks\">3 (refused 1, status 2)</td>"));
    assert_null(strstr(s, "<script>"));
    assert_null(strstr(s, "<b>"));
    free(s);
    web_parents_help(&b, true);
    s = take(&b);
    assert_non_null(strstr(s, "id=\"parent-help\""));
    assert_non_null(strstr(s, "<code>" HOSTILE_URL_HTML "</code> (rule site&lt;b&gt;&amp;)"));
    assert_null(strstr(s, "<script>"));
    free(s);
}

/* A parent that served: up, its counts; the options said when set. */
static void the_card_shows_what_a_parent_gave(void **state)
{
    struct parent_ask p;
    struct fetch_terms t;
    enum parent_fault why;
    char refuse[300], *s;
    struct buf b = {0};
    (void)state;
    memset(&t, 0, sizeof(t));
    snprintf(t.sources.parent, sizeof(t.sources.parent), "http://central.lab");
    t.parent_from = FROM_OPTION;
    parent_plan(&cfg, &p, &t, "http://o.lab/a", &why, refuse, sizeof(refuse));
    parent_header(&p, "Cache-Status: arca; hit; ttl=10");
    parent_served(&p, 2048);
    parent_forget(&p);
    cfg.parent_only = true;
    web_parents_card(&b, true);
    cfg.parent_only = false;
    s = take(&b);
    assert_non_null(strstr(s, "<h2>Parent arcas</h2>")); /* two now */
    assert_non_null(strstr(s, "<code>http://central.lab</code></td><td>--parent</td><td "
                              "class=\"state\"><span class=\"yes\">up</span></td><td "
                              "class=\"num requests\">1</td><td class=\"num hits\">1</td><td "
                              "class=\"num bytes\">2.0 KiB</td><td class=\"fallbacks muted\">"
                              "none</td>"));
    assert_non_null(strstr(s, "id=\"parent-only\""));
    assert_null(strstr(s, "id=\"parent-trusted-http\""));
    free(s);
    /* a stranger's: the counters, neither the URLs nor who named them */
    web_parents_card(&b, false);
    web_parents_help(&b, false);
    s = take(&b);
    assert_non_null(strstr(s, "<td class=\"url\">parent 2</td><td></td>"));
    assert_non_null(strstr(s, "<td class=\"num bytes\">2.0 KiB</td>"));
    assert_null(strstr(s, "central.lab"));
    assert_null(strstr(s, "rule site"));
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_status_line_of_a_parent_up),
        cmocka_unit_test(the_status_line_of_a_parent_down),
        cmocka_unit_test(the_status_line_under_parent_only),
        cmocka_unit_test(the_status_line_fits_and_survives_a_bare_entry),
        cmocka_unit_test(a_label_value_is_escaped),
        /* in this order: the parents' table only grows */
        cmocka_unit_test(no_parent_no_card),
        cmocka_unit_test(the_card_escapes_and_warns),
        cmocka_unit_test(the_card_shows_what_a_parent_gave),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
