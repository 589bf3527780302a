/* SPDX-License-Identifier: AGPL-3.0-only */
/* Alerting domain internals: configuration, store, pipeline, rendering. */
#ifndef ES_ALERTING_INT_H
#define ES_ALERTING_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "api/route.h"
#include "core/alert.h"
#include "domains/alerting/policy.h"

struct al_smtp {
	bool present;
	char *host;
	uint16_t port;
	char *username; /* NULL when unset */
	char *password;
	char *from_address;
	bool tls;
};

struct al_cfg {
	bool enabled;
	uint64_t dedup_window_secs;
	uint64_t throttle_window_secs;
	uint64_t throttle_max;
	struct al_smtp smtp;
	struct al_route *routes;
	size_t n_routes;
	/* Extension (ignored upstream): retry waits, for tests. */
	uint32_t retry_ms[AL_MAX_RETRIES];
	/* From the audit section: where the alert store lives, and its age bound. */
	char *store_path;
	uint32_t retention_days;
};

void al_cfg_free(struct al_cfg *c);

/* ---- rendering ---- */
/* The REST alert object (§3.4); webhook = capitalised severity/action (§7.4). */
json_t *al_alert_json(const struct es_alert *a, bool webhook);
const char *al_severity_cap(enum es_severity s);
void al_addr_str(const uint32_t w[4], bool v6, char *buf, size_t len);

/* ---- store (SQLite) ---- */
#define AL_STORE_MAX 50000
int al_store_open(const char *path, uint32_t retention_days);
void al_store_close(void);
bool al_store_ready(void);
/* Insert a batch in one transaction; evicts the oldest beyond AL_STORE_MAX. */
int al_store_insert(const struct es_alert *const *a, size_t n);
struct al_query {
	const char *component;
	int min_severity; /* -1 none */
	const char *rule_id;
	int false_positive; /* -1 none */
	uint64_t from, to;  /* to = UINT64_MAX when absent */
	uint64_t limit, offset;
};
/* {alerts, total, limit, offset}; NULL + -errno on failure. */
json_t *al_store_query(const struct al_query *q, int *err);
/* Mark alert id; 1 newly marked (component/rule_id filled), 0 already
 * marked, -ENOENT unknown, other -errno. */
int al_store_mark_fp(const char *id, char *component, size_t clen, char *rule_id, size_t rlen);
void al_store_purge(void);

/* ---- pipeline ---- */
int al_pipeline_start(const struct al_cfg *cfg);
void al_pipeline_apply(const struct al_cfg *cfg);
void al_pipeline_stop(int drain_ms);
void al_pipeline_tick(void);
extern const struct es_route al_routes[];

#endif
