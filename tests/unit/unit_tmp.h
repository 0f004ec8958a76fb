/*
 * unit_tmp.h — where the unit suites make their files: under $TMPDIR when it is set, else /tmp.
 * scripts/test points it at a tmpfs: on an ext4 without a journal (this project's machines),
 * every new inode is checked against those deleted in the last seconds, and the store suites,
 * which make and remove thousands of files a second, spent most of their time there
 * (test_store: 7-14 CPU seconds on ext4, 3.5 on a tmpfs).
 */
#ifndef ARCA_UNIT_TMP_H
#define ARCA_UNIT_TMP_H

#include <stdlib.h>
#include <string.h>

/* Room for a suite's path or mkdtemp template under $TMPDIR: scripts/test's is 26 bytes. Under
 * one too long to leave room, the suite's files stay in /tmp. */
#define UNIT_TMP_MAX 64

/* `path`, a suite's "/tmp/NAME" (a path or a template), moved under $TMPDIR when it is set and
 * the result fits `size`; left as it is otherwise. */
static inline char *unit_tmp(char *path, size_t size)
{
    const char *base = getenv("TMPDIR");
    if (!base || !base[0] || strncmp(path, "/tmp/", 5) != 0)
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
