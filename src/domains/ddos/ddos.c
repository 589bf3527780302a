// SPDX-License-Identifier: AGPL-3.0-only
/*
 * DDoS domain: the `ddos:` section, the kernel defences' configuration maps
 * (the checks run inside xdp_ratelimit, loaded by the ratelimit domain, and
 * share its pinned maps), the namespace set-up for SYN cookies, and the
 * detector fed by the kernel's DDoS events with its mitigations.
 *
 * Auto-block: blocked sources go into the firewall's LPM block list under the
 * owner "ddos" (fw_lpm.c), so xdp_firewall drops them before any rule and an
 * expiry removes only our ownership of a prefix other owners may share. While
 * xdp_firewall is not running (xdp_ratelimit is then the chain head) they are
 * also written into xdp_ratelimit's own ddos_block map, checked first there.
 */
#define ES_LOG_TARGET "ebpfsentinel::ddos"
#include "domains/ddos/ddos.h"
#include "abi/ddos.h"
#include "abi/ratelimit.h"
#include "agent/domain.h"
#include "api/metrics.h"
#include "core/alert.h"
#include "core/clock.h"
#include "core/idlist.h"
#include "core/log.h"
#include "core/net.h"
#include "domains/ddos/ddos_sys.h"
#include "domains/firewall/firewall.h"
#include "domains/ratelimit/ratelimit.h"
#include "abi/firewall.h"
#include "kernel/events.h"
#include "kernel/kernel.h"

#include <bpf/bpf.h>
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

extern const struct es_route ddos_routes[];

struct ddos_amp_port {
	uint16_t port;
	uint32_t max_pps;
};

struct ddos_cfg {
	bool enabled;
	bool syn_enabled, syn_threshold_mode;
	uint64_t syn_threshold;
	bool icmp_enabled;
	uint32_t icmp_max_pps;
	uint16_t icmp_max_payload;
	bool amp_enabled;
	struct ddos_amp_port *amp;
	size_t n_amp;
	bool ct_enabled;
	uint32_t ct_half_open, ct_rst, ct_fin, ct_ack;
	struct ddos_policy *pols;
	size_t n_pols;
};

/* An installed mitigation entry (auto-block or throttle override). */
struct ddos_mit {
	uint8_t addr[16];
	enum ddos_attack attack;
	bool block;	     /* else throttle */
	bool own_map;	     /* block also in ddos_block (xdp_firewall not running) */
	uint64_t expires_ns; /* CLOCK_MONOTONIC; 0 = with the attack */
};

#define DDOS_LPM_OWNER "ddos"

static const char *const ddos_keys[] = {
    "enabled",
    "syn_protection",
    "icmp_protection",
    "amplification_protection",
    "connection_tracking",
    "policies",
    NULL,
};
static const char *const metric_names[ES_DDOS_M__COUNT] = {
    "syn_rcv",	       "syncookies",	  "icmp_pass",	     "icmp_drop",	"amp_pass",
    "amp_drop",	       "icmp_oversized",  "errors",	     "events_dropped",	"conn_tracked",
    "half_open_drops", "rst_flood_drops", "fin_flood_drops", "ack_flood_drops", "total_seen",
};

static pthread_mutex_t ddos_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ddos_cfg cur; /* applied settings; pols unused (see live) */
static struct ddos_policy *live;
static size_t n_live;
static struct ddos_detector det;
static struct ddos_mit *mits;
static size_t n_mits;
static struct ddos_sys_state sys;
static bool sys_up, kernel_ok;
static bool ct_running;	 /* tc_conntrack loaded: the ACK-flood check may run */
static bool fw_running;	 /* xdp_firewall loaded: blocks need no ddos_block copy */
static unsigned tick_ms; /* test hook EBPFSENTINEL_DDOS_TICK_MS: own detector thread */
static pthread_t tick_thread;
static bool tick_thread_on, tick_stop;
static pthread_cond_t tick_cond = PTHREAD_COND_INITIALIZER;
static struct es_mfam *m_packets, *m_rules;

/* ---- configuration ---------------------------------------------------------------- */

static void cfg_free(void *p)
{
	struct ddos_cfg *c = p;

	if (!c)
		return;
	for (size_t i = 0; i < c->n_pols; i++)
		ddos_policy_clear(&c->pols[i]);
	free(c->pols);
	free(c->amp);
	free(c);
}

static int parse_sub(struct es_cfg *c, const json_t *node, const char *path, const char *key,
		     json_t **out, char *sub, size_t sublen)
{
	es_path_key(sub, sublen, path, key);
	return es_cfg_expect_object(c, node, path, key, out);
}

