/*
 * proxy.h — the proxy's route: GET|HEAD of an absolute-form target ("GET http://host/path",
 * what clients send to their http_proxy) that does not name arca itself (proxy_target.h).
 *
 * Contract: the URL is fetched exactly as /api/v1/fetch/?url= fetches it (fetch_proxied);
 * a target on arca's port whose host only a lookup can place is looked up first, off the worker
 * (http_offload.h), and if it is arca, the request is routed by its path as an origin-form one
 * (http_route_as_origin). The request's state is the lookup's, then the fetch's.
 */
#ifndef ARCA_FETCH_PROXY_H
#define ARCA_FETCH_PROXY_H

#include "http/http_internal.h"

enum conn_result proxy_route(struct conn *c, struct request *req, const char *rest);
const char *proxy_done(struct request *req, bool completed);

#endif
