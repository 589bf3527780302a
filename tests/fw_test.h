/* SPDX-License-Identifier: AGPL-3.0-only */
/*
 * Firewall test helpers shared by the unit and kernel tests: rules from JSON,
 * random rule sets and packets for the differential tests (unit: the
 * compiled image; kernel: the real program), and the reference first match
 * taken from the rules' definition.
 */
#ifndef ES_TEST_FW_TEST_H
#define ES_TEST_FW_TEST_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domains/firewall/fw.h"

/* Aliases the random rules refer to. */
#define FW_RAND_ALIASES                                                                            \
	"{\"set4\":{\"type\":\"ip_set\",\"values\":[\"198.18.0.0/16\",\"198.18.1.7\"]},"           \
	"\"set6\":{\"type\":\"ip_set\",\"values\":[\"2001:db8::/40\",\"2001:db8:1::1\"]},"         \
	"\"mixed\":{\"type\":\"ip_set\",\"values\":[\"198.18.2.0/24\",\"2001:db8:2::/64\"]},"      \
	"\"nest\":{\"type\":\"nested\",\"aliases\":[\"set4\",\"mixed\"]},"                         \
	"\"ports\":{\"type\":\"port_set\",\"values\":[1,\"3-9\",\"60000-65535\"]}}"

/* Parse a rule from JSON text (the REST door: no positions). */
static inline void fw_test_rule(struct fw_rule *r, const char *json)
{
	json_error_t je;
	json_t *o = json_loads(json, 0, &je);
	struct es_cfg c;

	cr_assert_not_null(o, "bad test JSON: %s", je.text);
	es_cfg_init(&c, NULL);
	cr_assert_eq(fw_rule_parse(&c, o, "rule", r), 0, "%s: %s", json, c.err.msg);
	es_cfg_release(&c);
	json_decref(o);
}

static uint64_t fw_rng = 88172645463325252ull;

static uint32_t rnd(uint32_t n)
{
	fw_rng ^= fw_rng << 13;
	fw_rng ^= fw_rng >> 7;
	fw_rng ^= fw_rng << 17;
	return n ? (uint32_t)(fw_rng % n) : 0;
}

static void rand_addr(uint8_t *b, bool v6)
{
	memset(b, 0, 16);
	if (!v6) {
		b[10] = b[11] = 0xff;
		/* A few clustered networks so prefixes nest and collide. */
		b[12] = (uint8_t)(rnd(3) ? 198 : rnd(256));
		b[13] = (uint8_t)(rnd(2) ? 18 : rnd(256));
		b[14] = (uint8_t)(rnd(4) ? rnd(4) : rnd(256));
		b[15] = (uint8_t)rnd(256);
	} else {
		b[0] = 0x20;
		b[1] = 0x01;
		b[2] = 0x0d;
		b[3] = 0xb8;
		for (int i = 4; i < 16; i++)
			b[i] = (uint8_t)(rnd(3) ? rnd(3) : rnd(256));
	}
}

static void rand_cidr(struct es_cidr *c, bool v6)
{
	unsigned max = v6 ? 128 : 32, plen = rnd(5) ? max - rnd(v6 ? 100 : 24) : rnd(max + 1);
	char buf[64], why[64];

	memset(c, 0, sizeof(*c));
	rand_addr(c->addr.b, v6);
	c->addr.family = v6 ? 6 : 4;
	es_cidr_format_full(&(struct es_cidr){.addr = c->addr, .plen = (uint8_t)plen}, buf,
			    sizeof(buf));
	cr_assert_eq(es_cidr_parse(buf, c, why, sizeof(why)), 0, "%s: %s", buf, why);
}

static void rand_range(struct fw_ports *p)
{
	uint16_t a = (uint16_t)(rnd(2) ? rnd(64) : rnd(65536)),
		 w = (uint16_t)(rnd(3) ? 0 : rnd(300));

	p->r = malloc(sizeof(*p->r));
	p->r->start = a;
	p->r->end = (uint16_t)(a + w < a ? 65535 : a + w);
	p->n = 1;
}

