/* SPDX-License-Identifier: AGPL-3.0-only */
/* Firewall domain: what other parts of the agent may ask of it. */
#ifndef ES_FIREWALL_H
#define ES_FIREWALL_H

#include <stdbool.h>
#include <stddef.h>

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

#endif
