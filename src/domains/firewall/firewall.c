// SPDX-License-Identifier: AGPL-3.0-only
/*
 * Firewall domain: configuration, the xdp_firewall entry program (loaded,
 * attached as the XDP chain head on every agent interface), status and
 * kernel counters.
 */
#define ES_LOG_TARGET "ebpfsentinel::firewall"
#include "domains/firewall/firewall.h"
#include "abi/firewall.h"
#include "agent/domain.h"
#include "api/metrics.h"
#include "core/log.h"
#include "kernel/kernel.h"
#include "skel/firewall.skel.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static const char *const mode_names[] = {"alert", "monitor", "observe", "block", "enforce", NULL};
static const char *const policy_names[] = {"pass", "drop", NULL};
static const char *const fw_keys[] = {
    "enabled",	 "mode",	 "default_policy", "rules", "aliases",
    "schedules", "anti_lockout", "scrub",	   NULL,
};

static const char *const metric_names[ES_FW_M__COUNT] = {
    "passed", "dropped", "errors", "events_dropped", "total_seen",
};

struct fw_cfg {
	bool enabled;
	enum fw_mode mode;
	enum fw_policy default_policy;
	json_t *section; /* the raw section, for the parts parsed by later stages */
	size_t n_rules;
};

static struct es_firewall *skel;
static pthread_mutex_t state_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fw_status state;
static struct es_mfam *m_packets;

static void *fw_parse(struct es_cfg *c, const json_t *node, const char *path, const json_t *root)
{
	struct fw_cfg *f = calloc(1, sizeof(*f));
	json_t *rules;
	int mode, policy;

	if (!f)
		return NULL;
	es_cfg_check_keys(c, node, path, fw_keys);
	if (es_cfg_bool(c, node, path, "enabled", &f->enabled, true) ||
	    es_cfg_enum(c, node, path, "mode", mode_names, &mode, 0) ||
	    es_cfg_enum_exact(c, node, path, "default_policy", policy_names, &policy, 0) ||
	    es_cfg_array(c, node, path, "rules", &rules)) {
		free(f);
		return NULL;
	}
	f->mode = mode >= 3 ? FW_MODE_BLOCK : FW_MODE_ALERT;
	f->default_policy = policy ? FW_POLICY_DROP : FW_POLICY_PASS;
	f->n_rules = rules ? json_array_size(rules) : 0;
	f->section = node ? json_deep_copy(node) : json_object();
	return f;
}

static void fw_free(void *cfg)
{
	struct fw_cfg *f = cfg;

	if (!f)
		return;
	json_decref(f->section);
	free(f);
}

static json_t *fw_to_json(const void *cfg)
{
	const struct fw_cfg *f = cfg;
	json_t *o = json_deep_copy(f->section);

	json_object_set_new(o, "enabled", json_boolean(f->enabled));
	json_object_set_new(o, "mode", json_string(f->mode == FW_MODE_BLOCK ? "block" : "alert"));
	json_object_set_new(o, "default_policy",
			    json_string(f->default_policy == FW_POLICY_DROP ? "drop" : "pass"));
	if (!json_object_get(o, "rules"))
		json_object_set_new(o, "rules", json_array());
	return o;
}

static bool fw_enabled(const void *cfg)
{
	return ((const struct fw_cfg *)cfg)->enabled;
}

static void publish(const struct fw_cfg *f, bool loaded, unsigned attached)
{
	pthread_mutex_lock(&state_lock);
	state.enabled = f->enabled;
	state.mode = f->mode;
	state.default_policy = f->default_policy;
	state.rule_count = f->n_rules;
	state.loaded = loaded;
	state.attached = attached;
	pthread_mutex_unlock(&state_lock);
	es_prog_status_set("xdp_firewall", loaded && attached > 0);
}

static int load_and_attach(void)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo, .pin_root_path = es_kernel_pin_dir());
	int r, n;

	skel = es_firewall__open_opts(&oo);
	if (!skel)
		return -errno;
	if ((r = es_kernel_prepare_obj(skel->obj)) || (r = es_firewall__load(skel))) {
		pr_error("xdp_firewall failed to load", LF_INT("error", r));
		es_firewall__destroy(skel);
		skel = NULL;
		return r;
	}
	if ((r = es_kernel_set_feature(ES_FEAT_FIREWALL, true)))
		pr_warn("cannot set the firewall feature flag", LF_INT("error", r));
	n = es_xdp_chain_set(ES_XDP_ROLE_FIREWALL, bpf_program__fd(skel->progs.xdp_firewall),
			     bpf_map__fd(skel->maps.xdp_prog_array));
	return n;
}

static void unload(void)
{
	if (!skel)
		return;
	es_xdp_chain_set(ES_XDP_ROLE_FIREWALL, -1, bpf_map__fd(skel->maps.xdp_prog_array));
	es_firewall__destroy(skel);
	skel = NULL;
}

static int fw_start(const void *cfg)
{
	const struct fw_cfg *f = cfg;
	int n;

	if (!f->enabled || !es_kernel_ready()) {
		publish(f, false, 0);
		return 0;
	}
	n = load_and_attach();
	if (n < 0) {
		publish(f, false, 0);
		return n;
	}
	pr_info("xdp_firewall attached", LF_INT("interfaces", n));
	publish(f, true, (unsigned)n);
	return 0;
}

static int fw_apply(const void *old_cfg, const void *new_cfg)
{
	const struct fw_cfg *n = new_cfg;
	int attached = 0;

	if (n->enabled && !skel && es_kernel_ready()) {
		attached = load_and_attach();
		if (attached < 0)
			return attached;
	} else if (!n->enabled && skel) {
		unload();
	} else if (skel) {
		attached = (int)es_xdp_attached_count(ES_XDP_ROLE_FIREWALL);
	}
	publish(n, skel != NULL, (unsigned)(attached > 0 ? attached : 0));
	return 0;
}

static void fw_stop(void)
{
	unload();
	es_prog_status_set("xdp_firewall", false);
}

void fw_get_status(struct fw_status *out)
{
	pthread_mutex_lock(&state_lock);
	*out = state;
	pthread_mutex_unlock(&state_lock);
}

static void fw_status(json_t *o)
{
	struct fw_status s;

	fw_get_status(&s);
	json_object_set_new(o, "active", json_boolean(s.loaded));
	json_object_set_new(o, "enabled", json_boolean(s.enabled));
	json_object_set_new(o, "mode", json_string(s.mode == FW_MODE_BLOCK ? "block" : "alert"));
	json_object_set_new(o, "rule_count", json_integer((json_int_t)s.rule_count));
	json_object_set_new(o, "attached_interfaces", json_integer(s.attached));
}

static void fw_metrics(void)
{
	uint64_t v[ES_FW_M__COUNT];

	if (!m_packets)
		m_packets =
		    es_metric_family("ebpfsentinel_packets", "Packets seen, by source and outcome",
				     ES_M_COUNTER, "interface,action");
	if (!skel || es_percpu_sum_all(bpf_map__fd(skel->maps.fw_metrics), ES_FW_M__COUNT, v))
		return;
	for (int i = 0; i < ES_FW_M__COUNT; i++)
		es_metric_mirror(m_packets, v[i], "FIREWALL_METRICS", metric_names[i]);
}

const struct es_domain es_domain_firewall = {
    .name = "firewall",
    .section = "firewall",
    .parse = fw_parse,
    .free_cfg = fw_free,
    .to_json = fw_to_json,
    .enabled = fw_enabled,
    .start = fw_start,
    .apply = fw_apply,
    .stop = fw_stop,
    .status = fw_status,
    .metrics = fw_metrics,
};
