// SPDX-License-Identifier: AGPL-3.0-only
/* Test-only pass-through XDP program for the far ends of lab veths: in native
 * mode a veth drops XDP_TX frames from its peer unless it runs an XDP program
 * itself (KERNEL-NOTES.md). Never part of the agent. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

SEC("xdp")
int xdp_lab_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}
