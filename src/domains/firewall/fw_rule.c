// SPDX-License-Identifier: AGPL-3.0-only
/*
 * Firewall rules (network.md §2.1): parsing and validation of one rule from
 * the configuration or a REST body, copies, and the JSON shapes.
 */
#include "domains/firewall/fw.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const rule_keys[] = {
    "id",
    "priority",
    "action",
    "enabled",
    "protocol",
    "src_ip",
    "dst_ip",
    "src_port",
    "dst_port",
    "vlan_id",
    "state",
    "ct_states",
    "flags",
    "icmp_type",
    "icmp_code",
    "negate_source",
    "negate_destination",
    "dscp_match",
    "dscp_mark",
    "max_states",
    "src_mac",
    "dst_mac",
    "src_alias",
    "dst_alias",
    "src_port_alias",
    "dst_port_alias",
    "schedule",
    "scope",
    "route_to",
    "reply_to",
    "dup_to",
    "description",
    "system",
    NULL,
};

static const char *const action_names[] = {"allow", "pass", "deny", "drop", "block", "log", NULL};
static const char *const proto_names[] = {"any", "*", "tcp", "udp", "icmp", NULL};
static const char *const state_names[] = {"new", "established", "related", "invalid", NULL};

#define FAIL(c, o, path, key, ...) es_cfg_fail(c, ES_ERR_VALIDATION, o, path, key, 0, __VA_ARGS__)

static int parse_cidr_field(struct es_cfg *c, const json_t *o, const char *path, const char *key,
			    bool *has, struct es_cidr *out)
{
	const json_t *v = json_object_get(o, key);
	char why[128];

	*has = false;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v)) {
		char d[320];

		es_json_describe(v, d, sizeof(d));
		return es_cfg_fail(c, ES_ERR_PARSE, o, path, key, 0,
				   "invalid type: %s, expected a string", d);
	}
	if (strlen(json_string_value(v)) > 512)
		return FAIL(c, o, path, key, "%s exceeds maximum length of 512 characters", key);
	if (es_cidr_parse(json_string_value(v), out, why, sizeof(why)))
		return FAIL(c, o, path, key, "invalid CIDR notation '%s': %s", json_string_value(v),
			    why);
	*has = true;
	return 0;
}

/* `80`, `"80"`, `"a-b"` or `{start, end}`: one range. */
static int parse_port_field(struct es_cfg *c, const json_t *o, const char *path, const char *key,
			    struct fw_ports *out)
{
	struct es_port_range r;
	bool present;

	out->r = NULL;
	out->n = 0;
	if (es_cfg_port_range(c, o, path, key, &r, &present))
		return -EINVAL;
	if (!present)
		return 0;
	out->r = malloc(sizeof(*out->r));
	if (!out->r)
		return -ENOMEM;
	out->r[0] = r;
	out->n = 1;
	return 0;
}

static int parse_mac(const char *s, uint8_t mac[6])
{
	unsigned v[6];
	char tail;

	if (strlen(s) != 17 || sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3],
				      &v[4], &v[5], &tail) != 6)
		return -EINVAL;
	for (int i = 0; i < 17; i++)
		if ((i % 3 == 2) != (s[i] == ':'))
			return -EINVAL;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)v[i];
	return 0;
}

static int parse_mac_field(struct es_cfg *c, const json_t *o, const char *path, const char *key,
			   bool *has, uint8_t mac[6])
{
	char *s = NULL;
	int r;

	*has = false;
	if (es_cfg_str(c, o, path, key, &s, NULL))
		return -EINVAL;
	if (!s)
		return 0;
	r = parse_mac(s, mac);
	if (r)
		FAIL(c, o, path, key,
		     "invalid MAC address '%s': expected six hex groups aa:bb:cc:dd:ee:ff", s);
	else
		*has = true;
	free(s);
	return r;
}

/* "S/SA": set/mask over FSRPAU (a missing mask means the set itself). */
static int parse_flags(const char *s, uint8_t *set, uint8_t *mask)
{
	static const char letters[] = "FSRPAU";
	const char *slash = strchr(s, '/');
	uint8_t *cur = set;

	*set = *mask = 0;
	if (!*s || s == slash)
		return -EINVAL;
	for (const char *p = s; *p; p++) {
		const char *l;

		if (*p == '/') {
			if (cur == mask || !p[1])
				return -EINVAL;
			cur = mask;
			continue;
		}
		l = strchr(letters, *p >= 'a' && *p <= 'z' ? *p - 32 : *p);
		if (!l || !*l)
			return -EINVAL;
		*cur |= (uint8_t)(1u << (l - letters));
	}
	if (!slash)
		*mask = *set;
	return 0;
}

