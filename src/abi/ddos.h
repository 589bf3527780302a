/* SPDX-License-Identifier: AGPL-3.0-only */
/*
 * DDoS ABI (network.md §7.2): the kernel checks' configuration maps, state
 * keys and counters, shared by xdp_ratelimit and the ddos domain.
 */
#ifndef ES_ABI_DDOS_H
#define ES_ABI_DDOS_H

#include "common.h"
#include "ratelimit.h"

/* DDOS_SYN_CONFIG, 16 bytes. */
struct es_ddos_syn_config {
	__u8 enabled;
	__u8 threshold_mode;
	__u8 flags; /* ES_DDOS_SYN_F_* (ours, in the spec's padding) */
	__u8 pad[5];
	__u64 threshold_pps;
};

/* The agent installed a SYN proxy (netfilter SYNPROXY) for forwarded flows:
 * answering SYNs with raw cookies is safe when no local listener matches. */
#define ES_DDOS_SYN_F_SYNPROXY 0x01
/* Check pure ACKs that land on a local listener against the cookie. */
#define ES_DDOS_SYN_F_CHECK_ACK 0x02

/* ICMP_CONFIG, 8 bytes. */
struct es_ddos_icmp_config {
	__u8 enabled;
	__u8 pad;
	__u16 max_payload_size;
	__u32 max_pps;
};

/* AMP_PROTECT_CONFIG: {source port, protocol} -> limit. */
struct es_ddos_amp_key {
	__u16 port;
	__u8 protocol;
	__u8 pad;
};

struct es_ddos_amp_config {
	__u8 enabled;
	__u8 pad[3];
	__u32 max_pps;
};

/* CONNTRACK_CONFIG (the DDoS flood tracker's, not CT_CONFIG), 32 bytes. */
struct es_ddos_ct_config {
	__u8 enabled;
	__u8 ack_check; /* ours: 1 when the shared conntrack table is live (ACK-flood check) */
	__u8 pad[2];
	__u32 half_open;
	__u32 rst;
	__u32 fin;
	__u32 ack;
	__u32 pad2;
	__u64 timeout_ns;
};

/* Fixed 1 s windows of the rate trackers. */
struct es_ddos_window {
	__u64 count;
	__u64 window_start;
};

struct es_ddos_amp_state_key {
	__u8 addr[16];
	__u16 port;
	__u8 pad[2];
};

#define ES_DDOS_FLOOD_RST 0
#define ES_DDOS_FLOOD_FIN 1
#define ES_DDOS_FLOOD_ACK 2

struct es_ddos_flood_key {
	__u8 addr[16];
	__u8 type; /* ES_DDOS_FLOOD_* */
	__u8 pad[3];
};

/* CONN_TABLE: directional {src, dst, sport, dport} -> state. */
struct es_ddos_conn_key {
	__u8 src[16];
	__u8 dst[16];
	__u16 sport;
	__u16 dport;
};

#define ES_DDOS_CONN_NEW 0
#define ES_DDOS_CONN_ESTABLISHED 1
#define ES_DDOS_CONN_CLOSING 2

struct es_ddos_conn {
	__u8 state;
	__u8 pad[7];
	__u64 first_seen;
	__u64 last_seen;
};

/* DDOS_METRICS per-CPU indices. */
enum es_ddos_metric {
	ES_DDOS_M_SYN_RECEIVED = 0,
	ES_DDOS_M_SYNCOOKIES_SENT,
	ES_DDOS_M_ICMP_PASSED,
	ES_DDOS_M_ICMP_DROPPED,
	ES_DDOS_M_AMP_PASSED,
	ES_DDOS_M_AMP_DROPPED,
	ES_DDOS_M_OVERSIZED_ICMP,
	ES_DDOS_M_ERRORS,
	ES_DDOS_M_EVENTS_DROPPED,
	ES_DDOS_M_CONN_TRACKED,
	ES_DDOS_M_HALF_OPEN_DROPS,
	ES_DDOS_M_RST_FLOOD_DROPS,
	ES_DDOS_M_FIN_FLOOD_DROPS,
	ES_DDOS_M_ACK_FLOOD_DROPS,
	ES_DDOS_M_TOTAL_SEEN,
	ES_DDOS_M__COUNT,
};

/* Event actions (es_pkt_event.action) of the DDoS event types. */
#define ES_DDOS_EV_SYNCOOKIE 10
#define ES_DDOS_EV_DROP 11
/* ES_EV_DDOS_CONNTRACK carries the sub-type as its action. */
#define ES_DDOS_CT_HALF_OPEN 0
#define ES_DDOS_CT_RST 1
#define ES_DDOS_CT_FIN 2
#define ES_DDOS_CT_ACK 3

#ifndef __bpf__
_Static_assert(sizeof(struct es_ddos_syn_config) == 16, "DDOS_SYN_CONFIG is 16 bytes");
_Static_assert(offsetof(struct es_ddos_syn_config, threshold_pps) == 8, "threshold_pps @8");
_Static_assert(sizeof(struct es_ddos_icmp_config) == 8, "ICMP_CONFIG is 8 bytes");
_Static_assert(offsetof(struct es_ddos_icmp_config, max_pps) == 4, "max_pps @4");
_Static_assert(sizeof(struct es_ddos_amp_key) == 4, "amp key");
_Static_assert(sizeof(struct es_ddos_amp_config) == 8, "amp value");
_Static_assert(sizeof(struct es_ddos_ct_config) == 32, "CONNTRACK_CONFIG is 32 bytes");
_Static_assert(offsetof(struct es_ddos_ct_config, timeout_ns) == 24, "timeout_ns @24");
_Static_assert(sizeof(struct es_ddos_conn_key) == 36, "conn key");
_Static_assert(sizeof(struct es_ddos_conn) == 24, "conn value");
#endif

#endif
