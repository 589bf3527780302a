// SPDX-License-Identifier: AGPL-3.0-only
/*
 * tc_nat_ingress (ingress, priority 3: DNAT, port forward, redirect, 1:1 in,
 * un-SNAT of replies) and tc_nat_egress (egress, priority 1: SNAT,
 * masquerade, 1:1 out, un-DNAT of replies), network.md §4.2.
 *
 * A packet's wire tuple is looked up in NAT_SESSIONS first; a hit carries
 * the rewrite. Otherwise the first matching rule (by priority) of the hook's
 * list creates the original and the reply session (the reply one first, with
 * BPF_NOEXIST, which is what claims an SNAT port), the packet is rewritten and
 * the conntrack entry of its wire tuple annotated. Checksums are updated
 * incrementally: the pseudo-header for TCP, UDP and ICMPv6; a zero IPv4 UDP
 * checksum stays zero (BPF_F_MARK_MANGLED_0).
 */
#include "kernel/bpf/es_bpf.h"
#include "kernel/bpf/parse.h"
#include "kernel/bpf/ct.h"
#include "abi/nat.h"

char LICENSE[] SEC("license") = "GPL";

#define NAT_PULL_LEN 128

/* Rule arrays: two banks each; nat_rule_count[list] holds count | active bank. */
enum { NAT_L_DNAT4 = 0, NAT_L_SNAT4, NAT_L_DNAT6, NAT_L_SNAT6, NAT_L__COUNT };

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * ES_NAT_MAX_RULES);
	__type(key, __u32);
	__type(value, struct es_nat_rule);
} nat_dnat_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * ES_NAT_MAX_RULES);
	__type(key, __u32);
	__type(value, struct es_nat_rule);
} nat_snat_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * ES_NAT_MAX_RULES6);
	__type(key, __u32);
	__type(value, struct es_nat_rule_v6);
} nat_dnat_rules_v6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * ES_NAT_MAX_RULES6);
	__type(key, __u32);
	__type(value, struct es_nat_rule_v6);
} nat_snat_rules_v6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NAT_L__COUNT);
	__type(key, __u32);
	__type(value, __u32);
} nat_rule_count SEC(".maps");

/* Shared by both programs and the agent; pinned so NAT flows survive a restart. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, ES_NAT_SESSIONS_MAX);
	__type(key, struct es_nat_key);
	__type(value, struct es_nat_session);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nat_sessions SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ES_NAT_IFADDR_MAX);
	__type(key, __u32);
	__type(value, struct es_nat_ifaddr);
} nat_ifaddr SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ES_NAT_M__SLOTS);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nat_metrics SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct es_pkt);
} nat_pkt SEC(".maps");

static __always_inline void nat_metric(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&nat_metrics, &idx);

	if (v)
		*v += 1;
}

static __always_inline int nat_dnat_family(__u8 t)
{
	return t == ES_NAT_T_DNAT || t == ES_NAT_T_REDIRECT || t == ES_NAT_T_ONE_TO_ONE;
}

/* ---- rule matching ---------------------------------------------------------------- */

struct nat_match {
	__u32 base, count, ifindex;
	__u32 src[4], dst[4]; /* host-order words */
	__u16 dport;
	__u8 proto, has_ports;
	__u32 list;
	__s32 found; /* index in the rule array, or -1 */
};

static __always_inline int nat_masked_eq(const __u32 *a, const __u32 *ip, const __u32 *mask,
					 int words)
{
#pragma unroll
	for (int i = 0; i < 4; i++)
		if (i < words && (a[i] & mask[i]) != ip[i])
			return 0;
	return 1;
}

