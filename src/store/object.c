/* The object's life in one place (object.h): the store's state and lock, the table of moves with
 * the action of each, and the helpers every other file of store/ shares (an object's strings
 * among them: its key, its packed headers). Modelled on Varnish's cache_obj.c: one owner of the
 * object's state, checked on entry. */
#include "store/object.h"
#include "store/media_types.h"
#include "store/spellings.h"
#include "base/clock.h"
#include "base/digest.h"
#include "base/parse.h"
#include "persist/index.h"
#include "log/log.h"
#include "persist/pace.h"
#include "persist/persist.h"
#include "stats/stats.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stddef.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct store_state st = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .objects = TABLE_KEYED(offsetof(struct object, tag) - offsetof(struct object, node), 4),
    .digests = TABLE_KEYED(offsetof(struct object, digest) - offsetof(struct object, dnode), 32),
    .objdir_fd = -1,
};

/* --- the lock and the threads -------------------------------------------------------------- */

/* Set by the holder after taking the lock, cleared before dropping it: only the holder reads its
 * own copy, so no other synchronisation is needed. */
static _Thread_local bool holding;

void store_lock(void)
{
    pthread_mutex_lock(&st.lock);
    holding = true;
}

void store_unlock(void)
{
    assert(holding);
    holding = false;
    pthread_mutex_unlock(&st.lock);
    park_flush();
}

int64_t store_lock_slice(void)
{
    store_lock();
    return monotonic_us();
}

int64_t store_unlock_held(int64_t since)
{
    int64_t held = monotonic_us() - since;
    store_unlock();
    return held;
}

void store_slice_pause(int64_t held, bool more)
{
    int64_t pause = held > STORE_SLICE_PAUSE_MIN_US ? held : STORE_SLICE_PAUSE_MIN_US;
    if (more)
        nanosleep(&(struct timespec){.tv_sec = pause / 1000000, .tv_nsec = pause % 1000000 * 1000},
                  NULL);
}

void store_unlock_slice(int64_t since, bool more)
{
    store_slice_pause(store_unlock_held(since), more);
}

bool store_locked(void)
{
    return holding;
}

/* Main, with no other thread to reach the store: before store_start and after store_close (the
 * persistence threads not running). What "lock held" functions also allow. */
static bool alone(void)
{
    return persist_owns_index() && !persist_on_thread();
}
#define ASSERT_LOCKED() assert(store_locked_or_alone())

bool store_locked_or_alone(void)
{
    return store_locked() || alone();
}

/* 0: nobody claimed the upstream role yet; 1: being claimed; 2: `upstream` holds it. */
static atomic_int upstream_claim;
static pthread_t upstream;

bool store_on_upstream(void)
{
    int expected = 0;
    if (atomic_compare_exchange_strong(&upstream_claim, &expected, 1)) {
        upstream = pthread_self();
        atomic_store(&upstream_claim, 2);
    }
    while (atomic_load(&upstream_claim) != 2)
        ; /* another thread is claiming it this instant */
    return pthread_equal(upstream, pthread_self());
}

void store_forget_upstream(void)
{
    atomic_store(&upstream_claim, 0);
}

/* --- the table of moves -------------------------------------------------------------------- */

/* What a move needs beyond the object. */
struct move_args {
    const uint8_t *digest; /* FINISH */
    int fd;                /* RENEW, KEEP_STALE: the revalidated version's file */
    int status;            /* FAIL, SET_ASIDE; KEEP_STALE: upstream's answer (0: none) */
    const char *reason;
    const char *why; /* REMOVE: why its file and row go (logged); NULL: they stay */
    bool keep_copy;  /* FAIL: the expired version it refreshed keeps its file and row */
    bool replaced;   /* FAIL: a version given up for a new one from another source (a parent
                        that failed): its readers are cut, but no download failed */
};

static void enter_lists(struct object *obj, const struct move_args *a);
static void finish(struct object *obj, const struct move_args *a);
static void renew(struct object *obj, const struct move_args *a);
static void restore(struct object *obj, const struct move_args *a);
static void fail(struct object *obj, const struct move_args *a);
static void set_aside(struct object *obj, const struct move_args *a);
static void remove_complete(struct object *obj, const struct move_args *a);
static void drop(struct object *obj, const struct move_args *a);

enum move_kind {
    MOVE_BEGIN,
    MOVE_LOAD,
    MOVE_FINISH,
    MOVE_RENEW,
    MOVE_FAIL,
    MOVE_SET_ASIDE,
    MOVE_REMOVE,
    MOVE_RESTORE,
    MOVE_DROP
};

/* Every move an object may make, and what it does. A move not in this table asserts. */
static const struct transition {
    enum object_state from, to;
    void (*action)(struct object *obj, const struct move_args *a);
} moves[] = {
    [MOVE_BEGIN] = {OBJ_NEW, OBJ_FETCHING, enter_lists},      /* a download, or a resumed one */
    [MOVE_LOAD] = {OBJ_NEW, OBJ_COMPLETE, enter_lists},       /* a row loaded at start */
    [MOVE_FINISH] = {OBJ_FETCHING, OBJ_COMPLETE, finish},     /* durable: the body is whole */
    [MOVE_RENEW] = {OBJ_FETCHING, OBJ_COMPLETE, renew},       /* upstream said 304 */
    [MOVE_FAIL] = {OBJ_FETCHING, OBJ_FAILED, fail},           /* its file and row go */
    [MOVE_SET_ASIDE] = {OBJ_FETCHING, OBJ_FAILED, set_aside}, /* arca stops: kept */
    [MOVE_REMOVE] = {OBJ_COMPLETE, OBJ_REMOVED, remove_complete},
    /* an expired version whose refresh failed upstream: back in the table as it was */
    [MOVE_RESTORE] = {OBJ_REMOVED, OBJ_COMPLETE, restore},
    [MOVE_DROP] = {OBJ_FETCHING, OBJ_REMOVED, drop}, /* store = no: its readers had it */
};

bool object_may_move(enum object_state from, enum object_state to)
{
    for (size_t i = 0; i < sizeof(moves) / sizeof(moves[0]); i++)
        if (moves[i].from == from && moves[i].to == to)
            return true;
    return false;
}

