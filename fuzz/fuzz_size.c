/* parse_size (--quota, --max-object-size, ...) and parse_content_length (upstream headers). */
#include "fuzz.h"
#include "base/parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_string(data, size);
    int64_t v;
    if (s && parse_size(s, &v) == 0 && v <= 0)
        abort();
    if (s && parse_content_length(s, &v) == 0 && v < 0)
        abort();
    free(s);
    return 0;
}
