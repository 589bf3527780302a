// SPDX-License-Identifier: AGPL-3.0-only
/*
 * xdp_ratelimit through BPF_PROG_TEST_RUN: every algorithm against a scripted
 * sequence of packet timestamps (the test clock knob feeds `now`), policy
 * precedence, monitor mode, and the DDoS checks that need no listener.
 * Per-CPU state: the test process is pinned to one CPU.
 */
#define _GNU_SOURCE
#include "kt.h"
#include "abi/conntrack.h"
#include "abi/ddos.h"
#include "abi/ratelimit.h"
#include "domains/ratelimit/ratelimit.h"
#include "skel/ratelimit.skel.h"

#include <sched.h>
#include <time.h>
#include <string.h>

static struct es_ratelimit *rl;

#define MS 1000000ull
#define SEC 1000000000ull

static void pin_cpu(void)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(sched_getcpu(), &set);
	cr_assert_eq(sched_setaffinity(0, sizeof(set), &set), 0);
}

static void setup(void)
{
	KT_OPEN_OPTS(oo);

	pin_cpu();
	kt_setup();
	rl = es_ratelimit__open_opts(&oo);
	cr_assert_not_null(rl);
	rl->rodata->rl_clock_from_map = 1;
	cr_assert_eq(es_rl_size_tables(rl), 0);
	cr_assert_eq(es_kernel_prepare_obj(rl->obj), 0);
	cr_assert_eq(es_ratelimit__load(rl), 0, "xdp_ratelimit does not load on this kernel");
	cr_assert_eq(es_kernel_set_feature(ES_FEAT_RATELIMIT, true), 0);
}

static void teardown(void)
{
	es_ratelimit__destroy(rl);
	kt_teardown();
}

TestSuite(ratelimit, .init = setup, .fini = teardown);

static void set_clock(uint64_t t)
{
	__u32 zero = 0;

	cr_assert_eq(bpf_map_update_elem(bpf_map__fd(rl->maps.rl_test_clock), &zero, &t, 0), 0);
}

static void set_global(__u32 idx, __u32 v)
{
	cr_assert_eq(es_rl_global_put(bpf_map__fd(rl->maps.rl_globals), idx, v), 0);
}

static void set_default(uint64_t npt, uint64_t burst, __u8 algo, __u8 action)
{
	struct es_rl_config c = {
	    .ns_per_token = npt, .burst = burst, .algorithm = algo, .action = action};

	cr_assert_eq(es_rl_default_put(bpf_map__fd(rl->maps.rl_globals), &c), 0);
	set_global(ES_RL_G_FLAGS, ES_RL_HAS_DEFAULT);
}

static void udp4(struct pb *p, const char *src)
{
	pb_init(p);
	pb_eth(p, PB_ETH_IP);
	pb_ipv4(p, src, "198.51.100.1", IPPROTO_UDP, 0, 0);
	pb_udp(p, 5000, 53);
	pb_payload(p, 8, 0xab);
	pb_finish(p);
}

static __u32 run(const struct pb *p)
{
	struct kt_run r;

	kt_xdp(bpf_program__fd(rl->progs.xdp_ratelimit), p, &r);
	return r.retval;
}

/* One step of a script: the clock, then the expected verdict. */
struct step {
	uint64_t t;
	char want; /* 'P' pass, 'D' drop */
};

static void play(const char *what, const struct step *s, size_t n)
{
	struct pb p;

	udp4(&p, "198.51.100.7");
	for (size_t i = 0; i < n; i++) {
		__u32 v;

		set_clock(s[i].t);
		v = run(&p);
		cr_expect_eq(v, s[i].want == 'P' ? XDP_PASS : XDP_DROP,
			     "%s: step %zu at t=%llu ms: got %s, want %c", what, i,
			     (unsigned long long)(s[i].t / MS), v == XDP_PASS ? "pass" : "drop",
			     s[i].want);
	}
}

#define PLAY(what, ...)                                                                            \
	do {                                                                                       \
		static const struct step steps_[] = {__VA_ARGS__};                                 \
		play(what, steps_, sizeof(steps_) / sizeof(steps_[0]));                            \
	} while (0)

Test(ratelimit, token_bucket_keeps_the_refill_remainder)
{
	set_default(100 * MS, 3, ES_RL_ALGO_TOKEN_BUCKET, ES_RL_ACT_DROP); /* 10/s, burst 3 */
	PLAY("token bucket", {1 * SEC, 'P'}, {1 * SEC, 'P'}, {1 * SEC, 'P'}, {1 * SEC, 'D'},
	     {1 * SEC + 50 * MS, 'D'}, {1 * SEC + 100 * MS, 'P'}, {1 * SEC + 150 * MS, 'D'},
	     /* 150 ms after the last refill: one token, and 50 ms are kept ... */
	     {1 * SEC + 250 * MS, 'P'},
	     /* ... so the next one is due at +300 ms, not +350 ms. */
	     {1 * SEC + 300 * MS, 'P'}, {1 * SEC + 340 * MS, 'D'},
	     /* Long idle: full bucket, no more than burst. */
	     {20 * SEC, 'P'}, {20 * SEC, 'P'}, {20 * SEC, 'P'}, {20 * SEC, 'D'});
}

Test(ratelimit, fixed_window_stays_on_its_grid)
{
	set_default(3, 3, ES_RL_ALGO_FIXED_WINDOW, ES_RL_ACT_DROP); /* 3 per second */
	PLAY("fixed window", {1 * SEC, 'P'}, {1 * SEC + 100 * MS, 'P'}, {1 * SEC + 200 * MS, 'P'},
	     {1 * SEC + 300 * MS, 'D'}, {1 * SEC + 999 * MS, 'D'}, {2 * SEC, 'P'},
	     {2 * SEC + 500 * MS, 'P'}, {2 * SEC + 600 * MS, 'P'}, {2 * SEC + 700 * MS, 'D'},
	     /* Window [3.0, 4.0) although its first packet comes at 3.5. */
	     {3 * SEC + 500 * MS, 'P'}, {3 * SEC + 900 * MS, 'P'}, {3 * SEC + 950 * MS, 'P'},
	     {3 * SEC + 990 * MS, 'D'}, {4 * SEC, 'P'});
}

