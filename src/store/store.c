#include "index.h"
#include "log.h"
#include "persist.h"
#include "store_internal.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct store_state st = {.lock = PTHREAD_MUTEX_INITIALIZER};

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

void url_key(const char *url, char key[65])
{
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)url, strlen(url), d);
    format_sha256_hex(d, key);
}

/* DATA_DIR/objects/<first two hex digits>/<key>: 256 directories keep each one small. */
void key_path(const char *key, char *buf, size_t size)
{
    snprintf(buf, size, "%s/%.2s/%s", st.objdir, key, key);
}

void part_path(const char *key, char *buf, size_t size)
{
    snprintf(buf, size, "%s/%.2s/%s.part", st.objdir, key, key);
}

void object_path(const struct object *obj, char *buf, size_t size)
{
    key_path(obj->key, buf, size);
}

/* The key is already a uniform hash: its first 16 hex digits pick the bucket. */
struct object *table_find(const char *key)
{
    return table_get(&st.table, key);
}

int table_insert(struct object *obj)
{
    if (table_add(&st.table, obj) < 0)
        return -1;
    obj->in_table = true;
    return 0;
}

void prepared_put(struct prepared *p)
{
    if (p && atomic_fetch_sub(&p->refs, 1) == 1)
        p->destroy(p);
}

/* Lock held. An object leaving the table (or giving up its ring slot) answers no more hits. */
void detach_prepared(struct object *obj)
{
    if (!obj->prepared)
        return;
    st.prepared_ring[obj->prepared_slot] = NULL;
    prepared_put(obj->prepared);
    obj->prepared = NULL;
    obj->prepared_slot = -1;
}

void store_attach_prepared(const struct object_meta *meta, struct prepared *p)
{
    struct object *obj, *old;
    pthread_mutex_lock(&st.lock);
    obj = table_find(meta->key);
    /* the generation tells a re-downloaded object under the same key from the one `meta`
     * describes (`created`, in seconds, could not: two versions within one second) */
    if (obj && obj->state == OBJ_COMPLETE && !obj->prepared && obj->gen == meta->gen) {
        if ((old = st.prepared_ring[st.prepared_next]) != NULL)
            detach_prepared(old);
        st.prepared_ring[st.prepared_next] = obj;
        obj->prepared_slot = st.prepared_next;
        st.prepared_next = (st.prepared_next + 1) % STORE_PREPARED_MAX;
        atomic_fetch_add(&p->refs, 1);
        obj->prepared = p;
    }
    store_unlock();
}

/* Unlink from the table and give back the object's share of the quota. */
void table_remove(struct object *obj)
{
    assert(obj->in_table);
    detach_prepared(obj);
    twins_leave(obj);
    /* A failed object was on the fetching list: only complete ones are on the LRU list. */
    dlist_remove(obj->state == OBJ_COMPLETE ? &st.lru : &st.fetching, &obj->lru);
    st.uses -= obj->usage;
    dlist_remove(&st.dirty, &obj->dirty);
    table_del(&st.table, obj);
    obj->in_table = false;
    st.usage -= obj->reserved;
    obj->reserved = 0;
}

struct object *object_new(const char *url, const char *key)
{
    struct object *o = calloc(1, sizeof(*o));
    if (!o || !(o->url = strdup(url))) {
        free(o);
        return NULL;
    }
    static atomic_uint_least64_t generations;
    memcpy(o->key, key, 65);
    o->gen = atomic_fetch_add(&generations, 1) + 1; /* start-up loads from two threads */
    o->fd = -1;
    o->prepared_slot = -1;
    o->twin_next = o->twin_prev = o;
    o->length = -1;
    return o;
}

const char *object_error(const struct object *obj)
{
    return obj->error ? obj->error : "download failed";
}

const char *object_url(const struct object *obj)
{
    return obj->url;
}

int object_error_status(const struct object *obj)
{
    pthread_mutex_lock(&st.lock);
    int status = obj->error_status;
    store_unlock();
    return status;
}

void store_progress(struct object *obj, struct download_progress *out)
{
    pthread_mutex_lock(&st.lock);
    *out = (struct download_progress){obj->have, obj->length, obj->headers_ready};
    store_unlock();
}

/* One allocation for the strings, none when upstream said nothing of them: a million
 * objects load at start. Returns -1 when out of memory. */
int headers_pack(const struct upstream_headers *h, char **out)
{
    const char *parts[HEADERS_PACKED] = {h->content_type, h->content_encoding, h->filename,
                                         h->last_modified, h->etag};
    size_t len[HEADERS_PACKED], total = 0;
    char *p;
    for (int i = 0; i < HEADERS_PACKED; i++)
        total += (len[i] = parts[i] ? strlen(parts[i]) : 0) + 1;
    *out = NULL;
    if (total == HEADERS_PACKED)
        return 0;
    if (!(p = *out = malloc(total)))
        return -1;
    for (int i = 0; i < HEADERS_PACKED; i++) {
        memcpy(p, parts[i] ? parts[i] : "", len[i] + 1);
        p += len[i] + 1;
    }
    return 0;
}

