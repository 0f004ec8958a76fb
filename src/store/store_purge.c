/* Purge by prefix (store.h, store_purge_prefix): every object whose URL starts with a prefix
 * (and the expired copy a download of one refreshes) leaves the table, a slice of the table per
 * hold of the lock so that hits elsewhere go on, and its rows and files go on the persistence
 * thread: each slice's rows in a job queued under the lock, the slices queued one after the
 * other sharing a transaction (persist.h's groups, as the removals do: a few transactions for
 * 100,000 rows, where one a slice wrote the index's pages a hundred times over: 6.5 s for
 * 100,000 of 110,000 rows here); the purge is answered once they are gone on disk, and only then
 * are its jobs queued again for the files, one job at a time, a few files a run (purge_files),
 * so that neither its answer nor the jobs queued meanwhile (a new download's file) wait for
 * 100,000 unlinks. A list of URLs (an image's manifests and blobs:
 * store_purge_urls) goes the same way, a slice of the list per hold. */
#include "base/clock.h"
#include "persist/index.h"
#include "persist/pace.h"
#include "persist/persist.h"
#include "store/object.h"
#include "store/store_negative.h"
#include "store/store_room.h"
#include "store/spellings.h"
#include "url/url.h"

#include <assert.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Slots of the table visited per hold of the lock at most: about as many objects, each removal
 * a few list and index unlinks. A hold also ends once store_purge_hold_us have passed (cold
 * objects: 1024 slots once held it 12 ms), and the pause after it is as long
 * (store_unlock_slice). */
#define PURGE_SLOTS_PER_HOLD 1024
int store_purge_hold_us = 1000;
/* Slots visited between two looks at the clock. */
#define PURGE_CLOCK_EVERY 64
/* How long a stop goes on removing the files of purges answered (stop_spent). */
#define PURGE_STOP_FILES_US (2 * 1000 * 1000)
/* Passes over the table at most: another pass only when the table grew during one (its objects
 * moved between slots: one may have been missed), which inserts make rarer each time. */
#define PURGE_PASSES 3

/* Files unlinked per run of a slice's job: the jobs queued behind it (a new download's file)
 * wait for no more than these between two runs. */
#define PURGE_FILES_PER_RUN 256

/* One slice's objects: their rows deleted in one transaction, first, in order with every change
 * of the table (a restart, even after a crash, finds them gone); then their files, a few at a
 * time, the job queued again behind whatever came meanwhile. */
struct purge_job {
    struct persist_job job;
    char *urls;       /* the objects' URLs, each with its NUL: their keys are made on the
                         persistence thread (object_key: a sha256 each, not under the lock) */
    size_t len, room; /* bytes of urls, and allocated */
    size_t n, done;   /* URLs, files handled */
    size_t done_at;   /* where the first URL not handled starts in urls */
    bool rows_gone;
    struct purge_job *after; /* the next in purges.files_owed or purges.files_next */
};

/* The key of the URL at `*at` (object_key), and *at moved to the next URL. */
static void next_key(const struct purge_job *p, size_t *at, char key[65])
{
    const char *url = p->urls + *at;
    url_key(url, key);
    *at += strlen(url) + 1;
}

/* The next few files. A key back in the table meanwhile is a new download's (its part file
 * comes after this job; its complete file replaces the purged one): left to it. Once a download
 * was set aside (arca stops), the table no longer names every such key: one of the purge's URLs
 * asked again since keeps its partial file for the next start, out of the table. None goes
 * then; the next start's sweep takes those no row names. */
static void unlink_some(struct purge_job *p)
{
    size_t end = p->done + PURGE_FILES_PER_RUN < p->n ? p->done + PURGE_FILES_PER_RUN : p->n;
    bool back[PURGE_FILES_PER_RUN];
    char keys[PURGE_FILES_PER_RUN][65], path[1200];
    for (size_t i = p->done; i < end; i++)
        next_key(p, &p->done_at, keys[i - p->done]);
    store_lock();
    bool set_aside = object_set_aside_begun();
    for (size_t i = p->done; i < end; i++)
        back[i - p->done] = object_find(keys[i - p->done]) != NULL;
    store_unlock();
    if (set_aside) {
        p->done = p->n;
        return;
    }
    for (size_t i = p->done; i < end; i++) {
        if (back[i - p->done])
            continue;
        key_path(keys[i - p->done], path, sizeof(path));
        pace_unlink(path); /* streaming readers keep the inode */
        part_path(keys[i - p->done], path, sizeof(path));
        pace_unlink(path);
    }
    p->done = end;
}