Test(ratelimit, sliding_window_frees_slots_as_they_age)
{
	set_default(4, 4, ES_RL_ALGO_SLIDING_WINDOW, ES_RL_ACT_DROP); /* 4 per second */
	PLAY("sliding window", {0, 'P'}, {10 * MS, 'P'}, {20 * MS, 'P'}, {30 * MS, 'P'},
	     {40 * MS, 'D'}, {130 * MS, 'D'},
	     /* Slot 0 (four packets) leaves the window at 1 s. */
	     {1000 * MS, 'P'}, {1010 * MS, 'P'}, {1020 * MS, 'P'}, {1030 * MS, 'P'},
	     {1040 * MS, 'D'}, {1130 * MS, 'D'}, {1900 * MS, 'D'}, {2000 * MS, 'P'});
}

Test(ratelimit, leaky_bucket_drains_without_losing_time)
{
	set_default(10, 3, ES_RL_ALGO_LEAKY_BUCKET, ES_RL_ACT_DROP); /* 10/s, capacity 3 */
	PLAY("leaky bucket", {1 * SEC, 'P'}, {1 * SEC, 'P'}, {1 * SEC, 'P'}, {1 * SEC, 'D'},
	     {1 * SEC + 50 * MS, 'D'}, {1 * SEC + 100 * MS, 'P'}, {1 * SEC + 150 * MS, 'D'},
	     {1 * SEC + 250 * MS, 'P'}, {1 * SEC + 300 * MS, 'P'}, {1 * SEC + 340 * MS, 'D'},
	     /* Idle 10 s or more empties it. */
	     {20 * SEC, 'P'}, {20 * SEC, 'P'}, {20 * SEC, 'P'}, {20 * SEC, 'D'});
}

Test(ratelimit, leaky_bucket_delivers_rate_plus_capacity_under_load)
{
	uint64_t passed = 0;
	struct pb p;

	/* network.md §6.4 item 3: rate 100, capacity 50, 1000 pps for 5 s -> ~550. */
	set_default(100, 50, ES_RL_ALGO_LEAKY_BUCKET, ES_RL_ACT_DROP);
	udp4(&p, "198.51.100.7");
	for (uint64_t i = 0; i < 5000; i++) {
		set_clock(1 * SEC + i * MS);
		passed += run(&p) == XDP_PASS;
	}
	cr_expect(passed >= 545 && passed <= 551, "leaky bucket delivered %llu, want ~550",
		  (unsigned long long)passed);
}

Test(ratelimit, token_bucket_exact_rate_over_a_second_of_load)
{
	uint64_t passed = 0;
	struct pb p;

	/* 1000 pps, burst 2000: 3000 back to back pass 2000 (§6.4 item 1), then 10 kpps for
	 * one second pass exactly 1000 more. */
	set_default(SEC / 1000, 2000, ES_RL_ALGO_TOKEN_BUCKET, ES_RL_ACT_DROP);
	udp4(&p, "198.51.100.7");
	set_clock(5 * SEC);
	for (int i = 0; i < 3000; i++)
		passed += run(&p) == XDP_PASS;
	cr_expect_eq(passed, 2000);
	cr_expect_eq(kt_percpu(bpf_map__fd(rl->maps.ratelimit_metrics), ES_RL_M_THROTTLED), 1000);
	passed = 0;
	for (uint64_t i = 1; i <= 10000; i++) {
		set_clock(5 * SEC + i * 100000); /* every 100 us */
		passed += run(&p) == XDP_PASS;
	}
	cr_expect_eq(passed, 1000, "passed %llu in one second at 1000 pps",
		     (unsigned long long)passed);
}

Test(ratelimit, monitor_action_passes_and_reports)
{
	struct pb p;

	set_default(SEC, 1, ES_RL_ALGO_TOKEN_BUCKET, ES_RL_ACT_PASS);
	udp4(&p, "198.51.100.7");
	set_clock(SEC);
	for (int i = 0; i < 5; i++)
		cr_expect_eq(run(&p), XDP_PASS);
	cr_expect_eq(kt_percpu(bpf_map__fd(rl->maps.ratelimit_metrics), ES_RL_M_PASSED), 5);
	cr_expect_eq(kt_percpu(bpf_map__fd(rl->maps.ratelimit_metrics), ES_RL_M_THROTTLED), 0);
	cr_expect_eq(kt_percpu(bpf_map__fd(rl->maps.es_reasons),
			       ES_PROG_XDP_RATELIMIT * ES_REASON_STRIDE + ES_R_RL_MONITOR),
		     4);
}

static void lpm4(int fd, const char *cidr_addr, __u32 plen, const void *val)
{
	struct es_lpm_v4 k = {.prefixlen = plen};

	inet_pton(AF_INET, cidr_addr, k.addr);
	cr_assert_eq(bpf_map_update_elem(fd, &k, val, 0), 0);
}

/* Passes from src at one instant with a 1/s rate: equals the matched policy's burst. */
static int burst_seen(const char *src)
{
	struct pb p;
	int n = 0;

	udp4(&p, src);
	for (int i = 0; i < 10; i++)
		n += run(&p) == XDP_PASS;
	return n;
}