static void *ddos_parse(struct es_cfg *c, const json_t *node, const char *path, const json_t *root)
{
	static const char *const syn_keys[] = {"enabled", "threshold_mode", "threshold_pps", NULL};
	static const char *const icmp_keys[] = {"enabled", "max_pps", "max_payload_size", NULL};
	static const char *const amp_keys[] = {"enabled", "ports", NULL};
	static const char *const port_keys[] = {"port", "protocol", "max_pps", NULL};
	static const char *const ct_keys[] = {"enabled",       "half_open_threshold",
					      "rst_threshold", "fin_threshold",
					      "ack_threshold", NULL};
	static const char *const proto_names[] = {"udp", NULL};
	struct ddos_cfg *d = calloc(1, sizeof(*d));
	json_t *syn, *icmp, *amp, *ct, *ports = NULL, *pols, *item, *seen;
	char sp[96], ip[128];
	size_t i;
	int proto;

	if (!d)
		return NULL;
	es_cfg_check_keys(c, node, path, ddos_keys);
	if (es_cfg_bool(c, node, path, "enabled", &d->enabled, false) ||
	    parse_sub(c, node, path, "syn_protection", &syn, sp, sizeof(sp)))
		goto fail;
	es_cfg_check_keys(c, syn, sp, syn_keys);
	if (es_cfg_bool(c, syn, sp, "enabled", &d->syn_enabled, false) ||
	    es_cfg_bool(c, syn, sp, "threshold_mode", &d->syn_threshold_mode, true) ||
	    es_cfg_u64(c, syn, sp, "threshold_pps", &d->syn_threshold, 10000))
		goto fail;
	if (d->syn_enabled && d->syn_threshold_mode && !d->syn_threshold) {
		es_cfg_fail(c, ES_ERR_VALIDATION, syn, sp, "threshold_pps", 0, "must be > 0");
		goto fail;
	}
	if (parse_sub(c, node, path, "icmp_protection", &icmp, sp, sizeof(sp)))
		goto fail;
	es_cfg_check_keys(c, icmp, sp, icmp_keys);
	if (es_cfg_bool(c, icmp, sp, "enabled", &d->icmp_enabled, false) ||
	    es_cfg_u32(c, icmp, sp, "max_pps", &d->icmp_max_pps, 10) ||
	    es_cfg_u16(c, icmp, sp, "max_payload_size", &d->icmp_max_payload, 64))
		goto fail;
	if (parse_sub(c, node, path, "amplification_protection", &amp, sp, sizeof(sp)))
		goto fail;
	es_cfg_check_keys(c, amp, sp, amp_keys);
	if (es_cfg_bool(c, amp, sp, "enabled", &d->amp_enabled, false) ||
	    es_cfg_array(c, amp, sp, "ports", &ports))
		goto fail;
	d->amp = calloc(ports ? json_array_size(ports) + 1 : 1, sizeof(*d->amp));
	if (!d->amp)
		goto fail;
	es_path_key(ip, sizeof(ip), sp, "ports");
	json_array_foreach (ports, i, item) {
		char pp[160];

		es_path_idx(pp, sizeof(pp), ip, i);
		if (!json_is_object(item)) {
			es_cfg_fail(c, ES_ERR_PARSE, ports, ip, NULL, i,
				    "invalid type: expected struct AmpPort");
			goto fail;
		}
		es_cfg_check_keys(c, item, pp, port_keys);
		if (es_cfg_u16(c, item, pp, "port", &d->amp[i].port, 0) ||
		    es_cfg_enum(c, item, pp, "protocol", proto_names, &proto, 0) ||
		    es_cfg_u32(c, item, pp, "max_pps", &d->amp[i].max_pps, 100))
			goto fail;
		if (!d->amp[i].port || !d->amp[i].max_pps) {
			es_cfg_fail(c, ES_ERR_VALIDATION, item, pp,
				    d->amp[i].port ? "max_pps" : "port", 0, "must be > 0");
			goto fail;
		}
		d->n_amp++;
	}
	if (parse_sub(c, node, path, "connection_tracking", &ct, sp, sizeof(sp)))
		goto fail;
	es_cfg_check_keys(c, ct, sp, ct_keys);
	if (es_cfg_bool(c, ct, sp, "enabled", &d->ct_enabled, false) ||
	    es_cfg_u32(c, ct, sp, "half_open_threshold", &d->ct_half_open, 100) ||
	    es_cfg_u32(c, ct, sp, "rst_threshold", &d->ct_rst, 50) ||
	    es_cfg_u32(c, ct, sp, "fin_threshold", &d->ct_fin, 50) ||
	    es_cfg_u32(c, ct, sp, "ack_threshold", &d->ct_ack, 200))
		goto fail;

	if (es_cfg_array(c, node, path, "policies", &pols))
		goto fail;
	if (pols && json_array_size(pols) > DDOS_MAX_POLICIES) {
		es_cfg_fail(c, ES_ERR_VALIDATION, node, path, "policies", 0,
			    "count %zu exceeds maximum %d", json_array_size(pols),
			    DDOS_MAX_POLICIES);
		goto fail;
	}
	d->pols = calloc(pols ? json_array_size(pols) + 1 : 1, sizeof(*d->pols));
	if (!d->pols)
		goto fail;
	es_path_key(ip, sizeof(ip), path, "policies");
	seen = json_object();
	json_array_foreach (pols, i, item) {
		char pp[160];

		es_path_idx(pp, sizeof(pp), ip, i);
		if (ddos_policy_parse(c, item, pp, false, &d->pols[i]))
			break;
		d->n_pols++;
		if (es_cfg_unique_id(c, seen, item, pp, d->pols[i].id, "duplicate policy id '%s'",
				     d->pols[i].id))
			break;
	}
	json_decref(seen);
	if (i < json_array_size(pols))
		goto fail;
	return d;
fail:
	cfg_free(d);
	return NULL;
}

