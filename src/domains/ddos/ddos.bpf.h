/* SPDX-License-Identifier: AGPL-3.0-only */
/*
 * DDoS kernel checks (network.md §7.2), run by xdp_ratelimit before generic
 * limiting: auto-block list, ICMP limits, SYN flood defence with real SYN
 * cookies answered at XDP, cookie validation of handshake ACKs, the
 * connection-state flood tracker and UDP amplification limits. Included by
 * src/domains/ratelimit/ratelimit.bpf.c only (the checks live in that
 * program); the maps are pinned by name and written by the ddos domain.
 */
#ifndef ES_DDOS_BPF_H
#define ES_DDOS_BPF_H

#include "kernel/bpf/ct.h"
#include "kernel/bpf/es_bpf.h"
#include "kernel/bpf/parse.h"
#include "kernel/bpf/pkt_event.h"
#include "abi/ddos.h"

#define DDOS_NS_PER_SEC 1000000000ull
#define DDOS_AF_INET 2
#define DDOS_AF_INET6 10
/* Window advertised in our SYN-ACKs (no window scaling is offered). */
#define DDOS_SYNACK_WINDOW 64240

#define DDOS_CONFIG_ARRAY(name, vtype)                                                             \
	struct {                                                                                   \
		__uint(type, BPF_MAP_TYPE_ARRAY);                                                  \
		__uint(max_entries, 1);                                                            \
		__type(key, __u32);                                                                \
		__type(value, vtype);                                                              \
		__uint(pinning, LIBBPF_PIN_BY_NAME);                                               \
	} name SEC(".maps")

#define DDOS_STATE_MAP(name, maptype, ktype, vtype, n)                                             \
	struct {                                                                                   \
		__uint(type, maptype);                                                             \
		__uint(max_entries, n);                                                            \
		__type(key, ktype);                                                                \
		__type(value, vtype);                                                              \
		__uint(pinning, LIBBPF_PIN_BY_NAME);                                               \
	} name SEC(".maps")

DDOS_CONFIG_ARRAY(ddos_syn_config, struct es_ddos_syn_config);
DDOS_CONFIG_ARRAY(ddos_icmp_config, struct es_ddos_icmp_config);
DDOS_CONFIG_ARRAY(ddos_ct_config, struct es_ddos_ct_config);
DDOS_STATE_MAP(ddos_amp_config, BPF_MAP_TYPE_HASH, struct es_ddos_amp_key,
	       struct es_ddos_amp_config, 64);
DDOS_STATE_MAP(ddos_syn_rate, BPF_MAP_TYPE_LRU_PERCPU_HASH, struct es_addr16, struct es_ddos_window,
	       65536);
DDOS_STATE_MAP(ddos_icmp_rate, BPF_MAP_TYPE_LRU_PERCPU_HASH, struct es_addr16,
	       struct es_ddos_window, 65536);
DDOS_STATE_MAP(ddos_amp_rate, BPF_MAP_TYPE_LRU_PERCPU_HASH, struct es_ddos_amp_state_key,
	       struct es_ddos_window, 65536);
DDOS_STATE_MAP(ddos_flood_rate, BPF_MAP_TYPE_LRU_PERCPU_HASH, struct es_ddos_flood_key,
	       struct es_ddos_window, 65536);
/* Shared (not per-CPU): a handshake's SYN and ACK may arrive on different CPUs. */
DDOS_STATE_MAP(ddos_half_open, BPF_MAP_TYPE_LRU_HASH, struct es_addr16, __u64, 65536);
DDOS_STATE_MAP(ddos_conn_table, BPF_MAP_TYPE_LRU_HASH, struct es_ddos_conn_key, struct es_ddos_conn,
	       131072);
/* Auto-block list while xdp_firewall is not running (with it, auto-blocks are in its LPM
 * block list): addr16 -> expiry (CLOCK_MONOTONIC ns as bpf_ktime_get_ns, 0 = until removed). */
DDOS_STATE_MAP(ddos_block, BPF_MAP_TYPE_HASH, struct es_addr16, __u64, 65536);

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ES_DDOS_M__COUNT);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ddos_metrics SEC(".maps");

