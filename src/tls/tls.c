/* HTTPS for clients (tls.h): the context a --tls-cert and --tls-key make, checked before it is
 * used, the one in force, and the counters the status shows. */
#include "tls/tls.h"
#include "tls/tls_files.h"
#include "tls/tls_tickets.h"
#include "log/log.h"
#include "base/parse.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Mozilla's "intermediate" TLS 1.2 list (forward secrecy, AEAD only); TLS 1.3 keeps OpenSSL's
 * own three suites. */
#define TLS12_CIPHERS                                                                              \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"     \
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
/* A ticket outlives neither its key (TLS_TICKET_KEYS rotations) nor this. */
#define TICKET_LIFETIME_S (2 * TLS_TICKET_ROTATE_S)

struct tls_ctx {
    SSL_CTX *ctx;
    struct tls_info info;
    /* its session id context: the digest of its client-CA terms (set_context) */
    unsigned char terms[EVP_MAX_MD_SIZE];
    unsigned int terms_len;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct tls_ctx *current; /* under lock */
static atomic_uint generation;  /* contexts installed: moved under lock, after `current` */
/* The SSL ex_data slot of a refused client certificate's subject (tls_refused_subject). */
static int refused_slot = -1;
static pthread_once_t slot_once = PTHREAD_ONCE_INIT;
static atomic_llong counts[TLS_N_EVENTS];

/* The last reason OpenSSL gave, for a message; the queue is left empty. */
static const char *ssl_reason(void)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    ERR_clear_error();
    return r ? r : "not understood";
}

static int64_t unix_time(const ASN1_TIME *t)
{
    struct tm tm;
    return ASN1_TIME_to_tm(t, &tm) == 1 ? (int64_t)timegm(&tm) : 0;
}

/* `name`, RFC 2253, in `out` ("" when there is none); one too long for it ends in "...". */
static void print_name(const X509_NAME *name, char *out, size_t size)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data = NULL;
    long len = 0;
    if (b && name && X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253) >= 0)
        len = BIO_get_mem_data(b, &data);
    if (size > 3 && len > 0 && (size_t)len >= size)
        snprintf(out, size, "%.*s...", (int)size - 4, data);
    else if (size > 0)
        snprintf(out, size, "%.*s", (int)(len > 0 ? len : 0), len > 0 ? data : "");
    BIO_free(b);
}

void tls_subject(X509 *x, char *out, size_t size)
{
    print_name(x ? X509_get_subject_name(x) : NULL, out, size);
}

/* The leaf certificate of --tls-cert (the first of `certs`), valid now: its subject, issuer and
 * dates into `info`. */
static int check_leaf(const struct config *cfg, const struct tls_file *f, STACK_OF(X509) * certs,
                      struct tls_info *info, char *err, size_t errlen)
{
    X509 *x = certs ? sk_X509_value(certs, 0) : NULL;
    char when[64];
    size_t n = tls_file_about(cfg, f, err, errlen);
    int64_t now = (int64_t)time(NULL);
    if (!x) {
        snprintf(err + n, errlen - n, "%s",
                 tls_file_has_key(f) ? "no PEM certificate in it, a private key instead (swapped "
                                       "with --tls-key?)"
                                     : "no PEM certificate in it");
        return -1;
    }
    info->not_before = unix_time(X509_get0_notBefore(x));
    info->not_after = unix_time(X509_get0_notAfter(x));
    tls_subject(x, info->subject, sizeof(info->subject));
    print_name(X509_get_issuer_name(x), info->issuer, sizeof(info->issuer));
    if (info->not_after <= now) {
        format_utc(info->not_after, when, sizeof(when));
        snprintf(err + n, errlen - n, "the certificate (%s) expired on %s", info->subject, when);
        return -1;
    }
    if (info->not_before > now) {
        format_utc(info->not_before, when, sizeof(when));
        snprintf(err + n, errlen - n, "the certificate (%s) is not valid until %s", info->subject,
                 when);
        return -1;
    }
    return 0;
}

