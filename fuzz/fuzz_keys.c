/* keys_cache_url: over any URL's normal form, the key never grows, is a fixed point (the key of
 * a key is itself), comes out the same written in place, and a URL without a query is its own
 * key. --key-rules are fuzzed too: the first line of the input may be one. */
#include "fuzz.h"
#include "rules/keys.h"
#include "url/url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_string(data, size), *out = NULL, *key = NULL, *again = NULL;
    char err[CONFIG_ERR_LEN];
    struct config cfg;
    struct signature sig, sig2;
    int status;
    const char *why, *url;
    if (!s)
        return 0;
    config_defaults(&cfg);
    char *nl = strchr(s, '\n');
    url = s;
    if (nl) {
        *nl = '\0';
        if (config_set(&cfg, "key-rules", s, err) == 0)
            url = nl + 1;
    }
    size_t n = URL_BUF_SIZE(strlen(url));
    if ((out = malloc(n)) && (key = malloc(n)) && (again = malloc(n)) &&
        url_normalize(url, strlen(url), out, n, &status, &why) == 0) {
        keys_cache_url(&cfg, out, key, n, &sig);
        keys_cache_url(&cfg, key, again, n, &sig2);
        if (strlen(key) > strlen(out) || strcmp(again, key) != 0 || sig2.is_signed ||
            (!strchr(out, '?') && strcmp(key, out) != 0) || (!sig.is_signed && strcmp(key, out)))
            abort();
        keys_cache_url(&cfg, out, out, strlen(out) + 1, &sig2);
        if (strcmp(out, key) != 0 || sig2.is_signed != sig.is_signed)
            abort();
    }
    free(again);
    free(key);
    free(out);
    free(s);
    return 0;
}
