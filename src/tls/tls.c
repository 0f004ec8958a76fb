/* HTTPS for clients (tls.h): the context a --tls-cert and --tls-key make, checked before it is
 * used, the one in force, and the counters the status shows. */
#include "tls/tls.h"
#include "tls/tls_tickets.h"
#include "log/log.h"

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
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct tls_ctx *current; /* under lock */
/* The SSL ex_data slot of a refused client certificate's subject (tls_refused_subject). */
static int refused_slot = -1;
static pthread_once_t slot_once = PTHREAD_ONCE_INIT;
static atomic_llong counts[TLS_N_EVENTS];

/* "FILE:LINE: --OPTION PATH: " for the error about option `name`'s file. */
static size_t about(const struct config *cfg, const char *name, const char *path, char *err,
                    size_t errlen)
{
    char where[512];
    int n;
    config_where(cfg, name, where, sizeof(where));
    n = snprintf(err, errlen, "%s--%s %.400s: ", where, name, path);
    return n < 0 ? 0 : (size_t)n < errlen ? (size_t)n : errlen - 1;
}

static FILE *open_file(const struct config *cfg, const char *name, const char *path, char *err,
                       size_t errlen)
{
    struct stat st;
    FILE *f = stat(path, &st) == 0 && S_ISDIR(st.st_mode) ? NULL : fopen(path, "r");
    if (!f) {
        size_t n = about(cfg, name, path, err, errlen);
        snprintf(err + n, errlen - n, "cannot read it: %s",
                 errno == 0 || S_ISDIR(st.st_mode) ? "a directory" : strerror(errno));
    }
    return f;
}

/* What a file that holds no PEM certificate holds instead, for the error: a key given for the
 * certificate (the two swapped), or nothing arca reads. */
static const char *not_a_certificate(const char *path)
{
    char line[256];
    const char *what = "no PEM certificate in it";
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof(line), f))
        if (strstr(line, "-----BEGIN") && strstr(line, "PRIVATE KEY-----")) {
            what = "no PEM certificate in it, a private key instead (swapped with --tls-key?)";
            break;
        }
    if (f)
        fclose(f);
    return what;
}

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

static void utc(int64_t t, char *out, size_t size)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, size, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

/* `name`, RFC 2253, in `out` ("" when there is none). */
static void print_name(const X509_NAME *name, char *out, size_t size)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data = NULL;
    long len = 0;
    if (b && name && X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253) >= 0)
        len = BIO_get_mem_data(b, &data);
    if (size > 0)
        snprintf(out, size, "%.*s", (int)(len > 0 ? len : 0), len > 0 ? data : "");
    BIO_free(b);
}

void tls_subject(X509 *x, char *out, size_t size)
{
    print_name(x ? X509_get_subject_name(x) : NULL, out, size);
}

