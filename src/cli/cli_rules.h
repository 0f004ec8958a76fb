/*
 * cli_rules.h — `arca rules test [--config FILE] [--client ADDR] [--json] [serve options] URL`:
 * the rule that applies to URL, each term and where it came from, the cache key, the sources in
 * order and the rules that lose (rules/explain.h), as aligned text or, with --json, the JSON
 * GET /api/v1/rules/ answers. The configuration is loaded and its rules compiled as serve does;
 * nothing else is started, no server is asked.
 *
 * Contract: runs in its own process, alone; returns the exit code: 0 answered, 1 a configuration
 * serve would refuse (its one-line error on stderr), 2 bad usage or a URL that is not a URL.
 */
#ifndef ARCA_CLI_RULES_H
#define ARCA_CLI_RULES_H

/* argv[1] is "rules". */
int cli_rules_main(int argc, char **argv);

#endif
