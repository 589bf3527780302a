/* SPDX-License-Identifier: AGPL-3.0-only */
/*
 * The IPS blacklist (detection.md §2.2 [Gap]): source addresses the IPS
 * engine blocks, written by the agent, enforced at TC ingress by tc_ids.
 * Value = expiry on the boot-time clock in ns, 0 = permanent. Pinned, so the
 * agent opens them by name.
 */
#ifndef ES_IPS_BLACKLIST_H
#define ES_IPS_BLACKLIST_H

#include "es_bpf.h"
#include "abi/ids.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ES_IPS_BLACKLIST_MAX);
	__type(key, __u32); /* IPv4, network order */
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ips_blacklist_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ES_IPS_BLACKLIST_MAX);
	__type(key, struct es_ips_v6key);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ips_blacklist_v6 SEC(".maps");

/* Is the parsed source address blacklisted and unexpired? */
static __always_inline int es_ips_blacklisted(const __u8 *src, int v6)
{
	__u64 *exp;

	if (v6) {
		struct es_ips_v6key k;

		__builtin_memcpy(k.addr, src, 16);
		exp = bpf_map_lookup_elem(&ips_blacklist_v6, &k);
	} else {
		__u32 k;

		__builtin_memcpy(&k, src + 12, 4);
		exp = bpf_map_lookup_elem(&ips_blacklist_v4, &k);
	}
	return exp && (*exp == 0 || *exp > bpf_ktime_get_boot_ns());
}

#endif