/* No passphrase is asked for: an encrypted key is refused rather than read from a terminal. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return 0;
}

static void note_key_mode(const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0 && (st.st_mode & (S_IRGRP | S_IROTH)))
        log_warn("--tls-key %s can be read by other users of this machine (mode %03o): "
                 "chmod 600 it, owned by the user arca runs as",
                 path, (unsigned)(st.st_mode & 0777));
}

/* A handshake whose certificates pass this is refused by clients (they bound the message):
 * the chain should be the certificate and its intermediates. */
#define CHAIN_WARN_BYTES (100 * 1024)

/* The leaf and the intermediates after it, as the handshake sends them. */
static int use_chain(SSL_CTX *ctx, const struct config *cfg, const struct tls_file *f,
                     STACK_OF(X509) * certs, char *err, size_t errlen)
{
    size_t n;
    if (SSL_CTX_use_certificate(ctx, sk_X509_value(certs, 0)) != 1)
        goto refused;
    for (int i = 1; i < sk_X509_num(certs); i++)
        if (SSL_CTX_add1_chain_cert(ctx, sk_X509_value(certs, i)) != 1)
            goto refused;
    if (f->len > CHAIN_WARN_BYTES)
        log_warn("--tls-cert %s: the chain is %zu KB (%d certificates): clients refuse a "
                 "handshake this big; give the certificate and its intermediates only",
                 f->path, f->len / 1024, sk_X509_num(certs));
    return 0;
refused:
    n = tls_file_about(cfg, f, err, errlen);
    snprintf(err + n, errlen - n, "not a PEM certificate chain: %s", ssl_reason());
    return -1;
}

static int use_key(SSL_CTX *ctx, const struct config *cfg, const struct tls_file *f, char *err,
                   size_t errlen)
{
    BIO *b = BIO_new_mem_buf(f->data, (int)f->len);
    EVP_PKEY *key = b ? PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL) : NULL;
    size_t n = tls_file_about(cfg, f, err, errlen);
    int rc = -1;
    BIO_free(b);
    ERR_clear_error();
    if (!key)
        snprintf(err + n, errlen - n,
                 "no PEM private key in it (an encrypted key is refused: arca asks no passphrase)");
    else if (SSL_CTX_use_PrivateKey(ctx, key) != 1 || SSL_CTX_check_private_key(ctx) != 1)
        snprintf(err + n, errlen - n, "this key is not the one of the certificate in --tls-cert %s",
                 cfg->tls_cert);
    else
        rc = 0;
    EVP_PKEY_free(key);
    ERR_clear_error();
    if (rc == 0)
        note_key_mode(f->path);
    return rc;
}

static void free_refused(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                         void *argp)
{
    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    free(ptr);
}

static void make_slot(void)
{
    refused_slot = SSL_get_ex_new_index(0, NULL, NULL, NULL, free_refused);
}

/* A client certificate that does not verify: its subject is kept for the log's line
 * (tls_refused_subject), the verdict is OpenSSL's. */
static int keep_refused_subject(int ok, X509_STORE_CTX *store)
{
    SSL *s = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
    char *subject;
    if (!ok && s && refused_slot >= 0 && !SSL_get_ex_data(s, refused_slot) &&
        (subject = malloc(TLS_SUBJECT_MAX))) {
        tls_subject(X509_STORE_CTX_get0_cert(store), subject, TLS_SUBJECT_MAX);
        if (!SSL_set_ex_data(s, refused_slot, subject))
            free(subject);
    }
    return ok;
}

const char *tls_refused_subject(SSL *s)
{
    const char *subject = refused_slot >= 0 ? SSL_get_ex_data(s, refused_slot) : NULL;
    return subject ? subject : "";
}

/* --tls-client-ca: clients must show a certificate one of its CAs signed, else the handshake
 * fails. Each CA in the file is an anchor of its own, a site's intermediate too
 * (X509_V_FLAG_PARTIAL_CHAIN): a file naming site A's issuing CA admits site A's clients and no
 * other site's under the same root (found by the outside review: it admitted none). */
