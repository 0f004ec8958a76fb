/* parse_cidr (--allow-network, --upstream-allow) and cidr_contains on the parsed network. */
#include "fuzz.h"
#include "base/parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_string(data, size);
    struct cidr net;
    if (s && parse_cidr(s, &net) == 0) {
        if (net.prefix < 0 || net.prefix > 128 || !cidr_contains(&net, net.addr))
            abort(); /* a network must contain its own address */
    }
    free(s);
    return 0;
}
