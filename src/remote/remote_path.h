/*
 * remote_path.h — what a remote's path names (remote.h's route, and the rules test of
 * http://cache/NAME/PATH: remote_path_url): the path after NAME checked (remote_path_check), arca's own segments
 * read, a pypi remote's alone ("/+sha256/HEX": the sha256 the bytes must have;
 * "/+f/SCHEME/HOST[:PORT]": a page's link to a file host, which must be the remote's own host or
 * one of its file-hosts; another kind's path is its upstream's as it is), then the
 * upstream URL in normal form: the remote's URL and the path, or the file host and the path.
 * arca's segments are read decoded (pip sends "+f" as "%2Bf" and ':' as "%3A"); the path below
 * stays as sent.
 *
 * Contract: pure functions of their arguments and the read-only remotes' table: any thread.
 */
#ifndef ARCA_REMOTE_PATH_H
#define ARCA_REMOTE_PATH_H

#include "remote/remotes.h"
#include "base/parse.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The longest path after NAME taken: longer than any repository's file names. */
#define REMOTE_PATH_MAX 4096

struct remote_target {
    char *url;       /* the upstream URL, normal form: the caller frees it */
    bool has_digest; /* "/+sha256/HEX" gave the sha256 its bytes must have */
    uint8_t digest[32];
    bool file_host; /* "/+f/...": a file host's URL, not under the remote's URL */
};

/* The target of `path` (len bytes after NAME, without the query) of remote `r`: 0; else -1 with
 * the status to answer (400 a path that leaves the base or a bad segment, 404 a file host the
 * remote may not reach, 414 too long, 500 out of memory) and a one-line *why. */
int remote_target_of(const struct remote *r, const char *path, size_t len, struct remote_target *t,
                     int *status, const char **why);

/* The upstream URL that `url` stands for when it is a remote's path on arca, as the rules test
 * reads one (`arca rules test http://cache/NAME/PATH`, GET /api/v1/rules/): any host, its first
 * path segment a remote's NAME, and `url` under no remote's own URL (an upstream URL stands for
 * itself). 1 with the upstream URL in normal form, a new string in *out; 0 when `url` is none;
 * -1 with "remote NAME: STATUS: why" in err[size] (the route's refusal). */
int remote_path_url(const char *url, char **out, char *err, size_t size);

/* Whether links to u's host reach it through remote `r` (/NAME/+f/): the remote's own host, a
 * file-hosts entry, and for pypi.org its files' host, which every page of it links to. */
bool remote_file_host(const struct remote *r, const struct url_parts *u);

#endif
