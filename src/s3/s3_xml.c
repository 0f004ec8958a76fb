/* ListObjectsV2 answers into pages (see s3_xml.h). */
#include "s3/s3_xml.h"
#include "base/buf.h"

#include <expat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    if (!name || !name[0] || name[strlen(name) - 1] != '/') { /* not one S3 would send */
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
    bool code_ok = ps->code[0] && strspn(ps->code, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstu"
                                                   "vwxyz0123456789.") == strlen(ps->code);
    p->status = 502;
    if (http_status == 401 || http_status == 403)
        snprintf(p->error, sizeof(p->error), "bucket %s: access denied by S3", bucket_name);
    else if (!strcmp(ps->code, "NoSuchBucket"))
        snprintf(p->error, sizeof(p->error), "bucket %s: S3 has no such bucket", bucket_name);
    else /* S3's code only when it looks like one: the reason is one line of plain text */
        snprintf(p->error, sizeof(p->error), "bucket %s: S3 answered %d%s%s", bucket_name,
                 http_status, code_ok ? " " : "", code_ok ? ps->code : "");
}

int s3_xml_parse(const char *xml, size_t len, int http_status, const char *prefix,
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
