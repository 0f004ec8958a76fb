/*
 * registry.h — arca as a pull-through container registry mirror: the route /v2 (GET and HEAD of
 * /v2/, manifests, blobs and tags/list, answered as the distribution API does; every other
 * method 405 UNSUPPORTED, never sent upstream). Which registry a request is for: a path
 * namespace (/v2/<NAME>/<repository>/..., podman and skopeo's mirror location), containerd's
 * ?ns= (a NAME, a configured URL, its host[:port]), else --registry-default. Bad input is refused
 * here with the registry's JSON error and nothing is asked upstream; the rest is the fetch course
 * (fetch.h) of the upstream URL <registry
 * url>/v2/<repository>/<manifests|blobs|tags>/<reference|list>, once reg_auth.h has made sure a
 * token for "repository:<repository>:pull" is kept: a login the realm refused is answered 401/403,
 * an upstream that failed to answer leaves it to the fetch course (what is kept answers stale).
 *
 * Contract: the handler and its done run on the server's threads, in calls for their request;
 * the authorisation's answer comes on the upstream thread and only wakes the request (park.h);
 * a request whose registry needs nothing more (reg_auth_need: its token kept, or none needed)
 * is not parked, nor the upstream thread asked.
 * Every answer of the route goes out dressed (registry_dress): errors as
 * {"errors":[{"code","message"}]} with arca's Arca-Error line kept, every answer with
 * Docker-Distribution-API-Version, manifests and blobs with Docker-Content-Digest.
 */
#ifndef ARCA_REGISTRY_H
#define ARCA_REGISTRY_H

#include "http/http_internal.h"

/* The route (struct route). */
enum conn_result registry_route(struct conn *c, struct request *req, const char *rest);
const char *registry_done(struct request *req, bool completed);
/* The route's dress (http.h): every answer as a registry gives it, refusals at the head too. */
struct answer *registry_dress(struct request *req, unsigned int status, struct answer *a);
/* The same for a hit's shared answer (http.h's dress_shared): the lines a registry adds. */
const char *registry_dress_shared(struct request *req, const struct answer *a);

#endif
