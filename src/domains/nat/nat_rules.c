// SPDX-License-Identifier: AGPL-3.0-only
/* NAT rules: parse, validate (network.md §4.1), compile (§4.3). */
#include "domains/nat/nat_rules.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const nat_keys[] = {"enabled", "snat_rules", "dnat_rules", NULL};
static const char *const rule_keys[] = {
    "id",
    "enabled",
    "priority",
    "type",
    "translated_addr",
    "translated_port",
    "port_range",
    "interface",
    "external_addr",
    "internal_addr",
    "ext_port",
    "int_port",
    "match_src",
    "match_dst",
    "match_dst_port",
    "match_protocol",
    NULL,
};
/* Config spellings, in enum nat_kind order (exact lower case). */
static const char *const kind_names[] = {
    "snat", "masquerade", "dnat", "port_forward", "redirect", "one_to_one", NULL,
};
static const char *const proto_names[] = {"tcp", "udp", "icmp", "any", NULL};
static const uint8_t proto_nums[] = {IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP, 0};

const char *nat_kind_api_name(enum nat_kind k)
{
	switch (k) {
	case NAT_K_SNAT: return "snat";
	case NAT_K_MASQUERADE: return "masquerade";
	case NAT_K_ONE_TO_ONE: return "onetoone";
	default: return "dnat"; /* dnat, port_forward, redirect */
	}
}

static void rule_free(struct nat_rule_cfg *r)
{
	free(r->id);
	free(r->interface);
}

void nat_cfg_free(struct nat_cfg *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->n_rules; i++)
		rule_free(&n->rules[i]);
	free(n->rules);
	free(n);
}

/* An IP literal key; *present tells whether it was given. */
static int get_addr(struct es_cfg *c, const json_t *obj, const char *path, const char *key,
		    struct es_addr *out, bool *present)
{
	char *s = NULL;
	int r;

	*present = false;
	if (es_cfg_str(c, obj, path, key, &s, NULL))
		return -EINVAL;
	if (!s)
		return 0;
	*present = true;
	r = es_addr_parse(s, out);
	if (r)
		es_cfg_fail(c, ES_ERR_VALIDATION, obj, path, key, 0, "invalid IP address '%s'", s);
	free(s);
	return r ? -EINVAL : 0;
}

static int get_cidr(struct es_cfg *c, const json_t *obj, const char *path, const char *key,
		    struct es_cidr *out, bool *present)
{
	char *s = NULL, why[128];
	int r;

	*present = false;
	if (es_cfg_str(c, obj, path, key, &s, NULL))
		return -EINVAL;
	if (!s)
		return 0;
	*present = true;
	r = es_cidr_parse(s, out, why, sizeof(why));
	if (r)
		es_cfg_fail(c, ES_ERR_RAW, obj, path, key, 0, "invalid CIDR notation '%s': %s", s,
			    why);
	free(s);
	return r ? -EINVAL : 0;
}

/* Every address of a rule must be of one family; that family (0: none given). */
static int rule_family(struct es_cfg *c, const json_t *obj, const char *path,
		       struct nat_rule_cfg *r)
{
	struct {
		bool on;
		int fam;
		const char *key;
	} a[] = {
	    {r->has_translated_addr, r->translated_addr.family, "translated_addr"},
	    {r->has_external, r->external_addr.family, "external_addr"},
	    {r->has_internal, r->internal_addr.family, "internal_addr"},
	    {r->has_match_src, r->match_src.addr.family, "match_src"},
	    {r->has_match_dst, r->match_dst.addr.family, "match_dst"},
	};

	r->family = 0;
	for (size_t i = 0; i < sizeof(a) / sizeof(a[0]); i++) {
		if (!a[i].on)
			continue;
		if (r->family && r->family != a[i].fam)
			return es_cfg_fail(c, ES_ERR_VALIDATION, obj, path, a[i].key, 0,
					   "mixed address families in one rule (IPv%d and IPv%d)",
					   r->family, a[i].fam);
		r->family = a[i].fam;
	}
	return 0;
}

static int need(struct es_cfg *c, const json_t *obj, const char *path, bool have, const char *key,
		const char *type)
{
	if (have)
		return 0;
	return es_cfg_fail(c, ES_ERR_VALIDATION, obj, path, key, 0, "type %s requires %s", type,
			   key);
}

