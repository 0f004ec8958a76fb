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

static void pace_spent(int64_t began_us)
{
    static _Thread_local struct pace pace;
    if (!persist_on_thread())
        return;
    int64_t owed = pace_owed(&pace, monotonic_us() - began_us);
    if (owed > 0) /* cut short when someone waits for the queue, or arca stops */
        atomic_fetch_add(&paused_us, persist_pause(owed));
}

int pace_unlink(const char *path)
{
    int64_t began = monotonic_us();
    int rc = unlink(path);
    pace_spent(began);
    return rc;
}

int64_t pace_paused_us(void)
{
    return atomic_load(&paused_us);
}
