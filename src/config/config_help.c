/* `arca --help` (config.h): every option with its default, as docs/OPTIONS.md's one table and
 * the man page give them; tests/integration/test_pages.py checks the three against each other,
 * both ways, defaults included. Apart from config.c, whose table of options it describes, so
 * that the table and its setters read without the text. */
#include "config/config.h"

#include <stdio.h>

/* The serving options, up to the admin token. */
static void print_serving(void)
{
    fputs(
        "usage: arca [serve] [OPTION...]       serve (the command may be left out)\n"
        "       arca status [--server URL]\n"
        "       arca cluster-status [--json] [--server URL ...]\n"
        "       arca prefetch [--server URL] [--admin-token-file FILE] [--ttl TTL]\n"
        "                     [--wait [--timeout DURATION]] URL...\n"
        "       arca purge [--server URL] [--admin-token-file FILE] URL\n"
        "       arca purge [--server URL] [--admin-token-file FILE] --prefix URL [--all]\n"
        "       arca purge [--server URL] [--admin-token-file FILE] IMAGE\n"
        "       arca images [--json] [--server URL]  the images kept, a line per tag\n"
        "       arca check-config [--config FILE] [OPTIONS] would serve start with them?\n"
        "       arca rules test [--config FILE] [--client ADDR] [--json] [OPTIONS] URL|IMAGE\n"
        "                                      which rule applies to URL, each term and why\n"
        "       (status, cluster-status, prefetch, purge, images: [--config FILE]\n"
        "        [--cacert FILE]\n"
        "        [--cert FILE --key FILE] too)\n"
        "       arca --help | -h | --version\n"
        "\n"
        "  --config FILE          read options from an INI file (keys = option names; # or ;\n"
        "                         start a comment, after a value when a blank precedes them;\n"
        "                         switches take true/false, yes/no, on/off or 1/0); its\n"
        "                         [rule NAME] sections say per URL prefix how URLs are cached\n"
        "                         (docs/CACHING.md, \"Rules\"; SIGHUP reloads them)\n"
        "  --listen HOST:PORT     address to listen on (default 0.0.0.0:8001)\n"
        "  --tls-listen HOST:PORT also serve HTTPS there (repeatable; no default;\n"
        "                         docs/TLS.md)\n"
        "  --tls-cert FILE        the HTTPS certificate chain, PEM (SIGHUP reads it again)\n"
        "  --tls-key FILE         its private key, PEM (SIGHUP reads it again)\n"
        "  --tls-client-ca FILE   HTTPS clients must show a certificate this CA signed\n"
        "                         (SIGHUP reads it again)\n"
        "  --data-dir DIR         objects and index (default ./arca-data)\n"
        "  --quota SIZE           disk space for objects, K/M/G/T (default 5G)\n"
        "  --default-ttl TTL      time objects are kept, <int>d|h|m|s (default 10d)\n"
        "  --allow-network CIDR   clients allowed to fetch (repeatable; all: everyone;\n"
        "                         default loopback and the private networks)\n"
        "  --ui-network CIDR      also allowed to see the listings of URLs (repeatable)\n"
        "  --trusted-proxy CIDR   a load balancer whose X-Forwarded-For names the client\n"
        "                         (repeatable; docs/CLUSTER.md)\n"
        "  --upstream-allow CIDR  upstream networks allowed despite the SSRF policy (repeatable)\n"
        "  --connect-port N       a port CONNECT tunnels may reach (repeatable; default 443,\n"
        "                         replaced by the ports given; none: no tunnels)\n"
        "  --outgoing-address ADDR  upstream connections leave from ADDR, an address of this\n"
        "                         host (ADDR4,ADDR6: one of each family; default none: the\n"
        "                         kernel's choice)\n"
        "  --ca-file PATH         extra CA bundle for upstream TLS, on top of the system store\n"
        "  --shutdown-file PATH   while this file exists, health answers 503\n"
        "  --stall-timeout TTL    retry an upstream silent this long (default 60s)\n"
        "  --download-timeout TTL give up on a download after this long (default 6h)\n"
        "  --download-retries N   attempts after a retryable upstream fault (default 4)\n"
        "  --max-redirects N      upstream redirects followed, 0-100 (default 20)\n"
        "  --retry-delay DUR      first backoff, doubling, <int>ms|s|m, 1ms..30s (default 1s)\n",
        stdout);
}

