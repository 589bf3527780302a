// SPDX-License-Identifier: AGPL-3.0-only
/*
 * The `firewall:` and `zones:` sections (network.md §2.1, §2.4-2.6): every
 * validation rule with its error text, key path and line; defaults; warnings;
 * schedules (local time, midnight wrap); url_table bodies; the REST shapes.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "agent/config.h"
#include "agent/domain.h"
#include "domains/firewall/fw.h"
#include "unit.h"

#define FW "firewall:\n  rules:\n"
#define RULE(x) FW "    - {id: r1, priority: 1, action: deny, " x "}\n"
#define RULE_NA(x) FW "    - {id: r1, priority: 1, " x "}\n"

struct bad {
	const char *desc;
	const char *yaml;
	const char *want;
};

static const struct bad bad_rules[] = {
    {"missing id", FW "    - {priority: 1, action: deny}\n",
     "YAML parse error: firewall.rules[0]: missing field `id` at line 5"},
    {"id characters", FW "    - {id: 'a b', priority: 1, action: deny}\n",
     "validation error: firewall.rules[0].id: invalid rule id 'a b': must be non-empty and "
     "contain only letters, digits, '-' and '_' at line 5"},
    {"missing priority", FW "    - {id: a, action: deny}\n", "missing field `priority`"},
    {"priority 0 is system", FW "    - {id: a, priority: 0, action: deny}\n",
     "validation error: firewall.rules[0].priority: invalid priority: must be > 0 at line 5"},
    {"priority type", FW "    - {id: a, priority: high, action: deny}\n",
     "firewall.rules[0].priority: invalid type: string \"high\", expected u32"},
    {"missing action", FW "    - {id: a, priority: 1}\n", "missing field `action`"},
    {"no reject", RULE_NA("action: reject"),
     "invalid value 'reject' for field 'firewall.rules[0].action': expected one of allow, pass, "
     "deny, drop, block, log"},
    {"protocol", RULE("protocol: gre"),
     "invalid value 'gre' for field 'firewall.rules[0].protocol': expected one of any, *, tcp, "
     "udp, icmp"},
    {"CIDR prefix", RULE("src_ip: 10.0.0.0/33"),
     "firewall.rules[0].src_ip: invalid CIDR notation '10.0.0.0/33': prefix length 33 exceeds "
     "maximum 32 for IPv4"},
    {"CIDR syntax", RULE("dst_ip: 10.0.0"),
     "firewall.rules[0].dst_ip: invalid CIDR notation '10.0.0': invalid IP address syntax"},
    {"mixed families", RULE("src_ip: 10.0.0.0/8, dst_ip: '2001:db8::/32'"),
     "firewall.rules[0].dst_ip: src_ip and dst_ip must be of the same IP family (got IPv4 and "
     "IPv6)"},
    {"port range order", RULE("protocol: tcp, dst_port: '90-80'"),
     "invalid port range '90-80': start port 90 is greater than end port 80 "
     "(firewall.rules[0].dst_port at line 5"},
    {"port number", RULE("protocol: tcp, dst_port: 70000"),
     "invalid port range '70000': port out of range (0-65535) (firewall.rules[0].dst_port"},
    {"port object order", RULE("protocol: udp, src_port: {start: 9, end: 3}"),
     "invalid port range '9-3': start port 9 is greater than end port 3"},
    {"port word", RULE("dst_port: http"),
     "invalid port range 'http': invalid port number (firewall.rules[0].dst_port"},
    {"ports need tcp/udp", RULE("protocol: icmp, dst_port: 80"),
     "firewall.rules[0].dst_port: ports need protocol tcp, udp or any (not icmp)"},
    {"vlan range", RULE("vlan_id: 4095"),
     "firewall.rules[0].vlan_id: invalid vlan_id 4095: must be 0-4094 (0 = any)"},
    {"state names", RULE("state: [new, syn_sent]"),
     "firewall.rules[0].state: invalid state 'syn_sent': expected new, established, related or "
     "invalid"},
    {"ct_states names", RULE("ct_states: [bogus]"), "firewall.rules[0].ct_states: invalid state"},
    {"flags need tcp", RULE("protocol: udp, flags: S/SA"),
     "firewall.rules[0].flags: TCP flags need protocol tcp"},
    {"flags letters", RULE("protocol: tcp, flags: SX/SA"),
     "firewall.rules[0].flags: invalid TCP flags 'SX/SA'"},
    {"flags empty mask", RULE("protocol: tcp, flags: 'S/'"), "invalid TCP flags 'S/'"},
    {"icmp needs icmp", RULE("protocol: tcp, icmp_type: 8"),
     "firewall.rules[0].icmp_type: icmp_type and icmp_code need protocol icmp"},
    {"icmp code needs icmp", RULE("icmp_code: 1"),
     "firewall.rules[0].icmp_code: icmp_type and icmp_code need protocol icmp"},
    {"icmp type range", RULE("protocol: icmp, icmp_type: 300"),
     "firewall.rules[0].icmp_type: invalid value: integer `300`, expected u8"},
    {"dscp match range", RULE("dscp_match: 64"),
     "firewall.rules[0].dscp_match: invalid dscp_match 64: must be 0-63"},
    {"dscp mark range", RULE_NA("action: allow, dscp_mark: 70"),
     "firewall.rules[0].dscp_mark: invalid dscp_mark 70: must be 0-63"},
    {"max_states range", RULE("max_states: 70000"),
     "firewall.rules[0].max_states: invalid value: integer `70000`, expected u16"},
    {"mac", RULE("src_mac: 'aa:bb:cc:dd:ee'"),
     "firewall.rules[0].src_mac: invalid MAC address 'aa:bb:cc:dd:ee': expected six hex groups"},
    {"mac separators", RULE("dst_mac: 'aa-bb-cc-dd-ee-ff'"), "invalid MAC address"},
    {"unknown alias", RULE("src_alias: nope"),
     "validation error: firewall.rules[0].src_alias: unknown alias 'nope' at line 5"},
    {"alias kind",
     "firewall:\n  aliases:\n    web: {type: port_set, values: [80]}\n  rules:\n"
     "    - {id: r1, priority: 1, action: deny, src_alias: web}\n",
     "firewall.rules[0].src_alias: alias 'web' is a port alias, src_alias needs an address "
     "alias"},
    {"port alias kind",
     "firewall:\n  aliases:\n    lan: {type: ip_set, values: [10.0.0.0/8]}\n  rules:\n"
     "    - {id: r1, priority: 1, action: deny, dst_port_alias: lan}\n",
     "alias 'lan' is an address alias, dst_port_alias needs a port alias"},
    {"unknown schedule", RULE("schedule: night"),
     "firewall.rules[0].schedule: unknown schedule 'night'"},
    {"duplicate ids",
     FW "    - {id: a, priority: 1, action: deny}\n    - {id: a, priority: 2, action: allow}\n",
     "validation error: firewall.rules[1].id: duplicate rule id 'a' at line 6"},
    {"one routing action",
     RULE_NA("action: allow, route_to: {gateway: 1, interface: eth1}, dup_to: {interface: eth2}"),
     "firewall.rules[0].dup_to: at most one of route_to, reply_to, dup_to per rule"},
    {"route_to gateway", RULE_NA("action: allow, route_to: {interface: eth1}"),
     "route_to needs a gateway (id or address)"},
    {"scope object", RULE("scope: {interface: a, namespace: b}"),
     "firewall.rules[0].scope: scope object needs exactly one of interface, namespace"},
    {"mode", "firewall:\n  mode: sideways\n",
     "invalid value 'sideways' for field 'firewall.mode': expected one of alert, monitor, "
     "observe, block, enforce"},
    {"default policy is exact", "firewall:\n  default_policy: Drop\n",
     "invalid value 'Drop' for field 'firewall.default_policy': expected one of pass, drop"},
    {"anti-lockout port", "firewall:\n  anti_lockout: {ports: [0]}\n",
     "validation error: firewall.anti_lockout.ports[0]: invalid port: expected 1-65535"},
};

Test(fw_rules, every_rule_violation_is_rejected_with_its_text)
{
	for (size_t i = 0; i < sizeof(bad_rules) / sizeof(bad_rules[0]); i++) {
		char yaml[4096], err[1024];
		struct es_config *c;

		snprintf(yaml, sizeof(yaml), MIN_AGENT "%s", bad_rules[i].yaml);
		c = unit_cfg(yaml, err, sizeof(err));
		cr_expect_null(c, "%s: accepted", bad_rules[i].desc);
		es_config_put(c);
		cr_expect(strstr(err, bad_rules[i].want), "%s: error '%s' lacks '%s'",
			  bad_rules[i].desc, err, bad_rules[i].want);
	}
}

static const struct bad bad_aliases[] = {
    {"type is case-sensitive", "firewall:\n  aliases:\n    a: {type: IP_SET, values: [10.0.0.1]}\n",
     "invalid value 'IP_SET' for field 'firewall.aliases.a.type': expected one of ip_set, "
     "port_set, nested, url_table, geoip, dynamic_dns, interface_group"},
    {"ip_set needs values", "firewall:\n  aliases:\n    a: {type: ip_set, values: []}\n",
     "validation error: firewall.aliases.a.values: ip_set alias needs at least one entry in "
     "`values`"},
    {"ip_set CIDR",
     "firewall:\n  aliases:\n    a: {type: ip_set, values: [10.0.0.0/8, 300.1.1.1]}\n",
     "firewall.aliases.a.values[1]: invalid CIDR notation '300.1.1.1': invalid IP address syntax"},
    {"port_set values", "firewall:\n  aliases:\n    p: {type: port_set, values: ['9-1']}\n",
     "firewall.aliases.p.values[0]: invalid port range '9-1'"},
    {"port_set range", "firewall:\n  aliases:\n    p: {type: port_set, values: [65536]}\n",
     "invalid port 65536: must be 0-65535"},
    {"nested needs members", "firewall:\n  aliases:\n    n: {type: nested, aliases: []}\n",
     "nested alias needs at least one entry in `aliases`"},
    {"nested unknown", "firewall:\n  aliases:\n    n: {type: nested, aliases: [ghost]}\n",
     "nested alias 'n' names unknown alias 'ghost'"},
    {"nested cycle",
     "firewall:\n  aliases:\n    a: {type: nested, aliases: [b]}\n    b: {type: nested, aliases: "
     "[a]}\n",
     "alias cycle"},
    {"nested self", "firewall:\n  aliases:\n    a: {type: nested, aliases: [a]}\n",
     "alias cycle: 'a' contains itself"},
    {"nested kinds",
     "firewall:\n  aliases:\n    i: {type: ip_set, values: [10.0.0.1]}\n"
     "    p: {type: port_set, values: [80]}\n    n: {type: nested, aliases: [i, p]}\n",
     "nested alias 'n' mixes address and port aliases"},
    {"url_table url", "firewall:\n  aliases:\n    u: {type: url_table, refresh_interval: 60}\n",
     "firewall.aliases.u: missing field `url`"},
    {"url_table scheme",
     "firewall:\n  aliases:\n    u: {type: url_table, url: 'ftp://x/y', refresh_interval: 60}\n",
     "invalid url 'ftp://x/y': expected http://, https:// or file://"},
    {"url_table refresh",
     "firewall:\n  aliases:\n    u: {type: url_table, url: 'http://x/y', refresh_interval: 0}\n",
     "firewall.aliases.u.refresh_interval: refresh_interval must be > 0"},
    {"url_table refresh missing",
     "firewall:\n  aliases:\n    u: {type: url_table, url: 'http://x/y'}\n",
     "missing field `refresh_interval`"},
    {"geoip codes", "firewall:\n  aliases:\n    g: {type: geoip, country_codes: [gb]}\n",
     "invalid country code 'gb': expected two upper-case letters"},
    {"geoip needs codes", "firewall:\n  aliases:\n    g: {type: geoip, country_codes: []}\n",
     "geoip alias needs at least one entry in `country_codes`"},
    {"dynamic_dns names",
     "firewall:\n  aliases:\n    d: {type: dynamic_dns, refresh_interval: 5}\n",
     "dynamic_dns alias needs at least one entry in `hostnames`"},
    {"dynamic_dns refresh",
     "firewall:\n  aliases:\n    d: {type: dynamic_dns, hostnames: [a.example]}\n",
     "missing field `refresh_interval`"},
    {"interface_group", "firewall:\n  aliases:\n    g: {type: interface_group, interfaces: []}\n",
     "interface_group alias needs at least one entry in `interfaces`"},
    {"alias name", "firewall:\n  aliases:\n    'a b': {type: ip_set, values: [10.0.0.1]}\n",
     "invalid alias name 'a b'"},
};

Test(fw_rules, every_alias_violation_is_rejected_with_its_text)
{
	for (size_t i = 0; i < sizeof(bad_aliases) / sizeof(bad_aliases[0]); i++)
		unit_expect_cfg_error(bad_aliases[i].yaml, bad_aliases[i].want);
}

static const struct bad bad_schedules[] = {
    {"day",
     "firewall:\n  schedules:\n    s: {entries: [{days: [mon, funday], time: '08:00-18:00'}]}\n",
     "firewall.schedules.s.entries[0].days: invalid day 'funday': expected mon..sun or "
     "monday..sunday"},
    {"time", "firewall:\n  schedules:\n    s: {entries: [{days: [mon], time: '25:00-26:00'}]}\n",
     "firewall.schedules.s.entries[0].time: invalid time range '25:00-26:00': expected "
     "HH:MM-HH:MM"},
    {"time format", "firewall:\n  schedules:\n    s: {entries: [{days: [mon], time: '8-18'}]}\n",
     "invalid time range '8-18'"},
    {"empty window",
     "firewall:\n  schedules:\n    s: {entries: [{days: [mon], time: '08:00-08:00'}]}\n",
     "invalid time range '08:00-08:00'"},
    {"no days", "firewall:\n  schedules:\n    s: {entries: [{days: [], time: '08:00-09:00'}]}\n",
     "a schedule entry needs at least one day"},
    {"no entries", "firewall:\n  schedules:\n    s: {entries: []}\n",
     "schedule 's' needs at least one entry"},
};

Test(fw_rules, every_schedule_violation_is_rejected_with_its_text)
{
	for (size_t i = 0; i < sizeof(bad_schedules) / sizeof(bad_schedules[0]); i++)
		unit_expect_cfg_error(bad_schedules[i].yaml, bad_schedules[i].want);
}

static const struct bad bad_zones[] = {
    {"empty id", "zones:\n  zones: [{id: '', interfaces: [a]}]\n",
     "validation error: zones.zones[0].id: zone id must not be empty"},
    {"duplicate id", "zones:\n  zones: [{id: lan, interfaces: [a]}, {id: lan, interfaces: [b]}]\n",
     "zones.zones[1].id: duplicate zone id 'lan'"},
    {"no interfaces", "zones:\n  zones: [{id: lan, interfaces: []}]\n",
     "zones.zones[0].interfaces: zone 'lan' has no interfaces"},
    {"interface twice",
     "zones:\n  zones: [{id: lan, interfaces: [a]}, {id: wan, interfaces: [a]}]\n",
     "zones.zones[1].interfaces: interface 'a' is in zones 'lan' and 'wan'"},
    {"unknown from",
     "zones:\n  zones: [{id: lan, interfaces: [a]}]\n  policies: [{from: dmz, to: lan, policy: "
     "allow}]\n",
     "zones.policies[0].from: unknown zone 'dmz'"},
    {"unknown to",
     "zones:\n  zones: [{id: lan, interfaces: [a]}]\n  policies: [{from: lan, to: dmz, policy: "
     "allow}]\n",
     "zones.policies[0].to: unknown zone 'dmz'"},
    {"from == to",
     "zones:\n  zones: [{id: lan, interfaces: [a]}]\n  policies: [{from: lan, to: lan, policy: "
     "allow}]\n",
     "zones.policies[0].to: policy from zone 'lan' to itself"},
    {"bad word",
     "zones:\n  zones: [{id: lan, interfaces: [a]}, {id: wan, interfaces: [b]}]\n"
     "  policies: [{from: lan, to: wan, policy: maybe}]\n",
     "invalid value 'maybe' for field 'zones.policies[0].policy': expected one of allow, permit, "
     "accept, deny, drop, reject"},
    {"default word", "zones:\n  zones: [{id: lan, interfaces: [a], default_policy: open}]\n",
     "invalid value 'open' for field 'zones.zones[0].default_policy'"},
    {"policy required",
     "zones:\n  zones: [{id: lan, interfaces: [a]}, {id: wan, interfaces: [b]}]\n"
     "  policies: [{from: lan, to: wan}]\n",
     "missing field `policy`"},
};

Test(fw_rules, every_zone_violation_is_rejected_with_its_text)
{
	char yaml[16384];
	size_t n = 0;

	for (size_t i = 0; i < sizeof(bad_zones) / sizeof(bad_zones[0]); i++)
		unit_expect_cfg_error(bad_zones[i].yaml, bad_zones[i].want);
	n += (size_t)snprintf(yaml + n, sizeof(yaml) - n, "zones:\n  zones:\n");
	for (int i = 0; i < 65; i++)
		n += (size_t)snprintf(yaml + n, sizeof(yaml) - n,
				      "    - {id: z%d, interfaces: [i%d]}\n", i, i);
	unit_expect_cfg_error(yaml, "validation error: zones.zones: count 65 exceeds maximum 64");
}

static const struct fw_cfg *fw_of(const struct es_config *c)
{
	return es_config_domain(c, "firewall");
}

Test(fw_rules, defaults_and_accepted_forms)
{
	char err[1024];
	struct es_config *c = unit_cfg(
	    MIN_AGENT
	    "firewall:\n"
	    "  aliases:\n"
	    "    office: {type: ip_set, values: ['198.18.0.0/15', '2001:db8:10::/48']}\n"
	    "    grp: {type: interface_group, interfaces: [veth0]}\n"
	    "  schedules:\n"
	    "    night: {entries: [{days: [mon, Tuesday], time: '22:00-06:00'}]}\n"
	    "  rules:\n"
	    "    - {id: a, priority: 5, action: Pass, protocol: '*', src_ip: 10.1.2.3,\n"
	    "       dst_port: '80', scope: 'interface:veth0', state: [new, ESTABLISHED]}\n"
	    "    - {id: b, priority: 7, action: block, protocol: TCP, src_port: {start: 1, "
	    "end: 2},\n"
	    "       dst_ip: '2001:db8::1', flags: S/SA, ct_states: [related]}\n"
	    "    - {id: c, priority: 9, action: log, protocol: icmp, icmp_type: 8, "
	    "icmp_code: 0,\n"
	    "       src_alias: office, schedule: night, scope: {interface: grp}, dscp_mark: 46,\n"
	    "       negate_source: true, src_mac: '02:00:00:00:00:AA', max_states: 10}\n"
	    "    - {id: d, priority: 9, action: drop, scope: 'namespace:ve', vlan_id: 200,\n"
	    "       reply_to: true}\n",
	    err, sizeof(err));
	const struct fw_cfg *f;

	cr_assert_not_null(c, "%s", err);
	f = fw_of(c);
	cr_expect_eq(f->mode, 0, "mode defaults to alert (code)");
	cr_expect_eq(f->default_policy, 0);
	cr_expect(f->anti_lockout.enabled);
	cr_expect_eq(f->anti_lockout.n_ports, 3);
	cr_expect_eq(f->anti_lockout.ports[0], 22);
	cr_expect_eq(f->anti_lockout.ports[1], 8080);
	cr_expect_eq(f->anti_lockout.ports[2], 50051);
	cr_assert_eq(f->rules.n, 4);
	cr_expect_eq(f->rules.v[0].action, ES_FW_ACT_PASS);
	cr_expect_eq(f->rules.v[0].proto, FW_PROTO_ANY);
	cr_expect_eq(f->rules.v[0].src.plen, 32, "a bare address is a host");
	cr_expect_eq(f->rules.v[0].dports.r[0].start, 80);
	cr_expect_eq(f->rules.v[0].scope, FW_SCOPE_IFACE);
	cr_expect_str_eq(f->rules.v[0].scope_name, "veth0");
	cr_expect_eq(f->rules.v[0].ct_mask, ES_FW_CTM_NEW | ES_FW_CTM_ESTABLISHED);
	cr_expect_eq(f->rules.v[1].action, ES_FW_ACT_DROP);
	cr_expect_eq(f->rules.v[1].proto, FW_PROTO_TCP);
	cr_expect_eq(f->rules.v[1].flags_set, 0x02);
	cr_expect_eq(f->rules.v[1].flags_mask, 0x12);
	cr_expect_eq(f->rules.v[1].ct_mask, ES_FW_CTM_RELATED, "ct_states is an alias of state");
	cr_expect_eq(f->rules.v[2].action, ES_FW_ACT_LOG);
	cr_expect_eq(f->rules.v[2].smac[5], 0xAA);
	cr_expect_eq(f->rules.v[2].dscp_mark, 46);
	cr_expect_eq(f->rules.v[3].scope, FW_SCOPE_NS);
	cr_expect_eq(f->rules.v[3].route, FW_ROUTE_REPLY_TO);
	cr_expect_eq(c->n_warnings > 0, true, "state while conntrack is off warns");
	es_config_put(c);
}

Test(fw_rules, warnings_for_legal_but_suspicious_rules)
{
	char err[1024];
	struct es_config *c = unit_cfg(
	    MIN_AGENT "firewall:\n  default_policy: drop\n  rules:\n"
		      "    - {id: a, priority: 5, action: allow, protocol: tcp, flags: SF/S}\n",
	    err, sizeof(err));
	bool flags = false, nd = false;

	cr_assert_not_null(c, "%s", err);
	for (size_t i = 0; i < c->n_warnings; i++) {
		flags |= strstr(c->warnings[i], "outside the mask") != NULL;
		nd |= strstr(c->warnings[i], "neighbour discovery") != NULL;
	}
	cr_expect(flags, "flags set bits outside the mask warn");
	cr_expect(nd, "default drop without ICMPv6 135/136 warns");
	es_config_put(c);
	c = unit_cfg(MIN_AGENT
		     "firewall:\n  default_policy: drop\n  rules:\n"
		     "    - {id: nd, priority: 5, action: allow, protocol: icmp, icmp_type: 135}\n",
		     err, sizeof(err));
	cr_assert_not_null(c, "%s", err);
	for (size_t i = 0; i < c->n_warnings; i++)
		cr_expect_null(strstr(c->warnings[i], "neighbour discovery"), "%s", c->warnings[i]);
	es_config_put(c);
}

Test(fw_rules, config_round_trip_keeps_every_key)
{
	char err[1024];
	struct es_config *c = unit_cfg(
	    MIN_AGENT "firewall:\n  mode: enforce\n  anti_lockout: {enabled: false}\n  rules:\n"
		      "    - {id: a, priority: 5, action: deny, protocol: udp, dst_port: '53-54',\n"
		      "       src_ip: 10.0.0.0/8, vlan_id: 7, dscp_match: 1}\n",
	    err, sizeof(err));
	json_t *j, *r;

	cr_assert_not_null(c, "%s", err);
	j = es_config_to_json(c);
	r = json_array_get(json_object_get(json_object_get(j, "firewall"), "rules"), 0);
	cr_expect_str_eq(json_string_value(json_object_get(json_object_get(j, "firewall"), "mode")),
			 "block");
	cr_expect_str_eq(json_string_value(json_object_get(r, "action")), "deny");
	cr_expect_str_eq(json_string_value(json_object_get(r, "dst_port")), "53-54");
	cr_expect_str_eq(json_string_value(json_object_get(r, "src_ip")), "10.0.0.0/8");
	cr_expect_eq(json_integer_value(json_object_get(r, "vlan_id")), 7);
	cr_expect_eq(json_integer_value(json_object_get(r, "dscp_match")), 1);
	json_decref(j);
	es_config_put(c);
}

/* The REST door: the same parser, no positions; `Rule` as interfaces.md §3.4 shows it. */
Test(fw_rules, rest_rule_document)
{
	json_t *in = json_loads("{\"id\":\"web\",\"priority\":10,\"action\":\"PASS\",\"protocol\":"
				"\"tcp\",\"src_ip\":\"10.0.0.1\",\"dst_ip\":\"10.0.0.0/24\","
				"\"dst_port\":443,\"scope\":\"eth0\",\"vlan_id\":5}",
				0, NULL);
	struct es_cfg c;
	struct fw_rule r;
	json_t *out;

	es_cfg_init(&c, NULL);
	cr_assert_eq(fw_rule_parse(&c, in, "", &r), 0, "%s", c.err.msg);
	out = fw_rule_to_json(&r);
	cr_expect_str_eq(json_string_value(json_object_get(out, "action")), "allow");
	cr_expect_str_eq(json_string_value(json_object_get(out, "src_ip")), "10.0.0.1");
	cr_expect_str_eq(json_string_value(json_object_get(out, "dst_ip")), "10.0.0.0/24");
	cr_expect_str_eq(json_string_value(json_object_get(out, "dst_port")), "443");
	cr_expect(json_is_null(json_object_get(out, "src_port")));
	cr_expect_str_eq(json_string_value(json_object_get(out, "scope")), "interface:eth0");
	cr_expect_eq(json_integer_value(json_object_get(out, "vlan_id")), 5);
	cr_expect(json_is_true(json_object_get(out, "enabled")));
	json_decref(out);
	fw_rule_free(&r);
	json_decref(in);

	in = json_loads("{\"id\":\"x\",\"priority\":0,\"action\":\"allow\"}", 0, NULL);
	cr_expect_neq(fw_rule_parse(&c, in, "", &r), 0);
	cr_expect_eq(c.err.kind, ES_ERR_VALIDATION, "priority 0 is a 400, not a 422");
	cr_expect_str_eq(c.err.msg, "invalid priority: must be > 0");
	json_decref(in);
	es_cfg_release(&c);
	es_cfg_init(&c, NULL);
	in = json_loads("{\"id\":\"x\",\"priority\":\"1\",\"action\":\"allow\"}", 0, NULL);
	cr_expect_neq(fw_rule_parse(&c, in, "", &r), 0);
	cr_expect_eq(c.err.kind, ES_ERR_PARSE, "a wrong type is a 422");
	json_decref(in);
	es_cfg_release(&c);
}

