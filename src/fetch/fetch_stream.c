/* The streaming reader (fetch_req.h): an object still downloading (or just finished)
 * goes out from its growing file, span by span, as the upstream thread appends. */
#include "fetch/fetch_req.h"
#include "stats/stats.h"
#include "store/store.h"

#include <assert.h>
#include <stdatomic.h>
#include <string.h>

/* A streamed body goes out as spans of the growing file, as large as the bytes there (at most
 * the engine's turn, 256 KiB): the engine sends them with sendfile, so nothing is copied and no
 * block is held per response. While the download runs, a span waits for SPAN_MIN bytes (or
 * STORE_HOLD_MS): curl appends 16 KiB at a time, and a span per append cost 50 clients of a
 * 100 MB/s download 300,000 wake-ups and sends a second (three syscalls each when chunked). */
#define SPAN_MIN (64 * 1024)

/* The body's next bytes as a span of the object's growing file (store_span). */
static ssize_t span_body(void *cls, uint64_t pos, size_t max, int *fd, int64_t *at)
{
    struct fetch_req *r = cls;
    assert(r->magic == FETCH_MAGIC && http_on_pool()); /* the connection's thread */
    int64_t off = r->start + (int64_t)pos;
    struct read_terms terms = {r->end, r->has_expect ? r->expect : NULL, SPAN_MIN};
    ssize_t n;

    if (r->end >= 0 && off >= r->end) {
        if (!r->has_expect)
            return ANSWER_END;
        max = 0; /* the last byte went out after the check; an empty body still needs it */
    } else if (r->end >= 0 && (int64_t)max > r->end - off) {
        max = (size_t)(r->end - off);
    }
    n = store_span(r->obj, off, max, &terms, &r->park, fd);
    if (n > 0) {
        *at = off;
        atomic_fetch_add(&stats.bytes_served, (int64_t)n);
        r->sent += n;
        return n;
    }
    if (n == 0)
        return 0; /* suspended until the upstream thread appends bytes */
    if (n == STORE_READ_END)
        return ANSWER_END;
    /* A failed or mismatching body must never look complete: cut it (no final chunk). */
    r->cut = true;
    return ANSWER_CUT;
}

/* A request with &sha256= on an object still downloading: its body may yet be cut, so it goes
 * out chunked, without Content-Length (clients that do not check a length, python-requests
 * among them, still see a missing final chunk as an error). HTTP/1.0 has no chunks: its answer
 * waits for the object to complete instead. Requests without sha256 keep their length. */
static bool digest_pending(const struct fetch_req *r, const struct object_meta *meta)
{
    return r->has_expect && meta->state != OBJ_COMPLETE;
}

enum conn_result fetch_stream(struct fetch_req *r, const struct object_meta *meta)
{
    assert(r->magic == FETCH_MAGIC && http_handling(r->conn, r->req));
    enum conn_result ret = CONN_CLOSE;
    unsigned int status;
    struct answer *resp;
    int64_t body;

    if (meta->state == OBJ_FAILED || !meta->headers_ready)
        return fetch_refuse_object(r, meta,
                                   meta->error_status ? (unsigned int)meta->error_status : 502,
                                   meta->error[0] ? meta->error : "download failed");
    if (meta->state == OBJ_COMPLETE && !fetch_digest_ok(r, meta))
        return fetch_refuse_object(r, meta, HTTP_BAD_GATEWAY,
                                   "the object's sha256 does not match the requested sha256");
    if (fetch_not_modified(r, meta, &ret) || fetch_apply_range(r, meta, &status, &ret) < 0)
        return ret;
    body = r->end >= 0 && !digest_pending(r, meta) ? r->end - r->start : -1;
    resp = answer_spans(body >= 0 ? (uint64_t)body : ANSWER_SIZE_UNKNOWN, span_body, r);
    if (!resp)
        return CONN_CLOSE;
    fetch_add_headers(resp, meta, r);
    if (status == HTTP_PARTIAL_CONTENT)
        fetch_add_content_range(resp, r, meta->length);
    fetch_count_success(r, meta);
    return http_queue(r->conn, status, resp);
}
