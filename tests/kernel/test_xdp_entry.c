// SPDX-License-Identifier: AGPL-3.0-only
/* xdp_firewall as the XDP entry: counters by outcome and reason, the feature
 * flag, and the tail-call chain. */
#include "kt.h"
#include "abi/firewall.h"
#include "skel/firewall.skel.h"
#include "skel/parse_probe.skel.h"

static struct es_firewall *fw;

static void setup(void)
{
	KT_OPEN_OPTS(oo);

	kt_setup();
	fw = es_firewall__open_opts(&oo);
	cr_assert_not_null(fw);
	cr_assert_eq(es_kernel_prepare_obj(fw->obj), 0);
	cr_assert_eq(es_firewall__load(fw), 0, "xdp_firewall does not load on this kernel");
	cr_assert_eq(es_kernel_set_feature(ES_FEAT_FIREWALL, true), 0);
}

static void teardown(void)
{
	es_firewall__destroy(fw);
	kt_teardown();
}

TestSuite(xdp_entry, .init = setup, .fini = teardown);

static uint64_t metric(int idx)
{
	return kt_percpu(bpf_map__fd(fw->maps.fw_metrics), (__u32)idx);
}

static uint64_t reason(int r)
{
	return kt_percpu(bpf_map__fd(fw->maps.es_reasons),
			 ES_PROG_XDP_FIREWALL * ES_REASON_STRIDE + (__u32)r);
}

static void v4_tcp(struct pb *p)
{
	pb_init(p);
	pb_eth(p, PB_ETH_IP);
	pb_ipv4(p, "198.51.100.1", "198.51.100.2", IPPROTO_TCP, 0, 0);
	pb_tcp(p, 1, 80, TH_SYN);
	pb_finish(p);
}

Test(xdp_entry, counts_each_outcome_once)
{
	int prog = bpf_program__fd(fw->progs.xdp_firewall);
	struct kt_run r;
	struct pb p;

	v4_tcp(&p);
	kt_xdp(prog, &p, &r);
	cr_expect_eq(r.retval, XDP_PASS);
	cr_expect_eq(r.out_len, p.len);
	cr_expect_arr_eq(r.out, p.buf, p.len, "frame altered");

	pb_init(&p); /* ARP */
	pb_eth(&p, PB_ETH_ARP);
	pb_payload(&p, 28, 0);
	kt_xdp(prog, &p, &r);
	cr_expect_eq(r.retval, XDP_PASS);

	v4_tcp(&p); /* truncated TCP header: counted as an error and passed */
	p.len = 14 + 20 + 6;
	kt_xdp(prog, &p, &r);
	cr_expect_eq(r.retval, XDP_PASS);

	v4_tcp(&p); /* bogus IHL */
	p.buf[14] = 0x43;
	kt_xdp(prog, &p, &r);
	cr_expect_eq(r.retval, XDP_PASS);

	cr_expect_eq(metric(ES_FW_M_TOTAL_SEEN), 4);
	cr_expect_eq(metric(ES_FW_M_PASSED), 2);
	cr_expect_eq(metric(ES_FW_M_ERRORS), 2);
	cr_expect_eq(metric(ES_FW_M_DROPPED), 0);
	cr_expect_eq(metric(ES_FW_M_PASSED) + metric(ES_FW_M_DROPPED) + metric(ES_FW_M_ERRORS),
		     metric(ES_FW_M_TOTAL_SEEN));
	cr_expect_eq(reason(ES_R_FW_DEFAULT_PASS), 1, "no rules: the default policy passes");
	cr_expect_eq(reason(ES_R_NON_IP), 1);
	cr_expect_eq(reason(ES_R_TRUNC_L4), 1);
	cr_expect_eq(reason(ES_R_BAD_IHL), 1);
}

Test(xdp_entry, feature_flag_off_passes_without_parsing)
{
	struct kt_run r;
	struct pb p;

	cr_assert_eq(es_kernel_set_feature(ES_FEAT_FIREWALL, false), 0);
	v4_tcp(&p);
	p.len = 20; /* would be an error if parsed */
	kt_xdp(bpf_program__fd(fw->progs.xdp_firewall), &p, &r);
	cr_expect_eq(r.retval, XDP_PASS);
	cr_expect_eq(reason(ES_R_DISABLED), 1);
	cr_expect_eq(metric(ES_FW_M_ERRORS), 0);
	cr_expect_eq(metric(ES_FW_M_PASSED), 1);
}

Test(xdp_entry, tail_calls_the_next_slot)
{
	KT_OPEN_OPTS(oo);
	struct es_parse_probe *probe = es_parse_probe__open_opts(&oo);
	int slot = ES_XDP_SLOT_LOADBALANCER, fd;
	struct kt_run r;
	struct pb p;

	cr_assert_not_null(probe);
	cr_assert_eq(es_parse_probe__load(probe), 0);
	fd = bpf_program__fd(probe->progs.xdp_slot_drop);
	/* Slot 0 empty, slot 1 filled: the entry falls through to slot 1. */
	cr_assert_eq(bpf_map_update_elem(bpf_map__fd(fw->maps.xdp_prog_array), &slot, &fd, 0), 0);
	v4_tcp(&p);
	kt_xdp(bpf_program__fd(fw->progs.xdp_firewall), &p, &r);
	cr_expect_eq(r.retval, XDP_DROP, "slot 1 was not reached");
	cr_assert_eq(bpf_map_delete_elem(bpf_map__fd(fw->maps.xdp_prog_array), &slot), 0);
	kt_xdp(bpf_program__fd(fw->progs.xdp_firewall), &p, &r);
	cr_expect_eq(r.retval, XDP_PASS, "empty chain must pass");
	es_parse_probe__destroy(probe);
}

Test(xdp_entry, maps_are_pinned_in_the_pin_directory)
{
	char path[256];

	for (const char *const *n = (const char *const[]){"es_reasons", "config_flags", "events",
							  "fw_metrics", "xdp_prog_array", NULL};
	     *n; n++) {
		snprintf(path, sizeof(path), "%s/%s", kt_pin, *n);
		cr_expect_eq(access(path, F_OK), 0, "%s not pinned", path);
	}
}