static int parse_rule(struct es_cfg *c, const json_t *obj, const char *path, struct nat_rule_cfg *r)
{
	int kind, proto;
	const char *tn;

	es_cfg_check_keys(c, obj, path, rule_keys);
	if (es_cfg_req_str(c, obj, path, "id", &r->id))
		return -EINVAL;
	if (!es_id_valid(r->id))
		return es_cfg_fail(c, ES_ERR_VALIDATION, obj, path, "id", 0,
				   "invalid id '%s': must be non-empty and contain only letters, "
				   "digits, '-' and '_'",
				   r->id);
	if (es_cfg_bool(c, obj, path, "enabled", &r->enabled, true) ||
	    es_cfg_u32(c, obj, path, "priority", &r->priority, 100))
		return -EINVAL;
	if (!r->priority)
		return es_cfg_fail(c, ES_ERR_VALIDATION, obj, path, "priority", 0,
				   "invalid priority: must be > 0");
	if (!json_object_get(obj, "type"))
		return es_cfg_fail(c, ES_ERR_PARSE, obj, path, "", SIZE_MAX,
				   "missing field `type`");
	if (es_cfg_enum_exact(c, obj, path, "type", kind_names, &kind, 0) ||
	    es_cfg_enum(c, obj, path, "match_protocol", proto_names, &proto, 3))
		return -EINVAL;
	r->kind = (enum nat_kind)kind;
	r->match_protocol = proto_nums[proto];
	tn = kind_names[kind];
	if (get_addr(c, obj, path, "translated_addr", &r->translated_addr,
		     &r->has_translated_addr) ||
	    get_addr(c, obj, path, "external_addr", &r->external_addr, &r->has_external) ||
	    get_addr(c, obj, path, "internal_addr", &r->internal_addr, &r->has_internal) ||
	    get_cidr(c, obj, path, "match_src", &r->match_src, &r->has_match_src) ||
	    get_cidr(c, obj, path, "match_dst", &r->match_dst, &r->has_match_dst) ||
	    es_cfg_u16(c, obj, path, "translated_port", &r->translated_port, 0) ||
	    es_cfg_port_range(c, obj, path, "port_range", &r->port_range, &r->has_port_range) ||
	    es_cfg_port_range(c, obj, path, "ext_port", &r->ext_port, &r->has_ext_port) ||
	    es_cfg_port_range(c, obj, path, "int_port", &r->int_port, &r->has_int_port) ||
	    es_cfg_port_range(c, obj, path, "match_dst_port", &r->match_dst_port,
			      &r->has_match_dst_port) ||
	    es_cfg_str(c, obj, path, "interface", &r->interface, NULL))
		return -EINVAL;
	if (r->interface && (!r->interface[0] || strlen(r->interface) >= 16))
		return es_cfg_fail(c, ES_ERR_VALIDATION, obj, path, "interface", 0,
				   "invalid interface name '%s'", r->interface);
	if (rule_family(c, obj, path, r))
		return -EINVAL;
	switch (r->kind) {
	case NAT_K_SNAT:
	case NAT_K_DNAT: return need(c, obj, path, r->has_translated_addr, "translated_addr", tn);
	case NAT_K_MASQUERADE: return need(c, obj, path, r->interface != NULL, "interface", tn);
	case NAT_K_REDIRECT:
		return need(c, obj, path, r->translated_port > 0, "translated_port", tn);
	case NAT_K_ONE_TO_ONE:
		return need(c, obj, path, r->has_external, "external_addr", tn) ||
			       need(c, obj, path, r->has_internal, "internal_addr", tn)
			   ? -EINVAL
			   : 0;
	case NAT_K_PORT_FORWARD:
		if (need(c, obj, path, r->has_ext_port, "ext_port", tn) ||
		    need(c, obj, path, r->has_internal, "internal_addr", tn) ||
		    need(c, obj, path, r->has_int_port, "int_port", tn))
			return -EINVAL;
		if (r->ext_port.end - r->ext_port.start != r->int_port.end - r->int_port.start)
			return es_cfg_fail(c, ES_ERR_VALIDATION, obj, path, "int_port", 0,
					   "int_port covers %u ports but ext_port %u: they must "
					   "be the same size",
					   r->int_port.end - r->int_port.start + 1u,
					   r->ext_port.end - r->ext_port.start + 1u);
		if (r->match_protocol == IPPROTO_ICMP)
			return es_cfg_fail(c, ES_ERR_VALIDATION, obj, path, "match_protocol", 0,
					   "type port_forward needs ports: tcp, udp or any");
		return 0;
	}
	return 0;
}

