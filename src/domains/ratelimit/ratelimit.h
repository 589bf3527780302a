/* SPDX-License-Identifier: AGPL-3.0-only */
/*
 * Rate-limit domain (network.md §6): configuration model, validation shared by
 * the YAML section and REST bodies, compilation into xdp_ratelimit's maps,
 * and the runtime rule list behind /api/v1/ratelimit/rules.
 */
#ifndef ES_RATELIMIT_H
#define ES_RATELIMIT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "abi/ratelimit.h"
#include "core/cfg.h"
#include "core/net.h"

#define RL_MAX_RULES 10000
#define RL_MAX_RATE 1000000000ull

struct rl_rule {
	char *id;
	uint64_t rate;
	uint64_t burst;
	uint8_t action;	   /* ES_RL_ACT_* */
	uint8_t scope;	   /* ES_RL_SCOPE_* */
	uint8_t algorithm; /* enum es_rl_algo */
	bool enabled;
	bool has_cidr; /* false: /0 of both families */
	struct es_cidr cidr;
	char **country_codes; /* informational; NULL-terminated or NULL */
};

struct rl_tier {
	uint8_t tier_id;
	char **country_codes;
	uint64_t rate;
	uint64_t burst;
	uint8_t algorithm;
	uint8_t action;
};

/*
 * Parse one rule (YAML item or REST body) into out. REST bodies pass
 * rest = true: rate and burst are then required. Returns 0 or -EINVAL with
 * the error recorded in c; out is cleared with rl_rule_clear() either way.
 */
int rl_rule_parse(struct es_cfg *c, const json_t *obj, const char *path, bool rest,
		  struct rl_rule *out);
void rl_rule_clear(struct rl_rule *r);
/* The REST shape (RlRule). New reference. */
json_t *rl_rule_json(const struct rl_rule *r);
const char *rl_algo_name(uint8_t algo);

/* Runtime rule operations (REST). 0, -EEXIST (duplicate id), -ENOENT, -ENOSPC. */
int rl_rules_add(const struct rl_rule *r);
int rl_rules_delete(const char *id, json_t **removed);
json_t *rl_rules_json(void);

/*
 * One word of rl_globals (abi/ratelimit.h) through the map fd: the ratelimit
 * and ddos domains share the entry, so writers are serialised here and each
 * changes only its word. 0 or -errno.
 */
int es_rl_global_put(int fd, uint32_t idx, uint32_t v);
int es_rl_global_get(int fd, uint32_t idx, uint32_t *v);
/* The global default policy in rl_globals (ns_per_token 0: none), under the same lock. */
struct es_rl_config;
int es_rl_default_put(int fd, const struct es_rl_config *c);

/*
 * Size xdp_ratelimit's state tables for this host before load: sets per CPU
 * (es_rl_sets_for) times the possible CPUs, and rodata rl_set_shift. 0 or
 * -errno. The agent and the kernel tests both load the object through it.
 */
struct es_ratelimit;
int es_rl_size_tables(struct es_ratelimit *skel);

/* The limiters' clock step in ns (one tick: the resolution of
 * CLOCK_MONOTONIC_COARSE), 0 when it looks wrong. */
uint64_t es_rl_tick_ns(void);

#endif
