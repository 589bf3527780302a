// SPDX-License-Identifier: AGPL-3.0-only
/* Test-only program: runs the shared parser and stores its result so the
 * kernel tests can check every parsed field. Never part of the agent. */
#include "kernel/bpf/es_bpf.h"
#include "kernel/bpf/parse.h"

char LICENSE[] SEC("license") = "GPL";

struct probe_out {
	__s32 ret;
	__u32 pad;
	struct es_pkt pkt;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct probe_out);
} probe_out SEC(".maps");

SEC("xdp")
int xdp_parse_probe(struct xdp_md *ctx)
{
	__u32 zero = 0;
	struct probe_out *o = bpf_map_lookup_elem(&probe_out, &zero);

	if (!o)
		return XDP_ABORTED;
	o->ret = es_parse((void *)(long)ctx->data, (void *)(long)ctx->data_end, &o->pkt);
	return XDP_PASS;
}

/* A stand-in for a tail-call target: proves the chain reached its slot. */
SEC("xdp")
int xdp_slot_drop(struct xdp_md *ctx)
{
	return XDP_DROP;
}

/* TC programs for the attach tests: one "ours" (tc_ prefix), one foreign. */
SEC("tc")
int tc_probe_a(struct __sk_buff *skb)
{
	return -1; /* TC_ACT_UNSPEC */
}

SEC("tc")
int tc_probe_b(struct __sk_buff *skb)
{
	return -1;
}

SEC("tc")
int foreign_tc(struct __sk_buff *skb)
{
	return -1;
}
