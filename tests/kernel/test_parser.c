// SPDX-License-Identifier: AGPL-3.0-only
/* The shared packet parser, table-driven: each frame's parse result and fields. */
#include "kt.h"
#include "abi/pkt.h"
#include "skel/parse_probe.skel.h"

struct probe_out {
	__s32 ret;
	__u32 pad;
	struct es_pkt pkt;
};

static struct es_parse_probe *sk;

static void setup(void)
{
	KT_OPEN_OPTS(oo);

	kt_setup();
	sk = es_parse_probe__open_opts(&oo);
	cr_assert_not_null(sk);
	cr_assert_eq(es_parse_probe__load(sk), 0);
}

static void teardown(void)
{
	es_parse_probe__destroy(sk);
	kt_teardown();
}

TestSuite(parser, .init = setup, .fini = teardown);

static struct probe_out parse(const struct pb *p)
{
	struct probe_out o;
	struct kt_run r;
	__u32 zero = 0;

	kt_xdp(bpf_program__fd(sk->progs.xdp_parse_probe), p, &r);
	cr_assert_eq(r.retval, XDP_PASS);
	cr_assert_eq(bpf_map_lookup_elem(bpf_map__fd(sk->maps.probe_out), &zero, &o), 0);
	return o;
}

static void expect_v4(const __u8 *a, const char *dotted)
{
	__u8 want[16] = {0};

	want[10] = want[11] = 0xff;
	inet_pton(AF_INET, dotted, want + 12);
	cr_expect_arr_eq(a, want, 16, "address is not %s (IPv4-mapped)", dotted);
}

static void expect_v6(const __u8 *a, const char *text)
{
	__u8 want[16];

	inet_pton(AF_INET6, text, want);
	cr_expect_arr_eq(a, want, 16, "address is not %s", text);
}

Test(parser, ipv4_tcp)
{
	struct pb p;
	struct probe_out o;

	pb_init(&p);
	pb_eth(&p, PB_ETH_IP);
	pb_ipv4(&p, "198.51.100.7", "203.0.113.9", IPPROTO_TCP, 0, 0);
	pb_tcp(&p, 40000, 22, TH_SYN);
	pb_finish(&p);
	o = parse(&p);
	cr_expect_eq(o.ret, 0);
	expect_v4(o.pkt.src, "198.51.100.7");
	expect_v4(o.pkt.dst, "203.0.113.9");
	cr_expect_eq(o.pkt.proto, IPPROTO_TCP);
	cr_expect_eq(o.pkt.sport, 40000);
	cr_expect_eq(o.pkt.dport, 22);
	cr_expect_eq(o.pkt.tcp_flags, TH_SYN);
	cr_expect_eq(o.pkt.flags & (ES_PKT_F_L4 | ES_PKT_F_IPV6 | ES_PKT_F_VLAN), ES_PKT_F_L4);
	cr_expect_eq(o.pkt.l3_off, 14);
	cr_expect_eq(o.pkt.l4_off, 34);
	cr_expect_eq(o.pkt.ttl, 64);
	cr_expect_arr_eq(o.pkt.src_mac, pb_src_mac, 6);
	cr_expect_arr_eq(o.pkt.dst_mac, pb_dst_mac, 6);
}

Test(parser, ipv4_options_move_l4)
{
	struct pb p;
	struct probe_out o;

	pb_init(&p);
	pb_eth(&p, PB_ETH_IP);
	pb_ipv4(&p, "198.51.100.1", "198.51.100.2", IPPROTO_UDP, 3, 0);
	pb_udp(&p, 5353, 53);
	pb_payload(&p, 8, 0xaa);
	pb_finish(&p);
	o = parse(&p);
	cr_expect_eq(o.ret, 0);
	cr_expect_eq(o.pkt.l4_off, 14 + 32);
	cr_expect_eq(o.pkt.dport, 53);
	cr_expect(o.pkt.flags & ES_PKT_F_IPOPT);
}

Test(parser, ipv4_fragments)
{
	struct pb p;
	struct probe_out o;

	/* First fragment (MF, offset 0): L4 is visible. */
	pb_init(&p);
	pb_eth(&p, PB_ETH_IP);
	pb_ipv4(&p, "198.51.100.1", "198.51.100.2", IPPROTO_UDP, 0, 0x2000);
	pb_udp(&p, 1000, 2000);
	pb_finish(&p);
	o = parse(&p);
	cr_expect_eq(o.ret, 0);
	cr_expect(o.pkt.flags & ES_PKT_F_FRAG);
	cr_expect(o.pkt.flags & ES_PKT_F_L4);
	cr_expect_eq(o.pkt.dport, 2000);

	/* Later fragment (offset 185): no L4 view, ports stay zero. */
	pb_init(&p);
	pb_eth(&p, PB_ETH_IP);
	pb_ipv4(&p, "198.51.100.1", "198.51.100.2", IPPROTO_UDP, 0, 185);
	pb_payload(&p, 16, 0x11);
	pb_finish(&p);
	o = parse(&p);
	cr_expect_eq(o.ret, ES_R_FRAGMENT);
	cr_expect_eq(o.pkt.proto, IPPROTO_UDP);
	cr_expect_eq(o.pkt.sport, 0);
	cr_expect_eq(o.pkt.dport, 0);
	cr_expect_not(o.pkt.flags & ES_PKT_F_L4);
}

