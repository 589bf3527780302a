// SPDX-License-Identifier: AGPL-3.0-only
/*
 * Audit query endpoints (interfaces.md §3.4 "Audit") and the CLI's `audit`
 * commands (§1.2).
 */
#include "api/route.h"
#include "cli/cli.h"
#include "domains/audit/audit.h"
#include "domains/audit/store.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const components[] = {
    "firewall", "ids",	"ips",		"l7",	  "ratelimit", "threatintel",
    "dlp",	"ddos", "loadbalancer", "config", NULL,
};
static const char *const actions[] = {
    "pass",	  "drop",	  "alert",	  "rate_exceeded",    "config_changed",
    "rule_added", "rule_removed", "rule_updated", "policy_violation", "false_positive",
    NULL,
};

/* An optional enum query value, normalised to its canonical spelling. */
static int query_enum(const struct es_req *req, struct es_resp *resp, const char *name,
		      const char *const *names, const char **out)
{
	const char *v = req->query(req, name);
	char list[256] = "";

	*out = NULL;
	if (!v)
		return 0;
	for (const char *const *n = names; *n; n++) {
		size_t l = strlen(list);

		if (!strcasecmp(v, *n)) {
			*out = *n;
			return 0;
		}
		snprintf(list + l, sizeof(list) - l, "%s%s", l ? ", " : "", *n);
	}
	es_resp_error(resp, 400, "INVALID_QUERY",
		      "invalid query parameter '%s': '%s' is not one of %s", name, v, list);
	return -1;
}

static void h_logs(const struct es_req *req, struct es_resp *resp)
{
	struct audit_query q = {.rule_id = req->query(req, "rule_id")};
	struct audit_log *log = audit_running_log();
	json_t *entries;
	uint64_t total;

	if (query_enum(req, resp, "component", components, &q.component) ||
	    query_enum(req, resp, "action", actions, &q.action) ||
	    es_query_u64(req, resp, "from", 0, &q.from_ns) ||
	    es_query_u64(req, resp, "to", 0, &q.to_ns) ||
	    es_query_u64(req, resp, "limit", 100, &q.limit) ||
	    es_query_u64(req, resp, "offset", 0, &q.offset))
		return;
	if (!log) {
		es_resp_error(resp, 503, "SERVICE_UNAVAILABLE", "audit store not configured");
		return;
	}
	if (q.limit > 1000)
		q.limit = 1000;
	audit_flush();
	if (audit_log_query(log, &q, &entries, &total)) {
		es_resp_error(resp, 500, "INTERNAL_ERROR", "audit store query failed");
		return;
	}
	es_resp_json(resp, 200,
		     json_pack("{s:o,s:I,s:I,s:I}", "entries", entries, "total", (json_int_t)total,
			       "limit", (json_int_t)q.limit, "offset", (json_int_t)q.offset));
}

static void h_history(const struct es_req *req, struct es_resp *resp)
{
	struct rule_history *h = audit_running_history();
	const char *id = req->param(req, "id");
	json_t *entries;
	uint64_t limit;

	if (es_query_u64(req, resp, "limit", 50, &limit))
		return;
	if (!h) {
		es_resp_error(resp, 503, "SERVICE_UNAVAILABLE", "rule change store not configured");
		return;
	}
	if (limit > 500)
		limit = 500;
	if (rule_history_query(h, id, limit, &entries)) {
		es_resp_error(resp, 500, "INTERNAL_ERROR", "rule change store query failed");
		return;
	}
	es_resp_json(resp, 200, json_pack("{s:s,s:o}", "rule_id", id, "entries", entries));
}

const struct es_route audit_routes[] = {
    {"GET", "/api/v1/audit/logs", h_logs, 0},
    {"GET", "/api/v1/audit/rules/{id}/history", h_history, 0},
    {NULL, NULL, NULL, 0},
};

/* ---- CLI ---------------------------------------------------------------------------- */

static const char *const log_columns[] = {"timestamp_ns", "component", "action",
					  "rule_id",	  "detail",    NULL};
