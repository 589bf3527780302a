// SPDX-License-Identifier: AGPL-3.0-only
/*
 * xdp_ratelimit: tail-call slot 0 of the XDP chain (the head when the
 * firewall is off). The DDoS checks of network.md §7.2 first, then generic
 * per-source limiting (§6.2): exact override, country tier, longest-prefix
 * policy, default. Per-source state lives in per-CPU set-associative
 * tables, one per algorithm, keyed by {source, policy tag} (docs/ratelimit.md,
 * "State tables"). The packet's parse is the firewall's when it handed one
 * over (kernel/bpf/pkt_ctx.h).
 *
 * Time: every algorithm advances its reference point by whole units of the
 * elapsed time it consumed (never to `now` while a remainder is pending), so
 * nothing drifts or is lost under load.
 */
#include "kernel/bpf/es_bpf.h"
#include "kernel/bpf/parse.h"
#include "kernel/bpf/pkt_ctx.h"
#include "kernel/bpf/pkt_event.h"
#include "kernel/bpf/xdp_chain.h"
#include "abi/ratelimit.h"
#include "domains/ddos/ddos.bpf.h"

char LICENSE[] SEC("license") = "GPL";

#define RL_NS_PER_SEC 1000000000ull
#define RL_LEAKY_IDLE_NS (10 * RL_NS_PER_SEC)

/* xdp_meta (network.md §1.4), written by the firewall: byte 5 is ours. */
#define RL_META_LEN 8
#define RL_META_STATUS 5
#define RL_META_FLAGS 6
#define RL_META_PRESENT 0x01
#define RL_META_PASSED 1
#define RL_META_OVER 2

/*
 * Test knob, set in rodata before load by the kernel tests only: take the
 * time from rl_test_clock instead of the kernel clock. The production
 * program is the same object with the knob at 0 (the branch is pruned).
 */
const volatile __u32 rl_clock_from_map = 0;

/*
 * Nanoseconds per jiffy (10^9 / HZ), set by the agent before load from the
 * resolution of CLOCK_MONOTONIC_COARSE; 0 = unknown. See rl_tick().
 */
const volatile __u64 rl_ns_per_jiffy = 0;

/* log2 of the sets per CPU of the state tables (es_rl_size_tables() sets it with their size). */
const volatile __u32 rl_set_shift = ES_RL_SET_BITS;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} rl_test_clock SEC(".maps");

#define RL_PINNED(name, maptype, ktype, vtype, n, fl)                                              \
	struct {                                                                                   \
		__uint(type, maptype);                                                             \
		__uint(max_entries, n);                                                            \
		__type(key, ktype);                                                                \
		__type(value, vtype);                                                              \
		__uint(map_flags, fl);                                                             \
		__uint(pinning, LIBBPF_PIN_BY_NAME);                                               \
	} name SEC(".maps")

/* Exact overrides (the DDoS throttle). */
RL_PINNED(ratelimit_config, BPF_MAP_TYPE_HASH, struct es_addr16, struct es_rl_config, 10240, 0);
RL_PINNED(rl_policy_v4, BPF_MAP_TYPE_LPM_TRIE, struct es_lpm_v4, struct es_rl_config, 10240,
	  BPF_F_NO_PREALLOC);
RL_PINNED(rl_policy_v6, BPF_MAP_TYPE_LPM_TRIE, struct es_lpm_v6, struct es_rl_config, 10240,
	  BPF_F_NO_PREALLOC);
RL_PINNED(rl_lpm_src_v4, BPF_MAP_TYPE_LPM_TRIE, struct es_lpm_v4, struct es_rl_tier_ref, 131072,
	  BPF_F_NO_PREALLOC);
RL_PINNED(rl_lpm_src_v6, BPF_MAP_TYPE_LPM_TRIE, struct es_lpm_v6, struct es_rl_tier_ref, 131072,
	  BPF_F_NO_PREALLOC);
