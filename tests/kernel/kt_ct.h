/* SPDX-License-Identifier: AGPL-3.0-only */
/* Conntrack helpers for the kernel tests: CT_CONFIG with short timeouts. */
#ifndef ES_KT_CT_H
#define ES_KT_CT_H

#include "kt.h"
#include "abi/conntrack.h"

#define KT_NS 1000000000ull

/*
 * Write CT_CONFIG through map_fd. Timeouts are short (SYN/FIN/UDP stream 12 s,
 * UDP/ICMP 3 s) so that "idle for longer" fits in any machine's uptime.
 */
static inline void kt_ct_config(int map_fd, int enabled)
{
	struct es_ct_config c = {
	    .enabled = (__u8)enabled,
	    .tcp_est_ns = 432000 * KT_NS,
	    .tcp_syn_ns = 12 * KT_NS,
	    .tcp_fin_ns = 12 * KT_NS,
	    .udp_ns = 3 * KT_NS,
	    .udp_stream_ns = 12 * KT_NS,
	    .icmp_ns = 3 * KT_NS,
	    .conn_rate_window_secs = 5,
	};
	__u32 zero = 0;

	cr_assert_eq(bpf_map_update_elem(map_fd, &zero, &c, BPF_ANY), 0);
}

#endif
