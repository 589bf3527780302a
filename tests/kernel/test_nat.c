// SPDX-License-Identifier: AGPL-3.0-only
/*
 * tc_nat_ingress / tc_nat_egress through BPF_PROG_TEST_RUN: every rewrite is
 * compared byte for byte with the frame a correct sender would have written,
 * whose checksums the test computes from scratch (pkt.h), never with the
 * kernel's helpers. DNAT, port forward, redirect, 1:1 both ways, SNAT with a
 * port pool, masquerade, NAT66, ICMP echo, the UDP zero-checksum rules, port
 * exhaustion, reply translation and the conntrack annotation.
 */
#include <net/if.h>

#include "kt_ct.h"
#include "abi/nat.h"
#include "skel/nat.skel.h"

static struct es_nat *sk;

static void setup(void)
{
	KT_OPEN_OPTS(oo);

	kt_setup();
	sk = es_nat__open_opts(&oo);
	cr_assert_not_null(sk);
	cr_assert_eq(es_kernel_prepare_obj(sk->obj), 0);
	cr_assert_eq(es_nat__load(sk), 0, "NAT programs do not load on this kernel");
	cr_assert_eq(es_kernel_set_feature(ES_FEAT_NAT, true), 0);
	kt_ct_config(bpf_map__fd(sk->maps.ct_config), 1);
}

static void teardown(void)
{
	es_nat__destroy(sk);
	kt_teardown();
}

TestSuite(nat, .init = setup, .fini = teardown);

/* ---- rules ------------------------------------------------------------------------ */

static __u32 v4(const char *s)
{
	struct in_addr a;

	cr_assert_eq(inet_pton(AF_INET, s, &a), 1);
	return ntohl(a.s_addr);
}

static void v6w(const char *s, __u32 w[4])
{
	struct in6_addr a;

	cr_assert_eq(inet_pton(AF_INET6, s, &a), 1);
	for (int i = 0; i < 4; i++)
		w[i] = (__u32)a.s6_addr[4 * i] << 24 | (__u32)a.s6_addr[4 * i + 1] << 16 |
		       (__u32)a.s6_addr[4 * i + 2] << 8 | a.s6_addr[4 * i + 3];
}

enum { L_DNAT4 = 0, L_SNAT4, L_DNAT6, L_SNAT6 };

/* Install rules into bank 0 of a list and publish the count. */
static void rules4(int list, const struct es_nat_rule *r, __u32 n)
{
	int fd = bpf_map__fd(list == L_DNAT4 ? sk->maps.nat_dnat_rules : sk->maps.nat_snat_rules);
	__u32 l = (__u32)list;

	for (__u32 i = 0; i < n; i++)
		cr_assert_eq(bpf_map_update_elem(fd, &i, &r[i], BPF_ANY), 0);
	cr_assert_eq(bpf_map_update_elem(bpf_map__fd(sk->maps.nat_rule_count), &l, &n, BPF_ANY), 0);
}

static void rules6(int list, const struct es_nat_rule_v6 *r, __u32 n)
{
	int fd =
	    bpf_map__fd(list == L_DNAT6 ? sk->maps.nat_dnat_rules_v6 : sk->maps.nat_snat_rules_v6);
	__u32 l = (__u32)list;

	for (__u32 i = 0; i < n; i++)
		cr_assert_eq(bpf_map_update_elem(fd, &i, &r[i], BPF_ANY), 0);
	cr_assert_eq(bpf_map_update_elem(bpf_map__fd(sk->maps.nat_rule_count), &l, &n, BPF_ANY), 0);
}

static void ifaddr(__u32 ifindex, const char *a4, const char *a6)
{
	struct es_nat_ifaddr a = {0};

	if (a4)
		a.v4 = v4(a4);
	if (a6)
		v6w(a6, a.v6);
	cr_assert_eq(bpf_map_update_elem(bpf_map__fd(sk->maps.nat_ifaddr), &ifindex, &a, BPF_ANY),
		     0);
}

/* ---- frames -------------------------------------------------------------------------- */

