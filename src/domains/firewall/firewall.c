// SPDX-License-Identifier: AGPL-3.0-only
/*
 * Firewall domain (network.md §2): the `firewall:` section, the xdp_firewall
 * entry program (loaded, given its rule set, then attached as the XDP chain
 * head on every agent interface), the live rule set (configuration plus REST
 * changes) compiled into the kernel's inactive bank on every change, the
 * schedule evaluator, alias refreshes, events, status and counters.
 *
 * Writers (REST, reload, tick) serialize on ctl_lock and publish an immutable
 * snapshot for readers.
 */
#define ES_LOG_TARGET "ebpfsentinel::firewall"
#include "domains/firewall/firewall.h"
#include "domains/firewall/fw.h"
#include "domains/routing/routing.h"
#include "abi/firewall.h"
#include "agent/domain.h"
#include "api/metrics.h"
#include "core/log.h"
#include "kernel/events.h"
#include "kernel/kernel.h"
#include "skel/firewall.skel.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *const mode_names[] = {"alert", "monitor", "observe", "block", "enforce", NULL};
static const char *const policy_names[] = {"pass", "drop", NULL};
static const char *const fw_keys[] = {
    "enabled",	 "mode",	 "default_policy", "rules", "aliases",
    "schedules", "anti_lockout", "scrub",	   NULL,
};
static const char *const metric_names[ES_FW_M__COUNT] = {
    "passed", "dropped", "errors", "events_dropped", "total_seen",
};
static const uint16_t default_lockout_ports[] = {22, 8080, 50051};

/* ---- configuration ------------------------------------------------------------------- */

static void cfg_put(struct fw_cfg *f)
{
	if (!f || __atomic_sub_fetch(&f->refs, 1, __ATOMIC_ACQ_REL))
		return;
	fw_ruleset_free(&f->rules);
	fw_aliases_free(&f->aliases);
	fw_schedules_free(&f->schedules);
	es_strv_free(f->anti_lockout.interfaces);
	free(f->anti_lockout.ports);
	free(f);
}

static struct fw_cfg *cfg_ref(struct fw_cfg *f)
{
	__atomic_add_fetch(&f->refs, 1, __ATOMIC_ACQ_REL);
	return f;
}

int fw_rule_check_refs(const struct fw_rule *r, const struct fw_aliases *a,
		       const struct fw_schedules *s, const char **key, char *why, size_t len)
{
	const struct {
		const char *key, *name;
		enum fw_alias_kind kind;
	} refs[] = {
	    {"src_alias", r->src_alias, FW_AK_IP},
	    {"dst_alias", r->dst_alias, FW_AK_IP},
	    {"src_port_alias", r->src_port_alias, FW_AK_PORT},
	    {"dst_port_alias", r->dst_port_alias, FW_AK_PORT},
	};

	for (size_t i = 0; i < sizeof(refs) / sizeof(refs[0]); i++) {
		const struct fw_alias *al;

		if (!refs[i].name)
			continue;
		al = fw_alias_find(a, refs[i].name);
		*key = refs[i].key;
		if (!al) {
			snprintf(why, len, "unknown alias '%s'", refs[i].name);
			return -EINVAL;
		}
		if (al->kind != refs[i].kind) {
			snprintf(why, len, "alias '%s' is %s alias, %s needs %s alias",
				 refs[i].name, al->kind == FW_AK_IP ? "an address" : "a port",
				 refs[i].key, refs[i].kind == FW_AK_IP ? "an address" : "a port");
			return -EINVAL;
		}
	}
	if (r->schedule && !fw_schedule_find(s, r->schedule)) {
		*key = "schedule";
		snprintf(why, len, "unknown schedule '%s'", r->schedule);
		return -EINVAL;
	}
	return 0;
}

static int parse_anti_lockout(struct es_cfg *c, const json_t *node, const char *path,
			      struct fw_anti_lockout *al)
{
	static const char *const keys[] = {"enabled", "interfaces", "ports", NULL};
	json_t *o = NULL, *ports, *item;
	char p[300];
	size_t i;

	if (es_cfg_expect_object(c, node, path, "anti_lockout", &o))
		return -EINVAL;
	es_path_key(p, sizeof(p), path, "anti_lockout");
	es_cfg_check_keys(c, o, p, keys);
	if (es_cfg_bool(c, o, p, "enabled", &al->enabled, true) ||
	    es_cfg_strv(c, o, p, "interfaces", &al->interfaces, NULL) ||
	    es_cfg_array(c, o, p, "ports", &ports))
		return -EINVAL;
	if (!al->interfaces && !(al->interfaces = calloc(1, sizeof(char *))))
		return -ENOMEM;
	if (!ports) {
		al->n_ports = sizeof(default_lockout_ports) / sizeof(default_lockout_ports[0]);
		al->ports = malloc(sizeof(default_lockout_ports));
		if (!al->ports)
			return -ENOMEM;
		memcpy(al->ports, default_lockout_ports, sizeof(default_lockout_ports));
		return 0;
	}
	al->ports = calloc(json_array_size(ports) + 1, sizeof(*al->ports));
	if (!al->ports)
		return -ENOMEM;
	snprintf(p, sizeof(p), "%s.anti_lockout.ports", path);
	json_array_foreach (ports, i, item) {
		if (!json_is_integer(item) || json_integer_value(item) < 1 ||
		    json_integer_value(item) > 65535)
			return es_cfg_fail(c, ES_ERR_VALIDATION, ports, p, NULL, i,
					   "invalid port: expected 1-65535");
		al->ports[al->n_ports++] = (uint16_t)json_integer_value(item);
	}
	return 0;
}