/* The purges running, on their requests' threads of their own: store_close waits for them (a
 * purge walks the table and queues jobs that store_close frees and stops). Their lock is a leaf
 * (taken under the store's by submit_slice). */
static struct {
    pthread_mutex_t lock;
    pthread_cond_t ended;
    int running;
    bool closing; /* store_close began: a purge stops at its next slice, none begins */
    /* The removals the disk has yet to make: objects of the slices queued whose files are not
     * unlinked yet (store_purge_ahead). */
    size_t ahead;
    /* Jobs whose rows are committed, their files owed: handed on by the purge's thread once it has
     * its answer (purge_files). */
    struct purge_job *files_owed;
    /* Answered: their files, one job in the ordered queue at a time (files_queued), so that a
     * new download's file waits behind one run of unlinks, never behind every purge's. */
    struct purge_job *files_next;
    bool files_queued;
} purges = {.lock = PTHREAD_MUTEX_INITIALIZER, .ended = PTHREAD_COND_INITIALIZER};

/* The slice's objects are queued for the disk. */
static void ahead_queued(size_t n)
{
    pthread_mutex_lock(&purges.lock);
    purges.ahead += n;
    pthread_mutex_unlock(&purges.lock);
}

/* Persistence thread: `n` of them are removed. */
static void ahead_made(size_t n)
{
    pthread_mutex_lock(&purges.lock);
    assert(purges.ahead >= n);
    purges.ahead -= n;
    pthread_mutex_unlock(&purges.lock);
}

size_t store_purge_ahead(void)
{
    pthread_mutex_lock(&purges.lock);
    size_t ahead = purges.ahead;
    pthread_mutex_unlock(&purges.lock);
    return ahead;
}

/* Before a walk's next slice (purges at once take turns at the store's lock, a slice each):
 * false when arca stops, and the walk ends here. */
static bool purge_going(void)
{
    pthread_mutex_lock(&purges.lock);
    bool go = !purges.closing;
    pthread_mutex_unlock(&purges.lock);
    return go;
}

static void purge_job_free(struct purge_job *p)
{
    if (p)
        free(p->urls);
    free(p);
}

/* Persistence thread (or the submitter, before it runs): the slices' jobs whose rows the open
 * transaction deleted. Committed, they wait for their purge's answer before their files
 * (purge_files): a crash leaves no row without its file. */
static struct {
    bool open;
    struct purge_job *head;
} deleting;

static void rows_begin(void)
{
    index_begin();
    deleting.open = true;
}

static void rows_end(void)
{
    index_commit();
    deleting.open = false;
    pthread_mutex_lock(&purges.lock);
    for (struct purge_job *p = deleting.head, *next; p; p = next) {
        next = p->after;
        p->after = purges.files_owed;
        purges.files_owed = p;
    }
    pthread_mutex_unlock(&purges.lock);
    deleting.head = NULL;
}

/* Slices queued one after the other share a transaction (persist.h), as removals do. */
static const struct persist_group purge_rows = {
    .begin = rows_begin, .end = rows_end, .background = true};

/* Its rows, in the group's transaction, or in one of its own when it runs alone (no
 * persistence thread). */
static void delete_rows(struct purge_job *p)
{
    char key[65];
    bool alone = !deleting.open;
    if (alone)
        rows_begin();
    for (size_t i = 0, at = 0; i < p->n; i++) {
        next_key(p, &at, key);
        index_delete(key);
    }
    p->rows_gone = true;
    p->after = deleting.head;
    deleting.head = p;
    if (alone)
        rows_end();
}

/* The next answered job's files queued, unless one is (`finished`: the one queued is done). */
static void next_files(bool finished)
{
    pthread_mutex_lock(&purges.lock);
    if (finished)
        purges.files_queued = false;
    struct purge_job *p = purges.files_queued ? NULL : purges.files_next;
    if (p) {
        purges.files_next = p->after;
        purges.files_queued = true;
    }
    pthread_mutex_unlock(&purges.lock);
    if (p)
        persist_submit_background(&p->job);
}

/* Whether arca stops and has spent PURGE_STOP_FILES_US on the drain since it began. A stop goes
 * on with the files, unpaced (pace.h), so that a purge just before a restart leaves none
 * behind, but for so long only (and the run under way then): 100,000 took 2.5 s here, and the
 * service manager's patience covers the clients' grace period too. */
static bool stop_spent(void)
{
    return persist_stopping_for() > PURGE_STOP_FILES_US;
}

