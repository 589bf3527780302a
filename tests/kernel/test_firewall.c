// SPDX-License-Identifier: AGPL-3.0-only
/*
 * xdp_firewall with compiled rule sets, through BPF_PROG_TEST_RUN: one
 * fixture per match field for IPv4 and IPv6 (match and near miss), priority
 * conflicts, default policy, VLAN-tagged frames, DSCP marking (bytes and
 * checksum), system rules, LPM block lists, events, the bank switch, and the
 * real program against the rules' definition on random rule sets.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "kt.h"
#include "abi/firewall.h"
#include "abi/xdp_meta.h"
#include "domains/firewall/firewall.h"
#include "domains/firewall/fw.h"
#include "skel/firewall.skel.h"
#include "fw_test.h"

static struct es_firewall *fw;
static struct fw_kern *kern;
static int prog;

static void setup(void)
{
	KT_OPEN_OPTS(oo);
	int lo = 1;

	kt_setup();
	fw = es_firewall__open_opts(&oo);
	cr_assert_not_null(fw);
	cr_assert_eq(es_kernel_prepare_obj(fw->obj), 0);
	cr_assert_eq(es_firewall__load(fw), 0, "xdp_firewall does not load on this kernel");
	cr_assert_eq(fw_kern_open(fw->obj, &kern), 0);
	cr_assert_eq(fw_kern_set_ifaces(kern, &lo, 1), 0);
	cr_assert_eq(es_kernel_set_feature(ES_FEAT_FIREWALL, true), 0);
	prog = bpf_program__fd(fw->progs.xdp_firewall);
}

static void teardown(void)
{
	fw_kern_close(kern);
	es_firewall__destroy(fw);
	kt_teardown();
}

TestSuite(firewall, .init = setup, .fini = teardown);

/* ---- helpers -------------------------------------------------------------------------- */

static uint32_t num_by_suffix(const char *id, void *arg)
{
	/* Rule "<anything>-N" or "rN" gets number N + 1000 (the tests pick ids). */
	const char *d = id + strlen(id);

	while (d > id && d[-1] >= '0' && d[-1] <= '9')
		d--;
	return 1000 + (uint32_t)atoi(d);
}

struct set {
	struct fw_rule r[8];
	size_t n;
	struct fw_rule sys[2];
	size_t n_sys;
};

static void add(struct set *s, const char *json)
{
	fw_test_rule(&s->r[s->n], json);
	s->r[s->n].order = s->n;
	s->n++;
}

static void install_in(const struct fw_compile_in *in)
{
	struct fw_image img;
	char why[256];

	cr_assert_eq(fw_compile(in, &img, why, sizeof(why)), 0, "compile: %s", why);
	cr_assert_eq(fw_kern_install(kern, &img), 0);
	fw_image_free(&img);
}

static void install(struct set *s, uint8_t policy, bool alert)
{
	static char *ifs[] = {"lo", NULL};
	struct fw_compile_in in = {
	    .rules = s->r,
	    .n_rules = s->n,
	    .sys = s->sys,
	    .n_sys = s->n_sys,
	    .default_policy = policy,
	    .alert_mode = alert,
	    .ifnames = ifs,
	    .n_ifnames = 1,
	    .rule_num = num_by_suffix,
	};

	install_in(&in);
}

static void set_free(struct set *s)
{
	for (size_t i = 0; i < s->n; i++)
		fw_rule_free(&s->r[i]);
	for (size_t i = 0; i < s->n_sys; i++)
		fw_rule_free(&s->sys[i]);
	memset(s, 0, sizeof(*s));
}

struct out {
	__u32 verdict;
	bool meta;
	__u32 meta_rule;
	__u8 meta_action;
	struct kt_run run;
};

/* Run with the test's ingress interface (lo, agent position 0, when ifindex 1). */
static void run(const struct pb *p, __u32 ifindex, struct out *o)
{
	struct xdp_md ctx = {.data_end = (__u32)p->len, .ingress_ifindex = ifindex};
	LIBBPF_OPTS(bpf_test_run_opts, t, .data_in = p->buf, .data_size_in = (__u32)p->len,
		    .data_out = o->run.out, .data_size_out = sizeof(o->run.out), .repeat = 1,
		    .ctx_in = &ctx, .ctx_size_in = sizeof(ctx));

	memset(o, 0, sizeof(*o));
	cr_assert_eq(bpf_prog_test_run_opts(prog, &t), 0, "test run: %s", strerror(errno));
	o->verdict = t.retval;
	o->run.out_len = t.data_size_out;
	/* data_out starts at data_meta: 8 more bytes when metadata was prepended. */
	if (t.data_size_out == p->len + sizeof(struct es_xdp_meta)) {
		struct es_xdp_meta m;

		memcpy(&m, o->run.out, sizeof(m));
		o->meta = m.meta_flags & ES_META_F_PRESENT;
		o->meta_rule = m.rule_id;
		o->meta_action = m.action;
	}
}

static uint64_t fwm(int idx)
{
	return kt_percpu(bpf_map__fd(fw->maps.fw_metrics), (__u32)idx);
}

static void v4(struct pb *p, const char *src, const char *dst, uint8_t proto, uint16_t sport,
	       uint16_t dport, uint8_t flags)
{
	pb_init(p);
	pb_eth(p, PB_ETH_IP);
	pb_ipv4(p, src, dst, proto, 0, 0);
	if (proto == IPPROTO_TCP)
		pb_tcp(p, sport, dport, flags);
	else if (proto == IPPROTO_UDP)
		pb_udp(p, sport, dport);
	else if (proto == IPPROTO_ICMP)
		pb_icmp(p, (uint8_t)sport, (uint8_t)dport);
	pb_finish(p);
}

