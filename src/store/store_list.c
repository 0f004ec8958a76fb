/* Listings of the object table and of recent failures, for the web pages and the JSON API.
 * A page by last use (the default) walks only its own rows of the two LRU lists (pinned objects
 * have their own: store_room.h), merged by last use, and downloads come
 * from their own short list. A page of complete objects in any other order must look at every
 * one of them: on a million objects one pass held the store lock for 20-30 ms, and every hit
 * waited. That pass now walks the table a slice of buckets at a time (LIST_SLICE), keeping
 * copies of the best rows' sort fields, and takes the page's rows by key at the end. */
#include "store/store_list.h"
#include "store/store_room.h"
#include "persist/index.h"
#include "persist/persist.h"
#include "url/url.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A failed download, kept for the failures listing after its object is gone. */
struct failure {
    struct resource res; /* res.url owned; res.last_use is when it failed */
    bool saved;          /* in the index's failures table */
};

/* What a sort looks at, whether the row is an object or a failure. Its key breaks ties (a total
 * order: pages never overlap): its first 4 bytes (tag) compared first, and only when those tie
 * its whole key, a failure's as kept (key), an object's made again from its URL (object.h: an
 * object keeps its URL and its tag, not its key). */
struct sort_fields {
    const char *url, *key; /* key: NULL for an object's */
    uint8_t tag[4];
    int64_t size, usage, last_use, created;
};

struct sort {
    enum list_order order;
    bool desc;
};

static int cmp64(int64_t a, int64_t b)
{
    return (a > b) - (a < b);
}

static int compare_fields(const struct sort_fields *a, const struct sort_fields *b,
                          const struct sort *s)
{
    int c = 0;
    switch (s->order) {
    case ORDER_URL:
        c = strcmp(a->url, b->url);
        break;
    case ORDER_SIZE:
        c = cmp64(a->size, b->size);
        break;
    case ORDER_USAGE:
        c = cmp64(a->usage, b->usage);
        break;
    case ORDER_LAST_USE:
        c = cmp64(a->last_use, b->last_use);
        break;
    case ORDER_CREATED:
        c = cmp64(a->created, b->created);
        break;
    }
    if (s->desc)
        c = -c;
    if (c || (c = memcmp(a->tag, b->tag, sizeof(a->tag))))
        return c;
    char ka[65], kb[65]; /* a rare tie of tags: the keys whole */
    if (!a->key)
        url_key(a->url, ka);
    if (!b->key)
        url_key(b->url, kb);
    return strcmp(a->key ? a->key : ka, b->key ? b->key : kb);
}

static struct sort_fields object_fields(const struct object *o)
{
    struct sort_fields f = {
        o->url,   NULL,        {0},       o->length >= 0 ? o->length : object_have(o),
        o->usage, o->last_use, o->created};
    memcpy(f.tag, o->tag, sizeof(f.tag));
    return f;
}

static struct sort_fields resource_fields(const struct resource *r)
{
    uint8_t key[32] = {0};
    struct sort_fields f = {r->url,   r->key,      {0},       r->length >= 0 ? r->length : r->have,
                            r->usage, r->last_use, r->created};
    if (parse_sha256_hex(r->key, key) == 0)
        memcpy(f.tag, key, sizeof(f.tag));
    return f;
}

static int compare_resources(const void *pa, const void *pb, void *ctx)
{
    struct sort_fields a = resource_fields(*(const struct resource *const *)pa),
                       b = resource_fields(*(const struct resource *const *)pb);
    return compare_fields(&a, &b, ctx);
}

static enum list_state state_of(const struct object *o)
{
    if (o->state == OBJ_COMPLETE)
        return LIST_SUCCESSES;
    return o->fd < 0 ? LIST_SCHEDULED : LIST_DOWNLOADING;
}

/* A candidate row: its sort fields, copied (the object may go once the lock drops), f.url its
 * own copy of the URL. */
struct entry {
    struct sort_fields f;
};

static int compare_entries(const void *pa, const void *pb, void *ctx)
{
    const struct entry *a = pa, *b = pb;
    return compare_fields(&a->f, &b->f, ctx);
}

/* A bounded max-heap: the root is the worst of the best `cap` rows seen so far. */
struct heap {
    struct entry *items;
    size_t n, cap;
    const struct sort *sort;
    bool failed; /* out of memory copying a URL */
};

static void entry_swap(struct entry *a, struct entry *b)
{
    struct entry t = *a;
    *a = *b;
    *b = t;
}

