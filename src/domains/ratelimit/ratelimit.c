// SPDX-License-Identifier: AGPL-3.0-only
/*
 * Rate-limit domain: the `ratelimit:` section, xdp_ratelimit's lifecycle (it
 * is loaded when ratelimit or ddos is enabled, since the DDoS checks live in
 * it), compilation of the default, the CIDR policies and the tiers into its
 * maps, and the runtime rule list. Map updates are ordered so a reload never
 * leaves a window without policies: new entries first, stale ones last.
 */
#define ES_LOG_TARGET "ebpfsentinel::ratelimit"
#include "domains/ratelimit/ratelimit.h"
#include "abi/common.h"
#include "agent/domain.h"
#include "api/metrics.h"
#include "core/audit.h"
#include "core/idlist.h"
#include "core/log.h"
#include "kernel/events.h"
#include "kernel/kernel.h"
#include "skel/ratelimit.skel.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

extern const struct es_route rl_routes[];

static const char *const algo_names[] = {
    "token_bucket", "fixed_window",  "sliding_window", "leaky_bucket", "syn_cookie", "tokenbucket",
    "fixedwindow",  "slidingwindow", "leakybucket",    "syncookie",    NULL,
};
static const char *const action_names[] = {"drop", "deny", "block", "pass", "allow", NULL};
static const char *const scope_names[] = {"source_ip", "src_ip", "per_ip",
					  "per-ip",    "global", NULL};
static const char *const rl_keys[] = {
    "enabled", "default_rate",	"default_burst", "default_algorithm",
    "rules",   "country_tiers", "mode",		 NULL,
};
static const char *const rule_keys[] = {
    "id",    "rate",	  "burst",   "src_ip",	      "action",
    "scope", "algorithm", "enabled", "country_codes", NULL,
};
static const char *const tier_keys[] = {
    "tier_id", "country_codes", "rate", "burst", "algorithm", "action", NULL,
};
static const char *const metric_names[ES_RL_M__COUNT] = {
    "matched", "dropped", "errors", "events_dropped", "total_seen",
};

struct rl_cfg {
	bool enabled;
	bool ddos_enabled; /* ddos.enabled: the program carries the DDoS checks */
	uint64_t default_rate;
	uint64_t default_burst;
	uint8_t default_algorithm;
	struct rl_rule *rules;
	size_t n_rules;
	struct rl_tier *tiers;
	size_t n_tiers;
};

/* Runtime: the live rule list (config rules plus REST changes) and the program. */
static pthread_mutex_t rl_lock = PTHREAD_MUTEX_INITIALIZER;
static struct rl_rule *live;
static size_t n_live;
static struct rl_cfg cur; /* defaults and flags of the applied config (rules unused) */
static size_t n_tiers;
static struct es_ratelimit *skel;
static unsigned attached;
static struct es_mfam *m_packets, *m_rules;

const char *rl_algo_name(uint8_t algo)
{
	return algo < ES_RL_ALGO__COUNT ? algo_names[algo] : "token_bucket";
}

/* ---- parsing --------------------------------------------------------------------- */

void rl_rule_clear(struct rl_rule *r)
{
	free(r->id);
	es_strv_free(r->country_codes);
	memset(r, 0, sizeof(*r));
}

int rl_rule_parse(struct es_cfg *c, const json_t *obj, const char *path, bool rest,
		  struct rl_rule *out)
{
	char *src = NULL, why[128];
	int algo, action, scope;

