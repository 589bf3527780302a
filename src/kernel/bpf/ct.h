/* SPDX-License-Identifier: AGPL-3.0-only */
/*
 * Connection tracking, kernel side: the pinned maps every program that
 * tracks, annotates or reads flows shares (network.md §1.5, §3.2), and the
 * helpers that derive keys identically on every hook (XDP and TC), so an
 * entry written by tc_conntrack is found by xdp_firewall and xdp_ratelimit.
 *
 *   struct ct_tuple t;
 *   if (ct_tuple_from_pkt(pkt, &t) == 0 && (e = ct_lookup(&t)) && ct_live(cfg, e, &t, now))
 *           ... ct_is_orig(e, &t) tells the packet's direction ...
 *
 * The XDP firewall's state derivation (§2.2 step 4) is ct_classify().
 */
#ifndef ES_CT_H
#define ES_CT_H

#include "es_bpf.h"
#include "parse.h"

#include "abi/conntrack.h"

/* CT_TABLE_V4 / _V6: written by tc_conntrack(_egress) and NAT, read by XDP and the agent. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, ES_CT_V4_MAX);
	__type(key, struct es_ct_key_v4);
	__type(value, struct es_ct_entry_v4);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ct_table_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, ES_CT_V6_MAX);
	__type(key, struct es_ct_key_v6);
	__type(value, struct es_ct_entry_v6);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ct_table_v6 SEC(".maps");

/* CT_CONFIG[0]: enabled, timeouts and per-source limits (agent → all). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct es_ct_config);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ct_config SEC(".maps");

/* CT_SRC_COUNTERS: per-source flow counts and rate windows (firewall, agent). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ES_CT_SRC_MAX);
	__type(key, struct es_ct_addr16);
	__type(value, struct es_ct_src_counter);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ct_src_counters SEC(".maps");

/* The overload set ("IP set 255"): firewall adds, agent expires and clears. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ES_CT_OVERLOAD_MAX);
	__type(key, struct es_ct_addr16);
	__type(value, struct es_ct_overload);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ct_overload SEC(".maps");

/*
 * FW_RULE_STATE_COUNT: live flows per firewall rule slot (max_states). The
 * firewall increments on admission; the conntrack sweeper recomputes it from
 * the entries' rule_slot.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, ES_FW_RULE_SLOTS);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} fw_rule_state_count SEC(".maps");

/*
 * FW_RULE_SLOT: firewall rule_id → rule slot in the active bank, written by
 * the firewall's compile, so tc_conntrack can record which rule admitted a
 * flow from the rule_id in the XDP metadata.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ES_FW_RULE_SLOTS);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} fw_rule_slot SEC(".maps");

/*
 * The first 40 bytes of both entry layouts are identical; code that does not
 * touch the NAT address works on this view whatever the family.
 */
struct ct_entry_head {
	__u8 state;
	__u8 flags;
	__u8 nat_type;
	__u8 pad0;
	__u32 packets_fwd;
	__u32 packets_rev;
	__u32 bytes_fwd;
	__u32 bytes_rev;
	__u32 route_rule;
	__u64 first_seen_ns;
	__u64 last_seen_ns;
};

/* A normalized key plus the packet's position in it. */
struct ct_tuple {
	__u8 v6;
	__u8 pkt_is_src; /* the packet's source endpoint is the key's src */
	__u8 proto;
	__u8 pad;
	union {
		struct es_ct_key_v4 k4;
		struct es_ct_key_v6 k6;
	};
};

static __always_inline int ct_icmp_is_echo(__u8 proto, __u8 type)
{
	return proto == IPPROTO_ICMP ? type == 8 || type == 0 : type == 128 || type == 129;
}

static __always_inline int ct_icmp_is_echo_request(__u8 proto, __u8 type)
{
	return proto == IPPROTO_ICMP ? type == 8 : type == 128;
}

/* ICMP errors that carry the offending datagram (v4 3, 4, 5, 11, 12; v6 1-4). */
static __always_inline int ct_icmp_is_error(__u8 proto, __u8 type)
{
	if (proto == IPPROTO_ICMP)
		return type == 3 || type == 4 || type == 5 || type == 11 || type == 12;
	return proto == IPPROTO_ICMPV6_ && type >= 1 && type <= 4;
}

