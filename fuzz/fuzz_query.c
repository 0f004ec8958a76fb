/* The fetch query's values, split the way libmicrohttpd hands them over (key=value&...), each
 * through the parser arca applies to that key: url, ttl, sha256. */
#include "fuzz.h"
#include "parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_string(data, size), *save = NULL;
    for (char *pair = s ? strtok_r(s, "&", &save) : NULL; pair; pair = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(pair, '=');
        const char *v = eq ? eq + 1 : "";
        int64_t ttl;
        uint8_t digest[32];
        if (eq)
            *eq = '\0';
        if (!strcmp(pair, "url"))
            check_upstream_url(v, 8192);
        else if (!strcmp(pair, "ttl") && parse_ttl(v, &ttl) == 0 && ttl <= 0)
            abort();
        else if (!strcmp(pair, "sha256"))
            parse_sha256_hex(v, digest);
    }
    free(s);
    return 0;
}