static __always_inline void ddos_metric(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&ddos_metrics, &idx);

	if (v)
		*v += 1;
}

static __always_inline void ddos_event(struct xdp_md *ctx, const struct es_pkt *pkt, __u16 type,
				       __u8 action)
{
	if (es_pkt_event_emit(pkt, ctx->ingress_ifindex, type, action, 0))
		ddos_metric(ES_DDOS_M_EVENTS_DROPPED);
}

/*
 * Fixed 1 s window: the first packet counts 1, a stale window restarts at
 * 1, `count >= limit` is over, otherwise count++ (limit packets pass).
 */
static __always_inline int ddos_window_over(void *map, const void *key, __u64 limit, __u64 now)
{
	struct es_ddos_window *w = bpf_map_lookup_elem(map, key);

	if (!w) {
		struct es_ddos_window n = {.count = 1, .window_start = now};

		bpf_map_update_elem(map, key, &n, BPF_ANY);
		return 0;
	}
	if (now < w->window_start || now - w->window_start >= DDOS_NS_PER_SEC) {
		w->count = 1;
		w->window_start = now;
		return 0;
	}
	if (w->count >= limit)
		return 1;
	w->count++;
	return 0;
}

/* SYN rate: count first, over from the threshold-th SYN of a second. */
static __always_inline int ddos_syn_over(const void *key, __u64 threshold, __u64 now)
{
	struct es_ddos_window *w = bpf_map_lookup_elem(&ddos_syn_rate, key);

	if (!w) {
		struct es_ddos_window n = {.count = 1, .window_start = now};

		bpf_map_update_elem(&ddos_syn_rate, key, &n, BPF_ANY);
		return threshold <= 1;
	}
	if (now < w->window_start || now - w->window_start >= DDOS_NS_PER_SEC) {
		w->count = 1;
		w->window_start = now;
	} else {
		w->count++;
	}
	return w->count >= threshold;
}

static __always_inline __u16 ddos_csum_fold(__s64 sum)
{
	__u64 s = (__u64)sum & 0xffffffffull;

	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)~s;
}

/* The TCP header of the packet copied to the stack, as the cookie helpers want it. */
struct ddos_tcp_copy {
	__u8 b[60];
	__u32 len;
};

static __always_inline int ddos_copy_tcp(struct xdp_md *ctx, __u32 l4, struct ddos_tcp_copy *c)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
	struct tcphdr *th;
	__u32 len;

	if (l4 > ES_MAX_L4_OFF)
		return -1;
	barrier_var(l4);
	th = data + l4;
	if ((void *)(th + 1) > data_end)
		return -1;
	len = th->doff * 4;
	if (len < sizeof(*th) || len > sizeof(c->b))
		return -1;
	barrier_var(len);
	if (len > 60)
		return -1;
	if (bpf_xdp_load_bytes(ctx, l4, c->b, len))
		return -1;
	c->len = len;
	return 0;
}

/* ddos_gen_cookie: the SYN belongs to a socket of its own (below). */
#define DDOS_CK_STACK (-2)

/*
 * A cookie for this SYN: from the local listener it targets
 * (bpf_tcp_gen_syncookie marks the listener so its stack accepts the ACK),
 * else a raw cookie when a SYN proxy finishes forwarded handshakes. The
 * result is cookie | mss << 32, or < 0. DDOS_CK_STACK when the 4-tuple has a
 * socket other than a listener (a TIME_WAIT left by an earlier connection of
 * the same ports, typically): the stack decides about such a SYN (reopen, or
 * a cookie of its own with tcp_syncookies=2); it creates no half-open entry.
 */
static __always_inline __s64 ddos_gen_cookie(struct xdp_md *ctx, struct bpf_sock_tuple *tup,
					     __u32 tup_len, void *iph, __u32 iph_len,
					     struct ddos_tcp_copy *tc, int v6, __u8 flags)
{
	struct bpf_sock *sk;
	__s64 ck = -1;
	__u32 len = tc->len;