/*
 * Normalize in place: t (zeroed pads) holds the packet's source and
 * destination addresses as host-order words (k4, or k6 for IPv6); set ports
 * and protocol, and swap so that the lower (address words, port) endpoint is
 * src. In place so that callers short of stack need no address copies.
 */
static __always_inline void ct_tuple_norm(struct ct_tuple *t, __u16 sport, __u16 dport, __u8 proto,
					  int v6)
{
	int cmp = 0;

	t->v6 = !!v6;
	t->proto = proto;
	if (v6) {
#pragma unroll
		for (int i = 0; i < 4; i++)
			if (!cmp && t->k6.src_ip[i] != t->k6.dst_ip[i])
				cmp = t->k6.src_ip[i] < t->k6.dst_ip[i] ? -1 : 1;
	} else if (t->k4.src_ip != t->k4.dst_ip) {
		cmp = t->k4.src_ip < t->k4.dst_ip ? -1 : 1;
	}
	if (!cmp && sport != dport)
		cmp = sport < dport ? -1 : 1;
	t->pkt_is_src = cmp <= 0;
	if (v6) {
		if (cmp > 0) {
#pragma unroll
			for (int i = 0; i < 4; i++) {
				__u32 x = t->k6.src_ip[i];

				t->k6.src_ip[i] = t->k6.dst_ip[i];
				t->k6.dst_ip[i] = x;
			}
		}
		t->k6.src_port = cmp <= 0 ? sport : dport;
		t->k6.dst_port = cmp <= 0 ? dport : sport;
		t->k6.protocol = proto;
	} else {
		if (cmp > 0) {
			__u32 x = t->k4.src_ip;

			t->k4.src_ip = t->k4.dst_ip;
			t->k4.dst_ip = x;
		}
		t->k4.src_port = cmp <= 0 ? sport : dport;
		t->k4.dst_port = cmp <= 0 ? dport : sport;
		t->k4.protocol = proto;
	}
}

/*
 * Build the normalized key of endpoints (s, sport) → (d, dport): the lower
 * (address words, port) endpoint becomes src. Addresses are host-order words
 * (IPv4 in word 0).
 */
static __always_inline void ct_tuple_set(struct ct_tuple *t, const __u32 *s, const __u32 *d,
					 __u16 sport, __u16 dport, __u8 proto, int v6)
{
	__builtin_memset(t, 0, sizeof(*t));
	if (v6) {
#pragma unroll
		for (int i = 0; i < 4; i++) {
			t->k6.src_ip[i] = s[i];
			t->k6.dst_ip[i] = d[i];
		}
	} else {
		t->k4.src_ip = s[0];
		t->k4.dst_ip = d[0];
	}
	ct_tuple_norm(t, sport, dport, proto, v6);
}

static __always_inline __u32 ct_be32_word(const __u8 *a)
{
	return ((__u32)a[0] << 24) | ((__u32)a[1] << 16) | ((__u32)a[2] << 8) | a[3];
}

/*
 * The key of a parsed packet. 0, or -1 when it has no trackable L4 view
 * (fragments, other protocols). ICMP echo uses the identifier as both
 * ports; other ICMP types have ports 0.
 */
static __always_inline int ct_tuple_from_pkt(const struct es_pkt *pkt, struct ct_tuple *t)
{
	int v6 = !!(pkt->flags & ES_PKT_F_IPV6);
	__u16 sp = pkt->sport, dp = pkt->dport;

	if (!(pkt->flags & ES_PKT_F_L4))
		return -1;
	switch (pkt->proto) {
	case IPPROTO_TCP:
	case IPPROTO_UDP: break;
	case IPPROTO_ICMP:
		if (v6)
			return -1;
		sp = dp = ct_icmp_is_echo(IPPROTO_ICMP, pkt->icmp_type) ? pkt->icmp_id : 0;
		break;
	case IPPROTO_ICMPV6_:
		if (!v6)
			return -1;
		sp = dp = ct_icmp_is_echo(IPPROTO_ICMPV6_, pkt->icmp_type) ? pkt->icmp_id : 0;
		break;
	default: return -1;
	}
	__builtin_memset(t, 0, sizeof(*t));
	if (v6) {
		es_addr_words(t->k6.src_ip, pkt->src, 1);
		es_addr_words(t->k6.dst_ip, pkt->dst, 1);
	} else {
		t->k4.src_ip = ct_be32_word(pkt->src + 12);
		t->k4.dst_ip = ct_be32_word(pkt->dst + 12);
	}
	ct_tuple_norm(t, sp, dp, pkt->proto, v6);
	return 0;
}

