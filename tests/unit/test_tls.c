/* Units for tls/: what tls_load refuses, each in one line naming the option and its file (a
 * missing file, no PEM, an encrypted key, a key of another certificate, an expired or not yet
 * valid certificate, a client CA without a certificate), what it accepts and how tls_describe
 * then tells it, the ALPN list parser, and handshakes with the context in force over a socket
 * pair (protocols, ALPN, SNI, client certificates, resumption across a new context). The
 * certificates are made here with OpenSSL's API, in a temporary folder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"
#include "tls/tls.h"
#include "unit_tmp.h"

#define DAY 86400

static char dir[UNIT_TMP_MAX];
static EVP_PKEY *ca_key, *sites_key;
static X509 *ca_cert, *sites_cert;
static int64_t now;

static const char *in_dir(const char *name)
{
    static char paths[8][128];
    static int next;
    char *p = paths[next++ % 8];
    snprintf(p, sizeof(paths[0]), "%s/%s", dir, name);
    return p;
}

/* A certificate for `key` named CN=cn (and O=o when given), valid from now + from to now + to
 * (seconds), signed by `issuer_key` as `issuer` (NULL: itself). */
static X509 *make_cert(EVP_PKEY *key, const char *cn, const char *o, int64_t from, int64_t to,
                       X509 *issuer, EVP_PKEY *issuer_key, bool ca)
{
    static long serial = 1;
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    assert_non_null(x);
    assert_int_equal(X509_set_version(x, 2), 1);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
    assert_non_null(ASN1_TIME_set(X509_getm_notBefore(x), (time_t)(now + from)));
    assert_non_null(ASN1_TIME_set(X509_getm_notAfter(x), (time_t)(now + to)));
    if (o)
        X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)o, -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    assert_int_equal(X509_set_subject_name(x, name), 1);
    assert_int_equal(X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name), 1);
    X509_NAME_free(name);
    assert_int_equal(X509_set_pubkey(x, key), 1);
    if (ca) {
        X509_EXTENSION *e =
            X509V3_EXT_conf_nid(NULL, NULL, NID_basic_constraints, "critical,CA:TRUE");
        assert_non_null(e);
        X509_add_ext(x, e, -1);
        X509_EXTENSION_free(e);
    }
    assert_true(X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()) > 0);
    return x;
}

static void write_cert(const char *path, X509 *x)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_X509(f, x), 1);
    fclose(f);
}

/* The key, mode 600 (arca warns of a key others may read); encrypted with `pass` when given. */
static void write_key(const char *path, EVP_PKEY *key, const char *pass)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PrivateKey(f, key, pass ? EVP_aes_256_cbc() : NULL,
                                          (unsigned char *)pass, pass ? (int)strlen(pass) : 0, NULL,
                                          NULL),
                     1);
    fclose(f);
    assert_int_equal(chmod(path, 0600), 0);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* A leaf of the test CA for `name`, valid from now + from to now + to, in NAME.pem and NAME.key. */
static void make_leaf(const char *name, const char *cn, int64_t from, int64_t to)
{
    char file[64];
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x;
    assert_non_null(key);
    x = make_cert(key, cn, "Lab", from, to, ca_cert, ca_key, false);
    snprintf(file, sizeof(file), "%s.pem", name);
    write_cert(in_dir(file), x);
    snprintf(file, sizeof(file), "%s.key", name);
    write_key(in_dir(file), key, NULL);
    X509_free(x);
    EVP_PKEY_free(key);
}

