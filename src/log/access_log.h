/*
 * access_log.h — one line per request: the combined log format, then the cache result (HIT,
 * MISS, COALESCED, STALE (an expired version), REVALIDATED (renewed by a 304), CUT (the stream
 * was cut before its end), REFUSED (a client outside --allow-network), HELD_DOWN (its host held
 * down), ERROR, TUNNEL (a CONNECT's
 * tunnel, its bytes those sent to the client), or - for other endpoints) and the duration in
 * seconds.
 *
 * Contract:
 * - access_log_open() runs on main before the HTTP server starts; it starts the log thread, the
 *   module's own, the only one that write()s the file. access_log_close() runs after the HTTP
 *   server has stopped: it waits until every line queued is written, then ends the thread and
 *   closes the file (SIGTERM loses no line).
 * - access_log_write() is callable from any thread: it formats the line on the caller's thread
 *   into a ring of preallocated slots (no allocation and no lock per line: a ticket is a
 *   compare-and-swap) and returns without touching the disk. A full ring makes the caller
 *   wait for room: a line is never dropped. Lines are written whole and in the order they were
 *   queued (a connection's in its requests' order), in batches, about 10 ms after the first of
 *   a batch was queued (sooner when the ring is half full); to a pipe or terminal (stderr) a
 *   batch is at most PIPE_BUF bytes, so another writer's line never lands inside one of ours.
 * - access_log_reopen() (main, SIGHUP/SIGUSR1) opens the file again under its name; the log
 *   thread swaps it in between two batches and closes the old one, so a line is never written
 *   to a closed descriptor. When the open fails, the old file stays.
 * - Bytes from outside (URI, Referer, User-Agent) are escaped (", \ and control bytes as
 *   \xHH): a client cannot forge a line. The user field (the combined format's third, the
 *   subject of the certificate a TLS client showed) is one token: its spaces are escaped too
 *   (\x20), as are ", \ and every byte outside 0x20-0x7e; "-" when there is none.
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
    const char *user;            /* the client certificate's subject; NULL: none ("-") */
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
