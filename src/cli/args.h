/* SPDX-License-Identifier: AGPL-3.0-only */
/* Command-line parsing of interfaces.md §1.1 (daemon options, global options,
 * command word), kept apart from main() so it can be tested. */
#ifndef ES_ARGS_H
#define ES_ARGS_H

#include <stdbool.h>

#include "agent/agent.h"

enum es_args_action {
	ES_ARGS_DAEMON = 0,
	ES_ARGS_CLIENT,
	ES_ARGS_HELP,
	ES_ARGS_VERSION,
	ES_ARGS_USAGE_ERROR, /* message in .error, exit 2 */
};

struct es_args {
	enum es_args_action action;
	struct es_daemon_opts daemon;
	const char *token;
	bool json_out;
	char *cmdv[128]; /* command word and its arguments (client) */
	int cmdc;
	char error[256];
};

/* Parse argv; never exits. env_token is EBPFSENTINEL_TOKEN (may be NULL). */
void es_args_parse(int argc, char **argv, const char *env_token, struct es_args *out);

#endif