/* Warn when default drop leaves nothing admitting IPv6 neighbour discovery. */
static void warn_nd(struct es_cfg *c, const struct fw_cfg *f)
{
	for (size_t i = 0; i < f->rules.n; i++) {
		const struct fw_rule *r = &f->rules.v[i];

		if (!r->enabled || r->action == ES_FW_ACT_DROP || r->has_src || r->has_dst ||
		    r->src_alias || r->dst_alias || r->scope != FW_SCOPE_GLOBAL || r->vlan_id ||
		    r->ct_mask || r->has_smac || r->has_dmac || r->dscp_match >= 0 || r->schedule)
			continue;
		if (r->proto == FW_PROTO_ANY ||
		    (r->proto == FW_PROTO_ICMP &&
		     (r->icmp_type < 0 || r->icmp_type == 135 || r->icmp_type == 136)))
			return;
	}
	es_cfg_warn(c, "firewall.default_policy: drop with no rule admitting ICMPv6 135/136: IPv6 "
		       "neighbour discovery will fail");
}

static void *fw_parse(struct es_cfg *c, const json_t *node, const char *path, const json_t *root)
{
	struct fw_cfg *f = calloc(1, sizeof(*f));
	json_t *rules, *item, *ids = json_object();
	const json_t *ct;
	bool ct_on = false;
	char p[300], ip[320], why[256];
	int mode, policy;
	size_t i;

	if (!f) {
		json_decref(ids);
		return NULL;
	}
	f->refs = 1;
	es_cfg_check_keys(c, node, path, fw_keys);
	if (es_cfg_bool(c, node, path, "enabled", &f->enabled, true) ||
	    es_cfg_enum(c, node, path, "mode", mode_names, &mode, 0) ||
	    es_cfg_enum_exact(c, node, path, "default_policy", policy_names, &policy, 0) ||
	    es_cfg_array(c, node, path, "rules", &rules))
		goto fail;
	f->mode = mode >= 3 ? FW_MODE_BLOCK : FW_MODE_ALERT;
	f->default_policy = policy ? FW_POLICY_DROP : FW_POLICY_PASS;
	es_path_key(p, sizeof(p), path, "aliases");
	if (fw_aliases_parse(c, json_object_get(node, "aliases"), p, &f->aliases))
		goto fail;
	es_path_key(p, sizeof(p), path, "schedules");
	if (fw_schedules_parse(c, json_object_get(node, "schedules"), p, &f->schedules))
		goto fail;
	if (parse_anti_lockout(c, node, path, &f->anti_lockout))
		goto fail;

	ct = json_object_get(json_object_get(root, "conntrack"), "enabled");
	ct_on = json_is_true(ct);
	es_path_key(p, sizeof(p), path, "rules");
	json_array_foreach (rules, i, item) {
		struct fw_rule r;
		const char *key = NULL;

		es_path_idx(ip, sizeof(ip), p, i);
		if (fw_rule_parse(c, item, ip, &r))
			goto fail;
		r.order = i;
		if (es_cfg_unique_id(c, ids, item, ip, r.id, "duplicate rule id '%s'", r.id)) {
			fw_rule_free(&r);
			goto fail;
		}
		if (fw_rule_check_refs(&r, &f->aliases, &f->schedules, &key, why, sizeof(why))) {
			es_cfg_fail(c, ES_ERR_VALIDATION, item, ip, key, 0, "%s", why);
			fw_rule_free(&r);
			goto fail;
		}
		if (r.ct_mask && !ct_on)
			es_cfg_warn(
			    c, "%s.state: conntrack is disabled, so state matches never match", ip);
		if (fw_ruleset_push(&f->rules, &r)) {
			fw_rule_free(&r);
			goto fail;
		}
		fw_rule_free(&r);
	}
	if (f->default_policy == FW_POLICY_DROP)
		warn_nd(c, f);
	json_decref(ids);
	return f;
fail:
	json_decref(ids);
	cfg_put(f);
	return NULL;
}

static void fw_free(void *cfg)
{
	cfg_put(cfg);
}

