/*
 * config.h — every setting arca has, with its default, from the command line and the INI file.
 *
 * Contract: config_load() fills one struct config before any thread starts; after that the struct
 * is shared by all threads and read-only, except default_ttl, stale_if_error and
 * stale_while_revalidate, which SIGHUP reloads (main.c) and which are then written and read with
 * __atomic builtins (rules/terms.c reads them for every request). What else SIGHUP reloads has one
 * owner that keeps its own copy: the quota the store (store_set_quota), the allowed networks the
 * policy module; their fields here are what arca started with. Every limit lives here, its default
 * beside its name in config.c. Errors come back as one line in `err` (for the INI file: with the
 * file's line number, and none of the line's text: a key or value an error would quote is
 * "(not shown)", for a token or key file read as a config by mistake). The struct also remembers
 * where each option was set (file and line, or the command line), so the checks made at start
 * (main.c) can name the line to fix.
 *
 * The INI file: `#` and `;` start a comment at the beginning of a line, and after a value when
 * whitespace precedes them (`quota = 5G   # five gigabytes`). So no value can hold " #" or " ;":
 * none needs to (URLs and regexes over a URL's normal form hold no blanks; a path with " #"
 * would be cut). A single-valued key given twice in one file is an error; repeatable ones
 * (allow-network, mirror...) add up; options on the command line after --config override it.
 * `include = FILE` (in any section) reads FILE there, as a --config given at that point would
 * be (its values override those before it, rules add up), then the including file's section
 * goes on: a glob's files in sorted order, a relative name from the including file's folder.
 * An include loop, a missing file and a glob matching nothing are errors naming the line.
 */
#ifndef ARCA_CONFIG_H
#define ARCA_CONFIG_H

#include "base/parse.h"

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CONFIG_MAX_NETS 64
#define CONFIG_MAX_PORTS 16
#define CONFIG_MAX_RULES 32
#define CONFIG_MAX_MIRRORS 8

/* --mirror REGEX=URL[,URL...]: URLs matching REGEX are first asked of each mirror, the matched
 * text replaced by the mirror's URL. */
#define CONFIG_PARENT_MAX 512
/* The longest a negative answer is kept (--negative-ttl, a rule's negative-ttl): briefly. */
#define NEGATIVE_TTL_MAX 86400

struct mirror_rule {
    char pattern[512]; /* POSIX extended regex over the URL's normal form */
    char mirrors[CONFIG_MAX_MIRRORS][512];
    int n;
};

/* --bucket NAME=URL or an INI section [bucket NAME]: an S3 bucket served under /browse/NAME/.
 * Its credentials are read at start (buckets.h), never kept here. */
#define CONFIG_MAX_BUCKETS 16
struct bucket {
    char name[64];          /* letters, digits, '.', '_', '-' */
    char url[512];          /* path-style: http(s)://host[:port]/bucket, no trailing '/' */
    char region[32];        /* default us-east-1 */
    char credentials[1024]; /* a file: access key id, secret, optional session token; "" */
    bool hide_root;         /* the bucket root answers without a listing */
    char prefix[512];       /* the view is limited to keys below it ("" or ending in '/') */
    int64_t listing_ttl;    /* seconds a listing is cached (default 60) */
};

/* --registry NAME=URL or an INI section [registry NAME]: a container registry mirrored under /v2/
 * (docs/REGISTRY.md). Its password is read at start (registry/registries.h), never kept here. */
#define CONFIG_MAX_REGISTRIES 16
#define CONFIG_REGISTRY_NAME_MAX 128
#define CONFIG_REGISTRY_ALIASES 8
struct registry_conf {
    char name[CONFIG_REGISTRY_NAME_MAX]; /* as clients name it: "docker.io", "lab", "host:5000" */
    char url[CONFIG_PARENT_MAX];         /* http(s)://host[:port][/path], normal form, no '/' */
    char username[256];                  /* "" none */
    char password_file[1024];            /* its first line is the password; "" none */
    /* other names clients give it (`aliases = HOST[:PORT], ...`), each a NAME's grammar, none
     * another registry's NAME, alias or URL's host[:port] (config_registry_finish) */
    char aliases[CONFIG_REGISTRY_ALIASES][CONFIG_REGISTRY_NAME_MAX];
    int n_aliases;
};

