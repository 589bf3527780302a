// SPDX-License-Identifier: AGPL-3.0-only
/* Configuration loading: defaults, the agent section and every error form of
 * interfaces.md §1.3 and §2, with key paths and line numbers. */
#include <criterion/criterion.h>
#include <stdio.h>

#include "unit.h"

Test(config, minimal_file_gets_documented_defaults)
{
	char err[1024];
	struct es_config *c = unit_cfg(MIN_AGENT, err, sizeof(err));

	cr_assert(c, "%s", err);
	cr_expect_eq(c->agent.n_interfaces, 1);
	cr_expect_str_eq(c->agent.interfaces[0], "veth0");
	cr_expect_str_eq(c->agent.bind_address, "127.0.0.1");
	cr_expect_eq(c->agent.http_port, 8080);
	cr_expect_eq(c->agent.grpc_port, 50051);
	cr_expect_eq(c->agent.metrics_port, 9090);
	cr_expect_eq(c->agent.log_level, ES_LOG_INFO);
	cr_expect_eq(c->agent.log_format, ES_LOG_JSON);
	cr_expect_not(c->agent.swagger_ui);
	cr_expect_null(c->agent.ebpf_program_dir);
	cr_expect_not(c->agent.tls.enabled);
	es_config_put(c);
}

Test(config, every_section_name_is_accepted)
{
	static const char *const sections[] = {
	    "firewall",	 "ids",		"ips",	 "dlp",	     "dns",	     "ratelimit",
	    "ddos",	 "threatintel", "l7",	 "alerting", "audit",	     "auth",
	    "conntrack", "nat",		"zones", "routing",  "loadbalancer", "geoip",
	};
	char yaml[2048], err[1024];
	size_t n = 0;

	n += (size_t)snprintf(yaml + n, sizeof(yaml) - n, MIN_AGENT);
	for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++)
		n += (size_t)snprintf(yaml + n, sizeof(yaml) - n, "%s:\n  enabled: false\n",
				      sections[i]);
	struct es_config *c = unit_cfg(yaml, err, sizeof(err));

	cr_assert(c, "%s", err);
	es_config_put(c);
}

Test(config, full_agent_section)
{
	char err[1024];
	struct es_config *c =
	    unit_cfg("agent:\n"
		     "  interfaces: [eth1, eth2]\n"
		     "  bind_address: '::1'\n"
		     "  http_port: 1\n"
		     "  grpc_port: 2\n"
		     "  metrics_port: 3\n"
		     "  log_level: debug\n"
		     "  log_format: text\n"
		     "  swagger_ui: true\n"
		     "  ebpf_program_dir: /opt/bpf\n"
		     "  tls: {enabled: true, cert_path: /c.pem, key_path: /k.pem}\n",
		     err, sizeof(err));

	cr_assert(c, "%s", err);
	cr_expect_eq(c->agent.n_interfaces, 2);
	cr_expect_str_eq(c->agent.bind_address, "::1");
	cr_expect_eq(c->agent.http_port, 1);
	cr_expect_eq(c->agent.log_level, ES_LOG_DEBUG);
	cr_expect_eq(c->agent.log_format, ES_LOG_TEXT);
	cr_expect(c->agent.swagger_ui);
	cr_expect_str_eq(c->agent.ebpf_program_dir, "/opt/bpf");
	cr_expect(c->agent.tls.enabled);
	cr_expect_str_eq(c->agent.tls.key_path, "/k.pem");
	es_config_put(c);
}

struct err_case {
	const char *desc;
	const char *yaml;
	const char *expect; /* exact rendered error */
};

