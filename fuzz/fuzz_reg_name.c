/* reg_path_parse and the grammar under it: every /v2/ path a client sends. */
#include "fuzz.h"
#include "registry/reg_name.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_string(data, size);
    struct reg_path p;
    char why[200];
    if (!s)
        return 0;
    if (reg_path_parse(s, &p, why, sizeof(why)) == REG_OK && p.what != REG_BASE) {
        /* what it accepts, the grammar accepts alone */
        if (!reg_name_valid(p.repo, strlen(p.repo)) || strstr(p.repo, ".."))
            abort();
        if (p.what == REG_BLOB && !p.by_digest)
            abort();
        if (p.what == REG_MANIFEST && !p.by_digest && !reg_tag_valid(p.ref, strlen(p.ref)))
            abort();
    }
    uint8_t d[32];
    (void)reg_digest_parse(s, strlen(s), d);
    free(s);
    return 0;
}
