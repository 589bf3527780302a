// SPDX-License-Identifier: AGPL-3.0-only
/*
 * The XDP chain with the firewall present: xdp_firewall tail-calls
 * xdp_ratelimit in slot 0, and the DDoS auto-block goes through the
 * firewall's LPM block list under the owner "ddos" (xdp_ratelimit's own
 * ddos_block map only while xdp_firewall is not running); an expiry takes
 * away the "ddos" ownership only.
 */
#define _GNU_SOURCE
#include "kt.h"
#include "abi/firewall.h"
#include "abi/ratelimit.h"
#include "abi/pkt.h"
#include "core/clock.h"
#include "domains/ddos/ddos.h"
#include "domains/firewall/firewall.h"
#include "domains/firewall/fw.h"
#include "domains/ratelimit/ratelimit.h"
#include "skel/firewall.skel.h"
#include "skel/ratelimit.skel.h"

#include <sched.h>

static struct es_firewall *fw;
static struct es_ratelimit *rl;

#define SEC 1000000000ull

static void setup(void)
{
	KT_OPEN_OPTS(oo);
	cpu_set_t set;
	__u32 slot = ES_XDP_SLOT_RATELIMIT;
	int fd;

	/* Per-CPU buckets: every run on one CPU. */
	CPU_ZERO(&set);
	CPU_SET(sched_getcpu(), &set);
	cr_assert_eq(sched_setaffinity(0, sizeof(set), &set), 0);
	kt_setup();
	fw = es_firewall__open_opts(&oo);
	cr_assert_not_null(fw);
	cr_assert_eq(es_kernel_prepare_obj(fw->obj), 0);
	cr_assert_eq(es_firewall__load(fw), 0);
	cr_assert_eq(es_kernel_set_feature(ES_FEAT_FIREWALL, true), 0);
	rl = es_ratelimit__open_opts(&oo);
	cr_assert_not_null(rl);
	rl->rodata->rl_clock_from_map = 1;
	cr_assert_eq(es_rl_size_tables(rl), 0);
	cr_assert_eq(es_kernel_prepare_obj(rl->obj), 0);
	cr_assert_eq(es_ratelimit__load(rl), 0);
	cr_assert_eq(es_kernel_set_feature(ES_FEAT_RATELIMIT, true), 0);
	/* One pinned PROG_ARRAY: what the firewall tail-calls is what we put here. */
	fd = bpf_program__fd(rl->progs.xdp_ratelimit);
	cr_assert_eq(bpf_map_update_elem(bpf_map__fd(fw->maps.xdp_prog_array), &slot, &fd, 0), 0);
	fw_lpm_kernel_attach(true);
}

static void teardown(void)
{
	fw_lpm_kernel_attach(false);
	es_ratelimit__destroy(rl);
	es_firewall__destroy(fw);
	kt_teardown();
}

TestSuite(xdp_chain, .init = setup, .fini = teardown);

static void udp4(struct pb *p, const char *src)
{
	pb_init(p);
	pb_eth(p, PB_ETH_IP);
	pb_ipv4(p, src, "198.51.100.1", IPPROTO_UDP, 0, 0);
	pb_udp(p, 5000, 53);
	pb_payload(p, 8, 0xab);
	pb_finish(p);
}

static __u32 run_fw(const char *src)
{
	struct kt_run r;
	struct pb p;

	udp4(&p, src);
	kt_xdp(bpf_program__fd(fw->progs.xdp_firewall), &p, &r);
	return r.retval;
}

static __u32 run_rl(const char *src)
{
	struct kt_run r;
	struct pb p;

	udp4(&p, src);
	kt_xdp(bpf_program__fd(rl->progs.xdp_ratelimit), &p, &r);
	return r.retval;
}

/* Is PKT_CTX's hand-off word clear on every CPU? */
static bool handoff_clear(void)
{
	int n = libbpf_num_possible_cpus();
	struct es_pkt_ctx *v = calloc((size_t)n, sizeof(*v));
	__u32 zero = 0;
	bool clear = true;

	cr_assert_not_null(v);
	cr_assert_eq(bpf_map_lookup_elem(bpf_map__fd(fw->maps.pkt_ctx), &zero, v), 0);
	for (int i = 0; i < n; i++)
		clear = clear && !v[i].parsed;
	free(v);
	return clear;
}

static uint64_t reason(int prog, int r)
{
	return kt_percpu(bpf_map__fd(fw->maps.es_reasons), (__u32)(prog * ES_REASON_STRIDE + r));
}

static void v4_mapped(const char *s, uint8_t out[16])
{
	memset(out, 0, 16);
	out[10] = out[11] = 0xff;
	cr_assert_eq(inet_pton(AF_INET, s, out + 12), 1);
}

static void cidr(const char *s, struct es_cidr *c)
{
	char why[64];

	cr_assert_eq(es_cidr_parse(s, c, why, sizeof(why)), 0, "%s", why);
}

