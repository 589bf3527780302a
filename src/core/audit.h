/* SPDX-License-Identifier: AGPL-3.0-only */
/*
 * The audit trail's entry points (interfaces.md §8). Any part of the agent
 * records through these; the audit domain installs the store as the sink.
 * Without a sink (audit not running) calls are no-ops.
 */
#ifndef ES_AUDIT_H
#define ES_AUDIT_H

#include <jansson.h>
#include <stdint.h>

struct es_audit_entry {
	const char *component; /* firewall, ids, ips, l7, ratelimit, threatintel, dlp, ddos,
				  loadbalancer, config */
	const char *action;    /* pass, drop, alert, rate_exceeded, config_changed, rule_added,
				  rule_removed, rule_updated, policy_violation, false_positive */
	const char *rule_id;   /* may be NULL */
	const char *detail;    /* truncated to 512 bytes by the store */
	uint32_t src_ip;       /* word 0 of addr4 */
	uint32_t dst_ip;
	uint16_t src_port;
	uint16_t dst_port;
	uint8_t protocol;
	const char *actor_sub; /* authenticated identity, when auth is on; may be NULL */
};

/*
 * A rule change made through the API (actor "api") also produces its audit
 * entry (config / rule_added|rule_removed|rule_updated / "add|delete|update
 * rule <id> by api", with the caller's sub): callers record only the change,
 * never that entry themselves.
 */
struct es_rule_change {
	const char *component; /* firewall, l7, ratelimit, ddos, loadbalancer, ips, ... */
	const char *rule_id;   /* or "<domain>-config" for reloads */
	const char *action;    /* rule_added, rule_removed, rule_updated */
	const char *actor;     /* api, config_reload, cli */
	const char *before;    /* JSON document or NULL */
	const char *after;     /* JSON document or NULL */
	const char *actor_sub; /* may be NULL */
};

struct es_audit_sink {
	void (*entry)(const struct es_audit_entry *e);
	void (*rule_change)(const struct es_rule_change *c);
};

void es_audit_set_sink(const struct es_audit_sink *sink);
void es_audit(const struct es_audit_entry *e);
void es_audit_rule_change(const struct es_rule_change *c);
/*
 * Record a REST rule change (actor "api") with before/after documents in
 * their REST shape (either may be NULL). Borrows the JSON values.
 */
void es_audit_rule_json(const char *component, const char *rule_id, const char *action,
			const json_t *before, const json_t *after);

/*
 * The identity acting on this thread (the REST middleware sets it around each
 * handler when auth is on). Records whose actor_sub is NULL take it, so any
 * code running under a request is attributed without passing it along.
 * The string must outlive the request; NULL clears.
 */
void es_audit_set_actor(const char *sub);
const char *es_audit_actor(void);

#endif
