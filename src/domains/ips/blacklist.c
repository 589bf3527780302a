// SPDX-License-Identifier: AGPL-3.0-only
/*
 * The IPS engine (detection.md §2.3): detections per source, automatic
 * blacklisting at the threshold, manual and domain-driven entries, the
 * whitelist that overrides them all, TTL expiry (lazy plus a 60 s sweep) and
 * the kernel maps tc_ids enforces (written only while IPS runs in block
 * mode). IPS rules are evaluated by the IDS engine (ids_set_ips).
 */
#define ES_LOG_TARGET "ebpfsentinel::ips"
#include "abi/ids.h"
#include "api/metrics.h"
#include "core/alert.h"
#include "core/clock.h"
#include "core/hmap.h"
#include "core/log.h"
#include "domains/ips/ips_int.h"
#include "kernel/kernel.h"

#include <bpf/bpf.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct ipkey {
	uint8_t b[16];
	uint8_t family;
	uint8_t pad[7];
};

struct entry {
	char reason[192];
	bool auto_gen;
	uint64_t added; /* boot ns */
	uint64_t ttl;	/* seconds, 0 = permanent */
};

struct counter {
	uint64_t count;
	uint64_t first;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static bool running;
static struct ips_cfg cur; /* deep copy of the running section */
static struct es_hmap *blacklist, *detections;
static int fd4 = -1, fd6 = -1;
static bool enforcing;

/* ---- helpers ------------------------------------------------------------------------ */

static struct ipkey key_of(const struct es_addr *a)
{
	struct ipkey k;