/* The fields after the addresses sit at the same place relative to them. */
#define NAT_MATCH_TAIL(r, m)                                                                       \
	(!((r)->nat_interface && (r)->nat_interface != (m)->ifindex) &&                            \
	 !(((r)->match_flags & ES_NAT_M_PROTO) && (r)->match_protocol != (m)->proto) &&            \
	 !(((r)->match_flags & ES_NAT_M_DPORT) &&                                                  \
	   (!(m)->has_ports || (m)->dport < (r)->match_dst_port_start ||                           \
	    (m)->dport > (r)->match_dst_port_end)))

static long nat_match_v4(__u32 i, void *arg)
{
	struct nat_match *m = arg;
	__u32 k = m->base + i;
	struct es_nat_rule *r;

	if (i >= m->count)
		return 1;
	r = bpf_map_lookup_elem(
	    m->list == NAT_L_DNAT4 ? (void *)&nat_dnat_rules : (void *)&nat_snat_rules, &k);
	if (!r)
		return 1;
	if ((r->match_flags & ES_NAT_M_SRC) && (m->src[0] & r->match_src_mask) != r->match_src_ip)
		return 0;
	if ((r->match_flags & ES_NAT_M_DST) && (m->dst[0] & r->match_dst_mask) != r->match_dst_ip)
		return 0;
	if (!NAT_MATCH_TAIL(r, m))
		return 0;
	m->found = (__s32)k;
	return 1;
}

static long nat_match_v6(__u32 i, void *arg)
{
	struct nat_match *m = arg;
	__u32 k = m->base + i;
	struct es_nat_rule_v6 *r;

	if (i >= m->count)
		return 1;
	r = bpf_map_lookup_elem(
	    m->list == NAT_L_DNAT6 ? (void *)&nat_dnat_rules_v6 : (void *)&nat_snat_rules_v6, &k);
	if (!r)
		return 1;
	if ((r->match_flags & ES_NAT_M_SRC) &&
	    !nat_masked_eq(m->src, r->match_src_ip, r->match_src_mask, 4))
		return 0;
	if ((r->match_flags & ES_NAT_M_DST) &&
	    !nat_masked_eq(m->dst, r->match_dst_ip, r->match_dst_mask, 4))
		return 0;
	if (!NAT_MATCH_TAIL(r, m))
		return 0;
	m->found = (__s32)k;
	return 1;
}

/* A rule reduced to what translation needs, whatever the family. */
struct nat_action {
	__u8 type;
	__u8 pad[3];
	__u8 addr[16]; /* network order, IPv4 mapped; zero: the interface's address */
	__u16 port_start, port_end, match_port_start;
	__u16 pad2;
	__u32 rule_id;
};

static __always_inline void nat_words_to_addr(__u8 *out, const __u32 *w, int v6)
{
	if (!v6) {
		es_addr_v4mapped(out, bpf_htonl(w[0]));
		return;
	}
#pragma unroll
	for (int i = 0; i < 4; i++) {
		__u32 be = bpf_htonl(w[i]);

		__builtin_memcpy(out + 4 * i, &be, 4);
	}
}

/* First matching rule of the hook's list; 0 with a filled action, or -1. */
static __always_inline int nat_find_rule(const struct es_pkt *pkt, __u32 ifindex, int ingress,
					 struct nat_action *a)
{
	int v6 = !!(pkt->flags & ES_PKT_F_IPV6);
	struct nat_match m = {.ifindex = ifindex, .proto = pkt->proto, .found = -1};
	__u32 *cw, word;