static void run_purge(struct persist_job *job)
{
    struct purge_job *p = (struct purge_job *)job;
    assert(persist_owns_index());
    if (!p->rows_gone) {
        delete_rows(p);
        return;
    }
    size_t before = p->done;
    if (stop_spent())
        p->done = p->n; /* left to the next start's sweep */
    else
        unlink_some(p);
    ahead_made(p->done - before);
    if (p->done < p->n) {
        persist_submit_background(&p->job); /* the rest behind what was queued meanwhile */
        return;
    }
    purge_job_free(p);
    next_files(true);
}

/* A purge answered (its rows gone on disk: persist_settle): every job whose rows are gone
 * handed on for its files (a purge at once with it may have added its slices to one of them:
 * their rows are gone too). */
static void purge_files(void)
{
    pthread_mutex_lock(&purges.lock);
    for (struct purge_job *p = purges.files_owed, *next; p; p = next) {
        next = p->after;
        p->after = purges.files_next;
        purges.files_next = p;
    }
    purges.files_owed = NULL;
    pthread_mutex_unlock(&purges.lock);
    next_files(false);
}

/* Lock held. Note `obj`'s URL in the slice's job (made on first use): false when out of
 * memory, and then the object stays (its file and row with it). */
static bool note_key(struct purge_job **job, const struct object *obj)
{
    struct purge_job *p = *job;
    size_t len = strlen(obj->url) + 1;
    if (!p && !(p = *job = calloc(1, sizeof(*p))))
        return false;
    if (p->len + len > p->room) {
        size_t room = 2 * (p->room + len) > 16384 ? 2 * (p->room + len) : 16384;
        char *urls = realloc(p->urls, room);
        if (!urls)
            return false;
        p->urls = urls;
        p->room = room;
    }
    memcpy(p->urls + p->len, obj->url, len);
    p->len += len;
    p->n++;
    return true;
}

/* Lock held; a download under the prefix. The expired copy it refreshes is purged as a complete
 * object is: it answers no more (stale-while-slow, stale-if-error: object_may_answer), is not
 * restored when the refresh fails (store_keep_stale), and its row goes in the slice's job (a
 * refresh has no row of its own); its file, under the key the download holds, goes when the
 * download ends (dropped as transient, or failed). */
static void purge_refreshed(struct object *obj, struct purge_job **job, struct purge_result *r)
{
    struct object *s = object_stale(obj);
    if (!s || s->purged)
        return;
    if (!note_key(job, obj)) {
        r->left++;
        return;
    }
    s->purged = true;
    r->objects++;
    r->bytes += s->length;
}

/* Lock held. One object under the prefix: a complete one out of the table (its file and row
 * into the job), a download let finish for its readers but not kept, nor its 404 kept as a
 * negative answer (store_negative.c), nor the copy it refreshes. */
static void purge_one(struct object *obj, struct purge_job **job, struct purge_result *r)
{
    if (obj->state == OBJ_FETCHING) {
        if (!obj->purged) {
            object_forsake(obj);
            r->downloads++;
        }
        purge_refreshed(obj, job, r);
        return;
    }
    if (!note_key(job, obj)) {
        r->left++;
        return;
    }
    r->objects++;
    r->bytes += obj->length;
    object_remove(obj, NULL); /* its file and row: the job's */
}

/* Lock held. A slice's rows queued before the lock drops, so that their removal comes before
 * the file and row of a new download of the same URL. */
static void submit_slice(struct purge_job *job)
{
    if (job && job->n) {
        job->job.run = run_purge;
        ahead_queued(job->n);
        persist_submit_grouped(&job->job, &purge_rows);
    } else {
        purge_job_free(job);
    }
}

/* Lock held since `since` (monotonic µs). The slots [from, to) of the table, or fewer when
 * store_purge_hold_us is up first: returns the slot after the last one visited. */
static size_t purge_slots(const struct purge_aim *aim, size_t from, size_t to, int64_t since,
                          struct purge_result *r)
{
    struct purge_job *job = NULL;
    size_t i = from;
    while (i < to) {
        for (struct object *o = object_slot(i), *next; o; o = next) {
            next = object_next(o);
            if (purge_aims_at(o->url, aim))
                purge_one(o, &job, r);
        }
        if (++i % PURGE_CLOCK_EVERY == 0 && monotonic_us() - since >= store_purge_hold_us)
            break;
    }
    submit_slice(job);
    return i;
}

