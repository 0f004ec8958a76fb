/* Units for the route table (src/web/routes.c) as http.c matches it (http_route_match,
 * http_route_allows): which route a URL reaches, what a method gets there (405 with the route's
 * Allow list, 404 from the catch-all), and exact paths, trailing slashes and prefixes as the
 * scenarios expect them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "web/routes.h"

/* The path of the route `url` reaches ("" for the catch-all). */
static const char *route_of(const char *url)
{
    const struct route *rt = http_route_match(routes, url);
    assert_non_null(rt);
    return rt->path;
}

/* What a request gets at the routing step: 405 when the route does not take the method, 404
 * from the catch-all, else 0 (its handler answers). */
static int outcome(const char *method, const char *url)
{
    const struct route *rt = http_route_match(routes, url);
    assert_non_null(rt);
    if (!http_route_allows(rt, method))
        return 405;
    return rt->path[0] ? 0 : 404;
}

static const char *allow_of(const char *url)
{
    const char *m = http_route_match(routes, url)->methods;
    return m ? m : "*";
}

/* A route is its name as sent: an encoded letter or slash in it is no route (the catch-all's
 * 404), so a front proxy's rule on the literal path holds. */
static void encoded_route_names_are_not_routes(void **state)
{
    const char *encoded[] = {"/%6detrics",
                             "/%6Detrics",
                             "/metrics%00.css",
                             "/api%2Fv1%2Fresources%2F",
                             "/api/v1/%72esources",
                             "/%62rowse/lab/",
                             "/api/v1/fetch%2F",
                             "/%2F",
                             NULL};
    (void)state;
    for (int i = 0; encoded[i]; i++)
        assert_string_equal(route_of(encoded[i]), "");
    assert_string_equal(route_of("/metrics"), "/metrics");
    assert_string_equal(route_of("/browse/lab/%41"), "/browse/"); /* below a route: its own */
}

static void the_fetch_endpoint_takes_its_path_and_anything_below(void **state)
{
    (void)state;
    assert_string_equal(route_of("/api/v1/fetch"), "/api/v1/fetch");
    assert_string_equal(route_of("/api/v1/fetch/"), "/api/v1/fetch");
    assert_string_equal(route_of("/api/v1/fetch/Image.iso"), "/api/v1/fetch");
    assert_string_equal(route_of("/api/v1/fetch/a/b"), "/api/v1/fetch");
    assert_string_equal(route_of("/api/v1/fetchX"), ""); /* a tree, not a prefix */
    assert_string_equal(route_of("/api/v1/fetc"), "");
    assert_int_equal(outcome("GET", "/api/v1/fetch/"), 0);
    assert_int_equal(outcome("HEAD", "/api/v1/fetch/x"), 0);
    assert_int_equal(outcome("POST", "/api/v1/fetch/"), 405);
    assert_int_equal(outcome("DELETE", "/api/v1/fetch"), 405);
    assert_string_equal(allow_of("/api/v1/fetch/"), "GET, HEAD");
}

static void browse_alone_redirects_for_any_method(void **state)
{
    (void)state;
    assert_string_equal(route_of("/browse"), "/browse");
    assert_int_equal(outcome("POST", "/browse"), 0);
    assert_int_equal(outcome("PATCH", "/browse"), 0);
    assert_string_equal(route_of("/browse/"), "/browse/");
    assert_string_equal(route_of("/browse/bucket/dir/file.img"), "/browse/");
    assert_int_equal(outcome("POST", "/browse/bucket/"), 405);
    assert_string_equal(allow_of("/browse/x"), "GET, HEAD");
    assert_string_equal(route_of("/browsex"), "");
}

static void exact_paths_take_one_trailing_slash(void **state)
{
    (void)state;
    assert_string_equal(route_of("/api/v1/status"), "/api/v1/status");
    assert_string_equal(route_of("/api/v1/status/"), "/api/v1/status");
    assert_string_equal(route_of("/api/v1/status//"), "");
    assert_string_equal(route_of("/api/v1/status/x"), "");
    assert_string_equal(route_of("/api/v1/health/"), "/api/v1/health");
    assert_string_equal(route_of("/help"), "/help");
    assert_string_equal(route_of("/help/"), "/help");
    assert_string_equal(route_of("/statistics/"), "/statistics");
    /* no slash at all: */
    assert_string_equal(route_of("/metrics"), "/metrics");
    assert_string_equal(route_of("/metrics/"), "");
    assert_string_equal(route_of("/"), "/");
    assert_string_equal(route_of(""), "");
}