static struct tm at(int wday, int h, int m)
{
	struct tm t = {.tm_wday = wday, .tm_hour = h, .tm_min = m};

	return t;
}

Test(fw_rules, schedules_in_local_time_with_midnight_wrap)
{
	json_t *j =
	    json_loads("{\"office\":{\"entries\":[{\"days\":[\"mon\",\"friday\"],"
		       "\"time\":\"08:00-18:00\"}]},"
		       "\"night\":{\"entries\":[{\"days\":[\"sat\"],\"time\":\"22:00-06:00\"}]},"
		       "\"late\":{\"entries\":[{\"days\":[\"sun\"],\"time\":\"23:00-24:00\"}]}}",
		       0, NULL);
	struct fw_schedules s;
	struct es_cfg c;
	struct tm t;

	es_cfg_init(&c, NULL);
	cr_assert_eq(fw_schedules_parse(&c, j, "s", &s), 0, "%s", c.err.msg);
	const struct fw_schedule *office = fw_schedule_find(&s, "office"),
				 *night = fw_schedule_find(&s, "night"),
				 *late = fw_schedule_find(&s, "late");

	t = at(1, 8, 0);
	cr_expect(fw_schedule_active(office, &t), "Monday 08:00: start is inclusive");
	t = at(1, 17, 59);
	cr_expect(fw_schedule_active(office, &t));
	t = at(1, 18, 0);
	cr_expect_not(fw_schedule_active(office, &t), "end is exclusive");
	t = at(2, 12, 0);
	cr_expect_not(fw_schedule_active(office, &t), "Tuesday is not listed");
	t = at(5, 9, 30);
	cr_expect(fw_schedule_active(office, &t), "full day names");
	t = at(6, 23, 30);
	cr_expect(fw_schedule_active(night, &t), "Saturday 23:30 inside 22:00-06:00");
	t = at(6, 3, 0);
	cr_expect(fw_schedule_active(night, &t), "Saturday 03:00: before the wrapped end");
	t = at(6, 12, 0);
	cr_expect_not(fw_schedule_active(night, &t));
	t = at(0, 3, 0);
	cr_expect_not(fw_schedule_active(night, &t), "Sunday is not listed");
	t = at(0, 23, 59);
	cr_expect(fw_schedule_active(late, &t), "24:00 as the end");
	fw_schedules_free(&s);
	json_decref(j);
	es_cfg_release(&c);
}

