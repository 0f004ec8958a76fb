/* Identical objects (README, "Same file, other URL"): complete objects are indexed by digest, so
 * that a request with &sha256= for a URL not cached can be answered from another URL's object
 * (after upstream has confirmed that URL: http_fetch.c), and objects with the same digest share
 * one file: one inode under each name, counted once against the quota.
 *
 * A ring of twins (twin_next/twin_prev, an object alone points at itself) links the complete
 * objects sharing a digest. One of them carries the file's `reserved` bytes; when it leaves the
 * table they pass to a twin still there, so the quota counts the file while any name holds it.
 * Everything here runs with st.lock held, except the persistence thread's jobs. */
#include "index.h"
#include "log.h"
#include "persist.h"
#include "stats.h"
#include "store_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static size_t digest_slot(const uint8_t d[32], size_t n)
{
    uint64_t h;
    memcpy(&h, d, sizeof(h)); /* a sha256 is uniform already */
    return (size_t)(h & (n - 1));
}

/* Doubling rehashes every object at once; the index is sized at start for what was loaded, so
 * this happens only as the cache grows past it. */
static int digests_grow(void)
{
    size_t n = st.n_digests ? st.n_digests * 2 : 1024;
    struct object **b = calloc(n, sizeof(*b));
    if (!b)
        return -1;
    for (size_t i = 0; i < st.n_digests; i++) {
        for (struct object *o = st.digests[i], *next; o; o = next) {
            next = o->dnext;
            size_t s = digest_slot(o->digest, n);
            o->dnext = b[s];
            b[s] = o;
        }
    }
    free(st.digests);
    st.digests = b;
    st.n_digests = n;
    return 0;
}

int digests_reserve(size_t at_least)
{
    while (st.n_digests < at_least)
        if (digests_grow() < 0)
            return -1;
    return 0;
}

static struct object *digest_find(const uint8_t d[32], const struct object * not )
{
    if (!st.n_digests)
        return NULL;
    for (struct object *o = st.digests[digest_slot(d, st.n_digests)]; o; o = o->dnext)
        if (o != not &&memcmp(o->digest, d, 32) == 0)
            return o;
    return NULL;
}

/* A complete object in the table joins the index, and the ring of its twins if it has any: its
 * bytes are then the twins' file (or will be, once the persistence thread has linked it). */
struct object *twins_join(struct object *obj)
{
    struct object *twin;
    if (obj->in_digests || (st.digest_count >= st.n_digests && digests_grow() < 0))
        return NULL; /* out of memory: it stays out of the index, a file of its own */
    size_t s = digest_slot(obj->digest, st.n_digests);
    twin = digest_find(obj->digest, obj);
    obj->dnext = st.digests[s];
    st.digests[s] = obj;
    obj->in_digests = true;
    st.digest_count++;
    if (!twin || twin->length != obj->length)
        return NULL;
    obj->twin_next = twin->twin_next;
    obj->twin_prev = twin;
    twin->twin_next->twin_prev = obj;
    twin->twin_next = obj;
    st.usage -= obj->reserved; /* the file is counted once, by the twin holding it */
    obj->reserved = 0;
    return twin;
}

void twins_leave(struct object *obj)
{
    if (obj->in_digests) {
        struct object **p = &st.digests[digest_slot(obj->digest, st.n_digests)];
        while (*p != obj)
            p = &(*p)->dnext;
        *p = obj->dnext;
        obj->in_digests = false;
        st.digest_count--;
    }
    if (obj->twin_next != obj) {
        /* the file stays under the twins' names: so does its share of the quota */
        obj->twin_next->reserved += obj->reserved;
        obj->reserved = 0;
        obj->twin_next->twin_prev = obj->twin_prev;
        obj->twin_prev->twin_next = obj->twin_next;
        obj->twin_next = obj->twin_prev = obj;
    }
}

/* --- one file for twins -------------------------------------------------------------------- */

struct link_job {
    struct persist_job job;
    char from[65], to[65]; /* keys */
};

/* Persistence thread: `to`'s name becomes a link to `from`'s file (same bytes: same digest). A
 * `from` already gone leaves `to` its own file; its twin's share of the quota passed to it. */
static void run_link(struct persist_job *job)
{
    struct link_job *l = (struct link_job *)job;
    char from[1200], to[1200], tmp[1300];
    key_path(l->from, from, sizeof(from));
    key_path(l->to, to, sizeof(to));
    snprintf(tmp, sizeof(tmp), "%s.link", to);
    unlink(tmp);
    if (link(from, tmp) == 0 && rename(tmp, to) < 0)
        unlink(tmp);
    free(l);
}

