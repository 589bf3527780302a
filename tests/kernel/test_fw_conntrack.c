// SPDX-License-Identifier: AGPL-3.0-only
/*
 * xdp_firewall with conntrack on (network.md §2.2 steps 3, 4 and 8), through
 * BPF_PROG_TEST_RUN, IPv4 and IPv6: `state:` rules against the derived state,
 * the fast path for established, reply and related traffic, the metadata
 * flags for the TC programs, per-rule and per-source connection limits, and
 * the overload set. Flow entries are written from userspace the way
 * tc_conntrack writes them (same pinned tables).
 */
#include "kt_ct.h"
#include "abi/conntrack.h"
#include "abi/firewall.h"
#include "abi/xdp_meta.h"
#include "domains/firewall/firewall.h"
#include "domains/firewall/fw.h"
#include "skel/firewall.skel.h"
/* fw_test_rule only; the random-set helpers are for other suites. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include "fw_test.h"
#pragma GCC diagnostic pop

static struct es_firewall *fw;
static struct fw_kern *kern;
static int prog;

static void ct_cfg(int enabled, __u32 max_src_states, __u32 max_src_rate)
{
	struct es_ct_config c;
	__u32 zero = 0;
	int fd = bpf_map__fd(fw->maps.ct_config);

	kt_ct_config(fd, enabled);
	cr_assert_eq(bpf_map_lookup_elem(fd, &zero, &c), 0);
	c.max_src_states = max_src_states;
	c.max_src_conn_rate = max_src_rate;
	cr_assert_eq(bpf_map_update_elem(fd, &zero, &c, BPF_ANY), 0);
}

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
	ct_cfg(1, 0, 0);
}

static void teardown(void)
{
	fw_kern_close(kern);
	es_firewall__destroy(fw);
	kt_teardown();
}

TestSuite(fw_conntrack, .init = setup, .fini = teardown);

/* ---- helpers -------------------------------------------------------------------------- */

static uint32_t num_by_suffix(const char *id, void *arg)
{
	const char *d = id + strlen(id);

	(void)arg;
	while (d > id && d[-1] >= '0' && d[-1] <= '9')
		d--;
	return 1000 + (uint32_t)atoi(d);
}

/* Install rules (JSON objects, NULL-terminated) under a default policy. */
static void install(uint8_t policy, const char *const *json)
{
	static char *ifs[] = {"lo", NULL};
	struct fw_rule r[8];
	size_t n = 0;
	struct fw_image img;
	char why[256];

	memset(r, 0, sizeof(r));
	for (; json[n]; n++) {
		fw_test_rule(&r[n], json[n]);
		r[n].order = n;
	}
	struct fw_compile_in in = {
	    .rules = r,
	    .n_rules = n,
	    .default_policy = policy,
	    .ifnames = ifs,
	    .n_ifnames = 1,
	    .rule_num = num_by_suffix,
	};
	cr_assert_eq(fw_compile(&in, &img, why, sizeof(why)), 0, "compile: %s", why);
	cr_assert_eq(fw_kern_install(kern, &img), 0);
	fw_image_free(&img);
	for (size_t i = 0; i < n; i++)
		fw_rule_free(&r[i]);
}

struct out {
	__u32 verdict;
	bool meta;
	__u32 meta_rule;
	__u8 meta_flags;
};

static struct out run(const struct pb *p)
{
	struct xdp_md ctx = {.data_end = (__u32)p->len, .ingress_ifindex = 1};
	__u8 buf[2048];
	LIBBPF_OPTS(bpf_test_run_opts, t, .data_in = p->buf, .data_size_in = (__u32)p->len,
		    .data_out = buf, .data_size_out = sizeof(buf), .repeat = 1, .ctx_in = &ctx,
		    .ctx_size_in = sizeof(ctx));
	struct out o = {0};

	cr_assert_eq(bpf_prog_test_run_opts(prog, &t), 0, "test run: %s", strerror(errno));
	o.verdict = t.retval;
	if (t.data_size_out == p->len + sizeof(struct es_xdp_meta)) {
		struct es_xdp_meta m;

		memcpy(&m, buf, sizeof(m));
		o.meta = m.meta_flags & ES_META_F_PRESENT;
		o.meta_rule = m.rule_id;
		o.meta_flags = m.meta_flags;
	}
	return o;
}

