/*
 * browse_view.h — what one client of /browse/ may see of a bucket (buckets.h): a file it may
 * fetch, a folder under which it may fetch some URL, decided by the rules in force (terms.h)
 * for the URL /browse/ fetches a file by (browse_url). A listing page is shared by every client
 * (s3_list.h); each entry is shown to a client through this as the page is written for it.
 *
 * Contract: a struct browse_view belongs to one request, read on the server's threads. It holds
 * the client's address, so that what is written on later events (a JSON document's next pages)
 * is judged for that client, and whether some rule names networks: without one, every entry is
 * shown and no URL is made or looked up. Closed, never open, when the address or memory lacks.
 */
#ifndef ARCA_WEB_BROWSE_VIEW_H
#define ARCA_WEB_BROWSE_VIEW_H

#include "config/buckets.h"
#include "http/http_internal.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct browse_view {
    struct sockaddr_storage client;
    bool has_client; /* false: the client's address could not be had (nothing is shown) */
    bool judged;     /* some rule in force names networks: entries are judged one by one */
};

/* The object's URL for `key` (below the bucket's view): the bucket's URL, '/', then the view's
 * prefix and the key, percent-encoded (upper case hex: the URL's normal form, and S3's
 * encoding). What a file is fetched and cached by. A new string; NULL: out of memory. */
char *browse_url(const struct bucket_auth *a, const char *key);

/* The view of connection `c`'s client (http_client: behind a --trusted-proxy, the forwarded
 * address) under the rules in force. */
void browse_view_init(struct browse_view *v, struct conn *c);
/* Read again whether some rule names networks: the rules in force for the next page written. */
void browse_view_update(struct browse_view *v);

/* Whether the client may see `path` of bucket `a` (below the view: a key, or a folder, "" or
 * ending in '/'): a file it may fetch, or a folder under which no rule refuses it every URL
 * (terms_prefix_listed_for). */
bool browse_view_sees(const struct browse_view *v, const struct bucket_auth *a, const char *path);

/* Whether folder `path` of `a` is closed to the client: 1 with a one-line why naming the rule
 * that refuses it every URL there, 0 open, -1 out of memory. */
int browse_view_closed(const struct browse_view *v, const struct bucket_auth *a, const char *path,
                       char *why, size_t size);

#endif