enum object_state object_view(const struct object *obj)
{
    assert(obj->state != OBJ_NEW);
    return obj->state == OBJ_REMOVED ? OBJ_COMPLETE : obj->state;
}

/* What holds of an object after every move (asserts only). */
static bool settled(const struct object *obj)
{
    switch (obj->state) {
    case OBJ_COMPLETE:
    case OBJ_REMOVED:
        return obj->length == object_have(obj) && obj->headers_ready &&
               object_reserved(obj) <= obj->length &&
               (obj->state == OBJ_COMPLETE || object_reserved(obj) == 0) &&
               (!live_part(obj) || live_part(obj)->reserved == 0);
    case OBJ_FAILED:
        return object_reserved(obj) == 0;
    case OBJ_NEW:
    case OBJ_FETCHING:
        break;
    }
    return obj->length < 0 || object_have(obj) <= obj->length;
}

/* Lock held (or main alone at start). The one writer of obj->state, with object_forget. */
static void move(struct object *obj, enum move_kind kind, const struct move_args *a)
{
    const struct transition *t = &moves[kind];
    CHECK_OBJ(obj);
    ASSERT_LOCKED();
    assert(obj->state == t->from);
    obj->state = t->to;
    t->action(obj, a);
    assert(settled(obj) && st.usage >= 0);
}

/* --- objects ------------------------------------------------------------------------------- */

const struct object_live object_at_rest = {.prepared_slot = -1, .max_size = -1};
const struct object_extra object_no_extra = {
    .stale_if_error = -1, .stale_while_revalidate = -1, .keep_if_error = -1, .keep_while = -1};

/* Every window 0, the terms' too: what is copied from it (a row, the usage journal, a new
 * version, a window set later over it) never reads the options' windows instead. */
const struct object_extra object_never_stale = {
    .stale_if_error = 0, .stale_while_revalidate = 0, .keep_if_error = 0, .keep_while = 0};

/* The parts' word (object.h: parts) written here alone. */
static void set_extra_part(struct object *obj, struct object_extra *e)
{
    struct object_live *l = live_part(obj);
    assert(((uintptr_t)e & 1) == 0);
    if (l)
        l->extra = e;
    else
        obj->parts = (uintptr_t)e;
}

/* `l` (new: no extra part of its own) becomes its live part, holding its extra part. */
static void set_live_part(struct object *obj, struct object_live *l)
{
    assert(!live_part(obj) && l && !l->extra && ((uintptr_t)l & 1) == 0);
    l->extra = extra_part(obj);
    obj->parts = (uintptr_t)l | 1;
}

/* Its live part taken off it (returned, its extra part left to the object), or NULL. */
static struct object_live *take_live_part(struct object *obj)
{
    struct object_live *l = live_part(obj);
    if (l) {
        obj->parts = (uintptr_t)l->extra;
        l->extra = NULL;
    }
    return l;
}

struct object_extra *object_extra(struct object *obj)
{
    CHECK_OBJ(obj);
    assert(obj->state == OBJ_NEW || store_locked_or_alone());
    struct object_extra *e = extra_part(obj) ? NULL : malloc(sizeof(*e));
    if (e) {
        *e = *object_extra_of(obj); /* never_stale's windows of 0 stay */
        set_extra_part(obj, e);
    }
    return extra_part(obj);
}

void object_add_uses(struct object *obj, int64_t n)
{
    assert(store_locked_or_alone());
    uint32_t was = obj->usage;
    obj->usage = uses32((int64_t)was + n);
    st.uses += (int64_t)obj->usage - was;
}

void object_set_fwd_status(struct object *obj, int status)
{
    assert(obj->state == OBJ_NEW || store_locked_or_alone());
    if (object_extra_of(obj)->fwd_status == status)
        return;
    struct object_extra *e = object_extra(obj);
    if (e)
        e->fwd_status = status;
}

/* The four windows; no extra part is made to hold four -1s, and out of memory the object fails
 * closed (never_stale). */
static void set_windows(struct object *obj, int32_t stale_if_error, int32_t stale_while,
                        int32_t keep_if_error, int32_t keep_while)
{
    assert(obj->state == OBJ_NEW || store_locked_or_alone());
    const struct object_extra *x = object_extra_of(obj);
    if (x->stale_if_error == stale_if_error && x->stale_while_revalidate == stale_while &&
        x->keep_if_error == keep_if_error && x->keep_while == keep_while)
        return; /* most objects: all four -1, and no extra part */
    struct object_extra *e = object_extra(obj);
    if (!e) {
        obj->never_stale = true;
        return;
    }
    e->stale_if_error = stale_if_error;
    e->stale_while_revalidate = stale_while;
    e->keep_if_error = keep_if_error;
    e->keep_while = keep_while;
}

void object_set_stale_windows(struct object *obj, int32_t if_error, int32_t while_revalidate)
{
    const struct object_extra *x = object_extra_of(obj);
    set_windows(obj, if_error, while_revalidate, x->keep_if_error, x->keep_while);
}

void object_set_keep_windows(struct object *obj, int32_t if_error, int32_t while_revalidate)
{
    const struct object_extra *x = object_extra_of(obj);
    set_windows(obj, x->stale_if_error, x->stale_while_revalidate, if_error, while_revalidate);
}

/* A pack is a byte saying which values it holds (bit i: the i-th of the six, in the order of
 * struct packing's parts; PACKED_BY_NUMBER: the content type as its number), then those values,
 * each a string and its NUL, but a content type by number: that number's one byte (a million
 * objects of a few types, each with no other value, took 7 bytes where this takes 2). */
#define PACKED_BY_NUMBER 0x40
/* A type starting with this byte is not kept (headers_kept_type): no media type starts with a
 * control byte, and in earlier packs it marked a number. */
#define TYPE_BY_NUMBER '\x01'

/* The values of `h` in their packed order, and its type's number (0: the type is in the pack). */
struct packing {
    const char *parts[HEADERS_PACKED];
    uint8_t type;
};

/* What `h` packs as, and the bytes it takes: 0 when upstream said nothing of them (no
 * allocation then). */