static json_t *ddos_to_json(const void *p)
{
	const struct ddos_cfg *d = p;
	json_t *ports = json_array(), *pols = json_array();

	for (size_t i = 0; i < d->n_amp; i++)
		json_array_append_new(ports,
				      json_pack("{s:i,s:s,s:I}", "port", d->amp[i].port, "protocol",
						"udp", "max_pps", (json_int_t)d->amp[i].max_pps));
	for (size_t i = 0; i < d->n_pols; i++)
		json_array_append_new(pols, ddos_policy_json(&d->pols[i]));
	return json_pack(
	    "{s:b,s:{s:b,s:b,s:I},s:{s:b,s:I,s:i},s:{s:b,s:o},s:{s:b,s:I,s:I,s:I,s:I},s:o}",
	    "enabled", d->enabled, "syn_protection", "enabled", d->syn_enabled, "threshold_mode",
	    d->syn_threshold_mode, "threshold_pps", (json_int_t)d->syn_threshold, "icmp_protection",
	    "enabled", d->icmp_enabled, "max_pps", (json_int_t)d->icmp_max_pps, "max_payload_size",
	    d->icmp_max_payload, "amplification_protection", "enabled", d->amp_enabled, "ports",
	    ports, "connection_tracking", "enabled", d->ct_enabled, "half_open_threshold",
	    (json_int_t)d->ct_half_open, "rst_threshold", (json_int_t)d->ct_rst, "fin_threshold",
	    (json_int_t)d->ct_fin, "ack_threshold", (json_int_t)d->ct_ack, "policies", pols);
}

static bool ddos_enabled(const void *p)
{
	return ((const struct ddos_cfg *)p)->enabled;
}

/* ---- kernel maps -------------------------------------------------------------------- */

static int map_put(const char *name, const void *key, const void *val)
{
	int fd = es_kernel_open_pinned(name), r = 0;

	if (fd < 0)
		return fd;
	if (bpf_map_update_elem(fd, key, val, BPF_ANY))
		r = -errno;
	close(fd);
	return r;
}

/* Our word of xdp_ratelimit's rl_globals. */
static int global_put(uint32_t idx, uint32_t v)
{
	int fd = es_kernel_open_pinned("rl_globals"), r;

	if (fd < 0)
		return fd;
	r = es_rl_global_put(fd, idx, v);
	close(fd);
	return r;
}

static int map_del(const char *name, const void *key)
{
	int fd = es_kernel_open_pinned(name), r = 0;

	if (fd < 0)
		return fd;
	if (bpf_map_delete_elem(fd, key) && errno != ENOENT)
		r = -errno;
	close(fd);
	return r;
}

