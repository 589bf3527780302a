/* SPDX-License-Identifier: AGPL-3.0-only */
/*
 * The XDP chain (network.md §1.2): xdp_firewall is the entry on every
 * interface; the other XDP programs sit in slots of one pinned PROG_ARRAY and
 * are reached by tail calls. Pinned because an unpinned PROG_ARRAY is emptied
 * when the agent dies and the chain would silently fall through.
 */
#ifndef ES_XDP_CHAIN_H
#define ES_XDP_CHAIN_H

#include "es_bpf.h"

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, ES_XDP_SLOT__COUNT);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xdp_prog_array SEC(".maps");

/*
 * Continue the chain from `first` on: tail calls only return when the slot is
 * empty, so try each later slot in turn and pass when none is filled. Must be
 * called from the program's main function (tail calls from subprograms return
 * to their caller).
 */
#define ES_XDP_CONTINUE(ctx, first)                                                                \
	do {                                                                                       \
		if ((first) <= ES_XDP_SLOT_RATELIMIT)                                              \
			bpf_tail_call(ctx, &xdp_prog_array, ES_XDP_SLOT_RATELIMIT);                \
		if ((first) <= ES_XDP_SLOT_LOADBALANCER)                                           \
			bpf_tail_call(ctx, &xdp_prog_array, ES_XDP_SLOT_LOADBALANCER);             \
	} while (0)

#endif