Test(ratelimit, policy_precedence_override_tier_prefix_default)
{
	struct es_rl_config c = {.ns_per_token = SEC, .action = ES_RL_ACT_DROP};
	struct es_rl_tier_ref tref = {.tier_id = 3};
	struct es_addr16 a = {0};
	__u32 tier = 3;

	set_default(SEC, 1, ES_RL_ALGO_TOKEN_BUCKET, ES_RL_ACT_DROP);
	c.burst = 2, c.tag = 2;
	lpm4(bpf_map__fd(rl->maps.rl_policy_v4), "198.51.0.0", 16, &c);
	c.burst = 3, c.tag = 1;
	lpm4(bpf_map__fd(rl->maps.rl_policy_v4), "198.51.100.0", 24, &c);
	set_global(ES_RL_G_FLAGS, ES_RL_HAS_DEFAULT | ES_RL_HAS_POLICY_V4);
	set_clock(SEC);
	cr_expect_eq(burst_seen("198.51.100.7"), 3, "longest prefix wins");
	cr_expect_eq(burst_seen("198.51.200.7"), 2, "shorter prefix");
	cr_expect_eq(burst_seen("203.0.113.5"), 1, "default");

	c.burst = 4, c.tag = ES_RL_TAG_TIER | 3;
	cr_assert_eq(bpf_map_update_elem(bpf_map__fd(rl->maps.rl_tier_config), &tier, &c, 0), 0);
	lpm4(bpf_map__fd(rl->maps.rl_lpm_src_v4), "198.51.100.0", 25, &tref);
	set_global(ES_RL_G_FLAGS, ES_RL_HAS_DEFAULT | ES_RL_HAS_POLICY_V4 | ES_RL_HAS_TIERS);
	cr_expect_eq(burst_seen("198.51.100.8"), 4, "tier before prefix policies");

	c.burst = 5, c.tag = ES_RL_TAG_OVERRIDE;
	a.addr[10] = a.addr[11] = 0xff;
	inet_pton(AF_INET, "198.51.100.9", a.addr + 12);
	cr_assert_eq(bpf_map_update_elem(bpf_map__fd(rl->maps.ratelimit_config), &a, &c, 0), 0);
	set_global(ES_RL_G_OVERRIDES, 1);
	cr_expect_eq(burst_seen("198.51.100.9"), 5, "exact override first");
}

/* The set of IPv4 source `ip` under the default policy (tag 0) and `seed`. */
static __u32 set_of_v4(const char *ip, __u64 seed)
{
	uint8_t a[16] = {[10] = 0xff, [11] = 0xff};
	__u64 w[2];

	cr_assert_eq(inet_pton(AF_INET, ip, a + 12), 1);
	memcpy(w, a, 16);
	return es_rl_set_of(w[0], w[1], ES_RL_TAG_DEFAULT, seed, rl->rodata->rl_set_shift);
}

/* Packets from `ip` at time t; the verdicts as a string of P and D. */
static void send_from(const char *ip, uint64_t t, int n, char *out)
{
	struct pb p;

	udp4(&p, ip);
	set_clock(t);
	for (int i = 0; i < n; i++)
		*out++ = run(&p) == XDP_PASS ? 'P' : 'D';
	*out = '\0';
}

Test(ratelimit, full_state_set_gives_up_the_source_seen_longest_ago)
{
	const __u64 seed = 0x0ddba11c5eed1234ull;
	char ips[ES_RL_WAYS + 1][20], got[8];
	__u32 want_set = 0; /* set + 1 */
	int found = 0;

	/* ES_RL_WAYS + 1 sources of 198.18.0.0/15 that share one set under this seed. */
	static uint8_t count[ES_RL_SETS]; /* the most sets per CPU */
	memset(count, 0, sizeof(count));
	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; i < 131072 && found <= ES_RL_WAYS; i++) {
			char ip[20];
			__u32 set;

			snprintf(ip, sizeof(ip), "198.%d.%d.%d", 18 + (i >> 16), (i >> 8) & 0xff,
				 i & 0xff);
			set = set_of_v4(ip, seed);
			if (!pass && ++count[set] == ES_RL_WAYS + 1 && !want_set)
				want_set = set + 1;
			if (pass && set + 1 == want_set)
				strcpy(ips[found++], ip);
		}
	}
	cr_assert_eq(found, ES_RL_WAYS + 1, "no %d colliding sources", ES_RL_WAYS + 1);
	set_global(ES_RL_G_SEED, (__u32)seed);
	set_global(ES_RL_G_SEED_HI, (__u32)(seed >> 32));
	set_default(SEC, 2, ES_RL_ALGO_TOKEN_BUCKET, ES_RL_ACT_DROP); /* 1/s, burst 2 */

	/* The first ES_RL_WAYS sources fill the set, 100 ms apart; the first
	 * one spends its burst. */
	send_from(ips[0], 10 * SEC, 3, got);
	cr_expect_str_eq(got, "PPD", "source 0 spends its burst");
	for (int i = 1; i < ES_RL_WAYS; i++) {
		send_from(ips[i], 10 * SEC + (uint64_t)i * 100 * MS, 1, got);
		cr_expect_str_eq(got, "P", "source %d", i);
	}
	/* Source 0 is seen again (still limited: its state is kept)... */
	send_from(ips[0], 10 * SEC + 500 * MS, 1, got);
	cr_expect_str_eq(got, "D", "source 0 keeps its empty bucket while its set fills");
	/* ... so the newcomer takes the way of source 1, seen longest ago. */
	send_from(ips[ES_RL_WAYS], 10 * SEC + 600 * MS, 2, got);
	cr_expect_str_eq(got, "PP", "the newcomer gets a fresh bucket");
	send_from(ips[0], 10 * SEC + 700 * MS, 1, got);
	cr_expect_str_eq(got, "D", "source 0 was not the one evicted");
	/* Source 2 still has its bucket (one token left, no refill yet)... */
	send_from(ips[2], 10 * SEC + 800 * MS, 2, got);
	cr_expect_str_eq(got, "PD", "source 2 kept its state");
	/* ... and source 1 starts over with a full burst, evicting the next oldest. */
	send_from(ips[1], 10 * SEC + 900 * MS, 3, got);
	cr_expect_str_eq(got, "PPD", "source 1 was evicted: a fresh bucket");
}

