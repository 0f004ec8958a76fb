/*
 * store.h — the object table: url -> object, the object files under the data dir, quota and TTL.
 *
 * Contract:
 * - One mutex guards the whole table and every object's state. Client threads look objects up,
 *   read bytes and wait, and never touch a file's name or SQLite. The upstream thread appends
 *   (and truncates a partial file a resume could not prove, store_restart), decides and evicts;
 *   the persistence threads (persist.h) own the index, fsync and unlink once store_start has
 *   handed them over: the ordered one creates a download's file and row, makes a finished
 *   object durable and COMPLETE, and removes the files and rows of failed, evicted and purged
 *   objects, in the order they were asked for.
 * - An object's states and the moves between them are listed once, in object.h's contract (the
 *   table of moves is object.c's). What a reader sees: a removed object stays whole for readers
 *   still streaming it; a FAILED object has already left the table, so the next request for its
 *   URL starts a fresh download.
 * - Readers only see bytes already written to the object file. While FETCHING, the last byte
 *   written is held back: a client never receives a body that looks complete before the object
 *   has been length-checked, digested and fsynced.
 * - A reader's `&sha256=` is its own (struct read_range): it decides that reader's answer only,
 *   never the object's fate nor another reader's. Such a reader gets the last byte of its answer
 *   only once the object is COMPLETE and its digest matches.
 * - A download may resume (bytes are only appended) or, until the first byte has been handed to
 *   a reader, restart from zero (store_restart). Once a reader holds the length and type, a
 *   restart must keep them. A download that must start over beyond that point (upstream changed
 *   the file) goes on as a new object (store_new_version): its readers are cut, never handed
 *   bytes of two versions.
 * - An object is COMPLETE only after its file is fsynced and its index row committed.
 * - Waiting is push, not poll: a reader that finds no new bytes registers a waiter; every change
 *   of state wakes all waiters, and new bytes wake them once per curl pass (store_announce).
 */
#ifndef ARCA_STORE_H
#define ARCA_STORE_H

#include "persist/headers.h"
#include "base/park.h"
#include "config/config.h"
#include "base/dlist.h"

#include <openssl/evp.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

/* Where an object stands: its one state (store/object.h: the table of moves that change it).
 * NEW: made, not yet in the table; FETCHING and COMPLETE: in the table; FAILED and REMOVED: out
 * of it for good, REMOVED a complete object its last readers may still stream. A reader's copy
 * (struct object_meta) never says NEW or REMOVED: a removed object is whole for its readers. */
enum object_state { OBJ_NEW, OBJ_FETCHING, OBJ_COMPLETE, OBJ_FAILED, OBJ_REMOVED };

/* Why an answer comes from an expired version (docs/CACHING.md, "When the origin is down"). */
enum stale_cause {
    STALE_NONE,
    STALE_ERROR,      /* upstream failed (an attempt, or the whole refresh): --stale-if-error */
    STALE_SLOW,       /* upstream has not answered the refresh within STORE_STALE_PATIENCE_MS */
    STALE_REVALIDATE, /* expired less than --stale-while-revalidate ago: refreshed behind */
};
#define STALE_CAUSES 4
/* How long a request waits for a refresh of an expired object before its stale version answers
 * it (the refresh goes on): "a couple of seconds whatever upstream does" (issue 43). */
#define STORE_STALE_PATIENCE_MS 1500
/* After a refresh failed upstream, how long the stale version answers before one is tried
 * again. */
#define STORE_STALE_RETRY_S 10

/* An answer the HTTP layer prepared for a complete object (opaque here: a response with its
 * headers built and its file open or mapped), so that repeated hits skip open(), header building
 * and mapping. Reference counted: the object holds one while it is in the table, and a lookup
 * that hands it out takes another. At most STORE_PREPARED_MAX objects hold one (each may keep a
 * descriptor open); beyond that, the oldest attachment is dropped. */
struct prepared {
    atomic_int refs;
    void (*destroy)(struct prepared *p);
    int64_t until; /* wall-clock second from which lookups no longer hand it out (its headers
                      say how old the object is, Age, and that changes), 0: never */
};
#define STORE_PREPARED_MAX 1024
void prepared_put(struct prepared *p);

/* An object: private to the store (object.h). Others hold references and ask. */
struct object;

/* What a reader needs of an object, copied under the lock: the object itself may be evicted as
 * soon as the lock drops. Kept apart from struct object so that objects stay small (a million of
 * them load at start) while a copy carries its strings with it. */
