/*
 * pages.h — the web pages (pages.c): home, help, resources by state, statistics, their static
 * assets; and the frame every page of web/ is drawn in (head, navigation, footer, the
 * Content-Security-Policy that forbids inline script and style).
 *
 * Contract: web/ sits above http/: it answers through http_internal.h's helpers, and http/ never
 * names it (the route table, src/web/routes.c, does). Handlers run on the server's threads;
 * the page functions only format into a struct buf (any thread). Everything from outside is
 * escaped (buf_html, buf_query, buf_path).
 */
#ifndef ARCA_WEB_PAGES_H
#define ARCA_WEB_PAGES_H

#include "base/buf.h"
#include "http/http_internal.h"

/* A page's head and navigation, `active` the section shown as current; then the whole page as a
 * response (NULL when out of memory), its Cache-Control left to the caller. */
void web_page_begin(struct buf *b, const char *title, const char *active);
struct answer *web_page_response(struct buf *b);

/* Route handlers (struct route): GET|HEAD /, /help/, /statistics/, /resources/[STATE/[PAGE/]]
 * (`rest` after "/resources": "" or "/..."), /static/NAME (`rest` the name). */
enum conn_result web_home(struct conn *c, struct request *req, const char *rest);
enum conn_result web_help(struct conn *c, struct request *req, const char *rest);
enum conn_result web_statistics(struct conn *c, struct request *req, const char *rest);
enum conn_result web_resources(struct conn *c, struct request *req, const char *rest);
enum conn_result web_asset(struct conn *c, struct request *req, const char *rest);

#endif
