// SPDX-License-Identifier: AGPL-3.0-only
/*
 * xdp_firewall: the XDP entry program on every agent interface (network.md
 * §2.2). Per packet: parse, conntrack view (hook, see fw_ct_stage), zone gate,
 * LPM block lists, system (anti-lockout) rules, then first match by priority
 * through the classifier of abi/firewall.h, whose cost does not grow with the
 * number of rules; verdict, counters, events, DSCP mark, metadata, and the
 * tail-call chain.
 */
#include "kernel/bpf/es_bpf.h"
#include "kernel/bpf/parse.h"
#include "kernel/bpf/pkt_event.h"
#include "kernel/bpf/pkt_ctx.h"
#include "kernel/bpf/xdp_chain.h"
#include "kernel/bpf/fw_shared.h"
#include "kernel/bpf/ct.h"
#include "kernel/bpf/route.h"
#include "abi/firewall.h"
#include "abi/xdp_meta.h"

char LICENSE[] SEC("license") = "GPL";

#define FW_PINNED(name, maptype, ktype, vtype, n, fl)                                              \
	struct {                                                                                   \
		__uint(type, maptype);                                                             \
		__uint(max_entries, n);                                                            \
		__type(key, ktype);                                                                \
		__type(value, vtype);                                                              \
		__uint(map_flags, fl);                                                             \
		__uint(pinning, LIBBPF_PIN_BY_NAME);                                               \
	} name SEC(".maps")

/* FIREWALL_METRICS (network.md §2.2): passed, dropped, errors, events_dropped, total_seen. */
FW_PINNED(fw_metrics, BPF_MAP_TYPE_PERCPU_ARRAY, __u32, __u64, ES_FW_M__COUNT, 0);

/* The control word and the bank headers. */
FW_PINNED(fw_ctl, BPF_MAP_TYPE_ARRAY, __u32, __u32, 1, BPF_F_MMAPABLE);
FW_PINNED(fw_bank, BPF_MAP_TYPE_ARRAY, __u32, struct es_fw_bank, ES_FW_BANKS, 0);

/*
 * The classifier: written by the agent through mmap into the inactive bank.
 * One element per bank (the mmapped layout is the flat array of abi/firewall.h
 * either way): a packet looks each table up once and then indexes into it,
 * instead of one map lookup (key on the stack, bounds check) per row or record.
 */
struct fw_cls_bank {
	struct es_fw_cls r[ES_FW_CLS_PER_BANK];
};
struct fw_trie_bank {
	__u16 e[ES_FW_TRIE_PER_BANK];
};
struct fw_skip_bank {
	struct es_fw_skip s[ES_FW_SKIPS_PER_BANK];
};
struct fw_vt_bank {
	__u16 e[ES_FW_VT_ROWS * 256];
};
FW_PINNED(fw_cls, BPF_MAP_TYPE_ARRAY, __u32, struct fw_cls_bank, ES_FW_BANKS, BPF_F_MMAPABLE);
FW_PINNED(fw_trie, BPF_MAP_TYPE_ARRAY, __u32, struct fw_trie_bank, ES_FW_BANKS, BPF_F_MMAPABLE);
FW_PINNED(fw_skip, BPF_MAP_TYPE_ARRAY, __u32, struct fw_skip_bank, ES_FW_BANKS, BPF_F_MMAPABLE);
FW_PINNED(fw_vtab, BPF_MAP_TYPE_ARRAY, __u32, struct fw_vt_bank, ES_FW_BANKS, BPF_F_MMAPABLE);
FW_PINNED(fw_mac, BPF_MAP_TYPE_HASH, struct es_fw_mac_key, __u16, ES_FW_MACS_MAX, 0);

/* FIREWALL_RULES / _V6: what to do for the matched position. */
FW_PINNED(fw_rules, BPF_MAP_TYPE_ARRAY, __u32, struct es_fw_rule_v4, ES_FW_SLOTS, BPF_F_MMAPABLE);
FW_PINNED(fw_rules_v6, BPF_MAP_TYPE_ARRAY, __u32, struct es_fw_rule_v6, ES_FW_SLOTS,
	  BPF_F_MMAPABLE);
FW_PINNED(fw_sys, BPF_MAP_TYPE_ARRAY, __u32, struct es_fw_sys_rule, ES_FW_BANKS *ES_FW_SYS_MAX,
	  BPF_F_MMAPABLE);
FW_PINNED(fw_sys_port, BPF_MAP_TYPE_ARRAY, __u32, struct es_fw_row16, ES_FW_BANKS * 256,
	  BPF_F_MMAPABLE);

/* Agent interface positions (iface_mask bits, scope dimension). */
FW_PINNED(fw_ifpos, BPF_MAP_TYPE_HASH, __u32, __u32, 256, 0);

/* Per-rule hit counters, by slot (bank * ES_FW_MAX_RULES + position). */
FW_PINNED(fw_hits, BPF_MAP_TYPE_PERCPU_ARRAY, __u32, __u64, ES_FW_SLOTS, 0);
FW_PINNED(fw_sys_hits, BPF_MAP_TYPE_PERCPU_ARRAY, __u32, __u64, ES_FW_BANKS *ES_FW_SYS_MAX, 0);

/* The packet lives in PKT_CTX (kernel/bpf/pkt_ctx.h), off the stack. */
static __always_inline struct es_pkt_ctx *fw_scratch_of(const struct es_pkt *pkt)
{
	return (struct es_pkt_ctx *)pkt;
}