Test(ratelimit, ipv6_sources_in_one_prefix_have_their_own_buckets)
{
	struct pb p1, p2;

	set_default(SEC, 2, ES_RL_ALGO_TOKEN_BUCKET, ES_RL_ACT_DROP);
	set_clock(SEC);
	for (int i = 0; i < 2; i++) {
		struct pb *p = i ? &p2 : &p1;

		pb_init(p);
		pb_eth(p, PB_ETH_IPV6);
		pb_ipv6(p, i ? "2001:db8:1::2" : "2001:db8:1::3", "2001:db8:1::1", IPPROTO_UDP);
		pb_udp(p, 5000, 53);
		pb_finish(p);
	}
	cr_expect_eq(run(&p1), XDP_PASS);
	cr_expect_eq(run(&p1), XDP_PASS);
	cr_expect_eq(run(&p1), XDP_DROP);
	cr_expect_eq(run(&p2), XDP_PASS, "a neighbour in the same /64 has its own bucket");
}

Test(ratelimit, global_scope_shares_one_bucket)
{
	struct es_rl_config c = {
	    .ns_per_token = SEC, .burst = 2, .scope = ES_RL_SCOPE_GLOBAL, .action = ES_RL_ACT_DROP};
	struct pb a, b;

	cr_assert_eq(es_rl_default_put(bpf_map__fd(rl->maps.rl_globals), &c), 0);
	set_global(ES_RL_G_FLAGS, ES_RL_HAS_DEFAULT);
	set_clock(SEC);
	udp4(&a, "198.51.100.7");
	udp4(&b, "198.51.100.8");
	cr_expect_eq(run(&a), XDP_PASS);
	cr_expect_eq(run(&b), XDP_PASS);
	cr_expect_eq(run(&a), XDP_DROP);
	cr_expect_eq(run(&b), XDP_DROP);
}

/* Disabled, the domain clears its flags word (ratelimit.c sync_locked): no generic limiting. */
Test(ratelimit, cleared_flags_word_and_no_policy_pass)
{
	struct pb p;

	udp4(&p, "198.51.100.7");
	set_clock(SEC);
	cr_expect_eq(run(&p), XDP_PASS, "no policy at all");
	set_default(SEC, 1, ES_RL_ALGO_TOKEN_BUCKET, ES_RL_ACT_DROP);
	cr_expect_eq(run(&p), XDP_PASS, "the burst of one");
	cr_expect_eq(run(&p), XDP_DROP, "over the default");
	set_global(ES_RL_G_FLAGS, 0);
	for (int i = 0; i < 3; i++)
		cr_expect_eq(run(&p), XDP_PASS,
			     "generic limiting is off with the flags word cleared");
}

/* ---- DDoS checks without a listener --------------------------------------------- */

static void icmp_echo(struct pb *p, size_t payload)
{
	pb_init(p);
	pb_eth(p, PB_ETH_IP);
	pb_ipv4(p, "198.51.100.2", "198.51.100.1", IPPROTO_ICMP, 0, 0);
	pb_icmp(p, 8, 0);
	pb_payload(p, payload, 0x11);
	pb_finish(p);
}

Test(ratelimit, icmp_limits_rate_and_payload_size)
{
	struct es_ddos_icmp_config ic = {.enabled = 1, .max_payload_size = 64, .max_pps = 3};
	__u32 zero = 0;
	struct pb p;
	int passed = 0;

	cr_assert_eq(bpf_map_update_elem(bpf_map__fd(rl->maps.ddos_icmp_config), &zero, &ic, 0), 0);
	set_global(ES_RL_G_DDOS, ES_RL_DDOS_ICMP);
	icmp_echo(&p, 100);
	set_clock(SEC);
	cr_expect_eq(run(&p), XDP_DROP, "oversized echo request");
	cr_expect_eq(kt_percpu(bpf_map__fd(rl->maps.ddos_metrics), ES_DDOS_M_OVERSIZED_ICMP), 1);
	icmp_echo(&p, 56);
	for (int i = 0; i < 10; i++)
		passed += run(&p) == XDP_PASS;
	cr_expect_eq(passed, 3, "max_pps 3 lets 3 through per second");
	set_clock(2 * SEC);
	cr_expect_eq(run(&p), XDP_PASS, "next second");
	cr_expect_eq(kt_percpu(bpf_map__fd(rl->maps.ddos_metrics), ES_DDOS_M_ICMP_DROPPED), 7);
}

Test(ratelimit, udp_amplification_limit_per_source_port)
{
	struct es_ddos_amp_key k = {.port = 123, .protocol = IPPROTO_UDP};
	struct es_ddos_amp_config v = {.enabled = 1, .max_pps = 2};
	struct pb p;
	int passed = 0;

	cr_assert_eq(bpf_map_update_elem(bpf_map__fd(rl->maps.ddos_amp_config), &k, &v, 0), 0);
	set_global(ES_RL_G_DDOS, ES_RL_DDOS_AMP);
	pb_init(&p);
	pb_eth(&p, PB_ETH_IP);
	pb_ipv4(&p, "198.51.100.2", "198.51.100.1", IPPROTO_UDP, 0, 0);
	pb_udp(&p, 123, 40000);
	pb_payload(&p, 400, 0);
	pb_finish(&p);
	set_clock(SEC);
	for (int i = 0; i < 5; i++)
		passed += run(&p) == XDP_PASS;
	cr_expect_eq(passed, 2);
	cr_expect_eq(kt_percpu(bpf_map__fd(rl->maps.ddos_metrics), ES_DDOS_M_AMP_DROPPED), 3);
}

static void tcp4(struct pb *p, const char *src, uint16_t sport, uint8_t flags)
{
	pb_init(p);
	pb_eth(p, PB_ETH_IP);
	pb_ipv4(p, src, "198.51.100.1", IPPROTO_TCP, 0, 0);
	pb_tcp(p, sport, 9, flags);
	pb_finish(p);
}