static int use_client_ca(SSL_CTX *ctx, const struct config *cfg, const struct tls_file *f,
                         struct tls_info *info, char *err, size_t errlen)
{
    STACK_OF(X509) *certs = tls_file_certs(f);
    STACK_OF(X509_NAME) *names = sk_X509_NAME_new_null();
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    int rc = certs && names && store ? 0 : -1;
    for (int i = 0; rc == 0 && i < sk_X509_num(certs); i++) {
        X509 *x = sk_X509_value(certs, i);
        X509_NAME *name = X509_NAME_dup(X509_get_subject_name(x));
        char subject[256];
        if (X509_STORE_add_cert(store, x) != 1 || !name || !sk_X509_NAME_push(names, name)) {
            X509_NAME_free(name);
            rc = -1;
        }
        tls_subject(x, subject, sizeof(subject));
        if (i == 0)
            snprintf(info->client_ca, sizeof(info->client_ca), "%s", subject);
        if (X509_check_ca(x) == 0) /* a server's or a client's certificate given for the CA */
            log_warn("--tls-client-ca %s: %s is not a CA certificate: no client certificate is "
                     "signed by it",
                     f->path, subject);
    }
    sk_X509_pop_free(certs, X509_free);
    if (rc < 0 || X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN) != 1) {
        size_t n = tls_file_about(cfg, f, err, errlen);
        snprintf(err + n, errlen - n, "no PEM CA certificate in it");
        sk_X509_NAME_pop_free(names, X509_NAME_free);
        ERR_clear_error();
        return -1;
    }
    SSL_CTX_set_client_CA_list(ctx, names);
    pthread_once(&slot_once, make_slot);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                       keep_refused_subject);
    return 0;
}

/* ALPN: http/1.1 when the client offers it; else no protocol is named (a client offering h2
 * alone then speaks HTTP/1.1 or leaves), never a refusal. */
static int pick_alpn(SSL *s, const unsigned char **out, unsigned char *outlen,
                     const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)s, (void)arg;
    return tls_alpn_pick(in, inlen, out, outlen) ? SSL_TLSEXT_ERR_OK : SSL_TLSEXT_ERR_NOACK;
}

bool tls_alpn_pick(const unsigned char *in, unsigned int inlen, const unsigned char **out,
                   unsigned char *outlen)
{
    for (unsigned int i = 0; i < inlen;) {
        unsigned int n = in[i];
        if (n == 0 || n > inlen - i - 1)
            return false; /* malformed: no protocol */
        if (n == 8 && !memcmp(in + i + 1, "http/1.1", 8)) {
            *out = in + i + 1;
            *outlen = 8;
            return true;
        }
        i += 1 + n;
    }
    return false;
}

/* What every context says, whatever its certificate. */
static bool settings(SSL_CTX *ctx, bool ktls)
{
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_IGNORE_UNEXPECTED_EOF | (ktls ? SSL_OP_ENABLE_KTLS : 0));
    /* one record at a time (each SSL_write says what went), the same bytes may be offered again
     * from another address (a worker's buffer), and an idle connection holds no buffer */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    /* all the socket has, in one read: engine/io.c learns from a short read that it is empty */
    SSL_CTX_set_read_ahead(ctx, 1);
    /* tickets only (tls_tickets.c), no cache a lock would guard; one ticket a connection */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ctx, 1);
    SSL_CTX_set_timeout(ctx, TICKET_LIFETIME_S);
    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, tls_ticket_cb);
    SSL_CTX_set_alpn_select_cb(ctx, pick_alpn, NULL);
    return SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) == 1 &&
           SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) == 1;
}

/* The session id context: the client-CA terms a session was made under (the CA file's bytes,
 * or none). A ticket sealed under other terms resumes nothing (OpenSSL compares the contexts):
 * after a SIGHUP that adds or changes --tls-client-ca, every client does a full handshake and
 * shows a certificate the CA in force signed, though the ticket keys outlive the reload. */
static bool set_context(struct tls_ctx *t, const struct tls_file *ca)
{
    static const char tag[] = "arca sessions; client CA: ";
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    bool ok = m && EVP_DigestInit_ex(m, EVP_sha256(), NULL) == 1 &&
              EVP_DigestUpdate(m, tag, sizeof(tag) - 1) == 1 &&
              (!ca->len || EVP_DigestUpdate(m, ca->data, ca->len) == 1) &&
              EVP_DigestFinal_ex(m, t->terms, &t->terms_len) == 1 &&
              SSL_CTX_set_session_id_context(t->ctx, t->terms, t->terms_len) == 1;
    EVP_MD_CTX_free(m);
    return ok;
}

