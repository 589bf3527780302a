// SPDX-License-Identifier: AGPL-3.0-only
/*
 * tc_conntrack (ingress, priority 1) and tc_conntrack_egress (egress,
 * priority 2): the flow table of network.md §3.2, written from both
 * directions on the wire-side tuple (ingress before NAT, egress after it),
 * plus dup_to mirroring (ingress) and reply_to redirection (egress) of §2.7.
 * Both always return TC_ACT_UNSPEC so the rest of the chain runs, except
 * when reply_to redirects a packet.
 *
 * A packet forwarded between two agent interfaces is seen by the ingress of
 * one and the egress of the other. It is tracked once, at ingress, unless
 * NAT changed its tuple on the way (tc_nat_egress tells through skb->cb[0]):
 * then the egress tracks the translated tuple, which is what the far side's
 * XDP firewall will look up for the replies.
 */
#include "kernel/bpf/es_bpf.h"
#include "kernel/bpf/parse.h"
#include "kernel/bpf/ct.h"
#include "kernel/bpf/route.h"
#include "abi/xdp_meta.h"

char LICENSE[] SEC("license") = "GPL";

/* Bytes pulled into the linear area: enough for an ICMP error's quote. */
#define CT_PULL_LEN 192

/* CT_METRICS (network.md §3.2): per-CPU, summed by the agent. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ES_CT_M__COUNT);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ct_metrics SEC(".maps");

/* CT_REPLY_TO: flow key → where replies go (reply_to). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, ES_CT_REPLY_TO_MAX);
	__type(key, struct es_ct_key_v4);
	__type(value, struct es_ct_reply_to);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ct_reply_to_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, ES_CT_REPLY_TO_MAX);
	__type(key, struct es_ct_key_v6);
	__type(value, struct es_ct_reply_to);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ct_reply_to_v6 SEC(".maps");

/* Interfaces whose ingress runs tc_conntrack (agent-maintained). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
} ct_ifaces SEC(".maps");

/* Own MAC address per interface, for reply_to rewrites (agent-maintained). */
struct ct_mac {
	__u8 addr[6];
	__u8 pad[2];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct ct_mac);
} ct_if_mac SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct es_pkt);
} ct_pkt SEC(".maps");

union ct_entry {
	struct ct_entry_head h;
	struct es_ct_entry_v4 v4;
	struct es_ct_entry_v6 v6;
};

/* What tracking learnt about the packet, for reply_to. */
struct ct_seen {
	struct ct_entry_head *e; /* live entry after the update, or NULL */
	__u8 tracked;		 /* the tuple is valid */
	__u8 orig;		 /* packet in the original direction of e */
	__u8 pad[6];
};

static __always_inline void ct_metric(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&ct_metrics, &idx);

	if (v)
		*v += 1;
}

static __always_inline int is_pure_syn(__u8 f)
{
	return (f & (TCP_F_SYN | TCP_F_ACK | TCP_F_RST)) == TCP_F_SYN;
}

enum { CT_KEEP = 0, CT_REMOVE, CT_RENEW };

/* Apply one packet to an entry (the transition table of §3.2). */
static __always_inline int ct_advance(struct ct_entry_head *e, int orig, const struct es_pkt *pkt)
{
	__u8 f = pkt->tcp_flags, st = e->state;

	if (pkt->proto != IPPROTO_TCP) {
		if (st == ES_CT_NEW && !orig) {
			e->state = ES_CT_ESTABLISHED;
			e->flags |= ES_CT_F_SEEN_REPLY | ES_CT_F_ASSURED;
			ct_metric(ES_CT_M_ESTABLISHED);
		}
		return CT_KEEP;
	}
	if (f & TCP_F_RST)
		return CT_REMOVE;
	/* A fresh SYN on a closed-down tuple starts a new connection. */
	if (st == ES_CT_TIME_WAIT && is_pure_syn(f))
		return CT_RENEW;
	if (st == ES_CT_SYN_SENT && !orig &&
	    (f & (TCP_F_SYN | TCP_F_ACK)) == (TCP_F_SYN | TCP_F_ACK)) {
		st = ES_CT_SYN_RECV;
		e->flags |= ES_CT_F_SEEN_REPLY;
	} else if (st == ES_CT_SYN_RECV && orig && (f & (TCP_F_SYN | TCP_F_ACK)) == TCP_F_ACK) {
		st = ES_CT_ESTABLISHED;
		e->flags |= ES_CT_F_ASSURED;
		ct_metric(ES_CT_M_ESTABLISHED);
	}
	if (f & TCP_F_FIN) {
		if (st == ES_CT_ESTABLISHED)
			st = orig ? ES_CT_FIN_WAIT : ES_CT_CLOSE_WAIT;
		else if ((st == ES_CT_FIN_WAIT && !orig) || (st == ES_CT_CLOSE_WAIT && orig))
			st = ES_CT_TIME_WAIT;
	}
	e->state = st;
	return CT_KEEP;
}