static int setup(void **state)
{
    (void)state;
    now = (int64_t)time(NULL);
    snprintf(dir, sizeof(dir), "/tmp/arca-test-tls-XXXXXX");
    assert_non_null(mkdtemp(unit_tmp(dir, sizeof(dir))));
    assert_non_null(ca_key = EVP_EC_gen("P-256"));
    ca_cert = make_cert(ca_key, "Test CA", NULL, -DAY, 30 * DAY, NULL, NULL, true);
    write_cert(in_dir("ca.pem"), ca_cert);
    assert_non_null(sites_key = EVP_EC_gen("P-256"));
    sites_cert = make_cert(sites_key, "Test sites CA", NULL, -DAY, 30 * DAY, NULL, NULL, true);
    write_cert(in_dir("sites.pem"), sites_cert);
    make_leaf("good", "cache.test", -DAY, 10 * DAY);
    make_leaf("other", "other.test", -DAY, 10 * DAY);
    make_leaf("expired", "expired.test", -10 * DAY, -DAY);
    make_leaf("future", "future.test", DAY, 10 * DAY);
    /* the good certificate's key, encrypted */
    {
        FILE *f = fopen(in_dir("good.key"), "r");
        EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
        fclose(f);
        write_key(in_dir("encrypted.key"), k, "secret");
        EVP_PKEY_free(k);
    }
    write_text(in_dir("garbage.pem"), "this is no certificate\n");
    return 0;
}

static int teardown(void **state)
{
    static const char *const files[] = {"ca.pem",     "sites.pem",  "good.pem",      "good.key",
                                        "other.pem",  "other.key",  "expired.pem",   "expired.key",
                                        "future.pem", "future.key", "encrypted.key", "garbage.pem",
                                        "arca.ini",   "client.pem", "client.key"};
    (void)state;
    tls_install(NULL);
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
        unlink(in_dir(files[i]));
    rmdir(dir);
    X509_free(ca_cert);
    X509_free(sites_cert);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(sites_key);
    return 0;
}

/* A configuration naming these files by their paths in the test folder ("" for none). */
static void files(struct config *cfg, const char *cert, const char *key, const char *client_ca)
{
    config_defaults(cfg);
    snprintf(cfg->tls_cert, sizeof(cfg->tls_cert), "%s", cert[0] ? in_dir(cert) : "");
    snprintf(cfg->tls_key, sizeof(cfg->tls_key), "%s", key[0] ? in_dir(key) : "");
    snprintf(cfg->tls_client_ca, sizeof(cfg->tls_client_ca), "%s",
             client_ca[0] ? in_dir(client_ca) : "");
}

/* tls_load refuses with exactly `want` (printf form, %s the test folder), and leaves the context
 * in force as it was. */
static void refused(const char *cert, const char *key, const char *client_ca, const char *want)
{
    static struct config cfg;
    char err[1024] = "", expect[1024];
    struct tls_info before, after;
    tls_describe(&before);
    files(&cfg, cert, key, client_ca);
    assert_null(tls_load(&cfg, err, sizeof(err)));
    snprintf(expect, sizeof(expect), want, dir, dir, dir);
    assert_string_equal(err, expect);
    assert_null(strchr(err, '\n'));
    tls_describe(&after);
    assert_memory_equal(&before, &after, sizeof(before));
    config_free(&cfg);
}

static void utc(int64_t t, char *out, size_t size)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, size, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

static void refusals_are_one_line_naming_the_file(void **state)
{
    char want[512], when[64];
    (void)state;
    refused("none.pem", "good.key", "",
            "--tls-cert %s/none.pem: cannot read it: No such file or directory");
    refused("good.pem", "none.key", "",
            "--tls-key %s/none.key: cannot read it: No such file or directory");
    refused("garbage.pem", "good.key", "", "--tls-cert %s/garbage.pem: no PEM certificate in it");
    refused("good.pem", "garbage.pem", "",
            "--tls-key %s/garbage.pem: no PEM private key in it (an encrypted key is refused: "
            "arca asks no passphrase)");
    refused("good.pem", "encrypted.key", "",
            "--tls-key %s/encrypted.key: no PEM private key in it (an encrypted key is refused: "
            "arca asks no passphrase)");
    refused("good.pem", "other.key", "",
            "--tls-key %s/other.key: this key is not the one of the certificate in --tls-cert "
            "%s/good.pem");
    utc(now - DAY, when, sizeof(when));
    snprintf(want, sizeof(want),
             "--tls-cert %%s/expired.pem: the certificate (CN=expired.test,O=Lab) expired on %s",
             when);
    refused("expired.pem", "expired.key", "", want);
    utc(now + DAY, when, sizeof(when));
    snprintf(want, sizeof(want),
             "--tls-cert %%s/future.pem: the certificate (CN=future.test,O=Lab) is not valid "
             "until %s",
             when);
    refused("future.pem", "future.key", "", want);
    refused("good.pem", "good.key", "garbage.pem",
            "--tls-client-ca %s/garbage.pem: no PEM CA certificate in it");
    refused("good.pem", "good.key", "none.pem",
            "--tls-client-ca %s/none.pem: cannot read it: No such file or directory");
}