/* A frame with correct checksums: proto TCP (flags), UDP (payload), ICMP echo. */
static void frame(struct pb *p, int v6, const char *s, const char *d, uint8_t proto, __u16 sp,
		  __u16 dp, int udp_zero_csum)
{
	pb_init(p);
	pb_eth(p, v6 ? PB_ETH_IPV6 : PB_ETH_IP);
	if (v6)
		pb_ipv6(p, s, d, proto == IPPROTO_ICMP ? 58 : proto);
	else
		pb_ipv4(p, s, d, proto, 0, 0);
	if (proto == IPPROTO_TCP)
		pb_tcp(p, sp, dp, TH_SYN);
	else if (proto == IPPROTO_UDP)
		pb_udp(p, sp, dp);
	else
		pb_icmp(p, v6 ? 128 : 8, 0);
	if (proto == IPPROTO_ICMP) /* pb_icmp: identifier 1; use sp instead */
		p->buf[p->l4 + 4] = (uint8_t)(sp >> 8), p->buf[p->l4 + 5] = (uint8_t)sp;
	pb_payload(p, 23, 0x6b); /* odd length: exercises the checksum's last byte */
	pb_finish(p);
	if (!(proto == IPPROTO_UDP && udp_zero_csum))
		pb_fill_l4_csum(p);
}

struct out {
	int verdict;
	struct kt_run r;
	__u32 cb0;
};

static struct out run(int ingress, const struct pb *p)
{
	struct __sk_buff ctx = {0};
	struct out o;

	kt_tc(bpf_program__fd(ingress ? sk->progs.tc_nat_ingress : sk->progs.tc_nat_egress), p,
	      &ctx, &o.r);
	o.verdict = (int)o.r.retval;
	o.cb0 = ctx.cb[0];
	return o;
}

/* The output must equal `want` byte for byte (checksums included). */
static void expect_frame(const struct out *o, const struct pb *want, const char *what)
{
	cr_expect_eq(o->verdict, -1, "%s: verdict %d, want TC_ACT_UNSPEC", what, o->verdict);
	cr_assert_eq(o->r.out_len, want->len, "%s: length %u, want %zu", what, o->r.out_len,
		     want->len);
	for (size_t i = 0; i < want->len; i++)
		if (o->r.out[i] != want->buf[i]) {
			cr_expect_fail("%s: byte %zu is 0x%02x, want 0x%02x", what, i, o->r.out[i],
				       want->buf[i]);
			return;
		}
}

static uint64_t metric(int i)
{
	return kt_percpu(bpf_map__fd(sk->maps.nat_metrics), (__u32)i);
}

static __u16 out_port(const struct out *o, const struct pb *p, int which)
{
	return (__u16)(o->r.out[p->l4 + 2 * which] << 8 | o->r.out[p->l4 + 2 * which + 1]);
}

/* ---- DNAT, port forward, redirect ----------------------------------------------------- */

Test(nat, dnat_tcp_and_its_reply)
{
	struct es_nat_rule r = {.match_dst_ip = v4("203.0.113.1"),
				.match_dst_mask = 0xffffffff,
				.match_dst_port_start = 8080,
				.match_dst_port_end = 8080,
				.match_protocol = IPPROTO_TCP,
				.match_flags = ES_NAT_M_DST | ES_NAT_M_DPORT | ES_NAT_M_PROTO,
				.nat_type = ES_NAT_T_DNAT,
				.nat_addr = v4("198.51.100.10"),
				.nat_port_start = 80,
				.nat_port_end = 80,
				.rule_id = 1};
	struct pb in, want, reply, want_reply, other;
	struct out o;

	rules4(L_DNAT4, &r, 1);
	frame(&in, 0, "198.51.100.2", "203.0.113.1", IPPROTO_TCP, 40000, 8080, 0);
	frame(&want, 0, "198.51.100.2", "198.51.100.10", IPPROTO_TCP, 40000, 80, 0);
	o = run(1, &in);
	expect_frame(&o, &want, "DNAT 203.0.113.1:8080 -> 198.51.100.10:80");
	cr_expect_eq(metric(ES_NAT_M_DNAT_APPLIED), 1);

	/* The server's answer leaves through egress translated back. */
	frame(&reply, 0, "198.51.100.10", "198.51.100.2", IPPROTO_TCP, 80, 40000, 0);
	frame(&want_reply, 0, "203.0.113.1", "198.51.100.2", IPPROTO_TCP, 8080, 40000, 0);
	o = run(0, &reply);
	expect_frame(&o, &want_reply, "reply un-DNAT");
	cr_expect_eq(o.cb0, ES_TC_CB_NAT_FLOW, "conntrack egress is told it is a NAT flow");
	cr_expect_eq(metric(ES_NAT_M_DNAT_APPLIED), 2);

	/* Forwarded towards the server (post-DNAT tuple) at egress: untouched, but marked. */
	o = run(0, &want);
	expect_frame(&o, &want, "post-DNAT packet at egress");
	cr_expect_eq(o.cb0, ES_TC_CB_NAT_FLOW);

	/* Another port: no rule, untouched, not marked. */
	frame(&other, 0, "198.51.100.2", "203.0.113.1", IPPROTO_TCP, 40000, 8081, 0);
	o = run(1, &other);
	expect_frame(&o, &other, "non-matching port");
	o = run(0, &other);
	cr_expect_neq(o.cb0, ES_TC_CB_NAT_FLOW);
	cr_expect_eq(metric(ES_NAT_M_TOTAL_SEEN), 5);
}

