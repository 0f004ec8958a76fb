/* A request's head as the engine reads it (h1.c), then the client its X-Forwarded-For lines
 * name behind a trusted proxy (policy_forwarded_client): whatever lines a client sent, a line
 * the proxy appends names the client, and the client named is an address or no one. (What h1.c
 * itself must refuse, and that it reads a head the same way however it arrives, is fuzz_h1's.) */
#include "config/config.h"
#include "fuzz.h"
#include "engine/h1.h"
#include "rules/policy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

static struct sockaddr_in proxy;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static struct config cfg;
    char err[CONFIG_ERR_LEN];
    (void)argc, (void)argv;
    config_defaults(&cfg);
    config_set(&cfg, "trusted-proxy", "127.0.0.0/8", err);
    config_set(&cfg, "trusted-proxy", "fd00::/8", err);
    policy_init(&cfg);
    proxy.sin_family = AF_INET;
    proxy.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return 0;
}

/* The client of lines[0..n) plus one line the proxy appends: `appended` must win. */
static void check_forwarded(const char **lines, int n, const char *appended, const char *expect)
{
    struct sockaddr_storage out;
    const struct sockaddr *c;
    struct in_addr want;
    lines[n] = appended;
    c = policy_forwarded_client((const struct sockaddr *)&proxy, lines, n + 1, &out);
    if (!expect) {
        if (c)
            abort();
        return;
    }
    inet_pton(AF_INET, expect, &want);
    if (c != (struct sockaddr *)&out || c->sa_family != AF_INET ||
        ((const struct sockaddr_in *)c)->sin_addr.s_addr != want.s_addr)
        abort();
}

static void forwarded(const char **lines, int n)
{
    struct sockaddr_storage out;
    const struct sockaddr *c;
    c = policy_forwarded_client((const struct sockaddr *)&proxy, lines, n, &out);
    if (c && c != (const struct sockaddr *)&proxy &&
        (c != (struct sockaddr *)&out || (c->sa_family != AF_INET && c->sa_family != AF_INET6)))
        abort();
    check_forwarded(lines, n, "203.0.113.9", "203.0.113.9");
    check_forwarded(lines, n, "203.0.113.9, 127.0.0.2", "203.0.113.9");
    check_forwarded(lines, n, "not-an-address", NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct h1_request req;
    const char *lines[H1_MAX_FIELDS + 1];
    char *values[H1_MAX_FIELDS];
    int n = 0;
    h1_init(&req);
    if (h1_parse(&req, (const char *)data, size, 16384) != H1_DONE)
        return 0;
    for (int i = 0; i < req.n_fields; i++) {
        const struct h1_field *f = &req.fields[i];
        if (h1_span_is((const char *)data, f->name, "X-Forwarded-For") &&
            (values[n] = strndup((const char *)data + f->value.at, f->value.len))) {
            lines[n] = values[n];
            n++;
        }
    }
    forwarded(lines, n);
    for (int i = 0; i < n; i++)
        free(values[i]);
    return 0;
}