struct object_meta {
    uint8_t tag[4];          /* with gen, which object it is (store_attach_prepared) */
    enum object_state state; /* FETCHING, COMPLETE or FAILED */
    bool headers_ready;
    bool hit; /* the object had answered a hit before this lookup */
    bool hot; /* a hit on an object used earlier this second: its hits keep coming */
    int64_t length, created, ttl; /* created: downloaded or last revalidated (wall-clock s) */
    uint32_t gen;
    bool revalidation; /* a download that revalidates an expired version (conditional GET) */
    bool renewed;      /* ... and upstream answered 304: the expired version is the object */
    bool signed_key;   /* downloaded through a signed URL: every other URL is confirmed first */
    /* not kept: streamed to its readers, then dropped (its rule's store = no, or the no-store
     * of the request that started it: object_keep.asked_no_store) */
    bool transient;
    enum stale_cause stale; /* not NONE: an expired version answers, for this reason */
    int fwd_status;         /* ... and upstream's status to the failed refresh (0: none came) */
    char content_type[HEADER_TYPE_MAX];
    char content_encoding[HEADER_ENCODING_MAX];
    char filename[HEADER_FILENAME_MAX];
    char last_modified[HEADER_DATE_MAX];
    char etag[HEADER_ETAG_MAX];
    char redirects[HEADER_REDIRECTS_MAX]; /* upstream_headers.redirects */
    uint8_t digest[32];
    int error_status;
    int retry_after; /* FAILED because its host is held down: seconds until it is tried again */
    /* FAILED for its size: more than max-object-size (413), the quota or the room it has beside
     * what is held (507); not a failing disk (507 too) */
    bool too_large;
    char error[160];
    /* Its bytes came from a parent arca (store_from_parent): the parent's Cache-Status members,
     * which answers list before this arca's own (RFC 9211); "" none. */
    char parent_status[192];
    /* The kind of source its body came from ("parent", "mirror", "origin": store_came_from);
     * a download's only (its live part's): NULL while none has answered with it, and for an
     * object at rest. */
    const char *came_from;
};

/* LOOKUP_UNAVAILABLE: the object is cached but its file cannot be opened for now (out of
 * descriptors or memory): no reference, the reason in meta->error; the object stays. */
/* LOOKUP_NEGATIVE: no object, but upstream answered its last download 404 or 410 less than the
 * request's negative ttl ago (object_keep.negative_ttl): *meta says so (FAILED, its status and
 * reason, created and ttl), no reference; upstream is not asked. */
enum lookup_result {
    LOOKUP_HIT,
    LOOKUP_MISS,
    LOOKUP_COALESCED,
    LOOKUP_UNAVAILABLE,
    LOOKUP_DIGEST,
    LOOKUP_NEGATIVE
};

/* Main: open the data dir and the index, resuming its unfinished downloads (main is its only
 * user until store_start; the complete rows load after: store_start). Its
 * lock file ("lock" in the data dir) is held, exclusively, until the process ends: a second arca
 * on the same data dir is refused. */
int store_open(const struct config *cfg, char *err, size_t errlen);
/* Whether another process (an arca) holds data_dir's lock now: what store_open would refuse.
 * Takes nothing and creates nothing; check-config asks it. */
bool store_dir_in_use(const char *data_dir);
/* Hand the index, fsync and unlink to the persistence threads; the index's complete rows load
 * into the table while arca serves (store_load.h), then orphan files are swept there. */
int store_start(char *err, size_t errlen);
/* Whether the index's rows are still loading (a request is answered meanwhile as after). */
bool store_loading(void);
/* Returns once every row of the index is in the table (or the load gave up): what a walk over
 * every object waits for (a purge's). Lock not held. */
void store_wait_loaded(void);
/* Main, once the upstream thread and clients are gone: the persistence threads finish what they
 * were handed and stop, then the table is freed and the index closed. */
void store_close(void);

/* Find the object for `url` or create a FETCHING one (LOOKUP_MISS: the caller must hand it to
 * upstream_fetch). A shorter ttl shortens the object's life. Takes a reference on FETCHING objects;
 * a HIT returns no reference but the object's metadata copied into *meta (the object may be
 * evicted as soon as the lock drops), and either its prepared answer in *prep (a reference the
 * caller must put; pass prep NULL when a prepared answer cannot serve the request) or an open
 * descriptor in *fd (the caller owns it). meta->hit says whether the object had been hit before
 * this lookup, meta->hot whether it was used earlier in this second: what a prepared answer is
 * worth building for (fetch_answer.c; random hits over a big cache would otherwise churn the
 * ring, building answers that are dropped before their second use). A COALESCED lookup copies the
 * download's metadata as it is then (meta->headers_ready: whether it has its slot and its answer
 * already). */
enum lookup_result store_lookup(const char *url, int64_t ttl, struct object **obj, int *fd,
                                struct prepared **prep, struct object_meta *meta);
