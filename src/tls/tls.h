/*
 * tls.h — HTTPS for clients: the certificate arca's --tls-listen addresses show, the settings
 * every TLS connection gets, the session-ticket keys that resume them, and what the status says
 * of it all.
 *
 * Contract: tls_load() reads --tls-cert, --tls-key and --tls-client-ca and builds a context from
 * them, or refuses with one line naming the option's file and line, the file and why (missing,
 * unreadable, no PEM in it, the key not the certificate's, expired or not yet valid); a refusal
 * changes nothing. tls_install() makes a loaded context the one new connections get
 * (tls_session); a connection keeps the context it started with (it holds a reference) until it
 * closes, so a SIGHUP's new certificate reaches new connections only. Every context: TLS 1.2 and
 * 1.3 only, modern ciphers, ALPN http/1.1, no renegotiation, buffers released while idle,
 * stateless session tickets. The ticket keys are this module's, not a context's: they rotate
 * hourly, are accepted for three rotations (tls_tickets.h), and survive a reload,
 * so a new certificate resumes the sessions of the old. Each install moves tls_generation(), and
 * tls_admits() judges an open connection by the context in force, as its handshake would be
 * judged now (a reload that adds or narrows --tls-client-ca reaches the connections open before
 * it: engine.h). Every function is thread-safe.
 */
#ifndef ARCA_TLS_H
#define ARCA_TLS_H

#include "config/config.h"

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tls_ctx;

struct tls_ctx *tls_load(const struct config *cfg, char *err, size_t errlen);
/* Takes `t` (NULL: no TLS); the context it replaces is let go (its connections keep it). */
void tls_install(struct tls_ctx *t);
/* A context loaded and never installed. */
void tls_free(struct tls_ctx *t);
/* Whether a context is installed. */
bool tls_enabled(void);
/* A server-side TLS connection on socket `fd` with the context in force; NULL: out of memory or
 * none installed. */
SSL *tls_session(int fd);
/* How many contexts were installed so far: read before tls_session, it names the terms its
 * session was made under (or older ones: then it is judged once more than needed). */
unsigned tls_generation(void);
/* Whether the context in force admits the client of `s` (a session whose handshake is done), as
 * a new handshake would: its certificate, or its having none, against the client CAs in force
 * (none asked for: everyone). false: why, in `why`. */
bool tls_admits(SSL *s, char *why, size_t size);

/* The certificate in force, as the status, the pages and the metrics show it. */
struct tls_info {
    bool enabled;
    char cert_file[1024];
    char subject[256], issuer[256]; /* RFC 2253 ("CN=cache.lab,O=Lab") */
    int64_t not_before, not_after;  /* Unix seconds */
    char client_ca[256];            /* the client CA's subject; "" when none is asked for */
    int64_t loaded_at;              /* when it was read (start or SIGHUP) */
    bool ktls;                      /* kernel TLS is offered to new connections */
    char ktls_why[128];             /* why not, when it is not */
};
void tls_describe(struct tls_info *out);
/* A certificate this close to its end is warned of: the log (start, SIGHUP, daily), the pages'
 * card, and OPERATIONS.md's alert. */
#define TLS_EXPIRY_WARN_S (21 * 86400)

/* What happened to TLS connections since start. */
enum tls_event {
    TLS_HANDSHAKE,      /* a handshake completed */
    TLS_RESUMED,        /* ... resuming a session (counted in TLS_HANDSHAKE too) */
    TLS_FAILED,         /* a handshake failed: garbage, an unknown client certificate... */
    TLS_NO_CLIENT_CERT, /* ... of which: the client showed no certificate --tls-client-ca signed */
    TLS_PLAIN_HTTP,     /* plain HTTP sent to a TLS port: refused with 400 */
    TLS_KTLS,           /* a connection whose hits the kernel encrypts */
    TLS_REFUSED_LATER,  /* an open connection a reload's client CA refused (tls_admits) */
    TLS_N_EVENTS
};
void tls_count(enum tls_event e);
void tls_counts(int64_t out[TLS_N_EVENTS]);

/* The subject of the client certificate `s`'s handshake refused ("" when none was refused). */
const char *tls_refused_subject(SSL *s);

/* `x`'s subject, RFC 2253, in `out` ("" when there is none; cut with "..." beyond its size). A
 * client certificate's is kept in TLS_SUBJECT_MAX bytes: the last RDN is printed first, and a
 * subject with many OUs must keep its CN (found by the outside review). */
#define TLS_SUBJECT_MAX 1024
void tls_subject(X509 *x, char *out, size_t size);

/* ALPN: whether the client's list `in` (RFC 7301's wire form) offers http/1.1, then pointed to
 * by `*out`. A malformed list offers nothing. */
bool tls_alpn_pick(const unsigned char *in, unsigned int inlen, const unsigned char **out,
                   unsigned char *outlen);

/* Whether the kernel takes TLS on a TCP socket (asked on a loopback connection made for it: its
 * tls module loaded, and OpenSSL built for it), and why not when it does not. tls_load asks it
 * (the context's tls_info says the answer); not for every request. */
bool tls_kernel_offers(const char **why);

#endif
