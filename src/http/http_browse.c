/* GET|HEAD /browse/NAME/KEY: a file of a configured S3 bucket (buckets.h), through the same store
 * as /api/v1/fetch/. The cache key is the object's path-style URL, its stable name: never a
 * signature, so it stays a hit whoever asks and however often credentials rotate. Listings of
 * /browse/ and /browse/NAME/[PREFIX/] are the next step of the bucket work and answer 501. */
#include "buckets.h"
#include "http_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The object URL: the bucket's URL, '/', then the view's prefix and the key, every byte outside
 * A-Z a-z 0-9 - _ . ~ and '/' as %XX (upper case: the URL's normal form, and S3's encoding). */
static char *object_url(const struct bucket_auth *a, const char *key)
{
    static const char hex[] = "0123456789ABCDEF";
    const char *parts[2] = {a->bucket->prefix, key};
    size_t n = strlen(a->url) + 2 + 3 * (strlen(parts[0]) + strlen(parts[1]));
    char *out = malloc(n), *o;
    if (!out)
        return NULL;
    o = out + snprintf(out, n, "%s/", a->url);
    for (int i = 0; i < 2; i++) {
        for (const unsigned char *p = (const unsigned char *)parts[i]; *p; p++) {
            if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
                strchr("-_.~/", *p)) {
                *o++ = (char)*p;
            } else {
                *o++ = '%';
                *o++ = hex[*p >> 4];
                *o++ = hex[*p & 15];
            }
        }
    }
    *o = '\0';
    return out;
}

enum MHD_Result http_browse(struct MHD_Connection *c, struct request *req, const char *path,
                            bool head)
{
    size_t name_len = strcspn(path, "/");
    const struct bucket_auth *a;
    const char *key = path[name_len] ? path + name_len + 1 : "";
    char *url;

    if (req->route)
        return http_fetch_object(c, req, NULL, NULL, head);
    if (!path[0] || !(a = buckets_find(path, name_len)))
        return http_send_error(c, MHD_HTTP_NOT_FOUND, "unknown bucket '%.*s'",
                               (int)(name_len < 64 ? name_len : 64), path);
    if (!key[0] || key[strlen(key) - 1] == '/')
        return http_send_error(c, MHD_HTTP_NOT_IMPLEMENTED,
                               "bucket listings are not built yet; ask for a file: "
                               "/browse/%s/KEY",
                               a->bucket->name);
    if (strlen(key) > (size_t)http_cfg->max_url_len)
        return http_send_error(c, MHD_HTTP_URI_TOO_LONG, "key longer than --max-url-length");
    if (!(url = object_url(a, key)))
        return http_send_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    return http_fetch_object(c, req, url, a, head);
}
