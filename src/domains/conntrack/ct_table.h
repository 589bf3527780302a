/* SPDX-License-Identifier: AGPL-3.0-only */
/*
 * The agent's side of the pinned flow tables (network.md §3.3): walking them
 * in batches, the flow view used by the REST listing, flush, and the sweeper
 * (expiry, per-source and per-rule recounts, overload expiry).
 */
#ifndef ES_CT_TABLE_H
#define ES_CT_TABLE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "abi/conntrack.h"
#include "core/net.h"

/* Map fds (-1 when absent). */
struct ct_maps {
	int v4, v6;
	int src;	/* ct_src_counters */
	int overload;	/* ct_overload */
	int rule_count; /* fw_rule_state_count */
	int reply4, reply6;
};

/* Open the pinned maps of the agent's pin directory (missing ones stay -1). */
void ct_maps_open(struct ct_maps *m);
void ct_maps_close(struct ct_maps *m);

/* A flow oriented from its initiator: src is the endpoint that opened it. */
struct ct_flow {
	struct es_addr src, dst;
	uint16_t sport, dport;
	uint8_t proto, state, flags, nat_type;
	uint32_t packets_fwd, packets_rev, bytes_fwd, bytes_rev;
	uint64_t first_seen_ns, last_seen_ns;
	struct es_addr nat_addr; /* valid when nat_type != 0 */
	uint16_t nat_port;
	uint16_t rule_slot;
};

/* Decode a raw entry of either table into the initiator-oriented view. */
void ct_flow_decode(struct ct_flow *f, const void *key, const void *val, bool v6);

/*
 * Visit every entry of both tables (batched). fn gets the decoded flow and the
 * raw key; it returns 0 to go on, 1 to stop, <0 to abort with that error.
 * Returns 0 or -errno.
 */
typedef int (*ct_walk_fn)(const struct ct_flow *f, const void *key, bool v6, void *arg);
int ct_table_walk(const struct ct_maps *m, ct_walk_fn fn, void *arg);

/*
 * The normalized key of endpoints (src, sport) → (dst, dport) (addresses as
 * 16 network-order bytes, IPv4 mapped), as kernel/bpf/ct.h derives it;
 * returns true for IPv6 (key is es_ct_key_v6) or false (es_ct_key_v4).
 */
bool ct_key_make(const uint8_t src[16], const uint8_t dst[16], uint16_t sport, uint16_t dport,
		 uint8_t proto, void *key);
/* Is there a live entry for that tuple (conntrack maps m, config c)? */
bool ct_tuple_live(const struct ct_maps *m, const struct es_ct_config *c, const uint8_t src[16],
		   const uint8_t dst[16], uint16_t sport, uint16_t dport, uint8_t proto);

/* CLOCK_BOOTTIME in ns: the kernel's timestamps. */
uint64_t ct_now_ns(void);
const char *ct_state_name(uint8_t state);
/* The REST shape (interfaces.md §3.4) plus flags, NAT details and ages. */
json_t *ct_flow_json(const struct ct_flow *f, uint64_t now);

/* Live (not idle past its timeout) entries. */
int ct_table_count(const struct ct_maps *m, const struct es_ct_config *cfg, uint64_t *count);
/* Delete every entry of both tables (and reply_to records); *count = entries removed. */
int ct_table_flush(const struct ct_maps *m, uint64_t *count);

struct ct_sweep_stats {
	uint64_t live, expired;
	uint64_t sources;	   /* sources with flows */
	uint64_t overload_expired; /* overload entries removed */
};

/*
 * One sweep: delete expired entries (re-checked just before deletion, so a
 * flow refreshed meanwhile survives), recompute per-source conn_count into
 * ct_src_counters and per-slot counts into fw_rule_state_count, expire
 * overload entries older than overload_ttl_secs (clearing OVERLOADED), drop
 * reply_to records whose flow is gone. 0 or -errno.
 */
int ct_sweep(const struct ct_maps *m, const struct es_ct_config *cfg, uint32_t overload_ttl_secs,
	     struct ct_sweep_stats *st);

#endif
