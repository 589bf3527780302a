/* SPDX-License-Identifier: AGPL-3.0-only */
/*
 * Connection tracking ABI (network.md §3.2): the pinned flow tables written by
 * tc_conntrack / tc_conntrack_egress (and annotated by NAT), read by the XDP
 * firewall (fast path, state matching, limits), the ratelimit/DDoS program
 * (ACK-flood check) and the agent (listing, sweeper).
 *
 * Byte order (network.md §0): IPv4 addresses are host-order numbers
 * (10.0.0.1 = 0x0A000001), IPv6 addresses u32[4] with word i the host-order
 * value of bytes 4i..4i+3; ports host order. Keys are normalized so that the
 * lower (address, port) endpoint is `src`; ES_CT_F_ORIG_IS_SRC tells whether
 * the initiator is that endpoint. Timestamps are CLOCK_BOOTTIME nanoseconds
 * (bpf_ktime_get_boot_ns), so flows keep ageing across a suspend.
 *
 * Kernel helpers that derive keys identically on every hook live in
 * src/kernel/bpf/ct.h together with the pinned map declarations.
 */
#ifndef ES_ABI_CONNTRACK_H
#define ES_ABI_CONNTRACK_H

#include "common.h"

/* Map sizes (network.md §1.5). */
#define ES_CT_V4_MAX 262144
#define ES_CT_V6_MAX 65536
#define ES_CT_SRC_MAX 65536
#define ES_CT_OVERLOAD_MAX 65536
#define ES_CT_REPLY_TO_MAX 65536
/* FW_RULE_STATE_COUNT: one u32 per firewall rule slot (two banks of 4096). */
#define ES_FW_RULE_SLOTS 8192
#define ES_CT_RULE_SLOT_NONE 0xFFFF

/* Entry states. */
enum es_ct_state {
	ES_CT_NEW = 0,
	ES_CT_ESTABLISHED = 1,
	ES_CT_RELATED = 2,
	ES_CT_INVALID = 3,
	ES_CT_SYN_SENT = 4,
	ES_CT_SYN_RECV = 5,
	ES_CT_FIN_WAIT = 6,
	ES_CT_CLOSE_WAIT = 7,
	ES_CT_TIME_WAIT = 8,
	ES_CT_STATE__COUNT,
	/* Derived by XDP when conntrack is off: no `state:` rule matches. */
	ES_CT_UNKNOWN = 0xFF,
};

/* Rule `state:` bits (firewall rule ct_state_mask, network.md §2.2). */
#define ES_CT_MASK_NEW 0x01
#define ES_CT_MASK_ESTABLISHED 0x02
#define ES_CT_MASK_RELATED 0x04
#define ES_CT_MASK_INVALID 0x08

/* Entry flags. */
#define ES_CT_F_SEEN_REPLY 0x01
#define ES_CT_F_ASSURED 0x02
#define ES_CT_F_NAT_SRC 0x04
#define ES_CT_F_NAT_DST 0x08
#define ES_CT_F_ORIG_IS_SRC 0x10 /* the initiator is the key's src endpoint */
#define ES_CT_F_REPLY_TO 0x20	 /* a CT_REPLY_TO entry exists for this flow */
#define ES_CT_F_DUP_TO 0x40	 /* mirror the original direction: route_rule's dup_to */
#define ES_CT_F_ROUTE_TO 0x80	 /* route the original direction: route_rule's route_to */

/* Entry nat_type. */
#define ES_CT_NAT_NONE 0
#define ES_CT_NAT_SNAT 1
#define ES_CT_NAT_DNAT 2

struct es_ct_key_v4 {
	__u32 src_ip;
	__u32 dst_ip;
	__u16 src_port; /* ICMP echo: the identifier (both ports); other ICMP: 0 */
	__u16 dst_port;
	__u8 protocol;
	__u8 pad[3]; /* zero */
};

struct es_ct_key_v6 {
	__u32 src_ip[4];
	__u32 dst_ip[4];
	__u16 src_port;
	__u16 dst_port;
	__u8 protocol;
	__u8 pad[3];
};

/*
 * fwd = from the initiator, rev = towards it. Counters are u32 (the spec's
 * layout); writers add atomically.
 */