static void heap_sift_down(struct heap *h, size_t i)
{
    for (;;) {
        size_t worst = i, l = 2 * i + 1, r = l + 1;
        if (l < h->n && compare_entries(&h->items[l], &h->items[worst], (void *)h->sort) > 0)
            worst = l;
        if (r < h->n && compare_entries(&h->items[r], &h->items[worst], (void *)h->sort) > 0)
            worst = r;
        if (worst == i)
            return;
        entry_swap(&h->items[i], &h->items[worst]);
        i = worst;
    }
}

/* Lock held. Copy `o` into `e`. */
static int entry_set(struct entry *e, const struct object *o)
{
    assert(store_locked());
    char *url = strdup(o->url);
    if (!url)
        return -1;
    free((char *)e->f.url);
    e->f = object_fields(o);
    e->f.url = url;
    return 0;
}

static void heap_offer(struct heap *h, const struct object *o)
{
    if (h->n < h->cap) {
        size_t i = h->n;
        h->items[i].f.url = NULL;
        if (entry_set(&h->items[i], o) < 0) {
            h->failed = true;
            return;
        }
        h->n++;
        while (i > 0) {
            size_t parent = (i - 1) / 2;
            if (compare_entries(&h->items[i], &h->items[parent], (void *)h->sort) <= 0)
                break;
            entry_swap(&h->items[i], &h->items[parent]);
            i = parent;
        }
    } else if (h->cap > 0) {
        struct sort_fields f = object_fields(o);
        if (compare_fields(&f, &h->items[0].f, h->sort) >= 0)
            return;
        if (entry_set(&h->items[0], o) < 0) {
            h->failed = true;
            return;
        }
        heap_sift_down(h, 0);
    }
}

static void heap_free(struct heap *h)
{
    for (size_t i = 0; i < h->n; i++)
        free((char *)h->items[i].f.url);
    free(h->items);
}

static int object_resource(const struct object *o, struct resource *r)
{
    *r = (struct resource){.length = o->length,
                           .have = object_have(o),
                           .rate = live_of(o)->rate,
                           .connections = live_of(o)->connections,
                           .waiting_for = live_of(o)->waiting_for,
                           .usage = o->usage,
                           .last_use = o->last_use,
                           .created = o->created,
                           .ttl = o->ttl,
                           .status = 200};
    r->expired = o->state == OBJ_COMPLETE && object_expired(o, (int64_t)time(NULL));
    int64_t window = o->state == OBJ_COMPLETE ? object_stale_if_error(o) : 0;
    r->stale_until = window > 0 ? (int64_t)o->created + o->ttl + window : 0;
    object_key(o, r->key);
    struct upstream_headers h;
    headers_unpack(o->headers, &h);
    copy_string(r->content_type, sizeof(r->content_type), h.content_type);
    return (r->url = url_shown(o->url)) ? 0 : -1;
}

/* object_resource's row of a table's object, with the hops a listing judges it by. */
static int listed_resource(const struct object *o, struct resource *r)
{
    if (object_resource(o, r) < 0)
        return -1;
    struct upstream_headers h;
    headers_unpack(o->headers, &h);
    return !h.redirects[0] || (r->hops = strdup(h.redirects)) ? 0 : -1;
}

/* Lock held. Every state's count, from the fetching list and the totals: no table walk. */
static void count_states(struct listing *out)
{
    assert(store_locked());
    for (struct dnode *d = st.fetching.head; d; d = d->next)
        out->counts[state_of(DLIST_ENTRY(d, struct object, lru))]++;
    out->counts[LIST_SUCCESSES] =
        (int64_t)st.objects.count - out->counts[LIST_SCHEDULED] - out->counts[LIST_DOWNLOADING];
    for (int i = 0; i < STORE_FAILURES_KEPT; i++)
        out->counts[LIST_FAILURES] += st.failures[i] != NULL;
}

/* Lock held. Keeps the best offset + limit downloads of `state` (their list is short). */
static void pick_downloads(struct heap *h, enum list_state state)
{
    assert(store_locked());
    for (struct dnode *d = st.fetching.head; d; d = d->next) {
        struct object *o = DLIST_ENTRY(d, struct object, lru);
        if (state_of(o) == state)
            heap_offer(h, o);
    }
}

/* Lock not held. One pass keeping the best offset + limit complete objects, LIST_SLICE buckets
 * per hold of the lock; false when objects changed slots meanwhile (the table grew). */