static void tcp(struct pb *p, int v6, const char *s, const char *d, __u16 sp, __u16 dp, __u8 fl)
{
	pb_init(p);
	pb_eth(p, v6 ? PB_ETH_IPV6 : PB_ETH_IP);
	if (v6)
		pb_ipv6(p, s, d, IPPROTO_TCP);
	else
		pb_ipv4(p, s, d, IPPROTO_TCP, 0, 0);
	pb_tcp(p, sp, dp, fl);
	pb_finish(p);
}

static void words(int v6, const char *s, __u32 w[4])
{
	__u8 b[16] = {0};

	memset(w, 0, 16);
	if (!v6) {
		inet_pton(AF_INET, s, b);
		w[0] = (__u32)b[0] << 24 | (__u32)b[1] << 16 | (__u32)b[2] << 8 | b[3];
		return;
	}
	inet_pton(AF_INET6, s, b);
	for (int i = 0; i < 4; i++)
		w[i] = (__u32)b[4 * i] << 24 | (__u32)b[4 * i + 1] << 16 |
		       (__u32)b[4 * i + 2] << 8 | b[4 * i + 3];
}

/*
 * A flow entry as tc_conntrack writes it: initiator (a, ap) → (b, bp), key
 * normalized (lower address, then port, first).
 */
static void put(int v6, const char *a, __u16 ap, const char *b, __u16 bp, __u8 proto, __u8 state)
{
	__u32 wa[4], wb[4];
	int swap = 0;
	__u64 now = kt_boot_ns();

	words(v6, a, wa);
	words(v6, b, wb);
	for (int i = 0; i < 4 && !swap; i++) {
		if (wa[i] != wb[i]) {
			swap = wa[i] > wb[i] ? 1 : -1;
			break;
		}
	}
	if (!swap)
		swap = ap > bp ? 1 : -1;
	swap = swap > 0;
	if (v6) {
		struct es_ct_key_v6 k = {.protocol = proto};
		struct es_ct_entry_v6 e = {.state = state,
					   .flags = swap ? 0 : ES_CT_F_ORIG_IS_SRC,
					   .first_seen_ns = now,
					   .last_seen_ns = now,
					   .rule_slot = ES_CT_RULE_SLOT_NONE};

		memcpy(k.src_ip, swap ? wb : wa, 16);
		memcpy(k.dst_ip, swap ? wa : wb, 16);
		k.src_port = swap ? bp : ap;
		k.dst_port = swap ? ap : bp;
		cr_assert_eq(
		    bpf_map_update_elem(bpf_map__fd(fw->maps.ct_table_v6), &k, &e, BPF_ANY), 0);
	} else {
		struct es_ct_key_v4 k = {.protocol = proto};
		struct es_ct_entry_v4 e = {.state = state,
					   .flags = swap ? 0 : ES_CT_F_ORIG_IS_SRC,
					   .first_seen_ns = now,
					   .last_seen_ns = now,
					   .rule_slot = ES_CT_RULE_SLOT_NONE};

		k.src_ip = swap ? wb[0] : wa[0];
		k.dst_ip = swap ? wa[0] : wb[0];
		k.src_port = swap ? bp : ap;
		k.dst_port = swap ? ap : bp;
		cr_assert_eq(
		    bpf_map_update_elem(bpf_map__fd(fw->maps.ct_table_v4), &k, &e, BPF_ANY), 0);
	}
}

static struct es_ct_addr16 addr16(int v6, const char *s)
{
	struct es_ct_addr16 a = {0};

	if (v6) {
		inet_pton(AF_INET6, s, a.b);
	} else {
		a.b[10] = a.b[11] = 0xff;
		inet_pton(AF_INET, s, a.b + 12);
	}
	return a;
}

static uint64_t reason(int r)
{
	return kt_percpu(bpf_map__fd(fw->maps.es_reasons),
			 (__u32)(ES_PROG_XDP_FIREWALL * ES_REASON_STRIDE + r));
}

struct events {
	struct es_pkt_event ev[8];
	int n;
};

