/* The index's complete rows into the table while arca serves, then the sweep of the files no row
 * names (store_load.h). */
#include "store/store_load.h"
#include "log/log.h"
#include "persist/index.h"
#include "persist/index_image.h"
#include "persist/persist.h"
#include "base/digest.h"
#include "base/halves.h"
#include "base/parse.h"
#include "persist/usage_log.h"
#include "store/store_room.h"
#include "store/store_twins.h"

#include <assert.h>
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* Objects put in the table per hold of the lock: each a hash insert, a digest index insert and
 * a list link (cache misses all), so a hold stays under a millisecond. */
#define LOAD_SLICE 1024
#define PREFETCH_AHEAD 8

struct by_use {
    int64_t last_use;
    struct object *obj;
};

/* Objects as their rows load, before they go into the table: one vector per half of the index
 * (index_load_rows reads the halves in two threads). */
struct loaded {
    struct by_use *v;
    size_t n, cap;
    bool failed; /* out of memory: the rest of this half is not kept */
    /* rows whose key is not their URL's sha256 (url_key_is): skipped, their keys kept here to
     * be deleted once loaded (forget_foreign) */
    char (*foreign)[65];
    size_t nforeign, foreign_cap;
};

/* A key that entered or left the table meanwhile (hooks.touched): lock held. Found by its first
 * 4 bytes, as the objects are: a loaded object is asked with its tag, and its whole key is made
 * only when a seen key has that tag. */
struct seen_key {
    struct table_node node;
    uint8_t key[32];
};

static struct {
    struct loaded half[2];
    pthread_t thread;
    bool running;
    atomic_bool stop;
    struct table seen; /* struct seen_key */
    bool seen_failed;  /* out of memory noting one: the loader inserts nothing more */
    bool inserting;    /* the loader's own object_enter: not noted */
    bool find_failed;  /* a row could not be read ahead: said once */
    bool whole;        /* every row of the index went into the table, and no check found it
                          damaged: store_load_leave_image may write what the table holds */
    size_t read_ahead; /* rows lookups read before the loader reached them */
    /* store_wait_loaded's (a leaf lock: never with the store's): st.loading turned false */
    pthread_mutex_t end_lock;
    pthread_cond_t ended;
    bool done;
} ld = {.end_lock = PTHREAD_MUTEX_INITIALIZER,
        .ended = PTHREAD_COND_INITIALIZER,
        .seen = TABLE_KEYED(offsetof(struct seen_key, key), 4)};

/* What a row, or the usage journal's record over it, says of a NEW object's use: its last use,
 * use count, ttl, pin and stale windows. */
static void take_use(struct object *o, const struct index_row *row)
{
    object_set_times(o, row->created, row->ttl);
    o->last_use = wall32(row->last_use);
    o->usage = uses32(row->usage);
    object_take_row_keep(o, row);
}

/* A NEW object (not in the table) for a complete row; NULL when out of memory. */
static struct object *object_of_row(const struct index_row *row)
{
    uint8_t key[32];
    const uint8_t *bytes = row->key_bytes;
    if (!bytes) {
        bool hex = table_key_of_hex(row->key, key); /* index_row_usable checked it */
        assert(hex);
        (void)hex;
        bytes = key;
    }
    struct object *o = object_new_at_rest(row->url, bytes, &row->headers);
    if (!o)
        return NULL;
    o->headers_ready = true;
    o->length = row->length;
    o->holds_file = true; /* the quota it holds: its length (object_reserved) */
    object_set_staleness(o, row->stale_if_error, row->stale_while_revalidate);
    memcpy(o->digest, row->digest, 32);
    o->signed_key = row->signed_key;
    take_use(o, row);
    return o;
}

/* Whether a row's key is not its URL's sha256 (damage, a hand's edit: of SQLite's rows or of a
 * clean stop's image, whose records carry no checksum). An object keeps its key's first 4 bytes
 * and makes the rest from its URL: such a row's object would be found by neither, and its image
 * row, its removal and the sweep would name another URL's key. About 0.2 us a row. */
static bool row_foreign(const struct index_row *row)
{
    return row->key_bytes ? !url_key_bytes_is(row->url, row->key_bytes)
                          : !url_key_is(row->url, row->key);
}

