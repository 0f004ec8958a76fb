/* Bucket folders, page by page, from S3's ListObjectsV2, and the cache of pages (see s3_list.h). */
#include "s3_list.h"
#include "buckets.h"
#include "buf.h"
#include "log.h"
#include "upstream.h"

#include <expat.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- parsing ------------------------------------------------------------------------------- */

/* Where the parser is: the element under the root (Contents, CommonPrefixes, or a field of the
 * root itself) and the field being read. S3's answers are three levels deep at most. */
struct parse {
    struct s3_page *p;
    const char *prefix;
    size_t prefix_len;
    int depth;
    char group[32], field[32];
    struct buf text;
    struct s3_entry cur; /* the Contents being read */
    struct s3_entry *files;
    int n_files, cap_files, cap_folders;
    char code[64], message[200];
    int key_count;
    bool truncated, failed;
};

/* An element's local name: S3's answers carry a default namespace, which expat leaves alone. */
static const char *local(const char *name)
{
    const char *colon = strrchr(name, ':');
    return colon ? colon + 1 : name;
}

static void XMLCALL on_start(void *arg, const char *name, const char **attrs)
{
    struct parse *ps = arg;
    (void)attrs;
    ps->depth++;
    if (ps->depth == 2)
        snprintf(ps->group, sizeof(ps->group), "%s", local(name));
    if (ps->depth <= 3)
        snprintf(ps->field, sizeof(ps->field), "%s", local(name));
    ps->text.len = 0;
    if (ps->text.data)
        ps->text.data[0] = '\0';
    if (ps->depth == 2 && !strcmp(ps->group, "Contents"))
        memset(&ps->cur, 0, sizeof(ps->cur));
}

static void XMLCALL on_text(void *arg, const char *s, int len)
{
    struct parse *ps = arg;
    if (ps->text.len + (size_t)len <= 64 * 1024) /* keys are at most 1 KiB */
        buf_addn(&ps->text, s, (size_t)len);
}

static bool grow(void **items, int *cap, int n, size_t size)
{
    if (n < *cap)
        return true;
    int want = *cap ? 2 * *cap : 64;
    void *more = realloc(*items, (size_t)want * size);
    if (!more)
        return false;
    *items = more;
    *cap = want;
    return true;
}

/* A key or prefix below the folder; NULL when it is not below it (S3 would not send one). */
static char *below(struct parse *ps, const char *key)
{
    if (strncmp(key, ps->prefix, ps->prefix_len) != 0)
        return NULL;
    return strdup(key + ps->prefix_len);
}

