/* SPDX-License-Identifier: AGPL-3.0-only */
/*
 * Firewall ABI (network.md §2.2): rule entries, the compiled classifier the
 * XDP program walks, the banks switched by one control word, counters, LPM
 * block lists, zones and the XDP→TC metadata. Shared by xdp_firewall and the
 * agent; fixed-width fields, explicit padding, sizes asserted at the bottom.
 *
 * Classification (KERNEL-NOTES.md "Firewall classification"): the active user
 * rules are numbered by priority (position 0 first). Each match dimension
 * (source/destination address, protocol, ports, ...) maps a packet value to an
 * equivalence class through ARRAY tables; a class record holds the bitmap of
 * the positions whose condition on that dimension the value satisfies, plus
 * per-group summaries of its non-zero 64-bit words. ANDing the records of the
 * active dimensions word by word gives the matching positions; the lowest set
 * bit is the first match. Everything a rule set needs lives in one bank;
 * userspace writes the inactive bank and flips one word (es_fw_ctl).
 */
#ifndef ES_ABI_FIREWALL_H
#define ES_ABI_FIREWALL_H

#include "common.h"

/* FIREWALL_METRICS per-CPU array indices (network.md §2.2). */
enum es_fw_metric {
	ES_FW_M_PASSED = 0,
	ES_FW_M_DROPPED,
	ES_FW_M_ERRORS,
	ES_FW_M_EVENTS_DROPPED,
	ES_FW_M_TOTAL_SEEN,
	ES_FW_M__COUNT,
};

/* Rule and event actions (rule entry action, es_pkt_event.action). */
#define ES_FW_ACT_PASS 0
#define ES_FW_ACT_DROP 1
#define ES_FW_ACT_LOG 2

#define ES_FW_POLICY_PASS 0
#define ES_FW_POLICY_DROP 1

/* Reserved rule ids for verdicts not taken by a configured rule. */
#define ES_FW_RULE_DEFAULT 0u
#define ES_FW_RULE_LPM 0xFFFFFF01u
#define ES_FW_RULE_ZONE 0xFFFFFF02u
#define ES_FW_RULE_CONN_LIMIT 0xFFFFFF03u
/* Numeric ids given to configured rules stay below this. */
#define ES_FW_RULE_ID_MAX 0xFFFFFF00u

/* ---- sizes ---------------------------------------------------------------- */

#define ES_FW_MAX_RULES 4096 /* positions per bank (user rules) */
#define ES_FW_BANKS 2
/* Rule slots: bank * ES_FW_MAX_RULES + position (FW_RULE_STATE_COUNT, hit counters). */
#define ES_FW_SLOTS (ES_FW_BANKS * ES_FW_MAX_RULES)
#define ES_FW_WORDS (ES_FW_MAX_RULES / 64)
#define ES_FW_GROUPS 8	    /* summary slots per class record */
#define ES_FW_SYS_MAX 256   /* system (anti-lockout) rules per bank */
#define ES_FW_MAX_IFACES 32 /* iface_mask bits */

/* Classifier capacity per bank (fixed: maps are preallocated). */
#define ES_FW_CLS_PER_BANK 16384
#define ES_FW_CHUNKS_PER_BANK 4096
#define ES_FW_SKIPS_PER_BANK 8192
#define ES_FW_MACS_MAX 16384

/* ---- control word and bank header ------------------------------------------ */

/*
 * fw_ctl[0]: bits 0-12 rule count of the active bank, bit 31 the active bank.
 * One aligned store switches everything the kernel reads: the bank header,
 * rules, tables and class records of the other bank were written before it.
 */
#define ES_FW_CTL_BANK 0x80000000u
#define ES_FW_CTL_COUNT 0x00001fffu

/*
 * Match dimensions (bit numbers in es_fw_bank.dims), most used first: the
 * kernel ANDs only dimensions [0, nd) and nd is one past the last active one.
 */