/* The admin's purges here lately, newest last, for a parent arca asked for one of their URLs
 * after them (store_purged_since): a ring, the oldest forgotten first. Their own lock, a leaf
 * (taken under the store's by mark_purge): a download asking them holds up no hit. */
#define PURGE_MARKS 256
static struct purge_mark {
    struct purge_aim aim; /* its text owned; NULL: a free slot */
    int64_t at;           /* wall-clock s */
} marks[PURGE_MARKS];
static size_t marks_next;
static pthread_mutex_t marks_lock = PTHREAD_MUTEX_INITIALIZER;

/* Out of memory, the mark is not kept: the parent's copies are then taken as they come, as
 * before any purge. */
static void mark_purge(const struct purge_aim *aim)
{
    char *copy = strdup(aim->text);
    if (!copy)
        return;
    pthread_mutex_lock(&marks_lock);
    struct purge_mark *m = &marks[marks_next];
    free((char *)m->aim.text);
    *m = (struct purge_mark){{copy, aim->len, aim->end}, (int64_t)time(NULL)};
    marks_next = (marks_next + 1) % PURGE_MARKS;
    pthread_mutex_unlock(&marks_lock);
}

int64_t store_purged_since(const struct object *obj)
{
    int64_t latest = 0, now = (int64_t)time(NULL);
    CHECK_OBJ(obj);
    pthread_mutex_lock(&marks_lock);
    for (size_t i = 0; i < PURGE_MARKS; i++) {
        const struct purge_mark *m = &marks[i];
        if (m->aim.text && m->at > latest && purge_aims_at(obj->url, &m->aim))
            latest = m->at;
    }
    pthread_mutex_unlock(&marks_lock);
    return latest ? (now > latest ? now - latest : 0) : -1;
}

static void marks_free(void)
{
    pthread_mutex_lock(&marks_lock);
    for (size_t i = 0; i < PURGE_MARKS; i++) {
        free((char *)marks[i].aim.text);
        marks[i] = (struct purge_mark){0};
    }
    marks_next = 0;
    pthread_mutex_unlock(&marks_lock);
}

static bool purge_enter(void)
{
    pthread_mutex_lock(&purges.lock);
    bool open = !purges.closing;
    purges.running += open;
    pthread_mutex_unlock(&purges.lock);
    return open;
}

static void purge_leave(void)
{
    pthread_mutex_lock(&purges.lock);
    purges.running--;
    pthread_cond_broadcast(&purges.ended);
    pthread_mutex_unlock(&purges.lock);
}

void purges_allow(void)
{
    pthread_mutex_lock(&purges.lock);
    purges.closing = false;
    pthread_mutex_unlock(&purges.lock);
}

void purges_stop(void)
{
    pthread_mutex_lock(&purges.lock);
    purges.closing = true;
    while (purges.running > 0)
        pthread_cond_wait(&purges.ended, &purges.lock);
    pthread_mutex_unlock(&purges.lock);
    purge_files(); /* none is owed once each purge has its answer: so that none is ever left */
    marks_free();
}

/* Every slice of the table, again when it moved meanwhile (PURGE_PASSES); cut short when arca
 * stops (what is left stays, as an out-of-memory slice's objects do: counted in `left`). */
static void purge_table(const struct purge_aim *aim, struct purge_result *r)
{
    store_wait_loaded(); /* the rows not loaded yet would escape it */
    for (int pass = 0; pass < PURGE_PASSES; pass++) {
        store_lock();
        unsigned moves = st.objects.moves;
        size_t slots = object_slots();
        store_unlock();
        bool moved = false;
        for (size_t from = 0; from < slots && !moved;) {
            if (!purge_going())
                return;
            int64_t since = store_lock_slice();
            moved = st.objects.moves != moves;
            if (!moved) {
                size_t to = from + PURGE_SLOTS_PER_HOLD;
                from = purge_slots(aim, from, to < slots ? to : slots, since, r);
            }
            int64_t held = store_unlock_held(since);
            store_slice_pause(held, from < slots || moved);
        }
        if (!moved)
            break;
    }
}

/* The objects of every spelling of one URL (`aim`: its spelling, url_purge_prefix's): the
 * one its key names and those the spellings' index holds under it, in one hold of the lock;
 * false (nothing done) when they are more than a hold takes (PURGE_SLOTS_PER_HOLD: the walk's
 * slices take them then) or the list found no memory. */