static json_t *fw_to_json(const void *cfg)
{
	const struct fw_cfg *f = cfg;
	json_t *o = json_object(), *rules = json_array(), *al = json_object(), *sc = json_object();
	json_t *ports = json_array(), *ifs = json_array();

	json_object_set_new(o, "enabled", json_boolean(f->enabled));
	json_object_set_new(o, "mode", json_string(f->mode == FW_MODE_BLOCK ? "block" : "alert"));
	json_object_set_new(o, "default_policy",
			    json_string(f->default_policy == FW_POLICY_DROP ? "drop" : "pass"));
	for (size_t i = 0; i < f->rules.n; i++)
		json_array_append_new(rules, fw_rule_to_cfg_json(&f->rules.v[i]));
	json_object_set_new(o, "rules", rules);
	for (size_t i = 0; i < f->aliases.n; i++)
		json_object_set_new(al, f->aliases.v[i].name, fw_alias_to_json(&f->aliases.v[i]));
	json_object_set_new(o, "aliases", al);
	for (size_t i = 0; i < f->schedules.n; i++)
		json_object_set_new(sc, f->schedules.v[i].name,
				    fw_schedule_to_json(&f->schedules.v[i]));
	json_object_set_new(o, "schedules", sc);
	for (size_t i = 0; i < f->anti_lockout.n_ports; i++)
		json_array_append_new(ports, json_integer(f->anti_lockout.ports[i]));
	for (size_t i = 0; f->anti_lockout.interfaces && f->anti_lockout.interfaces[i]; i++)
		json_array_append_new(ifs, json_string(f->anti_lockout.interfaces[i]));
	json_object_set_new(o, "anti_lockout",
			    json_pack("{s:b,s:o,s:o}", "enabled", f->anti_lockout.enabled,
				      "interfaces", ifs, "ports", ports));
	return o;
}

static bool fw_enabled(const void *cfg)
{
	return ((const struct fw_cfg *)cfg)->enabled;
}

/* The reload audit record's `after` (interfaces.md §8.2). */
static json_t *fw_summary(const void *cfg)
{
	const struct fw_cfg *f = cfg;

	return json_pack("{s:I,s:s,s:b}", "rule_count", (json_int_t)f->rules.n, "mode",
			 f->mode == FW_MODE_BLOCK ? "block" : "alert", "enabled", f->enabled);
}

/* ---- stable numeric rule ids (event decoding) ------------------------------------------- */

static pthread_mutex_t num_lock = PTHREAD_MUTEX_INITIALIZER;
static char **num_ids; /* num_ids[n - 1] is the id of number n */
static uint32_t n_num, num_cap;
static json_t *num_of; /* id → n: a linear search made compiling 4 096 rules quadratic */

static uint32_t rule_num(const char *id, void *arg)
{
	uint32_t n = 0;
	json_t *have;

	(void)arg;
	pthread_mutex_lock(&num_lock);
	if (!num_of && !(num_of = json_object()))
		goto out;
	if ((have = json_object_get(num_of, id))) {
		n = (uint32_t)json_integer_value(have);
		goto out;
	}
	if (n_num + 1 >= ES_FW_RULE_ID_MAX)
		goto out;
	if (n_num == num_cap) {
		uint32_t cap = num_cap ? num_cap * 2 : 256;
		char **nv = realloc(num_ids, cap * sizeof(*nv));

		if (!nv)
			goto out;
		num_ids = nv;
		num_cap = cap;
	}
	if (!(num_ids[n_num] = strdup(id)) ||
	    json_object_set_new(num_of, id, json_integer(n_num + 1))) {
		free(num_ids[n_num]);
		goto out;
	}
	n = ++n_num;
out:
	pthread_mutex_unlock(&num_lock);
	return n;
}

/* The string id of a numeric rule id, or a reserved name; caller frees. */
static char *rule_name(uint32_t n)
{
	char *s = NULL;

	switch (n) {
	case ES_FW_RULE_DEFAULT: return strdup("default-policy");
	case ES_FW_RULE_LPM: return strdup("lpm-block-list");
	case ES_FW_RULE_ZONE: return strdup("zone-policy");
	case ES_FW_RULE_CONN_LIMIT: return strdup("connection-limit");
	default: break;
	}
	pthread_mutex_lock(&num_lock);
	if (n && n <= n_num)
		s = strdup(num_ids[n - 1]);
	pthread_mutex_unlock(&num_lock);
	return s;
}

/* ---- runtime ---------------------------------------------------------------------------- */

static struct es_firewall *skel;
static struct fw_kern *kern;
static pthread_mutex_t ctl_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	struct fw_cfg *cfg;	/* the applied section (a reference) */
	struct fw_ruleset live; /* user rules: configuration + REST changes */
	struct fw_ruleset sys;	/* anti-lockout rules */
	size_t next_order;	/* config order for rules added at run time */
	uint32_t generation;
	char *sched_sig; /* which scheduled rules were active at the last compile */
	bool vlan_warned;
} rt;
static atomic_bool alias_dirty;
static unsigned sched_ticks, sched_interval = 60;

static pthread_mutex_t snap_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fw_snap *snap;
static pthread_mutex_t state_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fw_status state;
static struct es_mfam *m_packets, *m_rules;

void fw_get_status(struct fw_status *out)
{
	pthread_mutex_lock(&state_lock);
	*out = state;
	pthread_mutex_unlock(&state_lock);
}

static void set_status(bool loaded, unsigned attached, size_t installed)
{
	pthread_mutex_lock(&state_lock);
	if (rt.cfg) {
		state.enabled = rt.cfg->enabled;
		state.mode = (enum fw_mode)rt.cfg->mode;
		state.default_policy = (enum fw_policy)rt.cfg->default_policy;
	}
	state.loaded = loaded;
	state.attached = attached;
	state.rule_count = installed;
	pthread_mutex_unlock(&state_lock);
	es_prog_status_set("xdp_firewall", loaded && attached > 0);
}

struct fw_snap *fw_snap_get(void)
{
	struct fw_snap *s;

