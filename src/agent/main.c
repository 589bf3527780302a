// SPDX-License-Identifier: AGPL-3.0-only
/*
 * ebpfsentinel-agent: without a command, the daemon; with one, a REST client
 * of a running agent (interfaces.md §1.1).
 */
#include "agent/agent.h"
#include "agent/config.h"
#include "cli/cli.h"
#include "core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "error: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n\nFor more information, try '--help'.\n");
	return 2;
}

/* Value of "--opt V" or "--opt=V"; advances *i. NULL when missing. */
static const char *opt_value(int argc, char **argv, int *i, const char *name)
{
	size_t n = strlen(name);

	if (!strncmp(argv[*i], name, n) && argv[*i][n] == '=')
		return argv[*i] + n + 1;
	if (*i + 1 < argc)
		return argv[++*i];
	return NULL;
}

static bool is_opt(const char *a, const char *lng, const char *shrt)
{
	size_t n = strlen(lng);

	return !strcmp(a, lng) || (shrt && !strcmp(a, shrt)) ||
	       (!strncmp(a, lng, n) && a[n] == '=');
}

int main(int argc, char **argv)
{
	struct es_daemon_opts d = {.config_path = ES_DEFAULT_CONFIG_PATH};
	const char *token = getenv("EBPFSENTINEL_TOKEN");
	bool json_out = false;
	char *cmdv[128];
	int ncmd = 0;
	bool in_cmd = false;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v;

		/* Global options, accepted anywhere on the line. */
		if (is_opt(a, "--token", NULL)) {
			if (!(v = opt_value(argc, argv, &i, "--token")))
				return usage_error(
				    "a value is required for '%s' but none was supplied",
				    "--token <TOKEN>");
			token = v;
			continue;
		}
		if (is_opt(a, "--output", "-o")) {
			if (!(v = opt_value(argc, argv, &i, "--output")))
				return usage_error(
				    "a value is required for '%s' but none was supplied",
				    "--output <OUTPUT>");
			if (!strcmp(v, "json"))
				json_out = true;
			else if (!strcmp(v, "table"))
				json_out = false;
			else
				return usage_error("invalid value '%s' for '--output <OUTPUT>' "
						   "[possible values: table, json]",
						   v);
			continue;
		}
		if (!in_cmd && (!strcmp(a, "-h") || !strcmp(a, "--help"))) {
			es_cli_usage(stdout);
			return 0;
		}
		if (!in_cmd && (!strcmp(a, "-V") || !strcmp(a, "--version"))) {
			printf("ebpfsentinel-agent %s\n", ES_VERSION);
			return 0;
		}
		if (in_cmd) {
			if (ncmd < 127)
				cmdv[ncmd++] = argv[i];
			continue;
		}
		/* Daemon options come before the command word. */
		if (is_opt(a, "--config", "-c")) {
			if (!(d.config_path = opt_value(argc, argv, &i, "--config")))
				return usage_error(
				    "a value is required for '%s' but none was supplied",
				    "--config <CONFIG>");
		} else if (is_opt(a, "--log-level", "-l")) {
			if (!(v = opt_value(argc, argv, &i, "--log-level")))
				return usage_error(
				    "a value is required for '%s' but none was supplied",
				    "--log-level <LOG_LEVEL>");
			if (es_log_level_parse(v, &d.level))
				return usage_error(
				    "invalid value '%s' for '--log-level <LOG_LEVEL>' "
				    "[possible values: error, warn, info, debug, trace]",
				    v);
			d.have_level = true;
		} else if (is_opt(a, "--log-format", NULL)) {
			if (!(v = opt_value(argc, argv, &i, "--log-format")))
				return usage_error(
				    "a value is required for '%s' but none was supplied",
				    "--log-format <LOG_FORMAT>");
			if (es_log_format_parse(v, &d.format))
				return usage_error(
				    "invalid value '%s' for '--log-format <LOG_FORMAT>' "
				    "[possible values: json, text]",
				    v);
			d.have_format = true;
		} else if (a[0] == '-') {
			return usage_error("unexpected argument '%s' found", a);
		} else if (es_cli_is_command(a)) {
			in_cmd = true;
			cmdv[ncmd++] = argv[i];
		} else {
			return usage_error("unrecognized subcommand '%s'", a);
		}
	}
	cmdv[ncmd] = NULL;
	if (in_cmd)
		return es_cli_main(ncmd, cmdv, token, json_out);
	return es_daemon_run(&d);
}