static int parse_states(struct es_cfg *c, const json_t *o, const char *path, uint8_t *mask)
{
	const char *key = json_object_get(o, "state") ? "state" : "ct_states";
	char **v = NULL;
	size_t n;

	*mask = 0;
	if (es_cfg_strv(c, o, path, key, &v, &n))
		return -EINVAL;
	for (size_t i = 0; v && v[i]; i++) {
		int k;

		for (k = 0; state_names[k]; k++)
			if (!strcasecmp(v[i], state_names[k]))
				break;
		if (!state_names[k]) {
			FAIL(c, o, path, key,
			     "invalid state '%s': expected new, established, related or invalid",
			     v[i]);
			es_strv_free(v);
			return -EINVAL;
		}
		*mask |= (uint8_t)(1u << k);
	}
	es_strv_free(v);
	return 0;
}

static int parse_scope(struct es_cfg *c, const json_t *o, const char *path, struct fw_rule *r)
{
	const json_t *v = json_object_get(o, "scope");
	const char *s, *name;
	char full[300];

	r->scope = FW_SCOPE_GLOBAL;
	if (!v || json_is_null(v))
		return 0;
	if (json_is_object(v)) {
		const json_t *i = json_object_get(v, "interface"),
			     *n = json_object_get(v, "namespace");

		es_path_key(full, sizeof(full), path, "scope");
		if ((i && n) || (!i && !n))
			return FAIL(c, o, path, "scope",
				    "scope object needs exactly one of interface, namespace");
		if (!json_is_string(i ? i : n))
			return es_cfg_fail(c, ES_ERR_PARSE, v, full, i ? "interface" : "namespace",
					   0, "invalid type: expected a string");
		r->scope = i ? FW_SCOPE_IFACE : FW_SCOPE_NS;
		name = json_string_value(i ? i : n);
	} else if (json_is_string(v)) {
		s = json_string_value(v);
		if (strlen(s) > 128)
			return FAIL(c, o, path, "scope",
				    "scope exceeds maximum length of 128 characters");
		if (!strcasecmp(s, "global"))
			return 0;
		if (!strncasecmp(s, "interface:", 10)) {
			r->scope = FW_SCOPE_IFACE;
			name = s + 10;
		} else if (!strncasecmp(s, "namespace:", 10)) {
			r->scope = FW_SCOPE_NS;
			name = s + 10;
		} else {
			r->scope = FW_SCOPE_IFACE; /* a bare name is an interface */
			name = s;
		}
	} else {
		char d[320];

		es_json_describe(v, d, sizeof(d));
		return es_cfg_fail(c, ES_ERR_PARSE, o, path, "scope", 0,
				   "invalid type: %s, expected a string or a map", d);
	}
	if (!*name)
		return FAIL(c, o, path, "scope", "scope needs a name");
	r->scope_name = strdup(name);
	return r->scope_name ? 0 : -ENOMEM;
}

static int parse_route(struct es_cfg *c, const json_t *o, const char *path, struct fw_rule *r)
{
	static const char *const keys[] = {"route_to", "reply_to", "dup_to"};
	char full[300];
	int found = 0;

	for (int i = 0; i < 3; i++) {
		const json_t *v = json_object_get(o, keys[i]);

		if (!v || json_is_null(v) || (json_is_false(v) && i == 1))
			continue;
		if (found++)
			return FAIL(c, o, path, keys[i],
				    "at most one of route_to, reply_to, dup_to per rule");
		es_path_key(full, sizeof(full), path, keys[i]);
		if (i == 1 && json_is_true(v)) {
			/* reply_to: true = the ingress interface */
		} else if (!json_is_object(v)) {
			return es_cfg_fail(c, ES_ERR_PARSE, o, path, keys[i], 0,
					   "invalid type: expected a map");
		} else {
			const json_t *ifn = json_object_get(v, "interface");

			if (!ifn || !json_is_string(ifn) || !*json_string_value(ifn))
				return FAIL(c, v, full, "interface", "%s needs an interface",
					    keys[i]);
			if (i == 0 && !json_is_string(json_object_get(v, "gateway")) &&
			    !json_is_integer(json_object_get(v, "gateway")))
				return FAIL(c, v, full, "gateway",
					    "route_to needs a gateway (id or address)");
		}
		r->route = (enum fw_route)(i + 1);
		r->route_cfg = json_deep_copy(v);
	}
	return 0;
}

