/* pypi_rewrite_html, pypi_rewrite_json (pypi_page.h). */
#include "remote/pypi_page.h"
#include "url/resolve.h"
#include "base/buf.h"
#include "base/parse.h"

#include <ctype.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Room for a link resolved: a base (the page's URL, or a <base href> of PYPI_LINK_MAX bytes
 * resolved against it) followed by a link of PYPI_LINK_MAX bytes. Longer: left as it is. */
#define RESOLVED_MAX (3 * PYPI_LINK_MAX)

/* What a page's links are worked in: on the heap, once per page (about 80 KiB, too much for
 * the stack of a thread that serves requests). */
struct links {
    pypi_link_fn *fn;
    void *arg;
    const char *base; /* the page's URL, or its first <base href> once read (`based`) */
    bool based;
    char href[PYPI_LINK_MAX + 1]; /* an href's value, unescaped */
    char base_url[RESOLVED_MAX];
    char abs[RESOLVED_MAX]; /* the link resolved; its fragment, if any, after the NUL */
    char made[RESOLVED_MAX + 512];
    char sha256[65];
    size_t out_max; /* the most the rewritten page may grow to (out_max_of) */
    size_t grown;   /* a JSON page: its bytes and its new links', which may not pass out_max */
};

/* The largest page a rewriting gives for a page of `len` bytes: a link grows by arca's path
 * ("/NAME/+sha256/HEX/+f/https/"), a few times a short link's size at most, never by a long
 * <base href> or page URL repeated for each of a million one-byte links (a hostile page of 200
 * KB made 160 MB). */
static size_t out_max_of(size_t len)
{
    return len < (PYPI_OUT_MAX - 65536) / 4 ? 4 * len + 65536 : PYPI_OUT_MAX;
}

static bool is_http(const char *url)
{
    struct url_parts u;
    return parse_url(url, strlen(url), &u) == URL_OK &&
           (url_scheme_is(&u, "http") || url_scheme_is(&u, "https"));
}

static struct links *links_new(const char *page_url, size_t len, pypi_link_fn *fn, void *arg)
{
    struct links *l;
    if (!is_http(page_url) || !(l = malloc(sizeof(*l))))
        return NULL;
    l->out_max = out_max_of(len);
    l->grown = 0;
    l->fn = fn;
    l->arg = arg;
    l->base = page_url;
    l->based = false;
    return l;
}

/* `ref` resolved against the base into l->abs, its fragment cut off (*frag: what followed the
 * '#', NULL when nothing did). False: leave the link as it is (too long, or not http(s) once
 * resolved: "mailto:", "javascript:"). */
static bool link_resolve(struct links *l, const char *ref, const char **frag)
{
    struct url_parts u;
    if (url_resolve(l->base, ref, l->abs, sizeof(l->abs)) < 0 || !is_http(l->abs))
        return false;
    parse_url(l->abs, strlen(l->abs), &u);
    *frag = u.fragment;
    if (u.fragment)
        l->abs[u.fragment - 1 - l->abs] = '\0';
    return true;
}

/* The URL the link becomes: the callback's, or the absolute one when it keeps the link. */
static const char *link_made(struct links *l, const char *sha256)
{
    if (l->fn(l->abs, sha256, l->made, sizeof(l->made), l->arg))
        return l->made;
    return l->abs;
}

/* `s` when it is 64 hex digits (either case) and nothing after them, in lower case. */
static const char *lower_sha256(struct links *l, const char *s)
{
    for (int i = 0; i < 64; i++) {
        int v = hex_digit(s[i]); /* -1 at the NUL of a shorter string: no read past it */
        if (v < 0)
            return NULL;
        l->sha256[i] = "0123456789abcdef"[v];
    }
    l->sha256[64] = '\0';
    return s[64] ? NULL : l->sha256;
}

/* An HTML link's digest: its fragment when that is "sha256=" and the hex digits (pip's form);
 * any other fragment ("md5=...") names none. */
static const char *fragment_sha256(struct links *l, const char *frag)
{
    if (!frag || strncmp(frag, "sha256=", 7))
        return NULL;
    return lower_sha256(l, frag + 7);
}

/* Code point `c` in UTF-8 into o; one HTML reads as U+FFFD (NUL, a surrogate, over U+10FFFF)
 * becomes that. Returns its length. */