void headers_unpack(const char *packed, struct upstream_headers *h)
{
    const char **parts[HEADERS_PACKED] = {&h->content_type, &h->content_encoding, &h->filename,
                                          &h->last_modified, &h->etag};
    for (int i = 0; i < HEADERS_PACKED; i++) {
        *parts[i] = packed ? packed : "";
        if (packed)
            packed += strlen(packed) + 1;
    }
}

void drop_stale(struct object *obj)
{
    struct object *s = obj->stale;
    if (!s)
        return;
    obj->stale = NULL;
    s->refs--;
    maybe_free(s);
}

void object_free(struct object *o)
{
    assert(!o->stale);
    if (o->fd >= 0)
        close(o->fd);
    free(o->error);
    free(o->headers);
    free(o->url);
    free(o->source);
    EVP_MD_CTX_free(o->prefix);
    free(o);
}

/* Called with the lock held whenever a reference goes away. Complete objects keep no descriptor
 * once nobody streams them: hits open their own. */
void maybe_free(struct object *obj)
{
    if (obj->refs > 0)
        return;
    if (obj->fd >= 0 && obj->state != OBJ_FETCHING) {
        close(obj->fd);
        obj->fd = -1;
    }
    if (!obj->in_table)
        object_free(obj);
}

void wake_all(struct object *obj)
{
    park_defer(&obj->waiters);
}

void store_unlock(void)
{
    pthread_mutex_unlock(&st.lock);
    park_flush();
}

/* Never `created + ttl`: an index written before TTLs were clamped may hold any ttl. */
static bool expired(const struct object *obj, int64_t now)
{
    return now - obj->created >= obj->ttl;
}

/* --- client side -------------------------------------------------------------------------- */

/* Whether a request with `auth` may act on `obj`: shorten its life, find it expired and replace
 * it. An unconfirmed URL may not: a forged signature with &ttl=1s would otherwise throw away a
 * private object (its refused download dropping the stored version). It gets the object as a
 * hit, which its caller confirms before serving, then looks up again as confirmed. */
static bool may_act(const struct object *obj, enum lookup_auth auth)
{
    return auth == AUTH_CONFIRMED || (auth == AUTH_UNSIGNED && !obj->signed_key);
}

static void note_use(struct object *obj, int64_t ttl, bool act, int64_t now)
{
    if (act && ttl > 0 && ttl < obj->ttl)
        obj->ttl = ttl;
    obj->usage++;
    st.uses++;
    obj->last_use = now;
    dlist_append(&st.dirty, &obj->dirty);
    if (obj->state == OBJ_COMPLETE)
        dlist_append(&st.lru, &obj->lru);
}

/* Truncating copy; on every hit, where snprintf's formatting showed in the profile. */
void copy_string(char *dst, size_t size, const char *src)
{
    size_t n = src ? strnlen(src, size - 1) : 0;
    memcpy(dst, src ? src : "", n);
    dst[n] = '\0';
}

/* The object may be freed once the lock drops: the copy must not point into it. */
void copy_meta(const struct object *obj, struct object_meta *meta)
{
    memcpy(meta->key, obj->key, sizeof(meta->key));
    meta->state = obj->state;
    meta->headers_ready = obj->headers_ready;
    meta->hit = obj->hit;
    meta->length = obj->length;
    meta->created = obj->created;
    meta->ttl = obj->ttl;
    meta->gen = obj->gen;
    meta->revalidation = obj->revalidation;
    meta->renewed = obj->renewed;
    meta->signed_key = obj->signed_key;
    struct upstream_headers h;
    headers_unpack(obj->headers, &h);
    copy_string(meta->content_type, sizeof(meta->content_type), h.content_type);
    copy_string(meta->content_encoding, sizeof(meta->content_encoding), h.content_encoding);
    copy_string(meta->filename, sizeof(meta->filename), h.filename);
    copy_string(meta->last_modified, sizeof(meta->last_modified), h.last_modified);
    copy_string(meta->etag, sizeof(meta->etag), h.etag);
    memcpy(meta->digest, obj->digest, sizeof(meta->digest));
    meta->error_status = obj->error_status;
    copy_string(meta->error, sizeof(meta->error), obj->error);
}

/* Lock not held; `obj` pinned (a reference: eviction and expiry pass it by). Open the hit's
 * file. Returns 0; -1 when the file is gone or has another length (the object is dropped and
 * fetched again); -2 when it cannot be opened for now (EMFILE, ENOMEM: a good object is not
 * thrown away for that), with the reason in meta->error. `verified` and `length` are read
 * unlocked: a complete object's length never changes, and `verified` only says whether to stat. */