/* A foreign row's key kept for forget_foreign; false out of memory. */
static bool note_foreign(struct loaded *l, const struct index_row *row)
{
    char hex[65];
    const char *key = row->key;
    if (row->key_bytes) {
        format_sha256_hex(row->key_bytes, hex);
        key = hex;
    }
    if (l->nforeign == l->foreign_cap) {
        size_t cap = l->foreign_cap ? 2 * l->foreign_cap : 16;
        char(*v)[65] = realloc(l->foreign, cap * sizeof(*v));
        if (!v)
            return false;
        l->foreign = v;
        l->foreign_cap = cap;
    }
    memcpy(l->foreign[l->nforeign++], key, 65);
    return true;
}

/* A row is trusted as it is: whether its file is there with the recorded length is checked on
 * the object's first hit (lookup.c's open_hit_file), so that a big cache loads without a stat()
 * per object. */
static void load_row(const struct index_row *row, int part, void *arg)
{
    struct loaded *l = &ld.half[part];
    struct object *o;
    (void)arg;
    if (l->failed)
        return;
    if (row_foreign(row)) {
        l->failed = !note_foreign(l, row);
        return;
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4096;
        struct by_use *v = realloc(l->v, cap * sizeof(*v));
        if (!v) {
            l->failed = true;
            return;
        }
        l->v = v;
        l->cap = cap;
    }
    if (!(o = object_of_row(row))) {
        l->failed = true;
        return;
    }
    l->v[l->n++] = (struct by_use){o->last_use, o};
}

/* A loaded object as the usage journal's merge sorts them: its key's first 4 bytes (its tag)
 * copied, as the high half of a sha256_prefix (a comparison that read the objects was a cache
 * miss each), then its whole key, made again from its URL (two keys share a tag: rare). */
struct by_key {
    uint64_t prefix;
    struct by_use *u;
};

static uint64_t tag_prefix(const struct object *o)
{
    const uint8_t *t = o->tag;
    return (uint64_t)t[0] << 56 | (uint64_t)t[1] << 48 | (uint64_t)t[2] << 40 |
           (uint64_t)t[3] << 32;
}

static int by_key(const void *a, const void *b)
{
    const struct by_key *x = a, *y = b;
    uint8_t kx[32], ky[32];
    if (x->prefix != y->prefix)
        return x->prefix < y->prefix ? -1 : 1;
    object_key_bytes(x->u->obj, kx);
    object_key_bytes(y->u->obj, ky);
    return memcmp(kx, ky, 32);
}

/* A bucket's few entries in order; past 16 (keys made to share their first bits), qsort, so that
 * no crafted URLs make a start quadratic. */
static void sort_bucket(struct by_key *v, size_t n)
{
    if (n > 16) {
        qsort(v, n, sizeof(*v), by_key);
        return;
    }
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && by_key(&v[j - 1], &v[j]) > 0; j--) {
            struct by_key t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
}

/* A half's objects in key order, in `out`: spread by their keys' first bits into buckets of
 * about four (keys are SHA-256 digests), each then sorted. A qsort of a million took a tenth of
 * a second; this, two passes. False out of memory. */
static bool sort_by_key(const struct loaded *l, struct by_key *out)
{
    int bits = 1;
    while (bits < 40 && ((size_t)1 << bits) < l->n / 4)
        bits++;
    size_t buckets = (size_t)1 << bits;
    size_t *at = calloc(buckets + 1, sizeof(*at));
    if (!at)
        return false;
    for (size_t i = 0; i < l->n; i++)
        at[(tag_prefix(l->v[i].obj) >> (64 - bits)) + 1]++;
    for (size_t b = 0; b < buckets; b++)
        at[b + 1] += at[b];
    for (size_t i = 0; i < l->n; i++) {
        uint64_t prefix = tag_prefix(l->v[i].obj);
        out[at[prefix >> (64 - bits)]++] = (struct by_key){prefix, &l->v[i]};
    }
    for (size_t b = 0, from = 0; b < buckets; from = at[b++]) /* at[b]: bucket b's end now */
        sort_bucket(&out[from], at[b] - from);
    free(at);
    return true;
}

struct keyed_half {
    const struct loaded *l;
    struct by_key *v;
    bool sorted;
};

