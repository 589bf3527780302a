/* SPDX-License-Identifier: AGPL-3.0-only */
/*
 * Alerting state machines (interfaces.md §7.3, §7.7), driven by an explicit
 * clock (monotonic ns) so tests can play time: dedup, throttle, routing and
 * the per-destination circuit breaker. Not thread-safe: one owner each.
 */
#ifndef ES_AL_POLICY_H
#define ES_AL_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/alert.h"

#define AL_NS 1000000000ull

/* ---- dedup: (rule_id, src[0], dst[0], dst_port, protocol), first-seen window ---- */
struct al_dedup;
struct al_dedup *al_dedup__new(void);
void al_dedup__free(struct al_dedup *d);
/* True when the alert is a duplicate (suppressed); suppressed alerts do not
 * extend the window. */
bool al_dedup_check(struct al_dedup *d, const struct es_alert *a, uint64_t window_ns, uint64_t now);
/* Forget keys whose window elapsed. */
void al_dedup_prune(struct al_dedup *d, uint64_t window_ns, uint64_t now);
size_t al_dedup_size(const struct al_dedup *d);

/* ---- throttle: per rule_id, fixed window opened by the rule's first alert ---- */
struct al_throttle;
struct al_throttle *al_throttle__new(void);
void al_throttle__free(struct al_throttle *t);
/* True when the alert exceeds max in the current window (suppressed). */
bool al_throttle_check(struct al_throttle *t, const char *rule_id, uint64_t window_ns, uint64_t max,
		       uint64_t now);
void al_throttle_prune(struct al_throttle *t, uint64_t window_ns, uint64_t now);

/* ---- routing ---- */
enum al_dest {
	AL_DEST_LOG = 0,
	AL_DEST_EMAIL,
	AL_DEST_WEBHOOK,
	AL_DEST__COUNT,
};

struct al_route {
	char *name;
	enum al_dest dest;
	enum es_severity min_severity;
	char **event_types; /* NULL = every component */
	char *webhook_url;
	char *email_to;
	char **header_names; /* webhook_headers, parallel arrays, NULL-terminated */
	char **header_values;
};

/* Does the route take this alert (severity threshold and component list)? */
bool al_route_matches(const struct al_route *r, const struct es_alert *a);

/* ---- circuit breaker (one per destination type) ---- */
enum al_breaker_state {
	AL_BREAKER_CLOSED = 0,
	AL_BREAKER_HALF_OPEN = 1,
	AL_BREAKER_OPEN = 2,
};

#define AL_BREAKER_THRESHOLD 5
#define AL_BREAKER_OPEN_NS (60 * AL_NS)

struct al_breaker {
	enum al_breaker_state state;
	unsigned failures; /* consecutive failed deliveries */
	uint64_t opened_at;
	bool trial_in_flight; /* half-open: one delivery probes the destination */
};

/* May a delivery start now? false = rejected (open, or a half-open probe is
 * already running). Moves open -> half-open after the open duration. */
bool al_breaker_allow(struct al_breaker *b, uint64_t now);
/* The outcome of a delivery (after its retries). */
void al_breaker_result(struct al_breaker *b, bool ok, uint64_t now);

/* Retry schedule: attempts after the first wait 1 s, 5 s, 30 s. */
#define AL_MAX_RETRIES 3
extern const uint32_t al_default_retry_ms[AL_MAX_RETRIES];

#endif