	if (len < 20 || len > 60)
		return -1;
	sk = bpf_skc_lookup_tcp(ctx, tup, tup_len, BPF_F_CURRENT_NETNS, 0);
	if (sk) {
		if (sk->state == BPF_TCP_LISTEN)
			ck = bpf_tcp_gen_syncookie(sk, iph, iph_len, (struct tcphdr *)tc->b, len);
		else
			ck = DDOS_CK_STACK;
		bpf_sk_release(sk);
		if (ck == DDOS_CK_STACK)
			return ck;
	}
	if (ck < 0 && (flags & ES_DDOS_SYN_F_SYNPROXY)) {
		if (v6)
			ck = bpf_tcp_raw_gen_syncookie_ipv6(iph, (struct tcphdr *)tc->b, len);
		else
			ck = bpf_tcp_raw_gen_syncookie_ipv4(iph, (struct tcphdr *)tc->b, len);
	}
	return ck;
}

/* Our SYN-ACK's TCP header: ports swapped, seq = cookie, one MSS option. */
static __always_inline void ddos_synack_tcp(__u32 *t, const struct ddos_tcp_copy *tc, __u32 cookie,
					    __u16 mss)
{
	const struct tcphdr *in = (const void *)tc->b;
	__u8 *b = (__u8 *)t;

	((__u16 *)t)[0] = in->dest;
	((__u16 *)t)[1] = in->source;
	t[1] = bpf_htonl(cookie);
	t[2] = bpf_htonl(bpf_ntohl(in->seq) + 1);
	b[12] = 6 << 4; /* doff: 20 bytes + MSS option */
	b[13] = TCP_F_SYN | TCP_F_ACK;
	((__u16 *)t)[7] = bpf_htons(DDOS_SYNACK_WINDOW);
	((__u16 *)t)[8] = 0; /* checksum */
	((__u16 *)t)[9] = 0; /* urgent pointer */
	b[20] = 2;	     /* MSS */
	b[21] = 4;
	b[22] = mss >> 8;
	b[23] = mss & 0xff;
}

/* Resize the frame to l4 + 24 (the SYN-ACK) and swap the MACs. 0 or -1. */
static __always_inline int ddos_synack_frame(struct xdp_md *ctx, __u32 l4)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
	int delta = (int)(l4 + 24) - (int)(data_end - data);
	struct ethhdr *eth;
	__u8 mac[6];

	/* Called even for delta 0: one path, so the verifier sees plain ctx reads. */
	if (bpf_xdp_adjust_tail(ctx, delta))
		return -1;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	eth = data;
	if ((void *)(eth + 1) > data_end)
		return -1;
	__builtin_memcpy(mac, eth->h_dest, 6);
	__builtin_memcpy(eth->h_dest, eth->h_source, 6);
	__builtin_memcpy(eth->h_source, mac, 6);
	return 0;
}

/* Answer an IPv4 SYN with a cookie SYN-ACK in place. XDP_TX, XDP_PASS (a socket of
 * its own: the stack's), or -1 (caller drops). */
