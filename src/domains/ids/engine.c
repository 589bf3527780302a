// SPDX-License-Identifier: AGPL-3.0-only
/*
 * The IDS engine (detection.md §1.2, §1.3): loads tc_ids and attaches it at
 * TC ingress priority 5, keeps the kernel table in sync with the current
 * snapshot (two banks, switched with one word), and turns IDS events into
 * alerts: candidates, sampling, Vectorscan+PCRE2 payload match, domain match,
 * thresholds with full-address tracking, alert + audit, IPS detection.
 */
#define ES_LOG_TARGET "ebpfsentinel::ids"
#include "abi/ids.h"
#include "api/metrics.h"
#include "core/audit.h"
#include "core/clock.h"
#include "core/hmap.h"
#include "core/log.h"
#include "core/net.h"
#include "domains/ids/ids_int.h"
#include "kernel/events.h"
#include "kernel/kernel.h"
#include "skel/ids.skel.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MAX_CANDIDATES 4096

static struct es_ids *skel;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER; /* snapshot pointer, sections */
static struct ids_snap *snap;
static struct ids_cfg *ids_sec; /* copy of the running IDS section */
static struct ids_ips_view ips_view;
static struct ids_rule *ips_rules; /* owned copy behind ips_view */
static struct ids_sampling ips_sampling;

static pthread_mutex_t trk_lock = PTHREAD_MUTEX_INITIALIZER;
static struct es_hmap *trackers; /* trk_key -> trk_val */

static _Atomic(ids_detection_fn) detection_hook;
static _Atomic(ids_country_fn) country_fn;
static _Atomic(ids_reverse_fn) reverse_fn;
static struct ids_scan *scan; /* event thread only */
static struct es_mfam *m_packets, *m_rules, *m_domain;

static const char *const metric_names[ES_IDS_M__COUNT] = {
    "matched", "dropped", "errors", "events_dropped", "total_seen",
};

struct trk_key {
	uint32_t rule;
	uint32_t kind; /* enum ids_track */
	uint32_t a[4], b[4];
	uint8_t v6;
	uint8_t pad[7];
};

struct trk_val {
	uint64_t count;
	uint64_t start;
	uint64_t window_ns;
	bool alerted;
};

void ids_set_detection_hook(ids_detection_fn fn)
{
	atomic_store(&detection_hook, fn);
}

void ids_set_country_fn(ids_country_fn fn)
{
	atomic_store(&country_fn, fn);
}

void ids_set_reverse_dns_fn(ids_reverse_fn fn)
{
	atomic_store(&reverse_fn, fn);
}

bool ids_country_of(const uint32_t addr[4], bool v6, char cc[3])
{
	ids_country_fn fn = atomic_load(&country_fn);

	return fn && fn(addr, v6, cc);
}

bool ids_program_loaded(void)
{
	return skel != NULL;
}

static struct ids_snap *snap_get(void)
{
	struct ids_snap *s;

	pthread_mutex_lock(&lock);
	s = snap;
	if (s)
		__atomic_add_fetch(&s->refs, 1, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&lock);
	return s;
}

/* ---- kernel --------------------------------------------------------------------- */

static int clear_map(int fd)
{
	struct es_ids_key k, next;
	void *prev = NULL;

	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		k = next;
		bpf_map_delete_elem(fd, &k);
		prev = NULL; /* restart: deleting invalidates the cursor */
	}
	return 0;
}

