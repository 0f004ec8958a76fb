/* The images the store keeps (images.h): one walk of the table takes the registries' manifests
 * and blobs (complete ones, and the expired copy of a tag being revalidated: kept until its
 * answer, so listed, its blobs shared, and purged when named), each manifest's bytes are read
 * from its file; the listing groups them by repository, a purge plans from them what goes. */
#include "http/images.h"
#include "http/http_internal.h"
#include "http/resources.h"
#include "registry/reg_manifest.h"
#include "registry/reg_name.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

/* The distribution spec's bound on a manifest (fetch/registry.c takes none larger). */
#define MANIFEST_MAX (4 << 20)
/* Walks of the table at most, while it moves under them (store_walk_kept). */
#define WALKS 3
/* Rounds of an index's children at most: an index of indexes of ... */
#define CHILD_ROUNDS 8

struct kept_manifest {
    char *url, *hops;
    struct registry_ask ask; /* its registry, repository, tag or digest */
    uint8_t digest[32];      /* its bytes' */
    int64_t length, last_use;
    struct reg_manifest m; /* what it lists; kind UNKNOWN when unread */
    bool hidden;           /* the listing's client may not see it */
    bool purged;           /* the purge's: it goes */
};

struct kept_blob {
    uint8_t digest[32];
    int64_t length;
    char *url; /* a purge's only: the object's URL */
};

/* What one walk took of the table. */
struct kept_set {
    struct kept_manifest *man;
    size_t n_man, room_man, cap; /* cap: manifests taken at most */
    struct kept_blob *blobs;
    size_t n_blobs, room_blobs;
    bool want_urls; /* a purge: blobs' URLs kept */
    bool truncated, failed;
};

/* --- the walk ---------------------------------------------------------------------------- */

static bool grow(void **items, size_t *room, size_t n, size_t size)
{
    if (n < *room)
        return true;
    size_t more = *room ? 2 * *room : 256;
    void *p = realloc(*items, more * size);
    if (!p)
        return false;
    *items = p;
    *room = more;
    return true;
}

/* Lock held (store_walk_kept's visitor): what may be a registry's manifest, copied; whether it
 * is one is asked once the lock is dropped (classify). */
static void take_manifest(struct kept_set *s, const struct kept_object *k)
{
    if (s->n_man == s->cap) {
        s->truncated = true;
        return;
    }
    if (!grow((void **)&s->man, &s->room_man, s->n_man, sizeof(*s->man))) {
        s->failed = true;
        return;
    }
    struct kept_manifest *m = &s->man[s->n_man];
    memset(m, 0, sizeof(*m));
    m->url = strdup(k->url);
    m->hops = k->hops[0] ? strdup(k->hops) : NULL;
    if (!m->url || (k->hops[0] && !m->hops)) {
        free(m->url);
        free(m->hops);
        s->failed = true;
        return;
    }
    memcpy(m->digest, k->digest, 32);
    m->length = k->length;
    m->last_use = k->last_use;
    s->n_man++;
}

/* The same for a blob: its digest and length, and for a purge its URL. */
static void take_blob(struct kept_set *s, const struct kept_object *k)
{
    if (!grow((void **)&s->blobs, &s->room_blobs, s->n_blobs, sizeof(*s->blobs))) {
        s->failed = true;
        return;
    }
    struct kept_blob *b = &s->blobs[s->n_blobs];
    memcpy(b->digest, k->digest, 32);
    b->length = k->length;
    b->url = NULL;
    if (s->want_urls && !(b->url = strdup(k->url))) {
        s->failed = true;
        return;
    }
    s->n_blobs++;
}

/* Every kept copy comes here with the lock held: a substring test each, the grammar later. */
static void visit(const struct kept_object *k, void *arg)
{
    struct kept_set *s = arg;
    if (s->failed || !strstr(k->url, "/v2/"))
        return;
    if (strstr(k->url, "/manifests/"))
        take_manifest(s, k);
    else if (strstr(k->url, "/blobs/"))
        take_blob(s, k);
}

/* The lock dropped: the manifests that are a configured registry's (registries_ask_of), each
 * with what its URL asks; for a purge, the blobs too (a listing counts the bytes of a digest
 * kept under any /blobs/ URL: they are in the store). */