/* Write every DDoS config map from cur (all disabled when ddos is off). Caller locks. */
static int sync_kernel_locked(void)
{
	struct es_ddos_syn_config sc = {0};
	struct es_ddos_icmp_config ic = {0};
	struct es_ddos_ct_config cc = {0};
	uint32_t zero = 0, checks = 0;
	int r, fd;

	if (cur.enabled && cur.syn_enabled) {
		sc.enabled = 1;
		/* Without cookie support every-SYN mode degrades to threshold mode (§7.2). */
		sc.threshold_mode = cur.syn_threshold_mode || !sys.cookies;
		sc.threshold_pps = cur.syn_threshold ? cur.syn_threshold : 10000;
		sc.flags = ES_DDOS_SYN_F_CHECK_ACK | (sys.synproxy ? ES_DDOS_SYN_F_SYNPROXY : 0);
	}
	if (cur.enabled && cur.icmp_enabled) {
		ic.enabled = 1;
		ic.max_pps = cur.icmp_max_pps;
		ic.max_payload_size = cur.icmp_max_payload;
	}
	if (cur.enabled && cur.ct_enabled) {
		cc.enabled = 1;
		cc.half_open = cur.ct_half_open;
		cc.rst = cur.ct_rst;
		cc.fin = cur.ct_fin;
		cc.ack = cur.ct_ack;
		/* Only with tc_conntrack filling the shared table (network.md §7.2). */
		cc.ack_check = ct_running;
	}
	checks = (sc.enabled ? ES_RL_DDOS_SYN : 0) | (ic.enabled ? ES_RL_DDOS_ICMP : 0) |
		 (cc.enabled ? ES_RL_DDOS_CT : 0) |
		 (cur.enabled && cur.amp_enabled && cur.n_amp ? ES_RL_DDOS_AMP : 0);
	if ((r = map_put("ddos_syn_config", &zero, &sc)) ||
	    (r = map_put("ddos_icmp_config", &zero, &ic)) ||
	    (r = map_put("ddos_ct_config", &zero, &cc)))
		return r;
	fd = es_kernel_open_pinned("ddos_amp_config");
	if (fd < 0)
		return fd;
	{
		struct es_ddos_amp_key k, next;

		while (!bpf_map_get_next_key(fd, NULL, &next))
			if (bpf_map_delete_elem(fd, &next))
				break;
		for (size_t i = 0; cur.enabled && cur.amp_enabled && i < cur.n_amp; i++) {
			struct es_ddos_amp_config v = {.enabled = 1, .max_pps = cur.amp[i].max_pps};

			memset(&k, 0, sizeof(k));
			k.port = cur.amp[i].port;
			k.protocol = 17;
			if (bpf_map_update_elem(fd, &k, &v, BPF_ANY))
				r = -errno;
		}
	}
	close(fd);
	/* Last: the switch of the checks whose configuration is now in place. */
	fd = global_put(ES_RL_G_DDOS, checks);
	return r ? r : fd;
}

static void count_mits_locked(void)
{
	uint32_t blocks = 0, thr = 0;

	for (size_t i = 0; i < n_mits; i++)
		mits[i].block ? (blocks += mits[i].own_map) : thr++;
	global_put(ES_RL_G_BLOCKS, blocks);
	global_put(ES_RL_G_OVERRIDES, thr);
}

/* The LPM form of a mitigated source: /32 for IPv4-mapped, else /128. */
static void mit_cidr(const uint8_t addr[16], struct es_cidr *c)
{
	memset(c, 0, sizeof(*c));
	memcpy(c->addr.b, addr, 16);
	c->addr.family = !memcmp(addr, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) ? 4 : 6;
	c->plen = c->addr.family == 4 ? 32 : 128;
}

/* Put a block into ddos_block or take it out, following fw_running. */
static int mit_own_map_locked(struct ddos_mit *m, bool want)
{
	struct es_addr16 a;
	int r;

	if (m->own_map == want)
		return 0;
	memcpy(a.addr, m->addr, 16);
	r = want ? map_put("ddos_block", &a, &m->expires_ns) : map_del("ddos_block", &a);
	if (!r)
		m->own_map = want;
	return r;
}

static void mit_remove_locked(size_t i)
{
	struct es_addr16 a;
	struct es_cidr c;

	memcpy(a.addr, mits[i].addr, 16);
	if (mits[i].block) {
		mit_cidr(mits[i].addr, &c);
		fw_lpm_remove(DDOS_LPM_OWNER, &c, false);
		mit_own_map_locked(&mits[i], false);
	} else {
		map_del("ratelimit_config", &a);
	}
	mits[i] = mits[--n_mits];
}

