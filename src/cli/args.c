// SPDX-License-Identifier: AGPL-3.0-only
#include "cli/args.h"
#include "agent/config.h"
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

static void usage_error(struct es_args *a, const char *fmt, const char *arg)
{
	a->action = ES_ARGS_USAGE_ERROR;
	snprintf(a->error, sizeof(a->error), fmt, arg);
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

void es_args_parse(int argc, char **argv, const char *env_token, struct es_args *a)
{
	bool in_cmd = false;

	memset(a, 0, sizeof(*a));
	a->daemon.config_path = ES_DEFAULT_CONFIG_PATH;
	a->token = env_token;
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i], *v;

		/* Global options, accepted anywhere on the line. */
		if (is_opt(arg, "--token", NULL)) {
			if (!(v = opt_value(argc, argv, &i, "--token")))
				return usage_error(
				    a, "a value is required for '%s' but none was supplied",
				    "--token <TOKEN>");
			a->token = v;
			continue;
		}
		if (is_opt(arg, "--output", "-o")) {
			if (!(v = opt_value(argc, argv, &i, "--output")))
				return usage_error(
				    a, "a value is required for '%s' but none was supplied",
				    "--output <OUTPUT>");
			if (!strcmp(v, "json"))
				a->json_out = true;
			else if (!strcmp(v, "table"))
				a->json_out = false;
			else
				return usage_error(a,
						   "invalid value '%s' for '--output <OUTPUT>' "
						   "[possible values: table, json]",
						   v);
			continue;
		}
		if (in_cmd) {
			if (a->cmdc < 127)
				a->cmdv[a->cmdc++] = argv[i];
			continue;
		}
		if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
			a->action = ES_ARGS_HELP;
			return;
		}
		if (!strcmp(arg, "-V") || !strcmp(arg, "--version")) {
			a->action = ES_ARGS_VERSION;
			return;
		}
		/* Daemon options come before the command word. */
		if (is_opt(arg, "--config", "-c")) {
			if (!(a->daemon.config_path = opt_value(argc, argv, &i, "--config")))
				return usage_error(
				    a, "a value is required for '%s' but none was supplied",
				    "--config <CONFIG>");
		} else if (is_opt(arg, "--log-level", "-l")) {
			if (!(v = opt_value(argc, argv, &i, "--log-level")))
				return usage_error(
				    a, "a value is required for '%s' but none was supplied",
				    "--log-level <LOG_LEVEL>");
			if (es_log_level_parse(v, &a->daemon.level))
				return usage_error(
				    a,
				    "invalid value '%s' for '--log-level <LOG_LEVEL>' "
				    "[possible values: error, warn, info, debug, trace]",
				    v);
			a->daemon.have_level = true;
		} else if (is_opt(arg, "--log-format", NULL)) {
			if (!(v = opt_value(argc, argv, &i, "--log-format")))
				return usage_error(
				    a, "a value is required for '%s' but none was supplied",
				    "--log-format <LOG_FORMAT>");
			if (es_log_format_parse(v, &a->daemon.format))
				return usage_error(
				    a,
				    "invalid value '%s' for '--log-format <LOG_FORMAT>' "
				    "[possible values: json, text]",
				    v);
			a->daemon.have_format = true;
		} else if (arg[0] == '-') {
			return usage_error(a, "unexpected argument '%s' found", arg);
		} else if (es_cli_is_command(arg)) {
			in_cmd = true;
			a->cmdv[a->cmdc++] = argv[i];
		} else {
			return usage_error(a, "unrecognized subcommand '%s'", arg);
		}
	}
	a->cmdv[a->cmdc] = NULL;
	a->action = in_cmd ? ES_ARGS_CLIENT : ES_ARGS_DAEMON;
}
