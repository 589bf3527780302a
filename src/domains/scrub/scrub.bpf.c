// SPDX-License-Identifier: AGPL-3.0-only
/*
 * tc_scrub (ingress, priority 2): normalizes inbound packets (network.md §5).
 * IPv4, in this order: TTL floor, DF cleared, IP ID randomized (each with an
 * incremental header checksum update); TCP SYN and SYN-ACK: the first MSS
 * option above the maximum is clamped (TCP checksum updated, including when
 * the option sits at an odd offset). IPv6: hop limit floor (no checksum),
 * MSS. Always returns TC_ACT_UNSPEC.
 */
#include "kernel/bpf/es_bpf.h"
#include "kernel/bpf/parse.h"
#include "abi/scrub.h"

char LICENSE[] SEC("license") = "GPL";

#define SCRUB_PULL_LEN (14 + 8 + 60 + 60)

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct es_scrub_config);
} scrub_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ES_SCRUB_M__COUNT);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} scrub_metrics SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct es_pkt);
} scrub_pkt SEC(".maps");

static __always_inline void scrub_metric(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&scrub_metrics, &idx);

	if (v)
		*v += 1;
}

/* Replace the 16-bit word at l3 + off of the IPv4 header, fixing its checksum. */
static __always_inline int scrub_ip_word(struct __sk_buff *skb, __u32 l3, __u32 off, __u16 old,
					 __u16 nw)
{
	if (bpf_l3_csum_replace(skb, l3 + 10, old, nw, 2))
		return -1;
	return bpf_skb_store_bytes(skb, l3 + off, &nw, 2, 0) ? -1 : 0;
}

static __always_inline int scrub_ipv4(struct __sk_buff *skb, const struct es_pkt *pkt,
				      const struct es_scrub_config *c)
{
	__u32 l3 = pkt->l3_off;
	void *data, *data_end;
	struct iphdr *ip;
	__u16 old, nw;

	if (l3 > ES_MAX_L3_OFF)
		return -1;
	es_skb_ptrs(skb, &data, &data_end);
	ip = data + l3;
	if (!ES_FITS(data, data_end, l3, sizeof(*ip)))
		return -1;
	if (c->min_ttl && ip->ttl < c->min_ttl) {
		/* TTL and protocol share a 16-bit word of the checksum. */
		old = *(__u16 *)&ip->ttl;
		nw = bpf_htons((__u16)c->min_ttl << 8 | ip->protocol);
		if (scrub_ip_word(skb, l3, 8, old, nw))
			return -1;
		scrub_metric(ES_SCRUB_M_TTL_FIXED);
	}
	es_skb_ptrs(skb, &data, &data_end);
	ip = data + l3;
	if (!ES_FITS(data, data_end, l3, sizeof(*ip)))
		return -1;
	if (c->clear_df && (ip->frag_off & bpf_htons(0x4000))) {
		old = ip->frag_off;
		nw = old & ~bpf_htons(0x4000);
		if (scrub_ip_word(skb, l3, 6, old, nw))
			return -1;
		scrub_metric(ES_SCRUB_M_DF_CLEARED);
	}
	if (c->random_ip_id) {
		es_skb_ptrs(skb, &data, &data_end);
		ip = data + l3;
		if (!ES_FITS(data, data_end, l3, sizeof(*ip)))
			return -1;
		old = ip->id;
		nw = (__u16)bpf_get_prandom_u32();
		if (nw != old) {
			if (scrub_ip_word(skb, l3, 4, old, nw))
				return -1;
			scrub_metric(ES_SCRUB_M_IPID_RANDOMIZED);
		}
	}
	return 0;
}

/* The option walk runs in bpf_loop over a copy of the options (one verified
 * iteration instead of 40 unrolled ones with a variable stride). */
struct scrub_opts {
	__u8 buf[ES_SCRUB_MAX_OPT_BYTES];
	__u32 n;     /* option bytes present */
	__u32 pos;   /* walk position */
	__s32 found; /* offset of the MSS option in buf, or -1 */
};

static long scrub_opt_step(__u32 i, void *arg)
{
	struct scrub_opts *w = arg;
	__u32 pos = w->pos;
	__u8 kind, len;

	if (pos >= w->n || pos >= ES_SCRUB_MAX_OPT_BYTES)
		return 1;
	kind = w->buf[pos];
	if (kind == 0) /* EOL */
		return 1;
	if (kind == 1) { /* NOP */
		w->pos = pos + 1;
		return 0;
	}
	if (pos + 1 >= w->n || pos + 1 >= ES_SCRUB_MAX_OPT_BYTES)
		return 1;
	len = w->buf[pos + 1];
	if (len < 2)
		return 1;
	if (kind == 2 && len == 4) {
		if (pos + 4 <= w->n)
			w->found = (__s32)pos;
		return 1;
	}
	w->pos = pos + len;
	return 0;
}