static int collect_event(void *ctx, void *data, size_t len)
{
	struct events *g = ctx;

	if (g->n < 8 && len >= sizeof(struct es_pkt_event))
		memcpy(&g->ev[g->n++], data, sizeof(struct es_pkt_event));
	return 0;
}

static struct events drain(void)
{
	struct events g = {0};
	struct ring_buffer *rb =
	    ring_buffer__new(bpf_map__fd(fw->maps.events), collect_event, &g, NULL);

	cr_assert_not_null(rb);
	ring_buffer__consume(rb);
	ring_buffer__free(rb);
	return g;
}

/* Client / server addresses per family. */
#define CL(v6) ((v6) ? "2001:db8:1::10" : "198.51.100.10")
#define CL2(v6) ((v6) ? "2001:db8:1::11" : "198.51.100.11")
#define SV(v6) ((v6) ? "2001:db8:2::20" : "203.0.113.20")

/* ---- tests ------------------------------------------------------------------------------ */

static void state_new_only(int v6)
{
	static const char *const rules[] = {
	    "{\"id\":\"ssh-1\",\"priority\":10,\"action\":\"allow\",\"protocol\":\"tcp\","
	    "\"dst_port\":22,\"state\":[\"new\"]}",
	    NULL};
	struct out o;
	struct pb p;

	install(ES_FW_POLICY_DROP, rules);
	/* A first SYN: NEW, matches; metadata says a flow starts under rule 1001. */
	tcp(&p, v6, CL(v6), SV(v6), 40000, 22, TH_SYN);
	o = run(&p);
	cr_expect_eq(o.verdict, XDP_PASS);
	cr_expect(o.meta);
	cr_expect_eq(o.meta_rule, 1001);
	cr_expect(o.meta_flags & ES_META_F_NEW_FLOW);
	/* An unsolicited ACK: INVALID, no rule, default drop. */
	tcp(&p, v6, CL(v6), SV(v6), 40001, 22, TH_ACK);
	cr_expect_eq(run(&p).verdict, XDP_DROP);
	/* A SYN whose flow is in SYN_SENT (a retransmission): still NEW, no new count. */
	put(v6, CL(v6), 40002, SV(v6), 22, IPPROTO_TCP, ES_CT_SYN_SENT);
	o = run((tcp(&p, v6, CL(v6), SV(v6), 40002, 22, TH_SYN), &p));
	cr_expect_eq(o.verdict, XDP_PASS);
	cr_expect_not(o.meta_flags & ES_META_F_NEW_FLOW, "an existing entry is no new flow");
	/* Conntrack off: state is unknown and the state rule never matches. */
	ct_cfg(0, 0, 0);
	cr_expect_eq(run((tcp(&p, v6, CL(v6), SV(v6), 40003, 22, TH_SYN), &p)).verdict, XDP_DROP);
}

Test(fw_conntrack, state_new_matches_syn_not_unsolicited_ack_ipv4)
{
	state_new_only(0);
}

Test(fw_conntrack, state_new_matches_syn_not_unsolicited_ack_ipv6)
{
	state_new_only(1);
}

static void invalid_and_established_rules(int v6)
{
	static const char *const rules[] = {
	    "{\"id\":\"inv-1\",\"priority\":1,\"action\":\"deny\",\"state\":[\"invalid\"]}",
	    "{\"id\":\"est-2\",\"priority\":2,\"action\":\"log\",\"protocol\":\"tcp\","
	    "\"state\":[\"established\"]}",
	    NULL};
	struct events g;
	struct pb p;
	struct out o;

	install(ES_FW_POLICY_PASS, rules);
	drain();
	tcp(&p, v6, CL(v6), SV(v6), 41000, 80, TH_ACK);
	cr_expect_eq(run(&p).verdict, XDP_DROP, "ACK without entry is INVALID");
	/* Original direction of a closing flow is ESTABLISHED (no fast path): logged. */
	put(v6, CL(v6), 41001, SV(v6), 80, IPPROTO_TCP, ES_CT_FIN_WAIT);
	o = run((tcp(&p, v6, CL(v6), SV(v6), 41001, 80, TH_ACK | TH_FIN), &p));
	cr_expect_eq(o.verdict, XDP_PASS);
	cr_expect_eq(o.meta_rule, 1002);
	g = drain();
	cr_assert_eq(g.n, 2);
	cr_expect_eq(g.ev[0].rule_id, 1001);
	cr_expect_eq(g.ev[0].action, ES_FW_ACT_DROP);
	cr_expect_eq(g.ev[1].rule_id, 1002);
	cr_expect_eq(g.ev[1].action, ES_FW_ACT_LOG);
}

