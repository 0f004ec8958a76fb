/*
 * log.h — one line per event on stderr, with a UTC timestamp and a level.
 *
 * Contract: callable from any thread; each call writes one whole line (a single write), so lines
 * from different threads never interleave. Log an error once, where it is handled.
 */
#ifndef ARCA_LOG_H
#define ARCA_LOG_H

#include "config/config.h"

/* Lines below `level` are dropped (default LOG_INFO); SIGHUP may change it. */
void log_set_level(enum log_level level);
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Something the operator should change, though arca runs: written with the level "warning"
 * (shown at the default level, hidden by --log-level error). */
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
