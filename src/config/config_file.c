/* The config file (INI) and the command line, read into struct config (see config.h), and the
 * whole checked: where each option was set, the files it names (tokens, credentials), the TLS
 * options together. */
#include "config/config.h"
#include "config/config_internal.h"
#include "base/parse.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A config file is a few kB: anything past this is no config (a log given by mistake). */
#define CONFIG_FILE_MAX (1 << 20)

#define BUCKET_KEYS 6
static const char *const bucket_keys[BUCKET_KEYS + 1] = {
    "url", "region", "credentials", "hide-root", "prefix", "listing-ttl", NULL};

static bool bucket_key_named(const char *name)
{
    for (int k = 0; bucket_keys[k]; k++)
        if (!strcmp(bucket_keys[k], name))
            return true;
    return false;
}

/* A [remote NAME] section's keys (config_remote.c checks their values). */
#define REMOTE_KEYS 3
static const char *const remote_keys[REMOTE_KEYS] = {"url", "kind", "file-hosts"};

/* One read of an INI file: inih calls read_line for each line, then on_ini_line for a key. */
struct ini_ctx {
    struct config *cfg;
    FILE *f;
    const char *file;
    char *err;
    bool failed;      /* inih reads on after an error and reports the first line: keep its reason */
    bool whole;       /* err is a whole line already (an included file's, with its FILE:LINE) */
    int line;         /* the line inih is at */
    int section_line; /* of the last [section] */
    int rule;         /* the [rule NAME] section this file is in (cfg->rules' index), -1: none */
    /* the file that included this one (NULL: a --config), and this file's device and inode:
     * what an include loop is found by */
    const struct ini_ctx *outer;
    int depth;
    dev_t dev;
    ino_t ino;
    int first_line[CONFIG_MAX_OPTIONS];                   /* where this file gave each option */
    int bucket_line[CONFIG_MAX_BUCKETS][BUCKET_KEYS + 1]; /* and each bucket's keys */
    int remote_line[CONFIG_MAX_REMOTES][REMOTE_KEYS];     /* and each remote's */
};

/* Cut a comment that follows a value: '#' or ';' after a blank (inih itself knows only ';'). A
 * comment at a line's start is inih's. */
static void cut_comment(char *line)
{
    for (size_t i = 1; line[i]; i++) {
        if ((line[i] == '#' || line[i] == ';') && (line[i - 1] == ' ' || line[i - 1] == '\t')) {
            line[i] = '\0';
            return;
        }
    }
}

/* Whether the stream is at a line's end (then past it); else past the rest of the line. */
static bool at_line_end(FILE *f)
{
    int ch = fgetc(f);
    if (ch == '\n' || ch == EOF)
        return true;
    while ((ch = fgetc(f)) != EOF && ch != '\n')
        ;
    return false;
}

/* A line that is no KEY = VALUE (no '=' nor ':'), no section, comment or blank: inih would say
 * "syntax error"; say what is expected. Its text is never quoted: a file given by mistake (a
 * token, a TLS key) would be shown in the error, and on SIGHUP in the log. A key alone
 * (`exact-keys`) is named when it is arca's own word. True when so, the reason in ctx->err. */
static bool not_key_value(const char *line, struct ini_ctx *ctx)
{
    char name[64];
    size_t start = strspn(line, " \t"), len = strcspn(line + start, " \t\r\n");
    const struct option *o;
    if (!line[start] || strchr("#;[\r\n", line[start]) || strpbrk(line, "=:"))
        return false;
    bool alone = line[start + len + strspn(line + start + len, " \t\r\n")] == '\0';
    snprintf(name, sizeof(name), "%.*s", (int)len, line + start);
    o = alone && len < sizeof(name) ? config_option(name) : NULL;
    if (!ctx->failed) {
        if (!o && !(alone && bucket_key_named(name)))
            snprintf(ctx->err, CONFIG_ERR_LEN,
                     "not a KEY = VALUE line (a value never goes on over lines)");
        else if ((o && (o->flags & OPT_SWITCH)) || !strcmp(name, "hide-root"))
            snprintf(ctx->err, CONFIG_ERR_LEN, "%s: expected '%s = true' (or false)", name, name);
        else
            snprintf(ctx->err, CONFIG_ERR_LEN, "%s: expected '%s = VALUE'", name, name);
    }
    ctx->failed = true;
    return true;
}

/* Whether the quoted text [q, q + n) of an error came from a config line: a piece of its key,
 * value or section (the whole, or more than a character of it), and not an option's name,
 * which is arca's own word. */
