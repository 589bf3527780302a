// SPDX-License-Identifier: AGPL-3.0-only
/* IPS domain (detection.md §2): the `ips` section, REST routes and CLI `ips`. */
#define ES_LOG_TARGET "ebpfsentinel::ips"
#include "agent/domain.h"
#include "abi/ids.h"
#include "cli/cli.h"
#include "core/audit.h"
#include "domains/ips/ips_int.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const ips_keys[] = {
    "enabled",
    "mode",
    "max_blacklist_duration_secs",
    "auto_blacklist_threshold",
    "max_blacklist_size",
    "whitelist",
    "sampling",
    "rules",
    "country_thresholds",
    NULL,
};
static const char *const mode_names[] = {"alert", "monitor", "observe", "block", "enforce", NULL};

static void ips_free(void *p)
{
	struct ips_cfg *c = p;

	if (!c)
		return;
	ids_rules_free(c->rules, c->n_rules);
	ids_sampling_free(&c->sampling);
	free(c->whitelist);
	es_strv_free(c->whitelist_text);
	free(c->country);
	free(c);
}

static int parse_whitelist(struct es_cfg *c, const json_t *node, struct ips_cfg *i)
{
	json_t *arr;
	char why[256];

	if (es_cfg_strv(c, node, "ips", "whitelist", &i->whitelist_text, &i->n_whitelist))
		return -EINVAL;
	i->whitelist = calloc(i->n_whitelist + 1, sizeof(*i->whitelist));
	if (!i->whitelist)
		return -ENOMEM;
	arr = json_object_get(node, "whitelist");
	for (size_t k = 0; k < i->n_whitelist; k++)
		if (es_cidr_parse(i->whitelist_text[k], &i->whitelist[k], why, sizeof(why)))
			return es_cfg_fail(c, ES_ERR_VALIDATION, arr, "ips.whitelist", NULL, k,
					   "invalid CIDR notation '%s': %s", i->whitelist_text[k],
					   why);
	return 0;
}

static int parse_country(struct es_cfg *c, const json_t *node, struct ips_cfg *i)
{
	json_t *ct;
	const char *k;
	json_t *v;

	if (es_cfg_expect_object(c, node, "ips", "country_thresholds", &ct) || !ct)
		return ct ? 0 : (es_cfg_failed(c) ? -EINVAL : 0);
	i->country = calloc(json_object_size(ct) + 1, sizeof(*i->country));
	if (!i->country)
		return -ENOMEM;
	json_object_foreach (ct, k, v) {
		uint32_t t;

		if (strlen(k) != 2)
			return es_cfg_fail(c, ES_ERR_VALIDATION, ct, "ips.country_thresholds", k, 0,
					   "country code must have 2 characters");
		if (es_cfg_u32(c, ct, "ips.country_thresholds", k, &t, 0))
			return -EINVAL;
		memcpy(i->country[i->n_country].cc, k, 3);
		i->country[i->n_country++].threshold = t;
	}
	return 0;
}

static void *ips_parse(struct es_cfg *c, const json_t *node, const char *path, const json_t *root)
{
	struct ips_cfg *i = calloc(1, sizeof(*i));
	json_t *rules, *samp;
	int mode;

	if (!i)
		return NULL;
	es_cfg_check_keys(c, node, path, ips_keys);
	if (es_cfg_bool(c, node, path, "enabled", &i->enabled, true) ||
	    es_cfg_enum(c, node, path, "mode", mode_names, &mode, 0) ||
	    es_cfg_u64(c, node, path, "max_blacklist_duration_secs", &i->max_duration_secs, 3600) ||
	    es_cfg_u32(c, node, path, "auto_blacklist_threshold", &i->threshold, 3) ||
	    es_cfg_u32(c, node, path, "max_blacklist_size", &i->max_size, 10000) ||
	    parse_whitelist(c, node, i) || es_cfg_expect_object(c, node, path, "sampling", &samp) ||
	    ids_sampling_parse(c, samp, "ips.sampling", &i->sampling) ||
	    es_cfg_array(c, node, path, "rules", &rules) ||
	    ids_rules_parse(c, rules, "ips.rules", true, &i->rules, &i->n_rules) ||
	    parse_country(c, node, i)) {
		ips_free(i);
		return NULL;
	}
	i->mode = mode >= 3 ? IDS_MODE_BLOCK : IDS_MODE_ALERT;
	if (i->max_size > ES_IPS_BLACKLIST_MAX) {
		es_cfg_fail(c, ES_ERR_VALIDATION, node, path, "max_blacklist_size", 0,
			    "must be at most %u", ES_IPS_BLACKLIST_MAX);
		ips_free(i);
		return NULL;
	}
	return i;
}