/* The limits, threads and logs. */
static void print_limits(void)
{
    fputs(
        "  --max-downloads N      upstream transfers at once; others queue (default 32)\n"
        "  --max-downloads-per-host N  the same, per upstream host (default 8)\n"
        "  --max-downloads-per-client N  the same, per client address (an IPv6 /64);\n"
        "                         0: all of --max-downloads but a quarter, at least\n"
        "                         one left for the others (32: 24) (default 0)\n"
        "  --fill-connections N   connections one cold download of a large object uses at once,\n"
        "                         each asking a range (within --max-downloads-per-host);\n"
        "                         1: one connection (default 4)\n"
        "  --fill-min-size SIZE   objects smaller than this come over one connection\n"
        "                         (default 64M)\n"
        "  --upstream-rate RATE   bytes a second downloads, tunnels and listings together take\n"
        "                         from upstream, shared fairly between downloads and tunnels\n"
        "                         (K, M, G; reloadable); hits and clients following a download\n"
        "                         are never slowed (default none)\n"
        "  --max-object-size SIZE larger objects get 413 (default 64G)\n"
        "  --max-connections N    client connections; beyond, 503 if none is idle (default 1024)\n"
        "  --max-connections-per-ip N  per address or IPv6 /64; beyond, 429 (default 128)\n"
        "  --max-url-length N     longest url parameter; beyond, 414 (default 8192)\n"
        "  --max-header-size SIZE request line + headers; beyond, 431 (default 16K)\n"
        "  --header-timeout TTL   time to send a request's headers (default 10s)\n"
        "  --idle-timeout TTL     idle client connection lifetime (default 60s)\n"
        "  --grace-period TTL     time in-flight responses get on SIGTERM (default 10s)\n"
        "  --threads N            client worker threads (default: CPUs, max 16)\n"
        "  --send-mode MODE       finished objects >= 1 MiB: mmap (default) or sendfile\n"
        "  --digest-framing MODE  &sha256= answers of a download: chunked (default) or hold\n"
        "  --cache-name NAME      this arca's name in Cache-Status (default: the host's name)\n"
        "  --access-log FILE      one line per request; - is stderr (default), off is none\n"
        "  --log-health-checks    also log /api/v1/health/ requests (default: left out)\n"
        "  --log-level LEVEL      error, warning, info (default) or debug\n"
        "  --admin-token-file FILE  bearer token for the admin API (default: API disabled)\n",
        stdout);
}

