/* Connections arca makes to its own listeners for a client (handler.h's engine_expect_relay): the
 * ones expected, by the local address they are made from, and the client each is for. A small
 * table under one lock: a relay is registered before its connect and forgotten once its listener
 * took it (or it failed), so it holds the tunnels to arca being opened right now. */
#include "engine/engine_internal.h"
#include "base/parse.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

/* Tunnels to arca itself being opened at once; beyond, the next is refused (engine_expect_relay
 * says false) rather than judged as arca's own. */
#define RELAYS_MAX 256

struct relay {
    bool used, accepted;
    uint8_t from[16]; /* the local address it connects from (IPv4 mapped) */
    int from_port;
    struct sockaddr_storage client;
};

static struct relay relays[RELAYS_MAX];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
/* Entries in use: every accepted connection asks relay_claim, and almost none is a relay (a
 * relay is registered before its connect, so it is counted before its accept). */
static atomic_int in_use;

/* An address and port as the table keys them (an IPv4 peer of a dual-stack listener is seen
 * IPv4-mapped: one key for both forms). */
static bool key_of(const struct sockaddr *sa, uint8_t addr[16], int *port)
{
    if (!sa || addr_to_v6(sa, addr) < 0)
        return false;
    *port = sa->sa_family == AF_INET ? ntohs(((const struct sockaddr_in *)sa)->sin_port)
                                     : ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    return true;
}

/* Lock held: the entry for `from`, or NULL. */
static struct relay *find(const struct sockaddr *from)
{
    uint8_t addr[16];
    int port;
    if (!key_of(from, addr, &port))
        return NULL;
    for (int i = 0; i < RELAYS_MAX; i++)
        if (relays[i].used && relays[i].from_port == port && !memcmp(relays[i].from, addr, 16))
            return &relays[i];
    return NULL;
}

bool engine_expect_relay(const struct sockaddr *from, const struct sockaddr *client)
{
    uint8_t addr[16];
    int port;
    size_t len =
        client->sa_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
    bool taken = false;
    if (!key_of(from, addr, &port) ||
        (client->sa_family != AF_INET && client->sa_family != AF_INET6))
        return false;
    pthread_mutex_lock(&lock);
    for (int i = 0; i < RELAYS_MAX && !taken; i++) {
        struct relay *r = &relays[i];
        if (r->used)
            continue;
        *r = (struct relay){.used = true, .from_port = port};
        memcpy(r->from, addr, 16);
        memcpy(&r->client, client, len);
        taken = true;
        atomic_fetch_add(&in_use, 1);
    }
    pthread_mutex_unlock(&lock);
    return taken;
}

bool engine_relay_accepted(const struct sockaddr *from)
{
    struct relay *r;
    bool accepted;
    pthread_mutex_lock(&lock);
    accepted = (r = find(from)) && r->accepted;
    pthread_mutex_unlock(&lock);
    return accepted;
}

void engine_forget_relay(const struct sockaddr *from)
{
    struct relay *r;
    pthread_mutex_lock(&lock);
    if ((r = find(from))) {
        r->used = false;
        atomic_fetch_sub(&in_use, 1);
    }
    pthread_mutex_unlock(&lock);
}

void relay_claim(struct conn *c)
{
    struct relay *r;
    if (!atomic_load(&in_use))
        return;
    pthread_mutex_lock(&lock);
    if ((r = find(&c->peer.sa)) && !r->accepted) {
        memset(&c->peer, 0, sizeof(c->peer));
        memcpy(&c->peer, &r->client,
               r->client.ss_family == AF_INET ? sizeof(c->peer.in4) : sizeof(c->peer.in6));
        r->accepted = true;
    }
    pthread_mutex_unlock(&lock);
}
