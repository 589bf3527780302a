/* SPDX-License-Identifier: AGPL-3.0-only */
/* Firewall domain: what other parts of the agent may ask of it. */
#ifndef ES_FIREWALL_H
#define ES_FIREWALL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/net.h"

enum fw_mode {
	FW_MODE_ALERT = 0,
	FW_MODE_BLOCK,
};

enum fw_policy {
	FW_POLICY_PASS = 0,
	FW_POLICY_DROP,
};

struct fw_status {
	bool enabled;
	bool loaded;
	unsigned attached; /* interfaces with xdp_firewall attached */
	enum fw_mode mode;
	enum fw_policy default_policy;
	size_t rule_count; /* installed rules, system rules included */
};

void fw_get_status(struct fw_status *out);

/*
 * LPM block lists (network.md §2.4): prefixes dropped (or logged, or passed)
 * before any rule, by source or destination, for IPS, DDoS, GeoIP, DNS and
 * aliases. Each prefix remembers its owners ("ips", "ddos:CN", "alias", ...)
 * and leaves the kernel only when the last owner removes it; with several
 * owners the strictest action applies (drop, then log, then pass). Entries
 * made while the firewall is not loaded are installed when it loads.
 * action: ES_FW_ACT_* (abi/firewall.h). 0 or -errno.
 */
int fw_lpm_add(const char *owner, const struct es_cidr *c, bool dst, uint8_t action);
int fw_lpm_remove(const char *owner, const struct es_cidr *c, bool dst);
/* Remove every prefix of an owner; returns how many it held, or -errno. */
int fw_lpm_remove_owner(const char *owner);
/* [{cidr, direction, action, owners:[...]}] (owner NULL = all). */
json_t *fw_lpm_list(const char *owner);

/*
 * Switch the zone gate of xdp_firewall (the zones domain, after it filled
 * zone_map and zone_policy). 0, or -errno when the firewall is not loaded.
 */
int fw_set_zone_gate(bool on);

#endif
