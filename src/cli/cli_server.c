/* Which arca a client command asks (cli_server.h). */
#include "cli/cli_server.h"
#include "config/config.h"
#include "base/parse.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* "http://HOST[:PORT][/PATH]", "https://..." or "HOST[:PORT][/PATH]": what follows the
 * scheme, when one is given, is read alike. */
int cli_server_normal(const char *given, char *out)
{
    const char *rest = given, *scheme = "http";
    struct url_parts u;
    size_t n;
    if (parse_url(given, strlen(given), &u) != URL_NO_SCHEME) {
        if (url_scheme_is(&u, "https"))
            scheme = "https";
        else if (!url_scheme_is(&u, "http"))
            return -1; /* another scheme, or a bad one (URL_BAD_SCHEME) */
        rest = u.authority;
    }
    n = strlen(rest);
    while (n > 0 && rest[n - 1] == '/')
        n--;
    if (n == 0 || rest[0] == '/' || n + 9 >= CLI_SERVER_MAX || strcspn(rest, "?#") < n)
        return -1;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)rest[i] <= ' ' || rest[i] == 0x7f)
            return -1;
    /* the host and port as every authority is read (parse.h): "bogus:xx" is a usage error,
     * not a server that gives no answer; a login would be sent to nobody */
    size_t alen = strcspn(rest, "/");
    if (parse_url_authority(rest, alen < n ? alen : n, &u) != URL_OK || u.userinfo)
        return -1;
    snprintf(out, CLI_SERVER_MAX, "%s://%.*s", scheme, (int)n, rest);
    return 0;
}

/* The address a client on this host reaches `host` at: a wildcard is loopback. */
static void reachable(const char *host, int port, char *out)
{
    if (!host[0] || !strcmp(host, "0.0.0.0") || !strcmp(host, "*"))
        snprintf(out, CLI_SERVER_MAX, "http://127.0.0.1:%d", port);
    else if (!strcmp(host, "::"))
        snprintf(out, CLI_SERVER_MAX, "http://[::1]:%d", port);
    else if (strchr(host, ':'))
        snprintf(out, CLI_SERVER_MAX, "http://[%s]:%d", host, port);
    else
        snprintf(out, CLI_SERVER_MAX, "http://%s:%d", host, port);
}

/* The listen address `path` says (its defaults where it says none), and its admin token file:
 * 0, or -1 with why. */
static int from_config(const char *path, char *out, char *how, size_t size,
                       struct cli_config_token *token)
{
    static struct config cfg; /* large: not on the stack */
    char err[CONFIG_ERR_LEN];
    int rc = -1;
    config_defaults(&cfg);
    if (config_read_file(&cfg, path, err) < 0) {
        snprintf(how, size, "--config %s: %s", path, err);
    } else {
        reachable(cfg.listen_host, cfg.listen_port, out);
        snprintf(how, size, "listen in %s", path);
        snprintf(token->file, sizeof(token->file), "%s", cfg.admin_token_file);
        config_where(&cfg, "admin-token-file", token->where, sizeof(token->where));
        rc = 0;
    }
    config_free(&cfg);
    return rc;
}

int cli_server_find(const char *config, char *out, char *how, size_t size,
                    struct cli_config_token *token)
{
    const char *env = getenv("ARCA_SERVER");
    token->file[0] = token->where[0] = '\0';
    /* a --config on the command line is this command's own word: a job's ARCA_SERVER must not
     * send an admin token meant for that arca to another one */
    if (config)
        return from_config(config, out, how, size, token);
    if (env && *env) {
        if (cli_server_normal(env, out) < 0) {
            snprintf(how, size,
                     "ARCA_SERVER '%.200s': expected http://HOST[:PORT][/PATH], https://... or "
                     "HOST[:PORT]",
                     env);
            return -1;
        }
        snprintf(how, size, "ARCA_SERVER");
        return 0;
    }
    if (access(CLI_DEFAULT_CONFIG, R_OK) == 0)
        return from_config(CLI_DEFAULT_CONFIG, out, how, size, token);
    snprintf(out, CLI_SERVER_MAX, "http://127.0.0.1:8001");
    snprintf(how, size, "the default: no --server, ARCA_SERVER, --config nor a readable %s",
             CLI_DEFAULT_CONFIG);
    return 0;
}
