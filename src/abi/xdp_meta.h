/* SPDX-License-Identifier: AGPL-3.0-only */
/*
 * XDP → TC metadata (network.md §1.4): the firewall prepends it with
 * bpf_xdp_adjust_meta(-8) on PASS/LOG, the ratelimit program updates byte 5
 * in place, and TC ingress programs trust it only when
 * data_meta + 8 <= data and ES_META_F_PRESENT is set.
 */
#ifndef ES_ABI_XDP_META_H
#define ES_ABI_XDP_META_H

#include "common.h"

#define ES_META_F_PRESENT 0x01
#define ES_META_F_DUP_TO 0x02
#define ES_META_F_REPLY_TO 0x04
#define ES_META_F_NEW_FLOW 0x08
#define ES_META_F_ROUTE_TO 0x10 /* conntrack on: tc_conntrack routes it (docs/firewall.md) */

/* ratelimit_status */
#define ES_META_RL_UNCHECKED 0
#define ES_META_RL_PASSED 1
#define ES_META_RL_OVER_MONITOR 2

struct es_xdp_meta {
	__u32 rule_id;	       /* rule that passed the packet (0 = default policy) */
	__u8 action;	       /* 0 pass, 2 log */
	__u8 ratelimit_status; /* ES_META_RL_* */
	__u8 meta_flags;       /* ES_META_F_* */
	__u8 pad;
};

#ifndef __bpf__
_Static_assert(sizeof(struct es_xdp_meta) == 8, "xdp_meta is 8 bytes");
_Static_assert(offsetof(struct es_xdp_meta, action) == 4, "action @4");
_Static_assert(offsetof(struct es_xdp_meta, meta_flags) == 6, "meta_flags @6");
#endif

#endif
