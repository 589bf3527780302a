// SPDX-License-Identifier: AGPL-3.0-only
/*
 * tc_ids (detection.md §1.2): TC ingress, priority 5. Drops blacklisted
 * sources (IPS), classifies the packet by (dst_port, proto) with the
 * four-level lookup, reports hits on the events ring (with a bounded payload
 * copy when a pattern rule needs it) and drops when the rule says so. No
 * regex here: matching happens in the agent. No verdict = TC_ACT_UNSPEC.
 */
#include "kernel/bpf/es_bpf.h"
#include "kernel/bpf/parse.h"
#include "kernel/bpf/ips_blacklist.h"
#include "abi/ids.h"

char LICENSE[] SEC("license") = "GPL";

#define TC_ACT_UNSPEC_ (-1)
#define TC_ACT_SHOT_ 2
#define IPPROTO_TCP_ 6
#define IPPROTO_UDP_ 17

/* Two banks of patterns; ids_active says which one the program reads, so a
 * reload fills the other and switches with one word. */
struct ids_patterns {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ES_IDS_MAX_KEYS);
	__type(key, struct es_ids_key);
	__type(value, struct es_ids_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
};
struct ids_patterns ids_patterns_0 SEC(".maps");
struct ids_patterns ids_patterns_1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ids_active SEC(".maps");

/* IDS_SAMPLING_CONFIG, one per bank. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct es_ids_sampling);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ids_sampling SEC(".maps");

/* IDS_METRICS: matched, dropped, errors, events_dropped, total_seen. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ES_IDS_M__COUNT);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ids_metrics SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct es_pkt);
} ids_pkt_ctx SEC(".maps");

static __always_inline void ids_metric(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&ids_metrics, &idx);

	if (v)
		*v += 1;
}

static __always_inline struct es_ids_val *lookup(__u32 bank, __u16 port, __u8 proto,
						 const struct es_pkt *pkt)
{
	struct es_ids_key k = {.dst_port = port, .proto = proto};
	struct es_ids_val *v;

	if (bank)
		v = bpf_map_lookup_elem(&ids_patterns_1, &k);
	else
		v = bpf_map_lookup_elem(&ids_patterns_0, &k);
	if (!v)
		return NULL;
	/* Port-less keys see only the first packet of a TCP connection. */
	if ((v->flags & ES_IDS_F_SYN_ONLY) && pkt->proto == IPPROTO_TCP_ &&
	    (pkt->tcp_flags & (TCP_F_SYN | TCP_F_ACK)) != TCP_F_SYN)
		return NULL;
	return v;
}

/* Payload window [*off, end) of a TCP or UDP packet; 0 when there is none. */
static __always_inline __u32 payload_window(struct __sk_buff *skb, const struct es_pkt *pkt,
					    __u32 *off)
{
	__u32 start = pkt->l4_off, end = (__u32)pkt->l3_off + pkt->l3_len;
	__u8 doff;

	if (!(pkt->flags & ES_PKT_F_L4))
		return 0;
	if (pkt->proto == IPPROTO_TCP_) {
		if (bpf_skb_load_bytes(skb, start + 12, &doff, 1))
			return 0;
		start += (doff >> 4) * 4;
	} else if (pkt->proto == IPPROTO_UDP_) {
		start += 8;
	} else {
		return 0;
	}
	if (end > skb->len)
		end = skb->len; /* IP length beyond the frame: trust the frame */
	if (end <= start)
		return 0;
	*off = start;
	return end - start;
}

static __always_inline void fill(struct es_ids_event *ev, struct __sk_buff *skb,
				 const struct es_pkt *pkt, const struct es_ids_val *v)
{
	int v6 = pkt->flags & ES_PKT_F_IPV6;

	ev->pkt.timestamp_ns = bpf_ktime_get_boot_ns();
	es_addr_words(ev->pkt.src_addr, pkt->src, v6);
	es_addr_words(ev->pkt.dst_addr, pkt->dst, v6);
	ev->pkt.src_port = pkt->sport;
	ev->pkt.dst_port = pkt->dport;
	ev->pkt.protocol = pkt->proto;
	ev->pkt.action = v->action;
	ev->pkt.vlan_id = pkt->vlan_id;
	ev->pkt.rule_id = v->rule_id;
	ev->pkt.ifindex = skb->ifindex;
	ev->pkt.socket_cookie = 0;
	if (v6)
		ev->pkt.hdr.flags |= ES_EVF_IPV6;
	if (pkt->flags & ES_PKT_F_VLAN)
		ev->pkt.hdr.flags |= ES_EVF_VLAN;
	if (pkt->proto == IPPROTO_TCP_ && (pkt->tcp_flags & (TCP_F_SYN | TCP_F_ACK)) == TCP_F_SYN)
		ev->pkt.hdr.flags |= ES_EVF_SYN;
	__builtin_memset(ev->pad, 0, sizeof(ev->pad));
	ev->payload_len = 0;
}

/* Report a hit: with min(remaining, 512) payload bytes when the rule wants
 * them and there are any, else the bare packet event. -1 when the ring
 * refused the record. */