static void v6(struct pb *p, const char *src, const char *dst, uint8_t proto, uint16_t sport,
	       uint16_t dport, uint8_t flags)
{
	pb_init(p);
	pb_eth(p, PB_ETH_IPV6);
	pb_ipv6(p, src, dst, proto);
	if (proto == IPPROTO_TCP)
		pb_tcp(p, sport, dport, flags);
	else if (proto == IPPROTO_UDP)
		pb_udp(p, sport, dport);
	else if (proto == 58)
		pb_icmp(p, (uint8_t)sport, (uint8_t)dport);
	pb_finish(p);
}

/* ---- one fixture per match field ------------------------------------------------------------ */

enum pktkind { P4, P6 };

struct fixture {
	const char *desc;
	const char *rule; /* extra keys of a deny rule */
	enum pktkind fam;
	const char *src, *dst;
	uint8_t proto;
	uint16_t sport, dport; /* ICMP: type, code */
	uint8_t tcp_flags;
	uint16_t vlan; /* 0 = untagged */
	uint8_t dscp;
	bool match;
};

static const struct fixture fixtures[] = {
    {"v4 src CIDR", "\"src_ip\":\"198.51.100.0/24\"", P4, "198.51.100.7", "203.0.113.1", 6, 1, 80,
     2, 0, 0, true},
    {"v4 src CIDR near miss", "\"src_ip\":\"198.51.100.0/24\"", P4, "198.51.101.7", "203.0.113.1",
     6, 1, 80, 2, 0, 0, false},
    {"v6 src CIDR", "\"src_ip\":\"2001:db8:1::/48\"", P6, "2001:db8:1::7", "2001:db8:2::1", 6, 1,
     80, 2, 0, 0, true},
    {"v6 src CIDR near miss", "\"src_ip\":\"2001:db8:1::/48\"", P6, "2001:db8:2::7",
     "2001:db8:2::1", 6, 1, 80, 2, 0, 0, false},
    {"v4 dst host", "\"dst_ip\":\"203.0.113.9\"", P4, "198.51.100.7", "203.0.113.9", 17, 1, 53, 0,
     0, 0, true},
    {"v4 dst host near miss", "\"dst_ip\":\"203.0.113.9\"", P4, "198.51.100.7", "203.0.113.8", 17,
     1, 53, 0, 0, 0, false},
    {"v6 dst host", "\"dst_ip\":\"2001:db8::9\"", P6, "2001:db8::7", "2001:db8::9", 17, 1, 53, 0, 0,
     0, true},
    {"v6 dst host near miss", "\"dst_ip\":\"2001:db8::9\"", P6, "2001:db8::7", "2001:db8::8", 17, 1,
     53, 0, 0, 0, false},
    {"v4 negated src", "\"src_ip\":\"198.51.100.0/24\",\"negate_source\":true", P4, "198.51.101.7",
     "203.0.113.1", 6, 1, 80, 2, 0, 0, true},
    {"v4 negated src near miss", "\"src_ip\":\"198.51.100.0/24\",\"negate_source\":true", P4,
     "198.51.100.7", "203.0.113.1", 6, 1, 80, 2, 0, 0, false},
    {"v6 negated dst", "\"dst_ip\":\"2001:db8::/64\",\"negate_destination\":true", P6,
     "2001:db8::7", "2001:db8:1::1", 6, 1, 80, 2, 0, 0, true},
    {"v6 negated dst near miss", "\"dst_ip\":\"2001:db8::/64\",\"negate_destination\":true", P6,
     "2001:db8::7", "2001:db8::1", 6, 1, 80, 2, 0, 0, false},
    {"v4 dport range", "\"protocol\":\"tcp\",\"dst_port\":\"9990-9999\"", P4, "198.51.100.7",
     "203.0.113.1", 6, 1, 9995, 2, 0, 0, true},
    {"v4 dport range near miss", "\"protocol\":\"tcp\",\"dst_port\":\"9990-9999\"", P4,
     "198.51.100.7", "203.0.113.1", 6, 1, 9989, 2, 0, 0, false},
    {"v6 dport range", "\"protocol\":\"tcp\",\"dst_port\":\"9990-9999\"", P6, "2001:db8::7",
     "2001:db8::1", 6, 1, 9999, 2, 0, 0, true},
    {"v6 dport range near miss", "\"protocol\":\"tcp\",\"dst_port\":\"9990-9999\"", P6,
     "2001:db8::7", "2001:db8::1", 6, 1, 10000, 2, 0, 0, false},
    {"v4 sport", "\"src_port\":{\"start\":1000,\"end\":1000}", P4, "198.51.100.7", "203.0.113.1",
     17, 1000, 9, 0, 0, 0, true},
    {"v4 sport near miss", "\"src_port\":1000", P4, "198.51.100.7", "203.0.113.1", 17, 1001, 9, 0,
     0, 0, false},
    {"v6 sport", "\"src_port\":\"1000\"", P6, "2001:db8::7", "2001:db8::1", 17, 1000, 9, 0, 0, 0,
     true},
    {"v6 sport near miss", "\"src_port\":\"1000\"", P6, "2001:db8::7", "2001:db8::1", 17, 999, 9, 0,
     0, 0, false},
    {"v4 protocol udp", "\"protocol\":\"udp\"", P4, "198.51.100.7", "203.0.113.1", 17, 1, 9, 0, 0,
     0, true},
    {"v4 protocol udp near miss", "\"protocol\":\"udp\"", P4, "198.51.100.7", "203.0.113.1", 6, 1,
     9, 2, 0, 0, false},
    {"v6 protocol udp", "\"protocol\":\"udp\"", P6, "2001:db8::7", "2001:db8::1", 17, 1, 9, 0, 0, 0,
     true},
    {"v6 protocol udp near miss", "\"protocol\":\"udp\"", P6, "2001:db8::7", "2001:db8::1", 6, 1, 9,
     2, 0, 0, false},
    {"v4 icmp type", "\"protocol\":\"icmp\",\"icmp_type\":8", P4, "198.51.100.7", "203.0.113.1", 1,
     8, 0, 0, 0, 0, true},
    {"v4 icmp type near miss", "\"protocol\":\"icmp\",\"icmp_type\":8", P4, "198.51.100.7",
     "203.0.113.1", 1, 0, 0, 0, 0, 0, false},
    {"v6 icmp type (ICMPv6)", "\"protocol\":\"icmp\",\"icmp_type\":128", P6, "2001:db8::7",
     "2001:db8::1", 58, 128, 0, 0, 0, 0, true},
    {"v6 icmp type near miss", "\"protocol\":\"icmp\",\"icmp_type\":128", P6, "2001:db8::7",
     "2001:db8::1", 58, 129, 0, 0, 0, 0, false},
    {"v4 icmp code", "\"protocol\":\"icmp\",\"icmp_type\":3,\"icmp_code\":4", P4, "198.51.100.7",
     "203.0.113.1", 1, 3, 4, 0, 0, 0, true},
    {"v4 icmp code near miss", "\"protocol\":\"icmp\",\"icmp_type\":3,\"icmp_code\":4", P4,
     "198.51.100.7", "203.0.113.1", 1, 3, 3, 0, 0, 0, false},
    {"v6 icmp code", "\"protocol\":\"icmp\",\"icmp_type\":1,\"icmp_code\":4", P6, "2001:db8::7",
     "2001:db8::1", 58, 1, 4, 0, 0, 0, true},
    {"v6 icmp code near miss", "\"protocol\":\"icmp\",\"icmp_type\":1,\"icmp_code\":4", P6,
     "2001:db8::7", "2001:db8::1", 58, 1, 3, 0, 0, 0, false},
    {"v4 tcp flags S/SA", "\"protocol\":\"tcp\",\"flags\":\"S/SA\"", P4, "198.51.100.7",
     "203.0.113.1", 6, 1, 80, 0x02, 0, 0, true},
    {"v4 tcp flags near miss", "\"protocol\":\"tcp\",\"flags\":\"S/SA\"", P4, "198.51.100.7",
     "203.0.113.1", 6, 1, 80, 0x12, 0, 0, false},
    {"v6 tcp flags S/SA", "\"protocol\":\"tcp\",\"flags\":\"S/SA\"", P6, "2001:db8::7",
     "2001:db8::1", 6, 1, 80, 0x02, 0, 0, true},
    {"v6 tcp flags near miss", "\"protocol\":\"tcp\",\"flags\":\"S/SA\"", P6, "2001:db8::7",
     "2001:db8::1", 6, 1, 80, 0x10, 0, 0, false},
    {"v4 vlan", "\"vlan_id\":200", P4, "198.51.100.7", "203.0.113.1", 6, 1, 80, 2, 200, 0, true},
    {"v4 vlan near miss", "\"vlan_id\":200", P4, "198.51.100.7", "203.0.113.1", 6, 1, 80, 2, 100, 0,
     false},
    {"v4 vlan untagged near miss", "\"vlan_id\":200", P4, "198.51.100.7", "203.0.113.1", 6, 1, 80,
     2, 0, 0, false},
    {"v6 vlan", "\"vlan_id\":200", P6, "2001:db8::7", "2001:db8::1", 6, 1, 80, 2, 200, 0, true},
    {"v6 vlan near miss", "\"vlan_id\":200", P6, "2001:db8::7", "2001:db8::1", 6, 1, 80, 2, 100, 0,
     false},
    {"v4 dscp", "\"dscp_match\":46", P4, "198.51.100.7", "203.0.113.1", 17, 1, 9, 0, 0, 46, true},
    {"v4 dscp near miss", "\"dscp_match\":46", P4, "198.51.100.7", "203.0.113.1", 17, 1, 9, 0, 0,
     45, false},
    {"v6 dscp", "\"dscp_match\":46", P6, "2001:db8::7", "2001:db8::1", 17, 1, 9, 0, 0, 46, true},
    {"v6 dscp near miss", "\"dscp_match\":46", P6, "2001:db8::7", "2001:db8::1", 17, 1, 9, 0, 0, 0,
     false},
    {"v4 src mac", "\"src_mac\":\"02:00:00:00:00:01\"", P4, "198.51.100.7", "203.0.113.1", 17, 1, 9,
     0, 0, 0, true},
    {"v4 src mac near miss", "\"src_mac\":\"02:00:00:00:00:09\"", P4, "198.51.100.7", "203.0.113.1",
     17, 1, 9, 0, 0, 0, false},
    {"v6 dst mac", "\"dst_mac\":\"02:00:00:00:00:02\"", P6, "2001:db8::7", "2001:db8::1", 17, 1, 9,
     0, 0, 0, true},
    {"v6 dst mac near miss", "\"dst_mac\":\"02:00:00:00:00:01\"", P6, "2001:db8::7", "2001:db8::1",
     17, 1, 9, 0, 0, 0, false},
    {"v4 scope interface", "\"scope\":\"interface:lo\"", P4, "198.51.100.7", "203.0.113.1", 17, 1,
     9, 0, 0, 0, true},
    {"v6 scope namespace", "\"scope\":\"namespace:l\"", P6, "2001:db8::7", "2001:db8::1", 17, 1, 9,
     0, 0, 0, true},
    {"v4 state never matches without conntrack", "\"state\":[\"new\"]", P4, "198.51.100.7",
     "203.0.113.1", 6, 1, 80, 2, 0, 0, false},
    {"v4 rule does not match IPv6", "\"src_ip\":\"198.51.100.0/24\"", P6, "2001:db8::7",
     "2001:db8::1", 6, 1, 80, 2, 0, 0, false},
    {"v6 rule does not match IPv4", "\"dst_ip\":\"2001:db8::/32\"", P4, "198.51.100.7",
     "203.0.113.1", 6, 1, 80, 2, 0, 0, false},
};