static int open_hit_file(struct object *obj, bool verified, int *fd, struct object_meta *meta)
{
    char path[1200];
    struct stat sb;
    object_path(obj, path, sizeof(path));
    *fd = open(path, O_RDONLY | O_CLOEXEC);
    if (*fd < 0 && errno != ENOENT) {
        snprintf(meta->error, sizeof(meta->error), "cannot open the cached object: %s",
                 strerror(errno));
        return -2;
    }
    if (*fd < 0)
        return -1;
    if (!verified && (fstat(*fd, &sb) < 0 || sb.st_size != obj->length)) {
        log_error("store: %s: file missing or wrong length, fetching it again", obj->url);
        close(*fd);
        *fd = -1;
        return -1;
    }
    return 0;
}

/* Lock held; a complete, unexpired object. A hit: its prepared answer, or its file, opened with
 * the lock dropped (open() and the first hit's fstat() held up every other hit before). The
 * object is pinned meanwhile; if it left the table all the same (purged, or a lookup found it
 * expired), a new download may be replacing its file, so the descriptor is not trusted:
 * LOOKUP_RETRY. Otherwise LOOKUP_HIT, LOOKUP_UNAVAILABLE, or LOOKUP_MISS after dropping an
 * object whose file is gone. */
int take_hit(struct object *obj, int *fd, struct prepared **prep, struct object_meta *meta)
{
    if (prep && obj->prepared) {
        atomic_fetch_add(&obj->prepared->refs, 1);
        *prep = obj->prepared;
        copy_meta(obj, meta);
        return LOOKUP_HIT;
    }
    bool verified = obj->verified;
    obj->refs++;
    store_unlock();
    int opened = open_hit_file(obj, verified, fd, meta);
    pthread_mutex_lock(&st.lock);
    obj->refs--;
    bool gone = !obj->in_table;
    maybe_free(obj); /* frees it when gone; else closes a descriptor the last reader left */
    if (gone) {
        if (*fd >= 0)
            close(*fd);
        *fd = -1;
        return LOOKUP_RETRY;
    }
    if (opened == -2)
        return LOOKUP_UNAVAILABLE;
    if (opened == -1) {
        /* Out of the table; its file and row go when the new download replaces them. */
        table_remove(obj);
        maybe_free(obj);
        return LOOKUP_MISS;
    }
    obj->verified = true;
    copy_meta(obj, meta);
    obj->hit = true;
    return LOOKUP_HIT;
}

/* Lock held. A new FETCHING object in the table, or NULL when out of memory. */
struct object *create_fetching(const char *url, const char *key, int64_t ttl, int64_t now)
{
    struct object *obj = object_new(url, key);
    if (!obj)
        return NULL;
    if (table_insert(obj) < 0) {
        object_free(obj);
        return NULL;
    }
    obj->created = obj->last_use = now;
    obj->ttl = ttl;
    obj->usage = 1;
    st.uses++;
    dlist_append(&st.fetching, &obj->lru);
    obj->refs = 2; /* the caller and the fetch */
    return obj;
}

bool revalidable(const struct object *obj)
{
    struct upstream_headers h;
    headers_unpack(obj->headers, &h);
    return h.etag[0] || h.last_modified[0];
}

/* Lock held. The object for `key` after a lookup's use of it: a hit (*fd or *prep set), a
 * download to join, or a new one. */
static int lookup_locked(const char *url, const char *key, int64_t ttl, enum lookup_auth auth,
                         bool signed_url, int64_t now, struct object **out, int *fd,
                         struct prepared **prep, struct object_meta *meta)
{
    struct object *obj = table_find(key), *stale = NULL;
    int res = LOOKUP_MISS;
    *out = NULL;
    bool act = obj && may_act(obj, auth);
    if (obj)
        note_use(obj, ttl, act, now);
    if (obj && obj->state == OBJ_COMPLETE && act && expired(obj, now)) {
        /* Out of the table; its file and row go when the new download replaces them. One with
         * a validator is kept meanwhile: a 304 renews it (revalidation). */
        table_remove(obj);
        if (revalidable(obj)) {
            stale = obj;
            stale->refs++;
        }
        maybe_free(obj);
        obj = NULL;
    } else if (obj && obj->state == OBJ_COMPLETE) {
        if (obj->prepared && obj->prepared->until && now >= obj->prepared->until)
            detach_prepared(obj); /* outdated: the hit builds a new one */
        res = take_hit(obj, fd, prep, meta);
        if (res != LOOKUP_MISS)
            return res;
        obj = NULL;
    }
    if (obj) {
        obj->refs++;
        *out = obj;
        return LOOKUP_COALESCED;
    }
    *out = create_fetching(url, key, ttl, now);
    if (*out) {
        (*out)->stale = stale;
        (*out)->revalidation = stale != NULL;
        /* marked before the lock drops: no lookup may find a signed URL's download unmarked
         * (an unsigned request would act on it, a digest would take it for public) */
        (*out)->signed_key = signed_url || (stale && stale->signed_key);
    } else if (stale) {
        stale->refs--;
        maybe_free(stale);
    }
    return LOOKUP_MISS;
}

