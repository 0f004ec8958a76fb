/* The parent arcas on the statistics and help pages (parents.h). */
#include "web/parents.h"
#include "web/charts.h"
#include "http/http_internal.h"
#include "upstream/parent.h"
#include "url/url.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* A parent's URL as pages show any URL: its secrets redacted (it has none), escaped. */
static void parent_url(struct buf *b, const char *url)
{
    char *shown = url_shown(url);
    buf_add(b, "<code>");
    buf_html(b, shown ? shown : "(out of memory)");
    buf_add(b, "</code>");
    free(shown);
}

/* "3 (status 1, down 2)", or "none". */
static void fallbacks_cell(struct buf *b, const struct parent_report *r)
{
    int64_t total = 0;
    bool first = true;
    for (int f = 0; f < PARENT_FAULTS; f++)
        total += r->fallbacks[f];
    if (total == 0) {
        buf_add(b, "<td class=\"fallbacks muted\">none</td>");
        return;
    }
    buf_addf(b, "<td class=\"fallbacks\">%lld (", (long long)total);
    for (int f = 0; f < PARENT_FAULTS; f++) {
        if (r->fallbacks[f] == 0)
            continue;
        buf_addf(b, "%s%s %lld", first ? "" : ", ", parent_fault_name((enum parent_fault)f),
                 (long long)r->fallbacks[f]);
        first = false;
    }
    buf_add(b, ")</td>");
}

/* Parent i (from 0): its URL when `named`, else "parent i+1". */
static void parent_name(struct buf *b, const struct parent_report *r, int i, bool named)
{
    if (named)
        parent_url(b, r->url);
    else
        buf_addf(b, "parent %d", i + 1);
}

static void parent_row(struct buf *b, const struct parent_report *r, int i, bool named)
{
    char bytes[32], since[40] = "?";
    format_bytes((double)r->bytes, bytes, sizeof(bytes));
    buf_add(b, "<tr><td class=\"url\">");
    parent_name(b, r, i, named);
    buf_add(b, "</td><td>");
    buf_html(b, named ? r->from : "");
    if (r->down) {
        time_t t = (time_t)r->down_since;
        struct tm tm;
        if (t > 0 && gmtime_r(&t, &tm))
            strftime(since, sizeof(since), "%Y-%m-%d %H:%M:%S UTC", &tm);
        buf_addf(b,
                 "</td><td class=\"state\"><span class=\"no\">down</span> since %s, %d failure%s "
                 "in a row: passed over</td>",
                 since, r->failures, r->failures == 1 ? "" : "s");
    } else {
        buf_add(b, "</td><td class=\"state\"><span class=\"yes\">up</span></td>");
    }
    buf_addf(b,
             "<td class=\"num requests\">%lld</td><td class=\"num hits\">%lld</td>"
             "<td class=\"num bytes\">%s</td>",
             (long long)r->requests, (long long)r->hits, bytes);
    fallbacks_cell(b, r);
    buf_add(b, "</tr>");
}

/* What --parent-only and --parent-trusted-http change, as a sentence (nothing without them). */
static void options_line(struct buf *b)
{
    if (http_cfg->parent_only)
        buf_add(b, "<p id=\"parent-only\"><code>--parent-only</code>: a miss never goes to the "
                   "origin directly; when its parent fails, the download fails.</p>");
    if (http_cfg->parent_trusted_http)
        buf_add(b, "<p id=\"parent-trusted-http\"><code>--parent-trusted-http</code>: URLs "
                   "with credentials may go to a parent over plain <code>http://</code>.</p>");
}

void web_parents_card(struct buf *b, bool named)
{
    struct parent_report r[PARENT_MAX];
    int n = parent_report(r, PARENT_MAX), down = 0;
    if (n == 0)
        return;
    for (int i = 0; i < n; i++)
        down += r[i].down;
    buf_addf(b,
             "<div class=\"card%s\" id=\"parent\"><h2>Parent arca%s</h2><p>A miss is asked of "
             "its parent first; the parent's bytes are kept only when their sha256 is its "
             "Repr-Digest. A parent that fails is passed over: the download goes to the origin "
             "(a fallback, by reason), and after %d of its own faults in a row (no connection, "
             "its own 5xx, a lie, a digest) the parent is held down a while.</p>",
             down ? " warning" : "", n == 1 ? "" : "s", PARENT_FAILURES);
    options_line(b);
    buf_add(b, "<table><tr><th>Parent</th><th>Named by</th><th>State</th><th>Downloads</th>"
               "<th>Hits</th><th>Bytes</th><th>Fell back to the origin</th></tr>");
    for (int i = 0; i < n; i++)
        parent_row(b, &r[i], i, named);
    buf_add(b, "</table></div>");
}

void web_parents_help(struct buf *b, bool named)
{
    struct parent_report r[PARENT_MAX];
    int n = parent_report(r, PARENT_MAX);
    if (n == 0)
        return;
    buf_add(b, "<div class=\"card\" id=\"parent-help\"><h2>Parent arca</h2><p>This arca "
               "fills its misses from a central arca: it asks ");
    for (int i = 0; i < n; i++) {
        buf_add(b, i == 0 ? "" : i == n - 1 ? " or " : ", ");
        parent_name(b, &r[i], i, named);
        if (named) {
            buf_add(b, " (");
            buf_html(b, r[i].from);
            buf_add(b, ")");
        }
    }
    buf_add(b, " first, and goes to the origin when the parent fails. The parent's bytes are "
               "kept only when their sha256 is the parent's digest. <code>Cache-Status</code> "
               "lists both caches, the parent's first.</p>");
    options_line(b);
    buf_add(b, "</div>");
}
