// SPDX-License-Identifier: AGPL-3.0-only
/*
 * The shared conntrack helpers of kernel/bpf/ct.h, as the XDP firewall and
 * the ratelimit program use them: key normalization (IPv4, IPv6, ICMP echo)
 * and the state derivation of network.md §2.2 step 4, against entries written
 * from userspace the way tc_conntrack writes them.
 */
#include "kt_ct.h"
#include "abi/conntrack.h"
#include "skel/ct_probe.skel.h"

static struct es_ct_probe *sk;

/* Mirror of struct ct_tuple / ct_verdict / ct_probe_out (ct.h, ct_probe.bpf.c). */
struct tuple {
	__u8 v6, pkt_is_src, proto, pad;
	union {
		struct es_ct_key_v4 k4;
		struct es_ct_key_v6 k6;
	};
};
struct verdict {
	__u8 state, fast, has_entry, pad;
};
struct probe_out {
	__s32 parse_ret, tuple_ret;
	struct tuple t;
	struct verdict v;
	__u32 live_entry;
};

static void set_config(int enabled)
{
	kt_ct_config(bpf_map__fd(sk->maps.ct_config), enabled);
}

static void setup(void)
{
	KT_OPEN_OPTS(oo);

	kt_setup();
	sk = es_ct_probe__open_opts(&oo);
	cr_assert_not_null(sk);
	cr_assert_eq(es_kernel_prepare_obj(sk->obj), 0);
	cr_assert_eq(es_ct_probe__load(sk), 0, "ct.h helpers do not load in XDP");
	set_config(1);
}

static void teardown(void)
{
	es_ct_probe__destroy(sk);
	kt_teardown();
}

TestSuite(ct_classify, .init = setup, .fini = teardown);

static struct probe_out run(const struct pb *p)
{
	struct probe_out o;
	struct kt_run r;
	__u32 zero = 0;

	kt_xdp(bpf_program__fd(sk->progs.xdp_ct_probe), p, &r);
	cr_assert_eq(r.retval, XDP_PASS);
	cr_assert_eq(bpf_map_lookup_elem(bpf_map__fd(sk->maps.ct_probe_out), &zero, &o), 0);
	return o;
}

static __u32 v4(const char *s)
{
	struct in_addr a;

	inet_pton(AF_INET, s, &a);
	return ntohl(a.s_addr);
}

static void v6w(const char *s, __u32 w[4])
{
	struct in6_addr a;

	inet_pton(AF_INET6, s, &a);
	for (int i = 0; i < 4; i++)
		w[i] = (__u32)a.s6_addr[4 * i] << 24 | (__u32)a.s6_addr[4 * i + 1] << 16 |
		       (__u32)a.s6_addr[4 * i + 2] << 8 | a.s6_addr[4 * i + 3];
}

static void tcp4(struct pb *p, const char *s, const char *d, __u16 sp, __u16 dp, __u8 flags)
{
	pb_init(p);
	pb_eth(p, PB_ETH_IP);
	pb_ipv4(p, s, d, IPPROTO_TCP, 0, 0);
	pb_tcp(p, sp, dp, flags);
	pb_finish(p);
}

static void tcp6(struct pb *p, const char *s, const char *d, __u16 sp, __u16 dp, __u8 flags)
{
	pb_init(p);
	pb_eth(p, PB_ETH_IPV6);
	pb_ipv6(p, s, d, IPPROTO_TCP);
	pb_tcp(p, sp, dp, flags);
	pb_finish(p);
}

static void udp4(struct pb *p, const char *s, const char *d, __u16 sp, __u16 dp)
{
	pb_init(p);
	pb_eth(p, PB_ETH_IP);
	pb_ipv4(p, s, d, IPPROTO_UDP, 0, 0);
	pb_udp(p, sp, dp);
	pb_payload(p, 8, 0xab);
	pb_finish(p);
}

static void put4(const char *a, __u16 ap, const char *b, __u16 bp, __u8 proto, __u8 state,
		 __u8 flags, __u64 last)
{
	struct es_ct_key_v4 k = {
	    .src_ip = v4(a), .dst_ip = v4(b), .src_port = ap, .dst_port = bp, .protocol = proto};
	struct es_ct_entry_v4 e = {.state = state,
				   .flags = flags,
				   .first_seen_ns = last,
				   .last_seen_ns = last,
				   .rule_slot = ES_CT_RULE_SLOT_NONE};

	cr_assert_eq(bpf_map_update_elem(bpf_map__fd(sk->maps.ct_table_v4), &k, &e, BPF_ANY), 0);
}

