/* SPDX-License-Identifier: AGPL-3.0-only */
/*
 * Types shared by the kernel programs and the agent. Fixed-width fields only,
 * explicit padding, sizes and offsets asserted at the bottom. Both sides
 * include this header: the BPF side through vmlinux.h types, userspace through
 * <linux/types.h>.
 */
#ifndef ES_ABI_COMMON_H
#define ES_ABI_COMMON_H

#ifndef __bpf__
#include <linux/types.h>
#include <stddef.h>
#endif

/* Default pin directory; overridable with agent.bpffs_dir (tests use their own). */
#define ES_PIN_DIR_DEFAULT "/sys/fs/bpf/ebpfsentinel"

/* ---- programs ------------------------------------------------------------ */

/* Program ids index the reason counters; names are in es_prog_names(). */
enum es_prog_id {
	ES_PROG_XDP_FIREWALL = 0,
	ES_PROG_XDP_RATELIMIT,
	ES_PROG_XDP_LOADBALANCER,
	ES_PROG_TC_CONNTRACK,
	ES_PROG_TC_CONNTRACK_EGRESS,
	ES_PROG_TC_SCRUB,
	ES_PROG_TC_NAT_INGRESS,
	ES_PROG_TC_NAT_EGRESS,
	ES_PROG_TC_THREATINTEL,
	ES_PROG_TC_IDS,
	ES_PROG_TC_DNS,
	ES_PROG_UPROBE_DLP,
	ES_PROG__COUNT,
};

/* XDP tail-call slots in the pinned PROG_ARRAY (network.md §1.2). */
enum es_xdp_slot {
	ES_XDP_SLOT_RATELIMIT = 0,
	ES_XDP_SLOT_LOADBALANCER = 1,
	ES_XDP_SLOT__COUNT = 4,
};

/* ---- reasons ------------------------------------------------------------- */

/*
 * Why a packet left a program the way it did. Every exit path counts exactly
 * one reason; /metrics exposes them by name (es_reason_name()). Append only:
 * the numbering is part of the pinned map's meaning.
 */
#define ES_REASONS(X)                                                                              \
	X(PASS, "pass")	    /* no opinion, passed on */                                            \
	X(NON_IP, "non_ip") /* ARP and other ethertypes */                                         \
	X(TRUNC_ETH, "truncated_ethernet")                                                         \
	X(TRUNC_VLAN, "truncated_vlan")                                                            \
	X(VLAN_TOO_DEEP, "vlan_too_deep") /* more than two tags */                                 \
	X(TRUNC_IPV4, "truncated_ipv4")                                                            \
	X(BAD_IHL, "bad_ipv4_ihl")                                                                 \
	X(BAD_IPV4_LEN, "bad_ipv4_total_length")                                                   \
	X(TRUNC_IPV6, "truncated_ipv6")                                                            \
	X(TRUNC_EXTHDR, "truncated_ipv6_extension")                                                \
	X(EXTHDR_TOO_MANY, "ipv6_extension_chain_too_long")                                        \
	X(TRUNC_L4, "truncated_l4")                                                                \
	X(FRAGMENT, "fragment_no_l4")	/* non-first fragment: no L4 view */                       \
	X(DISABLED, "program_disabled") /* feature flag off */                                     \
	X(FW_RULE_PASS, "firewall_rule_pass")                                                      \
	X(FW_RULE_DROP, "firewall_rule_drop")                                                      \
	X(FW_RULE_LOG, "firewall_rule_log")                                                        \
	X(FW_DEFAULT_PASS, "firewall_default_pass")                                                \
	X(FW_DEFAULT_DROP, "firewall_default_drop")                                                \
	X(FW_LPM_DROP, "firewall_lpm_drop")                                                        \
	X(FW_OVERLOAD_DROP, "firewall_overload_drop")                                              \
	X(FW_ZONE_DROP, "firewall_zone_drop")                                                      \
	X(FW_LIMIT_DROP, "firewall_conn_limit_drop")                                               \
	X(FW_FASTPATH, "firewall_conntrack_fastpath")                                              \
	X(INTERNAL_ERROR, "internal_error")                                                        \
	X(EVENT_DROPPED, "event_dropped")      /* ring >75% full or reserve failed */              \
	X(CT_UNTRACKED, "conntrack_untracked") /* protocol or ICMP type without state */           \
	X(CT_INVALID, "conntrack_invalid")     /* TCP other than SYN without an entry */           \
	X(CT_SEEN_AT_INGRESS, "conntrack_tracked_at_ingress") /* forwarded, counted once */        \
	X(CT_REPLY_TO, "conntrack_reply_to_redirect")                                              \
	X(IDS_ALERT, "ids_alert")    /* pattern hit, alert only */                                 \
	X(IDS_DROP, "ids_rule_drop") /* pattern hit, block */                                      \
	X(IPS_BLACKLIST_DROP, "ips_blacklist_drop")                                                \
	X(NAT_UNTRANSLATABLE, "nat_not_translatable") /* not TCP/UDP/ICMP echo, or a fragment */   \
	X(NAT_TRANSLATED, "nat_translated")                                                        \
	X(NAT_NO_ADDRESS, "nat_interface_without_address")                                         \
	X(NAT_PORT_EXHAUSTED, "nat_port_exhausted")                                                \
	X(RL_DROP, "ratelimit_drop")                                                               \
	X(RL_MONITOR, "ratelimit_over_limit_monitor") /* action pass: reported, passed */          \
	X(DDOS_SYNCOOKIE, "ddos_syncookie_sent")      /* SYN answered at XDP (XDP_TX) */           \
	X(DDOS_SYN_DROP, "ddos_syn_drop")	      /* over threshold, no cookie possible */     \
	X(DDOS_BAD_COOKIE, "ddos_bad_cookie_ack")     /* ACK to a listener, cookie invalid */      \
	X(DDOS_ICMP_DROP, "ddos_icmp_drop")                                                        \
	X(DDOS_AMP_DROP, "ddos_amplification_drop")                                                \
	X(DDOS_FLOOD_DROP, "ddos_conn_flood_drop") /* half-open, RST, FIN or ACK flood */          \
	X(DDOS_BLOCKED, "ddos_auto_block_drop")                                                    \
	X(CT_ROUTE_TO, "conntrack_route_to_redirect") /* route_to of a tracked flow, at TC */

