// SPDX-License-Identifier: AGPL-3.0-only
/*
 * The firewall compiler: ordering, alert-mode downgrade, alias expansion,
 * families, scope masks, anti-lockout entries, capacity errors; and a
 * differential check of the compiled classifier (walked as the kernel walks
 * it) against the rules' definition on random rule sets and packets.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domains/firewall/fw.h"
#include "fw_test.h"

static void rule(struct fw_rule *r, const char *json)
{
	fw_test_rule(r, json);
}

static void aliases(struct fw_aliases *a, const char *json)
{
	json_error_t je;
	json_t *o = json_loads(json, 0, &je);
	struct es_cfg c;

	cr_assert_not_null(o, "bad test JSON: %s", je.text);
	es_cfg_init(&c, NULL);
	cr_assert_eq(fw_aliases_parse(&c, o, "firewall.aliases", a), 0, "%s", c.err.msg);
	es_cfg_release(&c);
	json_decref(o);
}

static void view(struct fw_pkt_view *p, const char *src, const char *dst, uint8_t proto,
		 uint16_t sport, uint16_t dport)
{
	struct es_addr a;

	memset(p, 0, sizeof(*p));
	cr_assert_eq(es_addr_parse(src, &a), 0);
	memcpy(p->src, a.b, 16);
	p->v6 = a.family == 6;
	cr_assert_eq(es_addr_parse(dst, &a), 0);
	memcpy(p->dst, a.b, 16);
	p->proto = proto;
	p->ports = proto == 6 || proto == 17;
	p->tcp = proto == 6;
	p->icmp = proto == (p->v6 ? 58 : 1);
	p->sport = sport;
	p->dport = dport;
	p->ct_state = ES_FW_CT_UNKNOWN;
	p->ifpos = 0;
}

static char *ifs2[] = {"eth0", "veth-a", NULL};

static void compile(struct fw_image *img, const struct fw_rule *rules, size_t n,
		    const struct fw_aliases *al, bool alert)
{
	struct fw_compile_in in = {
	    .rules = rules,
	    .n_rules = n,
	    .aliases = al,
	    .alert_mode = alert,
	    .ifnames = ifs2,
	    .n_ifnames = 2,
	};
	char why[256];

	cr_assert_eq(fw_compile(&in, img, why, sizeof(why)), 0, "compile failed: %s", why);
}

static const char *pos_id(const struct fw_image *img, int pos)
{
	return pos < 0 ? "(none)" : img->pos_rule[pos]->id;
}

Test(fw_compile, priority_order_with_ties_in_config_order)
{
	struct fw_rule r[4];
	struct fw_image img;
	struct fw_pkt_view p;

	rule(&r[0], "{\"id\":\"late\",\"priority\":20,\"action\":\"allow\",\"protocol\":\"tcp\"}");
	rule(&r[1], "{\"id\":\"tie-a\",\"priority\":10,\"action\":\"deny\",\"protocol\":\"tcp\"}");
	rule(&r[2], "{\"id\":\"tie-b\",\"priority\":10,\"action\":\"allow\",\"protocol\":\"tcp\"}");
	rule(&r[3], "{\"id\":\"first\",\"priority\":5,\"action\":\"log\",\"dst_port\":443}");
	for (int i = 0; i < 4; i++)
		r[i].order = (size_t)i;
	compile(&img, r, 4, NULL, false);
	cr_expect_eq(img.hdr.n_rules, 4);
	cr_expect_str_eq(img.pos_rule[0]->id, "first");
	cr_expect_str_eq(img.pos_rule[1]->id, "tie-a");
	cr_expect_str_eq(img.pos_rule[2]->id, "tie-b");
	cr_expect_str_eq(img.pos_rule[3]->id, "late");
	view(&p, "198.51.100.7", "203.0.113.1", 6, 1234, 80);
	cr_expect_str_eq(pos_id(&img, fw_image_lookup(&img, &p)), "tie-a");
	view(&p, "198.51.100.7", "203.0.113.1", 6, 1234, 443);
	cr_expect_str_eq(pos_id(&img, fw_image_lookup(&img, &p)), "first");
	view(&p, "198.51.100.7", "203.0.113.1", 17, 1234, 80);
	cr_expect_eq(fw_image_lookup(&img, &p), -1, "udp/80 matches nothing");
	fw_image_free(&img);
	for (int i = 0; i < 4; i++)
		fw_rule_free(&r[i]);
}

Test(fw_compile, alert_mode_installs_deny_as_log)
{
	struct fw_rule r[2];
	struct fw_image img;

	rule(&r[0], "{\"id\":\"d\",\"priority\":1,\"action\":\"block\",\"protocol\":\"udp\"}");
	rule(&r[1], "{\"id\":\"a\",\"priority\":2,\"action\":\"pass\"}");
	compile(&img, r, 2, NULL, true);
	cr_expect_eq(img.r4[0].action, ES_FW_ACT_LOG);
	cr_expect_eq(img.r6[0].action, ES_FW_ACT_LOG);
	cr_expect_eq(img.r4[1].action, ES_FW_ACT_PASS);
	fw_image_free(&img);
	compile(&img, r, 2, NULL, false);
	cr_expect_eq(img.r4[0].action, ES_FW_ACT_DROP);
	fw_image_free(&img);
	fw_rule_free(&r[0]);
	fw_rule_free(&r[1]);
}

Test(fw_compile, disabled_rules_are_never_installed)
{
	struct fw_rule r[2];
	struct fw_image img;

	rule(&r[0], "{\"id\":\"off\",\"priority\":1,\"action\":\"deny\",\"enabled\":false}");
	rule(&r[1], "{\"id\":\"on\",\"priority\":2,\"action\":\"deny\"}");
	compile(&img, r, 2, NULL, false);
	cr_expect_eq(img.hdr.n_rules, 1);
	cr_expect_eq(img.n_disabled, 1);
	cr_expect_str_eq(img.pos_rule[0]->id, "on");
	fw_image_free(&img);
	fw_rule_free(&r[0]);
	fw_rule_free(&r[1]);
}

Test(fw_compile, address_less_rules_apply_to_both_families)
{
	struct fw_rule r[3];
	struct fw_image img;
	struct fw_pkt_view p;

	rule(&r[0], "{\"id\":\"v6\",\"priority\":1,\"action\":\"deny\",\"protocol\":\"tcp\","
		    "\"src_ip\":\"2001:db8::/32\"}");
	rule(&r[1], "{\"id\":\"both\",\"priority\":2,\"action\":\"deny\",\"protocol\":\"udp\","
		    "\"dst_port\":5353}");
	rule(&r[2], "{\"id\":\"icmp\",\"priority\":3,\"action\":\"allow\",\"protocol\":\"icmp\"}");
	compile(&img, r, 3, NULL, false);
	cr_expect(!img.pos_fam[0][0] && img.pos_fam[1][0], "IPv6 source: IPv6 only");
	cr_expect(img.pos_fam[0][1] && img.pos_fam[1][1], "no address: both families");
	view(&p, "2001:db8::7", "2001:db8::1", 6, 1, 22);
	cr_expect_str_eq(pos_id(&img, fw_image_lookup(&img, &p)), "v6");
	view(&p, "198.51.100.7", "198.51.100.1", 6, 1, 22);
	cr_expect_eq(fw_image_lookup(&img, &p), -1, "IPv6 rule must not match IPv4");
	view(&p, "198.51.100.7", "198.51.100.1", 17, 1, 5353);
	cr_expect_str_eq(pos_id(&img, fw_image_lookup(&img, &p)), "both");
	view(&p, "2001:db8:9::7", "2001:db8::1", 17, 1, 5353);
	cr_expect_str_eq(pos_id(&img, fw_image_lookup(&img, &p)), "both");
	/* icmp means ICMPv6 on IPv6, and only ICMP on IPv4. */
	view(&p, "2001:db9::7", "2001:db8::1", 58, 0, 0);
	cr_expect_str_eq(pos_id(&img, fw_image_lookup(&img, &p)), "icmp");
	view(&p, "198.51.100.7", "198.51.100.1", 1, 0, 0);
	cr_expect_str_eq(pos_id(&img, fw_image_lookup(&img, &p)), "icmp");
	view(&p, "198.51.100.7", "198.51.100.1", 58, 0, 0);
	cr_expect_eq(fw_image_lookup(&img, &p), -1, "protocol 58 is not icmp on IPv4");
	cr_expect_eq(img.r6[2].protocol, 58);
	cr_expect_eq(img.r4[2].protocol, 1);
	fw_image_free(&img);
	for (int i = 0; i < 3; i++)
		fw_rule_free(&r[i]);
}