/*
 * The key of the datagram embedded in an ICMP error (the flow the error is
 * about). Keys are normalized, so the embedded packet's direction does not
 * matter. 0, or -1 when the embedded headers are missing or not trackable.
 */
static __always_inline int ct_tuple_from_icmp_error(void *data, void *data_end,
						    const struct es_pkt *pkt, struct ct_tuple *t)
{
	__u32 off = pkt->l4_off, l4;
	__u16 sp = 0, dp = 0;
	__u8 proto, *p;
	int v6 = !!(pkt->flags & ES_PKT_F_IPV6);

	if (off > ES_MAX_L4_OFF)
		return -1;
	__builtin_memset(t, 0, sizeof(*t));
	off += 8; /* ICMP header */
	p = data + off;
	if (!v6) {
		__u32 ihl;

		if (!ES_FITS(data, data_end, off, 20))
			return -1;
		ihl = (p[0] & 0x0f) * 4;
		if ((p[0] >> 4) != 4 || ihl < 20)
			return -1;
		proto = p[9];
		t->k4.src_ip = ct_be32_word(p + 12);
		t->k4.dst_ip = ct_be32_word(p + 16);
		l4 = off + ihl;
	} else {
		if (!ES_FITS(data, data_end, off, 40))
			return -1;
		if ((p[0] >> 4) != 6)
			return -1;
		proto = p[6];
#pragma unroll
		for (int i = 0; i < 4; i++) {
			t->k6.src_ip[i] = ct_be32_word(p + 8 + 4 * i);
			t->k6.dst_ip[i] = ct_be32_word(p + 24 + 4 * i);
		}
		l4 = off + 40;
	}
	if (l4 > ES_MAX_L4_OFF + 8 + 60)
		return -1;
	barrier_var(l4);
	p = data + l4;
	if (!ES_FITS(data, data_end, l4, 8))
		return -1;
	if (proto == IPPROTO_TCP || proto == IPPROTO_UDP) {
		sp = ((__u16)p[0] << 8) | p[1];
		dp = ((__u16)p[2] << 8) | p[3];
	} else if (proto == (v6 ? IPPROTO_ICMPV6_ : IPPROTO_ICMP)) {
		if (ct_icmp_is_echo(proto, p[0]))
			sp = dp = ((__u16)p[4] << 8) | p[5];
	} else {
		return -1;
	}
	ct_tuple_norm(t, sp, dp, proto, v6);
	return 0;
}

static __always_inline struct ct_entry_head *ct_lookup(const struct ct_tuple *t)
{
	if (t->v6)
		return bpf_map_lookup_elem(&ct_table_v6, &t->k6);
	return bpf_map_lookup_elem(&ct_table_v4, &t->k4);
}

static __always_inline void ct_delete(const struct ct_tuple *t)
{
	if (t->v6)
		bpf_map_delete_elem(&ct_table_v6, &t->k6);
	else
		bpf_map_delete_elem(&ct_table_v4, &t->k4);
}

static __always_inline struct es_ct_config *ct_config_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&ct_config, &zero);
}

/* Not idle past its timeout at `now`. */
static __always_inline int ct_live(const struct es_ct_config *c, const struct ct_entry_head *e,
				   __u8 proto, __u64 now)
{
	return es_ct_is_live(c, proto, e->state, e->last_seen_ns, now);
}

/* Is the packet of tuple t travelling in the flow's original direction? */
static __always_inline int ct_is_orig(const struct ct_entry_head *e, const struct ct_tuple *t)
{
	return !!t->pkt_is_src == !!(e->flags & ES_CT_F_ORIG_IS_SRC);
}

static __always_inline __u8 ct_state_bit(__u8 state)
{
	switch (state) {
	case ES_CT_NEW: return ES_CT_MASK_NEW;
	case ES_CT_ESTABLISHED: return ES_CT_MASK_ESTABLISHED;
	case ES_CT_RELATED: return ES_CT_MASK_RELATED;
	case ES_CT_INVALID: return ES_CT_MASK_INVALID;
	default: return 0;
	}
}