	memset(out, 0, sizeof(*out));
	if (es_cfg_item(c, obj, path, "RateLimitRule"))
		return -EINVAL;
	es_cfg_check_keys(c, obj, path, rule_keys);
	if (es_cfg_max_len(c, obj, path, "src_ip", 512) ||
	    es_cfg_max_len(c, obj, path, "action", 128) ||
	    es_cfg_max_len(c, obj, path, "scope", 128) ||
	    es_cfg_max_len(c, obj, path, "algorithm", 128) ||
	    es_cfg_rule_id(c, obj, path, &out->id))
		goto fail;
	if (rest ? es_cfg_req_u64(c, obj, path, "rate", &out->rate) ||
		       es_cfg_req_u64(c, obj, path, "burst", &out->burst)
		 : es_cfg_u64(c, obj, path, "rate", &out->rate, 0) ||
		       es_cfg_u64(c, obj, path, "burst", &out->burst, 0))
		goto fail;
	if (out->rate < 1 || out->rate > RL_MAX_RATE) {
		es_cfg_fail(c, ES_ERR_VALIDATION, obj, path, "rate", 0,
			    "invalid rate: must be between 1 and %llu (got %llu)", RL_MAX_RATE,
			    (unsigned long long)out->rate);
		goto fail;
	}
	if (out->burst == 0) {
		es_cfg_fail(c, ES_ERR_VALIDATION, obj, path, "burst", 0,
			    "invalid burst: must be > 0");
		goto fail;
	}
	if (es_cfg_enum(c, obj, path, "action", action_names, &action, 0) ||
	    es_cfg_enum(c, obj, path, "scope", scope_names, &scope, 0) ||
	    es_cfg_enum(c, obj, path, "algorithm", algo_names, &algo, 0) ||
	    es_cfg_bool(c, obj, path, "enabled", &out->enabled, true) ||
	    es_cfg_strv(c, obj, path, "country_codes", &out->country_codes, NULL) ||
	    es_cfg_str(c, obj, path, "src_ip", &src, NULL))
		goto fail;
	out->action = action >= 3 ? ES_RL_ACT_PASS : ES_RL_ACT_DROP;
	out->scope = scope == 4 ? ES_RL_SCOPE_GLOBAL : ES_RL_SCOPE_SOURCE;
	out->algorithm = (uint8_t)(algo % ES_RL_ALGO__COUNT);
	if (src) {
		if (es_cidr_parse(src, &out->cidr, why, sizeof(why))) {
			es_cfg_fail(c, ES_ERR_VALIDATION, obj, path, "src_ip", 0,
				    "invalid CIDR notation '%s': %s", src, why);
			free(src);
			goto fail;
		}
		out->has_cidr = true;
		free(src);
	}
	return 0;
fail:
	rl_rule_clear(out);
	return -EINVAL;
}

static int country_codes_ok(struct es_cfg *c, const json_t *obj, const char *path, char **cc)
{
	for (size_t i = 0; cc && cc[i]; i++)
		if (!es_country_code_valid(cc[i]))
			return es_cfg_fail(c, ES_ERR_VALIDATION, obj, path, "country_codes", 0,
					   "invalid country code '%s'", cc[i]);
	return 0;
}

static int tier_parse(struct es_cfg *c, const json_t *obj, const char *path, struct rl_tier *t)
{
	int algo, action;

	memset(t, 0, sizeof(*t));
	es_cfg_check_keys(c, obj, path, tier_keys);
	if (es_cfg_u8(c, obj, path, "tier_id", &t->tier_id, 0) ||
	    es_cfg_strv(c, obj, path, "country_codes", &t->country_codes, NULL) ||
	    es_cfg_u64(c, obj, path, "rate", &t->rate, 0) ||
	    es_cfg_u64(c, obj, path, "burst", &t->burst, 0) ||
	    es_cfg_enum(c, obj, path, "algorithm", algo_names, &algo, 0) ||
	    es_cfg_enum(c, obj, path, "action", action_names, &action, 0))
		return -EINVAL;
	t->algorithm = (uint8_t)(algo % ES_RL_ALGO__COUNT);
	t->action = action >= 3 ? ES_RL_ACT_PASS : ES_RL_ACT_DROP;
	if (t->tier_id < 1 || t->tier_id > 15)
		return es_cfg_fail(c, ES_ERR_VALIDATION, obj, path, "tier_id", 0,
				   "invalid tier_id: must be between 1 and 15 (got %u)",
				   t->tier_id);
	if (!t->country_codes || !t->country_codes[0])
		return es_cfg_fail(c, ES_ERR_VALIDATION, obj, path, "country_codes", 0,
				   "must not be empty");
	if (country_codes_ok(c, obj, path, t->country_codes))
		return -EINVAL;
	if (!t->rate || t->rate > RL_MAX_RATE)
		return es_cfg_fail(c, ES_ERR_VALIDATION, obj, path, "rate", 0,
				   "invalid rate: must be between 1 and %llu", RL_MAX_RATE);
	if (!t->burst)
		return es_cfg_fail(c, ES_ERR_VALIDATION, obj, path, "burst", 0,
				   "invalid burst: must be > 0");
	return 0;
}

