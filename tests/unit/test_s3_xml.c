/* Units for reading S3's ListObjectsV2 answers (s3_xml.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "s3/s3_xml.h"

static struct s3_page *parse(const char *xml, int status, const char *prefix)
{
    struct s3_page *p = calloc(1, sizeof(*p));
    assert_non_null(p);
    assert_int_equal(s3_xml_parse(xml, strlen(xml), status, prefix, "lab", p), 0);
    return p;
}

#define HEAD                                                                                       \
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"                                                   \
    "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"                         \
    "<Name>lab</Name><Prefix>builds/</Prefix>"

static void folders_first_markers_left_out(void **state)
{
    (void)state;
    struct s3_page *p = parse(
        HEAD "<KeyCount>5</KeyCount><MaxKeys>1000</MaxKeys><Delimiter>/</Delimiter>"
             "<IsTruncated>true</IsTruncated><NextContinuationToken>tok+/=</NextContinuationToken>"
             "<Contents><Key>builds/</Key><Size>0</Size></Contents>"
             "<Contents><Key>builds/Image</Key><LastModified>2026-11-22T16:51:32.000Z"
             "</LastModified><ETag>&quot;abc&quot;</ETag><Size>9400000</Size>"
             "<StorageClass>STANDARD</StorageClass></Contents>"
             "<Contents><Key>builds/a &amp; b &lt;c&gt; \xc3\xbc.txt</Key><Size>7</Size></Contents>"
             "<CommonPrefixes><Prefix>builds/dtbs/</Prefix></CommonPrefixes>"
             "<CommonPrefixes><Prefix>builds/logs/</Prefix></CommonPrefixes>"
             "</ListBucketResult>",
        200, "builds/");
    assert_int_equal(p->status, 200);
    assert_int_equal(p->n, 4);
    assert_int_equal(p->n_folders, 2);
    assert_string_equal(p->entries[0].name, "dtbs/");
    assert_true(p->entries[0].folder);
    assert_string_equal(p->entries[1].name, "logs/");
    assert_string_equal(p->entries[2].name, "Image");
    assert_false(p->entries[2].folder);
    assert_int_equal(p->entries[2].size, 9400000);
    assert_int_equal(p->entries[2].last_modified, 1795366292); /* 2026-11-22T16:51:32Z */
    assert_string_equal(p->entries[2].etag, "\"abc\"");
    assert_string_equal(p->entries[3].name, "a & b <c> \xc3\xbc.txt");
    assert_string_equal(p->next_token, "tok+/=");
    assert_false(p->empty_prefix);
    s3_page_free(p);
}

static void the_last_page_has_no_token(void **state)
{
    (void)state;
    struct s3_page *p =
        parse(HEAD "<KeyCount>1</KeyCount><IsTruncated>false</IsTruncated>"
                   "<NextContinuationToken>stale</NextContinuationToken>"
                   "<Contents><Key>builds/x</Key><Size>1</Size></Contents></ListBucketResult>",
              200, "builds/");
    assert_null(p->next_token);
    assert_int_equal(p->n, 1);
    s3_page_free(p);
}

static void nothing_under_the_prefix(void **state)
{
    (void)state;
    struct s3_page *p =
        parse(HEAD "<KeyCount>0</KeyCount><IsTruncated>false</IsTruncated></ListBucketResult>", 200,
              "builds/");
    assert_true(p->empty_prefix);
    assert_int_equal(p->n, 0);
    s3_page_free(p);
    /* a marker alone: the folder exists, empty */
    p = parse(HEAD "<KeyCount>1</KeyCount><Contents><Key>builds/</Key></Contents>"
                   "</ListBucketResult>",
              200, "builds/");
    assert_false(p->empty_prefix);
    assert_int_equal(p->n, 0);
    s3_page_free(p);
}

static void errors_become_one_line_reasons(void **state)
{
    (void)state;
    struct s3_page *p =
        parse("<Error><Code>AccessDenied</Code><Message>no</Message></Error>", 403, "");
    assert_int_equal(p->status, 502);
    assert_string_equal(p->error, "bucket lab: access denied by S3");
    s3_page_free(p);
    p = parse("<Error><Code>NoSuchBucket</Code></Error>", 404, "");
    assert_string_equal(p->error, "bucket lab: S3 has no such bucket");
    s3_page_free(p);
    p = parse("<Error><Code>Slow\nDown<b></Code></Error>", 503, "");
    assert_string_equal(p->error, "bucket lab: S3 answered 503");
    s3_page_free(p);
    p = parse("<ListBucketResult><Contents><Key>x", 200, "");
    assert_int_equal(p->status, 502);
    assert_non_null(strstr(p->error, "not valid XML"));
    s3_page_free(p);
}

static void keys_outside_the_prefix_are_ignored(void **state)
{
    (void)state;
    struct s3_page *p = parse(HEAD "<Contents><Key>other/x</Key></Contents>"
                                   "<CommonPrefixes><Prefix>other/</Prefix></CommonPrefixes>"
                                   "<Contents><Key>builds/ok</Key></Contents></ListBucketResult>",
                              200, "builds/");
    assert_int_equal(p->n, 1);
    assert_string_equal(p->entries[0].name, "ok");
    s3_page_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(folders_first_markers_left_out),
        cmocka_unit_test(the_last_page_has_no_token),
        cmocka_unit_test(nothing_under_the_prefix),
        cmocka_unit_test(errors_become_one_line_reasons),
        cmocka_unit_test(keys_outside_the_prefix_are_ignored),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