/* Who is asking, for store_lookup_as: a request's ttl (and an object's expiry) act on the object
 * only for a request allowed to: AUTH_CONFIRMED (upstream accepted its URL, or no check applies:
 * --trust-signed-urls), AUTH_UNSIGNED (a URL that is its own key: acts on objects not downloaded
 * through a signed URL), AUTH_PENDING (a signed URL not confirmed yet: acts on nothing). A
 * request that may not act gets a complete object as a HIT, expired or not, its life unchanged:
 * the caller confirms the URL before serving it, and looks up again as AUTH_CONFIRMED when the
 * request's ttl or the object's own says it is expired. store_lookup is AUTH_CONFIRMED.
 * `signed_url`: the request's URL is signed, so a download it starts (LOOKUP_MISS) fetches a
 * capability's object: the object is created marked so (signed_key, in the index too), under the
 * lock, before any other lookup can see it. A revalidation of a marked object stays marked.
 * store_lookup's URL is not signed. */
enum lookup_auth { AUTH_CONFIRMED, AUTH_UNSIGNED, AUTH_PENDING };
/* What a request's terms (rules/terms.h) say of the object it looks up. They apply to the object
 * from this lookup on (a rule changed by SIGHUP acts on a cached object at its next request):
 * `ttl` as store_lookup's (a shorter one shortens the object's life, for a request that may act);
 * the rest is the object's from then on, for a request that may act (and for the object a
 * LOOKUP_MISS creates). */
struct object_keep {
    int64_t ttl; /* seconds, > 0 */
    /* The stale windows when the origin's Cache-Control says none (seconds past expiry; 0:
     * never; -1: the store's own, --stale-if-error and --stale-while-revalidate as SIGHUP sets
     * them). The origin's word, when it gave one, still wins. */
    int64_t stale_if_error, stale_while_revalidate;
    int64_t max_object_size; /* bytes: a longer body is refused (413) */
    /* false: streamed to the clients asking while it downloads, then dropped: never kept on
     * disk, never a hit, not in the index, never resumed after a restart; a complete object a
     * lookup finds is removed ("not stored: its rule says store = no") and fetched again */
    bool store;
    /* seconds a 404 or 410 upstream gave its download answers for the URL without asking
     * again (store_negative.c); 0: never, and always for a URL with credentials */
    int64_t negative_ttl;
    bool pin; /* never evicted for room while an unpinned object remains; kept in
                 the index (a restart keeps it), until a later lookup unpins it */
    /* This request's own bounds (its Cache-Control: a child arca's terms at its parent), never
     * the object's: a complete copy older than max_age (has_max_age) is refreshed for it as
     * if expired, the refreshed copy keeping `ttl`; with asked_no_store a download it starts
     * (no copy to refresh) is not kept. */
    bool has_max_age;
    int64_t max_age;
    bool asked_no_store;
    /* the age past which a kept 404 or 410 does not answer this request (a child arca's own
     * negative ttl: arca-negative-max-age), when has_negative_max_age. It stays for others. */
    bool has_negative_max_age;
    int64_t negative_max_age;
};
/* The terms of a lookup that names none (tests, arca's own resumes): `ttl`, the store's stale
 * windows (-1: as SIGHUP sets them) and --max-object-size, stored, not pinned. */
struct object_keep store_default_keep(int64_t ttl);
/* Seconds since the copy kept for `url` (a cache key) was downloaded or last renewed by a 304;
 * -1 when none is complete. Any thread. */
int64_t store_age(const char *url);
enum lookup_result store_lookup_as(const char *url, const struct object_keep *keep,
                                   enum lookup_auth auth, bool signed_url, struct object **obj,
                                   int *fd, struct prepared **prep, struct object_meta *meta);
/* Whether another URL's object may answer a request's digest, asked of that object's own URL
 * (its cache key's URL, normal form): the caller decides whether its client may fetch that URL.
 * Called with the store lock held: it must be quick and call nothing in the store. */
typedef bool twin_allowed_fn(const char *url, const void *arg);
/* A request with &sha256=`want` for `url`, which has no object of its own: another URL's complete
 * object with that digest, if one may answer it (never a private one: store_twins.h) and
 * `allowed` accepts its URL, its file opened into *fd (the caller owns it) and its metadata
 * copied: LOOKUP_DIGEST. LOOKUP_MISS otherwise (nothing opened): look the URL up as usual.
 * Nothing is recorded for `url`: the twin answers this request only, and the URL's own object
 * can only come from its own download. */
enum lookup_result store_open_twin(const char *url, const uint8_t want[32],
                                   twin_allowed_fn *allowed, const void *arg, int *fd,
                                   struct object_meta *meta);
/* Attach `p` to the complete object `meta` was copied from, if it is still in the table and has
 * none. On success the store takes its own reference. */
void store_attach_prepared(const struct object_meta *meta, struct prepared *p);
void store_release(struct object *obj);
/* Drop the complete object for `url` from the cache: lookups miss at once, its file and row go
 * on the persistence thread (clients streaming it finish from their open file). Returns
 * 1 (purged, *length set), 0 (not cached), -1 (still downloading), -2 (out of memory). */