/* Install one mitigation (block through the LPM list, or a throttle override). */
static int mit_install_locked(const uint8_t addr[16], enum ddos_attack attack, bool block,
			      uint64_t thr_pps, uint64_t exp)
{
	struct ddos_mit *nm, m = {.attack = attack, .block = block, .expires_ns = exp};
	int r;

	for (size_t i = 0; i < n_mits; i++)
		if (!memcmp(mits[i].addr, addr, 16) && mits[i].block == block)
			return 0; /* one entry per source: the first mitigation stands */
	nm = realloc(mits, (n_mits + 1) * sizeof(*mits));
	if (!nm)
		return -ENOMEM;
	mits = nm;
	memcpy(m.addr, addr, 16);
	if (block) {
		struct es_cidr c;

		mit_cidr(addr, &c);
		r = fw_lpm_add(DDOS_LPM_OWNER, &c, false, ES_FW_ACT_DROP);
		if (!r && (r = mit_own_map_locked(&m, !fw_running)))
			fw_lpm_remove(DDOS_LPM_OWNER, &c, false);
	} else {
		struct es_rl_config v;
		struct es_addr16 a;
		uint64_t rate = thr_pps / 10 ? thr_pps / 10 : 1;

		memcpy(a.addr, addr, 16);
		es_rl_config_fill(&v, rate, rate, ES_RL_ALGO_TOKEN_BUCKET, ES_RL_ACT_DROP,
				  ES_RL_SCOPE_SOURCE, ES_RL_TAG_OVERRIDE);
		es_rl_config_tick_floor(&v, es_rl_tick_ns());
		r = map_put("ratelimit_config", &a, &v);
	}
	if (r)
		return r;
	mits[n_mits++] = m;
	return 0;
}

/* Block or throttle the tracker's sources not handled yet. Caller locks. */
static void mitigate_locked(struct ddos_tracker *t, const struct ddos_policy *p)
{
	uint64_t exp = p->block_secs ? es_mono_ns() + p->block_secs * ES_NS_PER_SEC : 0;

	for (size_t i = t->n_mitigated_src; i < t->n_src; i++) {
		int r = mit_install_locked(t->src[i].addr, t->attack, p->action == DDOS_MIT_BLOCK,
					   p->threshold_pps, exp);

		if (r) {
			pr_warn("cannot install a DDoS mitigation", LF_STR("attack", t->id),
				LF_STR("error", strerror(-r)));
			break;
		}
		t->n_mitigated_src = i + 1;
	}
	count_mits_locked();
}

/* Remove the expired mitigations, and with all_of_attack those lasting as long as attack a. */
static size_t release_locked(enum ddos_attack a, bool all_of_attack, uint64_t now)
{
	size_t n = 0;

	for (size_t i = n_mits; i-- > 0;) {
		if ((all_of_attack && mits[i].attack == a && !mits[i].expires_ns) ||
		    (mits[i].expires_ns && mits[i].expires_ns <= now)) {
			mit_remove_locked(i);
			n++;
		}
	}
	if (n)
		count_mits_locked();
	return n;
}

/* xdp_firewall came or went: blocks need (or no longer need) the ddos_block copy. */
static void follow_firewall_locked(void)
{
	bool fw = es_prog_status_get("xdp_firewall");

	if (fw == fw_running)
		return;
	fw_running = fw;
	for (size_t i = 0; i < n_mits; i++)
		if (mits[i].block && mit_own_map_locked(&mits[i], !fw))
			pr_warn("cannot move a DDoS block between the firewall and ddos_block");
	count_mits_locked();
}

int ddos_autoblock_add(const uint8_t addr[16], enum ddos_attack a, uint64_t expires_ns)
{
	int r;

	pthread_mutex_lock(&ddos_lock);
	follow_firewall_locked();
	r = mit_install_locked(addr, a, true, 0, expires_ns);
	count_mits_locked();
	pthread_mutex_unlock(&ddos_lock);
	return r;
}

size_t ddos_mitigations_expire(uint64_t now_ns)
{
	size_t n;

	pthread_mutex_lock(&ddos_lock);
	n = release_locked(DDOS_ATTACK__COUNT, false, now_ns);
	pthread_mutex_unlock(&ddos_lock);
	return n;
}

size_t ddos_mitigations_count(void)
{
	size_t n;

	pthread_mutex_lock(&ddos_lock);
	n = n_mits;
	pthread_mutex_unlock(&ddos_lock);
	return n;
}