static void cfg_free(void *p)
{
	struct rl_cfg *r = p;

	if (!r)
		return;
	for (size_t i = 0; i < r->n_rules; i++)
		rl_rule_clear(&r->rules[i]);
	for (size_t i = 0; i < r->n_tiers; i++)
		es_strv_free(r->tiers[i].country_codes);
	free(r->rules);
	free(r->tiers);
	free(r);
}

static void *rl_parse(struct es_cfg *c, const json_t *node, const char *path, const json_t *root)
{
	struct rl_cfg *r = calloc(1, sizeof(*r));
	json_t *rules, *tiers, *item, *seen, *ddos = json_object_get(root, "ddos");
	char ipath[64];
	size_t i;
	int algo;

	if (!r)
		return NULL;
	es_cfg_check_keys(c, node, path, rl_keys);
	if (es_cfg_bool(c, node, path, "enabled", &r->enabled, false) ||
	    es_cfg_u64(c, node, path, "default_rate", &r->default_rate, 1000) ||
	    es_cfg_u64(c, node, path, "default_burst", &r->default_burst, 2000) ||
	    es_cfg_array(c, node, path, "rules", &rules) ||
	    es_cfg_array(c, node, path, "country_tiers", &tiers))
		goto fail;
	if (r->default_rate > RL_MAX_RATE) {
		es_cfg_fail(c, ES_ERR_VALIDATION, node, path, "default_rate", 0,
			    "must be at most %llu", RL_MAX_RATE);
		goto fail;
	}
	/* An unknown default algorithm falls back to the token bucket (§6.1). */
	{
		const json_t *a = json_object_get(node, "default_algorithm");
		struct es_cfg probe;

		es_cfg_init(&probe, NULL);
		if (a && !json_is_null(a) &&
		    es_cfg_enum(&probe, node, path, "default_algorithm", algo_names, &algo, 0)) {
			es_cfg_warn(
			    c, "%s.default_algorithm: unknown algorithm, using token_bucket", path);
			algo = 0;
		} else if (!a || json_is_null(a)) {
			algo = 0;
		}
		es_cfg_release(&probe);
		r->default_algorithm = (uint8_t)(algo % ES_RL_ALGO__COUNT);
	}
	r->ddos_enabled = json_is_object(ddos) && json_is_true(json_object_get(ddos, "enabled"));

	r->rules = calloc(rules ? json_array_size(rules) + 1 : 1, sizeof(*r->rules));
	if (!r->rules)
		goto fail;
	es_path_key(ipath, sizeof(ipath), path, "rules");
	seen = json_object();
	json_array_foreach (rules, i, item) {
		char p[96];

		es_path_idx(p, sizeof(p), ipath, i);
		if (rl_rule_parse(c, item, p, false, &r->rules[i]))
			break;
		r->n_rules++;
		if (es_cfg_unique_id(c, seen, item, p, r->rules[i].id, "duplicate rule id '%s'",
				     r->rules[i].id))
			break;
	}
	json_decref(seen);
	if (i < json_array_size(rules))
		goto fail;
	r->tiers = calloc(tiers ? json_array_size(tiers) + 1 : 1, sizeof(*r->tiers));
	if (!r->tiers)
		goto fail;
	es_path_key(ipath, sizeof(ipath), path, "country_tiers");
	json_array_foreach (tiers, i, item) {
		char p[96];

		es_path_idx(p, sizeof(p), ipath, i);
		if (tier_parse(c, item, p, &r->tiers[i])) {
			es_strv_free(r->tiers[i].country_codes);
			goto fail;
		}
		r->n_tiers++;
	}
	return r;
fail:
	cfg_free(r);
	return NULL;
}