#define LIST_SLICE 4096
static bool pick_pass(struct heap *h)
{
    size_t slot = 0;
    for (size_t i = 0; i < h->n; i++)
        free((char *)h->items[i].f.url);
    h->n = 0;
    store_lock();
    unsigned moves = st.objects.moves;
    for (;;) {
        size_t slots = object_slots(), end = slot + LIST_SLICE;
        if (st.objects.moves != moves)
            break;
        for (; slot < slots && slot < end; slot++)
            for (struct object *o = object_slot(slot); o; o = object_next(o))
                if (o->state == OBJ_COMPLETE)
                    heap_offer(h, o);
        if (slot >= slots || h->failed) {
            store_unlock();
            return true;
        }
        store_unlock(); /* hits get their turn between slices */
        store_lock();
    }
    store_unlock();
    return false;
}

/* Not a snapshot: an object that changes meanwhile is seen as it was when its bucket was
 * visited. A pass during which objects changed slots starts over; after three such passes the
 * last one stands. */
static void pick_complete(struct heap *h)
{
    for (int pass = 0; pass < 3 && !pick_pass(h); pass++)
        ;
}

/* Lock held. The copy of its URL that `o` keeps: itself when complete; while it downloads, the
 * expired copy it refreshes, unless purged (a 304 or a registry's same-digest HEAD renews that
 * copy, a failed refresh restores it: it is kept until the answer); else NULL. */
static const struct object *kept_copy_of(const struct object *o)
{
    if (o->state == OBJ_COMPLETE)
        return o;
    if (o->state == OBJ_FETCHING && object_stale(o) && !object_stale(o)->purged)
        return object_stale(o);
    return NULL;
}

/* Lock held. One kept copy to a walk's visitor, under the URL of the object `o` that keeps it,
 * last used when either was. */
static void visit_kept(const struct object *o, const struct object *copy, kept_visit_fn *visit,
                       void *arg)
{
    struct upstream_headers h;
    headers_unpack(copy->headers, &h);
    int64_t last_use = o->last_use > copy->last_use ? o->last_use : copy->last_use;
    struct kept_object k = {o->url, h.redirects, copy->digest, copy->length, last_use};
    visit(&k, arg);
}

bool store_walk_kept(kept_visit_fn *visit, void *arg)
{
    size_t slot = 0;
    bool whole = true;
    store_wait_loaded(); /* an image's manifests are all in the table, or a purge misses some */
    store_lock();
    unsigned moves = st.objects.moves;
    for (;;) {
        size_t slots = object_slots(), end = slot + LIST_SLICE;
        whole = whole && st.objects.moves == moves;
        for (; slot < slots && slot < end; slot++)
            for (struct object *o = object_slot(slot); o; o = object_next(o)) {
                const struct object *copy = kept_copy_of(o);
                if (copy)
                    visit_kept(o, copy, visit, arg);
            }
        if (slot >= slots)
            break;
        store_unlock(); /* hits get their turn between slices */
        store_lock();
    }
    store_unlock();
    return whole;
}

/* Lock held. The next object by last use of the two LRU lists (unpinned and pinned objects),
 * walked from one end each as one list: `at` holds where each walk stands; NULL at the end. */
static struct object *next_by_use(struct dnode *at[2], bool desc)
{
    struct object *o[2];
    for (int i = 0; i < 2; i++)
        o[i] = at[i] ? DLIST_ENTRY(at[i], struct object, lru) : NULL;
    int pick = !o[0] ||
               (o[1] && (desc ? o[1]->last_use > o[0]->last_use : o[1]->last_use < o[0]->last_use));
    if (at[pick])
        at[pick] = desc ? at[pick]->prev : at[pick]->next;
    return o[pick];
}

/* Lock held. The LRU lists are in last-use order already: a page by last use is a walk of
 * offset + limit entries from one end of both, however big the table. */
static int take_by_last_use(bool desc, int64_t offset, int limit, struct listing *out)
{
    assert(store_locked());
    struct dnode *at[2] = {desc ? st.lru.tail : st.lru.head,
                           desc ? st.pinned.tail : st.pinned.head};
    struct object *o = next_by_use(at, desc);
    for (int64_t skip = 0; o && skip < offset; skip++)
        o = next_by_use(at, desc);
    for (; o && out->n < limit; o = next_by_use(at, desc))
        if (listed_resource(o, &out->rows[out->n++]) < 0)
            return -1;
    return 0;
}

/* Lock held. The page's rows, sorted, looked up by key: an object gone since it was picked
 * leaves its row out. */
