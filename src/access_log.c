#include "access_log.h"
#include "parse.h"
#include "url.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LINE_MAX_BYTES 8192

static int log_fd = -1; /* -1: off */
static char log_path[1024];

static int open_file(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0)
        snprintf(err, errlen, "--access-log %s: %s", path, strerror(errno));
    return fd;
}

int access_log_check(const char *path, char *err, size_t errlen)
{
    char dir[1024];
    const char *slash = strrchr(path, '/'), *why = NULL;
    struct stat st;
    if (!path[0] || !strcmp(path, "-") || !strcmp(path, "off"))
        return 0;
    if (stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode) || access(path, W_OK) != 0) {
            snprintf(err, errlen, "--access-log %s: %s", path,
                     S_ISDIR(st.st_mode) ? "a directory" : strerror(errno));
            return -1;
        }
        return 0;
    }
    snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash == path ? 1 : slash - path) : 1,
             slash ? path : ".");
    if (stat(dir, &st) != 0)
        why = strerror(errno);
    else if (!S_ISDIR(st.st_mode))
        why = strerror(ENOTDIR);
    else if (access(dir, W_OK | X_OK) != 0)
        why = strerror(errno);
    if (why)
        snprintf(err, errlen, "--access-log %s: directory %s: %s", path, dir, why);
    return why ? -1 : 0;
}

int access_log_open(const char *path, char *err, size_t errlen)
{
    snprintf(log_path, sizeof(log_path), "%s", path);
    if (access_log_check(path, err, errlen) < 0)
        return -1;
    if (!strcmp(path, "off"))
        log_fd = -1;
    else if (!path[0] || !strcmp(path, "-"))
        log_fd = STDERR_FILENO;
    else if ((log_fd = open_file(path, err, errlen)) < 0)
        return -1;
    return 0;
}

int access_log_reopen(char *err, size_t errlen)
{
    int fd;
    if (log_fd < 0 || log_fd == STDERR_FILENO)
        return 0;
    if ((fd = open_file(log_path, err, errlen)) < 0)
        return -1; /* keep writing to the old file */
    dup2(fd, log_fd);
    close(fd);
    return 0;
}

void access_log_close(void)
{
    if (log_fd > STDERR_FILENO)
        close(log_fd);
    log_fd = -1;
}

bool access_log_enabled(void)
{
    return log_fd >= 0;
}

/* Append `s` escaped; stops short of the end of the line buffer. */
static size_t add_escaped(char *line, size_t n, size_t max, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    for (; s && *s && n + 4 < max; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch < 0x20 || ch >= 0x7f || ch == '"' || ch == '\\') {
            line[n++] = '\\';
            line[n++] = 'x';
            line[n++] = hex[ch >> 4];
            line[n++] = hex[ch & 15];
        } else {
            line[n++] = (char)ch;
        }
    }
    return n;
}

static size_t add_text(char *line, size_t n, size_t max, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static size_t add_text(char *line, size_t n, size_t max, const char *fmt, ...)
{
    va_list ap;
    int k;
    va_start(ap, fmt);
    k = vsnprintf(line + n, max - n, fmt, ap);
    va_end(ap);
    if (k < 0)
        return n;
    return n + (size_t)k < max ? n + (size_t)k : max - 1;
}

void access_log_write(const struct access_entry *e)
{
    char line[LINE_MAX_BYTES], client[INET6_ADDRSTRLEN], stamp[40], uri[LINE_MAX_BYTES];
    char referer[1024];
    struct tm tm;
    size_t n, max = sizeof(line) - 1;

    if (log_fd < 0)
        return;
    format_sockaddr(e->client, client, sizeof(client));
    gmtime_r(&e->when, &tm);
    strftime(stamp, sizeof(stamp), "%d/%b/%Y:%H:%M:%S +0000", &tm);
    n = add_text(line, 0, max, "%s - - [%s] \"", client, stamp);
    n = add_escaped(line, n, max - 1024, e->method);
    n = add_text(line, n, max, " ");
    url_redact(e->uri, uri, sizeof(uri)); /* signed URLs' signatures, passwords */
    n = add_escaped(line, n, max - 512, uri);
    n = add_text(line, n, max, " %s\" ", e->version);
    n = e->status ? add_text(line, n, max, "%u ", e->status) : add_text(line, n, max, "- ");
    n = add_text(line, n, max, "%lld \"", (long long)e->bytes);
    url_redact(e->referer ? e->referer : "-", referer, sizeof(referer));
    n = add_escaped(line, n, max - 256, referer);
    n = add_text(line, n, max, "\" \"");
    n = add_escaped(line, n, max - 64, e->agent ? e->agent : "-");
    n = add_text(line, n, max, "\" %s %.3f\n", e->cache, e->seconds);
    if (write(log_fd, line, n) < 0)
        return; /* nowhere left to report it */
}
