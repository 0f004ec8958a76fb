/*
 * source_req.h — a source's side of a request that is not its download's own attempt: a fill's
 * piece (fill.h) or a probe (probe.h). The request machine calls these hooks and names no kind;
 * the kind that gives them (parent.c's for a parent arca, source_registry.c's for a registry's
 * pull API) says what its requests carry and reads what its answers say. A plain origin or a
 * mirror gives none (ops NULL): nothing added, nothing read. A hook a kind has no use for is NULL.
 *
 * Contract: upstream thread only, but `request`, which runs on any thread (a probe's is asked
 * from the thread that asks the probe, for a handle no other thread has yet). `rec` is the kind's:
 * a fill's lives as long as its download (the kind's own record), a probe's is the probe's own,
 * made for it and freed by `release` when it ends.
 */
#ifndef ARCA_SOURCE_REQ_H
#define ARCA_SOURCE_REQ_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>

/* What the request is: a fill's piece of the body, or a probe's question. */
enum source_req_what {
    SOURCE_REQ_PIECE,
    SOURCE_REQ_PROBE,
};

struct source_req_ops {
    const char *name; /* who its failures name: "parent", "upstream" */
    /* Who a probe's failures name when `name` says too little (a registry's "registry NAME:"),
     * into out[size]. */
    void (*who)(void *rec, char *out, size_t size);
    /* A probe of it asks HEAD instead of one byte (a registry counts a GET of a manifest as a
     * pull, a HEAD not). */
    bool probe_head;
    /* What each request carries: lines appended to *headers (false: out of memory, *headers
     * left as it was or grown), and what it sets on the handle (a certificate it is shown). */
    bool (*request)(void *rec, enum source_req_what what, CURL *easy, struct curl_slist **headers);
    /* Its answer's status line, header lines (whole), and trailer lines (after a chunked body). */
    void (*status_line)(void *rec, const char *line);
    void (*header)(void *rec, const char *line);
    void (*trailer)(void *rec, const char *line);
    /* Its answer `status` in its own words, into why[size]: true when the status is a refusal
     * of its own (not the URL's: a probe's asker is told it failed, 502), false when it is the
     * URL's (why written still, for a failure it relays). */
    bool (*said)(void *rec, long status, char *why, size_t size);
    /* No answer came (`rc`, curl's `errbuf`): its own words for that (true: a TLS refusal of
     * the certificate it was shown), else false. */
    bool (*silent)(void *rec, CURLcode rc, const char *errbuf, char *why, size_t size);
    /* A probe's record goes (NULL: nothing to free). */
    void (*release)(void *rec);
};

/* The source a request asks: its hooks and its record (ops NULL: a plain URL's). */
struct source_req {
    const struct source_req_ops *ops;
    void *rec;
};

#endif