static int take_entries(struct heap *h, int64_t offset, struct listing *out)
{
    assert(store_locked());
    qsort_r(h->items, h->n, sizeof(*h->items), compare_entries, (void *)h->sort);
    for (size_t i = (size_t)offset; i < h->n; i++) {
        char key[65];
        url_key(h->items[i].f.url, key);
        const struct object *o = object_find_url(h->items[i].f.url, key);
        if (o && listed_resource(o, &out->rows[out->n++]) < 0)
            return -1;
    }
    return 0;
}

/* Lock held. Failures are few (a ring): copy them all, sort, keep the page. */
static int take_failures(const struct sort *s, int64_t offset, int limit, struct listing *out)
{
    assert(store_locked());
    const struct resource *all[STORE_FAILURES_KEPT];
    int n = 0;
    for (int i = 0; i < STORE_FAILURES_KEPT; i++)
        if (st.failures[i])
            all[n++] = &st.failures[i]->res;
    qsort_r(all, (size_t)n, sizeof(all[0]), compare_resources, (void *)s);
    for (int i = (int)offset; i < n && out->n < limit; i++) {
        out->rows[out->n] = *all[i];
        /* a reason may quote what upstream said, a redirect's target among it */
        url_redact(all[i]->error, out->rows[out->n].error, sizeof(out->rows[out->n].error));
        if (!(out->rows[out->n++].url = url_shown(all[i]->url)))
            return -1;
    }
    return 0;
}

int store_list(enum list_state state, enum list_order order, bool desc, int64_t offset, int limit,
               struct listing *out)
{
    struct sort sort = {order, desc};
    struct heap h = {.cap = (size_t)(offset + limit), .sort = &sort};
    int rc = -1;

    memset(out, 0, sizeof(*out));
    if (offset < 0 || limit < 0 || offset + limit > STORE_LIST_DEPTH)
        return -2;
    out->rows = calloc((size_t)limit + 1, sizeof(*out->rows));
    h.items = malloc((h.cap + 1) * sizeof(*h.items));
    if (!out->rows || !h.items)
        goto out;
    bool whole_table = state == LIST_SUCCESSES && order != ORDER_LAST_USE;
    if (whole_table)
        pick_complete(&h); /* first, with the lock taken and dropped per slice */
    store_lock();
    count_states(out);
    out->total = out->counts[state];
    if (state == LIST_FAILURES) {
        rc = take_failures(&sort, offset, limit, out);
    } else if (state == LIST_SUCCESSES && order == ORDER_LAST_USE) {
        rc = take_by_last_use(desc, offset, limit, out);
    } else {
        if (!whole_table)
            pick_downloads(&h, state);
        rc = h.failed ? -1 : take_entries(&h, offset, out);
    }
    store_unlock();
out:
    heap_free(&h);
    if (rc < 0)
        listing_free(out);
    return rc;
}

void listing_free(struct listing *l)
{
    for (int i = 0; i < l->n; i++) {
        free(l->rows[i].url);
        free(l->rows[i].hops);
    }
    free(l->rows);
    l->rows = NULL;
    l->n = 0;
}

static void failure_free(struct failure *f)
{
    if (f)
        free(f->res.url);
    free(f);
}

/* Lock held (or main at start). The ring's next slot, its old entry freed: the failures', or
 * the held-down refusals' (`held`). */
static void ring_put(struct failure *f, bool held)
{
    assert(store_locked_or_alone());
    struct failure **ring = held ? st.held : st.failures;
    int *next = held ? &st.held_next : &st.failures_next;
    failure_free(ring[*next]);
    ring[*next] = f;
    *next = (*next + 1) % (held ? STORE_HELD_KEPT : STORE_FAILURES_KEPT);
}

void note_failure(const struct object *obj)
{
    CHECK_OBJ(obj);
    assert(store_locked());
    struct failure *f = calloc(1, sizeof(*f));
    if (!f || object_resource(obj, &f->res) < 0) {
        free(f);
        return; /* only the listing loses it */
    }
    f->res.status = live_of(obj)->error_status ? live_of(obj)->error_status : 502;
    f->res.last_use = time(NULL);
    copy_string(f->res.error, sizeof(f->res.error), object_error(obj));
    f->saved = live_of(obj)->retry_after > 0; /* a held-down refusal is not a failure to remember */
    ring_put(f, live_of(obj)->retry_after > 0);
}

