/* SPDX-License-Identifier: AGPL-3.0-only */
/*
 * NAT ABI (network.md §4.2): rule arrays compiled by the agent, the session
 * table both NAT programs share (with reply translation), interface
 * addresses for masquerade and redirect, and NAT_METRICS.
 *
 * Rule arrays hold two banks: the agent writes the inactive one, then flips
 * the count word (bits 0-12 count, bit 31 active bank) with one store, so a
 * reload never exposes a half-written rule set.
 */
#ifndef ES_ABI_NAT_H
#define ES_ABI_NAT_H

#include "common.h"

#define ES_NAT_MAX_RULES 256  /* per list, IPv4 */
#define ES_NAT_MAX_RULES6 128 /* per list, IPv6 */
#define ES_NAT_SESSIONS_MAX 131072
#define ES_NAT_IFADDR_MAX 64
#define ES_NAT_PORT_PROBES 8

#define ES_NAT_COUNT_MASK 0x1fffu
#define ES_NAT_BANK_BIT 0x80000000u

/* Rule nat_type. */
#define ES_NAT_T_SNAT 1
#define ES_NAT_T_DNAT 2 /* dnat and port_forward */
#define ES_NAT_T_MASQUERADE 3
#define ES_NAT_T_REDIRECT 4
#define ES_NAT_T_ONE_TO_ONE 5

/* Rule match_flags. */
#define ES_NAT_M_SRC 0x01
#define ES_NAT_M_DST 0x02
#define ES_NAT_M_DPORT 0x04
#define ES_NAT_M_PROTO 0x08

struct es_nat_rule {
	__u32 match_src_ip; /* host order */
	__u32 match_src_mask;
	__u32 match_dst_ip;
	__u32 match_dst_mask;
	__u16 match_dst_port_start;
	__u16 match_dst_port_end;
	__u8 match_protocol; /* IPPROTO_*, ICMP stands for ICMPv6 in the IPv6 array */
	__u8 match_flags;    /* ES_NAT_M_* */
	__u8 nat_type;	     /* ES_NAT_T_* */
	__u8 pad;
	__u32 nat_addr; /* translation address (0 for masquerade/redirect: interface's) */
	/*
	 * start == end != 0: fixed port; start < end: DNAT port offset
	 * (start + dport - match_dst_port_start) or the SNAT allocation pool;
	 * 0: port unchanged.
	 */
	__u16 nat_port_start;
	__u16 nat_port_end;
	__u32 nat_interface; /* ifindex the rule is limited to, 0 = any */
	__u32 rule_id;
};

struct es_nat_rule_v6 {
	__u32 match_src_ip[4];
	__u32 match_src_mask[4];
	__u32 match_dst_ip[4];
	__u32 match_dst_mask[4];
	__u16 match_dst_port_start;
	__u16 match_dst_port_end;
	__u8 match_protocol;
	__u8 match_flags;
	__u8 nat_type;
	__u8 pad;
	__u32 nat_addr[4];
	__u16 nat_port_start;
	__u16 nat_port_end;
	__u32 nat_interface;
	__u32 rule_id;
};

/*
 * NAT_SESSIONS key: the wire tuple as the program sees it at its hook
 * (addresses 16 bytes in network order, IPv4 mapped; ports host order; ICMP
 * echo: the identifier in both ports).
 */
struct es_nat_key {
	__u8 src[16];
	__u8 dst[16];
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 pad[3];
};

#define ES_NAT_DIR_ORIG 0
#define ES_NAT_DIR_REPLY 1

/* What to rewrite the keyed packet into. */
struct es_nat_session {
	__u8 new_src[16];
	__u8 new_dst[16];
	__u16 new_sport;
	__u16 new_dport;
	__u8 nat_type; /* ES_NAT_T_* of the rule that created it */
	__u8 dir;      /* ES_NAT_DIR_* */
	__u8 pad[2];
	__u64 last_seen_ns; /* CLOCK_BOOTTIME */
};

/* NAT_IFADDR: ifindex → primary addresses (host-order words, 0 = none). */
struct es_nat_ifaddr {
	__u32 v4;
	__u32 v6[4];
};

/* NAT_METRICS per-CPU array indices (network.md §4.2, interfaces.md §6). */
enum es_nat_metric {
	ES_NAT_M_SNAT_APPLIED = 0,
	ES_NAT_M_DNAT_APPLIED,
	ES_NAT_M_MASQ_APPLIED,
	ES_NAT_M_PORT_ALLOC_FAIL,
	ES_NAT_M_ERRORS,
	ES_NAT_M_TOTAL_SEEN,
	ES_NAT_M__COUNT,
	ES_NAT_M__SLOTS = 8,
};

#ifndef __bpf__
_Static_assert(sizeof(struct es_nat_rule) == 40, "NAT rule is 40 bytes");
_Static_assert(offsetof(struct es_nat_rule, nat_addr) == 24, "nat_addr @24");
_Static_assert(offsetof(struct es_nat_rule, rule_id) == 36, "rule_id @36");
_Static_assert(sizeof(struct es_nat_rule_v6) == 100, "IPv6 NAT rule is 100 bytes");
_Static_assert(sizeof(struct es_nat_key) == 40, "session key is 40 bytes");
_Static_assert(sizeof(struct es_nat_session) == 48, "session is 48 bytes");
_Static_assert(offsetof(struct es_nat_session, last_seen_ns) == 40, "last_seen @40");
_Static_assert(sizeof(struct es_nat_ifaddr) == 20, "ifaddr is 20 bytes");
#endif

#endif /* ES_ABI_NAT_H */