static int parse_list(struct es_cfg *c, const json_t *node, const char *path, const char *key,
		      bool dnat, struct nat_cfg *n)
{
	json_t *list, *item, *seen;
	char lpath[128], ipath[160];
	size_t i, base = n->n_rules, max = ES_NAT_MAX_RULES;

	if (es_cfg_array(c, node, path, key, &list))
		return -EINVAL;
	if (!list)
		return 0;
	if (json_array_size(list) > max)
		return es_cfg_fail(c, ES_ERR_VALIDATION, node, path, key, 0,
				   "count %zu exceeds maximum %zu", json_array_size(list), max);
	es_path_key(lpath, sizeof(lpath), path, key);
	json_array_foreach (list, i, item) {
		struct nat_rule_cfg *r = &n->rules[n->n_rules];

		es_path_idx(ipath, sizeof(ipath), lpath, i);
		if (!json_is_object(item)) {
			char d[64];

			es_json_describe(item, d, sizeof(d));
			return es_cfg_fail(c, ES_ERR_PARSE, list, lpath, NULL, i,
					   "invalid type: %s, expected struct NatRule", d);
		}
		memset(r, 0, sizeof(*r));
		r->dnat_list = dnat;
		r->order = n->n_rules;
		r->rule_id = (uint32_t)n->n_rules + 1;
		n->n_rules++;
		if (parse_rule(c, item, ipath, r))
			return -EINVAL;
	}
	/* Ids unique within the list, checked once all parsed (one exit). */
	seen = json_object();
	json_array_foreach (list, i, item) {
		es_path_idx(ipath, sizeof(ipath), lpath, i);
		if (es_cfg_unique_id(c, seen, item, ipath, n->rules[base + i].id,
				     "duplicate rule: %s", n->rules[base + i].id))
			break;
	}
	json_decref(seen);
	return i < json_array_size(list) ? -EINVAL : 0;
}

struct nat_cfg *nat_cfg_parse(struct es_cfg *c, const json_t *node, const char *path)
{
	struct nat_cfg *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	n->rules = calloc(2 * ES_NAT_MAX_RULES, sizeof(*n->rules));
	if (!n->rules)
		goto fail;
	es_cfg_check_keys(c, node, path, nat_keys);
	if (es_cfg_bool(c, node, path, "enabled", &n->enabled, false) ||
	    parse_list(c, node, path, "dnat_rules", true, n) ||
	    parse_list(c, node, path, "snat_rules", false, n))
		goto fail;
	return n;
fail:
	nat_cfg_free(n);
	return NULL;
}

static json_t *addr_json(const struct es_addr *a)
{
	char b[64];

	es_addr_format(a, b, sizeof(b));
	return json_string(b);
}

static json_t *range_json(const struct es_port_range *p)
{
	char b[32];

	es_port_range_format(p, b, sizeof(b));
	return json_string(b);
}

static json_t *rule_json(const struct nat_rule_cfg *r)
{
	json_t *o = json_pack("{s:s,s:b,s:I,s:s}", "id", r->id, "enabled", r->enabled, "priority",
			      (json_int_t)r->priority, "type", kind_names[r->kind]);
	char b[64];

	if (r->has_translated_addr)
		json_object_set_new(o, "translated_addr", addr_json(&r->translated_addr));
	if (r->translated_port)
		json_object_set_new(o, "translated_port", json_integer(r->translated_port));
	if (r->has_port_range)
		json_object_set_new(o, "port_range", range_json(&r->port_range));
	if (r->interface)
		json_object_set_new(o, "interface", json_string(r->interface));
	if (r->has_external)
		json_object_set_new(o, "external_addr", addr_json(&r->external_addr));
	if (r->has_internal)
		json_object_set_new(o, "internal_addr", addr_json(&r->internal_addr));
	if (r->has_ext_port)
		json_object_set_new(o, "ext_port", range_json(&r->ext_port));
	if (r->has_int_port)
		json_object_set_new(o, "int_port", range_json(&r->int_port));
	if (r->has_match_src) {
		es_cidr_format_full(&r->match_src, b, sizeof(b));
		json_object_set_new(o, "match_src", json_string(b));
	}
	if (r->has_match_dst) {
		es_cidr_format_full(&r->match_dst, b, sizeof(b));
		json_object_set_new(o, "match_dst", json_string(b));
	}
	if (r->has_match_dst_port)
		json_object_set_new(o, "match_dst_port", range_json(&r->match_dst_port));
	for (int i = 0; proto_names[i]; i++)
		if (proto_nums[i] == r->match_protocol)
			json_object_set_new(o, "match_protocol", json_string(proto_names[i]));
	return o;
}