static int parse_u8_range(struct es_cfg *c, const json_t *o, const char *path, const char *key,
			  int max, int *out)
{
	uint8_t v;

	*out = -1;
	if (es_cfg_u8(c, o, path, key, &v, 0))
		return -EINVAL;
	if (!json_object_get(o, key) || json_is_null(json_object_get(o, key)))
		return 0;
	if (v > max)
		return FAIL(c, o, path, key, "invalid %s %u: must be 0-%d", key, v, max);
	*out = v;
	return 0;
}

int fw_rule_parse(struct es_cfg *c, const json_t *o, const char *path, struct fw_rule *r)
{
	char *s = NULL;
	int act, proto, ret = -EINVAL;

	memset(r, 0, sizeof(*r));
	r->icmp_type = r->icmp_code = r->dscp_match = r->dscp_mark = -1;
	if (!json_is_object(o)) {
		char d[320];

		es_json_describe(o, d, sizeof(d));
		return es_cfg_fail(c, ES_ERR_PARSE, o, path, "", SIZE_MAX,
				   "invalid type: %s, expected struct FirewallRule", d);
	}
	es_cfg_check_keys(c, o, path, rule_keys);

	if (es_cfg_req_str(c, o, path, "id", &r->id))
		goto fail;
	if (strlen(r->id) > 256) {
		FAIL(c, o, path, "id", "id exceeds maximum length of 256 characters (got %zu)",
		     strlen(r->id));
		goto fail;
	}
	if (!es_id_valid(r->id)) {
		FAIL(c, o, path, "id",
		     "invalid rule id '%s': must be non-empty and contain only letters, digits, "
		     "'-' and '_'",
		     r->id);
		goto fail;
	}
	if (es_cfg_req_u32(c, o, path, "priority", &r->priority))
		goto fail;
	if (r->priority == 0) {
		FAIL(c, o, path, "priority", "invalid priority: must be > 0");
		goto fail;
	}
	if (!json_object_get(o, "action")) {
		es_cfg_req_str(c, o, path, "action", &s);
		goto fail;
	}
	if (es_cfg_enum(c, o, path, "action", action_names, &act, 0))
		goto fail;
	r->action = act <= 1 ? ES_FW_ACT_PASS : act <= 4 ? ES_FW_ACT_DROP : ES_FW_ACT_LOG;
	if (es_cfg_bool(c, o, path, "enabled", &r->enabled, true) ||
	    es_cfg_enum(c, o, path, "protocol", proto_names, &proto, 0))
		goto fail;
	r->proto = proto <= 1 ? FW_PROTO_ANY : (enum fw_proto)(proto - 1);

	if (parse_cidr_field(c, o, path, "src_ip", &r->has_src, &r->src) ||
	    parse_cidr_field(c, o, path, "dst_ip", &r->has_dst, &r->dst))
		goto fail;
	if (r->has_src && r->has_dst && r->src.addr.family != r->dst.addr.family) {
		FAIL(c, o, path, "dst_ip",
		     "src_ip and dst_ip must be of the same IP family (got IPv%u and IPv%u)",
		     r->src.addr.family, r->dst.addr.family);
		goto fail;
	}
	if (parse_port_field(c, o, path, "src_port", &r->sports) ||
	    parse_port_field(c, o, path, "dst_port", &r->dports))
		goto fail;
	if (es_cfg_u16(c, o, path, "vlan_id", &r->vlan_id, 0))
		goto fail;
	if (r->vlan_id > 4094) {
		FAIL(c, o, path, "vlan_id", "invalid vlan_id %u: must be 0-4094 (0 = any)",
		     r->vlan_id);
		goto fail;
	}
	if (parse_states(c, o, path, &r->ct_mask))
		goto fail;

	if (es_cfg_str(c, o, path, "flags", &s, NULL))
		goto fail;
	if (s) {
		if (parse_flags(s, &r->flags_set, &r->flags_mask)) {
			FAIL(c, o, path, "flags",
			     "invalid TCP flags '%s': expected set/mask over F, S, R, P, A, U "
			     "(e.g. \"S/SA\")",
			     s);
			goto fail;
		}
		r->has_flags = true;
		if (r->flags_set & ~r->flags_mask)
			es_cfg_warn(c, "%s.flags: set bits '%s' outside the mask never match", path,
				    s);
		free(s);
		s = NULL;
	}
	if (parse_u8_range(c, o, path, "icmp_type", 255, &r->icmp_type) ||
	    parse_u8_range(c, o, path, "icmp_code", 255, &r->icmp_code) ||
	    es_cfg_bool(c, o, path, "negate_source", &r->negate_src, false) ||
	    es_cfg_bool(c, o, path, "negate_destination", &r->negate_dst, false) ||
	    parse_u8_range(c, o, path, "dscp_match", 63, &r->dscp_match) ||
	    parse_u8_range(c, o, path, "dscp_mark", 63, &r->dscp_mark) ||
	    es_cfg_u16(c, o, path, "max_states", &r->max_states, 0) ||
	    parse_mac_field(c, o, path, "src_mac", &r->has_smac, r->smac) ||
	    parse_mac_field(c, o, path, "dst_mac", &r->has_dmac, r->dmac) ||
	    es_cfg_str(c, o, path, "src_alias", &r->src_alias, NULL) ||
	    es_cfg_str(c, o, path, "dst_alias", &r->dst_alias, NULL) ||
	    es_cfg_str(c, o, path, "src_port_alias", &r->src_port_alias, NULL) ||
	    es_cfg_str(c, o, path, "dst_port_alias", &r->dst_port_alias, NULL) ||
	    es_cfg_str(c, o, path, "schedule", &r->schedule, NULL) || parse_scope(c, o, path, r) ||
	    parse_route(c, o, path, r))
		goto fail;

	/* Cross-field rules. */
	if ((r->sports.n || r->dports.n || r->src_port_alias || r->dst_port_alias) &&
	    r->proto == FW_PROTO_ICMP) {
		FAIL(c, o, path, r->sports.n ? "src_port" : "dst_port",
		     "ports need protocol tcp, udp or any (not icmp)");
		goto fail;
	}
	if (r->has_flags && r->proto != FW_PROTO_TCP) {
		FAIL(c, o, path, "flags", "TCP flags need protocol tcp");
		goto fail;
	}
	if ((r->icmp_type >= 0 || r->icmp_code >= 0) && r->proto != FW_PROTO_ICMP) {
		FAIL(c, o, path, r->icmp_type >= 0 ? "icmp_type" : "icmp_code",
		     "icmp_type and icmp_code need protocol icmp");
		goto fail;
	}
	if (r->negate_src && !r->has_src && !r->src_alias)
		es_cfg_warn(c, "%s.negate_source: no source address to negate", path);
	if (r->negate_dst && !r->has_dst && !r->dst_alias)
		es_cfg_warn(c, "%s.negate_destination: no destination address to negate", path);
	return 0;
fail:
	free(s);
	fw_rule_free(r);
	return ret;
}

