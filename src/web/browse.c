/* GET|HEAD /browse/... (see browse.h). Listing pages come from s3_list.h's cache. A file's cache
 * key is its path-style URL, its stable name: never a signature, so it stays a hit whoever asks
 * and however often credentials rotate. Pages are shared by every client, so what a client may
 * see of one is decided as it is written for that client, by the URL its entry would fetch. */
#include "web/browse.h"
#include "web/browse_view.h"
#include "config/buckets.h"
#include "web/charts.h"
#include "fetch/fetch.h"
#include "web/pages.h"
#include "rules/policy.h"
#include "s3/s3_list.h"
#include "stats/stats.h"
#include "url/url.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PAGE_MAX 1000000
#define BROWSE_MAGIC 0x3b40c6d5u
#define BROWSE_REQ_MAGIC 0x6a12e9f7u

enum browse_mode {
    LIST_HTML,    /* one page of a folder */
    LIST_JSON,    /* every entry of a folder: files, then folders, page after page */
    FOLDER_CHECK, /* S3 has no such file: is it a folder's name? */
};

/* One folder's walk, from the request's first call (or S3's 404 for a file) to its completion. */
struct browse {
    unsigned magic;
    struct conn *conn;
    const struct bucket_auth *a;
    enum browse_mode mode;
    char *folder;                 /* below the bucket's view: "" or ending in '/' */
    char *prefix;                 /* S3's: the view's prefix, then folder */
    int want;                     /* LIST_HTML: the page asked for (from 1) */
    int at;                       /* the number of `page` in the folder (from 1) */
    struct s3_page *first, *page; /* references; page may be first */
    struct s3_wait w;
    bool waiting;            /* w is queued: the connection is suspended until its page comes */
    char origin[300];        /* "http(s)://HOST", as the client named us: absolute URLs in JSON */
    struct browse_view view; /* what its client may see: the entries it is shown */
    /* LIST_JSON's body: */
    struct buf out;
    size_t out_off;
    int next;          /* the next entry of `page` to write */
    bool folders_pass; /* writing "folders" (files are done) */
    bool comma;        /* an entry is already in the current array */
    bool finished;     /* the closing bracket is in `out` */
    int64_t sent;      /* body bytes handed to the connection */
};

/* A /browse/ request's state: the file served, or the folder walked, or both (a file S3 did not
 * have, checked as a folder). */
struct browse_req {
    unsigned magic;
    struct conn *conn;
    struct request *req;
    bool is_file;           /* a file's request: the access log's cache column is the fetch's */
    struct fetch_req *file; /* NULL until the file is asked for */
    struct browse *list;    /* NULL until a folder is walked */
};

static struct browse *browse_of(struct park *p)
{
    struct browse *b = PARK_OWNER(p, struct browse, w.park);
    assert(b->magic == BROWSE_MAGIC);
    return b;
}

/* The park's sleep: the request's thread, in its handler or its content reader. */
static void suspend_conn(struct park *p)
{
    assert(http_on_pool());
    conn_suspend(browse_of(p)->conn);
}

/* The park's wake: the thread that put the page in the cache (park_flush). */
static void resume_conn(struct park *p)
{
    conn_resume(browse_of(p)->conn);
}

static void browse_free(struct park *p)
{
    struct browse *b = browse_of(p);
    b->magic = 0;
    buf_free(&b->out);
    free(b->folder);
    free(b->prefix);
    free(b);
}

/* --- paths and URLs ------------------------------------------------------------------------- */

/* "/browse/NAME/" then `path` (percent-encoded), onto `out`. */
static void browse_link(struct buf *out, const struct bucket_auth *a, const char *path)
{
    buf_add(out, "/browse/");
    buf_path(out, a->bucket->name);
    buf_add(out, "/");
    buf_path(out, path);
}

/* The host the client named (a name, an address, a port), else the listening address; https
 * when it asked over TLS. */