static __always_inline int emit(struct __sk_buff *skb, const struct es_pkt *pkt,
				const struct es_ids_val *v)
{
	struct es_ids_event *ev;
	__u32 off = 0, plen = 0, n;

	if (v->flags & ES_IDS_F_WANT_PAYLOAD)
		plen = payload_window(skb, pkt, &off);
	if (plen > ES_IDS_PAYLOAD_MAX)
		plen = ES_IDS_PAYLOAD_MAX;
	if (plen == 0) {
		ev = es_event_reserve(ES_IDS_EVENT_MIN_LEN, ES_EV_IDS, ES_IDS_EVENT_VERSION);
		if (!ev)
			return -1;
		fill(ev, skb, pkt, v);
		es_event_submit(ev);
		return 0;
	}
	ev = es_event_reserve(sizeof(struct es_ids_event), ES_EV_IDS, ES_IDS_EVENT_VERSION);
	if (!ev)
		return -1;
	fill(ev, skb, pkt, v);
	/* clang 14 hands the helper a copy it lost the bounds of: re-derive
	 * [1, 512] with a mask the verifier can follow. */
	n = plen - 1;
	barrier_var(n);
	n &= ES_IDS_PAYLOAD_MAX - 1;
	n += 1;
	if (bpf_skb_load_bytes(skb, off, ev->payload, n) == 0)
		ev->payload_len = n;
	else
		ids_metric(ES_IDS_M_ERRORS);
	es_event_submit(ev);
	return 0;
}

SEC("tc")
int tc_ids(struct __sk_buff *skb)
{
	void *data, *data_end;
	__u32 zero = 0, bank = 0, *bp;
	struct es_ids_val *v;
	struct es_pkt *pkt;
	int r, v6, send = 1;

	ids_metric(ES_IDS_M_TOTAL_SEEN);
	pkt = bpf_map_lookup_elem(&ids_pkt_ctx, &zero);
	if (!pkt) {
		ids_metric(ES_IDS_M_ERRORS);
		es_count(ES_PROG_TC_IDS, ES_R_INTERNAL_ERROR);
		return TC_ACT_UNSPEC_;
	}
	if (!es_feature_on(ES_FEAT_IDS) && !es_feature_on(ES_FEAT_IPS)) {
		es_count(ES_PROG_TC_IDS, ES_R_DISABLED);
		return TC_ACT_UNSPEC_;
	}
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	r = es_parse(data, data_end, pkt);
	if (es_reason_is_error(r) && data_end - data < skb->len) {
		/* Headers beyond the linear part: pull them in and parse again. */
		bpf_skb_pull_data(skb, skb->len < 600 ? skb->len : 600);
		data = (void *)(long)skb->data;
		data_end = (void *)(long)skb->data_end;
		r = es_parse(data, data_end, pkt);
	}
	if (es_reason_is_error(r)) {
		ids_metric(ES_IDS_M_ERRORS);
		es_count(ES_PROG_TC_IDS, r);
		return TC_ACT_UNSPEC_;
	}
	if (r == ES_R_NON_IP) {
		es_count(ES_PROG_TC_IDS, r);
		return TC_ACT_UNSPEC_;
	}
	/* Non-first fragments have no L4 view: ports stay 0 ([Gap] §0.3). */
	v6 = pkt->flags & ES_PKT_F_IPV6;
	if (es_ips_blacklisted(pkt->src, v6)) {
		ids_metric(ES_IDS_M_DROPPED);
		es_count(ES_PROG_TC_IDS, ES_R_IPS_BLACKLIST_DROP);
		return TC_ACT_SHOT_;
	}

	bp = bpf_map_lookup_elem(&ids_active, &zero);
	if (bp)
		bank = *bp & 1;
	v = lookup(bank, pkt->dport, pkt->proto, pkt);
	if (!v)
		v = lookup(bank, pkt->dport, 0, pkt);
	if (!v)
		v = lookup(bank, 0, pkt->proto, pkt);
	if (!v)
		v = lookup(bank, 0, 0, pkt);
	if (!v) {
		es_count(ES_PROG_TC_IDS, r ? r : ES_R_PASS);
		return TC_ACT_UNSPEC_;
	}

	ids_metric(ES_IDS_M_MATCHED);
	if (v->flags & ES_IDS_F_SAMPLE) {
		struct es_ids_sampling *s = bpf_map_lookup_elem(&ids_sampling, &bank);

		if (s && s->mode == ES_IDS_SAMPLE_RANDOM &&
		    bpf_get_prandom_u32() > s->rate_threshold)
			send = 0;
	}
	if (send && emit(skb, pkt, v)) {
		ids_metric(ES_IDS_M_EVENTS_DROPPED);
		if (v->action != ES_IDS_ACT_DROP) {
			es_count(ES_PROG_TC_IDS, ES_R_EVENT_DROPPED);
			return TC_ACT_UNSPEC_;
		}
	}
	if (v->action == ES_IDS_ACT_DROP) {
		ids_metric(ES_IDS_M_DROPPED);
		es_count(ES_PROG_TC_IDS, ES_R_IDS_DROP);
		return TC_ACT_SHOT_;
	}
	es_count(ES_PROG_TC_IDS, ES_R_IDS_ALERT);
	return TC_ACT_UNSPEC_;
}