	m.list = v6 ? (ingress ? NAT_L_DNAT6 : NAT_L_SNAT6) : (ingress ? NAT_L_DNAT4 : NAT_L_SNAT4);
	cw = bpf_map_lookup_elem(&nat_rule_count, &m.list);
	if (!cw)
		return -1;
	word = *cw;
	m.count = word & ES_NAT_COUNT_MASK;
	if (!m.count)
		return -1;
	m.base = (word & ES_NAT_BANK_BIT) ? (v6 ? ES_NAT_MAX_RULES6 : ES_NAT_MAX_RULES) : 0;
	m.has_ports = pkt->proto == IPPROTO_TCP || pkt->proto == IPPROTO_UDP;
	m.dport = pkt->dport;
	es_addr_words(m.src, pkt->src, v6);
	es_addr_words(m.dst, pkt->dst, v6);
	if (v6) {
		struct es_nat_rule_v6 *r;
		__u32 k;

		bpf_loop(ES_NAT_MAX_RULES6, nat_match_v6, &m, 0);
		if (m.found < 0)
			return -1;
		k = (__u32)m.found;
		r = bpf_map_lookup_elem(
		    ingress ? (void *)&nat_dnat_rules_v6 : (void *)&nat_snat_rules_v6, &k);
		if (!r)
			return -1;
		a->type = r->nat_type;
		a->port_start = r->nat_port_start;
		a->port_end = r->nat_port_end;
		a->match_port_start = r->match_dst_port_start;
		a->rule_id = r->rule_id;
		nat_words_to_addr(a->addr, r->nat_addr, 1);
	} else {
		struct es_nat_rule *r;
		__u32 k;

		bpf_loop(ES_NAT_MAX_RULES, nat_match_v4, &m, 0);
		if (m.found < 0)
			return -1;
		k = (__u32)m.found;
		r = bpf_map_lookup_elem(ingress ? (void *)&nat_dnat_rules : (void *)&nat_snat_rules,
					&k);
		if (!r)
			return -1;
		a->type = r->nat_type;
		a->port_start = r->nat_port_start;
		a->port_end = r->nat_port_end;
		a->match_port_start = r->match_dst_port_start;
		a->rule_id = r->rule_id;
		if (r->nat_addr)
			es_addr_v4mapped(a->addr, bpf_htonl(r->nat_addr));
		else
			__builtin_memset(a->addr, 0, 16);
	}
	return 0;
}

/* The interface's primary address of the packet's family into out; 0 or -1. */
static __always_inline int nat_ifaddr_get(__u32 ifindex, int v6, __u8 *out)
{
	struct es_nat_ifaddr *ia = bpf_map_lookup_elem(&nat_ifaddr, &ifindex);

	if (!ia)
		return -1;
	if (!v6) {
		if (!ia->v4)
			return -1;
		es_addr_v4mapped(out, bpf_htonl(ia->v4));
		return 0;
	}
	if (!(ia->v6[0] | ia->v6[1] | ia->v6[2] | ia->v6[3]))
		return -1;
	nat_words_to_addr(out, ia->v6, 1);
	return 0;
}

static __always_inline int nat_addr_eq(const __u8 *a, const __u8 *b)
{
	const __u32 *x = (const __u32 *)a, *y = (const __u32 *)b;

	return x[0] == y[0] && x[1] == y[1] && x[2] == y[2] && x[3] == y[3];
}

static __always_inline int nat_addr_zero(const __u8 *a)
{
	const __u32 *w = (const __u32 *)a;

	return !(w[0] | w[1] | w[2] | w[3]);
}

/* ---- rewriting ---------------------------------------------------------------------- */

static __always_inline int nat_csum_off(const struct es_pkt *pkt)
{
	switch (pkt->proto) {
	case IPPROTO_TCP: return pkt->l4_off + 16;
	case IPPROTO_UDP: return pkt->l4_off + 6;
	default: return pkt->l4_off + 2; /* ICMP, ICMPv6 */
	}
}

