// SPDX-License-Identifier: AGPL-3.0-only
/*
 * ebpfsentinel-agent: without a command, the daemon; with one, a REST client
 * of a running agent (interfaces.md §1.1).
 */
#include "agent/agent.h"
#include "cli/args.h"
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
	static struct es_args a;

	es_args_parse(argc, argv, getenv("EBPFSENTINEL_TOKEN"), &a);
	switch (a.action) {
	case ES_ARGS_HELP: es_cli_usage(stdout); return 0;
	case ES_ARGS_VERSION: printf("ebpfsentinel-agent %s\n", ES_VERSION); return 0;
	case ES_ARGS_USAGE_ERROR:
		fprintf(stderr, "error: %s\n\nFor more information, try '--help'.\n", a.error);
		return 2;
	case ES_ARGS_CLIENT: return es_cli_main(a.cmdc, a.cmdv, a.token, a.json_out);
	case ES_ARGS_DAEMON:
	default: return es_daemon_run(&a.daemon);
	}
}