static size_t put_utf8(unsigned long c, char *o)
{
    if (c == 0 || (c >= 0xD800 && c <= 0xDFFF) || c > 0x10FFFF)
        c = 0xFFFD;
    if (c < 0x80) {
        o[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        o[0] = (char)(0xC0 | c >> 6);
        o[1] = (char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        o[0] = (char)(0xE0 | c >> 12);
        o[1] = (char)(0x80 | (c >> 6 & 0x3F));
        o[2] = (char)(0x80 | (c & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | c >> 18);
    o[1] = (char)(0x80 | (c >> 12 & 0x3F));
    o[2] = (char)(0x80 | (c >> 6 & 0x3F));
    o[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}

/* A numeric character reference at s[0, n) after its "&#": decimal, or hex after 'x'; its ';'
 * optional as HTML reads it. Its code point's UTF-8 into o (*o_len); returns the bytes it took
 * from s, 0 when there is no digit (then the '&' is itself). */
static size_t numeric_ref(const char *s, size_t n, char *o, size_t *o_len)
{
    bool hex = n > 0 && (s[0] == 'x' || s[0] == 'X');
    size_t i = hex, digits = 0;
    unsigned long c = 0;
    for (; i < n; i++, digits++) {
        int v = hex ? hex_digit(s[i]) : isdigit((unsigned char)s[i]) ? s[i] - '0' : -1;
        if (v < 0)
            break;
        c = c > 0x10FFFF ? c : c * (hex ? 16 : 10) + (unsigned long)v; /* bounded: no overflow */
    }
    if (!digits)
        return 0;
    *o_len = put_utf8(c, o);
    return i < n && s[i] == ';' ? i + 1 : i;
}

/* A character reference at s[0, n) ('&' first) into o (*o_len bytes, at most 4): the named ones
 * a URL may hold, with their ';', and the numeric ones. Returns the bytes it took, 0 when it is
 * none (the '&' is itself, as HTML reads "&x"). */
static size_t char_ref(const char *s, size_t n, char *o, size_t *o_len)
{
    static const struct {
        const char *name;
        char c;
    } named[] = {{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
    if (n > 2 && s[1] == '#') {
        size_t took = numeric_ref(s + 2, n - 2, o, o_len);
        return took ? took + 2 : 0;
    }
    for (size_t i = 0; i < sizeof(named) / sizeof(named[0]); i++) {
        size_t len = strlen(named[i].name);
        if (n >= len && !strncasecmp(s, named[i].name, len)) {
            o[0] = named[i].c;
            *o_len = 1;
            return len;
        }
    }
    return 0;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r';
}

/* An attribute's value of n bytes, HTML-unescaped into l->href, blanks around it trimmed (as
 * HTML's URL reading does). A reference never writes more than it took ("&#0" is 3 bytes,
 * U+FFFD 3), so a value of PYPI_LINK_MAX bytes fits. False: over PYPI_LINK_MAX, or holding a
 * NUL that a C string cannot carry: left as it is. */
static bool href_read(struct links *l, const char *s, size_t n)
{
    size_t o = 0, i = 0, took, len;
    char ref[4];
    if (n > PYPI_LINK_MAX || memchr(s, '\0', n))
        return false;
    while (i < n && is_space(s[i]))
        i++;
    while (n > i && is_space(s[n - 1]))
        n--;
    while (i < n) {
        if (s[i] == '&' && (took = char_ref(s + i, n - i, ref, &len)) > 0) {
            memcpy(l->href + o, ref, len);
            o += len;
            i += took;
        } else {
            l->href[o++] = s[i++];
        }
    }
    l->href[o] = '\0';
    return true;
}

/* An attribute of a tag: its name, and its value (NULL when none is given) with its quote ('"',
 * '\'', or 0 unquoted). */
struct attr {
    const char *name, *value;
    size_t name_len, value_len;
    char quote;
};

/* The value after an attribute's '=' at p: quoted to its closing quote, else up to a blank or
 * '>'. Returns where the scan goes on, NULL when the page ends first. */
static const char *attr_value(const char *p, const char *end, struct attr *a)
{
    while (p < end && is_space(*p))
        p++;
    if (p == end)
        return NULL;
    if (*p == '"' || *p == '\'') {
        const char *close = memchr(p + 1, *p, (size_t)(end - p - 1));
        if (!close)
            return NULL;
        a->quote = *p;
        a->value = p + 1;
        a->value_len = (size_t)(close - p - 1);
        return close + 1;
    }
    a->value = p;
    while (p < end && !is_space(*p) && *p != '>')
        p++;
    a->value_len = (size_t)(p - a->value);
    return p;
}

/* The next attribute of a tag from p, read as HTML's tokenizer reads one (a '/' between them
 * skipped, a '=' first in a name part of it). Returns where the scan goes on: after the tag's
 * '>' with a->name_len 0 when that comes first; NULL when the page ends before the tag does. */
static const char *next_attr(const char *p, const char *end, struct attr *a)
{
    *a = (struct attr){0};
    while (p < end && (is_space(*p) || *p == '/'))
        p++;
    if (p == end)
        return NULL;
    if (*p == '>')
        return p + 1;
    a->name = p++;
    while (p < end && !is_space(*p) && *p != '/' && *p != '>' && *p != '=')
        p++;
    a->name_len = (size_t)(p - a->name);
    while (p < end && is_space(*p))
        p++;
    if (p == end)
        return NULL;
    return *p == '=' ? attr_value(p + 1, end, a) : p;
}

/* A page being rewritten: the output holds the page up to `done`. */
struct html {
    const char *end, *done;
    struct buf out;
    struct links *l;
};

static void emit(struct html *h, const char *upto)
{
    if (upto > h->done)
        buf_addn(&h->out, h->done, (size_t)(upto - h->done));
    h->done = upto;
}

/* The value of the attribute `v` replaced by `link` and its fragment, escaped; an unquoted one
 * written in '"' (a URL may hold '=' and '&', which an unquoted value may not). */
static void put_href(struct html *h, const struct attr *v, const char *link, const char *frag)
{
    emit(h, v->value);
    if (!v->quote)
        buf_add(&h->out, "\"");
    buf_html(&h->out, link);
    if (frag) {
        buf_add(&h->out, "#");
        buf_html(&h->out, frag);
    }
    if (!v->quote)
        buf_add(&h->out, "\"");
    h->done = v->value + v->value_len;
}

static void rewrite_link(struct html *h, const struct attr *v)
{
    struct links *l = h->l;
    const char *frag;
    if (!href_read(l, v->value, v->value_len) || !link_resolve(l, l->href, &frag))
        return;
    put_href(h, v, link_made(l, fragment_sha256(l, frag)), frag);
}

/* A <base href>: the first is the base of the links after it (as HTML and pip take only the
 * first), when it resolves against the page's URL to an http(s) one. Each is written back
 * empty: the new links are absolute or arca's own paths, to be read against the page arca
 * serves, never against the origin a base would name. */
static void take_base(struct html *h, const struct attr *v)
{
    struct links *l = h->l;
    const char *frag;
    if (!l->based && href_read(l, v->value, v->value_len) && link_resolve(l, l->href, &frag)) {
        memcpy(l->base_url, l->abs, strlen(l->abs) + 1);
        l->base = l->base_url;
    }
    l->based = true;
    put_href(h, v, "", NULL);
}

enum tag_kind { TAG_OTHER, TAG_A, TAG_BASE };

static enum tag_kind tag_kind(const char *name, size_t len)
{
    if (len == 1 && (name[0] == 'a' || name[0] == 'A'))
        return TAG_A;
    return len == 4 && !strncasecmp(name, "base", 4) ? TAG_BASE : TAG_OTHER;
}

/* The href `v` of a tag of `kind`, rewritten: an <a>'s link, a <base>'s base. */
static void rewrite_href(struct html *h, const struct attr *v, enum tag_kind kind)
{
    if (v->value && kind == TAG_A)
        rewrite_link(h, v);
    else if (v->value && kind == TAG_BASE)
        take_base(h, v);
}

/* A tag's attributes from p to its '>', its first and its last href rewritten for an <a> or a
 * <base>: HTML keeps the first of an attribute given twice, pip's parser (a dict of them) the
 * last, and either must lead through arca. Returns the byte after the tag, NULL when it is not
 * closed: nothing of it is rewritten then. */
static const char *tag_attrs(struct html *h, const char *p, enum tag_kind kind)
{
    struct attr a, first = {0}, last = {0};
    for (;;) {
        if (!(p = next_attr(p, h->end, &a)))
            return NULL;
        if (!a.name_len)
            break;
        if (a.name_len == 4 && !strncasecmp(a.name, "href", 4)) {
            if (!first.name_len)
                first = a;
            last = a;
        }
    }
    rewrite_href(h, &first, kind);
    if (last.name != first.name)
        rewrite_href(h, &last, kind);
    return p;
}

/* The markup at lt ('<'): a comment or a declaration skipped to its end, a start or end tag
 * read to its '>'. Returns where the scan goes on, NULL when the page ends inside it (the rest
 * is kept as it is). A '<' that opens none of them is text. */
static const char *markup(struct html *h, const char *lt)
{
    const char *p = lt + 1, *end = h->end, *name;
    bool closing = p < end && *p == '/';
    if ((size_t)(end - p) >= 3 && !memcmp(p, "!--", 3)) {
        const char *close = memmem(p + 1, (size_t)(end - p - 1), "-->", 3); /* "<!-->" ends */
        return close ? close + 3 : NULL;
    }
    p += closing;
    if (p < end && (*p == '!' || *p == '?' || (closing && !isalpha((unsigned char)*p)))) {
        const char *close = memchr(p, '>', (size_t)(end - p));
        return close ? close + 1 : NULL;
    }
    if (p == end || !isalpha((unsigned char)*p))
        return p;
    name = p;
    while (p < end && !is_space(*p) && *p != '/' && *p != '>')
        p++;
    return tag_attrs(h, p, closing ? TAG_OTHER : tag_kind(name, (size_t)(p - name)));
}

char *pypi_rewrite_html(const char *page, size_t len, const char *page_url, pypi_link_fn *fn,
                        void *arg, size_t *out_len)
{
    struct html h = {.end = page + len, .done = page};
    const char *p = page;
    char *body;
    if (!(h.l = links_new(page_url, len, fn, arg)))
        return NULL;
    while (p && p < h.end && h.out.len <= h.l->out_max) {
        const char *lt = memchr(p, '<', (size_t)(h.end - p));
        p = lt ? markup(&h, lt) : NULL;
    }
    emit(&h, h.end);
    h.out.failed |= h.out.len > h.l->out_max; /* too large: NULL */
    body = buf_take(&h.out, out_len);
    free(h.l);
    return body;
}

/* A JSON file's hashes.sha256, in lower case; NULL when it gives none that is 64 hex digits. */
static const char *hashes_sha256(struct links *l, json_t *file)
{
    json_t *sha256 = json_object_get(json_object_get(file, "hashes"), "sha256");
    return json_is_string(sha256) ? lower_sha256(l, json_string_value(sha256)) : NULL;
}

/* One of files[]: its url rewritten, a fragment kept on it. False: out of memory, or the page's
 * new links outgrow it (out_max_of). */
static bool rewrite_file(struct links *l, json_t *file)
{
    json_t *url = json_object_get(file, "url");
    struct buf b = {0};
    const char *frag;
    bool ok;
    if (!json_is_string(url) || json_string_length(url) > PYPI_LINK_MAX ||
        !link_resolve(l, json_string_value(url), &frag))
        return true;
    buf_add(&b, link_made(l, hashes_sha256(l, file)));
    if (frag) {
        buf_add(&b, "#");
        buf_add(&b, frag);
    }
    l->grown += b.len;
    ok = !b.failed && l->grown <= l->out_max && json_string_set(url, b.data) == 0;
    buf_free(&b);
    return ok;
}

/* About what jansson holds for a JSON text (measured with glibc's malloc): each object its
 * table, each member its pair and key, each value its node, an array its vector; strings' bytes
 * besides. A page of "{}," makes 78 times its size, a real PEP 691 page 5 times. */
static size_t tree_estimate(const char *p, size_t len)
{
    size_t cost = len;
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        if (in_string) {
            if (p[i] == '\\')
                i++; /* the byte it escapes */
            else if (p[i] == '"')
                in_string = false;
            continue;
        }
        switch (p[i]) {
        case '"':
            in_string = true;
            cost += 48;
            break;
        case '{':
            cost += 240;
            break;
        case '[':
            cost += 144;
            break;
        case ':':
            cost += 112;
            break;
        case ',':
            cost += 48;
            break;
        default:
            break;
        }
    }
    return cost;
}

char *pypi_rewrite_json(const char *page, size_t len, const char *page_url, pypi_link_fn *fn,
                        void *arg, size_t *out_len)
{
    /* a hostile page's tree would cost many times what a real page of its size does */
    json_t *root =
        tree_estimate(page, len) <= PYPI_TREE_MAX ? json_loadb(page, len, 0, NULL) : NULL;
    json_t *files = json_object_get(root, "files"), *file;
    struct links *l = NULL;
    char *body = NULL;
    size_t i;
    if (!json_is_array(files) || !(l = links_new(page_url, len, fn, arg)))
        goto out;
    l->grown = len;
    json_array_foreach(files, i, file)
    {
        if (!rewrite_file(l, file))
            goto out;
    }
    if ((body = json_dumps(root, JSON_COMPACT)))
        *out_len = strlen(body);
out:
    json_decref(root);
    free(l);
    return body;
}