/* Replace the address at off (old in pkt, new in na) with checksum updates. */
static __always_inline int nat_set_addr(struct __sk_buff *skb, const struct es_pkt *pkt, __u32 off,
					const __u8 *old, const __u8 *na)
{
	int v6 = !!(pkt->flags & ES_PKT_F_IPV6);
	__u32 csum = nat_csum_off(pkt);
	__u64 l4f = pkt->proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;

	if (!v6) {
		__u32 o = *(const __u32 *)(old + 12), n = *(const __u32 *)(na + 12);

		/* ICMPv4 has no pseudo-header: its checksum ignores addresses. */
		if (pkt->proto != IPPROTO_ICMP &&
		    bpf_l4_csum_replace(skb, csum, o, n, BPF_F_PSEUDO_HDR | 4 | l4f))
			return -1;
		if (bpf_l3_csum_replace(skb, pkt->l3_off + 10, o, n, 4))
			return -1;
		return bpf_skb_store_bytes(skb, off, &n, 4, 0) ? -1 : 0;
	} else {
		__u8 o[16], n[16];
		__s64 diff;

		__builtin_memcpy(o, old, 16);
		__builtin_memcpy(n, na, 16);
		diff = bpf_csum_diff((__be32 *)o, 16, (__be32 *)n, 16, 0);
		if (bpf_l4_csum_replace(skb, csum, 0, diff, BPF_F_PSEUDO_HDR | l4f))
			return -1;
		return bpf_skb_store_bytes(skb, off, n, 16, 0) ? -1 : 0;
	}
}

static __always_inline int nat_set_port(struct __sk_buff *skb, const struct es_pkt *pkt, __u32 off,
					__u16 old, __u16 nw)
{
	__u16 o = bpf_htons(old), n = bpf_htons(nw);
	__u64 l4f = pkt->proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;

	if (bpf_l4_csum_replace(skb, nat_csum_off(pkt), o, n, 2 | l4f))
		return -1;
	return bpf_skb_store_bytes(skb, off, &n, 2, 0) ? -1 : 0;
}

/* Rewrite the packet per session s. 0 or -1 (checksum/store helper failed). */
static __always_inline int nat_rewrite(struct __sk_buff *skb, const struct es_pkt *pkt,
				       const struct es_nat_session *s)
{
	int v6 = !!(pkt->flags & ES_PKT_F_IPV6);
	__u32 l3 = pkt->l3_off, l4 = pkt->l4_off;

	if (l3 > ES_MAX_L3_OFF || l4 > ES_MAX_L4_OFF)
		return -1;
	if (!nat_addr_eq(pkt->src, s->new_src) &&
	    nat_set_addr(skb, pkt, l3 + (v6 ? 8 : 12), pkt->src, s->new_src))
		return -1;
	if (!nat_addr_eq(pkt->dst, s->new_dst) &&
	    nat_set_addr(skb, pkt, l3 + (v6 ? 24 : 16), pkt->dst, s->new_dst))
		return -1;
	if (pkt->proto == IPPROTO_TCP || pkt->proto == IPPROTO_UDP) {
		if (s->new_sport != pkt->sport &&
		    nat_set_port(skb, pkt, l4, pkt->sport, s->new_sport))
			return -1;
		if (s->new_dport != pkt->dport &&
		    nat_set_port(skb, pkt, l4 + 2, pkt->dport, s->new_dport))
			return -1;
	} else if (s->new_sport != pkt->icmp_id) {
		/* ICMP echo: the identifier, covered by the ICMP checksum only. */
		__u16 o = bpf_htons(pkt->icmp_id), n = bpf_htons(s->new_sport);

		if (bpf_l4_csum_replace(skb, l4 + 2, o, n, 2) ||
		    bpf_skb_store_bytes(skb, l4 + 4, &n, 2, 0))
			return -1;
	}
	return 0;
}

/* ---- sessions ---------------------------------------------------------------------- */

static __always_inline void nat_key_of(const struct es_pkt *pkt, struct es_nat_key *k)
{
	__builtin_memset(k, 0, sizeof(*k));
	__builtin_memcpy(k->src, pkt->src, 16);
	__builtin_memcpy(k->dst, pkt->dst, 16);
	k->proto = pkt->proto;
	if (pkt->proto == IPPROTO_TCP || pkt->proto == IPPROTO_UDP) {
		k->sport = pkt->sport;
		k->dport = pkt->dport;
	} else {
		k->sport = k->dport = pkt->icmp_id;
	}
}

