// SPDX-License-Identifier: AGPL-3.0-only
/*
 * The agent's own domain: health, readiness, metrics, status, configuration
 * and reload endpoints (interfaces.md §3.3, §3.4 "Agent and operations"),
 * the standard metric families of §6 and the process and kernel-reason
 * samples.
 */
#define ES_LOG_TARGET "ebpfsentinel::api"
#include "abi/common.h"
#include "agent/agent.h"
#include "agent/config.h"
#include "agent/domain.h"
#include "api/metrics.h"
#include "core/log.h"
#include "domains/firewall/firewall.h"
#include "kernel/kernel.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* interfaces.md §6, registered up front so scrapers see every family. */
static const struct {
	const char *name, *help;
	enum es_mtype type;
	const char *labels;
} std_families[] = {
    {"ebpfsentinel_packets", "Packets seen, by source and outcome", ES_M_COUNTER,
     "interface,action"},
    {"ebpfsentinel_bytes_processed", "Bytes counted by kernel programs", ES_M_COUNTER,
     "interface,direction"},
    {"ebpfsentinel_events_dropped", "Events lost before processing", ES_M_COUNTER, "reason"},
    {"ebpfsentinel_rules_loaded", "Active rules per component", ES_M_GAUGE, "component"},
    {"ebpfsentinel_ebpf_program_status", "1 when the program is attached", ES_M_GAUGE, "program"},
    {"ebpfsentinel_packet_processing_duration_seconds", "Processing latency", ES_M_HISTOGRAM,
     "program"},
    {"ebpfsentinel_rules_reloads", "Reload outcomes per component", ES_M_COUNTER,
     "component,result"},
    {"ebpfsentinel_alerts", "Alerts produced (before dedup)", ES_M_COUNTER, "component,severity"},
    {"ebpfsentinel_alerts_by_rule", "Alerts per rule", ES_M_COUNTER, "component,rule_id"},
    {"ebpfsentinel_alerts_dropped", "Alerts not delivered to any sender", ES_M_COUNTER, "reason"},
    {"ebpfsentinel_alert_sender_circuit_state", "0 closed, 1 half-open, 2 open", ES_M_GAUGE,
     "destination"},
    {"ebpfsentinel_false_positives", "False-positive markings", ES_M_COUNTER, "component,rule_id"},
    {"ebpfsentinel_ips_blacklist_size", "Current IPS blacklist entries", ES_M_GAUGE, NULL},
    {"ebpfsentinel_ips_blocks", "IPS enforcement actions", ES_M_COUNTER, NULL},
    {"ebpfsentinel_ids_domain_matches", "IDS matches via domain pattern", ES_M_COUNTER, "rule_id"},
    {"ebpfsentinel_dns_cache_entries", "DNS cache size", ES_M_GAUGE, NULL},
    {"ebpfsentinel_dns_cache_hits", "DNS cache hits", ES_M_COUNTER, NULL},
    {"ebpfsentinel_dns_cache_evictions", "DNS cache LRU and TTL evictions", ES_M_COUNTER, NULL},
    {"ebpfsentinel_dns_blocked_domains", "DNS blocklist matches", ES_M_COUNTER, NULL},
    {"ebpfsentinel_dns_injected_ips", "IPs injected from the DNS blocklist", ES_M_GAUGE, NULL},
    {"ebpfsentinel_domain_reputation_high_risk", "High-risk domains tracked", ES_M_GAUGE, NULL},
    {"ebpfsentinel_domain_auto_blocked", "Reputation auto-blocks", ES_M_COUNTER, NULL},
    {"ebpfsentinel_memory_usage_bytes", "Process resident set size", ES_M_GAUGE, NULL},
    {"ebpfsentinel_cpu_usage_percent", "Process CPU time as % of machine CPU time (5 s)",
     ES_M_GAUGE, NULL},
    {"ebpfsentinel_kernel_reasons", "Kernel program exits by program and reason", ES_M_COUNTER,
     "program,reason"},
};

static const char *const reason_prog_names[ES_PROG__COUNT] = {
    "xdp_firewall",	   "xdp_ratelimit", "xdp_loadbalancer", "tc_conntrack",
    "tc_conntrack_egress", "tc_scrub",	    "tc_nat_ingress",	"tc_nat_egress",
    "tc_threatintel",	   "tc_ids",	    "tc_dns",		"uprobe_dlp",
};

static void collect_kernel(void)
{
	struct es_mfam *reasons = es_metric_find("ebpfsentinel_kernel_reasons");
	struct es_mfam *status = es_metric_find("ebpfsentinel_ebpf_program_status");
	int fd;

	for (int i = 0; es_prog_names[i]; i++)
		es_metric_set(status, es_prog_status_get(es_prog_names[i]) ? 1 : 0,
			      es_prog_names[i]);
	if (!es_kernel_ready() || (fd = es_kernel_open_pinned("es_reasons")) < 0)
		return;
	for (unsigned p = 0; p < ES_PROG__COUNT; p++) {
		for (unsigned r = 0; r < ES_R__COUNT; r++) {
			uint64_t v;

			if (es_percpu_sum(fd, p * ES_REASON_STRIDE + r, &v) || !v)
				continue;
			es_metric_mirror(reasons, v, reason_prog_names[p], es_reason_name(r));
		}
	}
	close(fd);
}