void fw_rule_free(struct fw_rule *r)
{
	if (!r)
		return;
	free(r->id);
	free(r->sports.r);
	free(r->dports.r);
	free(r->src_alias);
	free(r->dst_alias);
	free(r->src_port_alias);
	free(r->dst_port_alias);
	free(r->schedule);
	free(r->scope_name);
	json_decref(r->route_cfg);
	memset(r, 0, sizeof(*r));
}

static int dup_str(char **dst, const char *src)
{
	*dst = NULL;
	if (!src)
		return 0;
	*dst = strdup(src);
	return *dst ? 0 : -ENOMEM;
}

static int dup_ports(struct fw_ports *dst, const struct fw_ports *src)
{
	dst->r = NULL;
	dst->n = src->n;
	if (!src->n)
		return 0;
	dst->r = malloc(src->n * sizeof(*dst->r));
	if (!dst->r)
		return -ENOMEM;
	memcpy(dst->r, src->r, src->n * sizeof(*dst->r));
	return 0;
}

int fw_rule_copy(struct fw_rule *d, const struct fw_rule *s)
{
	*d = *s;
	d->route_cfg = s->route_cfg ? json_deep_copy(s->route_cfg) : NULL;
	if (dup_str(&d->id, s->id) || dup_ports(&d->sports, &s->sports) ||
	    dup_ports(&d->dports, &s->dports) || dup_str(&d->src_alias, s->src_alias) ||
	    dup_str(&d->dst_alias, s->dst_alias) ||
	    dup_str(&d->src_port_alias, s->src_port_alias) ||
	    dup_str(&d->dst_port_alias, s->dst_port_alias) || dup_str(&d->schedule, s->schedule) ||
	    dup_str(&d->scope_name, s->scope_name)) {
		fw_rule_free(d);
		return -ENOMEM;
	}
	return 0;
}

