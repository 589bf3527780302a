// SPDX-License-Identifier: AGPL-3.0-only
/* The `nat:` section (network.md §4.1): validation texts, the spec example,
 * and compilation (priority order, families, 1:1 into both lists, ports). */
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>

#include "agent/domain.h"
#include "domains/nat/nat_rules.h"
#include "unit.h"

static const struct nat_cfg *nat_of(const struct es_config *c)
{
	return es_config_domain(c, "nat");
}

static int fake_ifindex(const char *name)
{
	return !strcmp(name, "wan0") ? 7 : 0;
}

Test(nat_cfg, spec_example)
{
	char err[1024];
	struct es_config *c =
	    unit_cfg(MIN_AGENT "nat:\n"
			       "  enabled: true\n"
			       "  snat_rules:\n"
			       "    - { id: lan-out, type: masquerade, interface: wan0, "
			       "match_src: \"192.168.50.0/24\",\n"
			       "        port_range: \"20000-59999\" }\n"
			       "  dnat_rules:\n"
			       "    - { id: cam, type: port_forward, ext_port: \"8554-8556\", "
			       "internal_addr: \"192.168.50.20\",\n"
			       "        int_port: \"554-556\", match_protocol: tcp }\n",
		     err, sizeof(err));
	const struct nat_cfg *n;
	struct nat_compiled *out = malloc(sizeof(*out));

	cr_assert(c, "%s", err);
	n = nat_of(c);
	cr_assert_eq(n->n_rules, 2);
	cr_expect_str_eq(n->rules[0].id, "cam", "DNAT rules come first");
	cr_expect_eq(n->rules[0].kind, NAT_K_PORT_FORWARD);
	cr_expect_eq(n->rules[1].kind, NAT_K_MASQUERADE);
	nat_compile(n, fake_ifindex, out);
	cr_expect_eq(out->skipped, 0);
	cr_expect_eq(out->n_dnat4, 1, "port_forward to an IPv4 address: IPv4 only");
	cr_expect_eq(out->n_dnat6, 0);
	cr_expect_eq(out->dnat4[0].match_dst_port_start, 8554);
	cr_expect_eq(out->dnat4[0].match_dst_port_end, 8556);
	cr_expect_eq(out->dnat4[0].nat_port_start, 554);
	cr_expect_eq(out->dnat4[0].nat_port_end, 556);
	cr_expect_eq(out->dnat4[0].match_protocol, IPPROTO_TCP);
	cr_expect_eq(out->dnat4[0].nat_addr, 0xC0A83214);
	cr_expect_eq(out->n_snat4, 1);
	cr_expect_eq(out->snat4[0].nat_type, ES_NAT_T_MASQUERADE);
	cr_expect_eq(out->snat4[0].nat_interface, 7);
	cr_expect_eq(out->snat4[0].match_src_ip, 0xC0A83200);
	cr_expect_eq(out->snat4[0].match_src_mask, 0xFFFFFF00);
	cr_expect_eq(out->snat4[0].nat_port_start, 20000);
	cr_expect_eq(out->snat4[0].nat_port_end, 59999);
	free(out);
	es_config_put(c);
}

Test(nat_cfg, priority_order_families_and_one_to_one)
{
	char err[1024];
	struct es_config *c =
	    unit_cfg(MIN_AGENT "nat:\n"
			       "  enabled: true\n"
			       "  dnat_rules:\n"
			       "    - { id: late, type: dnat, translated_addr: 10.0.0.2, "
			       "priority: 50 }\n"
			       "    - { id: off, type: dnat, translated_addr: 10.0.0.9, "
			       "priority: 1, enabled: false }\n"
			       "    - { id: early, type: dnat, translated_addr: 10.0.0.1, "
			       "priority: 10, translated_port: 8080 }\n"
			       "    - { id: tie, type: dnat, translated_addr: 10.0.0.3, "
			       "priority: 50 }\n"
			       "    - { id: v6, type: dnat, translated_addr: '2001:db8::5' }\n"
			       "    - { id: redir, type: redirect, translated_port: 5353 }\n"
			       "  snat_rules:\n"
			       "    - { id: map, type: one_to_one, external_addr: 203.0.113.5, "
			       "internal_addr: 10.0.0.5 }\n",
		     err, sizeof(err));
	struct nat_compiled *out = malloc(sizeof(*out));

	cr_assert(c, "%s", err);
	nat_compile(nat_of(c), fake_ifindex, out);
	cr_assert_eq(out->n_dnat4, 5, "early, late, tie, redir (both families), 1:1 in");
	cr_expect_eq(out->dnat4[0].nat_addr, 0x0A000001, "priority 10 first");
	cr_expect_eq(out->dnat4[0].nat_port_start, 8080);
	cr_expect_eq(out->dnat4[1].nat_addr, 0x0A000002, "ties keep config order");
	cr_expect_eq(out->dnat4[2].nat_addr, 0x0A000003);
	cr_expect_eq(out->dnat4[3].nat_type, ES_NAT_T_REDIRECT);
	cr_expect_eq(out->dnat4[4].nat_type, ES_NAT_T_ONE_TO_ONE);
	cr_expect_eq(out->dnat4[4].match_dst_ip, 0xCB007105);
	cr_expect_eq(out->dnat4[4].nat_addr, 0x0A000005);
	cr_expect_eq(out->n_dnat6, 2, "v6 and the address-less redirect");
	cr_expect_eq(out->dnat6[0].nat_addr[0], 0x20010db8);
	cr_expect_eq(out->n_snat4, 1, "the 1:1 outbound half");
	cr_expect_eq(out->snat4[0].match_src_ip, 0x0A000005);
	cr_expect_eq(out->snat4[0].nat_addr, 0xCB007105);
	free(out);
	es_config_put(c);
}

