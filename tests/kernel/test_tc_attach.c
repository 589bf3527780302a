// SPDX-License-Identifier: AGPL-3.0-only
/* TC attachment rules: our slot, atomic replacement, foreign filters untouched.
 * Each test runs in its own process inside a private network namespace. */
#define _GNU_SOURCE
#include <net/if.h>
#include <sched.h>
#include <stdlib.h>

#include "kt.h"
#include "skel/parse_probe.skel.h"

static struct es_parse_probe *sk;
static int ifx;

static void setup(void)
{
	KT_OPEN_OPTS(oo);

	cr_assert_eq(unshare(CLONE_NEWNET), 0, "unshare: %s", strerror(errno));
	cr_assert_eq(system("ip link add kta0 type veth peer name kta1 && ip link set kta0 up &&"
			    " ip link set kta1 up"),
		     0);
	ifx = (int)if_nametoindex("kta0");
	cr_assert_gt(ifx, 0);
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

TestSuite(tc_attach, .init = setup, .fini = teardown);

static __u32 prog_at(__u32 handle, __u32 prio)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifx, .attach_point = BPF_TC_INGRESS);
	LIBBPF_OPTS(bpf_tc_opts, q, .handle = handle, .priority = prio);

	return bpf_tc_query(&hook, &q) == 0 ? q.prog_id : 0;
}

static __u32 id_of(struct bpf_program *p)
{
	struct bpf_prog_info info = {0};
	__u32 len = sizeof(info);

	cr_assert_eq(bpf_obj_get_info_by_fd(bpf_program__fd(p), &info, &len), 0);
	return info.id;
}

Test(tc_attach, attach_replace_detach)
{
	cr_assert_eq(
	    es_tc_attach_ifindex(ifx, ES_TC_INGRESS, 5, bpf_program__fd(sk->progs.tc_probe_a)), 0);
	cr_expect_eq(prog_at(ES_TC_HANDLE, 5), id_of(sk->progs.tc_probe_a));
	/* Same slot again with another of ours: replaced in place, not added. */
	cr_assert_eq(
	    es_tc_attach_ifindex(ifx, ES_TC_INGRESS, 5, bpf_program__fd(sk->progs.tc_probe_b)), 0);
	cr_expect_eq(prog_at(ES_TC_HANDLE, 5), id_of(sk->progs.tc_probe_b));
	cr_assert_eq(es_tc_detach_ifindex(ifx, ES_TC_INGRESS, 5), 0);
	cr_expect_eq(prog_at(ES_TC_HANDLE, 5), 0);
}

Test(tc_attach, foreign_filters_are_never_touched)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifx, .attach_point = BPF_TC_INGRESS);
	LIBBPF_OPTS(bpf_tc_opts, f1, .handle = 7, .priority = 5,
		    .prog_fd = bpf_program__fd(sk->progs.foreign_tc));
	LIBBPF_OPTS(bpf_tc_opts, f2, .handle = ES_TC_HANDLE, .priority = 6,
		    .prog_fd = bpf_program__fd(sk->progs.foreign_tc));

	bpf_tc_hook_create(&hook);
	cr_assert_eq(bpf_tc_attach(&hook, &f1), 0);
	cr_assert_eq(bpf_tc_attach(&hook, &f2), 0);
	/* Our slot taken by a foreign program: refused, left in place. */
	cr_expect_eq(
	    es_tc_attach_ifindex(ifx, ES_TC_INGRESS, 6, bpf_program__fd(sk->progs.tc_probe_a)),
	    -EBUSY);
	cr_expect_eq(prog_at(ES_TC_HANDLE, 6), id_of(sk->progs.foreign_tc));
	cr_expect_eq(es_tc_detach_ifindex(ifx, ES_TC_INGRESS, 6), 0);
	cr_expect_eq(prog_at(ES_TC_HANDLE, 6), id_of(sk->progs.foreign_tc));
	/* Ours beside a foreign filter of the same priority, then removed alone. */
	cr_assert_eq(
	    es_tc_attach_ifindex(ifx, ES_TC_INGRESS, 5, bpf_program__fd(sk->progs.tc_probe_a)), 0);
	es_tc_detach_everything();
	cr_expect_eq(prog_at(ES_TC_HANDLE, 5), 0);
	cr_expect_eq(prog_at(7, 5), id_of(sk->progs.foreign_tc));
}