static size_t headers_plan(const struct upstream_headers *h, struct packing *pk)
{
    const char *all[HEADERS_PACKED] = {
        h->content_type, h->content_encoding, h->filename, h->last_modified, h->etag, h->redirects};
    size_t total = 1; /* the byte saying which */
    pk->parts[0] = headers_kept_type(all[0]);
    for (int i = 1; i < HEADERS_PACKED; i++)
        pk->parts[i] = all[i] ? all[i] : "";
    if ((pk->type = media_type_code(pk->parts[0])))
        total += 1;
    for (int i = pk->type ? 1 : 0; i < HEADERS_PACKED; i++)
        total += pk->parts[i][0] ? strlen(pk->parts[i]) + 1 : 0;
    return total == 1 ? 0 : total;
}

const char *headers_kept_type(const char *type)
{
    return !type || type[0] == TYPE_BY_NUMBER ? "" : type;
}

static void headers_pack_into(const struct packing *pk, char *p)
{
    uint8_t *which = (uint8_t *)p++;
    *which = 0;
    if (pk->type) {
        *which |= PACKED_BY_NUMBER | 1;
        *p++ = (char)pk->type;
    }
    for (int i = pk->type ? 1 : 0; i < HEADERS_PACKED; i++) {
        size_t len = strlen(pk->parts[i]) + 1;
        if (len == 1)
            continue;
        *which |= (uint8_t)(1u << i);
        memcpy(p, pk->parts[i], len);
        p += len;
    }
}

/* The object with its URL in its own allocation, and after it the headers `h` packed (NULL:
 * none yet, a download's: they come later, in an allocation of their own); no live part yet. */
/* A generation no other object of this process has (until they wrap), never 0. Each thread
 * takes them from the shared count GEN_BATCH at a time: the start's two loaders, taking one
 * each per row, fought over its cache line a million times. */
#define GEN_BATCH 1024
static uint32_t next_gen(void)
{
    static atomic_uint_least32_t generations;
    static _Thread_local uint32_t next, left;
    if (left == 0) {
        next = atomic_fetch_add(&generations, GEN_BATCH);
        left = GEN_BATCH;
    }
    left--;
    uint32_t gen = next++;
    return gen ? gen : next_gen();
}

static struct object *object_alloc(const char *url, const uint8_t key[32],
                                   const struct upstream_headers *h)
{
    /* the URL from its offset on: sizeof counts the padding after the flags, which it fills */
    struct packing pk;
    size_t len = strlen(url) + 1, packed = h ? headers_plan(h, &pk) : 0;
    size_t size = offsetof(struct object, url) + len + packed;
    struct spelling *spelt;
    struct object *o =
        spelling_entry(url, &spelt) < 0 ? NULL : calloc(1, size > sizeof(*o) ? size : sizeof(*o));
    if (!o) {
        spelling_entry_free(spelt);
        return NULL;
    }
    memcpy(o->tag, key, sizeof(o->tag));
    memcpy(o->url, url, len);
    if (packed) {
        o->headers = o->url + len;
        o->headers_inline = true;
        headers_pack_into(&pk, o->headers);
    }
    o->gen = next_gen();
    o->state = OBJ_NEW;
    o->fd = -1;
    o->length = -1;
    if (spelt && !object_extra(o)) { /* its entry is kept in its extra part */
        spelling_entry_free(spelt);
        object_free(o);
        return NULL;
    }
    if (spelt)
        extra_part(o)->spelling = spelt;
    return o;
}

static struct object_live *live_new(void)
{
    struct object_live *l = malloc(sizeof(*l));
    if (l) {
        *l = object_at_rest;
        l->max_size = st.max_object_size;
    }
    return l;
}

struct object *object_new(const char *url, const char *key)
{
    uint8_t bytes[32];
    bool hex = table_key_of_hex(key, bytes);
    assert(hex); /* keys are made by keys.c, never read from a client as they are */
    (void)hex;
    struct object *o = object_alloc(url, bytes, NULL);
    struct object_live *l = o ? live_new() : NULL;
    if (l)
        set_live_part(o, l);
    if (o && !l) {
        object_free(o); /* and its extra part: a spelt URL's entry */
        return NULL;
    }
    return o;
}

struct object *object_new_at_rest(const char *url, const uint8_t key[32],
                                  const struct upstream_headers *h)
{
    return object_alloc(url, key, h);
}

int object_give_live(struct object *obj)
{
    CHECK_OBJ(obj);
    assert(store_locked_or_alone() && obj->state == OBJ_COMPLETE);
    struct object_live *l = live_part(obj);
    if (!l && (l = live_new()))
        set_live_part(obj, l);
    if (!l)
        return -1;
    l->have = obj->length; /* complete: every byte is in its file */
    return 0;
}

/* Whether nothing in its live part is in use: all as object_at_rest has it. */
static bool live_idle(const struct object_live *l)
{
    return park_queue_empty(&l->waiters) && !l->prepared && !l->stale && !l->source && !l->prefix &&
           !l->error && !l->error_status;
}

void object_shed_live(struct object *obj)
{
    CHECK_OBJ(obj);
    assert(store_locked_or_alone());
    struct object_live *l = live_part(obj);
    if (l && obj->state == OBJ_COMPLETE && obj->refs == 0 && live_idle(l))
        free(take_live_part(obj));
}

/* Its live part's resources, and the part itself. */
static void live_free(struct object_live *l)
{
    if (!l)
        return;
    free(l->error);
    free(l->source);
    EVP_MD_CTX_free(l->prefix);
    free(l);
}

void object_free(struct object *o)
{
    CHECK_OBJ(o);
    assert(!object_stale(o) && !object_in_table(o) && !o->dirty);
    if (o->fd >= 0)
        close(o->fd);
    live_free(take_live_part(o));
    struct object_extra *x = extra_part(o);
    if (x) {
        free(x->parent_status);
        spelling_entry_free(x->spelling); /* out of the index: it left the table */
    }
    free(x);
    if (!o->headers_inline) /* inline ones go with the object */
        free(o->headers);
    free(o);
}

