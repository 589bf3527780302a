/* SPDX-License-Identifier: AGPL-3.0-only */
/*
 * The one packet parser: Ethernet, up to two VLAN tags (802.1Q, 802.1ad/QinQ),
 * IPv4 with options and fragments, IPv6 with extension headers, TCP, UDP,
 * ICMP and ICMPv6. Works on any [data, data_end) window, so XDP and TC share
 * it. Fills struct es_pkt; addresses are 16 bytes in network order with IPv4
 * mapped (::ffff:a.b.c.d), so every key built from them is dual-stack.
 */
#ifndef ES_PARSE_H
#define ES_PARSE_H

#include "es_bpf.h"

#include "abi/pkt.h"

struct es_icmphdr {
	__u8 type;
	__u8 code;
	__u16 checksum;
	__u32 rest;
};

struct es_vlanhdr {
	__u16 tci;
	__u16 proto;
};

struct es_ipv6_opt {
	__u8 nexthdr;
	__u8 hdrlen;
};

struct es_ipv6_frag {
	__u8 nexthdr;
	__u8 reserved;
	__u16 frag_off; /* offset << 3 | M */
	__u32 id;
};

static __always_inline void es_addr_v4mapped(__u8 *dst, __u32 be_addr)
{
	__builtin_memset(dst, 0, 10);
	dst[10] = 0xff;
	dst[11] = 0xff;
	__builtin_memcpy(dst + 12, &be_addr, 4);
}

/*
 * The same into pkt->src or pkt->dst after es_parse() cleared the packet:
 * two word stores (the struct is 8-byte aligned) instead of sixteen bytes.
 */
static __always_inline void es_pkt_v4mapped(__u8 *dst, __u32 be_addr)
{
	__u32 ffff = bpf_htonl(0xffff);

	__builtin_memcpy(dst + 8, &ffff, 4);
	__builtin_memcpy(dst + 12, &be_addr, 4);
}

/* True when the window [off, off + len) fits in the packet. */
#define ES_FITS(data, data_end, off, len) ((void *)(data) + (off) + (len) <= (void *)(data_end))

static __always_inline int es_parse_l4(void *data, void *data_end, struct es_pkt *pkt, __u32 off)
{
	if (off > ES_MAX_L4_OFF)
		return ES_R_TRUNC_L4;
	barrier_var(off);
	pkt->l4_off = off;

	switch (pkt->proto) {
	case IPPROTO_TCP: {
		struct tcphdr *th = data + off;

		if (!ES_FITS(data, data_end, off, sizeof(*th)))
			return ES_R_TRUNC_L4;
		if (th->doff < 5)
			return ES_R_TRUNC_L4;
		pkt->sport = bpf_ntohs(th->source);
		pkt->dport = bpf_ntohs(th->dest);
		pkt->tcp_flags = ((__u8 *)th)[13] & 0x3f;
		break;
	}
	case IPPROTO_UDP: {
		struct udphdr *uh = data + off;

		if (!ES_FITS(data, data_end, off, sizeof(*uh)))
			return ES_R_TRUNC_L4;
		pkt->sport = bpf_ntohs(uh->source);
		pkt->dport = bpf_ntohs(uh->dest);
		break;
	}
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6_: {
		struct es_icmphdr *ih = data + off;

		if (!ES_FITS(data, data_end, off, 4))
			return ES_R_TRUNC_L4;
		pkt->icmp_type = ih->type;
		pkt->icmp_code = ih->code;
		/* Echo request/reply: the identifier stands in for ports (conntrack keys). */
		if (ES_FITS(data, data_end, off, 8) &&
		    (pkt->proto == IPPROTO_ICMP ? ih->type == 8 || ih->type == 0
						: ih->type == 128 || ih->type == 129))
			pkt->icmp_id = bpf_ntohs(((__u16 *)ih)[2]);
		break;
	}
	default: return 0; /* other protocols: no L4 fields */
	}
	pkt->flags |= ES_PKT_F_L4;
	return 0;
}