static void build(struct pb *p, const struct fixture *f)
{
	pb_init(p);
	if (f->vlan) {
		pb_eth(p, PB_ETH_8021Q);
		pb_tag(p, f->vlan, f->fam == P4 ? PB_ETH_IP : PB_ETH_IPV6);
	} else {
		pb_eth(p, f->fam == P4 ? PB_ETH_IP : PB_ETH_IPV6);
	}
	if (f->fam == P4)
		pb_ipv4(p, f->src, f->dst, f->proto, 0, 0);
	else
		pb_ipv6(p, f->src, f->dst, f->proto);
	if (f->fam == P4)
		p->buf[p->l3 + 1] = (uint8_t)(f->dscp << 2);
	else {
		p->buf[p->l3] = (uint8_t)(0x60 | f->dscp >> 2);
		p->buf[p->l3 + 1] = (uint8_t)((f->dscp & 3) << 6);
	}
	if (f->proto == IPPROTO_TCP)
		pb_tcp(p, f->sport, f->dport, f->tcp_flags);
	else if (f->proto == IPPROTO_UDP)
		pb_udp(p, f->sport, f->dport);
	else
		pb_icmp(p, (uint8_t)f->sport, (uint8_t)f->dport);
	pb_finish(p);
}

Test(firewall, one_fixture_per_match_field)
{
	for (size_t i = 0; i < sizeof(fixtures) / sizeof(fixtures[0]); i++) {
		const struct fixture *f = &fixtures[i];
		struct set s = {0};
		char json[512];
		struct out o;
		struct pb p;

		snprintf(json, sizeof(json),
			 "{\"id\":\"fx-%zu\",\"priority\":1,\"action\":\"deny\",%s}", i, f->rule);
		add(&s, json);
		install(&s, ES_FW_POLICY_PASS, false);
		build(&p, f);
		run(&p, 1, &o);
		cr_expect_eq(o.verdict, f->match ? XDP_DROP : XDP_PASS, "%s: verdict %u", f->desc,
			     o.verdict);
		if (!f->match)
			cr_expect(o.meta && o.meta_rule == ES_FW_RULE_DEFAULT,
				  "%s: default-policy metadata expected", f->desc);
		set_free(&s);
	}
}