/* Set in a config file, the option's file and line start the error. */
static void a_refusal_names_the_config_files_line(void **state)
{
    static struct config cfg;
    char err[CONFIG_ERR_LEN], text[1024], want[1024];
    char *argv[] = {"arca", "serve", "--config", (char *)in_dir("arca.ini"), NULL};
    (void)state;
    snprintf(text, sizeof(text),
             "[arca]\nlisten = 127.0.0.1:18001\ntls-listen = 127.0.0.1:18443\n"
             "tls-cert = %s/good.pem\ntls-key = %s/other.key\n",
             dir, dir);
    write_text(in_dir("arca.ini"), text);
    assert_int_equal(config_load(&cfg, 4, argv, err), CONFIG_SERVE);
    assert_null(tls_load(&cfg, err, sizeof(err)));
    snprintf(want, sizeof(want),
             "%s/arca.ini:5: --tls-key %s/other.key: this key is not the one of the certificate "
             "in --tls-cert %s/good.pem",
             dir, dir, dir);
    assert_string_equal(err, want);
    config_free(&cfg);
}

static void an_accepted_certificate_is_described(void **state)
{
    static struct config cfg;
    char err[1024] = "";
    struct tls_info info;
    struct tls_ctx *t;
    int64_t before = (int64_t)time(NULL), after;
    (void)state;
    tls_install(NULL);
    assert_false(tls_enabled());
    tls_describe(&info);
    assert_false(info.enabled);
    assert_null(tls_session(0));
    files(&cfg, "good.pem", "good.key", "sites.pem");
    assert_non_null(t = tls_load(&cfg, err, sizeof(err)));
    after = (int64_t)time(NULL);
    /* loaded, not yet in force */
    tls_describe(&info);
    assert_false(info.enabled);
    tls_install(t);
    assert_true(tls_enabled());
    tls_describe(&info);
    assert_true(info.enabled);
    assert_string_equal(info.subject, "CN=cache.test,O=Lab");
    assert_string_equal(info.issuer, "CN=Test CA");
    assert_int_equal(info.not_before, now - DAY);
    assert_int_equal(info.not_after, now + 10 * DAY);
    assert_string_equal(info.client_ca, "CN=Test sites CA");
    assert_string_equal(info.cert_file, in_dir("good.pem"));
    assert_in_range(info.loaded_at, before, after);
    config_free(&cfg);
    /* without a client CA, none is described */
    files(&cfg, "other.pem", "other.key", "");
    assert_non_null(t = tls_load(&cfg, err, sizeof(err)));
    tls_install(t);
    tls_describe(&info);
    assert_string_equal(info.subject, "CN=other.test,O=Lab");
    assert_string_equal(info.client_ca, "");
    config_free(&cfg);
    /* a context loaded and never installed is let go */
    files(&cfg, "good.pem", "good.key", "");
    assert_non_null(t = tls_load(&cfg, err, sizeof(err)));
    tls_free(t);
    tls_describe(&info);
    assert_string_equal(info.subject, "CN=other.test,O=Lab");
    config_free(&cfg);
    tls_install(NULL);
    assert_false(tls_enabled());
}

