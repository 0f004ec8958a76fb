/*
 * outgoing.h — the address an upstream connection leaves from (--outgoing-address, a rule's
 * outgoing-address: config.h's struct outgoing_address), bound to each socket curl opens
 * (easy.c's socket callback) before it connects: downloads, their fills' ranges, the parent's
 * asks, probes and documents alike.
 *
 * Contract: upstream thread (any thread: it touches nothing shared). An address of the
 * socket's family is bound (port 0: the kernel picks one); with none given for either family
 * nothing is bound (the kernel's choice, as without the option). With an address of the other
 * family only, the connection is refused, never made from another address: an allow list that
 * names the site's address would refuse it anyway, and the operator asked that no upstream
 * see another (curl then tries the name's addresses of the family there is one for).
 */
#ifndef ARCA_OUTGOING_H
#define ARCA_OUTGOING_H

#include "config/config.h"

#include <stddef.h>

/* Bind `fd` (of `family`, AF_INET or AF_INET6) to `out`'s address of that family: 0 when bound
 * or nothing is to be; -1 with a one-line why when it cannot leave from an address `out` has. */
int outgoing_bind(int fd, int family, const struct outgoing_address *out, char *why, size_t size);

#endif