/* The conntrack key of fw_ct_view (its frame sits below the classifier's). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ct_tuple);
} fw_ct_scratch SEC(".maps");

static __always_inline void fw_metric(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&fw_metrics, &idx);

	if (v)
		*v += 1;
}

static __always_inline void fw_bump(void *map, __u32 key)
{
	__u64 *v = bpf_map_lookup_elem(map, &key);

	if (v)
		*v += 1;
}

/* The verdict of fw_decide(). */
struct fw_verdict {
	__u32 rule_id;
	__u8 action; /* ES_FW_ACT_* */
	__u8 reason; /* es_reason */
	__u8 dscp_mark;
	__u8 meta;   /* ES_FW_BF_META: write xdp_meta */
	__u8 mflags; /* ES_META_F_* besides PRESENT (NEW_FLOW, DUP_TO, REPLY_TO) */
	__u8 route;  /* ES_FW_ROUTE_* of the matched PASS/LOG rule */
	__u8 pad[2];
};

static __always_inline void fw_event(const struct es_pkt *pkt, __u32 ifindex, __u8 action,
				     __u32 rule_id)
{
	if (es_pkt_event_emit(pkt, ifindex, ES_EV_FIREWALL, action, rule_id)) {
		fw_metric(ES_FW_M_EVENTS_DROPPED);
		es_count(ES_PROG_XDP_FIREWALL, ES_R_EVENT_DROPPED);
	}
}

/* ---- classifier ------------------------------------------------------------------ */

/* The tables of one bank, looked up once per packet. */
struct fw_tabs {
	struct fw_cls_bank *cls;
	struct fw_trie_bank *trie;
	struct fw_vt_bank *vt;
	__u32 bank;
};

static __always_inline __u32 fw_vt(const struct fw_tabs *t, __u32 idx)
{
	barrier_var(idx); /* keep the bound the verifier needs */
	if (idx >= ES_FW_VT_PER_BANK)
		return ES_FW_CLS_NONE;
	return t->vt->e[idx];
}

/* Class of a 16-byte mapped address in trie tr. */
static __always_inline __u32 fw_trie_class(const struct fw_tabs *t, __u32 tr, const __u8 *a, int v6)
{
	__u32 d = v6 ? 0 : 12;
	__u16 e;

	e = t->trie->e[(tr * ES_FW_TRIE_L0 + ((__u32)a[d] << 8 | a[d + 1])) &
		       (ES_FW_TRIE_CHUNKS_OFF - 1)];
	d += 2;
	for (int i = 0; i < ES_FW_TRIE_MAX_STEPS; i++) {
		if (!(e & ES_FW_TE_PTR))
			return e;
		if (e & ES_FW_TE_SKIP) {
			struct fw_skip_bank *sb = bpf_map_lookup_elem(&fw_skip, &t->bank);
			const __u64 *w = (const __u64 *)a;
			struct es_fw_skip *s;

			if (!sb)
				return ES_FW_CLS_NONE;
			s = &sb->s[e & (ES_FW_SKIPS_PER_BANK - 1)];
			if (((w[0] ^ s->val[0]) & s->mask[0]) | ((w[1] ^ s->val[1]) & s->mask[1]))
				return s->miss;
			e = s->next;
			d = s->depth;
		} else {
			e = t->trie->e[ES_FW_TRIE_CHUNKS_OFF +
				       ((__u32)(e & (ES_FW_CHUNKS_PER_BANK - 1)) << 8) + a[d & 15]];
			d++;
		}
	}
	return ES_FW_CLS_NONE; /* deeper than any valid trie: malformed, match nothing */
}

static __always_inline __u32 fw_mac_class(const struct fw_tabs *t, const __u8 *mac, __u8 dir)
{
	struct es_fw_mac_key k = {.bank = (__u8)t->bank, .dir = dir};
	__u16 *c;

	__builtin_memcpy(k.mac, mac, 6);
	c = bpf_map_lookup_elem(&fw_mac, &k);
	if (c)
		return *c;
	return fw_vt(t, dir ? ES_FW_VT_DMAC_MISS : ES_FW_VT_SMAC_MISS);
}

/*
 * Index of the lowest set bit of a non-zero word, without branches: a
 * branchy version gives the verifier 64 exact values to follow per loop turn.
 */
static __always_inline __u32 fw_ctz(__u64 x)
{
	__u64 v = (x & -x) - 1;

	v = v - ((v >> 1) & 0x5555555555555555ull);
	v = (v & 0x3333333333333333ull) + ((v >> 2) & 0x3333333333333333ull);
	v = (v + (v >> 4)) & 0x0f0f0f0f0f0f0f0full;
	return (__u32)((v * 0x0101010101010101ull) >> 56);
}

/* The class records of a packet and the state of the scan (on the stack). */
struct fw_recs {
	struct es_fw_cls *r[ES_FW_D__COUNT];
	__u64 s;       /* candidate words left in the current group */
	__u64 visited; /* words already evaluated */
	__u64 limit;   /* words before the best match so far */
	__u32 nd;      /* dimensions [0, nd) are ANDed */
	int best;
};

/* AND of field over the records of dimensions [0, nd), dimension skip excepted. */
#define FW_ANDN(rs, skip, field)                                                                   \
	({                                                                                         \
		__u64 x_ = ~0ull;                                                                  \
		_Pragma("unroll") for (int d_ = 0; d_ < ES_FW_D__COUNT; d_++)                      \
		{                                                                                  \
			if (d_ != (skip) && (rs)->nd > d_)                                         \
				x_ &= (rs)->r[d_]->field;                                          \
		}                                                                                  \
		x_;                                                                                \
	})