void twins_share_file(const struct object *obj, const struct object *twin)
{
    struct link_job *l = malloc(sizeof(*l));
    if (!l)
        return; /* two files then: correct, only bigger */
    l->job.run = run_link;
    memcpy(l->from, twin->key, 65);
    memcpy(l->to, obj->key, 65);
    persist_submit(&l->job);
}

/* --- a digest hit: an object filled from its twin's file ----------------------------------- */

struct fill_job {
    struct persist_job job;
    struct object *obj; /* a reference of its own */
    char donor[65];
    char *headers; /* the donor's, packed */
    int64_t length;
    uint8_t digest[32];
};

/* Persistence thread: the new object's partial file is a link to the donor's, then it is made
 * durable and complete as any download (store_fill_done). */
static void run_fill(struct persist_job *job)
{
    struct fill_job *f = (struct fill_job *)job;
    char from[1200], part[1200];
    int fd = -1;
    key_path(f->donor, from, sizeof(from));
    part_path(f->obj->key, part, sizeof(part));
    unlink(part);
    if (index_mark_fetching(f->obj->key, f->obj->url, f->obj->url) < 0 || link(from, part) < 0 ||
        (fd = open(part, O_RDWR | O_CLOEXEC)) < 0) {
        store_fail(f->obj, 503, "the identical cached file went away meanwhile; ask again");
    } else {
        pthread_mutex_lock(&st.lock);
        bool live = f->obj->state == OBJ_FETCHING;
        f->obj->on_disk = true;
        if (live) {
            f->obj->fd = fd;
            f->obj->headers = f->headers;
            f->headers = NULL;
            f->obj->length = f->obj->have = f->length;
            f->obj->headers_ready = true;
            wake_all(f->obj);
        }
        pthread_mutex_unlock(&st.lock);
        if (live)
            store_fill_done(f->obj, f->digest);
        else
            close(fd);
    }
    free(f->headers);
    store_release(f->obj);
    free(f);
}

/* Lock held. A complete object with digest `want`, under another key. An expired one will do:
 * its ttl is about what its own URL serves now, while these bytes are vouched for by the digest
 * and the URL asked for is confirmed upstream. */
static struct object *live_twin(const uint8_t want[32])
{
    if (!st.n_digests)
        return NULL;
    for (struct object *o = st.digests[digest_slot(want, st.n_digests)]; o; o = o->dnext)
        if (memcmp(o->digest, want, 32) == 0 && o->state == OBJ_COMPLETE && o->in_table)
            return o;
    return NULL;
}

enum lookup_result store_find_twin(const char *url, int64_t ttl, const uint8_t want[32],
                                   const struct twin_share *share, struct object **out,
                                   int64_t *twin_length)
{
    int64_t now = (int64_t)time(NULL);
    char key[65];
    struct fill_job *f = share ? calloc(1, sizeof(*f)) : NULL;
    enum lookup_result res = LOOKUP_MISS;
    struct upstream_headers h;
    struct object *donor, *obj;
    *out = NULL;
    url_key(url, key);
    pthread_mutex_lock(&st.lock);
    if (table_find(key) || !(donor = live_twin(want))) {
        pthread_mutex_unlock(&st.lock);
        free(f);
        return LOOKUP_MISS; /* the URL's own object (a hit, a download, a revalidation), or no
                               twin: looked up as usual */
    }
    *twin_length = donor->length;
    if (!share)
        res = LOOKUP_DIGEST;
    if (share && f && (obj = create_fetching(url, key, ttl, now))) {
        headers_unpack(donor->headers, &h);
        h.etag = share->etag; /* the URL's own validators, for its revalidations */
        h.last_modified = share->last_modified;
        if (headers_pack(&h, &f->headers) == 0) {
            f->job.run = run_fill;
            f->obj = obj; /* the reference create_fetching gave the fetch */
            memcpy(f->donor, donor->key, 65);
            f->length = donor->length;
            memcpy(f->digest, donor->digest, 32);
            obj->filled = true;
            obj->signed_key = share->signed_key;
            *out = obj; /* create_fetching's two references: the caller's and the fill's */
            res = LOOKUP_COALESCED;
            atomic_fetch_add(&stats.digest_hits, 1);
            pthread_mutex_unlock(&st.lock);
            persist_submit(&f->job);
            return res;
        }
        obj->refs -= 2; /* out of memory: the new object goes */
        table_remove(obj);
        maybe_free(obj);
    }
    pthread_mutex_unlock(&st.lock);
    free(f);
    return res;
}
