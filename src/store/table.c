/* The store's hash table, grown incrementally (see table.h). */
#include "store/table.h"
#include "base/parse.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* Old buckets moved per insert while growing: the table doubles when count reaches ncur, so
 * the old half is empty after ncur / MOVE_PER_INSERT inserts, long before it fills again. */
#define MOVE_PER_INSERT 4
#define START_BUCKETS 1024

/* The key is a sha256: its first 4 bytes are as good a hash as any (up to 2^32 buckets). Their
 * high bits pick the bucket, so that the buckets in order hold the keys in order: a walk of the
 * table a slice at a time (a purge) hands the index its keys in the order of its own B-tree,
 * and the disk its files in their directories' order: 100,000 of 110,000 objects were purged
 * in 1.1-1.4 s here against 1.9-2.0 with the keys at random, their files gone in 6-8 s
 * against 10-12. */
static size_t bucket_of(const uint8_t *key, size_t nbuckets)
{
    uint32_t h = (uint32_t)key[0] << 24 | (uint32_t)key[1] << 16 | (uint32_t)key[2] << 8 | key[3];
    return (size_t)(((uint64_t)h * nbuckets) >> 32);
}

static const uint8_t *key_of(const struct table *t, const struct table_node *n)
{
    return (const uint8_t *)n + t->key_at;
}

/* Whether entry `n` has `key`: the objects' 4-byte tags compared as a word, inline. At a
 * million objects a find spent a tenth of a hit's user time in memcmp on its chain: mostly the
 * cache miss on each entry (its tag now on its link's line: object.h), the call on top of it. */
static bool has_key(const struct table *t, const struct table_node *n, const uint8_t *key)
{
    if (t->key_len == 4) {
        uint32_t a, b;
        memcpy(&a, key_of(t, n), 4);
        memcpy(&b, key, 4);
        return a == b;
    }
    return memcmp(key_of(t, n), key, t->key_len) == 0;
}

bool table_key_of_hex(const char *hex, uint8_t key[32])
{
    /* lower case only: an upper-case spelling is another name, never this key's file */
    return strspn(hex, "0123456789abcdef") == 64 && parse_sha256_hex(hex, key) == 0;
}

bool table_tag_of_hex(const char *hex, uint8_t tag[4])
{
    return strspn(hex, "0123456789abcdef") >= 8 && parse_hex_bytes(hex, 4, tag) == 0;
}

/* Bucket arrays from this size on (a table of 262,144 buckets: about 130,000 objects) are
 * mapped on their own and asked for huge pages (transparent hugepages, which Debian gives to
 * whoever asks: madvise mode). A find reads one bucket at random in 8-16 MiB at a million
 * objects: with 4 KiB pages, most reads also walked the page tables (ARCHITECTURE.md, "Memory
 * per object": the table). The hint may be refused: plain pages then, as before. */
#define HUGE_BUCKETS_BYTES ((size_t)2 << 20)