static const char *action_name(uint8_t a)
{
	return a == ES_FW_ACT_DROP ? "deny" : a == ES_FW_ACT_LOG ? "log" : "allow";
}

static const char *proto_name(enum fw_proto p)
{
	static const char *const n[] = {"any", "tcp", "udp", "icmp"};

	return p <= FW_PROTO_ICMP ? n[p] : "other";
}

static json_t *cidr_json(bool has, const struct es_cidr *c)
{
	char buf[64];

	if (!has)
		return json_null();
	es_cidr_format(c, buf, sizeof(buf));
	return json_string(buf);
}

static json_t *ports_json(const struct fw_ports *p)
{
	char buf[16];

	if (!p->n)
		return json_null();
	es_port_range_format(&p->r[0], buf, sizeof(buf));
	return json_string(buf);
}

static json_t *scope_json(const struct fw_rule *r)
{
	char buf[300];

	if (r->scope == FW_SCOPE_GLOBAL)
		return json_string("global");
	snprintf(buf, sizeof(buf), "%s:%s", r->scope == FW_SCOPE_IFACE ? "interface" : "namespace",
		 r->scope_name);
	return json_string(buf);
}

static void flags_str(uint8_t v, char *out)
{
	static const char letters[] = "FSRPAU";

	for (int i = 0; i < 6; i++)
		if (v & (1u << i))
			*out++ = letters[i];
	*out = '\0';
}

static void set_opt_str(json_t *o, const char *k, const char *v)
{
	if (v)
		json_object_set_new(o, k, json_string(v));
}

/* Keys beyond the REST `Rule`, present only when set (both shapes share them). */
static void add_extras(json_t *o, const struct fw_rule *r)
{
	static const char *const states[] = {"new", "established", "related", "invalid"};
	char buf[32], b2[16];

	if (r->ct_mask) {
		json_t *a = json_array();

		for (int i = 0; i < 4; i++)
			if (r->ct_mask & (1u << i))
				json_array_append_new(a, json_string(states[i]));
		json_object_set_new(o, "state", a);
	}
	if (r->has_flags) {
		flags_str(r->flags_set, buf);
		flags_str(r->flags_mask, b2);
		snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "/%s", b2);
		json_object_set_new(o, "flags", json_string(buf));
	}
	if (r->icmp_type >= 0)
		json_object_set_new(o, "icmp_type", json_integer(r->icmp_type));
	if (r->icmp_code >= 0)
		json_object_set_new(o, "icmp_code", json_integer(r->icmp_code));
	if (r->negate_src)
		json_object_set_new(o, "negate_source", json_true());
	if (r->negate_dst)
		json_object_set_new(o, "negate_destination", json_true());
	if (r->dscp_match >= 0)
		json_object_set_new(o, "dscp_match", json_integer(r->dscp_match));
	if (r->dscp_mark >= 0)
		json_object_set_new(o, "dscp_mark", json_integer(r->dscp_mark));
	if (r->max_states)
		json_object_set_new(o, "max_states", json_integer(r->max_states));
	for (int i = 0; i < 2; i++) {
		const uint8_t *m = i ? r->dmac : r->smac;

		if (!(i ? r->has_dmac : r->has_smac))
			continue;
		snprintf(buf, sizeof(buf), "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3],
			 m[4], m[5]);
		json_object_set_new(o, i ? "dst_mac" : "src_mac", json_string(buf));
	}
	set_opt_str(o, "src_alias", r->src_alias);
	set_opt_str(o, "dst_alias", r->dst_alias);
	set_opt_str(o, "src_port_alias", r->src_port_alias);
	set_opt_str(o, "dst_port_alias", r->dst_port_alias);
	set_opt_str(o, "schedule", r->schedule);
	if (r->route_cfg) {
		static const char *const rk[] = {"", "route_to", "reply_to", "dup_to"};

		json_object_set(o, rk[r->route], r->route_cfg);
	}
}

