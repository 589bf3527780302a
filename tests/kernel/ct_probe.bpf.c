// SPDX-License-Identifier: AGPL-3.0-only
/* Test-only program: runs the shared conntrack key derivation and the XDP
 * firewall's state classification (kernel/bpf/ct.h) on a frame and stores
 * the result for the kernel tests. Never part of the agent. */
#include "kernel/bpf/es_bpf.h"
#include "kernel/bpf/parse.h"
#include "kernel/bpf/ct.h"

char LICENSE[] SEC("license") = "GPL";

struct ct_probe_out {
	__s32 parse_ret;
	__s32 tuple_ret;
	struct ct_tuple tuple;
	struct ct_verdict verdict;
	__u32 live_entry;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ct_probe_out);
} ct_probe_out SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct es_pkt);
} ct_probe_pkt SEC(".maps");

SEC("xdp")
int xdp_ct_probe(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
	__u32 zero = 0;
	struct ct_probe_out *o = bpf_map_lookup_elem(&ct_probe_out, &zero);
	struct es_pkt *pkt = bpf_map_lookup_elem(&ct_probe_pkt, &zero);

	if (!o || !pkt)
		return XDP_ABORTED;
	o->parse_ret = es_parse(data, data_end, pkt);
	o->tuple_ret = ct_tuple_from_pkt(pkt, &o->tuple);
	ct_classify(data, data_end, pkt, &o->verdict);
	o->live_entry = ct_has_live_entry(pkt);
	return XDP_PASS;
}
