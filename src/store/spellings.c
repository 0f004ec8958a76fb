/* The index of spelt URLs (spellings.h): one table of entries keyed by the sha256 of their
 * URL's spelling, the entries sharing one spelling on one chain. Only the objects whose URL is
 * not plain have an entry: most URLs are their own spelling, and a million of them cost nothing
 * here. It holds objects by pointer and knows nothing else of them. */
#include "store/spellings.h"
#include "store/table.h"
#include "base/digest.h"
#include "url/fold.h"
#include "url/url.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

struct spelling {
    struct table_node node; /* first: entry_of */
    uint8_t key[32];        /* the sha256 of its URL's spelling */
    void *obj;              /* its object, while indexed */
};

static struct table index_ = TABLE_KEYED(offsetof(struct spelling, key), 32);

static struct spelling *entry_of(struct table_node *n)
{
    return (struct spelling *)n;
}

static void key_of(const char *spelling, uint8_t key[32])
{
    sha256_of(spelling, strlen(spelling), key);
}

int spelling_entry(const char *url, struct spelling **out)
{
    int failed;
    char *spelling;
    *out = NULL;
    /* the common URL in one pass: nothing the fold or the login's removal would change, and
     * no '#' (a "URL#..." form's spelling is the URL before it) */
    if (fold_keeps_url(url))
        return 1;
    if (!(spelling = url_spelling(url, &failed)))
        return failed ? -1 : 1;
    int rc = 1;
    if (strcmp(spelling, url) != 0) {
        rc = (*out = calloc(1, sizeof(**out))) ? 0 : -1;
        if (*out)
            key_of(spelling, (*out)->key);
    }
    free(spelling);
    return rc;
}

void spelling_entry_free(struct spelling *s)
{
    free(s);
}

int spellings_add(struct spelling *s, void *obj)
{
    if (table_add(&index_, &s->node) < 0)
        return -1;
    s->obj = obj;
    return 0;
}

void spellings_del(struct spelling *s)
{
    table_del(&index_, &s->node);
    s->obj = NULL;
}

void **spellings_named(const char *spelling, size_t max, size_t *n)
{
    uint8_t key[32];
    void **out = NULL;
    size_t size = 0;
    key_of(spelling, key);
    *n = 0;
    for (struct table_node *t = table_find(&index_, key); t; t = table_find_next(&index_, t)) {
        void **more = out;
        if (*n == size && *n < max) {
            size = size ? 2 * size : 8;
            more = realloc(out, size * sizeof(*out));
        }
        if (*n == max || !more) { /* more than max, or out of memory */
            free(out);
            *n = SIZE_MAX;
            return NULL;
        }
        out = more;
        out[(*n)++] = entry_of(t)->obj;
    }
    return out;
}

size_t spellings_count(void)
{
    return index_.count;
}

void spellings_free(void)
{
    table_free(&index_);
}
