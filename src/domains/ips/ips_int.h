/* SPDX-License-Identifier: AGPL-3.0-only */
/* IPS internals: the section and the blacklist engine. */
#ifndef ES_IPS_INT_H
#define ES_IPS_INT_H

#include <jansson.h>

#include "domains/ids/ids.h"
#include "domains/ips/ips.h"

struct ips_country {
	char cc[3];
	uint32_t threshold;
};

struct ips_cfg {
	bool enabled;
	enum ids_mode mode;
	uint64_t max_duration_secs; /* TTL of auto entries and detection window; 0 = permanent */
	uint32_t threshold;
	uint32_t max_size;
	struct es_cidr *whitelist;
	size_t n_whitelist;
	char **whitelist_text;
	struct ids_sampling sampling;
	struct ids_rule *rules;
	size_t n_rules;
	struct ips_country *country;
	size_t n_country;
};

#define IPS_AUTO_REASON "auto-blacklisted: detection threshold reached"

/* Engine (blacklist.c). */
int ips_engine_start(const struct ips_cfg *c);
int ips_engine_apply(const struct ips_cfg *c);
void ips_engine_stop(void);
void ips_engine_tick(void);
void ips_engine_metrics(void);
/* The record_detection of §2.3 (the IDS hook). */
void ips_record_detection(const uint32_t src[4], bool v6);
bool ips_whitelisted(const struct es_addr *a);
/* [{ip, reason, auto_generated, ttl_remaining_secs}] ; domain_only: the
 * domain-block view. */
json_t *ips_blacklist_json(bool domain_only);
/* Rules as IpsRule objects, and a mode change (-ENOENT unknown rule). */
json_t *ips_rules_json(void);
json_t *ips_rule_json_by_id(const char *id);
int ips_rule_set_mode(const char *id, enum ids_mode mode, json_t **before, json_t **after);
size_t ips_blacklist_size(void);

#endif