int store_purge(const char *url, int64_t *length);
/* The same for the admin's purge, and every other spelling of the URL with it (as a prefix
 * purge takes them: fold.h), returning once the removals are on disk (a restart, even after
 * kill -9, finds them gone): on a thread that may wait (never a worker). 1 when any went. */
int store_purge_settled(const char *url, int64_t *length);
/* Seconds since the admin's latest purge here that covered `obj`'s URL (of its URL, or by a
 * prefix over it; the last 256 purges are remembered, until a restart), or -1 for none: a
 * download asks its parent arca for nothing older (source_parent.c), so a purge at a site
 * is obeyed through its tier. Upstream thread. */
int64_t store_purged_since(const struct object *obj);
/* What a purge by prefix came to: complete objects removed and their bytes, downloads under
 * way let finish for their readers but not kept, objects left for want of memory, negative
 * answers dropped (store_negative.h). */
struct purge_result {
    int64_t objects, bytes, downloads, left, negatives;
};
/* Drop every object whose URL (normal form) starts with `prefix`, pinned ones too: lookups miss
 * at once; their rows, then their files, go on the persistence thread, a few transactions for
 * the whole table (clients streaming them finish from their open files). A download under way is
 * let finish for its readers and its joiners, never kept (store = no from now on, whatever later
 * requests' terms say): it cannot be cut from here, only its upstream thread ends it. The
 * table is visited a slice per hold of the lock, so hits elsewhere go on meanwhile. `bounded`
 * (url_purge_prefix's): a URL goes on past the prefix with a new segment, a parameter or a
 * query. Any thread but a worker: it returns once the rows are gone on disk (the slices queued
 * one after the other sharing a transaction, as removals do), and only then queues
 * the files, one job at a time, so that neither its answer nor a new download's file, made in
 * order behind the rows, waits for more than a run of them (a stop goes on with them for about 2 s,
 * none once a download was set aside; the next start's sweep takes the rest). Purges at
 * once take turns. */
void store_purge_prefix(const char *prefix, bool bounded, struct purge_result *r);
/* Objects purges took out of the table whose files the disk has yet to remove (their rows
 * go first, the files after the purge's answer). Any thread. */
size_t store_purge_ahead(void);
/* How long (µs) a purge's walk holds the lock at most before it lets the hits in (1000); it
 * looks at the clock every 64 slots. A variable only so that a unit test makes a walk stop
 * and take up again every 64 slots; never changed by arca. */
extern int store_purge_hold_us;
/* The admin's purge of the objects of `urls` (n of them, each an object's URL as the table
 * keys it: normal form) and of nothing else, no other spelling: each as a prefix purge takes
 * an object (a download under way let finish but not kept, the copy it refreshes purged, its
 * kept 404 dropped), remembered for a parent as a purge of that URL (store_purged_since), a
 * slice of them per hold of the lock, their rows as a prefix's. Any thread but a worker: it
 * returns once the rows are gone on disk. */
void store_purge_urls(char *const *urls, size_t n, struct purge_result *r);
/* A new quota (SIGHUP); objects beyond it are evicted on the upstream thread's next round. */
void store_set_quota(int64_t quota);
/* --stale-if-error and --stale-while-revalidate, in seconds (0: never): store_open sets them
 * from the configuration, SIGHUP again. */
void store_set_stale(int64_t stale_if_error, int64_t stale_while_revalidate);
/* Take a waiter off the object's queue (the reader went away while asleep). */
void store_unwait(struct object *obj, struct park *w);

/* Returns true when headers are known (with `complete`: when the object is COMPLETE), the
 * object ended, or it offers the expired version it refreshes (store_offer_stale: the caller
 * looks up again and takes that), with *meta the object as it was then, in the same lock hold:
 * a reader waiting for completion never sees a FETCHING object whose stale offer has just ended
 * (it would stream before the digest check). Otherwise queues `w` and sleeps. */
bool store_wait(struct object *obj, bool complete, struct park *w, struct object_meta *meta);

/* What one reader wants: bytes before `end` (-1: to the end of the object) and, when `expect` is
 * set, only an object whose sha256 is `expect` (the reader's own &sha256=). While the object
 * downloads, a reader with `min` is held until `min` bytes (or all it wants) are there, or for
 * STORE_HOLD_MS at most: each span then costs one wake-up and one send for `min` bytes instead
 * of one per append of curl's (16 KiB). */
struct read_range {
    int64_t end;
    const uint8_t *expect;
    size_t min;
};
#define STORE_HOLD_MS 20
#define STORE_READ_FAILED (-1)   /* the download failed: cut the answer */
#define STORE_READ_END (-2)      /* nothing more: the object (or `end`) is reached */
#define STORE_READ_MISMATCH (-3) /* the object is complete and its sha256 is not `expect` */

