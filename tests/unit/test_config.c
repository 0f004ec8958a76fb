/* Units for the option and config-file parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "config/config_internal.h"
#include "unit_tmp.h"

static enum config_action load(struct config *cfg, char *err, int argc, ...)
{
    char *argv[32] = {"arca"};
    va_list ap;
    va_start(ap, argc);
    for (int i = 1; i < argc; i++)
        argv[i] = va_arg(ap, char *);
    va_end(ap);
    return config_load(cfg, argc, argv, err);
}

static void defaults(void **state)
{
    struct config c;
    char err[CONFIG_ERR_LEN];
    (void)state;
    assert_int_equal(load(&c, err, 2, "serve"), CONFIG_SERVE);
    assert_string_equal(c.listen_host, "0.0.0.0");
    assert_int_equal(c.listen_port, 8001);
    assert_string_equal(c.data_dir, "./arca-data");
    assert_int_equal(c.quota, 5LL << 30);
    assert_int_equal(c.default_ttl, 10 * 86400);
    assert_int_equal(c.n_allow_nets, 0);
}

static void options(void **state)
{
    struct config c;
    char err[CONFIG_ERR_LEN];
    (void)state;
    assert_int_equal(load(&c, err, 10, "serve", "--listen", "127.0.0.1:9000", "--quota=2M",
                          "--allow-network", "10.0.0.0/8", "--allow-network", "::1",
                          "--default-ttl=1h"),
                     CONFIG_SERVE);
    assert_string_equal(c.listen_host, "127.0.0.1");
    assert_int_equal(c.listen_port, 9000);
    assert_int_equal(c.quota, 2LL << 20);
    assert_int_equal(c.n_allow_nets, 2);
    assert_int_equal(c.default_ttl, 3600);
    assert_int_equal(load(&c, err, 4, "serve", "--listen", "[::1]:8080"), CONFIG_SERVE);
    assert_string_equal(c.listen_host, "::1");
    assert_int_equal(c.send_mode, SEND_AUTO);
    assert_int_equal(load(&c, err, 3, "serve", "--send-mode=mmap"), CONFIG_SERVE);
    assert_int_equal(c.send_mode, SEND_MMAP);
    assert_int_equal(load(&c, err, 3, "serve", "--send-mode=sendfile"), CONFIG_SERVE);
    assert_int_equal(c.send_mode, SEND_SENDFILE);
    assert_int_equal(load(&c, err, 3, "serve", "--send-mode=splice"), CONFIG_ERROR);
    assert_non_null(strstr(err, "expected auto, mmap or sendfile, got 'splice'"));
    assert_int_equal(c.digest_framing, FRAMING_CHUNKED);
    assert_int_equal(c.max_redirects, 20);
    assert_int_equal(load(&c, err, 6, "serve", "--digest-framing=hold", "--max-redirects=0",
                          "--ui-network", "192.168.0.0/16"),
                     CONFIG_SERVE);
    assert_int_equal(c.digest_framing, FRAMING_HOLD);
    assert_int_equal(c.max_redirects, 0);
    assert_int_equal(c.n_ui_nets, 1);
    assert_int_equal(load(&c, err, 3, "serve", "--digest-framing=trailer"), CONFIG_ERROR);
    assert_non_null(strstr(err, "chunked or hold"));
    assert_int_equal(load(&c, err, 3, "serve", "--max-redirects=101"), CONFIG_ERROR);
    assert_int_equal(load(&c, err, 3, "serve", "--default-ttl=999999999d"), CONFIG_ERROR);
    assert_string_equal(err, "--default-ttl: '999999999d' is out of range (1s..36500d)");
    assert_int_equal(load(&c, err, 2, "--version"), CONFIG_VERSION);
    assert_int_equal(load(&c, err, 2, "--help"), CONFIG_HELP);
}

static void bad_options(void **state)
{
    struct config c;
    char err[CONFIG_ERR_LEN];
    (void)state;
    assert_int_equal(load(&c, err, 3, "serve", "--quota=0"), CONFIG_ERROR);
    assert_non_null(strstr(err, "--quota"));
    assert_int_equal(load(&c, err, 3, "serve", "--listen=nohostport"), CONFIG_ERROR);
    assert_int_equal(load(&c, err, 3, "serve", "--listen=:70000"), CONFIG_ERROR);
    /* the odd forms as parse_authority reads them (test_parse.c): a port of digits only */
    static const char *const odd[] = {
        "--listen=h:+443",     "--listen=h:443x",     "--listen=h:65536",   "--listen=h:",
        "--listen=[::1",       "--listen=[::1]",      "--listen=[::1]x:80", "--listen=:+80",
        "--connect-port=+443", "--connect-port=443x", "--listen=",          "--listen=:"};
    for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++)
        assert_int_equal(load(&c, err, 3, "serve", odd[i]), CONFIG_ERROR);
    assert_int_equal(load(&c, err, 3, "serve", "--listen=h:0443"), CONFIG_SERVE);
    assert_int_equal(c.listen_port, 443);
    assert_int_equal(load(&c, err, 3, "serve", "--default-ttl=5"), CONFIG_ERROR);
    assert_int_equal(load(&c, err, 3, "serve", "--allow-network=1.2.3.4/40"), CONFIG_ERROR);
    assert_string_equal(err, "--allow-network: not a network (CIDR, such as 10.0.0.0/8) nor all: "
                             "'1.2.3.4/40'");
    /* "all" in any case is every client, as the help page and the log write it */
    assert_int_equal(load(&c, err, 3, "serve", "--allow-network=ALL"), CONFIG_SERVE);
    assert_int_equal(c.n_allow_nets, 2);
    assert_int_equal(c.allow_nets[0].prefix, 96);
    assert_int_equal(c.allow_nets[1].prefix, 0);
    assert_int_equal(load(&c, err, 3, "serve", "--bogus=1"), CONFIG_ERROR);
    assert_non_null(strstr(err, "bogus"));
    assert_int_equal(load(&c, err, 3, "serve", "--quota"), CONFIG_ERROR);
    assert_int_equal(load(&c, err, 3, "serve", "stray"), CONFIG_ERROR);
    assert_int_equal(load(&c, err, 2, "frobnicate"), CONFIG_ERROR);
    assert_int_equal(load(&c, err, 3, "serve", "--ca-file=/nonexistent/ca.pem"), CONFIG_ERROR);
}