Test(firewall, priority_conflicts_lower_first_ties_in_order)
{
	struct set s = {0};
	struct out o;
	struct pb p;

	/* §2.8 #2: allow at 5 beats deny at 10; moved to 15 it loses. */
	add(&s, "{\"id\":\"allow-5\",\"priority\":5,\"action\":\"allow\",\"protocol\":\"icmp\","
		"\"src_ip\":\"10.200.0.0/24\",\"dst_ip\":\"10.200.0.1\"}");
	add(&s, "{\"id\":\"deny-10\",\"priority\":10,\"action\":\"deny\",\"protocol\":\"icmp\"}");
	install(&s, ES_FW_POLICY_PASS, false);
	v4(&p, "10.200.0.2", "10.200.0.1", IPPROTO_ICMP, 8, 0, 0);
	run(&p, 1, &o);
	cr_expect_eq(o.verdict, XDP_PASS);
	cr_expect(o.meta && o.meta_rule == 1005, "allow-5 decided (got %u)", o.meta_rule);
	s.r[0].priority = 15;
	install(&s, ES_FW_POLICY_PASS, false);
	run(&p, 1, &o);
	cr_expect_eq(o.verdict, XDP_DROP);
	set_free(&s);

	add(&s, "{\"id\":\"tie-1\",\"priority\":7,\"action\":\"log\",\"protocol\":\"udp\"}");
	add(&s, "{\"id\":\"tie-2\",\"priority\":7,\"action\":\"deny\",\"protocol\":\"udp\"}");
	install(&s, ES_FW_POLICY_PASS, false);
	v6(&p, "2001:db8::7", "2001:db8::1", IPPROTO_UDP, 5, 5353, 0);
	run(&p, 1, &o);
	cr_expect_eq(o.verdict, XDP_PASS);
	cr_expect_eq(o.meta_rule, 1001, "first in config order wins a tie");
	cr_expect_eq(o.meta_action, ES_FW_ACT_LOG);
	set_free(&s);
}

