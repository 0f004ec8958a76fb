/* The address an upstream connection leaves from (outgoing.h). */
#include "upstream/outgoing.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

int outgoing_bind(int fd, int family, const struct outgoing_address *out, char *why, size_t size)
{
    bool v6 = family == AF_INET6;
    const struct sockaddr *sa =
        v6 ? (const struct sockaddr *)&out->v6 : (const struct sockaddr *)&out->v4;
    socklen_t len = v6 ? sizeof(out->v6) : sizeof(out->v4);
    char text[INET6_ADDRSTRLEN] = "";
    if (!out->has_v4 && !out->has_v6)
        return 0;
    if (v6 ? !out->has_v6 : !out->has_v4) {
        snprintf(why, size, "--outgoing-address has no %s address to leave from",
                 v6 ? "IPv6" : "IPv4");
        return -1;
    }
    if (bind(fd, sa, len) == 0)
        return 0;
    inet_ntop(family, v6 ? (const void *)&out->v6.sin6_addr : (const void *)&out->v4.sin_addr, text,
              sizeof(text));
    snprintf(why, size, "cannot leave from %s: %s", text, strerror(errno));
    return -1;
}