static time_t fixed_clock(void)
{
	return 1800000000; /* 2027-01-15T08:00:00Z */
}

Test(fw_rules, schedule_clock_is_injectable)
{
	fw_sched_set_clock(fixed_clock);
	cr_expect_eq(fw_sched_now(), 1800000000);
	fw_sched_set_clock(NULL);
	cr_expect_gt(fw_sched_now(), 1700000000);
}

Test(fw_rules, scheduled_rules_compile_only_inside_their_window)
{
	json_t *sj = json_loads(
	    "{\"biz\":{\"entries\":[{\"days\":[\"wed\"],\"time\":\"09:00-17:00\"}]}}", 0, NULL);
	json_t *rj = json_loads(
	    "{\"id\":\"s\",\"priority\":1,\"action\":\"deny\",\"schedule\":\"biz\"}", 0, NULL);
	struct fw_schedules s;
	struct fw_rule r;
	struct fw_image img;
	struct es_cfg c;
	char why[64];
	struct tm t = at(3, 10, 0);
	struct fw_compile_in in = {.rules = &r, .n_rules = 1, .schedules = &s, .now = &t};

	es_cfg_init(&c, NULL);
	cr_assert_eq(fw_schedules_parse(&c, sj, "s", &s), 0);
	cr_assert_eq(fw_rule_parse(&c, rj, "", &r), 0);
	cr_assert_eq(fw_compile(&in, &img, why, sizeof(why)), 0);
	cr_expect_eq(img.hdr.n_rules, 1);
	fw_image_free(&img);
	t = at(3, 18, 0);
	cr_assert_eq(fw_compile(&in, &img, why, sizeof(why)), 0);
	cr_expect_eq(img.hdr.n_rules, 0);
	cr_expect_eq(img.n_unscheduled, 1);
	fw_image_free(&img);
	fw_rule_free(&r);
	fw_schedules_free(&s);
	json_decref(sj);
	json_decref(rj);
	es_cfg_release(&c);
}