	pthread_mutex_lock(&snap_lock);
	s = snap;
	if (s)
		s->refs++;
	pthread_mutex_unlock(&snap_lock);
	return s;
}

void fw_snap_put(struct fw_snap *s)
{
	bool last;

	if (!s)
		return;
	pthread_mutex_lock(&snap_lock);
	last = --s->refs == 0;
	pthread_mutex_unlock(&snap_lock);
	if (!last)
		return;
	cfg_put(s->cfg);
	fw_ruleset_free(&s->rules);
	fw_ruleset_free(&s->sys);
	free(s->sched_active);
	free(s);
}

static int cmp_rule(const void *a, const void *b)
{
	const struct fw_rule *x = a, *y = b;

	if (x->priority != y->priority)
		return x->priority < y->priority ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

static bool rule_sched_active(const struct fw_rule *r, const struct tm *now)
{
	const struct fw_schedule *s;

	if (!r->schedule)
		return true;
	s = fw_schedule_find(&rt.cfg->schedules, r->schedule);
	return s && fw_schedule_active(s, now);
}

/* Publish what readers see. Called with ctl_lock held. */
static void publish(const struct tm *now, size_t installed, const char *error)
{
	struct fw_snap *s = calloc(1, sizeof(*s)), *old;

	if (!s)
		return;
	s->refs = 1;
	s->cfg = rt.cfg ? cfg_ref(rt.cfg) : NULL;
	if (fw_ruleset_copy(&s->rules, &rt.live) || fw_ruleset_copy(&s->sys, &rt.sys)) {
		s->refs = 0;
		fw_ruleset_free(&s->rules);
		fw_ruleset_free(&s->sys);
		cfg_put(s->cfg);
		free(s);
		return;
	}
	qsort(s->rules.v, s->rules.n, sizeof(s->rules.v[0]), cmp_rule);
	s->sched_active = calloc(s->rules.n + 1, sizeof(bool));
	for (size_t i = 0; s->sched_active && i < s->rules.n; i++)
		s->sched_active[i] = !now || rule_sched_active(&s->rules.v[i], now);
	s->enabled = rt.cfg && rt.cfg->enabled;
	s->loaded = skel != NULL;
	s->generation = rt.generation;
	s->installed = installed;
	snprintf(s->last_error, sizeof(s->last_error), "%s", error ? error : "");
	pthread_mutex_lock(&snap_lock);
	old = snap;
	snap = s;
	pthread_mutex_unlock(&snap_lock);
	fw_snap_put(old);
}

/* The anti-lockout rules of a section (network.md §2.3). */
static int build_sys(const struct fw_cfg *f, struct fw_ruleset *out)
{
	const struct fw_anti_lockout *al = &f->anti_lockout;
	size_t n_if = 0;

	memset(out, 0, sizeof(*out));
	if (!al->enabled)
		return 0;
	while (al->interfaces && al->interfaces[n_if])
		n_if++;
	for (size_t p = 0; p < al->n_ports; p++) {
		for (size_t i = 0; i < (n_if ? n_if : 1); i++) {
			struct fw_rule r = {0};
			struct es_port_range pr = {al->ports[p], al->ports[p]};
			char id[300];
			int ret;

			if (n_if)
				snprintf(id, sizeof(id), "anti-lockout-%s-%u", al->interfaces[i],
					 al->ports[p]);
			else
				snprintf(id, sizeof(id), "anti-lockout-%u", al->ports[p]);
			r.id = id;
			r.priority = 0;
			r.action = ES_FW_ACT_PASS;
			r.enabled = true;
			r.system = true;
			r.proto = FW_PROTO_TCP;
			r.dports.r = &pr;
			r.dports.n = 1;
			r.icmp_type = r.icmp_code = r.dscp_match = r.dscp_mark = -1;
			r.scope = n_if ? FW_SCOPE_IFACE : FW_SCOPE_GLOBAL;
			r.scope_name = n_if ? al->interfaces[i] : NULL;
			ret = fw_ruleset_push(out, &r);
			if (ret) {
				fw_ruleset_free(out);
				return ret;
			}
		}
	}
	return 0;
}

static void local_now(struct tm *tm)
{
	time_t t = fw_sched_now();

	localtime_r(&t, tm);
}

/* Which scheduled rules are active now, as a string of 0/1 (change detection). */
static char *sched_signature(const struct tm *now)
{
	char *s = malloc(rt.live.n + 1);

	if (!s)
		return NULL;
	for (size_t i = 0; i < rt.live.n; i++)
		s[i] = rule_sched_active(&rt.live.v[i], now) ? '1' : '0';
	s[rt.live.n] = '\0';
	return s;
}

/* Turn rx-VLAN offload off on agent interfaces, so XDP sees the tags (network.md §1.7). */
static void vlan_offload_off(void)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return;
	for (unsigned i = 0; i < es_kernel_n_ifaces(); i++) {
		struct ethtool_value ev = {.cmd = ETHTOOL_GFLAGS};
		struct ifreq ifr = {0};

		snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", es_kernel_ifname(i));
		ifr.ifr_data = (void *)&ev;
		if (ioctl(fd, SIOCETHTOOL, &ifr) == 0 && !(ev.data & ETH_FLAG_RXVLAN))
			continue;
		ev.cmd = ETHTOOL_SFLAGS;
		ev.data &= ~(__u32)ETH_FLAG_RXVLAN;
		if (ioctl(fd, SIOCETHTOOL, &ifr)) {
			pr_warn("rules match vlan_id but rx-VLAN offload could not be turned off: "
				"XDP will not see tags the NIC strips",
				LF_STR("interface", es_kernel_ifname(i)),
				LF_STR("error", strerror(errno)));
		} else {
			pr_info("rx-VLAN offload turned off so XDP sees VLAN tags",
				LF_STR("interface", es_kernel_ifname(i)));
		}
	}
	close(fd);
}

