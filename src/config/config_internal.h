/*
 * config_internal.h — what config_file.c (the INI file and the command line, read) takes from
 * config.c (the options: their table, their setters and what is known of each value) and from
 * config_rules.c (the [rule NAME] sections). Not for other modules: they use config.h.
 */
#ifndef ARCA_CONFIG_INTERNAL_H
#define ARCA_CONFIG_INTERNAL_H

#include "config/config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum value_kind { V_DURATION, V_DURATION_MS, V_SIZE, V_INT };

struct option;
typedef int (*option_setter)(struct config *cfg, const struct option *o, const char *v, char *err);

enum {
    OPT_REPEATABLE = 1,   /* each use adds one (a network, a rule); else one value per file */
    OPT_SWITCH = 2,       /* bare on the command line means true */
    OPT_RELOADABLE = 4,   /* SIGHUP applies it (main.c reload) */
    OPT_COMMAND_LINE = 8, /* not a key of the INI file */
};

/* An option: how it is set, the field(s) of struct config it fills (SIGHUP compares them to
 * name what needs a restart) and, for numbers, the unit and range. The table is below the
 * setters, before config_set. */
struct option {
    const char *name;
    option_setter set;
    unsigned flags;
    size_t offset, size;
    enum value_kind kind; /* numbers: an int for V_INT, an int64_t otherwise */
    int64_t min, max;
};

/* The option called `name` (without dashes); NULL when none is. */
const struct option *config_option(const char *name);
/* Its place in config.c's table, which is struct config's origins' order. */
size_t config_option_index(const struct option *o);
/* Apply option `o` and remember where it came from (file "" and line 0: the command line). */
int config_apply(struct config *cfg, const struct option *o, const char *v, const char *file,
                 int line, char *err);
/* "unknown option '--NAME'; did you mean --OTHER?" (dashes as the user wrote them). */
void config_unknown_option(const char *name, const char *dashes, bool in_file, char *err);
/* One key of an INI section [bucket NAME]. */
int config_bucket_key(struct config *cfg, const char *name, const char *key, const char *v,
                      char *err);

/* config_registry.c: --registry NAME=URL or --registry-default NAME (options of the table
 * without a setter: the readers call this one, so that config.c names nothing of the file), one
 * key of an INI section [registry NAME] (url, username, password-file, aliases), and the whole
 * checked once every option is in (a registry without a URL, a password file that cannot be
 * read, an alias another registry answers to, two NAMEs of one URL, a default naming none: each
 * begun with "FILE:LINE: " where the file gave it). `file` and `line` say where (file "" and line
 * 0: the command line; a key: its section's line, and `key_line` its own): a NAME is given in one
 * place, a --registry or a section, and a second place is an error naming both. */
int config_registry_option(struct config *cfg, const struct option *o, const char *v,
                           const char *file, int line, char *err);
int config_registry_key(struct config *cfg, const char *name, const char *key, const char *v,
                        const char *file, int section_line, int key_line, char *err);
int config_registry_finish(const struct config *cfg, char *err);

/* config.c: where a file or the command line gives a NAME (file "" and line 0: the command
 * line), as config_registry.c and config_remote.c keep it. */
struct config_origin config_origin_at(const char *file, int line);
/* A list `v` of items separated by ',' (blanks around each dropped), each accepted by ok(), at
 * most `max`, into items[] (each under CONFIG_REGISTRY_NAME_MAX bytes), *n of them: 0. -1 at the
 * first item refused (*bad, *bad_len: its text), or the one past `max` (the same). A
 * registry's aliases, a remote's file-hosts. */
int config_name_list(const char *v, bool (*ok)(const char *item, size_t len),
                     char (*items)[CONFIG_REGISTRY_NAME_MAX], int max, int *n, const char **bad,
                     size_t *bad_len);

/* config_remote.c: --remote NAME=URL or NAME:KIND=URL, one key of an INI section [remote NAME]
 * (url, kind, file-hosts), and the whole checked once every option is in (a remote without a
 * URL, file-hosts on another kind than pypi), as config_registry.c does for registries: a NAME is
 * given in one place. Whether a NAME is one of arca's own first path segments is the route
 * table's to say (web/routes.h: routes_name_taken, asked at start and by check-config). */
int config_remote_option(struct config *cfg, const char *v, const char *file, int line, char *err);
int config_remote_key(struct config *cfg, const char *name, const char *key, const char *v,
                      const char *file, int section_line, char *err);
int config_remote_finish(const struct config *cfg, char *err);

/* config_rules.c: a [rule NAME] section begins at `line` of `file` (a name given before is an
 * error); one KEY = VALUE of rule `rule` (its index in cfg->rules: the section being read, which
 * an include inside it may have followed by others; an unknown key, or one given twice but
 * allow-network, is an error). */
int config_rule_begin(struct config *cfg, const char *name, const char *file, int line, char *err);
int config_rule_add_key(struct config *cfg, int rule, const char *key, const char *value, int line,
                        char *err);

/* config_identity.c, from config_finish: --cache-name checked (an sf-token, config_sf_token)
 * and --outgoing-address read into cfg->outgoing (config_outgoing_parse); NULL, or the option
 * that is wrong with the reason in err (the caller says where it was set). */
const char *config_finish_identity(struct config *cfg, char *err);
/* The host's name as --cache-name's default (config_load, after config_defaults). */
void config_identity_defaults(struct config *cfg);

/* config_include.c: what `include = NAME` in file `including` names: NAME itself when it is
 * absolute, else NAME in the including file's folder (the working one when it names none);
 * -1 when it does not fit in `size`. */
int config_include_path(const char *including, const char *name, char *out, size_t size);
/* Whether NAME is a glob (glob(3): '*', '?' or '['). */
bool config_include_is_glob(const char *name);
/* "a.ini includes b.ini includes a.ini": the chain of `n` files being read (outermost first)
 * and `again`, the one an include names once more, bounded by `size`. */
void config_include_chain(const char *const *files, int n, const char *again, char *out,
                          size_t size);

#endif