static void set_origin(struct browse *b)
{
    const char *host = conn_header(b->conn, "Host");
    bool tls = conn_tls(b->conn);
    if (host && host[0] && strlen(host) < 256 &&
        strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]") ==
            strlen(host))
        snprintf(b->origin, sizeof(b->origin), "http%s://%s", tls ? "s" : "", host);
    else if (tls && http_cfg->n_tls_listen > 0) /* no Host: the first TLS address */
        snprintf(b->origin, sizeof(b->origin), "https://%s:%d", http_cfg->tls_listen[0].host,
                 http_cfg->tls_listen[0].port);
    else
        snprintf(b->origin, sizeof(b->origin), "http://%s:%d", http_cfg->listen_host,
                 http_cfg->listen_port);
}

/* --- what a client may see ------------------------------------------------------------------ */

/* Whether entry `e` of the folder walked is shown to the client. */
static bool entry_shown(const struct browse *b, const struct s3_entry *e)
{
    char *path;
    bool shown;
    if (!b->view.judged)
        return true;
    if (!(path = malloc(strlen(b->folder) + strlen(e->name) + 1)))
        return false;
    strcpy(stpcpy(path, b->folder), e->name);
    shown = browse_view_sees(&b->view, b->a, path);
    free(path);
    return shown;
}

/* A folder every URL of which a rule refuses the client is refused it (403) as its files are,
 * before S3 is asked: nothing of it is listed, not even whether it exists. 0: not refused. */
