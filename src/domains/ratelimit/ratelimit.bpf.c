// SPDX-License-Identifier: AGPL-3.0-only
/*
 * xdp_ratelimit: tail-call slot 0 of the XDP chain (the head when the
 * firewall is off). The DDoS checks of network.md §7.2 first, then generic
 * per-source limiting (§6.2): exact override, country tier, longest-prefix
 * policy, default. Per-source state lives in per-CPU LRU maps, one per
 * algorithm, keyed by {source, policy tag}.
 *
 * Time: every algorithm advances its reference point by whole units of the
 * elapsed time it consumed (never to `now` while a remainder is pending), so
 * nothing drifts or is lost under load.
 */
#include "kernel/bpf/es_bpf.h"
#include "kernel/bpf/parse.h"
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

/* Exact overrides (DDoS throttle) and, under the zero key, the default. */
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
RL_PINNED(rl_globals, BPF_MAP_TYPE_ARRAY, __u32, __u32, ES_RL_G__COUNT, 0);
RL_PINNED(ratelimit_buckets, BPF_MAP_TYPE_LRU_PERCPU_HASH, struct es_rl_key,
	  struct es_rl_token_state, 65536, 0);
RL_PINNED(fixed_window_buckets, BPF_MAP_TYPE_LRU_PERCPU_HASH, struct es_rl_key,
	  struct es_rl_fixed_state, 65536, 0);
RL_PINNED(sliding_window_buckets, BPF_MAP_TYPE_LRU_PERCPU_HASH, struct es_rl_key,
	  struct es_rl_sliding_state, 65536, 0);
RL_PINNED(leaky_bucket_buckets, BPF_MAP_TYPE_LRU_PERCPU_HASH, struct es_rl_key,
	  struct es_rl_leaky_state, 65536, 0);
RL_PINNED(ratelimit_metrics, BPF_MAP_TYPE_PERCPU_ARRAY, __u32, __u64, ES_RL_M__COUNT, 0);

/* Per-packet scratch, off the stack (the SYN-ACK path needs it). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct es_pkt);
} rl_pkt_ctx SEC(".maps");

static __always_inline void rl_metric(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&ratelimit_metrics, &idx);

	if (v)
		*v += 1;
}

static __always_inline __u64 rl_now(void)
{
	if (rl_clock_from_map) {
		__u32 zero = 0;
		__u64 *t = bpf_map_lookup_elem(&rl_test_clock, &zero);

		return t ? *t : 0;
	}
	return bpf_ktime_get_ns();
}

static __always_inline __u32 rl_global(__u32 idx)
{
	__u32 *v = bpf_map_lookup_elem(&rl_globals, &idx);

	return v ? *v : 0;
}

/* Lookup order (network.md §6.2): exact override, tier, longest prefix, default. */
static __always_inline struct es_rl_config *rl_lookup(const struct es_pkt *pkt, __u32 flags,
						      __u32 overrides)
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
	if (flags & ES_RL_HAS_DEFAULT) {
		struct es_addr16 zero = {};

		c = bpf_map_lookup_elem(&ratelimit_config, &zero);
		if (c && c->ns_per_token)
			return c;
	}
	return NULL;
}

/* Each algorithm returns 1 when the packet exceeds the limit. */