static __always_inline int ddos_synack_v4(struct xdp_md *ctx, const struct es_pkt *pkt, __u8 flags)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
	struct bpf_sock_tuple tup = {};
	struct ddos_tcp_copy tc;
	struct iphdr iph, *ip;
	__u32 t[6], pseudo[3];
	__u32 l3 = pkt->l3_off, l4;
	__s64 ck;

	if (l3 > ES_MAX_L3_OFF || (pkt->flags & ES_PKT_F_IPOPT))
		return -1;
	barrier_var(l3);
	ip = data + l3;
	if ((void *)(ip + 1) > data_end)
		return -1;
	__builtin_memcpy(&iph, ip, sizeof(iph));
	l4 = l3 + sizeof(iph);
	if (ddos_copy_tcp(ctx, l4, &tc))
		return -1;
	tup.ipv4.saddr = iph.saddr;
	tup.ipv4.daddr = iph.daddr;
	tup.ipv4.sport = ((struct tcphdr *)tc.b)->source;
	tup.ipv4.dport = ((struct tcphdr *)tc.b)->dest;
	ck = ddos_gen_cookie(ctx, &tup, sizeof(tup.ipv4), &iph, sizeof(iph), &tc, 0, flags);
	if (ck == DDOS_CK_STACK)
		return XDP_PASS;
	if (ck < 0)
		return -1;

	ddos_synack_tcp(t, &tc, (__u32)ck, (__u16)(ck >> 32));
	iph.ihl = 5;
	iph.version = 4;
	iph.tos = 0;
	iph.tot_len = bpf_htons(sizeof(iph) + 24);
	iph.id = 0;
	iph.frag_off = bpf_htons(0x4000);
	iph.ttl = 64;
	iph.check = 0;
	iph.saddr = tup.ipv4.daddr;
	iph.daddr = tup.ipv4.saddr;
	iph.check = ddos_csum_fold(bpf_csum_diff(NULL, 0, (__be32 *)&iph, sizeof(iph), 0));
	pseudo[0] = iph.saddr;
	pseudo[1] = iph.daddr;
	pseudo[2] = bpf_htonl(IPPROTO_TCP << 16 | 24);
	((__u16 *)t)[8] = ddos_csum_fold(bpf_csum_diff(
	    NULL, 0, (__be32 *)t, 24, bpf_csum_diff(NULL, 0, (__be32 *)pseudo, 12, 0)));

	if (ddos_synack_frame(ctx, l4))
		return -1;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (l3 > ES_MAX_L3_OFF)
		return -1;
	ip = data + l3;
	if ((void *)ip + sizeof(iph) + 24 > data_end)
		return -1;
	__builtin_memcpy(ip, &iph, sizeof(iph));
	__builtin_memcpy((void *)ip + sizeof(iph), t, 24);
	return XDP_TX;
}

static __always_inline int ddos_synack_v6(struct xdp_md *ctx, const struct es_pkt *pkt, __u8 flags)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
	struct bpf_sock_tuple tup = {};
	struct ddos_tcp_copy tc;
	struct ipv6hdr ip6, *ip;
	__u32 t[6], pseudo[10];
	__u32 l3 = pkt->l3_off, l4;
	__s64 ck;

	if (l3 > ES_MAX_L3_OFF || pkt->ext_count)
		return -1;
	barrier_var(l3);
	ip = data + l3;
	if ((void *)(ip + 1) > data_end)
		return -1;
	__builtin_memcpy(&ip6, ip, sizeof(ip6));
	l4 = l3 + sizeof(ip6);
	if (ddos_copy_tcp(ctx, l4, &tc))
		return -1;
	__builtin_memcpy(tup.ipv6.saddr, &ip6.saddr, 16);
	__builtin_memcpy(tup.ipv6.daddr, &ip6.daddr, 16);
	tup.ipv6.sport = ((struct tcphdr *)tc.b)->source;
	tup.ipv6.dport = ((struct tcphdr *)tc.b)->dest;
	ck = ddos_gen_cookie(ctx, &tup, sizeof(tup.ipv6), &ip6, sizeof(ip6), &tc, 1, flags);
	if (ck == DDOS_CK_STACK)
		return XDP_PASS;
	if (ck < 0)
		return -1;

	ddos_synack_tcp(t, &tc, (__u32)ck, (__u16)(ck >> 32));
	*(__u32 *)&ip6 = bpf_htonl(0x60000000);
	ip6.payload_len = bpf_htons(24);
	ip6.nexthdr = IPPROTO_TCP;
	ip6.hop_limit = 64;
	__builtin_memcpy(&ip6.saddr, tup.ipv6.daddr, 16);
	__builtin_memcpy(&ip6.daddr, tup.ipv6.saddr, 16);
	__builtin_memcpy(pseudo, &ip6.saddr, 32);
	pseudo[8] = bpf_htonl(24);
	pseudo[9] = bpf_htonl(IPPROTO_TCP);
	((__u16 *)t)[8] = ddos_csum_fold(bpf_csum_diff(
	    NULL, 0, (__be32 *)t, 24, bpf_csum_diff(NULL, 0, (__be32 *)pseudo, 40, 0)));

	if (ddos_synack_frame(ctx, l4))
		return -1;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (l3 > ES_MAX_L3_OFF)
		return -1;
	ip = data + l3;
	if ((void *)ip + sizeof(ip6) + 24 > data_end)
		return -1;
	__builtin_memcpy(ip, &ip6, sizeof(ip6));
	__builtin_memcpy((void *)ip + sizeof(ip6), t, 24);
	return XDP_TX;
}

