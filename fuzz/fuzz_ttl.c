/* parse_ttl and parse_duration_ms: query ttl values and every duration option. */
#include "fuzz.h"
#include "base/parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_string(data, size);
    int64_t v;
    if (s && parse_ttl(s, &v) == 0 && v <= 0)
        abort();
    if (s && parse_duration_ms(s, &v) == 0 && v <= 0)
        abort();
    free(s);
    return 0;
}