/* Clamp the first MSS option of a SYN or SYN-ACK. 0, or -1 on a helper failure. */
static __always_inline int scrub_mss(struct __sk_buff *skb, const struct es_pkt *pkt, __u16 max)
{
	struct scrub_opts w = {.found = -1};
	__u32 l4 = pkt->l4_off, rel;
	__u8 doff;
	__u16 old, nw, co, cn;

	if (l4 > ES_MAX_L4_OFF || !(pkt->tcp_flags & TCP_F_SYN))
		return 0;
	if (bpf_skb_load_bytes(skb, l4 + 12, &doff, 1))
		return 0;
	w.n = (doff >> 4) * 4;
	if (w.n <= 20)
		return 0;
	w.n -= 20;
	if (w.n > ES_SCRUB_MAX_OPT_BYTES)
		w.n = ES_SCRUB_MAX_OPT_BYTES;
	barrier_var(w.n);
	if (w.n < 1 || w.n > ES_SCRUB_MAX_OPT_BYTES || bpf_skb_load_bytes(skb, l4 + 20, w.buf, w.n))
		return 0;
	bpf_loop(ES_SCRUB_MAX_OPT_BYTES, scrub_opt_step, &w, 0);
	if (w.found < 0 || w.found > ES_SCRUB_MAX_OPT_BYTES - 4)
		return 0;
	rel = 20 + (__u32)w.found + 2; /* the MSS value, from the TCP header start */
	old = (__u16)w.buf[w.found + 2] | (__u16)w.buf[w.found + 3] << 8; /* as in memory */
	if (bpf_ntohs(old) <= max)
		return 0;
	nw = bpf_htons(max);
	/* A word at an odd offset of the TCP header enters the sum byte-swapped. */
	co = (rel & 1) ? __builtin_bswap16(old) : old;
	cn = (rel & 1) ? __builtin_bswap16(nw) : nw;
	if (bpf_l4_csum_replace(skb, l4 + 16, co, cn, 2) ||
	    bpf_skb_store_bytes(skb, l4 + rel, &nw, 2, 0))
		return -1;
	scrub_metric(ES_SCRUB_M_MSS_CLAMPED);
	return 0;
}

SEC("tc")
int tc_scrub(struct __sk_buff *skb)
{
	struct es_scrub_config *c;
	struct es_pkt *pkt;
	void *data, *data_end;
	__u32 zero = 0;
	int r;

	scrub_metric(ES_SCRUB_M_TOTAL_SEEN);
	c = bpf_map_lookup_elem(&scrub_config, &zero);
	pkt = bpf_map_lookup_elem(&scrub_pkt, &zero);
	if (!c || !pkt) {
		scrub_metric(ES_SCRUB_M_ERRORS);
		es_count(ES_PROG_TC_SCRUB, ES_R_INTERNAL_ERROR);
		return TC_ACT_UNSPEC;
	}
	if (!c->enabled) {
		es_count(ES_PROG_TC_SCRUB, ES_R_DISABLED);
		return TC_ACT_UNSPEC;
	}
	es_tc_linearize(skb, SCRUB_PULL_LEN, &data, &data_end);
	r = es_parse(data, data_end, pkt);
	if (r && r != ES_R_FRAGMENT) {
		if (es_reason_is_error(r))
			scrub_metric(ES_SCRUB_M_ERRORS);
		es_count(ES_PROG_TC_SCRUB, r);
		return TC_ACT_UNSPEC;
	}
	scrub_metric(ES_SCRUB_M_PACKETS);
	if (!(pkt->flags & ES_PKT_F_IPV6)) {
		if (scrub_ipv4(skb, pkt, c))
			goto err;
	} else if (c->min_hop_limit && pkt->ttl < c->min_hop_limit) {
		__u8 hl = c->min_hop_limit;

		if (pkt->l3_off > ES_MAX_L3_OFF ||
		    bpf_skb_store_bytes(skb, pkt->l3_off + 7, &hl, 1, 0))
			goto err;
		scrub_metric(ES_SCRUB_M_HOP_FIXED);
	}
	if (c->max_mss && pkt->proto == IPPROTO_TCP && (pkt->flags & ES_PKT_F_L4) &&
	    scrub_mss(skb, pkt, c->max_mss))
		goto err;
	es_count(ES_PROG_TC_SCRUB, ES_R_PASS);
	return TC_ACT_UNSPEC;
err:
	scrub_metric(ES_SCRUB_M_ERRORS);
	es_count(ES_PROG_TC_SCRUB, ES_R_INTERNAL_ERROR);
	return TC_ACT_UNSPEC;
}
