// SPDX-License-Identifier: AGPL-3.0-only
/* Alert REST endpoints (interfaces.md §3.4 "Alerts") and CLI `alerts`. */
#include "api/metrics.h"
#include "cli/cli.h"
#include "core/audit.h"
#include "domains/alerting/alerting_int.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void h_list(const struct es_req *req, struct es_resp *resp)
{
	struct al_query q = {.min_severity = -1, .false_positive = -1};
	const char *sev = req->query(req, "min_severity");
	enum es_severity s;
	json_t *out;
	int err;

	if (es_query_u64(req, resp, "limit", 100, &q.limit) ||
	    es_query_u64(req, resp, "offset", 0, &q.offset) ||
	    es_query_u64(req, resp, "from", 0, &q.from) ||
	    es_query_u64(req, resp, "to", UINT64_MAX, &q.to) ||
	    es_query_bool(req, resp, "false_positive", -1, &q.false_positive))
		return;
	if (q.limit > 1000)
		q.limit = 1000;
	q.component = req->query(req, "component");
	q.rule_id = req->query(req, "rule_id");
	if (sev && es_severity_parse(sev, &s) == 0)
		q.min_severity = (int)s; /* unknown values: no filter */
	if (!al_store_ready()) {
		es_resp_error(resp, 503, "SERVICE_UNAVAILABLE", "alert store not configured");
		return;
	}
	out = al_store_query(&q, &err);
	if (!out) {
		es_resp_error(resp, 500, "INTERNAL_ERROR", "alert store query failed: %s",
			      strerror(-err));
		return;
	}
	es_resp_json(resp, 200, out);
}

static void h_false_positive(const struct es_req *req, struct es_resp *resp)
{
	const char *id = req->param(req, "id");
	char component[64] = "", rule_id[160] = "", detail[512];
	int r;

	if (!al_store_ready()) {
		es_resp_error(resp, 503, "SERVICE_UNAVAILABLE", "alert store not configured");
		return;
	}
	r = al_store_mark_fp(id, component, sizeof(component), rule_id, sizeof(rule_id));
	if (r == -ENOENT) {
		es_resp_error(resp, 404, "ALERT_NOT_FOUND", "alert %s not found", id);
		return;
	}
	if (r < 0) {
		es_resp_error(resp, 500, "INTERNAL_ERROR", "alert store update failed: %s",
			      strerror(-r));
		return;
	}
	if (r == 1) {
		es_metric_add(es_metric_family("ebpfsentinel_false_positives",
					       "False-positive markings", ES_M_COUNTER,
					       "component,rule_id"),
			      1, component, rule_id);
		snprintf(detail, sizeof(detail), "alert %s marked as false positive", id);
		es_audit(&(struct es_audit_entry){
		    .component = component,
		    .action = "false_positive",
		    .rule_id = rule_id,
		    .detail = detail,
		    .actor_sub = req->identity ? req->identity->sub : NULL,
		});
	}
	es_resp_json(resp, 200, json_pack("{s:s,s:b}", "alert_id", id, "marked", 1));
}

const struct es_route al_routes[] = {
    {"GET", "/api/v1/alerts", h_list, 0},
    {"POST", "/api/v1/alerts/{id}/false-positive", h_false_positive, ES_RT_WRITE},
    {NULL, NULL, NULL, 0},
};

/* ---- CLI ------------------------------------------------------------------------ */

static int usage(const char *fmt, const char *arg)
{
	fprintf(stderr, "error: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n\nFor more information, try '--help'.\n");
	return 2;
}

static void append_q(char *path, size_t len, const char *k, const char *v)
{
	CURL *h = curl_easy_init();
	char *e = h ? curl_easy_escape(h, v, 0) : NULL;
	size_t l = strlen(path);

	snprintf(path + l, len - l, "&%s=%s", k, e ? e : v);
	curl_free(e);
	if (h)
		curl_easy_cleanup(h);
}

