/*
 * parents.h — the parent arcas (--parent, a rule's `parent`: upstream/parent.h) as the pages
 * show them: a card on the statistics page with each parent's state, what it gave and the
 * downloads that went to the origin instead, by reason; a card on the help page saying where a
 * miss is asked first. The same figures as the status JSON's "parent" (docs/API.md).
 *
 * Contract: formatting into a struct buf, any thread (parent_report takes the table's lock);
 * nothing is written without any parent known. A parent's URL (config: no credentials) and a
 * rule's name go through url_shown and buf_html all the same: a page never trusts a string.
 */
#ifndef ARCA_WEB_PARENTS_H
#define ARCA_WEB_PARENTS_H

#include "base/buf.h"

#include <stdbool.h>

/* The statistics page's card (id "parent"), a warning while some parent is held down. Each
 * parent's URL and the rule (or option) that names it when `named` (a client that may see what
 * arca caches), else "parent 1", "parent 2"...: a stranger reads the counters only. */
void web_parents_card(struct buf *b, bool named);
/* The help page's card (id "parent-help"): a miss is asked of the parent first, and what
 * --parent-only and --parent-trusted-http change; which parents when `named`. */
void web_parents_help(struct buf *b, bool named);

#endif