	memset(&k, 0, sizeof(k));
	memcpy(k.b, a->b, 16);
	k.family = a->family;
	return k;
}

static bool whitelisted_locked(const struct es_addr *a)
{
	/* Same-family prefix match only; /0 covers a whole family (es_cidr_contains). */
	for (size_t i = 0; i < cur.n_whitelist; i++)
		if (cur.whitelist[i].addr.family == a->family &&
		    es_cidr_contains(&cur.whitelist[i], a))
			return true;
	return false;
}

bool ips_whitelisted(const struct es_addr *a)
{
	bool r;

	pthread_mutex_lock(&lock);
	r = whitelisted_locked(a);
	pthread_mutex_unlock(&lock);
	return r;
}

static bool expired(const struct entry *e, uint64_t now)
{
	return e->ttl && now - e->added >= e->ttl * ES_NS_PER_SEC;
}

static void kernel_put(const struct ipkey *k, const struct entry *e)
{
	__u64 exp = e->ttl ? e->added + e->ttl * ES_NS_PER_SEC : 0;

	if (!enforcing)
		return;
	if (k->family == 4 && fd4 >= 0)
		bpf_map_update_elem(fd4, k->b + 12, &exp, BPF_ANY);
	else if (k->family == 6 && fd6 >= 0)
		bpf_map_update_elem(fd6, k->b, &exp, BPF_ANY);
}

static void kernel_del(const struct ipkey *k)
{
	if (k->family == 4 && fd4 >= 0)
		bpf_map_delete_elem(fd4, k->b + 12);
	else if (k->family == 6 && fd6 >= 0)
		bpf_map_delete_elem(fd6, k->b);
}

static void clear_map(int fd, size_t key_size)
{
	uint8_t k[16];

	if (fd < 0)
		return;
	while (bpf_map_get_next_key(fd, NULL, k) == 0 && bpf_map_delete_elem(fd, k) == 0)
		;
	(void)key_size;
}

static bool put_each(const void *key, void *val, void *arg)
{
	kernel_put(key, val);
	return false;
}

/* Kernel maps mirror the blacklist only while IPS is enabled in block mode. */
static void resync_locked(void)
{
	clear_map(fd4, 4);
	clear_map(fd6, 16);
	enforcing = cur.enabled && cur.mode == IDS_MODE_BLOCK;
	if (enforcing && blacklist)
		es_hmap_sweep(blacklist, put_each, NULL);
	es_kernel_set_feature(ES_FEAT_IPS, cur.enabled);
}

static int add_locked(const struct es_addr *a, const char *reason, bool auto_gen, uint64_t ttl)
{
	struct ipkey k = key_of(a);
	struct entry *e;
	bool created;

	if (whitelisted_locked(a))
		return -EPERM;
	e = es_hmap_get(blacklist, &k);
	if (e && !expired(e, es_boot_ns()))
		return -EEXIST;
	if (!e && es_hmap_count(blacklist) >= cur.max_size)
		return -ENOSPC;
	e = es_hmap_put(blacklist, &k, &created);
	if (!e)
		return -ENOMEM;
	snprintf(e->reason, sizeof(e->reason), "%s", reason);
	e->auto_gen = auto_gen;
	e->added = es_boot_ns();
	e->ttl = ttl;
	kernel_put(&k, e);
	return 0;
}

int ips_blacklist_add(const struct es_addr *ip, const char *reason, uint64_t ttl_secs)
{
	int r;

	pthread_mutex_lock(&lock);
	r = running && cur.enabled ? add_locked(ip, reason, false, ttl_secs) : -ENODEV;
	pthread_mutex_unlock(&lock);
	return r;
}

int ips_blacklist_remove(const struct es_addr *ip)
{
	struct ipkey k = key_of(ip);
	int r;

	pthread_mutex_lock(&lock);
	r = blacklist ? es_hmap_del(blacklist, &k) : -ENOENT;
	if (!r)
		kernel_del(&k);
	pthread_mutex_unlock(&lock);
	return r;
}

/* ---- detections ---------------------------------------------------------------------- */

static uint32_t threshold_for(const uint32_t src[4], bool v6)
{
	char cc[3];

	if (cur.n_country && ids_country_of(src, v6, cc))
		for (size_t i = 0; i < cur.n_country; i++)
			if (!strcmp(cur.country[i].cc, cc))
				return cur.country[i].threshold;
	return cur.threshold;
}

void ips_record_detection(const uint32_t src[4], bool v6)
{
	struct es_addr a;
	struct ipkey k;
	struct counter *c;
	uint64_t now = es_boot_ns(), count = 0, ttl = 0;
	bool created, listed = false;
	uint32_t thr;

	es_addr_from_words(&a, src, v6);
	k = key_of(&a);
	pthread_mutex_lock(&lock);
	if (!running || !cur.enabled || whitelisted_locked(&a))
		goto out;
	c = es_hmap_put(detections, &k, &created);
	if (!c)
		goto out;
	if (created ||
	    (cur.max_duration_secs && now - c->first >= cur.max_duration_secs * ES_NS_PER_SEC)) {
		c->count = 0;
		c->first = now;
	}
	c->count++;
	thr = threshold_for(src, v6);
	if (c->count < thr)
		goto out;
	count = c->count;
	es_hmap_del(detections, &k);
	ttl = cur.max_duration_secs;
	listed = add_locked(&a, IPS_AUTO_REASON, true, ttl) == 0; /* present/full: ignored */
out : {
	bool block = cur.mode == IDS_MODE_BLOCK;

	pthread_mutex_unlock(&lock);
	if (listed) {
		struct es_alert al = {0};
		char ip[64];

		es_addr_format(&a, ip, sizeof(ip));
		snprintf(al.component, sizeof(al.component), "ips");
		snprintf(al.rule_id, sizeof(al.rule_id), "ips-auto-blacklist");
		al.severity = ES_SEV_HIGH;
		al.action = block ? ES_ALERT_ACT_BLOCK : ES_ALERT_ACT_ALERT;
		memcpy(al.src_addr, src, sizeof(al.src_addr));
		al.is_ipv6 = v6;
		if (ttl)
			snprintf(al.message, sizeof(al.message),
				 "IPS auto-blacklisted %s after %llu detections (ttl %llus)", ip,
				 (unsigned long long)count, (unsigned long long)ttl);
		else
			snprintf(al.message, sizeof(al.message),
				 "IPS auto-blacklisted %s after %llu detections (permanent)", ip,
				 (unsigned long long)count);
		pr_info("source blacklisted", LF_STR("ip", ip), LF_UINT("detections", count),
			LF_UINT("ttl_secs", ttl), LF_BOOL("enforced", block));
		es_alert_emit(&al);
	}
}
}

/* ---- listing ----------------------------------------------------------------------- */

struct list_arg {
	json_t *arr;
	uint64_t now;
	bool domain_only;
};

static bool list_each(const void *key, void *val, void *arg)
{
	const struct ipkey *k = key;
	const struct entry *e = val;
	struct list_arg *la = arg;
	struct es_addr a;
	char ip[64];
	uint64_t left;
	const char *src = NULL;

	if (expired(e, la->now)) {
		kernel_del(k);
		return true;
	}
	memcpy(a.b, k->b, 16);
	a.family = k->family;
	es_addr_format(&a, ip, sizeof(ip));
	left = e->ttl ? (e->added + e->ttl * ES_NS_PER_SEC - la->now) / ES_NS_PER_SEC : 0;
	if (!strncmp(e->reason, "dns-blocklist: ", 15))
		src = "dns-blocklist";
	else if (!strncmp(e->reason, "reputation: ", 12))
		src = "reputation";
	if (!la->domain_only)
		json_array_append_new(la->arr, json_pack("{s:s,s:s,s:b,s:I}", "ip", ip, "reason",
							 e->reason, "auto_generated", e->auto_gen,
							 "ttl_remaining_secs", (json_int_t)left));
	else if (src)
		json_array_append_new(la->arr,
				      json_pack("{s:s,s:s,s:s,s:s,s:I}", "ip", ip, "domain",
						strchr(e->reason, ' ') + 1, "source", src, "reason",
						e->reason, "ttl_remaining_secs", (json_int_t)left));
	return false;
}

json_t *ips_blacklist_json(bool domain_only)
{
	struct list_arg la = {json_array(), es_boot_ns(), domain_only};

	pthread_mutex_lock(&lock);
	if (blacklist)
		es_hmap_sweep(blacklist, list_each, &la); /* expired entries go on the way */
	pthread_mutex_unlock(&lock);
	return la.arr;
}

size_t ips_blacklist_size(void)
{
	size_t n;

	pthread_mutex_lock(&lock);
	n = blacklist ? es_hmap_count(blacklist) : 0;
	pthread_mutex_unlock(&lock);
	return n;
}

/* ---- rules ------------------------------------------------------------------------- */

static json_t *rule_json(const struct ids_rule *r)
{
	enum ids_mode m = r->mode == IDS_MODE_INHERIT ? cur.mode : r->mode;

	return json_pack("{s:s,s:s,s:s,s:s,s:s,s:o,s:s,s:b}", "id", r->id, "description",
			 r->description, "severity", es_severity_name(r->severity), "mode",
			 m == IDS_MODE_BLOCK ? "block" : "alert", "protocol",
			 ids_proto_name(r->protocol), "dst_port",
			 r->has_port ? json_integer(r->dst_port) : json_null(), "pattern",
			 r->pattern, "enabled", r->enabled);
}

json_t *ips_rules_json(void)
{
	json_t *arr = json_array();

	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < cur.n_rules; i++)
		json_array_append_new(arr, rule_json(&cur.rules[i]));
	pthread_mutex_unlock(&lock);
	return arr;
}