static char *write_file(const char *text)
{
    static char path[UNIT_TMP_MAX];
    snprintf(path, sizeof(path), "/tmp/arca-test-config-XXXXXX");
    int fd = mkstemp(unit_tmp(path, sizeof(path)));
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void config_file(void **state)
{
    struct config c;
    char err[CONFIG_ERR_LEN];
    char *path = write_file("; arca settings\n[arca]\nlisten = 127.0.0.2:8100\nquota = 1G\n"
                            "allow-network = 10.0.0.0/8\nallow-network = 192.168.0.0/16\n");
    (void)state;
    /* the command line after --config overrides the file */
    assert_int_equal(load(&c, err, 6, "serve", "--config", path, "--quota", "2G"), CONFIG_SERVE);
    assert_string_equal(c.listen_host, "127.0.0.2");
    assert_int_equal(c.listen_port, 8100);
    assert_int_equal(c.quota, 2LL << 30);
    assert_int_equal(c.n_allow_nets, 2);
    unlink(path);
}

static void config_file_errors_name_the_line(void **state)
{
    struct config c;
    char err[CONFIG_ERR_LEN], want[128];
    char *path = write_file("[arca]\nlisten = 127.0.0.1:8001\nquota = lots\n");
    (void)state;
    assert_int_equal(load(&c, err, 4, "serve", "--config", path), CONFIG_ERROR);
    snprintf(want, sizeof(want), "%s:3:", path);
    assert_non_null(strstr(err, want));
    assert_non_null(strstr(err, "--quota"));
    unlink(path);
    path = write_file("[other]\nquota = 1G\n");
    assert_int_equal(load(&c, err, 4, "serve", "--config", path), CONFIG_ERROR);
    assert_non_null(strstr(err, ":1: unknown section")); /* the section's own line */
    assert_null(strstr(err, "other"));                   /* a line's text is never quoted */
    unlink(path);
    path = write_file("this is not ini\n");
    assert_int_equal(load(&c, err, 4, "serve", "--config", path), CONFIG_ERROR);
    unlink(path);
    assert_int_equal(load(&c, err, 4, "serve", "--config", "/nonexistent.ini"), CONFIG_ERROR);
    assert_non_null(strstr(err, "cannot read"));
}

/* '#' and ';' start a comment at a line's start and, after whitespace, after a value. */
static void comments(void **state)
{
    struct config c;
    char err[CONFIG_ERR_LEN];
    char *path = write_file("# arca settings\n  ; indented\n[arca] # the main section\n"
                            "quota = 5G   # five gigabytes\ndefault-ttl = 2d\t; two days\n"
                            "[bucket lab]\nurl = https://s3.lab/b # the lab's\n"
                            "credentials = /etc/passwd   # access key id...\n"
                            "prefix = a#b;c\n");
    (void)state;
    assert_int_equal(load(&c, err, 4, "serve", "--config", path), CONFIG_SERVE);
    assert_int_equal(c.quota, 5LL << 30);
    assert_int_equal(c.default_ttl, 2 * 86400);
    assert_string_equal(c.buckets[0].url, "https://s3.lab/b");
    assert_string_equal(c.buckets[0].credentials, "/etc/passwd");
    /* without whitespace before it, '#' or ';' is part of the value */
    assert_string_equal(c.buckets[0].prefix, "a#b;c/");
    unlink(path);
    /* inih reads 199 bytes of a line: a longer one is refused, not read as two */
    char text[400] = "[arca]\nmirror = ";
    memset(text + strlen(text), 'x', 250);
    strcat(text, "=http://m/\nquota = 1G\n");
    path = write_file(text);
    assert_int_equal(load(&c, err, 4, "serve", "--config", path), CONFIG_ERROR);
    assert_non_null(strstr(err, ":2: line longer than 199 bytes"));
    unlink(path);
}

/* A single-valued key twice in one file is a mistake; repeatable keys add up; the command line
 * still overrides the file. */
static void keys_given_twice(void **state)
{
    struct config c;
    char err[CONFIG_ERR_LEN], want[CONFIG_ERR_LEN + 64];
    char *path = write_file("[arca]\nquota = 1G\nallow-network = 10.0.0.0/8\n"
                            "allow-network = 10.1.0.0/16\n\nquota = 2G\n");
    (void)state;
    assert_int_equal(load(&c, err, 4, "serve", "--config", path), CONFIG_ERROR);
    snprintf(want, sizeof(want), "%s:6: --quota given twice (first at line 2)", path);
    assert_string_equal(err, want);
    unlink(path);
    path = write_file("[arca]\nquota = 1G\nallow-network = 10.0.0.0/8\n"
                      "allow-network = 10.1.0.0/16\n");
    assert_int_equal(load(&c, err, 6, "serve", "--config", path, "--quota", "3G"), CONFIG_SERVE);
    assert_int_equal(c.quota, 3LL << 30);
    assert_int_equal(c.n_allow_nets, 2);
    unlink(path);
    path = write_file("[bucket lab]\nurl = https://s3.lab/b\nregion = eu-west-1\n"
                      "region = us-east-2\n");
    assert_int_equal(load(&c, err, 4, "serve", "--config", path), CONFIG_ERROR);
    snprintf(want, sizeof(want), "%s:4: bucket lab: region given twice (first at line 3)", path);
    assert_string_equal(err, want);
    unlink(path);
}

/* What config_where() says of an option: the file and line that set it last. */
static void origins(void **state)
{
    struct config c;
    char err[CONFIG_ERR_LEN], where[CONFIG_ERR_LEN], want[CONFIG_ERR_LEN + 64];
    char *path = write_file("[arca]\n\ndata-dir = /srv/arca\naccess-log = /x/access.log\n");
    (void)state;
    assert_int_equal(load(&c, err, 6, "serve", "--config", path, "--access-log", "-"),
                     CONFIG_SERVE);
    config_where(&c, "data-dir", where, sizeof(where));
    snprintf(want, sizeof(want), "%s:3: ", path);
    assert_string_equal(where, want);
    config_where(&c, "access-log", where, sizeof(where));
    assert_string_equal(where, "");
    config_where(&c, "listen", where, sizeof(where));
    assert_string_equal(where, "");
    unlink(path);
}

static void unknown_options_are_named(void **state)
{
    struct config c;
    char err[CONFIG_ERR_LEN];
    char *path;
    (void)state;
    assert_int_equal(load(&c, err, 3, "serve", "--bogus"), CONFIG_ERROR);
    assert_string_equal(err, "unknown option '--bogus'");
    assert_int_equal(load(&c, err, 4, "serve", "--bogus", "1"), CONFIG_ERROR);
    assert_string_equal(err, "unknown option '--bogus'");
    assert_int_equal(load(&c, err, 3, "serve", "--exact-key"), CONFIG_ERROR);
    assert_string_equal(err, "unknown option '--exact-key'; did you mean --exact-keys?");
    assert_int_equal(load(&c, err, 4, "serve", "--datadir", "/x"), CONFIG_ERROR);
    assert_string_equal(err, "unknown option '--datadir'; did you mean --data-dir?");
    assert_int_equal(load(&c, err, 3, "serve", "--max-download=3"), CONFIG_ERROR);
    assert_string_equal(err, "unknown option '--max-download'; did you mean --max-downloads?");
    assert_int_equal(load(&c, err, 3, "serve", "-x"), CONFIG_ERROR);
    assert_string_equal(err, "unknown option '-x'");
    assert_int_equal(load(&c, err, 3, "serve", "-h"), CONFIG_HELP);
    assert_int_equal(load(&c, err, 2, "-h"), CONFIG_HELP);
    path = write_file("[arca]\nqouta = 1G\n");
    assert_int_equal(load(&c, err, 4, "serve", "--config", path), CONFIG_ERROR);
    assert_non_null(strstr(err, ":2: unknown option (not shown); did you mean quota?"));
    unlink(path);
}

/* SIGHUP names the changed options it cannot apply. */
static void restart_changes(void **state)
{
    static struct config a, b;
    char err[CONFIG_ERR_LEN], out[512];
    (void)state;
    assert_int_equal(load(&a, err, 4, "serve", "--threads", "2"), CONFIG_SERVE);
    assert_int_equal(load(&b, err, 8, "serve", "--threads", "2", "--quota", "1G", "--allow-network",
                          "10.0.0.0/8"),
                     CONFIG_SERVE);
    assert_int_equal(config_restart_changes(&a, &b, out, sizeof(out)), 0);
    assert_int_equal(load(&b, err, 10, "serve", "--threads", "3", "--listen", ":9000", "--data-dir",
                          "/srv", "--mirror", "x=http://m/"),
                     CONFIG_SERVE);
    assert_int_equal(config_restart_changes(&a, &b, out, sizeof(out)), 4);
    assert_string_equal(out, "--listen, --data-dir, --threads, --mirror");
}

/* Switches take the usual words for yes and no, in the file and on the command line; a bound is
 * refused, never capped. */
static void switch_words_and_bounds(void **state)
{
    static struct config c;
    static const char *const yes[] = {"true", "yes", "on", "1"}, *const no[] = {"false", "no",
                                                                                "off", "0"};
    char err[CONFIG_ERR_LEN], arg[64];
    (void)state;
    for (int i = 0; i < 4; i++) {
        snprintf(arg, sizeof(arg), "--exact-keys=%s", yes[i]);
        assert_int_equal(load(&c, err, 2, arg), CONFIG_SERVE);
        assert_true(c.exact_keys);
        snprintf(arg, sizeof(arg), "--log-health-checks=%s", no[i]);
        assert_int_equal(load(&c, err, 3, "serve", arg), CONFIG_SERVE);
        assert_false(c.log_health_checks);
    }
    assert_int_equal(load(&c, err, 3, "serve", "--retry-delay=30s"), CONFIG_SERVE);
    assert_int_equal(c.retry_delay_ms, 30000);
    assert_int_equal(load(&c, err, 3, "serve", "--retry-delay=30001ms"), CONFIG_ERROR);
    assert_string_equal(err, "--retry-delay: '30001ms' is out of range (1ms..30s)");
    assert_int_equal(load(&c, err, 3, "serve", "--default-ttl=36500d"), CONFIG_SERVE);
    assert_int_equal(load(&c, err, 3, "serve", "--default-ttl=876001h"), CONFIG_ERROR);
    assert_string_equal(err, "--default-ttl: '876001h' is out of range (1s..36500d)");
}

/* --tls-listen (repeatable, beside --listen) and the files it needs: each mistake is one line. */
static void tls_options(void **state)
{
    static struct config c;
    char err[CONFIG_ERR_LEN], want[CONFIG_ERR_LEN + 64], *path;
    (void)state;
    assert_int_equal(load(&c, err, 2, "serve"), CONFIG_SERVE);
    assert_int_equal(c.n_tls_listen, 0);
    assert_string_equal(c.tls_cert, "");
    assert_string_equal(c.tls_key, "");
    assert_string_equal(c.tls_client_ca, "");
    config_free(&c);
    assert_int_equal(load(&c, err, 14, "serve", "--tls-listen", "127.0.0.1:8443", "--tls-listen",
                          "[::1]:8443", "--tls-listen=127.0.0.1:8443", "--tls-cert",
                          "/etc/arca/cert.pem", "--tls-key", "/etc/arca/key.pem", "--tls-client-ca",
                          "/etc/arca/sites.pem", "--listen=127.0.0.1:8001"),
                     CONFIG_SERVE);
    assert_int_equal(c.n_tls_listen, 2); /* the same address twice is one */
    assert_string_equal(c.tls_listen[0].host, "127.0.0.1");
    assert_int_equal(c.tls_listen[0].port, 8443);
    assert_string_equal(c.tls_listen[1].host, "::1");
    assert_int_equal(c.tls_listen[1].port, 8443);
    assert_string_equal(c.tls_cert, "/etc/arca/cert.pem");
    assert_string_equal(c.tls_key, "/etc/arca/key.pem");
    assert_string_equal(c.tls_client_ca, "/etc/arca/sites.pem");
    config_free(&c);
    assert_int_equal(load(&c, err, 8, "serve", "--tls-listen", ":8443", "--tls-cert", "c.pem",
                          "--tls-key", "k.pem"),
                     CONFIG_SERVE);
    assert_string_equal(c.tls_listen[0].host, "0.0.0.0");
    config_free(&c);
    /* a bad address */
    assert_int_equal(load(&c, err, 3, "serve", "--tls-listen=nohostport"), CONFIG_ERROR);
    assert_string_equal(err, "--tls-listen: expected HOST:PORT, got 'nohostport'");
    assert_int_equal(load(&c, err, 3, "serve", "--tls-listen=[::1]"), CONFIG_ERROR);
    assert_string_equal(err, "--tls-listen: expected HOST:PORT, got '[::1]'");
    assert_int_equal(load(&c, err, 3, "serve", "--tls-listen=h:70000"), CONFIG_ERROR);
    /* a listener without its certificate, or without its key */
    assert_int_equal(load(&c, err, 3, "serve", "--tls-listen=127.0.0.1:8443"), CONFIG_ERROR);
    assert_string_equal(err, "--tls-listen needs --tls-cert (the certificate chain, PEM) and "
                             "--tls-key (its private key): --tls-cert is missing");
    assert_int_equal(load(&c, err, 5, "serve", "--tls-listen=127.0.0.1:8443", "--tls-key", "k.pem"),
                     CONFIG_ERROR);
    assert_string_equal(err, "--tls-listen needs --tls-cert (the certificate chain, PEM) and "
                             "--tls-key (its private key): --tls-cert is missing");
    /* the key alone missing is named (found by the docs helper: the line named --tls-key twice) */
    assert_int_equal(
        load(&c, err, 5, "serve", "--tls-listen=127.0.0.1:8443", "--tls-cert", "c.pem"),
        CONFIG_ERROR);
    assert_string_equal(err, "--tls-listen needs --tls-cert (the certificate chain, PEM) and "
                             "--tls-key (its private key): --tls-key is missing");
    /* a certificate, a key or a client CA without a listener */
    assert_int_equal(load(&c, err, 6, "serve", "--tls-cert", "c.pem", "--tls-key", "k.pem"),
                     CONFIG_ERROR);
    assert_string_equal(err, "--tls-cert is given but no --tls-listen address to serve HTTPS on");
    assert_int_equal(load(&c, err, 3, "serve", "--tls-key=k.pem"), CONFIG_ERROR);
    assert_string_equal(err, "--tls-key is given but no --tls-listen address to serve HTTPS on");
    assert_int_equal(load(&c, err, 3, "serve", "--tls-client-ca=ca.pem"), CONFIG_ERROR);
    assert_string_equal(err,
                        "--tls-client-ca is given but no --tls-listen address to serve HTTPS on");
    /* --listen's own address */
    assert_int_equal(load(&c, err, 10, "serve", "--listen", "127.0.0.1:8001", "--tls-listen",
                          "127.0.0.1:8001", "--tls-cert", "c.pem", "--tls-key", "k.pem"),
                     CONFIG_ERROR);
    assert_string_equal(err, "--tls-listen 127.0.0.1:8001 overlaps --listen 127.0.0.1:8001: give "
                             "each its own port");
    assert_int_equal(load(&c, err, 8, "serve", "--tls-listen", ":8001", "--tls-cert", "c.pem",
                          "--tls-key", "k.pem"),
                     CONFIG_ERROR);
    assert_string_equal(err, "--tls-listen 0.0.0.0:8001 overlaps --listen 0.0.0.0:8001: give each "
                             "its own port");
    /* a wildcard overlaps every address of its port: serve could not bind both (found by the
     * new-user review: check-config said ok, serve failed), and so do two --tls-listen */
    assert_int_equal(load(&c, err, 10, "serve", "--listen", "127.0.0.1:8001", "--tls-listen",
                          ":8001", "--tls-cert", "c.pem", "--tls-key", "k.pem"),
                     CONFIG_ERROR);
    assert_string_equal(err, "--tls-listen 0.0.0.0:8001 overlaps --listen 127.0.0.1:8001: give "
                             "each its own port");
    assert_int_equal(load(&c, err, 10, "serve", "--tls-listen", "[::1]:8443", "--tls-listen",
                          "[::]:8443", "--tls-cert", "c.pem", "--tls-key", "k.pem"),
                     CONFIG_ERROR);
    assert_string_equal(err, "--tls-listen [::]:8443 overlaps --tls-listen [::1]:8443: give each "
                             "its own port");
    assert_int_equal(load(&c, err, 10, "serve", "--tls-listen", "127.0.0.1:8443", "--tls-listen",
                          "127.0.0.2:8443", "--tls-cert", "c.pem", "--tls-key", "k.pem"),
                     CONFIG_SERVE);
    /* at most CONFIG_MAX_TLS_LISTEN addresses */
    {
        char *argv[32] = {"arca", "serve"};
        char addr[CONFIG_MAX_TLS_LISTEN + 1][32];
        int argc = 2;
        for (int i = 0; i <= CONFIG_MAX_TLS_LISTEN; i++) {
            snprintf(addr[i], sizeof(addr[i]), "--tls-listen=127.0.0.1:%d", 9000 + i);
            argv[argc++] = addr[i];
        }
        assert_int_equal(config_load(&c, argc, argv, err), CONFIG_ERROR);
        snprintf(want, sizeof(want), "--tls-listen: at most %d addresses", CONFIG_MAX_TLS_LISTEN);
        assert_string_equal(err, want);
    }
    /* in a file: the keys are the options' names, and an error names the line */
    path = write_file("[arca]\ntls-listen = 127.0.0.1:8443\ntls-listen = [::1]:8443\n"
                      "tls-cert = /etc/arca/cert.pem\ntls-key = /etc/arca/key.pem\n");
    assert_int_equal(load(&c, err, 4, "serve", "--config", path), CONFIG_SERVE);
    assert_int_equal(c.n_tls_listen, 2);
    assert_string_equal(c.tls_key, "/etc/arca/key.pem");
    config_free(&c);
    unlink(path);
    path = write_file("[arca]\nquota = 1G\ntls-listen = 127.0.0.1:8443\n");
    assert_int_equal(load(&c, err, 4, "serve", "--config", path), CONFIG_ERROR);
    snprintf(want, sizeof(want),
             "%s:3: --tls-listen needs --tls-cert (the certificate chain, PEM) and --tls-key (its "
             "private key): --tls-cert is missing",
             path);
    assert_string_equal(err, want);
    unlink(path);
    path = write_file("[arca]\n\ntls-client-ca = /etc/arca/sites.pem\n");
    assert_int_equal(load(&c, err, 4, "serve", "--config", path), CONFIG_ERROR);
    snprintf(want, sizeof(want),
             "%s:3: --tls-client-ca is given but no --tls-listen address to serve HTTPS on", path);
    assert_string_equal(err, want);
    unlink(path);
}

/* SIGHUP reads the certificate, key and client CA again; a new --tls-listen waits for a
 * restart. */
static void tls_restart_changes(void **state)
{
    static struct config a, b;
    char err[CONFIG_ERR_LEN], out[512];
    (void)state;
    assert_int_equal(load(&a, err, 8, "serve", "--tls-listen", "127.0.0.1:8443", "--tls-cert",
                          "a.pem", "--tls-key", "a.key"),
                     CONFIG_SERVE);
    assert_int_equal(load(&b, err, 10, "serve", "--tls-listen", "127.0.0.1:8443", "--tls-cert",
                          "b.pem", "--tls-key", "b.key", "--tls-client-ca", "ca.pem"),
                     CONFIG_SERVE);
    assert_int_equal(config_restart_changes(&a, &b, out, sizeof(out)), 0);
    config_free(&b);
    assert_int_equal(load(&b, err, 10, "serve", "--tls-listen", "127.0.0.1:8443", "--tls-listen",
                          "127.0.0.1:9443", "--tls-cert", "a.pem", "--tls-key", "a.key"),
                     CONFIG_SERVE);
    assert_int_equal(config_restart_changes(&a, &b, out, sizeof(out)), 1);
    assert_string_equal(out, "--tls-listen");
    config_free(&a);
    config_free(&b);
}

/* `include = NAME`: from the including file's folder, an absolute name as it is. */
static void include_paths(void **state)
{
    char out[64];
    (void)state;
    assert_int_equal(config_include_path("/etc/arca/arca.ini", "rules.d/*.ini", out, sizeof(out)),
                     0);
    assert_string_equal(out, "/etc/arca/rules.d/*.ini");
    assert_int_equal(config_include_path("arca.ini", "r.ini", out, sizeof(out)), 0);
    assert_string_equal(out, "r.ini");
    assert_int_equal(config_include_path("/arca.ini", "r.ini", out, sizeof(out)), 0);
    assert_string_equal(out, "/r.ini");
    assert_int_equal(config_include_path("etc/a.ini", "/abs/r.ini", out, sizeof(out)), 0);
    assert_string_equal(out, "/abs/r.ini");
    assert_int_equal(config_include_path("/a/b.ini",
                                         "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                                         "xxxxxxxxxxxxxxxxxxxxxx",
                                         out, sizeof(out)),
                     -1);
    assert_true(config_include_is_glob("rules.d/*.ini"));
    assert_true(config_include_is_glob("r?.ini"));
    assert_true(config_include_is_glob("r[12].ini"));
    assert_false(config_include_is_glob("rules.d/10-a.ini"));
}

/* A loop is told as the chain that comes back, outermost first; a short buffer is cut, never
 * overrun. */
static void include_chain(void **state)
{
    const char *files[] = {"a.ini", "b.ini"};
    char out[64], small[12];
    (void)state;
    config_include_chain(files, 2, "a.ini", out, sizeof(out));
    assert_string_equal(out, "a.ini includes b.ini includes a.ini");
    config_include_chain(files, 1, "a.ini", out, sizeof(out));
    assert_string_equal(out, "a.ini includes a.ini");
    config_include_chain(files, 2, "a.ini", small, sizeof(small));
    assert_string_equal(small, "a.ini inclu");
}

/* An include read from a stream is named from the working folder; a file included by rule a's
 * section leaves the keys after it to rule a. */
static void include_in_a_rule_section(void **state)
{
    char dir[UNIT_TMP_MAX] = "/tmp/arca-unit-XXXXXX", path[UNIT_TMP_MAX + 16], err[CONFIG_ERR_LEN];
    struct config c;
    FILE *f;
    (void)state;
    assert_non_null(mkdtemp(unit_tmp(dir, sizeof(dir))));
    snprintf(path, sizeof(path), "%s/b.ini", dir);
    f = fopen(path, "w");
    fputs("[rule b]\nmatch = http://x/b/\n", f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/a.ini", dir);
    f = fopen(path, "w");
    fputs("[rule a]\nmatch = http://x/a/\ninclude = b.ini\nttl = 1h\n", f);
    fclose(f);
    config_defaults(&c);
    assert_int_equal(config_read_file(&c, path, err), 0);
    assert_int_equal(c.n_rules, 2);
    assert_int_equal(c.rules[0].n_keys, 2);
    assert_string_equal(c.rules[0].keys[1].key, "ttl");
    assert_int_equal(c.rules[1].n_keys, 1);
    assert_int_equal(c.n_files_read, 2);
    assert_string_equal(c.files_read[0], path);
    config_free(&c);
    unlink(path);
    snprintf(path, sizeof(path), "%s/b.ini", dir);
    unlink(path);
    rmdir(dir);
    /* a stream has no folder: it includes nothing (the fuzzer reads no file through it) */
    f = fmemopen((char[]){"include = /etc/*\n"}, 17, "r");
    config_defaults(&c);
    assert_int_equal(config_read_stream(&c, f, "t.ini", err), -1);
    assert_string_equal(err, "t.ini:1: include: only a config file includes others");
    fclose(f);
    config_free(&c);
}

/* --cache-name's grammar: an RFC 8941 sf-token. */
static void cache_names(void **state)
{
    (void)state;
    assert_true(config_sf_token("site-a"));
    assert_true(config_sf_token("central.lab:8443/x"));
    assert_true(config_sf_token("*"));
    assert_true(config_sf_token("a!#$%&'*+-.^_`|~:/9"));
    assert_false(config_sf_token(""));
    assert_false(config_sf_token("1site"));
    assert_false(config_sf_token("-site"));
    assert_false(config_sf_token("site a"));
    assert_false(config_sf_token("site\ta"));
    assert_false(config_sf_token("site\x01"));
    assert_false(config_sf_token("site,a"));
    assert_false(config_sf_token("site;a"));
    assert_false(config_sf_token("site=a"));
    assert_false(config_sf_token("\"site\""));
}

/* --outgoing-address: one address, or one of each family; loopback is this host's. */
static void outgoing_addresses(void **state)
{
    struct outgoing_address a;
    char why[160], text[96];
    (void)state;
    assert_int_equal(config_outgoing_parse("127.0.0.2", &a, why, sizeof(why)), 0);
    assert_true(a.has_v4 && !a.has_v6);
    config_outgoing_text(&a, text, sizeof(text));
    assert_string_equal(text, "127.0.0.2");
    assert_int_equal(config_outgoing_parse("127.0.0.2,127.0.0.3", &a, why, sizeof(why)), -1);
    assert_int_equal(config_outgoing_parse("", &a, why, sizeof(why)), -1);
    assert_int_equal(config_outgoing_parse("127.0.0.2,", &a, why, sizeof(why)), -1);
    assert_int_equal(config_outgoing_parse("localhost", &a, why, sizeof(why)), -1);
    assert_int_equal(config_outgoing_parse("192.0.2.77", &a, why, sizeof(why)), -1);
    assert_string_equal(why, "192.0.2.77 is not an address of this host");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults),        cmocka_unit_test(include_paths),
        cmocka_unit_test(cache_names),     cmocka_unit_test(outgoing_addresses),
        cmocka_unit_test(include_chain),   cmocka_unit_test(include_in_a_rule_section),
        cmocka_unit_test(options),         cmocka_unit_test(bad_options),
        cmocka_unit_test(config_file),     cmocka_unit_test(config_file_errors_name_the_line),
        cmocka_unit_test(comments),        cmocka_unit_test(keys_given_twice),
        cmocka_unit_test(origins),         cmocka_unit_test(unknown_options_are_named),
        cmocka_unit_test(restart_changes), cmocka_unit_test(switch_words_and_bounds),
        cmocka_unit_test(tls_options),     cmocka_unit_test(tls_restart_changes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
