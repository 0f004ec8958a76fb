/*
 * unit_tmp.h — where the unit suites make their files: under $TMPDIR when it is set (and
 * usable: unit_tmp_base), else /tmp.
 * scripts/test points it at a tmpfs: on an ext4 without a journal (this project's machines),
 * every new inode is checked against those deleted in the last seconds, and the store suites,
 * which make and remove thousands of files a second, spent most of their time there
 * (test_store: 11.6 s and 7.7 CPU seconds on it, 17.5 s and 13.7 in another run;
 * 5.8 s and 3.5 on a tmpfs).
 */
#ifndef ARCA_UNIT_TMP_H
#define ARCA_UNIT_TMP_H

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Room for a suite's path or mkdtemp template under $TMPDIR: scripts/test's is at most 27 bytes.
 * Under one too long to leave room, the suite's files stay in /tmp. */
#define UNIT_TMP_MAX 64

/* $TMPDIR when it names a directory by an absolute path of plain characters (the suites put
 * their paths in shell commands, unquoted: "rm -rf %s"), else NULL. */
static inline const char *unit_tmp_base(void)
{
    const char *base = getenv("TMPDIR");
    struct stat sb;
    if (!base || base[0] != '/' || stat(base, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return NULL;
    for (const char *c = base; *c; c++)
        if (!isalnum((unsigned char)*c) && !strchr("/._-", *c))
            return NULL;
    return base;
}

/* `path`, a suite's "/tmp/NAME" (a path or a template), moved under $TMPDIR when unit_tmp_base
 * gives it and the result fits `size`; left as it is otherwise. */
static inline char *unit_tmp(char *path, size_t size)
{
    const char *base = unit_tmp_base();
    if (!base || strncmp(path, "/tmp/", 5) != 0)
        return path;
    size_t base_len = strlen(base), name_len = strlen(path + 5);
    if (base_len + 1 + name_len >= size)
        return path;
    memmove(path + base_len + 1, path + 5, name_len + 1);
    memcpy(path, base, base_len);
    path[base_len] = '/';
    return path;
}

#endif