Test(fw_conntrack, invalid_and_established_rules_ipv4)
{
	invalid_and_established_rules(0);
}

Test(fw_conntrack, invalid_and_established_rules_ipv6)
{
	invalid_and_established_rules(1);
}

static void fast_path(int v6)
{
	static const char *const rules[] = {
	    "{\"id\":\"deny-1\",\"priority\":1,\"action\":\"deny\",\"protocol\":\"tcp\","
	    "\"dst_port\":5555}",
	    NULL};
	uint64_t fast0 = reason(ES_R_FW_FASTPATH);
	struct pb p;
	struct out o;

	install(ES_FW_POLICY_DROP, rules);
	/* Established: both directions pass without the rule scan (even the deny). */
	put(v6, CL(v6), 42000, SV(v6), 5555, IPPROTO_TCP, ES_CT_ESTABLISHED);
	o = run((tcp(&p, v6, CL(v6), SV(v6), 42000, 5555, TH_ACK), &p));
	cr_expect_eq(o.verdict, XDP_PASS);
	cr_expect(o.meta);
	cr_expect_eq(o.meta_rule, 0);
	cr_expect_not(o.meta_flags & ES_META_F_NEW_FLOW);
	cr_expect_eq(run((tcp(&p, v6, SV(v6), CL(v6), 5555, 42000, TH_ACK), &p)).verdict, XDP_PASS);
	/* The reply direction of a SYN_SENT flow (the SYN+ACK) is fast too. */
	put(v6, CL(v6), 42001, SV(v6), 443, IPPROTO_TCP, ES_CT_SYN_SENT);
	cr_expect_eq(run((tcp(&p, v6, SV(v6), CL(v6), 443, 42001, TH_SYN | TH_ACK), &p)).verdict,
		     XDP_PASS);
	/* ...but its original direction is not (NEW, no rule: default drop). */
	cr_expect_eq(run((tcp(&p, v6, CL(v6), SV(v6), 42001, 443, TH_ACK), &p)).verdict, XDP_DROP);
	cr_expect_eq(reason(ES_R_FW_FASTPATH) - fast0, 3);
	/* RELATED: an ICMP error about a tracked UDP flow passes; about another, not. */
	put(v6, CL(v6), 42002, SV(v6), 53, IPPROTO_UDP, ES_CT_NEW);
	icmp_err(&p, v6, SV(v6), CL(v6), CL(v6), SV(v6), 42002, 53);
	cr_expect_eq(run(&p).verdict, XDP_PASS);
	icmp_err(&p, v6, SV(v6), CL(v6), CL(v6), SV(v6), 42003, 53);
	cr_expect_eq(run(&p).verdict, XDP_DROP);
	cr_expect_eq(reason(ES_R_FW_FASTPATH) - fast0, 4);
}

Test(fw_conntrack, fast_path_established_reply_and_related_ipv4)
{
	fast_path(0);
}

Test(fw_conntrack, fast_path_established_reply_and_related_ipv6)
{
	fast_path(1);
}