Test(parser, ipv6_extension_header_chain)
{
	struct pb p;
	struct probe_out o;

	pb_init(&p);
	pb_eth(&p, PB_ETH_IPV6);
	pb_ipv6(&p, "2001:db8::1", "2001:db8::2", 0 /* hop-by-hop */);
	pb_ext6(&p, 43 /* routing */, 0);
	pb_ext6(&p, 60 /* dest opts */, 1);
	pb_ext6(&p, 44 /* fragment */, 0);
	pb_frag6(&p, IPPROTO_TCP, 0, 1);
	pb_tcp(&p, 5555, 443, TH_SYN | TH_ACK);
	pb_finish(&p);
	o = parse(&p);
	cr_expect_eq(o.ret, 0);
	expect_v6(o.pkt.src, "2001:db8::1");
	expect_v6(o.pkt.dst, "2001:db8::2");
	cr_expect_eq(o.pkt.ext_count, 4);
	cr_expect_eq(o.pkt.proto, IPPROTO_TCP);
	cr_expect_eq(o.pkt.dport, 443);
	cr_expect_eq(o.pkt.tcp_flags, TH_SYN | TH_ACK);
	cr_expect_eq(o.pkt.l4_off, 14 + 40 + 8 + 16 + 8 + 8);
	cr_expect(o.pkt.flags & ES_PKT_F_IPV6);
	cr_expect(o.pkt.flags & ES_PKT_F_FRAG);
}

Test(parser, ipv6_non_first_fragment_has_no_l4)
{
	struct pb p;
	struct probe_out o;

	pb_init(&p);
	pb_eth(&p, PB_ETH_IPV6);
	pb_ipv6(&p, "2001:db8::1", "2001:db8::2", 44);
	pb_frag6(&p, IPPROTO_UDP, 100, 0);
	pb_payload(&p, 24, 0);
	pb_finish(&p);
	o = parse(&p);
	cr_expect_eq(o.ret, ES_R_FRAGMENT);
	cr_expect_eq(o.pkt.dport, 0);
}

Test(parser, ipv6_chain_longer_than_the_limit)
{
	struct pb p;
	struct probe_out o;

	pb_init(&p);
	pb_eth(&p, PB_ETH_IPV6);
	pb_ipv6(&p, "2001:db8::1", "2001:db8::2", 60);
	for (int i = 0; i < 7; i++)
		pb_ext6(&p, 60, 0);
	pb_finish(&p);
	o = parse(&p);
	cr_expect_eq(o.ret, ES_R_EXTHDR_TOO_MANY);
}

Test(parser, icmpv6)
{
	struct pb p;
	struct probe_out o;

	pb_init(&p);
	pb_eth(&p, PB_ETH_IPV6);
	pb_ipv6(&p, "2001:db8::1", "2001:db8::2", 58);
	pb_icmp(&p, 135, 0);
	pb_finish(&p);
	o = parse(&p);
	cr_expect_eq(o.ret, 0);
	cr_expect_eq(o.pkt.proto, 58);
	cr_expect_eq(o.pkt.icmp_type, 135);
	cr_expect_eq(o.pkt.sport, 0);
	cr_expect_eq(o.pkt.icmp_id, 0, "only echo messages carry an identifier");
}

Test(parser, vlan_8021q)
{
	struct pb p;
	struct probe_out o;

	pb_init(&p);
	pb_eth(&p, PB_ETH_8021Q);
	pb_tag(&p, 200, PB_ETH_IP);
	pb_ipv4(&p, "198.51.100.1", "198.51.100.2", IPPROTO_ICMP, 0, 0);
	pb_icmp(&p, 8, 0);
	pb_finish(&p);
	o = parse(&p);
	cr_expect_eq(o.ret, 0);
	cr_expect_eq(o.pkt.vlan_id, 200);
	cr_expect_eq(o.pkt.vlan_depth, 1);
	cr_expect(o.pkt.flags & ES_PKT_F_VLAN);
	cr_expect_not(o.pkt.flags & ES_PKT_F_QINQ);
	cr_expect_eq(o.pkt.l3_off, 18);
	cr_expect_eq(o.pkt.icmp_type, 8);
	cr_expect_eq(o.pkt.icmp_id, 1, "echo identifier");
}