static __always_inline void ct_account(struct ct_entry_head *e, int orig, __u32 segs, __u32 len,
				       __u64 now)
{
	e->last_seen_ns = now;
	if (orig) {
		__sync_fetch_and_add(&e->packets_fwd, segs);
		__sync_fetch_and_add(&e->bytes_fwd, len);
	} else {
		__sync_fetch_and_add(&e->packets_rev, segs);
		__sync_fetch_and_add(&e->bytes_rev, len);
	}
}

/* Record where replies of a new flow must go (reply_to, ingress only). */
static __always_inline int ct_store_reply_to(const struct ct_tuple *t, const struct es_pkt *pkt,
					     const struct es_xdp_meta *m, __u32 ifindex)
{
	struct es_ct_reply_to rt = {.ifindex = ifindex, .orig_is_src = t->pkt_is_src};
	struct es_route_target *tgt = es_route_target_get(m->rule_id);

	if (tgt && tgt->ifindex)
		rt.ifindex = tgt->ifindex;
	__builtin_memcpy(rt.mac, pkt->src_mac, 6);
	if (t->v6)
		return bpf_map_update_elem(&ct_reply_to_v6, &t->k6, &rt, BPF_ANY);
	return bpf_map_update_elem(&ct_reply_to_v4, &t->k4, &rt, BPF_ANY);
}

static __always_inline void ct_create(struct __sk_buff *skb, const struct ct_tuple *t,
				      const struct es_pkt *pkt, __u8 state, __u64 now,
				      const struct es_xdp_meta *m, __u32 segs)
{
	union ct_entry ent;
	__u16 slot = ES_CT_RULE_SLOT_NONE;
	int r;

	__builtin_memset(&ent, 0, sizeof(ent));
	ent.h.state = state;
	ent.h.flags = t->pkt_is_src ? ES_CT_F_ORIG_IS_SRC : 0;
	ent.h.first_seen_ns = now;
	ent.h.last_seen_ns = now;
	ent.h.packets_fwd = segs;
	ent.h.bytes_fwd = skb->len;
	if (m) {
		if (m->meta_flags & ES_META_F_NEW_FLOW) {
			__u32 id = m->rule_id, *s = bpf_map_lookup_elem(&fw_rule_slot, &id);

			if (s && *s < ES_FW_RULE_SLOTS)
				slot = (__u16)*s;
		}
		if ((m->meta_flags & ES_META_F_REPLY_TO) &&
		    ct_store_reply_to(t, pkt, m, skb->ifindex) == 0)
			ent.h.flags |= ES_CT_F_REPLY_TO;
		/* The rule's dup_to / route_to go on with the flow (one per rule). */
		if (m->meta_flags & (ES_META_F_DUP_TO | ES_META_F_ROUTE_TO)) {
			ent.h.route_rule = m->rule_id;
			ent.h.flags |=
			    m->meta_flags & ES_META_F_DUP_TO ? ES_CT_F_DUP_TO : ES_CT_F_ROUTE_TO;
		}
	}
	if (t->v6) {
		ent.v6.rule_slot = slot;
		r = bpf_map_update_elem(&ct_table_v6, &t->k6, &ent.v6, BPF_NOEXIST);
	} else {
		ent.v4.rule_slot = slot;
		r = bpf_map_update_elem(&ct_table_v4, &t->k4, &ent.v4, BPF_NOEXIST);
	}
	/* -EEXIST: another CPU created it first, which is just as good. */
	if (r == 0)
		ct_metric(ES_CT_M_NEW);
	else if (r != -17)
		ct_metric(ES_CT_M_ERRORS);
}