/* Write the snapshot into the inactive bank, then switch banks. */
static int sync_kernel(const struct ids_snap *s)
{
	static struct ids_kentry ents[ES_IDS_MAX_KEYS];
	struct es_ids_sampling samp = {0};
	__u32 zero = 0, active = 0, bank;
	size_t total, n;
	int fds[2], r = 0;

	if (!skel)
		return 0;
	fds[0] = bpf_map__fd(skel->maps.ids_patterns_0);
	fds[1] = bpf_map__fd(skel->maps.ids_patterns_1);
	bpf_map_lookup_elem(bpf_map__fd(skel->maps.ids_active), &zero, &active);
	bank = !(active & 1);
	clear_map(fds[bank]);
	total = ids_snap_kernel(s, ents, ES_IDS_MAX_KEYS);
	n = total < ES_IDS_MAX_KEYS ? total : ES_IDS_MAX_KEYS;
	if (total > ES_IDS_MAX_KEYS)
		pr_error("IDS kernel table full: extra keys not installed", LF_UINT("keys", total),
			 LF_UINT("installed", n));
	for (size_t i = 0; i < n; i++) {
		struct es_ids_key k = {.dst_port = ents[i].port, .proto = ents[i].proto};
		struct es_ids_val v = {.action = ents[i].action,
				       .severity = ents[i].severity,
				       .flags = ents[i].flags,
				       .rule_id = ents[i].rule_id};

		if (bpf_map_update_elem(fds[bank], &k, &v, BPF_ANY))
			r = -errno;
	}
	if (s->ids_enabled && s->ids_sampling.mode == IDS_SAMPLE_RANDOM) {
		samp.mode = ES_IDS_SAMPLE_RANDOM;
		samp.rate_threshold = (__u32)floor(s->ids_sampling.rate * 4294967295.0);
	}
	if (bpf_map_update_elem(bpf_map__fd(skel->maps.ids_sampling), &bank, &samp, BPF_ANY) ||
	    bpf_map_update_elem(bpf_map__fd(skel->maps.ids_active), &zero, &bank, BPF_ANY))
		r = -errno;
	es_kernel_set_feature(ES_FEAT_IDS, s->ids_enabled);
	return r;
}

static int load_prog(void)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo, .pin_root_path = es_kernel_pin_dir());
	int r, n;

	skel = es_ids__open_opts(&oo);
	if (!skel)
		return -errno;
	if ((r = es_kernel_prepare_obj(skel->obj)) || (r = es_ids__load(skel))) {
		pr_error("tc_ids failed to load", LF_INT("error", r));
		es_ids__destroy(skel);
		skel = NULL;
		return r;
	}
	n = es_tc_attach_all("tc_ids", ES_TC_INGRESS, ES_TC_PRIO_IDS,
			     bpf_program__fd(skel->progs.tc_ids));
	pr_info("tc_ids attached", LF_INT("interfaces", n));
	es_prog_status_set("tc_ids", n > 0);
	return 0;
}

/* ---- events --------------------------------------------------------------------- */

static bool wildcard_match(const char *pat, const char *name)
{
	size_t ln = strlen(name), ls;
	int labels = 0;

	if (strncmp(pat, "*.", 2))
		return !strcasecmp(pat, name);
	ls = strlen(pat + 1); /* ".suffix" */
	if (ln <= ls || strcasecmp(name + ln - ls, pat + 1))
		return false;
	for (size_t i = 0; i < ln - ls; i++)
		labels += name[i] == '.';
	return labels + 1 <= 5;
}

static bool domain_match(const struct ids_rule *r, const char *name)
{
	switch (r->domain_mode) {
	case IDS_DM_EXACT: return !strcasecmp(r->domain_pattern, name);
	case IDS_DM_WILDCARD: return wildcard_match(r->domain_pattern, name);
	case IDS_DM_REGEX: return ids_regex_search_ci(r->domain_pattern, name) == 1;
	default: return false;
	}
}

/* First DNS-cache name of the destination that matches the rule, if any. */
static bool match_domain(const struct ids_rule *r, const struct es_ids_event *ev, bool v6,
			 char *out, size_t len)
{
	ids_reverse_fn fn = atomic_load(&reverse_fn);
	char *names[16];
	size_t n;
	bool hit = false;

	if (!fn)
		return false;
	n = fn(ev->pkt.dst_addr, v6, names, 16);
	for (size_t i = 0; i < n && i < 16; i++) {
		if (!hit && domain_match(r, names[i])) {
			snprintf(out, len, "%s", names[i]);
			hit = true;
		}
		free(names[i]);
	}
	return hit;
}