json_t *rl_rule_json(const struct rl_rule *r)
{
	char cidr[80];

	if (r->has_cidr)
		es_cidr_format_full(&r->cidr, cidr, sizeof(cidr));
	return json_pack("{s:s,s:s,s:I,s:I,s:s,s:s,s:o,s:b}", "id", r->id, "scope",
			 r->scope == ES_RL_SCOPE_GLOBAL ? "global" : "source_ip", "rate",
			 (json_int_t)r->rate, "burst", (json_int_t)r->burst, "action",
			 r->action == ES_RL_ACT_PASS ? "pass" : "drop", "algorithm",
			 rl_algo_name(r->algorithm), "src_ip",
			 r->has_cidr ? json_string(cidr) : json_null(), "enabled", r->enabled);
}

static json_t *rl_to_json(const void *p)
{
	const struct rl_cfg *r = p;
	json_t *o, *rules = json_array(), *tiers = json_array();

	for (size_t i = 0; i < r->n_rules; i++)
		json_array_append_new(rules, rl_rule_json(&r->rules[i]));
	for (size_t i = 0; i < r->n_tiers; i++) {
		json_t *cc = json_array();

		for (char **s = r->tiers[i].country_codes; s && *s; s++)
			json_array_append_new(cc, json_string(*s));
		json_array_append_new(
		    tiers, json_pack("{s:i,s:o,s:I,s:I,s:s,s:s}", "tier_id", r->tiers[i].tier_id,
				     "country_codes", cc, "rate", (json_int_t)r->tiers[i].rate,
				     "burst", (json_int_t)r->tiers[i].burst, "algorithm",
				     rl_algo_name(r->tiers[i].algorithm), "action",
				     r->tiers[i].action == ES_RL_ACT_PASS ? "pass" : "drop"));
	}
	o = json_pack("{s:b,s:I,s:I,s:s,s:o,s:o}", "enabled", r->enabled, "default_rate",
		      (json_int_t)r->default_rate, "default_burst", (json_int_t)r->default_burst,
		      "default_algorithm", rl_algo_name(r->default_algorithm), "rules", rules,
		      "country_tiers", tiers);
	return o;
}

static bool rl_enabled(const void *p)
{
	return ((const struct rl_cfg *)p)->enabled;
}

/* ---- kernel maps ------------------------------------------------------------------- */

static int rl_rule_dup(struct rl_rule *dst, const struct rl_rule *src)
{
	*dst = *src;
	dst->id = strdup(src->id);
	dst->country_codes = src->country_codes ? es_strv_dup(src->country_codes) : NULL;
	if (!dst->id || (src->country_codes && !dst->country_codes)) {
		rl_rule_clear(dst);
		return -ENOMEM;
	}
	return 0;
}

static pthread_mutex_t globals_lock = PTHREAD_MUTEX_INITIALIZER;

int es_rl_global_get(int fd, uint32_t idx, uint32_t *v)
{
	struct es_rl_globals g;
	uint32_t zero = 0;

	if (idx >= ES_RL_G__COUNT)
		return -EINVAL;
	if (bpf_map_lookup_elem(fd, &zero, &g))
		return -errno;
	*v = g.w[idx];
	return 0;
}

/*
 * Read-modify-write of the one rl_globals entry, serialised across the
 * ratelimit and ddos domains: word idx = v, or the default policy when
 * dflt is given.
 */
static int globals_put(int fd, uint32_t idx, uint32_t v, const struct es_rl_config *dflt)
{
	struct es_rl_globals g;
	uint32_t zero = 0;
	int r = 0;

	pthread_mutex_lock(&globals_lock);
	if (bpf_map_lookup_elem(fd, &zero, &g) == 0) {
		if (dflt)
			g.dflt = *dflt;
		else
			g.w[idx] = v;
		if (bpf_map_update_elem(fd, &zero, &g, BPF_ANY))
			r = -errno;
	} else {
		r = -errno;
	}
	pthread_mutex_unlock(&globals_lock);
	return r;
}

int es_rl_global_put(int fd, uint32_t idx, uint32_t v)
{
	if (idx >= ES_RL_G__COUNT)
		return -EINVAL;
	return globals_put(fd, idx, v, NULL);
}