static void max_states(int v6)
{
	static const char *const rules[] = {
	    "{\"id\":\"web-3\",\"priority\":5,\"action\":\"allow\",\"protocol\":\"tcp\","
	    "\"dst_port\":80,\"max_states\":2}",
	    NULL};
	__u32 id = 1003, slot = 0, cnt = 0;
	struct events g;
	struct pb p;
	struct out o;

	install(ES_FW_POLICY_DROP, rules);
	cr_assert_eq(bpf_map_lookup_elem(bpf_map__fd(fw->maps.fw_rule_slot), &id, &slot), 0,
		     "the install publishes rule_id -> slot");
	cr_expect_eq(slot % ES_FW_MAX_RULES, 0);
	drain();
	for (int i = 0; i < 2; i++) {
		o = run((tcp(&p, v6, i ? CL2(v6) : CL(v6), SV(v6), 43000, 80, TH_SYN), &p));
		cr_expect_eq(o.verdict, XDP_PASS, "connection %d", i + 1);
		cr_expect(o.meta_flags & ES_META_F_NEW_FLOW);
		/* tc_conntrack would now create the entry. */
		put(v6, i ? CL2(v6) : CL(v6), 43000, SV(v6), 80, IPPROTO_TCP, ES_CT_SYN_SENT);
	}
	cr_assert_eq(bpf_map_lookup_elem(bpf_map__fd(fw->maps.fw_rule_state_count), &slot, &cnt),
		     0);
	cr_expect_eq(cnt, 2);
	/* The third connection is refused; packets of admitted flows still pass. */
	o = run((tcp(&p, v6, CL(v6), SV(v6), 43001, 80, TH_SYN), &p));
	cr_expect_eq(o.verdict, XDP_DROP);
	cr_expect_eq(run((tcp(&p, v6, CL(v6), SV(v6), 43000, 80, TH_SYN), &p)).verdict, XDP_PASS);
	g = drain();
	cr_assert_eq(g.n, 1);
	cr_expect_eq(g.ev[0].rule_id, ES_FW_RULE_CONN_LIMIT);
	cr_expect_eq(g.ev[0].action, ES_FW_ACT_DROP);
	/* One closes and the sweeper recounts: a new one is admitted. */
	cnt = 1;
	cr_assert_eq(
	    bpf_map_update_elem(bpf_map__fd(fw->maps.fw_rule_state_count), &slot, &cnt, BPF_ANY),
	    0);
	cr_expect_eq(run((tcp(&p, v6, CL(v6), SV(v6), 43002, 80, TH_SYN), &p)).verdict, XDP_PASS);
}

Test(fw_conntrack, max_states_per_rule_ipv4)
{
	max_states(0);
}

Test(fw_conntrack, max_states_per_rule_ipv6)
{
	max_states(1);
}

static void max_src_states(int v6)
{
	static const char *const rules[] = {
	    "{\"id\":\"any-1\",\"priority\":5,\"action\":\"allow\",\"protocol\":\"tcp\"}", NULL};
	struct es_ct_addr16 a = addr16(v6, CL(v6));
	struct es_ct_src_counter sc;
	struct pb p;

	ct_cfg(1, 2, 0);
	install(ES_FW_POLICY_DROP, rules);
	for (int i = 0; i < 2; i++)
		cr_expect_eq(
		    run((tcp(&p, v6, CL(v6), SV(v6), (__u16)(44000 + i), 80, TH_SYN), &p)).verdict,
		    XDP_PASS);
	cr_assert_eq(bpf_map_lookup_elem(bpf_map__fd(fw->maps.ct_src_counters), &a, &sc), 0);
	cr_expect_eq(sc.conn_count, 2);
	cr_expect_eq(run((tcp(&p, v6, CL(v6), SV(v6), 44002, 80, TH_SYN), &p)).verdict, XDP_DROP);
	/* Another source has its own count. */
	cr_expect_eq(run((tcp(&p, v6, CL2(v6), SV(v6), 44002, 80, TH_SYN), &p)).verdict, XDP_PASS);
	cr_expect_eq(reason(ES_R_FW_LIMIT_DROP), 1);
}

Test(fw_conntrack, max_src_states_per_source_ipv4)
{
	max_src_states(0);
}

Test(fw_conntrack, max_src_states_per_source_ipv6)
{
	max_src_states(1);
}