/*
 * Track one parsed packet. Returns the reason to count; fills `seen` for
 * reply_to.
 */
static __always_inline int ct_track(struct __sk_buff *skb, void *data, void *data_end,
				    const struct es_pkt *pkt, const struct es_ct_config *c,
				    const struct es_xdp_meta *m, struct ct_seen *seen)
{
	struct ct_entry_head *e;
	struct ct_tuple t;
	__u32 segs = skb->gso_segs ? skb->gso_segs : 1;
	__u64 now;
	int adv;

	if (ct_tuple_from_pkt(pkt, &t))
		return ES_R_CT_UNTRACKED;
	if (t.proto != IPPROTO_TCP && t.proto != IPPROTO_UDP &&
	    !ct_icmp_is_echo(pkt->proto, pkt->icmp_type)) {
		/* ICMP errors belong to the flow they quote: a hit, no state of their own. */
		if (!ct_icmp_is_error(pkt->proto, pkt->icmp_type) ||
		    ct_tuple_from_icmp_error(data, data_end, pkt, &t))
			return ES_R_CT_UNTRACKED;
		ct_metric(ES_CT_M_LOOKUPS);
		now = bpf_ktime_get_boot_ns();
		e = ct_lookup(&t);
		if (e && ct_live(c, e, t.proto, now))
			ct_metric(ES_CT_M_HITS);
		return ES_R_PASS;
	}
	seen->tracked = 1;
	ct_metric(ES_CT_M_LOOKUPS);
	now = bpf_ktime_get_boot_ns();
	e = ct_lookup(&t);
	if (e && !ct_live(c, e, t.proto, now)) {
		ct_delete(&t);
		e = NULL;
	}
	if (e) {
		ct_metric(ES_CT_M_HITS);
		seen->orig = ct_is_orig(e, &t);
		adv = ct_advance(e, seen->orig, pkt);
		if (adv == CT_KEEP) {
			ct_account(e, seen->orig, segs, skb->len, now);
			seen->e = e;
			return ES_R_PASS;
		}
		ct_delete(&t);
		if (adv == CT_REMOVE) {
			ct_metric(ES_CT_M_CLOSED);
			return ES_R_PASS;
		}
		/* CT_RENEW: fall through and create the new connection. */
	}
	if (t.proto == IPPROTO_TCP) {
		if (!is_pure_syn(pkt->tcp_flags)) {
			ct_metric(ES_CT_M_INVALID);
			return ES_R_CT_INVALID;
		}
		ct_create(skb, &t, pkt, ES_CT_SYN_SENT, now, m, segs);
	} else if (t.proto == IPPROTO_UDP || ct_icmp_is_echo_request(pkt->proto, pkt->icmp_type)) {
		ct_create(skb, &t, pkt, ES_CT_NEW, now, m, segs);
	} else {
		ct_metric(ES_CT_M_INVALID); /* an echo reply nobody asked for */
		return ES_R_CT_INVALID;
	}
	seen->orig = 1;
	seen->e = ct_lookup(&t);
	return ES_R_PASS;
}

/* The entry of a packet that was tracked elsewhere (reply_to still applies). */
static __always_inline void ct_peek(const struct es_pkt *pkt, struct ct_seen *seen)
{
	struct ct_tuple t;

	if (ct_tuple_from_pkt(pkt, &t))
		return;
	seen->e = ct_lookup(&t);
	if (seen->e)
		seen->orig = ct_is_orig(seen->e, &t);
}