static int refuse_folder(struct browse *b, enum conn_result *ret)
{
    char why[200];
    int closed = browse_view_closed(&b->view, b->a, b->folder, why, sizeof(why));
    if (closed < 0)
        *ret = http_send_error(b->conn, HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    else if (closed)
        *ret = http_send_error(b->conn, HTTP_FORBIDDEN, "%s", why);
    return closed ? -1 : 0;
}

/* --- pages of the folder -------------------------------------------------------------------- */

/* The next page of the walk is `p`. */
static void set_page(struct browse *b, struct s3_page *p)
{
    if (b->page && b->page != b->first)
        s3_list_put(b->page);
    b->page = p;
    if (++b->at == 1)
        b->first = p;
}

/* After a wait: whether its page has come (false: still suspended, nothing to do yet). */
static bool take_woken(struct browse *b)
{
    struct s3_page *p;
    if (!b->waiting)
        return true;
    if (!(p = s3_list_take(&b->w)))
        return false;
    b->waiting = false;
    set_page(b, p);
    return true;
}

/* Ask for the page after `page` (the first when there is none): 1 it is `page` now, 0 the
 * connection waits for it, -1 out of memory. */
static int next_page(struct browse *b)
{
    struct s3_page *p;
    int rc = s3_list_get(b->a, b->prefix, b->page ? b->page->next_token : NULL, &p, &b->w);
    if (rc == 1)
        set_page(b, p);
    b->waiting = rc == 0;
    return rc;
}

/* --- the HTML page -------------------------------------------------------------------------- */

static void breadcrumb(struct buf *o, const struct browse *b)
{
    const char *f = b->folder;
    buf_add(o, "<h1 class=\"crumbs\"><a href=\"/browse/\">Buckets</a> / <a href=\"");
    browse_link(o, b->a, "");
    buf_add(o, "\">");
    buf_html(o, b->a->bucket->name);
    buf_add(o, "</a> / ");
    for (const char *slash; (slash = strchr(f, '/')); f = slash + 1) {
        char *upto = strndup(b->folder, (size_t)(slash + 1 - b->folder));
        char *seg = strndup(f, (size_t)(slash - f));
        if (upto && seg) {
            buf_add(o, "<a href=\"");
            browse_link(o, b->a, upto);
            buf_add(o, "\">");
            buf_html(o, seg);
            buf_add(o, "</a> / ");
        }
        free(upto);
        free(seg);
    }
    buf_add(o, "</h1>");
}

static void entry_link(struct buf *o, const struct browse *b, const char *name)
{
    char *path = malloc(strlen(b->folder) + strlen(name) + 1);
    if (!path) {
        o->failed = true;
        return;
    }
    strcpy(stpcpy(path, b->folder), name);
    browse_link(o, b->a, path);
    free(path);
}

static void entry_row(struct buf *o, const struct browse *b, const struct s3_entry *e)
{
    char human[32], when[40];
    struct tm tm;
    buf_addf(o, "<tr class=\"%s\"><td class=\"name\"><a href=\"", e->folder ? "folder" : "file");
    entry_link(o, b, e->name);
    buf_add(o, "\">");
    buf_html(o, e->name);
    buf_add(o, "</a></td>");
    if (e->folder) {
        buf_add(o, "<td></td><td></td><td></td><td></td></tr>");
        return;
    }
    format_bytes((double)e->size, human, sizeof(human));
    gmtime_r(&e->last_modified, &tm);
    strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
    buf_addf(o,
             "<td class=\"num\">%s</td><td class=\"num\">%lld</td><td class=\"num\">%s</td>"
             "<td class=\"etag\"><code>",
             human, (long long)e->size, when);
    buf_html(o, e->etag);
    buf_add(o, "</code></td></tr>");
}

static void pager(struct buf *o, const struct browse *b)
{
    buf_add(o, "<div class=\"pager\">");
    if (b->at > 1)
        buf_addf(o, "<a rel=\"prev\" href=\"?page=%d\">← previous</a>", b->at - 1);
    buf_addf(o, "<span class=\"muted\">page %d</span>", b->at);
    if (b->page->next_token)
        buf_addf(o, "<a rel=\"next\" href=\"?page=%d\">next →</a>", b->at + 1);
    buf_add(o, "</div>");
}

/* Listings may be kept as long as arca keeps them: Cache-Control says the bucket's listing-ttl,
 * and Age how much of it the page has used; a listing the rules wrote for its client is that
 * client's (private), never a shared cache's answer to another. */
static enum conn_result queue_listing(struct browse *b, struct answer *r, int64_t fetched)
{
    char v[40];
    if (r) {
        snprintf(v, sizeof(v), "%smax-age=%lld", b->view.judged ? "private, " : "",
                 (long long)b->a->bucket->listing_ttl);
        answer_header(r, "Cache-Control", v);
        snprintf(v, sizeof(v), "%lld",
                 (long long)(time(NULL) > fetched ? time(NULL) - fetched : 0));
        answer_header(r, "Age", v);
    }
    return http_queue(b->conn, HTTP_OK, r);
}

static enum conn_result html_page(struct browse *b)
{
    struct buf o = {0};
    const struct s3_page *p = b->page;
    int folders = 0, files = 0;
    char *title = malloc(strlen(b->a->bucket->name) + strlen(b->folder) + 2);
    browse_view_update(&b->view); /* the rules in force for this page */
    if (title)
        sprintf(title, "%s/%s", b->a->bucket->name, b->folder);
    web_page_begin(&o, title ? title : "Bucket", "/browse/");
    free(title);
    breadcrumb(&o, b);
    buf_add(&o, "<div class=\"card\"><table class=\"browse\"><thead><tr><th>Name</th>"
                "<th>Size</th><th>Bytes</th><th>Last modified</th><th>ETag</th></tr></thead>"
                "<tbody>");
    if (b->folder[0])
        buf_add(&o, "<tr class=\"folder\"><td class=\"name\"><a href=\"../\">../</a></td>"
                    "<td></td><td></td><td></td><td></td></tr>");
    for (int i = 0; i < p->n; i++) {
        if (!entry_shown(b, &p->entries[i]))
            continue;
        entry_row(&o, b, &p->entries[i]);
        *(p->entries[i].folder ? &folders : &files) += 1;
    }
    if (folders + files == 0)
        buf_add(&o, "<tr><td colspan=\"5\" class=\"muted\">Nothing here.</td></tr>");
    buf_add(&o, "</tbody></table>");
    pager(&o, b);
    buf_addf(&o,
             "<p class=\"muted\">%d folder%s and %d file%s on this page · "
             "<a href=\"?export=json\">JSON of the whole folder</a></p></div>",
             folders, folders == 1 ? "" : "s", files, files == 1 ? "" : "s");
    return queue_listing(b, web_page_response(&o), p->fetched);
}

/* hide-root: the bucket's root answers, but lists nothing. */
static enum conn_result hidden_root(struct browse *b)
{
    struct buf o = {0};
    web_page_begin(&o, b->a->bucket->name, "/browse/");
    breadcrumb(&o, b);
    buf_add(&o, "<div class=\"card\"><p>This bucket's root is not listed. Open a folder by its "
                "path: <code>");
    browse_link(&o, b->a, "");
    buf_add(&o, "FOLDER/</code></p></div>");
    return queue_listing(b, web_page_response(&o), time(NULL));
}

/* --- the JSON document ---------------------------------------------------------------------- */

static void json_entry(struct browse *b, const struct s3_entry *e)
{
    struct buf url = {0};
    char when[40];
    struct tm tm;
    buf_add(&url, b->origin);
    entry_link(&url, b, e->name);
    buf_add(&b->out, b->comma ? ", {\"Url\": " : "{\"Url\": ");
    buf_json(&b->out, url.failed ? "" : url.data);
    b->out.failed |= url.failed;
    buf_free(&url);
    b->comma = true;
    if (e->folder) {
        buf_add(&b->out, "}");
        return;
    }
    /* tuxpub's dates are Flask's: RFC 7231's IMF-fixdate. */
    gmtime_r(&e->last_modified, &tm);
    strftime(when, sizeof(when), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    buf_addf(&b->out, ", \"Size\": %lld, \"LastModified\": \"%s\", \"ETag\": ", (long long)e->size,
             when);
    buf_json(&b->out, e->etag);
    buf_add(&b->out, "}");
}

/* More of the document into `out`: 1 something done (maybe nothing written), 0 waiting for a
 * page (suspended), -1 the document cannot be completed (its body is cut). */
static int json_more(struct browse *b)
{
    if (!take_woken(b))
        return 0;
    const struct s3_page *p = b->page;
    if (p->status != 200 || b->out.failed)
        return -1;
    if (b->next < p->n) {
        browse_view_update(&b->view); /* the rules in force for this page */
        for (; b->next < p->n; b->next++)
            if (p->entries[b->next].folder == b->folders_pass &&
                entry_shown(b, &p->entries[b->next]))
                json_entry(b, &p->entries[b->next]);
        return 1;
    }
    b->next = 0;
    if (p->next_token)
        return next_page(b) < 0 ? -1 : b->waiting ? 0 : 1;
    if (!b->folders_pass) { /* the folders: the walk again, from the first page */
        b->folders_pass = true;
        b->comma = false;
        buf_add(&b->out, "], \"folders\": [");
        if (b->page != b->first)
            s3_list_put(b->page);
        b->page = b->first;
        return 1;
    }
    buf_add(&b->out, "]}\n");
    b->finished = true;
    return 1;
}

static ssize_t json_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct browse *b = cls;
    size_t n;
    assert(b->magic == BROWSE_MAGIC && http_on_pool());
    (void)pos;
    while (b->out_off == b->out.len) {
        if (b->finished)
            return ANSWER_END;
        b->out.len = b->out_off = 0;
        int rc = json_more(b);
        if (rc == 0)
            return 0; /* suspended until the page comes */
        if (rc < 0)   /* never a document that looks complete: no final chunk */
            return ANSWER_CUT;
    }
    n = b->out.len - b->out_off < max ? b->out.len - b->out_off : max;
    memcpy(buf, b->out.data + b->out_off, n);
    b->out_off += n;
    b->sent += (int64_t)n;
    return (ssize_t)n;
}

static enum conn_result json_document(struct browse *b)
{
    struct answer *r;
    buf_add(&b->out, "{\"files\": [");
    r = answer_read(ANSWER_SIZE_UNKNOWN, 64 * 1024, json_read, b);
    if (r)
        answer_header(r, "Content-Type", "application/json");
    return queue_listing(b, r, b->first->fetched);
}

/* 302 to the folder `path` of bucket `a`. */
static enum conn_result redirect(struct conn *c, const struct bucket_auth *a, const char *path)
{
    struct buf loc = {0};
    struct answer *r;
    browse_link(&loc, a, path);
    r = loc.failed ? NULL : http_error_response("a folder: see %s", loc.data);
    if (r)
        answer_header(r, "Location", loc.data);
    buf_free(&loc);
    return http_queue(c, HTTP_FOUND, r);
}

/* --- the walk ------------------------------------------------------------------------------- */

static enum conn_result answer(struct browse *b)
{
    const struct s3_page *first = b->first;
    if (b->mode == FOLDER_CHECK)
        return first->empty_prefix
                   ? http_send_error(b->conn, HTTP_NOT_FOUND,
                                     "bucket %s has no file or folder '%.*s'", b->a->bucket->name,
                                     (int)strlen(b->folder) - 1, b->folder)
                   : redirect(b->conn, b->a, b->folder);
    if (first->empty_prefix && b->folder[0])
        return http_send_error(b->conn, HTTP_NOT_FOUND, "bucket %s has no folder '%s'",
                               b->a->bucket->name, b->folder);
    atomic_fetch_add(&stats.bucket_listings, 1);
    if (b->mode == LIST_JSON)
        return json_document(b);
    if (b->at < b->want)
        return http_send_error(b->conn, HTTP_NOT_FOUND,
                               "page %d: this folder has %d page%s of at most %d entries", b->want,
                               b->at, b->at > 1 ? "s" : "", S3_LIST_PAGE_KEYS);
    return html_page(b);
}

/* Walk the folder's pages up to the one the answer needs, then answer. */
static enum conn_result advance(struct browse *b)
{
    int target = b->mode == LIST_HTML ? b->want : 1;
    assert(b->magic == BROWSE_MAGIC && http_on_pool());
    if (!take_woken(b))
        return CONN_GO_ON;
    while (!b->page || (b->page->status == 200 && b->at < target && b->page->next_token)) {
        int rc = next_page(b);
        if (rc < 0)
            return http_send_error(b->conn, HTTP_SERVICE_UNAVAILABLE,
                                   "out of memory listing bucket %s", b->a->bucket->name);
        if (rc == 0)
            return CONN_GO_ON; /* suspended; the server calls us again once the page is in */
    }
    if (b->page->status != 200)
        return http_send_error(b->conn, (unsigned int)b->page->status, "%s", b->page->error);
    return answer(b);
}

static struct browse *browse_new(struct browse_req *s, const struct bucket_auth *a,
                                 const char *folder)
{
    struct browse *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    s->list = b; /* let go by web_browse_done from here on */
    b->magic = BROWSE_MAGIC;
    b->conn = s->conn;
    b->a = a;
    b->want = 1;
    park_init(&b->w.park, suspend_conn, resume_conn, browse_free);
    set_origin(b);
    browse_view_init(&b->view, b->conn);
    b->folder = strdup(folder);
    b->prefix = malloc(strlen(a->bucket->prefix) + strlen(folder) + 1);
    if (!b->folder || !b->prefix)
        return NULL;
    strcpy(stpcpy(b->prefix, a->bucket->prefix), folder);
    return b;
}

static int64_t browse_done(struct browse *b)
{
    int64_t sent = b->sent;
    assert(b->magic == BROWSE_MAGIC);
    if (b->waiting)
        s3_list_unwait(&b->w);
    if (b->page && b->page != b->first)
        s3_list_put(b->page);
    if (b->first)
        s3_list_put(b->first);
    park_leave(&b->w.park); /* a wake-up still running holds b until it ends */
    return sent;
}

/* --- routes --------------------------------------------------------------------------------- */

static enum conn_result buckets_page(struct conn *c, bool json)
{
    struct buf o = {0};
    struct browse b = {.conn = c};
    struct answer *r;
    set_origin(&b);
    browse_view_init(&b.view, c);
    if (json) {
        buf_add(&o, "{\"files\": [], \"folders\": [");
    } else {
        web_page_begin(&o, "Buckets", "/browse/");
        buf_add(&o, "<h1>Buckets</h1><div class=\"card\"><table class=\"browse\"><thead><tr>"
                    "<th>Name</th></tr></thead><tbody>");
    }
    for (int i = 0, n = 0; i < http_cfg->n_buckets; i++) {
        const struct bucket_auth *a =
            buckets_find(http_cfg->buckets[i].name, strlen(http_cfg->buckets[i].name));
        if (!a || a->bucket->hide_root || !browse_view_sees(&b.view, a, ""))
            continue; /* a bucket whose every URL a rule refuses the client is not its to see */
        buf_add(&o, json ? (n++ ? ", {\"Url\": \"" : "{\"Url\": \"") : "<tr><td><a href=\"");
        if (json)
            buf_add(&o, b.origin);
        browse_link(&o, a, "");
        buf_add(&o, json ? "\"}" : "\">");
        if (!json) {
            buf_html(&o, a->bucket->name);
            buf_add(&o, "/</a></td></tr>");
        }
    }
    if (json) {
        size_t len;
        char *body;
        buf_add(&o, "]}\n");
        body = buf_take(&o, &len);
        /* the buckets shown are the client's where a rule names networks (queue_listing's) */
        if (b.view.judged)
            return http_send_private(c, HTTP_OK, "application/json", body, len);
        return http_send_owned(c, HTTP_OK, "application/json", body, len);
    }
    buf_add(&o, "</tbody></table></div>");
    r = web_page_response(&o);
    if (r)
        answer_header(r, "Cache-Control", b.view.judged ? "private, no-cache" : "no-cache");
    return http_queue(c, HTTP_OK, r);
}

/* Whether `key` has a "." or ".." segment: the URL's path would lose it on the way (RFC 3986
 * removes dot segments, and libcurl does), and the request would name another key, or another
 * bucket signed with this one's credentials. */
static bool dot_segment(const char *key)
{
    for (const char *seg = key;; seg++) {
        size_t n = strcspn(seg, "/");
        if ((n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
            return true;
        seg += n;
        if (!*seg)
            return false;
    }
}

/* ?export= and ?page= of a listing: 0, or -1 with the refusal queued. */
static int listing_params(struct browse *b, enum conn_result *ret)
{
    const char *export = conn_query(b->conn, "export");
    const char *page = conn_query(b->conn, "page");
    char *end;
    if (export && strcmp(export, "json")) {
        *ret = http_send_error(b->conn, HTTP_NOT_IMPLEMENTED,
                               "export=%.40s is not supported; export=json is", export);
        return -1;
    }
    b->mode = export ? LIST_JSON : LIST_HTML;
    if (page) {
        long n = strtol(page, &end, 10);
        if (!page[0] || *end || n < 1 || n > PAGE_MAX) {
            *ret = http_send_error(b->conn, HTTP_BAD_REQUEST,
                                   "bad page: expected a page number from 1 to %d", PAGE_MAX);
            return -1;
        }
        b->want = (int)n;
    }
    return 0;
}

static enum conn_result folder(struct browse_req *s, const struct bucket_auth *a, const char *path)
{
    struct conn *c = s->conn;
    enum conn_result ret = CONN_CLOSE;
    struct browse *b = browse_new(s, a, path);
    if (!b)
        return http_send_error(c, HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    if (listing_params(b, &ret) < 0 || refuse_folder(b, &ret) < 0)
        return ret;
    if (a->bucket->hide_root && !path[0]) {
        if (b->mode == LIST_HTML)
            return hidden_root(b);
        return http_send_text(c, HTTP_OK, "application/json", "{\"files\": [], \"folders\": []}\n");
    }
    return advance(b);
}

/* S3 has no file at the /browse/ path asked for: a folder of that name is redirected to (302),
 * else 404 (fetch_object's `missing`). */
static enum conn_result file_missing(void *arg)
{
    struct browse_req *s = arg;
    struct conn *c = s->conn;
    /* The key again, from the request line: the server decodes the path the same way. */
    size_t len = strcspn(s->req->uri, "?");
    char *path = strndup(s->req->uri, len), *key;
    const struct bucket_auth *a;
    struct browse *b;
    enum conn_result ret = CONN_CLOSE;
    assert(s->magic == BROWSE_REQ_MAGIC && http_handling(s->conn, s->req));
    if (path)
        url_unescape(path);
    if (!path || strncmp(path, "/browse/", 8) ||
        !(a = buckets_find(path + 8, strcspn(path + 8, "/"))) ||
        !(key = malloc(strlen(path) + 2))) {
        free(path);
        return http_send_error(c, HTTP_NOT_FOUND, "no such file");
    }
    sprintf(key, "%s/", path + 8 + strlen(a->bucket->name) + 1);
    b = browse_new(s, a, key);
    free(key);
    free(path);
    if (!b)
        return http_send_error(c, HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    b->mode = FOLDER_CHECK;
    if (refuse_folder(b, &ret) < 0)
        return ret;
    return advance(b);
}

/* The buckets' page, with ?export=json tuxpub's document of them. */
static enum conn_result buckets(struct conn *c)
{
    const char *export = conn_query(c, "export");
    if (export && strcmp(export, "json"))
        return http_send_error(c, HTTP_NOT_IMPLEMENTED,
                               "export=%.40s is not supported; export=json is", export);
    return buckets_page(c, export != NULL);
}

/* The bucket named [name, name + len) as this client may know it: one under which the rules let
 * it fetch nothing is not on its buckets page, and answers it as a bucket that does not exist
 * (NULL), never a redirect or a refusal that would say it does. */
static const struct bucket_auth *bucket_for(struct conn *c, const char *name, size_t len)
{
    const struct bucket_auth *a = buckets_find(name, len);
    struct browse_view v;
    if (!a)
        return NULL;
    browse_view_init(&v, c);
    return browse_view_sees(&v, a, "") ? a : NULL;
}

/* A request's first call: the path says a bucket's file or folder, or the buckets. */
static enum conn_result begin(struct browse_req *s, const char *path)
{
    struct conn *c = s->conn;
    size_t name_len = strcspn(path, "/");
    const struct bucket_auth *a;
    const char *rest = path + name_len + (path[name_len] == '/');
    char *url;

    const char *refusal = http_fetch_refusal(c);
    if (refusal)
        return http_send_error(c, HTTP_FORBIDDEN, "%s", refusal);
    s->is_file = path[name_len] == '/' && rest[0] && rest[strlen(rest) - 1] != '/';
    if (!path[0])
        return buckets(c);
    if (!(a = bucket_for(c, path, name_len)))
        return http_send_error(c, HTTP_NOT_FOUND, "unknown bucket '%.*s'",
                               (int)(name_len < 64 ? name_len : 64), path);
    if (strlen(rest) > (size_t)http_cfg->max_url_len)
        return http_send_error(c, HTTP_URI_TOO_LONG, "key longer than --max-url-length");
    if (!path[name_len]) /* the bucket's name alone: its root folder */
        return redirect(c, a, "");
    if (dot_segment(rest))
        return http_send_error(c, HTTP_BAD_REQUEST,
                               "a path with a '.' or '..' segment is not browsed");
    if (!rest[0] || rest[strlen(rest) - 1] == '/')
        return folder(s, a, rest);
    if (!(url = browse_url(a, rest)))
        return http_send_error(c, HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    return fetch_object(c, s->req, url, a, file_missing, s, &s->file);
}

static struct browse_req *browse_state(const struct request *req)
{
    struct browse_req *s = req->state;
    assert(!s || s->magic == BROWSE_REQ_MAGIC);
    return s;
}

enum conn_result web_browse(struct conn *c, struct request *req, const char *path)
{
    struct browse_req *s = browse_state(req);
    assert(http_handling(c, req));
    if (s && s->list)
        return advance(s->list);
    if (s && s->file)
        return fetch_resume(s->file);
    if (!s) {
        if (!(s = calloc(1, sizeof(*s))))
            return http_send_error(c, HTTP_INTERNAL_SERVER_ERROR, "out of memory");
        s->magic = BROWSE_REQ_MAGIC;
        s->conn = c;
        s->req = req;
        s->is_file = true; /* a refusal before the path is read is a fetch's error */
        req->state = s;
    }
    return begin(s, path);
}

const char *web_browse_done(struct request *req, bool completed)
{
    struct browse_req *s = browse_state(req);
    const char *cache;
    if (!s) /* refused before it began (405) */
        return fetch_finish(NULL, req, completed);
    assert(s->is_file || !s->file);
    cache = s->is_file ? fetch_finish(s->file, req, completed) : NULL;
    if (s->list) {
        int64_t sent = browse_done(s->list);
        if (sent > 0)
            req->bytes = sent;
    }
    s->magic = 0;
    free(s);
    req->state = NULL;
    return cache;
}

enum conn_result web_browse_root(struct conn *c, struct request *req, const char *rest)
{
    struct answer *r = http_error_response("see /browse/");
    (void)rest;
    assert(http_handling(c, req));
    if (r)
        answer_header(r, "Location", "/browse/");
    return http_queue(c, HTTP_FOUND, r);
}