/* The dimension whose summary prunes group g best: the field its rules all constrain. */
static __always_inline int fw_group_key(int g)
{
	return g == ES_FW_G_DST	    ? ES_FW_D_DST
	       : g == ES_FW_G_DPORT ? ES_FW_D_DPORT
	       : g == ES_FW_G_SPORT ? ES_FW_D_SPORT
	       : g == ES_FW_G_PROTO ? ES_FW_D_PROTO
				    : ES_FW_D_SRC;
}

/*
 * One candidate word (bpf_loop callback: verified once, however many words a
 * packet visits). Stops at the first word holding a match: words ascend with
 * priority, so its lowest bit is the best position in every word after it.
 */
static long fw_scan_word(__u32 i, void *arg)
{
	struct fw_recs *rs = arg;
	__u64 low, bits;
	__u32 w;

	if (!rs->s)
		return 1;
	low = rs->s & -rs->s;
	w = fw_ctz(low) & (ES_FW_WORDS - 1);
	rs->visited |= low;
	bits = FW_ANDN(rs, -1, w[w]);
	if (bits) {
		rs->best = (int)(w * 64 + fw_ctz(bits));
		rs->limit = low - 1;
		return 1;
	}
	rs->s &= rs->s - 1;
	return 0;
}

/*
 * First matching position, or -1. Per non-empty group: the key dimension's
 * summary first (most groups stop there), then the others; only words every
 * dimension marks are visited, never a word twice, and none after a word that
 * already holds a match.
 */
static __always_inline int fw_first_match(struct fw_recs *rs, __u32 groups)
{
	rs->visited = 0;
	rs->limit = ~0ull;
	rs->best = -1;
#pragma unroll
	for (int g = 0; g < ES_FW_G__COUNT; g++) {
		int key = fw_group_key(g);
		__u64 s;

		if (!(groups & (1u << g)))
			continue;
		s = rs->r[key]->summ[g] & rs->limit & ~rs->visited;
		if (!s)
			continue;
		s &= FW_ANDN(rs, key, summ[g]);
		if (!s)
			continue;
		rs->s = s;
		bpf_loop(ES_FW_WORDS, fw_scan_word, rs, 0);
	}
	return rs->best;
}

static __always_inline __u32 fw_ifpos_of(__u32 ifindex)
{
	__u32 *p = bpf_map_lookup_elem(&fw_ifpos, &ifindex);

	return p && *p < ES_FW_MAX_IFACES ? *p : ES_FW_VT_NONE_IFACE;
}

/* Class of the packet on dimension d (a constant once unrolled). */
static __always_inline __u32 fw_dim_class(int d, const struct fw_tabs *t, struct xdp_md *ctx,
					  const struct es_pkt *pkt, __u32 ct_state)
{
	int v6 = pkt->flags & ES_PKT_F_IPV6, l4 = pkt->flags & ES_PKT_F_L4;
	int ports = l4 && (pkt->proto == IPPROTO_TCP || pkt->proto == IPPROTO_UDP);
	__u8 icmp = v6 ? IPPROTO_ICMPV6_ : IPPROTO_ICMP;

	switch (d) {
	case ES_FW_D_SRC: return fw_trie_class(t, v6 ? ES_FW_T_SRC6 : ES_FW_T_SRC4, pkt->src, v6);
	case ES_FW_D_DST: return fw_trie_class(t, v6 ? ES_FW_T_DST6 : ES_FW_T_DST4, pkt->dst, v6);
	case ES_FW_D_PROTO: return fw_vt(t, (v6 ? ES_FW_VT_PROTO6 : ES_FW_VT_PROTO) + pkt->proto);
	case ES_FW_D_DPORT:
		return fw_vt(t, ES_FW_VT_DPORT + (ports ? pkt->dport : ES_FW_VT_NONE_PORT));
	case ES_FW_D_SPORT:
		return fw_vt(t, ES_FW_VT_SPORT + (ports ? pkt->sport : ES_FW_VT_NONE_PORT));
	case ES_FW_D_ICMP:
		return fw_vt(t, ES_FW_VT_ICMP + (l4 && pkt->proto == icmp
						     ? ((__u32)pkt->icmp_type << 8 | pkt->icmp_code)
						     : ES_FW_VT_NONE_ICMP));
	case ES_FW_D_TCPF:
		return fw_vt(t, ES_FW_VT_TCPF + (l4 && pkt->proto == IPPROTO_TCP
						     ? (pkt->tcp_flags & 0x3f)
						     : ES_FW_VT_NONE_TCPF));
	case ES_FW_D_DSCP: return fw_vt(t, ES_FW_VT_DSCP + (pkt->dscp & 0x3f));
	case ES_FW_D_VLAN: return fw_vt(t, ES_FW_VT_VLAN + (pkt->vlan_id & 0xfff));
	case ES_FW_D_CT: return fw_vt(t, ES_FW_VT_CT + ct_state);
	case ES_FW_D_IFACE: return fw_vt(t, ES_FW_VT_IFACE + fw_ifpos_of(ctx->ingress_ifindex));
	case ES_FW_D_SMAC: return fw_mac_class(t, pkt->src_mac, 0);
	default: return fw_mac_class(t, pkt->dst_mac, 1);
	}
}

/*
 * A class id read back from memory the verifier does not track: every record
 * pointer then has the same shape (an unknown index into the bank), whatever
 * path computed it, and states stay prunable (constant ids on some paths
 * made the verifier walk every combination of dimensions).
 */
