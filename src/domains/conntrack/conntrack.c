// SPDX-License-Identifier: AGPL-3.0-only
/*
 * Connection tracking domain (network.md §3): the `conntrack:` section, the
 * TC programs (tc_conntrack on ingress, tc_conntrack_egress on egress of every
 * agent interface), CT_CONFIG, the 10 s sweeper, status and CT_METRICS.
 * The programs are loaded when conntrack is enabled or a firewall rule uses
 * reply_to/dup_to (which run in them); a load failure degrades only this
 * domain.
 */
#define ES_LOG_TARGET "ebpfsentinel::conntrack"
#include "domains/conntrack/conntrack.h"
#include "agent/domain.h"
#include "api/metrics.h"
#include "core/log.h"
#include "domains/conntrack/ct_table.h"
#include "kernel/kernel.h"
#include "skel/conntrack.skel.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <net/if.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define NS_PER_SEC 1000000000ull
#define SWEEP_EVERY_TICKS 10

static const char *const ct_keys[] = {
    "enabled",
    "half_open_threshold",
    "rst_threshold",
    "fin_threshold",
    "ack_threshold",
    "tcp_established_timeout_secs",
    "tcp_syn_timeout_secs",
    "tcp_fin_timeout_secs",
    "udp_timeout_secs",
    "udp_stream_timeout_secs",
    "icmp_timeout_secs",
    "max_src_states",
    "max_src_conn_rate",
    "conn_rate_window_secs",
    "overload_ttl_secs",
    NULL,
};

static const char *const metric_names[ES_CT_M__COUNT] = {
    "new", "established", "closed", "invalid", "evicted", "errors", "lookups", "hits", "total_seen",
};

/* Timeout keys in CT_CONFIG order, with defaults. */
static const struct {
	const char *key;
	uint32_t def;
} timeouts[] = {
    {"tcp_established_timeout_secs", ES_CT_DEF_TCP_EST_SECS},
    {"tcp_syn_timeout_secs", ES_CT_DEF_TCP_SYN_SECS},
    {"tcp_fin_timeout_secs", ES_CT_DEF_TCP_FIN_SECS},
    {"udp_timeout_secs", ES_CT_DEF_UDP_SECS},
    {"udp_stream_timeout_secs", ES_CT_DEF_UDP_STREAM_SECS},
    {"icmp_timeout_secs", ES_CT_DEF_ICMP_SECS},
};
#define N_TIMEOUTS (sizeof(timeouts) / sizeof(timeouts[0]))

/* Accepted for compatibility with ddos.connection_tracking; no effect here. */
static const struct {
	const char *key;
	uint32_t def;
} thresholds[] = {
    {"half_open_threshold", 100},
    {"rst_threshold", 50},
    {"fin_threshold", 50},
    {"ack_threshold", 200},
};
#define N_THRESHOLDS (sizeof(thresholds) / sizeof(thresholds[0]))

struct ct_cfg {
	bool enabled;
	bool needed; /* enabled, or a firewall rule uses reply_to/dup_to */
	uint32_t thresholds[N_THRESHOLDS];
	uint32_t timeout_secs[N_TIMEOUTS];
	uint32_t max_src_states, max_src_conn_rate, conn_rate_window_secs, overload_ttl_secs;
};

static struct es_conntrack *skel;
static pthread_mutex_t state_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ct_cfg current; /* under state_lock */
static bool loaded;
static unsigned attached, ticks;

/* Does an enabled firewall rule carry reply_to or dup_to (programs needed)? */
static bool rules_need_ct(const json_t *root)
{
	const json_t *fw = json_object_get(root, "firewall");
	const json_t *rules = json_is_object(fw) ? json_object_get(fw, "rules") : NULL;
	const json_t *r;
	size_t i;

	if (!json_is_array(rules))
		return false;
	json_array_foreach (rules, i, r) {
		const json_t *en = json_object_get(r, "enabled");

		if (json_is_false(en))
			continue;
		if (json_object_get(r, "reply_to") || json_object_get(r, "dup_to"))
			return true;
	}
	return false;
}

