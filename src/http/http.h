/*
 * http.h — the client side: libmicrohttpd daemon, routing, responses.
 *
 * Contract: http_start() binds the listening socket itself (so "port in use" comes back as a
 * clear error) and starts libmicrohttpd's epoll thread pool with suspend/resume. Handlers run on
 * those threads; a handler waiting for bytes suspends its connection and is resumed by the fetch
 * thread through the store's waiters — no polling. http_drain() stops accepting, makes health
 * answer 503 and waits (bounded) for open connections to finish.
 */
#ifndef ARCA_HTTP_H
#define ARCA_HTTP_H

#include "config.h"

#include <stddef.h>

int http_start(const struct config *cfg, char *err, size_t errlen);
void http_drain(int64_t grace_seconds);
void http_stop(void);
/* Read the admin token from cfg->admin_token_file ("" disables the admin API); at start and on
 * SIGHUP. -1 with err filled when the file is unreadable or the token too short. */
int http_load_admin_token(const struct config *cfg, char *err, size_t errlen);

#endif