static void overload(int v6)
{
	static const char *const rules[] = {
	    "{\"id\":\"any-1\",\"priority\":5,\"action\":\"allow\",\"protocol\":\"tcp\"}",
	    "{\"id\":\"udp-2\",\"priority\":6,\"action\":\"allow\",\"protocol\":\"udp\"}", NULL};
	struct es_ct_addr16 a = addr16(v6, CL(v6));
	struct es_ct_overload ov;
	struct es_ct_src_counter sc;
	struct events g;
	struct pb p;

	ct_cfg(1, 0, 3);
	install(ES_FW_POLICY_DROP, rules);
	drain();
	for (int i = 0; i < 3; i++)
		cr_expect_eq(
		    run((tcp(&p, v6, CL(v6), SV(v6), (__u16)(45000 + i), 80, TH_SYN), &p)).verdict,
		    XDP_PASS);
	/* The fourth in the window: dropped, and the source goes into the overload set. */
	cr_expect_eq(run((tcp(&p, v6, CL(v6), SV(v6), 45003, 80, TH_SYN), &p)).verdict, XDP_DROP);
	cr_assert_eq(bpf_map_lookup_elem(bpf_map__fd(fw->maps.ct_overload), &a, &ov), 0);
	cr_expect_gt(ov.since_ns, 0);
	cr_assert_eq(bpf_map_lookup_elem(bpf_map__fd(fw->maps.ct_src_counters), &a, &sc), 0);
	cr_expect(sc.flags & ES_CT_SRC_OVERLOADED);
	g = drain();
	cr_assert_eq(g.n, 1);
	cr_expect_eq(g.ev[0].rule_id, ES_FW_RULE_CONN_LIMIT);
	/* Now dropped on every port and protocol, established flows included, silently. */
	put(v6, CL(v6), 45000, SV(v6), 80, IPPROTO_TCP, ES_CT_ESTABLISHED);
	cr_expect_eq(run((tcp(&p, v6, CL(v6), SV(v6), 45000, 80, TH_ACK), &p)).verdict, XDP_DROP);
	cr_expect_eq(run((tcp(&p, v6, CL(v6), SV(v6), 45004, 22, TH_SYN), &p)).verdict, XDP_DROP);
	cr_expect_eq(reason(ES_R_FW_OVERLOAD_DROP), 2);
	cr_expect_eq(drain().n, 0, "overload drops have no event");
	/* Another source is unaffected; a manual clear readmits this one. */
	cr_expect_eq(run((tcp(&p, v6, CL2(v6), SV(v6), 45000, 80, TH_SYN), &p)).verdict, XDP_PASS);
	cr_assert_eq(bpf_map_delete_elem(bpf_map__fd(fw->maps.ct_overload), &a), 0);
	cr_assert_eq(bpf_map_delete_elem(bpf_map__fd(fw->maps.ct_src_counters), &a), 0);
	cr_expect_eq(run((tcp(&p, v6, CL(v6), SV(v6), 45005, 22, TH_SYN), &p)).verdict, XDP_PASS);
}

Test(fw_conntrack, conn_rate_fills_the_overload_set_ipv4)
{
	overload(0);
}

Test(fw_conntrack, conn_rate_fills_the_overload_set_ipv6)
{
	overload(1);
}

Test(fw_conntrack, route_actions_set_metadata_flags)
{
	static const char *const rules[] = {
	    "{\"id\":\"dup-1\",\"priority\":1,\"action\":\"allow\",\"protocol\":\"tcp\","
	    "\"dst_port\":81,\"dup_to\":{\"interface\":\"lo\"}}",
	    "{\"id\":\"rep-2\",\"priority\":2,\"action\":\"allow\",\"protocol\":\"tcp\","
	    "\"dst_port\":82,\"reply_to\":true}",
	    "{\"id\":\"via-3\",\"priority\":3,\"action\":\"allow\",\"protocol\":\"tcp\","
	    "\"dst_port\":83,\"route_to\":{\"gateway\":\"198.18.0.2\",\"interface\":\"lo\"}}",
	    NULL};
	struct pb p;
	struct out o;

	install(ES_FW_POLICY_DROP, rules);
	for (int v6 = 0; v6 < 2; v6++) {
		o = run((tcp(&p, v6, CL(v6), SV(v6), 46000, 81, TH_SYN), &p));
		cr_expect_eq(o.verdict, XDP_PASS);
		cr_expect(o.meta_flags & ES_META_F_DUP_TO);
		cr_expect_not(o.meta_flags & ES_META_F_REPLY_TO);
		o = run((tcp(&p, v6, CL(v6), SV(v6), 46000, 82, TH_SYN), &p));
		cr_expect(o.meta_flags & ES_META_F_REPLY_TO);
		cr_expect(o.meta_flags & ES_META_F_NEW_FLOW);
		/* route_to with conntrack on: no redirect at XDP; the metadata hands
		 * the packet to tc_conntrack, which routes it once tracked. */
		o = run((tcp(&p, v6, CL(v6), SV(v6), 46000, 83, TH_SYN), &p));
		cr_expect_eq(o.verdict, XDP_PASS);
		cr_expect_eq(o.meta_rule, 1003);
		cr_expect(o.meta_flags & ES_META_F_ROUTE_TO);
		cr_expect(o.meta_flags & ES_META_F_NEW_FLOW);
		cr_expect_not(o.meta_flags & (ES_META_F_DUP_TO | ES_META_F_REPLY_TO));
		/* Conntrack off: XDP's own route_to (no target here: it passes). */
		ct_cfg(0, 0, 0);
		o = run((tcp(&p, v6, CL(v6), SV(v6), 46001, 83, TH_SYN), &p));
		cr_expect_eq(o.verdict, XDP_PASS);
		cr_expect_not(o.meta_flags & ES_META_F_ROUTE_TO, "XDP routes it itself");
		ct_cfg(1, 0, 0);
	}
}

