// SPDX-License-Identifier: AGPL-3.0-only
/*
 * Reload (interfaces.md §10.2): validate the whole new file, apply domain by
 * domain in table order, roll back the applied ones if one fails, and publish
 * the new configuration only when every domain took it. Each applied domain
 * is counted and, once the whole reload succeeded, audited (§8.2).
 */
#define ES_LOG_TARGET "ebpfsentinel::reload"
#include "agent/agent.h"
#include "agent/config.h"
#include "agent/domain.h"
#include "api/grpc.h"
#include "api/metrics.h"
#include "api/tls.h"
#include "core/audit.h"
#include "core/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void count(const char *component, bool ok)
{
	es_metric_add(es_metric_family("ebpfsentinel_rules_reloads",
				       "Reload outcomes per component", ES_M_COUNTER,
				       "component,result"),
		      1, component, ok ? "success" : "failure");
}

/* Changes to the agent section need a restart (except TLS material). */
static void warn_restart_needed(const struct es_agent_cfg *a, const struct es_agent_cfg *b)
{
	bool same_ifs = a->n_interfaces == b->n_interfaces;

	for (size_t i = 0; same_ifs && i < a->n_interfaces; i++)
		same_ifs = !strcmp(a->interfaces[i], b->interfaces[i]);
	if (!same_ifs || strcmp(a->bind_address, b->bind_address) || a->http_port != b->http_port ||
	    a->grpc_port != b->grpc_port || a->metrics_port != b->metrics_port ||
	    a->log_level != b->log_level || a->log_format != b->log_format ||
	    a->swagger_ui != b->swagger_ui || a->tls.enabled != b->tls.enabled ||
	    a->xdp_mode != b->xdp_mode)
		pr_warn("changes to the agent section take effect after a restart");
}

/* Sections whose changes need a restart (ES_DOMAIN_RESTART): say so once. */
static void warn_restart_sections(const struct es_domain *const *table, unsigned n,
				  void *const *old_cfg, void *const *new_cfg)
{
	for (unsigned i = 0; i < n; i++) {
		const struct es_domain *d = table[i];
		json_t *a, *b;

		if (!(d->flags & ES_DOMAIN_RESTART) || !d->to_json || !old_cfg[i] || !new_cfg[i])
			continue;
		a = d->to_json(old_cfg[i]);
		b = d->to_json(new_cfg[i]);
		if (!json_equal(a, b))
			pr_warn("changes to this section take effect after a restart",
				LF_STR("section", d->section ? d->section : d->name));
		json_decref(a);
		json_decref(b);
	}
}

/* The first list of rules-like items in a section document. */
static size_t count_rules(const json_t *sec)
{
	static const char *const keys[] = {"rules",    "policies", "services", "feeds",
					   "gateways", "patterns", "api_keys", NULL};

	for (const char *const *k = keys; *k; k++) {
		const json_t *v = json_object_get(sec, *k);

		if (json_is_array(v))
			return json_array_size(v);
	}
	return 0;
}

/* The `after` document of a domain's reload record: {"rule_count","mode"?,"enabled"}. */
static json_t *summary_of(const struct es_domain *d, const void *cfg)
{
	json_t *sec, *out, *mode;

	if (!cfg)
		return NULL;
	if (d->summary)
		return d->summary(cfg);
	sec = d->to_json ? d->to_json(cfg) : json_object();
	out = json_pack("{s:I}", "rule_count", (json_int_t)count_rules(sec));
	mode = json_object_get(sec, "mode");
	if (out && json_is_string(mode))
		json_object_set(out, "mode", mode);
	if (out && d->enabled)
		json_object_set_new(out, "enabled", json_boolean(d->enabled(cfg)));
	json_decref(sec);
	return out;
}