Test(firewall, default_policy_and_counters)
{
	struct set s = {0};
	struct out o;
	struct pb p;

	add(&s, "{\"id\":\"ssh-1\",\"priority\":1,\"action\":\"allow\",\"protocol\":\"tcp\","
		"\"dst_port\":22}");
	install(&s, ES_FW_POLICY_DROP, false);
	v4(&p, "198.51.100.7", "198.51.100.1", IPPROTO_TCP, 40000, 22, TH_SYN);
	run(&p, 1, &o);
	cr_expect_eq(o.verdict, XDP_PASS);
	v4(&p, "198.51.100.7", "198.51.100.1", IPPROTO_TCP, 40000, 23, TH_SYN);
	run(&p, 1, &o);
	cr_expect_eq(o.verdict, XDP_DROP, "default drop");
	v6(&p, "2001:db8::7", "2001:db8::1", IPPROTO_UDP, 1, 2, 0);
	run(&p, 1, &o);
	cr_expect_eq(o.verdict, XDP_DROP, "default drop, IPv6");
	pb_init(&p); /* ARP passes under default drop */
	pb_eth(&p, PB_ETH_ARP);
	pb_payload(&p, 28, 0);
	run(&p, 1, &o);
	cr_expect_eq(o.verdict, XDP_PASS, "ARP passes");
	cr_expect_eq(fwm(ES_FW_M_DROPPED), 2);
	cr_expect_eq(fwm(ES_FW_M_PASSED), 2);
	cr_expect_eq(fwm(ES_FW_M_PASSED) + fwm(ES_FW_M_DROPPED) + fwm(ES_FW_M_ERRORS),
		     fwm(ES_FW_M_TOTAL_SEEN));
	cr_expect_eq(fw_kern_hits(kern, "ssh-1"), 1);
	set_free(&s);
}

Test(firewall, alert_mode_logs_instead_of_dropping)
{
	struct set s = {0};
	struct out o;
	struct pb p;

	add(&s, "{\"id\":\"scan-5\",\"priority\":5,\"action\":\"deny\",\"protocol\":\"tcp\","
		"\"src_ip\":\"198.51.100.0/24\",\"dst_port\":22}");
	install(&s, ES_FW_POLICY_PASS, true);
	v4(&p, "198.51.100.7", "203.0.113.1", IPPROTO_TCP, 4000, 22, TH_SYN);
	run(&p, 1, &o);
	cr_expect_eq(o.verdict, XDP_PASS);
	cr_expect_eq(o.meta_action, ES_FW_ACT_LOG);
	cr_expect_eq(o.meta_rule, 1005);
	set_free(&s);
}

Test(firewall, vlan_tagged_and_qinq_frames)
{
	struct set s = {0};
	struct out o;
	struct pb p;

	add(&s, "{\"id\":\"vid-1\",\"priority\":1,\"action\":\"deny\",\"vlan_id\":200}");
	install(&s, ES_FW_POLICY_PASS, false);
	/* QinQ: the rule's vlan_id is the outer tag. */
	pb_init(&p);
	pb_eth(&p, PB_ETH_8021AD);
	pb_tag(&p, 200, PB_ETH_8021Q);
	pb_tag(&p, 100, PB_ETH_IP);
	pb_ipv4(&p, "198.51.100.7", "203.0.113.1", IPPROTO_UDP, 0, 0);
	pb_udp(&p, 1, 2);
	pb_finish(&p);
	run(&p, 1, &o);
	cr_expect_eq(o.verdict, XDP_DROP, "outer tag 200 matches");
	pb_init(&p);
	pb_eth(&p, PB_ETH_8021AD);
	pb_tag(&p, 100, PB_ETH_8021Q);
	pb_tag(&p, 200, PB_ETH_IP);
	pb_ipv4(&p, "198.51.100.7", "203.0.113.1", IPPROTO_UDP, 0, 0);
	pb_udp(&p, 1, 2);
	pb_finish(&p);
	run(&p, 1, &o);
	cr_expect_eq(o.verdict, XDP_PASS, "inner tag 200 does not");
	set_free(&s);
}

static uint16_t ip_csum_ok(const uint8_t *ip)
{
	return pb_csum(ip, (size_t)(ip[0] & 0x0f) * 4) == 0;
}

Test(firewall, dscp_mark_rewrites_bytes_with_valid_checksum)
{
	struct set s = {0};
	struct out o;
	struct pb p;
	const uint8_t *ip;

	add(&s, "{\"id\":\"ef-1\",\"priority\":1,\"action\":\"allow\",\"protocol\":\"udp\","
		"\"dscp_mark\":46}");
	install(&s, ES_FW_POLICY_PASS, false);
	v4(&p, "198.51.100.7", "203.0.113.1", IPPROTO_UDP, 1, 5004, 0);
	p.buf[p.l3 + 1] = 0x01; /* ECN bits set: kept */
	pb_finish(&p);
	run(&p, 1, &o);
	cr_assert_eq(o.verdict, XDP_PASS);
	cr_assert(o.meta, "metadata expected");
	ip = o.run.out + sizeof(struct es_xdp_meta) + 14;
	cr_expect_eq(ip[1], 0xB9, "TOS 0xB8 | ECN 1 (got %#x)", ip[1]);
	cr_expect(
	    ip_csum_ok(ip),
	    "IPv4 header checksum invalid after marking: %02x%02x %02x%02x -> %02x%02x %02x%02x",
	    p.buf[p.l3], p.buf[p.l3 + 1], p.buf[p.l3 + 10], p.buf[p.l3 + 11], ip[0], ip[1], ip[10],
	    ip[11]);
	cr_expect_arr_eq(ip + 12, p.buf + p.l3 + 12, 8, "addresses untouched");

	v6(&p, "2001:db8::7", "2001:db8::1", IPPROTO_UDP, 1, 5004, 0);
	p.buf[p.l3 + 1] |= 0x10; /* ECN 01 in the traffic class low bits */
	run(&p, 1, &o);
	ip = o.run.out + sizeof(struct es_xdp_meta) + 14;
	cr_expect_eq(ip[0], 0x6B, "version 6, TC high nibble 0xB (got %#x)", ip[0]);
	cr_expect_eq(ip[1] & 0xf0, 0x90, "TC low nibble: DSCP bits 10 + ECN 01 (got %#x)", ip[1]);
	cr_expect_eq(ip[1] & 0x0f, p.buf[p.l3 + 1] & 0x0f, "flow label untouched");
	set_free(&s);
}