Test(nat, port_forward_keeps_the_offset)
{
	struct es_nat_rule r = {.match_dst_port_start = 8000,
				.match_dst_port_end = 8010,
				.match_flags = ES_NAT_M_DPORT,
				.nat_type = ES_NAT_T_DNAT,
				.nat_addr = v4("198.51.100.20"),
				.nat_port_start = 9000,
				.nat_port_end = 9010,
				.rule_id = 2};
	struct pb in, want;
	struct out o;

	rules4(L_DNAT4, &r, 1);
	frame(&in, 0, "198.51.100.2", "203.0.113.1", IPPROTO_UDP, 5555, 8005, 0);
	frame(&want, 0, "198.51.100.2", "198.51.100.20", IPPROTO_UDP, 5555, 9005, 0);
	o = run(1, &in);
	expect_frame(&o, &want, "port_forward 8005 -> 9005");
}

Test(nat, redirect_to_the_receiving_interface)
{
	struct es_nat_rule r = {.match_dst_port_start = 53,
				.match_dst_port_end = 53,
				.match_protocol = IPPROTO_UDP,
				.match_flags = ES_NAT_M_DPORT | ES_NAT_M_PROTO,
				.nat_type = ES_NAT_T_REDIRECT,
				.nat_port_start = 5353,
				.nat_port_end = 5353,
				.rule_id = 3};
	struct pb in, want;
	struct out o;

	rules4(L_DNAT4, &r, 1);
	frame(&in, 0, "198.51.100.2", "192.0.2.53", IPPROTO_UDP, 5555, 53, 0);
	o = run(1, &in);
	expect_frame(&o, &in, "no address known for the interface yet: untouched");
	ifaddr(1, "198.51.100.1", NULL); /* test_run's skb is on loopback */
	frame(&want, 0, "198.51.100.2", "198.51.100.1", IPPROTO_UDP, 5555, 5353, 0);
	o = run(1, &in);
	expect_frame(&o, &want, "redirect :53 -> 198.51.100.1:5353");
}

Test(nat, nat66_dnat)
{
	struct es_nat_rule_v6 r = {.match_protocol = IPPROTO_TCP,
				   .match_flags = ES_NAT_M_DST | ES_NAT_M_PROTO,
				   .nat_type = ES_NAT_T_DNAT,
				   .nat_port_start = 8443,
				   .nat_port_end = 8443,
				   .rule_id = 4};
	struct pb in, want, reply, want_reply;
	struct out o;

	v6w("2001:db8:ffff::1", r.match_dst_ip);
	memset(r.match_dst_mask, 0xff, 16);
	v6w("2001:db8:2::10", r.nat_addr);
	rules6(L_DNAT6, &r, 1);
	frame(&in, 1, "2001:db8:1::2", "2001:db8:ffff::1", IPPROTO_TCP, 40000, 443, 0);
	frame(&want, 1, "2001:db8:1::2", "2001:db8:2::10", IPPROTO_TCP, 40000, 8443, 0);
	o = run(1, &in);
	expect_frame(&o, &want, "NAT66 DNAT");
	frame(&reply, 1, "2001:db8:2::10", "2001:db8:1::2", IPPROTO_TCP, 8443, 40000, 0);
	frame(&want_reply, 1, "2001:db8:ffff::1", "2001:db8:1::2", IPPROTO_TCP, 443, 40000, 0);
	o = run(0, &reply);
	expect_frame(&o, &want_reply, "NAT66 reply");
}

/* ---- SNAT, masquerade, 1:1 -------------------------------------------------------------- */