/* tls_alpn_pick: http/1.1 when offered, pointed to inside the list; nothing otherwise. */
static void alpn(void **state)
{
    static const unsigned char h2[] = "\x02h2", both[] = "\x02h2\x08http/1.1",
                               only[] = "\x08http/1.1", old[] = "\x08http/1.0\x06spdy/3",
                               zero[] = "\x00\x08http/1.1", longer[] = "\x09http/1.1",
                               after_bad[] = "\x02h2\x09http/1.1", past[] = "\x02h2\x08http/1.",
                               third[] = "\x02h2\x06spdy/1\x08http/1.1";
    const unsigned char *out = NULL;
    unsigned char outlen = 0;
    (void)state;
    assert_false(tls_alpn_pick(h2, sizeof(h2) - 1, &out, &outlen));
    assert_true(tls_alpn_pick(both, sizeof(both) - 1, &out, &outlen));
    assert_ptr_equal(out, both + 4);
    assert_int_equal(outlen, 8);
    assert_true(tls_alpn_pick(only, sizeof(only) - 1, &out, &outlen));
    assert_ptr_equal(out, only + 1);
    assert_true(tls_alpn_pick(third, sizeof(third) - 1, &out, &outlen));
    assert_ptr_equal(out, third + 11);
    assert_memory_equal(out, "http/1.1", 8);
    assert_false(tls_alpn_pick(old, sizeof(old) - 1, &out, &outlen));
    assert_false(tls_alpn_pick(only, 0, &out, &outlen)); /* an empty list */
    /* malformed lengths: an empty name, one running past the end (at the start or after a good
     * name), a list cut short */
    assert_false(tls_alpn_pick(zero, sizeof(zero) - 1, &out, &outlen));
    assert_false(tls_alpn_pick(longer, sizeof(longer) - 1, &out, &outlen));
    assert_false(tls_alpn_pick(after_bad, sizeof(after_bad) - 1, &out, &outlen));
    assert_false(tls_alpn_pick(past, sizeof(past) - 1, &out, &outlen));
    assert_false(tls_alpn_pick(only, sizeof(only) - 2, &out, &outlen));
    /* a name of 255 bytes, then http/1.1 */
    unsigned char big[1 + 255 + 9];
    big[0] = 255;
    memset(big + 1, 'x', 255);
    memcpy(big + 256, "\x08http/1.1", 9);
    assert_true(tls_alpn_pick(big, sizeof(big), &out, &outlen));
    assert_ptr_equal(out, big + 257);
}

/* A client of the test CA, with these settings: NULL ALPN offers none. */
struct client {
    int max_version;
    const unsigned char *alpn;
    unsigned int alpn_len;
    const char *sni;
    const char *cert, *key; /* file names in the test folder, or NULL */
    SSL_SESSION *resume;
};

/* Both ends of a handshake: the client's SSL, the server's (tls_session's) and their sockets
 * (an SSL made on a socket leaves it open when freed). */
struct pair {
    SSL *client, *server;
    int fd[2];
};

/* A handshake between `c` and tls_session() over a socket pair, both ends non-blocking, driven
 * in turn: true when both ends completed it, false when either failed. */
