/*
 * buckets.h — the S3 buckets arca serves under /browse/ (--bucket, [bucket NAME]): how to reach
 * each and sign for it. Credentials come from the bucket's credentials file (access key id on
 * the first line, secret on the second, an optional session token on the third), else from
 * AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, else none (a public bucket:
 * anonymous requests). Requests are signed by libcurl (CURLOPT_AWS_SIGV4).
 *
 * Contract: buckets_init() runs once in main before any thread; after it the table is
 * read-only and any thread may look buckets up. Secrets never leave this module but through
 * struct bucket_auth, which only the upstream thread hands to libcurl, and are never logged.
 */
#ifndef ARCA_BUCKETS_H
#define ARCA_BUCKETS_H

#include "config/config.h"

#include <stdbool.h>
#include <stddef.h>

struct bucket_auth {
    const struct bucket *bucket; /* its configuration */
    char url[1100];              /* its URL's normal form (url.h), what object URLs start with */
    bool anonymous;              /* no credentials: requests go unsigned */
    char sigv4[64];              /* CURLOPT_AWS_SIGV4: "aws:amz:REGION:s3" */
    char userpwd[1024];          /* CURLOPT_USERPWD: "ACCESS:SECRET" */
    char token_header[2200];     /* "x-amz-security-token: TOKEN", or "" */
};

/* Read every bucket's credentials. 0, or -1 with a one-line reason (never holding a secret). */
int buckets_init(const struct config *cfg, char *err, size_t errlen);
/* The bucket called `name`, or NULL. */
const struct bucket_auth *buckets_find(const char *name, size_t len);
/* The bucket whose URL `url` lies under, or NULL (a download resumed after a restart). */
const struct bucket_auth *buckets_for_url(const char *url);
/* Whether `url` lies under a bucket arca signs for (one with credentials), whichever bucket
 * buckets_for_url names: every request arca signs is for such a URL (browse.c names a file by
 * its bucket's URL, a resume finds its credentials by it), so an object whose URL is not is no
 * bucket's credentials' object. */
bool buckets_sign_under(const char *url);

#endif