static void audit_domain_reload(const struct es_domain *d, const void *old_cfg, const void *new_cfg)
{
	json_t *before = summary_of(d, old_cfg), *after = summary_of(d, new_cfg);
	char *b = before ? json_dumps(before, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	char *a = after ? json_dumps(after, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_t *rc = json_object_get(after, "rule_count"), *mode = json_object_get(after, "mode");
	json_t *en = json_object_get(after, "enabled");
	char rule_id[96], detail[256];
	int n;

	snprintf(rule_id, sizeof(rule_id), "%s-config", d->name);
	n = snprintf(detail, sizeof(detail), "%s reloaded", d->name);
	if (json_is_integer(rc) && n > 0 && (size_t)n < sizeof(detail))
		n += snprintf(detail + n, sizeof(detail) - (size_t)n, ": %lld rules",
			      (long long)json_integer_value(rc));
	if (json_is_string(mode) && n > 0 && (size_t)n < sizeof(detail))
		n += snprintf(detail + n, sizeof(detail) - (size_t)n, ", mode=%s",
			      json_string_value(mode));
	if (json_is_false(en) && n > 0 && (size_t)n < sizeof(detail))
		snprintf(detail + n, sizeof(detail) - (size_t)n, ", disabled");

	es_audit(&(struct es_audit_entry){
	    .component = "config",
	    .action = "config_changed",
	    .rule_id = rule_id,
	    .detail = detail,
	});
	es_audit_rule_change(&(struct es_rule_change){
	    .component = d->name,
	    .rule_id = rule_id,
	    .action = "rule_updated",
	    .actor = "config_reload",
	    .before = b,
	    .after = a,
	});
	free(a);
	free(b);
	json_decref(before);
	json_decref(after);
}

int es_reload_apply(const struct es_domain *const *table, unsigned n, void *const *old_cfg,
		    void *const *new_cfg, char *why, size_t whylen)
{
	unsigned i;
	int r = 0;

	warn_restart_sections(table, n, old_cfg, new_cfg);
	for (i = 0; i < n; i++) {
		const struct es_domain *d = table[i];

		if (!d->apply)
			continue;
		r = d->apply(old_cfg[i], new_cfg[i]);
		count(d->name, r == 0);
		if (r) {
			snprintf(why, whylen, "%s: apply failed: %s", d->name, strerror(-r));
			pr_error("domain reload failed; rolling back", LF_STR("domain", d->name),
				 LF_STR("error", strerror(-r)));
			break;
		}
		pr_info("domain reloaded", LF_STR("domain", d->name));
	}
	if (r) {
		/* Roll back what was applied, newest first (best effort). */
		while (i-- > 0) {
			const struct es_domain *d = table[i];

			if (d->apply && old_cfg[i] && d->apply(new_cfg[i], old_cfg[i]))
				pr_error("rollback failed", LF_STR("domain", d->name));
		}
		return r;
	}
	for (i = 0; i < n; i++)
		if (table[i]->apply)
			audit_domain_reload(table[i], old_cfg[i], new_cfg[i]);
	return 0;
}

/*
 * TLS material last (§10.2): re-read the pair named by the new file. A pair
 * that does not load leaves the running one in use; the rest of the reload
 * stands. (Turning TLS on or off needs a restart.)
 */
static void reload_tls(const struct es_agent_cfg *a)
{
	unsigned gen = es_tls_generation();
	char err[512], *cert, *key;
	int r;

	if (!es_tls_loaded() || !a->tls.enabled)
		return;
	r = es_tls_load(a->tls.cert_path, a->tls.key_path, err, sizeof(err));
	count("tls", r == 0);
	if (r) {
		pr_error("TLS material not reloaded; the current certificate stays in use",
			 LF_STR("error", err));
		return;
	}
	pr_info("TLS material reloaded", LF_STR("cert_path", a->tls.cert_path),
		LF_BOOL("changed", es_tls_generation() != gen));
	/* The REST server reads it per handshake; the gRPC server takes the PEM pair. */
	if (es_tls_generation() != gen && !es_tls_pem(&cert, &key)) {
		if ((r = es_grpc_set_tls(cert, key)))
			pr_error("gRPC kept its TLS material", LF_STR("error", strerror(-r)));
		free(cert);
		es_tls_pem_free(key);
	}
}

int es_reload_from_file(const char *path, char *why, size_t whylen)
{
	struct es_config *old = es_config_current(), *nc;
	static void *none[ES_MAX_DOMAINS];
	struct es_error err;
	int r;

	nc = es_config_load(path, &err);
	if (!nc) {
		es_error_format(&err, why, whylen);
		pr_warnf("config reload rejected: %s", why);
		count("config", false);
		es_config_put(old);
		return -EINVAL;
	}
	for (size_t k = 0; k < nc->n_warnings; k++)
		pr_warn(nc->warnings[k]);
	if (old)
		warn_restart_needed(&old->agent, &nc->agent);

	r = es_reload_apply(es_domains, es_n_domains, old ? old->dcfg : none, nc->dcfg, why,
			    whylen);
	if (r) {
		pr_warnf("config reload rejected: %s", why);
		count("config", false);
		es_config_put(nc);
		es_config_put(old);
		return r;
	}
	reload_tls(&nc->agent);
	es_config_publish(nc);
	pr_info("configuration reloaded", LF_STR("config_path", path));
	es_config_put(nc);
	es_config_put(old);
	return 0;
}
