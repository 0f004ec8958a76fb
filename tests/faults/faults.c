/*
 * libarcafaults.so — faults a disk or a library gives rarely, on demand, for the scenarios that
 * must show what arca does then (LD_PRELOAD, test builds only). Each fault is armed while the
 * file named by its variable exists, so a test arms and disarms it while arca runs:
 *   ARCA_FAULT_DIR_FSYNC   fsync() of a directory fails with EIO
 *   ARCA_FAULT_WAL_WRITE   writes to a file whose name ends in "-wal" fail with ENOSPC (SQLite's
 *                          COMMIT in WAL mode)
 *   ARCA_FAULT_MULTI_ADD   curl_multi_add_handle() answers CURLM_OUT_OF_MEMORY
 *   ARCA_FAULT_SLOW_COPY   strdup() of a string holding the file's first line takes a second
 *                          first, on any thread: a thread descheduled there (upstream_fetch
 *                          copies its URL between the lookup that made the object and its
 *                          download's post)
 *   ARCA_FAULT_SLOW_OPEN   openat() of a path holding the file's first line waits while the
 *                          file exists (10 s at most), having made "<file>.held" first: a
 *                          hit's open of its object's file, with the store's lock dropped,
 *                          held while a new version of the file is put in its place
 *   ARCA_FAULT_SLOW_UNLINK unlink() of a path holding the file's first line, the same way: a
 *                          purge's files held on the persistence thread while it answers
 * Everything else goes to the real function. A sanitizer runtime linked statically (clang's
 * ASan) would resolve these names before the preload: gcc's shared ones, as built here, do not.
 */
#define _GNU_SOURCE
#undef _FILE_OFFSET_BITS /* pwrite and pwrite64 are two symbols here, each interposed */
#include <curl/curl.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static bool armed(const char *var)
{
    const char *path = getenv(var);
    return path && *path && access(path, F_OK) == 0;
}

static bool is_wal(int fd)
{
    char link[64], target[4096];
    ssize_t n;
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    n = readlink(link, target, sizeof(target) - 1);
    if (n < 4)
        return false;
    target[n] = '\0';
    return strcmp(target + n - 4, "-wal") == 0;
}

int fsync(int fd)
{
    static int (*real)(int);
    struct stat sb;
    if (!real)
        real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    if (armed("ARCA_FAULT_DIR_FSYNC") && fstat(fd, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        errno = EIO;
        return -1;
    }
    return real(fd);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off64_t off)
{
    static ssize_t (*real)(int, const void *, size_t, off64_t);
    if (!real)
        real = (ssize_t(*)(int, const void *, size_t, off64_t))dlsym(RTLD_NEXT, "pwrite64");
    if (armed("ARCA_FAULT_WAL_WRITE") && is_wal(fd)) {
        errno = ENOSPC;
        return -1;
    }
    return real(fd, buf, n, off);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    return pwrite64(fd, buf, n, (off64_t)off);
}

CURLMcode curl_multi_add_handle(CURLM *multi, CURL *easy)
{
    static CURLMcode (*real)(CURLM *, CURL *);
    if (!real)
        real = (CURLMcode(*)(CURLM *, CURL *))dlsym(RTLD_NEXT, "curl_multi_add_handle");
    if (armed("ARCA_FAULT_MULTI_ADD"))
        return CURLM_OUT_OF_MEMORY;
    return real(multi, easy);
}

/* `var`'s armed file's first line, into `line` (empty: not armed). open and read only: strdup's
 * callers may be anywhere, stdio among them. */
static void marker_of(const char *var, char *line, size_t size)
{
    int saved = errno; /* a strdup that succeeds leaves errno as it was */
    ssize_t n = 0;
    int fd = armed(var) ? open(getenv(var), O_RDONLY | O_CLOEXEC) : -1;
    if (fd >= 0) {
        n = read(fd, line, size - 1);
        close(fd);
    }
    errno = saved;
    line[n > 0 ? n : 0] = '\0';
    line[strcspn(line, "\n")] = '\0';
}

char *strdup(const char *s)
{
    /* every thread copies strings: the real one is looked up once, atomically (a second
     * lookup by a thread that raced the first finds the same) */
    static char *(*found)(const char *);
    char *(*real)(const char *) = __atomic_load_n(&found, __ATOMIC_ACQUIRE);
    char marker[256];
    if (!real) {
        real = (char *(*)(const char *))dlsym(RTLD_NEXT, "strdup");
        __atomic_store_n(&found, real, __ATOMIC_RELEASE);
    }
    marker_of("ARCA_FAULT_SLOW_COPY", marker, sizeof(marker));
    if (*marker && strstr(s, marker))
        nanosleep(&(struct timespec){1, 0}, NULL);
    return real(s);
}

/* A slow call's wait (`var`: SLOW_OPEN's or SLOW_UNLINK's): "<armed>.held" made, then until the
 * armed file is gone (10 s at most). */
static void held_while_armed(const char *var)
{
    char held[4096];
    snprintf(held, sizeof(held), "%s.held", getenv(var));
    int fd = open(held, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0)
        close(fd);
    for (int i = 0; i < 1000 && armed(var); i++)
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
}

/* A slow call's fault (`var`): held while armed when `path` holds the armed file's line. */
static void held_if_marked(const char *var, const char *path)
{
    char marker[256];
    marker_of(var, marker, sizeof(marker));
    if (*marker && strstr(path, marker)) {
        int saved = errno;
        held_while_armed(var);
        errno = saved;
    }
}

/* The mode a variadic open call was given: only with O_CREAT or O_TMPFILE (a macro: va_start
 * belongs to the variadic function itself). */
#define MODE_ARG(flags, mode)                                                                      \
    do {                                                                                           \
        if (((flags)&O_CREAT) || ((flags)&O_TMPFILE) == O_TMPFILE) {                               \
            va_list ap;                                                                            \
            va_start(ap, flags);                                                                   \
            (mode) = (mode_t)va_arg(ap, int);                                                      \
            va_end(ap);                                                                            \
        }                                                                                          \
    } while (0)

/* openat64 is what a build with 64-bit offsets calls (arca's), openat the other name. The marker
 * is read before the real open: reading it opens a file too. */
int openat64(int dir, const char *path, int flags, ...)
{
    static int (*found)(int, const char *, int, ...);
    int (*real)(int, const char *, int, ...) = __atomic_load_n(&found, __ATOMIC_ACQUIRE);
    mode_t mode = 0;
    MODE_ARG(flags, mode);
    if (!real) {
        real = (int (*)(int, const char *, int, ...))dlsym(RTLD_NEXT, "openat64");
        __atomic_store_n(&found, real, __ATOMIC_RELEASE);
    }
    held_if_marked("ARCA_FAULT_SLOW_OPEN", path);
    return real(dir, path, flags, mode);
}

int openat(int dir, const char *path, int flags, ...)
{
    mode_t mode = 0;
    MODE_ARG(flags, mode);
    return openat64(dir, path, flags, mode);
}

int unlink(const char *path)
{
    static int (*found)(const char *);
    int (*real)(const char *) = __atomic_load_n(&found, __ATOMIC_ACQUIRE);
    if (!real) {
        real = (int (*)(const char *))dlsym(RTLD_NEXT, "unlink");
        __atomic_store_n(&found, real, __ATOMIC_RELEASE);
    }
    held_if_marked("ARCA_FAULT_SLOW_UNLINK", path);
    return real(path);
}