static json_t *ips_to_json(const void *p)
{
	const struct ips_cfg *c = p;
	json_t *rules = json_array(), *wl = json_array(), *ct = json_object();

	for (size_t k = 0; k < c->n_rules; k++)
		json_array_append_new(rules, ids_rule_cfg_json(&c->rules[k]));
	for (size_t k = 0; k < c->n_whitelist; k++)
		json_array_append_new(wl, json_string(c->whitelist_text[k]));
	for (size_t k = 0; k < c->n_country; k++)
		json_object_set_new(ct, c->country[k].cc, json_integer(c->country[k].threshold));
	return json_pack("{s:b,s:s,s:I,s:I,s:I,s:o,s:o,s:o,s:o}", "enabled", c->enabled, "mode",
			 c->mode == IDS_MODE_BLOCK ? "block" : "alert",
			 "max_blacklist_duration_secs", (json_int_t)c->max_duration_secs,
			 "auto_blacklist_threshold", (json_int_t)c->threshold, "max_blacklist_size",
			 (json_int_t)c->max_size, "whitelist", wl, "sampling",
			 ids_sampling_json(&c->sampling), "rules", rules, "country_thresholds", ct);
}

static json_t *ips_summary(const void *p)
{
	const struct ips_cfg *c = p;

	return json_pack("{s:I,s:s}", "rule_count", (json_int_t)c->n_rules, "mode",
			 c->mode == IDS_MODE_BLOCK ? "block" : "alert");
}

static bool ips_enabled(const void *p)
{
	return ((const struct ips_cfg *)p)->enabled;
}

static int ips_start(const void *p)
{
	return ips_engine_start(p);
}

static int ips_apply(const void *old, const void *p)
{
	return ips_engine_apply(p);
}

static void ips_status(json_t *o)
{
	json_object_set_new(o, "active", json_true());
	json_object_set_new(o, "blacklist_size", json_integer((json_int_t)ips_blacklist_size()));
}

/* ---- REST ------------------------------------------------------------------------ */

static void h_rules(const struct es_req *req, struct es_resp *resp)
{
	es_resp_json(resp, 200, ips_rules_json());
}

static void h_set_mode(const struct es_req *req, struct es_resp *resp)
{
	const char *id = req->param(req, "id");
	const json_t *m = json_object_get(req->body, "mode");
	json_t *before, *after;
	char *b, *a;
	int idx, r;

	if (!json_is_string(m)) {
		es_resp_error(resp, 422, "INVALID_BODY", "missing field `mode`");
		return;
	}
	for (idx = 0; mode_names[idx]; idx++)
		if (!strcasecmp(json_string_value(m), mode_names[idx]))
			break;
	if (!mode_names[idx]) {
		es_resp_error(resp, 400, "VALIDATION_ERROR",
			      "invalid mode '%s': expected alert or block", json_string_value(m));
		return;
	}
	r = ips_rule_set_mode(id, idx >= 3 ? IDS_MODE_BLOCK : IDS_MODE_ALERT, &before, &after);
	if (r == -ENOENT) {
		es_resp_error(resp, 404, "RULE_NOT_FOUND", "rule not found: %s", id);
		return;
	}
	if (!json_equal(before, after)) {
		/* The audit sink also makes the config/rule_updated entry (core/audit.h). */
		b = json_dumps(before, JSON_COMPACT | JSON_PRESERVE_ORDER);
		a = json_dumps(after, JSON_COMPACT | JSON_PRESERVE_ORDER);
		es_audit_rule_change(&(struct es_rule_change){
		    .component = "ips",
		    .rule_id = id,
		    .action = "rule_updated",
		    .actor = "api",
		    .before = b,
		    .after = a,
		    .actor_sub = req->identity ? req->identity->sub : NULL,
		});
		free(b);
		free(a);
	}
	json_decref(before);
	es_resp_json(resp, r ? 500 : 200, after);
}