static __always_inline void nat_count_applied(__u8 type)
{
	if (type == ES_NAT_T_MASQUERADE)
		nat_metric(ES_NAT_M_MASQ_APPLIED);
	else if (type == ES_NAT_T_SNAT)
		nat_metric(ES_NAT_M_SNAT_APPLIED);
	else
		nat_metric(ES_NAT_M_DNAT_APPLIED);
}

static __always_inline __u32 nat_hash(const struct es_nat_key *k)
{
	const __u32 *s = (const __u32 *)k->src, *d = (const __u32 *)k->dst;
	__u32 h = 0x9e3779b9;

#pragma unroll
	for (int i = 0; i < 4; i++) {
		h ^= s[i];
		h *= 0x85ebca6b;
		h ^= d[i];
		h *= 0xc2b2ae35;
	}
	h ^= ((__u32)k->sport << 16) | k->dport;
	h *= 0x27d4eb2f;
	return h ^ (h >> 15);
}

/* Note on the CT entry of the wire tuple that this flow is translated. */
static __always_inline void nat_annotate(const struct es_pkt *pkt, const struct es_nat_session *s,
					 int snat)
{
	struct ct_entry_head *e;
	struct ct_tuple t;
	__u32 w[4];
	int v6 = !!(pkt->flags & ES_PKT_F_IPV6);

	if (ct_tuple_from_pkt(pkt, &t))
		return;
	/* Per family, so the verifier sees which table's value size applies. */
	e = v6 ? bpf_map_lookup_elem(&ct_table_v6, &t.k6)
	       : bpf_map_lookup_elem(&ct_table_v4, &t.k4);
	if (!e)
		return;
	e->nat_type = snat ? ES_CT_NAT_SNAT : ES_CT_NAT_DNAT;
	e->flags |= snat ? ES_CT_F_NAT_SRC : ES_CT_F_NAT_DST;
	es_addr_words(w, snat ? s->new_src : s->new_dst, v6);
	if (v6) {
		struct es_ct_entry_v6 *e6 = (void *)e;

		__builtin_memcpy(e6->nat_addr, w, 16);
		e6->nat_port = snat ? s->new_sport : s->new_dport;
	} else {
		struct es_ct_entry_v4 *e4 = (void *)e;

		e4->nat_addr = w[0];
		e4->nat_port = snat ? s->new_sport : s->new_dport;
	}
}

/*
 * Create the sessions of a new translated flow. Returns 0, or -1 when no
 * reply tuple is free (port_alloc_fail) or the table refused.
 */
static __always_inline int nat_create(const struct es_pkt *pkt, const struct es_nat_key *k,
				      struct es_nat_session *o, const struct nat_action *a,
				      int ingress, __u64 now)
{
	struct es_nat_session rs = {};
	struct es_nat_key rk = {};
	__u32 size = 0, h = 0;
	int pool = !ingress && a->port_start;
	/* The hook that applies a session follows from its type and direction:
	 * the outbound half of a 1:1 mapping is recorded as SNAT. */
	__u8 type = !ingress && a->type == ES_NAT_T_ONE_TO_ONE ? ES_NAT_T_SNAT : a->type;

	o->dir = ES_NAT_DIR_ORIG;
	o->nat_type = type;
	o->last_seen_ns = now;
	/* The reply comes from the new destination to the new source. */
	__builtin_memcpy(rk.src, o->new_dst, 16);
	__builtin_memcpy(rk.dst, o->new_src, 16);
	rk.proto = k->proto;
	rk.sport = o->new_dport;
	__builtin_memcpy(rs.new_src, k->dst, 16);
	__builtin_memcpy(rs.new_dst, k->src, 16);
	rs.new_sport = k->dport;
	rs.new_dport = k->sport;
	rs.nat_type = type;
	rs.dir = ES_NAT_DIR_REPLY;
	rs.last_seen_ns = now;
	if (pool) {
		size = (__u32)a->port_end - a->port_start + 1;
		h = nat_hash(k);
	}
#pragma unroll
	for (int i = 0; i < ES_NAT_PORT_PROBES; i++) {
		if (pool) {
			o->new_sport = (__u16)(a->port_start + (h + i) % size);
			if (pkt->proto != IPPROTO_TCP && pkt->proto != IPPROTO_UDP)
				o->new_dport = o->new_sport; /* ICMP: one identifier */
		}
		rk.dport = o->new_sport;
		if (pkt->proto != IPPROTO_TCP && pkt->proto != IPPROTO_UDP)
			rk.sport = rk.dport;
		if (bpf_map_update_elem(&nat_sessions, &rk, &rs, BPF_NOEXIST) == 0) {
			if (bpf_map_update_elem(&nat_sessions, k, o, BPF_ANY)) {
				bpf_map_delete_elem(&nat_sessions, &rk);
				return -1;
			}
			return 0;
		}
		if (!pool)
			break;
	}
	return -1;
}