static void alert_transition(const struct ddos_tracker *t, enum ddos_status from,
			     const struct ddos_policy *p)
{
	struct es_alert a = {0};
	char src[64] = "";
	struct es_addr ad;

	snprintf(a.component, sizeof(a.component), "ddos");
	snprintf(a.rule_id, sizeof(a.rule_id), "%s", p ? p->id : t->id);
	a.severity = t->status == DDOS_ACTIVE ? ES_SEV_HIGH : ES_SEV_MEDIUM;
	a.action = p && p->action == DDOS_MIT_BLOCK && t->status == DDOS_ACTIVE
		       ? ES_ALERT_ACT_BLOCK
		       : ES_ALERT_ACT_ALERT;
	if (t->n_src) {
		memcpy(ad.b, t->src[0].addr, 16);
		ad.family = !memcmp(ad.b, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) ? 4 : 6;
		es_addr_words(&ad, a.src_addr);
		a.is_ipv6 = ad.family == 6;
		es_addr_format(&ad, src, sizeof(src));
	}
	a.protocol = t->attack == DDOS_ICMP_FLOOD	   ? 1
		     : t->attack == DDOS_UDP_AMPLIFICATION ? 17
		     : t->attack == DDOS_VOLUMETRIC	   ? 0
							   : 6;
	snprintf(a.message, sizeof(a.message),
		 "DDoS %s %s -> %s (%llu pps, peak %llu, %zu sources%s%s)",
		 ddos_attack_name(t->attack), ddos_status_name(from), ddos_status_name(t->status),
		 (unsigned long long)t->current_pps, (unsigned long long)t->peak_pps, t->n_src,
		 src[0] ? ", first " : "", src);
	a.has = ES_AF_ATTACK_TYPE | ES_AF_PEAK_PPS | ES_AF_CURRENT_PPS | ES_AF_MITIGATION_STATUS |
		ES_AF_TOTAL_PACKETS;
	snprintf(a.attack_type, sizeof(a.attack_type), "%s", ddos_attack_name(t->attack));
	a.peak_pps = t->peak_pps;
	a.current_pps = t->current_pps;
	a.total_packets = t->total;
	snprintf(a.mitigation_status, sizeof(a.mitigation_status), "%s",
		 ddos_status_name(t->status));
	es_alert_emit(&a);
	pr_info("DDoS attack state change", LF_STR("attack", t->id),
		LF_STR("attack_type", ddos_attack_name(t->attack)),
		LF_STR("from", ddos_status_name(from)), LF_STR("to", ddos_status_name(t->status)),
		LF_UINT("current_pps", t->current_pps), LF_UINT("peak_pps", t->peak_pps));
}

/* Detector callback, under ddos_lock. */
static void on_transition(const struct ddos_tracker *t, enum ddos_status from,
			  const struct ddos_policy *p, void *arg)
{
	if (from != t->status)
		alert_transition(t, from, p);
	if (t->status == DDOS_ACTIVE && p && p->action != DDOS_MIT_ALERT && kernel_ok)
		mitigate_locked((struct ddos_tracker *)t, p);
	if (t->status == DDOS_EXPIRED || t->status == DDOS_DISCARDED)
		release_locked(t->attack, true, es_mono_ns());
}

/* ---- events and ticks ------------------------------------------------------------- */

static void on_event(const void *rec, size_t len, void *arg)
{
	const struct es_pkt_event *e = rec;
	int a = ddos_event_attack(e->hdr.type, e->action);
	struct es_addr src;

	if (a < 0)
		return;
	es_addr_from_words(&src, e->src_addr, e->hdr.flags & ES_EVF_IPV6);
	pthread_mutex_lock(&ddos_lock);
	if (cur.enabled && ddos_policy_for(live, n_live, (enum ddos_attack)a))
		ddos_det_event(&det, (enum ddos_attack)a, src.b, es_wall_ns());
	pthread_mutex_unlock(&ddos_lock);
}

static void detector_tick_locked(void)
{
	ddos_det_tick(&det, live, n_live, on_transition, NULL);
	release_locked(DDOS_ATTACK__COUNT, false, es_mono_ns());
}

static void ddos_tick(void)
{
	bool ct = es_prog_status_get("tc_conntrack");

	pthread_mutex_lock(&ddos_lock);
	if (ct != ct_running) {
		/* conntrack starts after us and may come and go on reload */
		ct_running = ct;
		if (es_kernel_ready() && cur.enabled)
			kernel_ok = sync_kernel_locked() == 0;
	}
	follow_firewall_locked();
	if (!tick_thread_on)
		detector_tick_locked();
	pthread_mutex_unlock(&ddos_lock);
}

/* Test hook: the detector ticks every tick_ms on a thread of its own. */
static void *tick_main(void *arg)
{
	pthread_mutex_lock(&ddos_lock);
	while (!tick_stop) {
		es_cond_wait_ms(&tick_cond, &ddos_lock, (int)tick_ms);
		if (!tick_stop)
			detector_tick_locked();
	}
	pthread_mutex_unlock(&ddos_lock);
	return NULL;
}

static void test_hooks(void)
{
	const char *v = getenv("EBPFSENTINEL_DDOS_TICK_MS");
	int ms = v ? atoi(v) : 0;

	if (ms <= 0 || ms >= 1000 || tick_thread_on)
		return;
	tick_ms = (unsigned)ms;
	det.tick_ns = (uint64_t)ms * 1000000ull;
	tick_stop = false;
	tick_thread_on = !pthread_create(&tick_thread, NULL, tick_main, NULL);
	if (tick_thread_on)
		pr_warn("DDoS detector on the test tick", LF_UINT("tick_ms", tick_ms));
}

