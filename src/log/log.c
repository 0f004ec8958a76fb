#include "log/log.h"
#include "url/url.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static int max_level = LOG_INFO;

void log_set_level(enum log_level level)
{
    __atomic_store_n(&max_level, (int)level, __ATOMIC_RELAXED);
}

/* Every line is written with the secrets of the URLs it holds redacted (url.h): a signed URL's
 * signature, a password in userinfo. */
static void log_line(const char *level, const char *fmt, va_list ap)
{
    char line[1024], shown[1536];
    time_t now = time(NULL);
    struct tm tm;
    int n;

    gmtime_r(&now, &tm);
    n = (int)strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%SZ ", &tm);
    n += snprintf(line + n, sizeof(line) - (size_t)n, "%s ", level);
    n += vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    if (n > (int)sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    line[n] = '\0';
    n = (int)url_redact(line, shown, sizeof(shown) - 1);
    shown[n++] = '\n';
    if (write(STDERR_FILENO, shown, (size_t)n) < 0)
        return; /* nowhere left to report it */
}

void log_debug(const char *fmt, ...)
{
    va_list ap;
    if (__atomic_load_n(&max_level, __ATOMIC_RELAXED) < LOG_DEBUG)
        return;
    va_start(ap, fmt);
    log_line("debug", fmt, ap);
    va_end(ap);
}

void log_info(const char *fmt, ...)
{
    va_list ap;
    if (__atomic_load_n(&max_level, __ATOMIC_RELAXED) < LOG_INFO)
        return;
    va_start(ap, fmt);
    log_line("info", fmt, ap);
    va_end(ap);
}

void log_warn(const char *fmt, ...)
{
    va_list ap;
    if (__atomic_load_n(&max_level, __ATOMIC_RELAXED) < LOG_WARN)
        return;
    va_start(ap, fmt);
    log_line("warning", fmt, ap);
    va_end(ap);
}

void log_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_line("error", fmt, ap);
    va_end(ap);
}