static __always_inline int es_parse_ipv4(void *data, void *data_end, struct es_pkt *pkt, __u32 off)
{
	struct iphdr *iph = data + off;
	__u32 ihl, tot;

	if (!ES_FITS(data, data_end, off, sizeof(*iph)))
		return ES_R_TRUNC_IPV4;
	if (iph->version != 4)
		return ES_R_BAD_IHL;
	ihl = iph->ihl * 4;
	if (ihl < sizeof(*iph))
		return ES_R_BAD_IHL;
	if (!ES_FITS(data, data_end, off, ihl))
		return ES_R_TRUNC_IPV4;
	tot = bpf_ntohs(iph->tot_len);
	if (tot < ihl)
		return ES_R_BAD_IPV4_LEN;

	es_pkt_v4mapped(pkt->src, iph->saddr);
	es_pkt_v4mapped(pkt->dst, iph->daddr);
	pkt->proto = iph->protocol;
	pkt->dscp = iph->tos >> 2;
	pkt->ttl = iph->ttl;
	pkt->l3_len = tot;
	if (ihl > sizeof(*iph))
		pkt->flags |= ES_PKT_F_IPOPT;

	/* MF set or a non-zero offset: a fragment; only the first has L4 headers. */
	if (iph->frag_off & bpf_htons(0x3fff)) {
		pkt->flags |= ES_PKT_F_FRAG;
		if (iph->frag_off & bpf_htons(0x1fff))
			return ES_R_FRAGMENT;
	}
	return es_parse_l4(data, data_end, pkt, off + ihl);
}

static __always_inline int es_parse_ipv6(void *data, void *data_end, struct es_pkt *pkt, __u32 off)
{
	struct ipv6hdr *ip6 = data + off;
	__u8 nh;
	int i;

	if (!ES_FITS(data, data_end, off, sizeof(*ip6)))
		return ES_R_TRUNC_IPV6;
	__builtin_memcpy(pkt->src, &ip6->saddr, 16);
	__builtin_memcpy(pkt->dst, &ip6->daddr, 16);
	pkt->flags |= ES_PKT_F_IPV6;
	pkt->dscp = ((bpf_ntohs(*(__u16 *)ip6) >> 4) & 0xff) >> 2;
	pkt->ttl = ip6->hop_limit;
	pkt->l3_len = bpf_ntohs(ip6->payload_len) + sizeof(*ip6);
	nh = ip6->nexthdr;
	off += sizeof(*ip6);

#pragma unroll
	for (i = 0; i < ES_MAX_IPV6_EXT; i++) {
		if (nh == IPPROTO_HOPOPTS_ || nh == IPPROTO_ROUTING_ || nh == IPPROTO_DSTOPTS_) {
			struct es_ipv6_opt *opt;

			if (off > ES_MAX_L4_OFF)
				return ES_R_TRUNC_EXTHDR;
			opt = data + off;
			if (!ES_FITS(data, data_end, off, sizeof(*opt)))
				return ES_R_TRUNC_EXTHDR;
			nh = opt->nexthdr;
			off += (opt->hdrlen + 1) * 8;
			pkt->ext_count++;
		} else if (nh == IPPROTO_FRAGMENT_) {
			struct es_ipv6_frag *fh;

			if (off > ES_MAX_L4_OFF)
				return ES_R_TRUNC_EXTHDR;
			fh = data + off;
			if (!ES_FITS(data, data_end, off, sizeof(*fh)))
				return ES_R_TRUNC_EXTHDR;
			nh = fh->nexthdr;
			off += sizeof(*fh);
			pkt->ext_count++;
			pkt->flags |= ES_PKT_F_FRAG;
			if (fh->frag_off & bpf_htons(0xfff8)) {
				pkt->proto = nh;
				return ES_R_FRAGMENT;
			}
		} else {
			break;
		}
	}
	if (nh == IPPROTO_HOPOPTS_ || nh == IPPROTO_ROUTING_ || nh == IPPROTO_DSTOPTS_ ||
	    nh == IPPROTO_FRAGMENT_)
		return ES_R_EXTHDR_TOO_MANY;
	pkt->proto = nh;
	/* AH, ESP and No-Next-Header end the walk without an L4 view. */
	return es_parse_l4(data, data_end, pkt, off);
}

/*
 * Parse [data, data_end). Returns 0 for an IP packet with its L4 fields
 * filled when present, or an es_reason explaining why not: ES_R_NON_IP,
 * ES_R_FRAGMENT (IP fields valid, no L4 view) or a truncation/malformation.
 */
