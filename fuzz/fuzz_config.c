/* The INI config file, through the same reader arca uses for --config. */
#include "config/config.h"
#include "fuzz.h"

#include <stdio.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Defaults once: they ask the kernel for the CPU count, which would dominate each run. */
    static struct config defaults;
    static int ready;
    struct config cfg;
    char err[CONFIG_ERR_LEN];
    FILE *f = fmemopen((void *)data, size, "r");
    if (!f)
        return 0;
    if (!ready) {
        config_defaults(&defaults);
        ready = 1;
    }
    cfg = defaults;
    if (config_read_stream(&cfg, f, "fuzz", err) < 0 && !memchr(err, '\0', sizeof(err)))
        abort();
    fclose(f);
    return 0;
}
