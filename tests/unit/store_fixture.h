/*
 * store_fixture.h — for the unit suites that need a store: one opened in a fresh directory as arca
 * opens it (the persistence threads started, the index's rows loaded), and closed and removed
 * after.
 */
#ifndef ARCA_STORE_FIXTURE_H
#define ARCA_STORE_FIXTURE_H

#include "config/config.h"
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* `dir` is a mkdtemp template ("/tmp/arca-unit-NAME-XXXXXX"), made again for each open;
 * `before_start` (NULL: none) runs between store_open and store_start. 0, or -1. */
static inline int fixture_store_open(char *dir, void (*before_start)(void))
{
    struct config cfg;
    char err[256];
    if (!mkdtemp(dir))
        return -1;
    config_defaults(&cfg);
    snprintf(cfg.data_dir, sizeof(cfg.data_dir), "%s", dir);
    if (store_open(&cfg, err, sizeof(err)) < 0)
        return -1;
    if (before_start)
        before_start();
    if (store_start(err, sizeof(err)) < 0)
        return -1;
    store_wait_loaded();
    return 0;
}

/* Close the store and remove its directory; the template is ready for the next open. */
static inline int fixture_store_close(char *dir)
{
    char cmd[128];
    int rc;
    store_close();
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    rc = system(cmd);
    memcpy(dir + strlen(dir) - 6, "XXXXXX", 6);
    return rc;
}

/* The expiry sweep's steps (the upstream thread's, taken here by the test) until its round ends:
 * the sweep is then at the table's first slot. */
static inline void sweep_rest_of_round(void)
{
    while (store_expire_step(true) > 0)
        ;
}

/* The expiry sweep over every slot of the table, from wherever an earlier test left it: the rest
 * of its round, then a whole one. */
static inline void sweep_whole_round(void)
{
    sweep_rest_of_round();
    sweep_rest_of_round();
}

#endif