/* Complete objects keep no descriptor once nobody streams them: hits open their own; nor a
 * live part once nothing live is left. */
void maybe_free(struct object *obj)
{
    CHECK_OBJ(obj);
    ASSERT_LOCKED();
    if (obj->refs > 0)
        return;
    if (obj->fd >= 0 && obj->state != OBJ_FETCHING) {
        close(obj->fd);
        obj->fd = -1;
    }
    if (!object_in_table(obj))
        object_free(obj);
    else
        object_shed_live(obj);
}

void drop_stale(struct object *obj)
{
    ASSERT_LOCKED();
    struct object *s = object_stale(obj);
    if (!s)
        return;
    object_live(obj)->stale = NULL;
    s->refs--;
    maybe_free(s);
}

void wake_all(struct object *obj)
{
    assert(store_locked());
    if (live_part(obj))
        park_defer(&live_part(obj)->waiters);
}

void object_set_error(struct object *obj, int status, const char *reason)
{
    assert(store_locked());
    struct object_live *l = object_live(obj); /* a failure's: a download's */
    if (l->error_status)
        return;
    l->error_status = (int16_t)status;
    l->error = strdup(reason);
}

void object_refuse_size(struct object *obj, int status, const char *reason)
{
    if (!live_of(obj)->error_status)
        obj->too_large = true;
    object_set_error(obj, status, reason);
}

/* The table's node is the object's first member. */
static struct object *object_of(struct table_node *n)
{
    return (struct object *)n;
}

void object_key_bytes(const struct object *obj, uint8_t key[32])
{
    sha256_of(obj->url, strlen(obj->url), key);
}

char *object_key(const struct object *obj, char hex[65])
{
    url_key(obj->url, hex);
    return hex;
}

/* The entries with the key's tag are candidates (the table compares 4 bytes): the one whose URL
 * is `url` when the caller has it (a string compare: then `key` may be its first 4 bytes alone),
 * else the one whose URL hashes to `key`. */
static struct object *find_keyed(const uint8_t *key, const char *url)
{
    uint8_t its[32];
    for (struct table_node *n = table_find(&st.objects, key); n;
         n = table_find_next(&st.objects, n)) {
        struct object *o = object_of(n);
        if (url ? strcmp(o->url, url) == 0 : (object_key_bytes(o, its), !memcmp(its, key, 32)))
            return o;
    }
    return NULL;
}

struct object *object_find_url(const char *url, const char *key)
{
    ASSERT_LOCKED();
    uint8_t bytes[32];
    /* with the URL, which confirms each candidate, the table needs only the key's tag: its other
     * 56 digits are not parsed under the lock on every hit (the key is the URL's, url_key) */
    bool keyed = url ? table_tag_of_hex(key, bytes) : table_key_of_hex(key, bytes);
    struct object *o = keyed ? find_keyed(bytes, url) : NULL;
    if (o)
        return o;
    return st.loading && st.hooks.missing ? st.hooks.missing(key) : NULL;
}

struct object *object_find(const char *key)
{
    return object_find_url(NULL, key);
}

struct object *object_find_gen(const uint8_t tag[4], uint32_t gen)
{
    ASSERT_LOCKED();
    for (struct table_node *n = table_find(&st.objects, tag); n;
         n = table_find_next(&st.objects, n))
        if (object_of(n)->gen == gen)
            return object_of(n);
    return NULL;
}

struct object *object_find_same(const struct object *obj)
{
    ASSERT_LOCKED();
    return find_keyed(obj->tag, obj->url);
}

size_t object_slots(void)
{
    ASSERT_LOCKED();
    return table_slots(&st.objects);
}

struct object *object_slot(size_t i)
{
    ASSERT_LOCKED();
    struct table_node *n = table_slot(&st.objects, i);
    return n ? object_of(n) : NULL;
}

struct object *object_next(const struct object *obj)
{
    ASSERT_LOCKED();
    return obj->node.next ? object_of(obj->node.next) : NULL;
}

int objects_reserve(size_t at_least)
{
    return table_reserve(&st.objects, at_least);
}

void objects_free(void)
{
    table_free(&st.objects);
}

void detach_prepared(struct object *obj)
{
    ASSERT_LOCKED();
    struct object_live *l = live_part(obj);
    if (!l || !l->prepared)
        return;
    st.prepared_ring[l->prepared_slot] = NULL;
    prepared_put(l->prepared);
    l->prepared = NULL;
    l->prepared_slot = -1;
    if (obj->refs == 0)
        object_shed_live(obj);
}

/* Unlink from the table and its list (the LRU list when it was complete, else the fetching
 * one), and give back the object's share of the quota. */
static void leave_table(struct object *obj, struct dlist *list)
{
    assert(!object_in_table(obj));
    if (st.loading && st.hooks.touched) /* its row may outlive it a moment: never read back */
        st.hooks.touched(obj);
    detach_prepared(obj);
    if (st.hooks.left)
        st.hooks.left(obj);
    dlist_remove(list, &obj->lru);
    st.uses -= obj->usage;
    ring_forget(&st.dirty, &obj->dirty);
    table_del(&st.objects, &obj->node);
    struct object_extra *x = extra_part(obj);
    if (x && x->spelling)
        spellings_del(x->spelling);
    st.usage -= object_reserved(obj);
    object_set_reserved(obj, 0);
}

/* NEW -> FETCHING or COMPLETE: into the table, and its list. Loaded objects are linked onto the
 * LRU list in last-use order by store_load.c, so only downloads are linked here. */
static void enter_lists(struct object *obj, const struct move_args *a)
{
    (void)a;
    st.usage += object_reserved(obj);
    st.uses += obj->usage;
    if (obj->state == OBJ_FETCHING)
        dlist_append(&st.fetching, &obj->lru);
    else
        object_count_pin(obj, 1);
}

/* Into the table, and the spellings' index when its URL is spelt (both, or neither: a purge
 * of one URL must find every spelling of it): 0, or -1 out of memory. */