static void put6(const char *a, __u16 ap, const char *b, __u16 bp, __u8 proto, __u8 state,
		 __u8 flags, __u64 last)
{
	struct es_ct_key_v6 k = {.src_port = ap, .dst_port = bp, .protocol = proto};
	struct es_ct_entry_v6 e = {.state = state,
				   .flags = flags,
				   .first_seen_ns = last,
				   .last_seen_ns = last,
				   .rule_slot = ES_CT_RULE_SLOT_NONE};

	v6w(a, k.src_ip);
	v6w(b, k.dst_ip);
	cr_assert_eq(bpf_map_update_elem(bpf_map__fd(sk->maps.ct_table_v6), &k, &e, BPF_ANY), 0);
}

#define C "198.51.100.1"
#define S "198.51.100.2"
#define C6 "2001:db8::1"
#define S6 "2001:db8::2"

Test(ct_classify, keys_are_normalized_lower_endpoint_first)
{
	struct pb p;
	struct probe_out o;

	tcp4(&p, S, C, 80, 40000, TH_SYN | TH_ACK);
	o = run(&p);
	cr_assert_eq(o.tuple_ret, 0);
	cr_expect_eq(o.t.v6, 0);
	cr_expect_eq(o.t.k4.src_ip, v4(C), "lower address is src");
	cr_expect_eq(o.t.k4.dst_ip, v4(S));
	cr_expect_eq(o.t.k4.src_port, 40000);
	cr_expect_eq(o.t.k4.dst_port, 80);
	cr_expect_eq(o.t.k4.protocol, IPPROTO_TCP);
	cr_expect_eq(o.t.pkt_is_src, 0, "the packet came from the key's dst");

	tcp4(&p, C, C, 9000, 80, TH_SYN); /* same address: the lower port is src */
	o = run(&p);
	cr_expect_eq(o.t.k4.src_port, 80);
	cr_expect_eq(o.t.pkt_is_src, 0);

	tcp6(&p, S6, C6, 443, 5555, TH_ACK);
	o = run(&p);
	__u32 w[4];
	v6w(C6, w);
	cr_expect_eq(o.t.v6, 1);
	cr_expect_arr_eq(o.t.k6.src_ip, w, sizeof(w), "IPv6 words compared in order");
	cr_expect_eq(o.t.k6.src_port, 5555);
	cr_expect_eq(o.t.pkt_is_src, 0);

	/* ICMP echo: the identifier (1 in pb_icmp) stands for both ports. */
	pb_init(&p);
	pb_eth(&p, PB_ETH_IP);
	pb_ipv4(&p, S, C, IPPROTO_ICMP, 0, 0);
	pb_icmp(&p, 0, 0);
	pb_finish(&p);
	o = run(&p);
	cr_expect_eq(o.t.k4.src_port, 1);
	cr_expect_eq(o.t.k4.dst_port, 1);
	cr_expect_eq(o.t.k4.protocol, IPPROTO_ICMP);
}

struct nocase {
	const char *what;
	int v6;
	__u8 proto;
	__u8 tcp_flags;
	__u8 state;
};