Test(fw_compile, aliases_expand_into_the_classifier)
{
	struct fw_aliases al;
	struct fw_rule r[3];
	struct fw_image img;
	struct fw_pkt_view p;

	aliases(
	    &al,
	    "{\"office\":{\"type\":\"ip_set\",\"values\":[\"10.0.0.0/8\",\"2001:db8:10::/48\"]},"
	    "\"web\":{\"type\":\"port_set\",\"values\":[80,\"443\",\"8000-8080\"]},"
	    "\"all\":{\"type\":\"nested\",\"aliases\":[\"office\"]}}");
	rule(&r[0], "{\"id\":\"web-in\",\"priority\":1,\"action\":\"allow\",\"protocol\":\"tcp\","
		    "\"src_alias\":\"all\",\"dst_port_alias\":\"web\"}");
	rule(&r[1],
	     "{\"id\":\"not-office\",\"priority\":2,\"action\":\"deny\",\"protocol\":\"udp\","
	     "\"src_alias\":\"office\",\"negate_source\":true}");
	rule(&r[2], "{\"id\":\"narrow\",\"priority\":3,\"action\":\"log\","
		    "\"src_ip\":\"10.1.0.0/16\",\"src_alias\":\"office\"}");
	compile(&img, r, 3, &al, false);
	view(&p, "10.1.2.3", "198.51.100.1", 6, 999, 8042);
	cr_expect_str_eq(pos_id(&img, fw_image_lookup(&img, &p)), "web-in");
	view(&p, "2001:db8:10::5", "2001:db8::1", 6, 999, 443);
	cr_expect_str_eq(pos_id(&img, fw_image_lookup(&img, &p)), "web-in");
	view(&p, "10.1.2.3", "198.51.100.1", 6, 999, 8081);
	cr_expect_str_eq(pos_id(&img, fw_image_lookup(&img, &p)), "narrow");
	view(&p, "11.1.2.3", "198.51.100.1", 6, 999, 80);
	cr_expect_eq(fw_image_lookup(&img, &p), -1);
	view(&p, "11.1.2.3", "198.51.100.1", 17, 999, 80);
	cr_expect_str_eq(pos_id(&img, fw_image_lookup(&img, &p)), "not-office");
	view(&p, "10.200.2.3", "198.51.100.1", 17, 999, 80);
	cr_expect_eq(fw_image_lookup(&img, &p), -1, "negated alias: office sources are exempt");
	fw_image_free(&img);
	for (int i = 0; i < 3; i++)
		fw_rule_free(&r[i]);
	fw_aliases_free(&al);
}

