/* Listings of the object table and of recent failures, for the web pages and the JSON API.
 * Measured on a million complete objects: a page by url or size holds the store lock for 20-30 ms
 * (one pass over the LRU list, O(n log k)); by last use (the default) it walks only its own rows,
 * and downloads come from their own short list. */
#include "index.h"
#include "store_internal.h"
#include "url.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A failed download, kept for the failures listing after its object is gone. */
struct failure {
    struct resource res; /* res.url owned; res.last_use is when it failed */
    bool saved;          /* in the index's failures table */
};

/* What a sort looks at, whether the row is an object or a failure. */
struct sort_fields {
    const char *url, *key;
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
    return c ? c : strcmp(a->key, b->key); /* a total order: pages never overlap */
}

static struct sort_fields object_fields(const struct object *o)
{
    return (struct sort_fields){o->url,   o->key,      o->length >= 0 ? o->length : o->have,
                                o->usage, o->last_use, o->created};
}

static int compare_objects(const void *pa, const void *pb, void *ctx)
{
    struct sort_fields a = object_fields(*(struct object *const *)pa),
                       b = object_fields(*(struct object *const *)pb);
    return compare_fields(&a, &b, ctx);
}

static struct sort_fields resource_fields(const struct resource *r)
{
    return (struct sort_fields){r->url,   r->key,      r->length >= 0 ? r->length : r->have,
                                r->usage, r->last_use, r->created};
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

/* A bounded max-heap: the root is the worst of the best `cap` objects seen so far. */
struct heap {
    struct object **items;
    size_t n, cap;
    const struct sort *sort;
};

static void heap_sift_down(struct heap *h, size_t i)
{
    for (;;) {
        size_t worst = i, l = 2 * i + 1, r = l + 1;
        if (l < h->n && compare_objects(&h->items[l], &h->items[worst], (void *)h->sort) > 0)
            worst = l;
        if (r < h->n && compare_objects(&h->items[r], &h->items[worst], (void *)h->sort) > 0)
            worst = r;
        if (worst == i)
            return;
        struct object *t = h->items[i];
        h->items[i] = h->items[worst];
        h->items[worst] = t;
        i = worst;
    }
}

static void heap_offer(struct heap *h, struct object *o)
{
    if (h->n < h->cap) {
        size_t i = h->n++;
        h->items[i] = o;
        while (i > 0) {
            size_t parent = (i - 1) / 2;
            if (compare_objects(&h->items[i], &h->items[parent], (void *)h->sort) <= 0)
                break;
            struct object *t = h->items[i];
            h->items[i] = h->items[parent];
            h->items[parent] = t;
            i = parent;
        }
    } else if (h->cap > 0 && compare_objects(&o, &h->items[0], (void *)h->sort) < 0) {
        h->items[0] = o;
        heap_sift_down(h, 0);
    }
}

static int object_resource(const struct object *o, struct resource *r)
{
    *r = (struct resource){.length = o->length,
                           .have = o->have,
                           .usage = o->usage,
                           .last_use = o->last_use,
                           .created = o->created,
                           .ttl = o->ttl,
                           .status = 200};
    memcpy(r->key, o->key, sizeof(r->key));
    struct upstream_headers h;
    headers_unpack(o->headers, &h);
    copy_string(r->content_type, sizeof(r->content_type), h.content_type);
    return (r->url = url_shown(o->url)) ? 0 : -1;
}

/* Lock held. Every state's count, from the fetching list and the totals: no table walk. */
static void count_states(struct listing *out)
{
    for (struct dnode *d = st.fetching.head; d; d = d->next)
        out->counts[state_of(DLIST_ENTRY(d, struct object, lru))]++;
    out->counts[LIST_SUCCESSES] =
        (int64_t)st.count - out->counts[LIST_SCHEDULED] - out->counts[LIST_DOWNLOADING];
    for (int i = 0; i < STORE_FAILURES_KEPT; i++)
        out->counts[LIST_FAILURES] += st.failures[i] != NULL;
}

/* Lock held. Keeps the best offset + limit objects of `state`: downloads come from the fetching
 * list, complete objects from the LRU list (every one of them: O(n log k)). */
static void pick_objects(struct heap *h, enum list_state state)
{
    struct dlist *list = state == LIST_SUCCESSES ? &st.lru : &st.fetching;
    for (struct dnode *d = list->head; d; d = d->next) {
        struct object *o = DLIST_ENTRY(d, struct object, lru);
        if (state_of(o) == state)
            heap_offer(h, o);
    }
}

/* Lock held. The LRU list is in last-use order already: a page by last use is a walk of
 * offset + limit entries from one end, however big the table. */
static int take_by_last_use(bool desc, int64_t offset, int limit, struct listing *out)
{
    struct dnode *d = desc ? st.lru.tail : st.lru.head;
    for (int64_t skip = 0; d && skip < offset; skip++)
        d = desc ? d->prev : d->next;
    for (; d && out->n < limit; d = desc ? d->prev : d->next)
        if (object_resource(DLIST_ENTRY(d, struct object, lru), &out->rows[out->n++]) < 0)
            return -1;
    return 0;
}

/* Lock held. Copies the rows out: the objects may go as soon as the lock drops. */
static int take_objects(struct heap *h, int64_t offset, struct listing *out)
{
    qsort_r(h->items, h->n, sizeof(*h->items), compare_objects, (void *)h->sort);
    for (size_t i = (size_t)offset; i < h->n; i++)
        if (object_resource(h->items[i], &out->rows[out->n++]) < 0)
            return -1;
    return 0;
}

/* Lock held. Failures are few (a ring): copy them all, sort, keep the page. */
static int take_failures(const struct sort *s, int64_t offset, int limit, struct listing *out)
{
    const struct resource *all[STORE_FAILURES_KEPT];
    int n = 0;
    for (int i = 0; i < STORE_FAILURES_KEPT; i++)
        if (st.failures[i])
            all[n++] = &st.failures[i]->res;
    qsort_r(all, (size_t)n, sizeof(all[0]), compare_resources, (void *)s);
    for (int i = (int)offset; i < n && out->n < limit; i++) {
        out->rows[out->n] = *all[i];
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
    pthread_mutex_lock(&st.lock);
    count_states(out);
    out->total = out->counts[state];
    if (state == LIST_FAILURES) {
        rc = take_failures(&sort, offset, limit, out);
    } else if (state == LIST_SUCCESSES && order == ORDER_LAST_USE) {
        rc = take_by_last_use(desc, offset, limit, out);
    } else {
        pick_objects(&h, state);
        rc = take_objects(&h, offset, out);
    }
    pthread_mutex_unlock(&st.lock);
out:
    free(h.items);
    if (rc < 0)
        listing_free(out);
    return rc;
}

void listing_free(struct listing *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->rows[i].url);
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

/* Lock held (or main at start). The ring's next slot, its old entry freed. */
static void ring_put(struct failure *f)
{
    failure_free(st.failures[st.failures_next]);
    st.failures[st.failures_next] = f;
    st.failures_next = (st.failures_next + 1) % STORE_FAILURES_KEPT;
}

void note_failure(const struct object *obj)
{
    struct failure *f = calloc(1, sizeof(*f));
    if (!f || object_resource(obj, &f->res) < 0) {
        free(f);
        return; /* only the listing loses it */
    }
    f->res.status = obj->error_status ? obj->error_status : 502;
    f->res.last_use = time(NULL);
    copy_string(f->res.error, sizeof(f->res.error), object_error(obj));
    ring_put(f);
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
    ring_put(f);
}

void load_failures(void)
{
    index_failures_load(STORE_FAILURES_KEPT, load_failure, NULL);
}

/* Fetch thread: failures not yet in the index are copied out under the lock, oldest first,
 * then written (the table keeps the last STORE_FAILURES_KEPT, like the ring). */
void save_failures(void)
{
    struct resource copy[STORE_FAILURES_KEPT];
    int n = 0;
    pthread_mutex_lock(&st.lock);
    for (int i = 0; i < STORE_FAILURES_KEPT; i++) {
        struct failure *f = st.failures[(st.failures_next + i) % STORE_FAILURES_KEPT];
        if (!f || f->saved)
            continue;
        copy[n] = f->res;
        if (!(copy[n].url = strdup(f->res.url)))
            continue; /* tried again next round */
        f->saved = true;
        n++;
    }
    pthread_mutex_unlock(&st.lock);
    for (int i = 0; i < n; i++) {
        const struct resource *r = &copy[i];
        index_failure_add(&(struct index_failure){r->key, r->url, r->status, r->error, r->length,
                                                  r->have, r->created, r->last_use, r->usage},
                          STORE_FAILURES_KEPT);
        free(copy[i].url);
    }
}

void free_failures(void)
{
    for (int i = 0; i < STORE_FAILURES_KEPT; i++) {
        failure_free(st.failures[i]);
        st.failures[i] = NULL;
    }
    st.failures_next = 0;
}
