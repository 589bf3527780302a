/* SPDX-License-Identifier: AGPL-3.0-only */
/*
 * Policy routing maps shared by xdp_firewall (route_to) and the conntrack TC
 * programs (reply_to, dup_to), pinned by name (network.md §2.7).
 */
#ifndef ES_ROUTE_H
#define ES_ROUTE_H

#include "es_bpf.h"

#include "abi/routing.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ES_ROUTE_TARGETS_MAX);
	__type(key, __u32); /* rule_id */
	__type(value, struct es_route_target);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} fw_route_targets SEC(".maps");

/*
 * FW_DEVMAP: egress devices of route_to from XDP, slot → ifindex; the routing
 * domain fills the slots its targets name (es_route_target.devmap_slot).
 */
struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(max_entries, ES_DEVMAP_MAX);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} fw_devmap SEC(".maps");

static __always_inline struct es_route_target *es_route_target_get(__u32 rule_id)
{
	return bpf_map_lookup_elem(&fw_route_targets, &rule_id);
}

#endif
