/*
 * http_internal.h — what the route handlers (http_fetch.c, http_info.c) share with http.c.
 */
#ifndef ARCA_HTTP_INTERNAL_H
#define ARCA_HTTP_INTERNAL_H

#include "config.h"

#include <microhttpd.h>
#include <stdatomic.h>
#include <stdbool.h>

extern const struct config *http_cfg;
extern atomic_bool http_draining;

/* Queue `r` and drop our reference to it (NULL: MHD_NO, the connection is closed). */
enum MHD_Result http_queue(struct MHD_Connection *c, unsigned int status, struct MHD_Response *r);

/* Queue a small text response; http_send_error's body is one line, the reason. */
enum MHD_Result http_send_text(struct MHD_Connection *c, unsigned int status, const char *type,
                               const char *body);
enum MHD_Result http_send_error(struct MHD_Connection *c, unsigned int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The same one-line body as a response not yet queued, for callers adding headers. */
struct MHD_Response *http_error_response(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/* /api/v1/fetch/[FILENAME]: the first call has *req_cls == NULL; later calls come after a
 * suspended connection was resumed. */
enum MHD_Result http_fetch(struct MHD_Connection *c, const char *filename, bool head,
                           void **req_cls);
void http_fetch_done(void *req_cls, enum MHD_RequestTerminationCode toe);

enum MHD_Result http_health(struct MHD_Connection *c);
enum MHD_Result http_status(struct MHD_Connection *c);
enum MHD_Result http_metrics(struct MHD_Connection *c);

#endif
