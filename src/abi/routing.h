/* SPDX-License-Identifier: AGPL-3.0-only */
/*
 * Policy routing ABI (network.md §2.7): per-rule targets of route_to,
 * reply_to and dup_to, written by the agent (the routing domain re-points
 * route_to targets on gateway failover) and read by xdp_firewall and the
 * conntrack TC programs.
 */
#ifndef ES_ABI_ROUTING_H
#define ES_ABI_ROUTING_H

#include "common.h"

#define ES_ROUTE_TARGETS_MAX 4096
#define ES_DEVMAP_MAX 64

/* Firewall rule route_action. */
#define ES_ROUTE_NONE 0
#define ES_ROUTE_TO 1
#define ES_ROUTE_REPLY_TO 2
#define ES_ROUTE_DUP_TO 3

/* FW_ROUTE_TARGETS: rule_id → this. */
struct es_route_target {
	__u32 ifindex;	  /* egress interface (route_to), reply or mirror interface */
	__u8 devmap_slot; /* FW_DEVMAP slot of ifindex (route_to from XDP) */
	__u8 family;	  /* 4 or 6: family of gw; 0 when no gateway */
	__u8 pad[2];
	__u32 gw[4]; /* next hop, network.md §0 words (IPv4 in word 0) */
};

#ifndef __bpf__
_Static_assert(sizeof(struct es_route_target) == 24, "route target is 24 bytes");
_Static_assert(offsetof(struct es_route_target, gw) == 8, "gw @8");
#endif

#endif