static const struct ids_threshold *threshold_for(const struct ids_rule *r, const char *cc)
{
	for (size_t i = 0; cc && i < r->n_country; i++)
		if (!strcmp(r->country[i].cc, cc))
			return &r->country[i].thr;
	return r->threshold.set ? &r->threshold : NULL;
}

static bool threshold_pass(uint32_t idx, const struct ids_threshold *t,
			   const struct es_ids_event *ev, bool v6, uint64_t now)
{
	struct trk_key k;
	struct trk_val *v;
	bool created, emit;

	memset(&k, 0, sizeof(k));
	k.rule = idx;
	k.kind = t->track_by;
	k.v6 = v6;
	if (t->track_by != IDS_TRACK_DST)
		memcpy(k.a, ev->pkt.src_addr, sizeof(k.a));
	if (t->track_by != IDS_TRACK_SRC)
		memcpy(k.b, ev->pkt.dst_addr, sizeof(k.b));
	pthread_mutex_lock(&trk_lock);
	v = trackers ? es_hmap_put(trackers, &k, &created) : NULL;
	if (!v) {
		pthread_mutex_unlock(&trk_lock);
		return true;
	}
	v->window_ns = t->window_secs * 1000000000ull;
	if (created || now - v->start >= v->window_ns) {
		v->count = 0;
		v->start = now;
		v->alerted = false;
	}
	v->count++;
	emit = ids_threshold_emit(t->type, t->count, v->count, &v->alerted);
	pthread_mutex_unlock(&trk_lock);
	return emit;
}

static void raise_alert(const struct ids_snap *s, size_t i, const struct es_ids_event *ev, bool v6,
			const char *domain)
{
	const struct ids_rule *r = &s->rules[i];
	bool ips = i >= s->n_ids;
	struct es_alert a;
	char src[64], dst[64];
	struct es_addr ad;
	ids_detection_fn hook;

	memset(&a, 0, sizeof(a));
	snprintf(a.component, sizeof(a.component), "%s", ips ? "ips" : "ids");
	a.severity = r->severity;
	snprintf(a.rule_id, sizeof(a.rule_id), "%s", r->id);
	a.action = ev->pkt.action == ES_IDS_ACT_DROP ? ES_ALERT_ACT_BLOCK : ES_ALERT_ACT_ALERT;
	memcpy(a.src_addr, ev->pkt.src_addr, sizeof(a.src_addr));
	memcpy(a.dst_addr, ev->pkt.dst_addr, sizeof(a.dst_addr));
	a.src_port = ev->pkt.src_port;
	a.dst_port = ev->pkt.dst_port;
	a.protocol = ev->pkt.protocol;
	a.is_ipv6 = v6;
	es_addr_from_words(&ad, ev->pkt.src_addr, v6);
	es_addr_format(&ad, src, sizeof(src));
	es_addr_from_words(&ad, ev->pkt.dst_addr, v6);
	es_addr_format(&ad, dst, sizeof(dst));
	snprintf(a.message, sizeof(a.message), "%s rule %s matched: %s:%u -> %s:%u",
		 ips ? "IPS" : "IDS", r->id, src, ev->pkt.src_port, dst, ev->pkt.dst_port);
	if (domain) {
		snprintf(a.matched_domain, sizeof(a.matched_domain), "%s", domain);
		a.has |= ES_AF_MATCHED_DOMAIN;
	}
	es_alert_emit(&a);
	es_audit(&(struct es_audit_entry){
	    .component = a.component,
	    .action = a.action == ES_ALERT_ACT_BLOCK ? "drop" : "alert",
	    .rule_id = r->id,
	    .detail = a.message,
	    .src_ip = a.src_addr[0],
	    .dst_ip = a.dst_addr[0],
	    .src_port = a.src_port,
	    .dst_port = a.dst_port,
	    .protocol = a.protocol,
	});
	hook = atomic_load(&detection_hook);
	if (s->ips_enabled && hook)
		hook(ev->pkt.src_addr, v6);
}