Test(nat, snat_pool_udp_and_reply)
{
	struct es_nat_rule r = {.match_src_ip = v4("198.51.100.0"),
				.match_src_mask = 0xffffff00,
				.match_flags = ES_NAT_M_SRC,
				.nat_type = ES_NAT_T_SNAT,
				.nat_addr = v4("203.0.113.1"),
				.nat_port_start = 20000,
				.nat_port_end = 20010,
				.rule_id = 5};
	struct pb in, want, reply, want_reply;
	struct out o;
	__u16 port;

	rules4(L_SNAT4, &r, 1);
	frame(&in, 0, "198.51.100.2", "203.0.113.9", IPPROTO_UDP, 5000, 53, 0);
	o = run(0, &in);
	port = out_port(&o, &in, 0);
	cr_expect(port >= 20000 && port <= 20010, "port %u outside the pool", port);
	frame(&want, 0, "203.0.113.1", "203.0.113.9", IPPROTO_UDP, port, 53, 0);
	expect_frame(&o, &want, "SNAT to 203.0.113.1 with a pool port");
	cr_expect_eq(o.cb0, ES_TC_CB_NAT_FLOW);
	cr_expect_eq(metric(ES_NAT_M_SNAT_APPLIED), 1);
	/* The same flow again: same port (the session, not a new allocation). */
	o = run(0, &in);
	expect_frame(&o, &want, "SNAT session reused");

	frame(&reply, 0, "203.0.113.9", "203.0.113.1", IPPROTO_UDP, 53, port, 0);
	frame(&want_reply, 0, "203.0.113.9", "198.51.100.2", IPPROTO_UDP, 53, 5000, 0);
	o = run(1, &reply);
	expect_frame(&o, &want_reply, "un-SNAT of the reply");
	cr_expect_eq(metric(ES_NAT_M_SNAT_APPLIED), 3);
}

Test(nat, snat_without_range_keeps_the_port_and_zero_udp_checksum_stays_zero)
{
	struct es_nat_rule r = {
	    .nat_type = ES_NAT_T_SNAT, .nat_addr = v4("203.0.113.1"), .rule_id = 6};
	struct pb in, want;
	struct out o;

	rules4(L_SNAT4, &r, 1);
	frame(&in, 0, "198.51.100.2", "203.0.113.9", IPPROTO_UDP, 5000, 53, 1);
	frame(&want, 0, "203.0.113.1", "203.0.113.9", IPPROTO_UDP, 5000, 53, 1);
	o = run(0, &in);
	expect_frame(&o, &want, "zero UDP checksum, port kept");
	cr_expect_eq(o.r.out[in.l4 + 6] | o.r.out[in.l4 + 7], 0, "checksum still zero");
}

Test(nat, udp_checksum_that_becomes_zero_is_sent_as_ffff)
{
	struct es_nat_rule r = {
	    .nat_type = ES_NAT_T_SNAT, .nat_addr = v4("203.0.113.1"), .rule_id = 7};
	struct pb in, want;
	struct out o;
	int found = 0;

	rules4(L_SNAT4, &r, 1);
	/* Find a payload whose translated datagram sums to 0xffff (checksum 0). */
	for (__u32 w = 0; w < 65536 && !found; w++) {
		frame(&want, 0, "203.0.113.1", "203.0.113.9", IPPROTO_UDP, 5001, 53, 1);
		want.buf[want.l4 + 8] = (uint8_t)(w >> 8);
		want.buf[want.l4 + 9] = (uint8_t)w;
		pb_fill_l4_csum(&want);
		if (want.buf[want.l4 + 6] == 0xff && want.buf[want.l4 + 7] == 0xff) {
			frame(&in, 0, "198.51.100.2", "203.0.113.9", IPPROTO_UDP, 5001, 53, 1);
			in.buf[in.l4 + 8] = (uint8_t)(w >> 8);
			in.buf[in.l4 + 9] = (uint8_t)w;
			pb_fill_l4_csum(&in);
			found = 1;
		}
	}
	cr_assert(found);
	cr_assert(in.buf[in.l4 + 6] | in.buf[in.l4 + 7], "the input has a real checksum");
	o = run(0, &in);
	expect_frame(&o, &want, "a zero result goes out as 0xffff (BPF_F_MARK_MANGLED_0)");
}