Test(ct_classify, without_an_entry)
{
	static const struct nocase cases[] = {
	    {"pure SYN is new", 0, IPPROTO_TCP, TH_SYN, ES_CT_NEW},
	    {"unsolicited ACK is invalid", 0, IPPROTO_TCP, TH_ACK, ES_CT_INVALID},
	    {"SYN+ACK without a SYN is invalid", 0, IPPROTO_TCP, TH_SYN | TH_ACK, ES_CT_INVALID},
	    {"FIN is invalid", 0, IPPROTO_TCP, TH_FIN | TH_ACK, ES_CT_INVALID},
	    {"UDP is new", 0, IPPROTO_UDP, 0, ES_CT_NEW},
	    {"IPv6 pure SYN is new", 1, IPPROTO_TCP, TH_SYN, ES_CT_NEW},
	    {"IPv6 ACK is invalid", 1, IPPROTO_TCP, TH_ACK, ES_CT_INVALID},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct nocase *c = &cases[i];
		struct pb p;
		struct probe_out o;

		if (c->proto == IPPROTO_UDP)
			udp4(&p, C, S, 5000, 53);
		else if (c->v6)
			tcp6(&p, C6, S6, 40000, 22, c->tcp_flags);
		else
			tcp4(&p, C, S, 40000, 22, c->tcp_flags);
		o = run(&p);
		cr_expect_eq(o.v.state, c->state, "%s: state %u", c->what, o.v.state);
		cr_expect_eq(o.v.fast, 0, "%s: no fast path", c->what);
		cr_expect_eq(o.v.has_entry, 0, "%s", c->what);
		cr_expect_eq(o.live_entry, 0, "%s", c->what);
	}
}

Test(ct_classify, conntrack_off_is_unknown)
{
	struct pb p;
	struct probe_out o;

	set_config(0);
	put4(C, 40000, S, 22, IPPROTO_TCP, ES_CT_ESTABLISHED, ES_CT_F_ORIG_IS_SRC, kt_boot_ns());
	tcp4(&p, C, S, 40000, 22, TH_ACK);
	o = run(&p);
	cr_expect_eq(o.v.state, ES_CT_UNKNOWN);
	cr_expect_eq(o.v.fast, 0, "no fast path while conntrack is off");
	cr_expect_eq(o.live_entry, 0);
}

struct ecase {
	const char *what;
	__u8 entry_state;
	int from_client; /* packet from the initiator */
	__u8 tcp_flags;
	__u8 state, fast, has_entry;
};

static void entry_cases(int v6)
{
	static const struct ecase cases[] = {
	    {"SYN retransmit in SYN_SENT", ES_CT_SYN_SENT, 1, TH_SYN, ES_CT_NEW, 0, 1},
	    {"SYN+ACK reply in SYN_SENT", ES_CT_SYN_SENT, 0, TH_SYN | TH_ACK, ES_CT_ESTABLISHED, 1,
	     1},
	    {"handshake ACK in SYN_RECV", ES_CT_SYN_RECV, 1, TH_ACK, ES_CT_NEW, 0, 1},
	    {"established, original", ES_CT_ESTABLISHED, 1, TH_ACK, ES_CT_ESTABLISHED, 1, 1},
	    {"established, reply", ES_CT_ESTABLISHED, 0, TH_ACK, ES_CT_ESTABLISHED, 1, 1},
	    {"FIN_WAIT, original", ES_CT_FIN_WAIT, 1, TH_ACK, ES_CT_ESTABLISHED, 0, 1},
	    {"CLOSE_WAIT, original", ES_CT_CLOSE_WAIT, 1, TH_FIN | TH_ACK, ES_CT_ESTABLISHED, 0, 1},
	    {"TIME_WAIT, reply", ES_CT_TIME_WAIT, 0, TH_ACK, ES_CT_ESTABLISHED, 1, 1},
	    {"new SYN reusing a TIME_WAIT tuple", ES_CT_TIME_WAIT, 1, TH_SYN, ES_CT_NEW, 0, 0},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct ecase *c = &cases[i];
		struct pb p;
		struct probe_out o;

		/* Initiated by the higher address, so ORIG_IS_SRC is clear. */
		if (v6) {
			put6(C6, 22, S6, 40000, IPPROTO_TCP, c->entry_state, 0, kt_boot_ns());
			if (c->from_client)
				tcp6(&p, S6, C6, 40000, 22, c->tcp_flags);
			else
				tcp6(&p, C6, S6, 22, 40000, c->tcp_flags);
		} else {
			put4(C, 22, S, 40000, IPPROTO_TCP, c->entry_state, 0, kt_boot_ns());
			if (c->from_client)
				tcp4(&p, S, C, 40000, 22, c->tcp_flags);
			else
				tcp4(&p, C, S, 22, 40000, c->tcp_flags);
		}
		o = run(&p);
		cr_expect_eq(o.v.state, c->state, "v%d %s: state %u", v6 ? 6 : 4, c->what,
			     o.v.state);
		cr_expect_eq(o.v.fast, c->fast, "v%d %s: fast", v6 ? 6 : 4, c->what);
		cr_expect_eq(o.v.has_entry, c->has_entry, "v%d %s: has_entry", v6 ? 6 : 4, c->what);
		cr_expect_eq(o.live_entry, 1, "v%d %s: live", v6 ? 6 : 4, c->what);
	}
}

