/* SPDX-License-Identifier: AGPL-3.0-only */
/*
 * Rate-limit ABI (network.md §6.2): the policy value every lookup yields, the
 * per-source state of each algorithm, LPM keys and counters. Shared by
 * xdp_ratelimit, the ratelimit domain and the DDoS domain (throttle
 * overrides are exact RATELIMIT_CONFIG entries).
 */
#ifndef ES_ABI_RATELIMIT_H
#define ES_ABI_RATELIMIT_H

#include "common.h"

enum es_rl_algo {
	ES_RL_ALGO_TOKEN_BUCKET = 0,
	ES_RL_ALGO_FIXED_WINDOW = 1,
	ES_RL_ALGO_SLIDING_WINDOW = 2,
	ES_RL_ALGO_LEAKY_BUCKET = 3,
	ES_RL_ALGO_SYN_COOKIE = 4,
	ES_RL_ALGO__COUNT,
};

#define ES_RL_ACT_PASS 0 /* monitor: count and report, never drop */
#define ES_RL_ACT_DROP 1

#define ES_RL_SCOPE_SOURCE 0
#define ES_RL_SCOPE_GLOBAL 1

/* Policy tags (event rule_id and state key): 0 default, index + 1, tiers, overrides. */
#define ES_RL_TAG_DEFAULT 0u
#define ES_RL_TAG_TIER 0x80000000u
#define ES_RL_TAG_OVERRIDE 0x40000000u

/*
 * RATELIMIT_CONFIG value, 24 bytes. ns_per_token: token and syn_cookie =
 * 10^9 / rate; fixed, sliding and leaky = rate (packets per second); 0 =
 * disabled. burst: token burst, leaky capacity.
 */
struct es_rl_config {
	__u64 ns_per_token;
	__u64 burst;
	__u8 action;	/* ES_RL_ACT_* */
	__u8 algorithm; /* enum es_rl_algo */
	__u8 scope;	/* ES_RL_SCOPE_* */
	__u8 pad;
	__u32 tag;
};

/* A 16-byte address key (network order, IPv4 mapped; network.md §0 "addr16"). */
struct es_addr16 {
	__u8 addr[16];
};

/*
 * Per-source state tables (network.md §6.2, state maps; see docs/ratelimit.md
 * "State tables"): per-CPU set-associative tables, one ARRAY per algorithm
 * in which each CPU owns ES_RL_SETS sets of ES_RL_WAYS ways = 65 536 sources
 * (fewer sets on hosts of more than 8 CPUs, es_rl_sets_for()). A way is this
 * 24-byte head, the key
 * {source (all-ones for global scope), policy tag} and when it was last seen,
 * followed by the algorithm's state. A source's set is a keyed hash of its
 * key; a full set gives up the way seen longest ago (least recently used).
 */
#define ES_RL_SET_BITS 14
#define ES_RL_SETS (1u << ES_RL_SET_BITS) /* the most sets per CPU (the maps' default) */
#define ES_RL_SETS_MIN 2048u
#define ES_RL_WAYS 4
#define ES_RL_SEEN_SHIFT 22 /* `seen` counts ~4.2 ms units of the clock */

struct es_rl_way {
	__u8 addr[16];
	__u32 tag;
	__u32 seen; /* (now >> ES_RL_SEEN_SHIFT) | 1; 0 = never used */
} __attribute__((aligned(8)));

/*
 * The set of key {a0, a1 = the address's two little-endian words, tag} in
 * every state table of 2^set_bits sets: a multiplicative hash keyed by the
 * 64-bit random key in rl_globals (ES_RL_G_SEED, ES_RL_G_SEED_HI), so no
 * sender can aim many of its sources at one set. Two multiplies, the second
 * over every input bit; the set is the product's top bits, the ones every
 * input bit reaches. Shared by xdp_ratelimit and the tests.
 */
static inline __attribute__((always_inline)) __u32 es_rl_set_of(__u64 a0, __u64 a1, __u32 tag,
								__u64 key, __u32 set_bits)
{
	__u64 x = ((a1 ^ key) * 0x9e3779b97f4a7c15ull) ^ a0 ^ tag;

	return (__u32)((x * 0xbf58476d1ce4e5b9ull) >> (64 - set_bits));
}

#ifndef __bpf__
/*
 * Sets per CPU for ncpu CPUs: 16 384 up to 8 CPUs, then fewer (a power of
 * two, at least ES_RL_SETS_MIN) so the tables of a many-core host stay
 * bounded (~128 Ki sources in all, per table). Sources spread over the
 * receive queues' CPUs, so the capacity in all stays at or above the spec's
 * 65 536.
 */
static inline __u32 es_rl_sets_for(int ncpu)
{
	__u32 sets = ES_RL_SETS;

	while (ncpu > 8 && sets > ES_RL_SETS_MIN && (__u64)sets * (__u64)ncpu > 8ull * ES_RL_SETS)
		sets >>= 1;
	return sets;
}
#endif

struct es_rl_token_state {
	__u64 tokens;
	__u64 last_refill_ns;
};

struct es_rl_fixed_state {
	__u64 pkt_count;
	__u64 window_start;
};

#define ES_RL_SLOTS 8
#define ES_RL_SLOT_NS 125000000ull

struct es_rl_sliding_state {
	__u32 slots[ES_RL_SLOTS];
	__u32 current_slot;
	__u32 pad;
	__u64 slot_start_ns;
	__u64 window_total;
};

struct es_rl_leaky_state {
	__u64 level;
	__u64 last_update_ns;
};

/* LPM keys: prefix length then the address in network order. */
struct es_lpm_v4 {
	__u32 prefixlen;
	__u8 addr[4];
};

struct es_lpm_v6 {
	__u32 prefixlen;
	__u8 addr[16];
};

