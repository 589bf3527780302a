// SPDX-License-Identifier: AGPL-3.0-only
/* Rate-limit REST routes (interfaces.md §3.4 "Rate limiting") and CLI rows. */
#include "api/route.h"
#include "cli/cli.h"
#include "core/audit.h"
#include "domains/ratelimit/ratelimit.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void h_list(const struct es_req *req, struct es_resp *resp)
{
	es_resp_json(resp, 200, rl_rules_json());
}

static void h_create(const struct es_req *req, struct es_resp *resp)
{
	struct es_cfg c;
	struct rl_rule r;
	json_t *doc;
	int ret;

	es_cfg_init(&c, NULL);
	if (rl_rule_parse(&c, req->body, "", true, &r)) {
		es_resp_cfg_error(resp, &c, "rule");
		es_cfg_release(&c);
		return;
	}
	es_cfg_release(&c);
	ret = rl_rules_add(&r);
	if (ret == -EEXIST) {
		es_resp_error(resp, 409, "DUPLICATE_RULE", "duplicate rule: %s", r.id);
	} else if (ret == -ENOSPC) {
		es_resp_error(resp, 400, "VALIDATION_ERROR",
			      "invalid rule: count exceeds maximum %d", RL_MAX_RULES);
	} else if (ret) {
		es_resp_error(resp, 500, "INTERNAL_ERROR", "cannot install rule: %s",
			      strerror(-ret));
	} else {
		doc = rl_rule_json(&r);
		es_audit_rule_json("ratelimit", r.id, "rule_added", NULL, doc);
		es_resp_json(resp, 201, doc);
	}
	rl_rule_clear(&r);
}

static void h_delete(const struct es_req *req, struct es_resp *resp)
{
	const char *id = req->param(req, "id");
	json_t *before = NULL;
	int ret = rl_rules_delete(id, &before);

	if (ret == -ENOENT) {
		es_resp_error(resp, 404, "RULE_NOT_FOUND", "rule not found: %s", id);
		return;
	}
	if (ret) {
		json_decref(before);
		es_resp_error(resp, 500, "INTERNAL_ERROR", "cannot remove rule: %s",
			      strerror(-ret));
		return;
	}
	es_audit_rule_json("ratelimit", id, "rule_removed", before, NULL);
	json_decref(before);
	resp->status = 204;
}

const struct es_route rl_routes[] = {
    {"GET", "/api/v1/ratelimit/rules", h_list, 0},
    {"POST", "/api/v1/ratelimit/rules", h_create, ES_RT_WRITE | ES_RT_JSON},
    {"DELETE", "/api/v1/ratelimit/rules/{id}", h_delete, ES_RT_WRITE},
    {NULL, NULL, NULL, 0},
};

static const char *const rl_columns[] = {"id",	   "scope",  "rate",	"burst", "algorithm",
					 "action", "src_ip", "enabled", NULL};

const struct es_cli_cmd rl_cli_cmds[] = {
    {"ratelimit", "list", ES_CLI_LIST, "/api/v1/ratelimit/rules", rl_columns, "rate limit rules",
     NULL, "list rate-limit rules"},
    {"ratelimit", "add", ES_CLI_ADD, "/api/v1/ratelimit/rules", NULL, NULL, NULL,
     "add a rate-limit rule (--json J)"},
    {"ratelimit", "delete", ES_CLI_DELETE, "/api/v1/ratelimit/rules", NULL,
     "Rate limit rule deleted", NULL, "delete a rate-limit rule"},
    {0},
};
