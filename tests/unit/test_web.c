/* Units for web/: the page frame every page is drawn in (pages.h) and the inline SVG charts
 * (charts.h). What a page shows from outside (a title naming a bucket or folder, a chart's
 * labels) is fed hostile and must come out escaped: never a tag, never an attribute left. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "web/charts.h"
#include "config/config.h"
#include "http/http.h"
#include "web/pages.h"
#include "rules/policy.h"

#define HOSTILE "<script>alert(\"x\")</script>' onmouseover='y' &amp;"
#define HOSTILE_ESCAPED                                                                            \
    "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#39; onmouseover=&#39;y&#39; &amp;amp;"

static struct config cfg;

static int setup(void **state)
{
    (void)state;
    config_defaults(&cfg);
    http_cfg = &cfg;
    return 0;
}

/* The buffer's text, NUL-terminated (the caller frees it). */
static char *text_of(struct buf *b)
{
    size_t len;
    char *s = buf_take(b, &len);
    assert_non_null(s);
    return s;
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

static void a_page_title_is_escaped(void **state)
{
    struct buf b = {0};
    char *html;
    (void)state;
    web_page_begin(&b, HOSTILE, "/");
    html = text_of(&b);
    assert_non_null(strstr(html, "<title>" HOSTILE_ESCAPED " · arca</title>"));
    assert_null(strstr(html, "<script>alert"));
    assert_null(strstr(html, "' onmouseover"));
    /* the one script is arca's own, loaded from /static/ (no inline script) */
    assert_int_equal(count(html, "<script"), 1);
    assert_non_null(strstr(html, "<script src=\"/static/arca.js\" defer></script>"));
    free(html);
}

static void the_navigation_marks_the_active_section(void **state)
{
    struct buf b = {0};
    char *html;
    (void)state;
    web_page_begin(&b, "Statistics", "/statistics/");
    html = text_of(&b);
    assert_non_null(strstr(html, "<a href=\"/statistics/\" class=\"active\">Statistics</a>"));
    assert_non_null(strstr(html, "<a href=\"/\">Home</a>"));
    assert_int_equal(count(html, "class=\"active\""), 1);
    /* no bucket configured: no Buckets section */
    assert_null(strstr(html, "/browse/"));
    free(html);
}

static void buckets_appear_in_the_navigation_once_configured(void **state)
{
    struct buf b = {0};
    char *html;
    (void)state;
    cfg.n_buckets = 1;
    web_page_begin(&b, "Buckets", "/browse/");
    cfg.n_buckets = 0;
    html = text_of(&b);
    assert_non_null(strstr(html, "<a href=\"/browse/\" class=\"active\">Buckets</a>"));
    free(html);
}

static void a_page_response_forbids_inline_script_and_sniffing(void **state)
{
    struct buf b = {0};
    struct answer *r;
    char v[512];
    const char *csp;
    (void)state;
    web_page_begin(&b, "Home", "/");
    buf_add(&b, "<h1>arca</h1>");
    r = web_page_response(&b);
    assert_non_null(r);
    assert_string_equal(answer_header_value(r, "Content-Type", v, sizeof(v)),
                        "text/html; charset=utf-8");
    assert_string_equal(answer_header_value(r, "X-Content-Type-Options", v, sizeof(v)), "nosniff");
    csp = answer_header_value(r, "Content-Security-Policy", v, sizeof(v));
    assert_non_null(csp);
    assert_non_null(strstr(csp, "default-src 'none'"));
    assert_non_null(strstr(csp, "script-src 'self'"));
    assert_null(strstr(csp, "unsafe-inline"));
    answer_put(r);
}

static void bar_chart_labels_and_names_are_escaped(void **state)
{
    static const double served[3] = {1024, 2048, 0}, down[3] = {0, 512, 4096};
    const char *labels[3] = {HOSTILE, "01 Jan 00:00", "01 Jan 01:00"};
    struct chart_series series[2] = {{HOSTILE, "served", served, NULL},
                                     {"down", "downloaded", down, NULL}};
    struct buf b = {0};
    char *svg;
    (void)state;
    chart_bars(&b, "traffic", HOSTILE, 3, labels, 1, series, 2, UNIT_BYTES);
    svg = text_of(&b);
    assert_null(strstr(svg, "<script"));
    assert_null(strstr(svg, "' onmouseover"));
    assert_non_null(strstr(svg, "<figcaption>" HOSTILE_ESCAPED "</figcaption>"));
    assert_non_null(strstr(svg, "aria-label=\"" HOSTILE_ESCAPED "\""));
    /* one bar per column and series, each with its tooltip; a tick label every column */
    assert_int_equal(count(svg, "<rect class=\"bar "), 6);
    assert_int_equal(count(svg, "<title>"), 6);
    assert_non_null(
        strstr(svg, "<title>" HOSTILE_ESCAPED " — " HOSTILE_ESCAPED ": 1.0 KiB</title>"));
    assert_int_equal(count(svg, "text-anchor=\"middle\">"), 3); /* the columns' labels */
    /* the legend names both series, escaped */
    assert_non_null(strstr(svg, "<i class=\"swatch served\"></i>" HOSTILE_ESCAPED "</span>"));
    assert_non_null(strstr(svg, "<i class=\"swatch downloaded\"></i>down</span>"));
    free(svg);
}

/* An hour without requests has no hit ratio: no bar, and its tooltip says so, never 0 %. */
static void a_missing_value_is_said_not_drawn_as_zero(void **state)
{
    const double ratio[2] = {NAN, 50};
    const char *labels[2] = {"01 Jan 00:00", "01 Jan 01:00"};
    struct chart_series series[1] = {{"hit ratio", "hits", ratio, "no requests"}};
    struct buf b = {0};
    char *svg;
    (void)state;
    chart_bars(&b, "hits", "ratio", 2, labels, 1, series, 1, UNIT_PERCENT);
    svg = text_of(&b);
    assert_non_null(strstr(svg, "01 Jan 00:00 — hit ratio: no requests</title>"));
    assert_non_null(strstr(svg, "01 Jan 01:00 — hit ratio: 50 %</title>"));
    assert_null(strstr(svg, "nan"));
    assert_null(strstr(svg, ": 0 %"));
    free(svg);
}

static void an_empty_chart_still_draws(void **state)
{
    struct buf b = {0};
    char *svg;
    (void)state;
    chart_bars(&b, "hits", "Hit ratio", 0, NULL, 8, NULL, 0, UNIT_PERCENT);
    svg = text_of(&b);
    assert_non_null(strstr(svg, "<figure class=\"chart\" id=\"hits\">"));
    assert_non_null(strstr(svg, "</svg>"));
    assert_int_equal(count(svg, "<rect class=\"bar "), 0);
    free(svg);
}

/* The gauge's colour says how full the disk is: ok below 60 %, warning below 85 %, danger. */
static const char *gauge_level(int64_t used, int64_t total)
{
    static char level[16];
    struct buf b = {0};
    char *svg, *p;
    chart_gauge(&b, "disk", "Disk", used, total);
    svg = text_of(&b);
    p = strstr(svg, "<rect class=\"fill ");
    assert_non_null(p);
    sscanf(p + strlen("<rect class=\"fill "), "%15[a-z]", level);
    free(svg);
    return level;
}

static void the_gauge_is_coloured_by_how_full_it_is(void **state)
{
    struct buf b = {0};
    char *svg;
    (void)state;
    assert_string_equal(gauge_level(50, 100), "ok");
    assert_string_equal(gauge_level(60, 100), "warning");
    assert_string_equal(gauge_level(85, 100), "danger");
    assert_string_equal(gauge_level(300, 100), "danger");
    assert_string_equal(gauge_level(5, 0), "ok"); /* no quota */
    chart_gauge(&b, "disk", HOSTILE, 1 << 30, 4LL << 30);
    svg = text_of(&b);
    assert_non_null(strstr(svg, "<figcaption>" HOSTILE_ESCAPED ": 1.0 GiB of 4.0 GiB (25 %)"));
    assert_null(strstr(svg, "<script"));
    free(svg);
}

static void bytes_read_as_people_write_them(void **state)
{
    char out[32];
    (void)state;
    format_bytes(0, out, sizeof(out));
    assert_string_equal(out, "0 B");
    format_bytes(1023, out, sizeof(out));
    assert_string_equal(out, "1023 B");
    format_bytes(1536, out, sizeof(out));
    assert_string_equal(out, "1.5 KiB");
    format_bytes(10 * 1024, out, sizeof(out));
    assert_string_equal(out, "10 KiB");
    format_bytes(3.0 * 1024 * 1024 * 1024 * 1024, out, sizeof(out));
    assert_string_equal(out, "3.0 TiB");
}

/* --- whole pages, served: the server with a table of two web routes ----------------------- */

static const struct route two_pages[] = {
    {"/", ROUTE_EXACT, "GET, HEAD", web_home, NULL, NULL, false, 0, NULL, NULL, NULL},
    {"/help", ROUTE_SLASH, "GET, HEAD", web_help, NULL, NULL, false, 0, NULL, NULL, NULL},
    {NULL, ROUTE_EXACT, NULL, NULL, NULL, NULL, false, 0, NULL, NULL, NULL},
};

/* A port free now on the loopback (the kernel's pick, let go at once). */
static int free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static int start_server(void **state)
{
    char err[256];
    (void)state;
    config_defaults(&cfg);
    snprintf(cfg.listen_host, sizeof(cfg.listen_host), "127.0.0.1");
    cfg.listen_port = free_port();
    cfg.threads = 1;
    policy_init(&cfg);
    if (http_start(&cfg, two_pages, err, sizeof(err)) < 0) {
        fprintf(stderr, "http_start: %s\n", err);
        return -1;
    }
    return 0;
}

static int stop_server(void **state)
{
    (void)state;
    http_stop();
    return 0;
}

/* The whole answer to `request` (the connection closes after it); the caller frees it. */
static char *ask(const char *request)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)cfg.listen_port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct buf got = {0};
    char chunk[4096];
    ssize_t n;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(write(fd, request, strlen(request)), (ssize_t)strlen(request));
    while ((n = read(fd, chunk, sizeof(chunk))) > 0)
        buf_addn(&got, chunk, (size_t)n);
    close(fd);
    return text_of(&got);
}

