/*
 * assets.h — the web pages' static files (web/), compiled into the binary by scripts/embed.py.
 */
#ifndef ARCA_ASSETS_H
#define ARCA_ASSETS_H

#include <stddef.h>

struct asset {
    const char *name, *type;
    const unsigned char *data;
    size_t size;
};

/* Ends with an entry whose name is NULL. */
extern const struct asset web_assets[];

#endif
