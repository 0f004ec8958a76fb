/*
 * headers.h — what upstream said about an object's bytes: the six header values arca keeps with
 * each object (its index row, persist/index.h) and replays to clients (store.h's object_meta).
 * Only types and sizes: any thread, no state.
 */
#ifndef ARCA_HEADERS_H
#define ARCA_HEADERS_H

/* What upstream said about the bytes, replayed to clients; "" where it said nothing. A value
 * longer than its field in struct object_meta is dropped whole by the fetch side, never cut. */
struct upstream_headers {
    const char *content_type;
    const char *content_encoding; /* gzip bytes stay gzip: clients must be told */
    const char *filename;         /* from Content-Disposition, cleaned (url.h) */
    const char *last_modified;    /* the validator for If-Modified-Since and date If-Range */
    const char *etag;             /* upstream's own: what revalidation and signed-hit
                                     confirmation compare; arca's ETag is the sha256, this one
                                     only stands in for it on answers streamed before it is known */
    /* the URLs redirects took its download to, in order, each as shown (terms_hop_shown: no
     * secret, no query but one carrying a URL), one a line: what a child arca judges with its own
     * rules (docs/CLUSTER.md) */
    const char *redirects;
};
#define HEADER_TYPE_MAX 1024
#define HEADER_ENCODING_MAX 128
#define HEADER_FILENAME_MAX 256
#define HEADER_DATE_MAX 64
#define HEADER_ETAG_MAX 256
#define HEADER_REDIRECTS_MAX 2048

#endif