Test(ratelimit, conn_flood_tracker_half_open_and_rst)
{
	struct es_ddos_ct_config cc = {.enabled = 1, .half_open = 2, .rst = 3};
	__u32 zero = 0;
	struct pb p;
	int passed = 0;

	cr_assert_eq(bpf_map_update_elem(bpf_map__fd(rl->maps.ddos_ct_config), &zero, &cc, 0), 0);
	set_global(ES_RL_G_DDOS, ES_RL_DDOS_CT);
	set_clock(SEC);
	tcp4(&p, "198.51.100.2", 1001, TH_SYN);
	cr_expect_eq(run(&p), XDP_PASS);
	tcp4(&p, "198.51.100.2", 1002, TH_SYN);
	cr_expect_eq(run(&p), XDP_PASS);
	tcp4(&p, "198.51.100.2", 1003, TH_SYN);
	cr_expect_eq(run(&p), XDP_DROP, "third unanswered SYN over half_open 2");
	/* The handshake of 1001 completes: one half-open slot frees. */
	tcp4(&p, "198.51.100.2", 1001, TH_ACK);
	cr_expect_eq(run(&p), XDP_PASS);
	tcp4(&p, "198.51.100.2", 1003, TH_SYN);
	cr_expect_eq(run(&p), XDP_PASS);
	cr_expect_eq(kt_percpu(bpf_map__fd(rl->maps.ddos_metrics), ES_DDOS_M_HALF_OPEN_DROPS), 1);

	for (int i = 0; i < 6; i++) {
		tcp4(&p, "198.51.100.3", (uint16_t)(2000 + i), TH_RST);
		passed += run(&p) == XDP_PASS;
	}
	cr_expect_eq(passed, 3, "rst threshold 3 per second");
	cr_expect_eq(kt_percpu(bpf_map__fd(rl->maps.ddos_metrics), ES_DDOS_M_RST_FLOOD_DROPS), 3);
	/* ACKs of unknown connections are left alone without the shared conntrack table. */
	for (int i = 0; i < 5; i++) {
		tcp4(&p, "198.51.100.4", (uint16_t)(3000 + i), TH_ACK);
		cr_expect_eq(run(&p), XDP_PASS);
	}
}

Test(ratelimit, ack_flood_check_spares_flows_conntrack_knows)
{
	struct es_ddos_ct_config cc = {.enabled = 1, .ack_check = 1, .ack = 2};
	struct es_ct_config ctc = {.enabled = 1, .tcp_est_ns = 3600 * SEC, .tcp_syn_ns = 60 * SEC};
	/* 198.51.100.4:3000 -> 198.51.100.1:9, normalized: the lower endpoint is src. */
	struct es_ct_key_v4 k = {.src_ip = 0xC6336401,
				 .dst_ip = 0xC6336404,
				 .src_port = 9,
				 .dst_port = 3000,
				 .protocol = IPPROTO_TCP};
	struct es_ct_entry_v4 e = {.state = ES_CT_ESTABLISHED};
	struct timespec ts;
	__u32 zero = 0;
	struct pb p;
	int passed = 0;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	e.last_seen_ns = (uint64_t)ts.tv_sec * SEC + (uint64_t)ts.tv_nsec;
	cr_assert_eq(bpf_map_update_elem(bpf_map__fd(rl->maps.ddos_ct_config), &zero, &cc, 0), 0);
	set_global(ES_RL_G_DDOS, ES_RL_DDOS_CT);
	cr_assert_eq(bpf_map_update_elem(bpf_map__fd(rl->maps.ct_config), &zero, &ctc, 0), 0);
	cr_assert_eq(bpf_map_update_elem(bpf_map__fd(rl->maps.ct_table_v4), &k, &e, 0), 0);
	set_clock(SEC);
	for (int i = 0; i < 5; i++) {
		tcp4(&p, "198.51.100.4", 3000, TH_ACK);
		cr_expect_eq(run(&p), XDP_PASS, "a download's ACKs are not a flood");
	}
	for (int i = 0; i < 5; i++) {
		tcp4(&p, "198.51.100.4", (uint16_t)(4000 + i), TH_ACK);
		passed += run(&p) == XDP_PASS;
	}
	cr_expect_eq(passed, 2, "unknown ACKs over ack_threshold 2 are dropped");
	cr_expect_eq(kt_percpu(bpf_map__fd(rl->maps.ddos_metrics), ES_DDOS_M_ACK_FLOOD_DROPS), 3);
}

Test(ratelimit, syn_over_threshold_without_listener_or_proxy_is_dropped)
{
	struct es_ddos_syn_config sc = {.enabled = 1, .threshold_mode = 1, .threshold_pps = 3};
	__u32 zero = 0;
	struct pb p;

	cr_assert_eq(bpf_map_update_elem(bpf_map__fd(rl->maps.ddos_syn_config), &zero, &sc, 0), 0);
	set_global(ES_RL_G_DDOS, ES_RL_DDOS_SYN);
	set_clock(SEC);
	tcp4(&p, "198.51.100.2", 1001, TH_SYN);
	cr_expect_eq(run(&p), XDP_PASS);
	cr_expect_eq(run(&p), XDP_PASS);
	cr_expect_eq(run(&p), XDP_DROP, "the threshold-th SYN of the second is over");
	cr_expect_eq(kt_percpu(bpf_map__fd(rl->maps.ddos_metrics), ES_DDOS_M_SYN_RECEIVED), 3);
	cr_expect_eq(kt_percpu(bpf_map__fd(rl->maps.ddos_metrics), ES_DDOS_M_SYNCOOKIES_SENT), 0,
		     "no cookie could be made: none sent");
	cr_expect_eq(kt_percpu(bpf_map__fd(rl->maps.es_reasons),
			       ES_PROG_XDP_RATELIMIT * ES_REASON_STRIDE + ES_R_DDOS_SYN_DROP),
		     1);
	set_clock(2 * SEC);
	cr_expect_eq(run(&p), XDP_PASS, "new second");
}

Test(ratelimit, auto_block_list_drops_until_expiry)
{
	struct es_addr16 a = {0};
	__u64 exp = 3 * SEC;
	struct pb p;

	a.addr[10] = a.addr[11] = 0xff;
	inet_pton(AF_INET, "198.51.100.66", a.addr + 12);
	cr_assert_eq(bpf_map_update_elem(bpf_map__fd(rl->maps.ddos_block), &a, &exp, 0), 0);
	set_global(ES_RL_G_BLOCKS, 1);
	udp4(&p, "198.51.100.66");
	set_clock(2 * SEC);
	cr_expect_eq(run(&p), XDP_DROP);
	set_clock(3 * SEC);
	cr_expect_eq(run(&p), XDP_PASS, "expired");
}

