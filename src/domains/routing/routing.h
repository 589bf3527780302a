/* SPDX-License-Identifier: AGPL-3.0-only */
/*
 * Policy routing (network.md §2.7): gateways with health checks and
 * failover, and the per-rule targets of route_to / reply_to / dup_to that
 * the kernel reads from the pinned FW_ROUTE_TARGETS. The firewall declares
 * which of its rules carry a routing action (routing_bind_*); this domain
 * resolves them to an interface and next hop and re-points route_to targets
 * when a gateway goes down or comes back.
 */
#ifndef ES_ROUTING_H
#define ES_ROUTING_H

#include <stdbool.h>
#include <stdint.h>

#include "abi/routing.h"

enum routing_kind {
	ROUTING_ROUTE_TO = ES_ROUTE_TO,
	ROUTING_REPLY_TO = ES_ROUTE_REPLY_TO,
	ROUTING_DUP_TO = ES_ROUTE_DUP_TO,
};

/* One rule's routing action, as the firewall parsed it. */
struct routing_binding {
	uint32_t rule_id;
	enum routing_kind kind;
	char gateway[64];   /* route_to: gateway id or IP ("" = none) */
	char interface[16]; /* egress / reply / mirror interface ("" = none: ingress) */
	int family;	    /* 4 or 6: the rule's family when it has addresses, else 0 */
};

/*
 * Replace the whole set of bindings (the firewall calls it after each compile,
 * before switching banks). Copies the array. Targets are written at once and
 * kept current on failover. 0 or -errno.
 */
int routing_set_bindings(const struct routing_binding *b, unsigned n);

/* Resolve a binding's target now (tests and the firewall's validation). 0 or -ENOENT. */
int routing_resolve(const struct routing_binding *b, struct es_route_target *out);

#endif
