// SPDX-License-Identifier: AGPL-3.0-only
/* Routing REST routes (interfaces.md §3.4) and CLI rows: status and the
 * gateway table with each gateway's health. */
#include "agent/config.h"
#include "api/route.h"
#include "cli/cli.h"
#include "domains/routing/routing_int.h"

#include <stdlib.h>

static void h_status(const struct es_req *req, struct es_resp *resp)
{
	struct es_config *cfg = es_config_current();
	const struct routing_cfg *r = cfg ? es_config_domain(cfg, "routing") : NULL;
	bool on = r && r->enabled;

	es_resp_json(
	    resp, 200,
	    json_pack("{s:b,s:I}", "enabled", on, "gateway_count", (json_int_t)(on ? r->n_gw : 0)));
	es_config_put(cfg);
}

static void h_gateways(const struct es_req *req, struct es_resp *resp)
{
	struct es_config *cfg = es_config_current();
	const struct routing_cfg *r = cfg ? es_config_domain(cfg, "routing") : NULL;
	struct routing_gw_view view[256];
	json_t *arr = json_array();
	size_t n = 0;

	routing_snapshot(view, &n, 256);
	for (size_t i = 0; r && r->enabled && i < r->n_gw; i++) {
		const struct routing_gw_cfg *g = &r->gw[i];
		enum routing_status st = g->enabled ? ROUTING_HEALTHY : ROUTING_DOWN;
		char ip[64];

		for (size_t k = 0; k < n; k++)
			if (view[k].id == g->id)
				st = view[k].status;
		es_addr_format(&g->gateway_ip, ip, sizeof(ip));
		json_array_append_new(arr, json_pack("{s:i,s:s,s:s,s:s,s:I,s:b,s:s}", "id", g->id,
						     "name", g->name, "interface", g->ifname,
						     "gateway_ip", ip, "priority",
						     (json_int_t)g->priority, "enabled", g->enabled,
						     "status", routing_status_name(st)));
	}
	es_config_put(cfg);
	es_resp_json(resp, 200, arr);
}

const struct es_route routing_routes[] = {
    {"GET", "/api/v1/routing/status", h_status, 0},
    {"GET", "/api/v1/routing/gateways", h_gateways, 0},
    {NULL, NULL, NULL, 0},
};

static const char *const gw_columns[] = {"id",	     "name",	"interface", "gateway_ip",
					 "priority", "enabled", "status",    NULL};

const struct es_cli_cmd routing_cli_cmds[] = {
    {"routing", "status", ES_CLI_GET, "/api/v1/routing/status", NULL, NULL, NULL,
     "policy routing status"},
    {"routing", "gateways", ES_CLI_LIST, "/api/v1/routing/gateways", gw_columns, "gateways", NULL,
     "gateways and their health"},
    {0},
};