/* ---- lifecycle -------------------------------------------------------------------- */

static int adopt_locked(const struct ddos_cfg *c)
{
	struct ddos_policy *nl = calloc(c->n_pols + 1, sizeof(*nl));

	if (!nl)
		return -ENOMEM;
	for (size_t i = 0; i < c->n_pols; i++) {
		nl[i] = c->pols[i];
		nl[i].id = strdup(c->pols[i].id);
		nl[i].cc = c->pols[i].n_cc ? malloc(c->pols[i].n_cc * sizeof(*nl[i].cc)) : NULL;
		if (!nl[i].id || (c->pols[i].n_cc && !nl[i].cc)) {
			for (size_t k = 0; k <= i; k++)
				ddos_policy_clear(&nl[k]);
			free(nl);
			return -ENOMEM;
		}
		if (nl[i].cc)
			memcpy(nl[i].cc, c->pols[i].cc, c->pols[i].n_cc * sizeof(*nl[i].cc));
	}
	for (size_t i = 0; i < n_live; i++)
		ddos_policy_clear(&live[i]);
	free(live);
	live = nl;
	n_live = c->n_pols;
	free(cur.amp);
	cur = *c;
	cur.pols = NULL;
	cur.n_pols = 0;
	cur.amp = NULL;
	if (c->n_amp) {
		cur.amp = malloc(c->n_amp * sizeof(*cur.amp));
		if (cur.amp)
			memcpy(cur.amp, c->amp, c->n_amp * sizeof(*cur.amp));
		else
			cur.n_amp = 0;
	}
	return 0;
}

static void sys_update_locked(void)
{
	bool want = cur.enabled && cur.syn_enabled && es_kernel_ready();

	if (want && !sys_up) {
		char *ifs[33] = {0};
		unsigned n = es_kernel_n_ifaces();

		for (unsigned i = 0; i < n && i < 32; i++)
			ifs[i] = (char *)es_kernel_ifname(i);
		ddos_sys_setup(ifs, &sys);
		sys_up = true;
	} else if (!want && sys_up) {
		ddos_sys_teardown();
		memset(&sys, 0, sizeof(sys));
		sys_up = false;
	}
}

static int apply_locked(const struct ddos_cfg *c)
{
	int r = adopt_locked(c);

	if (r)
		return r;
	if (!cur.enabled) {
		while (n_mits)
			mit_remove_locked(n_mits - 1);
		count_mits_locked();
		ddos_det_reset(&det);
	}
	sys_update_locked();
	if (!es_kernel_ready())
		return 0;
	r = sync_kernel_locked();
	kernel_ok = r == 0;
	if (r && cur.enabled)
		pr_error("DDoS kernel checks unavailable (xdp_ratelimit not loaded?)",
			 LF_STR("error", strerror(-r)));
	return cur.enabled ? r : 0;
}

static int ddos_start(const void *p)
{
	int r;

	for (uint16_t t = ES_EV_DDOS_SYN; t <= ES_EV_DDOS_CONNTRACK; t++)
		es_events_register(t, ES_PKT_EVENT_VERSION, sizeof(struct es_pkt_event), on_event,
				   NULL);
	test_hooks();
	pthread_mutex_lock(&ddos_lock);
	r = apply_locked(p);
	pthread_mutex_unlock(&ddos_lock);
	return r;
}

static int ddos_apply(const void *old, const void *p)
{
	int r;

	pthread_mutex_lock(&ddos_lock);
	r = apply_locked(p);
	pthread_mutex_unlock(&ddos_lock);
	return r;
}

static void ddos_stop(void)
{
	if (tick_thread_on) {
		pthread_mutex_lock(&ddos_lock);
		tick_stop = true;
		pthread_cond_signal(&tick_cond);
		pthread_mutex_unlock(&ddos_lock);
		pthread_join(tick_thread, NULL);
		tick_thread_on = false;
	}
	pthread_mutex_lock(&ddos_lock);
	while (n_mits)
		mit_remove_locked(n_mits - 1);
	free(mits);
	mits = NULL;
	if (sys_up)
		ddos_sys_teardown();
	sys_up = false;
	ddos_det_reset(&det);
	for (size_t i = 0; i < n_live; i++)
		ddos_policy_clear(&live[i]);
	free(live);
	live = NULL;
	n_live = 0;
	free(cur.amp);
	memset(&cur, 0, sizeof(cur));
	pthread_mutex_unlock(&ddos_lock);
}