/* Copy up to `max` bytes at `off` (max 0: only wait for, and check, the end). Returns the count,
 * 0 after queueing `w` (sleep), or one of STORE_READ_*. With `expect`, the byte before `end` is
 * held back until the object is COMPLETE, so a mismatch still cuts the answer. */
ssize_t store_read(struct object *obj, int64_t off, char *buf, size_t max,
                   const struct read_range *want, struct park *w);
/* The same without the copy: the count of bytes at `off` that may be sent from *fd, which stays
 * open (and those bytes unchanged) while the caller holds its reference to `obj`. */
ssize_t store_span(struct object *obj, int64_t off, size_t max, const struct read_range *want,
                   struct park *w, int *fd);

/* Snapshot of an object's public fields, taken under the lock. */
void store_snapshot(struct object *obj, struct object_meta *out);

/* --- upstream thread only (asserted: the first thread to call one claims the role) --- */
/* Have the persistence thread record the download (fetching `source`) and create its file, or
 * reopen it after a restart, then call ready(arg)
 * there: store_file_ready tells the outcome. A file that cannot be made fails the object (507
 * when the disk is full, 500 otherwise). -1 when out of memory (nothing asked). */
int store_begin_file(struct object *obj, const char *source, void (*ready)(void *arg), void *arg);
/* A download taken up after a restart: the digest of the bytes it keeps, computed when its file
 * was reopened, copied into `into` (1); 0 for any other download; -1 when out of memory. */
int store_take_prefix(struct object *obj, EVP_MD_CTX *into);
/* Upstream confirmed the bytes a resumed download keeps (a 206 continuing them): its clients,
 * held back until now, may read them. */
void store_continue_body(struct object *obj);
/* Main, once the upstream thread runs: hand each download cut by the last stop, with the URL it
 * fetched, to `each` (which takes the reference it is given). */
void store_take_resumed(void (*each)(struct object *obj, const char *source, void *arg), void *arg);
/* 1: the file exists, appends may begin; 0: not yet; -1: the object failed. */
int store_file_ready(struct object *obj);
/* Headers are in: returns 0, or -1 with status/reason filled (e.g. 507 when it cannot fit, 413
 * beyond the maximum object size). Called again after a restart from zero. `resumable`: the body
 * has a validator a resume can prove itself by (upstream_response.h); only then are its bytes
 * synced for a restart to continue from (store_resume.c). */
int store_begin_body(struct object *obj, int64_t length, const struct upstream_headers *h,
                     bool resumable);
/* An object's packed headers (NULL: none) read back; pointers into `packed`. */
void headers_unpack(const char *packed, struct upstream_headers *h);
/* A content type as packed headers keep it: "" for one starting with the byte that marks a
 * type's number there (0x01: no media type does), else itself. */
const char *headers_kept_type(const char *type);
/* Throw away the bytes written so far, so the download can start over with a body of `length`
 * bytes described by `h` (NULL: not known yet; the next store_begin_body checks it). Returns 0;
 * 1 when that would contradict what a reader holds: bytes, or a length and headers it answered
 * with that are not these (nothing done: the caller makes a new version, store_new_version); -1
 * with the reason filled when the file cannot be truncated. Readers that hold nothing wait for
 * the new body's headers. */
int store_restart(struct object *obj, int64_t length, const struct upstream_headers *h);
/* Upstream thread. The bytes and headers the download has came from a source that is given up
 * (a parent that failed): when no reader answered with its headers nor took a byte, they are
 * forgotten (0: the next source's answer begins the object afresh); 1 when some reader did (a
 * new version is needed: store_new_version); -1 with the reason filled when the file cannot be
 * truncated. */
int store_restart_afresh(struct object *obj);
/* The download's bytes belong to a version upstream no longer serves, and readers hold some of
 * them: they cannot be completed honestly. The object fails for them (`reason`; their answers
 * are cut) and a new FETCHING object for its URL (same ttl, signed mark and usage) takes its
 * place in the table, so the next clients get the new version. Returns it with the fetch's
 * reference (the caller still holds, and releases, its reference on `obj`), to be begun with
 * store_begin_file; NULL when out of memory (or `obj` had already failed). `failure` false: the
 * old version is given up for another source's (a parent that failed), not counted as a failed
 * download nor listed among the failures (object_replace). */
struct object *store_new_version(struct object *obj, const char *reason, bool failure);
/* Write bytes at `have` and make them readable. Waiters are not woken here: curl hands a body
 * over 16 KiB at a time, several times per pass, and each wake-up resumes every reader's
 * connection; store_announce wakes them once the pass is over. */
int store_append(struct object *obj, const char *data, size_t len);
/* A parallel fill (upstream/fill.h): bytes of a later range written at `off`, ahead of `have`
 * (the length known): readers take none of them before store_advance. 0, or -1 with the
 * object's error set (as store_append). */
