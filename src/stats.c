#include "stats.h"
#include "index.h"

struct stats stats;

/* Name and address of each persistent counter, in the index's counters table. */
static const struct {
    const char *name;
    _Atomic int64_t *value;
} persistent[] = {
    {"requests", &stats.requests},
    {"successes", &stats.successes},
    {"failures", &stats.failures},
    {"bytes_downloaded", &stats.bytes_downloaded},
    {"bytes_served", &stats.bytes_served},
    {"hits", &stats.hits},
    {"misses", &stats.misses},
    {"coalesced", &stats.coalesced},
    {"errors", &stats.errors},
    {"downloads_failed", &stats.downloads_failed},
    {"download_retries", &stats.download_retries},
    {"download_resumes", &stats.download_resumes},
    {"download_restarts", &stats.download_restarts},
    {"limited", &stats.limited},
};

void stats_load(void)
{
    for (size_t i = 0; i < sizeof(persistent) / sizeof(persistent[0]); i++) {
        int64_t v;
        if (index_counter_get(persistent[i].name, &v) == 0)
            atomic_store(persistent[i].value, v);
    }
}

void stats_save(void)
{
    index_begin();
    for (size_t i = 0; i < sizeof(persistent) / sizeof(persistent[0]); i++)
        index_counter_set(persistent[i].name, atomic_load(persistent[i].value));
    index_commit();
}
