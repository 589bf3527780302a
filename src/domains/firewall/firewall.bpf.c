// SPDX-License-Identifier: AGPL-3.0-only
/*
 * xdp_firewall: the XDP entry program on every agent interface. Parses the
 * frame with the shared parser, counts every outcome, and hands the packet on
 * through the tail-call chain.
 */
#include "kernel/bpf/es_bpf.h"
#include "kernel/bpf/parse.h"
#include "kernel/bpf/xdp_chain.h"
#include "abi/firewall.h"

char LICENSE[] SEC("license") = "GPL";

/* FIREWALL_METRICS (network.md §2.2): passed, dropped, errors, events_dropped, total_seen. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ES_FW_M__COUNT);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} fw_metrics SEC(".maps");

/* Per-packet scratch (kept off the 512-byte stack for later stages). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct es_pkt);
} fw_pkt_ctx SEC(".maps");

static __always_inline void fw_metric(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&fw_metrics, &idx);

	if (v)
		*v += 1;
}

SEC("xdp")
int xdp_firewall(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 zero = 0;
	struct es_pkt *pkt;
	int r;

	fw_metric(ES_FW_M_TOTAL_SEEN);
	pkt = bpf_map_lookup_elem(&fw_pkt_ctx, &zero);
	if (!pkt) {
		fw_metric(ES_FW_M_ERRORS);
		es_count(ES_PROG_XDP_FIREWALL, ES_R_INTERNAL_ERROR);
		return XDP_PASS;
	}
	if (!es_feature_on(ES_FEAT_FIREWALL)) {
		fw_metric(ES_FW_M_PASSED);
		es_count(ES_PROG_XDP_FIREWALL, ES_R_DISABLED);
		goto next;
	}

	r = es_parse(data, data_end, pkt);
	if (es_reason_is_error(r)) {
		/* Malformed or truncated: counted, never dropped for it. */
		fw_metric(ES_FW_M_ERRORS);
		es_count(ES_PROG_XDP_FIREWALL, r);
		return XDP_PASS;
	}
	fw_metric(ES_FW_M_PASSED);
	es_count(ES_PROG_XDP_FIREWALL, r ? r : ES_R_PASS);
next:
	ES_XDP_CONTINUE(ctx, ES_XDP_SLOT_RATELIMIT);
	return XDP_PASS;
}