/*
 * Hand the routing actions of the live rules to the routing domain, which
 * resolves them into FW_ROUTE_TARGETS (and re-points route_to on failover).
 */
static void bind_routes(void)
{
	struct routing_binding *b = calloc(rt.live.n + 1, sizeof(*b));
	unsigned n = 0;

	if (!b)
		return;
	for (size_t i = 0; i < rt.live.n; i++) {
		const struct fw_rule *r = &rt.live.v[i];
		const json_t *g = json_object_get(r->route_cfg, "gateway");
		const json_t *ifn = json_object_get(r->route_cfg, "interface");

		if (!r->enabled || r->route == FW_ROUTE_NONE)
			continue;
		b[n].rule_id = rule_num(r->id, NULL);
		b[n].kind = (enum routing_kind)r->route;
		if (json_is_string(g))
			snprintf(b[n].gateway, sizeof(b[n].gateway), "%s", json_string_value(g));
		else if (json_is_integer(g))
			snprintf(b[n].gateway, sizeof(b[n].gateway), "%lld",
				 (long long)json_integer_value(g));
		if (json_is_string(ifn))
			snprintf(b[n].interface, sizeof(b[n].interface), "%s",
				 json_string_value(ifn));
		b[n].family = r->has_src ? r->src.addr.family : r->has_dst ? r->dst.addr.family : 0;
		n++;
	}
	routing_set_bindings(b, n);
	free(b);
}

/*
 * Compile the live set and install it into the inactive bank. Called with
 * ctl_lock held. 0, or -errno with why (the running set stays).
 */
static int recompile(char *why, size_t whylen)
{
	char *ifn[ES_FW_MAX_IFACES + 1] = {0};
	struct fw_compile_in in = {0};
	struct fw_image img;
	struct tm now;
	size_t n_if = es_kernel_n_ifaces(), installed = 0;
	bool uses_vlan = false;
	int ret;

	why[0] = '\0';
	if (!rt.cfg)
		return 0;
	local_now(&now);
	for (size_t i = 0; i < n_if && i < ES_FW_MAX_IFACES; i++)
		ifn[i] = (char *)es_kernel_ifname((unsigned)i);
	in.rules = rt.live.v;
	in.n_rules = rt.live.n;
	in.sys = rt.sys.v;
	in.n_sys = rt.sys.n;
	in.aliases = &rt.cfg->aliases;
	in.schedules = &rt.cfg->schedules;
	in.now = &now;
	in.alert_mode = rt.cfg->mode == FW_MODE_ALERT;
	in.default_policy =
	    rt.cfg->default_policy == FW_POLICY_DROP ? ES_FW_POLICY_DROP : ES_FW_POLICY_PASS;
	in.ifnames = ifn;
	in.n_ifnames = n_if < ES_FW_MAX_IFACES ? n_if : ES_FW_MAX_IFACES;
	in.rule_num = rule_num;
	in.generation = rt.generation + 1;
	free(rt.sched_sig);
	rt.sched_sig = sched_signature(&now);
	for (size_t i = 0; i < rt.live.n; i++)
		uses_vlan |= rt.live.v[i].enabled && rt.live.v[i].vlan_id;
	if (!kern) {
		/* Not loaded: only the view changes. */
		publish(&now, 0, NULL);
		return 0;
	}
	ret = fw_compile(&in, &img, why, whylen);
	if (ret) {
		pr_error("firewall rules not installed; the previous set stays",
			 LF_STR("error", why));
		publish(&now, state.rule_count, why);
		return ret;
	}
	if (uses_vlan && !rt.vlan_warned) {
		vlan_offload_off();
		rt.vlan_warned = true;
	}
	bind_routes();
	ret = fw_kern_install(kern, &img);
	if (ret) {
		snprintf(why, whylen, "kernel update failed: %s", strerror(-ret));
		pr_error("firewall rules not installed", LF_STR("error", why));
	} else {
		rt.generation++;
		installed = img.hdr.n_rules + img.hdr.n_sys;
		pr_info("firewall rules installed", LF_UINT("rules", img.hdr.n_rules),
			LF_UINT("system_rules", img.hdr.n_sys), LF_UINT("classes", img.n_cls),
			LF_UINT("generation", rt.generation),
			LF_UINT("unscheduled", img.n_unscheduled),
			LF_UINT("never_matching", img.n_never));
	}
	fw_image_free(&img);
	if (!ret) {
		pthread_mutex_lock(&state_lock);
		state.rule_count = installed;
		pthread_mutex_unlock(&state_lock);
	}
	publish(&now, ret ? state.rule_count : installed, ret ? why : NULL);
	return ret;
}