/* The owners of a prefix in the coordinator's table, "" when absent. */
static void owners_of(const char *want, char *buf, size_t len)
{
	json_t *all = fw_lpm_list(NULL), *e;
	size_t i;

	buf[0] = '\0';
	json_array_foreach (all, i, e) {
		json_t *o;
		size_t k;

		if (strcmp(json_string_value(json_object_get(e, "cidr")), want))
			continue;
		json_array_foreach (json_object_get(e, "owners"), k, o) {
			strncat(buf, k ? "," : "", len - strlen(buf) - 1);
			strncat(buf, json_string_value(o), len - strlen(buf) - 1);
		}
	}
	json_decref(all);
}

static bool map_empty(int fd)
{
	struct es_addr16 k;

	return bpf_map_get_next_key(fd, NULL, &k) != 0;
}

/*
 * The firewall hands its parse to xdp_ratelimit through PKT_CTX; the word
 * saying so never outlives the packet, whether xdp_ratelimit took it or the
 * slot was empty, so a program that later runs as the head never takes an
 * old packet's parse for its own.
 */
Test(xdp_chain, parse_handoff_never_outlives_the_packet)
{
	__u32 slot = ES_XDP_SLOT_RATELIMIT, zero = 0, flags = ES_RL_HAS_DEFAULT,
	      idx = ES_RL_G_FLAGS;
	struct es_rl_config c = {.ns_per_token = SEC, .burst = 1, .action = ES_RL_ACT_DROP};
	__u64 t = 5 * SEC;

	cr_assert_eq(es_rl_default_put(bpf_map__fd(rl->maps.rl_globals), &c), 0);
	cr_assert_eq(es_rl_global_put(bpf_map__fd(rl->maps.rl_globals), idx, flags), 0);
	cr_assert_eq(bpf_map_update_elem(bpf_map__fd(rl->maps.rl_test_clock), &zero, &t, 0), 0);
	/* Taken: xdp_ratelimit limits on the firewall's parse (burst 1 per source). */
	cr_expect_eq(run_fw("198.51.100.7"), XDP_PASS);
	cr_expect(handoff_clear(), "xdp_ratelimit took the parse");
	cr_expect_eq(run_fw("198.51.100.7"), XDP_DROP, "limited on the handed-over parse");
	cr_expect_eq(run_fw("198.51.100.8"), XDP_PASS, "another source: its own bucket");
	/* Not taken: the slot is empty. */
	cr_assert_eq(bpf_map_delete_elem(bpf_map__fd(fw->maps.xdp_prog_array), &slot), 0);
	cr_expect_eq(run_fw("198.51.100.9"), XDP_PASS);
	cr_expect(handoff_clear(), "the firewall takes its hand-off back when no one took it");
	/* xdp_ratelimit as the head now parses what it is given. */
	cr_expect_eq(run_rl("198.51.100.9"), XDP_PASS, "198.51.100.9's first packet");
	cr_expect_eq(run_rl("198.51.100.9"), XDP_DROP, "its second, over the burst");
	cr_expect_eq(run_rl("198.51.100.8"), XDP_DROP, "198.51.100.8 already spent its burst");
}

Test(xdp_chain, firewall_tail_calls_ratelimit_in_slot_0)
{
	struct es_rl_config c = {.ns_per_token = SEC,
				 .burst = 3,
				 .algorithm = ES_RL_ALGO_TOKEN_BUCKET,
				 .action = ES_RL_ACT_DROP};
	__u32 slot = ES_XDP_SLOT_RATELIMIT, flags = ES_RL_HAS_DEFAULT, idx = ES_RL_G_FLAGS;
	__u64 t = 5 * SEC;
	__u32 zk = 0;

	cr_assert_eq(es_rl_default_put(bpf_map__fd(rl->maps.rl_globals), &c), 0);
	cr_assert_eq(es_rl_global_put(bpf_map__fd(rl->maps.rl_globals), idx, flags), 0);
	cr_assert_eq(bpf_map_update_elem(bpf_map__fd(rl->maps.rl_test_clock), &zk, &t, 0), 0);
	/* 1/s with a burst of 3, all at one instant: the fourth is over. */
	for (int i = 0; i < 3; i++)
		cr_expect_eq(run_fw("198.51.100.7"), XDP_PASS, "packet %d", i);
	cr_expect_eq(run_fw("198.51.100.7"), XDP_DROP, "the limit of xdp_ratelimit behind it");
	cr_expect_eq(reason(ES_PROG_XDP_FIREWALL, ES_R_FW_DEFAULT_PASS) +
			 reason(ES_PROG_XDP_FIREWALL, ES_R_FW_RULE_PASS),
		     4, "the firewall passed all four");
	cr_expect_eq(reason(ES_PROG_XDP_RATELIMIT, ES_R_RL_DROP), 1);
	cr_expect_eq(kt_percpu(bpf_map__fd(rl->maps.ratelimit_metrics), ES_RL_M_TOTAL_SEEN), 4);
	/* Rate limiting off (slot emptied): the firewall alone passes. */
	cr_assert_eq(bpf_map_delete_elem(bpf_map__fd(fw->maps.xdp_prog_array), &slot), 0);
	cr_expect_eq(run_fw("198.51.100.7"), XDP_PASS);
	cr_expect_eq(kt_percpu(bpf_map__fd(rl->maps.ratelimit_metrics), ES_RL_M_TOTAL_SEEN), 4);
}