/* The certificate chain, its key and the client CA, from the files read once. */
static int build(struct tls_ctx *t, const struct config *cfg, char *err, size_t errlen)
{
    struct tls_file cert = {0}, key = {0}, ca = {0};
    STACK_OF(X509) *certs = NULL;
    int rc = -1;
    if (tls_file_read(&cert, cfg, "tls-cert", cfg->tls_cert, err, errlen) == 0 &&
        check_leaf(cfg, &cert, certs = tls_file_certs(&cert), &t->info, err, errlen) == 0 &&
        use_chain(t->ctx, cfg, &cert, certs, err, errlen) == 0 &&
        tls_file_read(&key, cfg, "tls-key", cfg->tls_key, err, errlen) == 0 &&
        use_key(t->ctx, cfg, &key, err, errlen) == 0 &&
        (!cfg->tls_client_ca[0] ||
         (tls_file_read(&ca, cfg, "tls-client-ca", cfg->tls_client_ca, err, errlen) == 0 &&
          use_client_ca(t->ctx, cfg, &ca, &t->info, err, errlen) == 0))) {
        rc = set_context(t, &ca) ? 0 : -1;
        if (rc < 0)
            snprintf(err, errlen, "TLS: the session context could not be set: %s", ssl_reason());
    }
    sk_X509_pop_free(certs, X509_free);
    tls_file_free(&cert);
    tls_file_free(&key);
    tls_file_free(&ca);
    return rc;
}

struct tls_ctx *tls_load(const struct config *cfg, char *err, size_t errlen)
{
    struct tls_ctx *t = calloc(1, sizeof(*t));
    const char *why;
    if (!t || !(t->ctx = SSL_CTX_new(TLS_server_method()))) {
        snprintf(err, errlen, "TLS: out of memory");
        free(t);
        return NULL;
    }
    t->info.enabled = true;
    t->info.ktls = tls_kernel_offers(&why);
    snprintf(t->info.ktls_why, sizeof(t->info.ktls_why), "%s", why);
    snprintf(t->info.cert_file, sizeof(t->info.cert_file), "%s", cfg->tls_cert);
    t->info.loaded_at = (int64_t)time(NULL);
    if (!settings(t->ctx, t->info.ktls)) {
        snprintf(err, errlen, "TLS: the context's settings were refused: %s", ssl_reason());
    } else if (build(t, cfg, err, errlen) == 0) {
        err[0] = '\0';
        return t;
    }
    tls_free(t);
    return NULL;
}

void tls_free(struct tls_ctx *t)
{
    if (!t)
        return;
    SSL_CTX_free(t->ctx); /* its connections hold it until they close */
    free(t);
}

void tls_install(struct tls_ctx *t)
{
    struct tls_ctx *old;
    pthread_mutex_lock(&lock);
    old = current;
    current = t;
    atomic_fetch_add(&generation, 1);
    pthread_mutex_unlock(&lock);
    tls_free(old);
}

bool tls_enabled(void)
{
    bool on;
    pthread_mutex_lock(&lock);
    on = current != NULL;
    pthread_mutex_unlock(&lock);
    return on;
}

SSL *tls_session(int fd)
{
    SSL *s = NULL;
    pthread_mutex_lock(&lock); /* the context is not let go between the look and SSL_new's hold */
    if (current)
        s = SSL_new(current->ctx);
    pthread_mutex_unlock(&lock);
    if (s && SSL_set_fd(s, fd) != 1) {
        SSL_free(s);
        s = NULL;
    }
    if (s)
        SSL_set_accept_state(s);
    if (!s)
        ERR_clear_error();
    return s;
}

unsigned tls_generation(void)
{
    return atomic_load(&generation);
}

/* `peer` and the chain its client sent, verified as OpenSSL verifies a client's at a handshake
 * (the "ssl_client" purpose, the context's parameters, the store's partial chains). */