/* Translation of a packet matching rule a: fill session o (new tuple). 0 or -1. */
static __always_inline int nat_translate(const struct es_pkt *pkt, const struct es_nat_key *k,
					 const struct nat_action *a, __u32 ifindex, int ingress,
					 struct es_nat_session *o)
{
	int v6 = !!(pkt->flags & ES_PKT_F_IPV6);
	__u8 addr[16];

	__builtin_memcpy(o->new_src, k->src, 16);
	__builtin_memcpy(o->new_dst, k->dst, 16);
	o->new_sport = k->sport;
	o->new_dport = k->dport;
	if (a->type == ES_NAT_T_REDIRECT || a->type == ES_NAT_T_MASQUERADE) {
		if (nat_ifaddr_get(ifindex, v6, addr))
			return -1;
	} else {
		if (nat_addr_zero(a->addr))
			return -1;
		__builtin_memcpy(addr, a->addr, 16);
	}
	if (ingress) {
		__builtin_memcpy(o->new_dst, addr, 16);
		if (pkt->proto == IPPROTO_TCP || pkt->proto == IPPROTO_UDP) {
			if (a->port_start && a->port_start == a->port_end)
				o->new_dport = a->port_start;
			else if (a->port_start && a->port_start < a->port_end)
				o->new_dport = a->port_start + (k->dport - a->match_port_start);
		}
	} else {
		__builtin_memcpy(o->new_src, addr, 16);
	}
	return 0;
}

/* ---- the programs ---------------------------------------------------------------------- */

