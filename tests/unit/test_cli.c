// SPDX-License-Identifier: AGPL-3.0-only
/* The client commands against a real HTTP server on loopback. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/http.h"
#include "cli/cli.h"

static int port;
static char port_s[16];

static void h_status(const struct es_req *req, struct es_resp *resp)
{
	es_resp_json(resp, 200,
		     json_pack("{s:s,s:I,s:b,s:i,s:b,s:s}", "version", "0.1.0", "uptime_seconds",
			       (json_int_t)42, "ebpf_loaded", 1, "rule_count", 3,
			       "firewall_enabled", 1, "firewall_mode", "block"));
}

static void h_health(const struct es_req *req, struct es_resp *resp)
{
	es_resp_json(resp, 200, json_pack("{s:s}", "status", "ok"));
}

static void h_ready(const struct es_req *req, struct es_resp *resp)
{
	es_resp_json(resp, 503, json_pack("{s:s,s:b}", "status", "not_ready", "ebpf_loaded", 0));
}

static void h_missing(const struct es_req *req, struct es_resp *resp)
{
	es_resp_error(resp, 404, "RULE_NOT_FOUND", "rule not found: %s", req->param(req, "id"));
}

static const struct es_route routes[] = {
    {"GET", "/api/v1/agent/status", h_status, 0},
    {"GET", "/healthz", h_health, ES_RT_PUBLIC},
    {"GET", "/readyz", h_ready, ES_RT_PUBLIC},
    {"DELETE", "/api/v1/firewall/rules/{id}", h_missing, 0},
    {NULL, NULL, NULL, 0},
};

static void start(void)
{
	port = 20000 + getpid() % 20000;
	snprintf(port_s, sizeof(port_s), "%d", port);
	es_http_add_routes(routes);
	cr_assert_eq(es_http_start(&(struct es_http_opts){.bind_address = "127.0.0.1",
							  .port = (uint16_t)port}),
		     0);
	cr_redirect_stdout();
	cr_redirect_stderr();
}

static void stop(void)
{
	es_http_stop();
}

TestSuite(cli, .init = start, .fini = stop);

Test(cli, status_as_json_is_the_server_document)
{
	char *argv[] = {"status", "--port", port_s, NULL};

	cr_assert_eq(es_cli_main(3, argv, NULL, true), 0);
	fflush(stdout);
	cr_assert_stdout_eq_str(
	    "{\n  \"version\": \"0.1.0\",\n  \"uptime_seconds\": 42,\n"
	    "  \"ebpf_loaded\": true,\n  \"rule_count\": 3,\n"
	    "  \"firewall_enabled\": true,\n  \"firewall_mode\": \"block\"\n}\n");
}

Test(cli, status_as_table)
{
	char *argv[] = {"status", "--port", port_s, NULL};

	cr_assert_eq(es_cli_main(3, argv, NULL, false), 0);
	fflush(stdout);
	cr_assert_stdout_eq_str("version           0.1.0\nuptime_seconds    42\n"
				"ebpf_loaded       true\nrule_count        3\n"
				"firewall_enabled  true\nfirewall_mode     block\n");
}

Test(cli, health_wraps_both_documents_and_accepts_503)
{
	char *argv[] = {"health", "--port", port_s, NULL};

	cr_assert_eq(es_cli_main(3, argv, NULL, true), 0);
	fflush(stdout);
	cr_assert_stdout_eq_str("{\n  \"health\": {\n    \"status\": \"ok\"\n  },\n"
				"  \"ready\": {\n    \"status\": \"not_ready\",\n"
				"    \"ebpf_loaded\": false\n  }\n}\n");
}

Test(cli, port_from_environment_and_flag_wins)
{
	char *argv[] = {"status", NULL};
	char *argv2[] = {"status", "--port", port_s, NULL};

	setenv("EBPFSENTINEL_PORT", port_s, 1);
	cr_expect_eq(es_cli_main(1, argv, NULL, true), 0);
	setenv("EBPFSENTINEL_PORT", "1", 1);
	cr_expect_eq(es_cli_main(3, argv2, NULL, true), 0);
	cr_expect_eq(es_cli_main(1, argv, NULL, true), 1);
	unsetenv("EBPFSENTINEL_PORT");
	fflush(stderr);
	cr_expect_stderr_eq_str(
	    "Error: cannot connect to agent at http://127.0.0.1:1 — is the agent running?\n");
}

Test(cli, standard_error_body_is_reported_with_code_and_status)
{
	char *argv[] = {"firewall", "--port", port_s, "delete", "fw-9", NULL};

	/* The firewall group arrives with the firewall domain's command table; call
	 * the generic request path directly. */
	struct es_cli c = {.port = port};
	struct es_cli_resp r;

	(void)argv;
	snprintf(c.host, sizeof(c.host), "127.0.0.1");
	cr_assert_eq(es_cli_request(&c, "DELETE", "/api/v1/firewall/rules/fw-9", NULL, &r), 0);
	cr_expect_eq(es_cli_fail_status(&r), 1);
	es_cli_resp_free(&r);
	fflush(stderr);
	cr_expect_stderr_eq_str("Error: rule not found: fw-9 (RULE_NOT_FOUND): 404 Not Found\n");
}

Test(cli, usage_errors_exit_2)
{
	char *argv[] = {"status", "--port", "notaport", NULL};
	char *argv2[] = {"status", "extra", NULL};

	cr_expect_eq(es_cli_main(3, argv, NULL, false), 2);
	cr_expect_eq(es_cli_main(2, argv2, NULL, false), 2);
}