RL_PINNED(rl_tier_config, BPF_MAP_TYPE_ARRAY, __u32, struct es_rl_config, ES_RL_MAX_TIERS, 0);
RL_PINNED(rl_globals, BPF_MAP_TYPE_ARRAY, __u32, struct es_rl_globals, 1, 0);
/*
 * Per-source state: one set-associative table per algorithm (abi/ratelimit.h,
 * es_rl_way), each CPU its own range of sets: entry (cpu << rl_set_shift) |
 * set. A plain ARRAY rather than a PERCPU_ARRAY: its element is one address
 * computation away, where a per-CPU element is behind a pointer (one more
 * dependent load, often a cache miss). Mmapable, so the values start on a
 * page, and sets a multiple of 64 bytes: way 0 never straddles two cache
 * lines. Finding a source's state is then a hash and an inlined lookup; an
 * LRU_PERCPU_HASH lookup is an out-of-line call that cost ~20 ns a packet.
 */
#define RL_TABLE(name, state_t)                                                                    \
	struct name##_way {                                                                        \
		struct es_rl_way h;                                                                \
		state_t s;                                                                         \
	};                                                                                         \
	struct name##_set {                                                                        \
		struct name##_way w[ES_RL_WAYS];                                                   \
	} __attribute__((aligned(64)));                                                            \
	RL_PINNED(name, BPF_MAP_TYPE_ARRAY, __u32, struct name##_set, ES_RL_SETS, BPF_F_MMAPABLE)

RL_TABLE(ratelimit_buckets, struct es_rl_token_state);
RL_TABLE(fixed_window_buckets, struct es_rl_fixed_state);
RL_TABLE(sliding_window_buckets, struct es_rl_sliding_state);
RL_TABLE(leaky_bucket_buckets, struct es_rl_leaky_state);
RL_PINNED(ratelimit_metrics, BPF_MAP_TYPE_PERCPU_ARRAY, __u32, __u64, ES_RL_M__COUNT, 0);

static __always_inline void rl_metric(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&ratelimit_metrics, &idx);

	if (v)
		*v += 1;
}

static __always_inline __u64 rl_test_now(void)
{
	__u32 zero = 0;
	__u64 *t = bpf_map_lookup_elem(&rl_test_clock, &zero);

	return t ? *t : 0;
}

/*
 * The DDoS checks' clock: CLOCK_MONOTONIC at tick resolution, the base of
 * the block expiries the agent writes. bpf_ktime_get_ns() reads the TSC and
 * cost ~30 ns a packet on our VMs; the coarse clock a few.
 */
static __always_inline __u64 rl_now(void)
{
	return rl_clock_from_map ? rl_test_now() : bpf_ktime_get_coarse_ns();
}

/*
 * The limiters' clock, in ns since boot at tick resolution (4 ms at HZ=250):
 * jiffies, which the verifier inlines into one load. Its epoch is its own,
 * fine for state only this program reads. Every algorithm carries the
 * remainder of elapsed time it did not consume, so a coarse clock makes
 * tokens arrive in steps of a tick but never drift or go missing.
 */
static __always_inline __u64 rl_tick(void)
{
	if (rl_clock_from_map)
		return rl_test_now();
	if (rl_ns_per_jiffy)
		return bpf_jiffies64() * rl_ns_per_jiffy;
	return bpf_ktime_get_coarse_ns();
}

