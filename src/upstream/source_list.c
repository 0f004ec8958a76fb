/* A download's list of sources (source.h): the table of kinds, in the order they are asked, each
 * joining the download when its terms say so; then walked in order. A new kind is a file of its
 * own and a line in this table. */
#include "upstream/transfer_answer.h"

#include <assert.h>
#include <stdlib.h>

/* Every kind, in the order a download asks them: its parent arca first (the central does the
 * registry's auth and checks its digests too), its mirrors, then the registry whose pull API the
 * URL is, else the origin. The last that joins is always asked. */
static const struct source_kind *const kinds[] = {
    &source_parent,
    &source_mirror,
    &source_registry,
    &source_origin,
};

int source_list_init(struct transfer *t)
{
    struct sources *s = &t->src;
    s->n = s->at = 0;
    s->why[0] = '\0';
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        void *rec = NULL;
        int rc = kinds[i]->join(t, &rec);
        if (rc < 0)
            return -1;
        if (rc == 0)
            continue;
        assert(s->n < SOURCES_MAX);
        s->rec[s->n] = rec;
        s->list[s->n++] = kinds[i];
    }
    assert(s->n > 0 &&
           (s->list[s->n - 1] == &source_origin || s->list[s->n - 1] == &source_registry));
    s->kind = s->list[0];
    return 0;
}

void source_list_free(struct sources *s)
{
    for (int i = 0; i < s->n; i++) {
        if (s->rec[i])
            s->list[i]->release(s->rec[i]);
        s->rec[i] = NULL;
    }
    s->n = s->at = 0;
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
