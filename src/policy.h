/*
 * policy.h — who may fetch, and which upstream addresses arca may connect to.
 *
 * Contract: policy_init() runs once before any thread starts; the checks are then read-only and
 * callable from any thread. The upstream check is applied to the address a socket is about to
 * connect to (curl's open-socket hook), for every connection and every redirect hop, so a name
 * that resolves to a forbidden address (DNS rebinding) is refused too.
 */
#ifndef ARCA_POLICY_H
#define ARCA_POLICY_H

#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

void policy_init(const struct config *cfg);

/* True when no --allow-network was given or the client is inside one of them. */
bool policy_client_allowed(const struct sockaddr *client);

/* 0 when arca may connect to `addr`; -1 with a one-line reason otherwise. */
int policy_upstream_check(const struct sockaddr *addr, char *why, size_t whylen);

#endif