/* Take a section as the running one (ctl_lock held). */
static int adopt(const struct fw_cfg *f, char *why, size_t whylen)
{
	struct fw_ruleset live, sys;
	struct fw_cfg *old_cfg = rt.cfg;
	int ret;

	if (fw_ruleset_copy(&live, &f->rules))
		return -ENOMEM;
	if ((ret = build_sys(f, &sys))) {
		fw_ruleset_free(&live);
		return ret;
	}
	rt.cfg = cfg_ref((struct fw_cfg *)f);
	{
		struct fw_ruleset ol = rt.live, os = rt.sys;

		rt.live = live;
		rt.sys = sys;
		rt.next_order = f->rules.n;
		ret = recompile(why, whylen);
		if (ret) {
			/* Keep running the previous section. */
			fw_ruleset_free(&rt.live);
			fw_ruleset_free(&rt.sys);
			rt.live = ol;
			rt.sys = os;
			cfg_put(rt.cfg);
			rt.cfg = old_cfg;
			return ret;
		}
		fw_ruleset_free(&ol);
		fw_ruleset_free(&os);
	}
	cfg_put(old_cfg);
	fw_alias_refresher_set(&f->aliases);
	return 0;
}

/* ---- events ---------------------------------------------------------------------------- */

static void on_event(const void *rec, size_t len, void *arg)
{
	const struct es_pkt_event *e = rec;
	const char *act = e->action == ES_FW_ACT_DROP	? "drop"
			  : e->action == ES_FW_ACT_LOG	? "log"
			  : e->action == ES_FW_ACT_PASS ? "pass"
							: "unknown";
	char *name;

	es_metric_add(m_packets, 1, "firewall", act);
	if (!es_log_enabled(ES_LOG_DEBUG))
		return;
	name = rule_name(e->rule_id);
	pr_debug("firewall event", LF_STR("action", act), LF_STR("rule_id", name ? name : "?"),
		 LF_UINT("rule_num", e->rule_id), LF_UINT("protocol", e->protocol),
		 LF_UINT("src_port", e->src_port), LF_UINT("dst_port", e->dst_port));
	free(name);
}

/* ---- lifecycle ------------------------------------------------------------------------- */

static void alias_changed(void)
{
	atomic_store(&alias_dirty, true);
}

static int load_and_attach(void)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo, .pin_root_path = es_kernel_pin_dir());
	int ifindex[ES_FW_MAX_IFACES], r, n;
	char why[256];

	skel = es_firewall__open_opts(&oo);
	if (!skel)
		return -errno;
	if ((r = es_kernel_prepare_obj(skel->obj)) || (r = es_firewall__load(skel))) {
		pr_error("xdp_firewall failed to load", LF_INT("error", r));
		goto fail;
	}
	if ((r = fw_kern_open(skel->obj, &kern))) {
		pr_error("cannot open the firewall tables", LF_STR("error", strerror(-r)));
		goto fail;
	}
	for (unsigned i = 0; i < es_kernel_n_ifaces() && i < ES_FW_MAX_IFACES; i++)
		ifindex[i] = es_kernel_ifindex(i);
	fw_kern_set_ifaces(kern, ifindex,
			   es_kernel_n_ifaces() < ES_FW_MAX_IFACES ? es_kernel_n_ifaces()
								   : ES_FW_MAX_IFACES);
	fw_lpm_kernel_attach(true);
	/* Rules before the program sees its first packet. */
	if ((r = recompile(why, sizeof(why))))
		goto fail;
	if ((r = es_kernel_set_feature(ES_FEAT_FIREWALL, true)))
		pr_warn("cannot set the firewall feature flag", LF_INT("error", r));
	n = es_xdp_chain_set(ES_XDP_ROLE_FIREWALL, bpf_program__fd(skel->progs.xdp_firewall),
			     bpf_map__fd(skel->maps.xdp_prog_array));
	return n;
fail:
	fw_lpm_kernel_attach(false);
	fw_kern_close(kern);
	kern = NULL;
	es_firewall__destroy(skel);
	skel = NULL;
	return r;
}

static void unload(void)
{
	if (!skel)
		return;
	es_xdp_chain_set(ES_XDP_ROLE_FIREWALL, -1, bpf_map__fd(skel->maps.xdp_prog_array));
	fw_lpm_kernel_attach(false);
	fw_kern_close(kern);
	kern = NULL;
	es_firewall__destroy(skel);
	skel = NULL;
}

static int file_clock_fd = -1;
static char clock_file[512];

/* Test hook: EBPFSENTINEL_FAKE_TIME_FILE names a file holding unix seconds. */
static time_t file_clock(void)
{
	char buf[32] = "";
	FILE *f = fopen(clock_file, "re");
	long long v;

	if (f) {
		if (!fgets(buf, sizeof(buf), f))
			buf[0] = '\0';
		fclose(f);
	}
	return sscanf(buf, "%lld", &v) == 1 ? (time_t)v : time(NULL);
}

static void test_hooks(void)
{
	const char *f = getenv("EBPFSENTINEL_FAKE_TIME_FILE");
	const char *iv = getenv("EBPFSENTINEL_SCHEDULE_INTERVAL_SECS");

	if (f && *f && file_clock_fd < 0) {
		snprintf(clock_file, sizeof(clock_file), "%s", f);
		file_clock_fd = 0;
		fw_sched_set_clock(file_clock);
		pr_warn("schedules use the test clock file", LF_STR("path", clock_file));
	}
	if (iv && atoi(iv) > 0)
		sched_interval = (unsigned)atoi(iv);
}