void ids_engine_event(const void *rec, size_t len)
{
	const struct es_ids_event *ev = rec;
	static uint32_t cand[MAX_CANDIDATES];
	struct ids_snap *s = snap_get();
	bool v6 = ev->pkt.hdr.flags & ES_EVF_IPV6, syn = ev->pkt.hdr.flags & ES_EVF_SYN;
	size_t plen = ev->payload_len, n;
	int keep[2] = {-1, -1}; /* sampling per section, decided once */
	bool scanned = false;
	char cc[3] = "", domain[256];
	bool have_cc;
	uint64_t now;

	if (!s)
		return;
	if ((!s->ids_enabled && !s->ips_enabled) || ev->pkt.rule_id >= s->n)
		goto out;
	if (plen > ES_IDS_PAYLOAD_MAX || len < ES_IDS_EVENT_MIN_LEN + plen)
		plen = 0;
	have_cc = ids_country_of(ev->pkt.src_addr, v6, cc);
	now = es_boot_ns();
	n = ids_snap_candidates(s, ev->pkt.protocol, ev->pkt.dst_port, cand, MAX_CANDIDATES);
	for (size_t k = 0; k < n; k++) {
		size_t i = cand[k];
		const struct ids_rule *r = &s->rules[i];
		int sec = i >= s->n_ids;
		const struct ids_threshold *t;
		const char *dom = NULL;

		if (!r->has_port && ev->pkt.protocol == 6 && !syn)
			continue;
		if (keep[sec] < 0)
			keep[sec] = ids_sample_keep(sec ? &s->ips_sampling : &s->ids_sampling,
						    ev->pkt.src_addr[0], ev->pkt.dst_addr[0],
						    have_cc ? cc : NULL);
		if (!keep[sec])
			continue;
		if (s->pat[i] >= 0) {
			if (!plen)
				continue;
			if (!scanned) {
				if (!scan)
					scan = ids_scan__new();
				if (!scan || ids_scan_run(scan, s->m, ev->payload, plen))
					continue;
				scanned = true;
			}
			if (!ids_scan_hit(scan, (size_t)s->pat[i]))
				continue;
		}
		if (r->domain_pattern) {
			if (!match_domain(r, ev, v6, domain, sizeof(domain)))
				continue;
			dom = domain;
			es_metric_add(m_domain, 1, r->id);
		}
		t = threshold_for(r, have_cc ? cc : NULL);
		if (t && !threshold_pass((uint32_t)i, t, ev, v6, now))
			continue;
		raise_alert(s, i, ev, v6, dom);
	}
out:
	ids_snap_put(s);
}

static void on_event(const void *rec, size_t len, void *arg)
{
	ids_engine_event(rec, len);
}

/* ---- lifecycle ------------------------------------------------------------------ */

static void cfg_copy_free(struct ids_cfg *c)
{
	if (!c)
		return;
	ids_rules_free(c->rules, c->n_rules);
	ids_sampling_free(&c->sampling);
	free(c);
}

static struct ids_cfg *cfg_copy(const struct ids_cfg *c)
{
	struct ids_cfg *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	*n = *c;
	n->rules = NULL;
	n->sampling.high_risk_countries = NULL;
	if (ids_rules_dup(c->rules, c->n_rules, &n->rules) ||
	    (c->sampling.high_risk_countries &&
	     !(n->sampling.high_risk_countries = es_strv_dup(c->sampling.high_risk_countries)))) {
		n->n_rules = n->rules ? c->n_rules : 0;
		cfg_copy_free(n);
		return NULL;
	}
	return n;
}

/* Build and install a snapshot from the current sections (lock held). */
static int rebuild_locked(const struct ids_cfg *ids)
{
	char why[512];
	struct ids_snap *ns = ids_snap__new(ids, &ips_view, why, sizeof(why)), *old;
	int r;

	if (!ns) {
		pr_error("IDS rules not compiled", LF_STR("error", why));
		return -EINVAL;
	}
	r = sync_kernel(ns);
	if (r)
		pr_warn("IDS kernel table partially written", LF_INT("error", r));
	old = snap;
	snap = ns;
	ids_snap_put(old);
	pthread_mutex_lock(&trk_lock);
	if (trackers)
		es_hmap_clear(trackers); /* reload clears trackers (§1.3) */
	pthread_mutex_unlock(&trk_lock);
	return 0;
}