Test(firewall, anti_lockout_rules_come_first)
{
	struct set s = {0};
	struct out o;
	struct pb p;

	fw_test_rule(&s.sys[0], "{\"id\":\"anti-lockout-22\",\"priority\":1,\"action\":\"allow\","
				"\"protocol\":\"tcp\",\"dst_port\":22}");
	s.sys[0].system = true;
	s.n_sys = 1;
	add(&s, "{\"id\":\"deny-any-1\",\"priority\":1,\"action\":\"deny\"}");
	install(&s, ES_FW_POLICY_DROP, false);
	v4(&p, "198.51.100.7", "198.51.100.1", IPPROTO_TCP, 5, 22, TH_SYN);
	run(&p, 1, &o);
	cr_expect_eq(o.verdict, XDP_PASS, "SSH passes a deny-any at priority 1");
	cr_expect_eq(o.meta_rule, 1022);
	v6(&p, "2001:db8::7", "2001:db8::1", IPPROTO_TCP, 5, 22, TH_SYN);
	run(&p, 1, &o);
	cr_expect_eq(o.verdict, XDP_PASS, "and over IPv6");
	v6(&p, "2001:db8::7", "2001:db8::1", IPPROTO_TCP, 5, 23, TH_SYN);
	run(&p, 1, &o);
	cr_expect_eq(o.verdict, XDP_DROP);
	cr_expect_eq(fw_kern_hits(kern, "anti-lockout-22"), 2);
	set_free(&s);
}

Test(firewall, lpm_block_lists_before_rules_with_owners)
{
	struct set s = {0};
	struct es_cidr c;
	struct out o;
	struct pb p;
	char why[64];

	add(&s, "{\"id\":\"allow-1\",\"priority\":1,\"action\":\"allow\"}");
	install(&s, ES_FW_POLICY_PASS, false);
	fw_lpm_kernel_attach(true);
	cr_assert_eq(es_cidr_parse("198.51.100.0/24", &c, why, sizeof(why)), 0);
	cr_assert_eq(fw_lpm_add("ips", &c, false, ES_FW_ACT_DROP), 0);
	cr_assert_eq(fw_lpm_add("alias", &c, false, ES_FW_ACT_DROP), 0);
	v4(&p, "198.51.100.7", "203.0.113.1", IPPROTO_TCP, 5, 22, TH_SYN);
	run(&p, 1, &o);
	cr_expect_eq(o.verdict, XDP_DROP, "LPM drop beats an allow rule");
	cr_expect_eq(fw_lpm_remove_owner("ips"), 1);
	run(&p, 1, &o);
	cr_expect_eq(o.verdict, XDP_DROP, "still owned by alias");
	cr_expect_eq(fw_lpm_remove("alias", &c, false), 0);
	run(&p, 1, &o);
	cr_expect_eq(o.verdict, XDP_PASS, "no owner left: gone");
	cr_assert_eq(es_cidr_parse("2001:db8:66::/48", &c, why, sizeof(why)), 0);
	cr_assert_eq(fw_lpm_add("ddos:XX", &c, true, ES_FW_ACT_DROP), 0);
	v6(&p, "2001:db8::7", "2001:db8:66::1", IPPROTO_UDP, 5, 22, 0);
	run(&p, 1, &o);
	cr_expect_eq(o.verdict, XDP_DROP, "destination trie, IPv6");
	fw_lpm_remove_owner("ddos:XX");
	fw_lpm_kernel_attach(false);
	set_free(&s);
}

struct events {
	int n;
	struct es_pkt_event ev[4];
};

static int collect_event(void *ctx, void *data, size_t len)
{
	struct events *g = ctx;

	if (g->n < 4 && len >= sizeof(struct es_pkt_event))
		memcpy(&g->ev[g->n++], data, sizeof(struct es_pkt_event));
	return 0;
}

Test(firewall, drop_and_log_events_carry_the_rule_id)
{
	struct ring_buffer *rb;
	struct set s = {0};
	struct out o;
	struct pb p;
	struct events got = {0};

	add(&s, "{\"id\":\"drop-7\",\"priority\":1,\"action\":\"deny\",\"dst_port\":7}");
	add(&s, "{\"id\":\"log-9\",\"priority\":2,\"action\":\"log\",\"dst_port\":9}");
	install(&s, ES_FW_POLICY_PASS, false);
	rb = ring_buffer__new(bpf_map__fd(fw->maps.events), NULL, NULL, NULL);
	cr_assert_not_null(rb);
	ring_buffer__consume(rb);
	ring_buffer__free(rb);
	v4(&p, "198.51.100.7", "203.0.113.1", IPPROTO_UDP, 5, 7, 0);
	run(&p, 1, &o);
	v6(&p, "2001:db8::7", "2001:db8::1", IPPROTO_TCP, 5, 9, TH_SYN);
	run(&p, 1, &o);
	rb = ring_buffer__new(bpf_map__fd(fw->maps.events), collect_event, &got, NULL);
	cr_assert_not_null(rb);
	ring_buffer__consume(rb);
	ring_buffer__free(rb);
	cr_assert_eq(got.n, 2);
	cr_expect_eq(got.ev[0].hdr.type, ES_EV_FIREWALL);
	cr_expect_eq(got.ev[0].action, ES_FW_ACT_DROP);
	cr_expect_eq(got.ev[0].rule_id, 1007);
	cr_expect_eq(got.ev[0].src_addr[0], 0xC6336407u, "198.51.100.7 in host order");
	cr_expect_eq(got.ev[0].dst_port, 7);
	cr_expect_eq(got.ev[1].action, ES_FW_ACT_LOG);
	cr_expect_eq(got.ev[1].rule_id, 1009);
	cr_expect(got.ev[1].hdr.flags & ES_EVF_IPV6);
	cr_expect_eq(got.ev[1].src_addr[0], 0x20010db8u);
	set_free(&s);
}

