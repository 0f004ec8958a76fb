/*
 * s3_xml.h — S3's ListObjectsV2 answers (XML, with a folder's delimiter '/') read into a page of
 * entries: its sub-folders, then its files, each in S3's order, folder markers left out.
 *
 * Contract: pure functions over the bytes given (expat does the XML); no I/O, no state; a page
 * is the caller's to free with s3_page_free().
 */
#ifndef ARCA_S3_XML_H
#define ARCA_S3_XML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define S3_LIST_PAGE_KEYS 1000 /* entries in a page: S3's maximum, and its default */

struct s3_entry {
    char *name;           /* below the folder: "sub/" for a folder, "file.bin" for a file */
    bool folder;          /* a sub-folder (S3's CommonPrefixes) */
    int64_t size;         /* files: bytes */
    time_t last_modified; /* files: S3's LastModified */
    char etag[80];        /* files: as S3 gives it, quotes included */
};

struct s3_page {
    int status;               /* 200; else what the client gets (502, 503) */
    char error[512];          /* why, one line, when status is not 200 */
    struct s3_entry *entries; /* its folders (S3's order), then its files (S3's order) */
    int n, n_folders;
    bool empty_prefix; /* S3 has no key at all under the folder (not even a marker) */
    char *next_token;  /* the next page's continuation token; NULL: the last page */
    int64_t fetched;   /* wall-clock seconds when S3 answered */
    int refs;          /* s3_list.c's own: its holders, counted under its lock */
};

/* Read one ListObjectsV2 answer of folder `prefix` (S3's XML, its HTTP status) into `p`, zeroed:
 * S3's error documents become the status and one-line reason the client gets (502), naming
 * the bucket. 0, or -1 when out of memory (what `p` holds is still freed by s3_page_free). */
int s3_xml_parse(const char *xml, size_t len, int http_status, const char *prefix,
                 const char *bucket_name, struct s3_page *p);
void s3_page_free(struct s3_page *p);

#endif