/* reply_to: send the replies of a marked flow back where it came from. */
static __always_inline int ct_reply_to(struct __sk_buff *skb, const struct es_pkt *pkt,
				       const struct ct_seen *seen, int tracking)
{
	struct es_ct_reply_to *rt;
	struct ct_mac *own;
	struct ct_tuple t;
	__u32 ifx;

	if (ct_tuple_from_pkt(pkt, &t))
		return TC_ACT_UNSPEC;
	if (tracking && (!seen->e || !(seen->e->flags & ES_CT_F_REPLY_TO) || seen->orig))
		return TC_ACT_UNSPEC;
	rt = t.v6 ? bpf_map_lookup_elem(&ct_reply_to_v6, &t.k6)
		  : bpf_map_lookup_elem(&ct_reply_to_v4, &t.k4);
	if (!rt || !!rt->orig_is_src == !!t.pkt_is_src || rt->ifindex == skb->ifindex)
		return TC_ACT_UNSPEC;
	ifx = rt->ifindex;
	own = bpf_map_lookup_elem(&ct_if_mac, &ifx);
	if (!own)
		return TC_ACT_UNSPEC;
	if (bpf_skb_store_bytes(skb, 0, rt->mac, 6, 0) ||
	    bpf_skb_store_bytes(skb, 6, own->addr, 6, 0)) {
		ct_metric(ES_CT_M_ERRORS);
		return TC_ACT_UNSPEC;
	}
	return bpf_redirect(ifx, 0);
}

/*
 * The target of the rule whose route option (meta_flag: dup_to or route_to)
 * applies to this packet, or NULL. A packet that matched the rule carries it
 * in its metadata. The later packets of a flow the rule admitted take the
 * firewall's fast path and match no rule: the flow keeps the rule (as a pf
 * state keeps its route options), and its packets in the original direction
 * follow the option for as long as it lives.
 */
static __always_inline struct es_route_target *ct_route_target(const struct es_xdp_meta *m,
							       const struct ct_seen *seen,
							       __u8 meta_flag, __u8 ct_flag)
{
	if (m && (m->meta_flags & meta_flag))
		return es_route_target_get(m->rule_id);
	if (seen->e && seen->orig && (seen->e->flags & ct_flag))
		return es_route_target_get(seen->e->route_rule);
	return NULL;
}

/* dup_to: mirror to the rule's interface; the original goes on. */
static __always_inline void ct_dup_to(struct __sk_buff *skb, const struct es_xdp_meta *m,
				      const struct ct_seen *seen)
{
	struct es_route_target *t = ct_route_target(m, seen, ES_META_F_DUP_TO, ES_CT_F_DUP_TO);

	if (t && t->ifindex && t->ifindex != skb->ifindex && bpf_clone_redirect(skb, t->ifindex, 0))
		ct_metric(ES_CT_M_ERRORS);
}

/*
 * route_to with conntrack on (xdp_firewall leaves it to us then, so that the
 * flow is tracked and its replies find it): TTL or hop limit − 1, then
 * bpf_redirect_neigh() to the rule's gateway on its interface (the kernel
 * resolves the gateway's MAC). Any of: no target, other family, TTL ≤ 1, too
 * big for the interface → ordinary forwarding, as at XDP.
 */
