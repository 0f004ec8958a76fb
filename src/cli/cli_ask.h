/*
 * cli_ask.h — how arca's client commands (cli.c) ask a running arca: one HTTP exchange with
 * libcurl, proxies ignored (NO_PROXY *), and how a refusal is shown. Nothing here knows a command.
 */
#ifndef ARCA_CLI_ASK_H
#define ARCA_CLI_ASK_H

#include "base/buf.h"

#include <curl/curl.h>

/* One request to an arca. */
struct call {
    const char *method, *path, *payload, *token;
    long timeout_ms; /* the whole exchange */
};

#define CALL_TIMEOUT_MS 30000L

/* The client certificate and key (PEM files) every later ask shows, for an arca that requires
 * one (--tls-client-ca); NULL: none. Once, before the first ask. */
void cli_use_certificate(const char *cert, const char *key);
/* The CA file (PEM) an https:// server's certificate is checked against (--cacert; NULL:
 * CURL_CA_BUNDLE when set, else the system's store). Once, before the first ask. */
void cli_use_ca(const char *cacert);
/* How the server was chosen ("--server", "ARCA_SERVER", "listen in FILE", "the default: ..."),
 * said when it gives no answer. Once, before the first ask. */
void cli_use_origin(const char *how);
/* Ask `server` (http://HOST:PORT); the body lands in *body (cut at 4 MiB). Returns the status, or
 * -1 with curl's code in *code (when given) and its reason in `why` (NULL: printed). */
long cli_ask(const char *server, const struct call *q, struct buf *body, char *why, size_t whylen,
             CURLcode *code);
/* The first line of an answer's body (the server's one-line reason): its length, *text its start.
 */
int cli_first_line(const struct buf *body, const char **text);
/* Print the server's one-line reason for a refusal, `subject` (a URL, shown redacted) first when
 * given. Returns 1, the exit code. */
int cli_refused(const char *subject, long status, const struct buf *body);

#endif