static __always_inline int nat_main(struct __sk_buff *skb, int ingress)
{
	__u32 prog = ingress ? ES_PROG_TC_NAT_INGRESS : ES_PROG_TC_NAT_EGRESS, zero = 0;
	struct es_nat_session *s, ns;
	struct es_nat_key k, rk;
	struct nat_action a = {};
	struct es_pkt *pkt;
	void *data, *data_end;
	__u64 now;
	int r;

	nat_metric(ES_NAT_M_TOTAL_SEEN);
	if (!es_feature_on(ES_FEAT_NAT)) {
		es_count(prog, ES_R_DISABLED);
		return TC_ACT_UNSPEC;
	}
	pkt = bpf_map_lookup_elem(&nat_pkt, &zero);
	if (!pkt) {
		nat_metric(ES_NAT_M_ERRORS);
		es_count(prog, ES_R_INTERNAL_ERROR);
		return TC_ACT_UNSPEC;
	}
	es_tc_linearize(skb, NAT_PULL_LEN, &data, &data_end);
	r = es_parse(data, data_end, pkt);
	if (r) {
		if (es_reason_is_error(r))
			nat_metric(ES_NAT_M_ERRORS);
		es_count(prog, r);
		return TC_ACT_UNSPEC;
	}
	if (!(pkt->flags & ES_PKT_F_L4) ||
	    (pkt->proto != IPPROTO_TCP && pkt->proto != IPPROTO_UDP &&
	     !((pkt->proto == IPPROTO_ICMP || pkt->proto == IPPROTO_ICMPV6_) &&
	       ct_icmp_is_echo(pkt->proto, pkt->icmp_type)))) {
		es_count(prog, ES_R_NAT_UNTRANSLATABLE);
		return TC_ACT_UNSPEC;
	}
	now = bpf_ktime_get_boot_ns();
	nat_key_of(pkt, &k);

	s = bpf_map_lookup_elem(&nat_sessions, &k);
	if (s) {
		int here = nat_dnat_family(s->nat_type) == (s->dir == ES_NAT_DIR_ORIG) ? ingress
										       : !ingress;

		if (!ingress)
			skb->cb[0] = ES_TC_CB_NAT_FLOW;
		if (!here) {
			es_count(prog, ES_R_PASS);
			return TC_ACT_UNSPEC;
		}
		ns = *s;
		s->last_seen_ns = now;
		if (nat_rewrite(skb, pkt, &ns)) {
			nat_metric(ES_NAT_M_ERRORS);
			es_count(prog, ES_R_INTERNAL_ERROR);
			return TC_ACT_UNSPEC;
		}
		nat_count_applied(ns.nat_type);
		es_count(prog, ES_R_NAT_TRANSLATED);
		return TC_ACT_UNSPEC;
	}
	if (!ingress) {
		/* Post-translation packets of a flow NAT changed elsewhere (a DNATed
		 * flow leaving towards its server): conntrack egress must see them. */
		__builtin_memcpy(rk.src, k.dst, 16);
		__builtin_memcpy(rk.dst, k.src, 16);
		rk.sport = k.dport;
		rk.dport = k.sport;
		rk.proto = k.proto;
		__builtin_memset(rk.pad, 0, sizeof(rk.pad));
		if (bpf_map_lookup_elem(&nat_sessions, &rk))
			skb->cb[0] = ES_TC_CB_NAT_FLOW;
	}
	if (nat_find_rule(pkt, skb->ifindex, ingress, &a)) {
		es_count(prog, ES_R_PASS);
		return TC_ACT_UNSPEC;
	}
	__builtin_memset(&ns, 0, sizeof(ns));
	if (nat_translate(pkt, &k, &a, skb->ifindex, ingress, &ns)) {
		/* Masquerade/redirect on an interface without an address yet. */
		nat_metric(ES_NAT_M_ERRORS);
		es_count(prog, ES_R_NAT_NO_ADDRESS);
		return TC_ACT_UNSPEC;
	}
	if (nat_create(pkt, &k, &ns, &a, ingress, now)) {
		nat_metric(ES_NAT_M_PORT_ALLOC_FAIL);
		es_count(prog, ES_R_NAT_PORT_EXHAUSTED);
		return TC_ACT_SHOT;
	}
	if (!ingress)
		skb->cb[0] = ES_TC_CB_NAT_FLOW;
	nat_annotate(pkt, &ns, !ingress);
	if (nat_rewrite(skb, pkt, &ns)) {
		nat_metric(ES_NAT_M_ERRORS);
		es_count(prog, ES_R_INTERNAL_ERROR);
		return TC_ACT_UNSPEC;
	}
	nat_count_applied(ns.nat_type);
	es_count(prog, ES_R_NAT_TRANSLATED);
	return TC_ACT_UNSPEC;
}

SEC("tc")
int tc_nat_ingress(struct __sk_buff *skb)
{
	return nat_main(skb, 1);
}

SEC("tc")
int tc_nat_egress(struct __sk_buff *skb)
{
	return nat_main(skb, 0);
}