enum es_fw_dim {
	ES_FW_D_SRC = 0, /* source address (per-family trie) */
	ES_FW_D_DST,	 /* destination address */
	ES_FW_D_PROTO,
	ES_FW_D_DPORT,
	ES_FW_D_SPORT,
	ES_FW_D_ICMP, /* type << 8 | code */
	ES_FW_D_TCPF, /* FSRPAU */
	ES_FW_D_DSCP,
	ES_FW_D_VLAN, /* outer VID */
	ES_FW_D_CT,   /* conntrack state (ES_FW_CT_*) */
	ES_FW_D_IFACE,
	ES_FW_D_SMAC,
	ES_FW_D_DMAC,
	ES_FW_D__COUNT,
};

/*
 * Summary groups: rules are grouped by the most selective field they use
 * (addresses, then ports, then the protocol); each group's scan starts with
 * that field's summary, which for most packets is already zero.
 */
enum es_fw_group {
	ES_FW_G_SRC_DST = 0,
	ES_FW_G_SRC,
	ES_FW_G_DST,
	ES_FW_G_DPORT,
	ES_FW_G_SPORT,
	ES_FW_G_PROTO,
	ES_FW_G_OTHER,
	ES_FW_G__COUNT,
};

/* Bank header flags. */
#define ES_FW_BF_META 0x01 /* prepend xdp_meta on PASS/LOG */

struct es_fw_bank {
	__u32 n_rules;	     /* positions in use */
	__u16 dims[2];	     /* active dimensions per family (0 IPv4, 1 IPv6), bit = es_fw_dim */
	__u8 groups[2];	     /* non-empty summary groups per family */
	__u8 default_policy; /* ES_FW_POLICY_* */
	__u8 flags;	     /* ES_FW_BF_* */
	__u16 n_sys;	     /* system rules in es_fw_sys */
	__u8 nd[2];	     /* per family: dimensions [0, nd) are ANDed (see es_fw_dim) */
	__u32 generation;    /* compile generation (diagnostics) */
};

/* ---- class records ------------------------------------------------------------ */

/*
 * Record `class` of bank b: w = positions whose condition on the dimension
 * holds for the values of this class; summ[g] bit i = word i of w has a bit
 * of a group-g rule. fw_cls (like fw_trie, fw_skip and fw_vtab) has one
 * element per bank, so through mmap the records are the flat array
 * [b * ES_FW_CLS_PER_BANK + class].
 */
struct es_fw_cls {
	__u64 summ[ES_FW_GROUPS];
	__u64 w[ES_FW_WORDS];
};

/* ---- address tries ----------------------------------------------------------- */

/*
 * fw_trie (u16 entries): per bank four level-0 tables indexed by the first 16
 * bits of the key (IPv4: the address; IPv6: its first 16 bits), then chunks
 * of 256 entries indexed by the next byte. An entry is a class id, a chunk
 * id, or a skip node (path compression: the next bytes must equal a stored
 * value, else the miss class applies). Addresses are looked at in the
 * 16-byte mapped form; IPv4 keys start at byte 12.
 */
#define ES_FW_T_SRC4 0
#define ES_FW_T_DST4 1
#define ES_FW_T_SRC6 2
#define ES_FW_T_DST6 3
#define ES_FW_TRIE_L0 65536
#define ES_FW_TRIE_CHUNKS_OFF (4 * ES_FW_TRIE_L0)
#define ES_FW_TRIE_PER_BANK (ES_FW_TRIE_CHUNKS_OFF + ES_FW_CHUNKS_PER_BANK * 256)
#define ES_FW_TE_PTR 0x8000  /* not a class */
#define ES_FW_TE_SKIP 0x4000 /* with PTR: skip node, else chunk */
#define ES_FW_TE_ID 0x3fff
#define ES_FW_TRIE_MAX_STEPS 16 /* chunk or skip steps after level 0 */

