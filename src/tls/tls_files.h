/*
 * tls_files.h — the files a TLS context is made from (--tls-cert, --tls-key, --tls-client-ca),
 * each read once: every check, the context and the session id context are built from the same
 * bytes, so a file rewritten during a SIGHUP cannot pass one check and feed another.
 *
 * Contract: tls_file_read() takes a regular file only, opened without waiting (a FIFO would
 * hold the thread that reads it: SIGHUP's is the signal loop, and SIGTERM would go unread), at
 * most TLS_FILE_MAX bytes; else -1 with one line `FILE:LINE: --OPTION PATH: why`. The bytes are
 * the caller's until tls_file_free(). Any thread.
 */
#ifndef ARCA_TLS_FILES_H
#define ARCA_TLS_FILES_H

#include "config/config.h"

#include <openssl/bio.h>
#include <openssl/x509.h>
#include <stddef.h>

#define TLS_FILE_MAX (4 << 20)

struct tls_file {
    const char *option; /* "tls-cert" */
    const char *path;
    char *data;
    size_t len;
};

int tls_file_read(struct tls_file *f, const struct config *cfg, const char *option,
                  const char *path, char *err, size_t errlen);
/* The same for a file named otherwise (`name`: "--parent-cert", a rule's "parent-cert"): the
 * line is `NAME PATH: why`, its caller says where NAME was set. */
int tls_file_read_as(struct tls_file *f, const char *name, const char *path, char *err,
                     size_t errlen);
void tls_file_free(struct tls_file *f);
/* "FILE:LINE: --OPTION PATH: " into err: its length (for the reason that follows). */
size_t tls_file_about(const struct config *cfg, const struct tls_file *f, char *err, size_t errlen);
/* The PEM certificates in `f`, in order (NULL: none); the caller frees the stack and them. */
STACK_OF(X509) * tls_file_certs(const struct tls_file *f);
/* Whether `f` holds a PEM private key (a key given where a certificate was asked for). */
bool tls_file_has_key(const struct tls_file *f);

#endif
