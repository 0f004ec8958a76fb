/* Joins that came before their download (see joins.h). */
#include "upstream/joins.h"

void joins_keep(struct early_joins *e, const void *obj, uint32_t gen, const struct who *client)
{
    struct early_join *s = &e->slot[e->next++ % JOINS_EARLY];
    e->held += !s->obj;
    *s = (struct early_join){obj, gen, *client};
}

int joins_take(struct early_joins *e, const void *obj, uint32_t gen, struct who *out, int max)
{
    int n = 0;
    /* oldest first: from the slot the next join takes, round */
    for (unsigned i = 0; e->held > 0 && i < JOINS_EARLY; i++) {
        struct early_join *s = &e->slot[(e->next + i) % JOINS_EARLY];
        if (s->obj != obj || s->gen != gen)
            continue;
        if (n < max)
            out[n++] = s->client;
        s->obj = NULL;
        e->held--;
    }
    return n;
}
