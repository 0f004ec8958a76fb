/*
 * remote.h — the remotes' paths (remotes.h, docs/REMOTES.md): GET|HEAD /NAME/PATH answers what
 * the remote's URL/PATH answers, through the fetch course (fetch.h's fetch_object_by): one
 * download for every client, kept under that upstream URL, its terms decided for that URL as on
 * every route (the rules, the remote's kind: remote_kind.h). The route is the table's last: a
 * first segment that names no remote is answered 404 as no route ("no such endpoint").
 *
 * Checked here, before anything is asked upstream: a client --allow-network refuses is refused
 * before its path is read, where no rule could let it in (as the fetch API does); the path stays
 * below the remote's base once decoded (remote_path_check: 400 otherwise); the query is arca's
 * own (sha256= alone, as the fetch API reads it). The kind of the remote a URL lies under (the
 * longest: remotes_of_url) says what it is, whichever remote's path asked it. A pypi remote's
 * pages are answered whole with their file links rewritten to
 * arca's own paths (pypi_page.h): a link below the remote's URL to /NAME/PATH, one to the
 * remote's host elsewhere or to a file-hosts host to /NAME/+f/SCHEME/HOST[:PORT]/PATH, each
 * after /+sha256/HEX when the page gave the file's digest, which the fetch course checks as the
 * file streams (a mismatch cuts it). arca's own segments are read decoded (pip sends "%2Bf"). A
 * page's JSON form (PEP 691, by the client's Accept) is another object than its HTML
 * (REMOTE_JSON_KEY).
 *
 * Contract: the handler and its done run on the server's threads, in calls for their request;
 * the request's state lives from its first call to its done, which counts it in its remote's
 * counters.
 */
#ifndef ARCA_REMOTE_H
#define ARCA_REMOTE_H

#include "http/http_internal.h"

/* The route (struct route): the catch-all. */
enum conn_result remote_route(struct conn *c, struct request *req, const char *rest);
const char *remote_done(struct request *req, bool completed);

#endif