/* --remote NAME=URL (NAME:KIND=URL) or an INI section [remote NAME]: a package repository or any
 * tree of files served by path, http://cache/NAME/PATH being URL/PATH (docs/REMOTES.md). */
#define CONFIG_MAX_REMOTES 32
#define CONFIG_REMOTE_NAME_MAX 64
#define CONFIG_REMOTE_FILE_HOSTS 8
/* What a remote's URLs are: the kind decides which of them are metadata (fresh for
 * --remote-meta-ttl, then revalidated) and which never change (remote/remote_kind.h). */
enum remote_kind { REMOTE_FILES, REMOTE_APT, REMOTE_PYPI, REMOTE_GO };
struct remote_conf {
    char name[CONFIG_REMOTE_NAME_MAX]; /* the first path segment: letters, digits, '.', '_', '-' */
    char url[CONFIG_PARENT_MAX];       /* http(s)://host[:port][/path], normal form, no '/' */
    enum remote_kind kind;
    /* pypi: the other hosts ("host[:port]", lower case) a page's file links reach through arca */
    char file_hosts[CONFIG_REMOTE_FILE_HOSTS][CONFIG_REGISTRY_NAME_MAX];
    int n_file_hosts;
};
/* The word for a kind: "files", "apt", "pypi" or "go". */
const char *config_remote_kind_name(enum remote_kind kind);

/* --key-rules HOSTGLOB=PARAM[,PARAM...]: query parameters that only sign a URL on those hosts. */
struct key_rule {
    char host[256];   /* fnmatch pattern over the URL's host, lower case */
    char params[512]; /* comma-separated names, compared without case */
};
/* A [rule NAME] section as the file wrote it: rules/ checks and compiles it (rules_compile), so
 * that config/ knows no rule's meaning. Keys are known here (an unknown one is refused as read,
 * naming the nearest); values are kept as text with their line, for errors that name it. */
struct config_rule_key {
    char *key, *value;
    int line;
};
struct config_rule {
    char *name;
    char *file;
    int line; /* of its [rule NAME] line */
    struct config_rule_key *keys;
    int n_keys, cap_keys;
};

#define CONFIG_ERR_LEN 256
#define CONFIG_MAX_OPTIONS 80
/* INI files one load reads (--config and includes), and how deep includes nest */
#define CONFIG_MAX_FILES 64
#define CONFIG_INCLUDE_DEPTH 8

/* Where an option got its value: line 0 is the command line (or its default). */
struct config_origin {
    char file[256];
    int line;
};

/* --outgoing-address, a rule's outgoing-address: the address upstream connections leave from,
 * one per family at most (an IPv4 one is never used to reach an IPv6 address). */
struct outgoing_address {
    bool has_v4, has_v6;
    struct sockaddr_in v4;
    struct sockaddr_in6 v6;
};

enum send_mode { SEND_AUTO, SEND_MMAP, SEND_SENDFILE };
/* How an answer whose &sha256= is still to be checked goes out while its object downloads:
 * chunked (streamed, a mismatch is a missing final chunk) or held until the object is complete. */
enum digest_framing { FRAMING_CHUNKED, FRAMING_HOLD };
enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* An address to listen on: the host as given (a v6 address without its brackets) and the port. */
struct listen_addr {
    char host[64];
    int port;
};
#define CONFIG_MAX_TLS_LISTEN 8

