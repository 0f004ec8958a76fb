/* The INI config file, through the same reader arca uses for --config, and its [rule NAME]
 * sections through the compiler serve and check-config run (rules_compile). */
#include "config/config.h"
#include "rules/rules.h"
#include "fuzz.h"

#include <stdio.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Defaults once: they ask the kernel for the CPU count, which would dominate each run. */
    static struct config defaults;
    static int ready;
    struct config cfg;
    struct rule_set *set = NULL;
    char err[CONFIG_ERR_LEN];
    FILE *f = fmemopen((void *)data, size, "r");
    if (!f)
        return 0;
    if (!ready) {
        config_defaults(&defaults);
        ready = 1;
    }
    cfg = defaults;
    if (config_read_stream(&cfg, f, "fuzz", err) < 0) {
        if (!memchr(err, '\0', sizeof(err)))
            abort();
    } else if (!(set = rules_compile(&cfg, err)) && !memchr(err, '\0', sizeof(err))) {
        abort();
    }
    rules_free(set);
    fclose(f);
    config_free(&cfg);
    return 0;
}