/* "2026-11-22T16:51:32.000Z" */
static time_t parse_iso(const char *s)
{
    struct tm tm = {0};
    if (sscanf(s, "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec) != 6)
        return 0;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return timegm(&tm);
}

static void add_folder(struct parse *ps, const char *prefix)
{
    struct s3_page *p = ps->p;
    char *name = below(ps, prefix);
    if (!name || !name[0]) {
        free(name);
        return;
    }
    if (!grow((void **)&p->entries, &ps->cap_folders, p->n_folders, sizeof(*p->entries))) {
        free(name);
        ps->failed = true;
        return;
    }
    p->entries[p->n_folders++] = (struct s3_entry){.name = name, .folder = true};
    p->n = p->n_folders; /* join() adds the files */
}

/* A Contents: a file, unless it is a folder marker (a key ending in '/', the folder's own
 * among them), which S3 consoles create for empty folders. */
static void add_file(struct parse *ps)
{
    size_t len = ps->cur.name ? strlen(ps->cur.name) : 0;
    if (!len || ps->cur.name[len - 1] == '/') {
        free(ps->cur.name);
    } else if (!grow((void **)&ps->files, &ps->cap_files, ps->n_files, sizeof(*ps->files))) {
        free(ps->cur.name);
        ps->failed = true;
    } else {
        ps->files[ps->n_files++] = ps->cur;
    }
    ps->cur.name = NULL;
}

static void contents_field(struct parse *ps, const char *field, const char *text)
{
    if (!strcmp(field, "Key")) {
        free(ps->cur.name);
        ps->cur.name = below(ps, text);
    } else if (!strcmp(field, "Size")) {
        ps->cur.size = strtoll(text, NULL, 10);
    } else if (!strcmp(field, "LastModified")) {
        ps->cur.last_modified = parse_iso(text);
    } else if (!strcmp(field, "ETag")) {
        snprintf(ps->cur.etag, sizeof(ps->cur.etag), "%s", text);
    }
}

static void root_field(struct parse *ps, const char *field, const char *text)
{
    if (!strcmp(field, "IsTruncated")) {
        ps->truncated = !strcmp(text, "true");
    } else if (!strcmp(field, "NextContinuationToken")) {
        free(ps->p->next_token);
        if (!(ps->p->next_token = strdup(text)))
            ps->failed = true;
    } else if (!strcmp(field, "KeyCount")) {
        ps->key_count = atoi(text);
    } else if (!strcmp(field, "Code")) {
        snprintf(ps->code, sizeof(ps->code), "%s", text);
    } else if (!strcmp(field, "Message")) {
        snprintf(ps->message, sizeof(ps->message), "%s", text);
    }
}

static void XMLCALL on_end(void *arg, const char *name)
{
    struct parse *ps = arg;
    const char *text = ps->text.data && !ps->text.failed ? ps->text.data : "";
    if (ps->depth == 3 && !strcmp(ps->group, "Contents"))
        contents_field(ps, ps->field, text);
    else if (ps->depth == 3 && !strcmp(ps->group, "CommonPrefixes") && !strcmp(ps->field, "Prefix"))
        add_folder(ps, text);
    else if (ps->depth == 2 && !strcmp(local(name), "Contents"))
        add_file(ps);
    else if (ps->depth == 2)
        root_field(ps, ps->group, text);
    ps->depth--;
    ps->field[0] = '\0';
}

/* Folders, then files: one array. */
static int join(struct parse *ps)
{
    struct s3_page *p = ps->p;
    int n = p->n_folders + ps->n_files;
    struct s3_entry *all = realloc(p->entries, (size_t)(n ? n : 1) * sizeof(*all));
    if (!all)
        return -1;
    if (ps->n_files)
        memcpy(all + p->n_folders, ps->files, (size_t)ps->n_files * sizeof(*all));
    free(ps->files);
    ps->files = NULL;
    ps->n_files = 0;
    p->entries = all;
    p->n = n;
    return 0;
}

/* S3's error document (or none) as the client's status and reason. */
static void set_error(struct s3_page *p, int http_status, const struct parse *ps,
                      const char *bucket_name)
{
    p->status = 502;
    if (http_status == 401 || http_status == 403)
        snprintf(p->error, sizeof(p->error), "bucket %s: access denied by S3", bucket_name);
    else if (!strcmp(ps->code, "NoSuchBucket"))
        snprintf(p->error, sizeof(p->error), "bucket %s: S3 has no such bucket", bucket_name);
    else
        snprintf(p->error, sizeof(p->error), "bucket %s: S3 answered %d%s%s", bucket_name,
                 http_status, ps->code[0] ? " " : "", ps->code);
}

int s3_list_parse(const char *xml, size_t len, int http_status, const char *prefix,
                  const char *bucket_name, struct s3_page *p)
{
    struct parse ps = {.p = p, .prefix = prefix, .prefix_len = strlen(prefix)};
    XML_Parser x = XML_ParserCreate("UTF-8");
    int rc = -1;
    if (!x)
        return -1;
    XML_SetUserData(x, &ps);
    XML_SetElementHandler(x, on_start, on_end);
    XML_SetCharacterDataHandler(x, on_text);
    bool well_formed = XML_Parse(x, xml, (int)len, 1) == XML_STATUS_OK;
    if (ps.failed || join(&ps) < 0)
        goto out;
    if (http_status != 200) {
        set_error(p, http_status, &ps, bucket_name);
    } else if (!well_formed) {
        p->status = 502;
        snprintf(p->error, sizeof(p->error), "bucket %s: S3's listing is not valid XML: %s",
                 bucket_name, XML_ErrorString(XML_GetErrorCode(x)));
    } else {
        p->status = 200;
        p->empty_prefix = ps.key_count == 0 && p->n == 0;
        if (!ps.truncated || (p->next_token && !p->next_token[0])) {
            free(p->next_token); /* the last page, whatever else S3 said */
            p->next_token = NULL;
        }
    }
    rc = 0;
out:
    for (int i = 0; i < ps.n_files; i++)
        free(ps.files[i].name);
    free(ps.files);
    free(ps.cur.name);
    buf_free(&ps.text);
    XML_ParserFree(x);
    return rc;
}

void s3_page_free(struct s3_page *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->n; i++)
        free(p->entries[i].name);
    free(p->entries);
    free(p->next_token);
    free(p);
}

/* --- the cache ----------------------------------------------------------------------------- */

/* One page of one folder, as asked for: cached, or being fetched (page NULL or stale). */
struct slot {
    const struct bucket_auth *a;
    char *prefix, *token; /* token "" for a folder's first page */
    struct s3_page *page; /* the cache's reference; NULL until the first answer */
    bool fetching;
    struct s3_wait *waiters;
    struct slot *prev, *next; /* most recently used first */
};

static struct {
    pthread_mutex_t lock; /* guards everything here, and every page's refs */
    struct slot *head, *tail;
    size_t bytes;
} cache = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void unlink_slot(struct slot *s)
{
    *(s->prev ? &s->prev->next : &cache.head) = s->next;
    *(s->next ? &s->next->prev : &cache.tail) = s->prev;
    s->prev = s->next = NULL;
}

static void push_front(struct slot *s)
{
    s->next = cache.head;
    s->prev = NULL;
    *(cache.head ? &cache.head->prev : &cache.tail) = s;
    cache.head = s;
}

static void put_locked(struct s3_page *p)
{
    if (p && --p->refs == 0)
        s3_page_free(p);
}

static void drop_page(struct slot *s)
{
    if (s->page)
        cache.bytes -= s->page->bytes;
    put_locked(s->page);
    s->page = NULL;
}

static void free_slot(struct slot *s)
{
    unlink_slot(s);
    drop_page(s);
    free(s->prefix);
    free(s->token);
    free(s);
}

/* Least recently used first; a slot being fetched stays (its waiters hold on to it). */
static void evict(void)
{
    struct slot *s = cache.tail;
    while (cache.bytes > S3_LIST_CACHE_BYTES && s) {
        struct slot *prev = s->prev;
        if (!s->fetching)
            free_slot(s);
        s = prev;
    }
}

static struct slot *find(const struct bucket_auth *a, const char *prefix, const char *token)
{
    for (struct slot *s = cache.head; s; s = s->next)
        if (s->a == a && !strcmp(s->prefix, prefix) && !strcmp(s->token, token))
            return s;
    return NULL;
}

static bool fresh(const struct slot *s)
{
    return s->page && time(NULL) - s->page->fetched < s->a->bucket->listing_ttl;
}

static size_t page_bytes(const struct s3_page *p)
{
    size_t n = sizeof(*p) + (size_t)p->n * sizeof(*p->entries);
    for (int i = 0; i < p->n; i++)
        n += strlen(p->entries[i].name) + 1;
    return n;
}

/* The answer is in: cache it (a success), hand it to everyone waiting and wake them. */
static void complete(struct slot *s, struct s3_page *p)
{
    pthread_mutex_lock(&cache.lock);
    s->fetching = false;
    p->refs = 0;
    if (p->status == 200) {
        drop_page(s);
        p->bytes = page_bytes(p);
        p->refs = 1;
        s->page = p;
        cache.bytes += p->bytes;
    }
    for (struct s3_wait *w = s->waiters, *next; w; w = next) {
        next = w->next;
        p->refs++;
        w->page = p;
        w->next = NULL;
        w->wake(w->arg);
    }
    s->waiters = NULL;
    if (p->refs == 0)
        s3_page_free(p);
    if (!s->page)
        free_slot(s); /* nothing to keep: a failure is asked again next time */
    else
        evict();
    pthread_mutex_unlock(&cache.lock);
}

static struct s3_page *failed_page(int status, const char *fmt, const char *a, const char *b)
{
    struct s3_page *p = calloc(1, sizeof(*p));
    if (p) {
        p->status = status;
        snprintf(p->error, sizeof(p->error), fmt, a, b);
        p->fetched = time(NULL);
    }
    return p;
}

/* Upstream thread: S3's answer to one ListObjectsV2. */
static void on_answer(const struct probe_result *res, const char *body, size_t len, void *arg)
{
    struct slot *s = arg;
    const char *name = s->a->bucket->name;
    struct s3_page *p = calloc(1, sizeof(*p));
    if (p && res->status == 0) {
        p->status = 502;
        snprintf(p->error, sizeof(p->error), "bucket %s: S3 unreachable: %s", name, res->error);
    } else if (p && s3_list_parse(body, len, res->status, s->prefix, name, p) < 0) {
        s3_page_free(p);
        p = NULL;
    }
    if (p && p->status != 200)
        log_error("listing %s/%s: %s", name, s->prefix, p->error);
    if (!p) /* out of memory: those waiting still need an answer */
        p = failed_page(503, "bucket %s: out of memory listing '%s'", name, s->prefix);
    if (!p) {
        log_error("listing %s: out of memory", name);
        return;
    }
    p->fetched = time(NULL);
    complete(s, p);
}

/* ?continuation-token=&delimiter=/&list-type=2&max-keys=1000&prefix=: in the order and encoding
 * of SigV4's canonical query, because libcurl 7.88 signs the query as it is written. */
static char *list_url(const struct slot *s)
{
    struct buf b = {0};
    buf_addf(&b, "%s?", s->a->url);
    if (s->token[0]) {
        buf_add(&b, "continuation-token=");
        buf_query(&b, s->token);
        buf_add(&b, "&");
    }
    buf_addf(&b, "delimiter=%%2F&list-type=2&max-keys=%d&prefix=", S3_LIST_PAGE_KEYS);
    buf_query(&b, s->prefix);
    return buf_take(&b, NULL);
}

static struct slot *new_slot(const struct bucket_auth *a, const char *prefix, const char *token)
{
    struct slot *s = calloc(1, sizeof(*s));
    if (!s || !(s->prefix = strdup(prefix)) || !(s->token = strdup(token))) {
        if (s)
            free(s->prefix);
        free(s);
        return NULL;
    }
    s->a = a;
    push_front(s);
    return s;
}

static void start(struct slot *s)
{
    char *url = list_url(s);
    if (!url || upstream_get(url, s->a, on_answer, s) < 0) {
        struct s3_page *p = failed_page(503, "bucket %s: cannot ask S3 for '%s' now",
                                        s->a->bucket->name, s->prefix);
        if (p)
            complete(s, p);
        else
            log_error("listing %s: out of memory", s->a->bucket->name);
    }
    free(url);
}

int s3_list_get(const struct bucket_auth *a, const char *prefix, const char *token,
                struct s3_page **page, struct s3_wait *w)
{
    bool ask = false;
    pthread_mutex_lock(&cache.lock);
    struct slot *s = find(a, prefix, token ? token : "");
    if (s && fresh(s)) {
        unlink_slot(s);
        push_front(s);
        s->page->refs++;
        *page = s->page;
        pthread_mutex_unlock(&cache.lock);
        return 1;
    }
    if (!s && !(s = new_slot(a, prefix, token ? token : ""))) {
        pthread_mutex_unlock(&cache.lock);
        return -1;
    }
    ask = !s->fetching;
    s->fetching = true;
    w->page = NULL;
    w->next = s->waiters;
    s->waiters = w;
    w->sleep(w->arg);
    pthread_mutex_unlock(&cache.lock);
    if (ask)
        start(s);
    return 0;
}

void s3_list_unwait(struct s3_wait *w)
{
    pthread_mutex_lock(&cache.lock);
    for (struct slot *s = cache.head; s; s = s->next)
        for (struct s3_wait **q = &s->waiters; *q; q = &(*q)->next)
            if (*q == w) {
                *q = w->next;
                goto found;
            }
found:
    put_locked(w->page);
    w->page = NULL;
    pthread_mutex_unlock(&cache.lock);
}

void s3_list_put(struct s3_page *p)
{
    pthread_mutex_lock(&cache.lock);
    put_locked(p);
    pthread_mutex_unlock(&cache.lock);
}
