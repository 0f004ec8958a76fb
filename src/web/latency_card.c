/* The statistics page's card of request times (latency_card.h). */
#include "web/latency_card.h"
#include "web/charts.h"
#include "stats/latency.h"

#include <math.h>

static const double quantiles[] = {0.5, 0.9, 0.99};
#define QUANTILES 3

/* One chart of phase `p`: a column for each outcome some request had. */
static void phase_chart(struct buf *b, enum latency_phase p, const char *id, const char *title)
{
    double values[QUANTILES][LAT_OUTCOMES];
    const char *labels[LAT_OUTCOMES];
    int n = 0;
    for (int o = 0; o < LAT_OUTCOMES; o++) {
        struct latency_hist h;
        latency_read((enum latency_outcome)o, p, &h);
        if (h.count == 0)
            continue;
        labels[n] = latency_outcome_name((enum latency_outcome)o);
        for (int q = 0; q < QUANTILES; q++)
            values[q][n] = latency_quantile(&h, quantiles[q]);
        n++;
    }
    if (n == 0)
        return;
    chart_bars(b, id, title, n, labels, 1,
               (struct chart_series[]){{"50th percentile", "p50", values[0], NULL},
                                       {"90th percentile", "p90", values[1], NULL},
                                       {"99th percentile", "p99", values[2], NULL}},
               QUANTILES, UNIT_SECONDS);
}

void web_latency_card(struct buf *b)
{
    phase_chart(b, LAT_FIRST_BYTE, "latency-first-byte",
                "Time to the answer's first byte, by outcome (percentiles, bucket bounds)");
    phase_chart(b, LAT_TOTAL, "latency-total",
                "Time to the answer's end, by outcome (percentiles, bucket bounds)");
}