static int enter_table(struct object *obj)
{
    if (table_add(&st.objects, &obj->node) < 0)
        return -1;
    struct spelling *spelt = object_extra_of(obj)->spelling;
    if (spelt && spellings_add(spelt, obj) < 0) {
        table_del(&st.objects, &obj->node);
        return -1;
    }
    return 0;
}

int object_enter(struct object *obj, enum object_state to)
{
    CHECK_OBJ(obj);
    ASSERT_LOCKED();
    assert(to == OBJ_COMPLETE || to == OBJ_FETCHING);
    if (enter_table(obj) < 0)
        return -1;
    move(obj, to == OBJ_COMPLETE ? MOVE_LOAD : MOVE_BEGIN, NULL);
    if (st.loading && st.hooks.touched)
        st.hooks.touched(obj);
    return 0;
}

void object_set_reserved(struct object *obj, int64_t bytes)
{
    bool whole = obj->state == OBJ_COMPLETE || obj->state == OBJ_REMOVED;
    assert(bytes >= 0 && (!whole || bytes == 0 || bytes == obj->length));
    obj->holds_file = whole && bytes > 0;
    if (live_part(obj))
        live_part(obj)->reserved = whole ? 0 : bytes;
    else
        assert(whole || bytes == 0); /* a download has its live part */
}

void object_reserve(struct object *obj, int64_t bytes)
{
    CHECK_OBJ(obj);
    ASSERT_LOCKED();
    assert(bytes >= 0 && object_in_table(obj));
    st.usage += bytes - object_reserved(obj);
    object_set_reserved(obj, bytes);
    assert(st.usage >= 0);
}

void object_pass_reserve(struct object *obj, struct object *to)
{
    CHECK_OBJ(obj);
    CHECK_OBJ(to);
    ASSERT_LOCKED();
    assert(!to->holds_file || !obj->holds_file); /* one file, counted once */
    object_set_reserved(to, object_reserved(to) + object_reserved(obj));
    object_set_reserved(obj, 0);
}

void object_forget(struct object *obj)
{
    CHECK_OBJ(obj);
    assert(store_locked() && object_in_table(obj));
    obj->state = obj->state == OBJ_COMPLETE ? OBJ_REMOVED : OBJ_FAILED;
}

struct object *object_begin(const char *url, const char *key, int64_t ttl, int64_t now)
{
    assert(store_locked());
    struct object *obj = object_new(url, key);
    if (!obj)
        return NULL;
    obj->created = obj->last_use = wall32(now);
    obj->ttl = wall32(ttl);
    obj->usage = 1;
    if (object_enter(obj, OBJ_FETCHING) < 0) {
        object_free(obj);
        return NULL;
    }
    obj->refs = 2; /* the caller and the fetch */
    return obj;
}

/* Onto the LRU list and into the digest index (a twin's file then serves it too). */
static void join_complete(struct object *obj)
{
    obj->verified = obj->headers_ready = true;
    dlist_remove(&st.fetching, &obj->lru);
    dlist_append(object_lru(obj), &obj->lru);
    object_count_pin(obj, 1);
    if (st.hooks.joined)
        st.hooks.joined(obj);
    drop_stale(obj);
    wake_all(obj);
}

static void finish(struct object *obj, const struct move_args *a)
{
    if (object_stale(obj)) /* the expired version it refreshed: the new file takes its name */
        log_info("store: removed %s (replaced by a new version)", obj->url);
    memcpy(obj->digest, a->digest, 32);
    obj->length = object_have(obj);
    object_reserve(obj, object_have(obj));
    join_complete(obj);
}

/* A copy of s's headers for obj, whose own go: true; false when out of memory: obj keeps its
 * own (none: a 304 sets none), so it answers without the version's type and validators until
 * the next start reads them from its row again (said in the log). */
static bool take_headers(struct object *obj, const struct object *s)
{
    struct upstream_headers h;
    char *copy;
    headers_unpack(s->headers, &h);
    if (headers_pack(&h, &copy) < 0) {
        log_error("store: out of memory; %s answers without its headers", obj->url);
        return false;
    }
    obj->headers = copy;
    return true;
}

/* The download becomes the expired version it refreshed: its headers, bytes and file. */
static void take_stale_version(struct object *obj, const struct move_args *a)
{
    struct object *s = object_stale(obj);
    char *headers = obj->headers;
    if (!s->headers_inline) {
        obj->headers = s->headers;
        s->headers = headers;          /* freed with it */
    } else if (take_headers(obj, s)) { /* in s's own allocation: a copy */
        free(headers);
    }
    obj->length = object_live(obj)->have = s->length;
    memcpy(obj->digest, s->digest, 32);
    object_add_uses(obj, s->usage);
    obj->signed_key = obj->signed_key || s->signed_key;
    const struct object_extra *was = object_extra_of(s); /* the version's own word: a 304 */
    object_set_stale_windows(obj, was->stale_if_error, was->stale_while_revalidate); /* keeps it */
    object_reserve(obj, obj->length);
    if (obj->fd >= 0)
        close(obj->fd); /* the empty partial file's */
    obj->fd = a->fd;
}

/* ... renewed from the download's start (a 304). */
static void renew(struct object *obj, const struct move_args *a)
{
    take_stale_version(obj, a);
    obj->renewed = true;
    join_complete(obj);
}

/* REMOVED -> COMPLETE: the expired version a failed refresh let go of, in the table again as
 * it was (object_restore has put it in the table): its list, quota and digest index back, the
 * refresh's failure noted (refresh_held). */
static void restore(struct object *obj, const struct move_args *a)
{
    st.uses += obj->usage;
    dlist_append(object_lru(obj), &obj->lru);
    object_count_pin(obj, 1);
    object_reserve(obj, obj->length);
    struct object_extra *e = object_extra(obj); /* out of memory: a refresh is tried again */
    if (e) {
        e->refresh_failed = wall32(time(NULL));
        e->fwd_status = a->status;
    }
    if (st.hooks.joined)
        st.hooks.joined(obj);
}

/* Out of the table, waiters woken: the next request for its URL starts afresh. */
static void leave_failed(struct object *obj)
{
    leave_table(obj, &st.fetching);
    drop_stale(obj);
    wake_all(obj);
}