/* ---- SYN cookies: a private network namespace with a real listener ------------- */

#include "skel/cookie_probe.skel.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>

static int listener = -1;

static void write_file(const char *path, const char *v)
{
	int fd = open(path, O_WRONLY);

	cr_assert_geq(fd, 0, "open %s", path);
	cr_assert_eq(write(fd, v, strlen(v)), (ssize_t)strlen(v));
	close(fd);
}

static void cookie_setup(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(8080)};
	struct sockaddr_in6 sa6 = {.sin6_family = AF_INET6, .sin6_port = htons(8080)};
	int one = 1, l6;

	cr_assert_eq(unshare(CLONE_NEWNET), 0, "unshare: %s", strerror(errno));
	cr_assert_eq(system("ip link set lo up && ip addr add 198.51.100.1/24 dev lo && "
			    "ip -6 addr add 2001:db8:1::1/64 dev lo nodad"),
		     0);
	write_file("/proc/sys/net/ipv4/tcp_syncookies", "2");
	setup();
	listener = socket(AF_INET, SOCK_STREAM, 0);
	inet_pton(AF_INET, "198.51.100.1", &sa.sin_addr);
	setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	cr_assert_eq(bind(listener, (void *)&sa, sizeof(sa)), 0);
	cr_assert_eq(listen(listener, 16), 0);
	l6 = socket(AF_INET6, SOCK_STREAM, 0);
	inet_pton(AF_INET6, "2001:db8:1::1", &sa6.sin6_addr);
	cr_assert_eq(bind(l6, (void *)&sa6, sizeof(sa6)), 0);
	cr_assert_eq(listen(l6, 16), 0);
}

static void cookie_teardown(void)
{
	teardown();
}

TestSuite(syncookie, .init = cookie_setup, .fini = cookie_teardown);

static void syn_config(__u8 flags)
{
	struct es_ddos_syn_config sc = {.enabled = 1, .threshold_mode = 0, .flags = flags};
	__u32 zero = 0;

	cr_assert_eq(bpf_map_update_elem(bpf_map__fd(rl->maps.ddos_syn_config), &zero, &sc, 0), 0);
	set_global(ES_RL_G_DDOS, ES_RL_DDOS_SYN);
}

/* A TCP segment with an MSS option (doff 6) when mss != 0. */
static void tcp_seg(struct pb *p, int v6, uint16_t dport, uint8_t flags, uint32_t seq, uint32_t ack,
		    uint16_t mss)
{
	pb_init(p);
	pb_eth(p, v6 ? PB_ETH_IPV6 : PB_ETH_IP);
	if (v6)
		pb_ipv6(p, "2001:db8:1::2", "2001:db8:1::1", IPPROTO_TCP);
	else
		pb_ipv4(p, "198.51.100.2", "198.51.100.1", IPPROTO_TCP, 0, 0);
	pb_tcp(p, 40000, dport, flags);
	seq = htonl(seq);
	ack = htonl(ack);
	memcpy(p->buf + p->l4 + 4, &seq, 4);
	memcpy(p->buf + p->l4 + 8, &ack, 4);
	if (mss) {
		p->buf[p->l4 + 12] = 6 << 4;
		pb_u8(p, 2);
		pb_u8(p, 4);
		pb_be16(p, mss);
	}
	pb_finish(p);
	/* TCP checksum, so the stack-facing helpers see a sane segment. */
	{
		uint8_t ps[40];
		size_t tl = p->len - (size_t)p->l4, pl;
		uint32_t sum = 0;

		memset(ps, 0, sizeof(ps));
		if (v6) {
			memcpy(ps, p->buf + p->l3 + 8, 32);
			ps[34] = (uint8_t)(tl >> 8), ps[35] = (uint8_t)tl, ps[39] = IPPROTO_TCP;
			pl = 40;
		} else {
			memcpy(ps, p->buf + p->l3 + 12, 8);
			ps[9] = IPPROTO_TCP, ps[10] = (uint8_t)(tl >> 8), ps[11] = (uint8_t)tl;
			pl = 12;
		}
		for (size_t i = 0; i < pl; i += 2)
			sum += (uint32_t)ps[i] << 8 | ps[i + 1];
		for (size_t i = 0; i < tl; i += 2)
			sum += (uint32_t)p->buf[p->l4 + i] << 8 |
			       (i + 1 < tl ? p->buf[p->l4 + i + 1] : 0);
		while (sum >> 16)
			sum = (sum & 0xffff) + (sum >> 16);
		sum = htons((uint16_t)~sum);
		memcpy(p->buf + p->l4 + 16, &sum, 2);
	}
}

