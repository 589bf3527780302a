// SPDX-License-Identifier: AGPL-3.0-only
/* tc_ids through BPF_PROG_TEST_RUN: the four-level key lookup, SYN-only
 * port-less keys, payload copy bounds, the IPS blacklist and kernel
 * sampling at thresholds 0 and 1. */
#include "kt.h"
#include "abi/ids.h"
#include "skel/ids.skel.h"

#include <linux/pkt_cls.h>

static struct es_ids *sk;
static struct ring_buffer *rb;
static struct es_ids_event last;
static unsigned n_events;
static size_t last_len;

static int on_rec(void *ctx, void *data, size_t len)
{
	n_events++;
	last_len = ((struct es_event_hdr *)data)->len;
	memset(&last, 0, sizeof(last));
	memcpy(&last, data, last_len < sizeof(last) ? last_len : sizeof(last));
	return 0;
}

static void setup(void)
{
	KT_OPEN_OPTS(oo);

	kt_setup();
	sk = es_ids__open_opts(&oo);
	cr_assert_not_null(sk);
	cr_assert_eq(es_kernel_prepare_obj(sk->obj), 0);
	cr_assert_eq(es_ids__load(sk), 0, "tc_ids does not load on this kernel");
	cr_assert_eq(es_kernel_set_feature(ES_FEAT_IDS, true), 0);
	rb = ring_buffer__new(bpf_map__fd(sk->maps.events), on_rec, NULL, NULL);
	cr_assert_not_null(rb);
	n_events = 0;
}

static void teardown(void)
{
	ring_buffer__free(rb);
	es_ids__destroy(sk);
	kt_teardown();
}

TestSuite(tc_ids, .init = setup, .fini = teardown);

static int run(const struct pb *p)
{
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = p->buf, .data_size_in = (__u32)p->len,
		    .repeat = 1);

	cr_assert_eq(bpf_prog_test_run_opts(bpf_program__fd(sk->progs.tc_ids), &o), 0,
		     "test run: %s", strerror(errno));
	ring_buffer__consume(rb);
	return (int)o.retval;
}

static void put(uint16_t port, uint8_t proto, uint8_t flags, uint8_t action, uint32_t rule_id)
{
	struct es_ids_key k = {.dst_port = port, .proto = proto};
	struct es_ids_val v = {.action = action, .flags = flags, .rule_id = rule_id};

	cr_assert_eq(bpf_map_update_elem(bpf_map__fd(sk->maps.ids_patterns_0), &k, &v, 0), 0);
}

static void del(uint16_t port, uint8_t proto)
{
	struct es_ids_key k = {.dst_port = port, .proto = proto};

	cr_assert_eq(bpf_map_delete_elem(bpf_map__fd(sk->maps.ids_patterns_0), &k), 0);
}

static uint64_t metric(int i)
{
	return kt_percpu(bpf_map__fd(sk->maps.ids_metrics), (__u32)i);
}

static void tcp4(struct pb *p, uint16_t dport, uint8_t flags, size_t payload)
{
	pb_init(p);
	pb_eth(p, PB_ETH_IP);
	pb_ipv4(p, "198.51.100.2", "198.51.100.1", IPPROTO_TCP, 0, 0);
	pb_tcp(p, 40000, dport, flags);
	for (size_t i = 0; i < payload; i++)
		pb_u8(p, (uint8_t)('A' + i % 26));
	pb_finish(p);
}

static void udp4(struct pb *p, uint16_t dport)
{
	pb_init(p);
	pb_eth(p, PB_ETH_IP);
	pb_ipv4(p, "198.51.100.2", "198.51.100.1", IPPROTO_UDP, 0, 0);
	pb_udp(p, 5353, dport);
	pb_payload(p, 4, 'u');
	pb_finish(p);
}

