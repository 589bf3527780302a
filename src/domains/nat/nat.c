// SPDX-License-Identifier: AGPL-3.0-only
/*
 * NAT domain (network.md §4): the `nat:` section, tc_nat_ingress and
 * tc_nat_egress on every agent interface, rule banks switched atomically,
 * interface addresses for masquerade/redirect (polled every 2 s), idle
 * sessions expired with the conntrack protocol timeouts, NAT_METRICS.
 */
#define ES_LOG_TARGET "ebpfsentinel::nat"
#include "domains/nat/nat.h"
#include "agent/domain.h"
#include "api/metrics.h"
#include "core/log.h"
#include "domains/conntrack/conntrack.h"
#include "domains/nat/nat_rules.h"
#include "kernel/kernel.h"
#include "skel/nat.skel.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define IFADDR_EVERY_TICKS 2
#define SWEEP_EVERY_TICKS 10
#define NS_PER_SEC 1000000000ull

static const char *const metric_names[ES_NAT_M__COUNT] = {
    "snat_applied", "dnat_applied", "masq_applied", "port_alloc_fail", "errors", "total_seen",
};

static struct es_nat *skel;
static pthread_mutex_t state_lock = PTHREAD_MUTEX_INITIALIZER;
static const struct nat_cfg *current; /* the running config (main thread only) */
static unsigned attached, ticks;
static uint32_t compiled_ifindex_sum; /* interface indexes the compiled rules depend on */

static void *nat_parse(struct es_cfg *c, const json_t *node, const char *path, const json_t *root)
{
	return nat_cfg_parse(c, node, path);
}

static void nat_free(void *cfg)
{
	nat_cfg_free(cfg);
}

static json_t *nat_to_json(const void *cfg)
{
	return nat_cfg_to_json(cfg);
}

static bool nat_enabled(const void *cfg)
{
	return ((const struct nat_cfg *)cfg)->enabled;
}

static int ifindex_of(const char *name)
{
	return (int)if_nametoindex(name);
}

static uint32_t ifindex_sum(const struct nat_cfg *n)
{
	uint32_t s = 0;

	for (size_t i = 0; i < n->n_rules; i++)
		if (n->rules[i].enabled && n->rules[i].interface)
			s = s * 31 + (uint32_t)ifindex_of(n->rules[i].interface);
	return s;
}

/* Write one list into its inactive bank, then flip the count word. */
static int write_bank(int rules_fd, int count_fd, uint32_t list, const void *entries,
		      size_t entry_size, uint32_t n, uint32_t bank_size)
{
	uint32_t word = 0, bank, base;

	bpf_map_lookup_elem(count_fd, &list, &word);
	bank = (word & ES_NAT_BANK_BIT) ? 0 : 1;
	base = bank * bank_size;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t k = base + i;

		if (bpf_map_update_elem(rules_fd, &k, (const char *)entries + i * entry_size,
					BPF_ANY))
			return -errno;
	}
	word = n | (bank ? ES_NAT_BANK_BIT : 0);
	if (bpf_map_update_elem(count_fd, &list, &word, BPF_ANY))
		return -errno;
	return 0;
}

static int install_rules(const struct nat_cfg *n)
{
	struct nat_compiled *c = malloc(sizeof(*c));
	int cnt = bpf_map__fd(skel->maps.nat_rule_count), r;

	if (!c)
		return -ENOMEM;
	nat_compile(n, ifindex_of, c);
	if (c->skipped)
		pr_warn("NAT rules not installed (missing interface or no room)",
			LF_UINT("skipped", c->skipped));
	r = write_bank(bpf_map__fd(skel->maps.nat_dnat_rules), cnt, 0, c->dnat4,
		       sizeof(c->dnat4[0]), c->n_dnat4, ES_NAT_MAX_RULES);
	if (!r)
		r = write_bank(bpf_map__fd(skel->maps.nat_snat_rules), cnt, 1, c->snat4,
			       sizeof(c->snat4[0]), c->n_snat4, ES_NAT_MAX_RULES);
	if (!r)
		r = write_bank(bpf_map__fd(skel->maps.nat_dnat_rules_v6), cnt, 2, c->dnat6,
			       sizeof(c->dnat6[0]), c->n_dnat6, ES_NAT_MAX_RULES6);
	if (!r)
		r = write_bank(bpf_map__fd(skel->maps.nat_snat_rules_v6), cnt, 3, c->snat6,
			       sizeof(c->snat6[0]), c->n_snat6, ES_NAT_MAX_RULES6);
	compiled_ifindex_sum = ifindex_sum(n);
	free(c);
	return r;
}