static __always_inline __u32 fw_launder(const struct es_pkt *pkt, __u32 c)
{
	volatile __u32 *w = &fw_scratch_of(pkt)->launder;

	*w = c;
	return *w & (ES_FW_CLS_PER_BANK - 1);
}

/*
 * Class records of the packet: the active dimensions' by class, the others
 * the all-positions record. 0, or -1 on a map failure.
 */
static __always_inline int fw_classify(struct xdp_md *ctx, const struct es_pkt *pkt, __u32 bank,
				       __u32 dims, __u32 ct_state, struct fw_recs *rs)
{
	struct fw_tabs t = {.bank = bank};
	struct es_fw_cls *all;

	t.cls = bpf_map_lookup_elem(&fw_cls, &bank);
	t.trie = bpf_map_lookup_elem(&fw_trie, &bank);
	t.vt = bpf_map_lookup_elem(&fw_vtab, &bank);
	if (!t.cls || !t.trie || !t.vt)
		return -1;
	all = &t.cls->r[fw_launder(pkt, ES_FW_CLS_ALL)];
#pragma unroll
	for (int d = 0; d < ES_FW_D__COUNT; d++)
		rs->r[d] = dims & (1u << d)
			       ? &t.cls->r[fw_launder(pkt, fw_dim_class(d, &t, ctx, pkt, ct_state))]
			       : all;
	return 0;
}

/* ---- stages ------------------------------------------------------------------ */

/*
 * Conntrack view (network.md §2.2 steps 3-4). With conntrack on: a source in
 * the overload set is dropped (no event); established, related and reply
 * traffic takes the fast path; otherwise the state is the packet's ES_FW_CT_*
 * for the `state:` dimension, and FW_CTV_ENTRY says whether a live entry
 * exists (connection limits apply only without one). Conntrack off: state
 * ES_FW_CT_UNKNOWN (state rules never match), no overload set, no limits.
 *
 * A global (separately verified) function: its many outcomes reach the
 * classifier as one unknown value, not as one verifier path each.
 */
#define FW_CTV_STATE 0x0ff
#define FW_CTV_FAST 0x100
#define FW_CTV_OVERLOAD 0x200
#define FW_CTV_ENTRY 0x400
#define FW_CTV_ON 0x800
#define FW_CTV_OPENS 0x1000 /* NEW, no entry, and tc_conntrack will create one */

__noinline int fw_ct_view(struct xdp_md *ctx, const struct es_pkt *pkt)
{
	struct es_ct_config *c = ct_config_get();
	struct ct_verdict cv;
	struct ct_tuple *t;
	__u32 zero = 0;
	int r;

	if (!pkt || !c || !c->enabled)
		return ES_FW_CT_UNKNOWN;
	t = bpf_map_lookup_elem(&fw_ct_scratch, &zero);
	if (!t)
		return ES_FW_CT_UNKNOWN;
	/* Step 3: the overload set ("IP set 255"), keyed by the mapped source. */
	if (bpf_map_lookup_elem(&ct_overload, (void *)pkt->src))
		return FW_CTV_ON | FW_CTV_OVERLOAD | ES_FW_CT_UNKNOWN;
	ct_classify_in((void *)(long)ctx->data, (void *)(long)ctx->data_end, pkt, &cv, t);
	r = FW_CTV_ON | (cv.state <= ES_CT_INVALID ? cv.state : ES_FW_CT_UNKNOWN);
	if (cv.fast)
		r |= FW_CTV_FAST;
	if (cv.has_entry)
		r |= FW_CTV_ENTRY;
	/* Connections the limits count: what tc_conntrack tracks (not ND, say). */
	else if (cv.state == ES_CT_NEW && (pkt->proto == IPPROTO_TCP || pkt->proto == IPPROTO_UDP ||
					   ct_icmp_is_echo_request(pkt->proto, pkt->icmp_type)))
		r |= FW_CTV_OPENS;
	return r;
}

/* The view above, split: returns its flags, *state the ES_FW_CT_* state. */
static __always_inline __u32 fw_ct_stage(struct xdp_md *ctx, const struct es_pkt *pkt, __u32 *state)
{
	__u32 r = (__u32)fw_ct_view(ctx, pkt);

	*state = r & FW_CTV_STATE;
	if (*state >= ES_FW_CT__COUNT)
		*state = ES_FW_CT_UNKNOWN;
	return r & ~FW_CTV_STATE;
}

/*
 * Connection limits (network.md §2.2 step 8) for a new flow matched by a
 * PASS/LOG rule: per source (max_src_states, max_src_conn_rate in
 * conn_rate_window_secs; exceeding the rate puts the source into the overload
 * set) from CT_CONFIG + CT_SRC_COUNTERS, then per rule (max_states) on
 * FW_RULE_STATE_COUNT at the rule's slot (FW_RULE_SLOT: the slot tc_conntrack
 * records in the flow's entry, so the sweeper's recount lands on the same
 * counter). 1 = drop. The sweeper recomputes every count from the table.
 * Global like fw_ct_view.
 */