struct config {
    char listen_host[64];
    int listen_port;
    /* HTTPS for clients (docs/TLS.md): --tls-listen addresses, the certificate chain and key they
     * show, and the CA that must have signed the certificate each client shows ("" none). SIGHUP
     * reads the files again (tls.h). */
    struct listen_addr tls_listen[CONFIG_MAX_TLS_LISTEN];
    int n_tls_listen;
    char tls_cert[1024];
    char tls_key[1024];
    char tls_client_ca[1024];
    char data_dir[1024];
    int64_t quota;       /* bytes, at start: the store owns the quota (store_set_quota) */
    int64_t default_ttl; /* seconds */
    struct cidr allow_nets[CONFIG_MAX_NETS];
    int n_allow_nets;                     /* 0 = loopback and private networks */
    struct cidr ui_nets[CONFIG_MAX_NETS]; /* may also see the listings of URLs */
    int n_ui_nets;
    struct cidr upstream_allow[CONFIG_MAX_NETS];
    int n_upstream_allow;
    /* --trusted-proxy: connections from there name their client in X-Forwarded-For */
    struct cidr trusted_proxies[CONFIG_MAX_NETS];
    int n_trusted_proxies;
    char ca_file[1024];       /* "" = system store only */
    char shutdown_file[1024]; /* "" = none */
    int64_t stall_timeout;    /* seconds without a byte from upstream before an attempt fails */
    int64_t connect_timeout;  /* seconds */
    /* --connect-port: the ports a CONNECT tunnel may reach (config_tunnel_port); none given: 443;
     * -1: "none", no tunnel */
    int connect_ports[CONFIG_MAX_PORTS];
    int n_connect_ports;
    int64_t download_timeout; /* seconds one download may take, all attempts together */
    int download_retries;     /* further attempts after a retryable upstream fault */
    int max_redirects;        /* upstream redirects followed per attempt (wget's default: 20) */
    int64_t retry_delay_ms;   /* first backoff; doubles per attempt, capped at 30 s */
    int max_downloads;        /* upstream transfers at once; more wait their turn */
    int max_downloads_per_host;
    /* 0: half of max_downloads */
    int max_downloads_per_client;
    int64_t max_object_size;    /* bytes; larger objects are refused with 413 */
    int max_connections;        /* client connections at once; more get 503 */
    int max_connections_per_ip; /* more from one address get 429 */
    int64_t max_header_size;    /* request line + headers, bytes; more gets 431 */
    int64_t header_timeout;     /* seconds to receive a request's headers */
    int64_t idle_timeout;       /* seconds a kept-alive or stalled client connection may idle */
    int64_t grace_period;       /* seconds granted to in-flight responses on SIGTERM */
    int threads;                /* client-side worker threads */
    enum send_mode send_mode;   /* how finished objects of 1 MiB and more go out */
    enum digest_framing digest_framing;
    int max_url_len;
    char access_log[1024]; /* "-" = stderr, "off" = none */
    enum log_level log_level;
    char admin_token_file[1024]; /* "" = admin API disabled */
    /* Cache keys of signed URLs (keys.h). */
    struct key_rule key_rules[CONFIG_MAX_RULES];
    int n_key_rules;
    bool exact_keys;      /* KissCache's behaviour: the key is the whole URL */
    bool trust_signed;    /* serve signed hits without asking upstream first */
    int64_t confirm_ttl;  /* seconds a confirmed signed URL is remembered at most */
    int64_t keep_expired; /* seconds an expired object with a validator stays, to be revalidated */
    /* When the origin fails (docs/CACHING.md, "When the origin is down"): */
    int64_t stale_if_error; /* seconds past expiry an object answers if upstream fails; 0 never */
    int64_t stale_while_revalidate; /* seconds past expiry it answers at once while revalidated */
    int origin_failures;            /* consecutive failures that hold a host down; 0 never */
    int64_t negative_ttl; /* seconds a 404 or 410 from upstream answers for its URL; 0 never */
    /* Cold fills (docs/CACHING.md, "Parallel fills and the uplink cap"): */
    int fill_connections;  /* connections one download may use at once; 1: one */
    int64_t fill_min_size; /* smaller objects come over one connection */
    int64_t upstream_rate; /* bytes a second all downloads together take; 0: no cap */
    struct mirror_rule mirror_rules[CONFIG_MAX_RULES / 2];
    int n_mirror_rules;
    /* A site's central arca (docs/CLUSTER.md, "Sites and tiers"): its base URL in normal form
     * without a trailing '/' ("" none; config_parent_url), asked for every download first;
     * --parent-only: never the origin directly; --parent-trusted-http: URLs with credentials
     * may go to an http:// parent (else only to an https:// one whose certificate verifies). */
    char parent[CONFIG_PARENT_MAX];
    bool parent_only, parent_trusted_http;
    /* the certificate (PEM chain) and key --parent is shown, for one that requires a client
     * certificate ("" none); read and checked with the rules (rules.h), SIGHUP again */
    char parent_cert[1024], parent_key[1024];
    struct bucket buckets[CONFIG_MAX_BUCKETS];
    int n_buckets;
    struct registry_conf registries[CONFIG_MAX_REGISTRIES];
    int n_registries;
    char registry_default[CONFIG_REGISTRY_NAME_MAX]; /* --registry-default; "" docker.io */
    /* seconds a mirrored registry's manifest by tag is fresh where no rule gives a ttl
     * (--registry-tag-ttl; SIGHUP sets it: read atomically) */
    int64_t registry_tag_ttl;
    /* seconds a registry's 429 (or 503 with Retry-After) holds it at most (--registry-hold-max;
     * SIGHUP sets it: read atomically) */
    int64_t registry_hold_max;
    struct remote_conf remotes[CONFIG_MAX_REMOTES];
    int n_remotes;
    /* seconds a remote's metadata (apt's Release and indexes, pypi's pages, go's lists) is fresh
     * where no rule gives a ttl (--remote-meta-ttl; SIGHUP sets it: read atomically) */
    int64_t remote_meta_ttl;
    bool log_health_checks; /* write /api/v1/health/ requests to the access log */
    /* --cache-name: this arca's name in Cache-Status (an sf-token; by default the host's name,
     * an sf-string when it is no token) */
    char cache_name[128];
    /* --outgoing-address as given ("" none) and read: the address upstream connections bind */
    char outgoing_address[128];
    struct outgoing_address outgoing;
    /* Where each option was last set, by its index in config.c's table; a bucket's section and
     * its credentials key; where each registry was given (its --registry, its section) and its
     * aliases line (0: none, or the command line). Not options themselves: SIGHUP does not
     * compare them. */
    struct config_origin origins[CONFIG_MAX_OPTIONS];
    struct config_origin bucket_origins[CONFIG_MAX_BUCKETS];
    struct config_origin registry_origins[CONFIG_MAX_REGISTRIES];
    struct config_origin remote_origins[CONFIG_MAX_REMOTES];
    int bucket_credentials_line[CONFIG_MAX_BUCKETS];
    int registry_aliases_line[CONFIG_MAX_REGISTRIES];
    char config_file[256]; /* the last --config read, "" = none */
    /* Every INI file read, in the order read: each --config and the files their `include`
     * lines brought in (check-config and the start-up log name them all). */
    char files_read[CONFIG_MAX_FILES][256];
    int n_files_read;
    /* The [rule NAME] sections of every file read, in order: heap memory, freed by config_free. */
    struct config_rule *rules;
    int n_rules, cap_rules;
    /* The rules by name (open addressing, an index + 1 a slot, 0 empty; heap memory, freed by
     * config_free): a name given twice is found without comparing it with every rule before
     * it (a file of 10,000 rules spent 2/3 of its check in strcmp). */
    int *rule_names;
    int cap_rule_names; /* a power of two, at least twice n_rules; 0: none yet */
};

