/* SPDX-License-Identifier: AGPL-3.0-only */
/*
 * NAT rules (network.md §4.1, §4.3): the `nat:` section's model, its
 * validation, and the compilation into the kernel rule arrays.
 */
#ifndef ES_NAT_RULES_H
#define ES_NAT_RULES_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "abi/nat.h"
#include "core/cfg.h"
#include "core/net.h"

enum nat_kind {
	NAT_K_SNAT = 0,
	NAT_K_MASQUERADE,
	NAT_K_DNAT,
	NAT_K_PORT_FORWARD,
	NAT_K_REDIRECT,
	NAT_K_ONE_TO_ONE,
};

struct nat_rule_cfg {
	char *id;
	bool enabled;
	bool dnat_list; /* held by dnat_rules (else snat_rules) */
	uint32_t priority;
	size_t order; /* position in config order (ties) */
	uint32_t rule_id;
	enum nat_kind kind;
	int family; /* 4, 6, or 0 when no address pins it */
	bool has_translated_addr, has_external, has_internal;
	struct es_addr translated_addr, external_addr, internal_addr;
	uint16_t translated_port; /* 0: none */
	bool has_port_range, has_ext_port, has_int_port, has_match_dst_port;
	struct es_port_range port_range, ext_port, int_port, match_dst_port;
	char *interface; /* NULL: none */
	bool has_match_src, has_match_dst;
	struct es_cidr match_src, match_dst;
	uint8_t match_protocol; /* 0 any, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP */
};

struct nat_cfg {
	bool enabled;
	struct nat_rule_cfg *rules; /* dnat_rules first, then snat_rules, config order */
	size_t n_rules;
};

/* Parse and validate the section (NULL: defaults). NULL with the error in c. */
struct nat_cfg *nat_cfg_parse(struct es_cfg *c, const json_t *node, const char *path);
void nat_cfg_free(struct nat_cfg *n);
/* The effective section (defaults filled). */
json_t *nat_cfg_to_json(const struct nat_cfg *n);
/* REST view: nat_type snat|dnat|masquerade|onetoone. */
const char *nat_kind_api_name(enum nat_kind k);

/* Compiled arrays, in match order (priority, then config order). */
struct nat_compiled {
	struct es_nat_rule dnat4[ES_NAT_MAX_RULES], snat4[ES_NAT_MAX_RULES];
	struct es_nat_rule_v6 dnat6[ES_NAT_MAX_RULES6], snat6[ES_NAT_MAX_RULES6];
	uint32_t n_dnat4, n_snat4, n_dnat6, n_snat6;
	size_t skipped; /* rules dropped for want of room or of an interface */
};

/*
 * Compile the enabled rules. ifindex_of resolves interface names (0 when
 * absent: masquerade on a missing interface is skipped, counted in skipped).
 */
void nat_compile(const struct nat_cfg *n, int (*ifindex_of)(const char *name),
		 struct nat_compiled *out);

#endif
