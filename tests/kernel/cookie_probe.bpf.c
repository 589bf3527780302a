// SPDX-License-Identifier: AGPL-3.0-only
/* Test-only program: validates the raw SYN cookie an IPv4 ACK carries
 * (what netfilter SYNPROXY checks for forwarded flows). XDP_PASS = valid,
 * XDP_DROP = forged. Never part of the agent. */
#include "kernel/bpf/es_bpf.h"
#include "kernel/bpf/parse.h"

char LICENSE[] SEC("license") = "GPL";

SEC("xdp")
int xdp_cookie_probe(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
	struct iphdr *ip = data + sizeof(struct ethhdr);
	struct tcphdr *th = (void *)(ip + 1);

	if ((void *)(th + 1) > data_end)
		return XDP_ABORTED;
	return bpf_tcp_raw_check_syncookie_ipv4(ip, th) ? XDP_DROP : XDP_PASS;
}
