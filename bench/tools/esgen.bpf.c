// SPDX-License-Identifier: AGPL-3.0-only
/*
 * Bench-only XDP programs (never part of the agent):
 *  - xdp_gen:  live-frames generator; rewrites the source address and port of
 *              each frame to one of `flows` values, then XDP_TX (or redirect);
 *  - xdp_sink: pass-through for receiving veths (native veth XDP_TX/REDIRECT
 *              frames are lost unless the peer runs an XDP program);
 *  - xdp_drop: the trivial baseline for per-packet costs;
 *  - xdp_keys: writes a different lookup key into the frame on every repeat,
 *              then tail-calls the program under test (slot 0 of cost_progs).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "bench/tools/esgen_abi.h"

char LICENSE[] SEC("license") = "GPL";

const volatile __u32 gen_flows = 1;
const volatile __u32 gen_redirect_ifindex; /* 0: XDP_TX */
const volatile __u32 keys_count = 1;
const volatile __u8 frame_v6; /* 0: IPv4 */

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} seq SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, ESGEN_MAX_KEYS);
	__type(key, __u32);
	__type(value, struct esgen_key);
} cost_keys SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} cost_progs SEC(".maps");

/* RFC 1624 incremental update of a one's complement checksum: 16-bit word m -> m2. */
static __always_inline __u16 csum_replace16(__u16 csum, __u16 m, __u16 m2)
{
	__u32 s = (__u16)~csum + (__u16)~m + (__u32)m2;

	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)~s;
}

static __always_inline __u64 next_seq(void)
{
	__u32 zero = 0;
	__u64 *s = bpf_map_lookup_elem(&seq, &zero);

	if (!s)
		return 0;
	return (*s)++;
}

/* The frame's MACs (tests/kernel/pkt.h: pb_eth). */
static const __u8 gen_dst_mac[6] = {0x02, 0, 0, 0, 0, 0x02};
static const __u8 gen_src_mac[6] = {0x02, 0, 0, 0, 0, 0x01};

/* Offsets (untagged Ethernet): IPv4 saddr 26, L4 34; IPv6 saddr 22, L4 54. */
SEC("xdp")
int xdp_gen(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 f = (__u32)(next_seq() % gen_flows);
	__u16 addr = bpf_htons((__u16)(f & 0xffff)), port = bpf_htons((__u16)(1024 + f % 60000));
	__u16 *a, *p, *ipc, *l4c, old, sum;
	__u8 *l4proto;
	bool udp;

	if (frame_v6) {
		if (data + 54 + 8 > data_end)
			return XDP_ABORTED;
		a = data + 22 + 14; /* low 16 bits of the source address */
		l4proto = data + 20;
		ipc = 0;
		p = data + 54;
	} else {
		if (data + 34 + 8 > data_end)
			return XDP_ABORTED;
		a = data + 26 + 2;
		l4proto = data + 23;
		ipc = data + 24;
		p = data + 34;
	}
	udp = *l4proto == 17;
	l4c = udp ? (void *)p + 6 : (void *)p + 16;
	if ((void *)(l4c + 1) > data_end) /* TCP's checksum is at 16 */
		return XDP_ABORTED;
	/* Pages come back from the live-frames pool as the receiver left them: a
	 * system under test that forwards rewrote the MACs and the TTL in place
	 * (NAT the addresses too: those are covered by the incremental updates
	 * below). Re-stamp MACs and TTL / hop limit, or recycled frames arrive as
	 * PACKET_OTHERHOST with a dwindling TTL. */
	__builtin_memcpy(data, gen_dst_mac, 6);
	__builtin_memcpy(data + 6, gen_src_mac, 6);
	if (frame_v6) {
		*((__u8 *)data + 21) = 64;
	} else if (*((__u8 *)data + 22) != 64) {
		__u16 *tw = data + 22, ow = *tw;

		*((__u8 *)data + 22) = 64;
		*ipc = csum_replace16(*ipc, ow, *tw);
	}
	/* Checksums are updated, not recomputed: the frames reach real sockets. */
	old = *a;
	*a = addr;
	if (ipc)
		*ipc = csum_replace16(*ipc, old, addr);
	sum = csum_replace16(*l4c, old, addr);
	old = *p;
	*p = port;
	sum = csum_replace16(sum, old, port);
	*l4c = udp && !sum ? 0xffff : sum; /* 0 means "no checksum" in UDP */
	if (gen_redirect_ifindex)
		return bpf_redirect(gen_redirect_ifindex, 0);
	return XDP_TX;
}

SEC("xdp")
int xdp_sink(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("xdp")
int xdp_drop(struct xdp_md *ctx)
{
	return XDP_DROP;
}

SEC("xdp")
int xdp_keys(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 i = (__u32)(next_seq() % keys_count);
	struct esgen_key *k = bpf_map_lookup_elem(&cost_keys, &i);

	if (!k)
		return XDP_ABORTED;
	if (frame_v6) {
		if (data + 54 + 4 > data_end)
			return XDP_ABORTED;
		__builtin_memcpy(data + 22, k->src, 16);
		__builtin_memcpy(data + 38, k->dst, 16);
		__builtin_memcpy(data + 54, &k->sport, 4);
	} else {
		if (data + 34 + 4 > data_end)
			return XDP_ABORTED;
		__builtin_memcpy(data + 26, k->src + 12, 4);
		__builtin_memcpy(data + 30, k->dst + 12, 4);
		__builtin_memcpy(data + 34, &k->sport, 4);
	}
	bpf_tail_call(ctx, &cost_progs, 0);
	return XDP_ABORTED; /* the loader treats ABORTED as a failed tail call */
}