/* Table rows: addresses rendered from the addr4 arrays (§12 item 23). */
static json_t *table_rows(const json_t *alerts)
{
	json_t *rows = json_array(), *a;
	size_t i;

	json_array_foreach (alerts, i, a) {
		uint32_t s[4] = {0}, d[4] = {0};
		bool v6 = json_is_true(json_object_get(a, "is_ipv6"));
		char src[64], dst[64];

		for (int k = 0; k < 4; k++) {
			s[k] = (uint32_t)json_integer_value(
			    json_array_get(json_object_get(a, "src_addr"), (size_t)k));
			d[k] = (uint32_t)json_integer_value(
			    json_array_get(json_object_get(a, "dst_addr"), (size_t)k));
		}
		al_addr_str(s, v6, src, sizeof(src));
		al_addr_str(d, v6, dst, sizeof(dst));
		json_array_append_new(
		    rows,
		    json_pack("{s:O,s:O,s:O,s:O,s:s,s:s,s:O,s:O,s:O,s:O}", "id",
			      json_object_get(a, "id"), "severity", json_object_get(a, "severity"),
			      "component", json_object_get(a, "component"), "rule_id",
			      json_object_get(a, "rule_id"), "src", src, "dst", dst, "dst_port",
			      json_object_get(a, "dst_port"), "action",
			      json_object_get(a, "action"), "false_positive",
			      json_object_get(a, "false_positive"), "message",
			      json_object_get(a, "message")));
	}
	return rows;
}

static int run_list(const struct es_cli *c, int argc, char **argv)
{
	static const char *const cols[] = {
	    "id",	"severity", "component",      "rule_id", "src", "dst",
	    "dst_port", "action",   "false_positive", "message", NULL};
	const char *component = NULL, *severity = NULL, *limit = "100", *offset = "0";
	struct es_cli_resp r;
	enum es_severity s;
	char path[1024];
	int ret = 0;

	for (int i = 0; i < argc; i++) {
		const char **dst = !strcmp(argv[i], "--component")  ? &component
				   : !strcmp(argv[i], "--severity") ? &severity
				   : !strcmp(argv[i], "--limit")    ? &limit
				   : !strcmp(argv[i], "--offset")   ? &offset
								    : NULL;

		if (!dst)
			return usage("unexpected argument '%s' found", argv[i]);
		if (i + 1 >= argc)
			return usage("a value is required for '%s' but none was supplied", argv[i]);
		*dst = argv[++i];
	}
	if (severity &&
	    (es_severity_parse(severity, &s) || strcasecmp(severity, es_severity_name(s))))
		return usage("invalid value '%s' for '--severity <SEVERITY>' [possible values: "
			     "low, medium, high, critical]",
			     severity);
	for (const char *n = limit; *n; n++)
		if (*n < '0' || *n > '9')
			return usage("invalid value '%s' for '--limit <LIMIT>'", limit);
	for (const char *n = offset; *n; n++)
		if (*n < '0' || *n > '9')
			return usage("invalid value '%s' for '--offset <OFFSET>'", offset);
	snprintf(path, sizeof(path), "/api/v1/alerts?limit=%s&offset=%s", limit, offset);
	if (component)
		append_q(path, sizeof(path), "component", component);
	if (severity)
		append_q(path, sizeof(path), "min_severity", severity);
	if (es_cli_request(c, "GET", path, NULL, &r))
		return 1;
	if (r.status != 200) {
		ret = es_cli_fail_status(&r);
	} else if (!json_is_object(r.body)) {
		fprintf(stderr, "Error: failed to parse response body\n");
		ret = 1;
	} else if (c->json) {
		es_cli_print(c, r.body, NULL, NULL);
	} else {
		json_t *rows = table_rows(json_object_get(r.body, "alerts"));

		es_cli_print(c, rows, cols, "alerts");
		json_decref(rows);
	}
	es_cli_resp_free(&r);
	return ret;
}

static int run_mark_fp(const struct es_cli *c, int argc, char **argv)
{
	struct es_cli_resp r;
	char path[1024];
	char *e;
	CURL *h;
	int ret = 0;

	if (argc < 1)
		return usage("the following required arguments were not provided: %s", "<ID>");
	if (argc > 1)
		return usage("unexpected argument '%s' found", argv[1]);
	h = curl_easy_init();
	e = h ? curl_easy_escape(h, argv[0], 0) : NULL;
	snprintf(path, sizeof(path), "/api/v1/alerts/%s/false-positive", e ? e : argv[0]);
	curl_free(e);
	if (h)
		curl_easy_cleanup(h);
	if (es_cli_request(c, "POST", path, NULL, &r))
		return 1;
	if (r.status != 200)
		ret = es_cli_fail_status(&r);
	else if (c->json)
		es_cli_print(c, r.body, NULL, NULL);
	else
		printf("Alert marked as false positive: %s\n", argv[0]);
	es_cli_resp_free(&r);
	return ret;
}

const struct es_cli_cmd al_cli_cmds[] = {
    {"alerts", "list", ES_CLI_CUSTOM, NULL, NULL, NULL, run_list,
     "stored alerts (--component, --severity, --limit, --offset)"},
    {"alerts", "mark-fp", ES_CLI_CUSTOM, NULL, NULL, NULL, run_mark_fp,
     "mark an alert as a false positive"},
    {0},
};
