/* Identical objects (docs/CACHING.md, "Same file, other URL"): complete objects are indexed by
 * digest, so that a request with &sha256= for a URL not cached can be answered from another URL's
 * object (after upstream has confirmed that URL: fetch.c), and objects with the same digest
 * share one file: one inode under each name, counted once against the quota. A digest hit answers
 * only the request that gave the digest: the URL gets no object from it (its own download makes
 * one), so a client cannot plant bytes for the URL's other clients. And it answers only with an
 * object this client may fetch by its own URL, never a credential's (twins_shareable): a digest
 * is public, it is no key. Such an object still shares its twins' file (the same bytes, one
 * inode): sharing decides what is on disk, never what a URL serves.
 *
 * The twins of an object are the other entries of its digest in the index with its length (a
 * lying origin's bytes never share a file of another length): no ring of links, which was 16
 * bytes an object. One of them carries the file's `reserved` bytes; when it leaves the table
 * they pass to a twin still there, so the quota counts the file while any name holds it.
 * Everything here runs with the store lock held (asserted), except the persistence thread's
 * link jobs. object.c calls twins_join and twins_leave through its hooks. */
#include "config/buckets.h"
#include "log/log.h"
#include "persist/persist.h"
#include "store/store_twins.h"
#include "url/url.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The index is the store's hash table again (table.h), keyed by digest: it grows a few buckets
 * per insert, so a cache growing past what it loaded never rehashes every object at once under
 * the lock (a million took about 100 ms), and it is sized for what was loaded, not twice that. */
static struct object *of_dnode(struct table_node *n)
{
    return n ? (struct object *)((char *)n - offsetof(struct object, dnode)) : NULL;
}

int digests_reserve(size_t at_least)
{
    assert(store_locked_or_alone());
    return table_reserve(&st.digests, at_least);
}

/* Another object in the index with obj's digest and length (its twin), or NULL. */
static struct object *twin_of(const struct object *obj)
{
    for (struct table_node *n = table_find(&st.digests, obj->digest); n;
         n = table_find_next(&st.digests, n)) {
        struct object *o = of_dnode(n);
        if (o != obj && o->length == obj->length)
            return o;
    }
    return NULL;
}

/* A complete object in the table joins the index, and its twins if it has any: its bytes are
 * then the twin's file (or will be, once the persistence thread has linked it). */
static struct object *join_twins(struct object *obj)
{
    struct object *twin;
    if (obj->in_digests || table_add(&st.digests, &obj->dnode) < 0)
        return NULL; /* out of memory: it stays out of the index, a file of its own */
    obj->in_digests = true;
    twin = twin_of(obj);
    if (twin)
        object_reserve(obj, 0); /* the file is counted once, by the twin holding it */
    return twin;
}

void twins_leave(struct object *obj)
{
    CHECK_OBJ(obj);
    assert(store_locked());
    if (!obj->in_digests)
        return;
    struct object *twin = twin_of(obj);
    if (twin) /* the file stays under the twins' names: so does its share of the quota */
        object_pass_reserve(obj, twin);
    table_del(&st.digests, &obj->dnode);
    obj->in_digests = false;
}

/* --- one file for twins -------------------------------------------------------------------- */

struct link_job {
    struct persist_job job;
    char from[65], to[65]; /* keys */
};

/* Whether two paths name one file already (twins linked before the last stop: every start joins
 * the twins it loads again). */
static bool same_file(const char *a, const char *b)
{
    struct stat x, y;
    return stat(a, &x) == 0 && stat(b, &y) == 0 && x.st_dev == y.st_dev && x.st_ino == y.st_ino;
}

/* Persistence thread: `to`'s name becomes a link to `from`'s file (same bytes: same digest). A
 * `from` already gone leaves `to` its own file; its twin's share of the quota passed to it. The
 * temporary name never outlives the job: rename() onto another name of the same file succeeds
 * and does nothing (POSIX), which once left a `.link` for every pair at every start. */
static void run_link(struct persist_job *job)
{
    assert(persist_owns_index());
    struct link_job *l = (struct link_job *)job;
    char from[1200], to[1200], tmp[1300];
    key_path(l->from, from, sizeof(from));
    key_path(l->to, to, sizeof(to));
    if (!same_file(from, to)) {
        snprintf(tmp, sizeof(tmp), "%s.link", to);
        unlink(tmp);
        if (link(from, tmp) == 0)
            key_rename(tmp, to);
        unlink(tmp);
    }
    free(l);
}

static void share_file(const struct object *obj, const struct object *twin)
{
    struct link_job *l = malloc(sizeof(*l));
    if (!l)
        return; /* two files then: correct, only bigger */
    l->job.run = run_link;
    object_key(twin, l->from);
    object_key(obj, l->to);
    persist_submit(&l->job);
}

void twins_join(struct object *obj)
{
    CHECK_OBJ(obj);
    assert(store_locked() && obj->state == OBJ_COMPLETE);
    struct object *twin = join_twins(obj);
    if (twin) /* downloaded under another URL already: one file */
        share_file(obj, twin);
}

/* --- a digest hit: another URL's file may answer one request ------------------------------- */

/* Whether an object is some credential's: downloaded through a signed URL, its URL (the cache
 * key) holds a credential of any kind (a signature kept in the key by --exact-keys, userinfo, a
 * token or API key: what url_redact hides), or it lies under a bucket arca signs for, whose
 * credentials go in headers, not in the URL. The bucket's is asked of the configuration each
 * time, never kept with the object: nothing a restart, a resume or a revalidation does can lose
 * it, and no request can make arca sign for a URL outside a bucket's (buckets.h). */
static bool private_object(const struct object *o)
{
    return o->signed_key || url_strip_secrets(o->url, NULL, 0) || buckets_sign_under(o->url);
}

/* Lock held. Whether `copy` (bytes of digest `want`, kept under `url`) answers this client:
 * 1 yes; 0 not this one; -1 no further one either: a run of objects this client may not fetch
 * costs a bounded walk (*asked, TWINS_ASKED), past it the URL is downloaded as itself, as
 * without a twin. Never a private copy. */
static int offered(const struct object *copy, const char *url, const uint8_t want[32], int *asked,
                   twin_allowed_fn *allowed, const void *arg)
{
    if (memcmp(copy->digest, want, 32) != 0 || private_object(copy))
        return 0;
    if ((*asked)++ == TWINS_ASKED)
        return -1;
    return allowed(url, arg) ? 1 : 0;
}

struct object *twins_shareable(const uint8_t want[32], twin_allowed_fn *allowed, const void *arg)
{
    assert(store_locked() && allowed);
    int asked = 0, r;
    for (struct table_node *n = table_find(&st.digests, want); n;
         n = table_find_next(&st.digests, n)) {
        struct object *o = of_dnode(n);
        if (o->state == OBJ_COMPLETE && (r = offered(o, o->url, want, &asked, allowed, arg)))
            return r > 0 ? o : NULL;
    }
    return NULL;
}

struct object *twins_refreshing(const uint8_t want[32], twin_allowed_fn *allowed, const void *arg)
{
    assert(store_locked() && allowed);
    int walked = 0, asked = 0, r;
    for (struct dnode *n = st.fetching.head; n && walked++ < REFRESHING_WALKED; n = n->next) {
        struct object *o = DLIST_ENTRY(n, struct object, lru);
        const struct object *s = object_stale(o);
        if (s && s->fd >= 0 && !s->purged && (r = offered(s, o->url, want, &asked, allowed, arg)))
            return r > 0 ? o : NULL;
    }
    return NULL;
}