/* The options for cache keys, origins and the client commands. */
static void print_keys_and_commands(void)
{
    puts(
        "  --key-rules HOSTGLOB=PARAM,...  query parameters that only sign URLs of those hosts,\n"
        "                         left out of the cache key (repeatable; S3, GCS, Azure and\n"
        "                         CloudFront signatures are built in)\n"
        "  --exact-keys           the cache key is the whole URL, signature included (KissCache)\n"
        "  --trust-signed-urls    serve a cached object to any signed URL without asking upstream\n"
        "  --bucket NAME=URL      an S3 bucket (path-style URL) served under /browse/NAME/;\n"
        "                         [bucket NAME] sections in the INI file say more (repeatable)\n"
        "  --registry NAME=URL    a container registry mirrored under /v2/ (docker.io alone:\n"
        "                         Docker Hub); [registry NAME] sections give a login and\n"
        "                         aliases, other names clients use (repeatable; REGISTRY.md)\n"
        "  --registry-default NAME  the registry of /v2/ requests naming none (default\n"
        "                         docker.io)\n"
        "  --registry-tag-ttl TTL  a registry's tag is fresh this long where no rule gives a\n"
        "                         ttl, then asked again with a HEAD (default 1m)\n"
        "  --registry-hold-max DURATION  a registry's 429 (or 503 with Retry-After) holds it\n"
        "                         for the wait asked, at most this long (default 10m)\n"
        "  --mirror REGEX=URL,... URLs matching REGEX are fetched from the first mirror that has\n"
        "                         them (the matched text replaced), else from the origin\n"
        "  --parent URL           a central arca (http[s]://HOST[:PORT][/PATH]) every download\n"
        "                         is asked of first; the origin when it fails (CLUSTER.md)\n"
        "  --parent-only          never ask the origin directly: only through --parent\n"
        "  --parent-trusted-http  URLs with credentials may go to an http:// parent (else only\n"
        "                         to an https:// one whose certificate verifies)\n"
        "  --parent-cert FILE     the certificate (PEM chain) shown to an https:// --parent that\n"
        "                         requires one (its --tls-client-ca); with --parent-key\n"
        "  --parent-key FILE      its private key (PEM, not encrypted)\n"
        "  --keep-expired TTL     expired objects with an ETag or Last-Modified stay this much\n"
        "                         longer, to be revalidated rather than downloaded (default 7d)\n"
        "  --stale-if-error TTL   an expired object is answered from disk for this long past its\n"
        "                         expiry when upstream fails (no answer, or a status arca\n"
        "                         retries: CACHING.md, When the origin is down);\n"
        "                         0 never (default 1d)\n"
        "  --negative-ttl TTL     a 404 or 410 from upstream answers this long, upstream not\n"
        "                         asked again; never for a URL with credentials (default 0:\n"
        "                         never; at most 1d)\n"
        "  --stale-while-revalidate TTL\n"
        "                         an object expired less than this is answered from disk at once\n"
        "                         while one revalidation runs behind (default 0: off)\n"
        "  --origin-failures N    attempts in a row whose connection was refused or timed out\n"
        "                         to hold a host down: its misses fail at once, its expired\n"
        "                         objects answer stale, one probe at a time tries it; 0 never\n"
        "                         (default 3)\n"
        "  --confirm-ttl TTL      how long a signed URL upstream accepted is remembered, at most\n"
        "                         (default 10m; never past the signature's own expiry)\n"
        "  --server URL           (client commands) http[s]://HOST[:PORT][/PATH] or HOST:PORT;\n"
        "                         else the listen of --config FILE, else ARCA_SERVER, else\n"
        "                         /etc/arca/arca.ini's, else default http://127.0.0.1:8001\n"
        "  --cacert FILE          (client commands) the CA (PEM) an https:// server is checked\n"
        "                         against (else CURL_CA_BUNDLE, else the system's store)\n"
        "  --cert FILE            (client commands) a client certificate (PEM) shown to an\n"
        "                         https:// --server that requires one (its --tls-client-ca);\n"
        "                         with --key\n"
        "  --key FILE             its private key (PEM, not encrypted)\n"
        "  --prefix URL           (purge) every object under URL; no host (http://) needs --all\n"
        "  --all                  (purge --prefix) a prefix with no host: every URL is meant\n"
        "  --ttl TTL              (prefetch) keep the objects this long\n"
        "  --wait                 (prefetch) wait for each download's outcome; exit 1 if any\n"
        "                         failed\n"
        "  --timeout DURATION     (prefetch --wait) give up waiting after this long (default 1h)\n"
        "  --json                 (cluster-status, images, rules test) print JSON for scripts\n"
        "  --client ADDR          (rules test) say whether this address may fetch the URL\n"
        "\n"
        "A number past its range is refused with the range (e.g. --stall-timeout 1s..1d).\n"
        "SIGHUP reopens the access log and reloads --allow-network, --quota, --default-ttl,\n"
        "--negative-ttl, --registry-tag-ttl, --registry-hold-max, --stale-if-error,\n"
        "--stale-while-revalidate, --upstream-rate, --log-level, the admin token and the TLS\n"
        "files (--tls-cert, --tls-key, --tls-client-ca, --parent-cert, --parent-key); other\n"
        "options need a restart (the log names them).\n"
        "SIGUSR1 reopens the access log and nothing else (for logrotate).");
}

void config_print_help(void)
{
    print_serving();
    print_limits();
    print_keys_and_commands();
}
