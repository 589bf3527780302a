// SPDX-License-Identifier: AGPL-3.0-only
/*
 * Firewall REST routes (interfaces.md §3.4 "Firewall (L3/L4)", the alias
 * status, and reads of aliases, schedules and LPM block lists) and the CLI
 * rows of `firewall list|add|delete`.
 */
#define ES_LOG_TARGET "ebpfsentinel::api"
#include "domains/firewall/firewall.h"
#include "domains/firewall/fw.h"
#include "api/auth.h"
#include "cli/cli.h"
#include "core/audit.h"
#include "core/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *rule_doc(const struct fw_rule *r, bool system, bool sched_active)
{
	json_t *o = fw_rule_to_json(r);

	json_object_set_new(o, "system", json_boolean(system));
	if (r->schedule)
		json_object_set_new(o, "schedule_active", json_boolean(sched_active));
	json_object_set_new(o, "hits", json_integer((json_int_t)fw_rt_hits(r->id)));
	return o;
}

static void h_list(const struct es_req *req, struct es_resp *resp)
{
	struct fw_snap *s = fw_snap_get();
	json_t *arr = json_array();

	for (size_t i = 0; s && i < s->sys.n; i++)
		json_array_append_new(arr, rule_doc(&s->sys.v[i], true, true));
	for (size_t i = 0; s && i < s->rules.n; i++)
		json_array_append_new(arr, rule_doc(&s->rules.v[i], false, s->sched_active[i]));
	fw_snap_put(s);
	es_resp_json(resp, 200, arr);
}

/* String-length limits applied before parsing (interfaces.md §3.2). */
static int check_lengths(const json_t *b, struct es_resp *resp)
{
	static const struct {
		const char *key;
		size_t max;
	} lim[] = {
	    {"id", 256},       {"action", 128},	  {"protocol", 128},  {"scope", 128},
	    {"src_ip", 512},   {"dst_ip", 512},	  {"src_alias", 256}, {"dst_alias", 256},
	    {"schedule", 256}, {"src_port", 128}, {"dst_port", 128},
	};

	for (size_t i = 0; i < sizeof(lim) / sizeof(lim[0]); i++) {
		const json_t *v = json_object_get(b, lim[i].key);

		if (json_is_string(v) && strlen(json_string_value(v)) > lim[i].max) {
			es_resp_error(resp, 400, "VALIDATION_ERROR",
				      "%s exceeds maximum length of %zu characters (got %zu)",
				      lim[i].key, lim[i].max, strlen(json_string_value(v)));
			return -EINVAL;
		}
	}
	return 0;
}

