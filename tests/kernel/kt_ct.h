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

/* An ICMP(v6) port unreachable from `s` to `d` quoting a UDP datagram isrc:isp → idst:idp. */
static inline void icmp_err(struct pb *p, int v6, const char *s, const char *d, const char *isrc,
			    const char *idst, __u16 isp, __u16 idp)
{
	pb_init(p);
	pb_eth(p, v6 ? PB_ETH_IPV6 : PB_ETH_IP);
	if (v6) {
		struct in6_addr a, b;

		pb_ipv6(p, s, d, 58);
		pb_icmp(p, 1, 4); /* destination unreachable, port unreachable */
		inet_pton(AF_INET6, isrc, &a);
		inet_pton(AF_INET6, idst, &b);
		pb_be32(p, 0x60000000);
		pb_be16(p, 16);
		pb_u8(p, IPPROTO_UDP);
		pb_u8(p, 64);
		pb_put(p, &a, 16);
		pb_put(p, &b, 16);
	} else {
		struct in_addr a, b;

		pb_ipv4(p, s, d, IPPROTO_ICMP, 0, 0);
		pb_icmp(p, 3, 3);
		inet_pton(AF_INET, isrc, &a);
		inet_pton(AF_INET, idst, &b);
		pb_u8(p, 0x45);
		pb_u8(p, 0);
		pb_be16(p, 36);
		pb_be32(p, 0);
		pb_u8(p, 64);
		pb_u8(p, IPPROTO_UDP);
		pb_be16(p, 0);
		pb_put(p, &a, 4);
		pb_put(p, &b, 4);
	}
	pb_be16(p, isp);
	pb_be16(p, idp);
	pb_be16(p, 16);
	pb_be16(p, 0);
	pb_finish(p);
}

#endif