static __always_inline int rl_token_bucket(const struct es_rl_key *k, const struct es_rl_config *c,
					   __u64 now)
{
	struct es_rl_token_state *s = bpf_map_lookup_elem(&ratelimit_buckets, k);
	__u64 n;

	if (!s) {
		struct es_rl_token_state ns = {.tokens = c->burst ? c->burst - 1 : 0,
					       .last_refill_ns = now};

		bpf_map_update_elem(&ratelimit_buckets, k, &ns, BPF_ANY);
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

static __always_inline int rl_fixed_window(const struct es_rl_key *k, const struct es_rl_config *c,
					   __u64 now)
{
	struct es_rl_fixed_state *s = bpf_map_lookup_elem(&fixed_window_buckets, k);

	if (!s) {
		struct es_rl_fixed_state ns = {.pkt_count = 1, .window_start = now};

		bpf_map_update_elem(&fixed_window_buckets, k, &ns, BPF_ANY);
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

static __always_inline int rl_sliding_window(const struct es_rl_key *k,
					     const struct es_rl_config *c, __u64 now)
{
	struct es_rl_sliding_state *s = bpf_map_lookup_elem(&sliding_window_buckets, k);
	__u64 elapsed;

	if (!s) {
		struct es_rl_sliding_state ns = {.slot_start_ns = now, .window_total = 1};

		ns.slots[0] = 1;
		bpf_map_update_elem(&sliding_window_buckets, k, &ns, BPF_ANY);
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

static __always_inline int rl_leaky_bucket(const struct es_rl_key *k, const struct es_rl_config *c,
					   __u64 now)
{
	struct es_rl_leaky_state *s = bpf_map_lookup_elem(&leaky_bucket_buckets, k);
	__u64 elapsed, drained, rate = c->ns_per_token;

	if (!s) {
		struct es_rl_leaky_state ns = {.level = 1, .last_update_ns = now};

		if (c->burst < 1)
			return 1;
		bpf_map_update_elem(&leaky_bucket_buckets, k, &ns, BPF_ANY);
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
	struct es_rl_key key;
	struct es_pkt *pkt;
	__u32 zero = 0, flags, checks, blocks;
	__u64 now = 0;
	int r, over;

	rl_metric(ES_RL_M_TOTAL_SEEN);
	/* Nothing configured (no policy, override, block or DDoS check): no parse,
	 * no clock, straight on down the chain. */
	checks = rl_global(ES_RL_G_DDOS);
	blocks = rl_global(ES_RL_G_BLOCKS);
	flags = es_feature_on(ES_FEAT_RATELIMIT) ? rl_global(ES_RL_G_FLAGS) : 0;
	if (!(checks | blocks | flags | rl_global(ES_RL_G_OVERRIDES))) {
		rl_metric(ES_RL_M_PASSED);
		es_count(ES_PROG_XDP_RATELIMIT, ES_R_PASS);
		goto next;
	}
	pkt = bpf_map_lookup_elem(&rl_pkt_ctx, &zero);
	if (!pkt) {
		rl_metric(ES_RL_M_ERRORS);
		es_count(ES_PROG_XDP_RATELIMIT, ES_R_INTERNAL_ERROR);
		goto next;
	}
	r = es_parse(data, data_end, pkt);
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
	if (checks || blocks)
		now = rl_now();
	r = ddos_check(ctx, pkt, now, ES_PROG_XDP_RATELIMIT, blocks, checks);
	if (r >= 0)
		return r;

	/* With ratelimit disabled only the DDoS throttle overrides apply (§6.4 item 6). */
	c = rl_lookup(pkt, flags, rl_global(ES_RL_G_OVERRIDES));
	if (!c ||
	    (c->algorithm == ES_RL_ALGO_SYN_COOKIE &&
	     (pkt->tcp_flags & (TCP_F_SYN | TCP_F_ACK | TCP_F_RST | TCP_F_FIN)) != TCP_F_SYN)) {
		rl_metric(ES_RL_M_PASSED);
		es_count(ES_PROG_XDP_RATELIMIT, ES_R_PASS);
		goto next;
	}
	if (!checks && !blocks)
		now = rl_now();
	if (c->scope == ES_RL_SCOPE_GLOBAL)
		__builtin_memset(key.addr, 0xff, 16);
	else
		__builtin_memcpy(key.addr, pkt->src, 16);
	key.tag = c->tag;

	switch (c->algorithm) {
	case ES_RL_ALGO_FIXED_WINDOW: over = rl_fixed_window(&key, c, now); break;
	case ES_RL_ALGO_SLIDING_WINDOW: over = rl_sliding_window(&key, c, now); break;
	case ES_RL_ALGO_LEAKY_BUCKET: over = rl_leaky_bucket(&key, c, now); break;
	default: over = rl_token_bucket(&key, c, now); break;
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