/* ---- interface addresses ---------------------------------------------------------- */

static bool nat_wants_iface(const char *name)
{
	if (es_kernel_iface_pos(name) >= 0)
		return true;
	for (size_t i = 0; current && i < current->n_rules; i++)
		if (current->rules[i].interface && !strcmp(current->rules[i].interface, name))
			return true;
	return false;
}

/* NAT_IFADDR: the primary (first) IPv4 and global IPv6 address of each interface. */
static void refresh_ifaddrs(void)
{
	struct ifaddrs *ifa, *p;
	int fd = bpf_map__fd(skel->maps.nat_ifaddr);
	struct {
		uint32_t ifindex;
		struct es_nat_ifaddr a;
	} seen[ES_NAT_IFADDR_MAX];
	unsigned n = 0;

	if (getifaddrs(&ifa))
		return;
	for (p = ifa; p; p = p->ifa_next) {
		uint32_t ifx;
		unsigned j;

		if (!p->ifa_addr || !nat_wants_iface(p->ifa_name))
			continue;
		if (p->ifa_addr->sa_family != AF_INET && p->ifa_addr->sa_family != AF_INET6)
			continue;
		ifx = if_nametoindex(p->ifa_name);
		for (j = 0; j < n && seen[j].ifindex != ifx; j++)
			;
		if (j == n) {
			if (n == ES_NAT_IFADDR_MAX)
				continue;
			memset(&seen[n], 0, sizeof(seen[n]));
			seen[n++].ifindex = ifx;
		}
		if (p->ifa_addr->sa_family == AF_INET) {
			if (!seen[j].a.v4)
				seen[j].a.v4 =
				    ntohl(((struct sockaddr_in *)p->ifa_addr)->sin_addr.s_addr);
		} else {
			const uint8_t *b = ((struct sockaddr_in6 *)p->ifa_addr)->sin6_addr.s6_addr;
			struct es_addr a = {.family = 6};

			if ((b[0] == 0xfe && (b[1] & 0xc0) == 0x80) || seen[j].a.v6[0] ||
			    seen[j].a.v6[3])
				continue; /* link-local, or already have one */
			memcpy(a.b, b, 16);
			es_addr_words(&a, seen[j].a.v6);
		}
	}
	freeifaddrs(ifa);
	for (unsigned j = 0; j < n; j++) {
		struct es_nat_ifaddr old;

		if (bpf_map_lookup_elem(fd, &seen[j].ifindex, &old) == 0 &&
		    !memcmp(&old, &seen[j].a, sizeof(old)))
			continue;
		bpf_map_update_elem(fd, &seen[j].ifindex, &seen[j].a, BPF_ANY);
		pr_info("NAT interface address", LF_UINT("ifindex", seen[j].ifindex));
	}
}

/* ---- lifecycle -------------------------------------------------------------------- */

static void publish(const struct nat_cfg *n)
{
	pthread_mutex_lock(&state_lock);
	current = n;
	pthread_mutex_unlock(&state_lock);
	es_prog_status_set("tc_nat_ingress", skel && attached);
	es_prog_status_set("tc_nat_egress", skel && attached);
	es_metric_set(es_metric_family("ebpfsentinel_rules_loaded", "Active rules per component",
				       ES_M_GAUGE, "component"),
		      n->enabled ? (double)nat_rules_enabled(n) : 0, "nat");
}

size_t nat_rules_enabled(const struct nat_cfg *n)
{
	size_t k = 0;

	for (size_t i = 0; i < n->n_rules; i++)
		k += n->rules[i].enabled;
	return k;
}

