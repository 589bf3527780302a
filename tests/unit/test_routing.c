// SPDX-License-Identifier: AGPL-3.0-only
/* The `routing:` section (network.md §2.7): defaults, health check forms and
 * the rejections. */
#include <criterion/criterion.h>
#include <stdio.h>

#include "agent/domain.h"
#include "domains/routing/routing_int.h"
#include "unit.h"

Test(routing_cfg, defaults_and_health_check_forms)
{
	char err[1024];
	struct es_config *c = unit_cfg(
	    MIN_AGENT "routing:\n  enabled: true\n  gateways:\n"
		      "    - { id: 1, name: a, interface: eth1, gateway_ip: 203.0.113.1 }\n"
		      "    - { id: 2, interface: eth2, gateway_ip: '2001:db8::1',\n"
		      "        health_check: { protocol: 'tcp:443' } }\n"
		      "    - { id: 3, interface: eth3, gateway_ip: 198.51.100.1,\n"
		      "        health_check: { protocol: 'udp:53', target: 198.51.100.9 } }\n",
	    err, sizeof(err));
	const struct routing_cfg *r;

	cr_assert(c, "%s", err);
	r = es_config_domain(c, "routing");
	cr_assert_eq(r->n_gw, 3);
	cr_expect_eq(r->gw[0].priority, 100);
	cr_expect(r->gw[0].enabled);
	cr_expect_not(r->gw[0].probed, "no health_check: never probed, always healthy");
	cr_expect(r->gw[1].probed);
	cr_expect_eq(r->gw[1].proto, HEALTH_TCP);
	cr_expect_eq(r->gw[1].tcp_port, 443);
	cr_expect_eq(r->gw[1].interval_secs, 10);
	cr_expect_eq(r->gw[1].timeout_secs, 5);
	cr_expect_eq(r->gw[1].failure_threshold, 3);
	cr_expect_eq(r->gw[1].recovery_threshold, 2);
	cr_expect_eq(r->gw[1].target.family, 6, "target defaults to the gateway");
	cr_expect_eq(r->gw[2].proto, HEALTH_ICMP, "an invalid protocol falls back to icmp");
	cr_expect_eq(r->gw[2].target.b[15], 9);
	cr_assert_eq(c->n_warnings, 1);
	cr_expect(strstr(c->warnings[0], "routing.gateways[2].health_check.protocol"), "%s",
		  c->warnings[0]);
	es_config_put(c);
}

Test(routing_cfg, rejections)
{
	static const struct {
		const char *gw, *want;
	} cases[] = {
	    {"{ interface: e, gateway_ip: 10.0.0.1 }", "missing field `id`"},
	    {"{ id: 1, gateway_ip: 10.0.0.1 }", "missing field `interface`"},
	    {"{ id: 1, interface: e }", "missing field `gateway_ip`"},
	    {"{ id: 300, interface: e, gateway_ip: 10.0.0.1 }", "expected u8"},
	    {"{ id: 1, interface: e, gateway_ip: 10.0.0.256 }",
	     "routing.gateways[0].gateway_ip: invalid IP address '10.0.0.256'"},
	    {"{ id: 1, interface: e, gateway_ip: 10.0.0.1, health_check: { interval_secs: 0 } }",
	     "routing.gateways[0].health_check.interval_secs: must be greater than 0"},
	    {"{ id: 1, interface: e, gateway_ip: 10.0.0.1, health_check: { target: '::1' } }",
	     "target and gateway_ip must be of one address family"},
	};
	char yaml[512], err[1024];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct es_config *c;

		snprintf(yaml, sizeof(yaml), MIN_AGENT "routing:\n  gateways:\n    - %s\n",
			 cases[i].gw);
		c = unit_cfg(yaml, err, sizeof(err));
		cr_expect_null(c, "accepted: %s", cases[i].gw);
		if (c) {
			es_config_put(c);
			continue;
		}
		cr_expect(strstr(err, cases[i].want), "%s\n got: %s", cases[i].gw, err);
	}
	cr_expect_null(unit_cfg(MIN_AGENT "routing:\n  gateways:\n"
					  "    - { id: 4, interface: a, gateway_ip: 10.0.0.1 }\n"
					  "    - { id: 4, interface: b, gateway_ip: 10.0.0.2 }\n",
				err, sizeof(err)));
	cr_expect(strstr(err, "routing.gateways[1].id: duplicate gateway id 4"), "%s", err);
}