struct es_fw_skip {
	__u64 val[2];  /* the 16-byte address, bytes outside the mask zero */
	__u64 mask[2]; /* bytes [from, depth) of the 16-byte form */
	__u8 depth;    /* byte index to continue at */
	__u8 pad;
	__u16 next; /* trie entry when equal */
	__u16 miss; /* class when not */
	__u16 pad2;
};

/* ---- value tables --------------------------------------------------------------- */

/* fw_vtab (u16 class ids), per bank, shared by both families except the protocol. */
#define ES_FW_VT_PROTO 0       /* 256, IPv4 */
#define ES_FW_VT_PROTO6 256    /* 256, IPv6 (icmp means ICMPv6 there) */
#define ES_FW_VT_TCPF 512      /* 64 flag combinations, +64 = not TCP */
#define ES_FW_VT_DSCP 640      /* 64 */
#define ES_FW_VT_CT 704	       /* ES_FW_CT_* */
#define ES_FW_VT_IFACE 712     /* agent interface position, +32 = other */
#define ES_FW_VT_SMAC_MISS 748 /* class of source MACs no rule names */
#define ES_FW_VT_DMAC_MISS 749
#define ES_FW_VT_VLAN 768    /* 4096 (0 = untagged) */
#define ES_FW_VT_ICMP 4864   /* type << 8 | code, +65536 = not ICMP */
#define ES_FW_VT_SPORT 70401 /* 65536 ports, +65536 = no L4 ports */
#define ES_FW_VT_DPORT 135938
#define ES_FW_VT_PER_BANK 201475
#define ES_FW_VT_NONE_PORT 65536
#define ES_FW_VT_NONE_ICMP 65536
#define ES_FW_VT_NONE_TCPF 64
#define ES_FW_VT_NONE_IFACE 32
#define ES_FW_VT_ROWS ((ES_FW_VT_PER_BANK + 255) / 256) /* 256-entry rows per bank */
#define ES_FW_TRIE_ROWS (ES_FW_TRIE_PER_BANK / 256)

/* Reserved classes present in every bank. */
#define ES_FW_CLS_NONE 0 /* matches nothing */
#define ES_FW_CLS_ALL 1	 /* matches every position: stands in for inactive dimensions */

/* A row of a u16 table (ARRAY elements are 8-byte aligned: rows keep them dense). */
struct es_fw_row16 {
	__u16 e[256];
};

/* Connection state as the classifier sees it (conntrack fills it in). */
#define ES_FW_CT_NEW 0
#define ES_FW_CT_ESTABLISHED 1
#define ES_FW_CT_RELATED 2
#define ES_FW_CT_INVALID 3
#define ES_FW_CT_UNKNOWN 4 /* conntrack off: no `state:` rule matches */
#define ES_FW_CT__COUNT 5

/* fw_mac: MAC classes (only looked up when a rule uses MACs). */
struct es_fw_mac_key {
	__u8 mac[6];
	__u8 bank;
	__u8 dir; /* 0 source, 1 destination */
};

/* ---- rule entries (network.md §2.2) --------------------------------------------------- */

#define ES_FW_MF_SRC_IP 0x01
#define ES_FW_MF_DST_IP 0x02
#define ES_FW_MF_SRC_PORT 0x04
#define ES_FW_MF_DST_PORT 0x08
#define ES_FW_MF_PROTO 0x10
#define ES_FW_MF_CT_STATE 0x20
#define ES_FW_MF_SRC_SET 0x40
#define ES_FW_MF_DST_SET 0x80

#define ES_FW_MF2_TCP_FLAGS 0x01
#define ES_FW_MF2_ICMP_TYPE 0x02
#define ES_FW_MF2_ICMP_CODE 0x04
#define ES_FW_MF2_NEGATE_SRC 0x08
#define ES_FW_MF2_NEGATE_DST 0x10
#define ES_FW_MF2_DSCP 0x20
#define ES_FW_MF2_SRC_MAC 0x40
#define ES_FW_MF2_DST_MAC 0x80