static int push_to_ids_locked(void)
{
	return ids_set_ips(
	    &(struct ids_ips_view){cur.enabled, cur.mode, cur.rules, cur.n_rules, &cur.sampling});
}

int ips_rule_set_mode(const char *id, enum ids_mode mode, json_t **before, json_t **after)
{
	int r = -ENOENT;

	*before = *after = NULL;
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < cur.n_rules; i++) {
		if (strcmp(cur.rules[i].id, id))
			continue;
		*before = rule_json(&cur.rules[i]);
		cur.rules[i].mode = mode;
		*after = rule_json(&cur.rules[i]);
		r = push_to_ids_locked();
		break;
	}
	pthread_mutex_unlock(&lock);
	return r;
}

/* ---- lifecycle ------------------------------------------------------------------------ */

static void cfg_release(struct ips_cfg *c)
{
	ids_rules_free(c->rules, c->n_rules);
	ids_sampling_free(&c->sampling);
	free(c->whitelist);
	es_strv_free(c->whitelist_text);
	free(c->country);
	memset(c, 0, sizeof(*c));
}

static int cfg_copy(struct ips_cfg *dst, const struct ips_cfg *src)
{
	*dst = *src;
	dst->rules = NULL;
	dst->whitelist = calloc(src->n_whitelist + 1, sizeof(*dst->whitelist));
	dst->whitelist_text = NULL;
	dst->country = calloc(src->n_country + 1, sizeof(*dst->country));
	dst->sampling.high_risk_countries = src->sampling.high_risk_countries
						? es_strv_dup(src->sampling.high_risk_countries)
						: NULL;
	if (!dst->whitelist || !dst->country ||
	    ids_rules_dup(src->rules, src->n_rules, &dst->rules)) {
		dst->n_rules = 0;
		cfg_release(dst);
		return -ENOMEM;
	}
	memcpy(dst->whitelist, src->whitelist, src->n_whitelist * sizeof(*dst->whitelist));
	memcpy(dst->country, src->country, src->n_country * sizeof(*dst->country));
	return 0;
}

static bool drop_whitelisted(const void *key, void *val, void *arg)
{
	const struct ipkey *k = key;
	struct es_addr a;

	memcpy(a.b, k->b, 16);
	a.family = k->family;
	if (!whitelisted_locked(&a))
		return false;
	kernel_del(k);
	return true;
}

