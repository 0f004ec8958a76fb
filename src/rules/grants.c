/* Confirmed signed URLs (see grants.h): a direct-mapped table of hashes and end times. */
#include "rules/grants.h"
#include "base/digest.h"

#include <assert.h>
#include <pthread.h>
#include <string.h>

#define GRANTS_SLOTS 16384 /* 16384 x 40 bytes: a day of distinct signed URLs in a busy lab */

static struct {
    pthread_mutex_t lock;
    struct grant {
        uint8_t hash[32];
        int64_t until;
    } slots[GRANTS_SLOTS];
} g = {.lock = PTHREAD_MUTEX_INITIALIZER};

static struct grant *slot_of(const uint8_t hash[32])
{
    uint32_t i;
    memcpy(&i, hash, sizeof(i));
    return &g.slots[i % GRANTS_SLOTS];
}

void grants_add(const char *url, int64_t until)
{
    uint8_t h[32];
    assert(url && until > 0); /* 0 is an empty slot's: a grant must end after the epoch */
    sha256_of(url, strlen(url), h);
    pthread_mutex_lock(&g.lock);
    struct grant *s = slot_of(h);
    memcpy(s->hash, h, 32);
    s->until = until;
    pthread_mutex_unlock(&g.lock);
}

bool grants_check(const char *url, int64_t now)
{
    uint8_t h[32];
    sha256_of(url, strlen(url), h);
    pthread_mutex_lock(&g.lock);
    const struct grant *s = slot_of(h);
    bool ok = s->until > now && memcmp(s->hash, h, 32) == 0;
    pthread_mutex_unlock(&g.lock);
    return ok;
}
