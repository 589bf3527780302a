/* SPDX-License-Identifier: AGPL-3.0-only */
/*
 * PKT_CTX (network.md §1.2, §2.2 step 2): the per-CPU packet context of the
 * XDP chain. The head parses the packet into it once; a program reached by
 * tail call takes that parse over instead of parsing again.
 *
 * The hand-off is one word, `parsed`: the head stores ES_PKT_CTX_PARSED | the
 * parser's result right before the tail call into slot 0 and clears it when
 * that call did not happen (empty slot), and the callee clears it as it takes
 * it. So the word is non-zero only between those two points of one packet on
 * one CPU (XDP runs a packet to the end before the next on that CPU), and a
 * program that becomes the head later never sees an old packet's parse.
 */
#ifndef ES_PKT_CTX_H
#define ES_PKT_CTX_H

#include "es_bpf.h"
#include "parse.h"
#include "xdp_chain.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct es_pkt_ctx);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pkt_ctx SEC(".maps");

static __always_inline struct es_pkt_ctx *es_pkt_ctx_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&pkt_ctx, &zero);
}

/*
 * The packet's parse: the head's when it handed one over (then `data` is the
 * same packet the head parsed: nothing between moves it), else parse now.
 * Returns the es_parse() result.
 */
static __always_inline int es_pkt_ctx_take(struct es_pkt_ctx *pc, void *data, void *data_end)
{
	__u32 h = pc->parsed;

	if (__builtin_expect(h != 0, 1)) {
		pc->parsed = 0;
		return h & 0xff;
	}
	return es_parse(data, data_end, &pc->pkt);
}

/*
 * ES_XDP_CONTINUE for the head, handing its parse (`r`, or -1 for none) to
 * the program in slot 0. Main function only, like every tail call.
 */
#define ES_XDP_CONTINUE_PARSED(ctx, pc, r)                                                         \
	do {                                                                                       \
		(pc)->parsed = (r) >= 0 ? ES_PKT_CTX_PARSED | (__u32)(r) : 0;                      \
		bpf_tail_call(ctx, &xdp_prog_array, ES_XDP_SLOT_RATELIMIT);                        \
		(pc)->parsed = 0;                                                                  \
		bpf_tail_call(ctx, &xdp_prog_array, ES_XDP_SLOT_LOADBALANCER);                     \
	} while (0)

#endif