static void load_failure(const struct index_failure *row, void *arg)
{
    struct failure *f = calloc(1, sizeof(*f));
    (void)arg;
    if (!f || !(f->res.url = strdup(row->url))) {
        free(f);
        return;
    }
    copy_string(f->res.key, sizeof(f->res.key), row->key);
    copy_string(f->res.error, sizeof(f->res.error), row->reason);
    f->res.status = row->status;
    f->res.length = row->length;
    f->res.have = row->have;
    f->res.created = row->created;
    f->res.last_use = row->failed;
    f->res.usage = row->usage;
    f->saved = true;
    ring_put(f, false);
}

void load_failures(void)
{
    index_failures_load(STORE_FAILURES_KEPT, load_failure, NULL);
}

struct failures_job {
    struct persist_job job;
    struct resource copy[STORE_FAILURES_KEPT];
    int n;
};

static void run_save_failures(struct persist_job *job)
{
    assert(persist_owns_index());
    struct failures_job *f = (struct failures_job *)job;
    for (int i = 0; i < f->n; i++) {
        const struct resource *r = &f->copy[i];
        index_failure_add(&(struct index_failure){r->key, r->url, r->status, r->error, r->length,
                                                  r->have, r->created, r->last_use, r->usage},
                          STORE_FAILURES_KEPT);
        free(f->copy[i].url);
    }
    free(f);
}

/* Failures not yet in the index are copied out under the lock, oldest first, and written by the
 * persistence thread (the table keeps the last STORE_FAILURES_KEPT, like the ring). */
void store_flush_failures(void)
{
    struct failures_job *f = malloc(sizeof(*f));
    if (!f)
        return; /* tried again next round */
    f->job.run = run_save_failures;
    f->n = 0;
    store_lock();
    for (int i = 0; i < STORE_FAILURES_KEPT; i++) {
        struct failure *e = st.failures[(st.failures_next + i) % STORE_FAILURES_KEPT];
        if (!e || e->saved)
            continue;
        f->copy[f->n] = e->res;
        if (!(f->copy[f->n].url = strdup(e->res.url)))
            continue; /* tried again next round */
        e->saved = true;
        f->n++;
    }
    store_unlock();
    if (f->n == 0) {
        free(f);
        return;
    }
    persist_submit_background(&f->job); /* nobody waits for it, as for the counters (stats_save) */
}

void free_failures(void)
{
    for (int i = 0; i < STORE_FAILURES_KEPT; i++) {
        failure_free(st.failures[i]);
        st.failures[i] = NULL;
    }
    for (int i = 0; i < STORE_HELD_KEPT; i++) {
        failure_free(st.held[i]);
        st.held[i] = NULL;
    }
    st.failures_next = st.held_next = 0;
}

/* Lock held. The newest entry of a ring of `size` for `key`, NULL when none. */
static const struct failure *newest_in(struct failure *const *ring, int next, int size,
                                       const char *key)
{
    assert(store_locked());
    for (int i = 1; i <= size; i++) {
        const struct failure *f = ring[(next - i + size) % size];
        if (f && !strcmp(f->res.key, key))
            return f;
    }
    return NULL;
}

/* Lock held. The newest failure or held-down refusal kept for `key`, NULL when none; a tried
 * failure wins a tie (same second): it is what a retry after the hold met. */
static const struct failure *newest_failure(const char *key)
{
    const struct failure *f = newest_in(st.failures, st.failures_next, STORE_FAILURES_KEPT, key),
                         *h = newest_in(st.held, st.held_next, STORE_HELD_KEPT, key);
    return h && (!f || h->res.last_use > f->res.last_use) ? h : f;
}

void store_outcome(const char *url, struct outcome *out)
{
    char key[65];
    const struct object *o;
    const struct failure *f;

    url_key(url, key);
    *out = (struct outcome){.state = OUTCOME_ABSENT, .length = -1};
    store_lock();
    if ((o = object_find_url(url, key))) {
        enum list_state s = state_of(o);
        out->state = s == LIST_SUCCESSES   ? OUTCOME_COMPLETE
                     : s == LIST_SCHEDULED ? OUTCOME_SCHEDULED
                                           : OUTCOME_DOWNLOADING;
        out->length = o->length;
        out->have = object_have(o);
        out->when = o->created;
    } else if ((f = newest_failure(key))) {
        out->state = OUTCOME_FAILED;
        out->length = f->res.length;
        out->have = f->res.have;
        out->status = f->res.status;
        out->when = f->res.last_use;
        copy_string(out->error, sizeof(out->error), f->res.error);
    }
    store_unlock();
}