static void *sort_keyed_half(void *arg)
{
    struct keyed_half *k = arg;
    k->sorted = k->v && sort_by_key(k->l, k->v);
    return NULL;
}

/* The object's figures from the journal's record, when it has one of its version. */
static void lay_use(struct usage_cursor *c, struct by_use *u)
{
    struct object *o = u->obj;
    struct index_row row = {.created = o->created, .digest = o->digest, .max_size = -1};
    uint8_t key[32];
    object_key_bytes(o, key); /* a record has its tag: its URL hashed again */
    if (!usage_cursor_apply(c, key, &row))
        return;
    take_use(o, &row);
    u->last_use = o->last_use; /* what the LRU order is sorted by */
}

/* The halves, each in key order, merged in key order through the journal's cursor. An object is
 * read only when a record has its key's first 8 bytes; the pairs and their objects' lines are
 * fetched a few ahead (their order in memory is the rows', not the keys': cache misses, several
 * in a row, otherwise). */
static void lay_merged(struct usage_cursor *c, const struct keyed_half k[2])
{
    size_t i[2] = {0, 0}, n[2] = {k[0].l->n, k[1].l->n};
    while (i[0] < n[0] || i[1] < n[1]) {
        int pick = i[0] == n[0] || (i[1] < n[1] && by_key(&k[1].v[i[1]], &k[0].v[i[0]]) < 0);
        for (int part = 0; part < 2; part++) {
            if (i[part] + 2 * PREFETCH_AHEAD < n[part])
                __builtin_prefetch(k[part].v[i[part] + 2 * PREFETCH_AHEAD].u);
            if (i[part] + PREFETCH_AHEAD < n[part]) {
                const char *o = (const char *)k[part].v[i[part] + PREFETCH_AHEAD].u->obj;
                for (size_t line = 0; line < sizeof(struct object); line += 64)
                    __builtin_prefetch(o + line);
            }
        }
        const struct by_key *e = &k[pick].v[i[pick]++];
        if (usage_cursor_near(c, e->prefix, 32))
            lay_use(c, e->u);
    }
}

/* The merge's pairs (8 MB a half at a million rows) mapped for themselves: malloc'd and freed,
 * they raised glibc's mmap threshold, and the load's later vectors then stayed in the heap: 16 MB
 * more resident at a million rows once loaded. NULL when the system has no room. */