static bool handshake(const struct client *c, struct pair *p)
{
    bool done_c = false, done_s = false, failed = false;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(ctx);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, p->fd), 0);
    fcntl(p->fd[0], F_SETFL, O_NONBLOCK);
    fcntl(p->fd[1], F_SETFL, O_NONBLOCK);
    assert_int_equal(SSL_CTX_load_verify_locations(ctx, in_dir("ca.pem"), NULL), 1);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_security_level(ctx, 0); /* so that TLS 1.1 may be offered at all */
    SSL_CTX_set_min_proto_version(ctx, TLS1_VERSION);
    if (c->max_version)
        SSL_CTX_set_max_proto_version(ctx, c->max_version);
    if (c->cert) {
        assert_int_equal(SSL_CTX_use_certificate_file(ctx, in_dir(c->cert), SSL_FILETYPE_PEM), 1);
        assert_int_equal(SSL_CTX_use_PrivateKey_file(ctx, in_dir(c->key), SSL_FILETYPE_PEM), 1);
    }
    assert_non_null(p->client = SSL_new(ctx));
    SSL_CTX_free(ctx); /* the SSL holds it */
    SSL_set_fd(p->client, p->fd[0]);
    SSL_set_connect_state(p->client);
    if (c->alpn)
        assert_int_equal(SSL_set_alpn_protos(p->client, c->alpn, c->alpn_len), 0);
    if (c->sni)
        SSL_set_tlsext_host_name(p->client, c->sni);
    if (c->resume)
        SSL_set_session(p->client, c->resume);
    assert_non_null(p->server = tls_session(p->fd[1]));
    for (int turn = 0; turn < 200 && !failed && !(done_c && done_s); turn++) {
        SSL *s = turn % 2 ? p->server : p->client;
        bool *done = turn % 2 ? &done_s : &done_c;
        if (*done)
            continue;
        int r = SSL_do_handshake(s), e = SSL_get_error(s, r);
        *done = r == 1;
        failed = r != 1 && e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE;
    }
    if (done_c && done_s && !failed) { /* the tickets TLS 1.3 sends after the handshake */
        char byte = 0;
        assert_int_equal(SSL_write(p->server, "x", 1), 1);
        assert_int_equal(SSL_read(p->client, &byte, 1), 1);
        assert_int_equal(byte, 'x');
    }
    ERR_clear_error();
    return done_c && done_s && !failed;
}

/* A client that leaves without close_notify has its TLS 1.2 session marked not resumable by
 * OpenSSL: it says goodbye, as curl does. */
static void end(struct pair *p)
{
    if (SSL_is_init_finished(p->client))
        SSL_shutdown(p->client);
    ERR_clear_error();
    SSL_free(p->client);
    SSL_free(p->server);
    close(p->fd[0]);
    close(p->fd[1]);
}

static void install(const char *cert, const char *key, const char *client_ca)
{
    static struct config cfg;
    char err[1024] = "";
    struct tls_ctx *t;
    files(&cfg, cert, key, client_ca);
    t = tls_load(&cfg, err, sizeof(err));
    assert_non_null(t);
    tls_install(t);
    config_free(&cfg);
}

static void handshakes(void **state)
{
    static const unsigned char h2[] = "\x02h2", both[] = "\x02h2\x08http/1.1";
    const unsigned char *proto;
    unsigned int len;
    struct pair p;
    char subject[256];
    (void)state;
    install("good.pem", "good.key", "");
    /* TLS 1.3, ALPN http/1.1 among others */
    assert_true(handshake(&(struct client){.alpn = both, .alpn_len = sizeof(both) - 1}, &p));
    assert_int_equal(SSL_version(p.client), TLS1_3_VERSION);
    SSL_get0_alpn_selected(p.client, &proto, &len);
    assert_int_equal(len, 8);
    assert_memory_equal(proto, "http/1.1", 8);
    end(&p);
    /* TLS 1.2: one of the listed ciphers (ECDHE, AEAD) */
    assert_true(handshake(&(struct client){.max_version = TLS1_2_VERSION}, &p));
    assert_int_equal(SSL_version(p.client), TLS1_2_VERSION);
    assert_non_null(strstr(SSL_get_cipher_name(p.client), "ECDHE-ECDSA-"));
    end(&p);
    /* h2 alone: no protocol named, and the handshake goes on */
    assert_true(handshake(&(struct client){.alpn = h2, .alpn_len = sizeof(h2) - 1}, &p));
    SSL_get0_alpn_selected(p.client, &proto, &len);
    assert_int_equal(len, 0);
    end(&p);
    /* another name: the one certificate all the same */
    assert_true(handshake(&(struct client){.sni = "other.example"}, &p));
    tls_subject(SSL_get0_peer_certificate(p.client), subject, sizeof(subject));
    assert_string_equal(subject, "CN=cache.test,O=Lab");
    end(&p);
    /* TLS 1.1 and older are refused */
    assert_false(handshake(&(struct client){.max_version = TLS1_1_VERSION}, &p));
    end(&p);
    tls_install(NULL);
}