__noinline int fw_conn_limits(const struct es_pkt *pkt, __u32 rule_id, __u32 slot, __u32 max_states)
{
	struct es_ct_config *c = ct_config_get();
	struct es_ct_src_counter *sc = NULL;
	__u32 *cnt = NULL, *canon;
	__u64 now;

	if (!pkt || !c)
		return 0;
	if (c->max_src_states || c->max_src_conn_rate) {
		now = bpf_ktime_get_boot_ns();
		sc = bpf_map_lookup_elem(&ct_src_counters, (void *)pkt->src);
		if (!sc) {
			struct es_ct_src_counter z = {.window_start_ns = now};

			bpf_map_update_elem(&ct_src_counters, (void *)pkt->src, &z, BPF_NOEXIST);
			sc = bpf_map_lookup_elem(&ct_src_counters, (void *)pkt->src);
		}
		if (sc) {
			if (sc->flags & ES_CT_SRC_OVERLOADED)
				return 1;
			if (c->max_src_states && sc->conn_count >= c->max_src_states)
				return 1;
			if (c->max_src_conn_rate) {
				__u64 win = (__u64)c->conn_rate_window_secs * 1000000000ull;

				if (now < sc->window_start_ns || now - sc->window_start_ns >= win) {
					sc->window_start_ns = now;
					sc->conn_rate = 0;
				}
				if (sc->conn_rate >= c->max_src_conn_rate) {
					struct es_ct_overload o = {.since_ns = now};

					sc->flags |= ES_CT_SRC_OVERLOADED;
					bpf_map_update_elem(&ct_overload, (void *)pkt->src, &o,
							    BPF_ANY);
					return 1;
				}
			}
		}
	}
	if (max_states) {
		canon = bpf_map_lookup_elem(&fw_rule_slot, &rule_id);
		if (canon && *canon < ES_FW_RULE_SLOTS)
			slot = *canon;
		cnt = bpf_map_lookup_elem(&fw_rule_state_count, &slot);
		if (cnt && *cnt >= max_states)
			return 1;
	}
	if (sc) {
		__sync_fetch_and_add(&sc->conn_count, 1);
		__sync_fetch_and_add(&sc->conn_rate, 1);
	}
	if (cnt)
		__sync_fetch_and_add(cnt, 1);
	return 0;
}

/* Zone gate for forwarded packets (network.md §2.6). 1 = deny. */
static __always_inline int fw_zone_denies(struct xdp_md *ctx, const struct es_pkt *pkt)
{
	__u32 in = ctx->ingress_ifindex, key;
	struct bpf_fib_lookup fib = {};
	struct es_zone_policy *pol;
	__u8 *zin, *zout;
	int rc;

	zin = bpf_map_lookup_elem(&zone_map, &in);
	if (!zin || !*zin)
		return 0;
	fib.ifindex = in;
	fib.l4_protocol = pkt->proto;
	fib.sport = bpf_htons(pkt->sport);
	fib.dport = bpf_htons(pkt->dport);
	fib.tot_len = pkt->l3_len;
	if (pkt->flags & ES_PKT_F_IPV6) {
		fib.family = 10; /* AF_INET6 */
		__builtin_memcpy(fib.ipv6_src, pkt->src, 16);
		__builtin_memcpy(fib.ipv6_dst, pkt->dst, 16);
	} else {
		fib.family = 2; /* AF_INET */
		fib.tos = pkt->dscp << 2;
		__builtin_memcpy(&fib.ipv4_src, pkt->src + 12, 4);
		__builtin_memcpy(&fib.ipv4_dst, pkt->dst + 12, 4);
	}
	rc = bpf_fib_lookup(ctx, &fib, sizeof(fib), 0);
	/* Only forwarded traffic is gated; local delivery is NOT_FWDED. */
	if (rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH)
		return 0;
	key = fib.ifindex;
	zout = bpf_map_lookup_elem(&zone_map, &key);
	if (!zout || !*zout)
		return 0;
	key = (__u32)*zin << 8 | *zout;
	pol = bpf_map_lookup_elem(&zone_policy, &key);
	return !pol || pol->policy != ES_ZONE_ALLOW;
}

/* LPM block lists (network.md §2.2 step 6). 1 with *action set on a hit. */
static __always_inline int fw_lpm_hit(const struct es_pkt *pkt, const struct es_fw_globals *n,
				      __u8 *action)
{
	struct es_fw_lpm_val *v = NULL;

	if (pkt->flags & ES_PKT_F_IPV6) {
		struct es_fw_lpm_v6 k = {.prefixlen = 128};

		if (n->lpm[ES_FW_LPM_SRC6]) {
			__builtin_memcpy(k.addr, pkt->src, 16);
			v = bpf_map_lookup_elem(&fw_lpm_src_v6, &k);
		}
		if (!v && n->lpm[ES_FW_LPM_DST6]) {
			__builtin_memcpy(k.addr, pkt->dst, 16);
			v = bpf_map_lookup_elem(&fw_lpm_dst_v6, &k);
		}
	} else {
		struct es_fw_lpm_v4 k = {.prefixlen = 32};

		if (n->lpm[ES_FW_LPM_SRC4]) {
			__builtin_memcpy(k.addr, pkt->src + 12, 4);
			v = bpf_map_lookup_elem(&fw_lpm_src_v4, &k);
		}
		if (!v && n->lpm[ES_FW_LPM_DST4]) {
			__builtin_memcpy(k.addr, pkt->dst + 12, 4);
			v = bpf_map_lookup_elem(&fw_lpm_dst_v4, &k);
		}
	}
	if (!v)
		return 0;
	*action = v->action;
	return 1;
}