int es_rl_default_put(int fd, const struct es_rl_config *c)
{
	return globals_put(fd, 0, 0, c);
}

static void put_global(uint32_t idx, uint32_t v)
{
	es_rl_global_put(bpf_map__fd(skel->maps.rl_globals), idx, v);
}

/* Delete every key of an LPM map that is not among the n_keep keys of keep. */
static void prune_lpm(int fd, size_t key_size, const void *keep, size_t n_keep)
{
	uint8_t key[24], *stale = NULL, *grown;
	size_t n = 0, cap = 0;
	bool first = true;

	while (!bpf_map_get_next_key(fd, first ? NULL : key, key)) {
		bool found = false;

		first = false;
		for (size_t i = 0; i < n_keep && !found; i++)
			found = !memcmp((const uint8_t *)keep + i * key_size, key, key_size);
		if (found)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			grown = realloc(stale, cap * key_size);
			if (!grown)
				break;
			stale = grown;
		}
		memcpy(stale + n++ * key_size, key, key_size);
	}
	for (size_t i = 0; i < n; i++)
		bpf_map_delete_elem(fd, stale + i * key_size);
	free(stale);
}

/*
 * Write one LPM policy unless an earlier rule has the same prefix (first
 * wins). Records the key in keys[*n]. Returns true when written.
 */
static bool put_policy(int fd, const void *key, size_t ksz, void *keys, size_t *n,
		       const struct es_rl_config *v, const char *id, int *err)
{
	for (size_t j = 0; j < *n; j++) {
		if (!memcmp((const uint8_t *)keys + j * ksz, key, ksz)) {
			pr_warn("duplicate rate-limit CIDR: the first policy wins",
				LF_STR("rule", id));
			return false;
		}
	}
	memcpy((uint8_t *)keys + (*n)++ * ksz, key, ksz);
	if (bpf_map_update_elem(fd, key, v, BPF_ANY))
		*err = -errno;
	return true;
}

/*
 * Compile the live rules and defaults into the maps. New entries are
 * written before stale ones go, and the lookup flags widen before and
 * narrow after, so packets always meet either policy set. Caller holds rl_lock.
 */
static int sync_locked(void)
{
	struct es_lpm_v4 *k4 = NULL;
	struct es_lpm_v6 *k6 = NULL;
	size_t n4 = 0, n6 = 0;
	uint32_t flags = 0, old_flags = 0;
	struct es_rl_config v, off = {0};
	int f4, f6, fd, e, r = 0;

	if (!skel)
		return 0;
	f4 = bpf_map__fd(skel->maps.rl_policy_v4);
	f6 = bpf_map__fd(skel->maps.rl_policy_v6);
	fd = bpf_map__fd(skel->maps.rl_globals);
	k4 = calloc(n_live + 1, sizeof(*k4));
	k6 = calloc(n_live + 1, sizeof(*k6));
	if (!k4 || !k6) {
		r = -ENOMEM;
		goto out;
	}
	es_rl_global_get(bpf_map__fd(skel->maps.rl_globals), ES_RL_G_FLAGS, &old_flags);
	for (size_t i = 0; i < n_live; i++) {
		const struct rl_rule *ru = &live[i];
		bool v4 = !ru->has_cidr || ru->cidr.addr.family == 4;
		bool v6 = !ru->has_cidr || ru->cidr.addr.family == 6;

		if (!ru->enabled)
			continue;
		es_rl_config_fill(&v, ru->rate, ru->burst, ru->algorithm, ru->action, ru->scope,
				  (uint32_t)i + 1);
		es_rl_config_tick_floor(&v, es_rl_tick_ns());
		if (v4) {
			struct es_lpm_v4 k = {.prefixlen = ru->has_cidr ? ru->cidr.plen : 0};

			if (ru->has_cidr)
				memcpy(k.addr, ru->cidr.addr.b + 12, 4);
			if (put_policy(f4, &k, sizeof(k), k4, &n4, &v, ru->id, &r))
				flags |= ES_RL_HAS_POLICY_V4;
		}
		if (v6) {
			struct es_lpm_v6 k = {.prefixlen = ru->has_cidr ? ru->cidr.plen : 0};

			if (ru->has_cidr)
				memcpy(k.addr, ru->cidr.addr.b, 16);
			if (put_policy(f6, &k, sizeof(k), k6, &n6, &v, ru->id, &r))
				flags |= ES_RL_HAS_POLICY_V6;
		}
	}
	if (cur.enabled && cur.default_rate > 0) {
		es_rl_config_fill(&v, cur.default_rate, cur.default_burst, cur.default_algorithm,
				  ES_RL_ACT_DROP, ES_RL_SCOPE_SOURCE, ES_RL_TAG_DEFAULT);
		es_rl_config_tick_floor(&v, es_rl_tick_ns());
		if ((e = es_rl_default_put(fd, &v)))
			r = e; /* its own errno, not a blanket -EIO */
		flags |= ES_RL_HAS_DEFAULT;
	}
	/* Disabled: no generic limiting at all (§6.4 item 6), the DDoS throttle aside. */
	if (!cur.enabled)
		flags = old_flags = 0;
	put_global(ES_RL_G_FLAGS, flags | old_flags);
	prune_lpm(f4, sizeof(*k4), k4, n4);
	prune_lpm(f6, sizeof(*k6), k6, n6);
	put_global(ES_RL_G_FLAGS, flags);
	if (!(flags & ES_RL_HAS_DEFAULT))
		es_rl_default_put(fd, &off); /* rate 0: none */
	es_kernel_set_feature(ES_FEAT_RATELIMIT, cur.enabled);
out:
	free(k4);
	free(k6);
	if (r)
		pr_error("cannot write rate-limit policies", LF_STR("error", strerror(-r)));
	return r;
}