/* The home page shows the fetch prefix with the Host the client named: a hostile one is text. */
static void the_home_page_echoes_the_host_escaped(void **state)
{
    char *answer;
    (void)state;
    answer = ask("GET / HTTP/1.1\r\nHost: <img src=x onerror=alert(1)>\"'&\r\n"
                 "Connection: close\r\n\r\n");
    assert_non_null(strstr(answer, "HTTP/1.1 200"));
    assert_non_null(strstr(answer, "Content-Security-Policy: default-src 'none'"));
    assert_non_null(strstr(answer, "http://&lt;img src=x onerror=alert(1)&gt;&quot;&#39;&amp;"
                                   "/api/v1/fetch/?url="));
    assert_null(strstr(answer, "<img"));
    assert_non_null(strstr(answer, "</html>"));
    free(answer);
}

static void the_help_page_renders_whole(void **state)
{
    char *answer;
    (void)state;
    answer = ask("GET /help/ HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    assert_non_null(strstr(answer, "HTTP/1.1 200"));
    assert_non_null(strstr(answer, "<title>Help · arca</title>"));
    assert_non_null(strstr(answer, "<a href=\"/help/\" class=\"active\">Help</a>"));
    assert_non_null(strstr(answer, "Your address: <code id=\"ip\">127.0.0.1</code>"));
    assert_non_null(strstr(answer, "</footer></body></html>"));
    free(answer);
}

/* The table handed to the server is all it serves: a page not in it is no page. */
static void a_route_not_in_the_table_is_not_served(void **state)
{
    char *answer;
    (void)state;
    answer = ask("GET /statistics/ HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    assert_non_null(strstr(answer, "HTTP/1.1 404"));
    assert_null(strstr(answer, "<html"));
    free(answer);
    answer = ask("POST /help HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n"
                 "Connection: close\r\n\r\n");
    assert_non_null(strstr(answer, "HTTP/1.1 405"));
    assert_non_null(strstr(answer, "Allow: GET, HEAD"));
    free(answer);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_page_title_is_escaped),
        cmocka_unit_test(the_navigation_marks_the_active_section),
        cmocka_unit_test(buckets_appear_in_the_navigation_once_configured),
        cmocka_unit_test(a_page_response_forbids_inline_script_and_sniffing),
        cmocka_unit_test(bar_chart_labels_and_names_are_escaped),
        cmocka_unit_test(a_missing_value_is_said_not_drawn_as_zero),
        cmocka_unit_test(an_empty_chart_still_draws),
        cmocka_unit_test(the_gauge_is_coloured_by_how_full_it_is),
        cmocka_unit_test(bytes_read_as_people_write_them),
    };
    const struct CMUnitTest served[] = {
        cmocka_unit_test(the_home_page_echoes_the_host_escaped),
        cmocka_unit_test(the_help_page_renders_whole),
        cmocka_unit_test(a_route_not_in_the_table_is_not_served),
    };
    int failed = cmocka_run_group_tests(tests, setup, NULL);
    return failed + cmocka_run_group_tests(served, start_server, stop_server);
}
