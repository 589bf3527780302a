// SPDX-License-Identifier: AGPL-3.0-only
/*
 * tc_scrub through BPF_PROG_TEST_RUN (network.md §5): TTL and hop-limit
 * floors, DF cleared, IP ID randomized, MSS clamped on SYN and SYN-ACK
 * (options at even and odd offsets) and nothing else touched; every output
 * compared byte for byte with a frame whose checksums the test computes.
 */
#include "kt.h"
#include "abi/scrub.h"
#include "skel/scrub.skel.h"

static struct es_scrub *sk;

static void setup(void)
{
	KT_OPEN_OPTS(oo);

	kt_setup();
	sk = es_scrub__open_opts(&oo);
	cr_assert_not_null(sk);
	cr_assert_eq(es_kernel_prepare_obj(sk->obj), 0);
	cr_assert_eq(es_scrub__load(sk), 0, "tc_scrub does not load on this kernel");
}

static void teardown(void)
{
	es_scrub__destroy(sk);
	kt_teardown();
}

TestSuite(scrub, .init = setup, .fini = teardown);

static void config(struct es_scrub_config c)
{
	__u32 zero = 0;

	cr_assert_eq(bpf_map_update_elem(bpf_map__fd(sk->maps.scrub_config), &zero, &c, BPF_ANY),
		     0);
}

static uint64_t metric(int i)
{
	return kt_percpu(bpf_map__fd(sk->maps.scrub_metrics), (__u32)i);
}

/*
 * A TCP segment with `opts` (padded to 4 bytes) after the header, TTL ttl,
 * DF set or not, IP ID id; checksums correct. v6: same over IPv6.
 */
static void seg(struct pb *p, int v6, uint8_t ttl, int df, uint16_t id, uint8_t flags,
		const uint8_t *opts, size_t olen)
{
	size_t padded = (olen + 3) & ~(size_t)3;

	pb_init(p);
	pb_eth(p, v6 ? PB_ETH_IPV6 : PB_ETH_IP);
	if (v6) {
		pb_ipv6(p, "2001:db8:1::2", "2001:db8:2::2", IPPROTO_TCP);
		p->buf[p->l3 + 7] = ttl;
	} else {
		pb_ipv4(p, "198.51.100.2", "203.0.113.2", IPPROTO_TCP, 0, df ? 0x4000 : 0);
		p->buf[p->l3 + 8] = ttl;
		p->buf[p->l3 + 4] = (uint8_t)(id >> 8);
		p->buf[p->l3 + 5] = (uint8_t)id;
	}
	pb_tcp(p, 40000, 443, flags);
	p->buf[p->l4 + 12] = (uint8_t)((5 + padded / 4) << 4);
	pb_put(p, opts, olen);
	pb_zero(p, padded - olen); /* EOL padding */
	pb_payload(p, 11, 0x33);
	pb_finish(p);
	pb_fill_l4_csum(p);
}

static void run(const struct pb *p, struct kt_run *r)
{
	kt_tc(bpf_program__fd(sk->progs.tc_scrub), p, NULL, r);
	cr_assert_eq((int)r->retval, -1, "tc_scrub always returns TC_ACT_UNSPEC");
	cr_assert_eq(r->out_len, p->len);
}

static void expect_same(const struct kt_run *r, const struct pb *want, const char *what)
{
	for (size_t i = 0; i < want->len; i++)
		if (r->out[i] != want->buf[i]) {
			cr_expect_fail("%s: byte %zu is 0x%02x, want 0x%02x", what, i, r->out[i],
				       want->buf[i]);
			return;
		}
}

static const uint8_t MSS1460[] = {2, 4, 0x05, 0xb4};
static const uint8_t MSS1300[] = {2, 4, 0x05, 0x14};
/* NOP first: the MSS value sits at an odd offset of the TCP header. */
static const uint8_t NOP_MSS1460[] = {1, 2, 4, 0x05, 0xb4};
static const uint8_t WS_NOP_MSS1460[] = {3, 3, 7, 1, 2, 4, 0x05, 0xb4, 4, 2};
static const uint8_t MSS1400[] = {2, 4, 0x05, 0x78};
static const uint8_t NOP_MSS1400[] = {1, 2, 4, 0x05, 0x78};
static const uint8_t WS_NOP_MSS1400[] = {3, 3, 7, 1, 2, 4, 0x05, 0x78, 4, 2};