static void ddos_status(json_t *o)
{
	pthread_mutex_lock(&ddos_lock);
	json_object_set_new(o, "active", json_boolean(cur.enabled && kernel_ok));
	json_object_set_new(o, "syncookies", json_boolean(sys.cookies));
	json_object_set_new(o, "synproxy", json_boolean(sys.synproxy));
	json_object_set_new(o, "auto_blocks", json_integer((json_int_t)n_mits));
	pthread_mutex_unlock(&ddos_lock);
}

static void ddos_metrics(void)
{
	uint64_t v[ES_DDOS_M__COUNT];
	size_t n = 0;
	int fd;

	if (!m_packets)
		m_packets =
		    es_metric_family("ebpfsentinel_packets", "Packets seen, by source and outcome",
				     ES_M_COUNTER, "interface,action");
	if (!m_rules)
		m_rules = es_metric_family("ebpfsentinel_rules_loaded",
					   "Active rules per component", ES_M_GAUGE, "component");
	pthread_mutex_lock(&ddos_lock);
	for (size_t i = 0; i < n_live; i++)
		n += live[i].enabled;
	pthread_mutex_unlock(&ddos_lock);
	es_metric_set(m_rules, (double)n, "ddos");
	if (!es_kernel_ready() || (fd = es_kernel_open_pinned("ddos_metrics")) < 0)
		return;
	if (!es_percpu_sum_all(fd, ES_DDOS_M__COUNT, v))
		for (int i = 0; i < ES_DDOS_M__COUNT; i++)
			es_metric_mirror(m_packets, v[i], "DDOS_METRICS", metric_names[i]);
	close(fd);
}

/* ---- runtime operations (REST) ---------------------------------------------------- */

json_t *ddos_status_json(void)
{
	json_t *o;
	size_t active = 0;

	pthread_mutex_lock(&ddos_lock);
	for (int a = 0; a < DDOS_ATTACK__COUNT; a++)
		active += det.active[a] != NULL;
	o = json_pack("{s:b,s:I,s:I,s:I}", "enabled", cur.enabled, "active_attacks",
		      (json_int_t)active, "total_mitigated", (json_int_t)det.total_mitigated,
		      "policy_count", (json_int_t)n_live);
	pthread_mutex_unlock(&ddos_lock);
	return o;
}

json_t *ddos_attacks_json(void)
{
	json_t *a = json_array();

	pthread_mutex_lock(&ddos_lock);
	for (int i = 0; i < DDOS_ATTACK__COUNT; i++)
		if (det.active[i])
			json_array_append_new(a, ddos_tracker_json(det.active[i]));
	pthread_mutex_unlock(&ddos_lock);
	return a;
}

json_t *ddos_history_get(size_t limit)
{
	json_t *a;

	pthread_mutex_lock(&ddos_lock);
	a = ddos_history_json(&det, limit);
	pthread_mutex_unlock(&ddos_lock);
	return a;
}

json_t *ddos_policies_json(void)
{
	json_t *a = json_array();

	pthread_mutex_lock(&ddos_lock);
	for (size_t i = 0; i < n_live; i++)
		json_array_append_new(a, ddos_policy_json(&live[i]));
	pthread_mutex_unlock(&ddos_lock);
	return a;
}

_Static_assert(offsetof(struct ddos_policy, id) == 0, "es_idlist: id first");

int ddos_policies_add(struct ddos_policy *p)
{
	int r;

	pthread_mutex_lock(&ddos_lock);
	r = es_idlist_grow((void **)&live, n_live, sizeof(*live), DDOS_MAX_POLICIES, p->id);
	if (!r) {
		live[n_live++] = *p; /* takes ownership */
		memset(p, 0, sizeof(*p));
	}
	pthread_mutex_unlock(&ddos_lock);
	return r;
}

int ddos_policies_delete(const char *id, json_t **removed)
{
	ssize_t i;

	pthread_mutex_lock(&ddos_lock);
	i = es_idlist_find(live, n_live, sizeof(*live), id);
	if (i >= 0) {
		if (removed)
			*removed = ddos_policy_json(&live[i]);
		ddos_policy_clear(&live[i]);
		es_idlist_remove(live, &n_live, sizeof(*live), (size_t)i);
	}
	pthread_mutex_unlock(&ddos_lock);
	return i >= 0 ? 0 : -ENOENT;
}

const struct es_domain es_domain_ddos = {
    .name = "ddos",
    .section = "ddos",
    .parse = ddos_parse,
    .free_cfg = cfg_free,
    .to_json = ddos_to_json,
    .enabled = ddos_enabled,
    .start = ddos_start,
    .apply = ddos_apply,
    .stop = ddos_stop,
    .status = ddos_status,
    .metrics = ddos_metrics,
    .tick = ddos_tick,
    .routes = ddos_routes,
};