/* Is the destination one of this host's addresses (not forwarded)? */
static __always_inline int ddos_dst_local(struct xdp_md *ctx, const struct es_pkt *pkt, int v6)
{
	struct bpf_fib_lookup fib = {};
	long r;

	fib.family = v6 ? DDOS_AF_INET6 : DDOS_AF_INET;
	fib.l4_protocol = IPPROTO_TCP;
	fib.ifindex = ctx->ingress_ifindex;
	if (v6) {
		__builtin_memcpy(fib.ipv6_src, pkt->src, 16);
		__builtin_memcpy(fib.ipv6_dst, pkt->dst, 16);
	} else {
		__builtin_memcpy(&fib.ipv4_src, pkt->src + 12, 4);
		__builtin_memcpy(&fib.ipv4_dst, pkt->dst + 12, 4);
	}
	r = bpf_fib_lookup(ctx, &fib, sizeof(fib), 0);
	return r == BPF_FIB_LKUP_RET_NOT_FWDED || r == BPF_FIB_LKUP_RET_FWD_DISABLED;
}

/*
 * A pure ACK that lands on a local listener (no connection of its own) can
 * only complete a cookie handshake: check the cookie here, so forged ACKs
 * die at XDP instead of costing the stack a lookup and a RST. 1 = forged.
 */
static __always_inline int ddos_ack_forged(struct xdp_md *ctx, const struct es_pkt *pkt)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
	int v6 = pkt->flags & ES_PKT_F_IPV6;
	struct bpf_sock_tuple tup = {};
	struct ddos_tcp_copy tc;
	struct ipv6hdr ip6;
	struct iphdr iph;
	struct bpf_sock *sk;
	__u32 l3 = pkt->l3_off;
	long r;

	if (l3 > ES_MAX_L3_OFF)
		return 0;
	barrier_var(l3);
	if (v6) {
		if (pkt->ext_count || data + l3 + sizeof(ip6) > data_end)
			return 0;
		__builtin_memcpy(&ip6, data + l3, sizeof(ip6));
		__builtin_memcpy(tup.ipv6.saddr, pkt->src, 16);
		__builtin_memcpy(tup.ipv6.daddr, pkt->dst, 16);
	} else {
		if ((pkt->flags & ES_PKT_F_IPOPT) || data + l3 + sizeof(iph) > data_end)
			return 0;
		__builtin_memcpy(&iph, data + l3, sizeof(iph));
		tup.ipv4.saddr = iph.saddr;
		tup.ipv4.daddr = iph.daddr;
	}
	if (ddos_copy_tcp(ctx, pkt->l4_off, &tc))
		return 0;
	if (v6) {
		tup.ipv6.sport = bpf_htons(pkt->sport);
		tup.ipv6.dport = bpf_htons(pkt->dport);
	} else {
		tup.ipv4.sport = bpf_htons(pkt->sport);
		tup.ipv4.dport = bpf_htons(pkt->dport);
	}
	sk = bpf_skc_lookup_tcp(ctx, &tup, v6 ? sizeof(tup.ipv6) : sizeof(tup.ipv4),
				BPF_F_CURRENT_NETNS, 0);
	if (!sk)
		return 0;
	if (sk->state != BPF_TCP_LISTEN || !ddos_dst_local(ctx, pkt, v6)) {
		bpf_sk_release(sk);
		return 0;
	}
	bpf_sk_release(sk);
	/* The raw check: the listener variant refuses when the listener itself issued
	 * no cookie lately, and ours come from XDP. Same cookie function either way. */
	if (v6)
		r = bpf_tcp_raw_check_syncookie_ipv6(&ip6, (struct tcphdr *)tc.b);
	else
		r = bpf_tcp_raw_check_syncookie_ipv4(&iph, (struct tcphdr *)tc.b);
	return r == -13 /* -EACCES: not a cookie we (or the stack) issued */;
}

