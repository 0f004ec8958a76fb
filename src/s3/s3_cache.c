/* The listing pages' cache (see s3_cache.h): a chained hash table for lookups, a list in order of
 * use for eviction, and every allocation counted as the allocator sized it. */
#include "s3/s3_cache.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define FIRST_BUCKETS 64
#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

/* What one allocation takes from the heap: its usable bytes and the allocator's size word in
 * front of it. The requested size alone undercounted folder names, tokens and the structs by
 * half and more. */
static size_t cost(const void *p)
{
    return p ? malloc_usable_size((void *)p) + sizeof(size_t) : 0;
}

static size_t page_cost(const struct s3_page *p)
{
    size_t n = cost(p) + cost(p->entries) + cost(p->next_token);
    for (int i = 0; i < p->n; i++)
        n += cost(p->entries[i].name);
    return n;
}

static size_t slot_cost(const struct s3_slot *s)
{
    return cost(s) + cost(s->prefix) + cost(s->token) + (s->page ? page_cost(s->page) : 0);
}

/* The slot's cost is recounted after a change: the cache's total follows. */
static void recount(struct s3_cache *c, struct s3_slot *s)
{
    c->bytes -= s->bytes;
    s->bytes = slot_cost(s);
    c->bytes += s->bytes;
}

/* FNV-1a over the key, started from a seed drawn at the first slot: prefixes come from clients,
 * and a fixed hash would let one choose folders that share a chain. */
static uint64_t mix(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * FNV_PRIME;
    return h;
}

static uint64_t key_hash(const struct s3_cache *c, const void *bucket, const char *prefix,
                         const char *token)
{
    uint64_t h = mix(c->seed, &bucket, sizeof(bucket));
    h = mix(h, prefix, strlen(prefix) + 1); /* the NUL too: "ab"+"c" is not "a"+"bc" */
    return mix(h, token, strlen(token) + 1);
}

static struct s3_slot **chain_of(const struct s3_cache *c, uint64_t hash)
{
    return &c->table[hash & (c->nbuckets - 1)];
}

/* Twice the buckets once there are as many slots as buckets (the first call makes the table):
 * chains stay short. 0, or -1 when out of memory: the table stays as it was, still correct,
 * only fuller. */
static int grow(struct s3_cache *c)
{
    size_t n = c->nbuckets ? 2 * c->nbuckets : FIRST_BUCKETS;
    struct s3_slot **old = c->table, **table;
    size_t nold = c->nbuckets;
    if (c->count < c->nbuckets)
        return 0;
    if (!(table = calloc(n, sizeof(*table))))
        return -1;
    if (!old) {
        uint64_t r = 0;
        if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != sizeof(r))
            r = 0; /* early in a boot: FNV's own start will do */
        c->seed = FNV_OFFSET ^ r;
    }
    c->table = table;
    c->nbuckets = n;
    for (size_t i = 0; i < nold; i++)
        for (struct s3_slot *s = old[i], *next; s; s = next) {
            next = s->chain;
            s->chain = *chain_of(c, s->hash);
            *chain_of(c, s->hash) = s;
        }
    c->bytes += cost(table) - cost(old);
    free(old);
    return 0;
}

struct s3_slot *s3_cache_find(struct s3_cache *c, const void *bucket, const char *prefix,
                              const char *token)
{
    if (!c->nbuckets)
        return NULL;
    uint64_t hash = key_hash(c, bucket, prefix, token);
    for (struct s3_slot *s = *chain_of(c, hash); s; s = s->chain)
        if (s->hash == hash && s->bucket == bucket && !strcmp(s->prefix, prefix) &&
            !strcmp(s->token, token))
            return s;
    return NULL;
}

/* Slots that are not being fetched go, least recently used first, while the cache is over. */
static void evict(struct s3_cache *c)
{
    struct dnode *d = c->lru.head;
    while (c->bytes > c->limit && d) {
        struct dnode *next = d->next;
        struct s3_slot *s = DLIST_ENTRY(d, struct s3_slot, lru);
        if (!s->fetching)
            s3_cache_drop(c, s);
        d = next;
    }
}

struct s3_slot *s3_cache_add(struct s3_cache *c, const void *bucket, const char *prefix,
                             const char *token)
{
    struct s3_slot *s = NULL;
    if ((grow(c) < 0 && !c->table) || !(s = calloc(1, sizeof(*s))) ||
        !(s->prefix = strdup(prefix)) || !(s->token = strdup(token)))
        goto err;
    s->bucket = bucket;
    s->fetching = true;
    s->hash = key_hash(c, bucket, prefix, token);
    s->chain = *chain_of(c, s->hash);
    *chain_of(c, s->hash) = s;
    dlist_append(&c->lru, &s->lru);
    c->count++;
    recount(c, s);
    evict(c);
    return s;
err:
    if (s)
        free(s->prefix);
    free(s);
    return NULL;
}

void s3_cache_touch(struct s3_cache *c, struct s3_slot *s)
{
    dlist_append(&c->lru, &s->lru);
}

void s3_cache_set_page(struct s3_cache *c, struct s3_slot *s, struct s3_page *p)
{
    s3_cache_unref(s->page);
    s->page = p;
    s->fetching = false;
    recount(c, s);
    s3_cache_touch(c, s);
    evict(c);
}

void s3_cache_drop(struct s3_cache *c, struct s3_slot *s)
{
    struct s3_slot **q = chain_of(c, s->hash);
    while (*q != s)
        q = &(*q)->chain;
    *q = s->chain;
    dlist_remove(&c->lru, &s->lru);
    c->bytes -= s->bytes;
    c->count--;
    s3_cache_unref(s->page);
    free(s->prefix);
    free(s->token);
    free(s);
}

void s3_cache_clear(struct s3_cache *c)
{
    while (c->lru.head)
        s3_cache_drop(c, DLIST_ENTRY(c->lru.head, struct s3_slot, lru));
    c->bytes -= cost(c->table);
    free(c->table);
    c->table = NULL;
    c->nbuckets = 0;
}

void s3_cache_unref(struct s3_page *p)
{
    if (p && --p->refs == 0)
        s3_page_free(p);
}