json_t *fw_rule_to_json(const struct fw_rule *r)
{
	json_t *o = json_object();

	json_object_set_new(o, "id", json_string(r->id));
	json_object_set_new(o, "enabled", json_boolean(r->enabled));
	json_object_set_new(o, "priority", json_integer(r->priority));
	json_object_set_new(o, "action", json_string(action_name(r->action)));
	json_object_set_new(o, "protocol", json_string(proto_name(r->proto)));
	json_object_set_new(o, "src_ip", cidr_json(r->has_src, &r->src));
	json_object_set_new(o, "dst_ip", cidr_json(r->has_dst, &r->dst));
	json_object_set_new(o, "src_port", ports_json(&r->sports));
	json_object_set_new(o, "dst_port", ports_json(&r->dports));
	json_object_set_new(o, "scope", scope_json(r));
	if (r->vlan_id)
		json_object_set_new(o, "vlan_id", json_integer(r->vlan_id));
	add_extras(o, r);
	if (r->system)
		json_object_set_new(o, "system", json_true());
	return o;
}

json_t *fw_rule_to_cfg_json(const struct fw_rule *r)
{
	json_t *o = json_object();
	json_t *v;

	json_object_set_new(o, "id", json_string(r->id));
	json_object_set_new(o, "priority", json_integer(r->priority));
	json_object_set_new(o, "action", json_string(action_name(r->action)));
	json_object_set_new(o, "enabled", json_boolean(r->enabled));
	json_object_set_new(o, "protocol", json_string(proto_name(r->proto)));
	if ((v = cidr_json(r->has_src, &r->src)) && !json_is_null(v))
		json_object_set_new(o, "src_ip", v);
	else
		json_decref(v);
	if ((v = cidr_json(r->has_dst, &r->dst)) && !json_is_null(v))
		json_object_set_new(o, "dst_ip", v);
	else
		json_decref(v);
	if (r->sports.n)
		json_object_set_new(o, "src_port", ports_json(&r->sports));
	if (r->dports.n)
		json_object_set_new(o, "dst_port", ports_json(&r->dports));
	if (r->vlan_id)
		json_object_set_new(o, "vlan_id", json_integer(r->vlan_id));
	json_object_set_new(o, "scope", scope_json(r));
	add_extras(o, r);
	return o;
}

/* ---- rule sets ------------------------------------------------------------------ */

void fw_ruleset_free(struct fw_ruleset *s)
{
	for (size_t i = 0; i < s->n; i++)
		fw_rule_free(&s->v[i]);
	free(s->v);
	memset(s, 0, sizeof(*s));
}

int fw_ruleset_push(struct fw_ruleset *s, const struct fw_rule *r)
{
	if (s->n == s->cap) {
		size_t nc = s->cap ? s->cap * 2 : 16;
		struct fw_rule *nv = realloc(s->v, nc * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		s->v = nv;
		s->cap = nc;
	}
	if (fw_rule_copy(&s->v[s->n], r))
		return -ENOMEM;
	s->n++;
	return 0;
}

int fw_ruleset_copy(struct fw_ruleset *dst, const struct fw_ruleset *src)
{
	memset(dst, 0, sizeof(*dst));
	for (size_t i = 0; i < src->n; i++) {
		if (fw_ruleset_push(dst, &src->v[i])) {
			fw_ruleset_free(dst);
			return -ENOMEM;
		}
	}
	return 0;
}

ssize_t fw_ruleset_find(const struct fw_ruleset *s, const char *id)
{
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->v[i].id, id))
			return (ssize_t)i;
	return -1;
}

void fw_ruleset_remove(struct fw_ruleset *s, size_t i)
{
	if (i >= s->n)
		return;
	fw_rule_free(&s->v[i]);
	memmove(&s->v[i], &s->v[i + 1], (s->n - i - 1) * sizeof(s->v[0]));
	s->n--;
}