static void classify(struct kept_set *s)
{
    size_t kept = 0;
    for (size_t i = 0; i < s->n_man; i++) {
        struct kept_manifest *m = &s->man[i];
        if (registries_ask_of(m->url, &m->ask) && m->ask.path.what == REG_MANIFEST) {
            s->man[kept++] = *m;
            continue;
        }
        free(m->url);
        free(m->hops);
    }
    s->n_man = kept;
    kept = 0;
    for (size_t i = 0; s->want_urls && i < s->n_blobs; i++) {
        struct registry_ask a;
        if (registries_ask_of(s->blobs[i].url, &a) && a.path.what == REG_BLOB)
            s->blobs[kept++] = s->blobs[i];
        else
            free(s->blobs[i].url);
    }
    if (s->want_urls)
        s->n_blobs = kept;
}

static void kept_clear(struct kept_set *s)
{
    for (size_t i = 0; i < s->n_man; i++) {
        free(s->man[i].url);
        free(s->man[i].hops);
        reg_manifest_free(&s->man[i].m);
    }
    for (size_t i = 0; i < s->n_blobs; i++)
        free(s->blobs[i].url);
    s->n_man = s->n_blobs = 0;
    s->truncated = s->failed = false;
}

static void kept_free(struct kept_set *s)
{
    kept_clear(s);
    free(s->man);
    free(s->blobs);
}

static int by_digest(const void *a, const void *b)
{
    return memcmp(((const struct kept_blob *)a)->digest, ((const struct kept_blob *)b)->digest, 32);
}

/* Each manifest's bytes read and what it lists taken: one that cannot be read or is no
 * manifest of the grammars stays, with what is known (its kind unknown). */
static void read_manifests(struct kept_set *s)
{
    for (size_t i = 0; i < s->n_man; i++) {
        char *data;
        size_t len;
        if (store_read_kept(s->man[i].url, s->man[i].digest, MANIFEST_MAX, &data, &len) < 0)
            continue;
        reg_manifest_read(data, len, &s->man[i].m);
        free(data);
    }
}

/* The registries' manifests (at most `cap`) and blobs the store keeps, the blobs sorted by
 * digest: 0, or -1 out of memory (nothing kept). */
static int kept_collect(struct kept_set *s, size_t cap, bool want_urls)
{
    memset(s, 0, sizeof(*s));
    s->cap = cap;
    s->want_urls = want_urls;
    for (int walk = 0; walk < WALKS; walk++) {
        kept_clear(s);
        if (store_walk_kept(visit, s) || s->failed)
            break; /* a moving table three times over: the last walk stands, as a listing's */
    }
    if (s->failed) {
        kept_free(s);
        return -1;
    }
    classify(s);
    if (s->n_blobs) /* none: no array at all, which qsort may not be given */
        qsort(s->blobs, s->n_blobs, sizeof(*s->blobs), by_digest);
    read_manifests(s);
    return 0;
}