enum lookup_result store_lookup(const char *url, int64_t ttl, struct object **out, int *fd,
                                struct prepared **prep, struct object_meta *meta)
{
    return store_lookup_as(url, ttl, AUTH_CONFIRMED, false, out, fd, prep, meta);
}

enum lookup_result store_lookup_as(const char *url, int64_t ttl, enum lookup_auth auth,
                                   bool signed_url, struct object **out, int *fd,
                                   struct prepared **prep, struct object_meta *meta)
{
    char key[65];
    int64_t now = now_s();
    int res;

    *fd = -1;
    if (prep)
        *prep = NULL;
    url_key(url, key);
    pthread_mutex_lock(&st.lock);
    while ((res = lookup_locked(url, key, ttl, auth, signed_url, now, out, fd, prep, meta)) ==
           LOOKUP_RETRY)
        ; /* the object left the table while its file was opened: look again */
    store_unlock();
    return (enum lookup_result)res;
}

int store_purge(const char *url, int64_t *length)
{
    char key[65];
    struct object *obj;
    int rc = 0;

    url_key(url, key);
    pthread_mutex_lock(&st.lock);
    obj = table_find(key);
    if (obj && obj->state != OBJ_COMPLETE) {
        rc = -1;
    } else if (obj) {
        *length = obj->length;
        table_remove(obj);
        submit_remove(key, NULL); /* clients streaming it finish from their open file */
        maybe_free(obj);
        rc = 1;
    }
    store_unlock();
    return rc;
}

void store_release(struct object *obj)
{
    pthread_mutex_lock(&st.lock);
    obj->refs--;
    maybe_free(obj);
    store_unlock();
}

void store_unwait(struct object *obj, struct park *w)
{
    pthread_mutex_lock(&st.lock);
    park_remove(&obj->waiters, w);
    store_unlock();
}

bool store_wait(struct object *obj, bool complete, struct park *w)
{
    bool ready;
    pthread_mutex_lock(&st.lock);
    ready = (obj->headers_ready && !complete) || obj->state != OBJ_FETCHING;
    if (!ready)
        park_enqueue(&obj->waiters, w);
    else if (obj->state == OBJ_FETCHING)
        obj->committed = true; /* the caller now answers with this length and type */
    store_unlock();
    return ready;
}

/* Lock held. Where this reader's bytes stop for now: the last byte written is held back while
 * FETCHING, and a reader with a digest to check also waits for completion before its own last
 * byte. */
static int64_t readable_end(const struct object *obj, const struct read_terms *terms)
{
    int64_t end = obj->state == OBJ_COMPLETE ? obj->have : obj->have - 1;
    if (terms->expect && obj->state != OBJ_COMPLETE && terms->end >= 0 && end > terms->end - 1)
        end = terms->end - 1;
    return end;
}

ssize_t store_read(struct object *obj, int64_t off, char *buf, size_t max,
                   const struct read_terms *terms, struct park *w)
{
    int64_t readable;
    ssize_t n = 0;
    bool copy = false;

    pthread_mutex_lock(&st.lock);
    if (obj->state == OBJ_FAILED) {
        n = STORE_READ_FAILED;
    } else if (terms->expect && obj->state == OBJ_COMPLETE &&
               memcmp(obj->digest, terms->expect, 32) != 0) {
        n = STORE_READ_MISMATCH;
    } else if (off >= (readable = readable_end(obj, terms)) || max == 0 || obj->fd < 0) {
        /* (no descriptor yet: a download resumed after a restart, its file not reopened) */
        if (obj->state == OBJ_COMPLETE) {
            n = STORE_READ_END;
        } else {
            park_enqueue(&obj->waiters, w);
        }
    } else {
        assert(readable <= obj->have && off >= 0);
        if ((int64_t)max > readable - off)
            max = (size_t)(readable - off);
        /* Set before the lock drops: from now on a restart from zero would corrupt this reader. */
        obj->delivered = true;
        copy = true;
    }
    store_unlock();
    if (!copy)
        return n;
    /* Bytes below `have` never change, and our reference keeps obj->fd open. */
    n = pread(obj->fd, buf, max, off);
    return n > 0 ? n : STORE_READ_FAILED;
}

void store_snapshot(struct object *obj, struct object_meta *out)
{
    pthread_mutex_lock(&st.lock);
    copy_meta(obj, out);
    store_unlock();
}