Test(fw_rules, url_table_bodies)
{
	const char *body = "# a feed\n198.51.100.0/24\n  203.0.113.7 ; comment\n\njunk line\n"
			   "2001:db8::/32\r\n10.0.0.1/33\n";
	struct es_cidr *c = NULL;
	size_t n = 0;
	char buf[64];

	cr_assert_eq(fw_url_table_parse(body, strlen(body), &c, &n), 0);
	cr_assert_eq(n, 3, "junk and invalid lines are skipped");
	es_cidr_format(&c[0], buf, sizeof(buf));
	cr_expect_str_eq(buf, "198.51.100.0/24");
	es_cidr_format(&c[1], buf, sizeof(buf));
	cr_expect_str_eq(buf, "203.0.113.7");
	es_cidr_format(&c[2], buf, sizeof(buf));
	cr_expect_str_eq(buf, "2001:db8::/32");
	free(c);
}

Test(fw_rules, dynamic_alias_contents_keep_the_last_good_list)
{
	json_t *j =
	    json_loads("{\"u\":{\"type\":\"url_table\",\"url\":\"http://x/\","
		       "\"refresh_interval\":9},\"n\":{\"type\":\"nested\",\"aliases\":[\"u\"]}}",
		       0, NULL);
	struct fw_aliases a;
	struct es_cfg c;
	struct es_cidr one, *out = NULL;
	struct es_port_range *p = NULL;
	size_t no = 0, np = 0;
	char why[32];

	es_cfg_init(&c, NULL);
	cr_assert_eq(fw_aliases_parse(&c, j, "a", &a), 0);
	cr_expect_not(fw_alias_active(&a, "u"), "never fetched: inactive");
	cr_assert_eq(es_cidr_parse("198.51.100.9", &one, why, sizeof(why)), 0);
	fw_alias_dyn_set("u", &one, 1);
	fw_alias_dyn_fail("u", "timeout");
	cr_assert_eq(fw_alias_resolve(&a, "n", &out, &no, &p, &np), 0);
	cr_expect_eq(no, 1, "a failed refresh keeps the previous contents");
	cr_expect(fw_alias_active(&a, "n"));
	free(out);
	free(p);
	fw_alias_dyn_forget_all();
	fw_aliases_free(&a);
	json_decref(j);
	es_cfg_release(&c);
}
