/* Units for the spellings' index (store/spellings.h): what lets a purge of one URL take every
 * spelling of it without walking the table holds for every pair of URLs below: an object a
 * purge of U takes (url_is_spelling, what the walk asked of every object) is the one its key
 * names, or an object whose URL is not plain and whose spelling is U's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/object.h"
#include "store/spellings.h"
#include "url/url.h"

/* Spellings an origin may serve as one file, and URLs beside them that are not one. */
static const char *const raw[] = {
    "http://h/a/b",
    "http://h/a//b",
    "http://h//a/b",
    "http://h/a;v=1/b",
    "http://h/a%3Bv=1/b",
    "http://h/a/%62",
    "http://h/a/%2e/b",
    "http://h/a/x/%2E%2E/b",
    "http://user:pw@h/a/b",
    "http://user@h/a//b",
    "http://H./a/b",
    "http://h:80/a/b",
    "https://h/a/b",
    "http://h/a/b?x=1",
    "http://h/a/b?x=a//b;c%41",
    "http://h/a/bb",
    "http://h/a/b/",
    "http://h/a/b/c",
    "http://h/a/B",
    "http://127.0.0.1:8080/obj/1",
    "http://127.1:8080/obj/1",
    "http://2130706433:8080/obj/1",
    "http://0x7f.0.0.1:8080/obj/1",
    "http://0177.0.0.1:8080/obj/1",
    "http://[::ffff:127.0.0.1]:8080/obj/1",
    "http://[::1]:8080/obj/1",
    "http://[0:0::1]:8080/obj/1",
    "http://cafe.be/a",
    "http://cafe.be./a",
    "http://deadbeef/a",
    "http://example.com/a%20b",
    "http://example.com/a%2Fb",
    "http://example.com/%7Euser/",
    "http://example.com/~user/",
    "http://1.2.3.4./a",
    "http://01.2.3.4/a",
    "http://1.2.3/a",
    "http://1.2.3.256/a",
    "http://0X7F.0.0.1/a",
    "http://h:8080//a",
    "http://h:8080/a?q//x%41;y",
    "http://EXAMPLE.com/A",
    "http://abc.def/a",
    "http://a-b.c_d/a",
    "http://h/torch-2.0.0%2Bcu118.whl",
    "http://h/torch-2.0.0+cu118.whl",
    "http://h/a%2bb",
    "http://h/a%20b%25c",
    "http://h/a%3bb/c",
    "http://h/a%5Cb",
    "http://h/a%5cb",
    "http://h/a%2fb",
    "http://h/%7e/%2E%2E/a",
    "http://h/a%",
    "http://h/a%4",
    "http://h/a%zz",
    "http://gitlab.lab/api/v4/projects/group%2Fproject/packages",
};
#define RAW (sizeof(raw) / sizeof(raw[0]))

static char *objects[2 * RAW]; /* each normal form, and its "#json" form */
static size_t n_objects;

static int normal_forms(void **state)
{
    (void)state;
    char buf[1024];
    const char *why;
    int status;
    for (size_t i = 0; i < RAW; i++) {
        if (url_normalize(raw[i], strlen(raw[i]), buf, sizeof(buf), &status, &why) < 0)
            continue; /* a spelling no fetch could have cached */
        objects[n_objects++] = strdup(buf);
        strcat(buf, "#json");
        objects[n_objects++] = strdup(buf);
    }
    return 0;
}

static int free_forms(void **state)
{
    (void)state;
    for (size_t i = 0; i < n_objects; i++)
        free(objects[i]);
    return 0;
}

/* 1 when `url` is its own spelling (no entry), 0 when not, -1 out of memory. */
static int spelling_plain(const char *url)
{
    struct spelling *s;
    int rc = spelling_entry(url, &s);
    spelling_entry_free(s);
    return rc;
}