Test(nat, masquerade_icmp_echo_follows_the_interface_address)
{
	struct es_nat_rule r = {.match_src_ip = v4("198.51.100.0"),
				.match_src_mask = 0xffffff00,
				.match_flags = ES_NAT_M_SRC,
				.nat_type = ES_NAT_T_MASQUERADE,
				.nat_interface = 1,
				.rule_id = 8};
	struct pb in, want, reply, want_reply;
	struct out o;

	rules4(L_SNAT4, &r, 1);
	ifaddr(1, "203.0.113.77", NULL);
	frame(&in, 0, "198.51.100.2", "203.0.113.9", IPPROTO_ICMP, 0x1234, 0, 0);
	frame(&want, 0, "203.0.113.77", "203.0.113.9", IPPROTO_ICMP, 0x1234, 0, 0);
	o = run(0, &in);
	expect_frame(&o, &want, "masquerade of an echo request");
	cr_expect_eq(metric(ES_NAT_M_MASQ_APPLIED), 1);
	frame(&reply, 0, "203.0.113.9", "203.0.113.77", IPPROTO_ICMP, 0x1234, 0, 0);
	reply.buf[reply.l4] = 0; /* echo reply */
	pb_fill_l4_csum(&reply);
	frame(&want_reply, 0, "203.0.113.9", "198.51.100.2", IPPROTO_ICMP, 0x1234, 0, 0);
	want_reply.buf[want_reply.l4] = 0;
	pb_fill_l4_csum(&want_reply);
	o = run(1, &reply);
	expect_frame(&o, &want_reply, "echo reply translated back");

	/* The interface's address changed: new flows follow it. */
	ifaddr(1, "203.0.113.78", NULL);
	frame(&in, 0, "198.51.100.3", "203.0.113.9", IPPROTO_ICMP, 0x1234, 0, 0);
	frame(&want, 0, "203.0.113.78", "203.0.113.9", IPPROTO_ICMP, 0x1234, 0, 0);
	o = run(0, &in);
	expect_frame(&o, &want, "masquerade after an address change");
}

Test(nat, snat_icmp_identifier_from_a_pool)
{
	struct es_nat_rule r = {.nat_type = ES_NAT_T_SNAT,
				.nat_addr = v4("203.0.113.1"),
				.nat_port_start = 30000,
				.nat_port_end = 30000,
				.rule_id = 9};
	struct pb in, want;
	struct out o;

	rules4(L_SNAT4, &r, 1);
	frame(&in, 0, "198.51.100.2", "203.0.113.9", IPPROTO_ICMP, 0x0777, 0, 0);
	frame(&want, 0, "203.0.113.1", "203.0.113.9", IPPROTO_ICMP, 30000, 0, 0);
	o = run(0, &in);
	expect_frame(&o, &want, "echo identifier rewritten, ICMP checksum kept valid");
}

Test(nat, one_to_one_both_ways)
{
	struct es_nat_rule in_r = {.match_dst_ip = v4("203.0.113.50"),
				   .match_dst_mask = ~0u,
				   .match_flags = ES_NAT_M_DST,
				   .nat_type = ES_NAT_T_ONE_TO_ONE,
				   .nat_addr = v4("198.51.100.50"),
				   .rule_id = 10};
	struct es_nat_rule out_r = {.match_src_ip = v4("198.51.100.50"),
				    .match_src_mask = ~0u,
				    .match_flags = ES_NAT_M_SRC,
				    .nat_type = ES_NAT_T_ONE_TO_ONE,
				    .nat_addr = v4("203.0.113.50"),
				    .rule_id = 10};
	struct pb a, wa, b, wb, br, wbr;
	struct out o;

	rules4(L_DNAT4, &in_r, 1);
	rules4(L_SNAT4, &out_r, 1);
	/* Inbound connection to the external address. */
	frame(&a, 0, "192.0.2.9", "203.0.113.50", IPPROTO_TCP, 1111, 22, 0);
	frame(&wa, 0, "192.0.2.9", "198.51.100.50", IPPROTO_TCP, 1111, 22, 0);
	o = run(1, &a);
	expect_frame(&o, &wa, "1:1 inbound");
	/* Outbound connection from the internal host. */
	frame(&b, 0, "198.51.100.50", "192.0.2.9", IPPROTO_UDP, 4444, 123, 0);
	frame(&wb, 0, "203.0.113.50", "192.0.2.9", IPPROTO_UDP, 4444, 123, 0);
	o = run(0, &b);
	expect_frame(&o, &wb, "1:1 outbound");
	frame(&br, 0, "192.0.2.9", "203.0.113.50", IPPROTO_UDP, 123, 4444, 0);
	frame(&wbr, 0, "192.0.2.9", "198.51.100.50", IPPROTO_UDP, 123, 4444, 0);
	o = run(1, &br);
	expect_frame(&o, &wbr, "1:1 outbound flow's reply");
}