Test(firewall, bank_switch_flips_one_word)
{
	struct set s = {0};
	struct out o;
	struct pb p;
	int b0;

	add(&s, "{\"id\":\"a-1\",\"priority\":1,\"action\":\"deny\",\"dst_port\":80}");
	install(&s, ES_FW_POLICY_PASS, false);
	b0 = fw_kern_active_bank(kern);
	v4(&p, "198.51.100.7", "203.0.113.1", IPPROTO_TCP, 5, 80, TH_SYN);
	run(&p, 1, &o);
	cr_expect_eq(o.verdict, XDP_DROP);
	set_free(&s);
	add(&s, "{\"id\":\"b-2\",\"priority\":1,\"action\":\"deny\",\"dst_port\":81}");
	install(&s, ES_FW_POLICY_PASS, false);
	cr_expect_neq(fw_kern_active_bank(kern), b0, "the other bank is active");
	run(&p, 1, &o);
	cr_expect_eq(o.verdict, XDP_PASS, "old rule gone");
	set_free(&s);
	install(&s, ES_FW_POLICY_DROP, false); /* empty set, default drop */
	run(&p, 1, &o);
	cr_expect_eq(o.verdict, XDP_DROP);
	cr_expect_eq(fw_kern_active_bank(kern), b0);
}

/* ---- updates hammered while packets flow --------------------------------------------------- */

#define FILLER 600

static struct fw_rule *make_set(bool a, size_t *n)
{
	struct fw_rule *v = calloc(FILLER + 1, sizeof(*v));
	char json[256];
	struct es_cfg c;

	es_cfg_init(&c, NULL);
	for (size_t i = 0; i <= FILLER; i++) {
		json_error_t je;
		json_t *o;

		if (i == (a ? 0 : 7))
			snprintf(json, sizeof(json),
				 a ? "{\"id\":\"hit-1\",\"priority\":%zu,\"action\":\"log\","
				     "\"protocol\":\"tcp\","
				     "\"src_ip\":\"198.51.100.0/24\",\"dst_port\":80}"
				   : "{\"id\":\"hit-2\",\"priority\":%zu,\"action\":\"allow\","
				     "\"protocol\":\"tcp\","
				     "\"dst_ip\":\"203.0.113.0/24\"}",
				 i + 1);
		else
			snprintf(json, sizeof(json),
				 "{\"id\":\"f%c-%zu\",\"priority\":%zu,\"action\":\"allow\","
				 "\"protocol\":\"%s\","
				 "\"src_ip\":\"10.%zu.%zu.0/24\",\"dst_port\":%zu}",
				 a ? 'a' : 'b', 100 + i, i + 1, i % 2 ? "udp" : "tcp", i / 256,
				 i % 256, 80 + i % 7);
		o = json_loads(json, 0, &je);
		cr_assert_not_null(o);
		cr_assert_eq(fw_rule_parse(&c, o, "", &v[i]), 0, "%s", c.err.msg);
		v[i].order = i;
		json_decref(o);
	}
	es_cfg_release(&c);
	*n = FILLER + 1;
	return v;
}

struct hammer {
	atomic_bool stop;
	atomic_long runs, bad;
	struct pb pkt;
	__u32 bad_rule, bad_verdict;
};

static void *traffic(void *arg)
{
	struct hammer *h = arg;

	while (!atomic_load(&h->stop)) {
		struct out o;

		run(&h->pkt, 1, &o);
		atomic_fetch_add(&h->runs, 1);
		if (o.verdict != XDP_PASS || !o.meta ||
		    (o.meta_rule != 1001 && o.meta_rule != 1002)) {
			h->bad_rule = o.meta_rule;
			h->bad_verdict = o.verdict;
			atomic_fetch_add(&h->bad, 1);
		}
	}
	return NULL;
}

Test(firewall, no_packet_sees_a_partial_rule_set, .timeout = 120)
{
	static char *ifs[] = {"lo", NULL};
	struct fw_compile_in in[2] = {0};
	struct fw_rule *sets[2];
	struct fw_image img[2];
	struct hammer h = {0};
	size_t n[2];
	pthread_t t;
	char why[128];

	for (int i = 0; i < 2; i++) {
		sets[i] = make_set(i == 0, &n[i]);
		in[i] = (struct fw_compile_in){.rules = sets[i],
					       .n_rules = n[i],
					       .default_policy = ES_FW_POLICY_DROP,
					       .ifnames = ifs,
					       .n_ifnames = 1,
					       .rule_num = num_by_suffix};
		cr_assert_eq(fw_compile(&in[i], &img[i], why, sizeof(why)), 0, "%s", why);
	}
	v4(&h.pkt, "198.51.100.7", "203.0.113.9", IPPROTO_TCP, 4000, 80, TH_SYN);
	cr_assert_eq(fw_kern_install(kern, &img[0]), 0);
	pthread_create(&t, NULL, traffic, &h);
	for (int k = 0; k < 300; k++)
		cr_assert_eq(fw_kern_install(kern, &img[k % 2 ? 0 : 1]), 0);
	atomic_store(&h.stop, true);
	pthread_join(t, NULL);
	cr_expect_gt(atomic_load(&h.runs), 1000, "too little traffic during the updates");
	cr_expect_eq(atomic_load(&h.bad), 0,
		     "%ld of %ld packets decided by neither set (verdict %u, rule %u)",
		     atomic_load(&h.bad), atomic_load(&h.runs), h.bad_verdict, h.bad_rule);
	for (int i = 0; i < 2; i++) {
		fw_image_free(&img[i]);
		for (size_t k = 0; k < n[i]; k++)
			fw_rule_free(&sets[i][k]);
		free(sets[i]);
	}
}

