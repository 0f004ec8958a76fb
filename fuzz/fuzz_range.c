/* parse_range (client Range headers) against a total taken from the first 8 bytes,
 * parse_content_range (upstream 206 answers) and parse_want_digest (a child arca's
 * Want-Repr-Digest, any client's). */
#include "fuzz.h"
#include "base/parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int64_t total = 0, a, b, t;
    struct byte_range r;
    char *s;
    if (size < 8)
        return 0;
    memcpy(&total, data, 8);
    total = total < 0 ? -(total + 1) : total;
    s = fuzz_string(data + 8, size - 8);
    if (s && parse_range(s, total, &r) == RANGE_OK &&
        (r.first < 0 || r.last < r.first || r.last >= total))
        abort(); /* a range outside the object would read past its end */
    if (s && parse_content_range(s, &a, &b, &t) == 0 && (a < 0 || b < a || (t >= 0 && b >= t)))
        abort();
    /* a preference is -1 (not named), 0 or what the field gave: never left unset on a refusal */
    if (s && parse_want_digest(s, "sha-256", &a) < 0 && a != -1)
        abort();
    free(s);
    return 0;
}