int store_write_at(struct object *obj, int64_t off, const char *data, size_t len);
/* The bytes up to `to`, written ahead by store_write_at, follow the head: readers may take them
 * (announced with the pass, as appends are). */
void store_advance(struct object *obj, int64_t to);
/* Bytes [from, to) of the download's file fed to `ctx`: a fill's digest runs in order over bytes
 * that came ahead of the head. -1 when the file cannot be read. */
int store_digest_range(struct object *obj, EVP_MD_CTX *ctx, int64_t from, int64_t to);
/* The whole body of a download whose bytes are all in, in a buffer of its own (the caller's to
 * free), its length in *len; NULL when longer than `max` or unreadable. Upstream thread, before
 * store_finish. */
char *store_read_body(struct object *obj, size_t max, size_t *len);
/* What the download's listing shows while it runs: bytes a second it takes from upstream, over
 * how many connections. */
void store_set_rate(struct object *obj, int64_t rate, int connections);
/* What the listing of a download waiting for a slot shows: the limit it waits for, a static
 * string ("max-downloads"...), NULL once it starts. */
void store_set_waiting(struct object *obj, const char *limit);
/* Wake the object's waiters whose bytes were appended since they were last woken, and every
 * waiter once a reader has been held STORE_HOLD_MS. Returns the monotonic ms by which it must be
 * called again (a reader is held), or 0. */
int64_t store_announce(struct object *obj);
/* Called from a reader's thread, no lock held, when a reader is held while none was: the upstream
 * loop must call store_announce by the time it returns next, though no byte may come. */
void store_set_hold_wake(void (*wake)(void));
/* Check the length (-1 after store_fail, the reason in obj->error), then have the persistence
 * thread sync the file and its directory entry and record the row; the object becomes COMPLETE
 * after that (or fails then, logged there). Readers wait for the held-back byte meanwhile. */
int store_finish(struct object *obj, const uint8_t digest[32]);
/* Whether this download revalidates an expired version (store_lookup kept it: it had an ETag or
 * Last-Modified); then its validators ("" where upstream gave none). */
bool store_stale_validators(struct object *obj, char *etag, size_t etag_size, char *date,
                            size_t date_size);
/* Upstream answered 304 to the revalidation: the persistence thread records the expired version
 * as complete again, renewed from this download's start with its ttl, and the download becomes
 * that version (COMPLETE, waiters woken) without a byte downloaded. -1 when out of memory (the
 * download failed). */
int store_renew(struct object *obj);
/* Upstream thread. What the download's response says of answering stale (its Cache-Control,
 * upstream_response.h): seconds past expiry while upstream fails, or while revalidated; -1
 * not said (--stale-if-error, --stale-while-revalidate apply), 0 never. Kept with the object. */
void store_staleness(struct object *obj, int64_t if_error, int64_t while_revalidate);
/* Upstream thread. While this download refreshes an expired version that may still answer
 * (within --stale-if-error or --stale-while-revalidate of its expiry), its readers take that
 * version meanwhile, for `cause` (`fwd_status`: upstream's answer to a failed attempt, 0 for
 * none), until upstream's headers of a new version are in. False when it keeps none. */
bool store_offer_stale(struct object *obj, enum stale_cause cause, int fwd_status);
/* Upstream thread. The download's answer comes from a parent arca (docs/CLUSTER.md, "Sites and
 * tiers"), whose copy was `age` seconds old: the object is as old (its `created` moved back by
 * `age`) and fresh for `fresh` more seconds from now (the download decides: what is left of the
 * parent's freshness, at most its own terms' ttl); <= 0: it is kept expired, never fresh (a
 * parent's stale answer). `cache_status`: the parent's Cache-Status members (NULL: none), listed
 * before this arca's own. Called with (0, ttl, NULL) it is the download's own again. */
void store_from_parent(struct object *obj, int64_t age, int64_t fresh, const char *cache_status);
/* Upstream thread. The kind of source whose answer gives the body from now (`from`: a string
 * that lives as long as the process, "parent", "mirror" or "origin"), before its readers wake:
 * what the access log says of a miss. */
void store_came_from(struct object *obj, const char *from);
/* Upstream thread. The refresh failed in an outage (`fwd_status`: upstream's answer, 0 for
 * none): the download fails with `status` and `reason` (readers of a new version's body are
 * cut), and the expired version it refreshed is in the table again as it was (never deleted
 * for a failure that is no verdict). Within its stale-if-error window it answers stale, the
 * download's waiters too, for STORE_STALE_RETRY_S before a refresh is tried again; past it,
 * the waiters get the error and the copy waits for the origin. -1 (nothing done) when the
 * download refreshes no such version: the caller fails it then. Logged as an error, or at debug
 * level when `said` (the log said the reason once where it was found: a registry's hold begun,
 * a host held down), so that each expired object answered meanwhile does not repeat it. */