#define ES_FW_CTM_NEW 0x01
#define ES_FW_CTM_ESTABLISHED 0x02
#define ES_FW_CTM_RELATED 0x04
#define ES_FW_CTM_INVALID 0x08

#define ES_FW_WILDCARD_U8 0xFF

#define ES_FW_ROUTE_NONE 0
#define ES_FW_ROUTE_TO 1
#define ES_FW_ROUTE_REPLY_TO 2
#define ES_FW_ROUTE_DUP_TO 3

/*
 * The entries describe each rule completely (the first range of a port set);
 * matching itself is done by the classifier, the kernel reads the entry of
 * the matched position for what to do: action, rule_id, dscp_mark,
 * max_states, routing.
 */
struct es_fw_rule_v4 {
	__u32 src_ip, src_mask, dst_ip, dst_mask; /* host order */
	__u16 src_port_start, src_port_end, dst_port_start, dst_port_end;
	__u8 protocol, match_flags;
	__u16 vlan_id;
	__u8 action, ct_state_mask, src_set_id, dst_set_id;
	__u8 tcp_flags_match, tcp_flags_mask, icmp_type, icmp_code;
	__u8 match_flags2, dscp_match;
	__u16 max_states;
	__u8 src_mac[6], dst_mac[6];
	__u8 dscp_mark, route_action;
	__u16 route_ifindex;
	__u32 iface_mask;
	__u32 rule_id;
};

struct es_fw_rule_v6 {
	__u32 src_ip[4], src_mask[4], dst_ip[4], dst_mask[4];
	__u16 src_port_start, src_port_end, dst_port_start, dst_port_end;
	__u8 protocol, match_flags;
	__u16 vlan_id;
	__u8 action, ct_state_mask, src_set_id, dst_set_id;
	__u8 tcp_flags_match, tcp_flags_mask, icmp_type, icmp_code;
	__u8 match_flags2, dscp_match;
	__u16 max_states;
	__u8 src_mac[6], dst_mac[6];
	__u8 dscp_mark, route_action;
	__u16 route_ifindex;
	__u32 iface_mask;
	__u32 rule_id;
};

/*
 * System (anti-lockout) rules: TCP destination-port allows checked before the
 * classifier. fw_sys_port[bank * 65536 + port] = first index + 1 (0 = none)
 * | count << 8 into fw_sys[bank * ES_FW_SYS_MAX + i].
 */
struct es_fw_sys_rule {
	__u32 rule_id;
	__u32 iface_mask; /* 0 = every interface */
	__u16 port;
	__u16 pad;
	__u32 pad2;
};

/* ---- LPM block lists (network.md §1.5, §2.4) --------------------------------------- */

struct es_fw_lpm_v4 {
	__u32 prefixlen;
	__u8 addr[4]; /* network order */
};

struct es_fw_lpm_v6 {
	__u32 prefixlen;
	__u8 addr[16];
};

struct es_fw_lpm_val {
	__u8 action; /* ES_FW_ACT_* */
	__u8 pad[3];
};

#define ES_FW_LPM_MAX 131072
#define ES_FW_LPM_SRC4 0
#define ES_FW_LPM_DST4 1
#define ES_FW_LPM_SRC6 2
#define ES_FW_LPM_DST6 3

/*
 * fw_globals[0]: switches the XDP program reads on every packet. lpm[i] =
 * entries in LPM trie i (0 = skip the lookup), written by the LPM
 * coordinator; zones = the zone gate is on, written by the zones domain.
 * Each field is written with one aligned store through mmap.
 */
struct es_fw_globals {
	__u32 lpm[4];
	__u32 zones;
};

/* ---- zones (network.md §2.6) ------------------------------------------------------ */

