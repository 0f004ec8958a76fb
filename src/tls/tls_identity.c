/* A certificate this arca shows as a client (tls_identity.h). */
#include "tls/tls_identity.h"
#include "tls/tls_files.h"
#include "base/parse.h"
#include "log/log.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* No passphrase is asked for: an encrypted key is refused rather than read from a terminal. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return 0;
}

static int64_t unix_time(const ASN1_TIME *t)
{
    struct tm tm;
    return ASN1_TIME_to_tm(t, &tm) == 1 ? (int64_t)timegm(&tm) : 0;
}

/* Why leaf `x` of file `f` is not one to show now (NULL: it is). */
static const char *leaf_trouble(X509 *x, const struct tls_file *f, const char *key_name, char *why,
                                size_t size)
{
    char when[64];
    int64_t now = (int64_t)time(NULL), from, until;
    if (!x) {
        if (!tls_file_has_key(f))
            return "no PEM certificate in it";
        snprintf(why, size, "no PEM certificate in it, a private key instead (swapped with %s?)",
                 key_name);
        return why;
    }
    from = unix_time(X509_get0_notBefore(x));
    until = unix_time(X509_get0_notAfter(x));
    if (until <= now || from > now) {
        format_utc(until <= now ? until : from, when, sizeof(when));
        snprintf(why, size,
                 until <= now ? "the certificate expired on %s"
                              : "the certificate is not valid until %s",
                 when);
        return why;
    }
    return NULL;
}

/* The key in `f` is a PEM private key, the one of certificate `x`: NULL, else why not. */
static const char *key_trouble(const struct tls_file *f, X509 *x, const char *cert_name,
                               const char *cert_path, char *why, size_t size)
{
    BIO *b = BIO_new_mem_buf(f->data, (int)f->len);
    EVP_PKEY *key = b ? PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL) : NULL;
    const char *trouble = NULL;
    BIO_free(b);
    if (!key)
        trouble = "no PEM private key in it (an encrypted key is refused: arca asks no "
                  "passphrase)";
    else if (X509_check_private_key(x, key) != 1) {
        snprintf(why, size, "this key is not the one of the certificate in %s %.400s", cert_name,
                 cert_path);
        trouble = why;
    }
    EVP_PKEY_free(key);
    ERR_clear_error();
    return trouble;
}

/* A key others may read is said, as --tls-key's is (tls.c): its certificate lets in anyone who
 * holds it. */
static void note_key_mode(const char *name, const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0 && (st.st_mode & (S_IRGRP | S_IROTH)))
        log_warn("%s %s can be read by other users of this machine (mode %03o): chmod 600 it, "
                 "owned by the user arca runs as",
                 name, path, (unsigned)(st.st_mode & 0777));
}

/* The files' bytes pass to `id` (the tls_file structs keep none). */
static void take(struct tls_identity *id, struct tls_file *cert, struct tls_file *key)
{
    snprintf(id->cert_path, sizeof(id->cert_path), "%s", cert->path);
    snprintf(id->key_path, sizeof(id->key_path), "%s", key->path);
    id->cert = cert->data;
    id->cert_len = cert->len;
    id->key = key->data;
    id->key_len = key->len;
    cert->data = key->data = NULL;
}

int tls_identity_load(struct tls_identity *id, const char *cert_name, const char *cert_path,
                      const char *key_name, const char *key_path, char *err, size_t errlen)
{
    struct tls_file cert = {0}, key = {0};
    STACK_OF(X509) *certs = NULL;
    const char *why = NULL;
    char detail[600];
    int rc = -1;
    memset(id, 0, sizeof(*id));
    if (tls_file_read_as(&cert, cert_name, cert_path, err, errlen) < 0)
        return -1;
    certs = tls_file_certs(&cert);
    if ((why = leaf_trouble(certs ? sk_X509_value(certs, 0) : NULL, &cert, key_name, detail,
                            sizeof(detail))))
        snprintf(err, errlen, "%s %.400s: %s", cert_name, cert_path, why);
    else if (tls_file_read_as(&key, key_name, key_path, err, errlen) == 0) {
        why = key_trouble(&key, sk_X509_value(certs, 0), cert_name, cert_path, detail,
                          sizeof(detail));
        if (why)
            snprintf(err, errlen, "%s %.400s: %s", key_name, key_path, why);
        else
            rc = 0;
    }
    if (rc == 0) {
        note_key_mode(key_name, key_path);
        take(id, &cert, &key);
    }
    if (key.data) /* a key refused: its bytes are not left in freed memory either */
        OPENSSL_cleanse(key.data, key.len);
    sk_X509_pop_free(certs, X509_free);
    tls_file_free(&cert);
    tls_file_free(&key);
    return rc;
}

void tls_identity_free(struct tls_identity *id)
{
    if (id->key) /* a private key: its bytes are not left in freed memory */
        OPENSSL_cleanse(id->key, id->key_len);
    free(id->cert);
    free(id->key);
    memset(id, 0, sizeof(*id));
}

bool tls_identity_same(const struct tls_identity *a, const struct tls_identity *b)
{
    return !strcmp(a->cert_path, b->cert_path) && !strcmp(a->key_path, b->key_path);
}