/* An object's spelling is what a purge of its URL names: url_purge_prefix's form. */
static void the_spelling_is_the_purges(void **state)
{
    (void)state;
    char folded[2048];
    const char *why;
    for (size_t i = 0; i < n_objects; i++) {
        int failed;
        char *spelling = url_spelling(objects[i], &failed);
        assert_false(failed);
        int rc = url_purge_prefix(objects[i], false, folded, sizeof(folded), NULL, &why);
        if ((rc < 0) != !spelling || (spelling && strcmp(spelling, folded) != 0))
            fail_msg("%s: spelling %s, a purge's %s", objects[i], spelling ? spelling : "(none)",
                     rc < 0 ? why : folded);
        free(spelling);
    }
}

/* The one pass (spelling_plain's) says plain only of a URL that is its own spelling. */
static void the_quick_answer_is_the_spellings_own(void **state)
{
    (void)state;
    assert_true(n_objects > RAW);
    for (size_t i = 0; i < n_objects; i++) {
        int failed;
        char *spelling = url_spelling(objects[i], &failed);
        assert_false(failed);
        int exact = !spelling || strcmp(spelling, objects[i]) == 0;
        if (spelling_plain(objects[i]) != exact)
            fail_msg("%s: plain %d, its spelling %s", objects[i], spelling_plain(objects[i]),
                     spelling ? spelling : "(none)");
        free(spelling);
    }
    assert_int_equal(spelling_plain("http://127.0.0.1:8080/obj/1"), 1);
    assert_int_equal(spelling_plain("http://h/a//b"), 0);
    assert_int_equal(spelling_plain("http://h/a/b#json"), 0);
    assert_int_equal(spelling_plain("http://u:p@h/a/b"), 0);
    assert_int_equal(spelling_plain("http://h/torch-2.0.0%2Bcu118.whl"), 1);
    assert_int_equal(spelling_plain("http://h/a%2Fb"), 0);
}

/* Every object a purge of U takes is named by U's spelling's key, or indexed under it. */
static void every_spelling_a_purge_takes_is_found_by_key_or_index(void **state)
{
    (void)state;
    char folded[2048];
    const char *why;
    int pairs = 0;
    for (size_t u = 0; u < RAW; u++) {
        if (url_purge_prefix(raw[u], false, folded, sizeof(folded), NULL, &why) < 0)
            continue;
        for (size_t o = 0; o < n_objects; o++) {
            if (!url_is_spelling(objects[o], folded, strlen(folded)))
                continue;
            pairs++;
            if (strcmp(objects[o], folded) == 0)
                continue; /* its key is the spelling's */
            int failed;
            char *spelling = url_spelling(objects[o], &failed);
            if (spelling_plain(objects[o]) != 0 || !spelling || strcmp(spelling, folded) != 0)
                fail_msg("a purge of %s takes %s, indexed under %s", raw[u], objects[o],
                         spelling ? spelling : "(nothing)");
            free(spelling);
        }
    }
    assert_true(pairs > 2 * (int)RAW); /* the corpus has spellings to find */
}

/* One allocation of this size fails (0: none), as out of memory would. */
static size_t failing_size;
void *__real_malloc(size_t n);
void *__wrap_malloc(size_t n)
{
    if (n && n == failing_size) {
        failing_size = 0;
        return NULL;
    }
    return __real_malloc(n);
}

/* The second review: a spelt URL's download that finds no memory for its live part frees its
 * extra part and its entry with it (LeakSanitizer, in the ASan units, finds them otherwise). */
static void a_download_without_memory_leaves_nothing_behind(void **state)
{
    (void)state;
    char key[65];
    url_key("http://h/a//b", key);
    failing_size = sizeof(struct object_live);
    assert_null(object_new("http://h/a//b", key));
    assert_int_equal(failing_size, 0); /* it was the live part that failed */
    struct object *o = object_new("http://h/a//b", key);
    assert_non_null(o);
    object_free(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_spelling_is_the_purges),
        cmocka_unit_test(the_quick_answer_is_the_spellings_own),
        cmocka_unit_test(every_spelling_a_purge_takes_is_found_by_key_or_index),
        cmocka_unit_test(a_download_without_memory_leaves_nothing_behind),
    };
    return cmocka_run_group_tests(tests, normal_forms, free_forms);
}
