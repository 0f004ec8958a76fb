/* The files a TLS context is made from, read once each (tls_files.h). */
#include "tls/tls_files.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

size_t tls_file_about(const struct config *cfg, const struct tls_file *f, char *err, size_t errlen)
{
    char where[512];
    int n;
    config_where(cfg, f->option, where, sizeof(where));
    n = snprintf(err, errlen, "%s--%s %.400s: ", where, f->option, f->path);
    return n < 0 ? 0 : (size_t)n < errlen ? (size_t)n : errlen - 1;
}

/* Why `fd` is not a file to read (NULL: it is): a directory, a FIFO or a device, too big. */
static const char *not_readable(int fd, char *why, size_t size)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return strerror(errno);
    if (S_ISDIR(st.st_mode))
        return "a directory";
    if (!S_ISREG(st.st_mode))
        return "not a regular file (a FIFO, a socket or a device)";
    if (st.st_size > TLS_FILE_MAX) {
        snprintf(why, size, "too big (%lld bytes; a certificate chain is a few KB)",
                 (long long)st.st_size);
        return why;
    }
    return NULL;
}

/* The whole of f->path into f->data; NULL, or why it could not be read (f then holds none). */
static const char *read_whole(struct tls_file *f, char *big, size_t size)
{
    const char *why = NULL;
    ssize_t got = 0;
    int fd = open(f->path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        why = strerror(errno);
    else if (!(why = not_readable(fd, big, size)) && !(f->data = malloc(TLS_FILE_MAX + 1)))
        why = "out of memory";
    while (!why && f->len <= TLS_FILE_MAX &&
           (got = read(fd, f->data + f->len, TLS_FILE_MAX + 1 - f->len)) != 0) {
        if (got > 0)
            f->len += (size_t)got;
        else if (errno != EINTR)
            why = strerror(errno);
    }
    if (!why && f->len > TLS_FILE_MAX) /* it grew while read */
        why = "too big (a certificate chain is a few KB)";
    if (fd >= 0)
        close(fd);
    if (why)
        tls_file_free(f);
    return why;
}

int tls_file_read(struct tls_file *f, const struct config *cfg, const char *option,
                  const char *path, char *err, size_t errlen)
{
    char big[96];
    const char *why;
    *f = (struct tls_file){option, path, NULL, 0};
    if (!(why = read_whole(f, big, sizeof(big))))
        return 0;
    size_t n = tls_file_about(cfg, f, err, errlen);
    snprintf(err + n, errlen - n, "cannot read it: %s", why);
    return -1;
}

int tls_file_read_as(struct tls_file *f, const char *name, const char *path, char *err,
                     size_t errlen)
{
    char big[96];
    const char *why;
    *f = (struct tls_file){name, path, NULL, 0};
    if (!(why = read_whole(f, big, sizeof(big))))
        return 0;
    snprintf(err, errlen, "%s %.400s: cannot read it: %s", name, path, why);
    return -1;
}

void tls_file_free(struct tls_file *f)
{
    free(f->data);
    f->data = NULL;
    f->len = 0;
}

STACK_OF(X509) * tls_file_certs(const struct tls_file *f)
{
    BIO *b = BIO_new_mem_buf(f->data, (int)f->len);
    STACK_OF(X509) *certs = sk_X509_new_null();
    X509 *x;
    while (b && certs && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)))
        if (!sk_X509_push(certs, x))
            X509_free(x);
    ERR_clear_error(); /* the end of the file reads as an error */
    BIO_free(b);
    if (certs && sk_X509_num(certs) == 0) {
        sk_X509_free(certs);
        certs = NULL;
    }
    return certs;
}

bool tls_file_has_key(const struct tls_file *f)
{
    const char *end = f->data + f->len, *p = f->data;
    while (p && p < end && (p = memmem(p, (size_t)(end - p), "-----BEGIN", 10))) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (memmem(p, (size_t)((eol ? eol : end) - p), "PRIVATE KEY-----", 16))
            return true;
        p = eol;
    }
    return false;
}
