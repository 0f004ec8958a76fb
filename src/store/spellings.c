/* The index of spelt URLs (spellings.h): two tables over one entry, by the spelling a purge
 * names (to find them) and by the object's key (to take one out without computing its spelling
 * again, which may need memory). Only the objects whose URL is not plain have an entry: most
 * URLs are their own spelling, and a million of them cost nothing here. It holds objects by
 * pointer and knows nothing else of them (object.c hands it their URL and key). */
#include "store/spellings.h"
#include "store/table.h"
#include "url/fold.h"
#include "url/url.h"

#include <assert.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

struct spelt {
    struct table_node by_spelling; /* key: the sha256 of its spelling (first: spelt_of) */
    struct table_node by_object;   /* key: its object's */
    void *obj;                     /* its object (object.c's) */
};

static struct table by_spelling, by_object;

static struct spelt *spelt_of(struct table_node *n)
{
    return (struct spelt *)n;
}

static struct spelt *spelt_of_object(struct table_node *n)
{
    return (struct spelt *)((char *)n - offsetof(struct spelt, by_object));
}

char *spelling_of(const char *url, int *failed)
{
    size_t size = URL_BUF_SIZE(strlen(url) + FOLD_ROOM);
    char *out = malloc(size);
    const char *why;
    *failed = !out;
    if (out && url_purge_prefix(url, false, out, size, NULL, &why) < 0) {
        *failed = strcmp(why, "out of memory") == 0;
        free(out);
        out = NULL;
    }
    return out;
}

int spelling_plain(const char *url)
{
    /* the common URL in one pass: nothing the fold or the login's removal would change, and
     * no '#' (a "URL#..." form's spelling is the URL before it) */
    if (fold_keeps_url(url))
        return 1;
    int failed;
    char *spelling = spelling_of(url, &failed);
    int plain = failed ? -1 : !spelling || strcmp(spelling, url) == 0;
    free(spelling);
    return plain;
}

static void key_of(const char *spelling, uint8_t key[32])
{
    SHA256((const unsigned char *)spelling, strlen(spelling), key);
}

int spellings_add(void *obj, const char *url, const uint8_t key[32])
{
    int failed;
    char *spelling = spelling_of(url, &failed);
    struct spelt *s = spelling ? malloc(sizeof(*s)) : NULL;
    if (!s) { /* none (a URL a purge names by its key alone) cannot be: spelt says it has one */
        free(spelling);
        return -1;
    }
    key_of(spelling, s->by_spelling.key);
    free(spelling);
    memcpy(s->by_object.key, key, sizeof(s->by_object.key));
    s->obj = obj;
    if (table_add(&by_spelling, &s->by_spelling) < 0) {
        free(s);
        return -1;
    }
    if (table_add(&by_object, &s->by_object) < 0) {
        table_del(&by_spelling, &s->by_spelling);
        free(s);
        return -1;
    }
    return 0;
}

void spellings_del(const void *obj, const uint8_t key[32])
{
    struct table_node *n = table_find(&by_object, key);
    while (n && spelt_of_object(n)->obj != obj) /* a key's objects: one in the table at a time */
        n = table_find_next(n);
    assert(n); /* it entered the table, so it was indexed */
    if (!n)
        return;
    struct spelt *s = spelt_of_object(n);
    table_del(&by_object, &s->by_object);
    table_del(&by_spelling, &s->by_spelling);
    free(s);
}

void **spellings_named(const char *spelling, size_t *n)
{
    uint8_t key[32];
    void **out = NULL;
    size_t size = 0;
    key_of(spelling, key);
    *n = 0;
    for (struct table_node *t = table_find(&by_spelling, key); t; t = table_find_next(t)) {
        if (*n == size) {
            size = size ? 2 * size : 8;
            void **more = realloc(out, size * sizeof(*out));
            if (!more) {
                free(out);
                *n = SIZE_MAX;
                return NULL;
            }
            out = more;
        }
        out[(*n)++] = spelt_of(t)->obj;
    }
    return out;
}

size_t spellings_count(void)
{
    return by_spelling.count;
}

void spellings_free(void)
{
    for (size_t i = 0; i < table_slots(&by_spelling); i++) {
        for (struct table_node *t = table_slot(&by_spelling, i), *next; t; t = next) {
            next = t->next;
            free(spelt_of(t));
        }
    }
    table_free(&by_spelling);
    table_free(&by_object);
}