static void prefixes_and_trees(void **state)
{
    (void)state;
    assert_string_equal(route_of("/static/arca.css"), "/static/");
    assert_string_equal(route_of("/static/"), "/static/");
    assert_string_equal(route_of("/static"), ""); /* the prefix ends in '/' */
    assert_string_equal(route_of("/resources"), "/resources");
    assert_string_equal(route_of("/resources/"), "/resources");
    assert_string_equal(route_of("/resources/failures/2/"), "/resources");
    assert_string_equal(route_of("/resourcesX"), "");
    /* the web page and the API do not meet */
    assert_string_equal(route_of("/api/v1/resources"), "/api/v1/resources");
    assert_string_equal(route_of("/api/v1/resources/x"), "");
}

static void the_admin_api_takes_its_methods_only(void **state)
{
    (void)state;
    assert_int_equal(outcome("POST", "/api/v1/prefetch/"), 0);
    assert_int_equal(outcome("GET", "/api/v1/prefetch"), 405);
    assert_string_equal(allow_of("/api/v1/prefetch"), "POST");
    assert_non_null(http_route_match(routes, "/api/v1/prefetch")->upload);
    assert_int_equal(outcome("DELETE", "/api/v1/resources/"), 0);
    assert_int_equal(outcome("GET", "/api/v1/resources/"), 0);
    assert_int_equal(outcome("HEAD", "/api/v1/resources"), 0);
    assert_int_equal(outcome("PUT", "/api/v1/resources/"), 405);
    assert_string_equal(allow_of("/api/v1/resources/"), "GET, HEAD, DELETE");
}

static void unknown_paths_get_404_or_405(void **state)
{
    (void)state;
    assert_int_equal(outcome("GET", "/nope"), 404);
    assert_int_equal(outcome("HEAD", "/api/v2/fetch/"), 404);
    assert_int_equal(outcome("POST", "/nope"), 405);
    assert_string_equal(allow_of("/nope"), "GET, HEAD");
    /* pages answer GET and HEAD only */
    assert_int_equal(outcome("POST", "/"), 405);
    assert_int_equal(outcome("DELETE", "/metrics"), 405);
    /* a URL that is not a path at all still gets an answer */
    assert_string_equal(route_of("*"), "");
    assert_string_equal(route_of("http://example.com/"), "");
}

static void methods_are_whole_words(void **state)
{
    const struct route *fetch = http_route_match(routes, "/api/v1/fetch");
    (void)state;
    assert_true(http_route_allows(fetch, "GET"));
    assert_true(http_route_allows(fetch, "HEAD"));
    assert_false(http_route_allows(fetch, "GE"));
    assert_false(http_route_allows(fetch, "HEADS"));
    assert_false(http_route_allows(fetch, "get")); /* methods are case-sensitive */
    assert_false(http_route_allows(fetch, ""));
    assert_false(http_route_allows(fetch, "GET, HEAD"));
}

/* The access log's cache column comes from the routes that serve objects, and whatever holds a
 * state has a done to let go of it. */
static void routes_that_hold_state_let_go_of_it(void **state)
{
    (void)state;
    assert_non_null(http_route_match(routes, "/api/v1/fetch/")->done);
    assert_non_null(http_route_match(routes, "/browse/b/k")->done);
    assert_non_null(http_route_match(routes, "/api/v1/prefetch")->done);
    assert_null(http_route_match(routes, "/metrics")->done);
    for (const struct route *rt = routes; rt->path; rt++) {
        assert_non_null(rt->handler);
        if (rt->upload)
            assert_non_null(rt->done);
    }
}

/* Only the health check is a load balancer's poll (left out of the access log); with a query it
 * is not the path polled. */
static void only_health_is_polled(void **state)
{
    (void)state;
    assert_true(http_route_match(routes, "/api/v1/health")->polled);
    assert_true(http_route_match(routes, "/api/v1/health/")->polled);
    assert_false(http_route_match(routes, "/api/v1/health?x=1")->polled);
    assert_false(http_route_match(routes, "/api/v1/status/")->polled);
    assert_false(http_route_match(routes, "/api/v1/fetch/")->polled);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(encoded_route_names_are_not_routes),
        cmocka_unit_test(the_fetch_endpoint_takes_its_path_and_anything_below),
        cmocka_unit_test(browse_alone_redirects_for_any_method),
        cmocka_unit_test(exact_paths_take_one_trailing_slash),
        cmocka_unit_test(prefixes_and_trees),
        cmocka_unit_test(the_admin_api_takes_its_methods_only),
        cmocka_unit_test(unknown_paths_get_404_or_405),
        cmocka_unit_test(methods_are_whole_words),
        cmocka_unit_test(routes_that_hold_state_let_go_of_it),
        cmocka_unit_test(only_health_is_polled),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