int ips_engine_start(const struct ips_cfg *c)
{
	int r;

	blacklist = es_hmap__new(sizeof(struct ipkey), sizeof(struct entry));
	detections = es_hmap__new(sizeof(struct ipkey), sizeof(struct counter));
	if (!blacklist || !detections || cfg_copy(&cur, c)) {
		es_hmap__free(blacklist);
		es_hmap__free(detections);
		blacklist = detections = NULL;
		return -ENOMEM;
	}
	if (es_kernel_ready()) {
		/* Declared by tc_ids (loaded by the IDS domain, which starts first). */
		fd4 = es_kernel_open_pinned("ips_blacklist_v4");
		fd6 = es_kernel_open_pinned("ips_blacklist_v6");
		if (fd4 < 0 || fd6 < 0)
			pr_warn("IPS blacklist maps unavailable: entries are listed, not enforced");
	}
	pthread_mutex_lock(&lock);
	running = true;
	resync_locked(); /* also clears entries a crashed predecessor left pinned */
	r = push_to_ids_locked();
	pthread_mutex_unlock(&lock);
	ids_set_detection_hook(ips_record_detection);
	return r;
}

int ips_engine_apply(const struct ips_cfg *c)
{
	struct ips_cfg n, old;
	int r;

	if (cfg_copy(&n, c))
		return -ENOMEM;
	pthread_mutex_lock(&lock);
	old = cur;
	cur = n;
	r = push_to_ids_locked();
	if (r) {
		cur = old;
		pthread_mutex_unlock(&lock);
		cfg_release(&n);
		return r;
	}
	/* Entries persist; those now whitelisted go ([Gap] §2.3). */
	if (blacklist)
		es_hmap_sweep(blacklist, drop_whitelisted, NULL);
	resync_locked();
	pthread_mutex_unlock(&lock);
	cfg_release(&old);
	return 0;
}

void ips_engine_stop(void)
{
	ids_set_detection_hook(NULL);
	pthread_mutex_lock(&lock);
	running = false;
	cfg_release(&cur);
	es_hmap__free(blacklist);
	es_hmap__free(detections);
	blacklist = detections = NULL;
	if (fd4 >= 0)
		close(fd4);
	if (fd6 >= 0)
		close(fd6);
	fd4 = fd6 = -1;
	enforcing = false;
	pthread_mutex_unlock(&lock);
}

static bool entry_expired(const void *key, void *val, void *arg)
{
	if (!expired(val, *(uint64_t *)arg))
		return false;
	kernel_del(key);
	return true;
}

static bool counter_expired(const void *key, void *val, void *arg)
{
	const struct counter *c = val;

	return cur.max_duration_secs &&
	       *(uint64_t *)arg - c->first >= cur.max_duration_secs * ES_NS_PER_SEC;
}

void ips_engine_tick(void)
{
	static unsigned ticks;
	uint64_t now = es_boot_ns();

	if (++ticks % 60)
		return;
	pthread_mutex_lock(&lock);
	if (blacklist) {
		es_hmap_sweep(blacklist, entry_expired, &now);
		es_hmap_sweep(detections, counter_expired, &now);
	}
	pthread_mutex_unlock(&lock);
}

void ips_engine_metrics(void)
{
	struct es_mfam *size = es_metric_family("ebpfsentinel_ips_blacklist_size",
						"Current IPS blacklist entries", ES_M_GAUGE, NULL);
	struct es_mfam *blocks = es_metric_family("ebpfsentinel_ips_blocks",
						  "IPS enforcement actions", ES_M_COUNTER, NULL);
	struct es_mfam *rules = es_metric_family(
	    "ebpfsentinel_rules_loaded", "Active rules per component", ES_M_GAUGE, "component");
	size_t n = 0;
	uint64_t drops;
	int fd;

	pthread_mutex_lock(&lock);
	for (size_t i = 0; cur.enabled && i < cur.n_rules; i++)
		n += cur.rules[i].enabled;
	pthread_mutex_unlock(&lock);
	es_metric_set(rules, (double)n, "ips");
	es_metric_set(size, (double)ips_blacklist_size());
	/* Enforcement actions: packets tc_ids dropped for a blacklisted source. */
	if (es_kernel_ready() && (fd = es_kernel_open_pinned("es_reasons")) >= 0) {
		if (!es_percpu_sum(fd, ES_PROG_TC_IDS * ES_REASON_STRIDE + ES_R_IPS_BLACKLIST_DROP,
				   &drops))
			es_metric_mirror(blocks, drops);
		close(fd);
	}
}