static const char *const history_columns[] = {"version", "timestamp_ns", "action", "actor",
					      "sub",	 "before",	 "after",  NULL};

static int usage(const char *fmt, const char *arg)
{
	fprintf(stderr, "error: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n\nFor more information, try '--help'.\n");
	return 2;
}

/* GET path; print the document (json) or its entries as a table. */
static int show(const struct es_cli *c, const char *path, const char *const *cols, const char *noun)
{
	struct es_cli_resp r;
	int ret = 0;

	if (es_cli_request(c, "GET", path, NULL, &r))
		return 1;
	if (r.status != 200) {
		ret = es_cli_fail_status(&r);
	} else if (!r.body) {
		fprintf(stderr, "Error: failed to parse response body\n");
		ret = 1;
	} else if (c->json) {
		es_cli_print(c, r.body, NULL, NULL);
	} else {
		json_t *total = json_object_get(r.body, "total");

		es_cli_print(c, json_object_get(r.body, "entries"), cols, noun);
		if (json_is_integer(total))
			printf("%lld stored in total\n", (long long)json_integer_value(total));
	}
	es_cli_resp_free(&r);
	return ret;
}

static int run_logs(const struct es_cli *c, int argc, char **argv)
{
	static const char *const opts[] = {"--component", "--action", "--limit", "--offset"};
	const char *vals[4] = {NULL, NULL, "100", "0"};
	char path[2048];
	CURL *h = curl_easy_init();
	size_t n;
	int ret;

	for (int i = 0; i < argc; i++) {
		size_t k;

		for (k = 0; k < 4; k++)
			if (!strcmp(argv[i], opts[k]))
				break;
		if (k == 4) {
			curl_easy_cleanup(h);
			return usage("unexpected argument '%s' found", argv[i]);
		}
		if (i + 1 >= argc) {
			curl_easy_cleanup(h);
			return usage("a value is required for '%s' but none was supplied", opts[k]);
		}
		vals[k] = argv[++i];
	}
	for (size_t k = 2; k < 4; k++) {
		char *end;

		strtoull(vals[k], &end, 10);
		if (!*vals[k] || *end || vals[k][0] == '-') {
			curl_easy_cleanup(h);
			return usage("invalid value '%s' for a numeric option", vals[k]);
		}
	}
	n = (size_t)snprintf(path, sizeof(path), "/api/v1/audit/logs?limit=%s&offset=%s", vals[2],
			     vals[3]);
	for (size_t k = 0; k < 2 && h; k++) {
		char *enc;

		if (!vals[k] || n >= sizeof(path))
			continue;
		enc = curl_easy_escape(h, vals[k], 0);
		n += (size_t)snprintf(path + n, sizeof(path) - n, "&%s=%s", opts[k] + 2,
				      enc ? enc : "");
		curl_free(enc);
	}
	curl_easy_cleanup(h);
	ret = show(c, path, log_columns, "audit entries");
	return ret;
}

static int run_history(const struct es_cli *c, int argc, char **argv)
{
	char path[1024];
	CURL *h;
	char *enc;
	int ret;

	if (argc < 1 || argv[0][0] == '-')
		return usage("the following required arguments were not provided: %s", "<ID>");
	if (argc > 1)
		return usage("unexpected argument '%s' found", argv[1]);
	h = curl_easy_init();
	enc = h ? curl_easy_escape(h, argv[0], 0) : NULL;
	snprintf(path, sizeof(path), "/api/v1/audit/rules/%s/history", enc ? enc : argv[0]);
	curl_free(enc);
	if (h)
		curl_easy_cleanup(h);
	ret = show(c, path, history_columns, "rule changes");
	return ret;
}

const struct es_cli_cmd audit_cli_cmds[] = {
    {"audit", "logs", ES_CLI_CUSTOM, NULL, NULL, NULL, run_logs,
     "audit entries [--component C] [--action A] [--limit N] [--offset N]"},
    {"audit", "history", ES_CLI_CUSTOM, NULL, NULL, NULL, run_history,
     "history of a rule: audit history ID"},
    {0},
};
