/* s3_xml_parse: over any bytes and status, a page comes out whole: folders first, each a name
 * ending in '/', files never ending in '/', no empty name, a status of 200 or 502, and the
 * last page (no token) unless S3 said it was truncated. The input's first byte picks the HTTP
 * status; the rest is the answer's body, read as the folder "a/"'s listing. */
#include "fuzz.h"
#include "s3/s3_xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int statuses[] = {200, 403, 404, 500, 503};
    struct s3_page *p;
    if (size < 1 || !(p = calloc(1, sizeof(*p))))
        return 0;
    int status = statuses[data[0] % 5];
    if (s3_xml_parse((const char *)data + 1, size - 1, status, "a/", "lab", p) == 0) {
        if (p->n < p->n_folders || p->n_folders < 0 || (p->status != 200 && p->status != 502) ||
            (status != 200 && p->status == 200) || !memchr(p->error, '\0', sizeof(p->error)) ||
            strchr(p->error, '\n'))
            abort();
        for (int i = 0; i < p->n; i++) {
            size_t len = strlen(p->entries[i].name);
            if (!len || p->entries[i].folder != (i < p->n_folders) ||
                (p->entries[i].name[len - 1] == '/') != p->entries[i].folder)
                abort();
        }
    }
    s3_page_free(p);
    return 0;
}
