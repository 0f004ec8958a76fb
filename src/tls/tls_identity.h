/*
 * tls_identity.h — a certificate this arca shows as a client: a site's to its parent arca
 * (--parent-cert and --parent-key, or a rule's parent-cert and parent-key; docs/TLS.md), for
 * a parent that requires one (--tls-client-ca).
 *
 * Contract: tls_identity_load() reads both files once (tls_files.h: a regular file each, not
 * waited on) and checks them as the listener's are (tls.h): a PEM certificate in the one (not a
 * key: swapped files are named), valid now; a PEM private key in the other, not encrypted (no
 * passphrase is asked); the key the certificate's. It refuses with one line `NAME PATH: why`
 * (the caller says where NAME was set) and then holds nothing. A loaded identity holds the
 * files' bytes, what libcurl is handed (it copies them), so a file rewritten later changes
 * nothing until the next load (start, SIGHUP). Any thread; an identity is its owner's.
 */
#ifndef ARCA_TLS_IDENTITY_H
#define ARCA_TLS_IDENTITY_H

#include <stdbool.h>
#include <stddef.h>

struct tls_identity {
    char cert_path[1024], key_path[1024]; /* as given */
    char *cert, *key;                     /* the files' PEM bytes */
    size_t cert_len, key_len;
};

/* The certificate at `cert_path` (named `cert_name` in a refusal) and its key at `key_path`
 * (`key_name`). 0, or -1 with the line in err. */
int tls_identity_load(struct tls_identity *id, const char *cert_name, const char *cert_path,
                      const char *key_name, const char *key_path, char *err, size_t errlen);
void tls_identity_free(struct tls_identity *id);
/* Whether two identities were read from the same files. */
bool tls_identity_same(const struct tls_identity *a, const struct tls_identity *b);

#endif