static __always_inline void ddos_conn_key(struct es_ddos_conn_key *k, const struct es_pkt *pkt,
					  int reverse)
{
	__builtin_memcpy(k->src, reverse ? pkt->dst : pkt->src, 16);
	__builtin_memcpy(k->dst, reverse ? pkt->src : pkt->dst, 16);
	k->sport = reverse ? pkt->dport : pkt->sport;
	k->dport = reverse ? pkt->sport : pkt->dport;
}

static __always_inline void ddos_half_open_dec(const __u8 *addr)
{
	__u64 *h = bpf_map_lookup_elem(&ddos_half_open, addr);

	if (h && *h)
		__sync_fetch_and_add(h, -1);
}

/* ACK of a known (NEW) handshake: established now, one half-open fewer. */
static __always_inline int ddos_conn_ack(const struct es_ddos_conn_key *k, __u64 now,
					 const __u8 *half_open_addr)
{
	struct es_ddos_conn *c = bpf_map_lookup_elem(&ddos_conn_table, k);

	if (!c)
		return 0;
	c->last_seen = now;
	if (c->state == ES_DDOS_CONN_NEW) {
		c->state = ES_DDOS_CONN_ESTABLISHED;
		ddos_half_open_dec(half_open_addr);
	}
	return 1;
}

static __always_inline int ddos_flood(struct xdp_md *ctx, const struct es_pkt *pkt, __u8 type,
				      __u32 limit, __u64 now)
{
	struct es_ddos_flood_key fk = {.type = type};

	if (!limit)
		return 0;
	__builtin_memcpy(fk.addr, pkt->src, 16);
	return ddos_window_over(&ddos_flood_rate, &fk, limit, now);
}

/* Does tc_conntrack know this packet's flow (a live entry in CT_TABLE)? */
static __always_inline int ddos_ct_known(const struct es_pkt *pkt)
{
	struct es_ct_config *cfg = ct_config_get();
	struct ct_entry_head *e;
	struct ct_tuple t;

	if (!cfg || !cfg->enabled || ct_tuple_from_pkt(pkt, &t))
		return 0;
	e = ct_lookup(&t);
	/* CT timestamps are CLOCK_BOOTTIME. */
	return e && ct_live(cfg, e, IPPROTO_TCP, bpf_ktime_get_boot_ns());
}

