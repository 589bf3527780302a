/* SPDX-License-Identifier: AGPL-3.0-only */
/* Routing domain internals shared by routing.c and routing_api.c. */
#ifndef ES_ROUTING_INT_H
#define ES_ROUTING_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/net.h"
#include "domains/routing/health.h"

struct routing_gw_cfg {
	uint8_t id;
	char *name; /* owned */
	char ifname[16];
	struct es_addr gateway_ip;
	uint32_t priority;
	bool enabled;
	char **countries; /* owned, NULL-terminated (accepted; no GeoIP steering yet) */
	size_t n_countries;
	bool probed; /* has a health_check */
	struct es_addr target;
	enum health_proto proto;
	uint16_t tcp_port;
	uint32_t interval_secs, timeout_secs, failure_threshold, recovery_threshold;
};

struct routing_cfg {
	bool enabled;
	struct routing_gw_cfg *gw;
	size_t n_gw;
};

enum routing_status {
	ROUTING_HEALTHY = 0,
	ROUTING_DEGRADED, /* failing, not yet failure_threshold times in a row */
	ROUTING_DOWN,
};

struct routing_gw_view {
	uint8_t id;
	enum routing_status status;
	uint64_t checks;
	uint32_t fails;
};

/*
 * Feed one probe outcome (0 or -errno) of gateway id, as its health thread
 * does: thresholds applied, targets re-pointed when usability changes.
 * -ENOENT for an unknown id.
 */
int routing_record_probe(uint8_t id, int err);

/* Health state of the running gateways (at most max). */
void routing_snapshot(struct routing_gw_view *out, size_t *n, size_t max);
const char *routing_status_name(enum routing_status s);

#endif