enum config_action {
    CONFIG_SERVE,
    CONFIG_HELP,
    CONFIG_VERSION,
    CONFIG_ERROR,
};

/* Every field its default. What cfg held before is forgotten, never freed (it may be
 * uninitialised memory): a struct loaded before goes to config_free first. */
void config_defaults(struct config *cfg);
/* Free what a load allocated (the rules' sections) and leave none: a second call does nothing,
 * and cfg may then be loaded again. */
void config_free(struct config *cfg);

/* Parse argv ("arca serve|check-config [OPTIONS]", "--help", "-h", "--version"). A --config FILE
 * is read where it appears, so later command-line options override the file. An unknown option
 * is named, with the nearest known one when there is one ("did you mean --exact-keys?"). */
enum config_action config_load(struct config *cfg, int argc, char **argv, char err[CONFIG_ERR_LEN]);
/* The error `err` about a config line (its key, value and section in `from`, NULL where none)
 * without the line's text: each quoted piece of it is replaced by "(not shown)". The reason and
 * FILE:LINE say what to mend; a file given by mistake must not be shown (config_file.c, and a
 * [rule NAME]'s keys judged at its end: rules_compile.c). */
void config_hide_line(char *err, const char *const from[3]);

/* Once every option is in: what only the whole configuration can tell (a bucket without a URL,
 * credentials that cannot be read). config_load calls it; check-config too. */
