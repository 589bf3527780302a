// SPDX-License-Identifier: AGPL-3.0-only
/* IDS domain (detection.md §1): the `ids` section, its engine and REST routes. */
#define ES_LOG_TARGET "ebpfsentinel::ids"
#include "agent/domain.h"
#include "domains/ids/ids_int.h"

#include <stdlib.h>
#include <string.h>

static const char *const ids_keys[] = {"enabled", "mode", "sampling", "rules", NULL};
static const char *const mode_names[] = {"alert", "monitor", "observe", "block", "enforce", NULL};

static void ids_free(void *p)
{
	struct ids_cfg *c = p;

	if (!c)
		return;
	ids_rules_free(c->rules, c->n_rules);
	ids_sampling_free(&c->sampling);
	free(c);
}

/* `enabled` of another section, read from the raw document (default def). */
static bool section_enabled(const json_t *root, const char *sec, bool def)
{
	const json_t *s = json_object_get(root, sec);
	const json_t *e = json_is_object(s) ? json_object_get(s, "enabled") : NULL;

	return json_is_boolean(e) ? json_is_true(e) : def;
}

static void *ids_parse(struct es_cfg *c, const json_t *node, const char *path, const json_t *root)
{
	struct ids_cfg *i = calloc(1, sizeof(*i));
	json_t *rules, *samp;
	int mode;

	if (!i)
		return NULL;
	es_cfg_check_keys(c, node, path, ids_keys);
	if (es_cfg_bool(c, node, path, "enabled", &i->enabled, true) ||
	    es_cfg_enum(c, node, path, "mode", mode_names, &mode, 0) ||
	    es_cfg_expect_object(c, node, path, "sampling", &samp) ||
	    ids_sampling_parse(c, samp, "ids.sampling", &i->sampling) ||
	    es_cfg_array(c, node, path, "rules", &rules) ||
	    ids_rules_parse(c, rules, "ids.rules", false, &i->rules, &i->n_rules)) {
		ids_free(i);
		return NULL;
	}
	i->mode = mode >= 3 ? IDS_MODE_BLOCK : IDS_MODE_ALERT;
	/* tc_ids runs when ids, ips or l7 is on (§2.2). */
	i->load_prog =
	    i->enabled || section_enabled(root, "ips", true) || section_enabled(root, "l7", false);
	return i;
}

static json_t *ids_to_json(const void *p)
{
	const struct ids_cfg *c = p;
	json_t *rules = json_array();

	for (size_t k = 0; k < c->n_rules; k++)
		json_array_append_new(rules, ids_rule_cfg_json(&c->rules[k]));
	return json_pack("{s:b,s:s,s:o,s:o}", "enabled", c->enabled, "mode",
			 c->mode == IDS_MODE_BLOCK ? "block" : "alert", "sampling",
			 ids_sampling_json(&c->sampling), "rules", rules);
}

static json_t *ids_summary(const void *p)
{
	const struct ids_cfg *c = p;

	return json_pack("{s:I,s:s}", "rule_count", (json_int_t)c->n_rules, "mode",
			 c->mode == IDS_MODE_BLOCK ? "block" : "alert");
}

static bool ids_enabled(const void *p)
{
	return ((const struct ids_cfg *)p)->enabled;
}

static int ids_start(const void *p)
{
	return ids_engine_start(p);
}

static int ids_apply(const void *old, const void *p)
{
	return ids_engine_apply(p);
}

static void h_status(const struct es_req *req, struct es_resp *resp)
{
	json_t *s = json_object();

	ids_engine_status(s);
	es_resp_json(resp, 200,
		     json_pack("{s:O,s:O,s:O}", "enabled", json_object_get(s, "active"), "mode",
			       json_object_get(s, "mode"), "rule_count",
			       json_object_get(s, "rule_count")));
	json_decref(s);
}

static void h_rules(const struct es_req *req, struct es_resp *resp)
{
	es_resp_json(resp, 200, ids_engine_rules_json());
}

static const struct es_route ids_routes[] = {
    {"GET", "/api/v1/ids/status", h_status, 0},
    {"GET", "/api/v1/ids/rules", h_rules, 0},
    {NULL, NULL, NULL, 0},
};

const struct es_domain es_domain_ids = {
    .name = "ids",
    .section = "ids",
    .parse = ids_parse,
    .free_cfg = ids_free,
    .to_json = ids_to_json,
    .enabled = ids_enabled,
    .start = ids_start,
    .apply = ids_apply,
    .summary = ids_summary,
    .stop = ids_engine_stop,
    .status = ids_engine_status,
    .metrics = ids_engine_metrics,
    .tick = ids_engine_tick,
    .routes = ids_routes,
};