/* The connection-state flood tracker. XDP_DROP or -1 (continue). */
static __always_inline int ddos_conn_track(struct xdp_md *ctx, const struct es_pkt *pkt,
					   const struct es_ddos_ct_config *cc, __u64 now)
{
	__u8 f = pkt->tcp_flags & (TCP_F_SYN | TCP_F_ACK | TCP_F_RST | TCP_F_FIN);
	struct es_ddos_conn_key k;

	ddos_conn_key(&k, pkt, 0);
	if (f & TCP_F_RST) {
		if (ddos_flood(ctx, pkt, ES_DDOS_FLOOD_RST, cc->rst, now)) {
			ddos_metric(ES_DDOS_M_RST_FLOOD_DROPS);
			ddos_event(ctx, pkt, ES_EV_DDOS_CONNTRACK, ES_DDOS_CT_RST);
			return XDP_DROP;
		}
		bpf_map_delete_elem(&ddos_conn_table, &k);
		return -1;
	}
	if (f & TCP_F_FIN) {
		if (ddos_flood(ctx, pkt, ES_DDOS_FLOOD_FIN, cc->fin, now)) {
			ddos_metric(ES_DDOS_M_FIN_FLOOD_DROPS);
			ddos_event(ctx, pkt, ES_EV_DDOS_CONNTRACK, ES_DDOS_CT_FIN);
			return XDP_DROP;
		}
		bpf_map_delete_elem(&ddos_conn_table, &k);
		return -1;
	}
	if (f == TCP_F_SYN) {
		struct es_ddos_conn nc = {
		    .state = ES_DDOS_CONN_NEW, .first_seen = now, .last_seen = now};
		__u64 one = 1, *h;

		if (bpf_map_lookup_elem(&ddos_conn_table, &k))
			return -1; /* a retransmitted SYN is not a new half-open connection */
		h = bpf_map_lookup_elem(&ddos_half_open, pkt->src);
		if (cc->half_open && h && *h >= cc->half_open) {
			ddos_metric(ES_DDOS_M_HALF_OPEN_DROPS);
			ddos_event(ctx, pkt, ES_EV_DDOS_CONNTRACK, ES_DDOS_CT_HALF_OPEN);
			return XDP_DROP;
		}
		if (h)
			__sync_fetch_and_add(h, 1);
		else
			bpf_map_update_elem(&ddos_half_open, pkt->src, &one, BPF_NOEXIST);
		bpf_map_update_elem(&ddos_conn_table, &k, &nc, BPF_ANY);
		ddos_metric(ES_DDOS_M_CONN_TRACKED);
		return -1;
	}
	if (f == TCP_F_ACK) {
		struct es_ddos_conn_key r;

		if (ddos_conn_ack(&k, now, pkt->src))
			return -1;
		ddos_conn_key(&r, pkt, 1);
		if (ddos_conn_ack(&r, now, pkt->dst))
			return -1;
		/* Unknown to us. Without the shared conntrack table a download's ACKs
		 * would look like a flood: the check needs it (network.md §7.2). */
		if (cc->ack_check && !ddos_ct_known(pkt) &&
		    ddos_flood(ctx, pkt, ES_DDOS_FLOOD_ACK, cc->ack, now)) {
			ddos_metric(ES_DDOS_M_ACK_FLOOD_DROPS);
			ddos_event(ctx, pkt, ES_EV_DDOS_CONNTRACK, ES_DDOS_CT_ACK);
			return XDP_DROP;
		}
		return -1;
	}
	{
		struct es_ddos_conn *c = bpf_map_lookup_elem(&ddos_conn_table, &k);

		if (c)
			c->last_seen = now;
	}
	return -1;
}

/*
 * Every DDoS check in order (called when a check or the block list is on).
 * Returns an XDP verdict when the packet's fate
 * is decided here (drop, or a SYN-ACK sent back), or -1 to continue with
 * generic limiting. Each decided exit counts its reason.
 */