Test(ct_classify, with_a_live_entry_ipv4)
{
	entry_cases(0);
}

Test(ct_classify, with_a_live_entry_ipv6)
{
	entry_cases(1);
}

Test(ct_classify, expired_entries_count_as_absent)
{
	struct pb p;
	struct probe_out o;
	__u64 now = kt_boot_ns();

	/* Idle 20 s > the 12 s SYN timeout; an established one idle as long is live. */
	put4(C, 40000, S, 22, IPPROTO_TCP, ES_CT_SYN_RECV, ES_CT_F_ORIG_IS_SRC,
	     now - 20ull * 1000000000);
	tcp4(&p, S, C, 22, 40000, TH_ACK);
	o = run(&p);
	cr_expect_eq(o.v.state, ES_CT_INVALID);
	cr_expect_eq(o.v.fast, 0);
	cr_expect_eq(o.live_entry, 0);

	put4(C, 40000, S, 22, IPPROTO_TCP, ES_CT_ESTABLISHED, ES_CT_F_ORIG_IS_SRC,
	     now - 20ull * 1000000000);
	o = run(&p);
	cr_expect_eq(o.v.state, ES_CT_ESTABLISHED);
	cr_expect_eq(o.v.fast, 1);
}

Test(ct_classify, icmp_errors_about_tracked_flows_are_related)
{
	struct pb p;
	struct probe_out o;

	/* An unreachable about a flow nobody tracks: invalid. */
	icmp_err(&p, 0, S, C, C, S, 5000, 53);
	o = run(&p);
	cr_expect_eq(o.v.state, ES_CT_INVALID);
	cr_expect_eq(o.v.fast, 0);

	/* The client's unanswered UDP query is tracked: the port unreachable is related. */
	put4(C, 5000, S, 53, IPPROTO_UDP, ES_CT_NEW, ES_CT_F_ORIG_IS_SRC, kt_boot_ns());
	o = run(&p);
	cr_expect_eq(o.v.state, ES_CT_RELATED);
	cr_expect_eq(o.v.fast, 1);
	cr_expect_eq(o.v.has_entry, 1);

	icmp_err(&p, 1, S6, C6, C6, S6, 5000, 53);
	o = run(&p);
	cr_expect_eq(o.v.state, ES_CT_INVALID);
	put6(C6, 5000, S6, 53, IPPROTO_UDP, ES_CT_NEW, ES_CT_F_ORIG_IS_SRC, kt_boot_ns());
	o = run(&p);
	cr_expect_eq(o.v.state, ES_CT_RELATED, "ICMPv6 error about a tracked flow");
	cr_expect_eq(o.v.fast, 1);

	/* Truncated quote: not related, never a crash. */
	icmp_err(&p, 0, S, C, C, S, 5000, 53);
	p.len -= 10;
	o = run(&p);
	cr_expect_eq(o.v.state, ES_CT_INVALID);
}

Test(ct_classify, echo_requests_are_new_and_replies_fast)
{
	struct pb p;
	struct probe_out o;

	pb_init(&p);
	pb_eth(&p, PB_ETH_IP);
	pb_ipv4(&p, C, S, IPPROTO_ICMP, 0, 0);
	pb_icmp(&p, 8, 0);
	pb_finish(&p);
	o = run(&p);
	cr_expect_eq(o.v.state, ES_CT_NEW);

	put4(C, 1, S, 1, IPPROTO_ICMP, ES_CT_NEW, ES_CT_F_ORIG_IS_SRC, kt_boot_ns());
	pb_init(&p);
	pb_eth(&p, PB_ETH_IP);
	pb_ipv4(&p, S, C, IPPROTO_ICMP, 0, 0);
	pb_icmp(&p, 0, 0);
	pb_finish(&p);
	o = run(&p);
	cr_expect_eq(o.v.state, ES_CT_ESTABLISHED, "the echo reply of a tracked request");
	cr_expect_eq(o.v.fast, 1);
}