static struct err_case err_cases[] = {
    {"missing agent section", "firewall: {}\n",
     "YAML parse error: missing field `agent` at line 1 column 1"},
    {"missing interfaces", "agent:\n  http_port: 8080\n",
     "YAML parse error: agent: missing field `interfaces` at line 2 column 3"},
    {"empty interface list", "agent:\n  interfaces: []\n",
     "validation error: agent.interfaces: at least one interface is required at line 2 column 3"},
    {"unknown top-level key", "agent:\n  interfaces: [a]\ntls: {}\n",
     "YAML parse error: unknown field `tls`, expected one of `agent`, `firewall`, `ids`, `ips`, "
     "`l7`, `alerting`, `ratelimit`, `threatintel`, `audit`, `auth`, `dlp`, `dns`, `ddos`, "
     "`conntrack`, `nat`, `zones`, `routing`, `loadbalancer`, `geoip` at line 3 column 1"},
    {"grpc port conflicts with http", "agent:\n  interfaces: [a]\n  grpc_port: 8080\n",
     "validation error: agent.grpc_port: port 8080 conflicts with agent.http_port at line 3 "
     "column 3"},
    {"metrics port conflicts with grpc",
     "agent:\n  interfaces: [a]\n  grpc_port: 7000\n  metrics_port: 7000\n",
     "validation error: agent.metrics_port: port 7000 conflicts with agent.grpc_port at line 4 "
     "column 3"},
    {"port is not a number", "agent:\n  interfaces: [a]\n  http_port: web\n",
     "YAML parse error: agent.http_port: invalid type: string \"web\", expected u16 at line 3 "
     "column 3"},
    {"port out of range", "agent:\n  interfaces: [a]\n  http_port: 70000\n",
     "YAML parse error: agent.http_port: invalid value: integer `70000`, expected u16 at line 3 "
     "column 3"},
    {"log level must be exact lower case", "agent:\n  interfaces: [a]\n  log_level: INFO\n",
     "invalid value 'INFO' for field 'agent.log_level': expected one of error, warn, info, "
     "debug, trace at line 3 column 3"},
    {"log format", "agent:\n  interfaces: [a]\n  log_format: pretty\n",
     "invalid value 'pretty' for field 'agent.log_format': expected one of json, text at line 3 "
     "column 3"},
    {"swagger_ui must be a boolean", "agent:\n  interfaces: [a]\n  swagger_ui: yes\n",
     "YAML parse error: agent.swagger_ui: invalid type: string \"yes\", expected a boolean at "
     "line 3 column 3"},
    {"bind address must be an IP literal", "agent:\n  interfaces: [a]\n  bind_address: localhost\n",
     "validation error: agent.bind_address: invalid IP address 'localhost' at line 3 column 3"},
    {"tls without cert", "agent:\n  interfaces: [a]\n  tls:\n    enabled: true\n",
     "validation error: agent.tls.cert_path: TLS is enabled but cert_path is not set at line 4 "
     "column 5"},
    {"tls without key", "agent:\n  interfaces: [a]\n  tls:\n    enabled: true\n    cert_path: /c\n",
     "validation error: agent.tls.key_path: TLS is enabled but key_path is not set at line 4 "
     "column 5"},
    {"interface entry of the wrong type", "agent:\n  interfaces: [a, 7]\n",
     "YAML parse error: agent.interfaces[1]: invalid type: integer `7`, expected a string at "
     "line 2 column 19"},
    {"section must be a map", MIN_AGENT "firewall: [1]\n",
     "YAML parse error: firewall: invalid type: sequence, expected a map at line 3 column 1"},
    {"yaml syntax error", "agent:\n  interfaces: [a\n",
     "YAML parse error: did not find expected ',' or ']' while parsing a flow sequence at line 3 "
     "column 1"},
    {"duplicate key", "agent:\n  interfaces: [a]\n  interfaces: [b]\n",
     "YAML parse error: duplicate entry with key \"interfaces\" at line 3 column 3"},
    {"count limit on firewall rules", NULL,
     "validation error: firewall.rules: count 4097 exceeds maximum 4096 at line 4 column 3"},
    {"empty file", "", "YAML parse error: invalid type: unit value, expected struct AgentConfig"},
};

/* One table-driven test: Criterion runs parameterised tests in new processes,
 * where pointers into this table would not survive. */
static void check_error_case(const struct err_case *tc)
{
	char err[2048];
	char *big = NULL;
	const char *yaml = tc->yaml;
	struct es_config *c;

	if (!yaml) {
		/* 4097 rules, one per line. */
		size_t cap = 64 + 4097 * 64, n = 0;

		big = malloc(cap);
		n += (size_t)snprintf(big + n, cap - n, MIN_AGENT "firewall:\n  rules:\n");
		for (int i = 0; i < 4097; i++)
			n += (size_t)snprintf(big + n, cap - n,
					      "    - {id: r%d, priority: 1, action: deny}\n", i);
		yaml = big;
	}
	c = unit_cfg(yaml, err, sizeof(err));
	cr_expect_null(c, "%s: accepted", tc->desc);
	cr_expect_str_eq(err, tc->expect, "%s", tc->desc);
	es_config_put(c);
	free(big);
}

