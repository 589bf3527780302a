/* SPDX-License-Identifier: AGPL-3.0-only */
/* The packet event of network.md §1.6, filled from a parsed packet. */
#ifndef ES_PKT_EVENT_H
#define ES_PKT_EVENT_H

#include "es_bpf.h"
#include "parse.h"

/*
 * Emit one packet event of `type` on the events ring. Returns 0, or -1 when
 * the ring was too full (the caller counts its events_dropped).
 */
static __always_inline int es_pkt_event_emit(const struct es_pkt *pkt, __u32 ifindex, __u16 type,
					     __u8 action, __u32 rule_id)
{
	struct es_pkt_event *e = es_event_reserve(sizeof(*e), type, ES_PKT_EVENT_VERSION);
	int v6 = pkt->flags & ES_PKT_F_IPV6;

	if (!e)
		return -1;
	e->hdr.flags = (v6 ? ES_EVF_IPV6 : 0) | (pkt->flags & ES_PKT_F_VLAN ? ES_EVF_VLAN : 0);
	e->timestamp_ns = bpf_ktime_get_boot_ns();
	es_addr_words(e->src_addr, pkt->src, v6);
	es_addr_words(e->dst_addr, pkt->dst, v6);
	e->src_port = pkt->sport;
	e->dst_port = pkt->dport;
	e->protocol = pkt->proto;
	e->action = action;
	e->vlan_id = pkt->vlan_id;
	e->rule_id = rule_id;
	e->ifindex = ifindex;
	e->socket_cookie = 0;
	es_event_submit(e);
	return 0;
}

#endif