static void collect_domains(void)
{
	for (unsigned i = 0; i < es_n_domains; i++)
		if (es_domains[i]->metrics)
			es_domains[i]->metrics();
}

static void register_std(void)
{
	for (size_t i = 0; i < sizeof(std_families) / sizeof(std_families[0]); i++)
		es_metric_family(std_families[i].name, std_families[i].help, std_families[i].type,
				 std_families[i].labels);
	es_metrics_add_collector(collect_kernel);
	es_metrics_add_collector(collect_domains);
}

/* ---- handlers ------------------------------------------------------------------ */

static void h_healthz(const struct es_req *req, struct es_resp *resp)
{
	es_resp_json(resp, 200, json_pack("{s:s}", "status", "ok"));
}

static void h_readyz(const struct es_req *req, struct es_resp *resp)
{
	bool ok = es_daemon_ebpf_loaded();

	es_resp_json(
	    resp, ok ? 200 : 503,
	    json_pack("{s:s,s:b}", "status", ok ? "ready" : "not_ready", "ebpf_loaded", ok));
}

static bool wants_openmetrics(const char *accept)
{
	return accept && strstr(accept, "application/openmetrics-text");
}

static void h_metrics(const struct es_req *req, struct es_resp *resp)
{
	struct es_sb sb = ES_SB_INIT;
	bool om = wants_openmetrics(req->header(req, "Accept"));

	es_metrics_collect();
	es_metrics_render(&sb, om);
	resp->status = 200;
	resp->content_type = om ? ES_CT_OPENMETRICS : ES_CT_PROMETHEUS;
	resp->text_len = sb.len;
	resp->text = es_sb_steal(&sb);
	if (!resp->text)
		es_resp_error(resp, 500, "INTERNAL_ERROR", "out of memory");
}

static void h_agent_status(const struct es_req *req, struct es_resp *resp)
{
	struct es_config *cfg = es_config_current();
	struct fw_status fw;
	json_t *o, *domains = json_array();

	fw_get_status(&fw);
	for (unsigned i = 0; i < es_n_domains; i++) {
		const struct es_domain *d = es_domains[i];
		const void *dc = cfg ? cfg->dcfg[i] : NULL;
		json_t *e;

		if (!d->section)
			continue;
		e = json_pack("{s:s,s:b}", "name", d->name, "enabled",
			      dc && d->enabled ? d->enabled(dc) : false);
		if (d->status)
			d->status(e);
		else
			json_object_set_new(e, "active", json_false());
		json_array_append_new(domains, e);
	}
	o = json_pack("{s:s,s:I,s:b,s:I,s:b,s:s,s:o}", "version", ES_VERSION, "uptime_seconds",
		      (json_int_t)es_daemon_uptime_seconds(), "ebpf_loaded",
		      es_daemon_ebpf_loaded(), "rule_count", (json_int_t)fw.rule_count,
		      "firewall_enabled", fw.enabled, "firewall_mode",
		      fw.mode == FW_MODE_BLOCK ? "block" : "alert", "domains", domains);
	es_config_put(cfg);
	es_resp_json(resp, 200, o);
}

static void h_ebpf_status(const struct es_req *req, struct es_resp *resp)
{
	es_resp_json(resp, 200, json_pack("{s:o}", "programs", es_prog_status_json()));
}

static void h_config(const struct es_req *req, struct es_resp *resp)
{
	struct es_config *cfg = es_config_current();

	if (!cfg) {
		es_resp_error(resp, 503, "SERVICE_UNAVAILABLE", "configuration not loaded");
		return;
	}
	es_resp_json(resp, 200, es_config_to_json(cfg));
	es_config_put(cfg);
}

static void h_reload(const struct es_req *req, struct es_resp *resp)
{
	if (es_daemon_request_reload()) {
		/* Not the standard error shape: interfaces.md §3.4. */
		es_resp_json(resp, 500,
			     json_pack("{s:s,s:s}", "status", "error", "message",
				       "reload already in progress or channel unavailable"));
		return;
	}
	es_resp_json(
	    resp, 200,
	    json_pack("{s:s,s:s}", "status", "ok", "message", "configuration reload triggered"));
}

static const struct es_route agent_routes[] = {
    {"GET", "/healthz", h_healthz, ES_RT_PUBLIC},
    {"GET", "/readyz", h_readyz, ES_RT_PUBLIC},
    {"GET", "/metrics", h_metrics, ES_RT_METRICS},
    {"GET", "/api/v1/agent/status", h_agent_status, 0},
    {"GET", "/api/v1/ebpf/status", h_ebpf_status, 0},
    {"GET", "/api/v1/config", h_config, 0},
    {"POST", "/api/v1/config/reload", h_reload, ES_RT_WRITE},
    {NULL, NULL, NULL, 0},
};

void es_agent_metrics_init(void)
{
	register_std();
}

const struct es_domain es_domain_agent = {
    .name = "agent",
    .routes = agent_routes,
};
