/*
 * source_mirror.h — the mirror kind of source's record (source_mirror.c; mirror.h says how one
 * is picked). It belongs to one download (source.h's sources.rec), made when its terms name
 * mirrors for its URL, freed with it.
 */
#ifndef ARCA_SOURCE_MIRROR_H
#define ARCA_SOURCE_MIRROR_H

#include "upstream/mirror.h"

struct transfer;

/* The pick, and the download it is made for (the probe's answer finds it). */
struct mirror_source {
    struct mirror_pick pick;
    struct transfer *t;
};

#endif
