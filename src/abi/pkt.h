/* SPDX-License-Identifier: AGPL-3.0-only */
/*
 * The parsed packet every kernel program works from (filled by
 * src/kernel/bpf/parse.h). Shared with userspace for tests and for any map
 * that carries it.
 */
#ifndef ES_ABI_PKT_H
#define ES_ABI_PKT_H

#ifndef __bpf__
#include <linux/types.h>
#include <stddef.h>
#endif

#define ES_PKT_F_IPV6 0x01
#define ES_PKT_F_VLAN 0x02
#define ES_PKT_F_FRAG 0x04  /* a fragment (first or not) */
#define ES_PKT_F_L4 0x08    /* L4 header parsed: ports, flags, ICMP fields valid */
#define ES_PKT_F_QINQ 0x10  /* two tags */
#define ES_PKT_F_IPOPT 0x20 /* IPv4 options present */

#define ES_MAX_VLAN_TAGS 2
#define ES_MAX_IPV6_EXT 6
/* Offsets are bounded so the verifier can track them; no real header is deeper. */
#define ES_MAX_L3_OFF 64
#define ES_MAX_L4_OFF 512

#define TCP_F_FIN 0x01
#define TCP_F_SYN 0x02
#define TCP_F_RST 0x04
#define TCP_F_PSH 0x08
#define TCP_F_ACK 0x10
#define TCP_F_URG 0x20

struct es_pkt {
	__u8 src[16];
	__u8 dst[16];
	__u8 src_mac[6];
	__u8 dst_mac[6];
	__u16 eth_proto;     /* host order, after the tags */
	__u16 vlan_id;	     /* outer tag's VID (host order), 0 when untagged */
	__u16 inner_vlan_id; /* inner tag's VID with QinQ */
	__u16 sport;	     /* host order; 0 unless TCP/UDP */
	__u16 dport;
	__u16 l3_off;
	__u16 l4_off;
	__u16 l3_len;	/* IPv4 total length or IPv6 payload length + 40 */
	__u8 proto;	/* final L4 protocol */
	__u8 flags;	/* ES_PKT_F_* */
	__u8 tcp_flags; /* FSRPAU bits */
	__u8 icmp_type;
	__u8 icmp_code;
	__u8 dscp;
	__u8 ttl; /* TTL or hop limit */
	__u8 vlan_depth;
	__u8 ext_count; /* IPv6 extension headers skipped */
	__u8 pad;
	__u16 icmp_id;	       /* ICMP/ICMPv6 echo request/reply identifier (host order), else 0 */
} __attribute__((aligned(8))); /* 8: the parser clears and fills it in words, not bytes */

/* PKT_CTX's value (kernel/bpf/pkt_ctx.h): the packet and the hand-off word. */
#define ES_PKT_CTX_PARSED 0x100u /* | es_parse() result in the low byte */

struct es_pkt_ctx {
	struct es_pkt pkt; /* first: the firewall casts back from &pkt */
	__u32 launder;	   /* the firewall classifier's opaque word (fw_launder) */
	__u32 parsed;	   /* the hand-off word (kernel/bpf/pkt_ctx.h) */
};

#ifndef __bpf__
_Static_assert(sizeof(struct es_pkt) == 72, "es_pkt layout");
_Static_assert(_Alignof(struct es_pkt) == 8, "es_pkt alignment");
_Static_assert(offsetof(struct es_pkt, eth_proto) == 44, "es_pkt eth_proto");
_Static_assert(offsetof(struct es_pkt, icmp_id) == 70, "es_pkt icmp_id");
#endif

#endif