static void audit(const char *id, const char *action, const json_t *before, const json_t *after,
		  const struct es_req *req)
{
	char *b = before ? json_dumps(before, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	char *a = after ? json_dumps(after, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	struct es_rule_change c = {
	    .component = "firewall",
	    .rule_id = id,
	    .action = action,
	    .actor = "api",
	    .before = b,
	    .after = a,
	    .actor_sub = req->identity && req->identity->authenticated ? req->identity->sub : NULL,
	};

	es_audit_rule_change(&c);
	free(b);
	free(a);
}

/* Parse a rule body (create and replace); answers the request on failure. */
static int parse_body(const struct es_req *req, struct es_resp *resp, struct fw_rule *r)
{
	struct es_cfg c;
	int ret;

	if (!json_is_object(req->body)) {
		es_resp_error(resp, 422, "INVALID_BODY", "expected a JSON object");
		return -EINVAL;
	}
	if (check_lengths(req->body, resp))
		return -EINVAL;
	es_cfg_init(&c, NULL);
	ret = fw_rule_parse(&c, req->body, "", r);
	if (ret && c.err.kind == ES_ERR_PARSE)
		es_resp_error(resp, 422, "INVALID_BODY", "%s", c.err.msg);
	else if (ret)
		es_resp_error(resp, 400, "VALIDATION_ERROR", "invalid rule: %s", c.err.msg);
	es_cfg_release(&c);
	if (!ret)
		r->order = 0;
	return ret ? -EINVAL : 0;
}

static void h_create(const struct es_req *req, struct es_resp *resp)
{
	struct fw_rule r;
	char why[256];
	json_t *doc;
	int ret;

	if (parse_body(req, resp, &r))
		return;
	doc = fw_rule_to_json(&r);
	if (es_auth_check_scope(req, resp, json_string_value(json_object_get(doc, "scope"))))
		goto out;
	ret = fw_rt_add(&r, why, sizeof(why));
	if (ret == -EEXIST) {
		es_resp_error(resp, 409, "DUPLICATE_RULE", "duplicate rule: %s", r.id);
	} else if (ret == -ENODEV) {
		es_resp_error(resp, 503, "SERVICE_UNAVAILABLE", "%s", why);
	} else if (ret) {
		es_resp_error(resp, 400, "VALIDATION_ERROR", "invalid rule: %s", why);
	} else {
		audit(r.id, "rule_added", NULL, doc, req);
		pr_info("firewall rule added", LF_STR("rule_id", r.id));
		es_resp_json(resp, 201, json_incref(doc));
	}
out:
	json_decref(doc);
	fw_rule_free(&r);
}

/*
 * PUT /api/v1/firewall/rules/{id} (beyond the reference, which can only add
 * and delete): the whole rule is replaced; the body's id, when present, must
 * be the path's. The operator needs the namespace of the old and the new scope.
 */
static void h_replace(const struct es_req *req, struct es_resp *resp)
{
	const char *id = req->param(req, "id");
	const json_t *bid = json_is_object(req->body) ? json_object_get(req->body, "id") : NULL;
	json_t *cur, *doc = NULL, *before = NULL;
	struct fw_rule r;
	bool system, parsed = false;
	char *scope = NULL, why[256];
	int ret;

	cur = fw_rt_rule_json(id, &system, &scope);
	if (!cur) {
		es_resp_error(resp, 404, "RULE_NOT_FOUND", "rule not found: %s", id);
		return;
	}
	if (system) {
		es_resp_error(resp, 403, "PERMISSION_DENIED",
			      "permission denied: cannot modify system rule: %s", id);
		goto out;
	}
	if (es_auth_check_scope(req, resp, scope))
		goto out;
	if (bid && !(json_is_string(bid) && !strcmp(json_string_value(bid), id))) {
		es_resp_error(resp, 400, "VALIDATION_ERROR",
			      "invalid rule: id: must equal the rule id in the path (%s)", id);
		goto out;
	}
	if (!bid && json_is_object(req->body))
		json_object_set_new((json_t *)req->body, "id", json_string(id));
	if (parse_body(req, resp, &r))
		goto out;
	parsed = true;
	doc = fw_rule_to_json(&r);
	if (es_auth_check_scope(req, resp, json_string_value(json_object_get(doc, "scope"))))
		goto out;
	ret = fw_rt_replace(&r, &before, why, sizeof(why));
	if (ret == -ENOENT) {
		es_resp_error(resp, 404, "RULE_NOT_FOUND", "rule not found: %s", id);
	} else if (ret == -EPERM) {
		es_resp_error(resp, 403, "PERMISSION_DENIED",
			      "permission denied: cannot modify system rule: %s", id);
	} else if (ret == -ENODEV) {
		es_resp_error(resp, 503, "SERVICE_UNAVAILABLE", "%s", why);
	} else if (ret) {
		es_resp_error(resp, 400, "VALIDATION_ERROR", "invalid rule: %s", why);
	} else {
		if (!json_equal(before, doc))
			audit(id, "rule_updated", before, doc, req);
		pr_info("firewall rule replaced", LF_STR("rule_id", id));
		es_resp_json(resp, 200, json_incref(doc));
	}
out:
	if (parsed)
		fw_rule_free(&r);
	json_decref(doc);
	json_decref(before);
	json_decref(cur);
	free(scope);
}

static void h_delete(const struct es_req *req, struct es_resp *resp)
{
	const char *id = req->param(req, "id");
	json_t *cur, *before = NULL;
	bool system;
	char *scope = NULL;
	int ret;

	cur = fw_rt_rule_json(id, &system, &scope);
	if (!cur) {
		es_resp_error(resp, 404, "RULE_NOT_FOUND", "rule not found: %s", id);
		return;
	}
	if (system) {
		es_resp_error(resp, 403, "PERMISSION_DENIED",
			      "permission denied: cannot delete system rule: %s", id);
		goto out;
	}
	if (es_auth_check_scope(req, resp, scope))
		goto out;
	ret = fw_rt_delete(id, &before);
	if (ret == -ENOENT) {
		es_resp_error(resp, 404, "RULE_NOT_FOUND", "rule not found: %s", id);
	} else if (ret == -EPERM) {
		es_resp_error(resp, 403, "PERMISSION_DENIED",
			      "permission denied: cannot delete system rule: %s", id);
	} else if (ret) {
		es_resp_error(resp, 500, "INTERNAL_ERROR", "rule not removed: %s", strerror(-ret));
	} else {
		audit(id, "rule_removed", before, NULL, req);
		pr_info("firewall rule removed", LF_STR("rule_id", id));
		resp->status = 204;
	}
out:
	json_decref(before);
	json_decref(cur);
	free(scope);
}

static void h_status(const struct es_req *req, struct es_resp *resp)
{
	struct fw_snap *s = fw_snap_get();
	struct fw_status st;
	json_t *o;

	fw_get_status(&st);
	o = json_pack("{s:b,s:b,s:s,s:s,s:I,s:I,s:I,s:I}", "enabled", st.enabled, "loaded",
		      st.loaded, "mode", st.mode == FW_MODE_BLOCK ? "block" : "alert",
		      "default_policy", st.default_policy == FW_POLICY_DROP ? "drop" : "pass",
		      "rule_count", (json_int_t)st.rule_count, "user_rules",
		      (json_int_t)(s ? s->rules.n : 0), "system_rules",
		      (json_int_t)(s ? s->sys.n : 0), "generation",
		      (json_int_t)(s ? s->generation : 0));
	if (s && s->last_error[0])
		json_object_set_new(o, "last_error", json_string(s->last_error));
	fw_snap_put(s);
	es_resp_json(resp, 200, o);
}

static void h_alias_status(const struct es_req *req, struct es_resp *resp)
{
	struct fw_snap *s = fw_snap_get();
	size_t n = s && s->cfg ? s->cfg->aliases.n : 0;

	fw_snap_put(s);
	es_resp_json(resp, 200, json_pack("{s:I}", "alias_count", (json_int_t)n));
}

static void h_aliases(const struct es_req *req, struct es_resp *resp)
{
	struct fw_snap *s = fw_snap_get();
	json_t *arr = json_array();

	for (size_t i = 0; s && s->cfg && i < s->cfg->aliases.n; i++) {
		const struct fw_alias *a = &s->cfg->aliases.v[i];
		json_t *o = fw_alias_to_json(a);
		struct es_cidr *c = NULL;
		struct es_port_range *p = NULL;
		size_t nc = 0, np = 0;
		struct fw_alias_dyn_info info;

		json_object_set_new(o, "name", json_string(a->name));
		json_object_set_new(o, "kind",
				    json_string(a->kind == FW_AK_IP ? "address" : "port"));
		json_object_set_new(o, "active",
				    json_boolean(fw_alias_active(&s->cfg->aliases, a->name)));
		if (!fw_alias_resolve(&s->cfg->aliases, a->name, &c, &nc, &p, &np))
			json_object_set_new(o, "entry_count", json_integer((json_int_t)(nc + np)));
		free(c);
		free(p);
		if (fw_alias_dyn_info(a->name, &info) || info.last_try) {
			json_object_set_new(o, "last_refresh", json_integer(info.last_ok));
			if (info.error[0])
				json_object_set_new(o, "last_error", json_string(info.error));
		}
		if (a->type == FW_AT_GEOIP)
			json_object_set_new(o, "inactive_reason",
					    json_string("GeoIP networks are not available"));
		json_array_append_new(arr, o);
	}
	fw_snap_put(s);
	es_resp_json(resp, 200, arr);
}

static void h_schedules(const struct es_req *req, struct es_resp *resp)
{
	struct fw_snap *s = fw_snap_get();
	json_t *arr = json_array();
	struct tm now;
	time_t t = fw_sched_now();

	localtime_r(&t, &now);
	for (size_t i = 0; s && s->cfg && i < s->cfg->schedules.n; i++) {
		const struct fw_schedule *sc = &s->cfg->schedules.v[i];
		json_t *o = fw_schedule_to_json(sc), *rules = json_array();

		for (size_t k = 0; k < s->rules.n; k++)
			if (s->rules.v[k].schedule && !strcmp(s->rules.v[k].schedule, sc->name))
				json_array_append_new(rules, json_string(s->rules.v[k].id));
		json_object_set_new(o, "name", json_string(sc->name));
		json_object_set_new(o, "active", json_boolean(fw_schedule_active(sc, &now)));
		json_object_set_new(o, "rules", rules);
		json_array_append_new(arr, o);
	}
	fw_snap_put(s);
	es_resp_json(resp, 200, arr);
}

static void h_lpm_list(const struct es_req *req, struct es_resp *resp)
{
	es_resp_json(resp, 200, fw_lpm_list(req->query(req, "owner")));
}

static void h_lpm_delete_owner(const struct es_req *req, struct es_resp *resp)
{
	const char *owner = req->param(req, "owner");
	int n = fw_lpm_remove_owner(owner);

	if (n < 0) {
		es_resp_error(resp, 500, "INTERNAL_ERROR", "%s", strerror(-n));
		return;
	}
	es_resp_json(resp, 200, json_pack("{s:s,s:i}", "owner", owner, "removed", n));
}

const struct es_route fw_routes[] = {
    {"GET", "/api/v1/firewall/rules", h_list, 0},
    {"POST", "/api/v1/firewall/rules", h_create, ES_RT_NS | ES_RT_JSON},
    {"PUT", "/api/v1/firewall/rules/{id}", h_replace, ES_RT_NS | ES_RT_JSON},
    {"DELETE", "/api/v1/firewall/rules/{id}", h_delete, ES_RT_NS},
    {"GET", "/api/v1/firewall/status", h_status, 0},
    {"GET", "/api/v1/firewall/schedules", h_schedules, 0},
    {"GET", "/api/v1/firewall/lpm", h_lpm_list, 0},
    {"DELETE", "/api/v1/firewall/lpm/{owner}", h_lpm_delete_owner, ES_RT_WRITE},
    {"GET", "/api/v1/aliases/status", h_alias_status, 0},
    {"GET", "/api/v1/aliases", h_aliases, 0},
    {NULL, NULL, NULL, 0},
};

/* ---- CLI -------------------------------------------------------------------------------- */

static const char *const rule_columns[] = {"id",     "priority", "action", "protocol", "src_ip",
					   "dst_ip", "dst_port", "scope",  "enabled",  NULL};

const struct es_cli_cmd fw_cli_cmds[] = {
    {"firewall", "list", ES_CLI_LIST, "/api/v1/firewall/rules", rule_columns, "rules", NULL,
     "list firewall rules"},
    {"firewall", "add", ES_CLI_ADD, "/api/v1/firewall/rules", NULL, NULL, NULL,
     "add a firewall rule (--json J)"},
    {"firewall", "delete", ES_CLI_DELETE, "/api/v1/firewall/rules", NULL, "Rule deleted", NULL,
     "delete a firewall rule by id"},
    {0},
};
