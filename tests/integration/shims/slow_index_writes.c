/* LD_PRELOAD for the purge scenarios: while the file $SLOW_INDEX_FLAG exists, each write the
 * index's thread (arca-index: SQLite's WAL frames, a commit) makes waits 200 ms first. A purge
 * answered before its rows were committed then loses them to a kill -9 right after its answer
 * every time, with a handful of objects, where it took thousands of them before the window was
 * wide enough to be met at all. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

static void maybe_wait(void)
{
    char name[16] = "";
    const char *flag = getenv("SLOW_INDEX_FLAG");
    prctl(PR_GET_NAME, name, 0, 0, 0);
    if (flag && strcmp(name, "arca-index") == 0 && access(flag, F_OK) == 0) {
        struct timespec wait = {0, 200 * 1000 * 1000};
        nanosleep(&wait, NULL);
    }
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    static ssize_t (*real)(int, const void *, size_t, off_t);
    if (!real)
        real = (ssize_t(*)(int, const void *, size_t, off_t))dlsym(RTLD_NEXT, "pwrite");
    maybe_wait();
    return real(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off64_t off)
{
    static ssize_t (*real)(int, const void *, size_t, off64_t);
    if (!real)
        real = (ssize_t(*)(int, const void *, size_t, off64_t))dlsym(RTLD_NEXT, "pwrite64");
    maybe_wait();
    return real(fd, buf, n, off);
}

ssize_t write(int fd, const void *buf, size_t n)
{
    static ssize_t (*real)(int, const void *, size_t);
    if (!real)
        real = (ssize_t(*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
    maybe_wait();
    return real(fd, buf, n);
}