/* One's-complement sum over a TCP segment with its pseudo-header: 0xffff when valid. */
static uint16_t tcp_csum_ok(const uint8_t *l3, int v6, const uint8_t *l4, size_t tl)
{
	uint32_t sum = 0;

	if (v6)
		for (int i = 8; i < 40; i += 2)
			sum += (uint32_t)l3[i] << 8 | l3[i + 1];
	else
		for (int i = 12; i < 20; i += 2)
			sum += (uint32_t)l3[i] << 8 | l3[i + 1];
	sum += IPPROTO_TCP + (uint32_t)tl;
	for (size_t i = 0; i < tl; i += 2)
		sum += (uint32_t)l4[i] << 8 | (i + 1 < tl ? l4[i + 1] : 0);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

static uint32_t be32_at(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Check a SYN-ACK answering tcp_seg(seq 1000, dport) and return its cookie. */
static uint32_t check_synack(const struct kt_run *r, const struct pb *syn, int v6, uint16_t dport)
{
	size_t l3 = 14, l4 = l3 + (v6 ? 40 : 20);
	const uint8_t *ip = r->out + l3, *th = r->out + l4;

	cr_assert_eq(r->retval, XDP_TX, "SYN not answered at XDP");
	cr_assert_eq(r->out_len, l4 + 24, "SYN-ACK length %u", r->out_len);
	cr_expect_arr_eq(r->out, syn->buf + 6, 6, "destination MAC = the SYN's source");
	cr_expect_arr_eq(r->out + 6, syn->buf, 6, "source MAC = the SYN's destination");
	if (v6) {
		cr_expect_eq(ip[0] >> 4, 6);
		cr_expect_eq(ip[4] << 8 | ip[5], 24, "payload length");
		cr_expect_eq(ip[6], IPPROTO_TCP);
		cr_expect_eq(ip[7], 64, "hop limit");
		cr_expect_arr_eq(ip + 8, syn->buf + 14 + 24, 16, "source = the SYN's destination");
		cr_expect_arr_eq(ip + 24, syn->buf + 14 + 8, 16, "destination = the SYN's source");
	} else {
		cr_expect_eq(ip[0], 0x45);
		cr_expect_eq(ip[2] << 8 | ip[3], 44, "total length");
		cr_expect_eq(ip[8], 64, "TTL");
		cr_expect_eq(ip[9], IPPROTO_TCP);
		cr_expect_eq(pb_csum(ip, 20), 0, "IPv4 header checksum");
		cr_expect_arr_eq(ip + 12, syn->buf + 14 + 16, 4, "source = the SYN's destination");
		cr_expect_arr_eq(ip + 16, syn->buf + 14 + 12, 4, "destination = the SYN's source");
	}
	cr_expect_eq(th[0] << 8 | th[1], dport, "source port");
	cr_expect_eq(th[2] << 8 | th[3], 40000, "destination port");
	cr_expect_eq(be32_at(th + 8), 1001, "ack = the SYN's seq + 1");
	cr_expect_eq(th[12] >> 4, 6, "data offset");
	cr_expect_eq(th[13], TH_SYN | TH_ACK);
	cr_expect_eq(th[20], 2, "MSS option kind");
	cr_expect_eq(th[21], 4, "MSS option length");
	cr_expect((th[22] << 8 | th[23]) > 0 && (th[22] << 8 | th[23]) <= 1460, "MSS %d",
		  th[22] << 8 | th[23]);
	cr_expect_eq(tcp_csum_ok(ip, v6, th, 24), 0xffff, "TCP checksum");
	return be32_at(th + 4);
}

Test(syncookie, listener_cookie_synack_and_ack_validation)
{
	int prog = bpf_program__fd(rl->progs.xdp_ratelimit);
	struct kt_run r;
	struct pb syn, ack;
	uint32_t cookie;

	syn_config(ES_DDOS_SYN_F_CHECK_ACK);
	set_clock(SEC);
	tcp_seg(&syn, 0, 8080, TH_SYN, 1000, 0, 1460);
	kt_xdp(prog, &syn, &r);
	cookie = check_synack(&r, &syn, 0, 8080);

	tcp_seg(&ack, 0, 8080, TH_ACK, 1001, cookie + 1, 0);
	kt_xdp(prog, &ack, &r);
	cr_expect_eq(r.retval, XDP_PASS, "a valid cookie ACK goes up to the listener");
	tcp_seg(&ack, 0, 8080, TH_ACK, 1001, cookie + 1 + 0x5a5a, 0);
	kt_xdp(prog, &ack, &r);
	cr_expect_eq(r.retval, XDP_DROP, "a forged ACK dies at XDP");
	cr_expect_eq(kt_percpu(bpf_map__fd(rl->maps.es_reasons),
			       ES_PROG_XDP_RATELIMIT * ES_REASON_STRIDE + ES_R_DDOS_BAD_COOKIE),
		     1);
	cr_expect_eq(kt_percpu(bpf_map__fd(rl->maps.es_reasons),
			       ES_PROG_XDP_RATELIMIT * ES_REASON_STRIDE + ES_R_DDOS_SYNCOOKIE),
		     1);
}

Test(syncookie, syn_of_a_time_wait_tuple_goes_to_the_stack)
{
	struct sockaddr_in cli = {.sin_family = AF_INET, .sin_port = htons(40000)};
	struct sockaddr_in srv = {.sin_family = AF_INET, .sin_port = htons(8080)};
	int prog = bpf_program__fd(rl->progs.xdp_ratelimit), c, a, one = 1;
	struct kt_run r;
	struct pb syn;
	char b;

	/* A connection 198.51.100.2:40000 -> :8080 that the server closes first:
	 * the server's side of that 4-tuple stays in TIME_WAIT. */
	inet_pton(AF_INET, "198.51.100.2", &cli.sin_addr);
	inet_pton(AF_INET, "198.51.100.1", &srv.sin_addr);
	c = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(c, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	cr_assert_eq(bind(c, (void *)&cli, sizeof(cli)), 0, "bind: %s", strerror(errno));
	cr_assert_eq(connect(c, (void *)&srv, sizeof(srv)), 0, "connect: %s", strerror(errno));
	a = accept(listener, NULL, NULL);
	cr_assert_geq(a, 0);
	close(a);
	cr_assert_eq(read(c, &b, 1), 0, "EOF from the server");
	close(c);
	usleep(50000);
	cr_assert_eq(system("ss -Htn state time-wait src 198.51.100.1:8080 | grep -q 40000"), 0,
		     "no TIME_WAIT for the tuple");

	syn_config(ES_DDOS_SYN_F_CHECK_ACK);
	set_clock(SEC);
	tcp_seg(&syn, 0, 8080, TH_SYN, 1000, 0, 1460);
	kt_xdp(prog, &syn, &r);
	cr_expect_eq(r.retval, XDP_PASS, "the stack decides about a SYN of a TIME_WAIT tuple");
	cr_expect_eq(r.out_len, syn.len, "untouched");
	cr_expect_eq(kt_percpu(bpf_map__fd(rl->maps.es_reasons),
			       ES_PROG_XDP_RATELIMIT * ES_REASON_STRIDE + ES_R_DDOS_SYN_DROP),
		     0);
	cr_expect_eq(kt_percpu(bpf_map__fd(rl->maps.ddos_metrics), ES_DDOS_M_SYNCOOKIES_SENT), 0);
}

Test(syncookie, ipv6_listener_cookie_synack)
{
	int prog = bpf_program__fd(rl->progs.xdp_ratelimit);
	struct kt_run r;
	struct pb syn, ack;
	uint32_t cookie;

	syn_config(ES_DDOS_SYN_F_CHECK_ACK);
	set_clock(SEC);
	tcp_seg(&syn, 1, 8080, TH_SYN, 1000, 0, 1440);
	kt_xdp(prog, &syn, &r);
	cookie = check_synack(&r, &syn, 1, 8080);
	tcp_seg(&ack, 1, 8080, TH_ACK, 1001, cookie + 1, 0);
	kt_xdp(prog, &ack, &r);
	cr_expect_eq(r.retval, XDP_PASS);
	tcp_seg(&ack, 1, 8080, TH_ACK, 1001, cookie + 77, 0);
	kt_xdp(prog, &ack, &r);
	cr_expect_eq(r.retval, XDP_DROP);
}

Test(syncookie, raw_cookie_for_forwarded_flows_checks_like_synproxy)
{
	int prog = bpf_program__fd(rl->progs.xdp_ratelimit);
	KT_OPEN_OPTS(oo);
	struct es_cookie_probe *probe = es_cookie_probe__open_opts(&oo);
	struct kt_run r;
	struct pb syn, ack;
	uint32_t cookie;

	cr_assert_not_null(probe);
	cr_assert_eq(es_cookie_probe__load(probe), 0);
	set_clock(SEC);
	syn_config(0);
	tcp_seg(&syn, 0, 9090, TH_SYN, 1000, 0, 1460); /* nobody listens on 9090 */
	kt_xdp(prog, &syn, &r);
	cr_expect_eq(r.retval, XDP_DROP, "no listener and no SYN proxy: dropped");

	syn_config(ES_DDOS_SYN_F_SYNPROXY);
	tcp_seg(&syn, 0, 9090, TH_SYN, 1000, 0, 1460);
	kt_xdp(prog, &syn, &r);
	cookie = check_synack(&r, &syn, 0, 9090);
	tcp_seg(&ack, 0, 9090, TH_ACK, 1001, cookie + 1, 0);
	kt_xdp(bpf_program__fd(probe->progs.xdp_cookie_probe), &ack, &r);
	cr_expect_eq(r.retval, XDP_PASS, "the kernel accepts the raw cookie");
	tcp_seg(&ack, 0, 9090, TH_ACK, 1001, cookie + 2, 0);
	kt_xdp(bpf_program__fd(probe->progs.xdp_cookie_probe), &ack, &r);
	cr_expect_eq(r.retval, XDP_DROP, "a forged cookie is refused");
	/* ACKs of forwarded flows are not ours to judge (SYN proxy does): passed. */
	kt_xdp(prog, &ack, &r);
	cr_expect_eq(r.retval, XDP_PASS);
	es_cookie_probe__destroy(probe);
}

Test(syncookie, syn_cookie_policy_answers_over_limit_syns)
{
	int prog = bpf_program__fd(rl->progs.xdp_ratelimit);
	struct kt_run r;
	struct pb syn, ack;

	set_default(SEC, 1, ES_RL_ALGO_SYN_COOKIE, ES_RL_ACT_DROP);
	set_clock(SEC);
	tcp_seg(&syn, 0, 8080, TH_SYN, 1000, 0, 1460);
	kt_xdp(prog, &syn, &r);
	cr_expect_eq(r.retval, XDP_PASS, "within the policy");
	tcp_seg(&syn, 0, 8080, TH_SYN, 1000, 0, 1460);
	kt_xdp(prog, &syn, &r);
	check_synack(&r, &syn, 0, 8080);
	tcp_seg(&ack, 0, 8080, TH_ACK, 1001, 5, 0);
	for (int i = 0; i < 3; i++) {
		kt_xdp(prog, &ack, &r);
		cr_expect_eq(r.retval, XDP_PASS, "only SYNs are subject to a syn_cookie policy");
	}
}

/*
 * DDOS_METRICS total_seen counts what the DDoS checks inspected: nothing
 * while no check is on (docs/ddos.md), every packet once one is.
 */
Test(ratelimit, ddos_total_seen_counts_only_inspected_packets)
{
	struct es_ddos_icmp_config ic = {.enabled = 1, .max_payload_size = 1000, .max_pps = 100};
	int fd = bpf_map__fd(rl->maps.ddos_metrics), mfd = bpf_map__fd(rl->maps.ratelimit_metrics);
	__u32 zero = 0;
	struct pb p;

	set_default(SEC / 1000, 1000, ES_RL_ALGO_TOKEN_BUCKET, ES_RL_ACT_DROP);
	set_clock(SEC);
	udp4(&p, "198.51.100.7");
	for (int i = 0; i < 3; i++)
		cr_expect_eq(run(&p), XDP_PASS);
	cr_expect_eq(kt_percpu(mfd, ES_RL_M_TOTAL_SEEN), 3);
	cr_expect_eq(kt_percpu(fd, ES_DDOS_M_TOTAL_SEEN), 0, "no DDoS check on: none inspected");
	cr_assert_eq(bpf_map_update_elem(bpf_map__fd(rl->maps.ddos_icmp_config), &zero, &ic, 0), 0);
	set_global(ES_RL_G_DDOS, ES_RL_DDOS_ICMP);
	for (int i = 0; i < 2; i++)
		cr_expect_eq(run(&p), XDP_PASS);
	cr_expect_eq(kt_percpu(mfd, ES_RL_M_TOTAL_SEEN), 5);
	cr_expect_eq(kt_percpu(fd, ES_DDOS_M_TOTAL_SEEN), 2,
		     "the ICMP check inspects every packet");
}