/* Lookup order (network.md §6.2): exact override, tier, longest prefix, default. */
static __always_inline struct es_rl_config *
rl_lookup(const struct es_pkt *pkt, struct es_rl_globals *g, __u32 flags, __u32 overrides)
{
	int v6 = pkt->flags & ES_PKT_F_IPV6;
	struct es_rl_config *c;

	if (overrides) {
		c = bpf_map_lookup_elem(&ratelimit_config, pkt->src);
		if (c && c->ns_per_token)
			return c;
	}
	if (flags & ES_RL_HAS_TIERS) {
		struct es_rl_tier_ref *t;

		if (v6) {
			struct es_lpm_v6 k = {.prefixlen = 128};

			__builtin_memcpy(k.addr, pkt->src, 16);
			t = bpf_map_lookup_elem(&rl_lpm_src_v6, &k);
		} else {
			struct es_lpm_v4 k = {.prefixlen = 32};

			__builtin_memcpy(k.addr, pkt->src + 12, 4);
			t = bpf_map_lookup_elem(&rl_lpm_src_v4, &k);
		}
		if (t) {
			__u32 tier = t->tier_id;

			c = bpf_map_lookup_elem(&rl_tier_config, &tier);
			if (c && c->ns_per_token)
				return c;
		}
	}
	if (v6 && (flags & ES_RL_HAS_POLICY_V6)) {
		struct es_lpm_v6 k = {.prefixlen = 128};

		__builtin_memcpy(k.addr, pkt->src, 16);
		c = bpf_map_lookup_elem(&rl_policy_v6, &k);
		if (c)
			return c->ns_per_token ? c : NULL;
	} else if (!v6 && (flags & ES_RL_HAS_POLICY_V4)) {
		struct es_lpm_v4 k = {.prefixlen = 32};

		__builtin_memcpy(k.addr, pkt->src + 12, 4);
		c = bpf_map_lookup_elem(&rl_policy_v4, &k);
		if (c)
			return c->ns_per_token ? c : NULL;
	}
	/* The default sits in rl_globals (read already): no lookup. Under the
	 * zero key of RATELIMIT_CONFIG it cost ~15 ns a packet. */
	if ((flags & ES_RL_HAS_DEFAULT) && g->dflt.ns_per_token)
		return &g->dflt;
	return NULL;
}

/* A state key, aligned for word compares: the source (all-ones for global scope), the tag. */
struct rl_key {
	__u64 a[2];
	__u32 tag;
	__u32 set;  /* the key's set in every table (of this CPU's range) */
	__u32 seen; /* es_rl_way.seen of this packet */
};

/*
 * The way of `k` in its set of `map` (ways of `stride` bytes): the way holding
 * the key, or else the one seen longest ago (never-used ways first), taken
 * over for the key with *fresh set. The algorithm's state follows the head.
 */
static __always_inline int rl_way_holds(const struct es_rl_way *w, const struct rl_key *k)
{
	return *(__u64 *)w->addr == k->a[0] && *(__u64 *)(w->addr + 8) == k->a[1] &&
	       w->tag == k->tag && w->seen;
}

static __always_inline void *rl_state(void *map, const struct rl_key *k, __u32 stride, int *fresh)
{
	__u32 idx = bpf_get_smp_processor_id() << rl_set_shift | k->set, age, oldest = 0;
	struct es_rl_way *w, *victim;
	void *ways = bpf_map_lookup_elem(map, &idx);

	if (!ways)
		return NULL;
	*fresh = 0;
	/* A source seen before is nearly always in the way it was given first:
	 * way 0 unless its set was shared. */
	w = ways;
	if (__builtin_expect(rl_way_holds(w, k), 1)) {
		w->seen = k->seen;
		return w + 1;
	}
#pragma unroll
	for (int i = 1; i < ES_RL_WAYS; i++) {
		w = ways + i * stride;
		if (rl_way_holds(w, k)) {
			w->seen = k->seen;
			return w + 1;
		}
	}
	/* Not held: take over the way seen longest ago (never-used ways first). */
	victim = ways;
#pragma unroll
	for (int i = 0; i < ES_RL_WAYS; i++) {
		w = ways + i * stride;
		age = w->seen ? k->seen - w->seen : 0xffffffffu;
		if (age > oldest) {
			oldest = age;
			victim = w;
		}
	}
	*(__u64 *)victim->addr = k->a[0];
	*(__u64 *)(victim->addr + 8) = k->a[1];
	victim->tag = k->tag;
	victim->seen = k->seen;
	*fresh = 1;
	return victim + 1;
}