Test(nat_cfg, rejections)
{
	static const struct {
		const char *rule, *want;
	} cases[] = {
	    {"{ id: a, type: dnat }",
	     "validation error: nat.dnat_rules[0].translated_addr: type dnat requires "
	     "translated_addr"},
	    {"{ id: a, type: snat }", "type snat requires translated_addr"},
	    {"{ id: a, type: masquerade }", "type masquerade requires interface"},
	    {"{ id: a, type: redirect }", "type redirect requires translated_port"},
	    {"{ id: a, type: one_to_one, external_addr: 1.2.3.4 }",
	     "type one_to_one requires internal_addr"},
	    {"{ id: a, type: port_forward, ext_port: '80-81', internal_addr: 10.0.0.1 }",
	     "type port_forward requires int_port"},
	    {"{ id: a, type: port_forward, ext_port: '80-81', internal_addr: 10.0.0.1, "
	     "int_port: '90-92' }",
	     "nat.dnat_rules[0].int_port: int_port covers 3 ports but ext_port 2"},
	    {"{ id: a, type: dnat, translated_addr: 10.0.0.1, priority: 0 }",
	     "nat.dnat_rules[0].priority: invalid priority: must be > 0"},
	    {"{ id: a, type: DNAT, translated_addr: 10.0.0.1 }",
	     "invalid value 'DNAT' for field 'nat.dnat_rules[0].type': expected one of snat, "
	     "masquerade, dnat, port_forward, redirect, one_to_one"},
	    {"{ id: a, type: dnat, translated_addr: 10.0.0.300 }",
	     "invalid IP address '10.0.0.300'"},
	    {"{ id: a, type: dnat, translated_addr: 10.0.0.1, match_dst: '10.0.0.0/33' }",
	     "invalid CIDR notation '10.0.0.0/33'"},
	    {"{ id: a, type: dnat, translated_addr: 10.0.0.1, match_protocol: sctp }",
	     "invalid value 'sctp' for field 'nat.dnat_rules[0].match_protocol'"},
	    {"{ id: a, type: dnat, translated_addr: 10.0.0.1, match_src: '2001:db8::/32' }",
	     "nat.dnat_rules[0].match_src: mixed address families"},
	    {"{ id: a, type: dnat, translated_addr: 10.0.0.1, match_dst_port: '90-80' }",
	     "invalid port range '90-80': start port 90 is greater than end port 80"},
	    {"{ id: 'a b', type: dnat, translated_addr: 10.0.0.1 }", "invalid id 'a b'"},
	    {"{ type: dnat, translated_addr: 10.0.0.1 }", "missing field `id`"},
	    {"{ id: a }", "missing field `type`"},
	};
	char yaml[1024], err[1024];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct es_config *c;

		snprintf(yaml, sizeof(yaml), MIN_AGENT "nat:\n  dnat_rules:\n    - %s\n",
			 cases[i].rule);
		c = unit_cfg(yaml, err, sizeof(err));
		cr_expect_null(c, "accepted: %s", cases[i].rule);
		if (c) {
			es_config_put(c);
			continue;
		}
		cr_expect(strstr(err, cases[i].want), "%s\n  got:  %s\n  want: %s", cases[i].rule,
			  err, cases[i].want);
	}
	snprintf(yaml, sizeof(yaml),
		 MIN_AGENT "nat:\n  snat_rules:\n    - { id: x, type: snat, translated_addr: "
			   "10.0.0.1 }\n    - { id: x, type: snat, translated_addr: 10.0.0.2 }\n");
	cr_expect_null(unit_cfg(yaml, err, sizeof(err)));
	cr_expect(strstr(err, "nat.snat_rules[1].id: duplicate rule: x"), "%s", err);
}
