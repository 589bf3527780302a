// SPDX-License-Identifier: AGPL-3.0-only
/*
 * Scrub domain (network.md §5): the `firewall.scrub` section and tc_scrub on
 * the ingress of every agent interface (priority 2), SCRUB_METRICS.
 */
#define ES_LOG_TARGET "ebpfsentinel::scrub"
#include "abi/scrub.h"
#include "agent/domain.h"
#include "api/metrics.h"
#include "core/log.h"
#include "kernel/kernel.h"
#include "skel/scrub.skel.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdlib.h>

static const char *const scrub_keys[] = {
    "enabled",	"min_ttl",	"min_hop_limit",	"max_mss",
    "clear_df", "random_ip_id", "reassemble_fragments", NULL,
};

static const char *const metric_names[ES_SCRUB_M__COUNT] = {
    "packets",	       "ttl_fixed", "mss_clamped", "df_cleared",
    "ipid_randomized", "errors",    "hop_fixed",   "total_seen",
};

struct scrub_cfg {
	bool enabled, clear_df, random_ip_id, reassemble_fragments;
	uint8_t min_ttl, min_hop_limit;
	uint16_t max_mss;
};

static struct es_scrub *skel;
static unsigned attached;

static void *scrub_parse(struct es_cfg *c, const json_t *node, const char *path, const json_t *root)
{
	struct scrub_cfg *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	es_cfg_check_keys(c, node, path, scrub_keys);
	if (es_cfg_bool(c, node, path, "enabled", &s->enabled, false) ||
	    es_cfg_u8(c, node, path, "min_ttl", &s->min_ttl, 0) ||
	    es_cfg_u8(c, node, path, "min_hop_limit", &s->min_hop_limit, 0) ||
	    es_cfg_u16(c, node, path, "max_mss", &s->max_mss, 0) ||
	    es_cfg_bool(c, node, path, "clear_df", &s->clear_df, false) ||
	    es_cfg_bool(c, node, path, "random_ip_id", &s->random_ip_id, false) ||
	    es_cfg_bool(c, node, path, "reassemble_fragments", &s->reassemble_fragments, false)) {
		free(s);
		return NULL;
	}
	if (s->reassemble_fragments)
		es_cfg_warn(c, "%s.reassemble_fragments is accepted and has no effect", path);
	if (s->enabled && !s->min_ttl && !s->min_hop_limit && !s->max_mss && !s->clear_df &&
	    !s->random_ip_id)
		es_cfg_warn(c, "%s is enabled but every normalization is off", path);
	return s;
}

static void scrub_free(void *cfg)
{
	free(cfg);
}

static json_t *scrub_to_json(const void *cfg)
{
	const struct scrub_cfg *s = cfg;

	return json_pack("{s:b,s:i,s:i,s:i,s:b,s:b,s:b}", "enabled", s->enabled, "min_ttl",
			 s->min_ttl, "min_hop_limit", s->min_hop_limit, "max_mss", s->max_mss,
			 "clear_df", s->clear_df, "random_ip_id", s->random_ip_id,
			 "reassemble_fragments", s->reassemble_fragments);
}

static bool scrub_enabled(const void *cfg)
{
	return ((const struct scrub_cfg *)cfg)->enabled;
}

static int write_config(const struct scrub_cfg *s)
{
	struct es_scrub_config k = {
	    .enabled = s->enabled,
	    .min_ttl = s->min_ttl,
	    .clear_df = s->clear_df,
	    .random_ip_id = s->random_ip_id,
	    .max_mss = s->max_mss,
	    .min_hop_limit = s->min_hop_limit,
	};
	__u32 zero = 0;

	return bpf_map_update_elem(bpf_map__fd(skel->maps.scrub_config), &zero, &k, BPF_ANY)
		   ? -errno
		   : 0;
}

static int load_and_attach(const struct scrub_cfg *s)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo, .pin_root_path = es_kernel_pin_dir());
	int r, n;

	skel = es_scrub__open_opts(&oo);
	if (!skel)
		return -errno;
	if ((r = es_kernel_prepare_obj(skel->obj)) || (r = es_scrub__load(skel)) ||
	    (r = write_config(s))) {
		pr_error("tc_scrub failed to load", LF_INT("error", r));
		es_scrub__destroy(skel);
		skel = NULL;
		return r;
	}
	n = es_tc_attach_all("tc_scrub", ES_TC_INGRESS, ES_TC_PRIO_SCRUB,
			     bpf_program__fd(skel->progs.tc_scrub));
	attached = (unsigned)(n > 0 ? n : 0);
	pr_info("tc_scrub attached", LF_INT("interfaces", n));
	return 0;
}

static void unload(void)
{
	if (!skel)
		return;
	es_tc_detach_all(ES_TC_INGRESS, ES_TC_PRIO_SCRUB);
	es_scrub__destroy(skel);
	skel = NULL;
	attached = 0;
}

static void publish(void)
{
	es_prog_status_set("tc_scrub", skel && attached);
}

static int scrub_start(const void *cfg)
{
	const struct scrub_cfg *s = cfg;
	int r = 0;

	if (s->enabled && es_kernel_ready())
		r = load_and_attach(s);
	publish();
	return r;
}

static int scrub_apply(const void *old_cfg, const void *new_cfg)
{
	const struct scrub_cfg *s = new_cfg;
	int r = 0;

	if (s->enabled && !skel && es_kernel_ready())
		r = load_and_attach(s);
	else if (!s->enabled && skel)
		unload();
	else if (skel)
		r = write_config(s);
	publish();
	return r;
}

static void scrub_stop(void)
{
	unload();
	publish();
}

static void scrub_status(json_t *o)
{
	json_object_set_new(o, "active", json_boolean(skel != NULL));
	json_object_set_new(o, "attached_interfaces", json_integer(attached));
}

static void scrub_metrics(void)
{
	uint64_t v[ES_SCRUB_M__COUNT];

	if (es_kernel_read_counters("scrub_metrics", ES_SCRUB_M__COUNT, v) == 0)
		es_metric_mirror_packets("SCRUB_METRICS", metric_names, v, ES_SCRUB_M__COUNT);
}

const struct es_domain es_domain_scrub = {
    .name = "scrub",
    .section = "firewall.scrub",
    .parse = scrub_parse,
    .free_cfg = scrub_free,
    .to_json = scrub_to_json,
    .enabled = scrub_enabled,
    .start = scrub_start,
    .apply = scrub_apply,
    .stop = scrub_stop,
    .status = scrub_status,
    .metrics = scrub_metrics,
};
