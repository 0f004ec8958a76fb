/*
 * browse.h — GET|HEAD /browse/...: the configured S3 buckets (buckets.h), like Linaro's tuxpub.
 *   /browse                     302 to /browse/
 *   /browse/                    the buckets (those without hide-root)
 *   /browse/NAME/[FOLDER/]      one folder, a page of S3's at a time (?page=N), or with
 *                               ?export=json tuxpub's document of the whole folder, streamed
 *   /browse/NAME/KEY            a file, through the same store as /api/v1/fetch/ (fetch.h);
 *                               when S3 has no such file, a folder of that name is redirected
 *                               to (302), else 404
 *
 * Contract: route handlers (struct route), on the server's threads. A request's state is
 * a struct browse_req: the file's fetch_req, or the folder's walk, or both (a file S3 did not
 * have, checked as a folder); web_browse_done lets go of both, each park_leave() last.
 */
#ifndef ARCA_WEB_BROWSE_H
#define ARCA_WEB_BROWSE_H

#include "http/http_internal.h"

/* "/browse/": `rest` is the path after it. */
enum conn_result web_browse(struct conn *c, struct request *req, const char *rest);
const char *web_browse_done(struct request *req, bool completed);
/* "/browse" alone, any method: the buckets' page lives at /browse/. */
enum conn_result web_browse_root(struct conn *c, struct request *req, const char *rest);

#endif
