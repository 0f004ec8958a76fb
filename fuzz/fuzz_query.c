/* The fetch query as arca reads it (url.h): arca's parameters, the target URL's normal form and
 * its file name, then each value through the parser arca applies to it. The normal form must be
 * a fixed point: normalising it again changes nothing (one object, one key). */
#include "fuzz.h"
#include "base/parse.h"
#include "url/url.h"
#include "url/filename.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_string(data, size);
    struct fetch_params p;
    int status;
    const char *why;
    if (!s)
        return 0;
    p.url_size = URL_BUF_SIZE(strlen(s));
    p.url = malloc(p.url_size);
    if (p.url && url_parse_fetch_query(s, 8192, &p, &status, &why) == 0) {
        size_t len = strlen(p.url);
        char *again = malloc(URL_BUF_SIZE(len)), name[256];
        int64_t ttl;
        uint8_t digest[32];
        if (!again || url_normalize(p.url, len, again, URL_BUF_SIZE(len), &status, &why) < 0 ||
            strcmp(again, p.url) != 0 || strncmp(p.url, "http", 4) != 0 || strchr(p.url, ' '))
            abort();
        url_filename(p.url, name, sizeof(name));
        if (strstr(name, "..") || strchr(name, '/') || strchr(name, '\\'))
            abort();
        if (p.has_ttl && parse_ttl(p.ttl, &ttl) == 0 && (ttl <= 0 || ttl > TTL_MAX))
            abort();
        if (p.has_sha256)
            parse_sha256_hex(p.sha256, digest);
        free(again);
    }
    free(p.url);
    free(s);
    return 0;
}