static size_t active_rules_locked(void)
{
	size_t n = 0;

	for (size_t i = 0; i < n_live; i++)
		n += live[i].enabled;
	return n;
}

/* Replace the live list with the config's rules. Caller holds rl_lock. */
static int adopt_locked(const struct rl_cfg *c)
{
	struct rl_rule *nl = calloc(c->n_rules + 1, sizeof(*nl));

	if (!nl)
		return -ENOMEM;
	for (size_t i = 0; i < c->n_rules; i++) {
		if (rl_rule_dup(&nl[i], &c->rules[i])) {
			while (i-- > 0)
				rl_rule_clear(&nl[i]);
			free(nl);
			return -ENOMEM;
		}
	}
	for (size_t i = 0; i < n_live; i++)
		rl_rule_clear(&live[i]);
	free(live);
	live = nl;
	n_live = c->n_rules;
	cur.enabled = c->enabled;
	cur.ddos_enabled = c->ddos_enabled;
	cur.default_rate = c->default_rate;
	cur.default_burst = c->default_burst;
	cur.default_algorithm = c->default_algorithm;
	n_tiers = c->n_tiers;
	if (c->n_tiers)
		pr_info("country tiers accepted; inactive until GeoIP is available",
			LF_UINT("tiers", c->n_tiers));
	return 0;
}

/* ---- events ------------------------------------------------------------------------- */

static void on_event(const void *rec, size_t len, void *arg)
{
	const struct es_pkt_event *e = rec;

	if (m_packets)
		es_metric_add(m_packets, 1, "ratelimit",
			      e->action == ES_RL_EV_DROP ? "drop" : "pass");
}

/* ---- program lifecycle ------------------------------------------------------------- */

static void publish_status(void)
{
	es_prog_status_set("xdp_ratelimit", skel && attached > 0);
}

/*
 * Nanoseconds per jiffy, the limiters' clock step (xdp_ratelimit rl_tick):
 * the resolution of CLOCK_MONOTONIC_COARSE is one tick. 0 when it looks
 * wrong; the program then reads the coarse clock instead.
 */
uint64_t es_rl_tick_ns(void)
{
	struct timespec res;

	if (clock_getres(CLOCK_MONOTONIC_COARSE, &res) || res.tv_sec || res.tv_nsec < 100000 ||
	    res.tv_nsec > 100000000)
		return 0;
	return (uint64_t)res.tv_nsec;
}