enum es_reason {
#define ES_REASON_ENUM(n, s) ES_R_##n,
	ES_REASONS(ES_REASON_ENUM)
#undef ES_REASON_ENUM
	    ES_R__COUNT,
};

/* Reason counters: PERCPU_ARRAY indexed by prog * ES_REASON_STRIDE + reason. */
#define ES_REASON_STRIDE 64
#define ES_REASON_SLOTS (ES_PROG__COUNT * ES_REASON_STRIDE)

/* ---- feature flags ------------------------------------------------------- */

/* CONFIG_FLAGS (network.md §1.5): one u8 per feature, 1 = enabled. */
enum es_feature {
	ES_FEAT_FIREWALL = 0,
	ES_FEAT_IDS,
	ES_FEAT_IPS,
	ES_FEAT_DLP,
	ES_FEAT_RATELIMIT,
	ES_FEAT_THREATINTEL,
	ES_FEAT_CONNTRACK,
	ES_FEAT_NAT,
	ES_FEAT__COUNT,
};

struct es_config_flags {
	__u8 flag[8];
};

/* ---- events -------------------------------------------------------------- */

/*
 * Every ring buffer record starts with this header. Consumers reject records
 * whose len is shorter than the type's fixed size or whose version they do not
 * know, and count them.
 */
struct es_event_hdr {
	__u16 type;   /* enum es_event_type */
	__u8 version; /* layout version of that type */
	__u8 flags;   /* ES_EVF_* */
	__u16 len;    /* whole record, header included */
	__u16 cpu;
};

enum es_event_type {
	ES_EV_FIREWALL = 0,
	ES_EV_IDS = 1,
	ES_EV_IPS = 2,
	ES_EV_DLP = 3,
	ES_EV_RATELIMIT = 4,
	ES_EV_THREATINTEL = 5,
	ES_EV_L7 = 6,
	ES_EV_DNS = 7,
	ES_EV_DDOS_SYN = 10,
	ES_EV_DDOS_ICMP = 11,
	ES_EV_DDOS_AMP = 12,
	ES_EV_DDOS_CONNTRACK = 13,
	ES_EV_LB = 14,
	ES_EV__MAX = 32,
};

#define ES_EVF_IPV6 0x01
#define ES_EVF_VLAN 0x02

/*
 * The packet event of network.md §1.6 behind the common header. Addresses
 * are in the spec's host-order words (IPv4 in word 0).
 */
struct es_pkt_event {
	struct es_event_hdr hdr;
	__u64 timestamp_ns; /* CLOCK_BOOTTIME */
	__u32 src_addr[4];
	__u32 dst_addr[4];
	__u16 src_port;
	__u16 dst_port;
	__u8 protocol;
	__u8 action;
	__u16 vlan_id;
	__u32 rule_id;
	__u32 ifindex;
	__u64 socket_cookie;
};

#define ES_PKT_EVENT_VERSION 1

/* Ring buffer sizes and the producer backpressure threshold (75 %). */
#define ES_EVENTS_RING_BYTES (1 << 20)
#define ES_EVENTS_RING_HIGH_WATER (ES_EVENTS_RING_BYTES / 4 * 3)
/* Producers wake the reader each time the pending data crosses a multiple of
 * this (a power of two); below it the reader's timed poll collects them. */
#define ES_EVENTS_RING_WAKE_BYTES (ES_EVENTS_RING_BYTES / 16)
#define ES_EVENTS_READER_POLL_MS 50

#ifndef __bpf__
_Static_assert(sizeof(struct es_event_hdr) == 8, "event header is 8 bytes");
_Static_assert(sizeof(struct es_pkt_event) == 72, "packet event is 72 bytes");
_Static_assert(offsetof(struct es_pkt_event, timestamp_ns) == 8, "timestamp after header");
_Static_assert(offsetof(struct es_pkt_event, src_addr) == 16, "src_addr offset");
_Static_assert(offsetof(struct es_pkt_event, rule_id) == 56, "rule_id offset");
_Static_assert(offsetof(struct es_pkt_event, socket_cookie) == 64, "socket_cookie offset");
_Static_assert(ES_R__COUNT <= ES_REASON_STRIDE, "reason stride too small");
#endif

#endif /* ES_ABI_COMMON_H */
