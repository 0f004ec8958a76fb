/* url_normalize: what it accepts is an absolute http(s) URL with nothing a request line may not
 * carry (no blank, control or non-ASCII byte), and its normal form is a fixed point. */
#include "fuzz.h"
#include "url.h"

#include <strings.h>

static bool fetchable(const char *u)
{
    if (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0)
        return false;
    for (const unsigned char *p = (const unsigned char *)u; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f)
            return false;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_string(data, size), *out = NULL, *again = NULL;
    int status;
    const char *why;
    if (s && (out = malloc(URL_BUF_SIZE(strlen(s)))) &&
        url_normalize(s, strlen(s), out, URL_BUF_SIZE(strlen(s)), &status, &why) == 0) {
        size_t len = strlen(out);
        if (!fetchable(out) || !(again = malloc(URL_BUF_SIZE(len))) ||
            url_normalize(out, len, again, URL_BUF_SIZE(len), &status, &why) < 0 ||
            strcmp(again, out) != 0)
            abort();
    }
    free(again);
    free(out);
    free(s);
    return 0;
}