/* A refresh failed with the origin's verdict on the object (a 404, a 501, a status it did not
 * retry): the expired copy it refreshed goes with its part file, and the log says why, as for
 * every object taken off the disk. */
static void remove_refreshed(struct object *obj, const char *reason)
{
    char why[REMOVE_WHY_SIZE];
    snprintf(why, sizeof(why), "refresh failed: %s", reason ? reason : "unknown");
    submit_remove(obj, why, false);
}

static void fail(struct object *obj, const struct move_args *a)
{
    object_set_error(obj, a->status, a->reason); /* first: the failures ring keeps it */
    /* counted before the wake-up, so a client told of the failure finds it in the status; one
     * that found its host held down (store_fail_held) was never tried: not a failed download */
    if (!live_of(obj)->retry_after && !a->replaced)
        atomic_fetch_add(&stats.downloads_failed, 1);
    if (st.hooks.failed && !a->replaced)
        st.hooks.failed(obj);
    bool verdict = object_stale(obj) && !a->keep_copy; /* leave_failed lets go of the copy */
    leave_failed(obj);
    /* Before the persistence thread began its file there is neither file nor row. Submitted
     * under the lock: a new version's file and row, begun after, come after their removal. A
     * refresh that keeps the expired copy removes its own part file only: the file under the
     * key and the row are that copy's (a refresh leaves them as they are). */
    if (obj->on_disk && verdict)
        remove_refreshed(obj, a->reason);
    else if (obj->on_disk)
        submit_remove(obj, NULL, a->keep_copy);
}

/* A refresh's expired copy, kept with a reference until store_close: its row stays the index's
 * complete one. Out of memory it goes as before: the image then lacks its row, and index_close
 * leaves none. */
static void keep_aside(struct object *s)
{
    if (!s || s->purged)
        return; /* a purged copy's row is gone */
    if (st.naside == st.aside_cap) {
        size_t cap = st.aside_cap ? st.aside_cap * 2 : 16;
        struct object **v = realloc(st.aside, cap * sizeof(*v));
        if (!v)
            return;
        st.aside = v;
        st.aside_cap = cap;
    }
    s->refs++;
    st.aside[st.naside++] = s;
}

void object_aside_release(void)
{
    assert(store_locked_or_alone());
    for (size_t i = 0; i < st.naside; i++) {
        st.aside[i]->refs--;
        maybe_free(st.aside[i]);
    }
    free(st.aside);
    st.aside = NULL;
    st.naside = st.aside_cap = 0;
    st.set_aside = false;
}

bool object_set_aside_begun(void)
{
    ASSERT_LOCKED();
    return st.set_aside;
}

/* arca stops: the file and row stay for the next start to continue (store_set_aside); a
 * refresh's expired copy, whose row a refresh never replaces, is kept for the image of the
 * rows (keep_aside). */
static void set_aside(struct object *obj, const struct move_args *a)
{
    st.set_aside = true;
    object_set_error(obj, a->status, a->reason);
    keep_aside(object_stale(obj));
    leave_failed(obj);
}

static void remove_complete(struct object *obj, const struct move_args *a)
{
    object_count_pin(obj, -1);
    leave_table(obj, object_lru(obj));
    if (a->why)
        submit_remove(obj, a->why, false);
}

/* FETCHING -> REMOVED: whole for the readers streaming it from its open file, but never a hit,
 * a twin or a stale copy; the quota it held is given back. Without a row of its own (store_write.c
 * makes none for it) the removal takes the part file, and the row and file of the version it
 * replaced (removed without them: object_remove(obj, NULL)), if any. */
static void drop(struct object *obj, const struct move_args *a)
{
    memcpy(obj->digest, a->digest, 32);
    obj->length = object_have(obj);
    obj->verified = obj->headers_ready = true;
    leave_table(obj, &st.fetching);
    drop_stale(obj);
    wake_all(obj);
    if (obj->on_disk)
        submit_remove(obj, a->why, false);
}

void store_release(struct object *obj)
{
    CHECK_OBJ(obj);
    store_lock();
    obj->refs--;
    maybe_free(obj);
    store_unlock();
}

bool object_complete(struct object *obj, const uint8_t digest[32])
{
    CHECK_OBJ(obj);
    assert(store_locked());
    if (obj->state != OBJ_FETCHING)
        return false; /* failed meanwhile (shutdown) */
    move(obj, MOVE_FINISH, &(struct move_args){.digest = digest});
    return true;
}

bool object_renew(struct object *obj, int fd)
{
    CHECK_OBJ(obj);
    assert(store_locked());
    if (obj->state != OBJ_FETCHING)
        return false;
    move(obj, MOVE_RENEW, &(struct move_args){.fd = fd});
    return true;
}

bool object_drop(struct object *obj, const uint8_t digest[32], const char *why)
{
    CHECK_OBJ(obj);
    assert(store_locked());
    if (obj->state != OBJ_FETCHING)
        return false;
    move(obj, MOVE_DROP, &(struct move_args){.digest = digest, .why = why});
    maybe_free(obj);
    return true;
}

bool object_fail_keeping_copy(struct object *obj, int status, const char *reason)
{
    CHECK_OBJ(obj);
    assert(store_locked());
    if (obj->state != OBJ_FETCHING)
        return false;
    move(obj, MOVE_FAIL,
         &(struct move_args){.status = status, .reason = reason, .keep_copy = true});
    return true;
}

bool object_replace(struct object *obj, bool keep_copy, const char *reason)
{
    CHECK_OBJ(obj);
    assert(store_locked());
    if (obj->state != OBJ_FETCHING)
        return false;
    move(obj, MOVE_FAIL,
         &(struct move_args){
             .status = 502, .reason = reason, .keep_copy = keep_copy, .replaced = true});
    return true;
}

bool object_restore(struct object *obj, int fwd_status)
{
    CHECK_OBJ(obj);
    assert(store_locked() && obj->state == OBJ_REMOVED && !object_find_same(obj));
    if (enter_table(obj) < 0)
        return false;
    move(obj, MOVE_RESTORE, &(struct move_args){.status = fwd_status});
    return true;
}

