/*
 * download.h — a download's words, shared by its course (transfer_course.c), its answer
 * (transfer_answer.c), the loop (upstream.c) and the units: the states it goes through (their
 * moves are transfer.h's) and what it asks of its object (store.h says what each call does).
 */
#ifndef ARCA_DOWNLOAD_H
#define ARCA_DOWNLOAD_H

#include "store/store.h"

#include <sys/types.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum transfer_state {
    TS_OPENING,
    TS_SOURCE,
    TS_PROBING,
    TS_ATTEMPT,
    TS_ASKING,
    TS_ENDED,
    TS_FILLING,
    TS_BACKOFF,
    TS_DONE,
    TS_FAILED,
};

/* What a transfer asks of its object (store.h says what each does). */
struct transfer_store {
    int (*begin_file)(struct object *obj, const char *source, void (*ready)(void *arg), void *arg);
    int (*file_ready)(struct object *obj);
    int (*take_prefix)(struct object *obj, EVP_MD_CTX *into);
    void (*snapshot)(struct object *obj, struct object_meta *out);
    void (*progress)(struct object *obj, struct download_progress *out);
    bool (*stale_validators)(struct object *obj, char *etag, size_t etag_size, char *date,
                             size_t date_size);
    int (*begin_body)(struct object *obj, int64_t length, const struct upstream_headers *h,
                      bool resumable);
    void (*continue_body)(struct object *obj);
    void (*staleness)(struct object *obj, int64_t if_error, int64_t while_revalidate);
    void (*from_parent)(struct object *obj, int64_t age, int64_t fresh, const char *cache_status);
    int (*restart)(struct object *obj, int64_t length, const struct upstream_headers *h);
    int (*restart_afresh)(struct object *obj);
    struct object *(*new_version)(struct object *obj, const char *reason, bool failure);
    int (*append)(struct object *obj, const char *data, size_t len);
    int (*write_at)(struct object *obj, int64_t off, const char *data, size_t len);
    void (*advance)(struct object *obj, int64_t to);
    int (*digest_range)(struct object *obj, EVP_MD_CTX *ctx, int64_t from, int64_t to);
    void (*set_rate)(struct object *obj, int64_t rate, int connections);
    int64_t (*announce)(struct object *obj);
    int (*finish)(struct object *obj, const uint8_t digest[32]);
    int (*renew)(struct object *obj);
    void (*fail)(struct object *obj, int status, const char *reason);
    void (*set_aside)(struct object *obj, const char *reason);
    void (*fail_held)(struct object *obj, int status, const char *reason, int retry_after);
    bool (*offer_stale)(struct object *obj, enum stale_cause cause, int fwd_status);
    int (*keep_stale)(struct object *obj, int status, int fwd_status, const char *reason,
                      bool said);
    void (*release)(struct object *obj);
    const char *(*url)(const struct object *obj);
    const char *(*error)(const struct object *obj);
    int (*error_status)(const struct object *obj);
    void (*came_from)(struct object *obj, const char *from);
    int64_t (*purged_since)(const struct object *obj);
    char *(*read_body)(struct object *obj, size_t max, size_t *len);
};
extern const struct transfer_store transfer_store_real;

#endif
