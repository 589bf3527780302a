// SPDX-License-Identifier: AGPL-3.0-only
/* The agent's own client commands and the list of every command table. */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

static int run_version(const struct es_cli *c, int argc, char **argv)
{
	printf("ebpfsentinel-agent %s\n", ES_VERSION);
	return 0;
}

static int run_health(const struct es_cli *c, int argc, char **argv)
{
	struct es_cli_resp h, r;
	json_t *doc;
	int ret = 0;

	if (argc > 0) {
		fprintf(stderr, "error: unexpected argument '%s' found\n", argv[0]);
		return 2;
	}
	if (es_cli_request(c, "GET", "/healthz", NULL, &h))
		return 1;
	if (h.status != 200) {
		ret = es_cli_fail_status(&h);
		es_cli_resp_free(&h);
		return ret;
	}
	if (es_cli_request(c, "GET", "/readyz", NULL, &r)) {
		es_cli_resp_free(&h);
		return 1;
	}
	/* 503 from /readyz is an answer too: the agent is live but not ready. */
	if ((r.status != 200 && r.status != 503) || !h.body || !r.body) {
		ret = r.status != 200 && r.status != 503 ? es_cli_fail_status(&r) : 1;
		if (ret == 1 && (r.status == 200 || r.status == 503))
			fprintf(stderr, "Error: failed to parse response body\n");
	} else if (c->json) {
		doc = json_pack("{s:O,s:O}", "health", h.body, "ready", r.body);
		es_cli_print(c, doc, NULL, NULL);
		json_decref(doc);
	} else {
		const char *st = json_string_value(json_object_get(h.body, "status"));
		const char *rd = json_string_value(json_object_get(r.body, "status"));

		printf("Health:      %s\n", st ? st : "?");
		printf("Ready:       %s\n", rd ? rd : "?");
		printf("eBPF loaded: %s\n",
		       json_is_true(json_object_get(r.body, "ebpf_loaded")) ? "true" : "false");
	}
	es_cli_resp_free(&h);
	es_cli_resp_free(&r);
	return ret;
}

static int run_metrics(const struct es_cli *c, int argc, char **argv)
{
	struct es_cli_resp r;
	int ret = 0;

	if (argc > 0) {
		fprintf(stderr, "error: unexpected argument '%s' found\n", argv[0]);
		return 2;
	}
	if (es_cli_request(c, "GET", "/metrics", NULL, &r))
		return 1;
	if (r.status != 200)
		ret = es_cli_fail_status(&r);
	else
		fwrite(r.raw, 1, r.raw_len, stdout);
	es_cli_resp_free(&r);
	return ret;
}

static const struct es_cli_cmd agent_cmds[] = {
    {NULL, "version", ES_CLI_CUSTOM, NULL, NULL, NULL, run_version, "print the version"},
    {NULL, "status", ES_CLI_GET, "/api/v1/agent/status", NULL, NULL, NULL, "agent status"},
    {NULL, "health", ES_CLI_CUSTOM, NULL, NULL, NULL, run_health, "liveness and readiness"},
    {NULL, "metrics", ES_CLI_CUSTOM, NULL, NULL, NULL, run_metrics, "Prometheus metrics, verbatim"},
    {0},
};

extern const struct es_cli_cmd audit_cli_cmds[];
extern const struct es_cli_cmd ct_cli_cmds[];
extern const struct es_cli_cmd al_cli_cmds[];
extern const struct es_cli_cmd nat_cli_cmds[];
extern const struct es_cli_cmd routing_cli_cmds[];
extern const struct es_cli_cmd ips_cli_cmds[];
extern const struct es_cli_cmd fw_cli_cmds[];
extern const struct es_cli_cmd rl_cli_cmds[];
extern const struct es_cli_cmd ddos_cli_cmds[];

/* One table per line keeps parallel additions from colliding. */
const struct es_cli_cmd *const es_cli_tables[] = {
    agent_cmds,	      /* agent */
    audit_cli_cmds,   /* audit */
    ct_cli_cmds,      /* conntrack */
    al_cli_cmds,      /* alerting */
    nat_cli_cmds,     /* nat */
    routing_cli_cmds, /* routing */
    ips_cli_cmds,     /* ips */
    fw_cli_cmds,      /* firewall */
    rl_cli_cmds,      /* ratelimit */
    ddos_cli_cmds,    /* ddos */
    NULL,
};