static void *ct_parse(struct es_cfg *c, const json_t *node, const char *path, const json_t *root)
{
	struct ct_cfg *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	es_cfg_check_keys(c, node, path, ct_keys);
	if (es_cfg_bool(c, node, path, "enabled", &f->enabled, false))
		goto fail;
	for (size_t i = 0; i < N_THRESHOLDS; i++) {
		if (es_cfg_u32(c, node, path, thresholds[i].key, &f->thresholds[i],
			       thresholds[i].def))
			goto fail;
		if (node && json_object_get(node, thresholds[i].key))
			es_cfg_warn(c,
				    "%s.%s is accepted for compatibility and has no effect (see "
				    "ddos.connection_tracking)",
				    path, thresholds[i].key);
	}
	for (size_t i = 0; i < N_TIMEOUTS; i++) {
		if (es_cfg_u32(c, node, path, timeouts[i].key, &f->timeout_secs[i],
			       timeouts[i].def))
			goto fail;
		if (!f->timeout_secs[i]) {
			es_cfg_fail(c, ES_ERR_VALIDATION, node, path, timeouts[i].key, 0,
				    "must be greater than 0");
			goto fail;
		}
	}
	if (es_cfg_u32(c, node, path, "max_src_states", &f->max_src_states, 0) ||
	    es_cfg_u32(c, node, path, "max_src_conn_rate", &f->max_src_conn_rate, 0) ||
	    es_cfg_u32(c, node, path, "conn_rate_window_secs", &f->conn_rate_window_secs,
		       ES_CT_DEF_RATE_WINDOW_SECS) ||
	    es_cfg_u32(c, node, path, "overload_ttl_secs", &f->overload_ttl_secs,
		       ES_CT_DEF_OVERLOAD_TTL_SECS))
		goto fail;
	if (!f->conn_rate_window_secs) {
		es_cfg_fail(c, ES_ERR_VALIDATION, node, path, "conn_rate_window_secs", 0,
			    "must be greater than 0");
		goto fail;
	}
	if (!f->overload_ttl_secs) {
		es_cfg_fail(c, ES_ERR_VALIDATION, node, path, "overload_ttl_secs", 0,
			    "must be greater than 0");
		goto fail;
	}
	f->needed = f->enabled || rules_need_ct(root);
	return f;
fail:
	free(f);
	return NULL;
}

static void ct_free(void *cfg)
{
	free(cfg);
}

static json_t *ct_to_json(const void *cfg)
{
	const struct ct_cfg *f = cfg;
	json_t *o = json_pack("{s:b}", "enabled", f->enabled);

	for (size_t i = 0; i < N_THRESHOLDS; i++)
		json_object_set_new(o, thresholds[i].key, json_integer(f->thresholds[i]));
	for (size_t i = 0; i < N_TIMEOUTS; i++)
		json_object_set_new(o, timeouts[i].key, json_integer(f->timeout_secs[i]));
	json_object_set_new(o, "max_src_states", json_integer(f->max_src_states));
	json_object_set_new(o, "max_src_conn_rate", json_integer(f->max_src_conn_rate));
	json_object_set_new(o, "conn_rate_window_secs", json_integer(f->conn_rate_window_secs));
	json_object_set_new(o, "overload_ttl_secs", json_integer(f->overload_ttl_secs));
	return o;
}

static bool ct_enabled(const void *cfg)
{
	return ((const struct ct_cfg *)cfg)->enabled;
}

static void to_kernel(const struct ct_cfg *f, struct es_ct_config *k)
{
	__u64 *ns[N_TIMEOUTS] = {&k->tcp_est_ns, &k->tcp_syn_ns,    &k->tcp_fin_ns,
				 &k->udp_ns,	 &k->udp_stream_ns, &k->icmp_ns};

	memset(k, 0, sizeof(*k));
	k->enabled = f->enabled;
	k->max_src_states = f->max_src_states;
	for (size_t i = 0; i < N_TIMEOUTS; i++)
		*ns[i] = (uint64_t)f->timeout_secs[i] * NS_PER_SEC;
	k->max_src_conn_rate = f->max_src_conn_rate;
	k->conn_rate_window_secs = f->conn_rate_window_secs;
}

void ct_current_config(struct es_ct_config *out)
{
	pthread_mutex_lock(&state_lock);
	to_kernel(&current, out);
	pthread_mutex_unlock(&state_lock);
}

static void remember(const struct ct_cfg *f)
{
	pthread_mutex_lock(&state_lock);
	current = *f;
	pthread_mutex_unlock(&state_lock);
}

static int write_config(const struct ct_cfg *f)
{
	struct es_ct_config k;
	__u32 zero = 0;

	to_kernel(f, &k);
	if (bpf_map_update_elem(bpf_map__fd(skel->maps.ct_config), &zero, &k, BPF_ANY))
		return -errno;
	return es_kernel_set_feature(ES_FEAT_CONNTRACK, f->enabled);
}

static int if_mac(const char *name, uint8_t mac[6])
{
	struct ifreq ifr = {0};
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), r = 0;

	if (fd < 0)
		return -errno;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(fd, SIOCGIFHWADDR, &ifr))
		r = -errno;
	else
		memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
	close(fd);
	return r;
}

/* Tell the programs which interfaces run tc_conntrack and their MACs. */
static void fill_iface_maps(void)
{
	for (unsigned i = 0; i < es_kernel_n_ifaces(); i++) {
		__u32 ifx = (__u32)es_kernel_ifindex(i), one = 1;
		uint8_t mac[8] = {0};

		if (!ifx)
			continue;
		bpf_map_update_elem(bpf_map__fd(skel->maps.ct_ifaces), &ifx, &one, BPF_ANY);
		if (if_mac(es_kernel_ifname(i), mac) == 0)
			bpf_map_update_elem(bpf_map__fd(skel->maps.ct_if_mac), &ifx, mac, BPF_ANY);
	}
}

