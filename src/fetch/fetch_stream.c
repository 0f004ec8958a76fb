/* The streaming reader (fetch_req.h): an object still downloading (or just finished)
 * goes out from its growing file, span by span, as the upstream thread appends. */
#include "fetch/fetch_req.h"
#include "base/parse.h"
#include "stats/stats.h"
#include "store/store.h"

#include <assert.h>
#include <stdatomic.h>
#include <stdio.h>
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
    struct read_range terms = {r->end, r->has_expect ? r->expect : NULL, SPAN_MIN};
    ssize_t n;

    if (r->end >= 0 && off >= r->end) {
        if (!r->has_expect && !r->trailer_at_end)
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

/* What one Want-Repr-Digest line says of sha-256 (the lines are one field: the last naming it
 * counts, and one that is not well-formed has the whole field ignored). */
struct wanted {
    int64_t pref;
    bool bad;
};

static void want_line(void *cls, const char *value)
{
    struct wanted *w = cls;
    int64_t pref;
    if (parse_want_digest(value, "sha-256", &pref) < 0)
        w->bad = true;
    else if (pref >= 0)
        w->pref = pref;
}

/* Whether the request asks for the body's sha-256 (RFC 9530 Want-Repr-Digest): a child arca's
 * does, to check what it receives from its parent (docs/CLUSTER.md, "Sites and tiers"). */
static bool wants_digest(struct fetch_req *r)
{
    struct wanted w = {0, false};
    conn_each_header(r->conn, "Want-Repr-Digest", want_line, &w);
    return !w.bad && w.pref > 0;
}

/* The Repr-Digest of an answer whose body went out while its object downloaded, as its trailer
 * (answer_trailer): asked once the spanner said ANSWER_END. A body that reached the object's end
 * has seen it COMPLETE (the store holds the last byte back until then), so its digest is known;
 * a body ending before the end (a range) says nothing. */
static size_t digest_trailer(void *cls, char *buf, size_t size)
{
    struct fetch_req *r = cls;
    assert(r->magic == FETCH_MAGIC && http_on_pool() && r->obj);
    struct object_meta meta;
    char value[FETCH_REPR_DIGEST_MAX];
    int n;
    store_snapshot(r->obj, &meta);
    if (meta.state != OBJ_COMPLETE || r->start + r->sent != meta.length)
        return 0;
    fetch_repr_digest(meta.digest, value);
    n = snprintf(buf, size, "Repr-Digest: %s\r\n", value);
    return n > 0 && (size_t)n < size ? (size_t)n : 0;
}

/* A request with &sha256=, or one that wants the body's digest (Want-Repr-Digest), on an object
 * still downloading goes out chunked, without Content-Length: the body of the first may yet be
 * cut (clients that do not check a length, python-requests among them, still see a missing
 * final chunk as an error); the second gets Repr-Digest as a trailer, once the object is
 * complete. HTTP/1.0 has no chunks: an answer with sha256 waits for the object to complete
 * instead, and one that wants the digest keeps its length, without it. Other requests keep
 * their length, and so does one whose client checks it (r->keep_length). */
static bool digest_pending(const struct fetch_req *r, const struct object_meta *meta, bool trailer)
{
    return ((r->has_expect && !r->keep_length) || trailer) && meta->state != OBJ_COMPLETE;
}

enum conn_result fetch_stream(struct fetch_req *r, const struct object_meta *meta)
{
    assert(r->magic == FETCH_MAGIC && http_handling(r->conn, r->req));
    enum conn_result ret = CONN_CLOSE;
    unsigned int status;
    struct answer *resp;
    int64_t body;
    bool trailer;

    if (meta->state == OBJ_FAILED || !meta->headers_ready)
        return fetch_refuse_download(r, meta,
                                     meta->error_status ? (unsigned int)meta->error_status : 502);
    if (meta->state == OBJ_COMPLETE && !fetch_digest_ok(r, meta))
        return fetch_refuse_object(r, meta, HTTP_BAD_GATEWAY,
                                   "the object's sha256 does not match the requested sha256");
    if (fetch_not_modified(r, meta, &ret) || fetch_apply_range(r, meta, &status, &ret) < 0)
        return ret;
    trailer = !r->head && !r->http10 && meta->state != OBJ_COMPLETE && wants_digest(r);
    r->trailer_at_end = trailer && r->end >= 0 && r->end == meta->length;
    body = r->end >= 0 && !digest_pending(r, meta, trailer) ? r->end - r->start : -1;
    resp = answer_spans(body >= 0 ? (uint64_t)body : ANSWER_SIZE_UNKNOWN, span_body, r);
    if (!resp)
        return CONN_CLOSE;
    fetch_add_headers(resp, meta, r);
    if (trailer) {
        answer_trailer(resp, digest_trailer, r);
        answer_header(resp, "Trailer", "Repr-Digest");
    }
    if (status == HTTP_PARTIAL_CONTENT)
        fetch_add_content_range(resp, r, meta->length);
    fetch_count_success(r, meta);
    return http_queue(r->conn, status, resp);
}
