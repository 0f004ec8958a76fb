/* The INI config file, through the same reader arca uses for --config. */
#include "config.h"
#include "fuzz.h"

#include <stdio.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct config cfg;
    char err[CONFIG_ERR_LEN];
    FILE *f = fmemopen((void *)data, size, "r");
    if (!f)
        return 0;
    config_defaults(&cfg);
    if (config_read_stream(&cfg, f, "fuzz", err) < 0 && !memchr(err, '\0', sizeof(err)))
        abort();
    fclose(f);
    return 0;
}