/* System (anti-lockout) rules: TCP to a protected port on a protected interface. */
static __always_inline int fw_sys_match(const struct es_pkt *pkt, __u32 bank, __u32 ifindex,
					__u32 *rule_id)
{
	__u32 row = bank * 256 + (pkt->dport >> 8);
	struct es_fw_row16 *r;
	__u32 v, first, n;

	if (pkt->proto != IPPROTO_TCP || !(pkt->flags & ES_PKT_F_L4))
		return 0;
	r = bpf_map_lookup_elem(&fw_sys_port, &row);
	if (!r)
		return 0;
	v = r->e[pkt->dport & 0xff];
	if (!v)
		return 0;
	first = (v & 0xff) - 1;
	n = v >> 8;
	for (__u32 i = 0; i < ES_FW_MAX_IFACES + 1; i++) {
		__u32 k = bank * ES_FW_SYS_MAX + ((first + i) & (ES_FW_SYS_MAX - 1));
		struct es_fw_sys_rule *s;

		if (i >= n)
			break;
		s = bpf_map_lookup_elem(&fw_sys, &k);
		if (!s)
			return 0;
		if (s->port != pkt->dport)
			continue;
		if (s->iface_mask) {
			__u32 pos = fw_ifpos_of(ifindex);

			if (pos >= 32 || !(s->iface_mask & (1u << pos)))
				continue;
		}
		{
			*rule_id = s->rule_id;
			fw_bump(&fw_sys_hits, k);
			return 1;
		}
	}
	return 0;
}

/*
 * Decide for an IP packet. Fills v; returns 0, or -1 on an internal error
 * (counted as an error and passed).
 */
static __always_inline int fw_decide(struct xdp_md *ctx, const struct es_pkt *pkt,
				     struct fw_verdict *v)
{
	__u32 zero = 0, *ctl, bank, ct_state, ctf;
	int v6 = pkt->flags & ES_PKT_F_IPV6, pos;
	struct es_fw_globals *gl;
	struct es_fw_bank *bk;
	struct fw_recs rs;
	__u8 lpm_action;

	v->dscp_mark = ES_FW_WILDCARD_U8;
	v->meta = 0;
	v->mflags = 0;
	v->route = ES_FW_ROUTE_NONE;
	ctl = bpf_map_lookup_elem(&fw_ctl, &zero);
	if (!ctl)
		return -1;
	bank = *ctl >> 31;
	bk = bpf_map_lookup_elem(&fw_bank, &bank);
	if (!bk)
		return -1;
	v->meta = bk->flags & ES_FW_BF_META;

	ctf = fw_ct_stage(ctx, pkt, &ct_state);
	if (ctf & (FW_CTV_FAST | FW_CTV_OVERLOAD)) {
		v->rule_id = ES_FW_RULE_DEFAULT;
		if (ctf & FW_CTV_OVERLOAD) {
			v->action = ES_FW_ACT_DROP;
			v->reason = ES_R_FW_OVERLOAD_DROP; /* no event (step 3) */
		} else {
			v->action = ES_FW_ACT_PASS;
			v->reason = ES_R_FW_FASTPATH;
		}
		return 0;
	}
	gl = bpf_map_lookup_elem(&fw_globals, &zero);
	if (!gl)
		return -1;
	if (gl->zones && fw_zone_denies(ctx, pkt)) {
		v->action = ES_FW_ACT_DROP;
		v->rule_id = ES_FW_RULE_ZONE;
		v->reason = ES_R_FW_ZONE_DROP;
		return 0;
	}
	if ((gl->lpm[0] | gl->lpm[1] | gl->lpm[2] | gl->lpm[3]) &&
	    fw_lpm_hit(pkt, gl, &lpm_action)) {
		v->action = lpm_action;
		v->rule_id = ES_FW_RULE_LPM;
		v->reason = lpm_action == ES_FW_ACT_DROP  ? ES_R_FW_LPM_DROP
			    : lpm_action == ES_FW_ACT_LOG ? ES_R_FW_RULE_LOG
							  : ES_R_FW_RULE_PASS;
		return 0;
	}
	if (bk->n_sys && fw_sys_match(pkt, bank, ctx->ingress_ifindex, &v->rule_id)) {
		v->action = ES_FW_ACT_PASS;
		v->reason = ES_R_FW_RULE_PASS;
		return 0;
	}

	pos = -1;
	if (bk->n_rules) {
		rs.nd = bk->nd[v6 ? 1 : 0];
		if (fw_classify(ctx, pkt, bank, bk->dims[v6 ? 1 : 0], ct_state, &rs))
			return -1;
		pos = fw_first_match(&rs, bk->groups[v6 ? 1 : 0]);
	}
	if (pos < 0) {
		v->rule_id = ES_FW_RULE_DEFAULT;
		if (bk->default_policy == ES_FW_POLICY_DROP) {
			v->action = ES_FW_ACT_DROP;
			v->reason = ES_R_FW_DEFAULT_DROP;
		} else {
			v->action = ES_FW_ACT_PASS;
			v->reason = ES_R_FW_DEFAULT_PASS;
		}
		return 0;
	}

