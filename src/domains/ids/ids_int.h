/* SPDX-License-Identifier: AGPL-3.0-only */
/* IDS domain internals: the section, the engine behind it. */
#ifndef ES_IDS_INT_H
#define ES_IDS_INT_H

#include "domains/ids/ids.h"
#include "domains/ids/match.h"

struct ids_cfg {
	bool enabled;
	enum ids_mode mode; /* alert or block */
	struct ids_sampling sampling;
	struct ids_rule *rules;
	size_t n_rules;
	bool load_prog; /* ids, ips or l7 enabled: tc_ids runs */
};

/* A compiled, immutable view of every rule (IDS then IPS), swapped whole. */
struct ids_snap {
	int refs;
	struct ids_rule *rules;
	size_t n, n_ids;
	bool ids_enabled, ips_enabled;
	enum ids_mode ids_mode, ips_mode;
	struct ids_sampling ids_sampling, ips_sampling;
	struct ids_matcher *m;
	int *pat;		/* rule -> pattern index in m, -1 none */
	struct es_hmap *by_key; /* {port, proto} -> struct ids_list */
};

struct ids_list {
	uint32_t *idx;
	size_t n, cap;
};

/* Build a snapshot from an IDS section and IPS's part (either may be NULL). */
struct ids_snap *ids_snap__new(const struct ids_cfg *ids, const struct ids_ips_view *ips, char *why,
			       size_t len);
void ids_snap_put(struct ids_snap *s);
/* Candidate rules for (proto, dst_port) in config order; returns the count
 * written to out (at most max). */
size_t ids_snap_candidates(const struct ids_snap *s, uint8_t proto, uint16_t port, uint32_t *out,
			   size_t max);
/* Effective kernel mode of rule i: section AND rule. */
bool ids_snap_blocks(const struct ids_snap *s, size_t i);
/* Compile the kernel table: keys/values for every (port, proto) key. */
struct ids_kentry {
	uint16_t port;
	uint8_t proto;
	uint8_t action, severity, flags;
	uint32_t rule_id;
};
size_t ids_snap_kernel(const struct ids_snap *s, struct ids_kentry *out, size_t max);

int ids_engine_start(const struct ids_cfg *c);
int ids_engine_apply(const struct ids_cfg *c);
void ids_engine_stop(void);
void ids_engine_tick(void);
void ids_engine_metrics(void);
void ids_engine_status(json_t *o);
json_t *ids_engine_rules_json(void);
/* Handle one IDS event record (the event thread; exposed for tests). */
void ids_engine_event(const void *rec, size_t len);

#endif
