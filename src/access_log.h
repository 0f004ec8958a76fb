/*
 * access_log.h — one line per request: the combined log format, then the cache result (HIT,
 * MISS, COALESCED, ERROR, or - for other endpoints) and the duration in seconds.
 *
 * Contract: access_log_open() runs before the HTTP server starts; access_log_write() is callable
 * from any thread and writes each line with one write() on an O_APPEND descriptor, so lines never
 * interleave; access_log_reopen() (main thread, SIGHUP) swaps the file under the writers with
 * dup2(), so a line is never written to a closed descriptor. Bytes from outside (URI, Referer,
 * User-Agent) are escaped (", \ and control bytes as \xHH): a client cannot forge a line.
 */
#ifndef ARCA_ACCESS_LOG_H
#define ARCA_ACCESS_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

struct access_entry {
    const struct sockaddr *client; /* NULL: unknown */
    time_t when;                   /* when the request line arrived */
    const char *method, *uri, *version;
    unsigned int status; /* 0: no response was queued */
    int64_t bytes;
    const char *referer, *agent; /* NULL: none */
    const char *cache;
    double seconds;
};

/* `path`: "-" or "" for stderr, "off" for none, else a file (created 0640, appended to). */
int access_log_open(const char *path, char *err, size_t errlen);

/* Whether access_log_open(path) could open it, creating nothing: the file is writable, or its
 * directory exists and is. access_log_open makes the same check first. */
int access_log_check(const char *path, char *err, size_t errlen);
int access_log_reopen(char *err, size_t errlen);
void access_log_close(void);
bool access_log_enabled(void);
void access_log_write(const struct access_entry *e);

#endif
