// SPDX-License-Identifier: AGPL-3.0-only
/*
 * Reload (interfaces.md §10.2): validate the whole new file, apply domain by
 * domain in table order, roll back the applied ones if one fails, and publish
 * the new configuration only when every domain took it.
 */
#define ES_LOG_TARGET "ebpfsentinel::reload"
#include "agent/agent.h"
#include "agent/config.h"
#include "agent/domain.h"
#include "api/metrics.h"
#include "core/log.h"

#include <errno.h>
#include <stdio.h>
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

int es_reload_from_file(const char *path, char *why, size_t whylen)
{
	struct es_config *old = es_config_current(), *nc;
	struct es_error err;
	unsigned i;
	int r = 0;

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

	for (i = 0; i < es_n_domains; i++) {
		const struct es_domain *d = es_domains[i];

		if (!d->apply)
			continue;
		r = d->apply(old ? old->dcfg[i] : NULL, nc->dcfg[i]);
		count(d->name, r == 0);
		if (r) {
			snprintf(why, whylen, "%s: apply failed: %s", d->name, strerror(-r));
			break;
		}
		pr_info("domain reloaded", LF_STR("domain", d->name));
	}
	if (r) {
		/* Roll back what was applied, newest first (best effort). */
		while (i-- > 0) {
			const struct es_domain *d = es_domains[i];

			if (d->apply && old && d->apply(nc->dcfg[i], old->dcfg[i]))
				pr_error("rollback failed", LF_STR("domain", d->name));
		}
		pr_warnf("config reload rejected: %s", why);
		count("config", false);
		es_config_put(nc);
		es_config_put(old);
		return r;
	}
	es_config_publish(nc);
	pr_info("configuration reloaded", LF_STR("config_path", path));
	es_config_put(nc);
	es_config_put(old);
	return 0;
}
