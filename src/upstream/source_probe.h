/*
 * source_probe.h — which source a probe asks (source_req.h): a parent arca's fetch API, a
 * registry's pull API, or a plain URL. Chosen here, so neither the probe nor its asker names a
 * kind. Any thread.
 */
#ifndef ARCA_SOURCE_PROBE_H
#define ARCA_SOURCE_PROBE_H

#include "upstream/source_req.h"

struct registry_ask;

/* The source a probe of a URL asks, its record the probe's own: the parent arca whose fetch API
 * it is (`parent`, its base URL; NULL none), else the registry whose pull API the request's terms
 * say it is (`reg`; NULL or reg->r NULL: none), else a plain URL's (ops NULL). 0, or -1 out of
 * memory. */
int source_req_for_probe(const char *parent, const struct registry_ask *reg,
                         struct source_req *out);

#endif
