/* check_upstream_url: the url parameter every fetch carries. */
#include "fuzz.h"
#include "parse.h"

#include <strings.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_string(data, size);
    if (s && check_upstream_url(s, 8192) == 0 && (strncasecmp(s, "http", 4) != 0 || strchr(s, ' ')))
        abort(); /* accepted something that is not an http(s) URL */
    free(s);
    return 0;
}