int store_keep_stale(struct object *obj, int status, int fwd_status, const char *reason, bool said);
/* Fail a download: out of the table, waiters woken; its file and row, once the persistence
 * thread has made them, are removed there. Any thread may call it (upstream_fetch does, at shutdown
 * or out of memory): it never touches disk or SQLite itself. */
void store_fail(struct object *obj, int status, const char *reason);
/* Upstream thread. The download's host is held (upstream/hosts.h): it fails as store_fail does,
 * with `status` (503 held down, 429 held at its upstream's asking), `reason`, and the seconds
 * until the host is tried again (Retry-After). */
void store_fail_held(struct object *obj, int status, const char *reason, int retry_after);
/* arca stops: end a download for its clients (503, `reason`) like store_fail, but keep its file
 * and row, synced, so that the next start continues it (store_take_resumed). */
void store_set_aside(struct object *obj, const char *reason);
/* Upstream thread, from its housekeeping and at the end: what the index has not seen yet is
 * handed to the persistence thread: objects' usage (store_flush_usage, every 10 s: a chunk of
 * the dirty queue per hold of the lock), failures (store_flush_failures, every second). */
bool store_flush_usage(void); /* true: more is left (a stop calls it until false) */
/* Chunks of 1024 objects a flush writes at most (16: store_room.c says why). A variable only so
 * that a unit test proves the bound on 2 chunks' objects rather than 16's; set before the
 * upstream thread runs, never changed by arca. */
extern int store_flush_chunks;
/* The same, between two flushes, when no object was used since the last call (a quiet second):
 * the backlog a busy spell left goes then, not all at the stop. */
void store_flush_usage_quiet(void);
void store_flush_failures(void);
/* Upstream thread, every STORE_EXPIRE_STEP_MS: a step of the expiry sweep, STORE_EXPIRE_CHUNK
 * buckets (store_room.c says why) in one hold of the lock, from where the last step stopped;
 * skipped while the removals owed to the disk are past store_evict_ahead,
 * unless `always` (the caller's once a second: the sweep never stops for good). Returns 1 when more
 * of the round is left, 0 once the step ended a round of the table (the caller may wait longer
 * before the next), -1 when it was skipped. */
#define STORE_EXPIRE_STEP_MS 8
#define STORE_EXPIRE_CHUNK 512
int store_expire_step(bool always);
/* Upstream thread, once a second: over the quota (it shrank), store_evict_holds holds of 1024
 * evictions, and about 100 ms, at most, a purge's pauses between them; each only while it would
 * not take the removals owed to the disk (object_removals_owed) past store_evict_ahead (the
 * removals keep near the disk's pace; other work queued does not count). */
void store_evict_over_quota(void);
/* 32 (store_room.c says why). A variable only so that a unit test proves the bound on one hold's
 * objects rather than 32's; set before the upstream thread runs, never changed by arca. */
extern int store_evict_holds;
/* 8192 (store_room.c says why). A variable only so that a unit test proves the wait on a few
 * jobs; set before the upstream thread runs, never changed by arca. */
extern size_t store_evict_ahead;

struct store_totals {
    int64_t disk_usage, quota;
    int64_t scheduled, downloading, complete; /* objects by state */
    int64_t usage;                            /* requests for objects in the table */
    int64_t pinned_objects, pinned_bytes;     /* complete pinned objects, and their lengths */
};
void store_totals(struct store_totals *t);

/* --- listings, for the web pages and /api/v1/resources/ (any thread) --- */
/* KissCache's states: scheduled (waiting for a download slot), downloading, successes (complete
 * objects) and failures (the last STORE_FAILURES_KEPT downloads that failed since start). */
enum list_state { LIST_SCHEDULED, LIST_DOWNLOADING, LIST_SUCCESSES, LIST_FAILURES, LIST_STATES };
enum list_order { ORDER_URL, ORDER_SIZE, ORDER_USAGE, ORDER_LAST_USE, ORDER_CREATED };
#define STORE_FAILURES_KEPT 256
#define STORE_HELD_KEPT 64 /* downloads refused for a host held down, for store_outcome only */
/* Listings keep the best offset + limit objects; deeper pages are refused (reverse the order to
 * see the end). A page of complete objects by last use walks the LRU lists (the unpinned and the
 * pinned objects', merged by last use); downloads come from their own short list; any other page of
 * complete objects is one pass over the table a slice of buckets per hold of the lock
 * (store_list.c): not a snapshot, an object changing meanwhile is seen as it was when its bucket
 * was visited. */
#define STORE_LIST_DEPTH 10000

