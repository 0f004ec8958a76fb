/* parse_authority, the one reading of a host and port (URLs, proxy targets, CONNECT, --listen):
 * an accepted authority lies within its input, its port is 0 or 1..65535, and written back as
 * "host:port" it reads the same again. */
#include "fuzz.h"
#include "base/parse.h"

#include <stdio.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct authority a, again;
    char back[600];
    int n;
    if (parse_authority((const char *)data, size, &a) != AUTHORITY_OK)
        return 0;
    if (a.host < (const char *)data || a.host + a.host_len > (const char *)data + size ||
        a.host_len == 0 || a.port < 0 || a.port > 65535)
        abort();
    n = snprintf(back, sizeof(back), "%.*s:%d", (int)a.host_len, a.host, a.port);
    if (a.port && n > 0 && (size_t)n < sizeof(back) &&
        (parse_authority(back, (size_t)n, &again) != AUTHORITY_OK || again.host_len != a.host_len ||
         memcmp(again.host, a.host, a.host_len) || again.port != a.port))
        abort();
    return 0;
}
