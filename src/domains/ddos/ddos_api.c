// SPDX-License-Identifier: AGPL-3.0-only
/* DDoS REST routes (interfaces.md §3.4 "DDoS") and CLI rows. */
#include "api/route.h"
#include "cli/cli.h"
#include "core/audit.h"
#include "domains/ddos/ddos.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void h_status(const struct es_req *req, struct es_resp *resp)
{
	es_resp_json(resp, 200, ddos_status_json());
}

static void h_attacks(const struct es_req *req, struct es_resp *resp)
{
	es_resp_json(resp, 200, ddos_attacks_json());
}

static void h_history(const struct es_req *req, struct es_resp *resp)
{
	uint64_t limit;

	if (es_query_u64(req, resp, "limit", 100, &limit))
		return;
	es_resp_json(resp, 200, ddos_history_get((size_t)limit));
}

static void h_policies(const struct es_req *req, struct es_resp *resp)
{
	es_resp_json(resp, 200, ddos_policies_json());
}

static void h_create(const struct es_req *req, struct es_resp *resp)
{
	struct ddos_policy p;
	struct es_cfg c;
	json_t *doc;
	char id[300];
	int r;

	es_cfg_init(&c, NULL);
	if (ddos_policy_parse(&c, req->body, "", true, &p)) {
		es_resp_cfg_error(resp, &c, "policy");
		es_cfg_release(&c);
		return;
	}
	es_cfg_release(&c);
	doc = ddos_policy_json(&p);
	snprintf(id, sizeof(id), "%s", p.id);
	r = ddos_policies_add(&p);
	if (r == -EEXIST)
		es_resp_error(resp, 409, "DUPLICATE_RULE", "duplicate rule: %s", id);
	else if (r == -ENOSPC)
		es_resp_error(resp, 400, "VALIDATION_ERROR",
			      "invalid policy: count exceeds maximum %d", DDOS_MAX_POLICIES);
	else if (r)
		es_resp_error(resp, 500, "INTERNAL_ERROR", "cannot add policy: %s", strerror(-r));
	if (r) {
		ddos_policy_clear(&p);
		json_decref(doc);
		return;
	}
	es_audit_rule_json("ddos", id, "rule_added", NULL, doc);
	es_resp_json(resp, 201, doc);
}

static void h_delete(const struct es_req *req, struct es_resp *resp)
{
	const char *id = req->param(req, "id");
	json_t *before = NULL;

	if (ddos_policies_delete(id, &before)) {
		es_resp_error(resp, 404, "RULE_NOT_FOUND", "rule not found: %s", id);
		return;
	}
	es_audit_rule_json("ddos", id, "rule_removed", before, NULL);
	json_decref(before);
	resp->status = 204;
}

const struct es_route ddos_routes[] = {
    {"GET", "/api/v1/ddos/status", h_status, 0},
    {"GET", "/api/v1/ddos/attacks", h_attacks, 0},
    {"GET", "/api/v1/ddos/attacks/history", h_history, 0},
    {"GET", "/api/v1/ddos/policies", h_policies, 0},
    {"POST", "/api/v1/ddos/policies", h_create, ES_RT_WRITE | ES_RT_JSON},
    {"DELETE", "/api/v1/ddos/policies/{id}", h_delete, ES_RT_WRITE},
    {NULL, NULL, NULL, 0},
};

/* ---- CLI ---------------------------------------------------------------------------- */

static const char *const attack_cols[] = {
    "id", "attack_type", "status", "current_pps", "peak_pps", "total_packets", "source_count", NULL,
};
static const char *const policy_cols[] = {
    "id",
    "attack_type",
    "detection_threshold_pps",
    "mitigation_action",
    "enabled",
    "auto_block_duration_secs",
    NULL,
};

static int run_history(const struct es_cli *c, int argc, char **argv)
{
	struct es_cli_resp r;
	char path[128];
	long limit = 100;
	int ret = 0;

	for (int i = 0; i < argc; i++) {
		char *end;

		if (!strcmp(argv[i], "--limit") && i + 1 < argc) {
			limit = strtol(argv[++i], &end, 10);
			if (*end || limit < 0) {
				fprintf(stderr,
					"error: invalid value '%s' for '--limit <LIMIT>'\n\n"
					"For more information, try '--help'.\n",
					argv[i]);
				return 2;
			}
		} else {
			fprintf(stderr,
				"error: unexpected argument '%s' found\n\nFor more information, "
				"try '--help'.\n",
				argv[i]);
			return 2;
		}
	}
	snprintf(path, sizeof(path), "/api/v1/ddos/attacks/history?limit=%ld", limit);
	if (es_cli_request(c, "GET", path, NULL, &r))
		return 1;
	if (r.status != 200)
		ret = es_cli_fail_status(&r);
	else if (!r.body) {
		fprintf(stderr, "Error: failed to parse response body\n");
		ret = 1;
	} else
		es_cli_print(c, r.body, attack_cols, "attacks");
	es_cli_resp_free(&r);
	return ret;
}

const struct es_cli_cmd ddos_cli_cmds[] = {
    {"ddos", "status", ES_CLI_GET, "/api/v1/ddos/status", NULL, NULL, NULL, "DDoS status"},
    {"ddos", "attacks", ES_CLI_LIST, "/api/v1/ddos/attacks", attack_cols, "active attacks", NULL,
     "attacks in progress"},
    {"ddos", "policies", ES_CLI_LIST, "/api/v1/ddos/policies", policy_cols, "DDoS policies", NULL,
     "list DDoS policies"},
    {"ddos", "history", ES_CLI_CUSTOM, NULL, NULL, NULL, run_history,
     "past attacks (--limit N, default 100)"},
    {"ddos", "add", ES_CLI_ADD, "/api/v1/ddos/policies", NULL, NULL, NULL,
     "add a DDoS policy (--json J)"},
    {"ddos", "delete", ES_CLI_DELETE, "/api/v1/ddos/policies", NULL, "DDoS policy deleted", NULL,
     "delete a DDoS policy"},
    {0},
};