static int load_and_attach(const struct nat_cfg *n)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo, .pin_root_path = es_kernel_pin_dir());
	int r, in, out;

	skel = es_nat__open_opts(&oo);
	if (!skel)
		return -errno;
	if ((r = es_kernel_prepare_obj(skel->obj)) || (r = es_nat__load(skel))) {
		pr_error("tc_nat programs failed to load", LF_INT("error", r));
		goto fail;
	}
	current = n;
	refresh_ifaddrs();
	if ((r = install_rules(n))) {
		pr_error("cannot write NAT rules", LF_INT("error", r));
		goto fail;
	}
	if ((r = es_kernel_set_feature(ES_FEAT_NAT, true)))
		pr_warn("cannot set the NAT feature flag", LF_INT("error", r));
	out = es_tc_attach_all("tc_nat_egress", ES_TC_EGRESS, ES_TC_PRIO_NAT_EGRESS,
			       bpf_program__fd(skel->progs.tc_nat_egress));
	in = es_tc_attach_all("tc_nat_ingress", ES_TC_INGRESS, ES_TC_PRIO_NAT_INGRESS,
			      bpf_program__fd(skel->progs.tc_nat_ingress));
	attached = (unsigned)(in < out ? in : out);
	pr_info("tc_nat attached", LF_INT("interfaces", attached),
		LF_UINT("rules", nat_rules_enabled(n)));
	return 0;
fail:
	es_nat__destroy(skel);
	skel = NULL;
	return r;
}

static void unload(void)
{
	if (!skel)
		return;
	es_kernel_set_feature(ES_FEAT_NAT, false);
	es_tc_detach_all(ES_TC_INGRESS, ES_TC_PRIO_NAT_INGRESS);
	es_tc_detach_all(ES_TC_EGRESS, ES_TC_PRIO_NAT_EGRESS);
	es_nat__destroy(skel);
	skel = NULL;
	attached = 0;
}

static int nat_start(const void *cfg)
{
	const struct nat_cfg *n = cfg;
	int r = 0;

	if (n->enabled && es_kernel_ready())
		r = load_and_attach(n);
	publish(n);
	return r;
}

static int nat_apply(const void *old_cfg, const void *new_cfg)
{
	const struct nat_cfg *n = new_cfg;
	int r = 0;

	if (n->enabled && !skel && es_kernel_ready())
		r = load_and_attach(n);
	else if (!n->enabled && skel)
		unload();
	else if (skel && (r = install_rules(n)))
		pr_error("cannot write NAT rules", LF_INT("error", r));
	if (r) {
		if (old_cfg && skel)
			install_rules(old_cfg);
		return r;
	}
	publish(n);
	return 0;
}

static void nat_stop(void)
{
	unload();
	pthread_mutex_lock(&state_lock);
	current = NULL;
	pthread_mutex_unlock(&state_lock);
	es_prog_status_set("tc_nat_ingress", false);
	es_prog_status_set("tc_nat_egress", false);
}

static void nat_tick(void)
{
	struct es_ct_config ct;
	int fd;

	if (!skel)
		return;
	ticks++;
	if (ticks % IFADDR_EVERY_TICKS == 0) {
		refresh_ifaddrs();
		/* An interface a rule names appeared or was re-created: recompile. */
		if (current && ifindex_sum(current) != compiled_ifindex_sum)
			install_rules(current);
	}
	if (ticks % SWEEP_EVERY_TICKS)
		return;
	ct_current_config(&ct);
	fd = bpf_map__fd(skel->maps.nat_sessions);
	nat_sessions_expire(fd, &ct, ct_is_active());
}

static void nat_status(json_t *o)
{
	json_object_set_new(o, "active", json_boolean(skel != NULL));
	json_object_set_new(o, "attached_interfaces", json_integer(attached));
}

static void nat_metrics(void)
{
	uint64_t v[ES_NAT_M__COUNT];

	if (es_kernel_read_counters("nat_metrics", ES_NAT_M__COUNT, v) == 0)
		es_metric_mirror_packets("NAT_METRICS", metric_names, v, ES_NAT_M__COUNT);
}

int nat_sessions_fd(void)
{
	return es_kernel_open_pinned("nat_sessions");
}

extern const struct es_route nat_routes[];

const struct es_domain es_domain_nat = {
    .name = "nat",
    .section = "nat",
    .parse = nat_parse,
    .free_cfg = nat_free,
    .to_json = nat_to_json,
    .enabled = nat_enabled,
    .start = nat_start,
    .apply = nat_apply,
    .stop = nat_stop,
    .status = nat_status,
    .metrics = nat_metrics,
    .tick = nat_tick,
    .routes = nat_routes,
};
