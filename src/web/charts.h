/*
 * charts.h — SVG charts drawn by arca itself, inline in the statistics page: they need no
 * JavaScript and no chart library, and every label goes through buf_html().
 *
 * Contract: pure formatting into a struct buf; any thread.
 */
#ifndef ARCA_CHARTS_H
#define ARCA_CHARTS_H

#include "base/buf.h"

#include <stdint.h>

enum chart_unit { UNIT_BYTES, UNIT_PERCENT, UNIT_SECONDS };

struct chart_series {
    const char *name;  /* legend and tooltips */
    const char *klass; /* CSS class giving its colour */
    const double *values;
    const char *none; /* a value NAN is no value: no bar, this in its tooltip (NULL: "none") */
};

/* A bar chart of `n` columns with `nseries` bars each; `labels[i]` names column i (shown every
 * `label_every` columns, and in every tooltip). */
void chart_bars(struct buf *b, const char *id, const char *title, int n, const char *const *labels,
                int label_every, const struct chart_series *series, int nseries,
                enum chart_unit unit);

/* One horizontal gauge: `used` of `total`, coloured by how full it is (60 %, 85 %). */
void chart_gauge(struct buf *b, const char *id, const char *title, int64_t used, int64_t total);

/* "1.5 GiB", "512 B": binary units, one decimal below 10. */
void format_bytes(double bytes, char *out, size_t size);

#endif
