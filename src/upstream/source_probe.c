/* Which source a probe asks (source_probe.h): the one place a probe's kind is chosen, as the
 * download's list is chosen by source_list.c. */
#include "upstream/source_probe.h"
#include "upstream/parent.h"
#include "upstream/source_registry.h"

int source_req_for_probe(const char *parent, const struct registry_ask *reg, struct source_req *out)
{
    *out = (struct source_req){0};
    if (parent)
        return parent_probe_req(parent, out);
    if (reg && reg->r)
        return source_registry_probe_req(reg, out);
    return 0;
}