static bool purge_spelt(const struct purge_aim *aim, struct purge_result *r)
{
    char key[65];
    size_t n;
    struct purge_job *job = NULL;
    url_key(aim->text, key);
    store_wait_loaded(); /* the rows not loaded yet are in neither */
    store_lock();
    void **spelt = spellings_named(aim->text, PURGE_SLOTS_PER_HOLD, &n);
    struct object *own = object_find_url(aim->text, key);
    if (n == SIZE_MAX) {
        store_unlock();
        return false;
    }
    if (own && purge_aims_at(own->url, aim))
        purge_one(own, &job, r);
    for (size_t i = 0; i < n; i++) { /* purge_one frees none of the others */
        struct object *o = spelt[i];
        if (purge_aims_at(o->url, aim))
            purge_one(o, &job, r);
    }
    submit_slice(job);
    store_unlock();
    free(spelt);
    return true;
}

/* Its own object (store_purge's answer for its key: a download under way is not purged here,
 * 409), then every other spelling of it: its objects, downloads and kept 404s, as a prefix
 * purge takes them (by the spellings' index; by a walk of the table when it has no memory). */
static int purge_spellings(const char *url, const struct purge_aim *aim, int64_t *length)
{
    struct purge_result r = {0};
    int rc = store_purge(url, length);
    if (rc == -1)
        return rc;
    store_lock();
    r.negatives = negative_forget_aimed(aim);
    mark_purge(aim); /* cached or not, the admin's word about the URL: a parent is told of it */
    store_unlock();
    if (!purge_spelt(aim, &r))
        purge_table(aim, &r);
    if (rc == 1)
        *length += r.bytes;
    else if (r.objects > 0 || r.negatives > 0) {
        *length = r.bytes;
        rc = 1;
    }
    return rc;
}

int store_purge_settled(const char *url, int64_t *length)
{
    char stack[4096], *folded = stack;
    size_t size = URL_BUF_SIZE(strlen(url) + 64);
    const char *why;
    int rc;
    *length = 0;
    if (!purge_enter())
        return 0; /* arca stops */
    if (size > sizeof(stack) && !(folded = malloc(size)))
        rc = -2;
    else if (url_purge_prefix(url, false, folded, size, NULL, &why) < 0)
        rc = store_purge(url, length); /* not foldable: its own key alone */
    else
        rc = purge_spellings(url, &(struct purge_aim){folded, strlen(folded), AIM_WHOLE}, length);
    if (rc == 1)
        persist_settle(); /* the rows' removals are the last jobs queued under the lock */
    purge_files();
    if (folded != stack)
        free(folded);
    purge_leave();
    return rc;
}

void store_purge_prefix(const char *prefix, bool bounded, struct purge_result *r)
{
    const struct purge_aim aim = {prefix, strlen(prefix), bounded ? AIM_SEGMENT : AIM_PREFIX};
    memset(r, 0, sizeof(*r));
    if (!purge_enter())
        return; /* arca stops: nothing purged, the answer says so */
    store_lock();
    r->negatives = negative_forget_aimed(&aim);
    mark_purge(&aim);
    store_unlock();
    purge_table(&aim, r);
    /* answered once on disk: a restart, even after kill -9, finds them gone (the files are
     * queued only then) */
    persist_settle();
    purge_files();
    purge_leave();
}

/* Lock held. The object of `url` (its key's), its kept 404 and a parent's copies of it. */
static void purge_named(const char *url, struct purge_job **job, struct purge_result *r)
{
    char key[65];
    url_key(url, key);
    struct object *obj = object_find_url(url, key);
    r->negatives += negative_forget(key);
    mark_purge(&(struct purge_aim){url, strlen(url), AIM_WHOLE});
    if (obj)
        purge_one(obj, job, r);
}

void store_purge_urls(char *const *urls, size_t n, struct purge_result *r)
{
    memset(r, 0, sizeof(*r));
    if (!purge_enter())
        return; /* arca stops: nothing purged, the answer says so */
    for (size_t from = 0; from < n; from += PURGE_SLOTS_PER_HOLD) {
        size_t to = from + PURGE_SLOTS_PER_HOLD < n ? from + PURGE_SLOTS_PER_HOLD : n;
        struct purge_job *job = NULL;
        if (!purge_going())
            break; /* arca stops: what is left stays, as a prefix's walk leaves it */
        int64_t since = store_lock_slice();
        for (size_t i = from; i < to; i++)
            purge_named(urls[i], &job, r);
        submit_slice(job);
        int64_t held = store_unlock_held(since);
        store_slice_pause(held, to < n);
    }
    persist_settle(); /* the slices' rows, then their files */
    purge_files();
    purge_leave();
}
