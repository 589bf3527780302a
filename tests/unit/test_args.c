// SPDX-License-Identifier: AGPL-3.0-only
/* Command-line handling of interfaces.md §1.1. */
#include <criterion/criterion.h>
#include <string.h>

#include "cli/args.h"

#define PARSE(a, ...)                                                                              \
	do {                                                                                       \
		char *argv_[] = {"ebpfsentinel-agent", __VA_ARGS__, NULL};                         \
		es_args_parse((int)(sizeof(argv_) / sizeof(argv_[0])) - 1, argv_, NULL, a);        \
	} while (0)

Test(args, no_command_runs_the_daemon_with_default_config)
{
	static struct es_args a;
	char *argv[] = {"ebpfsentinel-agent", NULL};

	es_args_parse(1, argv, NULL, &a);
	cr_expect_eq(a.action, ES_ARGS_DAEMON);
	cr_expect_str_eq(a.daemon.config_path, "/etc/ebpfsentinel/config.yaml");
	cr_expect_not(a.daemon.have_level);
}

Test(args, daemon_options)
{
	static struct es_args a;

	PARSE(&a, "-c", "/x.yaml", "--log-level", "WARNING", "--log-format=pretty");
	cr_expect_eq(a.action, ES_ARGS_DAEMON);
	cr_expect_str_eq(a.daemon.config_path, "/x.yaml");
	cr_expect(a.daemon.have_level);
	cr_expect_eq(a.daemon.level, ES_LOG_WARN);
	cr_expect(a.daemon.have_format);
	cr_expect_eq(a.daemon.format, ES_LOG_TEXT);
	PARSE(&a, "--config=/y.yaml", "-l", "trace");
	cr_expect_str_eq(a.daemon.config_path, "/y.yaml");
	cr_expect_eq(a.daemon.level, ES_LOG_TRACE);
}

Test(args, global_options_anywhere)
{
	static struct es_args a;

	PARSE(&a, "status", "--port", "18080", "-o", "json", "--token", "t1");
	cr_expect_eq(a.action, ES_ARGS_CLIENT);
	cr_expect(a.json_out);
	cr_expect_str_eq(a.token, "t1");
	cr_expect_eq(a.cmdc, 3);
	cr_expect_str_eq(a.cmdv[0], "status");
	cr_expect_str_eq(a.cmdv[1], "--port");
	PARSE(&a, "--output", "json", "health");
	cr_expect(a.json_out);
	cr_expect_eq(a.action, ES_ARGS_CLIENT);
}

Test(args, token_from_environment_and_flag_wins)
{
	static struct es_args a;
	char *argv[] = {"ebpfsentinel-agent", "status", NULL};
	char *argv2[] = {"ebpfsentinel-agent", "status", "--token=flag", NULL};

	es_args_parse(2, argv, "envtok", &a);
	cr_expect_str_eq(a.token, "envtok");
	es_args_parse(3, argv2, "envtok", &a);
	cr_expect_str_eq(a.token, "flag");
}

Test(args, usage_errors)
{
	static struct es_args a;

	PARSE(&a, "frobnicate");
	cr_expect_eq(a.action, ES_ARGS_USAGE_ERROR);
	cr_expect_str_eq(a.error, "unrecognized subcommand 'frobnicate'");
	PARSE(&a, "-o", "yaml", "status");
	cr_expect_eq(a.action, ES_ARGS_USAGE_ERROR);
	cr_expect(strstr(a.error, "possible values: table, json"));
	PARSE(&a, "-o", "JSON", "status"); /* exact, lower case */
	cr_expect_eq(a.action, ES_ARGS_USAGE_ERROR);
	PARSE(&a, "--log-level", "verbose");
	cr_expect_eq(a.action, ES_ARGS_USAGE_ERROR);
	PARSE(&a, "--bogus");
	cr_expect_eq(a.action, ES_ARGS_USAGE_ERROR);
	PARSE(&a, "--config");
	cr_expect_eq(a.action, ES_ARGS_USAGE_ERROR);
}

Test(args, help_and_version)
{
	static struct es_args a;

	PARSE(&a, "-h");
	cr_expect_eq(a.action, ES_ARGS_HELP);
	PARSE(&a, "--version");
	cr_expect_eq(a.action, ES_ARGS_VERSION);
	PARSE(&a, "-V");
	cr_expect_eq(a.action, ES_ARGS_VERSION);
}
