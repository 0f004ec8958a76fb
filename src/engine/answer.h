/*
 * answer.h — the engine's side of handler.h's answers: what a built answer holds, for send.c.
 *
 * Contract: an answer is built by one thread (answer_* of handler.h); once queued it is never
 * changed, so connections of any worker may send it at once; each holds a reference
 * (answer_hold), and the last answer_put lets go of its body (frees it, closes its file, calls its
 * release: a mapped file's answer both releases its mapping and closes its file).
 */
#ifndef ARCA_ANSWER_H
#define ARCA_ANSWER_H

#include "engine/handler.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum answer_kind {
    ANSWER_MEM,  /* data[0..len) */
    ANSWER_FILE, /* len bytes of fd from off; also data[0..len) when mapped (answer_file_mapped) */
    ANSWER_READ, /* size bytes (or ANSWER_SIZE_UNKNOWN) from reader, block at a time */
    ANSWER_SPAN, /* the same from spanner, as spans of files (sendfile) */
};

struct answer {
    atomic_int refs;
    enum answer_kind kind;
    const char *data;
    uint64_t len; /* MEM, FILE: the body's bytes; READ: size */
    void (*release)(void *cls);
    void *release_cls;
    int fd;
    int64_t off;
    answer_reader reader;
    answer_spanner spanner;
    void *reader_cls;
    size_t block;
    char *headers; /* "Name: value\r\n" lines */
    size_t headers_len, headers_cap;
    bool close;                /* a "Connection: close" line was added */
    answer_trailer_fn trailer; /* answer_trailer's (NULL: none) */
    void *trailer_cls;
};

void answer_hold(struct answer *a);

#endif