/* FETCHING -> FAILED by `how` (MOVE_FAIL or MOVE_SET_ASIDE): false when it left FETCHING. */
static bool leave_fetching(struct object *obj, enum move_kind how, int status, const char *reason)
{
    CHECK_OBJ(obj);
    assert(store_locked());
    if (obj->state != OBJ_FETCHING)
        return false;
    move(obj, how, &(struct move_args){.status = status, .reason = reason});
    return true;
}

bool object_fail(struct object *obj, int status, const char *reason)
{
    return leave_fetching(obj, MOVE_FAIL, status, reason);
}

bool object_set_aside(struct object *obj, int status, const char *reason)
{
    return leave_fetching(obj, MOVE_SET_ASIDE, status, reason);
}

void object_remove(struct object *obj, const char *why)
{
    CHECK_OBJ(obj);
    assert(store_locked());
    move(obj, MOVE_REMOVE, &(struct move_args){.why = why});
    maybe_free(obj);
}

/* --- what others ask of an object ---------------------------------------------------------- */

const char *object_error(const struct object *obj)
{
    CHECK_OBJ(obj);
    return live_of(obj)->error ? live_of(obj)->error : "download failed";
}

const char *object_url(const struct object *obj)
{
    CHECK_OBJ(obj);
    return obj->url;
}

uint32_t object_gen(const struct object *obj)
{
    CHECK_OBJ(obj);
    return obj->gen;
}

int object_error_status(const struct object *obj)
{
    CHECK_OBJ(obj);
    store_lock();
    int status = live_of(obj)->error_status;
    store_unlock();
    return status;
}

bool revalidable(const struct object *obj)
{
    ASSERT_LOCKED();
    struct upstream_headers h;
    headers_unpack(obj->headers, &h);
    return h.etag[0] || h.last_modified[0];
}

/* --- shared helpers ------------------------------------------------------------------------ */

/* DATA_DIR/objects/<first two hex digits>/<key>: 256 directories keep each one small (each is
 * made with its first file: store_write.c). */
void key_path(const char *key, char *buf, size_t size)
{
    snprintf(buf, size, "%s/%.2s/%s", st.objdir, key, key);
}

void part_path(const char *key, char *buf, size_t size)
{
    snprintf(buf, size, "%s/%.2s/%s.part", st.objdir, key, key);
}

/* The directory entry must be durable too, or a crash could lose a file the index calls
 * complete: -1 when it cannot be made so. */
int sync_dir_of(const char *path)
{
    char dir[1200];
    int fd, rc;
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        return -1;
    *slash = '\0';
    if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        return -1;
    rc = fsync(fd);
    close(fd);
    return rc;
}

/* DATA_DIR/objects/XX, made at the first file whose key begins with XX: a new data dir starts
 * without the 256 (making them was most of a small test's start-up). Its name in objects/ is
 * synced as a complete file's name is in XX: -1 when it cannot be made so. */
int make_key_dir(const char *file)
{
    char dir[1200];
    snprintf(dir, sizeof(dir), "%s", file);
    char *slash = strrchr(dir, '/');
    if (!slash)
        return -1;
    *slash = '\0';
    if (mkdir(dir, 0755) < 0)
        return errno == EEXIST ? 0 : -1;
    if (sync_dir_of(dir) == 0)
        return 0;
    /* Not left behind unsynced: the next file would find it and never sync its name. */
    rmdir(dir);
    return -1;
}

void object_path(const struct object *obj, char *buf, size_t size)
{
    CHECK_OBJ(obj);
    key_path(OBJECT_KEY(obj), buf, size);
}

/* `dir` AT_FDCWD for a whole path. */
static int open_reading(int dir, const char *path)
{
    int fd = openat(dir, path, O_RDONLY | O_CLOEXEC | O_NOATIME);
    if (fd < 0 && errno == EPERM) /* O_NOATIME on a file arca does not own */
        fd = openat(dir, path, O_RDONLY | O_CLOEXEC);
    return fd;
}

int object_open_file(const char *path)
{
    return open_reading(AT_FDCWD, path);
}

int key_open(const char *key)
{
    char rel[2 + 1 + 64 + 1], path[1200];
    if (st.objdir_fd < 0 || strnlen(key, 65) != 64) {
        key_path(key, path, sizeof(path));
        return open_reading(AT_FDCWD, path);
    }
    /* key_path's name below the objects directory: the kernel walks two names, not the data
     * dir's whole path (link_path_walk: 5 % of a hit's system time at a million objects) */
    memcpy(rel, key, 2);
    rel[2] = '/';
    memcpy(rel + 3, key, 65);
    return open_reading(st.objdir_fd, rel);
}

int key_rename(const char *from, const char *path)
{
    atomic_fetch_add(&st.renames_begun, 1);
    int rc = rename(from, path);
    atomic_fetch_add(&st.renames_done, 1);
    return rc;
}

bool key_renames_quiet(uint64_t *mark)
{
    ASSERT_LOCKED();
    *mark = atomic_load(&st.renames_begun);
    return atomic_load(&st.renames_done) == *mark;
}

bool key_renamed_since(uint64_t mark)
{
    return atomic_load(&st.renames_begun) != mark;
}

char *object_read_file(int fd, const char *path, int64_t length)
{
    char *buf = malloc(length > 0 ? (size_t)length : 1);
    if (fd < 0 && buf)
        fd = object_open_file(path);
    ssize_t got = fd >= 0 && buf && length > 0 ? pread(fd, buf, (size_t)length, 0) : 0;
    if (fd >= 0)
        close(fd);
    if (!buf || fd < 0 || got != length) {
        free(buf);
        return NULL;
    }
    return buf;
}

void prepared_put(struct prepared *p)
{
    if (p && atomic_fetch_sub(&p->refs, 1) == 1)
        p->destroy(p);
}

/* A file and row to remove, and the URL to log with why (NULL: a failed download, already
 * logged). */
struct remove_job {
    struct persist_job job;
    char key[65]; /* made from url by run_remove */
    char *url;
    bool say;                  /* logged as removed */
    char why[REMOVE_WHY_SIZE]; /* expired, evicted for room, purged, refresh failed: ... */
    bool part_only;            /* a refresh's part file; the key's file and row stay */
    struct remove_job *after;  /* the next one whose files wait for the commit */
};

