/* Negative answers kept briefly (store_negative.h): a download that upstream answered 404 or 410
 * leaves an entry under its key, and a lookup that finds no object answers from it until the
 * entry's ttl runs out (nginx's proxy_cache_valid 404, Squid's negative_ttl). A fixed table,
 * one entry a slot by the key's hash: a collision drops the older entry, so the table never
 * grows and losing one only asks upstream again. Never kept in the index: a restart asks again. */
#include "store/store_negative.h"
#include "store/store_list.h"
#include "url/url.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NEGATIVE_SLOTS 4096

struct negative {
    char key[65];           /* "" when the slot is free */
    int status;             /* 404 or 410 */
    int64_t created, until; /* wall-clock s: when upstream said so, and the end of its ttl */
    char *url;              /* for a purge by prefix */
    char reason[160];
};

static struct negative table[NEGATIVE_SLOTS];

static struct negative *slot_of(const char *key)
{
    size_t h = 0;
    for (int i = 0; i < 8; i++)
        h = h << 4 | (size_t)(key[i] <= '9' ? key[i] - '0' : key[i] - 'a' + 10);
    return &table[h % NEGATIVE_SLOTS];
}

static void clear(struct negative *n)
{
    free(n->url);
    memset(n, 0, sizeof(*n));
}

/* Whether a failed download's verdict is kept, as any answer is under its terms: 404 or 410
 * (never a 5xx, nor a status arca made itself for a host held down), a URL without credentials
 * (its terms' negative ttl is 0 otherwise; a signed key's download is the capability's), a
 * download its terms store (store = no keeps no answer) and no purge came upon meanwhile (the
 * URL's word before the purge). */
static bool kept_negative(const struct object *obj)
{
    int status = live_of(obj)->error_status;
    return live_of(obj)->negative_ttl > 0 && (status == 404 || status == 410) &&
           live_of(obj)->retry_after <= 0 && !obj->signed_key && !obj->transient && !obj->purged;
}

/* Lock held. A failed download's verdict, kept when kept_negative says so, from when its source
 * said it: a parent arca's 404 is as old as the parent's, fresh for what the parent had left of
 * it and the negative ttl counted from then (store_from_parent set created and ttl so), so a
 * tier never keeps one longer than the arca that got it. */
static void note_negative(const struct object *obj)
{
    if (!kept_negative(obj))
        return;
    int64_t now = (int64_t)time(NULL);
    bool aged = obj->from_parent;
    int64_t created = aged ? obj->created : now;
    int64_t until = created + live_of(obj)->negative_ttl;
    if (aged && created + obj->ttl < until)
        until = created + obj->ttl;
    if (until <= now)
        return;
    char key[65];
    struct negative *n = slot_of(object_key(obj, key));
    char *url = strdup(obj->url);
    if (!url)
        return; /* upstream is asked again: nothing wrong is answered */
    clear(n);
    memcpy(n->key, key, sizeof(key));
    n->url = url;
    n->status = live_of(obj)->error_status;
    n->created = created;
    n->until = until;
    snprintf(n->reason, sizeof(n->reason), "%s", object_error(obj));
}

void store_failed(const struct object *obj)
{
    CHECK_OBJ(obj);
    assert(store_locked());
    note_failure(obj);
    note_negative(obj);
}

/* Whether a request's terms take a kept answer at all, as they would a kept object: stored
 * (store = no asks upstream each time), and not asked with no-store. */
static bool takes_kept(const struct object_keep *keep)
{
    return keep->negative_ttl > 0 && keep->store && !keep->asked_no_store;
}

bool negative_find(const char *key, const struct object_keep *keep, int64_t now,
                   struct object_meta *meta)
{
    assert(store_locked());
    struct negative *n = slot_of(key);
    int64_t ttl = keep->negative_ttl;
    if (!takes_kept(keep) || strcmp(n->key, key) != 0)
        return false;
    if (now >= n->until) { /* never past the ttl it was kept with */
        clear(n);
        return false;
    }
    /* nor past this request's: a rule may have shortened it since, its Cache-Control (max-age,
     * no-cache: has_max_age; a child arca's arca-negative-max-age) bounds its age */
    int64_t age = now - n->created;
    if (age >= ttl || (keep->has_max_age && age >= keep->max_age) ||
        (keep->has_negative_max_age && age >= keep->negative_max_age))
        return false;
    memset(meta, 0, sizeof(*meta)); /* gen 0: no object's (store_attach_prepared) */
    meta->state = OBJ_FAILED;
    meta->error_status = n->status;
    meta->created = n->created;
    meta->ttl = (n->until < n->created + ttl ? n->until : n->created + ttl) - n->created;
    meta->length = -1;
    snprintf(meta->error, sizeof(meta->error), "%s", n->reason);
    return true;
}

bool negative_forget(const char *key)
{
    assert(store_locked_or_alone());
    struct negative *n = slot_of(key);
    if (strcmp(n->key, key) != 0)
        return false;
    clear(n);
    return true;
}

int64_t negative_forget_aimed(const struct purge_aim *aim)
{
    int64_t gone = 0;
    assert(store_locked());
    for (size_t i = 0; i < NEGATIVE_SLOTS; i++)
        if (table[i].url && purge_aims_at(table[i].url, aim)) {
            clear(&table[i]);
            gone++;
        }
    return gone;
}

void negative_free(void)
{
    for (size_t i = 0; i < NEGATIVE_SLOTS; i++)
        clear(&table[i]);
}
