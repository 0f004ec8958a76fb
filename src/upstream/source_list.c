/* A download's list of sources (source.h): built from its terms (the one file that names the
 * kinds), walked in order. */
#include "upstream/transfer_answer.h"
#include "registry/reg_auth.h"

#include <stdlib.h>

void source_list_init(struct transfer *t)
{
    struct sources *s = &t->src;
    s->parent = (struct parent_ask){.slot = -1};
    s->fault = PARENT_FAULTS;
    s->pick = (struct mirror_pick){.loop = t->loop,
                                   .url = t->url,
                                   .asked = t->asked,
                                   .grant_until = t->grant_until,
                                   .picked = source_mirror_picked};
    mirror_find(&s->pick, &t->terms);
    s->n = s->at = 0;
    /* a parent is planned at its first SOURCE (it may be held down, or refuse credentials) */
    if (t->terms.sources.parent[0])
        s->list[s->n++] = &source_parent;
    if (s->pick.n_mirrors > 0)
        s->list[s->n++] = &source_mirror;
    /* a registry's URL is its own kind: its auth, its digests, its HEAD (a parent first: the
     * central arca asked does the registry's auth) */
    s->list[s->n++] = t->terms.registry.r ? &source_registry : &source_origin;
    s->kind = s->list[0];
}

void source_list_free(struct sources *s)
{
    mirror_free(&s->pick);
    free(s->reg.fill_line);
    if (s->reg.waiting)
        reg_auth_abandon(&s->reg);
    parent_forget(&s->parent);
}

enum transfer_state source_choose(struct transfer *t)
{
    enum transfer_state next;
    while (!t->src.kind->choose(t, &next))
        source_next(&t->src); /* the origin is always asked: the walk ends there */
    return next;
}

bool source_may_move_on(const struct transfer *t, enum source_end end)
{
    return t->src.kind->may_move_on && t->src.kind->may_move_on(t, end);
}

enum transfer_state source_move_on(struct transfer *t, enum source_end end, const char *why)
{
    assert(source_may_move_on(t, end));
    return t->src.kind->move_on(t, end, why);
}