#define ES_ZONE_MAX 64
#define ES_ZONE_MAP_MAX 256
#define ES_ZONE_POLICY_MAX 4096
#define ES_ZONE_ALLOW 0
#define ES_ZONE_DENY 1

struct es_zone_policy {
	__u8 from, to, policy, pad;
};

#ifndef __bpf__
_Static_assert(sizeof(struct es_fw_bank) == 20, "bank header");
_Static_assert(sizeof(struct es_fw_cls) == 576, "class record");
_Static_assert(sizeof(struct es_fw_skip) == 40, "skip node");
_Static_assert(sizeof(struct es_fw_mac_key) == 8, "mac key");
_Static_assert(sizeof(struct es_fw_rule_v4) == 64, "IPv4 rule entry is 64 bytes");
_Static_assert(offsetof(struct es_fw_rule_v4, vlan_id) == 26, "v4 vlan_id");
_Static_assert(offsetof(struct es_fw_rule_v4, action) == 28, "v4 action");
_Static_assert(offsetof(struct es_fw_rule_v4, max_states) == 38, "v4 max_states");
_Static_assert(offsetof(struct es_fw_rule_v4, src_mac) == 40, "v4 src_mac");
_Static_assert(offsetof(struct es_fw_rule_v4, dscp_mark) == 52, "v4 dscp_mark");
_Static_assert(offsetof(struct es_fw_rule_v4, iface_mask) == 56, "v4 iface_mask @56");
_Static_assert(offsetof(struct es_fw_rule_v4, rule_id) == 60, "v4 rule_id @60");
_Static_assert(sizeof(struct es_fw_rule_v6) == 112, "IPv6 rule entry is 112 bytes");
_Static_assert(offsetof(struct es_fw_rule_v6, src_port_start) == 64, "v6 ports");
_Static_assert(offsetof(struct es_fw_rule_v6, iface_mask) == 104, "v6 iface_mask");
_Static_assert(offsetof(struct es_fw_rule_v6, rule_id) == 108, "v6 rule_id");
_Static_assert(sizeof(struct es_fw_sys_rule) == 16, "system rule");
_Static_assert(sizeof(struct es_fw_lpm_v4) == 8 && sizeof(struct es_fw_lpm_v6) == 20, "LPM keys");
_Static_assert(sizeof(struct es_zone_policy) == 4, "zone policy");
_Static_assert(sizeof(struct es_fw_globals) == 20, "globals");
_Static_assert(ES_FW_VT_PROTO6 >= ES_FW_VT_PROTO + 256 && ES_FW_VT_TCPF >= ES_FW_VT_PROTO6 + 256 &&
		   ES_FW_VT_DSCP >= ES_FW_VT_TCPF + 65 && ES_FW_VT_CT >= ES_FW_VT_DSCP + 64 &&
		   ES_FW_VT_IFACE >= ES_FW_VT_CT + ES_FW_CT__COUNT &&
		   ES_FW_VT_SMAC_MISS >= ES_FW_VT_IFACE + 33 &&
		   ES_FW_VT_VLAN > ES_FW_VT_DMAC_MISS && ES_FW_VT_ICMP >= ES_FW_VT_VLAN + 4096 &&
		   ES_FW_VT_SPORT >= ES_FW_VT_ICMP + 65537 &&
		   ES_FW_VT_DPORT >= ES_FW_VT_SPORT + 65537 &&
		   ES_FW_VT_PER_BANK >= ES_FW_VT_DPORT + 65537,
	       "value table layout");
_Static_assert(ES_FW_CLS_PER_BANK <= 0x8000 && ES_FW_CHUNKS_PER_BANK <= ES_FW_TE_ID + 1 &&
		   ES_FW_SKIPS_PER_BANK <= ES_FW_TE_ID + 1,
	       "ids fit the trie entry encoding");
_Static_assert(ES_FW_G__COUNT <= ES_FW_GROUPS, "summary slots");
#endif

#endif
