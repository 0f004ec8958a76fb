/* LD_PRELOAD for one scenario: an EPOLL_CTL_DEL on the main thread (the one that drains) waits
 * 20 ms before it runs, which widens the window in which another thread may remove the same
 * descriptor from the same epoll set first. A drain that lets two threads race for the
 * listening socket (libmicrohttpd's MHD_quiesce_daemon against its own workers, which abort on
 * losing) then aborts most times, instead of about once in 450 drains. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

int epoll_ctl(int epfd, int op, int fd, struct epoll_event *event)
{
    static int (*real)(int, int, int, struct epoll_event *);
    if (!real)
        real = (int (*)(int, int, int, struct epoll_event *))dlsym(RTLD_NEXT, "epoll_ctl");
    if (op == EPOLL_CTL_DEL && gettid() == getpid()) {
        struct timespec wait = {0, 20 * 1000 * 1000};
        nanosleep(&wait, NULL);
    }
    return real(epfd, op, fd, event);
}
