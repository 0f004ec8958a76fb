/*
 * prefetch.h — POST /api/v1/prefetch/ (admin token): a list of URLs, each taken through the fetch
 * course up to its lookup, as a client's request would be (the same URL checks, key and terms,
 * fetch_req.h's fetch_key and fetch_start_download), as arca's own request: no client, so every
 * rule's allow-network lets it in, and a download it starts counts against no client's share.
 *
 * Contract: the route's handler, on the server's threads; the body was taken by http/'s
 * http_prefetch_upload. Answers 202 with each URL's result: "started", "downloading",
 * "cached" or "error" (with "error": why).
 */
#ifndef ARCA_PREFETCH_H
#define ARCA_PREFETCH_H

#include "http/http_internal.h"

enum conn_result fetch_prefetch(struct conn *c, struct request *req, const char *rest);

#endif