int ids_engine_start(const struct ids_cfg *c)
{
	int r;

	m_packets = es_metric_family("ebpfsentinel_packets", "Packets seen, by source and outcome",
				     ES_M_COUNTER, "interface,action");
	m_rules = es_metric_family("ebpfsentinel_rules_loaded", "Active rules per component",
				   ES_M_GAUGE, "component");
	m_domain = es_metric_family("ebpfsentinel_ids_domain_matches",
				    "IDS matches via domain pattern", ES_M_COUNTER, "rule_id");
	trackers = es_hmap__new(sizeof(struct trk_key), sizeof(struct trk_val));
	if (!trackers)
		return -ENOMEM;
	if (c->load_prog && es_kernel_ready() && (r = load_prog()))
		pr_warn("IDS running without its kernel program", LF_INT("error", r));
	es_events_register(ES_EV_IDS, ES_IDS_EVENT_VERSION, ES_IDS_EVENT_MIN_LEN, on_event, NULL);
	pthread_mutex_lock(&lock);
	ids_sec = cfg_copy(c);
	r = ids_sec ? rebuild_locked(ids_sec) : -ENOMEM;
	pthread_mutex_unlock(&lock);
	return r;
}

static void unload_prog(void)
{
	if (!skel)
		return;
	es_tc_detach_all(ES_TC_INGRESS, ES_TC_PRIO_IDS);
	es_ids__destroy(skel);
	skel = NULL;
	es_prog_status_set("tc_ids", false);
}

int ids_engine_apply(const struct ids_cfg *c)
{
	struct ids_cfg *n = cfg_copy(c), *old;
	int r;

	if (!n)
		return -ENOMEM;
	/* Reload is complete: ids/ips/l7 switched on loads tc_ids, all off detaches it. */
	if (c->load_prog && !skel && es_kernel_ready() && (r = load_prog())) {
		cfg_copy_free(n);
		return r;
	}
	if (!c->load_prog)
		unload_prog();
	pthread_mutex_lock(&lock);
	r = rebuild_locked(n);
	if (r) {
		pthread_mutex_unlock(&lock);
		cfg_copy_free(n);
		return r;
	}
	old = ids_sec;
	ids_sec = n;
	pthread_mutex_unlock(&lock);
	cfg_copy_free(old);
	return 0;
}

int ids_set_ips(const struct ids_ips_view *v)
{
	struct ids_rule *rules = NULL;
	struct ids_sampling samp = {0};
	struct ids_rule *old_rules;
	struct ids_sampling old_samp;
	size_t old_n;
	int r;

	if (ids_rules_dup(v->rules, v->n_rules, &rules))
		return -ENOMEM;
	if (v->sampling) {
		samp = *v->sampling;
		samp.high_risk_countries = v->sampling->high_risk_countries
					       ? es_strv_dup(v->sampling->high_risk_countries)
					       : NULL;
	}
	pthread_mutex_lock(&lock);
	old_rules = ips_rules;
	old_n = ips_view.n_rules;
	old_samp = ips_sampling;
	ips_rules = rules;
	ips_sampling = samp;
	ips_view = (struct ids_ips_view){v->enabled, v->mode, ips_rules, v->n_rules, &ips_sampling};
	r = ids_sec ? rebuild_locked(ids_sec) : 0;
	pthread_mutex_unlock(&lock);
	ids_rules_free(old_rules, old_n);
	ids_sampling_free(&old_samp);
	return r;
}