Test(tc_ids, key_lookup_order)
{
	struct pb p;

	put(80, 6, 0, 0, 1);
	put(80, 0, 0, 0, 2);
	put(0, 6, ES_IDS_F_SYN_ONLY, 0, 3);
	put(0, 0, ES_IDS_F_SYN_ONLY, 0, 4);
	tcp4(&p, 80, TH_SYN, 0);
	cr_expect_eq(run(&p), TC_ACT_UNSPEC);
	cr_expect_eq(last.pkt.rule_id, 1, "(dport, proto) first");
	del(80, 6);
	run(&p);
	cr_expect_eq(last.pkt.rule_id, 2, "then (dport, any)");
	del(80, 0);
	run(&p);
	cr_expect_eq(last.pkt.rule_id, 3, "then (any, proto)");
	del(0, 6);
	run(&p);
	cr_expect_eq(last.pkt.rule_id, 4, "then (any, any)");
	udp4(&p, 80);
	run(&p);
	cr_expect_eq(last.pkt.rule_id, 4, "SYN_ONLY constrains only TCP");
	cr_expect_eq(n_events, 5);
	cr_expect_eq(last.pkt.protocol, 17);
	cr_expect_eq(last.pkt.dst_port, 80);
	cr_expect_eq(last.pkt.src_addr[0], 0xC6336402u);
	cr_expect_eq(last.pkt.hdr.type, ES_EV_IDS);
	cr_expect_eq(metric(ES_IDS_M_MATCHED), 5);
	cr_expect_eq(metric(ES_IDS_M_TOTAL_SEEN), 5);
	del(0, 0);
	run(&p);
	cr_expect_eq(n_events, 5, "no key: no event, no verdict");
}

Test(tc_ids, port_less_keys_fire_on_syn_only)
{
	struct pb p;

	put(0, 6, ES_IDS_F_SYN_ONLY, 0, 7);
	tcp4(&p, 99, TH_ACK, 10);
	cr_expect_eq(run(&p), TC_ACT_UNSPEC);
	cr_expect_eq(n_events, 0, "an ACK is not the start of a connection");
	tcp4(&p, 99, TH_SYN | TH_ACK, 0);
	run(&p);
	cr_expect_eq(n_events, 0, "SYN+ACK neither");
	tcp4(&p, 99, TH_SYN, 0);
	run(&p);
	cr_expect_eq(n_events, 1);
	cr_expect_eq(last.pkt.hdr.flags & ES_EVF_SYN, ES_EVF_SYN);
	cr_expect_eq(metric(ES_IDS_M_MATCHED), 1);
}

Test(tc_ids, payload_copy_is_min_of_remaining_and_512)
{
	struct pb p;
	size_t l4;

	put(8080, 6, ES_IDS_F_WANT_PAYLOAD, 0, 0);
	tcp4(&p, 8080, TH_ACK | TH_PSH, 10);
	l4 = (size_t)p.l4 + 20;
	run(&p);
	cr_assert_eq(n_events, 1);
	cr_expect_eq(last.payload_len, 10);
	cr_expect_eq(last_len, sizeof(struct es_ids_event));
	cr_expect_arr_eq(last.payload, p.buf + l4, 10);
	tcp4(&p, 8080, TH_ACK | TH_PSH, 1000);
	run(&p);
	cr_expect_eq(last.payload_len, 512, "long payloads are cut at 512");
	cr_expect_arr_eq(last.payload, p.buf + l4, 512);
	tcp4(&p, 8080, TH_ACK | TH_PSH, 1);
	run(&p);
	cr_expect_eq(last.payload_len, 1);
	tcp4(&p, 8080, TH_SYN, 0);
	run(&p);
	cr_expect_eq(n_events, 4);
	cr_expect_eq(last.payload_len, 0, "empty payload: the bare event");
	cr_expect_eq(last_len, ES_IDS_EVENT_MIN_LEN);
	/* Ethernet padding after the IP datagram is not payload. */
	tcp4(&p, 8080, TH_ACK, 3);
	pb_payload(&p, 20, 0xee);
	run(&p);
	cr_expect_eq(last.payload_len, 3);
	/* IPv6 */
	pb_init(&p);
	pb_eth(&p, PB_ETH_IPV6);
	pb_ipv6(&p, "2001:db8:1::2", "2001:db8:1::1", IPPROTO_TCP);
	pb_tcp(&p, 1, 8080, TH_ACK);
	pb_payload(&p, 600, 'z');
	pb_finish(&p);
	run(&p);
	cr_expect_eq(last.payload_len, 512);
	cr_expect_eq(last.pkt.hdr.flags & ES_EVF_IPV6, ES_EVF_IPV6);
	cr_expect_eq(last.pkt.src_addr[0], 0x20010db8u);
	cr_expect_eq(last.pkt.src_addr[3], 2u);
	cr_expect_eq(last.payload[0], 'z');
}