#define RL_STATE(map, k, fresh)                                                                    \
	((typeof(&((struct map##_way *)0)->s))rl_state(&map, k, sizeof(struct map##_way), fresh))

/* Each algorithm returns 1 when the packet exceeds the limit (-1: no state table). */

static __always_inline int rl_token_bucket(const struct rl_key *k, const struct es_rl_config *c,
					   __u64 now)
{
	int fresh;
	struct es_rl_token_state *s = RL_STATE(ratelimit_buckets, k, &fresh);
	__u64 n;

	if (!s)
		return -1;
	if (fresh) {
		s->tokens = c->burst ? c->burst - 1 : 0;
		s->last_refill_ns = now;
		return 0;
	}
	if (now > s->last_refill_ns) {
		n = (now - s->last_refill_ns) / c->ns_per_token;
		if (n) {
			if (n >= c->burst || s->tokens >= c->burst - n) {
				s->tokens = c->burst;
				s->last_refill_ns = now;
			} else {
				s->tokens += n;
				/* Keep the remainder: the next token is not delayed. */
				s->last_refill_ns += n * c->ns_per_token;
			}
		}
	}
	if (s->tokens > 0) {
		s->tokens--;
		return 0;
	}
	return 1;
}

static __always_inline int rl_fixed_window(const struct rl_key *k, const struct es_rl_config *c,
					   __u64 now)
{
	int fresh;
	struct es_rl_fixed_state *s = RL_STATE(fixed_window_buckets, k, &fresh);

	if (!s)
		return -1;
	if (fresh) {
		s->pkt_count = 1;
		s->window_start = now;
		return 0;
	}
	if (now >= s->window_start + RL_NS_PER_SEC) {
		/* Stay on the window grid: windows never drift. */
		s->window_start = now - (now - s->window_start) % RL_NS_PER_SEC;
		s->pkt_count = 1;
		return 0;
	}
	if (s->pkt_count >= c->ns_per_token)
		return 1;
	s->pkt_count++;
	return 0;
}

static __always_inline int rl_sliding_window(const struct rl_key *k, const struct es_rl_config *c,
					     __u64 now)
{
	int fresh;
	struct es_rl_sliding_state *s = RL_STATE(sliding_window_buckets, k, &fresh);
	__u64 elapsed;

	if (!s)
		return -1;
	if (fresh) {
		__builtin_memset(s, 0, sizeof(*s));
		s->slots[0] = 1;
		s->slot_start_ns = now;
		s->window_total = 1;
		return 0;
	}
	elapsed = now > s->slot_start_ns ? (now - s->slot_start_ns) / ES_RL_SLOT_NS : 0;
	if (elapsed >= ES_RL_SLOTS) {
		__builtin_memset(s->slots, 0, sizeof(s->slots));
		s->window_total = 0;
		s->current_slot = 0;
		s->slot_start_ns += elapsed * ES_RL_SLOT_NS;
	} else if (elapsed) {
		for (int i = 0; i < ES_RL_SLOTS - 1; i++) {
			__u32 cur;

			if (i >= elapsed)
				break;
			cur = (s->current_slot + 1) & (ES_RL_SLOTS - 1);
			s->current_slot = cur;
			s->window_total -= s->slots[cur];
			s->slots[cur] = 0;
		}
		s->slot_start_ns += elapsed * ES_RL_SLOT_NS;
	}
	if (s->window_total >= c->ns_per_token)
		return 1;
	s->slots[s->current_slot & (ES_RL_SLOTS - 1)]++;
	s->window_total++;
	return 0;
}

static __always_inline int rl_leaky_bucket(const struct rl_key *k, const struct es_rl_config *c,
					   __u64 now)
{
	int fresh;
	struct es_rl_leaky_state *s = RL_STATE(leaky_bucket_buckets, k, &fresh);
	__u64 elapsed, drained, rate = c->ns_per_token;

	if (!s)
		return -1;
	if (fresh) {
		s->level = 0;
		s->last_update_ns = now;
		if (c->burst < 1)
			return 1;
		s->level = 1;
		return 0;
	}
	elapsed = now > s->last_update_ns ? now - s->last_update_ns : 0;
	if (elapsed >= RL_LEAKY_IDLE_NS) {
		s->level = 0;
		s->last_update_ns = now;
	} else {
		drained = elapsed * rate / RL_NS_PER_SEC;
		if (drained) {
			s->level = s->level > drained ? s->level - drained : 0;
			/* Advance only by the time those packets took to drain. */
			s->last_update_ns += drained * RL_NS_PER_SEC / rate;
		}
	}
	if (s->level + 1 > c->burst)
		return 1;
	s->level++;
	return 0;
}

static __always_inline void rl_meta_status(struct xdp_md *ctx, __u8 status)
{
	__u8 *meta = (void *)(long)ctx->data_meta;
	void *data = (void *)(long)ctx->data;

	if ((void *)(meta + RL_META_LEN) > data)
		return;
	if (meta[RL_META_FLAGS] & RL_META_PRESENT)
		meta[RL_META_STATUS] = status;
}

SEC("xdp")
int xdp_ratelimit(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct es_rl_config *c;
	struct es_pkt_ctx *pc;
	struct rl_key key;
	struct es_pkt *pkt;
	__u32 zero = 0, flags, checks, blocks, overrides;
	struct es_rl_globals *g;
	__u64 now = 0;
	int r, over;

	rl_metric(ES_RL_M_TOTAL_SEEN);
	pc = es_pkt_ctx_get();
	if (!pc) {
		rl_metric(ES_RL_M_ERRORS);
		es_count(ES_PROG_XDP_RATELIMIT, ES_R_INTERNAL_ERROR);
		goto next;
	}
	/* Nothing configured (no policy, override, block or DDoS check): no parse,
	 * no clock, straight on down the chain. */
	g = bpf_map_lookup_elem(&rl_globals, &zero);
	if (!g) {
		pc->parsed = 0;
		rl_metric(ES_RL_M_ERRORS);
		es_count(ES_PROG_XDP_RATELIMIT, ES_R_INTERNAL_ERROR);
		goto next;
	}
	checks = g->w[ES_RL_G_DDOS];
	blocks = g->w[ES_RL_G_BLOCKS];
	overrides = g->w[ES_RL_G_OVERRIDES];
	flags = g->w[ES_RL_G_FLAGS]; /* 0 while ratelimit is disabled */
	if (!(checks | blocks | flags | overrides)) {
		pc->parsed = 0; /* the head's parse is not ours to keep */
		rl_metric(ES_RL_M_PASSED);
		es_count(ES_PROG_XDP_RATELIMIT, ES_R_PASS);
		goto next;
	}
	/* The firewall's parse when it handed one over, else our own. */
	r = es_pkt_ctx_take(pc, data, data_end);
	pkt = &pc->pkt;
	if (r && r != ES_R_FRAGMENT) {
		/* Non-IP passes untouched; malformed is counted, never dropped for it. */
		if (es_reason_is_error(r))
			rl_metric(ES_RL_M_ERRORS);
		else
			rl_metric(ES_RL_M_PASSED);
		es_count(ES_PROG_XDP_RATELIMIT, r);
		goto next;
	}
	/* The clock only when a check or a policy needs it (it is a good share of
	 * the cost of a packet no limit applies to). */
	if (__builtin_expect(checks || blocks, 0)) {
		now = rl_now();
		r = ddos_check(ctx, pkt, now, ES_PROG_XDP_RATELIMIT, blocks, checks);
		if (r >= 0)
			return r;
	}

	/* With ratelimit disabled only the DDoS throttle overrides apply (§6.4 item 6). */
	c = rl_lookup(pkt, g, flags, overrides);
	if (!c ||
	    (c->algorithm == ES_RL_ALGO_SYN_COOKIE &&
	     (pkt->tcp_flags & (TCP_F_SYN | TCP_F_ACK | TCP_F_RST | TCP_F_FIN)) != TCP_F_SYN)) {
		rl_metric(ES_RL_M_PASSED);
		es_count(ES_PROG_XDP_RATELIMIT, ES_R_PASS);
		goto next;
	}
	now = rl_tick();
	if (c->scope == ES_RL_SCOPE_GLOBAL) {
		key.a[0] = ~0ull;
		key.a[1] = ~0ull;
	} else {
		__builtin_memcpy(key.a, pkt->src, 16);
	}
	key.tag = c->tag;
	key.set =
	    es_rl_set_of(key.a[0], key.a[1], key.tag, *(__u64 *)&g->w[ES_RL_G_SEED], rl_set_shift);
	key.seen = (__u32)(now >> ES_RL_SEEN_SHIFT) | 1;

	switch (c->algorithm) {
	case ES_RL_ALGO_FIXED_WINDOW: over = rl_fixed_window(&key, c, now); break;
	case ES_RL_ALGO_SLIDING_WINDOW: over = rl_sliding_window(&key, c, now); break;
	case ES_RL_ALGO_LEAKY_BUCKET: over = rl_leaky_bucket(&key, c, now); break;
	default: over = rl_token_bucket(&key, c, now); break;
	}
	if (over < 0) {
		/* No state table (cannot happen with a loaded program): fail open. */
		rl_metric(ES_RL_M_ERRORS);
		es_count(ES_PROG_XDP_RATELIMIT, ES_R_INTERNAL_ERROR);
		goto next;
	}
	if (!over) {
		rl_metric(ES_RL_M_PASSED);
		rl_meta_status(ctx, RL_META_PASSED);
		es_count(ES_PROG_XDP_RATELIMIT, ES_R_PASS);
		goto next;
	}
	if (c->algorithm == ES_RL_ALGO_SYN_COOKIE) {
		/* Over a syn_cookie policy: answer with a cookie instead of passing. */
		rl_metric(ES_RL_M_THROTTLED);
		if (es_pkt_event_emit(pkt, ctx->ingress_ifindex, ES_EV_RATELIMIT, ES_RL_EV_DROP,
				      c->tag))
			rl_metric(ES_RL_M_EVENTS_DROPPED);
		{
			struct es_ddos_syn_config *sc =
			    bpf_map_lookup_elem(&ddos_syn_config, &zero);
			__u8 sf = sc ? sc->flags : 0;

			r = pkt->flags & ES_PKT_F_IPV6 ? ddos_synack_v6(ctx, pkt, sf)
						       : ddos_synack_v4(ctx, pkt, sf);
		}
		if (r == XDP_PASS) {
			/* A socket of its own (TIME_WAIT): the stack decides. */
			es_count(ES_PROG_XDP_RATELIMIT, ES_R_PASS);
			goto next;
		}
		if (r == XDP_TX) {
			es_count(ES_PROG_XDP_RATELIMIT, ES_R_DDOS_SYNCOOKIE);
			return XDP_TX;
		}
		es_count(ES_PROG_XDP_RATELIMIT, ES_R_RL_DROP);
		return XDP_DROP;
	}
	if (c->action == ES_RL_ACT_DROP) {
		rl_metric(ES_RL_M_THROTTLED);
		if (es_pkt_event_emit(pkt, ctx->ingress_ifindex, ES_EV_RATELIMIT, ES_RL_EV_DROP,
				      c->tag))
			rl_metric(ES_RL_M_EVENTS_DROPPED);
		es_count(ES_PROG_XDP_RATELIMIT, ES_R_RL_DROP);
		return XDP_DROP;
	}
	rl_metric(ES_RL_M_PASSED);
	if (es_pkt_event_emit(pkt, ctx->ingress_ifindex, ES_EV_RATELIMIT, ES_RL_EV_OVER_LIMIT,
			      c->tag))
		rl_metric(ES_RL_M_EVENTS_DROPPED);
	rl_meta_status(ctx, RL_META_OVER);
	es_count(ES_PROG_XDP_RATELIMIT, ES_R_RL_MONITOR);
next:
	ES_XDP_CONTINUE(ctx, ES_XDP_SLOT_LOADBALANCER);
	return XDP_PASS;
}