/* The persistence thread's: removals whose rows the open transaction deletes (removals_begin),
 * oldest first. Their files go once it is committed: a crash before leaves files without rows,
 * which the start's orphan sweep removes, never a row without its file (an object that would
 * come back at the next start, counted against the quota until its first hit). */
static struct {
    bool open;
    struct remove_job *head, **tail;
} committing = {.tail = &committing.head};

/* Removals submitted whose files are not unlinked yet (submit_remove, remove_files): taken by
 * the submitters under the store's lock, made on the persistence thread. */
static atomic_size_t removals_owed;

size_t object_removals_owed(void)
{
    return atomic_load(&removals_owed);
}

/* Its files unlinked at the removals' pace (pace.h; streaming readers keep the inode), said in
 * the log, the job freed. */
static void remove_files(struct remove_job *r)
{
    char path[1200];
    if (!r->part_only) {
        key_path(r->key, path, sizeof(path));
        pace_unlink(path);
    }
    part_path(r->key, path, sizeof(path));
    pace_unlink(path);
    if (r->say && !strcmp(r->why, OBJECT_STREAMED_ONLY))
        log_debug("store: removed %s (%s)", r->url, r->why);
    else if (r->say)
        log_info("store: removed %s (%s)", r->url, r->why);
    free(r->url);
    free(r);
    atomic_fetch_sub(&removals_owed, 1);
}

static void run_remove(struct persist_job *job)
{
    assert(persist_owns_index());
    struct remove_job *r = (struct remove_job *)job;
    url_key(r->url, r->key); /* object_key, off the lock */
    if (!r->part_only)
        index_delete(r->key);
    if (!committing.open) { /* run alone (no persistence thread): its row is gone already */
        remove_files(r);
        return;
    }
    r->after = NULL;
    *committing.tail = r;
    committing.tail = &r->after;
}

/* Removals one after the other share a transaction (persist.h): an eviction or expiry of
 * thousands of objects commits once a thousand, not once an object. */
static void removals_begin(void)
{
    assert(!committing.open && !committing.head);
    index_begin();
    committing.open = true;
}

/* The files go even when the commit failed (rolled back): what was removed is never served
 * again, and its rows, without files, are dropped at their first hit. */
static void removals_end(void)
{
    index_commit();
    committing.open = false;
    for (struct remove_job *r = committing.head, *next; r; r = next) {
        next = r->after;
        remove_files(r);
    }
    committing.head = NULL;
    committing.tail = &committing.head;
}

static const struct persist_group removals = {
    .begin = removals_begin, .end = removals_end, .background = true};

/* Out of memory, file and row stay until the object is loaded again at the next start. */
void submit_remove(const struct object *obj, const char *why, bool part_only)
{
    ASSERT_LOCKED(); /* the removal must be ordered before a new version's file and row */
    struct remove_job *r = calloc(1, sizeof(*r));
    if (!r || !(r->url = strdup(obj->url))) {
        free(r);
        log_error("store: out of memory; %s stays on disk until the next start", obj->url);
        return;
    }
    r->job.run = run_remove;
    r->say = why != NULL;
    copy_string(r->why, sizeof(r->why), why ? why : "");
    r->part_only = part_only;
    atomic_fetch_add(&removals_owed, 1); /* before: with no persistence thread, it runs here */
    persist_submit_grouped(&r->job, &removals);
}

/* --- an object's strings ------------------------------------------------------------------- */

/* The key a thread computed last, for the same URL asked again: a SHA-256 through OpenSSL 3's
 * one-shot call is a large share of a warm hit's work. */
static _Thread_local struct {
    size_t len; /* 0: none */
    char url[2048];
    char key[65];
} last_key;

void url_key(const char *url, char key[65])
{
    unsigned char d[SHA256_DIGEST_LENGTH];
    size_t len = strlen(url);
    if (len && len == last_key.len && !memcmp(url, last_key.url, len)) {
        memcpy(key, last_key.key, 65);
        return;
    }
    sha256_of(url, len, d);
    format_sha256_hex(d, key);
    last_key.len = len < sizeof(last_key.url) ? len : 0;
    if (last_key.len) {
        memcpy(last_key.url, url, len);
        memcpy(last_key.key, key, 65);
    }
}

bool url_key_bytes_is(const char *url, const uint8_t key[32])
{
    uint8_t made[32];
    sha256_of(url, strlen(url), made);
    return !memcmp(key, made, sizeof(made));
}

bool url_key_is(const char *url, const char *key)
{
    uint8_t its[32];
    return table_key_of_hex(key, its) && url_key_bytes_is(url, its);
}

/* One allocation for the strings, none when upstream said nothing of them. Returns -1 when out
 * of memory. */
int headers_pack(const struct upstream_headers *h, char **out)
{
    struct packing pk;
    size_t total = headers_plan(h, &pk);
    *out = NULL;
    if (total == 0)
        return 0;
    if (!(*out = malloc(total)))
        return -1;
    headers_pack_into(&pk, *out);
    return 0;
}

void headers_unpack(const char *packed, struct upstream_headers *h)
{
    const char **parts[HEADERS_PACKED] = {&h->content_type, &h->content_encoding,
                                          &h->filename,     &h->last_modified,
                                          &h->etag,         &h->redirects};
    uint8_t which = packed ? (uint8_t)*packed++ : 0;
    for (int i = 0; i < HEADERS_PACKED; i++) {
        *parts[i] = "";
        if (!(which & (1u << i)))
            continue;
        if (i == 0 && (which & PACKED_BY_NUMBER)) {
            *parts[0] = media_type_of((uint8_t)*packed++);
            continue;
        }
        *parts[i] = packed;
        packed += strlen(packed) + 1;
    }
}

/* Truncating copy; on every hit, where snprintf's formatting showed in the profile. */
void copy_string(char *dst, size_t size, const char *src)
{
    size_t n = src ? strnlen(src, size - 1) : 0;
    memcpy(dst, src ? src : "", n);
    dst[n] = '\0';
}
