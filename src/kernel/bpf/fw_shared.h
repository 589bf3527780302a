/* SPDX-License-Identifier: AGPL-3.0-only */
/*
 * Firewall maps other parts of the agent write (network.md §1.5, §2.6): the
 * LPM block lists (IPS, DDoS, GeoIP, aliases, DNS — through the agent's LPM
 * coordinator, which also keeps their sizes in fw_globals so the XDP
 * program skips empty tries) and the zone maps (the zones domain). Pinned by name.
 */
#ifndef ES_FW_SHARED_H
#define ES_FW_SHARED_H

#include "es_bpf.h"

#include "abi/firewall.h"

#define ES_FW_LPM_MAP(name, keytype)                                                               \
	struct {                                                                                   \
		__uint(type, BPF_MAP_TYPE_LPM_TRIE);                                               \
		__uint(max_entries, ES_FW_LPM_MAX);                                                \
		__type(key, keytype);                                                              \
		__type(value, struct es_fw_lpm_val);                                               \
		__uint(map_flags, BPF_F_NO_PREALLOC);                                              \
		__uint(pinning, LIBBPF_PIN_BY_NAME);                                               \
	} name SEC(".maps")

ES_FW_LPM_MAP(fw_lpm_src_v4, struct es_fw_lpm_v4);
ES_FW_LPM_MAP(fw_lpm_dst_v4, struct es_fw_lpm_v4);
ES_FW_LPM_MAP(fw_lpm_src_v6, struct es_fw_lpm_v6);
ES_FW_LPM_MAP(fw_lpm_dst_v6, struct es_fw_lpm_v6);

/* fw_globals[0]: what the XDP program checks before doing more (mmapped by the agent). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct es_fw_globals);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} fw_globals SEC(".maps");

/* ZONE_MAP: ifindex → zone id (1-based, config order). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ES_ZONE_MAP_MAX);
	__type(key, __u32);
	__type(value, __u8);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} zone_map SEC(".maps");

/* ZONE_POLICY: (from << 8) | to → policy; (z, z) = intra-zone default. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ES_ZONE_POLICY_MAX);
	__type(key, __u32);
	__type(value, struct es_zone_policy);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} zone_policy SEC(".maps");

#endif