static void publish(void)
{
	es_prog_status_set("tc_conntrack", loaded && attached > 0);
}

static int load_and_attach(const struct ct_cfg *f)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo, .pin_root_path = es_kernel_pin_dir());
	int r, in, out;

	skel = es_conntrack__open_opts(&oo);
	if (!skel)
		return -errno;
	if ((r = es_kernel_prepare_obj(skel->obj)) || (r = es_conntrack__load(skel))) {
		pr_error("tc_conntrack failed to load", LF_INT("error", r));
		goto fail;
	}
	if ((r = write_config(f))) {
		pr_error("cannot write CT_CONFIG", LF_INT("error", r));
		goto fail;
	}
	fill_iface_maps();
	/* Egress first: a flow whose first packet goes out must find its entry. */
	out = es_tc_attach_all("tc_conntrack_egress", ES_TC_EGRESS, ES_TC_PRIO_CONNTRACK_EGRESS,
			       bpf_program__fd(skel->progs.tc_conntrack_egress));
	in = es_tc_attach_all("tc_conntrack", ES_TC_INGRESS, ES_TC_PRIO_CONNTRACK,
			      bpf_program__fd(skel->progs.tc_conntrack));
	loaded = true;
	attached = (unsigned)(in < out ? in : out);
	pr_info("tc_conntrack attached", LF_INT("interfaces", attached),
		LF_BOOL("tracking", f->enabled));
	return 0;
fail:
	es_conntrack__destroy(skel);
	skel = NULL;
	return r;
}

static void unload(void)
{
	if (!skel)
		return;
	es_tc_detach_all(ES_TC_INGRESS, ES_TC_PRIO_CONNTRACK);
	es_tc_detach_all(ES_TC_EGRESS, ES_TC_PRIO_CONNTRACK_EGRESS);
	es_conntrack__destroy(skel);
	skel = NULL;
	loaded = false;
	attached = 0;
}

static int ct_start(const void *cfg)
{
	const struct ct_cfg *f = cfg;
	int r = 0;

	remember(f);
	if (f->needed && es_kernel_ready())
		r = load_and_attach(f);
	publish();
	return r;
}

static int ct_apply(const void *old_cfg, const void *new_cfg)
{
	const struct ct_cfg *n = new_cfg;
	int r = 0;

	if (n->needed && !skel && es_kernel_ready()) {
		r = load_and_attach(n);
	} else if (!n->needed && skel) {
		unload();
	} else if (skel && (r = write_config(n))) {
		pr_error("cannot write CT_CONFIG", LF_INT("error", r));
	}
	if (!r)
		remember(n);
	publish();
	return r;
}

static void ct_stop(void)
{
	unload();
	es_prog_status_set("tc_conntrack", false);
}

bool ct_is_active(void)
{
	return skel != NULL;
}

static void ct_tick(void)
{
	struct es_ct_config k;
	struct ct_sweep_stats st;
	struct ct_maps m;
	uint32_t ttl;
	int r;

	if (!skel || ++ticks % SWEEP_EVERY_TICKS)
		return;
	pthread_mutex_lock(&state_lock);
	to_kernel(&current, &k);
	ttl = current.overload_ttl_secs;
	pthread_mutex_unlock(&state_lock);
	ct_maps_open(&m);
	r = ct_sweep(&m, &k, ttl, &st);
	ct_maps_close(&m);
	if (r)
		pr_warn("conntrack sweep failed", LF_INT("error", r));
	else if (st.expired || st.overload_expired)
		pr_debug("conntrack sweep", LF_UINT("live", st.live),
			 LF_UINT("expired", st.expired), LF_UINT("sources", st.sources),
			 LF_UINT("overload_expired", st.overload_expired));
}

static void ct_status(json_t *o)
{
	json_object_set_new(o, "active", json_boolean(skel != NULL));
	json_object_set_new(o, "attached_interfaces", json_integer(attached));
}

static void ct_metrics(void)
{
	uint64_t v[ES_CT_M__COUNT];

	if (es_kernel_read_counters("ct_metrics", ES_CT_M__COUNT, v) == 0)
		es_metric_mirror_packets("CT_METRICS", metric_names, v, ES_CT_M__COUNT);
}

extern const struct es_route ct_routes[];

const struct es_domain es_domain_conntrack = {
    .name = "conntrack",
    .section = "conntrack",
    .parse = ct_parse,
    .free_cfg = ct_free,
    .to_json = ct_to_json,
    .enabled = ct_enabled,
    .start = ct_start,
    .apply = ct_apply,
    .stop = ct_stop,
    .status = ct_status,
    .metrics = ct_metrics,
    .tick = ct_tick,
    .routes = ct_routes,
};