/* The first blob of digest `d` (its others follow it), or NULL. */
static const struct kept_blob *blob_of(const struct kept_set *s, const uint8_t d[32])
{
    size_t lo = 0, hi = s->n_blobs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (memcmp(s->blobs[mid].digest, d, 32) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < s->n_blobs && !memcmp(s->blobs[lo].digest, d, 32) ? &s->blobs[lo] : NULL;
}

static void digest_text(const uint8_t d[32], char out[72])
{
    memcpy(out, "sha256:", 7);
    for (int i = 0; i < 32; i++)
        snprintf(out + 7 + 2 * i, 3, "%02x", d[i]);
}

static int cmp_digests(const void *a, const void *b)
{
    return memcmp(a, b, 32);
}

/* Sorted, each once: the new count. */
static size_t unique_digests(uint8_t (*d)[32], size_t n)
{
    size_t kept = 0;
    qsort(d, n, 32, cmp_digests);
    for (size_t i = 0; i < n; i++)
        if (!kept || memcmp(d[kept - 1], d[i], 32))
            memmove(d[kept++], d[i], 32);
    return kept;
}

/* --- the listing --------------------------------------------------------------------------- */

/* One image: a registry's repository, the manifests [first, first + n) of the sorted set. */
struct image_row {
    size_t first, n;
    int64_t last_use;
};

static bool same_repo(const struct kept_manifest *a, const struct kept_manifest *b)
{
    return a->ask.r == b->ask.r && !strcmp(a->ask.path.repo, b->ask.path.repo);
}

/* By registry (its place in the table), repository, then tags before digests, by name. */
static int by_repo(const void *pa, const void *pb)
{
    const struct kept_manifest *a = pa, *b = pb;
    if (a->ask.r != b->ask.r)
        return a->ask.r < b->ask.r ? -1 : 1;
    int c = strcmp(a->ask.path.repo, b->ask.path.repo);
    if (c)
        return c;
    if (a->ask.path.by_digest != b->ask.path.by_digest)
        return a->ask.path.by_digest ? 1 : -1;
    return strcmp(a->ask.path.ref, b->ask.path.ref);
}

/* Most recently pulled first; ties by registry and repository, as sorted. */
static int by_last_use(const void *pa, const void *pb)
{
    const struct image_row *a = pa, *b = pb;
    if (a->last_use != b->last_use)
        return a->last_use > b->last_use ? -1 : 1;
    return a->first < b->first ? -1 : a->first > b->first;
}

/* The manifests the client may not see, let go of: the rest in their order. */
static void drop_hidden(struct kept_set *s)
{
    size_t seen = 0;
    for (size_t i = 0; i < s->n_man; i++) {
        struct kept_manifest *m = &s->man[i];
        if (!m->hidden) {
            s->man[seen++] = *m;
            continue;
        }
        free(m->url);
        free(m->hops);
        reg_manifest_free(&m->m);
    }
    s->n_man = seen;
}

/* The images of the set's manifests, most recently pulled first, into *rows (malloc'd; *n of
 * them): 0, or -1 out of memory. */
static int group(struct kept_set *s, struct image_row **rows, size_t *n)
{
    if (s->n_man)
        qsort(s->man, s->n_man, sizeof(*s->man), by_repo);
    *n = 0;
    if (!(*rows = malloc((s->n_man ? s->n_man : 1) * sizeof(**rows))))
        return -1;
    for (size_t i = 0; i < s->n_man; i++) {
        if (i == 0 || !same_repo(&s->man[i - 1], &s->man[i]))
            (*rows)[(*n)++] = (struct image_row){i, 0, 0};
        struct image_row *r = &(*rows)[*n - 1];
        r->n++;
        if (s->man[i].last_use > r->last_use)
            r->last_use = s->man[i].last_use;
    }
    qsort(*rows, *n, sizeof(**rows), by_last_use);
    return 0;
}

/* Whether a tag of the row names digest `d`. */
static bool tagged(const struct kept_set *s, const struct image_row *r, const uint8_t d[32])
{
    for (size_t i = r->first; i < r->first + r->n; i++)
        if (!s->man[i].ask.path.by_digest && !memcmp(s->man[i].digest, d, 32))
            return true;
    return false;
}

/* The row's manifests, each digest once: {digest, kind, media_type, bytes}; the untagged
 * among them appended to `untagged`; their bytes added to *bytes. */
static json_t *manifests_json(const struct kept_set *s, const struct image_row *r, json_t *untagged,
                              int64_t *bytes)
{
    json_t *out = json_array();
    char text[72];
    for (size_t i = r->first; i < r->first + r->n; i++) {
        const struct kept_manifest *m = &s->man[i];
        bool again = false;
        for (size_t j = r->first; j < i && !again; j++)
            again = !memcmp(s->man[j].digest, m->digest, 32);
        if (again)
            continue;
        digest_text(m->digest, text);
        *bytes += m->length;
        if (!tagged(s, r, m->digest))
            json_array_append_new(untagged, json_string(text));
        json_array_append_new(out, json_pack("{s:s, s:s, s:s, s:I}", "digest", text, "kind",
                                             reg_manifest_kind_name(m->m.kind), "media_type",
                                             m->m.media_type, "bytes", (json_int_t)m->length));
    }
    return out;
}

/* The blobs the row's manifests list that are kept: how many, their bytes added to *bytes;
 * -1 out of memory. */
static int64_t blobs_kept(const struct kept_set *s, const struct image_row *r, int64_t *bytes)
{
    size_t n = 0, total = 0;
    for (size_t i = r->first; i < r->first + r->n; i++)
        total += s->man[i].m.kind == REG_MANIFEST_IMAGE ? s->man[i].m.n : 0;
    uint8_t(*listed)[32] = malloc((total ? total : 1) * 32);
    if (!listed)
        return -1;
    for (size_t i = r->first; i < r->first + r->n; i++)
        if (s->man[i].m.kind == REG_MANIFEST_IMAGE) {
            memcpy(listed[n], s->man[i].m.digests, s->man[i].m.n * 32);
            n += s->man[i].m.n;
        }
    int64_t count = 0;
    n = unique_digests(listed, n);
    for (size_t i = 0; i < n; i++) {
        const struct kept_blob *b = blob_of(s, listed[i]);
        if (b) {
            count++;
            *bytes += b->length;
        }
    }
    free(listed);
    return count;
}

static json_t *row_json(const struct kept_set *s, const struct image_row *r)
{
    json_t *tags = json_object(), *untagged = json_array(), *manifests;
    int64_t bytes = 0, blobs;
    char text[72];
    for (size_t i = r->first; i < r->first + r->n; i++)
        if (!s->man[i].ask.path.by_digest) {
            digest_text(s->man[i].digest, text);
            json_object_set_new(tags, s->man[i].ask.path.ref, json_string(text));
        }
    manifests = manifests_json(s, r, untagged, &bytes);
    if ((blobs = blobs_kept(s, r, &bytes)) < 0) {
        json_decref(tags);
        json_decref(untagged);
        json_decref(manifests);
        return NULL;
    }
    const struct kept_manifest *m = &s->man[r->first];
    return json_pack("{s:s, s:s, s:o, s:o, s:o, s:I, s:I, s:o}", "registry", m->ask.r->name,
                     "repository", m->ask.path.repo, "tags", tags, "untagged", untagged,
                     "manifests", manifests, "blobs", (json_int_t)blobs, "bytes", (json_int_t)bytes,
                     "last_pulled", http_json_time(r->last_use));
}

/* Which manifests `client` may not see: those of a URL a rule refuses it. */
static void hide_unlisted(struct kept_set *s, const struct sockaddr *client)
{
    if (!resources_filtered())
        return;
    for (size_t i = 0; i < s->n_man; i++)
        s->man[i].hidden = !resources_listed(s->man[i].url, s->man[i].hops, client);
}

/* Rows [from, to) of the sorted images as the page's JSON. */
static json_t *page_json(const struct kept_set *s, const struct image_row *rows, size_t n,
                         int64_t page)
{
    json_t *list = json_array();
    int64_t pages = n ? ((int64_t)n + IMAGES_PER_PAGE - 1) / IMAGES_PER_PAGE : 1;
    size_t from = (size_t)(page - 1) * IMAGES_PER_PAGE;
    for (size_t i = from; i < n && i < from + IMAGES_PER_PAGE; i++) {
        json_t *row = row_json(s, &rows[i]);
        if (!row) {
            json_decref(list);
            return NULL;
        }
        json_array_append_new(list, row);
    }
    return json_pack("{s:I, s:I, s:i, s:I, s:b, s:o}", "page", (json_int_t)page, "pages",
                     (json_int_t)pages, "per_page", IMAGES_PER_PAGE, "count", (json_int_t)n,
                     "truncated", s->truncated, "images", list);
}

json_t *images_listing(const struct sockaddr *client, int64_t page, unsigned int *status,
                       const char **why)
{
    struct kept_set s;
    struct image_row *rows = NULL;
    size_t n = 0;
    json_t *out = NULL;
    *status = 500;
    *why = "out of memory";
    if (kept_collect(&s, IMAGES_MANIFESTS_LISTED, false) < 0)
        return NULL;
    hide_unlisted(&s, client);
    drop_hidden(&s);
    if (group(&s, &rows, &n) == 0) {
        if (page > 1 && (size_t)(page - 1) * IMAGES_PER_PAGE >= n) {
            *status = 404;
            *why = "no such page";
        } else {
            out = page_json(&s, rows, n, page);
        }
    }
    free(rows);
    kept_free(&s);
    return out;
}

/* --- a purge ------------------------------------------------------------------------------- */

/* Whether `m` is a manifest of the repository `ref` names. */
static bool in_repo(const struct kept_manifest *m, const struct registry_ask *ref)
{
    return m->ask.r == ref->r && !strcmp(m->ask.path.repo, ref->path.repo);
}

static bool lists(const struct reg_manifest *m, const uint8_t d[32])
{
    for (size_t i = 0; i < m->n; i++)
        if (!memcmp(m->digests[i], d, 32))
            return true;
    return false;
}

/* The objects the reference names marked: a tag's own and its digest's by digest, or a
 * digest's every one (its tags' too). False when none is kept; *digest the one named. */
static bool mark_named(struct kept_set *s, const struct registry_ask *ref, uint8_t digest[32])
{
    bool found = ref->path.by_digest;
    if (found)
        memcpy(digest, ref->path.digest, 32);
    for (size_t i = 0; i < s->n_man && !found; i++)
        if (in_repo(&s->man[i], ref) && !s->man[i].ask.path.by_digest &&
            !strcmp(s->man[i].ask.path.ref, ref->path.ref)) {
            memcpy(digest, s->man[i].digest, 32);
            s->man[i].purged = found = true;
        }
    if (!found)
        return false;
    found = false;
    for (size_t i = 0; i < s->n_man; i++) {
        struct kept_manifest *m = &s->man[i];
        if (in_repo(m, ref) && !memcmp(m->digest, digest, 32) &&
            (ref->path.by_digest || m->ask.path.by_digest || m->purged))
            m->purged = found = true;
    }
    return found;
}

/* Whether the repository keeps child `c` of a purged index for another: a tag of it, or an
 * index that stays and names it. */
static bool child_kept(const struct kept_set *s, const struct registry_ask *ref,
                       const uint8_t c[32])
{
    for (size_t i = 0; i < s->n_man; i++) {
        const struct kept_manifest *m = &s->man[i];
        if (m->purged || !in_repo(m, ref))
            continue;
        if ((!m->ask.path.by_digest && !memcmp(m->digest, c, 32)) ||
            (m->m.kind == REG_MANIFEST_INDEX && lists(&m->m, c)))
            return true;
    }
    return false;
}

/* The children of the purged indexes that nothing else keeps, marked: how many objects. */
static size_t mark_children(struct kept_set *s, const struct registry_ask *ref)
{
    size_t marked = 0;
    for (size_t i = 0; i < s->n_man; i++) {
        const struct kept_manifest *index = &s->man[i];
        if (!index->purged || index->m.kind != REG_MANIFEST_INDEX)
            continue;
        for (size_t k = 0; k < index->m.n; k++) {
            const uint8_t *c = index->m.digests[k];
            if (child_kept(s, ref, c))
                continue;
            for (size_t j = 0; j < s->n_man; j++)
                if (!s->man[j].purged && in_repo(&s->man[j], ref) &&
                    !memcmp(s->man[j].digest, c, 32)) {
                    s->man[j].purged = true;
                    marked++;
                }
        }
    }
    return marked;
}

/* Every digest the image manifests of one side list (purged or not), each once, into *out
 * (malloc'd): how many, or -1 out of memory. */
static ssize_t listed_by(const struct kept_set *s, bool purged, uint8_t (**out)[32])
{
    size_t n = 0, total = 0;
    for (size_t i = 0; i < s->n_man; i++)
        if (s->man[i].purged == purged && s->man[i].m.kind == REG_MANIFEST_IMAGE)
            total += s->man[i].m.n;
    if (!(*out = malloc((total ? total : 1) * 32)))
        return -1;
    for (size_t i = 0; i < s->n_man; i++)
        if (s->man[i].purged == purged && s->man[i].m.kind == REG_MANIFEST_IMAGE) {
            memcpy((*out)[n], s->man[i].m.digests, s->man[i].m.n * 32);
            n += s->man[i].m.n;
        }
    return (ssize_t)unique_digests(*out, n);
}

/* The URLs that go: the purged manifests', and every blob object of a digest they list that
 * no manifest staying lists (counted in out: blobs, shared). NULL out of memory. */
static char **urls_to_purge(const struct kept_set *s, struct image_purge *out, size_t *n)
{
    uint8_t(*gone)[32] = NULL, (*staying)[32] = NULL;
    ssize_t n_gone = listed_by(s, true, &gone), n_staying = listed_by(s, false, &staying);
    char **urls =
        n_gone >= 0 && n_staying >= 0 ? malloc((s->n_man + s->n_blobs + 1) * sizeof(*urls)) : NULL;
    *n = 0;
    for (size_t i = 0; urls && i < s->n_man; i++)
        if (s->man[i].purged) {
            urls[(*n)++] = s->man[i].url;
            out->manifests++;
        }
    for (ssize_t i = 0; urls && i < n_gone; i++) {
        if (bsearch(gone[i], staying, (size_t)n_staying, 32, cmp_digests)) {
            out->shared++; /* a base layer another image lists: it stays */
            continue;
        }
        const struct kept_blob *b = blob_of(s, gone[i]), *end = s->blobs + s->n_blobs;
        out->blobs += b != NULL;
        for (; b && b < end && !memcmp(b->digest, gone[i], 32); b++)
            urls[(*n)++] = b->url;
    }
    free(gone);
    free(staying);
    return urls;
}

int images_purge(const struct registry_ask *ref, struct image_purge *out)
{
    struct kept_set s;
    uint8_t digest[32];
    size_t n;
    int rc = -1;
    memset(out, 0, sizeof(*out));
    if (kept_collect(&s, SIZE_MAX, true) < 0)
        return -2;
    if (mark_named(&s, ref, digest)) {
        digest_text(digest, out->digest);
        for (int round = 0; round < CHILD_ROUNDS && mark_children(&s, ref) > 0; round++)
            ;
        char **urls = urls_to_purge(&s, out, &n);
        if (urls)
            store_purge_urls(urls, n, &out->store);
        rc = urls ? 0 : -2;
        free(urls);
    }
    kept_free(&s);
    return rc;
}
