/* What a manifest lists (reg_manifest.h). */
#include "registry/reg_manifest.h"
#include "registry/reg_name.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The descriptor's (or blobSum's) digest appended, when it is a sha256. */
static void take(struct reg_manifest *m, json_t *text)
{
    const char *s = json_string_value(text);
    if (s && m->n < REG_MANIFEST_ENTRIES &&
        reg_digest_parse(s, json_string_length(text), m->digests[m->n]) == REG_OK)
        m->n++;
}

/* Each entry's `key` of the array `list` (a descriptor's "digest", a v1 layer's "blobSum"). */
static void take_all(struct reg_manifest *m, json_t *list, const char *key)
{
    size_t i;
    json_t *entry;
    json_array_foreach(list, i, entry) take(m, json_object_get(entry, key));
}

/* Room for every entry the document may list: 0, or -1 out of memory. */
static int make_room(struct reg_manifest *m, json_t *doc)
{
    size_t n = 1 + json_array_size(json_object_get(doc, "layers")) +
               json_array_size(json_object_get(doc, "manifests")) +
               json_array_size(json_object_get(doc, "fsLayers"));
    n = n < REG_MANIFEST_ENTRIES ? n : REG_MANIFEST_ENTRIES;
    return (m->digests = calloc(n, sizeof(*m->digests))) ? 0 : -1;
}

int reg_manifest_read(const char *data, size_t len, struct reg_manifest *out)
{
    json_t *doc = json_loadb(data, len, JSON_REJECT_DUPLICATES, NULL), *list;
    memset(out, 0, sizeof(*out));
    if (!json_is_object(doc) || make_room(out, doc) < 0) {
        json_decref(doc);
        return -1;
    }
    const char *type = json_string_value(json_object_get(doc, "mediaType"));
    snprintf(out->media_type, sizeof(out->media_type), "%s", type ? type : "");
    if (json_is_array(list = json_object_get(doc, "manifests"))) {
        out->kind = REG_MANIFEST_INDEX;
        take_all(out, list, "digest");
    } else if (json_is_object(json_object_get(doc, "config")) ||
               json_is_array(json_object_get(doc, "layers"))) {
        out->kind = REG_MANIFEST_IMAGE;
        take(out, json_object_get(json_object_get(doc, "config"), "digest"));
        take_all(out, json_object_get(doc, "layers"), "digest");
    } else if (json_is_array(list = json_object_get(doc, "fsLayers"))) {
        out->kind = REG_MANIFEST_IMAGE; /* schemaVersion 1: its layers by blobSum */
        take_all(out, list, "blobSum");
    }
    json_decref(doc);
    if (out->kind == REG_MANIFEST_UNKNOWN)
        reg_manifest_free(out);
    return out->kind == REG_MANIFEST_UNKNOWN ? -1 : 0;
}

void reg_manifest_free(struct reg_manifest *m)
{
    free(m->digests);
    m->digests = NULL;
    m->n = 0;
}

const char *reg_manifest_kind_name(enum reg_manifest_kind kind)
{
    return kind == REG_MANIFEST_IMAGE   ? "manifest"
           : kind == REG_MANIFEST_INDEX ? "index"
                                        : "unknown";
}