int config_finish(struct config *cfg, char err[CONFIG_ERR_LEN]);

/* Read an INI file (keys are the long option names, in no section or in [arca]; a bucket's in
 * [bucket NAME], a rule's in [rule NAME]: config_rule_keys), and the files it includes; each
 * file read is added to cfg->files_read. */
int config_read_file(struct config *cfg, const char *path, char err[CONFIG_ERR_LEN]);

/* "a.ini, rules.d/10-nightly.ini": every file cfg->files_read names, in the order read ("":
 * none), bounded by `size`. */
void config_describe_files(const struct config *cfg, char *out, size_t size);

/* The same from an open stream; `name` labels error messages. */
int config_read_stream(struct config *cfg, FILE *f, const char *name, char err[CONFIG_ERR_LEN]);

/* Apply one option by its long name; used by both the command line and the INI reader. */
int config_set(struct config *cfg, const char *name, const char *value, char err[CONFIG_ERR_LEN]);

/* A secret file's first line, blanks around it trimmed, into out (size bytes): its length, -1
 * when the file cannot be read (errno says why), or -2 when the line does not fit. */
int config_read_token(const char *path, char *out, size_t size);

/* "FILE:LINE: " where option `name` was set in a file, "" when on the command line or by
 * default: the start of an error message about its value. */
void config_where(const struct config *cfg, const char *name, char *out, size_t size);

/* The same for bucket `i`: its credentials key when `credentials`, else its section. */
void config_bucket_where(const struct config *cfg, int i, bool credentials, char *out, size_t size);

/* The options that differ between `old` and `fresh`, except those SIGHUP applies (quota,
 * default-ttl, log-level, allow-network, admin-token-file), as "--listen, --threads" into out:
 * how many. */
int config_restart_changes(const struct config *old, const struct config *fresh, char *out,
                           size_t size);

void config_print_help(void);

/* Whether `name` (without dashes, up to a '=') is an option of serve: a client command given
 * one says that it does not take it, rather than that no such option exists. */
bool config_is_serve_option(const char *name);

/* The keys of a [rule NAME] section, NULL after the last; allow-network is the one that may be
 * given more than once in a rule. */
extern const char *const config_rule_keys[];

/* Whether a CONNECT tunnel may reach `port` (--connect-port). */
bool config_tunnel_port(const struct config *cfg, int port);

/* Whether `s` is an RFC 8941 sf-token (what --cache-name takes): a letter or '*', then
 * letters, digits and !#$%&'*+-.^_`|~:/ */
bool config_sf_token(const char *s);
/* "ADDR" or "ADDR4,ADDR6" (--outgoing-address, a rule's outgoing-address) into `out`, each an
 * address this host holds (a socket can be bound to it); -1 with a one-line why. */
int config_outgoing_parse(const char *v, struct outgoing_address *out, char *why, size_t size);
/* The same as text ("127.0.0.2", "192.0.2.7,2001:db8::7"; "" none), bounded by `size`. */
void config_outgoing_text(const struct outgoing_address *a, char *out, size_t size);

/* A base URL (--parent, a rule's `parent`, a registry's url): http:// or https://, a host, a path
 * or none; no credentials (they would show in logs and the status) and no query. Its normal form
 * without a trailing '/' into out[CONFIG_PARENT_MAX]; -1 with a one-line why (which never
 * echoes the URL's userinfo). */
int config_parent_url(const char *v, char out[CONFIG_PARENT_MAX], char *why, size_t size);

#endif