static int fw_start(const void *cfg)
{
	const struct fw_cfg *f = cfg;
	char why[256];
	int n = 0, r;

	test_hooks();
	if (!m_packets)
		m_packets =
		    es_metric_family("ebpfsentinel_packets", "Packets seen, by source and outcome",
				     ES_M_COUNTER, "interface,action");
	m_rules = es_metric_family("ebpfsentinel_rules_loaded", "Active rules per component",
				   ES_M_GAUGE, "component");
	es_events_register(ES_EV_FIREWALL, ES_PKT_EVENT_VERSION, sizeof(struct es_pkt_event),
			   on_event, NULL);
	fw_alias_refresher_start(alias_changed);
	pthread_mutex_lock(&ctl_lock);
	r = adopt(f, why, sizeof(why));
	if (!r && f->enabled && es_kernel_ready()) {
		n = load_and_attach();
		if (n < 0)
			r = n;
		else
			pr_info("xdp_firewall attached", LF_INT("interfaces", n));
	}
	set_status(skel != NULL, n > 0 ? (unsigned)n : 0, state.rule_count);
	pthread_mutex_unlock(&ctl_lock);
	return r;
}

static int fw_apply(const void *old_cfg, const void *new_cfg)
{
	const struct fw_cfg *n = new_cfg;
	char why[256];
	int attached = 0, r;

	pthread_mutex_lock(&ctl_lock);
	r = adopt(n, why, sizeof(why));
	if (r)
		goto out;
	if (n->enabled && !skel && es_kernel_ready()) {
		attached = load_and_attach();
		if (attached < 0) {
			r = attached;
			goto out;
		}
	} else if (!n->enabled && skel) {
		unload();
		state.rule_count = 0;
	} else if (skel) {
		attached = (int)es_xdp_attached_count(ES_XDP_ROLE_FIREWALL);
	}
	set_status(skel != NULL, attached > 0 ? (unsigned)attached : 0,
		   skel ? state.rule_count : 0);
	if (!skel) {
		struct tm now;

		local_now(&now);
		publish(&now, 0, NULL);
	}
out:
	pthread_mutex_unlock(&ctl_lock);
	return r;
}

static void fw_stop(void)
{
	fw_alias_refresher_stop();
	pthread_mutex_lock(&ctl_lock);
	unload();
	es_prog_status_set("xdp_firewall", false);
	fw_ruleset_free(&rt.live);
	fw_ruleset_free(&rt.sys);
	cfg_put(rt.cfg);
	rt.cfg = NULL;
	free(rt.sched_sig);
	rt.sched_sig = NULL;
	pthread_mutex_unlock(&ctl_lock);
	{
		struct fw_snap *s;

		pthread_mutex_lock(&snap_lock);
		s = snap;
		snap = NULL;
		pthread_mutex_unlock(&snap_lock);
		fw_snap_put(s);
	}
}

/* Once a second: alias changes at once, schedules every sched_interval seconds. */
static void fw_tick(void)
{
	bool aliases = atomic_exchange(&alias_dirty, false),
	     sched = ++sched_ticks >= sched_interval;
	char why[256];

	if (!aliases && !sched)
		return;
	pthread_mutex_lock(&ctl_lock);
	if (sched) {
		struct tm now;
		char *sig;

		sched_ticks = 0;
		local_now(&now);
		sig = sched_signature(&now);
		/* Recompile only when the set of active scheduled rules changed. */
		if (sig && rt.sched_sig && !strcmp(sig, rt.sched_sig))
			sched = false;
		else if (sig)
			pr_info("schedule activity changed: recompiling firewall rules");
		free(sig);
	}
	if (aliases || sched)
		recompile(why, sizeof(why));
	pthread_mutex_unlock(&ctl_lock);
}

static void fw_status_json(json_t *o)
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
	struct fw_status s;
	struct fw_snap *sn;

	fw_get_status(&s);
	if (m_rules)
		es_metric_set(m_rules, (double)s.rule_count, "firewall");
	sn = fw_snap_get();
	if (sn && m_rules)
		es_metric_set(m_rules, sn->cfg ? (double)sn->cfg->aliases.n : 0, "aliases");
	fw_snap_put(sn);
	if (!skel || es_percpu_sum_all(bpf_map__fd(skel->maps.fw_metrics), ES_FW_M__COUNT, v))
		return;
	for (int i = 0; i < ES_FW_M__COUNT; i++)
		es_metric_mirror(m_packets, v[i], "FIREWALL_METRICS", metric_names[i]);
}

/* ---- runtime operations (REST) ----------------------------------------------------------- */