Test(tc_ids, drop_action_and_blacklist)
{
	struct pb p;
	__u32 k4;
	__u64 exp = 0;
	struct es_ips_v6key k6 = {0};

	put(2222, 6, 0, ES_IDS_ACT_DROP, 0);
	tcp4(&p, 2222, TH_SYN, 0);
	cr_expect_eq(run(&p), TC_ACT_SHOT);
	cr_expect_eq(last.pkt.action, ES_IDS_ACT_DROP, "the event carries the verdict");
	cr_expect_eq(metric(ES_IDS_M_DROPPED), 1);

	tcp4(&p, 1234, TH_SYN, 0);
	cr_expect_eq(run(&p), TC_ACT_UNSPEC);
	inet_pton(AF_INET, "198.51.100.2", &k4);
	cr_assert_eq(bpf_map_update_elem(bpf_map__fd(sk->maps.ips_blacklist_v4), &k4, &exp, 0), 0);
	cr_expect_eq(run(&p), TC_ACT_SHOT, "blacklisted source, permanent entry");
	cr_expect_eq(metric(ES_IDS_M_DROPPED), 2);
	exp = 1; /* expired long ago on the boot clock */
	cr_assert_eq(bpf_map_update_elem(bpf_map__fd(sk->maps.ips_blacklist_v4), &k4, &exp, 0), 0);
	cr_expect_eq(run(&p), TC_ACT_UNSPEC, "expired entries do not drop");
	exp = ~0ull;
	cr_assert_eq(bpf_map_update_elem(bpf_map__fd(sk->maps.ips_blacklist_v4), &k4, &exp, 0), 0);
	cr_expect_eq(run(&p), TC_ACT_SHOT);

	pb_init(&p);
	pb_eth(&p, PB_ETH_IPV6);
	pb_ipv6(&p, "2001:db8:1::2", "2001:db8:1::1", IPPROTO_UDP);
	pb_udp(&p, 1, 2);
	pb_finish(&p);
	cr_expect_eq(run(&p), TC_ACT_UNSPEC);
	inet_pton(AF_INET6, "2001:db8:1::2", k6.addr);
	exp = 0;
	cr_assert_eq(bpf_map_update_elem(bpf_map__fd(sk->maps.ips_blacklist_v6), &k6, &exp, 0), 0);
	cr_expect_eq(run(&p), TC_ACT_SHOT, "IPv6 blacklist");
}

static void sampling(uint32_t threshold)
{
	struct es_ids_sampling s = {.mode = ES_IDS_SAMPLE_RANDOM, .rate_threshold = threshold};
	__u32 bank = 0;

	cr_assert_eq(bpf_map_update_elem(bpf_map__fd(sk->maps.ids_sampling), &bank, &s, 0), 0);
}

Test(tc_ids, random_sampling_thresholds_0_and_1)
{
	struct pb p;

	put(53, 17, ES_IDS_F_SAMPLE, 0, 0);
	udp4(&p, 53);
	sampling(0);
	for (int i = 0; i < 200; i++)
		cr_expect_eq(run(&p), TC_ACT_UNSPEC);
	cr_expect_eq(n_events, 0, "rate 0: nothing emitted");
	cr_expect_eq(metric(ES_IDS_M_MATCHED), 200, "sampling never hides a match");
	sampling(0xFFFFFFFFu);
	for (int i = 0; i < 200; i++)
		run(&p);
	cr_expect_eq(n_events, 200, "rate 1: everything emitted");
	/* Keys without SAMPLE (IPS rules) ignore sampling. */
	sampling(0);
	put(53, 17, 0, 0, 0);
	run(&p);
	cr_expect_eq(n_events, 201);
}

Test(tc_ids, bank_switch_and_feature_flag)
{
	struct es_ids_key k = {.dst_port = 53, .proto = 17};
	struct es_ids_val v = {.rule_id = 9};
	__u32 zero = 0, one = 1;
	struct pb p;

	put(53, 17, 0, 0, 1);
	cr_assert_eq(bpf_map_update_elem(bpf_map__fd(sk->maps.ids_patterns_1), &k, &v, 0), 0);
	udp4(&p, 53);
	run(&p);
	cr_expect_eq(last.pkt.rule_id, 1);
	cr_assert_eq(bpf_map_update_elem(bpf_map__fd(sk->maps.ids_active), &zero, &one, 0), 0);
	run(&p);
	cr_expect_eq(last.pkt.rule_id, 9, "one word switches banks");
	cr_assert_eq(es_kernel_set_feature(ES_FEAT_IDS, false), 0);
	run(&p);
	cr_expect_eq(n_events, 2, "IDS and IPS both off: the program does nothing");
	cr_expect_eq(kt_percpu(bpf_map__fd(sk->maps.es_reasons),
			       ES_PROG_TC_IDS * ES_REASON_STRIDE + ES_R_DISABLED),
		     1);
}