Test(fw_compile, scope_becomes_an_interface_mask)
{
	struct fw_aliases al;
	struct fw_rule r[4];
	struct fw_image img;
	struct fw_pkt_view p;

	aliases(&al, "{\"grp\":{\"type\":\"interface_group\",\"interfaces\":[\"veth-a\",\"x\"]}}");
	rule(&r[0],
	     "{\"id\":\"if\",\"priority\":1,\"action\":\"deny\",\"scope\":\"interface:eth0\","
	     "\"dst_port\":1}");
	rule(&r[1],
	     "{\"id\":\"ns\",\"priority\":2,\"action\":\"deny\",\"scope\":\"namespace:veth\","
	     "\"dst_port\":2}");
	rule(&r[2],
	     "{\"id\":\"grp\",\"priority\":3,\"action\":\"deny\",\"scope\":{\"interface\":\"grp\"},"
	     "\"dst_port\":3}");
	rule(&r[3], "{\"id\":\"nowhere\",\"priority\":4,\"action\":\"deny\",\"scope\":\"eth9\"}");
	compile(&img, r, 4, &al, false);
	cr_expect_eq(img.hdr.n_rules, 3, "a scope on no agent interface never matches");
	cr_expect_eq(img.n_never, 1);
	cr_expect_eq(img.r4[0].iface_mask, 0x1);
	cr_expect_eq(img.r4[1].iface_mask, 0x2);
	cr_expect_eq(img.r4[2].iface_mask, 0x2);
	view(&p, "198.51.100.7", "198.51.100.1", 6, 1, 1);
	cr_expect_str_eq(pos_id(&img, fw_image_lookup(&img, &p)), "if");
	p.ifpos = 1;
	cr_expect_eq(fw_image_lookup(&img, &p), -1);
	p.dport = 2;
	cr_expect_str_eq(pos_id(&img, fw_image_lookup(&img, &p)), "ns");
	p.dport = 3;
	cr_expect_str_eq(pos_id(&img, fw_image_lookup(&img, &p)), "grp");
	p.ifpos = ES_FW_VT_NONE_IFACE;
	cr_expect_eq(fw_image_lookup(&img, &p), -1);
	fw_image_free(&img);
	for (int i = 0; i < 4; i++)
		fw_rule_free(&r[i]);
	fw_aliases_free(&al);
}