static __always_inline int ct_route_to(struct __sk_buff *skb, const struct es_pkt *pkt,
				       const struct es_xdp_meta *m, const struct ct_seen *seen)
{
	struct es_route_target *t = ct_route_target(m, seen, ES_META_F_ROUTE_TO, ES_CT_F_ROUTE_TO);
	struct bpf_redir_neigh nh = {};
	__u32 off = pkt->l3_off, mtu = 0;
	int v6 = !!(pkt->flags & ES_PKT_F_IPV6);
	__u16 old, new;

	if (!t || !t->ifindex || !t->family || v6 != (t->family == 6) || off > ES_MAX_L3_OFF ||
	    bpf_check_mtu(skb, t->ifindex, &mtu, 0, 0))
		return TC_ACT_UNSPEC;
	/* The TTL (IPv4 byte 8) or hop limit (IPv6 byte 7) is the high byte of this word. */
	off += v6 ? 7 : 8;
	if (bpf_skb_load_bytes(skb, off, &old, 2))
		return TC_ACT_UNSPEC;
	new = old;
	if (((__u8 *)&new)[0] <= 1)
		return TC_ACT_UNSPEC;
	((__u8 *)&new)[0]--;
	if ((!v6 && bpf_l3_csum_replace(skb, pkt->l3_off + 10, old, new, 2)) ||
	    bpf_skb_store_bytes(skb, off, &new, 2, 0)) {
		ct_metric(ES_CT_M_ERRORS);
		return TC_ACT_UNSPEC;
	}
	if (v6) {
		nh.nh_family = 10; /* AF_INET6 */
#pragma unroll
		for (int i = 0; i < 4; i++)
			nh.ipv6_nh[i] = bpf_htonl(t->gw[i]);
	} else {
		nh.nh_family = 2; /* AF_INET */
		nh.ipv4_nh = bpf_htonl(t->gw[0]);
	}
	return bpf_redirect_neigh(t->ifindex, &nh, sizeof(nh), 0);
}

static __always_inline int ct_main(struct __sk_buff *skb, int ingress)
{
	__u32 prog = ingress ? ES_PROG_TC_CONNTRACK : ES_PROG_TC_CONNTRACK_EGRESS;
	struct es_xdp_meta meta = {};
	const struct es_xdp_meta *m = NULL;
	struct ct_seen seen = {};
	struct es_ct_config *c;
	void *data, *data_end;
	struct es_pkt *pkt;
	__u32 zero = 0;
	int r, tracking, act = TC_ACT_UNSPEC;

	ct_metric(ES_CT_M_TOTAL_SEEN);
	if (ingress) {
		void *md = (void *)(long)skb->data_meta;

		data = (void *)(long)skb->data;
		if (md + sizeof(meta) <= data) {
			__builtin_memcpy(&meta, md, sizeof(meta));
			if (meta.meta_flags & ES_META_F_PRESENT)
				m = &meta;
		}
	}
	pkt = bpf_map_lookup_elem(&ct_pkt, &zero);
	c = ct_config_get();
	if (!pkt || !c) {
		ct_metric(ES_CT_M_ERRORS);
		es_count(prog, ES_R_INTERNAL_ERROR);
		return TC_ACT_UNSPEC;
	}
	es_tc_linearize(skb, CT_PULL_LEN, &data, &data_end);

	r = es_parse(data, data_end, pkt);
	if (r) {
		if (es_reason_is_error(r))
			ct_metric(ES_CT_M_ERRORS);
		es_count(prog, r);
		return TC_ACT_UNSPEC;
	}
	tracking = c->enabled;
	if (!tracking) {
		r = ES_R_DISABLED;
	} else if (!ingress && skb->ingress_ifindex && skb->cb[0] != ES_TC_CB_NAT_FLOW) {
		__u32 iif = skb->ingress_ifindex;

		r = bpf_map_lookup_elem(&ct_ifaces, &iif)
			? ES_R_CT_SEEN_AT_INGRESS
			: ct_track(skb, data, data_end, pkt, c, m, &seen);
	} else {
		r = ct_track(skb, data, data_end, pkt, c, m, &seen);
	}

	if (ingress) {
		ct_dup_to(skb, m, &seen);
		act = ct_route_to(skb, pkt, m, &seen);
		if (act == TC_ACT_REDIRECT)
			r = ES_R_CT_ROUTE_TO;
	} else {
		skb->cb[0] = 0; /* consumed: never seen by a later hook */
		if (r == ES_R_CT_SEEN_AT_INGRESS)
			ct_peek(pkt, &seen);
		act = ct_reply_to(skb, pkt, &seen, tracking);
		if (act == TC_ACT_REDIRECT)
			r = ES_R_CT_REPLY_TO;
	}
	es_count(prog, r);
	return act;
}

SEC("tc")
int tc_conntrack(struct __sk_buff *skb)
{
	return ct_main(skb, 1);
}

SEC("tc")
int tc_conntrack_egress(struct __sk_buff *skb)
{
	return ct_main(skb, 0);
}