json_t *nat_cfg_to_json(const struct nat_cfg *n)
{
	json_t *o = json_pack("{s:b,s:[],s:[]}", "enabled", n->enabled, "snat_rules", "dnat_rules");

	for (size_t i = 0; i < n->n_rules; i++)
		json_array_append_new(
		    json_object_get(o, n->rules[i].dnat_list ? "dnat_rules" : "snat_rules"),
		    rule_json(&n->rules[i]));
	return o;
}

/* ---- compilation --------------------------------------------------------------------- */

/* One rule entry, family-independent; written into the v4 or v6 layout. */
struct entry {
	uint32_t src[4], src_mask[4], dst[4], dst_mask[4], nat[4];
	uint16_t dport_start, dport_end, nat_port_start, nat_port_end;
	uint8_t proto, flags, type;
	uint32_t ifindex, rule_id;
};

static void mask_words(unsigned plen, int v6, uint32_t m[4])
{
	unsigned bits = v6 ? 128 : 32;

	memset(m, 0, 16);
	for (unsigned i = 0; i < (v6 ? 4u : 1u); i++) {
		unsigned take = plen > 32 * i ? plen - 32 * i : 0;

		if (take > 32)
			take = 32;
		m[i] = take ? (uint32_t)(0xffffffffu << (32 - take)) : 0;
	}
	(void)bits;
}

static void set_cidr(const struct es_cidr *c, uint32_t ip[4], uint32_t mask[4])
{
	es_addr_words(&c->addr, ip);
	mask_words(c->plen, c->addr.family == 6, mask);
}

static void set_host(const struct es_addr *a, uint32_t ip[4], uint32_t mask[4])
{
	es_addr_words(a, ip);
	mask_words(a->family == 6 ? 128 : 32, a->family == 6, mask);
}

static void emit(struct nat_compiled *out, const struct entry *e, bool dnat, int fam)
{
	if (fam == 4) {
		uint32_t *n = dnat ? &out->n_dnat4 : &out->n_snat4;
		struct es_nat_rule *r = dnat ? &out->dnat4[*n] : &out->snat4[*n];

		if (*n >= ES_NAT_MAX_RULES) {
			out->skipped++;
			return;
		}
		memset(r, 0, sizeof(*r));
		r->match_src_ip = e->src[0];
		r->match_src_mask = e->src_mask[0];
		r->match_dst_ip = e->dst[0];
		r->match_dst_mask = e->dst_mask[0];
		r->match_dst_port_start = e->dport_start;
		r->match_dst_port_end = e->dport_end;
		r->match_protocol = e->proto;
		r->match_flags = e->flags;
		r->nat_type = e->type;
		r->nat_addr = e->nat[0];
		r->nat_port_start = e->nat_port_start;
		r->nat_port_end = e->nat_port_end;
		r->nat_interface = e->ifindex;
		r->rule_id = e->rule_id;
		(*n)++;
	} else {
		uint32_t *n = dnat ? &out->n_dnat6 : &out->n_snat6;
		struct es_nat_rule_v6 *r = dnat ? &out->dnat6[*n] : &out->snat6[*n];

		if (*n >= ES_NAT_MAX_RULES6) {
			out->skipped++;
			return;
		}
		memset(r, 0, sizeof(*r));
		memcpy(r->match_src_ip, e->src, 16);
		memcpy(r->match_src_mask, e->src_mask, 16);
		memcpy(r->match_dst_ip, e->dst, 16);
		memcpy(r->match_dst_mask, e->dst_mask, 16);
		r->match_dst_port_start = e->dport_start;
		r->match_dst_port_end = e->dport_end;
		/* `icmp` means ICMPv6 in the IPv6 array. */
		r->match_protocol = e->proto == IPPROTO_ICMP ? IPPROTO_ICMPV6 : e->proto;
		r->match_flags = e->flags;
		r->nat_type = e->type;
		memcpy(r->nat_addr, e->nat, 16);
		r->nat_port_start = e->nat_port_start;
		r->nat_port_end = e->nat_port_end;
		r->nat_interface = e->ifindex;
		r->rule_id = e->rule_id;
		(*n)++;
	}
}

/* Emit into the families the rule applies to (both when no address pins one). */
static void emit_families(struct nat_compiled *out, const struct entry *e, bool dnat, int fam)
{
	if (fam != 6)
		emit(out, e, dnat, 4);
	if (fam != 4)
		emit(out, e, dnat, 6);
}

