/* arca's client asking an arca (see cli_ask.h). */
#include "cli/cli_ask.h"
#include "url/url.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Answers arca's client reads are small JSON: a bigger body (not arca's) is cut rather than
 * held in memory. */
#define ANSWER_MAX (4 << 20)

/* The command's --cert and --key, --cacert, and how its server was chosen (one command a
 * process: cli_use_certificate, cli_use_ca, cli_use_origin). */
static const char *client_cert, *client_key, *ca_file, *origin = "--server";

void cli_use_certificate(const char *cert, const char *key)
{
    client_cert = cert;
    client_key = key;
}

void cli_use_ca(const char *cacert)
{
    ca_file = cacert;
}

void cli_use_origin(const char *how)
{
    origin = how;
}

static size_t collect(char *data, size_t size, size_t n, void *arg)
{
    struct buf *b = arg;
    if (b->len + size * n > ANSWER_MAX)
        return 0; /* curl stops: CURLE_WRITE_ERROR */
    buf_addn(b, data, size * n);
    return size * n;
}

/* The one line a command prints when `server` gave no answer: the address tried (and the one
 * its name resolved to, when it is a name), curl's reason, and how to name another arca: a user
 * who ran `arca status` on the wrong host learns --server here, not from --help. */
static void no_answer(CURL *easy, const char *server, CURLcode rc, const char *detail)
{
    char *ip = NULL, resolved[80] = "";
    const char *alert;
    if (curl_easy_getinfo(easy, CURLINFO_PRIMARY_IP, &ip) == CURLE_OK && ip && *ip &&
        !strstr(server, ip))
        snprintf(resolved, sizeof(resolved), " (%s)", ip);
    if ((alert = strstr(detail, " alert "))) { /* it refused us: no certificate, or not ours */
        while (alert > detail && alert[-1] != ':' && alert[-1] != ' ')
            alert--; /* "tlsv13 alert certificate required" */
        fprintf(stderr, "arca: %s%s refused the TLS handshake (%.*s): %s\n", server, resolved,
                (int)strcspn(alert, ","), alert,
                client_cert ? "it does not take the certificate --cert gives"
                            : "it asks for a client certificate: --cert FILE --key FILE");
        return;
    }
    if (rc == CURLE_PEER_FAILED_VERIFICATION) { /* it answered: its certificate is the trouble */
        fprintf(stderr,
                "arca: %s%s: its certificate is not trusted (%s): name the lab's CA with "
                "--cacert FILE, or add it to the system store\n",
                server, resolved, *detail ? detail : curl_easy_strerror(rc));
        return;
    }
    fprintf(stderr,
            "arca: no answer from %s%s (%s): %s; is arca running there? --server URL, "
            "ARCA_SERVER or --config FILE names another\n",
            server, resolved, origin, curl_easy_strerror(rc));
}

long cli_ask(const char *server, const struct call *q, struct buf *body, char *why, size_t whylen,
             CURLcode *code)
{
    char url[16384], auth[600], detail[CURL_ERROR_SIZE] = "";
    struct curl_slist *headers = NULL;
    CURL *easy = curl_easy_init();
    long status = -1;
    CURLcode rc;

    if (!easy)
        return -1;
    snprintf(url, sizeof(url), "%s%s", server, q->path);
    curl_easy_setopt(easy, CURLOPT_URL, url);
    curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, q->method);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, body);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, q->timeout_ms);
    curl_easy_setopt(easy, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(easy, CURLOPT_USERAGENT, "arca/" ARCA_VERSION); /* access logs name us */
    if (client_cert) {
        curl_easy_setopt(easy, CURLOPT_SSLCERT, client_cert);
        curl_easy_setopt(easy, CURLOPT_SSLKEY, client_key);
    }
    if (ca_file)
        curl_easy_setopt(easy, CURLOPT_CAINFO, ca_file);
    else if (getenv("CURL_CA_BUNDLE") && *getenv("CURL_CA_BUNDLE")) /* curl's own name for it */
        curl_easy_setopt(easy, CURLOPT_CAINFO, getenv("CURL_CA_BUNDLE"));
    if (q->token) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", q->token);
        headers = curl_slist_append(headers, auth);
    }
    if (q->payload) {
        headers = curl_slist_append(headers, "Content-Type: application/json");
        curl_easy_setopt(easy, CURLOPT_POSTFIELDS, q->payload);
    }
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, detail); /* the certificate's trouble, named */
    rc = curl_easy_perform(easy);
    if (code)
        *code = rc;
    if (rc != CURLE_OK && why)
        snprintf(why, whylen, "%s", curl_easy_strerror(rc));
    else if (rc != CURLE_OK)
        no_answer(easy, server, rc, detail);
    else
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(easy);
    return status;
}

int cli_first_line(const struct buf *body, const char **text)
{
    *text = body->data ? body->data : "";
    return (int)strcspn(*text, "\n");
}

int cli_refused(const char *subject, long status, const struct buf *body)
{
    const char *text;
    int len = cli_first_line(body, &text);
    /* the admin token refused is arca's word about the caller, not about the URL asked */
    char *shown = subject && status != 401 && status != 403 ? url_shown(subject) : NULL;
    if (shown)
        fprintf(stderr, "arca: %s: %ld: %.*s\n", shown, status, len, text);
    else
        fprintf(stderr, "arca: %ld: %.*s\n", status, len, text);
    free(shown);
    return 1;
}
