/* The route table (routes.h). Order matters only where paths overlap: "/browse" alone before
 * "/browse/...", and the catch-all (a remote's paths) last. */
#include "web/routes.h"
#include "web/browse.h"
#include "http/http_connect.h"
#include "fetch/fetch.h"
#include "fetch/proxy.h"
#include "fetch/prefetch.h"
#include "http/http_internal.h"
#include "fetch/registry.h"
#include "fetch/remote.h"
#include "web/pages.h"
#include "base/parse.h"

#include <assert.h>
#include <string.h>

#define GET_HEAD "GET, HEAD"

const struct route routes[] = {
    /* the cache: the fetch endpoint, and S3 buckets' folders and files */
    {"/api/v1/fetch", ROUTE_TREE, GET_HEAD, fetch_route, NULL, fetch_done, false, 0, NULL, NULL,
     NULL},
    /* arca as an HTTP proxy: "GET http://host/path" (proxy.h), the same fetch */
    {"", ROUTE_PROXY, GET_HEAD, proxy_route, NULL, proxy_done, false, 0, NULL, NULL, NULL},
    {"", ROUTE_CONNECT, "CONNECT", http_connect, NULL, http_connect_done, false, 0, NULL, NULL,
     NULL},
    /* a pull-through container registry mirror: every method, pushes refused as registries do */
    {"/v2", ROUTE_TREE, NULL, registry_route, NULL, registry_done, false, 0, NULL, registry_dress,
     registry_dress_shared},
    {"/browse", ROUTE_EXACT, NULL, web_browse_root, NULL, NULL, false, 0, NULL, NULL, NULL},
    {"/browse/", ROUTE_PREFIX, GET_HEAD, web_browse, NULL, web_browse_done, false, 0, NULL, NULL,
     NULL},
    /* the API: admin (token) and listings */
    {"/api/v1/prefetch", ROUTE_SLASH, "POST", fetch_prefetch, http_prefetch_upload,
     http_prefetch_done, false, HTTP_PREFETCH_BODY_MAX, http_prefetch_admit, NULL, NULL},
    {"/api/v1/rules", ROUTE_SLASH, GET_HEAD, http_rules, NULL, NULL, false, 0, NULL, NULL, NULL},
    {"/api/v1/resources", ROUTE_SLASH, "GET, HEAD, DELETE", http_resources_api, NULL,
     http_purge_done, false, 0, NULL, NULL, NULL},
    {"/api/v1/purge", ROUTE_SLASH, "POST", http_purge_prefix, NULL, http_purge_done, false, 0, NULL,
     NULL, NULL},
    {"/api/v1/images", ROUTE_SLASH, GET_HEAD, http_images, NULL, http_images_done, false, 0, NULL,
     NULL, NULL},
    {"/api/v1/health", ROUTE_SLASH, GET_HEAD, http_health, NULL, NULL, true, 0, NULL, NULL, NULL},
    {"/api/v1/status", ROUTE_SLASH, GET_HEAD, http_status, NULL, NULL, false, 0, NULL, NULL, NULL},
    {"/metrics", ROUTE_EXACT, GET_HEAD, http_metrics, NULL, NULL, false, 0, NULL, NULL, NULL},
    /* the web pages */
    {"/", ROUTE_EXACT, GET_HEAD, web_home, NULL, NULL, false, 0, NULL, NULL, NULL},
    {"/help", ROUTE_SLASH, GET_HEAD, web_help, NULL, NULL, false, 0, NULL, NULL, NULL},
    {"/statistics", ROUTE_SLASH, GET_HEAD, web_statistics, NULL, NULL, false, 0, NULL, NULL, NULL},
    {"/resources", ROUTE_TREE, GET_HEAD, web_resources, NULL, NULL, false, 0, NULL, NULL, NULL},
    {"/static/", ROUTE_PREFIX, GET_HEAD, web_asset, NULL, NULL, false, 0, NULL, NULL, NULL},
    /* a remote's paths (/NAME/PATH), else 404: every path gets an answer */
    {"", ROUTE_PREFIX, GET_HEAD, remote_route, NULL, remote_done, false, 0, NULL, NULL, NULL},
    {NULL, ROUTE_EXACT, NULL, NULL, NULL, NULL, false, 0, NULL, NULL, NULL},
};

bool routes_name_taken(const char *name)
{
    size_t n = strlen(name);
    for (const struct route *r = routes; r->path; r++) {
        const char *p = r->path + (r->path[0] == '/');
        size_t len = strcspn(p, "/");
        if (len && len == n && !strncmp(p, name, n))
            return true;
    }
    return false;
}
