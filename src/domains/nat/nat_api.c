// SPDX-License-Identifier: AGPL-3.0-only
/*
 * NAT REST routes (interfaces.md §3.4) — status and rules — plus the session
 * table of network.md §4.3 (list, flush), and CLI rows. With NAT disabled
 * they answer enabled:false and empty data.
 */
#define ES_LOG_TARGET "ebpfsentinel::nat"
#include "agent/config.h"
#include "api/route.h"
#include "cli/cli.h"
#include "core/log.h"
#include "domains/nat/nat.h"
#include "domains/nat/nat_rules.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct nat_cfg *running(struct es_config **ref)
{
	*ref = es_config_current();
	return *ref ? es_config_domain(*ref, "nat") : NULL;
}

static void h_status(const struct es_req *req, struct es_resp *resp)
{
	struct es_config *ref;
	const struct nat_cfg *n = running(&ref);

	es_resp_json(resp, 200,
		     json_pack("{s:b,s:I}", "enabled", n && n->enabled, "rule_count",
			       (json_int_t)(n && n->enabled ? n->n_rules : 0)));
	es_config_put(ref);
}

static void h_rules(const struct es_req *req, struct es_resp *resp)
{
	struct es_config *ref;
	const struct nat_cfg *n = running(&ref);
	json_t *arr = json_array();

	/* DNAT rules first (they are stored that way), each list in config order. */
	for (size_t i = 0; n && n->enabled && i < n->n_rules; i++) {
		const struct nat_rule_cfg *r = &n->rules[i];

		json_array_append_new(arr,
				      json_pack("{s:s,s:s,s:s,s:I,s:b}", "id", r->id, "nat_type",
						nat_kind_api_name(r->kind), "direction",
						r->dnat_list ? "dnat" : "snat", "priority",
						(json_int_t)r->priority, "enabled", r->enabled));
	}
	es_resp_json(resp, 200, arr);
	es_config_put(ref);
}

static void h_sessions(const struct es_req *req, struct es_resp *resp)
{
	uint64_t limit;
	int fd;

	if (es_query_u64(req, resp, "limit", 100, &limit))
		return;
	fd = nat_sessions_fd();
	es_resp_json(resp, 200, nat_sessions_list(fd, limit));
	if (fd >= 0)
		close(fd);
}

static void h_flush(const struct es_req *req, struct es_resp *resp)
{
	int fd = nat_sessions_fd();
	size_t n = 0;

	if (fd >= 0) {
		n = nat_sessions_flush(fd);
		close(fd);
	}
	pr_info("NAT sessions flushed", LF_UINT("flushed", n));
	es_resp_json(resp, 200, json_pack("{s:I}", "flushed", (json_int_t)n));
}

const struct es_route nat_routes[] = {
    {"GET", "/api/v1/nat/status", h_status, 0},
    {"GET", "/api/v1/nat/rules", h_rules, 0},
    {"GET", "/api/v1/nat/sessions", h_sessions, 0},
    {"DELETE", "/api/v1/nat/sessions", h_flush, ES_RT_WRITE},
    {NULL, NULL, NULL, 0},
};

static const char *const rule_columns[] = {"id",       "nat_type", "direction",
					   "priority", "enabled",  NULL};
static const char *const session_columns[] = {
    "src_ip",	    "src_port",	  "dst_ip",	  "dst_port", "new_src_ip",
    "new_src_port", "new_dst_ip", "new_dst_port", "nat_type", NULL,
};

const struct es_cli_cmd nat_cli_cmds[] = {
    {"nat", "status", ES_CLI_GET, "/api/v1/nat/status", NULL, NULL, NULL, "NAT status"},
    {"nat", "rules", ES_CLI_LIST, "/api/v1/nat/rules", rule_columns, "NAT rules", NULL,
     "NAT rules, DNAT first"},
    {"nat", "sessions", ES_CLI_LIST, "/api/v1/nat/sessions", session_columns, "NAT sessions", NULL,
     "translated flows"},
    {0},
};