static struct table_node **buckets_new(size_t n)
{
    if (n > SIZE_MAX / sizeof(struct table_node *))
        return NULL;
    size_t bytes = n * sizeof(struct table_node *);
    if (bytes < HUGE_BUCKETS_BYTES)
        return calloc(n, sizeof(struct table_node *));
    /* on a huge page's boundary: kernels before 6.7 (Debian 12's 6.1) place an anonymous
     * mapping anywhere, and only whole aligned 2 MiB in it can be a huge page */
    size_t slack = HUGE_BUCKETS_BYTES;
    char *m = mmap(NULL, bytes + slack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    char *b = (char *)(((uintptr_t)m + slack - 1) & ~(uintptr_t)(slack - 1));
    if (b > m)
        munmap(m, (size_t)(b - m));
    munmap(b + bytes, (size_t)(m + slack - b)); /* b - m < slack: a tail is always left */
    (void)madvise(b, bytes, MADV_HUGEPAGE);     /* zero-filled, as calloc's */
    return (struct table_node **)b;
}

static void buckets_free(struct table_node **b, size_t n)
{
    size_t bytes = n * sizeof(struct table_node *);
    if (b && bytes >= HUGE_BUCKETS_BYTES)
        munmap(b, bytes);
    else
        free(b);
}

/* The chain `key` is on: in the old table while its bucket has not moved yet. */
static struct table_node **chain_of(const struct table *t, const uint8_t *key)
{
    if (t->nold) {
        size_t k = bucket_of(key, t->nold);
        if (k >= t->moved)
            return &t->old[k];
    }
    return &t->cur[bucket_of(key, t->ncur)];
}

static void move_buckets(struct table *t, size_t n)
{
    if (t->nold && n)
        t->moves++;
    for (; n > 0 && t->moved < t->nold; n--, t->moved++) {
        for (struct table_node *o = t->old[t->moved], *next; o; o = next) {
            next = o->next;
            size_t k = bucket_of(key_of(t, o), t->ncur);
            o->next = t->cur[k];
            t->cur[k] = o;
        }
        t->old[t->moved] = NULL;
    }
    if (t->nold && t->moved == t->nold) {
        buckets_free(t->old, t->nold);
        t->old = NULL;
        t->nold = t->moved = 0;
    }
}

/* Start moving to a table of `n` buckets (the current one becomes the old one). */
static int begin_growth(struct table *t, size_t n)
{
    struct table_node **b = buckets_new(n);
    if (!b)
        return -1;
    move_buckets(t, (size_t)-1); /* a growth still under way ends first */
    t->old = t->cur;
    t->nold = t->ncur;
    t->moved = 0;
    t->cur = b;
    t->ncur = n; /* the first table: old and nold were NULL and 0 already */
    return 0;
}

int table_reserve(struct table *t, size_t at_least)
{
    size_t n = t->ncur ? t->ncur : START_BUCKETS;
    while (n < at_least)
        n *= 2;
    if (t->cur && n == t->ncur)
        return 0;
    if (begin_growth(t, n) < 0)
        return -1;
    move_buckets(t, (size_t)-1); /* reserving is for start-up: all at once */
    return 0;
}

void table_free(struct table *t)
{
    buckets_free(t->cur, t->ncur);
    buckets_free(t->old, t->nold);
    *t = (struct table)TABLE_KEYED(t->key_at, t->key_len);
}

struct table_node *table_find(const struct table *t, const uint8_t *key)
{
    if (!t->cur) /* nothing added yet */
        return NULL;
    struct table_node *o = *chain_of(t, key);
    while (o && !has_key(t, o, key))
        o = o->next;
    return o;
}

void table_prefetch(const struct table *t, const uint8_t *key, bool chain)
{
    if (!t->cur)
        return;
    struct table_node *const *slot = chain_of(t, key);
    if (!chain)
        __builtin_prefetch(slot);
    else if (*slot)
        __builtin_prefetch(*slot);
}

struct table_node *table_find_next(const struct table *t, const struct table_node *n)
{
    struct table_node *o = n->next;
    while (o && !has_key(t, o, key_of(t, n)))
        o = o->next;
    return o;
}

struct table_node *table_get(const struct table *t, const char *hex)
{
    uint8_t key[32];
    return table_key_of_hex(hex, key) ? table_find(t, key) : NULL; /* no key: nothing */
}

int table_add(struct table *t, struct table_node *n)
{
    if (!t->cur && table_reserve(t, 0) < 0)
        return -1;
    if (t->count >= t->ncur && !t->nold && begin_growth(t, t->ncur * 2) < 0)
        return -1;
    move_buckets(t, MOVE_PER_INSERT);
    assert(t->key_len >= 4 && t->key_len <= 32);
    struct table_node **chain = chain_of(t, key_of(t, n));
    n->next = *chain;
    *chain = n;
    t->count++;
    return 0;
}

void table_del(struct table *t, struct table_node *n)
{
    struct table_node **p = chain_of(t, key_of(t, n));
    while (*p && *p != n)
        p = &(*p)->next;
    assert(*p == n);
    if (*p)
        *p = n->next;
    n->next = NULL;
    t->count--;
}

size_t table_slots(const struct table *t)
{
    return t->ncur + t->nold;
}

struct table_node *table_slot(const struct table *t, size_t i)
{
    if (i < t->ncur)
        return t->cur[i];
    i -= t->ncur;
    return i < t->nold && i >= t->moved ? t->old[i] : NULL;
}