/* An ICMP(v6) message of `type` with identifier `id` (echo) from s to d. */
static void icmp(struct pb *p, int v6, const char *s, const char *d, __u8 type, __u16 id)
{
	pb_init(p);
	pb_eth(p, v6 ? PB_ETH_IPV6 : PB_ETH_IP);
	if (v6)
		pb_ipv6(p, s, d, 58);
	else
		pb_ipv4(p, s, d, IPPROTO_ICMP, 0, 0);
	p->l4 = (int)p->len;
	p->l4proto = v6 ? 58 : IPPROTO_ICMP;
	pb_u8(p, type);
	pb_u8(p, 0);
	pb_be16(p, 0);
	pb_be16(p, id);
	pb_be16(p, 1);
	pb_payload(p, 16, 0);
	pb_finish(p);
}

static void only_tracked_flows_count(int v6)
{
	static const char *const rules[] = {
	    "{\"id\":\"icmp-1\",\"priority\":5,\"action\":\"allow\",\"protocol\":\"icmp\"}", NULL};
	__u8 other = v6 ? 135 : 13; /* neighbour solicitation / timestamp: not tracked */
	__u8 echo = v6 ? 128 : 8;
	struct es_ct_addr16 a = addr16(v6, CL(v6));
	struct es_ct_src_counter sc;
	struct pb p;
	struct out o;

	ct_cfg(1, 1, 0);
	install(ES_FW_POLICY_DROP, rules);
	for (int i = 0; i < 3; i++) {
		o = run((icmp(&p, v6, CL(v6), SV(v6), other, (__u16)i), &p));
		cr_expect_eq(o.verdict, XDP_PASS, "untracked ICMP %d", i);
		cr_expect_not(o.meta_flags & ES_META_F_NEW_FLOW);
	}
	cr_expect_neq(bpf_map_lookup_elem(bpf_map__fd(fw->maps.ct_src_counters), &a, &sc), 0,
		      "no connection counted");
	o = run((icmp(&p, v6, CL(v6), SV(v6), echo, 7), &p));
	cr_expect_eq(o.verdict, XDP_PASS);
	cr_expect(o.meta_flags & ES_META_F_NEW_FLOW);
	cr_assert_eq(bpf_map_lookup_elem(bpf_map__fd(fw->maps.ct_src_counters), &a, &sc), 0);
	cr_expect_eq(sc.conn_count, 1);
	/* A second echo flow is over max_src_states 1; untracked types still pass. */
	cr_expect_eq(run((icmp(&p, v6, CL(v6), SV(v6), echo, 8), &p)).verdict, XDP_DROP);
	cr_expect_eq(run((icmp(&p, v6, CL(v6), SV(v6), other, 9), &p)).verdict, XDP_PASS);
}

Test(fw_conntrack, only_flows_conntrack_tracks_count_ipv4)
{
	only_tracked_flows_count(0);
}

Test(fw_conntrack, only_flows_conntrack_tracks_count_ipv6)
{
	only_tracked_flows_count(1);
}