/* Result of ct_classify(). */
struct ct_verdict {
	__u8 state;	/* ES_CT_NEW, _ESTABLISHED, _RELATED, _INVALID, or ES_CT_UNKNOWN */
	__u8 fast;	/* established, related or reply traffic: skip the rule scan */
	__u8 has_entry; /* a live entry exists (connection limits apply only without) */
	__u8 pad;
};

/*
 * The XDP firewall's view of a packet (network.md §2.2 step 4). Fast path for
 * ESTABLISHED/RELATED entries and for the reply direction of any live entry;
 * otherwise: original direction of SYN_SENT/SYN_RECV or an unanswered
 * UDP/ICMP flow → NEW, of a closing flow → ESTABLISHED (a fresh SYN on a
 * TIME_WAIT entry reuses the tuple: NEW); no entry: pure SYN, UDP, non-error
 * ICMP → NEW, other TCP → INVALID, an ICMP error about a tracked flow →
 * RELATED (fast path), about none → INVALID. Conntrack off → UNKNOWN.
 */
static __always_inline void ct_classify_in(void *data, void *data_end, const struct es_pkt *pkt,
					   struct ct_verdict *v, struct ct_tuple *tp)
{
	struct es_ct_config *c = ct_config_get();
	struct ct_entry_head *e;
	__u64 now;
#define t (*tp)

	*v = (struct ct_verdict){.state = ES_CT_UNKNOWN};
	if (!c || !c->enabled || ct_tuple_from_pkt(pkt, &t))
		return;
	now = bpf_ktime_get_boot_ns();
	e = ct_lookup(&t);
	if (e && ct_live(c, e, t.proto, now)) {
		__u8 st = e->state;

		v->has_entry = 1;
		if (st == ES_CT_ESTABLISHED || st == ES_CT_RELATED) {
			v->state = st;
			v->fast = 1;
		} else if (!ct_is_orig(e, &t)) {
			v->state = ES_CT_ESTABLISHED;
			v->fast = 1;
		} else if (st == ES_CT_FIN_WAIT || st == ES_CT_CLOSE_WAIT ||
			   st == ES_CT_TIME_WAIT) {
			if (st == ES_CT_TIME_WAIT && t.proto == IPPROTO_TCP &&
			    (pkt->tcp_flags & (TCP_F_SYN | TCP_F_ACK | TCP_F_RST)) == TCP_F_SYN) {
				v->state = ES_CT_NEW;
				v->has_entry = 0;
			} else {
				v->state = ES_CT_ESTABLISHED;
			}
		} else {
			v->state = ES_CT_NEW; /* SYN_SENT, SYN_RECV, unanswered UDP/ICMP */
		}
		return;
	}
	switch (t.proto) {
	case IPPROTO_TCP:
		v->state = (pkt->tcp_flags & (TCP_F_SYN | TCP_F_ACK | TCP_F_RST)) == TCP_F_SYN
			       ? ES_CT_NEW
			       : ES_CT_INVALID;
		return;
	case IPPROTO_UDP: v->state = ES_CT_NEW; return;
	default: break;
	}
	if (!ct_icmp_is_error(pkt->proto, pkt->icmp_type)) {
		v->state = ES_CT_NEW;
		return;
	}
	v->state = ES_CT_INVALID;
	if (ct_tuple_from_icmp_error(data, data_end, pkt, &t))
		return;
	e = ct_lookup(&t);
	if (e && ct_live(c, e, t.proto, now)) {
		v->state = ES_CT_RELATED;
		v->fast = 1;
		v->has_entry = 1;
	}
#undef t
}

/*
 * ct_classify_in with the key on the stack. Callers short of stack (the XDP
 * firewall calls it below its classifier's frame) pass per-CPU scratch to
 * ct_classify_in instead.
 */
static __always_inline void ct_classify(void *data, void *data_end, const struct es_pkt *pkt,
					struct ct_verdict *v)
{
	struct ct_tuple t;

	ct_classify_in(data, data_end, pkt, v, &t);
}

/* A live entry for this packet's flow exists (the DDoS ACK-flood check). */
static __always_inline int ct_has_live_entry(const struct es_pkt *pkt)
{
	struct es_ct_config *c = ct_config_get();
	struct ct_entry_head *e;
	struct ct_tuple t;

	if (!c || !c->enabled || ct_tuple_from_pkt(pkt, &t))
		return 0;
	e = ct_lookup(&t);
	return e && ct_live(c, e, t.proto, bpf_ktime_get_boot_ns());
}

#endif /* ES_CT_H */