Test(nat, port_exhaustion_drops_and_counts)
{
	struct es_nat_rule r = {.nat_type = ES_NAT_T_SNAT,
				.nat_addr = v4("203.0.113.1"),
				.nat_port_start = 20000,
				.nat_port_end = 20000,
				.rule_id = 11};
	struct pb a, b;
	struct out o;

	rules4(L_SNAT4, &r, 1);
	frame(&a, 0, "198.51.100.2", "203.0.113.9", IPPROTO_TCP, 5000, 443, 0);
	frame(&b, 0, "198.51.100.3", "203.0.113.9", IPPROTO_TCP, 5000, 443, 0);
	o = run(0, &a);
	cr_expect_eq(o.verdict, -1);
	cr_expect_eq(out_port(&o, &a, 0), 20000);
	o = run(0, &b);
	cr_expect_eq(o.verdict, 2, "second flow to the same peer:port: TC_ACT_SHOT");
	cr_expect_eq(metric(ES_NAT_M_PORT_ALLOC_FAIL), 1);
	/* Another peer port frees the tuple: allowed. */
	frame(&b, 0, "198.51.100.3", "203.0.113.9", IPPROTO_TCP, 5000, 444, 0);
	o = run(0, &b);
	cr_expect_eq(o.verdict, -1);
}

/* ---- switches and annotations ------------------------------------------------------------ */

Test(nat, first_rule_wins_and_the_feature_flag_gates)
{
	struct es_nat_rule r[2] = {
	    {.match_flags = ES_NAT_M_DPORT,
	     .match_dst_port_start = 80,
	     .match_dst_port_end = 80,
	     .nat_type = ES_NAT_T_DNAT,
	     .nat_addr = v4("198.51.100.31"),
	     .rule_id = 12},
	    {.match_flags = ES_NAT_M_DPORT,
	     .match_dst_port_start = 1,
	     .match_dst_port_end = 1000,
	     .nat_type = ES_NAT_T_DNAT,
	     .nat_addr = v4("198.51.100.32"),
	     .rule_id = 13},
	};
	struct pb in, want;
	struct out o;

	rules4(L_DNAT4, r, 2);
	frame(&in, 0, "198.51.100.2", "203.0.113.1", IPPROTO_TCP, 40001, 80, 0);
	frame(&want, 0, "198.51.100.2", "198.51.100.31", IPPROTO_TCP, 40001, 80, 0);
	o = run(1, &in);
	expect_frame(&o, &want, "the first (lowest priority number) rule");
	cr_assert_eq(es_kernel_set_feature(ES_FEAT_NAT, false), 0);
	frame(&in, 0, "198.51.100.2", "203.0.113.1", IPPROTO_TCP, 40002, 80, 0);
	o = run(1, &in);
	expect_frame(&o, &in, "NAT off: untouched");
}

Test(nat, conntrack_entry_is_annotated)
{
	struct es_nat_rule r = {.match_flags = ES_NAT_M_DPORT,
				.match_dst_port_start = 8080,
				.match_dst_port_end = 8080,
				.nat_type = ES_NAT_T_DNAT,
				.nat_addr = v4("198.51.100.10"),
				.nat_port_start = 80,
				.nat_port_end = 80,
				.rule_id = 14};
	struct es_ct_key_v4 k = {.src_ip = v4("198.51.100.2"),
				 .dst_ip = v4("203.0.113.1"),
				 .src_port = 40000,
				 .dst_port = 8080,
				 .protocol = IPPROTO_TCP};
	struct es_ct_entry_v4 e = {.state = ES_CT_SYN_SENT,
				   .flags = ES_CT_F_ORIG_IS_SRC,
				   .last_seen_ns = kt_boot_ns(),
				   .rule_slot = ES_CT_RULE_SLOT_NONE};
	int fd = bpf_map__fd(sk->maps.ct_table_v4);
	struct pb in;

	rules4(L_DNAT4, &r, 1);
	cr_assert_eq(bpf_map_update_elem(fd, &k, &e, BPF_ANY), 0);
	frame(&in, 0, "198.51.100.2", "203.0.113.1", IPPROTO_TCP, 40000, 8080, 0);
	run(1, &in);
	cr_assert_eq(bpf_map_lookup_elem(fd, &k, &e), 0);
	cr_expect(e.flags & ES_CT_F_NAT_DST);
	cr_expect_eq(e.nat_type, ES_CT_NAT_DNAT);
	cr_expect_eq(e.nat_addr, v4("198.51.100.10"));
	cr_expect_eq(e.nat_port, 80);
}
