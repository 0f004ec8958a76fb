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

/* The statistics page's card (id "parent"), a warning while some parent is held down. */
void web_parents_card(struct buf *b);
/* The help page's card (id "parent-help"): a miss is asked of the parent first, and what
 * --parent-only and --parent-trusted-http change. */
void web_parents_help(struct buf *b);

#endif