int fw_rt_add(const struct fw_rule *r, char *why, size_t len)
{
	const char *key = NULL;
	struct fw_rule copy;
	int ret;

	pthread_mutex_lock(&ctl_lock);
	if (!rt.cfg) {
		snprintf(why, len, "firewall not running");
		ret = -ENODEV;
		goto out;
	}
	if (fw_ruleset_find(&rt.live, r->id) >= 0 || fw_ruleset_find(&rt.sys, r->id) >= 0) {
		ret = -EEXIST;
		goto out;
	}
	if (rt.live.n >= ES_FW_MAX_RULES) {
		snprintf(why, len, "rule count %zu exceeds maximum %d", rt.live.n + 1,
			 ES_FW_MAX_RULES);
		ret = -EINVAL;
		goto out;
	}
	if (fw_rule_check_refs(r, &rt.cfg->aliases, &rt.cfg->schedules, &key, why, len)) {
		ret = -EINVAL;
		goto out;
	}
	if ((ret = fw_rule_copy(&copy, r)))
		goto out;
	copy.order = rt.next_order++;
	ret = fw_ruleset_push(&rt.live, &copy);
	fw_rule_free(&copy);
	if (ret)
		goto out;
	ret = recompile(why, len);
	if (ret) {
		fw_ruleset_remove(&rt.live, rt.live.n - 1);
		ret = -EINVAL;
	}
out:
	pthread_mutex_unlock(&ctl_lock);
	return ret;
}

int fw_rt_delete(const char *id, json_t **before)
{
	struct fw_rule saved;
	ssize_t i;
	char why[256];
	int ret = 0;

	*before = NULL;
	pthread_mutex_lock(&ctl_lock);
	if (fw_ruleset_find(&rt.sys, id) >= 0) {
		ret = -EPERM;
		goto out;
	}
	i = fw_ruleset_find(&rt.live, id);
	if (i < 0) {
		ret = -ENOENT;
		goto out;
	}
	*before = fw_rule_to_json(&rt.live.v[i]);
	saved = rt.live.v[i];
	memmove(&rt.live.v[i], &rt.live.v[i + 1], (rt.live.n - (size_t)i - 1) * sizeof(saved));
	rt.live.n--;
	ret = recompile(why, sizeof(why));
	if (ret) {
		/* Put it back where it was: deleting never fails for capacity, but be safe. */
		memmove(&rt.live.v[i + 1], &rt.live.v[i], (rt.live.n - (size_t)i) * sizeof(saved));
		rt.live.v[i] = saved;
		rt.live.n++;
		json_decref(*before);
		*before = NULL;
	} else {
		fw_rule_free(&saved);
	}
out:
	pthread_mutex_unlock(&ctl_lock);
	return ret;
}

int fw_rt_replace(const struct fw_rule *r, json_t **before, char *why, size_t len)
{
	const char *key = NULL;
	struct fw_rule copy, saved;
	ssize_t i;
	int ret;

	*before = NULL;
	pthread_mutex_lock(&ctl_lock);
	if (!rt.cfg) {
		snprintf(why, len, "firewall not running");
		ret = -ENODEV;
		goto out;
	}
	if (fw_ruleset_find(&rt.sys, r->id) >= 0) {
		ret = -EPERM;
		goto out;
	}
	i = fw_ruleset_find(&rt.live, r->id);
	if (i < 0) {
		ret = -ENOENT;
		goto out;
	}
	if (fw_rule_check_refs(r, &rt.cfg->aliases, &rt.cfg->schedules, &key, why, len)) {
		ret = -EINVAL;
		goto out;
	}
	if ((ret = fw_rule_copy(&copy, r)))
		goto out;
	/* Same place among equal priorities: the rule keeps its configuration order. */
	copy.order = rt.live.v[i].order;
	saved = rt.live.v[i];
	rt.live.v[i] = copy;
	ret = recompile(why, len);
	if (ret) {
		rt.live.v[i] = saved;
		fw_rule_free(&copy);
		ret = -EINVAL;
	} else {
		*before = fw_rule_to_json(&saved);
		fw_rule_free(&saved);
	}
out:
	pthread_mutex_unlock(&ctl_lock);
	return ret;
}

uint64_t fw_rt_hits(const char *id)
{
	uint64_t n = 0;

	pthread_mutex_lock(&ctl_lock);
	if (kern)
		n = fw_kern_hits(kern, id);
	pthread_mutex_unlock(&ctl_lock);
	return n;
}

json_t *fw_rt_rule_json(const char *id, bool *system, char **scope)
{
	struct fw_snap *s = fw_snap_get();
	json_t *o = NULL;
	ssize_t i;

	*system = false;
	*scope = NULL;
	if (!s)
		return NULL;
	if ((i = fw_ruleset_find(&s->sys, id)) >= 0) {
		*system = true;
		o = fw_rule_to_json(&s->sys.v[i]);
	} else if ((i = fw_ruleset_find(&s->rules, id)) >= 0) {
		o = fw_rule_to_json(&s->rules.v[i]);
	}
	if (o)
		*scope = strdup(json_string_value(json_object_get(o, "scope")));
	fw_snap_put(s);
	return o;
}

const struct es_domain es_domain_firewall = {
    .name = "firewall",
    .section = "firewall",
    .parse = fw_parse,
    .free_cfg = fw_free,
    .to_json = fw_to_json,
    .enabled = fw_enabled,
    .summary = fw_summary,
    .start = fw_start,
    .apply = fw_apply,
    .stop = fw_stop,
    .status = fw_status_json,
    .metrics = fw_metrics,
    .tick = fw_tick,
    .routes = fw_routes,
};