Test(fw_compile, anti_lockout_entries_by_port)
{
	struct fw_rule sys[3];
	struct fw_compile_in in = {.ifnames = ifs2, .n_ifnames = 2};
	struct fw_image img;
	char why[128];

	rule(&sys[0], "{\"id\":\"anti-lockout-22\",\"priority\":1,\"action\":\"allow\","
		      "\"protocol\":\"tcp\",\"dst_port\":22}");
	rule(&sys[1], "{\"id\":\"anti-lockout-veth-a-8080\",\"priority\":1,\"action\":\"allow\","
		      "\"protocol\":\"tcp\",\"dst_port\":8080,\"scope\":\"veth-a\"}");
	rule(&sys[2], "{\"id\":\"anti-lockout-gone-8080\",\"priority\":1,\"action\":\"allow\","
		      "\"protocol\":\"tcp\",\"dst_port\":8080,\"scope\":\"gone\"}");
	in.sys = sys;
	in.n_sys = 3;
	cr_assert_eq(fw_compile(&in, &img, why, sizeof(why)), 0, "%s", why);
	cr_expect_eq(img.hdr.n_sys, 2);
	cr_expect_eq(img.sys_port[22] & 0xff, 1);
	cr_expect_eq(img.sys_port[22] >> 8, 1);
	cr_expect_eq(img.sys_port[8080] >> 8, 1);
	cr_expect_eq(img.sys[(img.sys_port[8080] & 0xff) - 1].iface_mask, 0x2);
	cr_expect_eq(img.sys[0].iface_mask, 0, "global");
	cr_expect_eq(img.sys_port[23], 0);
	fw_image_free(&img);
	for (int i = 0; i < 3; i++)
		fw_rule_free(&sys[i]);
}

Test(fw_compile, more_than_a_bank_holds_is_refused)
{
	struct fw_rule *r = calloc(ES_FW_MAX_RULES + 1, sizeof(*r));
	struct fw_compile_in in = {.rules = r, .n_rules = ES_FW_MAX_RULES + 1};
	struct fw_image img;
	char why[128];

	for (size_t i = 0; i <= ES_FW_MAX_RULES; i++) {
		r[i].id = (char *)"r";
		r[i].priority = 1;
		r[i].enabled = true;
		r[i].icmp_type = r[i].icmp_code = r[i].dscp_match = r[i].dscp_mark = -1;
	}
	cr_expect_eq(fw_compile(&in, &img, why, sizeof(why)), -E2BIG);
	cr_expect(strstr(why, "4096"), "%s", why);
	free(r);
}

/* ---- differential: image walk == first matching rule ---------------------------------- */

static void differential(size_t n_rules, size_t n_pkts, bool rich)
{
	struct fw_rule *rules = calloc(n_rules, sizeof(*rules));
	struct fw_aliases al;
	struct fw_compile_in in = {
	    .rules = rules, .n_rules = n_rules, .aliases = &al, .ifnames = ifs2, .n_ifnames = 2};
	struct fw_image img;
	char why[256];
	size_t mismatches = 0, hits = 0;

	aliases(&al, FW_RAND_ALIASES);
	for (size_t i = 0; i < n_rules; i++)
		rand_rule(&rules[i], i, rich);
	cr_assert_eq(fw_compile(&in, &img, why, sizeof(why)), 0, "compile: %s", why);
	for (size_t k = 0; k < n_pkts; k++) {
		struct fw_pkt_view p;
		int want, got;

		rand_pkt(&p, rules, n_rules);
		want = reference(&in, &p);
		got = fw_image_lookup(&img, &p);
		hits += want >= 0;
		if ((want < 0) != (got < 0) ||
		    (want >= 0 && strcmp(rules[want].id, img.pos_rule[got]->id))) {
			if (mismatches++ < 5)
				cr_log_error("packet %zu: reference %s, classifier %s", k,
					     want < 0 ? "(none)" : rules[want].id,
					     got < 0 ? "(none)" : img.pos_rule[got]->id);
		}
	}
	cr_expect_eq(mismatches, 0, "%zu of %zu packets decided differently", mismatches, n_pkts);
	cr_expect(hits > n_pkts / 50, "too few matches (%zu) for the check to mean much", hits);
	fw_image_free(&img);
	for (size_t i = 0; i < n_rules; i++)
		fw_rule_free(&rules[i]);
	free(rules);
	fw_aliases_free(&al);
}

Test(fw_compile, classifier_equals_reference_small_rich_sets)
{
	for (int round = 0; round < 20; round++)
		differential(8 + rnd(40), 3000, true);
}

Test(fw_compile, classifier_equals_reference_4096_rules, .timeout = 120)
{
	differential(ES_FW_MAX_RULES, 4000, true);
}

Test(fw_compile, classifier_equals_reference_address_heavy)
{
	differential(1500, 20000, false);
}
