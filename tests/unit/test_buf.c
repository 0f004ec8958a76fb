/* Units for the page builder's escaping and the resource listing's query parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "http/resources.h"

static char *take(struct buf *b)
{
    char *s = buf_take(b, NULL);
    assert_non_null(s);
    return s;
}

static void html_escapes_every_markup_byte(void **state)
{
    struct buf b = {0};
    char *s;
    (void)state;
    buf_html(&b, "<script>alert('x') & \"y\"</script>");
    s = take(&b);
    assert_string_equal(s, "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;");
    free(s);
}

static void query_keeps_only_unreserved_bytes(void **state)
{
    struct buf b = {0};
    char *s;
    (void)state;
    buf_query(&b, "-last_usage a&b=c/\xff");
    s = take(&b);
    assert_string_equal(s, "-last_usage%20a%26b%3Dc%2F%FF");
    free(s);
}

static void buffer_grows_past_its_first_block(void **state)
{
    struct buf b = {0};
    char *s;
    size_t len;
    (void)state;
    for (int i = 0; i < 10000; i++)
        buf_addf(&b, "%04d", i % 10000);
    s = buf_take(&b, &len);
    assert_int_equal(len, 40000);
    assert_memory_equal(s + 39996, "9999", 4);
    assert_null(b.data);
    free(s);
}

static void listing_query_defaults_follow_kisscache(void **state)
{
    struct resources_query q;
    const char *why;
    (void)state;
    assert_int_equal(resources_parse(NULL, NULL, NULL, &q, &why), 0);
    assert_int_equal(q.state, LIST_SUCCESSES);
    assert_string_equal(q.order_text, "-last_usage");
    assert_true(q.desc);
    assert_int_equal(resources_parse("downloading", NULL, "3", &q, &why), 0);
    assert_int_equal(q.order, ORDER_URL);
    assert_false(q.desc);
    assert_int_equal(q.page, 3);
    assert_int_equal(resources_parse(NULL, "-content_length", NULL, &q, &why), 0);
    assert_int_equal(q.order, ORDER_SIZE);
}

static void listing_query_refuses_what_it_does_not_know(void **state)
{
    struct resources_query q;
    const char *why = NULL;
    (void)state;
    assert_int_equal(resources_parse("lost", NULL, NULL, &q, &why), -1);
    assert_non_null(strstr(why, "state"));
    assert_int_equal(resources_parse(NULL, "--url", NULL, &q, &why), -1);
    assert_int_equal(resources_parse(NULL, "size", NULL, &q, &why), -1);
    assert_int_equal(resources_parse(NULL, NULL, "0", &q, &why), -1);
    assert_int_equal(resources_parse(NULL, NULL, "2x", &q, &why), -1);
    assert_int_equal(resources_parse(NULL, NULL, "", &q, &why), -1);
    assert_int_equal(resources_pages(0), 1);
    assert_int_equal(resources_pages(25), 1);
    assert_int_equal(resources_pages(26), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(html_escapes_every_markup_byte),
        cmocka_unit_test(query_keeps_only_unreserved_bytes),
        cmocka_unit_test(buffer_grows_past_its_first_block),
        cmocka_unit_test(listing_query_defaults_follow_kisscache),
        cmocka_unit_test(listing_query_refuses_what_it_does_not_know),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
