#include "url/filename.h"
#include "url/url.h"
#include "base/parse.h"

#include <string.h>
#include <strings.h>

/* Separators, quotes and controls go first; then each run of dots keeps at most one (a run
 * of odd length): removing ".." before the separators would let "..\\." become ".." again. */
void filename_clean(const char *in, size_t len, char *out, size_t size)
{
    size_t n = 0, dots = 0;
    if (size == 0)
        return;
    for (size_t i = 0; i < len && n + 1 < size; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '/' || c == '\\' || c == '"' || c < 0x20 || c == 0x7f)
            continue;
        if (c == '.' && ++dots == 2) {
            n--; /* the pair goes */
            dots = 0;
            continue;
        }
        if (c != '.')
            dots = 0;
        out[n++] = (char)c;
    }
    out[n] = '\0';
}

void url_filename(const char *url, char *out, size_t size)
{
    char decoded[1024];
    const char *p = url;
    size_t path_len = 0; /* no scheme: no path, no name */
    parse_url_path(url, strlen(url), &p, &path_len);
    const char *seg = p;
    for (const char *q = p; q < p + path_len; q++)
        if (*q == '/')
            seg = q + 1;
    size_t seg_len = (size_t)(p + path_len - seg);
    if (seg_len >= sizeof(decoded))
        seg_len = sizeof(decoded) - 1;
    memcpy(decoded, seg, seg_len);
    decoded[seg_len] = '\0';
    size_t n = url_unescape(decoded); /* control bytes it decodes, NUL too, filename_clean drops */
    filename_clean(decoded, n, out, size);
}

/* The value of parameter `name` in a Content-Disposition: *len bytes from the pointer, or NULL.
 * A quoted value ends at its closing quote (backslash escapes are kept as they are). */
static const char *disposition_param(const char *v, const char *name, size_t *len)
{
    size_t n = strlen(name);
    for (const char *p = v; (p = strchr(p, ';')) != NULL; p++) {
        const char *q = p + 1;
        while (*q == ' ' || *q == '\t')
            q++;
        if (strncasecmp(q, name, n) != 0)
            continue;
        q += n;
        while (*q == ' ' || *q == '\t')
            q++;
        if (*q != '=')
            continue;
        q++;
        while (*q == ' ' || *q == '\t')
            q++;
        if (*q == '"') {
            const char *end = strchr(q + 1, '"');
            *len = end ? (size_t)(end - q - 1) : strlen(q + 1);
            return q + 1;
        }
        *len = strcspn(q, "; \t");
        return q;
    }
    return NULL;
}

void disposition_filename(const char *value, char *out, size_t size)
{
    char decoded[1024];
    size_t len;
    const char *v = disposition_param(value, "filename*", &len);
    out[0] = '\0';
    if (v && len > 7 && strncasecmp(v, "UTF-8''", 7) == 0 && len - 7 < sizeof(decoded)) {
        memcpy(decoded, v + 7, len - 7);
        decoded[len - 7] = '\0';
        size_t n = url_unescape(decoded);
        filename_clean(decoded, n, out, size);
    }
    if (!out[0] && (v = disposition_param(value, "filename", &len)) != NULL)
        filename_clean(v, len < size ? len : size - 1, out, size);
}