static int by_priority(const void *a, const void *b)
{
	const struct nat_rule_cfg *x = *(const struct nat_rule_cfg *const *)a,
				  *y = *(const struct nat_rule_cfg *const *)b;

	if (x->priority != y->priority)
		return x->priority < y->priority ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

static void compile_rule(const struct nat_rule_cfg *r, int (*ifindex_of)(const char *),
			 struct nat_compiled *out)
{
	struct entry e = {.proto = r->match_protocol, .rule_id = r->rule_id};

	if (r->match_protocol)
		e.flags |= ES_NAT_M_PROTO;
	if (r->has_match_src) {
		set_cidr(&r->match_src, e.src, e.src_mask);
		e.flags |= ES_NAT_M_SRC;
	}
	if (r->has_match_dst) {
		set_cidr(&r->match_dst, e.dst, e.dst_mask);
		e.flags |= ES_NAT_M_DST;
	}
	if (r->has_match_dst_port) {
		e.dport_start = r->match_dst_port.start;
		e.dport_end = r->match_dst_port.end;
		e.flags |= ES_NAT_M_DPORT;
	}
	if (r->interface) {
		e.ifindex = (uint32_t)ifindex_of(r->interface);
		if (!e.ifindex) {
			out->skipped++; /* the interface does not exist (yet) */
			return;
		}
	}
	switch (r->kind) {
	case NAT_K_SNAT:
	case NAT_K_MASQUERADE:
		e.type = r->kind == NAT_K_SNAT ? ES_NAT_T_SNAT : ES_NAT_T_MASQUERADE;
		if (r->has_translated_addr)
			es_addr_words(&r->translated_addr, e.nat);
		if (r->has_port_range) {
			e.nat_port_start = r->port_range.start;
			e.nat_port_end = r->port_range.end;
		}
		emit_families(out, &e, false, r->family);
		break;
	case NAT_K_DNAT:
	case NAT_K_REDIRECT:
		e.type = r->kind == NAT_K_DNAT ? ES_NAT_T_DNAT : ES_NAT_T_REDIRECT;
		if (r->has_translated_addr)
			es_addr_words(&r->translated_addr, e.nat);
		e.nat_port_start = e.nat_port_end = r->translated_port;
		emit_families(out, &e, true, r->family);
		break;
	case NAT_K_PORT_FORWARD:
		e.type = ES_NAT_T_DNAT;
		e.dport_start = r->ext_port.start;
		e.dport_end = r->ext_port.end;
		e.flags |= ES_NAT_M_DPORT;
		es_addr_words(&r->internal_addr, e.nat);
		e.nat_port_start = r->int_port.start;
		e.nat_port_end = r->int_port.end;
		emit_families(out, &e, true, r->family);
		break;
	case NAT_K_ONE_TO_ONE: {
		struct entry in = e, outb = e;

		/* In: to the external address → the internal one; out: the reverse. */
		in.type = outb.type = ES_NAT_T_ONE_TO_ONE;
		in.flags = (uint8_t)((e.flags & ~(ES_NAT_M_SRC | ES_NAT_M_DST)) | ES_NAT_M_DST);
		set_host(&r->external_addr, in.dst, in.dst_mask);
		memset(in.src, 0, sizeof(in.src));
		memset(in.src_mask, 0, sizeof(in.src_mask));
		es_addr_words(&r->internal_addr, in.nat);
		outb.flags = (uint8_t)((e.flags & ~(ES_NAT_M_SRC | ES_NAT_M_DST | ES_NAT_M_DPORT)) |
				       ES_NAT_M_SRC);
		set_host(&r->internal_addr, outb.src, outb.src_mask);
		memset(outb.dst, 0, sizeof(outb.dst));
		memset(outb.dst_mask, 0, sizeof(outb.dst_mask));
		es_addr_words(&r->external_addr, outb.nat);
		emit_families(out, &in, true, r->family);
		emit_families(out, &outb, false, r->family);
		break;
	}
	}
}

void nat_compile(const struct nat_cfg *n, int (*ifindex_of)(const char *name),
		 struct nat_compiled *out)
{
	const struct nat_rule_cfg **order = calloc(n->n_rules + 1, sizeof(*order));
	size_t k = 0;

	memset(out, 0, sizeof(*out));
	if (!order) {
		out->skipped = n->n_rules;
		return;
	}
	for (size_t i = 0; i < n->n_rules; i++)
		if (n->rules[i].enabled)
			order[k++] = &n->rules[i];
	qsort(order, k, sizeof(*order), by_priority);
	for (size_t i = 0; i < k; i++)
		compile_rule(order[i], ifindex_of, out);
	free(order);
}