Test(parser, qinq_8021ad)
{
	struct pb p;
	struct probe_out o;

	pb_init(&p);
	pb_eth(&p, PB_ETH_8021AD);
	pb_tag(&p, 300, PB_ETH_8021Q);
	pb_tag(&p, 42, PB_ETH_IPV6);
	pb_ipv6(&p, "2001:db8::a", "2001:db8::b", IPPROTO_UDP);
	pb_udp(&p, 1, 2);
	pb_finish(&p);
	o = parse(&p);
	cr_expect_eq(o.ret, 0);
	cr_expect_eq(o.pkt.vlan_id, 300);
	cr_expect_eq(o.pkt.inner_vlan_id, 42);
	cr_expect_eq(o.pkt.vlan_depth, 2);
	cr_expect(o.pkt.flags & ES_PKT_F_QINQ);
	cr_expect_eq(o.pkt.l3_off, 22);
	cr_expect_eq(o.pkt.dport, 2);
}

Test(parser, three_tags_are_too_deep)
{
	struct pb p;
	struct probe_out o;

	pb_init(&p);
	pb_eth(&p, PB_ETH_8021AD);
	pb_tag(&p, 1, PB_ETH_8021Q);
	pb_tag(&p, 2, PB_ETH_8021Q);
	pb_tag(&p, 3, PB_ETH_IP);
	pb_ipv4(&p, "198.51.100.1", "198.51.100.2", IPPROTO_UDP, 0, 0);
	pb_udp(&p, 1, 2);
	pb_finish(&p);
	o = parse(&p);
	cr_expect_eq(o.ret, ES_R_VLAN_TOO_DEEP);
}

Test(parser, non_ip_is_reported)
{
	struct pb p;
	struct probe_out o;

	pb_init(&p);
	pb_eth(&p, PB_ETH_ARP);
	pb_payload(&p, 28, 0);
	o = parse(&p);
	cr_expect_eq(o.ret, ES_R_NON_IP);
	cr_expect_eq(o.pkt.eth_proto, PB_ETH_ARP);
}

/* Malformed and truncated frames: each is reported, none crashes the parser. */
Test(parser, truncated_and_malformed)
{
	static const struct {
		const char *desc;
		int cut;  /* keep only this many bytes (0 = all) */
		int kind; /* 0 v4 tcp, 1 v4 bad ihl, 2 v6 tcp, 3 vlan, 4 v4 tot_len < ihl */
		int expect;
	} cases[] = {
	    /* (A frame shorter than Ethernet cannot be fed: test_run needs 14 bytes.) */
	    {"ipv4 cut in header", 14 + 12, 0, ES_R_TRUNC_IPV4},
	    {"tcp cut in header", 14 + 20 + 10, 0, ES_R_TRUNC_L4},
	    {"bogus ihl (4)", 0, 1, ES_R_BAD_IHL},
	    {"ipv6 cut in header", 14 + 30, 2, ES_R_TRUNC_IPV6},
	    {"ipv6 tcp cut", 14 + 40 + 4, 2, ES_R_TRUNC_L4},
	    {"vlan tag cut", 16, 3, ES_R_TRUNC_VLAN},
	    {"total length below ihl", 0, 4, ES_R_BAD_IPV4_LEN},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct pb p;
		struct probe_out o;

		pb_init(&p);
		if (cases[i].kind == 3) {
			pb_eth(&p, PB_ETH_8021Q);
			pb_tag(&p, 5, PB_ETH_IP);
		} else {
			pb_eth(&p, cases[i].kind == 2 ? PB_ETH_IPV6 : PB_ETH_IP);
		}
		if (cases[i].kind == 2)
			pb_ipv6(&p, "2001:db8::1", "2001:db8::2", IPPROTO_TCP);
		else
			pb_ipv4(&p, "198.51.100.1", "198.51.100.2", IPPROTO_TCP, 0, 0);
		pb_tcp(&p, 1, 2, TH_SYN);
		pb_finish(&p);
		if (cases[i].kind == 1)
			p.buf[14] = 0x44; /* IHL 4: below the minimum */
		if (cases[i].kind == 4) {
			p.buf[16] = 0;
			p.buf[17] = 10;
		}
		if (cases[i].cut)
			p.len = (size_t)cases[i].cut;
		o = parse(&p);
		cr_expect_eq(o.ret, cases[i].expect, "%s: got %d, want %d", cases[i].desc, o.ret,
			     cases[i].expect);
	}
}
