// SPDX-License-Identifier: AGPL-3.0-only
/*
 * Policy routing targets (network.md §2.7): FW_ROUTE_TARGETS written for the
 * firewall's route_to / reply_to / dup_to bindings and re-pointed when a
 * gateway fails its health checks (thresholds) and back when it recovers.
 * Probe outcomes are fed directly: no traffic leaves the test.
 */
#include <net/if.h>

#include "kt.h"
#include "agent/config.h"
#include "agent/domain.h"
#include "domains/routing/routing.h"
#include "domains/routing/routing_int.h"
#include "skel/conntrack.skel.h"

static struct es_conntrack *sk; /* declares (and pins) fw_route_targets */
static struct es_config *cfg;
static int dom;

static void setup(void)
{
	KT_OPEN_OPTS(oo);
	struct es_error e;
	/* Two IPv4 gateways on loopback (it exists everywhere), one IPv6. */
	static const char yaml[] =
	    "agent: { interfaces: [lo] }\n"
	    "routing:\n"
	    "  enabled: true\n"
	    "  gateways:\n"
	    "    - { id: 1, name: primary, interface: lo, gateway_ip: 198.51.100.7, priority: 10,\n"
	    "        health_check: { failure_threshold: 3, recovery_threshold: 2 } }\n"
	    "    - { id: 2, name: backup, interface: lo, gateway_ip: 198.51.100.8, priority: 20 }\n"
	    "    - { id: 3, name: v6, interface: lo, gateway_ip: '2001:db8::7' }\n";

	kt_setup();
	sk = es_conntrack__open_opts(&oo);
	cr_assert_not_null(sk);
	cr_assert_eq(es_kernel_prepare_obj(sk->obj), 0);
	cr_assert_eq(es_conntrack__load(sk), 0);
	cfg = es_config_parse(yaml, sizeof(yaml) - 1, "t.yaml", &e);
	cr_assert_not_null(cfg, "%s", e.msg);
	dom = es_domain_index("routing");
	cr_assert_geq(dom, 0);
	/* Start without health threads: the probed gateway's thread would send
	 * real echo requests; this test feeds outcomes itself. */
	((struct routing_cfg *)cfg->dcfg[dom])->gw[0].probed = false;
	cr_assert_eq(es_domains[dom]->start(cfg->dcfg[dom]), 0);
}

static void teardown(void)
{
	es_domains[dom]->stop();
	es_config_put(cfg);
	es_conntrack__destroy(sk);
	kt_teardown();
}

TestSuite(routing, .init = setup, .fini = teardown);

static int target(__u32 rule_id, struct es_route_target *t)
{
	return bpf_map_lookup_elem(bpf_map__fd(sk->maps.fw_route_targets), &rule_id, t);
}

Test(routing, failover_repoints_route_to_and_recovers)
{
	struct routing_binding b[] = {
	    {.rule_id = 100, .kind = ROUTING_ROUTE_TO, .gateway = "1"},
	    {.rule_id = 101, .kind = ROUTING_ROUTE_TO, .gateway = "198.51.100.8"},
	    {.rule_id = 102, .kind = ROUTING_DUP_TO, .interface = "lo"},
	    {.rule_id = 103, .kind = ROUTING_REPLY_TO},
	    {.rule_id = 104, .kind = ROUTING_ROUTE_TO, .gateway = "3"},
	};
	struct es_route_target t;
	struct routing_gw_view v[8];
	size_t n;

	cr_assert_eq(routing_set_bindings(b, 5), 0);
	cr_assert_eq(target(100, &t), 0);
	cr_expect_eq(t.ifindex, if_nametoindex("lo"));
	cr_expect_eq(t.family, 4);
	cr_expect_eq(t.gw[0], 0xC6336407, "gateway 1 by id");
	cr_assert_eq(target(101, &t), 0);
	cr_expect_eq(t.gw[0], 0xC6336408, "gateway 2 by address");
	cr_assert_eq(target(102, &t), 0);
	cr_expect_eq(t.ifindex, if_nametoindex("lo"), "dup_to: the mirror interface");
	cr_expect_eq(t.family, 0);
	cr_assert_eq(target(103, &t), 0);
	cr_expect_eq(t.ifindex, 0, "reply_to: true = the ingress interface");
	cr_assert_eq(target(104, &t), 0);
	cr_expect_eq(t.family, 6);
	cr_expect_eq(t.gw[0], 0x20010db8);

	/* Two failures: degraded, still used; the third: down, route_to moves. */
	cr_assert_eq(routing_record_probe(1, -ETIMEDOUT), 0);
	cr_assert_eq(routing_record_probe(1, -ETIMEDOUT), 0);
	routing_snapshot(v, &n, 8);
	cr_expect_eq(v[0].status, ROUTING_DEGRADED);
	cr_assert_eq(target(100, &t), 0);
	cr_expect_eq(t.gw[0], 0xC6336407);
	cr_assert_eq(routing_record_probe(1, -ETIMEDOUT), 0);
	routing_snapshot(v, &n, 8);
	cr_expect_eq(v[0].status, ROUTING_DOWN);
	cr_assert_eq(target(100, &t), 0);
	cr_expect_eq(t.gw[0], 0xC6336408, "failed over to the backup (same family)");
	/* One success is not enough (recovery_threshold 2). */
	cr_assert_eq(routing_record_probe(1, 0), 0);
	cr_assert_eq(target(100, &t), 0);
	cr_expect_eq(t.gw[0], 0xC6336408);
	cr_assert_eq(routing_record_probe(1, 0), 0);
	routing_snapshot(v, &n, 8);
	cr_expect_eq(v[0].status, ROUTING_HEALTHY);
	cr_assert_eq(target(100, &t), 0);
	cr_expect_eq(t.gw[0], 0xC6336407, "back on the primary");

	/* Bindings that go away take their targets with them. */
	cr_assert_eq(routing_set_bindings(b, 1), 0);
	cr_expect_eq(target(100, &t), 0);
	cr_expect_neq(target(101, &t), 0);
	cr_expect_neq(target(104, &t), 0);
	cr_expect_eq(routing_record_probe(9, 0), -ENOENT);
}

Test(routing, unknown_gateways_and_dropped_bindings_remove_targets)
{
	struct routing_binding b = {.rule_id = 7, .kind = ROUTING_ROUTE_TO, .gateway = "3"};
	struct es_route_target t;

	/* Known gateway: resolved; unknown one: no target (ordinary routing). */
	cr_assert_eq(routing_set_bindings(&b, 1), 0);
	cr_expect_eq(target(7, &t), 0);
	b.rule_id = 8;
	snprintf(b.gateway, sizeof(b.gateway), "203.0.113.99");
	cr_assert_eq(routing_set_bindings(&b, 1), 0);
	cr_expect_neq(target(8, &t), 0, "an unknown gateway: ordinary routing");
	cr_expect_neq(target(7, &t), 0, "the previous binding is gone");
}