/* The state tables' hash key: random, once per pinned rl_globals (kept across restarts). */
static void seed_tables(void)
{
	int fd = bpf_map__fd(skel->maps.rl_globals);
	uint32_t seed[2] = {0, 0};

	if (!es_rl_global_get(fd, ES_RL_G_SEED, &seed[0]) &&
	    !es_rl_global_get(fd, ES_RL_G_SEED_HI, &seed[1]) && (seed[0] | seed[1]))
		return;
	if (getrandom(seed, sizeof(seed), 0) != sizeof(seed)) {
		struct timespec t;

		clock_gettime(CLOCK_MONOTONIC, &t);
		seed[0] = (uint32_t)t.tv_nsec ^ (uint32_t)getpid() << 16;
		seed[1] = (uint32_t)t.tv_sec ^ (uint32_t)(uintptr_t)&t;
	}
	put_global(ES_RL_G_SEED, seed[0]);
	put_global(ES_RL_G_SEED_HI, seed[1] | 1);
}

int es_rl_size_tables(struct es_ratelimit *sk)
{
	int n = libbpf_num_possible_cpus();
	__u32 sets = es_rl_sets_for(n > 0 ? n : 1), shift = 0;
	struct bpf_map *m[] = {sk->maps.ratelimit_buckets, sk->maps.fixed_window_buckets,
			       sk->maps.sliding_window_buckets, sk->maps.leaky_bucket_buckets};

	if (n <= 0)
		return n ? n : -EINVAL;
	while ((1u << shift) < sets)
		shift++;
	for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++)
		if (bpf_map__set_max_entries(m[i], (__u32)n << shift))
			return -errno;
	sk->rodata->rl_set_shift = shift;
	return 0;
}

static int load(void)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo, .pin_root_path = es_kernel_pin_dir());
	int r, n;

	skel = es_ratelimit__open_opts(&oo);
	if (!skel)
		return -errno;
	skel->rodata->rl_ns_per_jiffy = es_rl_tick_ns();
	if ((r = es_rl_size_tables(skel))) {
		es_ratelimit__destroy(skel);
		skel = NULL;
		return r;
	}
	if ((r = es_kernel_prepare_obj(skel->obj)) || (r = es_ratelimit__load(skel))) {
		pr_error("xdp_ratelimit failed to load", LF_INT("error", r));
		es_ratelimit__destroy(skel);
		skel = NULL;
		return r;
	}
	seed_tables();
	n = es_xdp_chain_set(ES_XDP_ROLE_RATELIMIT, bpf_program__fd(skel->progs.xdp_ratelimit),
			     bpf_map__fd(skel->maps.xdp_prog_array));
	attached = n > 0 ? (unsigned)n : 0;
	pr_info("xdp_ratelimit loaded", LF_INT("interfaces", n));
	return 0;
}

static void unload(void)
{
	if (!skel)
		return;
	es_kernel_set_feature(ES_FEAT_RATELIMIT, false);
	es_xdp_chain_set(ES_XDP_ROLE_RATELIMIT, -1, bpf_map__fd(skel->maps.xdp_prog_array));
	es_ratelimit__destroy(skel);
	skel = NULL;
	attached = 0;
}

static int rl_start(const void *p)
{
	const struct rl_cfg *c = p;
	int r = 0;

	pthread_mutex_lock(&rl_lock);
	if ((r = adopt_locked(c)))
		goto out;
	es_events_register(ES_EV_RATELIMIT, ES_PKT_EVENT_VERSION, sizeof(struct es_pkt_event),
			   on_event, NULL);
	if ((c->enabled || c->ddos_enabled) && es_kernel_ready()) {
		r = load();
		if (!r)
			r = sync_locked();
	}
out:
	publish_status();
	pthread_mutex_unlock(&rl_lock);
	return r;
}

static int rl_apply(const void *old, const void *p)
{
	const struct rl_cfg *c = p;
	bool want = c->enabled || c->ddos_enabled;
	int r;

	pthread_mutex_lock(&rl_lock);
	if ((r = adopt_locked(c)))
		goto out;
	if (want && !skel && es_kernel_ready())
		r = load();
	else if (!want && skel)
		unload();
	else if (skel)
		attached = es_xdp_attached_count(ES_XDP_ROLE_RATELIMIT) +
			   es_xdp_attached_count(ES_XDP_ROLE_FIREWALL);
	if (!r)
		r = sync_locked();
out:
	publish_status();
	pthread_mutex_unlock(&rl_lock);
	return r;
}