static bool from_line(const char *q, size_t n, const char *const from[3])
{
    char word[64];
    snprintf(word, sizeof(word), "%.*s", (int)n, q);
    if (n == 0 || (n < sizeof(word) && config_option(word)))
        return false;
    for (int i = 0; i < 3; i++) {
        const char *at = from[i] ? memmem(from[i], strlen(from[i]), q, n) : NULL;
        if (at && (n > 1 || strlen(from[i]) == 1))
            return true;
    }
    return false;
}

void config_hide_line(char *err, const char *const from[3])
{
    static const char hidden[] = "(not shown)";
    char out[CONFIG_ERR_LEN];
    size_t o = 0;
    for (const char *p = err; *p && o + 1 < sizeof(out);) {
        const char *close = *p == '\'' ? strchr(p + 1, '\'') : NULL;
        if (close && from_line(p + 1, (size_t)(close - p - 1), from) &&
            o + sizeof(hidden) < sizeof(out)) {
            memcpy(out + o, hidden, sizeof(hidden) - 1);
            o += sizeof(hidden) - 1;
            p = close + 1;
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = '\0';
    memcpy(err, out, o + 1);
}

/* A "[rule NAME]" line begins a rule here, where its line is known (inih tells a section only
 * with its first key, and cuts a long name): 0, or -1 with the reason in ctx->err. Other
 * sections, and a line inih will refuse (no ']'), are left to on_ini_line. */
static int rule_section(const char *line, struct ini_ctx *ctx)
{
    const char *close = strchr(line, ']');
    char name[128];
    if (ctx->failed || strncmp(line, "[rule ", 6) != 0 || !close)
        return 0;
    snprintf(name, sizeof(name), "%.*s", (int)(close - line - 6), line + 6);
    ctx->rule = ctx->cfg->n_rules;
    if (config_rule_begin(ctx->cfg, name, ctx->file, ctx->line, ctx->err) == 0)
        return 0;
    config_hide_line(ctx->err, (const char *const[3]){name, NULL, NULL});
    ctx->failed = true;
    return -1;
}

#define UNKNOWN_SECTION                                                                            \
    "unknown section (arca's are [arca], [rule NAME], [bucket NAME], [registry NAME] and "         \
    "[remote NAME])"

/* The reason a section's name (its line, "[NAME]...") is none of arca's, or NULL: said at its own
 * line, even when no key follows it (inih tells a section only with its first key). */
static const char *unknown_section(const char *line)
{
    const char *name = line + strspn(line, " \t") + 1, *close = strchr(name, ']');
    size_t len = close ? (size_t)(close - name) : 0;
    if (!close || (len == 4 && !strncmp(name, "arca", 4)) || !strncmp(name, "rule ", 5) ||
        !strncmp(name, "bucket ", 7) || !strncmp(name, "registry ", 9) ||
        !strncmp(name, "remote ", 7))
        return NULL; /* arca's, or a line inih refuses itself (no ']') */
    return !strncasecmp(name, "rule", 4) ? UNKNOWN_SECTION "; a rule is [rule NAME]"
                                         : UNKNOWN_SECTION;
}

/* inih's reader: counts lines, cuts comments and indentation, refuses NUL bytes. inih's buffer
 * holds 199 bytes of a line: a longer one would be read as two, so it is refused. */
static char *read_line(char *str, int num, void *stream)
{
    struct ini_ctx *ctx = stream;
    long before = ftell(ctx->f);
    size_t len, indent;
    if (!fgets(str, num, ctx->f))
        return NULL;
    ctx->line++;
    len = strlen(str);
    if (before >= 0 && ftell(ctx->f) - before > (long)len) { /* fgets went past a NUL */
        if (!ctx->failed)
            snprintf(ctx->err, CONFIG_ERR_LEN, "a NUL byte: not a text file");
        ctx->failed = true;
        snprintf(str, (size_t)num, "[\n");
        return str;
    }
    /* Indentation means nothing: inih would take an indented line for the value before it
     * going on (its multi-line mode), silently. */
    indent = strspn(str, " \t");
    memmove(str, str + indent, len - indent + 1);
    len -= indent;
    if (len > 0 && str[len - 1] != '\n' && !at_line_end(ctx->f)) {
        if (!ctx->failed)
            snprintf(ctx->err, CONFIG_ERR_LEN, "line longer than %d bytes", num - 1);
        ctx->failed = true;
        snprintf(str, (size_t)num, "[\n"); /* a syntax error, so that inih reports this line */
        return str;
    }
    cut_comment(str);
    if (str[strspn(str, " \t")] == '[') {
        const char *unknown = unknown_section(str);
        ctx->section_line = ctx->line;
        if (unknown && !ctx->failed) {
            snprintf(ctx->err, CONFIG_ERR_LEN, "%s", unknown);
            ctx->failed = true;
        }
        if (unknown || rule_section(str, ctx) < 0)
            snprintf(str, (size_t)num, "[\n"); /* as above: inih reports this line */
    } else if (not_key_value(str, ctx))
        snprintf(str, (size_t)num, "[\n"); /* as above: inih reports this line */
    return str;
}

/* 0 the first time this file gives `*first`; else the error. */
static int once(struct ini_ctx *ctx, int *first, const char *what, const char *name)
{
    if (*first) {
        snprintf(ctx->err, CONFIG_ERR_LEN, "%s%s given twice (first at line %d)", what, name,
                 *first);
        return -1;
    }
    *first = ctx->line;
    return 0;
}

static int on_bucket_key(struct ini_ctx *ctx, const char *bucket, const char *key,
                         const char *value)
{
    struct config *cfg = ctx->cfg;
    int known = cfg->n_buckets, i, k;
    char what[80];
    if (config_bucket_key(cfg, bucket, key, value, ctx->err) < 0)
        return -1;
    for (i = 0; strcmp(cfg->buckets[i].name, bucket) != 0; i++)
        ;
    if (i >= known) { /* new: it starts at its section */
        snprintf(cfg->bucket_origins[i].file, sizeof(cfg->bucket_origins[i].file), "%s", ctx->file);
        cfg->bucket_origins[i].line = ctx->section_line;
    }
    for (k = 0; strcmp(bucket_keys[k], key) != 0; k++)
        ;
    if (k == 2)
        cfg->bucket_credentials_line[i] = ctx->line;
    snprintf(what, sizeof(what), "bucket %s: ", bucket);
    return once(ctx, &ctx->bucket_line[i][k], what, key);
}

/* A key of a [remote NAME] section, once: a second url would silently be the remote's. */
static int on_remote_key(struct ini_ctx *ctx, const char *remote, const char *key,
                         const char *value)
{
    struct config *cfg = ctx->cfg;
    int i, k;
    char what[80];
    if (config_remote_key(cfg, remote, key, value, ctx->file, ctx->section_line, ctx->err) < 0)
        return -1;
    for (i = 0; strcmp(cfg->remotes[i].name, remote) != 0; i++)
        ;
    for (k = 0; strcmp(remote_keys[k], key) != 0; k++)
        ;
    snprintf(what, sizeof(what), "remote %s: ", remote);
    return once(ctx, &ctx->remote_line[i][k], what, key);
}

static int read_file(struct config *cfg, const char *path, const struct ini_ctx *outer,
                     char err[CONFIG_ERR_LEN]);

/* Whether the file at `st` is one being read (this one or one that included it): then the
 * chain that comes back to it is the error. */
static bool include_loop(struct ini_ctx *ctx, const struct stat *st, const char *path)
{
    const char *chain[CONFIG_INCLUDE_DEPTH + 1];
    int n = ctx->depth + 1;
    bool loop = false;
    for (const struct ini_ctx *c = ctx; c; c = c->outer) {
        chain[c->depth] = c->file;
        loop = loop || (c->dev == st->st_dev && c->ino == st->st_ino);
    }
    if (loop) {
        char text[CONFIG_ERR_LEN];
        config_include_chain(chain, n, path, text, sizeof(text));
        snprintf(ctx->err, CONFIG_ERR_LEN, "include loop: %.240s", text);
    }
    return loop;
}

/* One file an include names, read where the include is: 0, or -1 with ctx->err (whole when
 * the error is inside that file). */
static int include_one(struct ini_ctx *ctx, const char *path)
{
    char inner[CONFIG_ERR_LEN];
    struct stat st;
    int rc;
    if (stat(path, &st) == 0 && include_loop(ctx, &st, path))
        return -1;
    if (ctx->depth + 1 >= CONFIG_INCLUDE_DEPTH) {
        snprintf(ctx->err, CONFIG_ERR_LEN, "include %.200s: includes nested deeper than %d", path,
                 CONFIG_INCLUDE_DEPTH);
        return -1;
    }
    rc = read_file(ctx->cfg, path, ctx, inner);
    if (rc == -2) /* not read at all: this line's error */
        snprintf(ctx->err, CONFIG_ERR_LEN, "include %.160s: %.80s", path, inner);
    else if (rc < 0) {
        memcpy(ctx->err, inner, CONFIG_ERR_LEN);
        ctx->whole = true;
    }
    return rc < 0 ? -1 : 0;
}

/* `include = NAME`: the file, or a glob's files in sorted order (glob(3)), read at this point,
 * a relative NAME from this file's folder. A glob matching nothing is said, never skipped: a
 * rules.d/ left empty by a failed copy must not start a cache without its rules. */
static int on_include(struct ini_ctx *ctx, const char *name)
{
    char path[1024];
    glob_t g;
    int rc;
    if (!name[0]) {
        snprintf(ctx->err, CONFIG_ERR_LEN, "include: a file name or glob expected");
        return -1;
    }
    if (!ctx->ino) { /* a stream (a test's, the fuzzer's): no folder to read others from */
        snprintf(ctx->err, CONFIG_ERR_LEN, "include: only a config file includes others");
        return -1;
    }
    if (config_include_path(ctx->file, name, path, sizeof(path)) < 0) {
        snprintf(ctx->err, CONFIG_ERR_LEN, "include: name too long");
        return -1;
    }
    if (!config_include_is_glob(name))
        return include_one(ctx, path);
    rc = glob(path, 0, NULL, &g); /* a folder that is missing matches nothing */
    if (rc != 0) {
        snprintf(ctx->err, CONFIG_ERR_LEN, "include %.200s: %s", path,
                 rc == GLOB_NOMATCH ? "no file matches" : "out of memory");
        if (rc != GLOB_NOMATCH)
            globfree(&g);
        return -1;
    }
    rc = 0;
    for (size_t i = 0; i < g.gl_pathc && rc == 0; i++)
        rc = include_one(ctx, g.gl_pathv[i]);
    globfree(&g);
    return rc;
}

/* An option of the table without a setter: a --registry, --registry-default or --remote,
 * whose setters keep where each NAME was given. */
static int named_option(struct config *cfg, const struct option *o, const char *v, const char *file,
                        int line, char *err)
{
    if (!strcmp(o->name, "remote"))
        return config_remote_option(cfg, v, file, line, err);
    return config_registry_option(cfg, o, v, file, line, err);
}

/* Whether a key = value line of [arca], a [bucket NAME], [registry NAME] or [rule NAME] is
 * refused: then the reason is in ctx->err. */
static bool key_refused(struct ini_ctx *ctx, const char *section, const char *name,
                        const char *value)
{
    const struct option *o = config_option(name);
    if (!strncmp(section, "bucket ", 7))
        return on_bucket_key(ctx, section + 7, name, value) != 0;
    if (!strncmp(section, "registry ", 9))
        return config_registry_key(ctx->cfg, section + 9, name, value, ctx->file, ctx->section_line,
                                   ctx->line, ctx->err) != 0;
    if (!strncmp(section, "remote ", 7))
        return on_remote_key(ctx, section + 7, name, value) != 0;
    if (!strncmp(section, "rule ", 5) && ctx->rule >= 0)
        return config_rule_add_key(ctx->cfg, ctx->rule, name, value, ctx->line, ctx->err) != 0;
    if (section[0] && strcmp(section, "arca") != 0) {
        /* [rules x], [Rule x], [rule]: meant as a rule */
        snprintf(ctx->err, CONFIG_ERR_LEN, "%s%s", UNKNOWN_SECTION,
                 !strncasecmp(section, "rule", 4) ? "; a rule is [rule NAME]" : "");
        return true;
    }
    if (!o || (o->flags & OPT_COMMAND_LINE)) {
        config_unknown_option(name, "", true, ctx->err);
        return true;
    }
    return (!(o->flags & OPT_REPEATABLE) &&
            once(ctx, &ctx->first_line[config_option_index(o)], "--", name) < 0) ||
           (o->set ? config_apply(ctx->cfg, o, value, ctx->file, ctx->line, ctx->err)
                   : named_option(ctx->cfg, o, value, ctx->file, ctx->line, ctx->err)) < 0;
}

static int on_ini_line(void *user, const char *section, const char *name, const char *value)
{
    struct ini_ctx *ctx = user;
    if (ctx->failed)
        return 1;
    if (!strcmp(name, "include")) /* its errors name files, never a line's text */
        ctx->failed = on_include(ctx, value) < 0;
    else if ((ctx->failed = key_refused(ctx, section, name, value)))
        config_hide_line(ctx->err, (const char *const[3]){name, value, section});
    return !ctx->failed;
}

/* "FILE:LINE: REASON" into err[CONFIG_ERR_LEN], the reason cut to fit (a bound every compiler
 * can see, where a format's would be a truncation warning at some optimisation level). */
static void error_at(char *err, const char *name, int line, const char *reason)
{
    int n = snprintf(err, CONFIG_ERR_LEN, "%.120s:%d: ", name, line);
    size_t at = n > 0 && n < CONFIG_ERR_LEN ? (size_t)n : 0;
    size_t len = strnlen(reason, CONFIG_ERR_LEN - 1 - at);
    memcpy(err + at, reason, len);
    err[at + len] = '\0';
}

/* Read `f`, file `name` (at `st`; NULL: no file), included by `outer` (NULL: none). */
static int read_stream(struct config *cfg, FILE *f, const char *name, const struct stat *st,
                       const struct ini_ctx *outer, char err[CONFIG_ERR_LEN])
{
    char inner[CONFIG_ERR_LEN] = "syntax error";
    struct ini_ctx ctx = {.cfg = cfg,
                          .f = f,
                          .file = name,
                          .err = inner,
                          .rule = -1,
                          .outer = outer,
                          .depth = outer ? outer->depth + 1 : 0,
                          .dev = st ? st->st_dev : 0,
                          .ino = st ? st->st_ino : 0};
    int rc = ini_parse_stream(read_line, &ctx, on_ini_line, &ctx);
    if (rc == 0 && ferror(f)) { /* a read error is no end of file: the rest is not read */
        snprintf(err, CONFIG_ERR_LEN, "%s: cannot read config file: %s", name, strerror(EIO));
        return -1;
    }
    if (rc == 0)
        return 0;
    if (ctx.whole)
        memcpy(err, inner, CONFIG_ERR_LEN);
    else /* the file and line first: the reason is what gets cut when both are long */
        error_at(err, name, rc, inner);
    return -1;
}

int config_read_stream(struct config *cfg, FILE *f, const char *name, char err[CONFIG_ERR_LEN])
{
    return read_stream(cfg, f, name, NULL, NULL, err);
}

/* Each file read is named in cfg->files_read, in order; past their bound, the load fails (a
 * glob over a tree too big to be a config). */
static const char *note_file_read(struct config *cfg, const char *path)
{
    if (cfg->n_files_read >= CONFIG_MAX_FILES)
        return "more than 64 config files read";
    if (strlen(path) >= sizeof(cfg->files_read[0]))
        return "its name is longer than 255 bytes";
    snprintf(cfg->files_read[cfg->n_files_read++], sizeof(cfg->files_read[0]), "%s", path);
    return NULL;
}

void config_describe_files(const struct config *cfg, char *out, size_t size)
{
    size_t len = 0;
    if (size > 0)
        out[0] = '\0';
    for (int i = 0; i < cfg->n_files_read && len < size; i++) {
        int k = snprintf(out + len, size - len, "%s%s", i ? ", " : "", cfg->files_read[i]);
        len = k < 0 ? size : len + (size_t)k;
    }
}

int config_read_file(struct config *cfg, const char *path, char err[CONFIG_ERR_LEN])
{
    char why[CONFIG_ERR_LEN];
    int rc = read_file(cfg, path, NULL, why);
    if (rc == -2)
        snprintf(err, CONFIG_ERR_LEN, "%.160s: %.80s", path, why);
    else if (rc < 0)
        memcpy(err, why, CONFIG_ERR_LEN);
    return rc < 0 ? -1 : 0;
}

/* 0; -1 with a whole line in err (an error inside the file); -2 when it cannot be read, err
 * then "cannot read config file: why" (the caller says which file, and where it was named). */
static int read_file(struct config *cfg, const char *path, const struct ini_ctx *outer,
                     char err[CONFIG_ERR_LEN])
{
    /* O_NONBLOCK: opening a FIFO would wait for a writer (and SIGHUP's reload with it) */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    FILE *f = NULL;
    struct stat st;
    const char *why = NULL;
    int rc = -1;
    if (fd < 0 || fstat(fd, &st) != 0)
        why = strerror(errno);
    else if (!S_ISREG(st.st_mode)) /* a directory, a FIFO, /dev/zero: no config is made of them */
        why = "not a regular file";
    else if (st.st_size > CONFIG_FILE_MAX)
        why = "larger than 1 MiB";
    else if (!(why = note_file_read(cfg, path)) && !(f = fdopen(fd, "r")))
        why = strerror(errno);
    else if (!why)
        rc = read_stream(cfg, f, path, &st, outer, err);
    if (why) {
        snprintf(err, CONFIG_ERR_LEN, "cannot read config file: %s", why);
        rc = -2;
    }
    if (f)
        fclose(f); /* and fd */
    else if (fd >= 0)
        close(fd);
    return rc;
}

/* One "--NAME[=VALUE]" of argv[*i] (a VALUE may be the next argument, then *i moves on). */
static enum config_action load_arg(struct config *cfg, int argc, char **argv, int *i, char *err)
{
    char name[64];
    const char *arg = argv[*i], *value, *eq;
    const struct option *o;
    int rc;
    if (!strcmp(arg, "-h"))
        return CONFIG_HELP;
    if (arg[0] != '-') {
        snprintf(err, CONFIG_ERR_LEN, "unexpected argument '%s'", arg);
        return CONFIG_ERROR;
    }
    eq = strchr(arg, '=');
    snprintf(name, sizeof(name), "%.*s", (int)(eq ? (size_t)(eq - arg) : strlen(arg)), arg);
    o = strncmp(name, "--", 2) == 0 ? config_option(name + 2) : NULL;
    if (!o) {
        bool two = name[1] == '-';
        config_unknown_option(name + 1 + two, two ? "--" : "-", false, err);
        return CONFIG_ERROR;
    }
    if (!strcmp(o->name, "help") || !strcmp(o->name, "version"))
        return !strcmp(o->name, "help") ? CONFIG_HELP : CONFIG_VERSION;
    if (eq)
        value = eq + 1;
    else if (o->flags & OPT_SWITCH)
        value = "true";
    else if (*i + 1 < argc)
        value = argv[++*i];
    else {
        snprintf(err, CONFIG_ERR_LEN, "%s needs a value", name);
        return CONFIG_ERROR;
    }
    if (!o->set && strcmp(o->name, "config") != 0) { /* --registry, --remote, ... */
        rc = named_option(cfg, o, value, "", 0, err);
    } else if (!o->set) { /* --config */
        rc = config_read_file(cfg, value, err);
        snprintf(cfg->config_file, sizeof(cfg->config_file), "%s", value);
    } else {
        rc = config_apply(cfg, o, value, "", 0, err);
    }
    return rc < 0 ? CONFIG_ERROR : CONFIG_SERVE;
}

int config_read_token(const char *path, char *out, size_t size)
{
    char line[1024] = "";
    size_t n, start = 0;
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    if (!fgets(line, sizeof(line), f))
        line[0] = '\0';
    fclose(f);
    n = strlen(line);
    while (n > 0 && isspace((unsigned char)line[n - 1]))
        n--;
    while (start < n && isspace((unsigned char)line[start]))
        start++;
    if (n - start >= size)
        return -2;
    memcpy(out, line + start, n - start);
    out[n - start] = '\0';
    return (int)(n - start);
}

int config_finish(struct config *cfg, char err[CONFIG_ERR_LEN])
{
    const char *wrong = config_finish_identity(cfg, err);
    if (wrong) { /* "FILE:LINE: " first when a file set it, and then not its value */
        char where[CONFIG_ERR_LEN];
        config_where(cfg, wrong, where, sizeof(where));
        const char *value = !strcmp(wrong, "cache-name")         ? cfg->cache_name
                            : !strcmp(wrong, "outgoing-address") ? cfg->outgoing_address
                                                                 : NULL;
        if (where[0])
            config_hide_line(err, (const char *const[3]){value, NULL, NULL});
        memmove(err + strlen(where), err, CONFIG_ERR_LEN - strlen(where));
        memcpy(err, where, strlen(where));
        err[CONFIG_ERR_LEN - 1] = '\0';
        return -1;
    }
    for (int i = 0; i < cfg->n_buckets; i++) {
        const struct bucket *b = &cfg->buckets[i];
        char line[1024];
        size_t n;
        if (!b->url[0]) {
            config_bucket_where(cfg, i, false, err, CONFIG_ERR_LEN);
            n = strlen(err);
            snprintf(err + n, CONFIG_ERR_LEN - n, "bucket %s: url missing", b->name);
            return -1;
        }
        if (b->credentials[0] && config_read_token(b->credentials, line, sizeof(line)) <= 0) {
            config_bucket_where(cfg, i, true, err, CONFIG_ERR_LEN);
            n = strlen(err);
            snprintf(err + n, CONFIG_ERR_LEN - n, "bucket %s: cannot read credentials file '%s'",
                     b->name, b->credentials);
            return -1;
        }
    }
    return config_registry_finish(cfg, err) < 0 ? -1 : config_remote_finish(cfg, err);
}

void config_where(const struct config *cfg, const char *name, char *out, size_t size)
{
    const struct option *o = config_option(name);
    const struct config_origin *where = o ? &cfg->origins[config_option_index(o)] : NULL;
    if (where && where->line > 0)
        snprintf(out, size, "%s:%d: ", where->file, where->line);
    else if (size > 0)
        out[0] = '\0';
}

void config_bucket_where(const struct config *cfg, int i, bool credentials, char *out, size_t size)
{
    const struct config_origin *where = &cfg->bucket_origins[i];
    int line = credentials && cfg->bucket_credentials_line[i] ? cfg->bucket_credentials_line[i]
                                                              : where->line;
    if (line > 0)
        snprintf(out, size, "%s:%d: ", where->file, line);
    else if (size > 0)
        out[0] = '\0';
}

/* Whether two listening addresses would take the same connections: the same port, and the same
 * address or a wildcard on either side (0.0.0.0 and :: take every address of the port). */
static bool overlap(const char *host_a, int port_a, const char *host_b, int port_b)
{
    static const char *const wild[] = {"0.0.0.0", "::", "", NULL};
    bool any = false;
    for (int i = 0; wild[i]; i++)
        any = any || !strcmp(host_a, wild[i]) || !strcmp(host_b, wild[i]);
    return port_a == port_b && (any || !strcmp(host_a, host_b));
}

/* Each --tls-listen is an address of its own: not --listen's, nor another's (serve could not
 * bind it; check-config says so first). */
static int overlapping_listener(const struct config *cfg, char err[CONFIG_ERR_LEN])
{
    char where[64], a[80], b[80];
    for (int i = 0; i < cfg->n_tls_listen; i++) {
        const struct listen_addr *t = &cfg->tls_listen[i];
        const char *other = NULL;
        if (overlap(t->host, t->port, cfg->listen_host, cfg->listen_port)) {
            other = "--listen";
            format_host_port(cfg->listen_host, cfg->listen_port, b, sizeof(b));
        }
        for (int j = 0; j < i && !other; j++)
            if (overlap(t->host, t->port, cfg->tls_listen[j].host, cfg->tls_listen[j].port)) {
                other = "--tls-listen";
                format_host_port(cfg->tls_listen[j].host, cfg->tls_listen[j].port, b, sizeof(b));
            }
        if (!other)
            continue;
        config_where(cfg, "tls-listen", where, sizeof(where));
        format_host_port(t->host, t->port, a, sizeof(a));
        snprintf(err, CONFIG_ERR_LEN,
                 "%.64s--tls-listen %.56s overlaps %s %.56s: give each its own port", where, a,
                 other, b);
        return -1;
    }
    return 0;
}

/* The TLS options go together: a listener needs a certificate and its key, and a certificate
 * needs a listener to show it on. */
static int finish_tls(const struct config *cfg, char err[CONFIG_ERR_LEN])
{
    const char *missing = !cfg->tls_cert[0] ? "--tls-cert" : !cfg->tls_key[0] ? "--tls-key" : NULL;
    const char *given = cfg->tls_cert[0]        ? "--tls-cert"
                        : cfg->tls_key[0]       ? "--tls-key"
                        : cfg->tls_client_ca[0] ? "--tls-client-ca"
                                                : NULL;
    char where[64];
    if (cfg->n_tls_listen > 0 && missing) {
        config_where(cfg, "tls-listen", where, sizeof(where));
        snprintf(err, CONFIG_ERR_LEN,
                 "%s--tls-listen needs --tls-cert (the certificate chain, PEM) and --tls-key (its "
                 "private key): %s is missing",
                 where, missing);
        return -1;
    }
    if (overlapping_listener(cfg, err) < 0)
        return -1;
    if (cfg->n_tls_listen == 0 && given) {
        config_where(cfg, given + 2, where, sizeof(where));
        snprintf(err, CONFIG_ERR_LEN, "%s%s is given but no --tls-listen address to serve HTTPS on",
                 where, given);
        return -1;
    }
    return 0;
}

/* Whether `host` (no brackets) and `port` name an address of this arca: one it listens on by
 * that very address, or loopback while it listens on every address. A name or another
 * machine's address is not judged here (Via stops a loop through it at run time). */
static bool names_self(const char *host, int port, const char *listen_host, int listen_port)
{
    bool wild = !listen_host[0] || !strcmp(listen_host, "0.0.0.0") || !strcmp(listen_host, "::");
    bool loopback =
        !strncmp(host, "127.", 4) || !strcmp(host, "::1") || !strcasecmp(host, "localhost");
    return port == listen_port && (!strcasecmp(host, listen_host) || (wild && loopback));
}

/* --parent naming this arca itself: every miss would ask itself, once (508). */
static bool parent_is_self(const struct config *cfg)
{
    struct url_parts u;
    char host[256];
    int port;
    if (parse_url(cfg->parent, strlen(cfg->parent), &u) != URL_OK)
        return false;
    port = url_port(&u);
    if (u.host[0] == '[') /* [v6]: the listeners' addresses are written without brackets */
        snprintf(host, sizeof(host), "%.*s", (int)u.host_len - 2, u.host + 1);
    else
        snprintf(host, sizeof(host), "%.*s", (int)u.host_len, u.host);
    if (names_self(host, port, cfg->listen_host, cfg->listen_port))
        return true;
    for (int i = 0; i < cfg->n_tls_listen; i++)
        if (names_self(host, port, cfg->tls_listen[i].host, cfg->tls_listen[i].port))
            return true;
    return false;
}

/* --parent-only, --parent-trusted-http, --parent-cert and --parent-key say how to use --parent:
 * without it they mean nothing, and a site that meant "never the origin" must not quietly go
 * there. A certificate goes with its key (their files: rules_compile). */
static int finish_parent(const struct config *cfg, char err[CONFIG_ERR_LEN])
{
    const char *given = cfg->parent_only           ? "--parent-only"
                        : cfg->parent_trusted_http ? "--parent-trusted-http"
                        : cfg->parent_cert[0]      ? "--parent-cert"
                        : cfg->parent_key[0]       ? "--parent-key"
                                                   : NULL;
    char where[64];
    if (!cfg->parent_cert[0] != !cfg->parent_key[0]) {
        config_where(cfg, cfg->parent_cert[0] ? "parent-cert" : "parent-key", where, sizeof(where));
        snprintf(err, CONFIG_ERR_LEN, "%s%s", where,
                 cfg->parent_cert[0]
                     ? "--parent-cert needs --parent-key (its private key)"
                     : "--parent-key needs --parent-cert (the certificate it goes with)");
        return -1;
    }
    if (cfg->parent[0] && parent_is_self(cfg)) {
        config_where(cfg, "parent", where, sizeof(where));
        snprintf(err, CONFIG_ERR_LEN,
                 "%.60s--parent %.100s is this arca's own address: name the central arca", where,
                 cfg->parent);
        return -1;
    }
    if (cfg->parent[0] || !given)
        return 0;
    config_where(cfg, given + 2, where, sizeof(where));
    snprintf(err, CONFIG_ERR_LEN, "%s%s is given but no --parent URL", where, given);
    return -1;
}

/* "unknown command 'stauts'; did you mean status?": the commands are main.c's and cli.c's. */
static void unknown_command(const char *name, char err[CONFIG_ERR_LEN])
{
    static const char *const commands[] = {"serve",    "check-config", "status", "cluster-status",
                                           "prefetch", "purge",        "rules",  NULL};
    const char *near = parse_nearest_name(name, commands);
    if (near)
        snprintf(err, CONFIG_ERR_LEN, "unknown command '%s'; did you mean %s?", name, near);
    else
        snprintf(err, CONFIG_ERR_LEN, "unknown command '%s' (try --help)", name);
}

enum config_action config_load(struct config *cfg, int argc, char **argv, char err[CONFIG_ERR_LEN])
{
    int i = 1;
    config_defaults(cfg);
    config_identity_defaults(cfg);
    if (argc >= 2 && (!strcmp(argv[1], "serve") || !strcmp(argv[1], "check-config")))
        i = 2;
    else if (argc < 2 || argv[1][0] != '-') {
        unknown_command(argc < 2 ? "" : argv[1], err);
        return argc < 2 ? CONFIG_HELP : CONFIG_ERROR;
    }
    for (; i < argc; i++) {
        enum config_action a = load_arg(cfg, argc, argv, &i, err);
        if (a != CONFIG_SERVE)
            return a;
    }
    return finish_tls(cfg, err) < 0 || finish_parent(cfg, err) < 0 || config_finish(cfg, err) < 0
               ? CONFIG_ERROR
               : CONFIG_SERVE;
}