static bool verify_client(SSL_CTX *ctx, X509 *peer, STACK_OF(X509) * chain, char *why, size_t size)
{
    X509_STORE_CTX *v = X509_STORE_CTX_new();
    int verdict = X509_V_ERR_OUT_OF_MEM;
    if (v && X509_STORE_CTX_init(v, SSL_CTX_get_cert_store(ctx), peer, chain) == 1 &&
        X509_STORE_CTX_set_default(v, "ssl_client") == 1 &&
        X509_VERIFY_PARAM_set1(X509_STORE_CTX_get0_param(v), SSL_CTX_get0_param(ctx)) == 1)
        verdict = X509_verify_cert(v) == 1 ? X509_V_OK : X509_STORE_CTX_get_error(v);
    X509_STORE_CTX_free(v);
    ERR_clear_error();
    if (verdict != X509_V_OK)
        snprintf(why, size, "its certificate is not one --tls-client-ca accepts now (%s)",
                 X509_verify_cert_error_string(verdict));
    return verdict == X509_V_OK;
}

/* Whether `s`'s session was made under the client-CA terms of `t` (the same file's bytes: its
 * session id context), so its handshake was judged as `t` would judge it. */
static bool same_keep(const struct tls_ctx *t, SSL *s)
{
    unsigned int len = 0;
    const SSL_SESSION *session = SSL_get0_session(s);
    const unsigned char *id = session ? SSL_SESSION_get0_id_context(session, &len) : NULL;
    return id && len == t->terms_len && !memcmp(id, t->terms, len);
}

/* The context is held (a reference) while it judges: a reload may let it go meanwhile. A session
 * made under the same client-CA terms (a reload that rotated the certificate only) was judged
 * by them at its handshake: not again (a resumed session has no chain to verify again). */
bool tls_admits(SSL *s, char *why, size_t size)
{
    SSL_CTX *ctx = NULL;
    X509 *peer = SSL_get0_peer_certificate(s);
    bool ok = true;
    pthread_mutex_lock(&lock);
    if (current && !same_keep(current, s) && SSL_CTX_up_ref(current->ctx) == 1)
        ctx = current->ctx;
    pthread_mutex_unlock(&lock);
    if (!ctx || !(SSL_CTX_get_verify_mode(ctx) & SSL_VERIFY_PEER))
        ok = true; /* the same terms, or no client certificate asked for now */
    else if (!peer) {
        snprintf(why, size, "no client certificate (--tls-client-ca asks for one now)");
        ok = false;
    } else
        ok = verify_client(ctx, peer, SSL_get_peer_cert_chain(s), why, size);
    SSL_CTX_free(ctx);
    return ok;
}

void tls_describe(struct tls_info *out)
{
    pthread_mutex_lock(&lock);
    if (current)
        *out = current->info;
    else
        memset(out, 0, sizeof(*out));
    pthread_mutex_unlock(&lock);
}

void tls_count(enum tls_event e)
{
    atomic_fetch_add_explicit(&counts[e], 1, memory_order_relaxed);
}

void tls_counts(int64_t out[TLS_N_EVENTS])
{
    for (int i = 0; i < TLS_N_EVENTS; i++)
        out[i] = atomic_load_explicit(&counts[i], memory_order_relaxed);
}

/* Whether the kernel takes the tls ULP on a connected TCP socket: a loopback connection to
 * itself, made for the question (the tls module may be loaded, or loaded on demand). */
static bool kernel_takes_tls(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), c = -1, a = -1;
    bool takes = false;
    if (l >= 0 && bind(l, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(l, 1) == 0 &&
        getsockname(l, (struct sockaddr *)&sa, &len) == 0 &&
        (c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) >= 0 &&
        connect(c, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        (a = accept4(l, NULL, NULL, SOCK_CLOEXEC)) >= 0)
        takes = setsockopt(a, SOL_TCP, TCP_ULP, "tls", sizeof("tls")) == 0;
    if (a >= 0)
        close(a);
    if (c >= 0)
        close(c);
    if (l >= 0)
        close(l);
    return takes;
}

bool tls_kernel_offers(const char **why)
{
#ifdef OPENSSL_NO_KTLS
    *why = "this OpenSSL was built without kernel TLS";
    return false;
#else
    if (kernel_takes_tls()) {
        *why = "";
        return true;
    }
    *why = "the kernel takes no TLS on its sockets: modprobe tls";
    return false;
#endif
}
