/* The removals' pace on the ordered persistence thread (pace.h). */
#include "persist/pace.h"
#include "base/clock.h"
#include "persist/persist.h"

#include <assert.h>
#include <stdatomic.h>
#include <unistd.h>

static atomic_int_fast64_t paused_us;

int64_t pace_owed(struct pace *p, int64_t took_us)
{
    assert(took_us >= 0);
    p->busy_us += took_us;
    if (p->busy_us < PACE_BURST_US)
        return 0;
    int64_t owed = p->busy_us * (100 - PACE_SHARE_PCT) / PACE_SHARE_PCT;
    p->busy_us = 0;
    return owed;
}

int pace_unlink(const char *path)
{
    static _Thread_local struct pace pace;
    int64_t began = monotonic_us();
    int rc = unlink(path);
    if (!persist_on_thread())
        return rc;
    int64_t owed = pace_owed(&pace, monotonic_us() - began);
    if (owed > 0) /* cut short when someone waits for the queue, or arca stops */
        atomic_fetch_add(&paused_us, persist_pause(owed));
    return rc;
}

int64_t pace_paused_us(void)
{
    return atomic_load(&paused_us);
}