Test(scrub, ttl_floor_with_a_valid_header_checksum)
{
	struct pb in, want;
	struct kt_run r;

	config((struct es_scrub_config){.enabled = 1, .min_ttl = 64});
	seg(&in, 0, 5, 0, 0x1111, TH_ACK, NULL, 0);
	seg(&want, 0, 64, 0, 0x1111, TH_ACK, NULL, 0);
	run(&in, &r);
	expect_same(&r, &want, "TTL 5 raised to 64");
	seg(&in, 0, 100, 0, 0x1111, TH_ACK, NULL, 0);
	run(&in, &r);
	expect_same(&r, &in, "TTL 100 left alone");
	cr_expect_eq(metric(ES_SCRUB_M_TTL_FIXED), 1);
	cr_expect_eq(metric(ES_SCRUB_M_PACKETS), 2);
}

Test(scrub, mss_clamp_on_syn_and_synack_only)
{
	const struct {
		const char *what;
		uint8_t flags;
		const uint8_t *opts, *want_opts;
		size_t olen;
		int clamped;
	} cases[] = {
	    {"SYN 1460 -> 1400", TH_SYN, MSS1460, MSS1400, 4, 1},
	    {"SYN-ACK 1460 -> 1400", TH_SYN | TH_ACK, MSS1460, MSS1400, 4, 1},
	    {"odd offset", TH_SYN, NOP_MSS1460, NOP_MSS1400, 5, 1},
	    {"after window scale", TH_SYN, WS_NOP_MSS1460, WS_NOP_MSS1400, 10, 1},
	    {"1300 below the maximum", TH_SYN, MSS1300, MSS1300, 4, 0},
	    {"not a SYN", TH_ACK, MSS1460, MSS1460, 4, 0},
	};

	config((struct es_scrub_config){.enabled = 1, .max_mss = 1400});
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t before = metric(ES_SCRUB_M_MSS_CLAMPED);
		struct pb in, want;
		struct kt_run r;

		for (int v6 = 0; v6 < 2; v6++) {
			seg(&in, v6, 64, 0, 0x2222, cases[i].flags, cases[i].opts, cases[i].olen);
			seg(&want, v6, 64, 0, 0x2222, cases[i].flags, cases[i].want_opts,
			    cases[i].olen);
			run(&in, &r);
			expect_same(&r, &want, cases[i].what);
		}
		cr_expect_eq(metric(ES_SCRUB_M_MSS_CLAMPED),
			     before + 2 * (uint64_t)cases[i].clamped, "%s", cases[i].what);
	}
}

Test(scrub, df_cleared_and_ip_id_randomized)
{
	struct pb in, want;
	struct kt_run r;
	int changed = 0;

	config((struct es_scrub_config){.enabled = 1, .clear_df = 1});
	seg(&in, 0, 64, 1, 0x3333, TH_ACK, NULL, 0);
	seg(&want, 0, 64, 0, 0x3333, TH_ACK, NULL, 0);
	run(&in, &r);
	expect_same(&r, &want, "DF cleared");
	cr_expect_eq(metric(ES_SCRUB_M_DF_CLEARED), 1);

	config((struct es_scrub_config){.enabled = 1, .random_ip_id = 1});
	for (int i = 0; i < 4; i++) {
		uint16_t id;

		run(&in, &r);
		id = (uint16_t)(r.out[in.l3 + 4] << 8 | r.out[in.l3 + 5]);
		changed += id != 0x3333;
		/* Same frame with the new ID: checksums recomputed from scratch must match. */
		seg(&want, 0, 64, 1, id, TH_ACK, NULL, 0);
		expect_same(&r, &want, "random IP ID with a valid checksum");
	}
	cr_expect_geq(changed, 3, "IDs differ from the sender's");
	cr_expect_eq(metric(ES_SCRUB_M_IPID_RANDOMIZED), (uint64_t)changed);
}

Test(scrub, hop_limit_floor_and_disabled)
{
	struct pb in, want;
	struct kt_run r;

	config((struct es_scrub_config){.enabled = 1, .min_hop_limit = 32, .min_ttl = 64});
	seg(&in, 1, 3, 0, 0, TH_ACK, NULL, 0);
	seg(&want, 1, 32, 0, 0, TH_ACK, NULL, 0);
	run(&in, &r);
	expect_same(&r, &want, "hop limit 3 raised to 32");
	cr_expect_eq(metric(ES_SCRUB_M_HOP_FIXED), 1);
	cr_expect_eq(metric(ES_SCRUB_M_TTL_FIXED), 0);

	config((struct es_scrub_config){.enabled = 0, .min_hop_limit = 32, .max_mss = 1000});
	seg(&in, 0, 1, 1, 0x4444, TH_SYN, MSS1460, 4);
	run(&in, &r);
	expect_same(&r, &in, "disabled: untouched");
	cr_expect_eq(metric(ES_SCRUB_M_TOTAL_SEEN), 2);
	cr_expect_eq(metric(ES_SCRUB_M_PACKETS), 1, "the disabled pass is not a scrubbed packet");
}