	{
		__u32 slot = bank * ES_FW_MAX_RULES + ((__u32)pos & (ES_FW_MAX_RULES - 1));
		__u16 max_states;
		__u8 route;

		if (v6) {
			struct es_fw_rule_v6 *re = bpf_map_lookup_elem(&fw_rules_v6, &slot);

			if (!re)
				return -1;
			v->action = re->action;
			v->rule_id = re->rule_id;
			v->dscp_mark = re->dscp_mark;
			max_states = re->max_states;
			route = re->route_action;
		} else {
			struct es_fw_rule_v4 *re = bpf_map_lookup_elem(&fw_rules, &slot);

			if (!re)
				return -1;
			v->action = re->action;
			v->rule_id = re->rule_id;
			v->dscp_mark = re->dscp_mark;
			max_states = re->max_states;
			route = re->route_action;
		}
		fw_bump(&fw_hits, slot);
		if (v->action == ES_FW_ACT_DROP)
			goto reason;
		/* Step 8: a flow this packet opens (conntrack on, no entry yet). */
		if (ctf & FW_CTV_OPENS) {
			if (fw_conn_limits(pkt, v->rule_id, slot, max_states)) {
				v->action = ES_FW_ACT_DROP;
				v->rule_id = ES_FW_RULE_CONN_LIMIT;
				v->reason = ES_R_FW_LIMIT_DROP;
				v->dscp_mark = ES_FW_WILDCARD_U8;
				return 0;
			}
			v->mflags |= ES_META_F_NEW_FLOW;
		}
		v->route = route;
		if (route == ES_FW_ROUTE_DUP_TO) {
			v->mflags |= ES_META_F_DUP_TO;
		} else if (route == ES_FW_ROUTE_REPLY_TO) {
			v->mflags |= ES_META_F_REPLY_TO;
		} else if (route == ES_FW_ROUTE_TO && (ctf & FW_CTV_ON)) {
			/* Conntrack on: tc_conntrack routes it once tracked, and the
			 * flow's later packets after it (docs/firewall.md). */
			v->mflags |= ES_META_F_ROUTE_TO;
			v->route = ES_FW_ROUTE_NONE;
		}
	}
reason:
	v->reason = v->action == ES_FW_ACT_DROP	 ? ES_R_FW_RULE_DROP
		    : v->action == ES_FW_ACT_LOG ? ES_R_FW_RULE_LOG
						 : ES_R_FW_RULE_PASS;
	return 0;
}

/* Rewrite DSCP keeping ECN; IPv4 header checksum updated incrementally (RFC 1624). */
static __always_inline void fw_dscp_mark(struct xdp_md *ctx, const struct es_pkt *pkt, __u8 dscp)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 off = pkt->l3_off;

	if (off > ES_MAX_L3_OFF)
		return;
	barrier_var(off);
	if (pkt->flags & ES_PKT_F_IPV6) {
		__u8 *h = data + off;
		__u8 tc;

		if (!ES_FITS(data, data_end, off, 40))
			return;
		tc = (__u8)((h[0] & 0x0f) << 4 | h[1] >> 4);
		tc = (__u8)(dscp << 2 | (tc & 3));
		h[0] = (h[0] & 0xf0) | (tc >> 4);
		h[1] = (__u8)((h[1] & 0x0f) | (tc << 4));
	} else {
		__u8 *h = data + off;
		__u16 old, new, *check;
		__u32 sum;

		if (!ES_FITS(data, data_end, off, sizeof(struct iphdr)))
			return;
		check = (__u16 *)(h + 10);
		/* Host-order words built byte by byte: no aliasing games with the store. */
		old = (__u16)(h[0] << 8 | h[1]);
		new = (__u16)(h[0] << 8 | (dscp << 2) | (h[1] & 3));
		h[1] = (__u8) new;
		sum = (__u16)~bpf_ntohs(*check);
		sum += (__u16)~old;
		sum += new;
		sum = (sum & 0xffff) + (sum >> 16);
		sum = (sum & 0xffff) + (sum >> 16);
		*check = bpf_htons((__u16)~sum);
	}
}

/*
 * route_to (network.md §2.7): forward through the rule's gateway. FIB lookup
 * of the gateway on the target interface → MACs; TTL / hop limit − 1 (IPv4
 * checksum updated incrementally); MTU check; XDP_REDIRECT into FW_DEVMAP.
 * XDP_PASS (ordinary routing) when the target is missing or of the other
 * family, the neighbour is unresolved, the TTL would expire or the frame is
 * too big — the stack then does what it always does. Global: its frame (the
 * FIB parameters) is not added to the main function's.
 */
__noinline int fw_route_to(struct xdp_md *ctx, const struct es_pkt *pkt, __u32 rule_id)
{
	struct es_route_target *t = es_route_target_get(rule_id);
	struct bpf_fib_lookup fib = {};
	void *data, *data_end;
	__u32 off, slot, mtu = 0;
	__u8 *h;
	int v6;

	if (!pkt || !t || !t->ifindex || !t->family)
		return XDP_PASS;
	v6 = !!(pkt->flags & ES_PKT_F_IPV6);
	if (v6 != (t->family == 6))
		return XDP_PASS;
	slot = t->devmap_slot;
	if (!bpf_map_lookup_elem(&fw_devmap, &slot))
		return XDP_PASS;
	fib.ifindex = t->ifindex;
	fib.l4_protocol = pkt->proto;
	fib.sport = bpf_htons(pkt->sport);
	fib.dport = bpf_htons(pkt->dport);
	fib.tot_len = pkt->l3_len;
	if (v6) {
		fib.family = 10; /* AF_INET6 */
		__builtin_memcpy(fib.ipv6_src, pkt->src, 16);
#pragma unroll
		for (int i = 0; i < 4; i++)
			fib.ipv6_dst[i] = bpf_htonl(t->gw[i]);
	} else {
		fib.family = 2; /* AF_INET */
		fib.tos = pkt->dscp << 2;
		__builtin_memcpy(&fib.ipv4_src, pkt->src + 12, 4);
		fib.ipv4_dst = bpf_htonl(t->gw[0]);
	}
	if (bpf_fib_lookup(ctx, &fib, sizeof(fib), BPF_FIB_LOOKUP_DIRECT | BPF_FIB_LOOKUP_OUTPUT) !=
		BPF_FIB_LKUP_RET_SUCCESS ||
	    fib.ifindex != t->ifindex)
		return XDP_PASS;
	if (bpf_check_mtu(ctx, t->ifindex, &mtu, 0, 0))
		return XDP_PASS;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	off = pkt->l3_off;
	if (off > ES_MAX_L3_OFF || !ES_FITS(data, data_end, 0, 14))
		return XDP_PASS;
	barrier_var(off);
	h = data + off;
	if (v6) {
		if (!ES_FITS(data, data_end, off, 40) || h[7] <= 1)
			return XDP_PASS;
		h[7]--;
	} else {
		__u16 *check;
		__u32 sum;

		if (!ES_FITS(data, data_end, off, sizeof(struct iphdr)) || h[8] <= 1)
			return XDP_PASS;
		/* RFC 1624: the TTL is the high byte of the word at 8; −1 there is −0x100. */
		check = (__u16 *)(h + 10);
		sum = (__u16)~bpf_ntohs(*check);
		sum += (__u16) ~(__u16)(h[8] << 8 | h[9]);
		h[8]--;
		sum += (__u16)(h[8] << 8 | h[9]);
		sum = (sum & 0xffff) + (sum >> 16);
		sum = (sum & 0xffff) + (sum >> 16);
		*check = bpf_htons((__u16)~sum);
	}
	__builtin_memcpy(data, fib.dmac, 6);
	__builtin_memcpy(data + 6, fib.smac, 6);
	return bpf_redirect_map(&fw_devmap, slot, XDP_PASS);
}