struct es_ct_entry_v4 {
	__u8 state; /* enum es_ct_state */
	__u8 flags; /* ES_CT_F_* */
	__u8 nat_type;
	__u8 pad0;
	__u32 packets_fwd;
	__u32 packets_rev;
	__u32 bytes_fwd;
	__u32 bytes_rev;
	__u32
	    route_rule; /* rule whose dup_to / route_to the flow keeps (ES_CT_F_DUP_TO/ROUTE_TO) */
	__u64 first_seen_ns;
	__u64 last_seen_ns;
	__u32 nat_addr; /* translated address (host order) when NAT_SRC/NAT_DST */
	__u16 nat_port;
	__u16 rule_slot; /* firewall rule slot that admitted the flow, or ES_CT_RULE_SLOT_NONE */
};

struct es_ct_entry_v6 {
	__u8 state;
	__u8 flags;
	__u8 nat_type;
	__u8 pad0;
	__u32 packets_fwd;
	__u32 packets_rev;
	__u32 bytes_fwd;
	__u32 bytes_rev;
	__u32
	    route_rule; /* rule whose dup_to / route_to the flow keeps (ES_CT_F_DUP_TO/ROUTE_TO) */
	__u64 first_seen_ns;
	__u64 last_seen_ns;
	__u32 nat_addr[4];
	__u16 nat_port;
	__u16 rule_slot;
	__u8 pad2[4];
};

/* CT_CONFIG[0]: written by the agent at start and on reload. Timeouts in ns. */
struct es_ct_config {
	__u8 enabled;
	__u8 pad[3];
	__u32 max_src_states; /* 0 = unlimited */
	__u64 tcp_est_ns;
	__u64 tcp_syn_ns;
	__u64 tcp_fin_ns;
	__u64 udp_ns;
	__u64 udp_stream_ns;
	__u64 icmp_ns;
	__u32 max_src_conn_rate; /* new connections per window, 0 = unlimited */
	__u32 conn_rate_window_secs;
};

/* Per-source key: 16 bytes in network order, IPv4 mapped (::ffff:a.b.c.d). */
struct es_ct_addr16 {
	__u8 b[16];
};

/* CT_SRC_COUNTERS: addr16 → this. */
#define ES_CT_SRC_OVERLOADED 0x01
struct es_ct_src_counter {
	__u32 conn_count; /* flows this source initiated (recomputed by the sweeper) */
	__u32 conn_rate;  /* new flows in the current window */
	__u64 window_start_ns;
	__u8 flags; /* ES_CT_SRC_* */
	__u8 pad[7];
};

/*
 * The overload set (network.md §2.2 steps 3 and 8, "IP set 255"): sources
 * that exceeded max_src_conn_rate, dropped on every port until the agent
 * removes them after overload_ttl_secs or an operator clears them.
 * addr16 → this.
 */
struct es_ct_overload {
	__u64 since_ns; /* CLOCK_BOOTTIME when the source was added */
};

/* CT_REPLY_TO: conn key → where tc_conntrack_egress sends replies (§2.7). */
struct es_ct_reply_to {
	__u32 ifindex;
	__u8 mac[6];	  /* peer MAC the flow arrived from */
	__u8 orig_is_src; /* as ES_CT_F_ORIG_IS_SRC: which endpoint initiated */
	__u8 pad;
};

/*
 * skb->cb[0] at TC egress: tc_nat_egress (priority 1) sets it for packets of a
 * translated flow, so tc_conntrack_egress (priority 2) tracks their
 * post-translation tuple even when they were forwarded from an interface whose
 * ingress already tracked the pre-translation one. Any other value: not set.
 */
#define ES_TC_CB_NAT_FLOW 0xE5A7C0DEu

/* CT_METRICS per-CPU array indices (network.md §3.2, interfaces.md §6). */
enum es_ct_metric {
	ES_CT_M_NEW = 0,
	ES_CT_M_ESTABLISHED,
	ES_CT_M_CLOSED,
	ES_CT_M_INVALID,
	ES_CT_M_EVICTED, /* reserved */
	ES_CT_M_ERRORS,
	ES_CT_M_LOOKUPS,
	ES_CT_M_HITS,
	ES_CT_M_TOTAL_SEEN,
	ES_CT_M__COUNT,
};