/* RL_LPM_SRC_V4/V6 value: the country tier of a source range. */
struct es_rl_tier_ref {
	__u8 tier_id;
	__u8 pad[3];
};

#define ES_RL_MAX_TIERS 16

/*
 * rl_globals: which lookups can match, so an empty stage costs nothing. One
 * ARRAY entry of words indexed by es_rl_global, so xdp_ratelimit reads them
 * all through one lookup; each domain writes only its own word, through
 * es_rl_global_put() (ratelimit.h), which serialises the writers.
 */
enum es_rl_global {
	ES_RL_G_FLAGS = 0,     /* ES_RL_HAS_*, written by the ratelimit domain */
	ES_RL_G_OVERRIDES = 1, /* exact overrides installed (DDoS throttle) */
	ES_RL_G_BLOCKS = 2,    /* DDoS auto-block entries installed */
	ES_RL_G_DDOS = 3,      /* ES_RL_DDOS_*: DDoS checks on (the ddos domain) */
	ES_RL_G_SEED = 4,      /* the state tables' hash key (low word), random, set once */
	ES_RL_G_SEED_HI = 5,   /* its high word */
	ES_RL_G__COUNT = 6,
};

struct es_rl_globals {
	__u32 w[8]; /* by enum es_rl_global */
	/* The global default policy (ns_per_token 0: none), written by the
	 * ratelimit domain through es_rl_default_put(): here rather than in a map
	 * of its own, it costs xdp_ratelimit no lookup. */
	struct es_rl_config dflt;
} __attribute__((aligned(8))); /* the seed words are read as one u64 */

/* ES_RL_G_DDOS bits: a check whose bit is clear costs no lookup (nor the clock). */
#define ES_RL_DDOS_ICMP 0x01u
#define ES_RL_DDOS_SYN 0x02u
#define ES_RL_DDOS_AMP 0x04u
#define ES_RL_DDOS_CT 0x08u

#define ES_RL_HAS_DEFAULT 0x01u
#define ES_RL_HAS_POLICY_V4 0x02u
#define ES_RL_HAS_POLICY_V6 0x04u
#define ES_RL_HAS_TIERS 0x08u

/* RATELIMIT_METRICS per-CPU indices. */
enum es_rl_metric {
	ES_RL_M_PASSED = 0,
	ES_RL_M_THROTTLED,
	ES_RL_M_ERRORS,
	ES_RL_M_EVENTS_DROPPED,
	ES_RL_M_TOTAL_SEEN,
	ES_RL_M__COUNT,
};

/* Ratelimit event actions (es_pkt_event.action). */
#define ES_RL_EV_OVER_LIMIT 0
#define ES_RL_EV_DROP 1

#ifndef __bpf__
#include <string.h>

/*
 * Fill a policy value for userspace writers: token and syn_cookie store ns
 * per token, the window algorithms the rate itself (network.md §6.2).
 */
static inline void es_rl_config_fill(struct es_rl_config *out, __u64 rate, __u64 burst, __u8 algo,
				     __u8 action, __u8 scope, __u32 tag)
{
	memset(out, 0, sizeof(*out));
	if (algo == ES_RL_ALGO_TOKEN_BUCKET || algo == ES_RL_ALGO_SYN_COOKIE)
		out->ns_per_token = rate ? 1000000000ull / rate : 0;
	else
		out->ns_per_token = rate;
	if (rate && !out->ns_per_token)
		out->ns_per_token = 1;
	out->burst = burst;
	out->action = action;
	out->algorithm = algo;
	out->scope = scope;
	out->tag = tag;
}

/*
 * xdp_ratelimit's limiters see time in ticks of tick_ns (jiffies; 0 =
 * exact). A token or leaky bucket smaller than one tick's worth would then
 * overflow at every tick and lose what the tick brought (rate 1 000/s, burst
 * 1, 4 ms ticks: 250/s). So its capacity is at least one tick's worth; the
 * rate over time is then the configured one.
 */
static inline void es_rl_config_tick_floor(struct es_rl_config *c, __u64 tick_ns)
{
	__u64 need;

	if (!tick_ns || !c->ns_per_token)
		return;
	if (c->algorithm == ES_RL_ALGO_TOKEN_BUCKET || c->algorithm == ES_RL_ALGO_SYN_COOKIE)
		need = (tick_ns + c->ns_per_token - 1) / c->ns_per_token;
	else if (c->algorithm == ES_RL_ALGO_LEAKY_BUCKET)
		need = (c->ns_per_token * tick_ns + 999999999ull) / 1000000000ull;
	else
		return;
	if (c->burst < need)
		c->burst = need;
}

_Static_assert(sizeof(struct es_rl_config) == 24, "ratelimit_config is 24 bytes");
_Static_assert(offsetof(struct es_rl_config, action) == 16, "action @16");
_Static_assert(offsetof(struct es_rl_config, algorithm) == 17, "algorithm @17");
_Static_assert(offsetof(struct es_rl_config, scope) == 18, "scope @18");
_Static_assert(offsetof(struct es_rl_config, tag) == 20, "tag @20");
_Static_assert(sizeof(struct es_rl_way) == 24, "state table way head");
_Static_assert(ES_RL_G__COUNT <= 8, "rl_globals words");
_Static_assert(sizeof(struct es_rl_globals) == 56, "rl_globals: 8 words and the default policy");
_Static_assert(sizeof(struct es_rl_sliding_state) == 56, "sliding window state is 56 bytes");
_Static_assert(offsetof(struct es_rl_sliding_state, slot_start_ns) == 40, "slot_start_ns");
_Static_assert(sizeof(struct es_lpm_v4) == 8 && sizeof(struct es_lpm_v6) == 20, "LPM keys");
#endif

#endif
