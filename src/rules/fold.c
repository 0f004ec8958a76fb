/* fold_url (fold.h). */
#include "rules/fold.h"
#include "url/url.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static bool unreserved(int c)
{
    return isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

static int hex(int c)
{
    return isdigit(c) ? c - '0' : isxdigit(c) ? tolower(c) - 'a' + 10 : -1;
}

/* Where the host ends in the authority [auth, path): at its port's ':' or at the path. */
static const char *host_end(const char *auth, const char *path)
{
    const char *bracket = memchr(auth, ']', (size_t)(path - auth)),
               *from = bracket ? bracket : auth;
    const char *colon = memchr(from, ':', (size_t)(path - from));
    return colon ? colon : path;
}

/* Whether anything in the URL folds: a host ending in a dot, a '%' or a "//" in its path. */
static bool folds(const char *host, const char *hend, const char *path, const char *end)
{
    return (hend > host && hend[-1] == '.') || memchr(path, '%', (size_t)(end - path)) ||
           memmem(path, (size_t)(end - path), "//", 2);
}

/* The path [p, end) into out: one '/' for each run, unreserved escapes decoded. */
static char *fold_path(const char *p, const char *end, char *out)
{
    while (p < end) {
        int hi, lo;
        if (*p == '/' && out[-1] == '/') {
            p++;
        } else if (*p == '%' && end - p >= 3 && (hi = hex(p[1])) >= 0 && (lo = hex(p[2])) >= 0 &&
                   unreserved(hi * 16 + lo)) {
            *out++ = (char)(hi * 16 + lo);
            p += 3;
        } else {
            *out++ = *p++;
        }
    }
    return out;
}

char *fold_url(const char *url, int *failed)
{
    const char *host = strstr(url, "://"), *hend, *path, *end;
    char *raw = NULL, *out = NULL, *w;
    int status;
    const char *why;
    *failed = 0;
    if (!host)
        return NULL;
    host += 3;
    path = host + strcspn(host, "/");
    end = path + strcspn(path, "?");
    hend = host_end(host, path);
    if (!*path || !folds(host, hend, path, end))
        return NULL;
    size_t len = strlen(url), size = URL_BUF_SIZE(len);
    if (!(raw = malloc(len + 2)) || !(out = malloc(size)))
        goto fail;
    const char *cut = hend; /* the host's final dots go */
    while (cut > host + 1 && cut[-1] == '.')
        cut--;
    memcpy(raw, url, (size_t)(cut - url));
    w = raw + (cut - url);
    memcpy(w, hend, (size_t)(path - hend));
    w += path - hend;
    *w++ = '/';
    w = fold_path(path + 1, end, w);
    strcpy(w, end);
    if (url_normalize(raw, strlen(raw), out, size, &status, &why) < 0 || !strcmp(out, url)) {
        free(out);
        out = NULL; /* nothing folded, or a form arca refuses: the URL as it is decides */
    }
    free(raw);
    return out;
fail:
    free(raw);
    free(out);
    *failed = 1;
    return NULL;
}
