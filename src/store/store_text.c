/* The strings of an object (store_text.h): its key from its URL, its packed headers, and the
 * truncating copy readers' metadata is made with. No state but a thread's last key. */
#include "store/store_text.h"
#include "base/parse.h"
#include "store/store.h"

#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

/* The key a thread computed last, for the same URL asked again: a SHA-256 through OpenSSL 3's
 * one-shot call is a large share of a warm hit's work. */
static _Thread_local struct {
    size_t len; /* 0: none */
    char url[2048];
    char key[65];
} last_key;

void url_key(const char *url, char key[65])
{
    unsigned char d[SHA256_DIGEST_LENGTH];
    size_t len = strlen(url);
    if (len && len == last_key.len && !memcmp(url, last_key.url, len)) {
        memcpy(key, last_key.key, 65);
        return;
    }
    SHA256((const unsigned char *)url, len, d);
    format_sha256_hex(d, key);
    last_key.len = len < sizeof(last_key.url) ? len : 0;
    if (last_key.len) {
        memcpy(last_key.url, url, len);
        memcpy(last_key.key, key, 65);
    }
}

/* One allocation for the strings, none when upstream said nothing of them: a million
 * objects load at start. Returns -1 when out of memory. */
int headers_pack(const struct upstream_headers *h, char **out)
{
    const char *parts[HEADERS_PACKED] = {
        h->content_type, h->content_encoding, h->filename, h->last_modified, h->etag, h->redirects};
    size_t len[HEADERS_PACKED], total = 0;
    char *p;
    for (int i = 0; i < HEADERS_PACKED; i++)
        total += (len[i] = parts[i] ? strlen(parts[i]) : 0) + 1;
    *out = NULL;
    if (total == HEADERS_PACKED)
        return 0;
    if (!(p = *out = malloc(total)))
        return -1;
    for (int i = 0; i < HEADERS_PACKED; i++) {
        memcpy(p, parts[i] ? parts[i] : "", len[i] + 1);
        p += len[i] + 1;
    }
    return 0;
}

void headers_unpack(const char *packed, struct upstream_headers *h)
{
    const char **parts[HEADERS_PACKED] = {&h->content_type, &h->content_encoding,
                                          &h->filename,     &h->last_modified,
                                          &h->etag,         &h->redirects};
    for (int i = 0; i < HEADERS_PACKED; i++) {
        *parts[i] = packed ? packed : "";
        if (packed)
            packed += strlen(packed) + 1;
    }
}

/* Truncating copy; on every hit, where snprintf's formatting showed in the profile. */
void copy_string(char *dst, size_t size, const char *src)
{
    size_t n = src ? strnlen(src, size - 1) : 0;
    memcpy(dst, src ? src : "", n);
    dst[n] = '\0';
}
