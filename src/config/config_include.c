/* `include = NAME` of the INI file: what a name means and how a loop is told. The reading
 * itself is config_file.c's; these are pure, for its units. */
#include "config/config_internal.h"

#include <stdio.h>
#include <string.h>

int config_include_path(const char *including, const char *name, char *out, size_t size)
{
    const char *slash = strrchr(including, '/');
    /* the including file's folder, its slash kept ("/" for a file at the root) */
    int dir = name[0] == '/' || !slash ? 0 : (int)(slash - including + 1);
    int n = snprintf(out, size, "%.*s%s", dir, including, name);
    return n < 0 || (size_t)n >= size ? -1 : 0;
}

bool config_include_is_glob(const char *name)
{
    return strpbrk(name, "*?[") != NULL;
}

void config_include_chain(const char *const *files, int n, const char *again, char *out,
                          size_t size)
{
    size_t len = 0;
    if (size == 0)
        return;
    out[0] = '\0';
    for (int i = 0; i <= n && len < size; i++) {
        int k = snprintf(out + len, size - len, "%s%s", i ? " includes " : "",
                         i < n ? files[i] : again);
        len = k < 0 ? size : len + (size_t)k;
    }
}
