/*
 * resources.h — KissCache's resource listings: the query (state, order, page) parsed once, for
 * both GET /api/v1/resources/ (JSON) and the /resources/<state>/ pages (HTML).
 *
 * Contract: any thread. Names are KissCache's: states scheduled, downloading, successes,
 * failures; orders url, content_length, usage, last_usage, created_at, each with an optional
 * leading '-' for descending. Pages hold RESOURCES_PER_PAGE rows, numbered from 1.
 */
#ifndef ARCA_RESOURCES_H
#define ARCA_RESOURCES_H

#include "store/store.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#define RESOURCES_PER_PAGE 25

struct resources_query {
    enum list_state state;
    enum list_order order;
    bool desc;
    int64_t page;
    char order_text[32]; /* as KissCache names it, e.g. "-last_usage" */
};

extern const char *const resource_state_names[LIST_STATES];

/* Any of the three may be NULL (the defaults: successes; url for scheduled and downloading,
 * -last_usage otherwise; page 1). 0, or -1 with a one-line reason for a 400. */
int resources_parse(const char *state, const char *order, const char *page,
                    struct resources_query *q, const char **why);

/* The query's page, as `client` may see it: without the rows of URLs a rule's allow-network
 * refuses it (terms_listed_for), nor of objects whose redirects took their download where it
 * refuses it (terms_hops_allowed); the counts still count them. 0; -1 with status (404: no such
 * page, 400: too deep, 500) and reason. */
int resources_fetch(const struct resources_query *q, const struct sockaddr *client,
                    struct listing *out, unsigned int *status, const char **why);

/* Whether `client` may see a row of the URL `shown` (url_shown's) whose download's redirects
 * went through `hops` (NULL or "": none): neither a rule's allow-network nor the hops refuse
 * it the URL (terms_listed_for, terms_hops_allowed). What every listing of URLs leaves out,
 * the resources' and the images'. Any thread. */
bool resources_listed(const char *shown, const char *hops, const struct sockaddr *client);
/* Whether some rule names networks: else every row is listed (resources_listed need not be
 * asked). */
bool resources_filtered(void);

/* Pages for `total` rows (at least 1). */
int64_t resources_pages(int64_t total);

/* The order's name for the column: "url", "content_length", ... */
const char *resource_order_name(enum list_order order);

#endif
