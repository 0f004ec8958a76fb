/*
 * cli_server.h — which arca a client command asks when no --server names one: the plain listen
 * address of --config FILE, else ARCA_SERVER, else that of the package's /etc/arca/arca.ini
 * when it can be read, else http://127.0.0.1:8001 (what the command line says first, then the
 * environment, then the host's defaults); and how it was chosen, so that the first "no answer"
 * names what was tried. The configuration file read also tells its admin-token-file: the admin
 * commands' token when neither --admin-token-file nor ARCA_ADMIN_TOKEN gives one (the token of
 * the arca that file describes, never one ARCA_SERVER would take elsewhere).
 *
 * Contract: cli_server_normal() is pure; cli_server_find() reads the environment and at most one
 * configuration file, once, before anything is asked; it never opens the token file.
 */
#ifndef ARCA_CLI_SERVER_H
#define ARCA_CLI_SERVER_H

#include <stddef.h>

#define CLI_SERVER_MAX 1024
#define CLI_DEFAULT_CONFIG "/etc/arca/arca.ini"

/* The admin-token-file of the configuration read: `file` "" when it names none (or none was
 * read), `where` "FILE:LINE: " where it was set ("" on no line), to begin an error about it. */
struct cli_config_token {
    char file[1024];
    char where[320];
};

/* The base URL of an arca as a user gives it, into out[CLI_SERVER_MAX]: http:// or https://
 * (any case), or no scheme at all (http); a host, maybe a port and a path prefix (a reverse
 * proxy's); trailing slashes dropped. No query, fragment, space or control byte. 0, or -1. */
int cli_server_normal(const char *given, char *out);

/* The server to ask without --server into out[CLI_SERVER_MAX], and how it was chosen into
 * how[size] ("ARCA_SERVER", "listen in FILE", "the default: ..."); the admin-token-file of the
 * file it read into *token. `config`: --config's FILE (NULL: none given). 0; -1 with a one-line
 * why in `how` (ARCA_SERVER malformed, --config's file unreadable or wrong): the command's usage
 * error. */
int cli_server_find(const char *config, char *out, char *how, size_t size,
                    struct cli_config_token *token);

#endif