/* A session resumes by its ticket, and still does once a new context is installed (SIGHUP's
 * new certificate): the ticket keys are the module's. TLS 1.2 and 1.3 alike. */
static void tickets_survive_a_new_context(void **state)
{
    static const int versions[] = {TLS1_2_VERSION, TLS1_3_VERSION};
    struct pair p;
    SSL_SESSION *sess;
    (void)state;
    for (int i = 0; i < 2; i++) {
        install("good.pem", "good.key", "");
        assert_true(handshake(&(struct client){.max_version = versions[i]}, &p));
        assert_false(SSL_session_reused(p.client));
        assert_non_null(sess = SSL_get1_session(p.client));
        assert_true(SSL_SESSION_is_resumable(sess));
        end(&p);
        assert_true(handshake(&(struct client){.max_version = versions[i], .resume = sess}, &p));
        assert_true(SSL_session_reused(p.client));
        end(&p);
        install("good.pem", "good.key", ""); /* what a SIGHUP does */
        assert_true(handshake(&(struct client){.max_version = versions[i], .resume = sess}, &p));
        assert_true(SSL_session_reused(p.client));
        end(&p);
        SSL_SESSION_free(sess);
    }
    tls_install(NULL);
}

/* --tls-client-ca: no certificate, or one another CA signed, fails the handshake; one it signed
 * passes, and the server sees its subject. */
static void client_certificates(void **state)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x;
    struct pair p;
    char subject[256];
    (void)state;
    assert_non_null(key);
    x = make_cert(key, "site one", "Lab", -DAY, 10 * DAY, sites_cert, sites_key, false);
    write_cert(in_dir("client.pem"), x);
    write_key(in_dir("client.key"), key, NULL);
    X509_free(x);
    EVP_PKEY_free(key);
    install("good.pem", "good.key", "sites.pem");
    for (int v = TLS1_2_VERSION; v <= TLS1_3_VERSION; v++) {
        assert_false(handshake(&(struct client){.max_version = v}, &p));
        end(&p);
        assert_false(handshake(
            &(struct client){.max_version = v, .cert = "other.pem", .key = "other.key"}, &p));
        end(&p);
        assert_true(handshake(
            &(struct client){.max_version = v, .cert = "client.pem", .key = "client.key"}, &p));
        tls_subject(SSL_get0_peer_certificate(p.server), subject, sizeof(subject));
        assert_string_equal(subject, "CN=site one,O=Lab");
        end(&p);
    }
    tls_install(NULL);
}

static void counts_and_kernel(void **state)
{
    int64_t before[TLS_N_EVENTS], after[TLS_N_EVENTS];
    const char *why = NULL;
    (void)state;
    tls_counts(before);
    tls_count(TLS_HANDSHAKE);
    tls_count(TLS_PLAIN_HTTP);
    tls_count(TLS_PLAIN_HTTP);
    tls_counts(after);
    assert_int_equal(after[TLS_HANDSHAKE], before[TLS_HANDSHAKE] + 1);
    assert_int_equal(after[TLS_PLAIN_HTTP], before[TLS_PLAIN_HTTP] + 2);
    assert_int_equal(after[TLS_FAILED], before[TLS_FAILED]);
    /* whichever the kernel says, the log and the status get a reason when it is no */
    if (!tls_kernel_offers(&why)) {
        assert_non_null(why);
        assert_true(strlen(why) > 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(refusals_are_one_line_naming_the_file),
        cmocka_unit_test(a_refusal_names_the_config_files_line),
        cmocka_unit_test(an_accepted_certificate_is_described),
        cmocka_unit_test(alpn),
        cmocka_unit_test(handshakes),
        cmocka_unit_test(tickets_survive_a_new_context),
        cmocka_unit_test(client_certificates),
        cmocka_unit_test(counts_and_kernel),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