Test(config, error_forms)
{
	for (size_t i = 0; i < sizeof(err_cases) / sizeof(err_cases[0]); i++)
		check_error_case(&err_cases[i]);
}

Test(config, unknown_section_keys_warn_but_load)
{
	char err[1024];
	struct es_config *c = unit_cfg("agent:\n  interfaces: [a]\n  host: 0.0.0.0\n  port: 1\n"
				       "ratelimit:\n  mode: whatever\n",
				       err, sizeof(err));

	cr_assert(c, "%s", err);
	cr_expect_geq(c->n_warnings, 1);
	bool found = false;

	for (size_t i = 0; i < c->n_warnings; i++)
		if (strstr(c->warnings[i], "agent.host"))
			found = true;
	cr_expect(found, "no warning names agent.host");
	es_config_put(c);
}

Test(config, yaml_scalars_resolve_like_the_core_schema)
{
	char err[1024];
	/* Quoted numbers are strings, plain ones numbers; hex works. */
	struct es_config *c = unit_cfg("agent:\n  interfaces: ['8080']\n  http_port: 0x1F90\n"
				       "  grpc_port: 0o1750\n",
				       err, sizeof(err));

	cr_assert(c, "%s", err);
	cr_expect_str_eq(c->agent.interfaces[0], "8080");
	cr_expect_eq(c->agent.http_port, 8080);
	cr_expect_eq(c->agent.grpc_port, 1000);
	es_config_put(c);
}

Test(config, anchors_and_aliases)
{
	char err[1024];
	struct es_config *c = unit_cfg("x-ifs: &ifs [a, b]\n", err, sizeof(err));

	/* Unknown top-level key, even as an anchor holder: rejected. */
	cr_expect_null(c);
	c = unit_cfg("agent:\n  interfaces: &ifs [a, b]\nzones:\n  enabled: false\n  extra: *ifs\n",
		     err, sizeof(err));
	cr_assert(c, "%s", err);
	es_config_put(c);
}

Test(config, effective_config_masks_secrets)
{
	char err[1024];
	struct es_config *c =
	    unit_cfg(MIN_AGENT "  tls: {enabled: true, cert_path: /c, key_path: /k}\n"
			       "auth:\n  api_keys: [{name: a, key: sekrit, role: admin}]\n"
			       "alerting:\n  smtp: {host: h, from_address: f, password: pw}\n"
			       "  routes: [{name: w, destination: webhook, min_severity: low,"
			       " webhook_url: 'http://x', webhook_headers: {X-Token: t0k}}]\n"
			       "threatintel:\n  feeds: [{id: f, auth_header: 'Bearer z'}]\n",
		     err, sizeof(err));
	cr_assert(c, "%s", err);
	json_t *j = es_config_to_json(c);
	char *s = json_dumps(j, JSON_COMPACT);

	cr_expect_null(strstr(s, "sekrit"), "%s", s);
	cr_expect_null(strstr(s, "\"pw\""), "%s", s);
	cr_expect_null(strstr(s, "t0k"), "%s", s);
	cr_expect_null(strstr(s, "Bearer z"), "%s", s);
	cr_expect_null(strstr(s, "\"/k\""), "%s", s);
	cr_expect_not_null(strstr(s, "\"cert_path\":\"/c\""), "%s", s);
	cr_expect_not_null(strstr(s, "\"http_port\":8080"), "defaults filled: %s", s);
	free(s);
	json_decref(j);
	es_config_put(c);
}

Test(config, io_error_form)
{
	struct es_error e;
	char msg[512];

	cr_assert_null(es_config_load("/nonexistent/dir/x.yaml", &e));
	es_error_format(&e, msg, sizeof(msg));
	cr_expect_str_eq(msg, "I/O error reading config: No such file or directory (os error 2)");
}