static void h_blacklist(const struct es_req *req, struct es_resp *resp)
{
	es_resp_json(resp, 200, ips_blacklist_json(false));
}

static void h_domain_blocks(const struct es_req *req, struct es_resp *resp)
{
	es_resp_json(resp, 200, ips_blacklist_json(true));
}

/* Extension: manual add (detection.md §2.5 "add IP (reason, ttl)"). */
static void h_add(const struct es_req *req, struct es_resp *resp)
{
	const json_t *ipv = json_object_get(req->body, "ip");
	const json_t *rv = json_object_get(req->body, "reason");
	const json_t *tv = json_object_get(req->body, "ttl_secs");
	struct es_addr a;
	char ip[64];
	int r;

	if (!json_is_string(ipv) || (rv && !json_is_string(rv)) ||
	    (tv && (!json_is_integer(tv) || json_integer_value(tv) < 0))) {
		es_resp_error(resp, 422, "INVALID_BODY",
			      "expected {\"ip\": string, \"reason\"?: string, \"ttl_secs\"?: u64}");
		return;
	}
	if (json_string_length(ipv) > 512 || es_addr_parse(json_string_value(ipv), &a)) {
		es_resp_error(resp, 400, "VALIDATION_ERROR", "invalid IP address '%.64s'",
			      json_string_value(ipv));
		return;
	}
	r = ips_blacklist_add(&a, rv ? json_string_value(rv) : "manual",
			      tv ? (uint64_t)json_integer_value(tv) : 0);
	es_addr_format(&a, ip, sizeof(ip));
	if (r == -EPERM)
		es_resp_error(resp, 400, "VALIDATION_ERROR", "IP %s is whitelisted", ip);
	else if (r == -EEXIST)
		es_resp_error(resp, 409, "DUPLICATE_RULE", "IP %s is already blacklisted", ip);
	else if (r == -ENOSPC)
		es_resp_error(resp, 400, "VALIDATION_ERROR", "blacklist full");
	else if (r == -ENODEV)
		es_resp_error(resp, 503, "SERVICE_UNAVAILABLE", "IPS is not enabled");
	else if (r)
		es_resp_error(resp, 500, "INTERNAL_ERROR", "%s", strerror(-r));
	else
		es_resp_json(resp, 201,
			     json_pack("{s:s,s:s,s:b,s:I}", "ip", ip, "reason",
				       rv ? json_string_value(rv) : "manual", "auto_generated", 0,
				       "ttl_remaining_secs",
				       (json_int_t)(tv ? json_integer_value(tv) : 0)));
}

static void h_remove(const struct es_req *req, struct es_resp *resp)
{
	const char *ip = req->param(req, "ip");
	struct es_addr a;

	if (strlen(ip) > 512 || es_addr_parse(ip, &a)) {
		es_resp_error(resp, 400, "VALIDATION_ERROR", "invalid IP address '%.64s'", ip);
		return;
	}
	if (ips_blacklist_remove(&a)) {
		es_resp_error(resp, 404, "NOT_FOUND", "IP %s is not blacklisted", ip);
		return;
	}
	resp->status = 204;
}