/* Defaults of the `conntrack:` section (network.md §3.1). */
#define ES_CT_DEF_TCP_EST_SECS 432000
#define ES_CT_DEF_TCP_SYN_SECS 120
#define ES_CT_DEF_TCP_FIN_SECS 120
#define ES_CT_DEF_UDP_SECS 30
#define ES_CT_DEF_UDP_STREAM_SECS 120
#define ES_CT_DEF_ICMP_SECS 30
#define ES_CT_DEF_RATE_WINDOW_SECS 5
#define ES_CT_DEF_OVERLOAD_TTL_SECS 3600

#ifdef __bpf__
#define ES_CT_INLINE static __always_inline
#else
#define ES_CT_INLINE static inline
#endif

/*
 * Idle timeout of an entry in `state` for protocol `proto` (network.md §3.2):
 * SYN_* tcp_syn, TCP ESTABLISHED tcp_est, closing states tcp_fin, UDP NEW udp,
 * UDP ESTABLISHED udp_stream, ICMP icmp. Shared by the kernel and the sweeper.
 */
ES_CT_INLINE __u64 es_ct_timeout_ns(const struct es_ct_config *c, __u8 proto, __u8 state)
{
	if (proto == 6) { /* TCP */
		switch (state) {
		case ES_CT_ESTABLISHED: return c->tcp_est_ns;
		case ES_CT_FIN_WAIT:
		case ES_CT_CLOSE_WAIT:
		case ES_CT_TIME_WAIT: return c->tcp_fin_ns;
		default: return c->tcp_syn_ns;
		}
	}
	if (proto == 17) /* UDP */
		return state == ES_CT_NEW ? c->udp_ns : c->udp_stream_ns;
	return c->icmp_ns;
}

/* Not idle past its timeout at `now` (a concurrent writer may be ahead of now). */
ES_CT_INLINE int es_ct_is_live(const struct es_ct_config *c, __u8 proto, __u8 state,
			       __u64 last_seen_ns, __u64 now)
{
	return last_seen_ns >= now || now - last_seen_ns <= es_ct_timeout_ns(c, proto, state);
}

#ifndef __bpf__
_Static_assert(sizeof(struct es_ct_key_v4) == 16, "ct key v4 is 16 bytes");
_Static_assert(sizeof(struct es_ct_key_v6) == 40, "ct key v6 is 40 bytes");
_Static_assert(sizeof(struct es_ct_entry_v4) == 48, "ct entry v4 is 48 bytes");
_Static_assert(sizeof(struct es_ct_entry_v6) == 64, "ct entry v6 is 64 bytes");
_Static_assert(offsetof(struct es_ct_entry_v4, first_seen_ns) == 24, "first_seen_ns @24");
_Static_assert(offsetof(struct es_ct_entry_v4, last_seen_ns) == 32, "last_seen_ns @32");
_Static_assert(offsetof(struct es_ct_entry_v4, nat_addr) == 40, "nat_addr @40");
_Static_assert(offsetof(struct es_ct_entry_v4, rule_slot) == 46, "rule_slot @46");
_Static_assert(offsetof(struct es_ct_entry_v6, nat_addr) == 40, "v6 nat_addr @40");
_Static_assert(offsetof(struct es_ct_entry_v6, nat_port) == 56, "v6 nat_port @56");
_Static_assert(offsetof(struct es_ct_entry_v6, rule_slot) == 58, "v6 rule_slot @58");
_Static_assert(sizeof(struct es_ct_config) == 64, "ct_config is 64 bytes");
_Static_assert(offsetof(struct es_ct_config, max_src_states) == 4, "max_src_states @4");
_Static_assert(offsetof(struct es_ct_config, tcp_est_ns) == 8, "tcp_est @8");
_Static_assert(offsetof(struct es_ct_config, icmp_ns) == 48, "icmp @48");
_Static_assert(offsetof(struct es_ct_config, max_src_conn_rate) == 56, "max_src_conn_rate @56");
_Static_assert(offsetof(struct es_ct_config, conn_rate_window_secs) == 60, "window @60");
_Static_assert(sizeof(struct es_ct_src_counter) == 24, "src_state_counter is 24 bytes");
_Static_assert(offsetof(struct es_ct_src_counter, flags) == 16, "src counter flags @16");
_Static_assert(sizeof(struct es_ct_reply_to) == 12, "reply_to entry is 12 bytes");
_Static_assert(sizeof(struct es_ct_addr16) == 16, "addr16 is 16 bytes");
#endif

#endif /* ES_ABI_CONNTRACK_H */
