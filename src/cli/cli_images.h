/*
 * cli_images.h — `arca images` (the images a running arca keeps: GET /api/v1/images/, every
 * page, as a table or --json) and `arca purge IMAGE` (POST /api/v1/purge/?image=IMAGE, the
 * admin token's): what cli.c runs for them, docs/COMMANDS.md's "images".
 *
 * Contract: cli.h's. Results on stdout, one-line errors on stderr; the exit code returned: 0,
 * 1 refused or failed, 2 a reference the server cannot read (bad usage).
 */
#ifndef ARCA_CLI_IMAGES_H
#define ARCA_CLI_IMAGES_H

#include <stdbool.h>

int cli_images(const char *server, bool json);
/* `token`: the admin token read (cli.c's load_token). */
int cli_purge_image(const char *server, const char *token, const char *ref);

#endif