static void rl_stop(void)
{
	pthread_mutex_lock(&rl_lock);
	unload();
	publish_status();
	for (size_t i = 0; i < n_live; i++)
		rl_rule_clear(&live[i]);
	free(live);
	live = NULL;
	n_live = 0;
	pthread_mutex_unlock(&rl_lock);
}

static void rl_status(json_t *o)
{
	pthread_mutex_lock(&rl_lock);
	json_object_set_new(o, "active", json_boolean(skel != NULL && cur.enabled));
	json_object_set_new(o, "program_loaded", json_boolean(skel != NULL));
	json_object_set_new(o, "rule_count", json_integer((json_int_t)active_rules_locked()));
	json_object_set_new(o, "country_tiers", json_integer((json_int_t)n_tiers));
	/* Tiers need GeoIP to map countries to address ranges. */
	json_object_set_new(o, "country_tiers_active", json_false());
	pthread_mutex_unlock(&rl_lock);
}

static void rl_metrics(void)
{
	uint64_t v[ES_RL_M__COUNT];
	size_t n;

	if (!m_packets)
		m_packets =
		    es_metric_family("ebpfsentinel_packets", "Packets seen, by source and outcome",
				     ES_M_COUNTER, "interface,action");
	if (!m_rules)
		m_rules = es_metric_family("ebpfsentinel_rules_loaded",
					   "Active rules per component", ES_M_GAUGE, "component");
	pthread_mutex_lock(&rl_lock);
	n = active_rules_locked();
	if (skel &&
	    !es_percpu_sum_all(bpf_map__fd(skel->maps.ratelimit_metrics), ES_RL_M__COUNT, v))
		for (int i = 0; i < ES_RL_M__COUNT; i++)
			es_metric_mirror(m_packets, v[i], "RATELIMIT_METRICS", metric_names[i]);
	pthread_mutex_unlock(&rl_lock);
	es_metric_set(m_rules, (double)n, "ratelimit");
}

/* ---- runtime rule operations ---------------------------------------------------- */

_Static_assert(offsetof(struct rl_rule, id) == 0, "es_idlist: id first");

int rl_rules_add(const struct rl_rule *r)
{
	int ret;

	pthread_mutex_lock(&rl_lock);
	ret = es_idlist_grow((void **)&live, n_live, sizeof(*live), RL_MAX_RULES, r->id);
	if (!ret && !(ret = rl_rule_dup(&live[n_live], r))) {
		n_live++;
		ret = sync_locked();
	}
	pthread_mutex_unlock(&rl_lock);
	return ret;
}

int rl_rules_delete(const char *id, json_t **removed)
{
	ssize_t i;
	int ret = -ENOENT;

	pthread_mutex_lock(&rl_lock);
	i = es_idlist_find(live, n_live, sizeof(*live), id);
	if (i >= 0) {
		if (removed)
			*removed = rl_rule_json(&live[i]);
		rl_rule_clear(&live[i]);
		es_idlist_remove(live, &n_live, sizeof(*live), (size_t)i);
		ret = sync_locked();
	}
	pthread_mutex_unlock(&rl_lock);
	return ret;
}

json_t *rl_rules_json(void)
{
	json_t *a = json_array();

	pthread_mutex_lock(&rl_lock);
	for (size_t i = 0; i < n_live; i++)
		json_array_append_new(a, rl_rule_json(&live[i]));
	pthread_mutex_unlock(&rl_lock);
	return a;
}

const struct es_domain es_domain_ratelimit = {
    .name = "ratelimit",
    .section = "ratelimit",
    .parse = rl_parse,
    .free_cfg = cfg_free,
    .to_json = rl_to_json,
    .enabled = rl_enabled,
    .start = rl_start,
    .apply = rl_apply,
    .stop = rl_stop,
    .status = rl_status,
    .metrics = rl_metrics,
    .routes = rl_routes,
};
