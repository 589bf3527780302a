/* SPDX-License-Identifier: AGPL-3.0-only */
/* Gateway health probes: ICMP echo and TCP connect, bounded by a timeout. */
#ifndef ES_ROUTING_HEALTH_H
#define ES_ROUTING_HEALTH_H

#include <stdint.h>

#include "core/net.h"

enum health_proto {
	HEALTH_ICMP = 0,
	HEALTH_TCP,
};

/*
 * One probe of target through interface ifname ("" = any): an echo request
 * answered (ICMP) or a completed connect (TCP) within timeout_ms. 0 on
 * success, -errno otherwise (-ETIMEDOUT, -ECONNREFUSED, ...).
 */
int health_probe(enum health_proto proto, const struct es_addr *target, uint16_t port,
		 const char *ifname, unsigned timeout_ms, uint16_t ident);

#endif
