// SPDX-License-Identifier: AGPL-3.0-only
/*
 * Conntrack REST routes (interfaces.md §3.4 "Connection tracking") and CLI
 * rows. The service always exists: with tracking off it answers
 * enabled:false and empty data.
 */
#define ES_LOG_TARGET "ebpfsentinel::conntrack"
#include "api/route.h"
#include "cli/cli.h"
#include "core/log.h"
#include "domains/conntrack/conntrack.h"
#include "domains/conntrack/ct_table.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool tracking(struct es_ct_config *k)
{
	ct_current_config(k);
	return k->enabled && ct_is_active();
}

static void h_status(const struct es_req *req, struct es_resp *resp)
{
	struct es_ct_config k;
	struct ct_maps m;
	uint64_t n = 0;
	bool on = tracking(&k);

	if (on) {
		ct_maps_open(&m);
		ct_table_count(&m, &k, &n);
		ct_maps_close(&m);
	}
	es_resp_json(resp, 200,
		     json_pack("{s:b,s:I}", "enabled", on, "connection_count", (json_int_t)n));
}

struct list_ctx {
	const struct es_ct_config *cfg;
	uint64_t now, limit;
	json_t *arr;
};

static int list_one(const struct ct_flow *f, const void *key, bool v6, void *arg)
{
	struct list_ctx *l = arg;

	if (json_array_size(l->arr) >= l->limit)
		return 1;
	if (es_ct_is_live(l->cfg, f->proto, f->state, f->last_seen_ns, l->now))
		json_array_append_new(l->arr, ct_flow_json(f, l->now));
	return json_array_size(l->arr) >= l->limit;
}

static void h_connections(const struct es_req *req, struct es_resp *resp)
{
	struct es_ct_config k;
	struct list_ctx l = {.cfg = &k, .now = ct_now_ns(), .arr = json_array()};
	struct ct_maps m;
	int r;

	if (es_query_u64(req, resp, "limit", 100, &l.limit)) {
		json_decref(l.arr);
		return;
	}
	if (tracking(&k) && l.limit) {
		ct_maps_open(&m);
		r = ct_table_walk(&m, list_one, &l);
		ct_maps_close(&m);
		if (r) {
			json_decref(l.arr);
			es_resp_error(resp, 500, "INTERNAL_ERROR", "cannot read the flow table: %s",
				      strerror(-r));
			return;
		}
	}
	es_resp_json(resp, 200, l.arr);
}

static void h_flush(const struct es_req *req, struct es_resp *resp)
{
	struct es_ct_config k;
	struct ct_maps m;
	uint64_t n = 0;
	int r = 0;

	if (ct_is_active()) {
		(void)tracking(&k);
		ct_maps_open(&m);
		r = ct_table_flush(&m, &n);
		ct_maps_close(&m);
	}
	if (r) {
		es_resp_error(resp, 500, "INTERNAL_ERROR", "flush failed: %s", strerror(-r));
		return;
	}
	pr_info("conntrack table flushed", LF_UINT("flushed", n));
	es_resp_json(resp, 200, json_pack("{s:I}", "flushed", (json_int_t)n));
}

const struct es_route ct_routes[] = {
    {"GET", "/api/v1/conntrack/status", h_status, 0},
    {"GET", "/api/v1/conntrack/connections", h_connections, 0},
    {"POST", "/api/v1/conntrack/flush", h_flush, ES_RT_WRITE | ES_RT_JSON | ES_RT_BODY_OPT},
    {NULL, NULL, NULL, 0},
};

/* ---- CLI ---------------------------------------------------------------------- */

static const char *const conn_columns[] = {"src_ip",	  "src_port",	 "dst_ip",
					   "dst_port",	  "protocol",	 "state",
					   "packets_fwd", "packets_rev", NULL};

static int run_connections(const struct es_cli *c, int argc, char **argv)
{
	struct es_cli_resp r;
	char path[128];
	unsigned long limit = 100;
	int ret = 0;

	for (int i = 0; i < argc; i++) {
		char *end;

		if (!strcmp(argv[i], "--limit") && i + 1 < argc) {
			limit = strtoul(argv[++i], &end, 10);
			if (*end || !*argv[i]) {
				fprintf(stderr, "error: invalid value '%s' for '--limit <N>'\n",
					argv[i]);
				return 2;
			}
		} else {
			fprintf(stderr, "error: unexpected argument '%s' found\n", argv[i]);
			return 2;
		}
	}
	snprintf(path, sizeof(path), "/api/v1/conntrack/connections?limit=%lu", limit);
	if (es_cli_request(c, "GET", path, NULL, &r))
		return 1;
	if (r.status != 200)
		ret = es_cli_fail_status(&r);
	else if (!r.body)
		ret = (fprintf(stderr, "Error: failed to parse response body\n"), 1);
	else
		es_cli_print(c, r.body, conn_columns, "connections");
	es_cli_resp_free(&r);
	return ret;
}

static int run_flush(const struct es_cli *c, int argc, char **argv)
{
	struct es_cli_resp r;
	int ret = 0;

	if (argc > 0) {
		fprintf(stderr, "error: unexpected argument '%s' found\n", argv[0]);
		return 2;
	}
	if (es_cli_request(c, "POST", "/api/v1/conntrack/flush", NULL, &r))
		return 1;
	if (r.status != 200)
		ret = es_cli_fail_status(&r);
	else if (c->json && r.body)
		es_cli_print(c, r.body, NULL, NULL);
	else
		printf("Connections flushed: %lld\n",
		       (long long)json_integer_value(json_object_get(r.body, "flushed")));
	es_cli_resp_free(&r);
	return ret;
}

const struct es_cli_cmd ct_cli_cmds[] = {
    {"conntrack", "status", ES_CLI_GET, "/api/v1/conntrack/status", NULL, NULL, NULL,
     "connection tracking status"},
    {"conntrack", "connections", ES_CLI_CUSTOM, NULL, NULL, NULL, run_connections,
     "tracked connections [--limit N]"},
    {"conntrack", "flush", ES_CLI_CUSTOM, NULL, NULL, NULL, run_flush,
     "remove every tracked connection"},
    {0},
};