static void rand_rule(struct fw_rule *r, size_t i, bool rich)
{
	static const char *const ip_aliases[] = {"set4", "set6", "mixed", "nest"};
	char id[32];
	bool v6 = rnd(2);

	memset(r, 0, sizeof(*r));
	snprintf(id, sizeof(id), "r%zu", i);
	r->id = strdup(id);
	r->priority = 1 + rnd(50);
	r->order = i;
	r->enabled = rnd(20) != 0;
	r->action = (uint8_t)rnd(3);
	r->icmp_type = r->icmp_code = r->dscp_match = r->dscp_mark = -1;
	r->proto = (enum fw_proto)rnd(4);
	if (rnd(2)) {
		r->has_src = true;
		rand_cidr(&r->src, v6);
	}
	if (rnd(2)) {
		r->has_dst = true;
		rand_cidr(&r->dst, v6);
	}
	if (rich && !rnd(6))
		r->src_alias = strdup(ip_aliases[rnd(4)]);
	if (rich && !rnd(8))
		r->dst_alias = strdup(ip_aliases[rnd(4)]);
	if ((r->has_src || r->src_alias) && !rnd(5))
		r->negate_src = true;
	if ((r->has_dst || r->dst_alias) && !rnd(5))
		r->negate_dst = true;
	if (r->proto != FW_PROTO_ICMP) {
		if (!rnd(3))
			rand_range(&r->dports);
		if (!rnd(5))
			rand_range(&r->sports);
		if (rich && !rnd(8))
			r->dst_port_alias = strdup("ports");
	} else if (rich && rnd(2)) {
		r->icmp_type = (int)rnd(4) + (rnd(2) ? 0 : 128);
		if (rnd(2))
			r->icmp_code = (int)rnd(3);
	}
	if (!rich)
		return;
	if (r->proto == FW_PROTO_TCP && !rnd(4)) {
		r->has_flags = true;
		r->flags_mask = (uint8_t)(rnd(64) | 0x02);
		r->flags_set = (uint8_t)(rnd(64) & r->flags_mask);
	}
	if (!rnd(8))
		r->vlan_id = (uint16_t)(1 + rnd(4));
	if (!rnd(8))
		r->dscp_match = (int)rnd(4);
	if (!rnd(8))
		r->ct_mask = (uint8_t)(1 + rnd(15));
	if (!rnd(8)) {
		r->scope = (enum fw_scope)(1 + rnd(2));
		r->scope_name = strdup(r->scope == FW_SCOPE_NS ? "veth"
				       : rnd(2)		       ? "eth0"
							       : "veth-a");
	}
	if (!rnd(10)) {
		r->has_smac = true;
		memcpy(r->smac, "\x02\0\0\0\0", 5);
		r->smac[5] = (uint8_t)rnd(3);
	}
	if (!rnd(10)) {
		r->has_dmac = true;
		memcpy(r->dmac, "\x02\0\0\0\0", 5);
		r->dmac[5] = (uint8_t)rnd(3);
	}
}

static void rand_pkt(struct fw_pkt_view *p, const struct fw_rule *rules, size_t n)
{
	static const uint8_t protos[] = {6, 17, 1, 58, 47};
	const struct fw_rule *r = &rules[rnd((uint32_t)n)];

	memset(p, 0, sizeof(*p));
	p->v6 = rnd(2);
	if (r->has_src && rnd(2))
		p->v6 = r->src.addr.family == 6;
	rand_addr(p->src, p->v6);
	rand_addr(p->dst, p->v6);
	/* Land inside a rule's prefix half of the time. */
	if (r->has_src && (r->src.addr.family == 6) == p->v6 && rnd(2))
		memcpy(p->src, r->src.addr.b, 16);
	if (r->has_dst && (r->dst.addr.family == 6) == p->v6 && rnd(2))
		memcpy(p->dst, r->dst.addr.b, 16);
	p->proto = protos[rnd(5)];
	p->ports = p->proto == 6 || p->proto == 17;
	p->tcp = p->proto == 6;
	p->icmp = p->proto == (p->v6 ? 58 : 1);
	if (!rnd(10)) /* a non-first fragment: no L4 view */
		p->ports = p->tcp = p->icmp = false;
	p->sport = (uint16_t)(rnd(2) ? rnd(64) : rnd(65536));
	p->dport = (uint16_t)(r->dports.n && rnd(2) ? r->dports.r[0].start + rnd(2)
			      : rnd(2)		    ? rnd(64)
						    : rnd(65536));
	p->icmp_type = (uint8_t)(rnd(2) ? rnd(4) : 128 + rnd(4));
	p->icmp_code = (uint8_t)rnd(3);
	p->tcp_flags = (uint8_t)rnd(64);
	p->dscp = (uint8_t)rnd(5);
	p->vlan = (uint16_t)rnd(5);
	p->ct_state = (uint8_t)rnd(5);
	p->ifpos = rnd(3) == 2 ? ES_FW_VT_NONE_IFACE : rnd(2);
	memcpy(p->smac, "\x02\0\0\0\0", 5);
	p->smac[5] = (uint8_t)rnd(3);
	memcpy(p->dmac, "\x02\0\0\0\0", 5);
	p->dmac[5] = (uint8_t)rnd(3);
}

static int reference(const struct fw_compile_in *in, const struct fw_pkt_view *p)
{
	int best = -1;

	for (size_t i = 0; i < in->n_rules; i++) {
		const struct fw_rule *r = &in->rules[i];

		if (!r->enabled || !fw_rule_matches(in, r, p))
			continue;
		if (best < 0 || r->priority < in->rules[best].priority ||
		    (r->priority == in->rules[best].priority && r->order < in->rules[best].order))
			best = (int)i;
	}
	return best;
}

#endif
