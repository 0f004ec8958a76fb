/*
 * latency_card.h — the statistics page's card of request times (stats/latency.h): the 50th,
 * 90th and 99th percentiles of each outcome's time to its answer's head and to its end, as bar
 * charts; the same histograms as /metrics' arca_request_duration_seconds.
 *
 * Contract: formatting into a struct buf, any thread; nothing is written before any fetch.
 */
#ifndef ARCA_WEB_LATENCY_CARD_H
#define ARCA_WEB_LATENCY_CARD_H

#include "base/buf.h"

void web_latency_card(struct buf *b);

#endif
