#include "http/resources.h"
#include "base/parse.h"
#include "rules/terms.h"
#include "url/url.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const resource_state_names[LIST_STATES] = {"scheduled", "downloading", "successes",
                                                       "failures"};
static const char *const order_names[] = {"url", "content_length", "usage", "last_usage",
                                          "created_at"};

const char *resource_order_name(enum list_order order)
{
    return order_names[order];
}

static int find_name(const char *const *names, int n, const char *s)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(names[i], s))
            return i;
    return -1;
}

int resources_parse(const char *state, const char *order, const char *page,
                    struct resources_query *q, const char **why)
{
    int s = state ? find_name(resource_state_names, LIST_STATES, state) : LIST_SUCCESSES, o;

    if (s < 0) {
        *why = "bad state: expected scheduled, downloading, successes or failures";
        return -1;
    }
    q->state = (enum list_state)s;
    if (!order)
        order = s == LIST_SCHEDULED || s == LIST_DOWNLOADING ? "url" : "-last_usage";
    q->desc = order[0] == '-';
    o = find_name(order_names, 5, order + q->desc);
    if (o < 0) {
        *why = "bad order: expected [-]url, content_length, usage, last_usage or created_at";
        return -1;
    }
    q->order = (enum list_order)o;
    snprintf(q->order_text, sizeof(q->order_text), "%s", order);
    q->page = 1;
    if (page && parse_page(page, &q->page) < 0) {
        *why = "bad page: expected a number from 1";
        return -1;
    }
    return 0;
}

int64_t resources_pages(int64_t total)
{
    return total > 0 ? (total + RESOURCES_PER_PAGE - 1) / RESOURCES_PER_PAGE : 1;
}

/* Its URL (url_shown's, read in normal form as the rules read URLs; one arca cannot read so is
 * not shown), and every URL its redirects took its download to (a client a fetch of it refuses
 * for its hops, fetch.c's, learns nothing of it here either). */
bool resources_listed(const char *shown, const char *hops, const struct sockaddr *client)
{
    size_t size = URL_BUF_SIZE(strlen(shown));
    char *url = malloc(size), why[400];
    const char *no;
    int status;
    bool listed = url && url_normalize(shown, strlen(shown), url, size, &status, &no) == 0 &&
                  terms_listed_for(url, client) &&
                  (!hops || !hops[0] || terms_hops_allowed(hops, client, why, sizeof(why)));
    free(url);
    return listed;
}

bool resources_filtered(void)
{
    const struct rule_set *set = rules_current();
    bool rules_decide = rules_have_networks(set);
    rules_put(set);
    return rules_decide;
}

/* The page's rows without those `client` may not fetch by a rule (resources_listed); all of
 * them, as they are, where no rule names networks. */
static void drop_unlisted(struct listing *l, const struct sockaddr *client)
{
    int kept = 0;
    if (!resources_filtered())
        return;
    for (int i = 0; i < l->n; i++) {
        if (resources_listed(l->rows[i].url, l->rows[i].hops, client)) {
            l->rows[kept++] = l->rows[i];
            continue;
        }
        free(l->rows[i].url);
        free(l->rows[i].hops);
    }
    l->n = kept;
}

int resources_fetch(const struct resources_query *q, const struct sockaddr *client,
                    struct listing *out, unsigned int *status, const char **why)
{
    int64_t offset =
        q->page > STORE_LIST_DEPTH ? STORE_LIST_DEPTH : (q->page - 1) * RESOURCES_PER_PAGE;
    int rc = store_list(q->state, q->order, q->desc, offset, RESOURCES_PER_PAGE, out);
    if (rc == -2) {
        *status = 400;
        *why = "page too deep: reverse the order to see the last pages";
    } else if (rc < 0) {
        *status = 500;
        *why = "out of memory";
    } else if (q->page > resources_pages(out->total)) {
        listing_free(out);
        *status = 404;
        *why = "no such page";
        rc = -1;
    } else {
        drop_unlisted(out, client);
    }
    return rc < 0 ? -1 : 0;
}