static struct by_key *map_pairs(size_t n)
{
    void *p = mmap(NULL, (n ? n : 1) * sizeof(struct by_key), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static void unmap_pairs(struct by_key *v, size_t n)
{
    if (v)
        munmap(v, (n ? n : 1) * sizeof(*v));
}

/* The usage journal (persist/usage_log.h) laid over the loaded objects: each half put in key
 * order (the second in a thread of its own), then both merged with the journal in one pass.
 * Out of memory, the rows' figures stand. */
static void lay_usage(void)
{
    struct keyed_half k[2] = {{&ld.half[0], NULL, false}, {&ld.half[1], NULL, false}};
    struct usage_cursor *c = atomic_load(&ld.stop) ? NULL : usage_log_cursor(); /* not to stop */
    if (!c)
        return;
    for (int part = 0; part < 2; part++)
        k[part].v = map_pairs(ld.half[part].n);
    run_halves(sort_keyed_half, &k[0], &k[1]);
    if (k[0].sorted && k[1].sorted)
        lay_merged(c, k);
    else
        log_error("store: out of memory reading the usage journal: objects keep the figures "
                  "their rows have");
    unmap_pairs(k[0].v, ld.half[0].n);
    unmap_pairs(k[1].v, ld.half[1].n);
    usage_cursor_close(c);
}

static int by_last_use(const void *a, const void *b)
{
    int64_t x = ((const struct by_use *)a)->last_use, y = ((const struct by_use *)b)->last_use;
    return (x > y) - (x < y);
}

/* The table and the digest index sized once for `rows` more (grown row by row, a million objects
 * were rehashed about twenty times over), now that they are counted: the span of rowids, known
 * at open, is no bound (INSERT OR REPLACE gives each version a new rowid). Out of memory, they
 * grow as the rows go in. */
static void make_room(size_t rows)
{
    store_lock();
    if (objects_reserve(st.objects.count + rows + 1) < 0 ||
        digests_reserve(st.digests.count + rows) < 0)
        log_warn("store: out of memory making room for the index's %zu rows", rows);
    store_unlock();
}

static bool sorted(const struct loaded *l)
{
    for (size_t i = 1; i < l->n; i++)
        if (l->v[i - 1].last_use > l->v[i].last_use)
            return false;
    return true;
}

/* A clean stop's image comes in last-use order already (store_load_leave_image). */
static void *sort_half(void *arg)
{
    struct loaded *l = arg;
    if (!sorted(l))
        qsort(l->v, l->n, sizeof(*l->v), by_last_use);
    return NULL;
}

/* Each half sorted by last use (the pairs, not the objects: a cache miss per compare
 * otherwise), the second in a thread of its own: the insertion merges them. */
static void sort_halves(void)
{
    run_halves(sort_half, &ld.half[0], &ld.half[1]);
}

/* The most recently used object left in either half (their ends, left[0] and left[1]), taken;
 * NULL when both are empty. */
static struct object *take_most_recent(size_t left[2])
{
    const struct loaded *h = ld.half;
    if (!left[0] && !left[1])
        return NULL;
    int pick = !left[0] || (left[1] && h[1].v[left[1] - 1].last_use > h[0].v[left[0] - 1].last_use);
    return h[pick].v[--left[pick]].obj;
}

/* Lock held. Whether `key` entered or left the table while loading (note_seen). */
static bool key_seen(const uint8_t key[32])
{
    for (struct table_node *n = table_find(&ld.seen, key); n; n = table_find_next(&ld.seen, n))
        if (!memcmp(((struct seen_key *)n)->key, key, 32))
            return true;
    return false;
}

/* Lock held. The same for a loaded object's key: asked by its tag, its whole key made only when
 * a seen key has that tag (most loads see none). */
static bool seen_of(const struct object *o)
{
    uint8_t key[32];
    if (!table_find(&ld.seen, o->tag))
        return false;
    object_key_bytes(o, key);
    return key_seen(key);
}

/* Lock held. Whether the loader's copy `o` may go into the table: no object of its key is there
 * (a download resumed at open that has completed since, or a damaged index's second row of a
 * key), and none entered or left meanwhile (then the table's word about its row stands). */
static bool still_free(const struct object *o)
{
    return !ld.seen_failed && !seen_of(o) && !object_find_same(o);
}

/* Lock held. What the insertion of the objects before v[left] (taken from the end) will read,
 * fetched ahead in three steps, each reading what the one before fetched: an object's lines
 * (its key and digest), then the buckets of both tables they fall in, then those buckets'
 * first entries. */
static void prefetch_ahead(const struct by_use *v, size_t left)
{
    if (left > 4 * PREFETCH_AHEAD) {
        const struct object *o = v[left - 4 * PREFETCH_AHEAD].obj;
        for (size_t line = 0; line < sizeof(*o); line += 64)
            __builtin_prefetch((const char *)o + line);
    }
    if (left > 2 * PREFETCH_AHEAD) {
        const struct object *o = v[left - 2 * PREFETCH_AHEAD].obj;
        table_prefetch(&st.objects, o->tag, false);
        table_prefetch(&st.digests, o->digest, false);
    }
    if (left > PREFETCH_AHEAD) {
        const struct object *o = v[left - PREFETCH_AHEAD].obj;
        table_prefetch(&st.objects, o->tag, true);
        table_prefetch(&st.digests, o->digest, true);
    }
}

/* Lock held. The next LOAD_SLICE most recently used objects into the table, the most recent
 * first, each at the head of its LRU list (the slices before this one were more recent): false
 * when one could not go in (out of memory), or the keys seen meanwhile are not all known. */
static bool insert_slice(size_t left[2])
{
    bool ok = true;
    struct object *o;
    for (int i = 0; i < LOAD_SLICE && (o = take_most_recent(left)); i++) {
        bool in = false;
        for (int part = 0; part < 2; part++) /* objects are cold: fetch the next ones early */
            prefetch_ahead(ld.half[part].v, left[part]);
        if (still_free(o)) { /* its tag and URL: no key made and read back a row */
            ld.inserting = true;
            in = object_enter(o, OBJ_COMPLETE) == 0; /* the table grows: out of memory */
            ld.inserting = false;
            ok = ok && in;
        }
        if (!in) {
            object_free(o);
            continue;
        }
        dlist_prepend(object_lru(o), &o->lru);
        twins_join(o);
    }
    return ok && !ld.seen_failed;
}

/* The halves' vectors, and (arca stopping) the objects left in them. */
static void drop_halves(const size_t left[2])
{
    for (int part = 0; part < 2; part++) {
        for (size_t i = 0; i < left[part]; i++)
            object_free(ld.half[part].v[i].obj);
        free(ld.half[part].v);
        ld.half[part].v = NULL;
        ld.half[part].n = ld.half[part].cap = 0;
        ld.half[part].failed = false; /* its foreign keys stay for forget_foreign */
    }
}

/* The seen keys go with the end of the load. Lock held. */
static void seen_free(void)
{
    for (size_t i = 0; i < table_slots(&ld.seen); i++) {
        for (struct table_node *n = table_slot(&ld.seen, i), *next; n; n = next) {
            next = n->next;
            free(n);
        }
    }
    table_free(&ld.seen);
}

static void end_loading(void)
{
    store_lock();
    st.loading = false;
    seen_free();
    index_rows_loaded(); /* no lookup reads a row ahead from here on */
    store_unlock();
    pthread_mutex_lock(&ld.end_lock);
    ld.done = true;
    pthread_cond_broadcast(&ld.ended);
    pthread_mutex_unlock(&ld.end_lock);
}

static void sweep_orphans(void);

struct forget_job {
    struct persist_job job;
    int64_t rows;
};

static void run_forget(struct persist_job *job)
{
    assert(persist_owns_index());
    struct forget_job *f = (struct forget_job *)job;
    if (index_forget_unusable() == 0)
        log_info("store: %lld complete row%s of the index had no usable key or digest, never "
                 "served: deleted (their files go with the sweep)",
                 (long long)f->rows, f->rows == 1 ? "" : "s");
    free(f);
}

/* Rows the load skipped deleted, on the persistence thread: never served, they would keep the
 * index's complete rows from matching the objects, and no image would ever be left
 * (index_image.h). Out of memory they stay, and so does that. */
static void forget_unusable(int64_t rows)
{
    struct forget_job *f;
    if (rows <= 0 || !(f = calloc(1, sizeof(*f))))
        return;
    f->job.run = run_forget;
    f->rows = rows;
    persist_submit(&f->job);
}

struct foreign_job {
    struct persist_job job;
    size_t n;
    char (*keys)[65];
};

static void run_foreign(struct persist_job *job)
{
    struct foreign_job *f = (struct foreign_job *)job;
    assert(persist_owns_index());
    index_begin();
    for (size_t i = 0; i < f->n; i++)
        index_delete(f->keys[i]);
    index_commit();
    free(f->keys);
    free(f);
}

/* f's keys: the foreign ones no object in the table holds (one may: another row's, a download of
 * the URL its key names, since the load began; that row is its own); submitted, and said. */
static void submit_foreign(struct foreign_job *f, size_t n)
{
    f->job.run = run_foreign;
    store_lock();
    for (int part = 0; part < 2; part++)
        for (size_t i = 0; i < ld.half[part].nforeign; i++)
            if (!object_find(ld.half[part].foreign[i]))
                memcpy(f->keys[f->n++], ld.half[part].foreign[i], 65);
    size_t deleted = f->n;   /* f is the persistence thread's once submitted */
    persist_submit(&f->job); /* under the lock: before a later download's row of one */
    store_unlock();
    log_error("store: %zu complete row%s of the index named a key that is not their URL's sha256 "
              "(a damaged index; the first's key: %s): never served; %zu deleted (their files "
              "go with the sweep)%s",
              n, n == 1 ? "" : "s",
              ld.half[0].nforeign ? ld.half[0].foreign[0] : ld.half[1].foreign[0], deleted,
              deleted < n ? ", the others' keys another object's row" : "");
}

/* The foreign rows the halves met (row_foreign), said once and deleted on the persistence thread
 * (their files go with the sweep): never served, they would keep the index's complete rows from
 * matching the objects. Lock not held; the load has ended (object_find reads no row ahead). Only
 * after a whole load (as forget_unusable); else, out of memory, they stay. The halves' keys are
 * let go of either way. */
static void forget_foreign(bool whole)
{
    size_t n = ld.half[0].nforeign + ld.half[1].nforeign;
    struct foreign_job *f = n && whole ? calloc(1, sizeof(*f)) : NULL;
    if (f && !(f->keys = malloc(n * sizeof(*f->keys)))) {
        free(f);
        f = NULL;
    }
    if (f)
        submit_foreign(f, n);
    for (int part = 0; part < 2; part++) {
        free(ld.half[part].foreign);
        ld.half[part].foreign = NULL;
        ld.half[part].nforeign = ld.half[part].foreign_cap = 0;
    }
}

/* What went wrong, in one line; whole: every complete row is in the table (the sweep may run). */
static bool loaded_whole(int rc, const char *err)
{
    if (rc == INDEX_CORRUPT) {
        log_error("%s: what loaded is served; the next start moves the index aside", err);
        index_distrust();
    } else if (rc < 0) {
        log_error("%s: the rows not loaded are not served until the next start", err);
    }
    if (ld.half[0].failed || ld.half[1].failed)
        log_error("store: out of memory loading the index: the rows not loaded are not served "
                  "until the next start");
    return (rc == 0 || rc == INDEX_IMAGED) && !ld.half[0].failed && !ld.half[1].failed;
}

static double seconds_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

/* The store's first line: what it holds once loaded, how long the load took (arca served
 * meanwhile), and whether its rows came from a clean stop's image. */
static void log_loaded(double seconds, bool imaged)
{
    store_lock();
    size_t count = st.objects.count, ahead = ld.read_ahead;
    long long usage = (long long)st.usage;
    store_unlock();
    int dir_len = (int)(strlen(st.objdir) - strlen("/objects")); /* DATA_DIR/objects */
    log_info("store: %zu object%s, %lld bytes in %.*s (index loaded in %.2f s; %zu looked up "
             "before the load reached them%s)",
             count, count == 1 ? "" : "s", usage, dir_len, st.objdir, seconds, ahead,
             imaged ? "; its rows from the image a clean stop left" : "");
}

/* The load's thread, once its rows (if any) serve; `whole`: every complete row is in the table,
 * `skipped`: the rows it left out as unusable (index_rows_skipped). A clean close's file is checked
 * then, at its own pace (index_rows.c): what the check finds, the next start acts on (a file found
 * damaged is distrusted whole, its files swept then). Only after a whole load and check, the
 * foreign and unusable rows go and the orphans are swept. */
static void after_load(bool whole, int64_t skipped)
{
    char err[512];
    if (whole && !atomic_load(&ld.stop))
        whole = loaded_whole(index_check_deferred(&ld.stop, err, sizeof(err)), err);
    ld.whole = whole; /* read by main once this thread is joined */
    forget_foreign(whole);
    if (whole) {
        forget_unusable(skipped);
        sweep_orphans();
    }
}

static void *load_main(void *arg)
{
    char err[512];
    struct timespec t0;
    (void)arg;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = index_load_rows(load_row, NULL, &ld.stop, err, sizeof(err));
    bool whole = loaded_whole(rc, err), imaged = rc == INDEX_IMAGED;
    if (!imaged) /* an image has every use the journal has: the objects it was written from did */
        lay_usage();
    make_room(ld.half[0].n + ld.half[1].n);
    sort_halves();
    size_t left[2] = {ld.half[0].n, ld.half[1].n};
    while ((left[0] || left[1]) && !atomic_load(&ld.stop)) {
        store_lock();
        whole = insert_slice(left) && whole;
        store_unlock();
    }
    drop_halves(left);
    if (ld.seen_failed)
        log_error("store: out of memory noting the keys used while the index loaded: the rows "
                  "not loaded are not served until the next start");
    bool stopped = atomic_load(&ld.stop);
    whole = whole && !stopped;
    end_loading();
    if (stopped)
        log_info("store: arca stops: the index's load was cut short after %.2f s",
                 seconds_since(&t0));
    else
        log_loaded(seconds_since(&t0), imaged);
    after_load(whole, index_rows_skipped());
    return NULL;
}

/* The load's thread when the index has no rows: the check it owes, then the sweep. */
static void *check_main(void *arg)
{
    (void)arg;
    after_load(!atomic_load(&ld.stop), 0);
    return NULL;
}

void store_load_start(void)
{
    atomic_store(&ld.stop, false);
    ld.seen_failed = ld.find_failed = false;
    ld.read_ahead = 0;
    ld.whole = false;
    ld.done = !st.loading; /* main alone still: no lookup yet */
    if (ld.done) {
        index_rows_loaded(); /* nothing to read through the journal */
        log_loaded(0, false);
    }
    if (ld.done && !index_check_owed()) { /* a new index: nothing to check */
        ld.whole = true;
        sweep_orphans();
        return;
    }
    /* without rows, the check a clean stop's file is owed still runs, as after a load, on a
     * thread of its own (the file may be large: links, free pages): skipped, the stop would
     * leave no clean mark, and the next start would check the file as a crash's */
    void *(*run)(void *) = ld.done ? check_main : load_main;
    ld.running = pthread_create(&ld.thread, NULL, run, NULL) == 0;
    if (!ld.running)
        run(NULL);
}

void store_load_stop(void)
{
    atomic_store(&ld.stop, true);
    if (ld.running)
        pthread_join(ld.thread, NULL);
    ld.running = false;
}

void store_wait_loaded(void)
{
    pthread_mutex_lock(&ld.end_lock);
    while (!ld.done)
        pthread_cond_wait(&ld.ended, &ld.end_lock);
    pthread_mutex_unlock(&ld.end_lock);
}

bool store_loading(void)
{
    pthread_mutex_lock(&ld.end_lock);
    bool loading = !ld.done;
    pthread_mutex_unlock(&ld.end_lock);
    return loading;
}

static struct object *of_lru(struct dnode *n)
{
    return n ? DLIST_ENTRY(n, struct object, lru) : NULL;
}

/* Of the two lists' next objects, the less recently used, taken; NULL when both have ended. */
static struct object *take_older(struct dnode **lru, struct dnode **pinned)
{
    struct object *a = of_lru(*lru), *b = of_lru(*pinned);
    bool pick_b = b && (!a || b->last_use < a->last_use);
    struct dnode **from = pick_b ? pinned : lru;
    if (*from)
        *from = (*from)->next;
    return pick_b ? b : a;
}

static void image_row(const struct object *o)
{
    char key[65];
    uint8_t bytes[32];
    struct index_row row;
    object_complete_row(o, o->length, o->digest, key, &row);
    bool hex = table_key_of_hex(key, bytes);
    assert(hex);
    (void)hex;
    index_image_row(bytes, &row);
}

/* The objects go in the order of their last use, both lists merged (each is in that order but
 * for a row a lookup read during the load: at its least recent end), so that the next load
 * finds each half sorted already (sort_halves); the expired copies of refreshes set aside as arca
 * stops (st.aside: their rows are complete in the index) last. A complete
 * object on none of these would make the image one row short of the index: index_close then
 * seals none. */
void store_load_leave_image(void)
{
    assert(store_locked() && !ld.running);
    struct dnode *lru = st.lru.head, *pinned = st.pinned.head;
    struct object *o;
    size_t n = 0, half = st.objects.count / 2;
    const char *why = index_check_owed() ? "the check this start owed the index did not end"
                      : !ld.whole        ? "this run's load of the index was not whole"
                                         : NULL;
    if (why) {
        log_warn("index image: none left: %s; the next start reads the index's rows", why);
        return;
    }
    if (index_image_begin(st.objects.count + st.naside) < 0)
        return;
    while ((o = take_older(&lru, &pinned))) {
        if (o->state != OBJ_COMPLETE)
            continue;
        if (n++ == half)
            index_image_half();
        image_row(o);
    }
    for (size_t i = 0; i < st.naside; i++) /* used lately: at the recent end, as a rule */
        image_row(st.aside[i]);
}

static void took_row(const struct index_row *row, void *arg)
{
    *(struct object **)arg = row_foreign(row) ? NULL : object_of_row(row); /* NULL: not read */
}

/* Lock held. `key` is the table's for good from now on (store_load.h). */
static void note_seen(const uint8_t key[32])
{
    struct seen_key *k;
    if (key_seen(key))
        return;
    if ((k = calloc(1, sizeof(*k))))
        memcpy(k->key, key, sizeof(k->key));
    if (!k || table_add(&ld.seen, &k->node) < 0) {
        free(k);
        ld.seen_failed = true; /* the loader cannot tell which copies are stale: it stops */
    }
}

struct object *store_load_missing(const char *key)
{
    assert(store_locked() && st.loading);
    struct object *o = NULL;
    uint8_t bytes[32];
    if (!table_key_of_hex(key, bytes) || key_seen(bytes) || ld.seen_failed)
        return NULL; /* no key (no row has it), or the table's for good */
    int found = index_find_row(key, took_row, &o);
    if (found < 0 && !ld.find_failed) {
        ld.find_failed = true;
        log_error("store: a row of the index could not be read ahead of the load (key %s): it "
                  "is a miss until the next start (said once)",
                  key);
    }
    if (found <= 0 || !o || object_enter(o, OBJ_COMPLETE) < 0) {
        if (o)
            object_free(o);
        /* asked and not read: the loader's copy stays out too, or a purge's "not cached" for
         * this key would be undone when the loader reached it */
        if (found != 0)
            note_seen(bytes);
        return NULL;
    }
    /* at the least recent end: its use, if this lookup is one, moves it (a listing's lookup or
     * a purge's is not) */
    dlist_prepend(object_lru(o), &o->lru);
    twins_join(o);
    ld.read_ahead++;
    return o;
}

void store_load_touched(const struct object *obj)
{
    assert(store_locked() && st.loading);
    uint8_t key[32];
    if (!ld.inserting) {
        object_key_bytes(obj, key);
        note_seen(key);
    }
}

/* --- the sweep ------------------------------------------------------------------------------ */

/* Files no trusted row points to (a corrupt index, a crash mid-unlink) only take space. They are
 * swept once every row is in the table, one of the 256 directories per job of the persistence
 * thread, so that downloads wait behind one directory at most. Each name is looked up and
 * unlinked under the lock: a download that starts meanwhile is in the table before its file
 * exists, so it is never touched. */
struct sweep_job {
    struct persist_job job;
    int dir, removed;
};

/* Lock held. A file an object in the table owns: KEY (a complete version, or the one a download
 * revalidates) or KEY.part (a download's). object_find() finds nothing for a name that is not
 * 64 lowercase hex digits (table_get). Once a download was set aside (arca stops), every file:
 * the table no longer names the partial files and expired copies kept for the next start, which
 * sweeps again. */
static bool file_wanted(const char *name)
{
    assert(store_locked() && !st.loading);
    size_t len = strlen(name);
    char key[65];
    const struct object *obj;
    if (object_set_aside_begun())
        return true;
    if (len == 64)
        return object_find(name) != NULL;
    if (len != 64 + strlen(".part") || strcmp(name + 64, ".part") != 0)
        return false;
    memcpy(key, name, 64);
    key[64] = '\0';
    return (obj = object_find(key)) != NULL && obj->state == OBJ_FETCHING;
}

static void run_sweep(struct persist_job *job)
{
    assert(persist_owns_index());
    struct sweep_job *sw = (struct sweep_job *)job;
    char dir[1200], path[1500];
    snprintf(dir, sizeof(dir), "%s/%02x", st.objdir, sw->dir);
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        store_lock();
        if (!file_wanted(e->d_name))
            sw->removed += unlink(path) == 0;
        store_unlock();
    }
    if (d)
        closedir(d);
    if (++sw->dir < 256 && !persist_stopping()) {
        /* the next directory, after what was queued meanwhile; nobody waits for it */
        persist_submit_background(&sw->job);
        return;
    }
    if (sw->removed)
        log_info("store: removed %d object files no index row points to", sw->removed);
    free(sw);
}

static void sweep_orphans(void)
{
    struct sweep_job *sw = calloc(1, sizeof(*sw));
    if (!sw) {
        log_error("store: out of memory: files no index row points to are left for the next "
                  "start");
        return;
    }
    sw->job.run = run_sweep;
    persist_submit_background(&sw->job);
}