Test(xdp_chain, ddos_autoblock_through_the_lpm_list_expires_only_its_own)
{
	uint8_t a66[16], a67[16];
	struct es_cidr c66;
	char owners[64];

	es_prog_status_set("xdp_firewall", true);
	v4_mapped("198.51.100.66", a66);
	v4_mapped("198.51.100.67", a67);
	cidr("198.51.100.66/32", &c66);
	/* Another owner (IPS) blocks .66 already. */
	cr_assert_eq(fw_lpm_add("ips", &c66, false, ES_FW_ACT_DROP), 0);
	cr_assert_eq(ddos_autoblock_add(a66, DDOS_SYN_FLOOD, es_mono_ns() + 2 * SEC), 0);
	cr_assert_eq(ddos_autoblock_add(a67, DDOS_SYN_FLOOD, es_mono_ns() + 2 * SEC), 0);
	cr_expect_eq(ddos_mitigations_count(), 2);
	owners_of("198.51.100.66/32", owners, sizeof(owners));
	cr_expect_str_eq(owners, "ips,ddos");
	owners_of("198.51.100.67/32", owners, sizeof(owners));
	cr_expect_str_eq(owners, "ddos");
	cr_expect(map_empty(bpf_map__fd(rl->maps.ddos_block)),
		  "with xdp_firewall running the own map stays empty");
	cr_expect_eq(run_fw("198.51.100.66"), XDP_DROP);
	cr_expect_eq(run_fw("198.51.100.67"), XDP_DROP);
	cr_expect_eq(reason(ES_PROG_XDP_FIREWALL, ES_R_FW_LPM_DROP), 2, "dropped by the LPM list");
	cr_expect_eq(run_fw("198.51.100.68"), XDP_PASS);

	cr_expect_eq(ddos_mitigations_expire(es_mono_ns()), 0, "not yet");
	cr_expect_eq(ddos_mitigations_expire(es_mono_ns() + 3 * SEC), 2);
	owners_of("198.51.100.66/32", owners, sizeof(owners));
	cr_expect_str_eq(owners, "ips", "the other owner's block stays");
	owners_of("198.51.100.67/32", owners, sizeof(owners));
	cr_expect_str_eq(owners, "", "ours alone: gone");
	cr_expect_eq(run_fw("198.51.100.66"), XDP_DROP);
	cr_expect_eq(run_fw("198.51.100.67"), XDP_PASS);
	fw_lpm_remove_owner("ips");
}

Test(xdp_chain, ddos_autoblock_without_the_firewall_uses_its_own_map)
{
	uint8_t a66[16], a67[16];
	__u32 idx = ES_RL_G_BLOCKS, blocks = 0;
	char owners[64];

	es_prog_status_set("xdp_firewall", false);
	v4_mapped("198.51.100.66", a66);
	v4_mapped("198.51.100.67", a67);
	cr_assert_eq(ddos_autoblock_add(a66, DDOS_ICMP_FLOOD, 0), 0);
	cr_expect_not(map_empty(bpf_map__fd(rl->maps.ddos_block)));
	cr_assert_eq(es_rl_global_get(bpf_map__fd(rl->maps.rl_globals), idx, &blocks), 0);
	cr_expect_eq(blocks, 1);
	cr_expect_eq(run_rl("198.51.100.66"), XDP_DROP, "xdp_ratelimit as the head drops it");
	cr_expect_eq(reason(ES_PROG_XDP_RATELIMIT, ES_R_DDOS_BLOCKED), 1);
	owners_of("198.51.100.66/32", owners, sizeof(owners));
	cr_expect_str_eq(owners, "ddos", "recorded for the firewall when it loads");
	/* The firewall starts: the copy leaves ddos_block at the next mitigation or tick. */
	es_prog_status_set("xdp_firewall", true);
	cr_assert_eq(ddos_autoblock_add(a67, DDOS_ICMP_FLOOD, es_mono_ns() + SEC), 0);
	cr_expect(map_empty(bpf_map__fd(rl->maps.ddos_block)));
	cr_assert_eq(es_rl_global_get(bpf_map__fd(rl->maps.rl_globals), idx, &blocks), 0);
	cr_expect_eq(blocks, 0);
	cr_expect_eq(run_fw("198.51.100.66"), XDP_DROP);
	cr_expect_eq(ddos_mitigations_expire(es_mono_ns() + 2 * SEC), 1, "until the attack ends");
	cr_expect_eq(ddos_mitigations_count(), 1);
}