static const struct es_route ips_routes[] = {
    {"GET", "/api/v1/ips/rules", h_rules, 0},
    {"PATCH", "/api/v1/ips/rules/{id}", h_set_mode, ES_RT_WRITE | ES_RT_JSON},
    {"GET", "/api/v1/ips/blacklist", h_blacklist, 0},
    {"POST", "/api/v1/ips/blacklist", h_add, ES_RT_WRITE | ES_RT_JSON},
    {"DELETE", "/api/v1/ips/blacklist/{ip}", h_remove, ES_RT_WRITE},
    {"GET", "/api/v1/ips/domain-blocks", h_domain_blocks, 0},
    {NULL, NULL, NULL, 0},
};

/* ---- CLI ------------------------------------------------------------------------- */

static int run_set_mode(const struct es_cli *c, int argc, char **argv)
{
	const char *id = NULL, *mode = NULL;
	struct es_cli_resp r;
	char path[1024];
	json_t *body;
	char *enc;
	CURL *h;
	int ret = 0;

	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--mode") && i + 1 < argc)
			mode = argv[++i];
		else if (argv[i][0] != '-' && !id)
			id = argv[i];
		else {
			fprintf(stderr, "error: unexpected argument '%s' found\n", argv[i]);
			return 2;
		}
	}
	if (!id || !mode) {
		fprintf(stderr, "error: the following required arguments were not provided: %s\n",
			!id ? "<ID>" : "--mode <MODE>");
		return 2;
	}
	h = curl_easy_init();
	enc = h ? curl_easy_escape(h, id, 0) : NULL;
	snprintf(path, sizeof(path), "/api/v1/ips/rules/%s", enc ? enc : id);
	curl_free(enc);
	if (h)
		curl_easy_cleanup(h);
	body = json_pack("{s:s}", "mode", mode);
	if (es_cli_request(c, "PATCH", path, body, &r)) {
		json_decref(body);
		return 1;
	}
	json_decref(body);
	if (r.status != 200)
		ret = es_cli_fail_status(&r);
	else
		printf("IPS rule %s mode set to: %s\n", id,
		       json_string_value(json_object_get(r.body, "mode")));
	es_cli_resp_free(&r);
	return ret;
}

static const char *const rule_cols[] = {"id",	    "severity", "mode",	   "protocol",
					"dst_port", "pattern",	"enabled", NULL};
static const char *const bl_cols[] = {"ip", "reason", "auto_generated", "ttl_remaining_secs", NULL};
static const char *const db_cols[] = {"ip", "domain", "source", "ttl_remaining_secs", NULL};

const struct es_cli_cmd ips_cli_cmds[] = {
    {"ips", "list", ES_CLI_LIST, "/api/v1/ips/rules", rule_cols, "IPS rules", NULL, "IPS rules"},
    {"ips", "blacklist", ES_CLI_LIST, "/api/v1/ips/blacklist", bl_cols, "blacklisted IPs", NULL,
     "the IPS blacklist"},
    {"ips", "domain-blocks", ES_CLI_LIST, "/api/v1/ips/domain-blocks", db_cols, "domain blocks",
     NULL, "IPs blocked for a domain (DNS blocklist, reputation)"},
    {"ips", "set-mode", ES_CLI_CUSTOM, NULL, NULL, NULL, run_set_mode,
     "set an IPS rule's mode (--mode alert|block)"},
    {0},
};

const struct es_domain es_domain_ips = {
    .name = "ips",
    .section = "ips",
    .parse = ips_parse,
    .free_cfg = ips_free,
    .to_json = ips_to_json,
    .enabled = ips_enabled,
    .start = ips_start,
    .apply = ips_apply,
    .summary = ips_summary,
    .stop = ips_engine_stop,
    .status = ips_status,
    .metrics = ips_engine_metrics,
    .tick = ips_engine_tick,
    .routes = ips_routes,
};