static __always_inline int ddos_check(struct xdp_md *ctx, const struct es_pkt *pkt, __u64 now,
				      __u32 prog, int have_blocks, __u32 checks)
{
	__u32 zero = 0;

	ddos_metric(ES_DDOS_M_TOTAL_SEEN);
	if (have_blocks) {
		__u64 *exp = bpf_map_lookup_elem(&ddos_block, pkt->src);

		if (exp && (!*exp || *exp > now)) {
			es_count(prog, ES_R_DDOS_BLOCKED);
			return XDP_DROP;
		}
	}
	if (!(pkt->flags & ES_PKT_F_L4))
		return -1;

	if ((checks & ES_RL_DDOS_ICMP) &&
	    ((pkt->proto == IPPROTO_ICMP && pkt->icmp_type == 8) ||
	     (pkt->proto == IPPROTO_ICMPV6_ && pkt->icmp_type == 128))) {
		struct es_ddos_icmp_config *ic = bpf_map_lookup_elem(&ddos_icmp_config, &zero);
		__u32 hdrs = pkt->l4_off - pkt->l3_off + 8;

		if (!ic || !ic->enabled)
			return -1;
		if (pkt->l3_len > hdrs && pkt->l3_len - hdrs > ic->max_payload_size) {
			ddos_metric(ES_DDOS_M_OVERSIZED_ICMP);
			ddos_event(ctx, pkt, ES_EV_DDOS_ICMP, ES_DDOS_EV_DROP);
			es_count(prog, ES_R_DDOS_ICMP_DROP);
			return XDP_DROP;
		}
		if (ddos_window_over(&ddos_icmp_rate, pkt->src, ic->max_pps, now)) {
			ddos_metric(ES_DDOS_M_ICMP_DROPPED);
			ddos_event(ctx, pkt, ES_EV_DDOS_ICMP, ES_DDOS_EV_DROP);
			es_count(prog, ES_R_DDOS_ICMP_DROP);
			return XDP_DROP;
		}
		ddos_metric(ES_DDOS_M_ICMP_PASSED);
		return -1;
	}

	if (pkt->proto == IPPROTO_TCP && (checks & (ES_RL_DDOS_SYN | ES_RL_DDOS_CT))) {
		__u8 f = pkt->tcp_flags & (TCP_F_SYN | TCP_F_ACK | TCP_F_RST | TCP_F_FIN);
		struct es_ddos_syn_config *sc = NULL;
		struct es_ddos_ct_config *cc = NULL;

		if (checks & ES_RL_DDOS_SYN)
			sc = bpf_map_lookup_elem(&ddos_syn_config, &zero);

		if (sc && sc->enabled && f == TCP_F_SYN) {
			struct es_addr16 all;
			int over, v;

			ddos_metric(ES_DDOS_M_SYN_RECEIVED);
			__builtin_memset(all.addr, 0xff, 16);
			/* Per source as specified, and over all sources (a spoofed flood
			 * never repeats a source). */
			over = !sc->threshold_mode;
			if (!over)
				over = ddos_syn_over(pkt->src, sc->threshold_pps, now);
			if (!over)
				over = ddos_syn_over(&all, sc->threshold_pps, now);
			if (over) {
				v = pkt->flags & ES_PKT_F_IPV6
					? ddos_synack_v6(ctx, pkt, sc->flags)
					: ddos_synack_v4(ctx, pkt, sc->flags);
				if (v == XDP_PASS)
					return -1; /* a socket of its own: the stack's */
				ddos_event(ctx, pkt, ES_EV_DDOS_SYN, ES_DDOS_EV_SYNCOOKIE);
				if (v == XDP_TX) {
					ddos_metric(ES_DDOS_M_SYNCOOKIES_SENT);
					es_count(prog, ES_R_DDOS_SYNCOOKIE);
					return XDP_TX;
				}
				es_count(prog, ES_R_DDOS_SYN_DROP);
				return XDP_DROP;
			}
		}
		if (sc && sc->enabled && (sc->flags & ES_DDOS_SYN_F_CHECK_ACK) && f == TCP_F_ACK &&
		    ddos_ack_forged(ctx, pkt)) {
			es_count(prog, ES_R_DDOS_BAD_COOKIE);
			return XDP_DROP;
		}
		if (checks & ES_RL_DDOS_CT)
			cc = bpf_map_lookup_elem(&ddos_ct_config, &zero);
		if (cc && cc->enabled) {
			int v = ddos_conn_track(ctx, pkt, cc, now);

			if (v >= 0) {
				es_count(prog, ES_R_DDOS_FLOOD_DROP);
				return v;
			}
		}
		return -1;
	}

	if (pkt->proto == IPPROTO_UDP && (checks & ES_RL_DDOS_AMP)) {
		struct es_ddos_amp_key ak = {.port = pkt->sport, .protocol = IPPROTO_UDP};
		struct es_ddos_amp_config *ac = bpf_map_lookup_elem(&ddos_amp_config, &ak);
		struct es_ddos_amp_state_key sk = {.port = pkt->sport};

		if (!ac || !ac->enabled)
			return -1;
		__builtin_memcpy(sk.addr, pkt->src, 16);
		if (ddos_window_over(&ddos_amp_rate, &sk, ac->max_pps, now)) {
			ddos_metric(ES_DDOS_M_AMP_DROPPED);
			ddos_event(ctx, pkt, ES_EV_DDOS_AMP, ES_DDOS_EV_DROP);
			es_count(prog, ES_R_DDOS_AMP_DROP);
			return XDP_DROP;
		}
		ddos_metric(ES_DDOS_M_AMP_PASSED);
	}
	return -1;
}

#endif