void ids_engine_stop(void)
{
	pthread_mutex_lock(&lock);
	ids_snap_put(snap);
	snap = NULL;
	cfg_copy_free(ids_sec);
	ids_sec = NULL;
	ids_rules_free(ips_rules, ips_view.n_rules);
	ips_rules = NULL;
	ids_sampling_free(&ips_sampling);
	memset(&ips_view, 0, sizeof(ips_view));
	pthread_mutex_unlock(&lock);
	unload_prog();
	pthread_mutex_lock(&trk_lock);
	es_hmap__free(trackers);
	trackers = NULL;
	pthread_mutex_unlock(&trk_lock);
	ids_scan__free(scan);
	scan = NULL;
}

static bool trk_expired(const void *key, void *val, void *arg)
{
	const struct trk_val *v = val;

	return *(uint64_t *)arg - v->start >= v->window_ns;
}

void ids_engine_tick(void)
{
	static unsigned ticks;
	uint64_t now = es_boot_ns();

	if (++ticks % 60)
		return;
	pthread_mutex_lock(&trk_lock);
	if (trackers)
		es_hmap_sweep(trackers, trk_expired, &now);
	pthread_mutex_unlock(&trk_lock);
}

void ids_engine_metrics(void)
{
	struct ids_snap *s = snap_get();
	uint64_t v[ES_IDS_M__COUNT];
	size_t n = 0;

	if (s) {
		for (size_t i = 0; s->ids_enabled && i < s->n_ids; i++)
			n += s->rules[i].enabled;
		es_metric_set(m_rules, (double)n, "ids");
		ids_snap_put(s);
	}
	if (skel && !es_percpu_sum_all(bpf_map__fd(skel->maps.ids_metrics), ES_IDS_M__COUNT, v))
		for (int i = 0; i < ES_IDS_M__COUNT; i++)
			es_metric_mirror(m_packets, v[i], "IDS_METRICS", metric_names[i]);
}

static const char *cap_mode(enum ids_mode m)
{
	return m == IDS_MODE_BLOCK ? "Block" : "Alert";
}

void ids_engine_status(json_t *o)
{
	struct ids_snap *s = snap_get();

	json_object_set_new(o, "active", json_boolean(s && s->ids_enabled));
	json_object_set_new(o, "program_loaded", json_boolean(skel != NULL));
	json_object_set_new(o, "mode", json_string(cap_mode(s ? s->ids_mode : IDS_MODE_ALERT)));
	json_object_set_new(o, "rule_count", json_integer(s ? (json_int_t)s->n_ids : 0));
	ids_snap_put(s);
}

static const char *cap_sev(enum es_severity s)
{
	static const char *const n[] = {"Low", "Medium", "High", "Critical"};

	return s <= ES_SEV_CRITICAL ? n[s] : "Low";
}

static const char *cap_proto(uint8_t p)
{
	switch (p) {
	case 0: return "Any";
	case 1: return "Icmp";
	case 6: return "Tcp";
	case 17: return "Udp";
	default: return "Other";
	}
}

json_t *ids_engine_rules_json(void)
{
	struct ids_snap *s = snap_get();
	json_t *arr = json_array();

	for (size_t i = 0; s && i < s->n_ids; i++) {
		const struct ids_rule *r = &s->rules[i];
		enum ids_mode m = r->mode == IDS_MODE_INHERIT ? s->ids_mode : r->mode;
		json_t *o =
		    json_pack("{s:s,s:s,s:s,s:s,s:s,s:o,s:s,s:b}", "id", r->id, "description",
			      r->description, "severity", cap_sev(r->severity), "mode", cap_mode(m),
			      "protocol", cap_proto(r->protocol), "dst_port",
			      r->has_port ? json_integer(r->dst_port) : json_null(), "pattern",
			      r->pattern, "enabled", r->enabled);

		if (r->domain_pattern) {
			static const char *const dm[] = {"exact", "wildcard", "regex"};

			json_object_set_new(o, "domain_pattern", json_string(r->domain_pattern));
			json_object_set_new(o, "domain_match_mode",
					    json_string(dm[r->domain_mode]));
		}
		json_array_append_new(arr, o);
	}
	ids_snap_put(s);
	return arr;
}
