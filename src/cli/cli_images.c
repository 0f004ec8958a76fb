/* arca images and arca purge IMAGE (cli_images.h): the images listing's pages read and printed,
 * an image's purge asked and its answer said. */
#include "cli/cli_images.h"
#include "cli/cli_ask.h"
#include "cli/cli_status.h"
#include "base/buf.h"
#include "web/charts.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Pages read at most: 200 of 50 images. */
#define PAGES_MAX 200
/* A column no wider than this: a longer name overflows it, the others stay aligned. */
#define COLUMN_MAX 48

/* Page `page` of the listing as JSON, or NULL with the refusal said (*rc its exit code). */
static json_t *ask_page(const char *server, int64_t page, int *rc)
{
    char path[64];
    struct buf body = {0};
    snprintf(path, sizeof(path), "/api/v1/images/?page=%lld", (long long)page);
    struct call q = {"GET", path, NULL, NULL, CALL_TIMEOUT_MS};
    long status = cli_ask(server, &q, &body, NULL, 0, NULL);
    json_t *doc = status == 200 ? json_loadb(body.data, body.len, 0, NULL) : NULL;
    *rc = 1;
    if (status == 200 && !doc)
        fprintf(stderr, "arca: %s: the images listing is no JSON\n", server);
    else if (status > 0 && status != 200)
        cli_refused(NULL, status, &body);
    buf_free(&body);
    return doc;
}

/* Every page's images in one array (NULL: a refusal said, *rc its exit code). */
static json_t *all_images(const char *server, bool *truncated, int *rc)
{
    json_t *all = json_array();
    int64_t pages = 1;
    for (int64_t page = 1; page <= pages && page <= PAGES_MAX; page++) {
        json_t *doc = ask_page(server, page, rc);
        if (!doc) {
            json_decref(all);
            return NULL;
        }
        pages = cli_json_int(doc, "pages");
        *truncated |= json_is_true(json_object_get(doc, "truncated")) || pages > PAGES_MAX;
        json_array_extend(all, json_object_get(doc, "images"));
        json_decref(doc);
    }
    return all;
}

static const char *text(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static int width(int now, const char *s)
{
    int n = (int)strlen(s);
    return n > now ? (n < COLUMN_MAX ? n : COLUMN_MAX) : now;
}

/* One line: registry, repository, tag ("<none>": a digest kept without a tag), its digest cut
 * as docker shows an image ID, the image's bytes and when it was last pulled. */
static void print_line(const int w[3], json_t *image, const char *tag, const char *digest)
{
    char size[32];
    format_bytes((double)cli_json_int(image, "bytes"), size, sizeof(size));
    printf("%-*s %-*s %-*s %-19.19s %10s  %s\n", w[0], text(image, "registry"), w[1],
           text(image, "repository"), w[2], tag, digest, size,
           json_is_string(json_object_get(image, "last_pulled")) ? text(image, "last_pulled")
                                                                 : "-");
}

static void print_table(json_t *images)
{
    int w[3] = {8, 10, 6}; /* REGISTRY, REPOSITORY, <none> */
    json_t *image, *digest;
    const char *tag;
    size_t i, k;
    json_array_foreach(images, i, image)
    {
        w[0] = width(w[0], text(image, "registry"));
        w[1] = width(w[1], text(image, "repository"));
        json_object_foreach(json_object_get(image, "tags"), tag, digest) w[2] = width(w[2], tag);
    }
    printf("%-*s %-*s %-*s %-19s %10s  %s\n", w[0], "REGISTRY", w[1], "REPOSITORY", w[2], "TAG",
           "DIGEST", "SIZE", "LAST PULLED");
    json_array_foreach(images, i, image)
    {
        json_object_foreach(json_object_get(image, "tags"), tag, digest)
            print_line(w, image, tag, json_string_value(digest));
        json_array_foreach(json_object_get(image, "untagged"), k, digest)
            print_line(w, image, "<none>", json_string_value(digest));
    }
}

int cli_images(const char *server, bool json)
{
    bool truncated = false;
    int rc;
    json_t *images = all_images(server, &truncated, &rc);
    if (!images)
        return rc;
    if (json) {
        json_t *doc = json_pack("{s:o, s:b}", "images", images, "truncated", truncated);
        char *out = doc ? json_dumps(doc, JSON_INDENT(2)) : NULL;
        if (out)
            puts(out);
        free(out);
        json_decref(doc);
        return out ? 0 : 1;
    }
    print_table(images);
    if (truncated)
        fprintf(stderr, "arca: the listing is cut short: more manifests are kept than one "
                        "listing reads\n");
    json_decref(images);
    return 0;
}

/* The purge's answer in one line. */
static void print_purged(json_t *a)
{
    char size[32];
    int64_t manifests = cli_json_int(a, "manifests"), blobs = cli_json_int(a, "blobs"),
            shared = cli_json_int(a, "kept_shared");
    format_bytes((double)cli_json_int(a, "bytes"), size, sizeof(size));
    printf("purged %s/%s %s: %lld manifest%s, %lld blob%s (%s)", text(a, "registry"),
           text(a, "repository"), text(a, "digest"), (long long)manifests,
           manifests == 1 ? "" : "s", (long long)blobs, blobs == 1 ? "" : "s", size);
    if (shared)
        printf("; %lld shared blob%s kept: another image lists %s", (long long)shared,
               shared == 1 ? "" : "s", shared == 1 ? "it" : "them");
    printf("\n");
}

int cli_purge_image(const char *server, const char *token, const char *ref)
{
    struct buf path = {0}, body = {0};
    json_t *answer;
    const char *line;
    int rc = 1;
    buf_add(&path, "/api/v1/purge/?image=");
    buf_query(&path, ref);
    struct call q = {"POST", path.data, "", token, CALL_TIMEOUT_MS};
    long status = cli_ask(server, &q, &body, NULL, 0, NULL);
    if (status == 200 && (answer = json_loadb(body.data, body.len, 0, NULL))) {
        print_purged(answer);
        json_decref(answer);
        rc = 0;
    } else if (status == 400) { /* the reference: bad usage, said as the server reads it */
        int len = cli_first_line(&body, &line);
        fprintf(stderr, "arca: %s: %.*s\n", ref, len, line);
        rc = 2;
    } else if (status > 0) {
        rc = cli_refused(ref, status, &body);
    }
    buf_free(&path);
    buf_free(&body);
    return rc;
}