struct resource {
    char *url;
    /* successes and downloads: the URLs redirects took its download to (upstream_headers'
     * redirects, as stored: never shown, a listing judges them per client), or NULL */
    char *hops;
    char key[65];
    int64_t length; /* -1 while unknown */
    int64_t have;   /* bytes downloaded */
    int64_t usage, last_use, created, ttl;
    bool expired;        /* complete: its ttl has run out (object_expired), kept on disk */
    int64_t stale_until; /* complete: until when (wall s), once expired, it may answer stale
                            (--stale-if-error or its origin's); 0: never */
    int status;          /* 200, or the status a failed download gave its clients */
    int64_t rate;        /* downloading: bytes a second from upstream over the last second */
    int connections;     /* downloading: connections it uses (a parallel fill's several) */
    /* scheduled: the limit it waits for (a static string: "max-downloads"...), or NULL */
    const char *waiting_for;
    char content_type[128];
    char error[160];
};

struct listing {
    struct resource *rows;
    int n;
    int64_t total;               /* resources in the state asked for */
    int64_t counts[LIST_STATES]; /* resources in each state */
};

/* Fill `out` with rows [offset, offset + limit) of `state` sorted by `order` (ties by key).
 * Returns 0, -1 when out of memory, -2 when offset + limit > STORE_LIST_DEPTH. */
int store_list(enum list_state state, enum list_order order, bool desc, int64_t offset, int limit,
               struct listing *out);
void listing_free(struct listing *l);

/* A kept copy as a walk over the table sees it (store_walk_kept): pointers valid during the
 * call only. */
struct kept_object {
    const char *url;  /* its URL, normal form: the table's key */
    const char *hops; /* the URLs its download's redirects took it to ("": none), as stored */
    const uint8_t *digest;
    int64_t length, last_use;
};
typedef void kept_visit_fn(const struct kept_object *k, void *arg);
/* Every copy the table keeps (once the index has loaded whole: store_wait_loaded), expired ones
 * too, to `visit`, a slice of the table per hold of
 * the lock: each complete object, and the expired copy a download refreshes (under the
 * download's URL; not once purged), which stays kept until the answer: a 304 (or a registry's
 * HEAD of the same digest) renews it, a failed refresh restores it. `visit` runs with the lock
 * held, so it copies what it keeps and is quick (no call into the store, no lock, no file).
 * Not a snapshot: an object changing meanwhile is seen as it was when its slot was visited.
 * False when objects changed slots during the walk (the table grew: one may have been seen
 * twice, or not at all); the caller may walk again. Any thread but a worker (it walks the
 * whole table). */
bool store_walk_kept(kept_visit_fn *visit, void *arg);
/* The bytes of `url`'s kept copy (its complete object, or the expired copy its download
 * refreshes, as store_walk_kept sees them), read into a buffer of its own (malloc'd, *out, its
 * length in *len): 0 when the copy is kept, its bytes hash to `digest` and it is at most `max`
 * bytes long; -1 otherwise (gone, replaced, purged, longer, unreadable, out of memory). The
 * file is read with the lock dropped (a refreshed copy's from a duplicate of the descriptor its
 * download holds); the digest says the bytes are that copy's. Any thread but a worker (it
 * reads a file). */
int store_read_kept(const char *url, const uint8_t digest[32], size_t max, char **out, size_t *len);

/* What became of the download of `url` (a key URL, as store_lookup takes it), asked without
 * touching it: no usage or last use counted, no download started, nothing opened. The table
 * first (scheduled, downloading, complete, whatever its ttl), then the newest of the failures
 * kept (STORE_FAILURES_KEPT); absent when neither knows the URL (never fetched, purged, evicted,
 * or its failure pushed out of the ring). */
enum outcome_state {
    OUTCOME_ABSENT,
    OUTCOME_SCHEDULED,
    OUTCOME_DOWNLOADING,
    OUTCOME_COMPLETE,
    OUTCOME_FAILED
};
struct outcome {
    enum outcome_state state;
    int64_t length; /* -1 while unknown */
    int64_t have;   /* bytes downloaded */
    int64_t when;   /* created (downloaded or revalidated), or when it failed (wall-clock s) */
    int status;     /* FAILED: the status its clients got */
    char error[160];
};
void store_outcome(const char *url, struct outcome *out);

void object_path(const struct object *obj, char *buf, size_t size);
/* The URL an object was made for (its normal form), fixed for the object's life. */
const char *object_url(const struct object *obj);
/* Its generation (struct object_meta's gen), fixed for its life: with its address, which object
 * it is, though the address be another's later. */
uint32_t object_gen(const struct object *obj);
/* Why the download failed, for clients and logs; never NULL. */
const char *object_error(const struct object *obj);
/* The status clients get for the failed download (0 while it has not failed). */
int object_error_status(const struct object *obj);

/* What the upstream thread reads back of its own download, taken under the lock. */
struct download_progress {
    int64_t have, length; /* bytes written; Content-Length or -1 */
    bool headers_ready;   /* a 2xx body began */
};
void store_progress(struct object *obj, struct download_progress *out);

#endif
