/* What the TLS layer reads of a client before it knows who the client is: the ALPN list
 * (tls_alpn_pick) and a first flight of bytes, handed to a server SSL of arca's own context
 * (tls_load's settings: protocols, ciphers, ALPN, tickets and their keys, no renegotiation).
 * The input goes (a) to tls_alpn_pick, which must name http/1.1 inside the list or nothing, and
 * (b) whole into a memory BIO as what a client sent, the handshake run until it wants more:
 * no crash, no leak, never a completed handshake from one flight. The certificate is made once,
 * with OpenSSL's API, into a temporary folder removed at exit. */
#include "config/config.h"
#include "tls/tls.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char dir[64], cert_path[96], key_path[96];
static int spare[2] = {-1, -1}; /* tls_session's socket, never read: the BIOs replace it */

static void cleanup(void)
{
    tls_install(NULL);
    unlink(cert_path);
    unlink(key_path);
    rmdir(dir);
    close(spare[0]);
    close(spare[1]);
}

/* A self-signed P-256 certificate for CN=fuzz.test, valid from yesterday for a year. */
static int write_cert(void)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    FILE *cf = NULL, *kf = NULL;
    int ok = key && x && name;
    if (ok) {
        X509_set_version(x, 2);
        ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
        X509_gmtime_adj(X509_getm_notBefore(x), -86400);
        X509_gmtime_adj(X509_getm_notAfter(x), 365L * 86400);
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"fuzz.test", -1,
                                   -1, 0);
        ok = X509_set_subject_name(x, name) == 1 && X509_set_issuer_name(x, name) == 1 &&
             X509_set_pubkey(x, key) == 1 && X509_sign(x, key, EVP_sha256()) > 0 &&
             (cf = fopen(cert_path, "w")) && (kf = fopen(key_path, "w")) &&
             PEM_write_X509(cf, x) == 1 &&
             PEM_write_PrivateKey(kf, key, NULL, NULL, 0, NULL, NULL) == 1;
    }
    if (cf)
        fclose(cf);
    if (kf)
        fclose(kf);
    chmod(key_path, 0600);
    X509_NAME_free(name);
    X509_free(x);
    EVP_PKEY_free(key);
    return ok ? 0 : -1;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static struct config cfg;
    char err[1024];
    struct tls_ctx *t;
    (void)argc, (void)argv;
    snprintf(dir, sizeof(dir), "/tmp/arca-fuzz-tls-XXXXXX");
    if (!mkdtemp(dir))
        abort();
    snprintf(cert_path, sizeof(cert_path), "%s/cert.pem", dir);
    snprintf(key_path, sizeof(key_path), "%s/key.pem", dir);
    atexit(cleanup);
    if (write_cert() < 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, spare) < 0)
        abort();
    config_defaults(&cfg);
    snprintf(cfg.tls_cert, sizeof(cfg.tls_cert), "%s", cert_path);
    snprintf(cfg.tls_key, sizeof(cfg.tls_key), "%s", key_path);
    if (!(t = tls_load(&cfg, err, sizeof(err)))) {
        fprintf(stderr, "fuzz_tls: %s\n", err);
        abort();
    }
    tls_install(t);
    config_free(&cfg);
    return 0;
}

static void alpn(const uint8_t *data, size_t size)
{
    const unsigned char *out = NULL;
    unsigned char outlen = 0;
    unsigned int len = size > 0xffff ? 0xffff : (unsigned int)size; /* a TLS extension's most */
    if (!tls_alpn_pick(data, len, &out, &outlen))
        return;
    if (!out || outlen != 8 || out < data + 1 || out + 8 > data + len ||
        memcmp(out, "http/1.1", 8) || out[-1] != 8)
        abort();
}

/* The bytes as a client's first flight: the handshake runs until it wants more, or fails. */
static void first_flight(const uint8_t *data, size_t size)
{
    SSL *s = tls_session(spare[1]);
    BIO *in = BIO_new(BIO_s_mem()), *out = BIO_new(BIO_s_mem());
    if (!s || !in || !out)
        abort();
    BIO_set_mem_eof_return(in, -1); /* empty: "wait for more", as a socket would say */
    if (size > 0 && BIO_write(in, data, (int)size) != (int)size)
        abort();
    SSL_set_bio(s, in, out); /* the socket's BIO goes; these are the SSL's now */
    for (int i = 0; i < 16; i++) {
        int r = SSL_do_handshake(s);
        if (r == 1)
            abort(); /* one flight cannot finish a handshake: the client never saw ours */
        if (SSL_get_error(s, r) != SSL_ERROR_WANT_READ || BIO_ctrl_pending(in) == 0)
            break;
    }
    ERR_clear_error();
    SSL_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    alpn(data, size);
    first_flight(data, size);
    return 0;
}
