/* SPDX-License-Identifier: AGPL-3.0-only */
/*
 * DDoS domain (network.md §7): policies, the userspace attack detector
 * (1 s ticks, EWMA alpha 0.3, Detecting -> Active -> Mitigated -> Expired)
 * and the kernel defences' configuration. The detector is pure logic over
 * event counts and ticks so it can be driven by tests.
 */
#ifndef ES_DDOS_H
#define ES_DDOS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/cfg.h"

enum ddos_attack {
	DDOS_SYN_FLOOD = 0,
	DDOS_UDP_AMPLIFICATION,
	DDOS_ICMP_FLOOD,
	DDOS_RST_FLOOD,
	DDOS_FIN_FLOOD,
	DDOS_ACK_FLOOD,
	DDOS_VOLUMETRIC,
	DDOS_ATTACK__COUNT,
};

enum ddos_status {
	DDOS_DETECTING = 0,
	DDOS_ACTIVE,
	DDOS_MITIGATED,
	DDOS_EXPIRED,
	DDOS_DISCARDED, /* Detecting that never became an attack: no history */
};

enum ddos_mitigation {
	DDOS_MIT_ALERT = 0,
	DDOS_MIT_THROTTLE,
	DDOS_MIT_BLOCK,
};

/* Tick counts of network.md §7.3. */
#define DDOS_TICKS_TO_ACTIVE 3
#define DDOS_TICKS_TO_MITIGATED 30
#define DDOS_TICKS_TO_EXPIRED 300
#define DDOS_HISTORY 100
#define DDOS_MAX_SOURCES 256
#define DDOS_MAX_POLICIES 100

struct ddos_country_threshold {
	char cc[3];
	uint64_t pps;
};

struct ddos_policy {
	char *id;
	enum ddos_attack attack;
	uint64_t threshold_pps;
	enum ddos_mitigation action;
	uint64_t block_secs; /* 0 = until the attack expires */
	bool enabled;
	struct ddos_country_threshold *cc;
	size_t n_cc;
};

struct ddos_source {
	uint8_t addr[16]; /* IPv4 mapped */
	uint64_t count;
};

struct ddos_tracker {
	char id[32];
	enum ddos_attack attack;
	enum ddos_status status;
	uint64_t start_ns; /* wall clock */
	uint64_t last_seen_ns;
	uint64_t current_pps;
	uint64_t peak_pps;
	uint64_t total;
	uint64_t window; /* events since the last tick */
	unsigned above, below;
	char country[3]; /* of the first source; empty without GeoIP */
	struct ddos_source src[DDOS_MAX_SOURCES];
	size_t n_src;
	size_t n_mitigated_src; /* sources already blocked or throttled */
};

struct ddos_detector {
	struct ddos_tracker *active[DDOS_ATTACK__COUNT];
	struct ddos_tracker history[DDOS_HISTORY];
	size_t hist_next, hist_n;
	uint64_t total_mitigated;
	uint64_t next_id;
	uint64_t tick_ns; /* length of a tick (0 = 1 s); kept by ddos_det_reset */
};

/* Parsing of a policy (YAML item or REST body; rest: REST defaults). 0 or -EINVAL. */
int ddos_policy_parse(struct es_cfg *c, const json_t *obj, const char *path, bool rest,
		      struct ddos_policy *out);
void ddos_policy_clear(struct ddos_policy *p);
json_t *ddos_policy_json(const struct ddos_policy *p);
/* The policy for an attack type: the first enabled one by id, or NULL. */
const struct ddos_policy *ddos_policy_for(const struct ddos_policy *p, size_t n,
					  enum ddos_attack a);

const char *ddos_attack_name(enum ddos_attack a); /* REST form: "synflood" */
const char *ddos_status_name(enum ddos_status s);
const char *ddos_mitigation_name(enum ddos_mitigation m);

/* Attack type of a kernel event (type, action), or -1. */
int ddos_event_attack(uint16_t type, uint8_t action);

/* Count one event against the attack's tracker, creating it (Detecting). */
void ddos_det_event(struct ddos_detector *d, enum ddos_attack a, const uint8_t src[16],
		    uint64_t now_ns);

/* Called for every state change (to = DDOS_EXPIRED / DDOS_DISCARDED before removal). */
typedef void (*ddos_transition_fn)(const struct ddos_tracker *t, enum ddos_status from,
				   const struct ddos_policy *pol, void *arg);

/* One tick (1 s, or d->tick_ns) over every tracker; rates stay per second. */
void ddos_det_tick(struct ddos_detector *d, const struct ddos_policy *pols, size_t n_pols,
		   ddos_transition_fn fn, void *arg);
void ddos_det_reset(struct ddos_detector *d);
json_t *ddos_tracker_json(const struct ddos_tracker *t);
/* History, newest first, at most limit entries. */
json_t *ddos_history_json(const struct ddos_detector *d, size_t limit);

/* Runtime operations behind the REST routes (ddos.c). New references. */
json_t *ddos_status_json(void);
json_t *ddos_attacks_json(void);
json_t *ddos_history_get(size_t limit);
json_t *ddos_policies_json(void);
/* Takes ownership of *p on success. 0, -EEXIST, -ENOSPC or -ENOMEM. */
int ddos_policies_add(struct ddos_policy *p);
int ddos_policies_delete(const char *id, json_t **removed);

/*
 * Mitigations (ddos.c). An auto-block puts the source into the firewall's LPM
 * block list under the owner "ddos" (and into xdp_ratelimit's ddos_block map
 * while xdp_firewall is not running); expires_ns is CLOCK_MONOTONIC, 0 = until
 * the attack expires. Removal takes away only the "ddos" ownership: a prefix
 * other owners hold stays blocked. 0 or -errno.
 */
int ddos_autoblock_add(const uint8_t addr[16], enum ddos_attack a, uint64_t expires_ns);
/* Remove every mitigation expired at now_ns; returns how many. */
size_t ddos_mitigations_expire(uint64_t now_ns);
size_t ddos_mitigations_count(void);

#endif
