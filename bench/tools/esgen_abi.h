/* SPDX-License-Identifier: AGPL-3.0-only */
/* Layouts shared by the bench programs (esgen.bpf.c) and their loader (esgen.c). */
#ifndef ESGEN_ABI_H
#define ESGEN_ABI_H

#define ESGEN_MAX_KEYS 65536

/* One lookup key written into the frame: addresses (IPv4 in the last 4 bytes)
 * and ports, in network byte order. */
struct esgen_key {
	__u8 src[16];
	__u8 dst[16];
	__u16 sport;
	__u16 dport;
};

_Static_assert(sizeof(struct esgen_key) == 36, "esgen_key layout");

#endif