static __always_inline int es_parse(void *data, void *data_end, struct es_pkt *pkt)
{
	struct ethhdr *eth = data;
	__u32 off = sizeof(*eth);
	__u16 proto;
	int i;

	__builtin_memset(pkt, 0, sizeof(*pkt));
	if (!ES_FITS(data, data_end, 0, sizeof(*eth)))
		return ES_R_TRUNC_ETH;
	__builtin_memcpy(pkt->dst_mac, eth->h_dest, 6);
	__builtin_memcpy(pkt->src_mac, eth->h_source, 6);
	proto = bpf_ntohs(eth->h_proto);

#pragma unroll
	for (i = 0; i < ES_MAX_VLAN_TAGS; i++) {
		struct es_vlanhdr *vh;

		if (proto != ETH_P_8021Q && proto != ETH_P_8021AD)
			break;
		vh = data + off;
		if (!ES_FITS(data, data_end, off, sizeof(*vh)))
			return ES_R_TRUNC_VLAN;
		if (i == 0) {
			pkt->vlan_id = bpf_ntohs(vh->tci) & 0x0fff;
			pkt->flags |= ES_PKT_F_VLAN;
		} else {
			pkt->inner_vlan_id = bpf_ntohs(vh->tci) & 0x0fff;
			pkt->flags |= ES_PKT_F_QINQ;
		}
		pkt->vlan_depth++;
		proto = bpf_ntohs(vh->proto);
		off += sizeof(*vh);
	}
	pkt->eth_proto = proto;
	pkt->l3_off = off;
	if (proto == ETH_P_8021Q || proto == ETH_P_8021AD)
		return ES_R_VLAN_TOO_DEEP;
	if (proto == ETH_P_IP)
		return es_parse_ipv4(data, data_end, pkt, off);
	if (proto == ETH_P_IPV6)
		return es_parse_ipv6(data, data_end, pkt, off);
	return ES_R_NON_IP;
}

/*
 * TC: make sure the first min(len, skb->len) bytes are in the linear area
 * (headers usually are; an unconditional pull would unclone every TCP skb at
 * egress) and return fresh packet pointers. noinline: clang 14 otherwise keeps
 * ctx field offsets in registers across the helper call, which the verifier
 * rejects ("dereference of modified ctx ptr").
 */
static __noinline int es_tc_linear_len(struct __sk_buff *skb, __u32 len)
{
	__u32 want = skb->len < len ? skb->len : len;

	if (skb->data_end - skb->data < want)
		return bpf_skb_pull_data(skb, want);
	return 0;
}

/*
 * Fresh skb data pointers. The loads are written in asm because clang 14
 * likes to keep the ctx offsets (76, 80) in registers and add them to the
 * ctx pointer, which the verifier rejects ("dereference of modified ctx ptr").
 */
static __always_inline void es_skb_ptrs(struct __sk_buff *skb, void **data, void **data_end)
{
	void *d, *e;

	asm volatile("%[d] = *(u32 *)(%[ctx] + 76)\n\t"
		     "%[e] = *(u32 *)(%[ctx] + 80)"
		     : [d] "=&r"(d), [e] "=r"(e) /* d early-clobber: not in ctx's register */
		     : [ctx] "r"(skb));
	*data = d;
	*data_end = e;
}

static __always_inline void es_tc_linearize(struct __sk_buff *skb, __u32 len, void **data,
					    void **data_end)
{
	es_tc_linear_len(skb, len);
	es_skb_ptrs(skb, data, data_end);
}

/* Is this reason a malformed or truncated packet (counted as an error)? */
static __always_inline int es_reason_is_error(int r)
{
	return r != 0 && r != ES_R_NON_IP && r != ES_R_FRAGMENT;
}

/* Host-order words of network.md §0 from a parsed 16-byte address. */
static __always_inline void es_addr_words(__u32 *out, const __u8 *a, int v6)
{
	if (!v6) {
		out[0] = ((__u32)a[12] << 24) | ((__u32)a[13] << 16) | ((__u32)a[14] << 8) | a[15];
		out[1] = out[2] = out[3] = 0;
		return;
	}
#pragma unroll
	for (int i = 0; i < 4; i++)
		out[i] = ((__u32)a[4 * i] << 24) | ((__u32)a[4 * i + 1] << 16) |
			 ((__u32)a[4 * i + 2] << 8) | a[4 * i + 3];
}

#endif /* ES_PARSE_H */
