#include "registry/reg_links.h"
#include "registry/reg_manifest.h"
#include "log/log.h"
#include "persist/index.h"
#include "persist/persist.h"

#include <assert.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint8_t b[16];
} link_key;

/* An open-addressing set of keys, half full at most; an all-zero key is an empty slot (a
 * computed one is never all zero: see key_of). */
static struct {
    pthread_mutex_t lock;
    link_key *slots;
    size_t n, used;
} set = {.lock = PTHREAD_MUTEX_INITIALIZER};

static bool empty(const link_key *k)
{
    static const link_key zero;
    return memcmp(k, &zero, sizeof(zero)) == 0;
}

/* sha256(registry URL NUL repository NUL digest), its first 16 bytes. */
static void key_of(const char *registry, const char *repo, const uint8_t digest[32], link_key *k)
{
    uint8_t full[32];
    unsigned int len = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) ||
        !EVP_DigestUpdate(ctx, registry, strlen(registry) + 1) ||
        !EVP_DigestUpdate(ctx, repo, strlen(repo) + 1) || !EVP_DigestUpdate(ctx, digest, 32) ||
        !EVP_DigestFinal_ex(ctx, full, &len))
        memset(full, 0, sizeof(full)); /* no key: never found, never added (empty) */
    EVP_MD_CTX_free(ctx);
    memcpy(k->b, full, sizeof(k->b));
}

static size_t slot_of(const link_key *k, size_t n)
{
    uint64_t h;
    memcpy(&h, k->b, sizeof(h));
    return (size_t)(h & (n - 1));
}

/* Lock held. The slot holding `k`, or the empty one where it would go. */
static link_key *probe(const link_key *k)
{
    size_t i = slot_of(k, set.n);
    while (!empty(&set.slots[i]) && memcmp(&set.slots[i], k, sizeof(*k)))
        i = (i + 1) & (set.n - 1);
    return &set.slots[i];
}

/* Lock held. Room for one more: 0, or -1 out of memory. */
static int grow(void)
{
    size_t n = set.n ? set.n * 2 : 1024;
    link_key *old = set.slots, *slots = calloc(n, sizeof(*slots));
    size_t old_n = set.n;
    if (!slots)
        return -1;
    set.slots = slots;
    set.n = n;
    for (size_t i = 0; i < old_n; i++)
        if (!empty(&old[i]))
            *probe(&old[i]) = old[i];
    free(old);
    return 0;
}

/* Into the set: true when it was not there. */
static bool add_key(const link_key *k)
{
    bool added = false;
    if (empty(k))
        return false;
    pthread_mutex_lock(&set.lock);
    if ((set.used + 1) * 2 <= set.n || grow() == 0) {
        link_key *at = probe(k);
        if ((added = empty(at))) {
            *at = *k;
            set.used++;
        }
    }
    pthread_mutex_unlock(&set.lock);
    return added;
}

bool reg_links_has(const struct registry_ask *a, const uint8_t digest[32])
{
    link_key k;
    bool found = false;
    if (!a->r)
        return false;
    key_of(a->r->url, a->path.repo, digest, &k);
    pthread_mutex_lock(&set.lock);
    found = set.n && !empty(&k) && !empty(probe(&k));
    pthread_mutex_unlock(&set.lock);
    return found;
}

/* The rows of new links, written by the persistence thread. */
struct link_job {
    struct persist_job job;
    char registry[REGISTRY_URL_MAX];
    char repo[REG_REPO_MAX];
    int n;
    uint8_t digests[][32];
};

static void run_links(struct persist_job *job)
{
    struct link_job *l = (struct link_job *)job;
    for (int i = 0; i < l->n; i++)
        if (index_link_add(l->registry, l->repo, l->digests[i]) < 0)
            break; /* said by the index; the link holds until arca stops */
    free(l);
}

/* `n` digests linked to `a`'s repository: the new ones into the set and their rows queued. */
static void link_all(const struct registry_ask *a, const uint8_t (*digests)[32], int n)
{
    struct link_job *l = malloc(sizeof(*l) + (size_t)n * 32);
    link_key k;
    if (l) {
        *l = (struct link_job){.job.run = run_links};
        snprintf(l->registry, sizeof(l->registry), "%s", a->r->url);
        snprintf(l->repo, sizeof(l->repo), "%s", a->path.repo);
    }
    for (int i = 0; i < n; i++) {
        key_of(a->r->url, a->path.repo, digests[i], &k);
        if (add_key(&k) && l)
            memcpy(l->digests[l->n++], digests[i], 32);
    }
    if (l && l->n > 0)
        persist_submit(&l->job);
    else
        free(l);
}

void reg_links_confirmed(const struct registry_ask *a)
{
    if (a->r && a->path.by_digest)
        link_all(a, (const uint8_t(*)[32])a->path.digest, 1);
}

int reg_links_note_manifest(const struct registry_ask *a, const char *body, size_t len)
{
    struct reg_manifest m;
    int n;
    assert(a->r && a->path.what == REG_MANIFEST);
    if (reg_manifest_read(body, len, &m) < 0)
        return -1;
    link_all(a, (const uint8_t(*)[32])m.digests, (int)m.n);
    n = (int)m.n;
    reg_manifest_free(&m);
    return n;
}

static void load_one(const char *registry, const char *repo, const uint8_t digest[32], void *arg)
{
    link_key k;
    (void)arg;
    key_of(registry, repo, digest, &k);
    add_key(&k);
}

void reg_links_load(void)
{
    if (index_links_each(load_one, NULL) < 0)
        log_error("index: the registry links could not be read: a blob another repository "
                  "brought is asked of the registry again");
}

size_t reg_links_count(void)
{
    size_t n;
    pthread_mutex_lock(&set.lock);
    n = set.used;
    pthread_mutex_unlock(&set.lock);
    return n;
}