/*
 * Prepend xdp_meta (network.md §1.4), best effort. A frame that already
 * carries metadata (a repeated BPF_PROG_TEST_RUN) has its first 8 bytes
 * rewritten rather than grown again: the first 8 are what TC reads.
 */
static __always_inline void fw_set_meta(struct xdp_md *ctx, const struct fw_verdict *v)
{
	struct es_xdp_meta *m = (void *)(long)ctx->data_meta;
	void *data = (void *)(long)ctx->data;

	if ((void *)(m + 1) > data) {
		if (bpf_xdp_adjust_meta(ctx, -(int)sizeof(*m)))
			return;
		m = (void *)(long)ctx->data_meta;
		data = (void *)(long)ctx->data;
		if ((void *)(m + 1) > data)
			return;
	}
	m->rule_id = v->rule_id;
	m->action = v->action == ES_FW_ACT_LOG ? ES_FW_ACT_LOG : ES_FW_ACT_PASS;
	m->ratelimit_status = 0;
	m->meta_flags = ES_META_F_PRESENT | v->mflags;
	m->pad = 0;
}

SEC("xdp")
int xdp_firewall(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct es_pkt_ctx *pc;
	struct fw_verdict v;
	struct es_pkt *pkt;
	int r = -1;

	fw_metric(ES_FW_M_TOTAL_SEEN);
	pc = es_pkt_ctx_get();
	if (!pc) {
		fw_metric(ES_FW_M_ERRORS);
		es_count(ES_PROG_XDP_FIREWALL, ES_R_INTERNAL_ERROR);
		return XDP_PASS;
	}
	pkt = &pc->pkt;
	if (!es_feature_on(ES_FEAT_FIREWALL)) {
		fw_metric(ES_FW_M_PASSED);
		es_count(ES_PROG_XDP_FIREWALL, ES_R_DISABLED);
		goto next;
	}

	r = es_parse(data, data_end, pkt);
	if (es_reason_is_error(r)) {
		/* Malformed or truncated: counted, never dropped for it. */
		fw_metric(ES_FW_M_ERRORS);
		es_count(ES_PROG_XDP_FIREWALL, r);
		return XDP_PASS;
	}
	if (r == ES_R_NON_IP) {
		/* ARP and the rest pass even under default drop. */
		fw_metric(ES_FW_M_PASSED);
		es_count(ES_PROG_XDP_FIREWALL, ES_R_NON_IP);
		goto next;
	}
	if (fw_decide(ctx, pkt, &v)) {
		fw_metric(ES_FW_M_ERRORS);
		es_count(ES_PROG_XDP_FIREWALL, ES_R_INTERNAL_ERROR);
		r = -1; /* the next program parses for itself */
		goto next;
	}
	es_count(ES_PROG_XDP_FIREWALL, v.reason);
	if (v.action == ES_FW_ACT_DROP) {
		if (v.reason != ES_R_FW_OVERLOAD_DROP)
			fw_event(pkt, ctx->ingress_ifindex, ES_FW_ACT_DROP, v.rule_id);
		fw_metric(ES_FW_M_DROPPED);
		return XDP_DROP;
	}
	if (v.action == ES_FW_ACT_LOG)
		fw_event(pkt, ctx->ingress_ifindex, ES_FW_ACT_LOG, v.rule_id);
	fw_metric(ES_FW_M_PASSED);
	if (v.dscp_mark <= 63)
		fw_dscp_mark(ctx, pkt, v.dscp_mark);
	if (v.route == ES_FW_ROUTE_TO && fw_route_to(ctx, pkt, v.rule_id) == XDP_REDIRECT)
		return XDP_REDIRECT; /* REDIRECT never tail-calls (§1.2) */
	if (v.meta)
		fw_set_meta(ctx, &v);
next:
	/* Hand the parse on: xdp_ratelimit does not parse again. */
	ES_XDP_CONTINUE_PARSED(ctx, pc, r);
	return XDP_PASS;
}
