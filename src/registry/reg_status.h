/*
 * reg_status.h — what the status JSON (/api/v1/status/, `arca status`) and /metrics show of each
 * registry: its counters (registries.h), its name, whether it is the default and has a login;
 * its URL only to a client that may see URLs. Never a password or a token.
 *
 * Contract: reg_status_install() runs once in main after registries_init(), before any thread;
 * the writers it installs (http_internal.h's http_status_more, http_metrics_more) run on the
 * server's threads and only read the table and its atomics.
 */
#ifndef ARCA_REG_STATUS_H
#define ARCA_REG_STATUS_H

void reg_status_install(void);

#endif
