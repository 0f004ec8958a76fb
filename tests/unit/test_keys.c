/* Units for the cache keys of signed URLs (keys.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "rules/keys.h"

static struct config cfg;
static char out[4096];

static const char *key(const char *url, struct signature *sig)
{
    keys_cache_url(&cfg, url, out, sizeof(out), sig);
    return out;
}

static int setup(void **state)
{
    (void)state;
    config_defaults(&cfg);
    return 0;
}

static void s3_sigv4_is_dropped_other_params_stay(void **state)
{
    struct signature sig;
    (void)state;
    assert_string_equal(
        key("https://b.s3.amazonaws.com/k/Image?versionId=3&X-Amz-Algorithm=AWS4-HMAC-SHA256"
            "&X-Amz-Credential=AK%2F20261122%2Fus-east-1%2Fs3%2Faws4_request"
            "&X-Amz-Date=20261122T140000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host"
            "&X-Amz-Signature=abcdef&X-Amz-Security-Token=tok",
            &sig),
        "https://b.s3.amazonaws.com/k/Image?versionId=3");
    assert_true(sig.is_signed);
    assert_int_equal(sig.expires, 1795356000 + 3600); /* 2026-11-22T14:00:00Z + 1 h */
}

static void every_builtin_scheme(void **state)
{
    struct signature sig;
    (void)state;
    assert_string_equal(key("https://h/a?AWSAccessKeyId=AK&Expires=1800000000&Signature=x", &sig),
                        "https://h/a");
    assert_int_equal(sig.expires, 1800000000);
    assert_string_equal(key("https://storage.googleapis.com/b/o?X-Goog-Algorithm=GOOG4-RSA-SHA256"
                            "&X-Goog-Credential=c&X-Goog-Date=20261122T140000Z&X-Goog-Expires=600"
                            "&X-Goog-SignedHeaders=host&X-Goog-Signature=00ff",
                            &sig),
                        "https://storage.googleapis.com/b/o");
    assert_int_equal(sig.expires, 1795356000 + 600);
    assert_string_equal(key("https://h/o?GoogleAccessId=x&Expires=1800000000&Signature=y", &sig),
                        "https://h/o");
    assert_string_equal(key("https://acct.blob.core.windows.net/c/b.img?sv=2022-11-02&ss=b&srt=o"
                            "&sp=r&se=2026-11-22T15:00:00Z&st=2026-11-22T13:00:00Z&spr=https"
                            "&sig=abc%3D&rscd=attachment",
                            &sig),
                        "https://acct.blob.core.windows.net/c/b.img?rscd=attachment");
    assert_int_equal(sig.expires, 1795356000 + 3600);
    assert_string_equal(
        key("https://d111.cloudfront.net/i.img?Expires=1800000000&Signature=s&Key-Pair-Id=K", &sig),
        "https://d111.cloudfront.net/i.img");
    assert_true(sig.is_signed);
}

static void unsigned_urls_are_their_own_key(void **state)
{
    struct signature sig;
    (void)state;
    /* Signature alone names no scheme: it stays, and so does an Expires of its own */
    assert_string_equal(key("https://h/a?Signature=x&Expires=1", &sig),
                        "https://h/a?Signature=x&Expires=1");
    assert_false(sig.is_signed);
    assert_string_equal(key("https://h/a", &sig), "https://h/a");
    assert_string_equal(key("https://h/a?sig=1", &sig), "https://h/a?sig=1");
    assert_false(sig.is_signed);
    /* nothing dropped: the URL exactly, odd separators included */
    assert_string_equal(key("https://h/a?x=1&&y&", &sig), "https://h/a?x=1&&y&");
    /* the key written over the URL itself, as the admin purge does */
    char url[] = "https://h/a?X-Amz-Signature=s&v=2&X-Amz-Date=20261122T140000Z";
    keys_cache_url(&cfg, url, url, sizeof(url), &sig);
    assert_string_equal(url, "https://h/a?v=2");
}

static void rules_and_exact_keys(void **state)
{
    struct signature sig;
    char err[CONFIG_ERR_LEN];
    (void)state;
    assert_int_equal(config_set(&cfg, "key-rules", "*.Example.com=token,exp", err), 0);
    assert_string_equal(key("https://dl.example.com/f?token=1&a=2&EXP=3", &sig),
                        "https://dl.example.com/f?a=2");
    assert_true(sig.is_signed);
    assert_int_equal(sig.expires, 0);
    /* another host keeps them */
    assert_string_equal(key("https://example.org/f?token=1", &sig),
                        "https://example.org/f?token=1");
    assert_false(sig.is_signed);
    assert_int_equal(config_set(&cfg, "key-rules", "nohost", err), -1);
    assert_int_equal(config_set(&cfg, "key-rules", "h=", err), -1);
    cfg.exact_keys = true;
    assert_string_equal(key("https://h/a?X-Amz-Signature=s", &sig),
                        "https://h/a?X-Amz-Signature=s");
    assert_false(sig.is_signed);
    /* what a mirror may be shown is without the signature all the same, rules included */
    keys_unsigned_url(&cfg, "https://h/a?X-Amz-Signature=s&v=1", out, sizeof(out), &sig);
    assert_string_equal(out, "https://h/a?v=1");
    assert_true(sig.is_signed);
    char *plain = keys_unsigned_url_dup(&cfg, "https://dl.example.com/f?a=2&token=1", &sig);
    assert_non_null(plain);
    assert_string_equal(plain, "https://dl.example.com/f?a=2");
    free(plain);
    cfg.exact_keys = false;
    cfg.n_key_rules = 0;
}

static void signature_times(void **state)
{
    int64_t t;
    (void)state;
    assert_int_equal(parse_signature_time("20261122T140000Z", 16, &t), 0);
    assert_int_equal(t, 1795356000);
    assert_int_equal(parse_signature_time("2026-11-22", 10, &t), 0);
    assert_int_equal(t, 1795305600);
    assert_int_equal(parse_signature_time("tomorrow", 8, &t), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(s3_sigv4_is_dropped_other_params_stay, setup),
        cmocka_unit_test_setup(every_builtin_scheme, setup),
        cmocka_unit_test_setup(unsigned_urls_are_their_own_key, setup),
        cmocka_unit_test_setup(rules_and_exact_keys, setup),
        cmocka_unit_test_setup(signature_times, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