/* The leaf certificate of --tls-cert, valid now: its subject, issuer and dates into `info`. */
static int check_leaf(const struct config *cfg, struct tls_info *info, char *err, size_t errlen)
{
    FILE *f = open_file(cfg, "tls-cert", cfg->tls_cert, err, errlen);
    X509 *x;
    char when[64];
    size_t n;
    int64_t now = (int64_t)time(NULL);
    if (!f)
        return -1;
    x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    ERR_clear_error();
    n = about(cfg, "tls-cert", cfg->tls_cert, err, errlen);
    if (!x) {
        snprintf(err + n, errlen - n, "%s", not_a_certificate(cfg->tls_cert));
        return -1;
    }
    info->not_before = unix_time(X509_get0_notBefore(x));
    info->not_after = unix_time(X509_get0_notAfter(x));
    tls_subject(x, info->subject, sizeof(info->subject));
    print_name(X509_get_issuer_name(x), info->issuer, sizeof(info->issuer));
    X509_free(x);
    if (info->not_after <= now) {
        utc(info->not_after, when, sizeof(when));
        snprintf(err + n, errlen - n, "the certificate (%s) expired on %s", info->subject, when);
        return -1;
    }
    if (info->not_before > now) {
        utc(info->not_before, when, sizeof(when));
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

static int use_chain_and_key(SSL_CTX *ctx, const struct config *cfg, char *err, size_t errlen)
{
    FILE *f;
    EVP_PKEY *key;
    size_t n;
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert) != 1) {
        n = about(cfg, "tls-cert", cfg->tls_cert, err, errlen);
        snprintf(err + n, errlen - n, "not a PEM certificate chain: %s", ssl_reason());
        return -1;
    }
    if (!(f = open_file(cfg, "tls-key", cfg->tls_key, err, errlen)))
        return -1;
    key = PEM_read_PrivateKey(f, NULL, no_passphrase, NULL);
    fclose(f);
    ERR_clear_error();
    n = about(cfg, "tls-key", cfg->tls_key, err, errlen);
    if (!key) {
        snprintf(err + n, errlen - n,
                 "no PEM private key in it (an encrypted key is refused: arca asks no passphrase)");
        return -1;
    }
    if (SSL_CTX_use_PrivateKey(ctx, key) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        EVP_PKEY_free(key);
        ERR_clear_error();
        snprintf(err + n, errlen - n, "this key is not the one of the certificate in --tls-cert %s",
                 cfg->tls_cert);
        return -1;
    }
    EVP_PKEY_free(key);
    note_key_mode(cfg->tls_key);
    return 0;
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
static int note_refused(int ok, X509_STORE_CTX *store)
{
    SSL *s = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
    char *subject;
    if (!ok && s && refused_slot >= 0 && !SSL_get_ex_data(s, refused_slot) &&
        (subject = malloc(256))) {
        tls_subject(X509_STORE_CTX_get0_cert(store), subject, 256);
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

/* --tls-client-ca: clients must show a certificate it signed, else the handshake fails. */
static int use_client_ca(SSL_CTX *ctx, const struct config *cfg, struct tls_info *info, char *err,
                         size_t errlen)
{
    FILE *f = open_file(cfg, "tls-client-ca", cfg->tls_client_ca, err, errlen);
    STACK_OF(X509_NAME) * names;
    X509 *x;
    size_t n;
    if (!f)
        return -1;
    x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    ERR_clear_error();
    if (!x || SSL_CTX_load_verify_locations(ctx, cfg->tls_client_ca, NULL) != 1 ||
        !(names = SSL_load_client_CA_file(cfg->tls_client_ca))) {
        X509_free(x);
        n = about(cfg, "tls-client-ca", cfg->tls_client_ca, err, errlen);
        snprintf(err + n, errlen - n, "no PEM CA certificate in it");
        ERR_clear_error();
        return -1;
    }
    tls_subject(x, info->client_ca, sizeof(info->client_ca));
    if (X509_check_ca(x) == 0) /* a server's or a client's certificate given for the CA */
        log_warn("--tls-client-ca %s: %s is not a CA certificate: no client certificate is "
                 "signed by it",
                 cfg->tls_client_ca, info->client_ca);
    X509_free(x);
    SSL_CTX_set_client_CA_list(ctx, names);
    pthread_once(&slot_once, make_slot);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, note_refused);
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
static bool set_context(SSL_CTX *ctx, const char *ca_file)
{
    static const char tag[] = "arca sessions; client CA: ";
    unsigned char md[EVP_MAX_MD_SIZE], chunk[4096];
    unsigned int n = 0;
    size_t got;
    FILE *f = ca_file[0] ? fopen(ca_file, "r") : NULL;
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    bool ok = m && EVP_DigestInit_ex(m, EVP_sha256(), NULL) == 1 &&
              EVP_DigestUpdate(m, tag, sizeof(tag) - 1) == 1 && (f || !ca_file[0]);
    while (ok && f && (got = fread(chunk, 1, sizeof(chunk), f)) > 0)
        ok = EVP_DigestUpdate(m, chunk, got) == 1;
    ok = ok && (!f || !ferror(f)) && EVP_DigestFinal_ex(m, md, &n) == 1 &&
         SSL_CTX_set_session_id_context(ctx, md, n) == 1;
    if (f)
        fclose(f);
    EVP_MD_CTX_free(m);
    return ok;
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
    } else if (check_leaf(cfg, &t->info, err, errlen) == 0 &&
               use_chain_and_key(t->ctx, cfg, err, errlen) == 0 &&
               (!cfg->tls_client_ca[0] || use_client_ca(t->ctx, cfg, &t->info, err, errlen) == 0)) {
        if (set_context(t->ctx, cfg->tls_client_ca)) {
            err[0] = '\0';
            return t;
        }
        snprintf(err, errlen, "TLS: the session context could not be set: %s", ssl_reason());
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