/* ---- the real program against the rules' definition ------------------------------------- */

static void build_view(struct pb *p, const struct fw_pkt_view *v)
{
	char s[64], d[64];
	bool l4proto = v->proto == 6 || v->proto == 17 || v->proto == 1 || v->proto == 58;
	bool frag = l4proto && !v->ports && !v->icmp && !(v->proto == (v->v6 ? 1 : 58));

	inet_ntop(v->v6 ? AF_INET6 : AF_INET, v->v6 ? v->src : v->src + 12, s, sizeof(s));
	inet_ntop(v->v6 ? AF_INET6 : AF_INET, v->v6 ? v->dst : v->dst + 12, d, sizeof(d));
	pb_init(p);
	if (v->vlan) {
		pb_eth(p, PB_ETH_8021Q);
		pb_tag(p, v->vlan, v->v6 ? PB_ETH_IPV6 : PB_ETH_IP);
	} else {
		pb_eth(p, v->v6 ? PB_ETH_IPV6 : PB_ETH_IP);
	}
	memcpy(p->buf, v->dmac, 6);
	memcpy(p->buf + 6, v->smac, 6);
	if (!v->v6) {
		pb_ipv4(p, s, d, v->proto, 0, frag ? 0x0010 : 0);
		p->buf[p->l3 + 1] = (uint8_t)(v->dscp << 2);
	} else {
		pb_ipv6(p, s, d, frag ? 44 : v->proto);
		p->buf[p->l3] = (uint8_t)(0x60 | v->dscp >> 2);
		p->buf[p->l3 + 1] = (uint8_t)((v->dscp & 3) << 6);
		if (frag)
			pb_frag6(p, v->proto, 2, 1);
	}
	if (frag || !l4proto)
		pb_payload(p, 24, 0x5a);
	else if (v->proto == 6)
		pb_tcp(p, v->sport, v->dport, v->tcp_flags);
	else if (v->proto == 17)
		pb_udp(p, v->sport, v->dport);
	else
		pb_icmp(p, v->icmp_type, v->icmp_code);
	pb_finish(p);
}

static void kernel_differential(size_t n_rules, size_t n_pkts)
{
	static char *ifs[] = {"lo", "veth-a", NULL};
	struct fw_rule *rules = calloc(n_rules, sizeof(*rules));
	struct fw_aliases al;
	struct fw_compile_in in = {.rules = rules,
				   .n_rules = n_rules,
				   .aliases = &al,
				   .ifnames = ifs,
				   .n_ifnames = 2,
				   .rule_num = num_by_suffix,
				   .default_policy = ES_FW_POLICY_DROP};
	size_t bad = 0, hits = 0;
	struct es_cfg c;
	json_t *aj = json_loads(FW_RAND_ALIASES, 0, NULL);

	es_cfg_init(&c, NULL);
	cr_assert_eq(fw_aliases_parse(&c, aj, "a", &al), 0);
	json_decref(aj);
	for (size_t i = 0; i < n_rules; i++) {
		rand_rule(&rules[i], i, true);
		/* Pass or log, so the metadata names the deciding rule; no match drops. */
		rules[i].action = i % 3 ? ES_FW_ACT_PASS : ES_FW_ACT_LOG;
	}
	install_in(&in);
	for (size_t k = 0; k < n_pkts; k++) {
		struct fw_pkt_view v;
		struct out o;
		struct pb p;
		int want;

		rand_pkt(&v, rules, n_rules);
		v.ct_state = ES_FW_CT_UNKNOWN; /* conntrack is not running */
		v.ifpos = 0;		       /* everything arrives on lo */
		build_view(&p, &v);
		want = reference(&in, &v);
		run(&p, 1, &o);
		hits += want >= 0;
		if (want < 0 ? o.verdict != XDP_DROP
			     : o.verdict != XDP_PASS || !o.meta ||
				   o.meta_rule != num_by_suffix(rules[want].id, NULL)) {
			if (bad++ < 5)
				cr_log_error("packet %zu: want %s, got verdict %u rule %u", k,
					     want < 0 ? "drop" : rules[want].id, o.verdict,
					     o.meta_rule);
		}
	}
	cr_expect_eq(bad, 0, "%zu of %zu packets decided otherwise than the reference", bad,
		     n_pkts);
	cr_expect(hits > n_pkts / 50, "too few matching packets (%zu)", hits);
	for (size_t i = 0; i < n_rules; i++)
		fw_rule_free(&rules[i]);
	free(rules);
	fw_aliases_free(&al);
	es_cfg_release(&c);
}

Test(firewall, real_program_equals_reference_small_sets)
{
	for (int round = 0; round < 6; round++)
		kernel_differential(10 + rnd(60), 1500);
}

Test(firewall, real_program_equals_reference_4096_rules, .timeout = 120)
{
	kernel_differential(ES_FW_MAX_RULES, 3000);
}
